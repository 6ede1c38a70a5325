# SPDX-License-Identifier: GPL-2.0
#
# A small stand-in for the kernel's tools/testing/selftests/lib.mk, so the
# selftests in this tree build and run on their own. A test directory sets
# TEST_PROGS (scripts, run as they are), TEST_GEN_PROGS (built here from
# <name>.c, statically linked so they run in a busybox initramfs),
# TEST_GEN_PROGS_EXTENDED (built and installed the same way, but helpers
# that other tests run, not tests of their own) and TEST_FILES (data
# copied on install), then includes this file.
#
#   make [OUTPUT=dir]              build TEST_GEN_PROGS
#   make run_tests                 run every test, print TAP, fail on failure
#   make install INSTALL_PATH=dir  copy tests, settings and a runner to dir
#   make clean

CC ?= cc
CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra -D_GNU_SOURCE
LDFLAGS += -static

OUTPUT ?= $(CURDIR)
selfdir := $(dir $(lastword $(MAKEFILE_LIST)))
TEST_NAME := $(notdir $(CURDIR))
GEN := $(addprefix $(OUTPUT)/,$(TEST_GEN_PROGS) $(TEST_GEN_PROGS_EXTENDED))

.PHONY: all clean run_tests install

all: $(GEN)

$(OUTPUT)/%: %.c
	@mkdir -p $(OUTPUT)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Run every test the kselftest way: a TAP plan, one line per test, exit
# code 4 means skip. Scripts are run from the source dir, programs from
# OUTPUT.
run_tests: all
	@OUTPUT="$(OUTPUT)" $(selfdir)run_tests.sh $(TEST_NAME) \
		$(TEST_PROGS) $(addprefix @,$(TEST_GEN_PROGS))

install: all
	@test -n "$(INSTALL_PATH)" || { echo "INSTALL_PATH not set"; exit 1; }
	mkdir -p $(INSTALL_PATH)
	cp $(TEST_PROGS) $(TEST_FILES) $(wildcard settings config) $(INSTALL_PATH)/
	cp $(GEN) $(INSTALL_PATH)/
	cp $(selfdir)run_tests.sh $(INSTALL_PATH)/run_tests.sh
	printf '%s\n' $(TEST_PROGS) $(TEST_GEN_PROGS) > $(INSTALL_PATH)/tests.list

clean:
	rm -f $(GEN) $(EXTRA_CLEAN)
