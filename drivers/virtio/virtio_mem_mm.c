// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: the glue to core-mm that does real mm work: adding memory,
 * offlining and removing it (bounded in time), taking online pages away
 * with alloc_contig_range() (fake offline), and what the policies need to
 * know of free and available memory. What core-mm calls into (the memory
 * notifier, the online_page callback) is in virtio_mem_notify.c.
 */

#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/nodemask.h>
#include <linux/mm.h>
#include <linux/page-flags.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>

#include "virtio_mem.h"
#include "virtio_mem_compat.h"

/*
 * Is @folio pinned (pin_user_pages())? Each pin of a small folio adds
 * GUP_PIN_COUNTING_BIAS (1024) to its reference count, and each mapping
 * adds one. Unlike folio_maybe_dma_pinned(), leave the mappings out, so
 * that a page shared by a thousand processes is not taken for pinned.
 * The caller holds one reference itself.
 */
static bool virtio_mem_mm_folio_pinned(struct folio *folio)
{
	if (folio_test_large(folio))
		return folio_maybe_dma_pinned(folio);
	return folio_ref_count(folio) -
	       virtio_mem_compat_small_mapcount(folio) > GUP_PIN_COUNTING_BIAS;
}

/*
 * Does a page in this range look pinned long-term (io_uring registered
 * buffers, VFIO, RDMA)? Such a page looks movable but never moves: both
 * offlining and alloc_contig_range() would spend their whole effort on
 * it, and offlining would go on until its time is up. Only online sections
 * are looked at, as the memmap of offline memory may be poisoned; our own
 * fake-offline pages are never pinned, and their reference is the memory
 * notifier's to drop. A reference is held while a folio is looked at, so
 * that it cannot be freed or split under us.
 *
 * Must be called with vm->hotplug_mutex held and the range's memory
 * blocks not being onlined or offlined (virtio_mem_mm_busy()).
 */
static bool virtio_mem_mm_range_pinned(unsigned long pfn,
				       unsigned long nr_pages)
{
	const unsigned long end = pfn + nr_pages;
	struct folio *folio;
	unsigned long order;
	struct page *page;
	bool pinned;

	for (; pfn < end; pfn++) {
		if (!(pfn & (pageblock_nr_pages - 1)))
			cond_resched();
		page = pfn_to_online_page(pfn);
		if (!page) {
			pfn = ALIGN_DOWN(pfn, PAGES_PER_SECTION) +
			      PAGES_PER_SECTION - 1;
			continue;
		}
		if (PageOffline(page))
			continue;
		/*
		 * Free memory is most of an idle block: step over each free
		 * buddy whole instead of trying it page by page. Read without
		 * the zone lock, so an order that makes no sense is ignored.
		 */
		if (PageBuddy(page)) {
			order = READ_ONCE(page->private);
			if (order <= VIRTIO_MEM_MAX_ORDER)
				pfn = max(pfn, ALIGN_DOWN(pfn, 1UL << order) +
					       (1UL << order) - 1);
			continue;
		}
		folio = page_folio(page);
		if (!folio_try_get(folio))
			continue;
		pinned = false;
		if (page_folio(page) == folio) {
			pinned = virtio_mem_mm_folio_pinned(folio);
			pfn = max(pfn, folio_pfn(folio) +
				       folio_nr_pages(folio) - 1);
		}
		folio_put(folio);
		if (pinned)
			return true;
	}
	return false;
}

/**
 * virtio_mem_mm_fake_offline() - take online pages away from Linux
 * @pfn: first page, subblock aligned
 * @nr_pages: number of pages, whole subblocks
 *
 * Migrates whatever uses the range, then keeps the pages as fake offline:
 * ours, PageOffline, not counted as managed memory.
 *
 * Context: vm->hotplug_mutex held, the range's memory block not being
 * onlined or offlined (virtio_mem_take()).
 *
 * Return: 0, -ENOMEM, or -EBUSY when a page looks pinned or something
 * could not be migrated.
 */
int virtio_mem_mm_fake_offline(unsigned long pfn, unsigned long nr_pages)
{
	unsigned long i;
	int rc;

	if (virtio_mem_mm_range_pinned(pfn, nr_pages))
		return -EBUSY;
	rc = alloc_contig_range(pfn, pfn + nr_pages, MIGRATE_MOVABLE,
				GFP_KERNEL | __GFP_NOWARN);
	if (rc)
		return rc == -ENOMEM ? rc : -EBUSY;

	page_offline_begin();
	for (i = 0; i < nr_pages; i++)
		__SetPageOffline(pfn_to_page(pfn + i));
	page_offline_end();
	adjust_managed_page_count(pfn_to_page(pfn), -(long)nr_pages);
	return 0;
}

