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
#include <trace/events/virtio_mem.h>

static int virtio_mem_sbm_send_plug(struct virtio_mem *vm, unsigned long mb_id,
				    unsigned int sb_id, unsigned int count)
{
	struct virtio_mem_cfg cfg;
	int rc;

	rc = virtio_mem_send_plug(vm,
				  virtio_mem_sb_addr(&vm->geo, mb_id, sb_id),
				  (u64)count * vm->geo.sb_size);
	if (rc != -EIO)
		return rc;
	virtio_mem_read_config(vm, &cfg);
	return virtio_mem_plug_error(&vm->cfg, &cfg);
}

static int virtio_mem_sbm_send_unplug(struct virtio_mem *vm,
				      unsigned long mb_id, unsigned int sb_id,
				      unsigned int count)
{
	return virtio_mem_send_unplug(vm, virtio_mem_sb_addr(&vm->geo, mb_id,
							      sb_id),
				      (u64)count * vm->geo.sb_size);
}

/*
 * Plug subblocks of a memory block that is added to Linux. If it is
 * online, the new pages go to the buddy right away.
 *
 * Must be called with vm->hotplug_mutex held, so that the block cannot go
 * online or offline meanwhile.
 */
static int virtio_mem_sbm_plug_added(struct virtio_mem *vm,
				     const struct virtio_mem_sbm_step *step)
{
	const u64 addr = virtio_mem_sb_addr(&vm->geo, step->mb_id, step->sb_id);
	const u64 size = (u64)step->count * vm->geo.sb_size;
	enum virtio_mem_sbm_mb_state state;
	int rc;

	lockdep_assert_held(&vm->hotplug_mutex);

	/* Its pages are being onlined or offlined as the bitmap says now. */
	if (virtio_mem_mm_busy(vm, step->mb_id, 1))
		return -EINPROGRESS;
	rc = virtio_mem_sbm_send_plug(vm, step->mb_id, step->sb_id,
				      step->count);
	if (rc)
		return rc;
	virtio_mem_sbm_set_sb_plugged(&vm->sbm, step->mb_id, step->sb_id,
				      step->count);
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, step->mb_id);
	if (virtio_mem_sbm_state_online(state) &&
	    !virtio_mem_mm_held(vm, step->mb_id))
		virtio_mem_mm_fake_online(PHYS_PFN(addr), PHYS_PFN(size));
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, step->mb_id);
	return 0;
}

/*
 * Plug subblocks of a memory block that is not added yet, then add it.
 * On failure the block ends up UNUSED again (or PLUGGED, if even the
 * unplug failed) and nothing is left added.
 *
 * Must be called without vm->hotplug_mutex: adding calls the notifier.
 */
static int virtio_mem_sbm_plug_and_add(struct virtio_mem *vm,
				       const struct virtio_mem_sbm_step *step)
{
	unsigned long mb_id = step->mb_id;
	int rc, rc_unplug;

	mutex_lock(&vm->hotplug_mutex);
	if (mb_id == vm->sbm.next_mb_id) {
		rc = virtio_mem_sbm_new_mb(&vm->sbm, &mb_id);
		if (rc) {
			mutex_unlock(&vm->hotplug_mutex);
			return rc;
		}
	}
	mutex_unlock(&vm->hotplug_mutex);

	rc = virtio_mem_sbm_send_plug(vm, mb_id, step->sb_id, step->count);
	if (rc)
		return rc;

	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_sbm_set_sb_plugged(&vm->sbm, mb_id, step->sb_id,
				      step->count);
	virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
				    virtio_mem_sbm_state_for(&vm->sbm, mb_id,
							     false, false));
	mutex_unlock(&vm->hotplug_mutex);

	rc = virtio_mem_mm_add_mb(vm, mb_id);
	if (!rc)
		return 0;

	dev_warn_ratelimited(&vm->vdev->dev,
			     "adding memory block %lu failed: %d\n", mb_id, rc);
	rc_unplug = virtio_mem_sbm_send_unplug(vm, mb_id, step->sb_id,
					       step->count);
	mutex_lock(&vm->hotplug_mutex);
	if (!rc_unplug) {
		virtio_mem_sbm_set_sb_unplugged(&vm->sbm, mb_id, step->sb_id,
						step->count);
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    VIRTIO_MEM_SBM_MB_UNUSED);
	} else {
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    VIRTIO_MEM_SBM_MB_PLUGGED);
	}
	mutex_unlock(&vm->hotplug_mutex);
	/* A broken device trumps the add failure; -EEXIST stands for any. */
	if (rc_unplug == -EIO)
		return rc_unplug;
	return rc == -ENOMEM ? rc : -EEXIST;
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
 * Return: 0, or -ENOMEM/-EEXIST when adding fails again.
 */
