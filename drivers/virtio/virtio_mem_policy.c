// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: decisions. Config validation, geometry and what to plug next.
 *
 * Nothing here sleeps, allocates or talks to the device: the worker feeds
 * in state and facts and acts on the answer, and the userspace harness
 * does the same against its models.
 */

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/sort.h>

#include "virtio_mem_policy.h"

static int virtio_mem_problem(struct virtio_mem_cfg_problem *problem,
			      const char *field, u64 value, const char *why)
{
	problem->field = field;
	problem->value = value;
	problem->why = why;
	return -EINVAL;
}

/* The rules every size field follows, whatever the moment. */
static int virtio_mem_cfg_check_sizes(const struct virtio_mem_cfg *cfg,
				      struct virtio_mem_cfg_problem *problem)
{
	const u64 bs = cfg->block_size;

	if (cfg->usable_region_size % bs)
		return virtio_mem_problem(problem, "usable_region_size",
					  cfg->usable_region_size,
					  "not a multiple of block_size");
	if (cfg->usable_region_size > cfg->region_size)
		return virtio_mem_problem(problem, "usable_region_size",
					  cfg->usable_region_size,
					  "larger than region_size");
	if (cfg->plugged_size % bs)
		return virtio_mem_problem(problem, "plugged_size",
					  cfg->plugged_size,
					  "not a multiple of block_size");
	if (cfg->plugged_size > cfg->region_size)
		return virtio_mem_problem(problem, "plugged_size",
					  cfg->plugged_size,
					  "larger than region_size");
	if (cfg->requested_size % bs)
		return virtio_mem_problem(problem, "requested_size",
					  cfg->requested_size,
					  "not a multiple of block_size");
	if (cfg->requested_size > cfg->region_size)
		return virtio_mem_problem(problem, "requested_size",
					  cfg->requested_size,
					  "larger than region_size");
	return 0;
}

/**
 * virtio_mem_cfg_check() - validate a device config at probe
 * @cfg: the config
 * @page_size: the CPU page size
 * @problem: filled in when the config is refused
 *
 * Return: 0 if the driver can work with @cfg, else -EINVAL.
 */
int virtio_mem_cfg_check(const struct virtio_mem_cfg *cfg, u64 page_size,
			 struct virtio_mem_cfg_problem *problem)
{
	const u64 bs = cfg->block_size;

	if (!bs || !is_power_of_2(bs))
		return virtio_mem_problem(problem, "block_size", bs,
					  "not a power of two");
	if (bs < page_size)
		return virtio_mem_problem(problem, "block_size", bs,
					  "smaller than a page");
	if (cfg->addr % bs)
		return virtio_mem_problem(problem, "addr", cfg->addr,
					  "not a multiple of block_size");
	if (!cfg->region_size)
		return virtio_mem_problem(problem, "region_size", 0,
					  "empty region");
	if (cfg->region_size % bs)
		return virtio_mem_problem(problem, "region_size",
					  cfg->region_size,
					  "not a multiple of block_size");
	if (cfg->addr + cfg->region_size < cfg->addr)
		return virtio_mem_problem(problem, "region_size",
					  cfg->region_size,
					  "region wraps around the address space");
	return virtio_mem_cfg_check_sizes(cfg, problem);
}

/**
 * virtio_mem_cfg_check_update() - validate a config the device changed
 * @old: the config checked before
 * @cfg: the new one
 * @problem: filled in when the new config is refused
 *
 * Only usable_region_size, plugged_size and requested_size may change.
 *
 * Return: 0 if @cfg is acceptable, else -EINVAL.
 */
int virtio_mem_cfg_check_update(const struct virtio_mem_cfg *old,
				const struct virtio_mem_cfg *cfg,
				struct virtio_mem_cfg_problem *problem)
{
	if (cfg->block_size != old->block_size)
		return virtio_mem_problem(problem, "block_size",
					  cfg->block_size, "changed");
	if (cfg->addr != old->addr)
		return virtio_mem_problem(problem, "addr", cfg->addr,
					  "changed");
	if (cfg->region_size != old->region_size)
		return virtio_mem_problem(problem, "region_size",
					  cfg->region_size, "changed");
	return virtio_mem_cfg_check_sizes(cfg, problem);
}