/**
 * virtio_mem_mm_range_free() - does the buddy hold all of this range?
 * @pfn: first page
 * @nr_pages: number of pages
 *
 * Read without the zone lock: a hint for choosing what to unplug first,
 * never a promise (alloc_contig_range() has the last word).
 *
 * Return: true if every page looked free.
 */
bool virtio_mem_mm_range_free(unsigned long pfn, unsigned long nr_pages)
{
	const unsigned long end = pfn + nr_pages;
	unsigned long head, order;
	unsigned int o;

	while (pfn < end) {
		/* The free page covering pfn may start below it. */
		for (o = 0; o <= VIRTIO_MEM_MAX_ORDER; o++) {
			head = ALIGN_DOWN(pfn, 1UL << o);
			if (!PageBuddy(pfn_to_page(head)))
				continue;
			order = READ_ONCE(pfn_to_page(head)->private);
			if (order >= o && order <= VIRTIO_MEM_MAX_ORDER)
				break;
		}
		if (o > VIRTIO_MEM_MAX_ORDER)
			return false;
		pfn = head + (1UL << order);
	}
	return true;
}

/**
 * virtio_mem_mm_available() - memory available to user space
 *
 * si_mem_available() already leaves out the zone watermarks and reserves.
 *
 * Return: bytes.
 */
u64 virtio_mem_mm_available(void)
{
	return (u64)si_mem_available() << PAGE_SHIFT;
}

/**
 * virtio_mem_mm_kernel_free() - free memory the kernel itself can use
 *
 * Free pages above the high watermark in the zones below ZONE_MOVABLE, on
 * every node: where the memmap of hot-added memory comes from. Free CMA
 * pages do not count: only movable allocations may use them, and arm64
 * guests reserve 64 MiB of CMA, most of a small guest's free memory.
 *
 * Return: bytes.
 */
u64 virtio_mem_mm_kernel_free(void)
{
	unsigned long free, high, sum = 0;
	struct zone *zone;
	int nid, i;

	for_each_online_node(nid) {
		for (i = 0; i < ZONE_MOVABLE; i++) {
			zone = &NODE_DATA(nid)->node_zones[i];
			if (!populated_zone(zone))
				continue;
			free = zone_page_state(zone, NR_FREE_PAGES) -
			       zone_page_state(zone, NR_FREE_CMA_PAGES);
			high = high_wmark_pages(zone);
			if (free > high)
				sum += free - high;
		}
	}
	return (u64)sum << PAGE_SHIFT;
}

/**
 * virtio_mem_mm_memmap_size() - memmap needed to add memory
 * @size: bytes of memory to add
 *
 * Return: bytes of struct page.
 */
u64 virtio_mem_mm_memmap_size(u64 size)
{
	return PHYS_PFN(size) * sizeof(struct page);
}

static int virtio_mem_mm_add(struct virtio_mem *vm, u64 addr, u64 size,
			     mhp_t flags)
{
	int rc;

	lockdep_assert_not_held(&vm->hotplug_mutex);
	dev_dbg(&vm->vdev->dev, "adding memory 0x%llx-0x%llx%s\n", addr,
		addr + size - 1,
		flags & MHP_MEMMAP_ON_MEMORY ? ", memmap on it" : "");
	rc = add_memory_driver_managed(vm->mgid, addr, size,
				       vm->resource_name,
				       MHP_MERGE_RESOURCE | MHP_NID_IS_MGID |
				       flags);
	if (!rc && (flags & MHP_MEMMAP_ON_MEMORY) &&
	    !vm->memmap_on_memory_seen) {
		vm->memmap_on_memory_seen = true;
		dev_info(&vm->vdev->dev,
			 "memory blocks carry their own memmap (memmap_on_memory)\n");
	}
	return rc;
}

/**
 * virtio_mem_mm_add_range() - add memory blocks to Linux
 * @vm: the device
 * @addr: start, memory block aligned
 * @size: size, whole memory blocks
 * @memmap: put each memory block's memmap on the block itself
 *
 * Auto-onlining, if configured, happens in here and calls our notifier:
 * the caller must not hold vm->hotplug_mutex.
 *
 * Return: 0 or the errno of add_memory_driver_managed().
 */
int virtio_mem_mm_add_range(struct virtio_mem *vm, u64 addr, u64 size,
			    bool memmap)
{
	return virtio_mem_mm_add(vm, addr, size,
				 memmap ? MHP_MEMMAP_ON_MEMORY : 0);
}

/*
 * Offlining migrates until nothing is left to migrate, and retries without
 * end a page that looks movable but never moves (one pinned long-term by
 * io_uring, VFIO or RDMA), holding the memory hotplug locks. So a range
 * where a page looks pinned is not offlined at all. For a page that gets
 * pinned meanwhile, or never moves for another reason: offlining stops on
 * a signal, which a kernel thread gets only when it allows one, so it runs
 * in a thread of its own that gets SIGKILL when its time is up. The time
 * is generous for migration under emulation and ends only what would not
 * end otherwise. Offlining sees the signal only between two migration
 * passes over the range, and one pass over a block of pinned pages can
 * take minutes on a debug kernel under emulation: the wait for it wakes
 * up now and then, so that it is not taken for a hung task.
 */
