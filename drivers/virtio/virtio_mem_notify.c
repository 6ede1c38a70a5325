// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: what core-mm calls into, and what it must see of us while it
 * onlines or offlines our memory: the memory notifier, the online_page
 * callback, the fake-offline pages they hand out or keep, and the memory
 * held back during a plug pass.
 *
 * Kept apart from virtio_mem_mm.c, which does the heavy mm work (adding,
 * offlining and removing memory, alloc_contig_range()), so that this file
 * needs only page flags, page references, generic_online_page() and the
 * notifier and callback registration: few enough kernel interfaces for the
 * userspace harness to stand in for, so that it runs this code as written.
 *
 * Unplugged subblocks of an online memory block are "fake offline": the
 * online_page callback never hands them to the buddy, they carry
 * PageOffline, and we hold a reference on each page so that nobody else
 * takes them. Pages that were never handed to the buddy are also marked
 * PageDirty, so that plugging them later routes them through
 * generic_online_page(), which does the accounting a first onlining needs.
 */

#include <linux/log2.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/mmdebug.h>
#include <linux/page-flags.h>
#include <linux/page_ref.h>
#include <linux/rculist.h>
#include <linux/wait.h>

#include "virtio_mem.h"
#include "virtio_mem_compat.h"

/*
 * Devices whose memory the online_page callback handles. Readers: RCU.
 * Writers hold virtio_mem_devices_mutex, which also covers registering
 * the callback with the first device and restoring it after the last.
 */
static LIST_HEAD(virtio_mem_devices);
static DEFINE_MUTEX(virtio_mem_devices_mutex);

/**
 * virtio_mem_mm_contains() - is a physical range inside the device region?
 * @vm: the device
 * @start: start of the range
 * @size: its size
 *
 * Return: true if the whole range lies in the device region.
 */
bool virtio_mem_mm_contains(struct virtio_mem *vm, u64 start, u64 size)
{
	return start >= vm->cfg.addr &&
	       start + size <= vm->cfg.addr + vm->cfg.region_size;
}

/*
 * Keep never-onlined pages away from the buddy: PageOffline, plus PageDirty
 * to remember that they never went through generic_online_page().
 */
static void virtio_mem_mm_keep_fresh_offline(unsigned long pfn,
					     unsigned long nr_pages)
{
	page_offline_begin();
	for (; nr_pages--; pfn++) {
		struct page *page = pfn_to_page(pfn);

		virtio_mem_compat_keep_fresh(page);
		SetPageDirty(page);
	}
	page_offline_end();
}

/**
 * virtio_mem_mm_fake_online() - hand fake-offline pages to the buddy
 * @pfn: first page, subblock aligned
 * @nr_pages: number of pages, whole subblocks
 *
 * For subblocks that were just plugged. All pages of a subblock are alike.
 */
void virtio_mem_mm_fake_online(unsigned long pfn, unsigned long nr_pages)
{
	unsigned int order = VIRTIO_MEM_MAX_ORDER;
	unsigned long i, j;

	while (!IS_ALIGNED(pfn | nr_pages, 1UL << order))
		order--;

	for (i = 0; i < nr_pages; i += 1UL << order) {
		struct page *page = pfn_to_page(pfn + i);

		if (PageDirty(page)) {
			for (j = 0; j < 1UL << order; j++) {
				ClearPageDirty(page + j);
				virtio_mem_compat_release_fresh(page + j);
			}
			generic_online_page(page, order);
		} else {
			for (j = 0; j < 1UL << order; j++)
				__ClearPageOffline(page + j);
			free_contig_range(pfn + i, 1UL << order);
			adjust_managed_page_count(page, 1L << order);
		}
	}
}

/*
 * Holding back freshly added memory.
 *
 * Adding a memory block allocates its memmap and its sysfs objects from
 * memory the kernel can use. If the block added just before is already in
 * the buddy and in a kernel zone, they land there, and when both blocks go
 * away again the second one's objects leave empty slab pages behind in the
 * first: unmovable, so that block can never be unplugged (the distro
 * driver's "2-4 MiB stay plugged"). So during one plug pass the pages of
 * new kernel-zone blocks stay fake offline, and the pass hands them all to
 * the buddy at its end (or every VIRTIO_MEM_SBM_HOLD_MAX blocks). ZONE_MOVABLE
 * memory cannot take such objects and is never held.
 */

