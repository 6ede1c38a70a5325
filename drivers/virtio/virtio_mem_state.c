// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: the block bookkeeping of both modes, and the hold list.
 *
 * Sub Block Mode keeps a byte per memory block and a bit per subblock.
 * They are allocated for the memory blocks used so far and grown on
 * demand, so that a guest with a huge device region but little plugged
 * memory pays for little. Per-state counters make "is there any block in
 * state X" free, which the plug and unplug loops ask all the time.
 *
 * Big Block Mode keeps a byte per big block, allocated for the whole
 * region at once: a big block is at least a memory block, so there are
 * few.
 */

#include <linux/bitmap.h>
#include <linux/errno.h>
#include <linux/minmax.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/bug.h>

#include "virtio_mem_state.h"

/* Grow in steps, so that adding memory block by memory block stays cheap. */
#define VIRTIO_MEM_SBM_GROW_MBS		32

static unsigned long virtio_mem_sbm_mb_idx(const struct virtio_mem_sbm *sbm,
					   unsigned long mb_id)
{
	return mb_id - sbm->first_mb_id;
}

static unsigned long virtio_mem_sbm_bit(const struct virtio_mem_sbm *sbm,
					unsigned long mb_id, unsigned int sb_id)
{
	return virtio_mem_sbm_mb_idx(sbm, mb_id) * sbm->sbs_per_mb + sb_id;
}

/* Count the set bits in [start, start + nr). */
static unsigned int virtio_mem_sbm_weight(const unsigned long *bitmap,
					  unsigned long start, unsigned int nr)
{
	unsigned long end = start + nr;
	unsigned int weight = 0;
	unsigned long bit;

	for (bit = find_next_bit(bitmap, end, start); bit < end;
	     bit = find_next_bit(bitmap, end, bit + 1))
		weight++;
	return weight;
}

/**
 * virtio_mem_sbm_init() - set up empty state for a range of memory blocks
 * @sbm: the state to set up
 * @first_mb_id: first memory block the device can use
 * @last_mb_id: last memory block the device can use
 * @sbs_per_mb: subblocks per memory block
 *
 * Nothing is allocated until the first memory block gets used.
 *
 * Return: 0, or -EINVAL for an empty range or fewer than 2 subblocks.
 */
int virtio_mem_sbm_init(struct virtio_mem_sbm *sbm, unsigned long first_mb_id,
			unsigned long last_mb_id, unsigned int sbs_per_mb)
{
	memset(sbm, 0, sizeof(*sbm));
	if (last_mb_id < first_mb_id || sbs_per_mb < 2)
		return -EINVAL;
	sbm->first_mb_id = first_mb_id;
	sbm->last_mb_id = last_mb_id;
	sbm->next_mb_id = first_mb_id;
	sbm->sbs_per_mb = sbs_per_mb;
	return 0;
}

/**
 * virtio_mem_sbm_destroy() - free the state
 * @sbm: the state
 */
void virtio_mem_sbm_destroy(struct virtio_mem_sbm *sbm)
{
	kvfree(sbm->mb_states);
	kvfree(sbm->sb_plugged);
	sbm->mb_states = NULL;
	sbm->sb_plugged = NULL;
	sbm->nr_mbs_alloc = 0;
}

/* Make room for @nr_mbs memory blocks; existing content is kept. */
static int virtio_mem_sbm_grow(struct virtio_mem_sbm *sbm,
			       unsigned long nr_mbs)
{
	const unsigned long max_mbs = sbm->last_mb_id - sbm->first_mb_id + 1;
	unsigned long old_bits = sbm->nr_mbs_alloc * sbm->sbs_per_mb;
	unsigned long new_bits;
	unsigned long *bitmap;
	u8 *states;

	if (nr_mbs <= sbm->nr_mbs_alloc)
		return 0;
	nr_mbs = min(max(nr_mbs, sbm->nr_mbs_alloc + VIRTIO_MEM_SBM_GROW_MBS),
		     max_mbs);
	new_bits = nr_mbs * sbm->sbs_per_mb;

	states = kvzalloc(nr_mbs, GFP_KERNEL);
	if (!states)
		return -ENOMEM;
	bitmap = kvcalloc(BITS_TO_LONGS(new_bits), sizeof(long), GFP_KERNEL);
	if (!bitmap) {
		kvfree(states);
		return -ENOMEM;
	}
	if (sbm->nr_mbs_alloc) {
		memcpy(states, sbm->mb_states, sbm->nr_mbs_alloc);
		bitmap_copy(bitmap, sbm->sb_plugged, old_bits);
	}
	kvfree(sbm->mb_states);
	kvfree(sbm->sb_plugged);
	sbm->mb_states = states;
	sbm->sb_plugged = bitmap;
	sbm->nr_mbs_alloc = nr_mbs;
	return 0;
}