#define VIRTIO_MEM_MM_OFFLINE_MB_MS	15000
#define VIRTIO_MEM_MM_OFFLINE_MAX_MS	60000
#define VIRTIO_MEM_MM_OFFLINE_KILL_WARN_S	30

/*
 * One offline, run by vm->offliner. @lock orders the thread's start and
 * end of offlining against the waiter's SIGKILL: the thread takes the
 * signal only while @running, and a job stopped before it ran never runs.
 */
struct virtio_mem_mm_offline_job {
	struct kthread_work work;
	/* Protects @running and @stopped, and signals to the thread. */
	spinlock_t lock;
	bool running;
	bool stopped;
	u64 addr;
	u64 size;
	int rc;
	struct completion done;
};

static void virtio_mem_mm_offline_fn(struct kthread_work *work)
{
	struct virtio_mem_mm_offline_job *job =
		container_of(work, struct virtio_mem_mm_offline_job, work);
	bool run;

	spin_lock(&job->lock);
	run = !job->stopped;
	job->running = run;
	if (run)
		allow_signal(SIGKILL);
	spin_unlock(&job->lock);

	job->rc = run ? offline_and_remove_memory(job->addr, job->size) :
			-EINTR;

	/* Drops a SIGKILL that came too late, so none is left pending. */
	spin_lock(&job->lock);
	if (run)
		disallow_signal(SIGKILL);
	job->running = false;
	spin_unlock(&job->lock);
	/* complete_all(), because the waiter checks it more than once. */
	complete_all(&job->done);
}

static void virtio_mem_mm_offline_stop(struct virtio_mem *vm,
				       struct virtio_mem_mm_offline_job *job)
{
	spin_lock(&job->lock);
	job->stopped = true;
	if (job->running)
		send_sig(SIGKILL, vm->offliner->task, 1);
	spin_unlock(&job->lock);
}

/**
 * virtio_mem_mm_offliner_stop() - end the thread that offlines for us
 * @vm: the device
 *
 * The worker starts it at its first offline and keeps it for the rest of
 * its pass: starting a thread per block cost about as much as offlining
 * a free block. Called at the end of each pass and by remove.
 *
 * Context: the worker or remove, which never run at the same time.
 */
void virtio_mem_mm_offliner_stop(struct virtio_mem *vm)
{
	if (!vm->offliner)
		return;
	kthread_destroy_worker(vm->offliner);
	vm->offliner = NULL;
}

/**
 * virtio_mem_mm_offline_and_remove_range() - offline and remove memory
 * @vm: the device
 * @addr: start, memory block aligned
 * @size: size, whole memory blocks
 *
 * Migrates whatever is in use, for a bounded time; may fail, in which case
 * everything is left as it was.
 *
 * Context: the worker or remove, without vm->hotplug_mutex.
 *
 * Return: 0; -EBUSY when a page looks pinned; -EINTR when it took too long
 * or the config changed; else the errno of offline_and_remove_memory() or
 * of starting the thread.
 */