/* Hand the plugged subblocks of a held block to the buddy. */
static void virtio_mem_mm_release_mb(struct virtio_mem *vm,
				     unsigned long mb_id)
{
	enum virtio_mem_sbm_mb_state state;
	unsigned int sb_id = 0, count = 0, from;

	lockdep_assert_held(&vm->hotplug_mutex);

	/* Only online blocks are held; going offline releases them first. */
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	if (WARN_ON_ONCE(!virtio_mem_sbm_state_online(state)))
		return;
	while (virtio_mem_sbm_next_run(&vm->sbm, mb_id, true, &sb_id, &count)) {
		/* Skip the memmap, which never belonged to the buddy. */
		from = max(sb_id, vm->sbm.memmap_sbs);
		if (from >= sb_id + count)
			continue;
		virtio_mem_mm_fake_online(PHYS_PFN(virtio_mem_sb_addr(&vm->geo,
								      mb_id,
								      from)),
					  (sb_id + count - from) *
					  PHYS_PFN(vm->geo.sb_size));
	}
}

/**
 * virtio_mem_mm_held() - are the pages of a memory block held back?
 * @vm: the device
 * @mb_id: the memory block
 *
 * Must be called with vm->hotplug_mutex held.
 *
 * Return: true if its plugged subblocks reach the buddy only at hold end.
 */
bool virtio_mem_mm_held(struct virtio_mem *vm, unsigned long mb_id)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	return virtio_mem_sbm_hold_test(&vm->hold, mb_id);
}

/* A held block is going offline: it gets its memory now. */
static void virtio_mem_mm_release_held_mb(struct virtio_mem *vm,
					  unsigned long mb_id)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	if (virtio_mem_sbm_hold_forget(&vm->hold, mb_id))
		virtio_mem_mm_release_mb(vm, mb_id);
}

/**
 * virtio_mem_mm_hold_begin() - keep back the memory of blocks added next
 * @vm: the device (SBM)
 *
 * Context: the worker, without vm->hotplug_mutex.
 */
void virtio_mem_mm_hold_begin(struct virtio_mem *vm)
{
	mutex_lock(&vm->hotplug_mutex);
	vm->hold.active = true;
	mutex_unlock(&vm->hotplug_mutex);
}

/**
 * virtio_mem_mm_hold_end() - hand all held memory to the buddy
 * @vm: the device
 *
 * Context: the worker, without vm->hotplug_mutex.
 */
void virtio_mem_mm_hold_end(struct virtio_mem *vm)
{
	unsigned long mb_id;
	unsigned int i;

	mutex_lock(&vm->hotplug_mutex);
	vm->hold.active = false;
	/* Walk downwards, since forgetting moves the last entry into the gap. */
	for (i = vm->hold.nr; i--;) {
		mb_id = vm->hold.mb_ids[i];
		/* A block still being onlined is handed over at MEM_ONLINE. */
		if (virtio_mem_mm_busy(vm, mb_id, 1))
			continue;
		virtio_mem_sbm_hold_forget(&vm->hold, mb_id);
		virtio_mem_mm_release_mb(vm, mb_id);
	}
	mutex_unlock(&vm->hotplug_mutex);
}

/**
 * virtio_mem_mm_hold_make_room() - make room to hold the next added block
 * @vm: the device (SBM)
 *
 * A full hold list hands what it holds to the buddy and starts anew, so
 * that a long plug pass still holds each new block.
 *
 * Context: the worker, without vm->hotplug_mutex.
 */
void virtio_mem_mm_hold_make_room(struct virtio_mem *vm)
{
	bool full;

	mutex_lock(&vm->hotplug_mutex);
	full = vm->hold.nr == VIRTIO_MEM_SBM_HOLD_MAX;
	mutex_unlock(&vm->hotplug_mutex);
	if (full) {
		virtio_mem_mm_hold_end(vm);
		virtio_mem_mm_hold_begin(vm);
	}
}

/*
 * A block starts going online: hold it back whole if a plug pass holds
 * new kernel-zone memory now. Deciding once per onlining, not per chunk
 * of pages, matters: a pass may begin or end while user space onlines a
 * block, and a block half in the buddy and half held would be handed to
 * the buddy twice at hold end. The zone is known by now.
 */
static void virtio_mem_mm_hold_going_online(struct virtio_mem *vm,
					    unsigned long mb_id,
					    unsigned long start_pfn)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	if (!vm->geo.bbm && vm->hold.active &&
	    page_zonenum(pfn_to_page(start_pfn)) != ZONE_MOVABLE)
		virtio_mem_sbm_hold_add(&vm->hold, mb_id);
}

