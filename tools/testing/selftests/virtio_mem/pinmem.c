// SPDX-License-Identifier: GPL-2.0
/*
 * pinmem - pin anonymous memory long-term, as io_uring registered buffers
 * do, and hold it until killed.
 *
 * Used inside a guest to put pages that look movable but never move into
 * memory the host wants back: offlining such a block retries without end,
 * so the driver must bound every unplug attempt.
 *
 *   pinmem MIB      pin MIB and sleep until SIGTERM/SIGINT
 *   pinmem          pin 64 MiB, unpin and exit: what run_tests.sh runs,
 *                   which must end on its own, not at its timeout
 *
 * Prints "pinned N MiB" once the buffers are registered (and "released N
 * MiB" in the run that exits at once).
 * Exit: 0 after a signal (or at once without MIB), 2 on a setup error.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* A registered buffer is at most 1 GiB; smaller ones spread the pins. */
#define CHUNK_MIB	16

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct io_uring_params p;
	int once = argc == 1;
	size_t mib = once ? 64 : strtoul(argv[1], NULL, 0);
	size_t i, n = (mib + CHUNK_MIB - 1) / CHUNK_MIB;
	struct iovec *iov;
	char *buf;
	int fd;

	if (!mib) {
		fprintf(stderr, "usage: pinmem [MIB]\n");
		return 2;
	}
	buf = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	iov = calloc(n, sizeof(*iov));
	if (buf == MAP_FAILED || !iov) {
		perror("pinmem: mmap");
		return 2;
	}
	/* Touched first, so the pages exist wherever the allocator put them. */
	memset(buf, 0x5a, mib << 20);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = buf + (i * CHUNK_MIB << 20);
		iov[i].iov_len = (i + 1) * CHUNK_MIB <= mib ? CHUNK_MIB << 20 :
				 (mib - i * CHUNK_MIB) << 20;
	}
	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0) {
		perror("pinmem: io_uring_setup");
		return 2;
	}
	if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, iov,
		    n) < 0) {
		perror("pinmem: IORING_REGISTER_BUFFERS");
		return 2;
	}
	printf("pinned %zu MiB\n", mib);
	fflush(stdout);
	if (once) {
		close(fd);
		printf("released %zu MiB\n", mib);
		return 0;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop)
		pause();
	close(fd);
	return 0;
}