int virtio_mem_sbm_readd_plugged(struct virtio_mem *vm)
{
	unsigned long mb_id;
	int rc;

	for (;;) {
		mutex_lock(&vm->hotplug_mutex);
		mb_id = VIRTIO_MEM_SBM_NO_MB;
		if (!virtio_mem_sbm_next_mb(&vm->sbm, VIRTIO_MEM_SBM_MB_PLUGGED,
					    &mb_id)) {
			mutex_unlock(&vm->hotplug_mutex);
			return 0;
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
			return rc == -ENOMEM ? rc : -EEXIST;
		}
	}
}

/* One plug pass: steps from the policy until it says stop. */
static int virtio_mem_sbm_plug_pass(struct virtio_mem *vm,
				    struct virtio_mem_plug_facts *facts)
{
	struct virtio_mem_sbm_step step;
	enum virtio_mem_plan plan;
	int rc;

	for (;;) {
		if (atomic_read(&vm->config_changed))
			return -EAGAIN;

		facts->kernel_free = virtio_mem_mm_kernel_free();
		mutex_lock(&vm->hotplug_mutex);
		plan = virtio_mem_sbm_plan_plug(&vm->sbm, &vm->geo, facts,
						&step);
		if (plan != VIRTIO_MEM_PLAN_STEP) {
			mutex_unlock(&vm->hotplug_mutex);
			return virtio_mem_plan_errno(plan);
		}
		if (!step.add) {
			rc = virtio_mem_sbm_plug_added(vm, &step);
			mutex_unlock(&vm->hotplug_mutex);
		} else {
			mutex_unlock(&vm->hotplug_mutex);
			/* A full hold list: let the buddy have those first. */
			if (virtio_mem_mm_hold_full(vm)) {
				virtio_mem_mm_hold_end(vm);
				virtio_mem_mm_hold_begin(vm);
			}
			rc = virtio_mem_sbm_plug_and_add(vm, &step);
		}
		if (rc)
			return rc;
		facts->nr_sbs -= step.count;
		cond_resched();
	}
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
 * Return: 0 when done (or as close as subblocks allow), -EAGAIN when the
 * config changed meanwhile, -ENOSPC when the usable region is full,
 * -EDQUOT at the offline limit, -ENOMEM or -EEXIST when adding memory
 * failed, or the errno of a failed request.
 */
int virtio_mem_sbm_plug(struct virtio_mem *vm, u64 diff)
{
	struct virtio_mem_plug_facts facts =
		virtio_mem_plug_facts_init(vm, diff, vm->geo.sb_size);
	int rc;

	virtio_mem_mm_hold_begin(vm);
	rc = virtio_mem_sbm_plug_pass(vm, &facts);
	virtio_mem_mm_hold_end(vm);
	return rc;
}

/*
 * Unplug plugged subblocks of a block whose memory Linux does not use (not
 * added, offline, or just removed): highest first, at most *@nr_sbs, and
 * not the memmap of a block that is still added.
 *
 * Must be called with vm->hotplug_mutex held.
 */
static int virtio_mem_sbm_unplug_unused_sbs(struct virtio_mem *vm,
					    unsigned long mb_id,
					    unsigned long *nr_sbs)
{
	unsigned int sb_id, count, first;
	int rc;

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
		rc = virtio_mem_sbm_send_unplug(vm, mb_id, sb_id, count);
		if (rc)
			return rc;
		virtio_mem_sbm_set_sb_unplugged(&vm->sbm, mb_id, sb_id, count);
		*nr_sbs -= count;
	}
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, mb_id);
	return 0;
}