/*
 * A block finished going online, or did not: if the pass that held it has
 * ended meanwhile, it gets its memory now; if it never came online, there
 * is nothing to hand over.
 */
static void virtio_mem_mm_hold_online_done(struct virtio_mem *vm,
					   unsigned long mb_id, bool online)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	if (vm->geo.bbm || (online && vm->hold.active))
		return;
	if (virtio_mem_sbm_hold_forget(&vm->hold, mb_id) && online)
		virtio_mem_mm_release_mb(vm, mb_id);
}

/*
 * online_page callback for memory in our region: plugged subblocks go to
 * the buddy, unplugged ones stay fake offline (C5), and so do all pages of
 * a block held back (see above).
 *
 * Must be called with vm->hotplug_mutex held. The block's subblocks do not
 * change meanwhile: the worker leaves a block that core-mm is onlining
 * alone (virtio_mem_mm_busy()).
 */
static void virtio_mem_sbm_online_page(struct virtio_mem *vm,
				       struct page *page, unsigned int order)
{
	const unsigned int sb_order = ilog2(vm->geo.sb_size) - PAGE_SHIFT;
	const u64 addr = page_to_phys(page);
	const unsigned long mb_id = virtio_mem_addr_to_mb_id(&vm->geo, addr);
	const unsigned int sb_id = (addr - virtio_mem_mb_addr(&vm->geo, mb_id)) /
				   vm->geo.sb_size;
	const unsigned int chunk = min(order, sb_order);
	const unsigned int count = 1U << (order - chunk);
	unsigned int i;

	lockdep_assert_held(&vm->hotplug_mutex);

	/* Decided once for the whole block, at MEM_GOING_ONLINE. */
	if (virtio_mem_sbm_hold_test(&vm->hold, mb_id)) {
		virtio_mem_mm_keep_fresh_offline(page_to_pfn(page), 1UL << order);
		return;
	}
	/* Usually all subblocks are alike, and one call does the whole page. */
	if (virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id, sb_id, count)) {
		generic_online_page(page, order);
		return;
	}
	if (virtio_mem_sbm_test_sb_unplugged(&vm->sbm, mb_id, sb_id, count)) {
		virtio_mem_mm_keep_fresh_offline(page_to_pfn(page), 1UL << order);
		return;
	}
	/* A page that spans plugged and unplugged subblocks goes one at a time. */
	for (i = 0; i < count; i++) {
		struct page *sb_page = pfn_to_page(page_to_pfn(page) +
						   (i << chunk));

		if (virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id, sb_id + i, 1))
			generic_online_page(sb_page, chunk);
		else
			virtio_mem_mm_keep_fresh_offline(page_to_pfn(sb_page),
							 1UL << chunk);
	}
}

/*
 * BBM: a big block being unplugged keeps whatever gets onlined in it fake
 * offline; any other goes to the buddy whole.
 *
 * Must be called with vm->hotplug_mutex held.
 */
static void virtio_mem_bbm_online_page(struct virtio_mem *vm,
				       struct page *page, unsigned int order)
{
	const unsigned long bb_id = div64_u64(page_to_phys(page),
					      vm->geo.bb_size);

	lockdep_assert_held(&vm->hotplug_mutex);

	if (virtio_mem_bbm_get_bb_state(&vm->bbm, bb_id) ==
	    VIRTIO_MEM_BBM_BB_FAKE_OFFLINE)
		virtio_mem_mm_keep_fresh_offline(page_to_pfn(page),
						 1UL << order);
	else
		generic_online_page(page, order);
}

static void virtio_mem_online_page_cb(struct page *page, unsigned int order)
{
	const u64 start = page_to_phys(page);
	const u64 size = PFN_PHYS(1UL << order);
	struct virtio_mem *vm;

	rcu_read_lock();
	list_for_each_entry_rcu(vm, &virtio_mem_devices, next) {
		if (!virtio_mem_mm_contains(vm, start, size))
			continue;
		/*
		 * The device cannot go away: our notifier let this onlining
		 * begin, and remove waits for it to end before it frees the
		 * device (virtio_mem_mm_quiesce()).
		 */
		rcu_read_unlock();
		mutex_lock(&vm->hotplug_mutex);
		if (vm->geo.bbm)
			virtio_mem_bbm_online_page(vm, page, order);
		else
			virtio_mem_sbm_online_page(vm, page, order);
		mutex_unlock(&vm->hotplug_mutex);
		return;
	}
	rcu_read_unlock();
	generic_online_page(page, order);
}