/**
 * virtio_mem_memmap_sbs() - subblocks that hold a memory block's own memmap
 * @geo: geometry
 * @memmap_size: bytes of memmap the kernel puts at the start of a memory
 *	block added with memmap_on_memory
 *
 * Only where the memmap fills exactly the first subblock (x86-64 with the
 * usual 128 MiB memory blocks and 2 MiB subblocks): then no subblock is
 * part memmap, part memory for the buddy, and every first plug of a new
 * block (which starts at subblock 0) covers it.
 *
 * Return: 1, or 0 when the memmap must come from elsewhere.
 */
unsigned int virtio_mem_memmap_sbs(const struct virtio_mem_geo *geo,
				   u64 memmap_size)
{
	return !geo->bbm && geo->sbs_per_mb > 1 &&
	       memmap_size == geo->sb_size;
}

/**
 * virtio_mem_bbm_memmap_size() - bytes of each memory block that hold its
 *	own memmap in Big Block Mode
 * @geo: geometry
 * @memmap_size: bytes of memmap the kernel puts at the start of a memory
 *	block added with memmap_on_memory
 * @pageblock_size: bytes in a pageblock
 *
 * A big block is plugged and added whole, so the memmap need not match
 * any device block; the kernel itself carries it only in whole
 * pageblocks, and must leave memory for the buddy.
 *
 * Return: @memmap_size, or 0 when the memmap must come from elsewhere.
 */
u64 virtio_mem_bbm_memmap_size(const struct virtio_mem_geo *geo,
			       u64 memmap_size, u64 pageblock_size)
{
	if (!geo->bbm || !memmap_size || !pageblock_size ||
	    memmap_size % pageblock_size || memmap_size >= geo->mb_size)
		return 0;
	return memmap_size;
}

/**
 * virtio_mem_offline_limit() - how much added memory may sit offline
 * @geo: geometry
 * @base: the limit the driver wants, bytes
 *
 * At least two of the units memory is added in (memory blocks in SBM, big
 * blocks in BBM): with less, BBM could never add a big block at all, and
 * neither mode could add the next unit while user space onlines the last.
 *
 * Return: bytes.
 */
u64 virtio_mem_offline_limit(const struct virtio_mem_geo *geo, u64 base)
{
	return max_t(u64, base, 2 * (geo->bbm ? geo->bb_size : geo->mb_size));
}

/**
 * virtio_mem_may_suspend() - may the system suspend with this device?
 * @to_idle: the target is suspend-to-idle
 * @plugged: bytes the device has plugged
 * @persistent: VIRTIO_MEM_F_PERSISTENT_SUSPEND was negotiated
 *
 * Suspend-to-idle leaves the device alone. Deeper states reset the
 * machine's devices, which unplugs everything unless the device keeps its
 * state across the suspend (C11).
 *
 * Return: true if the suspend may go ahead.
 */
bool virtio_mem_may_suspend(bool to_idle, u64 plugged, bool persistent)
{
	return to_idle || !plugged || persistent;
}

/**
 * virtio_mem_geo_init() - cut the device region into memory and subblocks
 * @geo: filled in
 * @cfg: a config that passed virtio_mem_cfg_check()
 * @limits: what this kernel allows
 * @problem: filled in when the driver cannot use the region
 *
 * Only whole memory blocks (big blocks in BBM) inside both the region and
 * the physical range Linux can hot-add are used; the rest of the region is
 * never plugged. A big block size larger than one request can name, or
 * than the region can hold, is halved until it fits.
 *
 * Return: 0, or -EINVAL if nothing is usable or the big block size is bad.
 */
int virtio_mem_geo_init(struct virtio_mem_geo *geo,
			const struct virtio_mem_cfg *cfg,
			const struct virtio_mem_limits *limits,
			struct virtio_mem_cfg_problem *problem)
{
	const u64 mb_size = limits->mb_size;
	u64 start, end, unit;

	geo->mb_size = mb_size;
	geo->sb_size = max(limits->pageblock_size, cfg->block_size);
	geo->bbm = geo->sb_size >= mb_size || limits->force_bbm;
	geo->sbs_per_mb = geo->bbm ? 0 : mb_size / geo->sb_size;
	geo->bb_size = 0;
	if (geo->bbm) {
		geo->bb_size = limits->bb_size ?: max(cfg->block_size, mb_size);
		if (!is_power_of_2(geo->bb_size) ||
		    geo->bb_size < cfg->block_size || geo->bb_size < mb_size)
			return virtio_mem_problem(problem, "bbm_block_size",
						  geo->bb_size,
						  "not a power of two at least as large as device and memory blocks");
		/* One request names at most U16_MAX device blocks. */
		while (div64_u64(geo->bb_size, cfg->block_size) > U16_MAX)
			geo->bb_size /= 2;
	}

