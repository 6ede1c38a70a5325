// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_mem_policy.c: config validation, geometry, plug and unplug
 * decisions. Pictures: see unit.h.
 */
#include "unit.h"

#define MiB	SZ_1M
#define GiB	SZ_1G
#define FIRST	100UL

/* A good config: 2 MiB blocks, 4 GiB at 4 GiB, 1 GiB usable. */
static const struct virtio_mem_cfg good_cfg = {
	.block_size = 2 * MiB,
	.addr = 4 * GiB,
	.region_size = 4 * GiB,
	.usable_region_size = GiB,
	.plugged_size = 0,
	.requested_size = 512 * MiB,
};

#define CFG(...) ({ struct virtio_mem_cfg __c = good_cfg;		\
		    struct virtio_mem_cfg __d = { __VA_ARGS__ };		\
		    vmu_cfg_merge(&__c, &__d); __c; })

/* Fields set in @d (non-zero, or block_size ~0 meaning 0) replace @c's. */
static void vmu_cfg_merge(struct virtio_mem_cfg *c,
			  const struct virtio_mem_cfg *d)
{
#define M(f) do { if (d->f == (u64)-1) c->f = 0; else if (d->f) c->f = d->f; } while (0)
	M(block_size);
	M(addr);
	M(region_size);
	M(usable_region_size);
	M(plugged_size);
	M(requested_size);
#undef M
}

#define ZERO	((u64)-1)

/* Each bad field is named, with its value. */
static bool policy_cfg_check_names_the_bad_field(void)
{
	static const struct {
		const char *what;
		struct virtio_mem_cfg cfg;
		const char *field;	/* expect; NULL: accepted */
	} rows[] = {
		{ "a good config", { 0 }, NULL },
		{ "block_size 0", { .block_size = ZERO }, "block_size" },
		{ "block_size 3 MiB", { .block_size = 3 * MiB }, "block_size" },
		{ "block_size 2 KiB, below a page", { .block_size = 2048 },
		  "block_size" },
		{ "block_size one page", { .block_size = 4096 }, NULL },
		{ "addr off by 1 MiB", { .addr = 4 * GiB + MiB }, "addr" },
		{ "region_size 0", { .region_size = ZERO }, "region_size" },
		{ "region_size 1 MiB off", { .region_size = 4 * GiB + MiB },
		  "region_size" },
		{ "region wraps", { .addr = ~0ULL - 2 * MiB + 1,
				    .region_size = 4 * MiB },
		  "region_size" },
		{ "usable 1 MiB off", { .usable_region_size = GiB + MiB },
		  "usable_region_size" },
		{ "usable beyond region", { .usable_region_size = 8 * GiB },
		  "usable_region_size" },
		{ "plugged 1 MiB off", { .plugged_size = MiB },
		  "plugged_size" },
		{ "plugged beyond region", { .plugged_size = 8 * GiB },
		  "plugged_size" },
		{ "requested 1 MiB off", { .requested_size = MiB },
		  "requested_size" },
		{ "requested beyond region", { .requested_size = 8 * GiB },
		  "requested_size" },
		/* The device promises usable >= requested; we clip instead. */
		{ "requested beyond usable", { .requested_size = 2 * GiB },
		  NULL },
	};
	struct virtio_mem_cfg_problem problem;
	unsigned int i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		struct virtio_mem_cfg cfg = good_cfg;

		vmu_cfg_merge(&cfg, &rows[i].cfg);
		memset(&problem, 0, sizeof(problem));
		rc = virtio_mem_cfg_check(&cfg, PAGE_SIZE, &problem);
		if (!rows[i].field) {
			EXPECT(!rc, "%s: expect accepted, got %s: %s",
			       rows[i].what, problem.field, problem.why);
			continue;
		}
		EXPECT(rc == -EINVAL && problem.field &&
		       !strcmp(problem.field, rows[i].field) && problem.why,
		       "%s: expect %s refused, got %d (%s)", rows[i].what,
		       rows[i].field, rc, problem.field ? problem.field : "-");
	}
	return true;
}

/* Later configs: only usable, plugged and requested may change. */
static bool policy_cfg_update_names_the_changed_field(void)
{
	static const struct {
		const char *what;
		struct virtio_mem_cfg cfg;
		const char *field;
	} rows[] = {
		{ "requested grows", { .requested_size = GiB }, NULL },
		{ "usable grows", { .usable_region_size = 2 * GiB }, NULL },
		{ "usable shrinks to 0 (UNPLUG_ALL on Firecracker)",
		  { .usable_region_size = ZERO, .requested_size = ZERO }, NULL },
		{ "plugged changes", { .plugged_size = 64 * MiB }, NULL },
		{ "block_size changes", { .block_size = 4 * MiB },
		  "block_size" },
		{ "addr changes", { .addr = 8 * GiB }, "addr" },
		{ "region_size changes", { .region_size = 2 * GiB },
		  "region_size" },
		{ "usable beyond region", { .usable_region_size = 6 * GiB },
		  "usable_region_size" },
		{ "requested misaligned", { .requested_size = 3 * MiB },
		  "requested_size" },
	};
	struct virtio_mem_cfg_problem problem;
	unsigned int i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		struct virtio_mem_cfg cfg = good_cfg;

		vmu_cfg_merge(&cfg, &rows[i].cfg);
		memset(&problem, 0, sizeof(problem));
		rc = virtio_mem_cfg_check_update(&good_cfg, &cfg, &problem);
		if (!rows[i].field) {
			EXPECT(!rc, "%s: expect accepted, got %s", rows[i].what,
			       problem.field);
			continue;
		}
		EXPECT(rc && problem.field &&
		       !strcmp(problem.field, rows[i].field),
		       "%s: expect %s refused, got %d (%s)", rows[i].what,
		       rows[i].field, rc, problem.field ? problem.field : "-");
	}
	return true;
}