/*
 * Going offline: drop our references on fake-offline pages, so that
 * offlining skips them instead of failing on pages it cannot migrate.
 * Cancel: take them back.
 */
static void virtio_mem_fake_offline_refs(unsigned long pfn,
					 unsigned long nr_pages, bool drop)
{
	unsigned long i;

	virtio_mem_compat_going_offline(pfn_to_page(pfn), nr_pages, drop);
	for (i = 0; i < nr_pages; i++) {
		struct page *page = pfn_to_page(pfn + i);

		if (!drop)
			page_ref_inc(page);
		else if (WARN_ON_ONCE(!page_ref_dec_and_test(page)))
			dump_page(page, "fake-offline page referenced");
	}
}

/* The fake-offline pages of a memory block: SBM's unplugged subblocks. */
static void virtio_mem_sbm_fake_offline_refs(struct virtio_mem *vm,
					     unsigned long mb_id, bool drop)
{
	unsigned int sb_id = 0, count = 0;

	lockdep_assert_held(&vm->hotplug_mutex);

	while (virtio_mem_sbm_next_run(&vm->sbm, mb_id, false, &sb_id, &count))
		virtio_mem_fake_offline_refs(PHYS_PFN(virtio_mem_sb_addr(&vm->geo,
									 mb_id,
									 sb_id)),
					     count * PHYS_PFN(vm->geo.sb_size),
					     drop);
}

/* ... and BBM's: all of a memory block of a big block being unplugged. */
static void virtio_mem_bbm_fake_offline_refs(struct virtio_mem *vm,
					     unsigned long mb_id, bool drop)
{
	const u64 addr = virtio_mem_mb_addr(&vm->geo, mb_id);

	lockdep_assert_held(&vm->hotplug_mutex);

	if (virtio_mem_bbm_get_bb_state(&vm->bbm,
					div64_u64(addr, vm->geo.bb_size)) ==
	    VIRTIO_MEM_BBM_BB_FAKE_OFFLINE)
		virtio_mem_fake_offline_refs(virtio_mem_bbm_mb_pfn(vm, mb_id),
					     virtio_mem_bbm_mb_pages(vm), drop);
}

/* Drop or take back our references on a memory block's fake-offline pages. */
static void virtio_mem_mm_mb_refs(struct virtio_mem *vm, unsigned long mb_id,
				  bool drop)
{
	if (vm->geo.bbm)
		virtio_mem_bbm_fake_offline_refs(vm, mb_id, drop);
	else
		virtio_mem_sbm_fake_offline_refs(vm, mb_id, drop);
}

/*
 * A memory block of ours went online or offline: SBM tracks it in the
 * block's state, BBM only counts offline memory blocks.
 *
 * Must be called with vm->hotplug_mutex held.
 */
static void virtio_mem_mm_mb_switched(struct virtio_mem *vm,
				      unsigned long mb_id, bool online,
				      bool movable)
{
	enum virtio_mem_sbm_mb_state state;

	lockdep_assert_held(&vm->hotplug_mutex);

	if (vm->geo.bbm) {
		if (online)
			vm->bbm_offline_mbs--;
		else
			vm->bbm_offline_mbs++;
		return;
	}
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	if (WARN_ON_ONCE(!virtio_mem_sbm_state_added(state)))
		return;
	state = virtio_mem_sbm_state_for(&vm->sbm, mb_id, online, movable);
	virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id, state);
}

/*
 * May core-mm begin to online or offline memory block @mb_id? Not once
 * remove has begun, unless it is remove's own doing: after remove, nothing
 * would keep the unplugged parts of a block onlined then fake offline.
 */
static bool virtio_mem_mm_may_begin(struct virtio_mem *vm)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	return !vm->removing || vm->removing_own;
}

/* A transition began that the worker must leave alone until it ends. */
static void virtio_mem_mm_begin(struct virtio_mem *vm, unsigned long mb_id)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	WARN_ON_ONCE(vm->hotplug_mb != VIRTIO_MEM_MM_NO_MB);
	vm->hotplug_mb = mb_id;
}