	start = max(cfg->addr, limits->pluggable_start);
	end = min(cfg->addr + cfg->region_size - 1, limits->pluggable_end);
	if (start > end)
		return virtio_mem_problem(problem, "addr", cfg->addr,
					  "region outside the range Linux can hot-add");
	for (;;) {
		/* Memory is added in whole units that lie inside both ranges. */
		unit = geo->bbm ? geo->bb_size : mb_size;
		/* Round inwards; the end is exclusive. */
		if (start <= U64_MAX - (unit - 1) &&
		    round_up(start, unit) < round_down(end + 1, unit))
			break;
		/* A big block too large for the region is halved. */
		if (!geo->bbm || geo->bb_size / 2 < max(cfg->block_size, mb_size))
			break;
		geo->bb_size /= 2;
	}
	if (start > U64_MAX - (unit - 1))
		return virtio_mem_problem(problem, "region_size",
					  cfg->region_size,
					  "region holds no whole memory block");
	start = round_up(start, unit);
	end = round_down(end + 1, unit);
	if (start >= end)
		return virtio_mem_problem(problem, "region_size",
					  cfg->region_size,
					  geo->bbm ? "region holds no whole big block" :
						     "region holds no whole memory block");
	geo->first_mb_id = start / mb_size;
	geo->last_mb_id = end / mb_size - 1;
	if (geo->bbm) {
		geo->first_bb_id = div64_u64(start, geo->bb_size);
		geo->last_bb_id = div64_u64(end, geo->bb_size) - 1;
	}
	geo->unusable_size = cfg->region_size - (end - start);
	return 0;
}

/* Clip a run of subblocks to what lies inside the usable region. */
static unsigned int virtio_mem_sbm_clip(const struct virtio_mem_geo *geo,
					const struct virtio_mem_plug_facts *facts,
					unsigned long mb_id, unsigned int sb_id,
					unsigned int count)
{
	u64 start = virtio_mem_sb_addr(geo, mb_id, sb_id);
	u64 fit;

	if (start >= facts->usable_end)
		return 0;
	fit = div64_u64(facts->usable_end - start, geo->sb_size);
	if (fit < count)
		count = fit;
	if (count > facts->nr_sbs)
		count = facts->nr_sbs;
	return count;
}

/* Fill the first hole of the first memory block in @state that has one. */
static bool virtio_mem_sbm_plan_fill(const struct virtio_mem_sbm *sbm,
				     const struct virtio_mem_geo *geo,
				     const struct virtio_mem_plug_facts *facts,
				     enum virtio_mem_sbm_mb_state state,
				     struct virtio_mem_sbm_step *step)
{
	unsigned long mb_id = VIRTIO_MEM_SBM_NO_MB;
	unsigned int sb_id, count;

	while (virtio_mem_sbm_next_mb(sbm, state, &mb_id)) {
		sb_id = virtio_mem_sbm_find_unplugged(sbm, mb_id, 0, &count);
		if (!count)
			continue;
		count = virtio_mem_sbm_clip(geo, facts, mb_id, sb_id, count);
		if (!count)
			continue;
		*step = (struct virtio_mem_sbm_step) {
			.mb_id = mb_id, .sb_id = sb_id, .count = count,
		};
		return true;
	}
	return false;
}

/*
 * Why the second block of the device is plugged last and unplugged first:
 * after every online and offline, core-mm finds out whether the zone is
 * contiguous by walking it from its start up to the first hole. With no
 * hole that walk covers every block already there, so n blocks cost n^2/2
 * block walks: most of a 16 GiB plug on Debian's kernels. A hole just
 * above the device's first block ends every walk there. A device plugged
 * to the last block loses nothing: the hole is filled then, once.
 */
static unsigned long virtio_mem_sbm_gap_mb(const struct virtio_mem_sbm *sbm)
{
	if (sbm->last_mb_id - sbm->first_mb_id < 2)
		return VIRTIO_MEM_SBM_NO_MB;
	return sbm->first_mb_id + 1;
}

