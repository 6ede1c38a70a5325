// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: Sub Block Mode, acting. The policy says which subblocks to
 * plug next; this file sends the request, updates the state and hands the
 * memory to Linux.
 *
 * Plugging a memory block that is not added yet: take it, plug its first
 * subblocks, mark them and the block (OFFLINE or OFFLINE_PARTIAL), drop
 * the lock and add it; onlining, if the system does it automatically,
 * happens inside the add and the notifier moves the block to its online
 * state. If adding fails, the subblocks are unplugged again.
 */

#include <linux/errno.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/sched.h>

#include "virtio_mem.h"

static enum virtio_mem_outcome
virtio_mem_sbm_send_plug(struct virtio_mem *vm, unsigned long mb_id,
			 unsigned int sb_id, unsigned int count)
{
	return virtio_mem_plug_request(vm,
				       virtio_mem_sb_addr(&vm->geo, mb_id, sb_id),
				       (u64)count * vm->geo.sb_size);
}

static enum virtio_mem_outcome
virtio_mem_sbm_send_unplug(struct virtio_mem *vm, unsigned long mb_id,
			   unsigned int sb_id, unsigned int count)
{
	return virtio_mem_send_unplug(vm,
				      virtio_mem_sb_addr(&vm->geo, mb_id, sb_id),
				      (u64)count * vm->geo.sb_size);
}

/*
 * Plug subblocks of a memory block that is added to Linux. If it is
 * online, the new pages go to the buddy right away.
 *
 * Must be called with vm->hotplug_mutex held, so that the block cannot go
 * online or offline meanwhile.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_plug_added(struct virtio_mem *vm,
			  const struct virtio_mem_sbm_step *step)
{
	const u64 addr = virtio_mem_sb_addr(&vm->geo, step->mb_id, step->sb_id);
	const u64 size = (u64)step->count * vm->geo.sb_size;
	enum virtio_mem_sbm_mb_state state;
	enum virtio_mem_outcome outcome;

	lockdep_assert_held(&vm->hotplug_mutex);

	/* Its pages are being onlined or offlined as the bitmap says now. */
	if (virtio_mem_mm_busy(vm, step->mb_id, 1))
		return VIRTIO_MEM_OUTCOME_IN_TRANSITION;
	outcome = virtio_mem_sbm_send_plug(vm, step->mb_id, step->sb_id,
					   step->count);
	if (outcome)
		return outcome;
	virtio_mem_sbm_set_sb_plugged(&vm->sbm, step->mb_id, step->sb_id,
				      step->count);
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, step->mb_id);
	if (virtio_mem_sbm_state_online(state) &&
	    !virtio_mem_mm_held(vm, step->mb_id))
		virtio_mem_mm_fake_online(PHYS_PFN(addr), PHYS_PFN(size));
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, step->mb_id);
	return VIRTIO_MEM_OUTCOME_DONE;
}