/**
 * virtio_mem_sbm_new_mb() - take the next never-used memory block
 * @sbm: the state
 * @mb_id: set to the memory block taken, which is UNUSED with nothing
 *	plugged
 *
 * Return: 0, -ENOSPC when every usable memory block is used, or -ENOMEM.
 */
int virtio_mem_sbm_new_mb(struct virtio_mem_sbm *sbm, unsigned long *mb_id)
{
	unsigned long nr_used = sbm->next_mb_id - sbm->first_mb_id;
	int rc;

	if (sbm->next_mb_id > sbm->last_mb_id)
		return -ENOSPC;
	rc = virtio_mem_sbm_grow(sbm, nr_used + 1);
	if (rc)
		return rc;
	*mb_id = sbm->next_mb_id++;
	sbm->mb_count[VIRTIO_MEM_SBM_MB_UNUSED]++;
	return 0;
}

/**
 * virtio_mem_sbm_get_mb_state() - the state of a memory block
 * @sbm: the state
 * @mb_id: the memory block; never-used ones read as UNUSED
 *
 * Return: the memory block's state.
 */
enum virtio_mem_sbm_mb_state
virtio_mem_sbm_get_mb_state(const struct virtio_mem_sbm *sbm,
			    unsigned long mb_id)
{
	if (mb_id < sbm->first_mb_id || mb_id >= sbm->next_mb_id)
		return VIRTIO_MEM_SBM_MB_UNUSED;
	return sbm->mb_states[virtio_mem_sbm_mb_idx(sbm, mb_id)];
}

/**
 * virtio_mem_sbm_set_mb_state() - the one place a block changes state
 * @sbm: the state
 * @mb_id: a memory block taken with virtio_mem_sbm_new_mb()
 * @state: its new state
 *
 * Keeps the per-state counters right.
 */
void virtio_mem_sbm_set_mb_state(struct virtio_mem_sbm *sbm,
				 unsigned long mb_id,
				 enum virtio_mem_sbm_mb_state state)
{
	unsigned long idx = virtio_mem_sbm_mb_idx(sbm, mb_id);
	enum virtio_mem_sbm_mb_state old;

	if (WARN_ON_ONCE(mb_id < sbm->first_mb_id ||
			 mb_id >= sbm->next_mb_id ||
			 state >= VIRTIO_MEM_SBM_MB_COUNT))
		return;
	old = sbm->mb_states[idx];
	sbm->mb_states[idx] = state;
	sbm->mb_count[old]--;
	sbm->mb_count[state]++;
	if (sbm->changed && old != state)
		sbm->changed(sbm->owner, mb_id, old, state);
}

/**
 * virtio_mem_sbm_state_for() - the state that describes a memory block
 * @sbm: the state
 * @mb_id: the memory block, added to Linux
 * @online: whether it is online
 * @movable: whether it is online in ZONE_MOVABLE
 *
 * Full or partial follows from its plugged subblocks.
 *
 * Return: the state.
 */
enum virtio_mem_sbm_mb_state
virtio_mem_sbm_state_for(const struct virtio_mem_sbm *sbm, unsigned long mb_id,
			 bool online, bool movable)
{
	bool full = virtio_mem_sbm_test_sb_plugged(sbm, mb_id, 0,
						   sbm->sbs_per_mb);

	if (!online)
		return full ? VIRTIO_MEM_SBM_MB_OFFLINE :
			      VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL;
	if (movable)
		return full ? VIRTIO_MEM_SBM_MB_MOVABLE :
			      VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL;
	return full ? VIRTIO_MEM_SBM_MB_KERNEL :
		      VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL;
}