static unsigned long virtio_mem_bbm_gap_bb(const struct virtio_mem_bbm *bbm)
{
	if (bbm->last_bb_id - bbm->first_bb_id < 2)
		return VIRTIO_MEM_BBM_NO_BB;
	return bbm->first_bb_id + 1;
}

/* How many subblocks of unused memory block @mb_id fit, 0 if it is none. */
static unsigned int virtio_mem_sbm_fit_mb(const struct virtio_mem_sbm *sbm,
					  const struct virtio_mem_geo *geo,
					  const struct virtio_mem_plug_facts *facts,
					  unsigned long mb_id)
{
	if (mb_id > sbm->last_mb_id ||
	    virtio_mem_sbm_get_mb_state(sbm, mb_id) != VIRTIO_MEM_SBM_MB_UNUSED)
		return 0;
	return virtio_mem_sbm_clip(geo, facts, mb_id, 0, sbm->sbs_per_mb);
}

/*
 * The memory block to add next: the lowest one used before and since
 * emptied, else a fresh one, the gap only when neither fits (blocks fit
 * from the bottom of the usable region up, so trying the lowest of each
 * kind is enough). Returns how many subblocks of it to plug, 0 if none.
 */
static unsigned int virtio_mem_sbm_pick_new(const struct virtio_mem_sbm *sbm,
					    const struct virtio_mem_geo *geo,
					    const struct virtio_mem_plug_facts *facts,
					    unsigned long *mb_id)
{
	const unsigned long gap = virtio_mem_sbm_gap_mb(sbm);
	unsigned long cand[3], id = VIRTIO_MEM_SBM_NO_MB;
	unsigned int count, i, n = 0;

	while (virtio_mem_sbm_next_mb(sbm, VIRTIO_MEM_SBM_MB_UNUSED, &id)) {
		if (id != gap) {
			cand[n++] = id;
			break;
		}
	}
	cand[n++] = sbm->next_mb_id == gap ? gap + 1 : sbm->next_mb_id;
	cand[n++] = gap;
	for (i = 0; i < n; i++) {
		count = virtio_mem_sbm_fit_mb(sbm, geo, facts, cand[i]);
		if (count) {
			*mb_id = cand[i];
			return count;
		}
	}
	return 0;
}

/**
 * virtio_mem_sbm_plan_plug() - choose the next subblocks to plug
 * @sbm: block state
 * @geo: geometry
 * @facts: what is wanted and allowed
 * @step: filled in for VIRTIO_MEM_PLAN_STEP
 *
 * Holes in added memory blocks come first, offline ones before online ones
 * (no pages to hand to the buddy), movable before kernel (memory that can
 * be taken back later). Only then is a new memory block used, the lowest
 * free one but the device's second (see virtio_mem_sbm_gap_mb()), and only
 * while the offline limit allows adding one and the kernel has room for
 * its memmap.
 *
 * Return: what to do.
 */
enum virtio_mem_plan
virtio_mem_sbm_plan_plug(const struct virtio_mem_sbm *sbm,
			 const struct virtio_mem_geo *geo,
			 const struct virtio_mem_plug_facts *facts,
			 struct virtio_mem_sbm_step *step)
{
	static const enum virtio_mem_sbm_mb_state fill_order[] = {
		VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL,
		VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL,
		VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL,
	};
	unsigned long nr_offline, mb_id = VIRTIO_MEM_SBM_NO_MB;
	unsigned int count, i;

	if (!facts->nr_sbs)
		return VIRTIO_MEM_PLAN_DONE;

	for (i = 0; i < ARRAY_SIZE(fill_order); i++)
		if (virtio_mem_sbm_plan_fill(sbm, geo, facts, fill_order[i],
					     step))
			return VIRTIO_MEM_PLAN_STEP;

	count = virtio_mem_sbm_pick_new(sbm, geo, facts, &mb_id);
	if (!count)
		return VIRTIO_MEM_PLAN_NO_SPACE;

