// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: Big Block Mode, acting. A big block spans one or more memory
 * blocks and is plugged, added, removed and unplugged as a unit.
 *
 * Unplug of a big block in use is "safe": first all its online memory is
 * taken away with alloc_contig_range() (fake offline), under the
 * FAKE_OFFLINE state so that anything onlined meanwhile stays fake
 * offline too; only then is it offlined (which now only skips pages) and
 * removed, and only then unplugged. A big block that cannot be emptied is
 * rolled back exactly and skipped: no endless offlining loops. A big block
 * seen with nothing in use is swept instead: offlined and removed as it
 * is, which migrates nothing; should that fail, the safe way follows.
 */

#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "virtio_mem.h"

static unsigned long virtio_mem_bbm_mbs(struct virtio_mem *vm)
{
	return div64_u64(vm->geo.bb_size, vm->geo.mb_size);
}

/* The first memory block of a big block. */
static unsigned long virtio_mem_bbm_first_mb(struct virtio_mem *vm,
					     unsigned long bb_id)
{
	return virtio_mem_addr_to_mb_id(&vm->geo,
					virtio_mem_bb_addr(&vm->geo, bb_id));
}

/**
 * virtio_mem_bbm_plugged() - bytes the driver knows to be plugged
 * @vm: the device
 *
 * Must be called with vm->hotplug_mutex held.
 *
 * Return: bytes.
 */
u64 virtio_mem_bbm_plugged(struct virtio_mem *vm)
{
	const unsigned long *count = vm->bbm.bb_count;

	lockdep_assert_held(&vm->hotplug_mutex);
	return (u64)(count[VIRTIO_MEM_BBM_BB_PLUGGED] +
		     count[VIRTIO_MEM_BBM_BB_ADDED] +
		     count[VIRTIO_MEM_BBM_BB_FAKE_OFFLINE]) * vm->geo.bb_size;
}

static void virtio_mem_bbm_set(struct virtio_mem *vm, unsigned long bb_id,
			       enum virtio_mem_bbm_bb_state state)
{
	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_bbm_set_bb_state(&vm->bbm, bb_id, state);
	mutex_unlock(&vm->hotplug_mutex);
}

/*
 * A big block was offlined and removed: its memory blocks are neither
 * offline nor ours any more, and it is only plugged now.
 */
static void virtio_mem_bbm_removed(struct virtio_mem *vm, unsigned long bb_id)
{
	mutex_lock(&vm->hotplug_mutex);
	vm->bbm_offline_mbs -= virtio_mem_bbm_mbs(vm);
	virtio_mem_bbm_set_bb_state(&vm->bbm, bb_id, VIRTIO_MEM_BBM_BB_PLUGGED);
	mutex_unlock(&vm->hotplug_mutex);
}

/* Add a plugged big block to Linux; on failure it stays plugged only. */
static enum virtio_mem_outcome virtio_mem_bbm_add(struct virtio_mem *vm,
						  unsigned long bb_id)
{
	const unsigned long mbs = virtio_mem_bbm_mbs(vm);
	int rc;

	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_bbm_set_bb_state(&vm->bbm, bb_id, VIRTIO_MEM_BBM_BB_ADDED);
	/* They come up offline; the notifier counts the ones onlined. */
	vm->bbm_offline_mbs += mbs;
	mutex_unlock(&vm->hotplug_mutex);

	rc = virtio_mem_mm_add_range(vm, virtio_mem_bb_addr(&vm->geo, bb_id),
				     vm->geo.bb_size, vm->bbm.memmap_size);
	if (!rc)
		return VIRTIO_MEM_OUTCOME_DONE;
	dev_warn_ratelimited(&vm->vdev->dev,
			     "adding big block %lu failed: %d\n", bb_id, rc);
	mutex_lock(&vm->hotplug_mutex);
	vm->bbm_offline_mbs -= mbs;
	virtio_mem_bbm_set_bb_state(&vm->bbm, bb_id, VIRTIO_MEM_BBM_BB_PLUGGED);
	mutex_unlock(&vm->hotplug_mutex);
	return virtio_mem_add_outcome(rc);
}