/*
 * The transition of @mb_id ended. False if it was not one we let begin:
 * core-mm sends MEM_CANCEL_* to every notifier when an earlier one refused
 * MEM_GOING_*, and we refuse some ourselves.
 */
static bool virtio_mem_mm_end(struct virtio_mem *vm, unsigned long mb_id)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	if (vm->hotplug_mb != mb_id)
		return false;
	vm->hotplug_mb = VIRTIO_MEM_MM_NO_MB;
	wake_up_all(&vm->hotplug_done);
	return true;
}

/*
 * The notifier takes vm->hotplug_mutex for each event on its own and never
 * keeps it from one event to the next: the chain's rwsem is taken for each
 * event, so holding our mutex in between would order it both before and
 * after that rwsem. What keeps the block's state stable from MEM_GOING_*
 * to the end instead is vm->hotplug_mb, which the worker respects.
 */
static int virtio_mem_memory_notifier_cb(struct notifier_block *nb,
					 unsigned long action, void *arg)
{
	struct virtio_mem *vm = container_of(nb, struct virtio_mem,
					     memory_notifier);
	struct memory_notify *mhp = arg;
	const u64 start = PFN_PHYS(mhp->start_pfn);
	const u64 size = PFN_PHYS(mhp->nr_pages);
	unsigned long mb_id;
	int rc = NOTIFY_OK;
	u64 offset;
	bool movable;

	if (!virtio_mem_mm_contains(vm, start, size))
		return NOTIFY_DONE;
	/*
	 * We only ever add whole, aligned memory blocks; Linux leaves out the
	 * memmap at the start when the block carries its own.
	 */
	mb_id = virtio_mem_addr_to_mb_id(&vm->geo, start);
	offset = start - virtio_mem_mb_addr(&vm->geo, mb_id);
	if (WARN_ON_ONCE(start + size != virtio_mem_mb_addr(&vm->geo, mb_id + 1) ||
			 (offset && offset != READ_ONCE(vm->sbm.memmap_sbs) *
					      vm->geo.sb_size &&
			  offset != vm->bbm.memmap_size)))
		return NOTIFY_DONE;

	/* Only the memmap of memory that is online tells its zone. */
	movable = action == MEM_ONLINE &&
		  page_zonenum(pfn_to_page(mhp->start_pfn)) == ZONE_MOVABLE;

	mutex_lock(&vm->hotplug_mutex);
	switch (action) {
	case MEM_GOING_OFFLINE:
	case MEM_GOING_ONLINE:
		if (!virtio_mem_mm_may_begin(vm)) {
			rc = notifier_from_errno(-EBUSY);
			break;
		}
		virtio_mem_mm_begin(vm, mb_id);
		if (action == MEM_GOING_ONLINE) {
			virtio_mem_mm_hold_going_online(vm, mb_id,
							mhp->start_pfn);
			break;
		}
		/* Released pages land in the isolated range, and offlining takes them out again. */
		virtio_mem_mm_release_held_mb(vm, mb_id);
		virtio_mem_mm_mb_refs(vm, mb_id, true);
		break;
	case MEM_CANCEL_OFFLINE:
		if (virtio_mem_mm_end(vm, mb_id))
			virtio_mem_mm_mb_refs(vm, mb_id, false);
		break;
	case MEM_CANCEL_ONLINE:
		if (virtio_mem_mm_end(vm, mb_id))
			virtio_mem_mm_hold_online_done(vm, mb_id, false);
		break;
	case MEM_OFFLINE:
	case MEM_ONLINE:
		if (!virtio_mem_mm_end(vm, mb_id))
			break;
		virtio_mem_mm_mb_switched(vm, mb_id, action == MEM_ONLINE,
					  movable);
		if (action == MEM_ONLINE)
			virtio_mem_mm_hold_online_done(vm, mb_id, true);
		break;
	default:
		rc = NOTIFY_DONE;
		break;
	}
	mutex_unlock(&vm->hotplug_mutex);

	/* The worker may have passed this block by meanwhile. */
	if (action != MEM_GOING_ONLINE && action != MEM_GOING_OFFLINE)
		virtio_mem_retry(vm);
	return rc;
}

/**
 * virtio_mem_mm_busy() - is core-mm onlining or offlining a memory block?
 * @vm: the device
 * @mb_id: the memory block
 * @nr: and this many after it
 *
 * The worker leaves such blocks alone: their state must stay as the
 * notifier saw it at MEM_GOING_*. The notifier queues the worker when the
 * transition ends.
 *
 * Must be called with vm->hotplug_mutex held.
 *
 * Return: true if one of the blocks is in transition.
 */