/**
 * virtio_mem_sbm_refresh_mb_state() - re-derive full/partial of an added block
 * @sbm: the state
 * @mb_id: the memory block
 *
 * Call after its subblocks changed. Blocks not added are left alone.
 */
void virtio_mem_sbm_refresh_mb_state(struct virtio_mem_sbm *sbm,
				     unsigned long mb_id)
{
	enum virtio_mem_sbm_mb_state old = virtio_mem_sbm_get_mb_state(sbm, mb_id);
	bool online = virtio_mem_sbm_state_online(old);
	bool movable = old == VIRTIO_MEM_SBM_MB_MOVABLE ||
		       old == VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL;

	if (!virtio_mem_sbm_state_added(old))
		return;
	virtio_mem_sbm_set_mb_state(sbm, mb_id,
				    virtio_mem_sbm_state_for(sbm, mb_id, online,
							     movable));
}

static bool virtio_mem_sbm_range_ok(const struct virtio_mem_sbm *sbm,
				    unsigned long mb_id, unsigned int sb_id,
				    unsigned int count)
{
	return mb_id >= sbm->first_mb_id && mb_id < sbm->next_mb_id &&
	       count && sb_id < sbm->sbs_per_mb &&
	       count <= sbm->sbs_per_mb - sb_id;
}

/**
 * virtio_mem_sbm_set_sb_plugged() - mark subblocks plugged
 * @sbm: the state
 * @mb_id: their memory block
 * @sb_id: the first subblock
 * @count: how many
 *
 * Does not change the memory block's state.
 */
void virtio_mem_sbm_set_sb_plugged(struct virtio_mem_sbm *sbm,
				   unsigned long mb_id, unsigned int sb_id,
				   unsigned int count)
{
	unsigned long bit = virtio_mem_sbm_bit(sbm, mb_id, sb_id);

	if (WARN_ON_ONCE(!virtio_mem_sbm_range_ok(sbm, mb_id, sb_id, count)))
		return;
	sbm->nr_sbs_plugged += count - virtio_mem_sbm_weight(sbm->sb_plugged,
							   bit, count);
	bitmap_set(sbm->sb_plugged, bit, count);
}

/**
 * virtio_mem_sbm_set_sb_unplugged() - mark subblocks unplugged
 * @sbm: the state
 * @mb_id: their memory block
 * @sb_id: the first subblock
 * @count: how many
 *
 * Does not change the memory block's state.
 */
void virtio_mem_sbm_set_sb_unplugged(struct virtio_mem_sbm *sbm,
				     unsigned long mb_id, unsigned int sb_id,
				     unsigned int count)
{
	unsigned long bit = virtio_mem_sbm_bit(sbm, mb_id, sb_id);

	if (WARN_ON_ONCE(!virtio_mem_sbm_range_ok(sbm, mb_id, sb_id, count)))
		return;
	sbm->nr_sbs_plugged -= virtio_mem_sbm_weight(sbm->sb_plugged, bit, count);
	bitmap_clear(sbm->sb_plugged, bit, count);
}

/**
 * virtio_mem_sbm_test_sb_plugged() - are all these subblocks plugged?
 * @sbm: the state
 * @mb_id: their memory block
 * @sb_id: the first subblock
 * @count: how many
 *
 * Return: true if every one is plugged.
 */
bool virtio_mem_sbm_test_sb_plugged(const struct virtio_mem_sbm *sbm,
				    unsigned long mb_id, unsigned int sb_id,
				    unsigned int count)
{
	unsigned long bit = virtio_mem_sbm_bit(sbm, mb_id, sb_id);

	if (!virtio_mem_sbm_range_ok(sbm, mb_id, sb_id, count))
		return false;
	return find_next_zero_bit(sbm->sb_plugged, bit + count, bit) >=
	       bit + count;
}

/**
 * virtio_mem_sbm_test_sb_unplugged() - are all these subblocks unplugged?
 * @sbm: the state
 * @mb_id: their memory block
 * @sb_id: the first subblock
 * @count: how many
 *
 * Never-used memory blocks have nothing plugged.
 *
 * Return: true if none is plugged.
 */