static const struct virtio_mem_limits x86 = {
	.mb_size = 128 * MiB,
	.pageblock_size = 2 * MiB,
	.pluggable_start = 0,
	.pluggable_end = (1ULL << 46) - 1,
};

/*
 * Geometry: only whole memory blocks inside both the region and the
 * pluggable range are used.
 *
 *   memory blocks  |  32  |  33  |  34  |  35  |
 *   region            [  ......................  ]
 *   used                  [ 33  ][ 34 ]
 */
static bool policy_geo_cuts_the_region(void)
{
	static const struct {
		const char *what;
		u64 block_size, addr, size, pluggable_end;
		int rc;			/* expect */
		const char *field;
		u64 sb_size;
		unsigned int sbs_per_mb;
		unsigned long first, last;
		u64 unusable;
	} rows[] = {
		{ "aligned 4 GiB, 2 MiB blocks", 2 * MiB, 4 * GiB, 4 * GiB, 0,
		  0, NULL, 2 * MiB, 64, 32, 63, 0 },
		{ "1 MiB blocks: subblock is a pageblock", MiB, 4 * GiB,
		  4 * GiB, 0, 0, NULL, 2 * MiB, 64, 32, 63, 0 },
		{ "4 MiB blocks", 4 * MiB, 4 * GiB, 4 * GiB, 0, 0, NULL,
		  4 * MiB, 32, 32, 63, 0 },
		{ "64 MiB blocks: two per memory block", 64 * MiB, 4 * GiB,
		  4 * GiB, 0, 0, NULL, 64 * MiB, 2, 32, 63, 0 },
		{ "starts 2 MiB into a memory block: the first is lost",
		  2 * MiB, 4 * GiB + 2 * MiB, 512 * MiB, 0, 0, NULL, 2 * MiB,
		  64, 33, 35, 128 * MiB },
		{ "ends 2 MiB into a memory block", 2 * MiB, 4 * GiB,
		  256 * MiB + 2 * MiB, 0, 0, NULL, 2 * MiB, 64, 32, 33,
		  2 * MiB },
		{ "half outside the pluggable range", 2 * MiB, 4 * GiB,
		  1 * GiB, 4 * GiB + 512 * MiB - 1, 0, NULL, 2 * MiB, 64, 32,
		  35, 512 * MiB },
		{ "pluggable range ends mid memory block", 2 * MiB, 4 * GiB,
		  1 * GiB, 4 * GiB + 200 * MiB - 1, 0, NULL, 2 * MiB, 64, 32,
		  32, 1024 * MiB - 128 * MiB },
		{ "wholly outside the pluggable range", 2 * MiB, 4 * GiB,
		  1 * GiB, 2 * GiB - 1, -EINVAL, "addr" },
		{ "no whole memory block", 2 * MiB, 4 * GiB + 2 * MiB,
		  128 * MiB, 0, -EINVAL, "region_size" },
		/*
		 * Unreachable with a real pluggable range (at most 2^52), but
		 * the arithmetic must not wrap: rounding the start up to a
		 * memory block overflows to 0.
		 */
		{ "at the top of the address space, no whole block",
		  2 * MiB, 0xfffffffff8200000ULL, 0x7c00000, ~0ULL, -EINVAL,
		  "region_size" },
	};
	struct virtio_mem_cfg_problem problem;
	struct virtio_mem_limits limits;
	struct virtio_mem_geo geo;
	unsigned int i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		struct virtio_mem_cfg cfg = {
			.block_size = rows[i].block_size,
			.addr = rows[i].addr,
			.region_size = rows[i].size,
		};

		limits = x86;
		if (rows[i].pluggable_end)
			limits.pluggable_end = rows[i].pluggable_end;
		EXPECT(!virtio_mem_cfg_check(&cfg, PAGE_SIZE, &problem),
		       "%s: config refused", rows[i].what);
		memset(&problem, 0, sizeof(problem));
		rc = virtio_mem_geo_init(&geo, &cfg, &limits, &problem);
		EXPECT(rc == rows[i].rc, "%s: expect %d, got %d", rows[i].what,
		       rows[i].rc, rc);
		if (rc) {
			EXPECT(problem.field &&
			       !strcmp(problem.field, rows[i].field),
			       "%s: expect %s named, got %s", rows[i].what,
			       rows[i].field, problem.field);
			continue;
		}
		EXPECT(geo.sb_size == rows[i].sb_size &&
		       geo.sbs_per_mb == rows[i].sbs_per_mb && !geo.bbm,
		       "%s: expect %llu MiB x %u subblocks, got %llu x %u",
		       rows[i].what,
		       (unsigned long long)(rows[i].sb_size >> 20),
		       rows[i].sbs_per_mb,
		       (unsigned long long)(geo.sb_size >> 20),
		       geo.sbs_per_mb);
		EXPECT(geo.first_mb_id == rows[i].first &&
		       geo.last_mb_id == rows[i].last,
		       "%s: expect blocks %lu..%lu, got %lu..%lu", rows[i].what,
		       rows[i].first, rows[i].last, geo.first_mb_id,
		       geo.last_mb_id);
		EXPECT(geo.unusable_size == rows[i].unusable,
		       "%s: expect %llu MiB unusable, got %llu", rows[i].what,
		       (unsigned long long)(rows[i].unusable >> 20),
		       (unsigned long long)(geo.unusable_size >> 20));
	}
	return true;
}

