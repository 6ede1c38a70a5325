// SPDX-License-Identifier: GPL-2.0
/*
 * dumpcheck - leave a pattern in memory before a crash, find it in the dump.
 *
 *   dumpcheck fill MIB START SIZE
 *	Allocate and lock MIB of anonymous memory; stamp every page with a
 *	magic word and its own page frame number (from /proc/self/pagemap);
 *	print "stamped N in_region M" (M: pages inside [START, START+SIZE)),
 *	then sleep until killed, keeping the pages.
 *
 *   dumpcheck scan START SIZE [VMCORE]
 *	Read the pages of [START, START+SIZE) that the dump holds (PT_LOAD
 *	segments of /proc/vmcore or VMCORE) and print
 *	"dumped N own M zero Z other O": pages that carry their own stamp,
 *	pages of zeros, pages with anything else.
 *
 * START and SIZE in bytes, decimal or 0x hex. Exit 0 on success, 2 on a
 * usage or setup error.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAGIC 0x76696f6d656d6475ULL	/* "viomemdu" */
#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static long page_size;

static uint64_t parse(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "dumpcheck: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	return x;
}

static void stamp(uint64_t *p, uint64_t pfn)
{
	size_t i, words = page_size / sizeof(*p);

	p[0] = MAGIC;
	p[1] = pfn;
	for (i = 2; i < words; i++)
		p[i] = mix(pfn * words + i);
}

/* Does the page read at physical page @pfn carry its own stamp? */
static int own(const uint64_t *p, uint64_t pfn)
{
	size_t i, words = page_size / sizeof(*p);

	if (p[0] != MAGIC || p[1] != pfn)
		return 0;
	for (i = 2; i < words; i++)
		if (p[i] != mix(pfn * words + i))
			return 0;
	return 1;
}

static int fill(uint64_t mib, uint64_t start, uint64_t size)
{
	size_t len = mib << 20, n = len / page_size, i, in_region = 0;
	char *mem;
	int fd;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED || mlock(mem, len)) {
		perror("dumpcheck: mmap/mlock");
		return 2;
	}
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0) {
		perror("dumpcheck: /proc/self/pagemap");
		return 2;
	}
	for (i = 0; i < n; i++) {
		char *page = mem + i * page_size;
		uint64_t ent, pfn;
		off_t off = (uintptr_t)page / page_size * sizeof(ent);

		if (pread(fd, &ent, sizeof(ent), off) != sizeof(ent) ||
		    !(ent & PM_PRESENT) || !(ent & PM_PFN_MASK)) {
			fprintf(stderr, "dumpcheck: no pfn for page %zu\n", i);
			return 2;
		}
		pfn = ent & PM_PFN_MASK;
		stamp((uint64_t *)page, pfn);
		if (pfn * page_size >= start && pfn * page_size - start < size)
			in_region++;
	}
	close(fd);
	printf("stamped %zu in_region %zu\n", n, in_region);
	fflush(stdout);
	for (;;)
		pause();
}

static int scan(uint64_t start, uint64_t size, const char *path)
{
	uint64_t dumped = 0, owned = 0, zero = 0, other = 0;
	uint64_t *buf = malloc(page_size);
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd, i;

	fd = open(path, O_RDONLY);
	if (fd < 0 || !buf) {
		perror(path);
		return 2;
	}
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64) {
		fprintf(stderr, "dumpcheck: %s is not a 64-bit ELF core\n",
			path);
		return 2;
	}
	for (i = 0; i < eh.e_phnum; i++) {
		uint64_t a, b;

		if (pread(fd, &ph, sizeof(ph),
			  eh.e_phoff + (uint64_t)i * eh.e_phentsize) !=
		    sizeof(ph)) {
			perror("dumpcheck: program header");
			return 2;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		a = ph.p_paddr > start ? ph.p_paddr : start;
		b = ph.p_paddr + ph.p_filesz < start + size ?
		    ph.p_paddr + ph.p_filesz : start + size;
		a = (a + page_size - 1) / page_size * page_size;
		for (; a + page_size <= b; a += page_size) {
			size_t k, words = page_size / sizeof(*buf);
			int nonzero = 0;

			if (pread(fd, buf, page_size,
				  ph.p_offset + (a - ph.p_paddr)) != page_size) {
				perror("dumpcheck: reading the dump");
				return 2;
			}
			dumped++;
			if (own(buf, a / page_size)) {
				owned++;
				continue;
			}
			for (k = 0; k < words && !nonzero; k++)
				nonzero = buf[k] != 0;
			if (nonzero)
				other++;
			else
				zero++;
		}
	}
	printf("dumped %" PRIu64 " own %" PRIu64 " zero %" PRIu64
	       " other %" PRIu64 "\n", dumped, owned, zero, other);
	return 0;
}

int main(int argc, char **argv)
{
	page_size = sysconf(_SC_PAGESIZE);
	if (argc == 5 && !strcmp(argv[1], "fill"))
		return fill(parse(argv[2]), parse(argv[3]), parse(argv[4]));
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "scan"))
		return scan(parse(argv[2]), parse(argv[3]),
			    argc == 5 ? argv[4] : "/proc/vmcore");
	fprintf(stderr, "usage: dumpcheck fill MIB START SIZE\n"
			"       dumpcheck scan START SIZE [VMCORE]\n");
	return 2;
}