	nr_offline = sbm->mb_count[VIRTIO_MEM_SBM_MB_OFFLINE] +
		     sbm->mb_count[VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL];
	if ((nr_offline + 1) * geo->mb_size > facts->offline_limit)
		return VIRTIO_MEM_PLAN_OFFLINE_LIMIT;
	/*
	 * Hot-added memory needs its memmap from memory the kernel can use;
	 * running out of that is a kernel warning and a guest in distress.
	 */
	if (facts->kernel_free < facts->memmap_per_mb + VIRTIO_MEM_MEMMAP_MARGIN)
		return VIRTIO_MEM_PLAN_NO_MEMMAP;

	*step = (struct virtio_mem_sbm_step) {
		.mb_id = mb_id, .sb_id = 0, .count = count, .add = true,
	};
	return VIRTIO_MEM_PLAN_STEP;
}

/* Rank classes for unplug: memory Linux does not use comes first. */
enum virtio_mem_unplug_class {
	VIRTIO_MEM_UNPLUG_NOT_ADDED,
	VIRTIO_MEM_UNPLUG_OFFLINE_PARTIAL,
	VIRTIO_MEM_UNPLUG_OFFLINE,
	VIRTIO_MEM_UNPLUG_MOVABLE,
	VIRTIO_MEM_UNPLUG_KERNEL,
	VIRTIO_MEM_UNPLUG_NEVER,
};

static enum virtio_mem_unplug_class
virtio_mem_unplug_class(enum virtio_mem_sbm_mb_state state)
{
	switch (state) {
	case VIRTIO_MEM_SBM_MB_PLUGGED:
		return VIRTIO_MEM_UNPLUG_NOT_ADDED;
	case VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL:
		return VIRTIO_MEM_UNPLUG_OFFLINE_PARTIAL;
	case VIRTIO_MEM_SBM_MB_OFFLINE:
		return VIRTIO_MEM_UNPLUG_OFFLINE;
	case VIRTIO_MEM_SBM_MB_MOVABLE:
	case VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL:
		return VIRTIO_MEM_UNPLUG_MOVABLE;
	case VIRTIO_MEM_SBM_MB_KERNEL:
	case VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL:
		return VIRTIO_MEM_UNPLUG_KERNEL;
	default:
		return VIRTIO_MEM_UNPLUG_NEVER;
	}
}

static int virtio_mem_candidate_cmp(const void *a, const void *b)
{
	const struct virtio_mem_candidate *x = a, *y = b;

	if (x->key == y->key)
		return 0;
	return x->key < y->key ? -1 : 1;
}

/**
 * virtio_mem_sbm_unplug_order() - rank memory blocks for unplug
 * @sbm: block state
 * @free_sbs: per used memory block (index mb_id - first_mb_id), how many of
 *	its plugged subblocks were seen free; NULL if unknown
 * @unplug_online: whether online memory may be taken at all
 * @out: filled with the candidates, best first
 * @max: room in @out
 *
 * Memory not added to Linux first, then offline memory, then ZONE_MOVABLE,
 * then kernel zones: the order in which taking memory costs least and is
 * most likely to work. Among online blocks of a zone, the ones with the
 * fewest pages to migrate come first, so blocks that can be emptied whole
 * go before blocks that would have to be picked apart; ties go to the
 * device's second block (see virtio_mem_sbm_gap_mb()), then to the
 * highest address, which keeps what stays plugged compact at the bottom.
 *
 * Return: the number of candidates written.
 */
unsigned long
virtio_mem_sbm_unplug_order(const struct virtio_mem_sbm *sbm,
			    const u16 *free_sbs, bool unplug_online,
			    struct virtio_mem_candidate *out,
			    unsigned long max)
{
	unsigned long gap = virtio_mem_sbm_gap_mb(sbm);
	enum virtio_mem_sbm_mb_state state;
	enum virtio_mem_unplug_class class;
	unsigned long mb_id, n = 0;
	unsigned int plugged, busy;

	for (mb_id = sbm->first_mb_id; mb_id < sbm->next_mb_id && n < max;
	     mb_id++) {
		state = virtio_mem_sbm_get_mb_state(sbm, mb_id);
		class = virtio_mem_unplug_class(state);
		if (class == VIRTIO_MEM_UNPLUG_NEVER)
			continue;
		if (!unplug_online && class >= VIRTIO_MEM_UNPLUG_MOVABLE)
			continue;
		/* Added blocks with nothing plugged still need removing. */
		plugged = virtio_mem_sbm_nr_sb_plugged(sbm, mb_id);
		busy = 0;
		if (class >= VIRTIO_MEM_UNPLUG_MOVABLE && free_sbs)
			busy = plugged - min_t(unsigned int, plugged,
					       free_sbs[mb_id - sbm->first_mb_id]);
		else if (class >= VIRTIO_MEM_UNPLUG_MOVABLE)
			busy = plugged;
		out[n].mb_id = mb_id;
		out[n].key = (u64)class << 60 | (u64)busy << 32 |
			     (mb_id == gap ? 0 : (u32)~mb_id);
		out[n].sweep = false;
		n++;
	}
	sort(out, n, sizeof(*out), virtio_mem_candidate_cmp, NULL);
	return n;
}

