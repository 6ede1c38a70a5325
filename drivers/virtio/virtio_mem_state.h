/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virtio-mem: the block bookkeeping of both modes.
 *
 * For Sub Block Mode (SBM) it keeps the state of each memory block, which
 * subblocks are plugged, and the hold list: the memory blocks whose pages
 * the online_page callback keeps back during a plug pass. For Big Block
 * Mode (BBM) it keeps the state of each big block.
 *
 * This is pure state, with no mm and no virtio, so that the same file
 * builds into the module and into the userspace harness in
 * tools/testing/virtio_mem/.
 *
 * Vocabulary: a memory block (mb_id) is a Linux memory block
 * (memory_block_size_bytes()). In SBM, a subblock (sb_id, relative to its
 * memory block) is the unit we plug and unplug: max(pageblock, device
 * block). In BBM, a big block (bb_id) is that unit, one or more memory
 * blocks.
 */

#ifndef _VIRTIO_MEM_STATE_H
#define _VIRTIO_MEM_STATE_H

#include <linux/types.h>
#include <linux/bitops.h>
#include <linux/limits.h>

/*
 * The state of one memory block. "Partial" means that some, but not all,
 * of its subblocks are plugged; the others are never touched.
 */
enum virtio_mem_sbm_mb_state {
	/* Not added to Linux, nothing plugged: free for (re)use. */
	VIRTIO_MEM_SBM_MB_UNUSED = 0,
	/* Not added to Linux, but subblocks plugged (adding it failed). */
	VIRTIO_MEM_SBM_MB_PLUGGED,
	/* Added, offline, every subblock plugged. */
	VIRTIO_MEM_SBM_MB_OFFLINE,
	/* Added, offline, some subblocks plugged. */
	VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL,
	/* Online in a kernel zone (e.g. ZONE_NORMAL), every subblock plugged. */
	VIRTIO_MEM_SBM_MB_KERNEL,
	/* Online in a kernel zone, some subblocks plugged. */
	VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL,
	/* Online in ZONE_MOVABLE, every subblock plugged. */
	VIRTIO_MEM_SBM_MB_MOVABLE,
	/* Online in ZONE_MOVABLE, some subblocks plugged. */
	VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL,
	VIRTIO_MEM_SBM_MB_COUNT
};

/**
 * struct virtio_mem_sbm - memory block and subblock state of one device
 * @first_mb_id: the first memory block that lies wholly in the region
 *	and in the physical range Linux can hot-add.
 * @last_mb_id: the last such memory block.
 * @next_mb_id: the first memory block that was never used; blocks from
 *	here to @last_mb_id are implicitly UNUSED and cost no memory.
 * @sbs_per_mb: subblocks per memory block (at least 2 in SBM).
 * @memmap_sbs: leading subblocks of each added memory block that hold its
 *	own memmap (memmap_on_memory), else 0. They are plugged before the
 *	block is added, never reach the buddy, and are unplugged only once
 *	the block is removed again. Set at probe; the worker may clear it
 *	(WRITE_ONCE, under the lock) before any block carries a memmap.
 * @nr_mbs_alloc: memory blocks the arrays below have room for.
 * @mb_states: one byte per memory block, indexed by mb_id - first_mb_id.
 * @sb_plugged: one bit per subblock, set when the device has it plugged.
 * @mb_count: memory blocks per state, kept right by the one setter.
 * @nr_sbs_plugged: plugged subblocks in all memory blocks.
 * @changed: if set, told about every memory block state change (the
 *	driver traces them; the pure code knows nothing of tracing).
 * @owner: passed to @changed.
 *
 * In the driver, all of this is protected by vm->hotplug_mutex.
 */
struct virtio_mem_sbm {
	unsigned long first_mb_id;
	unsigned long last_mb_id;
	unsigned long next_mb_id;
	unsigned int sbs_per_mb;
	unsigned int memmap_sbs;
	unsigned long nr_mbs_alloc;
	u8 *mb_states;
	unsigned long *sb_plugged;
	unsigned long mb_count[VIRTIO_MEM_SBM_MB_COUNT];
	unsigned long nr_sbs_plugged;
	void (*changed)(void *owner, unsigned long mb_id,
			enum virtio_mem_sbm_mb_state old,
			enum virtio_mem_sbm_mb_state state);
	void *owner;
};