/* A geometry of 8 subblocks of 16 MiB per 128 MiB block, from mb 100. */
static const struct virtio_mem_geo geo8 = {
	.mb_size = 128 * MiB,
	.sb_size = 16 * MiB,
	.sbs_per_mb = 8,
	.first_mb_id = FIRST,
	.last_mb_id = FIRST + 5,
};

#define MB_ADDR(n)	((u64)(FIRST + (n)) * 128 * MiB)
#define ANYWHERE	(~0ULL)

/*
 * plan_plug, one decision per row. Rows read: with these blocks, wanting
 * this many subblocks, usable up to there, expect that step.
 */
static bool policy_plan_plug_order(void)
{
	static const struct {
		const char *what;
		const char *pic[7];
		unsigned long nr_sbs;
		u64 usable_end;
		u64 offline_limit;
		enum virtio_mem_plan plan;	/* expect */
		unsigned long mb;		/* relative to FIRST */
		unsigned int sb, count;
		bool add;
		u64 kernel_free;	/* 0: plenty */
	} rows[] = {
		{ "nothing wanted: done", { "K:####....", NULL }, 0, ANYWHERE,
		  GiB, VIRTIO_MEM_PLAN_DONE },
		{ "offline partial before movable partial before kernel partial",
		  { "K:####....", "M:######..", "O:#.......", NULL }, 100,
		  ANYWHERE, GiB, VIRTIO_MEM_PLAN_STEP, 2, 1, 7, false },
		{ "movable partial before kernel partial",
		  { "K:####....", "M:######..", "O:########", NULL }, 100,
		  ANYWHERE, GiB, VIRTIO_MEM_PLAN_STEP, 1, 6, 2, false },
		{ "kernel partial before a new block",
		  { "K:####....", "M:########", NULL }, 100, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 0, 4, 4, false },
		{ "the first hole only, clipped to what is wanted",
		  { "M:#..#..#.", NULL }, 1, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 0, 1, 1, false },
		{ "all full: a new block, whole",
		  { "K:########", "M:########", NULL }, 100, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 2, 0, 8, true },
		{ "an emptied block before a fresh one",
		  { "K:########", "M:########", "U:........", "M:########",
		    NULL }, 3, ANYWHERE, GiB, VIRTIO_MEM_PLAN_STEP, 2, 0, 3,
		  true },
		{ "plugged-but-not-added blocks are not filled",
		  { "P:####....", NULL }, 3, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 2, 0, 3, true },
		{ "the second block waits: a fresh block after it first",
		  { "M:########", NULL }, 100, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 2, 0, 8, true },
		{ "the second block waits, even emptied",
		  { "M:########", "U:........", "M:########", NULL }, 100,
		  ANYWHERE, GiB, VIRTIO_MEM_PLAN_STEP, 3, 0, 8, true },
		{ "the second block when every other one is used",
		  { "M:########", "U:........", "M:########", "M:########",
		    "M:########", "M:########", NULL }, 100, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 1, 0, 8, true },
		{ "the second block when the usable region ends before the third",
		  { "M:########", NULL }, 100, MB_ADDR(2), GiB,
		  VIRTIO_MEM_PLAN_STEP, 1, 0, 8, true },
		{ "usable region ends mid block: clipped",
		  { "K:########", NULL }, 100, MB_ADDR(1) + 48 * MiB, GiB,
		  VIRTIO_MEM_PLAN_STEP, 1, 0, 3, true },
		{ "usable region ends at the next block: no space",
		  { "K:########", NULL }, 100, MB_ADDR(1), GiB,
		  VIRTIO_MEM_PLAN_NO_SPACE },
		{ "usable region ends in a hole's first subblock: no space",
		  { "K:##......", NULL }, 100, MB_ADDR(0) + 40 * MiB, GiB,
		  VIRTIO_MEM_PLAN_NO_SPACE },
		{ "usable region ends inside a hole: only what fits",
		  { "K:##......", NULL }, 100, MB_ADDR(0) + 56 * MiB, GiB,
		  VIRTIO_MEM_PLAN_STEP, 0, 2, 1, false },
		{ "every block used and full: no space",
		  { "K:########", "K:########", "K:########", "K:########",
		    "K:########", "K:########", NULL }, 1, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_NO_SPACE },
		{ "offline limit: 2 offline blocks, room for 2: no new block",
		  { "O:########", "O:########", NULL }, 1, ANYWHERE, 256 * MiB,
		  VIRTIO_MEM_PLAN_OFFLINE_LIMIT },
		{ "offline limit: room for 3, 2 offline: a new block",
		  { "O:########", "O:########", NULL }, 1, ANYWHERE, 384 * MiB,
		  VIRTIO_MEM_PLAN_STEP, 2, 0, 1, true },
		{ "offline limit does not stop filling an offline hole",
		  { "O:########", "O:#######.", NULL }, 1, ANYWHERE, 256 * MiB,
		  VIRTIO_MEM_PLAN_STEP, 1, 7, 1, false },
		{ "online blocks do not count toward the offline limit",
		  { "K:########", "M:########", "O:########", NULL }, 1,
		  ANYWHERE, 256 * MiB, VIRTIO_MEM_PLAN_STEP, 3, 0, 1, true },
#ifdef VIRTIO_MEM_MEMMAP_MARGIN
		{ "no room for a new block's memmap (2 MiB + 32 MiB margin)",
		  { "K:########", NULL }, 1, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_NO_MEMMAP, 0, 0, 0, false, 34 * MiB - 1 },
		{ "just enough room for a new block's memmap",
		  { "K:########", NULL }, 1, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 2, 0, 1, true, 34 * MiB },
		{ "no memmap needed to fill a hole",
		  { "K:#######.", NULL }, 1, ANYWHERE, GiB,
		  VIRTIO_MEM_PLAN_STEP, 0, 7, 1, false, 1 },
#endif
	};
	struct virtio_mem_sbm_step step;
	struct virtio_mem_sbm sbm;
	enum virtio_mem_plan plan;
	unsigned int i;
	char buf[128];

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		struct virtio_mem_plug_facts facts = {
			.nr_sbs = rows[i].nr_sbs,
			.usable_end = rows[i].usable_end,
			.offline_limit = rows[i].offline_limit,
#ifdef VIRTIO_MEM_MEMMAP_MARGIN
			.kernel_free = rows[i].kernel_free ?: 1ULL << 40,
			.memmap_per_mb = 2 * MiB,	/* 128 MiB, 64 B/page */
#endif
		};
		unsigned int count = rows[i].count;

		EXPECT(vmu_build(&sbm, FIRST, FIRST + 5, 8, rows[i].pic),
		       "%s: build", rows[i].what);
		memset(&step, 0xa5, sizeof(step));
		plan = virtio_mem_sbm_plan_plug(&sbm, &geo8, &facts, &step);
		vmu_render(&sbm, buf, sizeof(buf));
		virtio_mem_sbm_destroy(&sbm);
		EXPECT(plan == rows[i].plan, "%s [%s]: expect plan %d, got %d",
		       rows[i].what, buf, rows[i].plan, plan);
		if (plan != VIRTIO_MEM_PLAN_STEP)
			continue;
		EXPECT(step.mb_id == FIRST + rows[i].mb &&
		       step.sb_id == rows[i].sb && step.count == count &&
		       step.add == rows[i].add,
		       "%s [%s]: expect mb +%lu sb %u x%u%s, got mb +%lu sb %u x%u%s",
		       rows[i].what, buf, rows[i].mb, rows[i].sb, count,
		       rows[i].add ? " add" : "", step.mb_id - FIRST,
		       step.sb_id, step.count, step.add ? " add" : "");
	}
	return true;
}