/*
 * Plug subblocks of a memory block that is not added yet, then add it.
 * On failure the block ends up UNUSED again (or PLUGGED, if even the
 * unplug failed) and nothing is left added.
 *
 * Must be called without vm->hotplug_mutex: adding calls the notifier.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_plug_and_add(struct virtio_mem *vm,
			    const struct virtio_mem_sbm_step *step)
{
	enum virtio_mem_outcome outcome, undo;
	unsigned long mb_id = step->mb_id, taken;
	int rc;

	/* Never-used blocks skipped on the way (the gap) stay UNUSED. */
	mutex_lock(&vm->hotplug_mutex);
	while (vm->sbm.next_mb_id <= mb_id) {
		rc = virtio_mem_sbm_new_mb(&vm->sbm, &taken);
		if (rc) {
			mutex_unlock(&vm->hotplug_mutex);
			/* -ENOSPC: every usable memory block is in use. */
			return rc == -ENOMEM ? VIRTIO_MEM_OUTCOME_NOMEM :
					       VIRTIO_MEM_OUTCOME_NO_SPACE;
		}
	}
	mutex_unlock(&vm->hotplug_mutex);

	outcome = virtio_mem_sbm_send_plug(vm, mb_id, step->sb_id, step->count);
	if (outcome)
		return outcome;

	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_sbm_set_sb_plugged(&vm->sbm, mb_id, step->sb_id,
				      step->count);
	virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
				    virtio_mem_sbm_state_for(&vm->sbm, mb_id,
							     false, false));
	mutex_unlock(&vm->hotplug_mutex);

	rc = virtio_mem_mm_add_mb(vm, mb_id);
	if (!rc)
		return VIRTIO_MEM_OUTCOME_DONE;

	dev_warn_ratelimited(&vm->vdev->dev,
			     "adding memory block %lu failed: %d\n", mb_id, rc);
	undo = virtio_mem_sbm_send_unplug(vm, mb_id, step->sb_id, step->count);
	mutex_lock(&vm->hotplug_mutex);
	if (!undo) {
		virtio_mem_sbm_set_sb_unplugged(&vm->sbm, mb_id, step->sb_id,
						step->count);
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    VIRTIO_MEM_SBM_MB_UNUSED);
	} else {
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    VIRTIO_MEM_SBM_MB_PLUGGED);
	}
	mutex_unlock(&vm->hotplug_mutex);
	/* A broken device trumps the add failure. */
	if (undo == VIRTIO_MEM_OUTCOME_FAILED)
		return undo;
	return virtio_mem_add_outcome(rc);
}

/**
 * virtio_mem_sbm_readd_plugged() - add blocks left plugged but not added
 * @vm: the device
 *
 * A failed add whose undo failed too (or a removal whose unplug failed)
 * leaves a block PLUGGED: counted as plugged, but Linux does not have it.
 * When the guest is to keep that memory, try to add each such block again.
 *
 * Context: the worker.
 *
 * Return: %VIRTIO_MEM_OUTCOME_DONE, or NOMEM or ADD_FAILED when adding
 * fails again.
 */
enum virtio_mem_outcome virtio_mem_sbm_readd_plugged(struct virtio_mem *vm)
{
	unsigned long mb_id;
	int rc;

	for (;;) {
		mutex_lock(&vm->hotplug_mutex);
		mb_id = VIRTIO_MEM_SBM_NO_MB;
		if (!virtio_mem_sbm_next_mb(&vm->sbm, VIRTIO_MEM_SBM_MB_PLUGGED,
					    &mb_id)) {
			mutex_unlock(&vm->hotplug_mutex);
			return VIRTIO_MEM_OUTCOME_DONE;
		}
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    virtio_mem_sbm_state_for(&vm->sbm,
								     mb_id, false,
								     false));
		mutex_unlock(&vm->hotplug_mutex);
		rc = virtio_mem_mm_add_mb(vm, mb_id);
		if (rc) {
			mutex_lock(&vm->hotplug_mutex);
			virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
						    VIRTIO_MEM_SBM_MB_PLUGGED);
			mutex_unlock(&vm->hotplug_mutex);
			return virtio_mem_add_outcome(rc);
		}
	}
}

/*
 * One plug step (see virtio_mem.h). A hole in an added block is filled
 * without dropping vm->hotplug_mutex after planning, so that the block
 * cannot go online or offline in between. A new block is plugged and
 * added without the mutex, since adding calls the notifier.
 */
static enum virtio_mem_plan
virtio_mem_sbm_plug_step(struct virtio_mem *vm,
			 struct virtio_mem_plug_facts *facts,
			 enum virtio_mem_outcome *outcome)
{
	struct virtio_mem_sbm_step step;
	enum virtio_mem_plan plan;

	mutex_lock(&vm->hotplug_mutex);
	plan = virtio_mem_sbm_plan_plug(&vm->sbm, &vm->geo, facts, &step);
	if (plan != VIRTIO_MEM_PLAN_STEP) {
		mutex_unlock(&vm->hotplug_mutex);
		return plan;
	}
	if (!step.add) {
		*outcome = virtio_mem_sbm_plug_added(vm, &step);
		mutex_unlock(&vm->hotplug_mutex);
	} else {
		mutex_unlock(&vm->hotplug_mutex);
		virtio_mem_mm_hold_make_room(vm);
		*outcome = virtio_mem_sbm_plug_and_add(vm, &step);
	}
	if (!*outcome)
		facts->nr_sbs -= step.count;
	return plan;
}