int virtio_mem_mm_offline_and_remove_range(struct virtio_mem *vm, u64 addr,
					   u64 size)
{
	const unsigned long nr_mbs = div64_u64(size, vm->geo.mb_size);
	unsigned long left = msecs_to_jiffies(min_t(unsigned long,
						    VIRTIO_MEM_MM_OFFLINE_MAX_MS,
						    nr_mbs *
						    VIRTIO_MEM_MM_OFFLINE_MB_MS));
	struct virtio_mem_mm_offline_job job = {
		.addr = addr,
		.size = size,
	};
	unsigned int waited;
	bool pinned;

	lockdep_assert_not_held(&vm->hotplug_mutex);

	/* A block that user space toggles right now is offlined as it is. */
	mutex_lock(&vm->hotplug_mutex);
	pinned = !virtio_mem_mm_busy(vm, virtio_mem_addr_to_mb_id(&vm->geo,
								   addr),
				     nr_mbs) &&
		 virtio_mem_mm_range_pinned(PHYS_PFN(addr), PHYS_PFN(size));
	mutex_unlock(&vm->hotplug_mutex);
	if (pinned) {
		dev_dbg(&vm->vdev->dev,
			"not offlining 0x%llx-0x%llx: a page in it is pinned\n",
			addr, addr + size - 1);
		return -EBUSY;
	}
	if (!vm->offliner) {
		struct kthread_worker *w;

		/*
		 * On the worker's CPU: the worker only waits while the thread
		 * offlines, and waking each other there takes no IPI. Under
		 * TCG that cut the time between the offlines of an idle unplug
		 * to a fifth (bench --breakdown, 16 -> 1 GiB: 0.10 -> 0.02 s).
		 */
		w = kthread_create_worker_on_cpu(raw_smp_processor_id(), 0,
						 "virtio_mem_offline");
		if (IS_ERR(w))
			return PTR_ERR(w);
		vm->offliner = w;
	}
	kthread_init_work(&job.work, virtio_mem_mm_offline_fn);
	spin_lock_init(&job.lock);
	init_completion(&job.done);
	kthread_queue_work(vm->offliner, &job.work);

	/* A config change ends the wait early: the host may want memory now. */
	while (left && !wait_for_completion_timeout(&job.done, HZ / 10)) {
		left = left > HZ / 10 ? left - HZ / 10 : 0;
		/* Only remove writes it, before it offlines anything itself. */
		if (!READ_ONCE(vm->removing) &&
		    atomic_read(&vm->config_changed))
			left = 0;
	}
	if (!left && !completion_done(&job.done)) {
		if (!atomic_read(&vm->config_changed))
			atomic64_inc(&vm->stats.offline_timeouts);
		virtio_mem_mm_offline_stop(vm, &job);
	}
	/* Bounded: offlining checks for signals after each migration pass. */
	for (waited = 1; !wait_for_completion_timeout(&job.done, HZ); waited++) {
		if (waited == VIRTIO_MEM_MM_OFFLINE_KILL_WARN_S)
			dev_warn(&vm->vdev->dev,
				 "offlining 0x%llx-0x%llx still migrating %u s after it was stopped\n",
				 addr, addr + size - 1, waited);
	}
	if (job.rc == -EINTR)
		dev_dbg(&vm->vdev->dev,
			"offlining 0x%llx-0x%llx took too long; stopped it\n",
			addr, addr + size - 1);
	return job.rc;
}

/**
 * virtio_mem_mm_no_memmap_on_memory() - say that the memmap comes from
 *	existing memory, and how that could change
 * @vm: the device
 */
void virtio_mem_mm_no_memmap_on_memory(struct virtio_mem *vm)
{
	dev_info(&vm->vdev->dev,
		 "the memmap of added memory comes from existing memory (booting with memory_hotplug.memmap_on_memory=1 puts it on the added memory)\n");
}

/**
 * virtio_mem_mm_add_mb() - add one memory block to Linux
 * @vm: the device
 * @mb_id: the memory block; its plugged subblocks are already marked,
 *	its memmap subblocks (vm->sbm.memmap_sbs) among them
 *
 * Context: the worker, without vm->hotplug_mutex.
 *
 * Return: 0 or the errno of add_memory_driver_managed().
 */
int virtio_mem_mm_add_mb(struct virtio_mem *vm, unsigned long mb_id)
{
	const u64 addr = virtio_mem_mb_addr(&vm->geo, mb_id);
	unsigned int memmap_sbs;
	bool plugged;
	int rc;

	mutex_lock(&vm->hotplug_mutex);
	memmap_sbs = vm->sbm.memmap_sbs;
	plugged = !memmap_sbs ||
		  virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id, 0, memmap_sbs);
	mutex_unlock(&vm->hotplug_mutex);
	if (!memmap_sbs)
		return virtio_mem_mm_add(vm, addr, vm->geo.mb_size, 0);
	/* The add writes the memmap, so it must be plugged by now. */
	if (WARN_ON_ONCE(!plugged))
		return -EINVAL;
	rc = virtio_mem_mm_add(vm, addr, vm->geo.mb_size, MHP_MEMMAP_ON_MEMORY);
	if (rc != -EINVAL || vm->memmap_on_memory_seen)
		return rc;
	/*
	 * Before any block got its memmap on itself: this kernel does not
	 * do it (6.1 without memory_hotplug.memmap_on_memory=1). Carry on
	 * without, for good.
	 */
	virtio_mem_mm_no_memmap_on_memory(vm);
	mutex_lock(&vm->hotplug_mutex);
	WRITE_ONCE(vm->sbm.memmap_sbs, 0);
	mutex_unlock(&vm->hotplug_mutex);
	return virtio_mem_mm_add(vm, addr, vm->geo.mb_size, 0);
}

/**
 * virtio_mem_mm_offline_and_remove_mb() - offline and remove a memory block
 * @vm: the device
 * @mb_id: the memory block
 *
 * Return: 0 or the errno of offline_and_remove_memory().
 */
int virtio_mem_mm_offline_and_remove_mb(struct virtio_mem *vm,
					unsigned long mb_id)
{
	return virtio_mem_mm_offline_and_remove_range(vm,
			virtio_mem_mb_addr(&vm->geo, mb_id), vm->geo.mb_size);
}