/*
 * unplug_order: not added first, then offline (partial before full), then
 * movable, then kernel; fewest busy subblocks first; ties highest first.
 */
static bool policy_unplug_order(void)
{
	static const char *const pic[] = {
		"K:########",	/* 100: kernel, 8 busy */
		"M:########",	/* 101: movable, 8 busy (2 free below) */
		"M:####....",	/* 102: movable, 4 busy */
		"O:########",	/* 103: offline */
		"O:##......",	/* 104: offline partial */
		"P:#.......",	/* 105: plugged, not added */
		"U:........",	/* 106: unused: never a candidate */
		NULL
	};
	/* free plugged subblocks per block, as the snapshot saw them */
	static const u16 free_sbs[] = { 0, 6, 0, 0, 0, 0, 0 };
	static const unsigned long expect_all[] = {
		105, 104, 103, 101, 102, 100
	};
	static const unsigned long expect_offline_only[] = { 105, 104, 103 };
	struct virtio_mem_candidate cand[8];
	struct virtio_mem_sbm sbm;
	unsigned long n, i;

	EXPECT(vmu_build(&sbm, FIRST, FIRST + 7, 8, pic), "build");
	n = virtio_mem_sbm_unplug_order(&sbm, free_sbs, true, cand, 8);
	EXPECT(n == ARRAY_SIZE(expect_all), "expect %zu candidates, got %lu",
	       ARRAY_SIZE(expect_all), n);
	for (i = 0; i < n; i++)
		EXPECT(cand[i].mb_id == expect_all[i],
		       "position %lu: expect %lu, got %lu", i, expect_all[i],
		       cand[i].mb_id);
	n = virtio_mem_sbm_unplug_order(&sbm, free_sbs, false, cand, 8);
	EXPECT(n == ARRAY_SIZE(expect_offline_only),
	       "unplug_online off: expect %zu candidates, got %lu",
	       ARRAY_SIZE(expect_offline_only), n);
	for (i = 0; i < n; i++)
		EXPECT(cand[i].mb_id == expect_offline_only[i],
		       "unplug_online off, position %lu: expect %lu, got %lu", i,
		       expect_offline_only[i], cand[i].mb_id);
	/* Without a snapshot, every plugged online subblock counts as busy. */
	n = virtio_mem_sbm_unplug_order(&sbm, NULL, true, cand, 8);
	EXPECT(n == 6 && cand[3].mb_id == 102 && cand[4].mb_id == 101,
	       "no snapshot: expect 102 before 101");
	/* Room for fewer than there are. */
	n = virtio_mem_sbm_unplug_order(&sbm, free_sbs, true, cand, 2);
	EXPECT(n == 2, "max 2: got %lu", n);
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/*
 * The second memory block is plugged last (see plan_plug) and, among
 * blocks that cost the same, unplugged first.
 *   M:######## x4, all seen free -> expect 101, 103, 102, 100
 */
static bool policy_unplug_order_gap_first(void)
{
	static const char *const pic[] = {
		"M:########", "M:########", "M:########", "M:########", NULL
	};
	static const u16 free_sbs[] = { 8, 8, 8, 8 };
	static const unsigned long expect[] = { 101, 103, 102, 100 };
	struct virtio_mem_candidate cand[4];
	struct virtio_mem_sbm sbm;
	unsigned long n, i;

	EXPECT(vmu_build(&sbm, FIRST, FIRST + 7, 8, pic), "build");
	n = virtio_mem_sbm_unplug_order(&sbm, free_sbs, true, cand, 4);
	virtio_mem_sbm_destroy(&sbm);
	EXPECT(n == 4, "expect 4 candidates, got %lu", n);
	for (i = 0; i < n; i++)
		EXPECT(cand[i].mb_id == expect[i],
		       "position %lu: expect %lu, got %lu", i, expect[i],
		       cand[i].mb_id);
	return true;
}

/* The OOM guard: a step may take only what keeps the floor available. */
static bool policy_may_take(void)
{
	static const struct {
		u64 available, size, floor;
		bool expect;
	} rows[] = {
		{ 0, 2 * MiB, 0, true },		/* guard off */
		{ 100 * MiB, 2 * MiB, 64 * MiB, true },
		{ 66 * MiB, 2 * MiB, 64 * MiB, true },	/* exactly the floor */
		{ 65 * MiB, 2 * MiB, 64 * MiB, false },
		{ MiB, 2 * MiB, 64 * MiB, false },	/* not even the step */
		{ ~0ULL, ~0ULL, 1, false },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rows); i++)
		EXPECT(virtio_mem_may_take(rows[i].available, rows[i].size,
					   rows[i].floor) == rows[i].expect,
		       "row %u: expect %s", i, rows[i].expect ? "yes" : "no");
	return true;
}