/* Plug a big block and add it; on failure nothing stays added. */
static enum virtio_mem_outcome
virtio_mem_bbm_plug_and_add(struct virtio_mem *vm, unsigned long bb_id)
{
	const u64 addr = virtio_mem_bb_addr(&vm->geo, bb_id);
	enum virtio_mem_outcome outcome, undo;

	outcome = virtio_mem_plug_request(vm, addr, vm->geo.bb_size);
	if (outcome)
		return outcome;
	outcome = virtio_mem_bbm_add(vm, bb_id);
	if (!outcome)
		return VIRTIO_MEM_OUTCOME_DONE;
	undo = virtio_mem_send_unplug(vm, addr, vm->geo.bb_size);
	if (!undo)
		virtio_mem_bbm_set(vm, bb_id, VIRTIO_MEM_BBM_BB_UNUSED);
	/* A broken device trumps the add failure. */
	if (undo == VIRTIO_MEM_OUTCOME_FAILED)
		return undo;
	return outcome;
}

/**
 * virtio_mem_bbm_readd_plugged() - add big blocks left plugged, not added
 * @vm: the device
 *
 * A failed add whose undo failed too, or an unplug the device refused
 * after the removal, leaves a big block PLUGGED: counted as plugged, but
 * Linux does not have it. When the guest is to keep that memory, add it.
 *
 * Context: the worker.
 *
 * Return: %VIRTIO_MEM_OUTCOME_DONE, or NOMEM or ADD_FAILED when adding
 * fails again.
 */
enum virtio_mem_outcome virtio_mem_bbm_readd_plugged(struct virtio_mem *vm)
{
	enum virtio_mem_outcome outcome;
	unsigned long bb_id, left;
	bool plugged;

	mutex_lock(&vm->hotplug_mutex);
	left = vm->bbm.bb_count[VIRTIO_MEM_BBM_BB_PLUGGED];
	mutex_unlock(&vm->hotplug_mutex);
	for (bb_id = vm->bbm.first_bb_id; left && bb_id <= vm->bbm.last_bb_id;
	     bb_id++) {
		mutex_lock(&vm->hotplug_mutex);
		plugged = virtio_mem_bbm_get_bb_state(&vm->bbm, bb_id) ==
			  VIRTIO_MEM_BBM_BB_PLUGGED;
		mutex_unlock(&vm->hotplug_mutex);
		if (!plugged)
			continue;
		outcome = virtio_mem_bbm_add(vm, bb_id);
		if (outcome)
			return outcome;
		left--;
		cond_resched();
	}
	return VIRTIO_MEM_OUTCOME_DONE;
}

/* One plug step (see virtio_mem.h): the next big block. */
static enum virtio_mem_plan
virtio_mem_bbm_plug_step(struct virtio_mem *vm,
			 struct virtio_mem_plug_facts *facts,
			 enum virtio_mem_outcome *outcome)
{
	enum virtio_mem_plan plan;
	unsigned long bb_id;

	mutex_lock(&vm->hotplug_mutex);
	facts->offline_bytes = (u64)vm->bbm_offline_mbs * vm->geo.mb_size;
	plan = virtio_mem_bbm_plan_plug(&vm->bbm, &vm->geo, facts, &bb_id);
	mutex_unlock(&vm->hotplug_mutex);
	if (plan != VIRTIO_MEM_PLAN_STEP)
		return plan;
	*outcome = virtio_mem_bbm_plug_and_add(vm, bb_id);
	if (!*outcome)
		facts->nr_bbs--;
	return plan;
}

/**
 * virtio_mem_bbm_plug() - plug toward a bigger requested_size
 * @vm: the device
 * @diff: bytes still to plug
 *
 * Context: the worker.
 *
 * Return: as virtio_mem_plug_loop().
 */
enum virtio_mem_outcome virtio_mem_bbm_plug(struct virtio_mem *vm, u64 diff)
{
	return virtio_mem_plug_loop(vm, diff, virtio_mem_bbm_plug_step);
}

