// SPDX-License-Identifier: GPL-2.0
/*
 * memfill - fill anonymous memory with a position-dependent pattern and keep
 * checking it.
 *
 * Used inside a guest to show that hot-plugged memory is usable (fill more
 * than boot memory) and that resizing the device never corrupts a running
 * workload (keep verifying while the host shrinks or grows the device).
 *
 *   memfill [-o] [-d SECONDS] [-i SECONDS] [-r] [-q] [MIB]
 *
 *   MIB     how much to allocate (default 64)
 *   -o      fill, verify once, exit (default when run without arguments)
 *   -d N    keep verifying for N seconds, then exit (0: until SIGTERM/SIGINT)
 *   -i N    seconds between verify passes (default 1)
 *   -r      rewrite the pattern with a new generation after each pass
 *   -q      quiet: only the final line and errors
 *
 * Exit: 0 all passes clean, 1 corruption found, 2 usage or setup error.
 * The word at byte offset o of generation g holds
 *   mix(o / 8) ^ (g * 0x9e3779b97f4a7c15)
 * so a page that moved to the wrong place, went stale or was zeroed is seen.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GEN_MUL 0x9e3779b97f4a7c15ULL
#define MAX_REPORTS 8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	x ^= x >> 33;
	return x | 1;	/* never zero: a zeroed page always mismatches */
}

static inline uint64_t pattern(uint64_t idx, uint64_t gen)
{
	return mix(idx) ^ (gen * GEN_MUL);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(uint64_t *buf, uint64_t words, uint64_t gen)
{
	for (uint64_t i = 0; i < words; i++)
		buf[i] = pattern(i, gen);
}

/* Return the number of bad words; print the first few. */
static uint64_t verify(const uint64_t *buf, uint64_t words, uint64_t gen)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < words; i++) {
		uint64_t want = pattern(i, gen);

		if (buf[i] == want)
			continue;
		if (bad < MAX_REPORTS)
			fprintf(stderr,
				"memfill: corruption at offset 0x%llx (page %llu): expected 0x%016llx got 0x%016llx\n",
				(unsigned long long)(i * 8),
				(unsigned long long)(i * 8 / 4096),
				(unsigned long long)want,
				(unsigned long long)buf[i]);
		bad++;
	}
	return bad;
}

static void print_usage(void)
{
	fprintf(stderr,
		"usage: memfill [-o] [-d SECONDS] [-i SECONDS] [-r] [-q] [MIB]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long long mib = 64;
	double duration = 0, interval = 1, t0, t1;
	int once = argc == 1, rewrite = 0, quiet = 0, opt;
	uint64_t words, gen = 1, passes = 0, bad;
	uint64_t *buf;

	while ((opt = getopt(argc, argv, "od:i:rqh")) != -1) {
		switch (opt) {
		case 'o':
			once = 1;
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'i':
			interval = atof(optarg);
			break;
		case 'r':
			rewrite = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			print_usage();
		}
	}
	if (optind < argc) {
		char *end;

		mib = strtoull(argv[optind], &end, 0);
		if (*end || !mib)
			print_usage();
	}

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);

	words = mib * (1024 * 1024 / 8);
	buf = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "memfill: mmap %llu MiB: %s\n", mib,
			strerror(errno));
		return 2;
	}

	t0 = now();
	fill(buf, words, gen);
	t1 = now();
	if (!quiet)
		printf("memfill: filled %llu MiB in %.2f s\n", mib, t1 - t0);
	printf("memfill: ready\n");

	for (;;) {
		bad = verify(buf, words, gen);
		passes++;
		if (bad) {
			fprintf(stderr,
				"memfill: FAIL: %llu bad words of %llu in pass %llu\n",
				(unsigned long long)bad,
				(unsigned long long)words,
				(unsigned long long)passes);
			return 1;
		}
		if (!quiet)
			printf("memfill: pass %llu ok\n",
			       (unsigned long long)passes);
		if (once || stop || (duration > 0 && now() - t0 >= duration))
			break;
		if (rewrite)
			fill(buf, words, ++gen);
		if (interval > 0)
			usleep((useconds_t)(interval * 1e6));
		/* A signal during the sleep still gets one more check. */
	}

	printf("memfill: OK %llu MiB, %llu passes, %.1f s\n", mib,
	       (unsigned long long)passes, now() - t0);
	return 0;
}