/*
 * A block that is not added any more: what is still plugged is unplugged
 * (all of it: nobody can use it), and it becomes free for reuse.
 */
static int virtio_mem_sbm_removed(struct virtio_mem *vm, unsigned long mb_id,
				  unsigned long *nr_sbs)
{
	unsigned long all = vm->sbm.sbs_per_mb;
	unsigned long plugged;
	int rc;

	mutex_lock(&vm->hotplug_mutex);
	clear_bit(mb_id - vm->sbm.first_mb_id, vm->sbm_sweep_failed);
	plugged = virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id);
	virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id, VIRTIO_MEM_SBM_MB_PLUGGED);
	rc = virtio_mem_sbm_unplug_unused_sbs(vm, mb_id, &all);
	if (!virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id))
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    VIRTIO_MEM_SBM_MB_UNUSED);
	plugged -= virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id);
	mutex_unlock(&vm->hotplug_mutex);
	*nr_sbs -= min(*nr_sbs, plugged);
	return rc;
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

/* Check the OOM guard before taking @size bytes of online memory. */
static bool virtio_mem_sbm_may_take(struct virtio_mem *vm, u64 size)
{
	return virtio_mem_may_take(virtio_mem_mm_available(), size,
				   virtio_mem_unplug_floor());
}

/*
 * Take @count plugged subblocks of online @mb_id from Linux and unplug them:
 * the OOM guard, fake offline, the request; given back if the request fails.
 *
 * Must be called with vm->hotplug_mutex held.
 *
 * Return: 0; -EBUSY if Linux would not give them up; -ENOBUFS at the OOM
 * guard; else the errno of the allocation or the request.
 */
static int virtio_mem_sbm_take_and_unplug(struct virtio_mem *vm,
					  unsigned long mb_id,
					  unsigned int sb_id,
					  unsigned int count)
{
	const unsigned long pfn = PHYS_PFN(virtio_mem_sb_addr(&vm->geo, mb_id,
							       sb_id));
	const unsigned long nr_pages = count * PHYS_PFN(vm->geo.sb_size);
	int rc;

	lockdep_assert_held(&vm->hotplug_mutex);

	if (!virtio_mem_sbm_may_take(vm, (u64)count * vm->geo.sb_size))
		return -ENOBUFS;
	rc = virtio_mem_mm_fake_offline(pfn, nr_pages);
	trace_virtio_mem_fake_offline(vm->vdev->index, pfn, nr_pages, rc);
	if (rc) {
		atomic64_inc(&vm->stats.fake_offline_failures);
		return rc;
	}
	rc = virtio_mem_sbm_send_unplug(vm, mb_id, sb_id, count);
	if (rc) {
		virtio_mem_mm_fake_online(pfn, nr_pages);
		return rc;
	}
	virtio_mem_sbm_set_sb_unplugged(&vm->sbm, mb_id, sb_id, count);
	return 0;
}

/*
 * Take online subblocks of @mb_id one by one: in the first pass only those
 * that look free (no migration), in the second any. At most *@nr_sbs.
 *
 * Must be called with vm->hotplug_mutex held.
 */
static int virtio_mem_sbm_unplug_online_sbs(struct virtio_mem *vm,
					    unsigned long mb_id,
					    unsigned long *nr_sbs)
{
	const unsigned int first = vm->sbm.memmap_sbs;
	unsigned int sb_id, pass;
	int rc = 0;

	lockdep_assert_held(&vm->hotplug_mutex);

	for (pass = 0; pass < 2; pass++) {
		for (sb_id = vm->sbm.sbs_per_mb; sb_id-- > first && *nr_sbs;) {
			if (atomic_read(&vm->config_changed)) {
				rc = -EAGAIN;
				goto out;
			}
			if (!virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id,
							    sb_id, 1))
				continue;
			if (!pass && !virtio_mem_sbm_sb_free(vm, mb_id, sb_id))
				continue;
			rc = virtio_mem_sbm_take_and_unplug(vm, mb_id, sb_id, 1);
			if (rc == -EBUSY)
				continue;
			if (rc)
				goto out;
			(*nr_sbs)--;
		}
	}
	rc = 0;
	/* Still wanted, still plugged: what is left would not move. */
	if (*nr_sbs && virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id) > first)
		rc = -EBUSY;
