// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_mem_state.c: block and subblock bookkeeping. Pictures: see unit.h.
 */
#include "unit.h"

#define FIRST	100UL	/* first_mb_id of the tests' devices */

static bool counters_match(const struct virtio_mem_sbm *sbm)
{
	unsigned long count[VIRTIO_MEM_SBM_MB_COUNT] = { 0 }, mb_id, plugged = 0;
	unsigned int s;

	for (mb_id = sbm->first_mb_id; mb_id < sbm->next_mb_id; mb_id++) {
		count[virtio_mem_sbm_get_mb_state(sbm, mb_id)]++;
		plugged += virtio_mem_sbm_nr_sb_plugged(sbm, mb_id);
	}
	for (s = 0; s < VIRTIO_MEM_SBM_MB_COUNT; s++)
		if (count[s] != sbm->mb_count[s])
			return false;
	return plugged == sbm->nr_sbs_plugged;
}

/* init: an empty range, or fewer than 2 subblocks, are refused. */
static bool state_init_refuses_bad_ranges(void)
{
	static const struct {
		unsigned long first, last;
		unsigned int sbs;
		int expect;
	} rows[] = {
		{ 10, 9, 8, -EINVAL },	/* expect: last below first */
		{ 10, 10, 1, -EINVAL },	/* expect: one subblock per block */
		{ 10, 10, 0, -EINVAL },	/* expect: none */
		{ 10, 10, 2, 0 },	/* expect: one block of two is fine */
		{ 0, 1UL << 40, 64, 0 },	/* expect: huge, costs nothing */
	};
	struct virtio_mem_sbm sbm;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		EXPECT(virtio_mem_sbm_init(&sbm, rows[i].first, rows[i].last,
					   rows[i].sbs) == rows[i].expect,
		       "row %u", i);
		EXPECT(!sbm.mb_states && !sbm.sb_plugged && !sbm.nr_mbs_alloc,
		       "row %u: allocated at init", i);
		virtio_mem_sbm_destroy(&sbm);
	}
	return true;
}

/*
 * new_mb hands out blocks lowest first, each UNUSED, until last_mb_id:
 *   [100 101 102] -> 100, 101, 102, then -ENOSPC
 */