/*
 * Fake-online the online memory blocks of a big block again, after taking
 * them (or some of them) failed. Offline ones are left alone: when they
 * are onlined later, the callback hands them out whole.
 *
 * Must be called with vm->hotplug_mutex held.
 */
static void virtio_mem_bbm_rollback(struct virtio_mem *vm, unsigned long bb_id,
				    unsigned long nr_taken)
{
	const unsigned long first = virtio_mem_bbm_first_mb(vm, bb_id);
	unsigned long i, pfn;

	lockdep_assert_held(&vm->hotplug_mutex);

	for (i = 0; i < nr_taken; i++) {
		pfn = virtio_mem_bbm_mb_pfn(vm, first + i);
		if (pfn_to_online_page(pfn))
			virtio_mem_mm_fake_online(pfn,
						  virtio_mem_bbm_mb_pages(vm));
	}
	virtio_mem_bbm_set_bb_state(&vm->bbm, bb_id, VIRTIO_MEM_BBM_BB_ADDED);
}

/* Take all online memory of a big block, or nothing. */
static enum virtio_mem_outcome
virtio_mem_bbm_fake_offline(struct virtio_mem *vm, unsigned long bb_id)
{
	enum virtio_mem_outcome outcome = VIRTIO_MEM_OUTCOME_DONE;
	const unsigned long first = virtio_mem_bbm_first_mb(vm, bb_id);
	const unsigned long mbs = virtio_mem_bbm_mbs(vm);
	unsigned long i, pfn;

	mutex_lock(&vm->hotplug_mutex);
	/* Core-mm is onlining or offlining part of it; try in the next pass. */
	if (virtio_mem_mm_busy(vm, first, mbs)) {
		mutex_unlock(&vm->hotplug_mutex);
		return VIRTIO_MEM_OUTCOME_UNMOVABLE;
	}
	virtio_mem_bbm_set_bb_state(&vm->bbm, bb_id,
				    VIRTIO_MEM_BBM_BB_FAKE_OFFLINE);
	for (i = 0; i < mbs; i++) {
		pfn = virtio_mem_bbm_mb_pfn(vm, first + i);
		if (!pfn_to_online_page(pfn))
			continue;
		/*
		 * One memory block at a time, each after the OOM guard: user
		 * space may have onlined one since the big block was chosen.
		 */
		if (atomic_read(&vm->config_changed))
			outcome = VIRTIO_MEM_OUTCOME_CONFIG_CHANGED;
		else
			outcome = virtio_mem_take(vm, pfn,
						  virtio_mem_bbm_mb_pages(vm));
		if (outcome) {
			virtio_mem_bbm_rollback(vm, bb_id, i);
			break;
		}
	}
	mutex_unlock(&vm->hotplug_mutex);
	return outcome;
}

/* Bytes of a big block that are online now. */
static u64 virtio_mem_bbm_online_bytes(struct virtio_mem *vm,
				       unsigned long bb_id)
{
	const unsigned long first = virtio_mem_bbm_first_mb(vm, bb_id);
	unsigned long i, online = 0;

	for (i = 0; i < virtio_mem_bbm_mbs(vm); i++)
		if (pfn_to_online_page(virtio_mem_bbm_mb_pfn(vm, first + i)))
			online++;
	return (u64)online * PFN_PHYS(virtio_mem_bbm_mb_pages(vm));
}

/*
 * Take all online memory of an added big block, then offline and remove
 * it: what cannot move fails early, page by page, and offlining then has
 * nothing left to migrate.
 */