/**
 * virtio_mem_sbm_plug() - plug toward a bigger requested_size
 * @vm: the device
 * @diff: bytes still to plug
 *
 * New kernel-zone memory blocks reach the buddy only when the pass ends
 * (see "Holding back freshly added memory" in virtio_mem_notify.c).
 *
 * Context: the worker.
 *
 * Return: as virtio_mem_plug_loop().
 */
enum virtio_mem_outcome virtio_mem_sbm_plug(struct virtio_mem *vm, u64 diff)
{
	enum virtio_mem_outcome outcome;

	virtio_mem_mm_hold_begin(vm);
	outcome = virtio_mem_plug_loop(vm, diff, virtio_mem_sbm_plug_step);
	virtio_mem_mm_hold_end(vm);
	return outcome;
}

/*
 * Unplug plugged subblocks of a block whose memory Linux does not use (not
 * added, offline, or just removed): highest first, at most *@nr_sbs, and
 * not the memmap of a block that is still added.
 *
 * Must be called with vm->hotplug_mutex held.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_unplug_unused_sbs(struct virtio_mem *vm, unsigned long mb_id,
				 unsigned long *nr_sbs)
{
	enum virtio_mem_outcome outcome;
	unsigned int sb_id, count, first;

	lockdep_assert_held(&vm->hotplug_mutex);

	first = virtio_mem_sbm_first_free_sb(&vm->sbm,
					     virtio_mem_sbm_get_mb_state(&vm->sbm,
									 mb_id));
	while (*nr_sbs) {
		sb_id = virtio_mem_sbm_find_plugged_rev(&vm->sbm, mb_id,
							vm->sbm.sbs_per_mb,
							&count);
		if (!count || sb_id + count <= first)
			break;
		if (sb_id < first) {
			count -= first - sb_id;
			sb_id = first;
		}
		if (count > *nr_sbs) {
			sb_id += count - *nr_sbs;
			count = *nr_sbs;
		}
		outcome = virtio_mem_sbm_send_unplug(vm, mb_id, sb_id, count);
		if (outcome)
			return outcome;
		virtio_mem_sbm_set_sb_unplugged(&vm->sbm, mb_id, sb_id, count);
		*nr_sbs -= count;
	}
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, mb_id);
	return VIRTIO_MEM_OUTCOME_DONE;
}

/*
 * A block that is not added any more: what is still plugged is unplugged
 * (all of it: nobody can use it), and it becomes free for reuse.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_removed(struct virtio_mem *vm, unsigned long mb_id,
		       unsigned long *nr_sbs)
{
	unsigned long all = vm->sbm.sbs_per_mb;
	enum virtio_mem_outcome outcome;
	unsigned long plugged;

	mutex_lock(&vm->hotplug_mutex);
	clear_bit(mb_id - vm->sbm.first_mb_id, vm->sbm_sweep_failed);
	plugged = virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id);
	virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id, VIRTIO_MEM_SBM_MB_PLUGGED);
	outcome = virtio_mem_sbm_unplug_unused_sbs(vm, mb_id, &all);
	if (!virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id))
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    VIRTIO_MEM_SBM_MB_UNUSED);
	plugged -= virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id);
	mutex_unlock(&vm->hotplug_mutex);
	*nr_sbs -= min(*nr_sbs, plugged);
	return outcome;
}

/*
 * Is @mb_id added with nothing plugged but its memmap, and may that go too
 * (*@nr_sbs)? Then the block should go.
 */