static bool state_new_mb_until_full(void)
{
	struct virtio_mem_sbm sbm;
	unsigned long mb_id, i;

	virtio_mem_sbm_init(&sbm, FIRST, FIRST + 2, 8);
	for (i = 0; i < 3; i++) {
		EXPECT(!virtio_mem_sbm_new_mb(&sbm, &mb_id), "block %lu", i);
		EXPECT(mb_id == FIRST + i, "expect block %lu, got %lu",
		       FIRST + i, mb_id);
		EXPECT(sbm.mb_count[VIRTIO_MEM_SBM_MB_UNUSED] == i + 1,
		       "expect %lu UNUSED", i + 1);
	}
	EXPECT(virtio_mem_sbm_new_mb(&sbm, &mb_id) == -ENOSPC,
	       "expect -ENOSPC once all are used");
	EXPECT(sbm.next_mb_id == FIRST + 3, "next_mb_id moved on a failure");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/*
 * Growth keeps what was there: 100 blocks of 64 subblocks (several steps
 * of growth, bitmaps spanning words), every third subblock plugged,
 * still so after growing. A failed allocation leaves everything as it was.
 */
static bool state_grow_keeps_content(void)
{
	struct virtio_mem_sbm sbm;
	unsigned long mb_id, i;
	unsigned int sb;

	virtio_mem_sbm_init(&sbm, FIRST, FIRST + 99, 64);
	for (i = 0; i < 100; i++) {
		if (i == 50) {
			unsigned long alloc = sbm.nr_mbs_alloc;

			/* Force a grow that fails. */
			while (sbm.next_mb_id - FIRST < sbm.nr_mbs_alloc)
				EXPECT(!virtio_mem_sbm_new_mb(&sbm, &mb_id),
				       "filling up");
			kstub_fail_allocs = 1;
			EXPECT(virtio_mem_sbm_new_mb(&sbm, &mb_id) == -ENOMEM,
			       "expect -ENOMEM when growing fails");
			EXPECT(sbm.nr_mbs_alloc == alloc, "alloc changed");
			kstub_fail_allocs = 0;
			/* The second allocation (the bitmap) failing. */
			kstub_fail_nth = 2;
			EXPECT(virtio_mem_sbm_new_mb(&sbm, &mb_id) == -ENOMEM,
			       "expect -ENOMEM when the bitmap fails");
			kstub_fail_nth = 0;
			EXPECT(sbm.nr_mbs_alloc == alloc &&
			       sbm.next_mb_id - FIRST == alloc,
			       "a failed grow changed the state");
			break;
		}
		EXPECT(!virtio_mem_sbm_new_mb(&sbm, &mb_id), "block %lu", i);
		for (sb = i % 3; sb < 64; sb += 3)
			virtio_mem_sbm_set_sb_plugged(&sbm, mb_id, sb, 1);
	}
	while (sbm.next_mb_id <= sbm.last_mb_id)
		EXPECT(!virtio_mem_sbm_new_mb(&sbm, &mb_id), "filling up");
	EXPECT(sbm.nr_mbs_alloc == 100, "expect growth capped at the range");
	for (i = 0; i < 50; i++)
		for (sb = 0; sb < 64; sb++)
			EXPECT(virtio_mem_sbm_test_sb_plugged(&sbm, FIRST + i,
							      sb, 1) ==
			       (sb % 3 == i % 3),
			       "mb %lu sb %u lost in growth", FIRST + i, sb);
	EXPECT(counters_match(&sbm), "counters");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/* The setter keeps every per-state counter right through all transitions. */
static bool state_counters_follow_every_transition(void)
{
	struct virtio_mem_sbm sbm;
	unsigned long mb_id;
	unsigned int from, to;

	virtio_mem_sbm_init(&sbm, FIRST, FIRST, 8);
	virtio_mem_sbm_new_mb(&sbm, &mb_id);
	for (from = 0; from < VIRTIO_MEM_SBM_MB_COUNT; from++) {
		for (to = 0; to < VIRTIO_MEM_SBM_MB_COUNT; to++) {
			virtio_mem_sbm_set_mb_state(&sbm, mb_id, from);
			virtio_mem_sbm_set_mb_state(&sbm, mb_id, to);
			EXPECT(sbm.mb_count[to] == 1, "%u -> %u: count of %u",
			       from, to, to);
			EXPECT(counters_match(&sbm), "%u -> %u", from, to);
		}
	}
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/* Out-of-range calls warn and change nothing. */
static bool state_bad_calls_warn_and_change_nothing(void)
{
	static const char *const pic[] = { "K:####....", NULL };
	struct virtio_mem_sbm sbm;
	char before[64], after[64];

	EXPECT(vmu_build(&sbm, FIRST, FIRST + 3, 8, pic), "build");
	vmu_render(&sbm, before, sizeof(before));
	kstub_warn_quiet = true;
	virtio_mem_sbm_set_mb_state(&sbm, FIRST + 1,
				    VIRTIO_MEM_SBM_MB_KERNEL);	/* never used */
	virtio_mem_sbm_set_mb_state(&sbm, FIRST, VIRTIO_MEM_SBM_MB_COUNT);
	virtio_mem_sbm_set_sb_plugged(&sbm, FIRST, 6, 3);	/* past the end */
	virtio_mem_sbm_set_sb_plugged(&sbm, FIRST, 0, 0);	/* nothing */
	virtio_mem_sbm_set_sb_unplugged(&sbm, FIRST + 1, 0, 1);
	virtio_mem_sbm_set_sb_unplugged(&sbm, FIRST - 1, 0, 1);
	kstub_warn_quiet = false;
	EXPECT(kstub_warnings == 6, "expect 6 warnings, got %lu",
	       kstub_warnings);
	kstub_warnings = 0;
	vmu_render(&sbm, after, sizeof(after));
	EXPECT(!strcmp(before, after), "expect '%s', got '%s'", before, after);
	EXPECT(sbm.nr_sbs_plugged == 4, "nr_sbs_plugged");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/*
 * Plugging what is plugged, unplugging what is not: nr_sbs_plugged counts
 * only real changes.
 *   K:##..#... + plug 1..4  -> K:#####...  (5)
 *   K:#####... - unplug 3..7 -> K:###.....  (3)
 */
static bool state_nr_sbs_plugged_counts_changes_only(void)
{
	static const char *const pic[] = { "K:##..#...", NULL };
	struct virtio_mem_sbm sbm;
	char buf[64];

	EXPECT(vmu_build(&sbm, FIRST, FIRST, 8, pic), "build");
	virtio_mem_sbm_set_sb_plugged(&sbm, FIRST, 1, 4);
	EXPECT(sbm.nr_sbs_plugged == 5, "expect 5, got %lu (%s)",
	       sbm.nr_sbs_plugged, vmu_render(&sbm, buf, sizeof(buf)));
	virtio_mem_sbm_set_sb_unplugged(&sbm, FIRST, 3, 5);
	EXPECT(sbm.nr_sbs_plugged == 3, "expect 3, got %lu",
	       sbm.nr_sbs_plugged);
	EXPECT(!strcmp(vmu_render(&sbm, buf, sizeof(buf)), "K:###....."),
	       "got %s", buf);
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/* Full or partial follows from the bits; zone from the arguments. */
static bool state_for_derives_full_and_zone(void)
{
	static const struct {
		const char *bits;
		bool online, movable;
		enum virtio_mem_sbm_mb_state expect;
	} rows[] = {
		{ "U:########", false, false, VIRTIO_MEM_SBM_MB_OFFLINE },
		{ "U:#######.", false, false, VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL },
		{ "U:........", false, true, VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL },
		{ "U:########", true, false, VIRTIO_MEM_SBM_MB_KERNEL },
		{ ".:.#######", true, false, VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL },
		{ "U:########", true, true, VIRTIO_MEM_SBM_MB_MOVABLE },
		{ "U:#.......", true, true, VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL },
	};
	struct virtio_mem_sbm sbm;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *pic[] = { rows[i].bits, NULL };
		char fixed[16];

		snprintf(fixed, sizeof(fixed), "U%s", rows[i].bits + 1);
		pic[0] = fixed;
		EXPECT(vmu_build(&sbm, FIRST, FIRST, 8, pic), "row %u", i);
		EXPECT(virtio_mem_sbm_state_for(&sbm, FIRST, rows[i].online,
						rows[i].movable) ==
		       rows[i].expect, "row %u (%s): expect state %d", i,
		       rows[i].bits, rows[i].expect);
		virtio_mem_sbm_destroy(&sbm);
	}
	return true;
}

/*
 * refresh_mb_state re-derives full/partial of added blocks, keeps the zone,
 * leaves blocks that are not added alone:
 *   M:######## -unplug 0-> M:.####### (MOVABLE_PARTIAL)
 *   P:##...... -> P (not added)
 */
static bool state_refresh_keeps_zone(void)
{
	static const char *const pic[] = {
		"M:########", "K:#######.", "O:########", "P:##......", NULL
	};
	struct virtio_mem_sbm sbm;
	char buf[64];

	EXPECT(vmu_build(&sbm, FIRST, FIRST + 3, 8, pic), "build");
	virtio_mem_sbm_set_sb_unplugged(&sbm, FIRST, 0, 1);
	virtio_mem_sbm_set_sb_plugged(&sbm, FIRST + 1, 7, 1);
	virtio_mem_sbm_set_sb_unplugged(&sbm, FIRST + 2, 7, 1);
	virtio_mem_sbm_set_sb_unplugged(&sbm, FIRST + 3, 0, 1);
	for (unsigned long mb = FIRST; mb <= FIRST + 3; mb++)
		virtio_mem_sbm_refresh_mb_state(&sbm, mb);
	EXPECT(virtio_mem_sbm_get_mb_state(&sbm, FIRST) ==
	       VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL, "expect movable partial");
	EXPECT(virtio_mem_sbm_get_mb_state(&sbm, FIRST + 1) ==
	       VIRTIO_MEM_SBM_MB_KERNEL, "expect kernel full");
	EXPECT(virtio_mem_sbm_get_mb_state(&sbm, FIRST + 2) ==
	       VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL, "expect offline partial");
	EXPECT(virtio_mem_sbm_get_mb_state(&sbm, FIRST + 3) ==
	       VIRTIO_MEM_SBM_MB_PLUGGED, "expect plugged, untouched");
	EXPECT(!strcmp(vmu_render(&sbm, buf, sizeof(buf)),
		       "M:.####### K:######## O:#######. P:.#......"),
	       "got %s", buf);
	EXPECT(counters_match(&sbm), "counters");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/* Runs of plugged and unplugged subblocks, from a starting point. */
static bool state_find_runs(void)
{
	static const struct {
		const char *pic;
		unsigned int from;
		bool plugged;
		unsigned int sb, count;	/* expect */
	} rows[] = {
		{ "K:##..#...", 0, false, 2, 2 },
		{ "K:##..#...", 4, false, 5, 3 },
		{ "K:##..#...", 5, false, 5, 3 },
		{ "K:##..#...", 0, true, 0, 2 },
		{ "K:##..#...", 1, true, 1, 1 },
		{ "K:##..#...", 2, true, 4, 1 },
		{ "K:##..#...", 7, true, 10, 0 },	/* none: sbs_per_mb */
		{ "K:########", 0, false, 8, 0 },
		{ "K:........", 3, false, 3, 5 },
		{ "K:........", 8, false, 8, 0 },	/* from at the end */
		{ "K:........", 99, true, 8, 0 },
	};
	struct virtio_mem_sbm sbm;
	unsigned int i, sb, count, exp_sb, exp_count;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *pic[] = { rows[i].pic, NULL };

		EXPECT(vmu_build(&sbm, FIRST, FIRST, 8, pic), "row %u", i);
		exp_sb = rows[i].sb > 8 ? 8 : rows[i].sb;
		exp_count = rows[i].count;
		sb = rows[i].plugged ?
		     virtio_mem_sbm_find_plugged(&sbm, FIRST, rows[i].from,
						 &count) :
		     virtio_mem_sbm_find_unplugged(&sbm, FIRST, rows[i].from,
						   &count);
		EXPECT(sb == exp_sb && count == exp_count,
		       "row %u: %s from %u, %s: expect %u+%u, got %u+%u", i,
		       rows[i].pic, rows[i].from,
		       rows[i].plugged ? "plugged" : "unplugged", exp_sb,
		       exp_count, sb, count);
		virtio_mem_sbm_destroy(&sbm);
	}
	/* A block never used: nothing plugged, and no run to find. */
	virtio_mem_sbm_init(&sbm, FIRST, FIRST + 1, 8);
	EXPECT(virtio_mem_sbm_test_sb_unplugged(&sbm, FIRST + 1, 0, 8),
	       "never-used block reads as unplugged");
	EXPECT(!virtio_mem_sbm_test_sb_plugged(&sbm, FIRST + 1, 0, 1),
	       "never-used block reads as plugged");
	EXPECT(virtio_mem_sbm_find_plugged(&sbm, FIRST + 1, 0, &count) == 8 &&
	       !count, "run in a never-used block");
	EXPECT(!virtio_mem_sbm_nr_sb_plugged(&sbm, FIRST + 5), "beyond");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/* The last run of plugged subblocks below a point (unplug goes top down). */
static bool state_find_plugged_rev(void)
{
	static const struct {
		const char *pic;
		unsigned int before;
		unsigned int sb, count;	/* expect */
	} rows[] = {
		{ "K:##..##..", 8, 4, 2 },
		{ "K:##..##..", 5, 4, 1 },
		{ "K:##..##..", 4, 0, 2 },
		{ "K:##..##..", 1, 0, 1 },
		{ "K:##..##..", 0, 8, 0 },
		{ "K:########", 99, 0, 8 },
		{ "K:........", 8, 8, 0 },
	};
	struct virtio_mem_sbm sbm;
	unsigned int i, sb, count;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *pic[] = { rows[i].pic, NULL };

		EXPECT(vmu_build(&sbm, FIRST, FIRST, 8, pic), "row %u", i);
		sb = virtio_mem_sbm_find_plugged_rev(&sbm, FIRST,
						     rows[i].before, &count);
		EXPECT(sb == rows[i].sb && count == rows[i].count,
		       "row %u: %s below %u: expect %u+%u, got %u+%u", i,
		       rows[i].pic, rows[i].before, rows[i].sb, rows[i].count,
		       sb, count);
		virtio_mem_sbm_destroy(&sbm);
	}
	return true;
}

/*
 * The iterator visits the used blocks in one state, lowest first:
 *   O:#### K:#### O:##.. O:#### -  ->  OFFLINE: 100, 103
 */
static bool state_next_mb_iterates_one_state(void)
{
	static const char *const pic[] = {
		"O:####", "K:####", "O:##..", "O:####", "-", NULL
	};
	struct virtio_mem_sbm sbm;
	unsigned long mb_id = VIRTIO_MEM_SBM_NO_MB, seen[4], n = 0;

	EXPECT(vmu_build(&sbm, FIRST, FIRST + 4, 4, pic), "build");
	while (virtio_mem_sbm_next_mb(&sbm, VIRTIO_MEM_SBM_MB_OFFLINE, &mb_id))
		if (n < 4)
			seen[n++] = mb_id;
	EXPECT(n == 2 && seen[0] == FIRST && seen[1] == FIRST + 3,
	       "expect 100, 103; got %lu blocks", n);
	mb_id = VIRTIO_MEM_SBM_NO_MB;
	EXPECT(!virtio_mem_sbm_next_mb(&sbm, VIRTIO_MEM_SBM_MB_MOVABLE, &mb_id),
	       "expect no MOVABLE block");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/*
 * ... and highest first:  O:#### K:#### O:##.. O:####  ->  103, 100
 */
static bool state_prev_mb_iterates_backwards(void)
{
	static const char *const pic[] = {
		"O:####", "K:####", "O:##..", "O:####", NULL
	};
	struct virtio_mem_sbm sbm;
	unsigned long mb_id = VIRTIO_MEM_SBM_NO_MB, seen[4], n = 0;

	EXPECT(vmu_build(&sbm, FIRST, FIRST + 4, 4, pic), "build");
	while (virtio_mem_sbm_prev_mb(&sbm, VIRTIO_MEM_SBM_MB_OFFLINE, &mb_id))
		if (n < 4)
			seen[n++] = mb_id;
	EXPECT(n == 2 && seen[0] == FIRST + 3 && seen[1] == FIRST,
	       "expect 103, 100; got %lu blocks", n);
	mb_id = VIRTIO_MEM_SBM_NO_MB;
	EXPECT(!virtio_mem_sbm_prev_mb(&sbm, VIRTIO_MEM_SBM_MB_MOVABLE, &mb_id),
	       "expect no MOVABLE block");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/* test_sb_unplugged on used blocks: every subblock of the range. */
static bool state_test_unplugged_ranges(void)
{
	static const char *const pic[] = { "K:#...#...", NULL };
	struct virtio_mem_sbm sbm;

	EXPECT(vmu_build(&sbm, FIRST, FIRST + 1, 8, pic), "build");
	EXPECT(virtio_mem_sbm_test_sb_unplugged(&sbm, FIRST, 1, 3),
	       "expect 1..3 unplugged");
	EXPECT(!virtio_mem_sbm_test_sb_unplugged(&sbm, FIRST, 1, 4),
	       "expect 1..4 not all unplugged");
	EXPECT(!virtio_mem_sbm_test_sb_unplugged(&sbm, FIRST, 7, 2),
	       "expect a range past the block refused");
	EXPECT(!virtio_mem_sbm_test_sb_plugged(&sbm, FIRST, 0, 2),
	       "expect 0..1 not all plugged");
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

static unsigned long changes, last_old, last_new;

static void count_change(void *owner, unsigned long mb_id,
			 enum virtio_mem_sbm_mb_state old,
			 enum virtio_mem_sbm_mb_state state)
{
	changes++;
	last_old = old;
	last_new = state;
}

/* The change hook hears every real change, and only those. */
static bool state_change_hook_hears_real_changes(void)
{
	struct virtio_mem_sbm sbm;
	unsigned long mb_id;

	virtio_mem_sbm_init(&sbm, FIRST, FIRST, 8);
	sbm.changed = count_change;
	changes = 0;
	virtio_mem_sbm_new_mb(&sbm, &mb_id);
	virtio_mem_sbm_set_mb_state(&sbm, mb_id, VIRTIO_MEM_SBM_MB_OFFLINE);
	virtio_mem_sbm_set_mb_state(&sbm, mb_id, VIRTIO_MEM_SBM_MB_OFFLINE);
	virtio_mem_sbm_set_mb_state(&sbm, mb_id, VIRTIO_MEM_SBM_MB_MOVABLE);
	EXPECT(changes == 2 && last_old == VIRTIO_MEM_SBM_MB_OFFLINE &&
	       last_new == VIRTIO_MEM_SBM_MB_MOVABLE,
	       "expect 2 changes, got %lu", changes);
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

/*
 * The hold list: a block onlined chunk by chunk counts once; the ninth
 * block does not fit; forgetting one makes room and keeps the others.
 */
static bool state_hold_list(void)
{
	struct virtio_mem_sbm_hold hold = { .active = true };
	unsigned long mb_id;

	for (mb_id = FIRST; mb_id < FIRST + VIRTIO_MEM_SBM_HOLD_MAX; mb_id++) {
		EXPECT(virtio_mem_sbm_hold_add(&hold, mb_id) &&
		       virtio_mem_sbm_hold_add(&hold, mb_id),
		       "expect block %lu held", mb_id);
	}
	EXPECT(hold.nr == VIRTIO_MEM_SBM_HOLD_MAX, "expect %d held, got %u",
	       VIRTIO_MEM_SBM_HOLD_MAX, hold.nr);
	EXPECT(!virtio_mem_sbm_hold_add(&hold, FIRST + 100),
	       "expect a full list to refuse another block");
	EXPECT(virtio_mem_sbm_hold_add(&hold, FIRST + 7),
	       "expect the last block held still to count as held");
	EXPECT(virtio_mem_sbm_hold_forget(&hold, FIRST + 2) &&
	       !virtio_mem_sbm_hold_forget(&hold, FIRST + 2) &&
	       !virtio_mem_sbm_hold_test(&hold, FIRST + 2),
	       "expect block 2 forgotten once");
	for (mb_id = FIRST; mb_id < FIRST + VIRTIO_MEM_SBM_HOLD_MAX; mb_id++)
		EXPECT(virtio_mem_sbm_hold_test(&hold, mb_id) ==
		       (mb_id != FIRST + 2), "expect block %lu %s", mb_id,
		       mb_id != FIRST + 2 ? "held" : "not held");
	EXPECT(virtio_mem_sbm_hold_add(&hold, FIRST + 100) &&
	       hold.nr == VIRTIO_MEM_SBM_HOLD_MAX,
	       "expect the freed slot to take a new block");
	return true;
}

/* next_run walks "##..#.##" as ## at 0, # at 4, ## at 6; the gaps too. */
static bool state_next_run_walks_runs(void)
{
	static const char *const pic[] = { "K:##..#.##", NULL };
	static const unsigned int want_p[][2] = { { 0, 2 }, { 4, 1 }, { 6, 2 } };
	static const unsigned int want_u[][2] = { { 2, 2 }, { 5, 1 } };
	unsigned int sb_id = 0, count = 0, n = 0;
	struct virtio_mem_sbm sbm;

	EXPECT(vmu_build(&sbm, FIRST, FIRST, 8, pic), "picture");
	while (virtio_mem_sbm_next_run(&sbm, FIRST, true, &sb_id, &count)) {
		EXPECT(n < 3 && sb_id == want_p[n][0] && count == want_p[n][1],
		       "expect plugged run %u at %u+%u, got %u+%u", n,
		       n < 3 ? want_p[n][0] : 0, n < 3 ? want_p[n][1] : 0,
		       sb_id, count);
		n++;
	}
	EXPECT(n == 3, "expect 3 plugged runs, got %u", n);
	sb_id = 0, count = 0, n = 0;
	while (virtio_mem_sbm_next_run(&sbm, FIRST, false, &sb_id, &count)) {
		EXPECT(n < 2 && sb_id == want_u[n][0] && count == want_u[n][1],
		       "expect unplugged run %u at %u+%u, got %u+%u", n,
		       n < 2 ? want_u[n][0] : 0, n < 2 ? want_u[n][1] : 0,
		       sb_id, count);
		n++;
	}
	EXPECT(n == 2, "expect 2 unplugged runs, got %u", n);
	virtio_mem_sbm_destroy(&sbm);
	return true;
}

const struct vmu_case vmu_state_cases[] = {
	{ "state: next_run walks runs", state_next_run_walks_runs },
	{ "state: hold list", state_hold_list },
	{ "state: prev_mb iterates backwards",
	  state_prev_mb_iterates_backwards },
	{ "state: test_sb_unplugged over ranges", state_test_unplugged_ranges },
	{ "state: change hook hears real changes only",
	  state_change_hook_hears_real_changes },
	{ "state: init refuses bad ranges", state_init_refuses_bad_ranges },
	{ "state: new_mb until full", state_new_mb_until_full },
	{ "state: growth keeps content, failed growth changes nothing",
	  state_grow_keeps_content },
	{ "state: counters follow every transition",
	  state_counters_follow_every_transition },
	{ "state: bad calls warn and change nothing",
	  state_bad_calls_warn_and_change_nothing },
	{ "state: nr_sbs_plugged counts changes only",
	  state_nr_sbs_plugged_counts_changes_only },
	{ "state: state_for derives full/partial and zone",
	  state_for_derives_full_and_zone },
	{ "state: refresh keeps the zone, leaves non-added blocks",
	  state_refresh_keeps_zone },
	{ "state: find runs", state_find_runs },
	{ "state: find_plugged_rev", state_find_plugged_rev },
	{ "state: next_mb iterates one state",
	  state_next_mb_iterates_one_state },
	{ NULL, NULL }
};