bool virtio_mem_sbm_test_sb_unplugged(const struct virtio_mem_sbm *sbm,
				      unsigned long mb_id, unsigned int sb_id,
				      unsigned int count)
{
	unsigned long bit = virtio_mem_sbm_bit(sbm, mb_id, sb_id);

	if (mb_id >= sbm->next_mb_id && mb_id <= sbm->last_mb_id)
		return true;
	if (!virtio_mem_sbm_range_ok(sbm, mb_id, sb_id, count))
		return false;
	return find_next_bit(sbm->sb_plugged, bit + count, bit) >= bit + count;
}

/**
 * virtio_mem_sbm_nr_sb_plugged() - count the plugged subblocks of a block
 * @sbm: the state
 * @mb_id: the memory block
 *
 * Return: the number of plugged subblocks.
 */
unsigned int virtio_mem_sbm_nr_sb_plugged(const struct virtio_mem_sbm *sbm,
					  unsigned long mb_id)
{
	if (mb_id < sbm->first_mb_id || mb_id >= sbm->next_mb_id)
		return 0;
	return virtio_mem_sbm_weight(sbm->sb_plugged,
				   virtio_mem_sbm_bit(sbm, mb_id, 0),
				   sbm->sbs_per_mb);
}

/* The first run of subblocks at or after @from whose bits equal @plugged. */
static unsigned int virtio_mem_sbm_find_run(const struct virtio_mem_sbm *sbm,
					    unsigned long mb_id,
					    unsigned int from, bool plugged,
					    unsigned int *count)
{
	unsigned long base, end, first, next;

	*count = 0;
	if (mb_id < sbm->first_mb_id || mb_id >= sbm->next_mb_id ||
	    from >= sbm->sbs_per_mb)
		return sbm->sbs_per_mb;
	base = virtio_mem_sbm_bit(sbm, mb_id, 0);
	end = base + sbm->sbs_per_mb;
	if (plugged) {
		first = find_next_bit(sbm->sb_plugged, end, base + from);
		next = find_next_zero_bit(sbm->sb_plugged, end, first);
	} else {
		first = find_next_zero_bit(sbm->sb_plugged, end, base + from);
		next = find_next_bit(sbm->sb_plugged, end, first);
	}
	if (first >= end)
		return sbm->sbs_per_mb;
	*count = next - first;
	return first - base;
}

/**
 * virtio_mem_sbm_find_unplugged() - find a run of unplugged subblocks
 * @sbm: the state
 * @mb_id: the memory block
 * @from: the subblock to start looking at
 * @count: set to the length of the run found, 0 if there is none
 *
 * Return: the first subblock of the run, or sbs_per_mb if there is none.
 */
unsigned int virtio_mem_sbm_find_unplugged(const struct virtio_mem_sbm *sbm,
					   unsigned long mb_id,
					   unsigned int from,
					   unsigned int *count)
{
	return virtio_mem_sbm_find_run(sbm, mb_id, from, false, count);
}

/**
 * virtio_mem_sbm_find_plugged() - find a run of plugged subblocks
 * @sbm: the state
 * @mb_id: the memory block
 * @from: the subblock to start looking at
 * @count: set to the length of the run found, 0 if there is none
 *
 * Return: the first subblock of the run, or sbs_per_mb if there is none.
 */
unsigned int virtio_mem_sbm_find_plugged(const struct virtio_mem_sbm *sbm,
					 unsigned long mb_id,
					 unsigned int from,
					 unsigned int *count)
{
	return virtio_mem_sbm_find_run(sbm, mb_id, from, true, count);
}

/**
 * virtio_mem_sbm_find_plugged_rev() - find the last run of plugged subblocks
 * @sbm: the state
 * @mb_id: the memory block
 * @before: look only below this subblock
 * @count: set to the length of the run found, 0 if there is none
 *
 * Return: the first subblock of the run, or sbs_per_mb if there is none.
 */