/**
 * virtio_mem_may_take() - the OOM guard
 * @available: memory available to user space now (MemAvailable)
 * @size: how much an unplug step would take away
 * @floor: what must stay available; 0 turns the guard off
 *
 * Return: true if the step keeps at least @floor available.
 */
bool virtio_mem_may_take(u64 available, u64 size, u64 floor)
{
	if (!floor)
		return true;
	return available >= size && available - size >= floor;
}

/* Whether big block @bb_id is unused and inside the usable region. */
static bool virtio_mem_bbm_fits(const struct virtio_mem_bbm *bbm,
				const struct virtio_mem_geo *geo,
				const struct virtio_mem_plug_facts *facts,
				unsigned long bb_id)
{
	return bb_id <= bbm->last_bb_id &&
	       virtio_mem_bb_addr(geo, bb_id) + geo->bb_size <=
	       facts->usable_end &&
	       virtio_mem_bbm_get_bb_state(bbm, bb_id) ==
	       VIRTIO_MEM_BBM_BB_UNUSED;
}

/* The lowest big block that fits but the gap, else the gap, else none. */
static unsigned long virtio_mem_bbm_pick_new(const struct virtio_mem_bbm *bbm,
					     const struct virtio_mem_geo *geo,
					     const struct virtio_mem_plug_facts *facts)
{
	const unsigned long gap = virtio_mem_bbm_gap_bb(bbm);
	unsigned long id;

	for (id = bbm->first_bb_id; id <= bbm->last_bb_id; id++)
		if (id != gap && virtio_mem_bbm_fits(bbm, geo, facts, id))
			return id;
	if (virtio_mem_bbm_fits(bbm, geo, facts, gap))
		return gap;
	return VIRTIO_MEM_BBM_NO_BB;
}

/**
 * virtio_mem_bbm_plan_plug() - choose the next big block to plug and add
 * @bbm: big block state
 * @geo: geometry
 * @facts: what is wanted and allowed
 * @bb_id: set to the big block for VIRTIO_MEM_PLAN_STEP
 *
 * The lowest unused big block that lies inside the usable region, the
 * device's second only when no other is left (as virtio_mem_sbm_gap_mb()
 * explains), while the offline limit and the memmap allow adding it.
 *
 * Return: what to do.
 */
enum virtio_mem_plan
virtio_mem_bbm_plan_plug(const struct virtio_mem_bbm *bbm,
			 const struct virtio_mem_geo *geo,
			 const struct virtio_mem_plug_facts *facts,
			 unsigned long *bb_id)
{
	const unsigned long mbs = div64_u64(geo->bb_size, geo->mb_size);
	unsigned long id;

	if (!facts->nr_bbs)
		return VIRTIO_MEM_PLAN_DONE;
	id = virtio_mem_bbm_pick_new(bbm, geo, facts);
	if (id == VIRTIO_MEM_BBM_NO_BB)
		return VIRTIO_MEM_PLAN_NO_SPACE;
	if (facts->offline_bytes + geo->bb_size > facts->offline_limit)
		return VIRTIO_MEM_PLAN_OFFLINE_LIMIT;
	if (facts->kernel_free < mbs * facts->memmap_per_mb +
				 VIRTIO_MEM_MEMMAP_MARGIN)
		return VIRTIO_MEM_PLAN_NO_MEMMAP;
	*bb_id = id;
	return VIRTIO_MEM_PLAN_STEP;
}