/*
 * Big Block Mode.
 *
 *   region 4 GiB at 4 GiB, 256 MiB device blocks
 *   |bb16|bb17|bb18| ... |bb31|      big block = 256 MiB = 2 memory blocks
 *
 * expect: Big Block Mode with 256 MiB big blocks 16..31; a forced 512 MiB
 * big block size on 2 MiB blocks gives 8 big blocks; a bad big block size
 * is refused naming bbm_block_size; plug takes the lowest unused big
 * block inside the usable region; unplug ranks not-added first, then
 * nothing online, then movable, then kernel, least busy first.
 */
static bool policy_bbm(void)
{
	struct virtio_mem_cfg cfg = {
		.block_size = 256 * MiB, .addr = 4 * GiB, .region_size = 4 * GiB,
		.usable_region_size = 4 * GiB,
	};
	struct virtio_mem_plug_facts facts = {
		.nr_bbs = 1, .usable_end = 4 * GiB + 1 * GiB,
		.offline_limit = 1 * GiB, .kernel_free = 1 * GiB,
		.memmap_per_mb = 2 * MiB,
	};
	struct virtio_mem_bbm_seen seen[16] = { 0 };
	struct virtio_mem_candidate cand[16];
	struct virtio_mem_cfg_problem problem;
	struct virtio_mem_limits limits = x86;
	struct virtio_mem_geo geo;
	struct virtio_mem_bbm bbm;
	unsigned long bb_id, n;

	EXPECT(!virtio_mem_geo_init(&geo, &cfg, &limits, &problem) &&
	       geo.bbm && geo.bb_size == 256 * MiB && geo.first_bb_id == 16 &&
	       geo.last_bb_id == 31, "256 MiB blocks: bbm with bbs 16..31");

	cfg.block_size = 2 * MiB;
	limits.force_bbm = true;
	limits.bb_size = 512 * MiB;
	EXPECT(!virtio_mem_geo_init(&geo, &cfg, &limits, &problem) &&
	       geo.bbm && geo.bb_size == 512 * MiB && geo.first_bb_id == 8 &&
	       geo.last_bb_id == 15, "forced: 512 MiB big blocks 8..15");
	limits.bb_size = 96 * MiB;
	memset(&problem, 0, sizeof(problem));
	EXPECT(virtio_mem_geo_init(&geo, &cfg, &limits, &problem) == -EINVAL &&
	       problem.field && !strcmp(problem.field, "bbm_block_size"),
	       "96 MiB big blocks refused, naming bbm_block_size");

	/* A request names at most 65535 device blocks: 32768 x 2 MiB. */
	limits.bb_size = 128 * GiB;
	cfg.region_size = 256 * GiB;
	EXPECT(!virtio_mem_geo_init(&geo, &cfg, &limits, &problem) &&
	       geo.bbm && geo.bb_size == 64 * GiB,
	       "128 GiB big blocks of 2 MiB device blocks: capped to 64 GiB");
	/* No bigger than the region allows: 4 GiB at 4 GiB holds one 4 GiB. */
	cfg.region_size = 4 * GiB;
	limits.bb_size = 16 * GiB;
	EXPECT(!virtio_mem_geo_init(&geo, &cfg, &limits, &problem) &&
	       geo.bbm && geo.bb_size == 4 * GiB && geo.first_bb_id == 1 &&
	       geo.last_bb_id == 1,
	       "16 GiB big blocks in a 4 GiB region: capped to 4 GiB");

	cfg.block_size = 256 * MiB;
	limits = x86;
	EXPECT(!virtio_mem_geo_init(&geo, &cfg, &limits, &problem), "geo");
	EXPECT(!virtio_mem_bbm_init(&bbm, geo.first_bb_id, geo.last_bb_id),
	       "init");
	EXPECT(virtio_mem_bbm_plan_plug(&bbm, &geo, &facts, &bb_id) ==
	       VIRTIO_MEM_PLAN_STEP && bb_id == 16, "plug bb16 first");
	virtio_mem_bbm_set_bb_state(&bbm, 16, VIRTIO_MEM_BBM_BB_ADDED);
	EXPECT(virtio_mem_bbm_plan_plug(&bbm, &geo, &facts, &bb_id) ==
	       VIRTIO_MEM_PLAN_STEP && bb_id == 18,
	       "then bb18: the second big block waits for last");
	facts.usable_end = 4 * GiB + 512 * MiB;
	EXPECT(virtio_mem_bbm_plan_plug(&bbm, &geo, &facts, &bb_id) ==
	       VIRTIO_MEM_PLAN_STEP && bb_id == 17,
	       "bb17 when bb18 is beyond the usable region");
	facts.usable_end = 4 * GiB + 1 * GiB;
	virtio_mem_bbm_set_bb_state(&bbm, 16, VIRTIO_MEM_BBM_BB_ADDED);
	virtio_mem_bbm_set_bb_state(&bbm, 17, VIRTIO_MEM_BBM_BB_ADDED);
	virtio_mem_bbm_set_bb_state(&bbm, 18, VIRTIO_MEM_BBM_BB_ADDED);
	virtio_mem_bbm_set_bb_state(&bbm, 19, VIRTIO_MEM_BBM_BB_PLUGGED);
	EXPECT(virtio_mem_bbm_plan_plug(&bbm, &geo, &facts, &bb_id) ==
	       VIRTIO_MEM_PLAN_NO_SPACE, "usable region (1 GiB) full");
	facts.usable_end = 8 * GiB;
	facts.offline_bytes = 1 * GiB;
	EXPECT(virtio_mem_bbm_plan_plug(&bbm, &geo, &facts, &bb_id) ==
	       VIRTIO_MEM_PLAN_OFFLINE_LIMIT, "offline limit");
	facts.offline_bytes = 0;
	facts.kernel_free = 4 * MiB;
	EXPECT(virtio_mem_bbm_plan_plug(&bbm, &geo, &facts, &bb_id) ==
	       VIRTIO_MEM_PLAN_NO_MEMMAP, "no room for the memmap");
	facts.kernel_free = 1 * GiB;
	EXPECT(virtio_mem_bbm_plan_plug(&bbm, &geo, &facts, &bb_id) ==
	       VIRTIO_MEM_PLAN_STEP && bb_id == 20, "then bb20");
	EXPECT(bbm.bb_count[VIRTIO_MEM_BBM_BB_ADDED] == 3 &&
	       bbm.bb_count[VIRTIO_MEM_BBM_BB_PLUGGED] == 1 &&
	       bbm.bb_count[VIRTIO_MEM_BBM_BB_UNUSED] == 12, "counters");

	/* bb16: kernel zone, bb17: movable and busy, bb18: nothing online. */
	seen[0] = (struct virtio_mem_bbm_seen){ 2, 2, 10 };
	seen[1] = (struct virtio_mem_bbm_seen){ 2, 0, 100 };
	n = virtio_mem_bbm_unplug_order(&bbm, seen, true, cand, 16);
	EXPECT(n == 4 && cand[0].bb_id == 19 && cand[1].bb_id == 18 &&
	       cand[2].bb_id == 17 && cand[3].bb_id == 16,
	       "order: not added, offline, movable, kernel");
	EXPECT(!cand[0].sweep && !cand[1].sweep && !cand[2].sweep &&
	       !cand[3].sweep, "busy or not online: never swept");
	n = virtio_mem_bbm_unplug_order(&bbm, seen, false, cand, 16);
	EXPECT(n == 2 && cand[0].bb_id == 19 && cand[1].bb_id == 18,
	       "unplug_online=0: only what is not online");

	/* Seen free: swept, in either zone. */
	seen[0].busy_mib = 0;
	seen[1].busy_mib = 0;
	n = virtio_mem_bbm_unplug_order(&bbm, seen, true, cand, 16);
	EXPECT(n == 4 && cand[2].bb_id == 17 && cand[2].sweep &&
	       cand[3].bb_id == 16 && cand[3].sweep && !cand[1].sweep,
	       "idle online big blocks are swept");

	/* Among equals, the second big block goes first. */
	seen[0] = (struct virtio_mem_bbm_seen){ 2, 0, 0 };
	seen[2] = seen[1] = seen[0];
	n = virtio_mem_bbm_unplug_order(&bbm, seen, true, cand, 16);
	EXPECT(n == 4 && cand[0].bb_id == 19 && cand[1].bb_id == 17 &&
	       cand[2].bb_id == 18 && cand[3].bb_id == 16,
	       "idle movable: expect 19, 17, 18, 16, got %lu, %lu, %lu, %lu",
	       cand[0].bb_id, cand[1].bb_id, cand[2].bb_id, cand[3].bb_id);
	virtio_mem_bbm_destroy(&bbm);
	return true;
}