unsigned int virtio_mem_sbm_find_plugged_rev(const struct virtio_mem_sbm *sbm,
					     unsigned long mb_id,
					     unsigned int before,
					     unsigned int *count)
{
	unsigned long base;
	unsigned int end;

	*count = 0;
	if (mb_id < sbm->first_mb_id || mb_id >= sbm->next_mb_id)
		return sbm->sbs_per_mb;
	base = virtio_mem_sbm_bit(sbm, mb_id, 0);
	end = min(before, sbm->sbs_per_mb);
	while (end && !test_bit(base + end - 1, sbm->sb_plugged))
		end--;
	if (!end)
		return sbm->sbs_per_mb;
	*count = 1;
	while (*count < end && test_bit(base + end - 1 - *count, sbm->sb_plugged))
		(*count)++;
	return end - *count;
}

/**
 * virtio_mem_sbm_next_mb() - the next used memory block in a state
 * @sbm: the state
 * @state: the state to look for
 * @mb_id: in: the last block returned, or VIRTIO_MEM_SBM_NO_MB to start;
 *	out: the next one, lowest first
 *
 * Usage: mb_id = VIRTIO_MEM_SBM_NO_MB; while (next_mb(sbm, state, &mb_id))
 *
 * Return: false when there is none left.
 */
bool virtio_mem_sbm_next_mb(const struct virtio_mem_sbm *sbm,
			    enum virtio_mem_sbm_mb_state state,
			    unsigned long *mb_id)
{
	unsigned long id = *mb_id == VIRTIO_MEM_SBM_NO_MB ? sbm->first_mb_id :
			   *mb_id + 1;

	if (!sbm->mb_count[state])
		return false;
	for (; id < sbm->next_mb_id; id++) {
		if (sbm->mb_states[virtio_mem_sbm_mb_idx(sbm, id)] == state) {
			*mb_id = id;
			return true;
		}
	}
	return false;
}

/**
 * virtio_mem_sbm_prev_mb() - the previous used memory block in a state
 * @sbm: the state
 * @state: the state to look for
 * @mb_id: in: the last block returned, or VIRTIO_MEM_SBM_NO_MB to start;
 *	out: the next one, highest first
 *
 * Return: false when there is none left.
 */
bool virtio_mem_sbm_prev_mb(const struct virtio_mem_sbm *sbm,
			    enum virtio_mem_sbm_mb_state state,
			    unsigned long *mb_id)
{
	unsigned long id = *mb_id == VIRTIO_MEM_SBM_NO_MB ? sbm->next_mb_id :
			   *mb_id;

	if (!sbm->mb_count[state])
		return false;
	while (id-- > sbm->first_mb_id) {
		if (sbm->mb_states[virtio_mem_sbm_mb_idx(sbm, id)] == state) {
			*mb_id = id;
			return true;
		}
	}
	return false;
}

/**
 * virtio_mem_bbm_init() - set up big block state, all UNUSED
 * @bbm: the state to set up
 * @first_bb_id: first big block the device can use
 * @last_bb_id: last big block the device can use
 *
 * Return: 0, -EINVAL for an empty range, or -ENOMEM.
 */
int virtio_mem_bbm_init(struct virtio_mem_bbm *bbm, unsigned long first_bb_id,
			unsigned long last_bb_id)
{
	memset(bbm, 0, sizeof(*bbm));
	if (last_bb_id < first_bb_id)
		return -EINVAL;
	bbm->bb_states = kvzalloc(last_bb_id - first_bb_id + 1, GFP_KERNEL);
	if (!bbm->bb_states)
		return -ENOMEM;
	bbm->first_bb_id = first_bb_id;
	bbm->last_bb_id = last_bb_id;
	bbm->bb_count[VIRTIO_MEM_BBM_BB_UNUSED] = last_bb_id - first_bb_id + 1;
	return 0;
}

/**
 * virtio_mem_bbm_destroy() - free big block state
 * @bbm: the state
 */
void virtio_mem_bbm_destroy(struct virtio_mem_bbm *bbm)
{
	kvfree(bbm->bb_states);
	bbm->bb_states = NULL;
}

/**
 * virtio_mem_bbm_get_bb_state() - the state of a big block
 * @bbm: the state
 * @bb_id: the big block; ones outside the usable range read as UNUSED
 *
 * Return: its state.
 */