static bool virtio_mem_sbm_empty_added(struct virtio_mem *vm,
				       unsigned long mb_id,
				       unsigned long nr_sbs)
{
	unsigned int plugged;
	bool empty;

	mutex_lock(&vm->hotplug_mutex);
	plugged = virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id);
	empty = virtio_mem_sbm_state_added(virtio_mem_sbm_get_mb_state(&vm->sbm,
								       mb_id)) &&
		!virtio_mem_mm_busy(vm, mb_id, 1) &&
		plugged <= vm->sbm.memmap_sbs && plugged <= nr_sbs;
	mutex_unlock(&vm->hotplug_mutex);
	return empty;
}

/* Does plugged subblock @sb_id of @mb_id look free (no migration needed)? */
static bool virtio_mem_sbm_sb_free(struct virtio_mem *vm, unsigned long mb_id,
				   unsigned int sb_id)
{
	return virtio_mem_mm_range_free(PHYS_PFN(virtio_mem_sb_addr(&vm->geo,
								    mb_id,
								    sb_id)),
					PHYS_PFN(vm->geo.sb_size));
}

/*
 * Take @count plugged subblocks of online @mb_id from Linux and unplug them:
 * the OOM guard, fake offline, the request; given back if the request fails.
 *
 * Must be called with vm->hotplug_mutex held.
 *
 * Return: DONE; UNMOVABLE if Linux would not give them up; MEMORY_PRESSURE
 * at the OOM guard; NOMEM; else what the request came to.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_take_and_unplug(struct virtio_mem *vm, unsigned long mb_id,
			       unsigned int sb_id, unsigned int count)
{
	const unsigned long pfn = PHYS_PFN(virtio_mem_sb_addr(&vm->geo, mb_id,
							       sb_id));
	const unsigned long nr_pages = count * PHYS_PFN(vm->geo.sb_size);
	enum virtio_mem_outcome outcome;

	lockdep_assert_held(&vm->hotplug_mutex);

	outcome = virtio_mem_take(vm, pfn, nr_pages);
	if (outcome)
		return outcome;
	outcome = virtio_mem_sbm_send_unplug(vm, mb_id, sb_id, count);
	if (outcome) {
		virtio_mem_mm_fake_online(pfn, nr_pages);
		return outcome;
	}
	virtio_mem_sbm_set_sb_unplugged(&vm->sbm, mb_id, sb_id, count);
	return VIRTIO_MEM_OUTCOME_DONE;
}

/*
 * Take online subblocks of @mb_id one by one: in the first pass only those
 * that look free (no migration), in the second any. At most *@nr_sbs.
 *
 * Must be called with vm->hotplug_mutex held.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_unplug_online_sbs(struct virtio_mem *vm, unsigned long mb_id,
				 unsigned long *nr_sbs)
{
	enum virtio_mem_outcome outcome = VIRTIO_MEM_OUTCOME_DONE;
	const unsigned int first = vm->sbm.memmap_sbs;
	unsigned int sb_id, pass;

	lockdep_assert_held(&vm->hotplug_mutex);

	for (pass = 0; pass < 2; pass++) {
		for (sb_id = vm->sbm.sbs_per_mb; sb_id-- > first && *nr_sbs;) {
			if (atomic_read(&vm->config_changed)) {
				outcome = VIRTIO_MEM_OUTCOME_CONFIG_CHANGED;
				goto out;
			}
			if (!virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id,
							    sb_id, 1))
				continue;
			if (!pass && !virtio_mem_sbm_sb_free(vm, mb_id, sb_id))
				continue;
			outcome = virtio_mem_sbm_take_and_unplug(vm, mb_id,
								 sb_id, 1);
			if (outcome == VIRTIO_MEM_OUTCOME_UNMOVABLE)
				continue;
			if (outcome)
				goto out;
			(*nr_sbs)--;
		}
	}
	outcome = VIRTIO_MEM_OUTCOME_DONE;
	/*
	 * More was wanted and some is still plugged, so what is left would
	 * not move.
	 */
	if (*nr_sbs && virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id) > first)
		outcome = VIRTIO_MEM_OUTCOME_UNMOVABLE;