/*
 * The worker's retry policy.
 *
 * expect: waiting for what a notification ends (config change, onlining),
 * retrying with backoff for what time may end, starting over on a config
 * change, and stopping only for ERROR or a bookkeeping bug.
 */
static bool policy_decide(void)
{
	static const struct {
		enum virtio_mem_outcome outcome;
		enum virtio_mem_next next;
		enum virtio_mem_status status;
	} rows[] = {
		{ VIRTIO_MEM_OUTCOME_DONE, VIRTIO_MEM_NEXT_WAIT,
		  VIRTIO_MEM_STATUS_OK },
		{ VIRTIO_MEM_OUTCOME_IN_TRANSITION, VIRTIO_MEM_NEXT_WAIT,
		  VIRTIO_MEM_STATUS_WORKING },
		{ VIRTIO_MEM_OUTCOME_UNPLUG_ONLINE_OFF, VIRTIO_MEM_NEXT_WAIT,
		  VIRTIO_MEM_STATUS_UNPLUG_ONLINE_OFF },
		{ VIRTIO_MEM_OUTCOME_NO_SPACE, VIRTIO_MEM_NEXT_WAIT,
		  VIRTIO_MEM_STATUS_NO_SPACE },
		{ VIRTIO_MEM_OUTCOME_OFFLINE_LIMIT, VIRTIO_MEM_NEXT_WAIT,
		  VIRTIO_MEM_STATUS_OFFLINE_LIMIT },
		{ VIRTIO_MEM_OUTCOME_NACK, VIRTIO_MEM_NEXT_WAIT,
		  VIRTIO_MEM_STATUS_NACK },
		{ VIRTIO_MEM_OUTCOME_BUSY, VIRTIO_MEM_NEXT_RETRY,
		  VIRTIO_MEM_STATUS_BUSY },
		{ VIRTIO_MEM_OUTCOME_PLUG_ERROR, VIRTIO_MEM_NEXT_RETRY,
		  VIRTIO_MEM_STATUS_PLUG_ERROR },
		{ VIRTIO_MEM_OUTCOME_NOMEM, VIRTIO_MEM_NEXT_RETRY,
		  VIRTIO_MEM_STATUS_NOMEM },
		{ VIRTIO_MEM_OUTCOME_ADD_FAILED, VIRTIO_MEM_NEXT_RETRY,
		  VIRTIO_MEM_STATUS_ADD_FAILED },
		{ VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE, VIRTIO_MEM_NEXT_RETRY,
		  VIRTIO_MEM_STATUS_MEMORY_PRESSURE },
		{ VIRTIO_MEM_OUTCOME_UNMOVABLE, VIRTIO_MEM_NEXT_RETRY,
		  VIRTIO_MEM_STATUS_UNMOVABLE },
		{ VIRTIO_MEM_OUTCOME_FAILED, VIRTIO_MEM_NEXT_BROKEN,
		  VIRTIO_MEM_STATUS_BROKEN },
		{ VIRTIO_MEM_OUTCOME_BUG, VIRTIO_MEM_NEXT_BROKEN,
		  VIRTIO_MEM_STATUS_BROKEN },
		/* Not an outcome at all: a bug, so stop. */
		{ VIRTIO_MEM_OUTCOME_COUNT, VIRTIO_MEM_NEXT_BROKEN,
		  VIRTIO_MEM_STATUS_BROKEN },
	};
	enum virtio_mem_status status;
	bool seen[VIRTIO_MEM_OUTCOME_COUNT + 1] = { false };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		status = VIRTIO_MEM_STATUS_COUNT;
		EXPECT(virtio_mem_decide(rows[i].outcome, &status) == rows[i].next &&
		       status == rows[i].status, "outcome %d: expect next %d status %d, got status %d",
		       rows[i].outcome, rows[i].next, rows[i].status, status);
		seen[rows[i].outcome] = true;
	}
	status = VIRTIO_MEM_STATUS_COUNT;
	EXPECT(virtio_mem_decide(VIRTIO_MEM_OUTCOME_CONFIG_CHANGED, &status) ==
	       VIRTIO_MEM_NEXT_AGAIN && status == VIRTIO_MEM_STATUS_COUNT,
	       "config changed: start over, status left as it is");
	seen[VIRTIO_MEM_OUTCOME_CONFIG_CHANGED] = true;
	/* A new outcome needs a row here, and a decision. */
	for (i = 0; i < VIRTIO_MEM_OUTCOME_COUNT; i++)
		EXPECT(seen[i], "outcome %u has no row", i);
	return true;
}