enum virtio_mem_bbm_bb_state
virtio_mem_bbm_get_bb_state(const struct virtio_mem_bbm *bbm,
			    unsigned long bb_id)
{
	if (!bbm->bb_states || bb_id < bbm->first_bb_id ||
	    bb_id > bbm->last_bb_id)
		return VIRTIO_MEM_BBM_BB_UNUSED;
	return bbm->bb_states[bb_id - bbm->first_bb_id];
}

/**
 * virtio_mem_bbm_set_bb_state() - the one place a big block changes state
 * @bbm: the state
 * @bb_id: the big block
 * @state: its new state
 */
void virtio_mem_bbm_set_bb_state(struct virtio_mem_bbm *bbm,
				 unsigned long bb_id,
				 enum virtio_mem_bbm_bb_state state)
{
	enum virtio_mem_bbm_bb_state old;

	if (WARN_ON_ONCE(!bbm->bb_states || bb_id < bbm->first_bb_id ||
			 bb_id > bbm->last_bb_id ||
			 state >= VIRTIO_MEM_BBM_BB_COUNT))
		return;
	old = bbm->bb_states[bb_id - bbm->first_bb_id];
	bbm->bb_states[bb_id - bbm->first_bb_id] = state;
	bbm->bb_count[old]--;
	bbm->bb_count[state]++;
}

/**
 * virtio_mem_sbm_hold_add() - hold back the pages of a memory block
 * @hold: the hold list
 * @mb_id: the memory block being onlined
 *
 * Called for every chunk of the block that gets onlined, so a block that
 * is already the last one held counts once.
 *
 * Return: true if @mb_id is held, false when the list is full.
 */
bool virtio_mem_sbm_hold_add(struct virtio_mem_sbm_hold *hold,
			     unsigned long mb_id)
{
	if (hold->nr && hold->mb_ids[hold->nr - 1] == mb_id)
		return true;
	if (hold->nr == VIRTIO_MEM_SBM_HOLD_MAX)
		return false;
	hold->mb_ids[hold->nr++] = mb_id;
	return true;
}

/**
 * virtio_mem_sbm_hold_test() - are the pages of a memory block held?
 * @hold: the hold list
 * @mb_id: the memory block
 *
 * Return: true if @mb_id is on the list.
 */
bool virtio_mem_sbm_hold_test(const struct virtio_mem_sbm_hold *hold,
			      unsigned long mb_id)
{
	unsigned int i;

	for (i = 0; i < hold->nr; i++)
		if (hold->mb_ids[i] == mb_id)
			return true;
	return false;
}

/**
 * virtio_mem_sbm_hold_forget() - take a memory block off the list
 * @hold: the hold list
 * @mb_id: the memory block, whose pages the caller now hands over
 *
 * Return: true if @mb_id was on the list.
 */
bool virtio_mem_sbm_hold_forget(struct virtio_mem_sbm_hold *hold,
				unsigned long mb_id)
{
	unsigned int i;

	for (i = 0; i < hold->nr; i++) {
		if (hold->mb_ids[i] != mb_id)
			continue;
		hold->mb_ids[i] = hold->mb_ids[--hold->nr];
		return true;
	}
	return false;
}

/**
 * virtio_mem_sbm_next_run() - the next run of (un)plugged subblocks
 * @sbm: the state
 * @mb_id: the memory block
 * @plugged: look for plugged (true) or unplugged subblocks
 * @sb_id: in: where the last run started (0 at first); out: the next one
 * @count: in: the last run's length (0 at first); out: the next one's
 *
 * Return: true while there is a run.
 */
bool virtio_mem_sbm_next_run(const struct virtio_mem_sbm *sbm,
			     unsigned long mb_id, bool plugged,
			     unsigned int *sb_id, unsigned int *count)
{
	const unsigned int from = *sb_id + *count;

	if (plugged)
		*sb_id = virtio_mem_sbm_find_plugged(sbm, mb_id, from, count);
	else
		*sb_id = virtio_mem_sbm_find_unplugged(sbm, mb_id, from, count);
	return *count;
}