bool virtio_mem_mm_busy(struct virtio_mem *vm, unsigned long mb_id,
			unsigned long nr)
{
	lockdep_assert_held(&vm->hotplug_mutex);

	return vm->hotplug_mb != VIRTIO_MEM_MM_NO_MB &&
	       vm->hotplug_mb >= mb_id && vm->hotplug_mb - mb_id < nr;
}

/**
 * virtio_mem_mm_wait_idle() - wait until core-mm is done with some blocks
 * @vm: the device
 * @mb_id: the first memory block
 * @nr: number of memory blocks
 *
 * For the worker, which must leave a block alone while user space onlines
 * or offlines it (see virtio_mem_mm_busy()). Onlining or offlining memory
 * that is all fake offline ends quickly; says so every half minute
 * meanwhile.
 *
 * Must be called with vm->hotplug_mutex held; drops it while it waits.
 */
void virtio_mem_mm_wait_idle(struct virtio_mem *vm, unsigned long mb_id,
			     unsigned long nr)
{
	unsigned long busy;

	lockdep_assert_held(&vm->hotplug_mutex);

	while (virtio_mem_mm_busy(vm, mb_id, nr)) {
		busy = vm->hotplug_mb;
		mutex_unlock(&vm->hotplug_mutex);
		if (!wait_event_timeout(vm->hotplug_done,
					READ_ONCE(vm->hotplug_mb) != busy,
					30 * HZ))
			dev_info(&vm->vdev->dev,
				 "waiting for memory block %lu to finish going online or offline\n",
				 busy);
		mutex_lock(&vm->hotplug_mutex);
	}
}

/**
 * virtio_mem_mm_quiesce() - refuse new transitions, wait for the current one
 * @vm: the device, with vm->removing set
 *
 * An onlining of our memory ends soon; an offlining that user space
 * started ends when it succeeds, fails or user space interrupts it.
 *
 * Context: remove, without vm->hotplug_mutex.
 */
void virtio_mem_mm_quiesce(struct virtio_mem *vm)
{
	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_mm_wait_idle(vm, 0, VIRTIO_MEM_MM_NO_MB);
	mutex_unlock(&vm->hotplug_mutex);
}

/**
 * virtio_mem_mm_remove_own() - let remove's own offlining through
 * @vm: the device, with vm->removing set
 * @own: true before remove offlines and removes memory, false after
 */
void virtio_mem_mm_remove_own(struct virtio_mem *vm, bool own)
{
	mutex_lock(&vm->hotplug_mutex);
	vm->removing_own = own;
	mutex_unlock(&vm->hotplug_mutex);
}

/**
 * virtio_mem_mm_register() - hook the device into core-mm
 * @vm: the device
 *
 * Registers the memory notifier and, for the first device, the online_page
 * callback.
 *
 * Return: 0 or a negative errno; nothing is left registered on failure.
 */
int virtio_mem_mm_register(struct virtio_mem *vm)
{
	int rc;

	vm->memory_notifier.notifier_call = virtio_mem_memory_notifier_cb;
	rc = register_memory_notifier(&vm->memory_notifier);
	if (rc)
		return rc;

	mutex_lock(&virtio_mem_devices_mutex);
	if (list_empty(&virtio_mem_devices)) {
		rc = set_online_page_callback(&virtio_mem_online_page_cb);
		if (rc) {
			mutex_unlock(&virtio_mem_devices_mutex);
			dev_err(&vm->vdev->dev,
				"another driver owns the online_page callback\n");
			unregister_memory_notifier(&vm->memory_notifier);
			return rc;
		}
	}
	list_add_rcu(&vm->next, &virtio_mem_devices);
	mutex_unlock(&virtio_mem_devices_mutex);
	return 0;
}

/**
 * virtio_mem_mm_unregister() - undo virtio_mem_mm_register()
 * @vm: the device
 */
void virtio_mem_mm_unregister(struct virtio_mem *vm)
{
	mutex_lock(&virtio_mem_devices_mutex);
	list_del_rcu(&vm->next);
	if (list_empty(&virtio_mem_devices))
		restore_online_page_callback(&virtio_mem_online_page_cb);
	mutex_unlock(&virtio_mem_devices_mutex);
	synchronize_rcu();
	unregister_memory_notifier(&vm->memory_notifier);
}