int virtio_mem_sbm_init(struct virtio_mem_sbm *sbm, unsigned long first_mb_id,
			unsigned long last_mb_id, unsigned int sbs_per_mb);
void virtio_mem_sbm_destroy(struct virtio_mem_sbm *sbm);
int virtio_mem_sbm_new_mb(struct virtio_mem_sbm *sbm, unsigned long *mb_id);

enum virtio_mem_sbm_mb_state
virtio_mem_sbm_get_mb_state(const struct virtio_mem_sbm *sbm,
			    unsigned long mb_id);
void virtio_mem_sbm_set_mb_state(struct virtio_mem_sbm *sbm,
				 unsigned long mb_id,
				 enum virtio_mem_sbm_mb_state state);
enum virtio_mem_sbm_mb_state
virtio_mem_sbm_state_for(const struct virtio_mem_sbm *sbm, unsigned long mb_id,
			 bool online, bool movable);
void virtio_mem_sbm_refresh_mb_state(struct virtio_mem_sbm *sbm,
				     unsigned long mb_id);

void virtio_mem_sbm_set_sb_plugged(struct virtio_mem_sbm *sbm,
				   unsigned long mb_id, unsigned int sb_id,
				   unsigned int count);
void virtio_mem_sbm_set_sb_unplugged(struct virtio_mem_sbm *sbm,
				     unsigned long mb_id, unsigned int sb_id,
				     unsigned int count);
bool virtio_mem_sbm_test_sb_plugged(const struct virtio_mem_sbm *sbm,
				    unsigned long mb_id, unsigned int sb_id,
				    unsigned int count);
bool virtio_mem_sbm_test_sb_unplugged(const struct virtio_mem_sbm *sbm,
				      unsigned long mb_id, unsigned int sb_id,
				      unsigned int count);
unsigned int virtio_mem_sbm_nr_sb_plugged(const struct virtio_mem_sbm *sbm,
					  unsigned long mb_id);
unsigned int virtio_mem_sbm_find_unplugged(const struct virtio_mem_sbm *sbm,
					   unsigned long mb_id,
					   unsigned int from,
					   unsigned int *count);
unsigned int virtio_mem_sbm_find_plugged(const struct virtio_mem_sbm *sbm,
					 unsigned long mb_id,
					 unsigned int from,
					 unsigned int *count);
bool virtio_mem_sbm_next_run(const struct virtio_mem_sbm *sbm,
			     unsigned long mb_id, bool plugged,
			     unsigned int *sb_id, unsigned int *count);
unsigned int virtio_mem_sbm_find_plugged_rev(const struct virtio_mem_sbm *sbm,
					     unsigned long mb_id,
					     unsigned int before,
					     unsigned int *count);

/* True for the states of memory blocks that are added to Linux. */
static inline bool virtio_mem_sbm_state_added(enum virtio_mem_sbm_mb_state s)
{
	return s >= VIRTIO_MEM_SBM_MB_OFFLINE && s < VIRTIO_MEM_SBM_MB_COUNT;
}

/* True for the states of memory blocks that are online. */
static inline bool virtio_mem_sbm_state_online(enum virtio_mem_sbm_mb_state s)
{
	return s >= VIRTIO_MEM_SBM_MB_KERNEL && s < VIRTIO_MEM_SBM_MB_COUNT;
}

/*
 * The first subblock of a memory block in state @s that may be unplugged
 * or handed to the buddy: past the memmap while the block is added.
 */
static inline unsigned int
virtio_mem_sbm_first_free_sb(const struct virtio_mem_sbm *sbm,
			     enum virtio_mem_sbm_mb_state s)
{
	return virtio_mem_sbm_state_added(s) ? sbm->memmap_sbs : 0;
}

/* True for the states of memory blocks that have unplugged subblocks. */
static inline bool
virtio_mem_sbm_state_partial(enum virtio_mem_sbm_mb_state s)
{
	return s == VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL ||
	       s == VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL ||
	       s == VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL;
}

/* At most this many memory blocks are held back at a time. */
#define VIRTIO_MEM_SBM_HOLD_MAX		8