static enum virtio_mem_outcome
virtio_mem_bbm_take_and_remove(struct virtio_mem *vm, unsigned long bb_id)
{
	const u64 addr = virtio_mem_bb_addr(&vm->geo, bb_id);
	enum virtio_mem_outcome outcome;

	outcome = virtio_mem_bbm_fake_offline(vm, bb_id);
	if (outcome)
		return outcome;
	if (virtio_mem_mm_offline_and_remove_range(vm, addr, vm->geo.bb_size)) {
		/*
		 * Whatever stopped offlining, the memory did not go. User
		 * space may have begun onlining or offlining part of it
		 * meanwhile: that ends first, so that the callback and the
		 * notifier see one state of the big block throughout.
		 */
		mutex_lock(&vm->hotplug_mutex);
		virtio_mem_mm_wait_idle(vm, virtio_mem_bbm_first_mb(vm, bb_id),
					virtio_mem_bbm_mbs(vm));
		virtio_mem_bbm_rollback(vm, bb_id, virtio_mem_bbm_mbs(vm));
		mutex_unlock(&vm->hotplug_mutex);
		return VIRTIO_MEM_OUTCOME_UNMOVABLE;
	}
	virtio_mem_bbm_removed(vm, bb_id);
	return VIRTIO_MEM_OUTCOME_DONE;
}

/*
 * Offline, remove and unplug one big block, or leave it as it was (the
 * mode's unplug_one, see virtio_mem.h).
 */
static enum virtio_mem_outcome
virtio_mem_bbm_unplug_bb(struct virtio_mem *vm,
			 const struct virtio_mem_candidate *cand,
			 unsigned long *nr_bbs)
{
	const unsigned long bb_id = cand->bb_id;
	const u64 addr = virtio_mem_bb_addr(&vm->geo, bb_id);
	enum virtio_mem_bbm_bb_state state;
	enum virtio_mem_outcome outcome;
	bool busy;

	mutex_lock(&vm->hotplug_mutex);
	state = virtio_mem_bbm_get_bb_state(&vm->bbm, bb_id);
	/*
	 * Core-mm is onlining or offlining part of it for user space: try in
	 * the next pass. Offlining it now would wait on the device hotplug
	 * lock for as long as user space's offlining loops.
	 */
	busy = virtio_mem_mm_busy(vm, virtio_mem_bbm_first_mb(vm, bb_id),
				  virtio_mem_bbm_mbs(vm));
	mutex_unlock(&vm->hotplug_mutex);

	if (state == VIRTIO_MEM_BBM_BB_ADDED) {
		if (busy)
			return VIRTIO_MEM_OUTCOME_UNMOVABLE;
		if (!virtio_mem_may_take_now(vm,
					     virtio_mem_bbm_online_bytes(vm,
									 bb_id)))
			return VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE;
		/* Whatever stops a sweep, taking the pages may still work. */
		if (cand->sweep &&
		    !virtio_mem_mm_offline_and_remove_range(vm, addr,
							    vm->geo.bb_size)) {
			virtio_mem_bbm_removed(vm, bb_id);
		} else {
			outcome = virtio_mem_bbm_take_and_remove(vm, bb_id);
			if (outcome)
				return outcome;
		}
	} else if (state != VIRTIO_MEM_BBM_BB_PLUGGED) {
		return VIRTIO_MEM_OUTCOME_DONE;
	}

	outcome = virtio_mem_send_unplug(vm, addr, vm->geo.bb_size);
	if (outcome)
		return outcome;
	virtio_mem_bbm_set(vm, bb_id, VIRTIO_MEM_BBM_BB_UNUSED);
	(*nr_bbs)--;
	return VIRTIO_MEM_OUTCOME_DONE;
}

/* What the unplug ranking needs to know of every big block. */
static void virtio_mem_bbm_look(struct virtio_mem *vm,
				struct virtio_mem_bbm_seen *seen)
{
	const unsigned long mb_pages = virtio_mem_bbm_mb_pages(vm);
	const unsigned long chunk = pageblock_nr_pages;
	const unsigned long mbs = virtio_mem_bbm_mbs(vm);
	unsigned long bb_id, first, i, pfn, off, busy;
	struct virtio_mem_bbm_seen *bb;
	struct page *page;

	lockdep_assert_held(&vm->hotplug_mutex);