out:
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, mb_id);
	return outcome;
}

/*
 * Kernel zones: take the runs of plugged subblocks of @mb_id that look
 * free, highest first, at most *@nr_sbs: one alloc_contig_range() and one
 * request per run. A run that turns out busy is left to the next pass.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_unplug_free_runs(struct virtio_mem *vm, unsigned long mb_id,
				unsigned long *nr_sbs)
{
	enum virtio_mem_outcome outcome = VIRTIO_MEM_OUTCOME_DONE;
	const unsigned int first = vm->sbm.memmap_sbs;
	unsigned int end, sb_id = vm->sbm.sbs_per_mb;
	enum virtio_mem_sbm_mb_state state;

	mutex_lock(&vm->hotplug_mutex);
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	if ((state != VIRTIO_MEM_SBM_MB_KERNEL &&
	     state != VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL) ||
	    virtio_mem_mm_busy(vm, mb_id, 1))
		goto out;
	while (*nr_sbs && sb_id > first) {
		/* The run [sb_id, end) ends below the last one. */
		for (end = sb_id; sb_id > first && end - sb_id < *nr_sbs &&
		     virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id, sb_id - 1,
						    1) &&
		     virtio_mem_sbm_sb_free(vm, mb_id, sb_id - 1); sb_id--)
			;
		if (sb_id == end) {
			sb_id--;
			continue;
		}
		if (atomic_read(&vm->config_changed)) {
			outcome = VIRTIO_MEM_OUTCOME_CONFIG_CHANGED;
			break;
		}
		outcome = virtio_mem_sbm_take_and_unplug(vm, mb_id, sb_id,
							 end - sb_id);
		if (outcome == VIRTIO_MEM_OUTCOME_UNMOVABLE) {
			outcome = VIRTIO_MEM_OUTCOME_DONE;
			continue;
		}
		if (outcome)
			break;
		*nr_sbs -= end - sb_id;
	}
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, mb_id);
out:
	mutex_unlock(&vm->hotplug_mutex);
	return outcome;
}

/*
 * Offline and remove an online block all of whose memory is to go, in one
 * sweep: offlining migrates everything in one pass, much faster than
 * taking it subblock by subblock. Not again for a block where that ran out
 * of time (a page that never moves): picking it apart is bounded per
 * subblock, and what it leaves behind would only run out of time again.
 * Returns whether the block is gone.
 */
static bool virtio_mem_sbm_sweep(struct virtio_mem *vm, unsigned long mb_id)
{
	const unsigned long bit = mb_id - vm->sbm.first_mb_id;
	int rc;

	if (test_bit(bit, vm->sbm_sweep_failed))
		return false;
	rc = virtio_mem_mm_offline_and_remove_mb(vm, mb_id);
	if (rc == -EINTR && !atomic_read(&vm->config_changed))
		set_bit(bit, vm->sbm_sweep_failed);
	return !rc;
}

/*
 * Unplug what we can of one memory block, at most *@nr_sbs subblocks (the
 * mode's unplug_one, see virtio_mem.h); remove the block from Linux once
 * nothing in it is plugged. A block that core-mm is onlining or offlining
 * right now is left for the next pass, as memory that would not move is.
 */