/*
 * ERROR to a plug (Firecracker's refusal):
 *   requested_size unchanged since the plan: expect plug_error (back off);
 *   changed: expect config changed (start over at once).
 */
static bool policy_plug_error(void)
{
	struct virtio_mem_cfg seen = { .requested_size = 256 << 20 };
	struct virtio_mem_cfg now = seen;

	now.plugged_size = 2 << 20;
	EXPECT(virtio_mem_plug_error(&seen, &now) ==
	       VIRTIO_MEM_OUTCOME_PLUG_ERROR, "same request: plug error");
	now.requested_size = 0;
	EXPECT(virtio_mem_plug_error(&seen, &now) ==
	       VIRTIO_MEM_OUTCOME_CONFIG_CHANGED, "new request: config changed");
	return true;
}

/* memmap_on_memory only where the memmap is exactly the first subblock. */
static bool policy_memmap_sbs(void)
{
	static const struct {
		const char *what;
		struct virtio_mem_geo geo;
		u64 memmap;
		unsigned int sbs;	/* expect */
	} rows[] = {
		{ "128 MiB blocks, 2 MiB subblocks, 2 MiB memmap",
		  { .mb_size = 128 * MiB, .sb_size = 2 * MiB, .sbs_per_mb = 64 },
		  2 * MiB, 1 },
		{ "4 MiB subblocks: half memmap, half memory",
		  { .mb_size = 128 * MiB, .sb_size = 4 * MiB, .sbs_per_mb = 32 },
		  2 * MiB, 0 },
		{ "2 GiB blocks: a 32 MiB memmap over 16 subblocks",
		  { .mb_size = 2 * GiB, .sb_size = 2 * MiB, .sbs_per_mb = 1024 },
		  32 * MiB, 0 },
		{ "Big Block Mode",
		  { .mb_size = 128 * MiB, .sb_size = 2 * MiB, .sbs_per_mb = 64,
		    .bbm = true },
		  2 * MiB, 0 },
	};
	unsigned int i, got;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		got = virtio_mem_memmap_sbs(&rows[i].geo, rows[i].memmap);
		EXPECT(got == rows[i].sbs, "%s: expect %u, got %u",
		       rows[i].what, rows[i].sbs, got);
	}
	return true;
}