	for (bb_id = vm->bbm.first_bb_id; bb_id <= vm->bbm.last_bb_id;
	     bb_id++) {
		bb = &seen[bb_id - vm->bbm.first_bb_id];
		if (virtio_mem_bbm_get_bb_state(&vm->bbm, bb_id) !=
		    VIRTIO_MEM_BBM_BB_ADDED)
			continue;
		busy = 0;
		first = virtio_mem_bbm_first_mb(vm, bb_id);
		for (i = 0; i < mbs; i++) {
			/* (The memmap, if there, is a whole pageblock.) */
			pfn = virtio_mem_bbm_mb_pfn(vm, first + i);
			page = pfn_to_online_page(pfn);
			if (!page)
				continue;
			bb->online_mbs++;
			if (page_zonenum(page) != ZONE_MOVABLE)
				bb->kernel_mbs++;
			for (off = 0; off < mb_pages; off += chunk)
				if (!virtio_mem_mm_range_free(pfn + off, chunk))
					busy += chunk;
		}
		bb->busy_mib = busy >> (20 - PAGE_SHIFT);
	}
}

/**
 * virtio_mem_bbm_unplug() - unplug toward a smaller requested_size
 * @vm: the device
 * @diff: bytes to unplug
 *
 * Context: the worker.
 *
 * Return: as virtio_mem_unplug_walk(), or MEMORY_PRESSURE when the OOM
 * guard stopped us, NOMEM, or what a failed request came to.
 */
enum virtio_mem_outcome virtio_mem_bbm_unplug(struct virtio_mem *vm, u64 diff)
{
	const unsigned long nr_bbs = vm->bbm.last_bb_id - vm->bbm.first_bb_id + 1;
	enum virtio_mem_outcome outcome;
	unsigned long todo = div64_u64(diff, vm->geo.bb_size);
	struct virtio_mem_candidate *cand;
	struct virtio_mem_bbm_seen *seen;
	unsigned long n;

	if (!todo)
		return VIRTIO_MEM_OUTCOME_DONE;
	cand = kvmalloc_array(nr_bbs, sizeof(*cand), GFP_KERNEL);
	seen = kvcalloc(nr_bbs, sizeof(*seen), GFP_KERNEL);
	if (!cand || !seen) {
		outcome = VIRTIO_MEM_OUTCOME_NOMEM;
		goto out;
	}

	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_bbm_look(vm, seen);
	n = virtio_mem_bbm_unplug_order(&vm->bbm, seen,
					READ_ONCE(virtio_mem_unplug_online),
					cand, nr_bbs);
	mutex_unlock(&vm->hotplug_mutex);

	outcome = virtio_mem_unplug_walk(vm, cand, n, &todo, false,
					 virtio_mem_bbm_unplug_bb);
out:
	kvfree(seen);
	kvfree(cand);
	return outcome;
}

/**
 * virtio_mem_bbm_remove_all() - give back all memory, as far as possible
 * @vm: the device, with the worker stopped
 *
 * Like virtio_mem_sbm_remove_all(), also when the device is broken.
 */
void virtio_mem_bbm_remove_all(struct virtio_mem *vm)
{
	unsigned long bb_id;
	u64 addr;

	for (bb_id = vm->bbm.first_bb_id; bb_id <= vm->bbm.last_bb_id;
	     bb_id++) {
		addr = virtio_mem_bb_addr(&vm->geo, bb_id);
		switch (virtio_mem_bbm_get_bb_state(&vm->bbm, bb_id)) {
		case VIRTIO_MEM_BBM_BB_ADDED:
			if (virtio_mem_mm_offline_and_remove_range(vm, addr,
								   vm->geo.bb_size))
				continue;
			virtio_mem_bbm_removed(vm, bb_id);
			fallthrough;
		case VIRTIO_MEM_BBM_BB_PLUGGED:
			/* A broken device gets no requests. */
			if (vm->broken)
				continue;
			if (virtio_mem_send_unplug(vm, addr, vm->geo.bb_size))
				continue;
			virtio_mem_bbm_set(vm, bb_id, VIRTIO_MEM_BBM_BB_UNUSED);
			break;
		default:
			break;
		}
	}
}