static enum virtio_mem_outcome
virtio_mem_sbm_unplug_mb(struct virtio_mem *vm,
			 const struct virtio_mem_candidate *cand,
			 unsigned long *nr_sbs)
{
	const unsigned long mb_id = cand->mb_id;
	enum virtio_mem_outcome outcome;
	enum virtio_mem_sbm_mb_state state;
	unsigned int plugged;

	mutex_lock(&vm->hotplug_mutex);
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	plugged = virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id);

	if (virtio_mem_mm_busy(vm, mb_id, 1)) {
		mutex_unlock(&vm->hotplug_mutex);
		return VIRTIO_MEM_OUTCOME_UNMOVABLE;
	}
	if (!virtio_mem_sbm_state_online(state)) {
		outcome = virtio_mem_sbm_unplug_unused_sbs(vm, mb_id, nr_sbs);
		/* A block that is not added and now empty can be reused. */
		if (state == VIRTIO_MEM_SBM_MB_PLUGGED &&
		    !virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id))
			virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
						    VIRTIO_MEM_SBM_MB_UNUSED);
		mutex_unlock(&vm->hotplug_mutex);
	} else if (plugged && *nr_sbs >= plugged) {
		mutex_unlock(&vm->hotplug_mutex);
		if (!virtio_mem_may_take_now(vm, (u64)plugged * vm->geo.sb_size))
			return VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE;
		if (virtio_mem_sbm_sweep(vm, mb_id))
			return virtio_mem_sbm_removed(vm, mb_id, nr_sbs);
		/*
		 * Pick it apart instead, if it is still online and ours to
		 * pick: user space may have offlined it meanwhile, or be
		 * onlining it again.
		 */
		mutex_lock(&vm->hotplug_mutex);
		state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
		if (virtio_mem_mm_busy(vm, mb_id, 1))
			outcome = VIRTIO_MEM_OUTCOME_UNMOVABLE;
		else if (virtio_mem_sbm_state_online(state))
			outcome = virtio_mem_sbm_unplug_online_sbs(vm, mb_id,
								   nr_sbs);
		else
			outcome = virtio_mem_sbm_unplug_unused_sbs(vm, mb_id,
								   nr_sbs);
		mutex_unlock(&vm->hotplug_mutex);
	} else {
		outcome = virtio_mem_sbm_unplug_online_sbs(vm, mb_id, nr_sbs);
		mutex_unlock(&vm->hotplug_mutex);
	}
	if (outcome && outcome != VIRTIO_MEM_OUTCOME_UNMOVABLE)
		return outcome;

	/*
	 * Offlining skips fake-offline pages, so removing a block with only
	 * its memmap plugged is cheap.
	 */
	if (virtio_mem_sbm_empty_added(vm, mb_id, *nr_sbs) &&
	    !virtio_mem_mm_offline_and_remove_mb(vm, mb_id))
		return virtio_mem_sbm_removed(vm, mb_id, nr_sbs) ?: outcome;
	return outcome;
}

/*
 * Rank the used memory blocks for unplug into @cand (room for @nr_mbs),
 * from a snapshot of which of their plugged subblocks look free, counted
 * into @free_sbs (zeroed, room for @nr_mbs). Returns how many there are.
 */
static unsigned long virtio_mem_sbm_rank(struct virtio_mem *vm,
					 struct virtio_mem_candidate *cand,
					 u16 *free_sbs, unsigned long nr_mbs)
{
	unsigned long i, n, mb_id;
	unsigned int sb_id;

	mutex_lock(&vm->hotplug_mutex);
	nr_mbs = min(nr_mbs, vm->sbm.next_mb_id - vm->sbm.first_mb_id);
	for (i = 0; i < nr_mbs; i++) {
		mb_id = vm->sbm.first_mb_id + i;
		if (!virtio_mem_sbm_state_online(virtio_mem_sbm_get_mb_state(&vm->sbm,
									     mb_id)))
			continue;
		for (sb_id = 0; sb_id < vm->sbm.sbs_per_mb; sb_id++)
			if (virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id, sb_id, 1) &&
			    virtio_mem_sbm_sb_free(vm, mb_id, sb_id))
				free_sbs[i]++;
	}
	n = virtio_mem_sbm_unplug_order(&vm->sbm, free_sbs,
					READ_ONCE(virtio_mem_unplug_online),
					cand, nr_mbs);
	mutex_unlock(&vm->hotplug_mutex);
	return n;
}

/**
 * virtio_mem_sbm_unplug() - unplug toward a smaller requested_size
 * @vm: the device
 * @diff: bytes to unplug
 *
 * Context: the worker.
 *
 * Return: as virtio_mem_unplug_walk(), or MEMORY_PRESSURE when the OOM
 * guard stopped us, NOMEM, or what a failed request came to.
 */