/**
 * virtio_mem_bbm_unplug_order() - rank big blocks for unplug
 * @bbm: big block state
 * @seen: per big block (index bb_id - first_bb_id), what the actor saw
 * @unplug_online: whether online memory may be taken at all
 * @out: filled with the candidates, best first
 * @max: room in @out
 *
 * Big blocks not added first, then added ones with nothing online, then
 * ones online only in ZONE_MOVABLE, then the rest; within each, the one
 * with the least memory in use first (a cheap estimate), then the device's
 * second big block (see virtio_mem_bbm_plan_plug()), then the highest.
 *
 * An online big block seen with nothing in use is swept: offlined and
 * removed as it is. Offlining free memory migrates nothing, so it ends
 * soon; taking the pages first would only make alloc_contig_range() hand
 * them out, zeroed where init_on_alloc is on, to be thrown away. Memory
 * in use is taken first instead, so that what cannot move fails early,
 * page by page, before anything is offlined.
 *
 * Return: the number of candidates written.
 */
unsigned long
virtio_mem_bbm_unplug_order(const struct virtio_mem_bbm *bbm,
			    const struct virtio_mem_bbm_seen *seen,
			    bool unplug_online,
			    struct virtio_mem_candidate *out,
			    unsigned long max)
{
	unsigned long gap = virtio_mem_bbm_gap_bb(bbm);
	const struct virtio_mem_bbm_seen *bb;
	enum virtio_mem_bbm_bb_state state;
	unsigned long bb_id, n = 0;
	u64 class;

	for (bb_id = bbm->first_bb_id; bb_id <= bbm->last_bb_id && n < max;
	     bb_id++) {
		state = virtio_mem_bbm_get_bb_state(bbm, bb_id);
		bb = &seen[bb_id - bbm->first_bb_id];
		if (state == VIRTIO_MEM_BBM_BB_PLUGGED)
			class = 0;
		else if (state != VIRTIO_MEM_BBM_BB_ADDED)
			continue;
		else if (!bb->online_mbs)
			class = 1;
		else if (!unplug_online)
			continue;
		else
			class = bb->kernel_mbs ? 3 : 2;
		out[n].bb_id = bb_id;
		out[n].key = class << 60 | (u64)bb->busy_mib << 28 |
			     (bb_id == gap ? 0 : (u32)~bb_id & 0xfffffff);
		out[n].sweep = class >= 2 && !bb->busy_mib;
		n++;
	}
	sort(out, n, sizeof(*out), virtio_mem_candidate_cmp, NULL);
	return n;
}

/**
 * virtio_mem_plug_error() - what an ERROR answer to a plug means
 * @seen: the config the worker planned with
 * @now: the config read after the answer
 *
 * Firecracker answers ERROR, not NACK, to a plug it refuses, for example
 * one beyond a requested_size it lowered meanwhile. So ERROR on a plug is
 * a refusal, never a broken device: start over at once if the host
 * changed requested_size since the worker planned, else back off.
 *
 * Return: %VIRTIO_MEM_OUTCOME_CONFIG_CHANGED or PLUG_ERROR.
 */
enum virtio_mem_outcome virtio_mem_plug_error(const struct virtio_mem_cfg *seen,
					      const struct virtio_mem_cfg *now)
{
	return now->requested_size != seen->requested_size ?
	       VIRTIO_MEM_OUTCOME_CONFIG_CHANGED : VIRTIO_MEM_OUTCOME_PLUG_ERROR;
}

/**
 * virtio_mem_decide() - the worker's whole retry policy
 * @outcome: what the pass came to
 * @status: set to the reason to show (unless the pass is simply repeated)
 *
 * Waiting is for what something else will end (a config change notifies
 * us, onlining does too); retrying with backoff is for what time may end.
 *
 * Return: what the worker does next.
 */