/* Big Block Mode: any memmap of whole pageblocks that leaves memory. */
static bool policy_bbm_memmap_size(void)
{
	static const struct {
		const char *what;
		struct virtio_mem_geo geo;
		u64 memmap, pageblock;
		u64 size;	/* expect */
	} rows[] = {
		{ "x86-64: 128 MiB blocks, a 2 MiB memmap, 2 MiB pageblocks",
		  { .mb_size = 128 * MiB, .bb_size = 512 * MiB, .bbm = true },
		  2 * MiB, 2 * MiB, 2 * MiB },
		{ "2 GiB blocks: a 32 MiB memmap",
		  { .mb_size = 2 * GiB, .bb_size = 4 * GiB, .bbm = true },
		  32 * MiB, 2 * MiB, 32 * MiB },
		{ "arm64 16 KiB pages: a 2 MiB memmap, 32 MiB pageblocks",
		  { .mb_size = 512 * MiB, .bb_size = 1 * GiB, .bbm = true },
		  2 * MiB, 32 * MiB, 0 },
		{ "a memmap as big as the block",
		  { .mb_size = 2 * MiB, .bb_size = 4 * MiB, .bbm = true },
		  2 * MiB, 2 * MiB, 0 },
		{ "Sub Block Mode",
		  { .mb_size = 128 * MiB, .sb_size = 2 * MiB, .sbs_per_mb = 64 },
		  2 * MiB, 2 * MiB, 0 },
	};
	unsigned int i;
	u64 got;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		got = virtio_mem_bbm_memmap_size(&rows[i].geo, rows[i].memmap,
						 rows[i].pageblock);
		EXPECT(got == rows[i].size, "%s: expect %llu, got %llu",
		       rows[i].what, (unsigned long long)rows[i].size,
		       (unsigned long long)got);
	}
	return true;
}

/* Only suspend-to-RAM with plugged memory needs PERSISTENT_SUSPEND. */
static bool policy_may_suspend(void)
{
	static const struct {
		bool to_idle;
		u64 plugged;
		bool persistent;
		bool may;	/* expect */
	} rows[] = {
		{ true, 1 * GiB, false, true },
		{ true, 0, false, true },
		{ false, 0, false, true },
		{ false, 2 * MiB, false, false },
		{ false, 2 * MiB, true, true },
		{ true, 2 * MiB, true, true },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rows); i++)
		EXPECT(virtio_mem_may_suspend(rows[i].to_idle, rows[i].plugged,
					      rows[i].persistent) ==
		       rows[i].may, "row %u: expect %d", i, (int)rows[i].may);
	return true;
}

const struct vmu_case vmu_policy_cases[] = {
	{ "policy: suspend needs PERSISTENT_SUSPEND only for RAM with memory",
	  policy_may_suspend },
	{ "policy: memmap_on_memory subblocks", policy_memmap_sbs },
	{ "policy: memmap_on_memory in Big Block Mode", policy_bbm_memmap_size },
	{ "policy: the worker's retry policy", policy_decide },
	{ "policy: ERROR to a plug backs off, or starts over on a new request",
	  policy_plug_error },
	{ "policy: Big Block Mode geometry, plug and unplug order",
	  policy_bbm },
	{ "policy: cfg_check names the bad field",
	  policy_cfg_check_names_the_bad_field },
	{ "policy: cfg_check_update names the changed field",
	  policy_cfg_update_names_the_changed_field },
	{ "policy: geometry cuts the region into whole memory blocks",
	  policy_geo_cuts_the_region },
	{ "policy: plan_plug order, clipping, offline limit",
	  policy_plan_plug_order },
	{ "policy: unplug order", policy_unplug_order },
	{ "policy: unplug order, the second block first among equals",
	  policy_unplug_order_gap_first },
	{ "policy: may_take (OOM guard)", policy_may_take },
	{ NULL, NULL }
};