out:
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, mb_id);
	return rc;
}

/*
 * Kernel zones: take the runs of plugged subblocks of @mb_id that look
 * free, highest first, at most *@nr_sbs: one alloc_contig_range() and one
 * request per run. A run that turns out busy is left to the next pass.
 */
static int virtio_mem_sbm_unplug_free_runs(struct virtio_mem *vm,
					   unsigned long mb_id,
					   unsigned long *nr_sbs)
{
	const unsigned int first = vm->sbm.memmap_sbs;
	unsigned int end, sb_id = vm->sbm.sbs_per_mb;
	enum virtio_mem_sbm_mb_state state;
	int rc = 0;

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
			rc = -EAGAIN;
			break;
		}
		rc = virtio_mem_sbm_take_and_unplug(vm, mb_id, sb_id,
						    end - sb_id);
		if (rc == -EBUSY) {
			rc = 0;
			continue;
		}
		if (rc)
			break;
		*nr_sbs -= end - sb_id;
	}
	virtio_mem_sbm_refresh_mb_state(&vm->sbm, mb_id);
out:
	mutex_unlock(&vm->hotplug_mutex);
	return rc;
}

/*
 * Offline and remove an online block all of whose memory is to go, in one
 * sweep: offlining migrates everything in one pass, much faster than
 * taking it subblock by subblock. Not again for a block where that ran out
 * of time (a page that never moves): picking it apart is bounded per
 * subblock, and what it leaves behind would only run out of time again.
 */
static int virtio_mem_sbm_sweep(struct virtio_mem *vm, unsigned long mb_id)
{
	const unsigned long bit = mb_id - vm->sbm.first_mb_id;
	int rc;

	if (test_bit(bit, vm->sbm_sweep_failed))
		return -EBUSY;
	rc = virtio_mem_mm_offline_and_remove_mb(vm, mb_id);
	if (rc == -EINTR && !atomic_read(&vm->config_changed))
		set_bit(bit, vm->sbm_sweep_failed);
	return rc;
}

/*
 * Unplug what we can of one memory block, at most *@nr_sbs subblocks;
 * remove the block from Linux once nothing in it is plugged. A block that
 * core-mm is onlining or offlining right now is left for the next pass.
 */
static int virtio_mem_sbm_unplug_mb(struct virtio_mem *vm, unsigned long mb_id,
				    unsigned long *nr_sbs)
{
	enum virtio_mem_sbm_mb_state state;
	unsigned int plugged;
	int rc = 0;

	mutex_lock(&vm->hotplug_mutex);
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	plugged = virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id);

	if (virtio_mem_mm_busy(vm, mb_id, 1)) {
		mutex_unlock(&vm->hotplug_mutex);
		return -EBUSY;
	}
	if (!virtio_mem_sbm_state_online(state)) {
		rc = virtio_mem_sbm_unplug_unused_sbs(vm, mb_id, nr_sbs);
		/* Not added and now empty: free for reuse. */
		if (state == VIRTIO_MEM_SBM_MB_PLUGGED &&
		    !virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id))
			virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
						    VIRTIO_MEM_SBM_MB_UNUSED);
		mutex_unlock(&vm->hotplug_mutex);
	} else if (plugged && *nr_sbs >= plugged) {
		mutex_unlock(&vm->hotplug_mutex);
		if (!virtio_mem_sbm_may_take(vm, (u64)plugged * vm->geo.sb_size))
			return -ENOBUFS;
		if (!virtio_mem_sbm_sweep(vm, mb_id))
			return virtio_mem_sbm_removed(vm, mb_id, nr_sbs);
		/*
		 * Pick it apart instead, if it is still online and ours to
		 * pick: user space may have offlined it meanwhile, or be
		 * onlining it again.
		 */
		mutex_lock(&vm->hotplug_mutex);
		state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
		if (virtio_mem_mm_busy(vm, mb_id, 1))
			rc = -EBUSY;
		else if (virtio_mem_sbm_state_online(state))
			rc = virtio_mem_sbm_unplug_online_sbs(vm, mb_id, nr_sbs);
		else
			rc = virtio_mem_sbm_unplug_unused_sbs(vm, mb_id, nr_sbs);
		mutex_unlock(&vm->hotplug_mutex);
	} else {
		rc = virtio_mem_sbm_unplug_online_sbs(vm, mb_id, nr_sbs);
		mutex_unlock(&vm->hotplug_mutex);
	}
	if (rc && rc != -EBUSY)
		return rc;

	/* Fake-offline pages are skipped when offlining: cheap. */
	if (virtio_mem_sbm_empty_added(vm, mb_id, *nr_sbs) &&
	    !virtio_mem_mm_offline_and_remove_mb(vm, mb_id))
		return virtio_mem_sbm_removed(vm, mb_id, nr_sbs) ?: rc;
	return rc;
}