enum virtio_mem_next virtio_mem_decide(enum virtio_mem_outcome outcome,
				       enum virtio_mem_status *status)
{
	switch (outcome) {
	case VIRTIO_MEM_OUTCOME_DONE:
		*status = VIRTIO_MEM_STATUS_OK;
		return VIRTIO_MEM_NEXT_WAIT;
	case VIRTIO_MEM_OUTCOME_CONFIG_CHANGED:
		return VIRTIO_MEM_NEXT_AGAIN;
	case VIRTIO_MEM_OUTCOME_IN_TRANSITION:
		/* Core-mm is onlining or offlining; its end queues us. */
		*status = VIRTIO_MEM_STATUS_WORKING;
		return VIRTIO_MEM_NEXT_WAIT;
	case VIRTIO_MEM_OUTCOME_UNPLUG_ONLINE_OFF:
		*status = VIRTIO_MEM_STATUS_UNPLUG_ONLINE_OFF;
		return VIRTIO_MEM_NEXT_WAIT;
	case VIRTIO_MEM_OUTCOME_NO_SPACE:
		*status = VIRTIO_MEM_STATUS_NO_SPACE;
		return VIRTIO_MEM_NEXT_WAIT;
	case VIRTIO_MEM_OUTCOME_OFFLINE_LIMIT:
		*status = VIRTIO_MEM_STATUS_OFFLINE_LIMIT;
		return VIRTIO_MEM_NEXT_WAIT;
	case VIRTIO_MEM_OUTCOME_NACK:
		/* Asking again unchanged would be hammering the device. */
		*status = VIRTIO_MEM_STATUS_NACK;
		return VIRTIO_MEM_NEXT_WAIT;
	case VIRTIO_MEM_OUTCOME_BUSY:
		*status = VIRTIO_MEM_STATUS_BUSY;
		return VIRTIO_MEM_NEXT_RETRY;
	case VIRTIO_MEM_OUTCOME_PLUG_ERROR:
		/*
		 * Firecracker refuses this way; asking again at once would
		 * only hammer the host.
		 */
		*status = VIRTIO_MEM_STATUS_PLUG_ERROR;
		return VIRTIO_MEM_NEXT_RETRY;
	case VIRTIO_MEM_OUTCOME_NOMEM:
		*status = VIRTIO_MEM_STATUS_NOMEM;
		return VIRTIO_MEM_NEXT_RETRY;
	case VIRTIO_MEM_OUTCOME_ADD_FAILED:
		*status = VIRTIO_MEM_STATUS_ADD_FAILED;
		return VIRTIO_MEM_NEXT_RETRY;
	case VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE:
		*status = VIRTIO_MEM_STATUS_MEMORY_PRESSURE;
		return VIRTIO_MEM_NEXT_RETRY;
	case VIRTIO_MEM_OUTCOME_UNMOVABLE:
		*status = VIRTIO_MEM_STATUS_UNMOVABLE;
		return VIRTIO_MEM_NEXT_RETRY;
	case VIRTIO_MEM_OUTCOME_FAILED:
	case VIRTIO_MEM_OUTCOME_BUG:
	default:
		*status = VIRTIO_MEM_STATUS_BROKEN;
		return VIRTIO_MEM_NEXT_BROKEN;
	}
}

/* Outcomes are named only in the log and the retry tracepoint. */
static const char *const virtio_mem_outcome_names[VIRTIO_MEM_OUTCOME_COUNT] = {
	[VIRTIO_MEM_OUTCOME_DONE] = "done",
	[VIRTIO_MEM_OUTCOME_CONFIG_CHANGED] = "config_changed",
	[VIRTIO_MEM_OUTCOME_IN_TRANSITION] = "in_transition",
	[VIRTIO_MEM_OUTCOME_NO_SPACE] = "no_space",
	[VIRTIO_MEM_OUTCOME_OFFLINE_LIMIT] = "offline_limit",
	[VIRTIO_MEM_OUTCOME_NACK] = "nack",
	[VIRTIO_MEM_OUTCOME_UNPLUG_ONLINE_OFF] = "unplug_online_off",
	[VIRTIO_MEM_OUTCOME_BUSY] = "busy",
	[VIRTIO_MEM_OUTCOME_PLUG_ERROR] = "plug_error",
	[VIRTIO_MEM_OUTCOME_NOMEM] = "nomem",
	[VIRTIO_MEM_OUTCOME_ADD_FAILED] = "add_failed",
	[VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE] = "memory_pressure",
	[VIRTIO_MEM_OUTCOME_UNMOVABLE] = "unmovable",
	[VIRTIO_MEM_OUTCOME_FAILED] = "failed",
	[VIRTIO_MEM_OUTCOME_BUG] = "bug",
};

/**
 * virtio_mem_outcome_name() - the word for an outcome, for log and trace
 * @outcome: the outcome
 *
 * Return: a static string.
 */
const char *virtio_mem_outcome_name(enum virtio_mem_outcome outcome)
{
	return outcome < VIRTIO_MEM_OUTCOME_COUNT ?
	       virtio_mem_outcome_names[outcome] : "?";
}