enum virtio_mem_outcome virtio_mem_sbm_unplug(struct virtio_mem *vm, u64 diff)
{
	enum virtio_mem_outcome outcome = VIRTIO_MEM_OUTCOME_DONE;
	unsigned long nr_sbs = div64_u64(diff, vm->geo.sb_size);
	struct virtio_mem_candidate *cand;
	unsigned long i, n, nr_mbs;
	u16 *free_sbs;
	bool all;

	if (!nr_sbs)
		return VIRTIO_MEM_OUTCOME_DONE;

	mutex_lock(&vm->hotplug_mutex);
	nr_mbs = vm->sbm.next_mb_id - vm->sbm.first_mb_id;
	all = nr_sbs >= vm->sbm.nr_sbs_plugged;
	mutex_unlock(&vm->hotplug_mutex);
	cand = kvmalloc_array(nr_mbs, sizeof(*cand), GFP_KERNEL);
	free_sbs = kvcalloc(nr_mbs, sizeof(*free_sbs), GFP_KERNEL);
	if (!cand || !free_sbs) {
		outcome = VIRTIO_MEM_OUTCOME_NOMEM;
		goto out;
	}
	n = virtio_mem_sbm_rank(vm, cand, free_sbs, nr_mbs);

	/*
	 * Unplugging all of it: kernel-zone blocks first give up what is free,
	 * all of them, before any block is offlined or migrated. That takes
	 * long and starts kernel threads, whose stacks and slab would
	 * otherwise land in the free memory of the blocks still to come, and
	 * pin them there. (When some memory stays, whatever got pinned can
	 * simply be part of what stays; the sweep is slower than offlining
	 * free blocks whole, so it is not done then.)
	 */
	for (i = 0; all && i < n && nr_sbs; i++) {
		outcome = virtio_mem_sbm_unplug_free_runs(vm, cand[i].mb_id,
							  &nr_sbs);
		if (outcome)
			goto out;
	}
	/* After a sweep, the blocks it emptied must go too. */
	outcome = virtio_mem_unplug_walk(vm, cand, n, &nr_sbs, all,
					 virtio_mem_sbm_unplug_mb);
out:
	kvfree(free_sbs);
	kvfree(cand);
	return outcome;
}

/**
 * virtio_mem_sbm_remove_all() - give back all memory, as far as possible
 * @vm: the device, with the worker stopped
 *
 * Used when the driver goes away: like unplugging to zero, but without the
 * OOM guard's patience. Memory that Linux cannot give up stays added and
 * plugged, online, its unplugged parts fake offline; offline blocks always
 * go, so that nothing can online their unplugged parts once we are gone.
 * A broken device gets no requests: its memory is only removed from Linux.
 */
void virtio_mem_sbm_remove_all(struct virtio_mem *vm)
{
	enum virtio_mem_sbm_mb_state state;
	unsigned long mb_id, nr_sbs;

	for (mb_id = vm->sbm.first_mb_id; mb_id < vm->sbm.next_mb_id; mb_id++) {
		nr_sbs = vm->sbm.sbs_per_mb;
		mutex_lock(&vm->hotplug_mutex);
		state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
		mutex_unlock(&vm->hotplug_mutex);
		if (state == VIRTIO_MEM_SBM_MB_UNUSED)
			continue;
		if (virtio_mem_sbm_state_added(state) &&
		    virtio_mem_mm_offline_and_remove_mb(vm, mb_id)) {
			if (!virtio_mem_sbm_state_online(state))
				dev_err(&vm->vdev->dev,
					"offline memory block %lu could not be removed\n",
					mb_id);
			continue;
		}
		if (vm->broken) {
			mutex_lock(&vm->hotplug_mutex);
			virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
						    VIRTIO_MEM_SBM_MB_PLUGGED);
			mutex_unlock(&vm->hotplug_mutex);
			continue;
		}
		if (virtio_mem_sbm_removed(vm, mb_id, &nr_sbs) ==
		    VIRTIO_MEM_OUTCOME_FAILED)
			break;
	}
}