/**
 * struct virtio_mem_sbm_hold - memory blocks whose pages are held back
 * @active: blocks onlined now are to be held
 * @nr: how many are held
 * @mb_ids: which, in the order they were onlined
 *
 * During a plug pass, the online_page callback keeps the pages of new
 * kernel-zone memory blocks away from the buddy; the pass end hands them
 * over (see virtio_mem_notify.c). In the driver, protected by
 * vm->hotplug_mutex.
 */
struct virtio_mem_sbm_hold {
	bool active;
	unsigned int nr;
	unsigned long mb_ids[VIRTIO_MEM_SBM_HOLD_MAX];
};

bool virtio_mem_sbm_hold_add(struct virtio_mem_sbm_hold *hold,
			     unsigned long mb_id);
bool virtio_mem_sbm_hold_test(const struct virtio_mem_sbm_hold *hold,
			      unsigned long mb_id);
bool virtio_mem_sbm_hold_forget(struct virtio_mem_sbm_hold *hold,
				unsigned long mb_id);

/* Start and end value of the memory block iterators below. */
#define VIRTIO_MEM_SBM_NO_MB	ULONG_MAX

bool virtio_mem_sbm_next_mb(const struct virtio_mem_sbm *sbm,
			    enum virtio_mem_sbm_mb_state state,
			    unsigned long *mb_id);
bool virtio_mem_sbm_prev_mb(const struct virtio_mem_sbm *sbm,
			    enum virtio_mem_sbm_mb_state state,
			    unsigned long *mb_id);

/*
 * Big Block Mode (BBM): device blocks at least as large as a memory block.
 * A big block (bb_id) spans one or more memory blocks and is plugged,
 * added, removed and unplugged as a unit.
 */
enum virtio_mem_bbm_bb_state {
	/* Not plugged, not added. */
	VIRTIO_MEM_BBM_BB_UNUSED = 0,
	/* Plugged, not added to Linux (adding or unplugging failed). */
	VIRTIO_MEM_BBM_BB_PLUGGED,
	/* Plugged and added to Linux. */
	VIRTIO_MEM_BBM_BB_ADDED,
	/*
	 * Added, but its online memory is being taken away for unplug: the
	 * online_page callback keeps anything onlined now fake offline.
	 */
	VIRTIO_MEM_BBM_BB_FAKE_OFFLINE,
	VIRTIO_MEM_BBM_BB_COUNT
};

/**
 * struct virtio_mem_bbm - big block state of one device
 * @first_bb_id: the first big block wholly inside the region and the
 *	physical range Linux can hot-add
 * @last_bb_id: the last such big block
 * @bb_states: one byte per big block, indexed by bb_id - first_bb_id;
 *	allocated for the whole region at once (a big block is at least a
 *	memory block, so this stays small)
 * @bb_count: big blocks per state, kept right by the one setter
 * @memmap_size: bytes at the start of each memory block of an added big
 *	block that hold the block's own memmap (memmap_on_memory), else 0.
 *	They never reach the buddy. Set at probe, never changed after.
 *
 * In the driver, protected by vm->hotplug_mutex.
 */
struct virtio_mem_bbm {
	unsigned long first_bb_id;
	unsigned long last_bb_id;
	u8 *bb_states;
	unsigned long bb_count[VIRTIO_MEM_BBM_BB_COUNT];
	u64 memmap_size;
};

/* No big block, as in "the device has none to spare". */
#define VIRTIO_MEM_BBM_NO_BB	ULONG_MAX

int virtio_mem_bbm_init(struct virtio_mem_bbm *bbm, unsigned long first_bb_id,
			unsigned long last_bb_id);
void virtio_mem_bbm_destroy(struct virtio_mem_bbm *bbm);
enum virtio_mem_bbm_bb_state
virtio_mem_bbm_get_bb_state(const struct virtio_mem_bbm *bbm,
			    unsigned long bb_id);
void virtio_mem_bbm_set_bb_state(struct virtio_mem_bbm *bbm,
				 unsigned long bb_id,
				 enum virtio_mem_bbm_bb_state state);

#endif /* _VIRTIO_MEM_STATE_H */