/**
 * virtio_mem_sbm_unplug() - unplug toward a smaller requested_size
 * @vm: the device
 * @diff: bytes to unplug
 *
 * Context: the worker.
 *
 * Return: 0 when done, -EAGAIN when the config changed meanwhile, -EBUSY
 * when some memory could not be taken, -ENOBUFS when the OOM guard
 * stopped us, -EACCES when only online memory is left and unplug_online
 * is off, or the errno of a failed request.
 */
int virtio_mem_sbm_unplug(struct virtio_mem *vm, u64 diff)
{
	unsigned long nr_sbs = div64_u64(diff, vm->geo.sb_size);
	struct virtio_mem_sbm_candidate *cand;
	unsigned long i, n, nr_mbs, mb_id;
	bool busy = false, all;
	unsigned int sb_id;
	u16 *free_sbs;
	int rc = 0;

	if (!nr_sbs)
		return 0;

	mutex_lock(&vm->hotplug_mutex);
	nr_mbs = vm->sbm.next_mb_id - vm->sbm.first_mb_id;
	mutex_unlock(&vm->hotplug_mutex);
	cand = kvmalloc_array(nr_mbs, sizeof(*cand), GFP_KERNEL);
	free_sbs = kvcalloc(nr_mbs, sizeof(*free_sbs), GFP_KERNEL);
	if (!cand || !free_sbs) {
		rc = -ENOMEM;
		goto out;
	}

	/* A snapshot of which plugged subblocks look free, for ranking. */
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

	/*
	 * Unplugging all of it: kernel-zone blocks first give up what is free,
	 * all of them, before any block is offlined or migrated. That takes
	 * long and starts kernel threads, whose stacks and slab would
	 * otherwise land in the free memory of the blocks still to come, and
	 * pin them there. (When some memory stays, whatever got pinned can
	 * simply be part of what stays; the sweep is slower than offlining
	 * free blocks whole, so it is not done then.)
	 */
	mutex_lock(&vm->hotplug_mutex);
	all = nr_sbs >= vm->sbm.nr_sbs_plugged;
	mutex_unlock(&vm->hotplug_mutex);
	for (i = 0; all && i < n && nr_sbs; i++) {
		rc = virtio_mem_sbm_unplug_free_runs(vm, cand[i].mb_id, &nr_sbs);
		if (rc)
			goto out;
	}
	/* After a sweep, the blocks it emptied must go too. */
	for (i = 0; i < n && (nr_sbs || all); i++) {
		if (atomic_read(&vm->config_changed)) {
			rc = -EAGAIN;
			goto out;
		}
		rc = virtio_mem_sbm_unplug_mb(vm, cand[i].mb_id, &nr_sbs);
		if (rc == -EBUSY) {
			busy = true;
			rc = 0;
		}
		if (rc)
			goto out;
		cond_resched();
	}
	if (nr_sbs)
		rc = busy || READ_ONCE(virtio_mem_unplug_online) ? -EBUSY :
								   -EACCES;
out:
	kvfree(free_sbs);
	kvfree(cand);
	return rc;
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
		if (virtio_mem_sbm_removed(vm, mb_id, &nr_sbs) == -EIO)
			break;
	}
}
