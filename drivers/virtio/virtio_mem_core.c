// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: a paravirtualized memory device, guest driver.
 *
 * Overview
 * ========
 * The device exposes a region of guest-physical memory cut into device
 * blocks. The host sets requested_size; we plug device blocks until the
 * plugged size matches and hand the memory to Linux.
 *
 * Sub Block Mode (SBM), the mode for device blocks smaller than a Linux
 * memory block: memory is added to Linux one memory block at a time, with
 * add_memory_driver_managed() as "System RAM (virtio_mem)", and plugged in
 * subblocks of max(pageblock, device block). The unplugged subblocks of an
 * added block are kept "fake offline" by our online_page callback: never
 * given to the buddy, PageOffline, never touched (C5, C6). A memory
 * notifier tracks onlining and offlining by user space and lets blocks with
 * fake-offline pages go offline.
 *
 * Big Block Mode (BBM), for device blocks of a memory block or more (or
 * when forced): a big block spans one or more memory blocks and is plugged,
 * added, removed and unplugged as a unit (virtio_mem_bbm.c).
 *
 * What we rely on from core-mm: add_memory_driver_managed() with
 * MHP_MERGE_RESOURCE | MHP_NID_IS_MGID and a dynamic memory group per
 * device (so online policies such as auto-movable see the device as a
 * unit); the online_page callback; MEM_GOING_OFFLINE letting PageOffline
 * pages with no reference be skipped; offline_and_remove_memory().
 *
 * Files: virtio_mem_state.c (the block state of both modes, pure),
 * virtio_mem_policy.c (validation and decisions, pure), virtio_mem_device.c
 * (config and requests), virtio_mem_mm.c (core-mm glue that does mm
 * work), virtio_mem_notify.c (what core-mm calls: the memory notifier and
 * the online_page callback), virtio_mem_modes.c (the plug loop, the unplug
 * walk and the checks both modes share), virtio_mem_sbm.c and
 * virtio_mem_bbm.c (what differs per mode), virtio_mem_sysfs.c (sysfs and debugfs),
 * virtio_mem_lifecycle.c (kdump, suspend, adoption), this file (probe,
 * remove and the worker).
 *
 * The device's rules C1..C11, which comments refer to, are spelled out in
 * Documentation/driver-api/virtio/virtio-mem.rst with where each is kept.
 *
 * The worker is the only place that acts; everything that wants it to act
 * (config change, onlining by user space, the retry timer) just queues it.
 * Its retry policy is one pure function, virtio_mem_decide(), which the
 * userspace harness runs too.
 */

#include <linux/bitmap.h>
#include <linux/crash_dump.h>
#include <linux/ioport.h>
#include <linux/log2.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/numa.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/virtio_config.h>
#if defined(CONFIG_NUMA) && defined(CONFIG_ACPI_NUMA)
#include <linux/acpi.h>
#endif

#include "virtio_mem.h"
#include "virtio_mem_compat.h"

#define CREATE_TRACE_POINTS
#include <trace/events/virtio_mem.h>

/*
 * Retry delays after a transient failure (device BUSY, -ENOMEM, an add
 * that failed): short at first, because under emulation or migration the
 * cause often clears within a second, then doubling so that a device that
 * stays busy for minutes costs a try every half minute. Any progress
 * resets the delay: backing off is for when nothing moves.
 */
#define VIRTIO_MEM_RETRY_MS_MIN		1000
#define VIRTIO_MEM_RETRY_MS_MAX		30000

/* Stop adding memory while this much added memory sits offline. */
#define VIRTIO_MEM_OFFLINE_LIMIT	SZ_1G

bool virtio_mem_unplug_online = true;
module_param_named(unplug_online, virtio_mem_unplug_online, bool, 0644);
MODULE_PARM_DESC(unplug_online,
		 "Take back memory that is online (default: on)");

/*
 * The OOM guard: unplug never takes online memory when that would leave
 * less than this available (MemAvailable). The default, -1, keeps the
 * larger of 64 MiB and 2% of memory, on top of the watermarks that
 * MemAvailable already leaves out; 0 turns the guard off.
 */
static int virtio_mem_unplug_floor_mb = -1;

static int virtio_mem_floor_set(const char *val, const struct kernel_param *kp)
{
	int mb, rc;

	rc = kstrtoint(val, 0, &mb);
	if (rc || mb < -1) {
		pr_err("virtio_mem: unplug_floor_mb must be -1 (auto), 0 (off) or MiB, not '%s'\n",
		       val);
		return -EINVAL;
	}
	WRITE_ONCE(virtio_mem_unplug_floor_mb, mb);
	return 0;
}

static const struct kernel_param_ops virtio_mem_floor_ops = {
	.set = virtio_mem_floor_set,
	.get = param_get_int,
};

module_param_cb(unplug_floor_mb, &virtio_mem_floor_ops,
		&virtio_mem_unplug_floor_mb, 0644);
MODULE_PARM_DESC(unplug_floor_mb,
		 "Memory to keep available when unplugging, MiB: -1 auto (default), 0 off");

/**
 * virtio_mem_unplug_floor() - what the OOM guard keeps available
 *
 * Return: bytes; 0 when the guard is off.
 */
u64 virtio_mem_unplug_floor(void)
{
	int mb = READ_ONCE(virtio_mem_unplug_floor_mb);

	if (mb >= 0)
		return (u64)mb << 20;
	return max_t(u64, SZ_64M, ((u64)totalram_pages() << PAGE_SHIFT) / 50);
}

static bool virtio_mem_force_bbm;
module_param_named(force_bbm, virtio_mem_force_bbm, bool, 0444);
MODULE_PARM_DESC(force_bbm,
		 "Use Big Block Mode even for small device blocks (default: off)");

static unsigned long virtio_mem_bbm_block_size;
module_param_named(bbm_block_size, virtio_mem_bbm_block_size, ulong, 0444);
MODULE_PARM_DESC(bbm_block_size,
		 "Big block size in bytes in Big Block Mode: a power of two, at least the device and memory block size (default: the larger of those)");

static bool virtio_mem_memmap_on_memory = true;
module_param_named(memmap_on_memory, virtio_mem_memmap_on_memory, bool, 0444);
MODULE_PARM_DESC(memmap_on_memory,
		 "Put the memmap of each memory block on the block itself where the kernel does it (memory_hotplug.memmap_on_memory=1; Big Block Mode: from 6.12) (default: on)");

/**
 * virtio_mem_set_status() - record why the device is where it is
 * @vm: the device
 * @status: the reason
 *
 * Says so in the log, once, when the reason changes to one an operator must
 * know; passing through "working" on a retry does not count as a change.
 */
void virtio_mem_set_status(struct virtio_mem *vm, enum virtio_mem_status status)
{
	enum virtio_mem_status old, logged;

	mutex_lock(&vm->hotplug_mutex);
	old = vm->status;
	logged = vm->status_logged;
	vm->status = status;
	if (status != VIRTIO_MEM_STATUS_WORKING)
		vm->status_logged = status;
	mutex_unlock(&vm->hotplug_mutex);

	if (old != status)
		dev_dbg(&vm->vdev->dev, "now %s (was %s)\n",
			virtio_mem_status_name(status),
			virtio_mem_status_name(old));
	/* Retrying the same thing is not news. */
	if (status == logged)
		return;
	switch (status) {
	case VIRTIO_MEM_STATUS_OFFLINE_LIMIT:
		dev_info(&vm->vdev->dev,
			 "paused: %llu MiB of added memory is offline; online it to continue\n",
			 vm->offline_limit >> 20);
		break;
	case VIRTIO_MEM_STATUS_UNPLUG_ONLINE_OFF:
		dev_info(&vm->vdev->dev,
			 "only online memory is left to unplug, and unplug_online is off\n");
		break;
	case VIRTIO_MEM_STATUS_MEMORY_PRESSURE:
		dev_info(&vm->vdev->dev,
			 "unplug paused: taking more would leave less than %llu MiB available\n",
			 virtio_mem_unplug_floor() >> 20);
		break;
	case VIRTIO_MEM_STATUS_UNMOVABLE:
		dev_info(&vm->vdev->dev,
			 "unplug stalled: the memory left is in use and cannot be migrated; retrying\n");
		break;
	case VIRTIO_MEM_STATUS_NOMEM:
		dev_info(&vm->vdev->dev,
			 "paused: too little memory the kernel can use (%llu MiB free) for more memmap; retrying\n",
			 virtio_mem_mm_kernel_free() >> 20);
		break;
	case VIRTIO_MEM_STATUS_NO_SPACE:
		dev_info(&vm->vdev->dev,
			 "no usable memory left in the device region\n");
		break;
	default:
		break;
	}
}

/**
 * virtio_mem_retry() - have the worker look at the device again
 * @vm: the device
 *
 * Context: any, but not with interrupts disabled by the caller.
 */
void virtio_mem_retry(struct virtio_mem *vm)
{
	unsigned long flags;

	spin_lock_irqsave(&vm->removal_lock, flags);
	if (!vm->removing)
		queue_work(system_freezable_wq, &vm->wq);
	spin_unlock_irqrestore(&vm->removal_lock, flags);
}

static enum hrtimer_restart virtio_mem_timer_expired(struct hrtimer *timer)
{
	struct virtio_mem *vm = container_of(timer, struct virtio_mem,
					     retry_timer);

	virtio_mem_retry(vm);
	return HRTIMER_NORESTART;
}

/* Arm the retry timer; returns the delay, for the trace. */
static unsigned int virtio_mem_retry_later(struct virtio_mem *vm)
{
	unsigned int delay = vm->retry_ms;

	atomic64_inc(&vm->stats.retries);
	hrtimer_start(&vm->retry_timer, ms_to_ktime(vm->retry_ms),
		      HRTIMER_MODE_REL);
	vm->retry_ms = min(vm->retry_ms * 2, VIRTIO_MEM_RETRY_MS_MAX);
	return delay;
}

/*
 * Re-read the config, which the device may have changed. Only the worker
 * calls this, as it is the one writer of vm->cfg.
 */
static enum virtio_mem_outcome virtio_mem_refresh_config(struct virtio_mem *vm)
{
	struct virtio_mem_cfg_problem problem;
	struct virtio_mem_cfg cfg;

	virtio_mem_read_config(vm, &cfg);
	if (virtio_mem_cfg_check_update(&vm->cfg, &cfg, &problem)) {
		virtio_mem_log_problem(vm, &problem);
		return VIRTIO_MEM_OUTCOME_FAILED;
	}
	vm->cfg = cfg;
	return VIRTIO_MEM_OUTCOME_DONE;
}

/* Bytes the driver knows to be plugged. */
static u64 virtio_mem_plugged(struct virtio_mem *vm)
{
	u64 plugged;

	mutex_lock(&vm->hotplug_mutex);
	if (vm->geo.bbm)
		plugged = virtio_mem_bbm_plugged(vm);
	else
		plugged = (u64)vm->sbm.nr_sbs_plugged * vm->geo.sb_size;
	mutex_unlock(&vm->hotplug_mutex);
	return plugged;
}

/* One pass of the worker: bring plugged_size toward requested_size. */
static enum virtio_mem_outcome virtio_mem_resize(struct virtio_mem *vm)
{
	enum virtio_mem_outcome outcome;
	u64 plugged, requested;

	outcome = virtio_mem_refresh_config(vm);
	if (outcome)
		return outcome;

	if (vm->unplug_all_required) {
		outcome = virtio_mem_send_unplug_all(vm);
		if (outcome)
			return outcome;
		vm->unplug_all_required = false;
		dev_info(&vm->vdev->dev, "unplugged memory left from before\n");
		/* UNPLUG_ALL may have shrunk the usable region. */
		return VIRTIO_MEM_OUTCOME_CONFIG_CHANGED;
	}

	/* The host must not ask for more than is usable; plug at most that. */
	requested = min(vm->cfg.requested_size, vm->cfg.usable_region_size);
	plugged = virtio_mem_plugged(vm);

	if (plugged != vm->cfg.plugged_size)
		dev_warn_once(&vm->vdev->dev,
			      "device reports %llu bytes plugged, driver knows of %llu\n",
			      vm->cfg.plugged_size, plugged);

	/* Blocks a failed add left plugged are wanted unless we shrink. */
	if (requested >= plugged) {
		outcome = vm->geo.bbm ? virtio_mem_bbm_readd_plugged(vm) :
					virtio_mem_sbm_readd_plugged(vm);
		if (outcome)
			return outcome;
	}

	if (requested > plugged) {
		virtio_mem_set_status(vm, VIRTIO_MEM_STATUS_WORKING);
		if (vm->geo.bbm)
			return virtio_mem_bbm_plug(vm, requested - plugged);
		return virtio_mem_sbm_plug(vm, requested - plugged);
	}
	if (requested < plugged) {
		virtio_mem_set_status(vm, VIRTIO_MEM_STATUS_WORKING);
		if (vm->geo.bbm)
			return virtio_mem_bbm_unplug(vm, plugged - requested);
		return virtio_mem_sbm_unplug(vm, plugged - requested);
	}
	return VIRTIO_MEM_OUTCOME_DONE;
}

static void virtio_mem_run_wq(struct work_struct *work)
{
	struct virtio_mem *vm = container_of(work, struct virtio_mem, wq);
	enum virtio_mem_outcome outcome;
	enum virtio_mem_status status;
	unsigned int delay = 0;
	u64 before;

	if (vm->broken)
		return;
	hrtimer_cancel(&vm->retry_timer);
again:
	atomic_set(&vm->config_changed, 0);
	before = virtio_mem_plugged(vm);
	outcome = virtio_mem_resize(vm);
	if (virtio_mem_plugged(vm) != before)
		vm->retry_ms = VIRTIO_MEM_RETRY_MS_MIN;

	/* The whole retry policy is virtio_mem_decide(). */
	switch (virtio_mem_decide(outcome, &status)) {
	case VIRTIO_MEM_NEXT_AGAIN:
		goto again;
	case VIRTIO_MEM_NEXT_WAIT:
		if (!outcome)
			vm->retry_ms = VIRTIO_MEM_RETRY_MS_MIN;
		break;
	case VIRTIO_MEM_NEXT_RETRY:
		delay = virtio_mem_retry_later(vm);
		break;
	case VIRTIO_MEM_NEXT_BROKEN:
		dev_err(&vm->vdev->dev,
			"device or driver in an unexpected state (%s): stopping\n",
			virtio_mem_outcome_name(outcome));
		vm->broken = true;
		break;
	}
	virtio_mem_mm_offliner_stop(vm);
	virtio_mem_set_status(vm, status);
	/* Read the config again so that sysfs shows it as after the pass. */
	if (!vm->broken)
		virtio_mem_refresh_config(vm);
	trace_virtio_mem_retry(vm->vdev->index, virtio_mem_outcome_name(outcome),
			       virtio_mem_status_name(READ_ONCE(vm->status)), delay);
}

void virtio_mem_config_changed(struct virtio_device *vdev)
{
	struct virtio_mem *vm = vdev->priv;

	/* A kdump kernel leaves plugging to the kernel that comes next. */
	if (vm->kdump.active)
		return;
	atomic_set(&vm->config_changed, 1);
	virtio_mem_retry(vm);
}

/*
 * The node of the device's memory: its ACPI PXM if that was negotiated
 * (C2), else the node of its address. A guest booted with a device tree
 * (arm64 without firmware) has no ACPI, while the device may still offer
 * a PXM: with more than one node, say that the node used is not the one
 * the host asked for but the one of the address.
 */
static int virtio_mem_node(struct virtio_mem *vm)
{
	int nid = NUMA_NO_NODE;

#if defined(CONFIG_NUMA) && defined(CONFIG_ACPI_NUMA)
	if (virtio_has_feature(vm->vdev, VIRTIO_MEM_F_ACPI_PXM)) {
		nid = pxm_to_node(vm->cfg.node_id);
		if (nid == NUMA_NO_NODE && num_online_nodes() > 1)
			dev_info(&vm->vdev->dev,
				 "proximity domain %u is unknown to this guest (no ACPI NUMA): using the node of the device's address\n",
				 vm->cfg.node_id);
	}
#endif
	if (nid == NUMA_NO_NODE)
		nid = memory_add_physaddr_to_nid(vm->cfg.addr);
	return nid;
}

static void virtio_mem_mb_state_changed(void *owner, unsigned long mb_id,
					enum virtio_mem_sbm_mb_state old,
					enum virtio_mem_sbm_mb_state state)
{
	struct virtio_mem *vm = owner;

	trace_virtio_mem_mb_state(vm->vdev->index, mb_id, old, state);
}

/*
 * Read and check the config and work out the geometry. A bbm_block_size
 * that cannot work falls back to the default instead of failing the probe.
 */
static int virtio_mem_init_geometry(struct virtio_mem *vm)
{
	const struct range pluggable = mhp_get_pluggable_range(true);
	struct virtio_mem_limits limits = {
		.mb_size = memory_block_size_bytes(),
		.pageblock_size = PAGE_SIZE << pageblock_order,
		.pluggable_start = pluggable.start,
		.pluggable_end = pluggable.end,
		.force_bbm = virtio_mem_force_bbm,
		.bb_size = virtio_mem_bbm_block_size,
	};
	struct virtio_mem_cfg_problem problem;
	int rc;

	if (limits.bb_size && (!is_power_of_2(limits.bb_size) ||
			       limits.bb_size < limits.mb_size)) {
		dev_warn(&vm->vdev->dev,
			 "bbm_block_size=%llu is not a power of two >= the memory block size; using the default\n",
			 limits.bb_size);
		limits.bb_size = 0;
	}

	virtio_mem_read_config(vm, &vm->cfg);
	if (limits.bb_size && limits.bb_size < vm->cfg.block_size) {
		dev_warn(&vm->vdev->dev,
			 "bbm_block_size=%llu is below the device block size; using the default\n",
			 limits.bb_size);
		limits.bb_size = 0;
	}
	rc = virtio_mem_cfg_check(&vm->cfg, PAGE_SIZE, &problem);
	if (!rc)
		rc = virtio_mem_geo_init(&vm->geo, &vm->cfg, &limits, &problem);
	if (rc) {
		virtio_mem_log_problem(vm, &problem);
		return rc;
	}
	if (vm->geo.bbm && limits.bb_size && vm->geo.bb_size < limits.bb_size)
		dev_info(&vm->vdev->dev,
			 "bbm_block_size=%llu is more than one request or the region allows; using %llu\n",
			 limits.bb_size, vm->geo.bb_size);
	if (vm->geo.unusable_size)
		dev_info(&vm->vdev->dev,
			 "%llu MiB of the device region can never be used (outside whole memory blocks Linux can add)\n",
			 vm->geo.unusable_size >> 20);
	return 0;
}

static int virtio_mem_init_sbm(struct virtio_mem *vm)
{
	int rc;

	rc = virtio_mem_sbm_init(&vm->sbm, vm->geo.first_mb_id,
				 vm->geo.last_mb_id, vm->geo.sbs_per_mb);
	if (rc)
		return rc;
	vm->sbm_sweep_failed = bitmap_zalloc(vm->geo.last_mb_id -
					     vm->geo.first_mb_id + 1,
					     GFP_KERNEL);
	if (!vm->sbm_sweep_failed) {
		virtio_mem_sbm_destroy(&vm->sbm);
		return -ENOMEM;
	}
	vm->sbm.changed = virtio_mem_mb_state_changed;
	vm->sbm.owner = vm;
	/*
	 * With the memmap on each block itself, a small guest need not find
	 * room for it in the little memory it booted with.
	 */
	if (!virtio_mem_memmap_on_memory)
		return 0;
	if (!virtio_mem_compat_memmap_on_memory())
		virtio_mem_mm_no_memmap_on_memory(vm);
	else
		vm->sbm.memmap_sbs =
			virtio_mem_memmap_sbs(&vm->geo,
					      virtio_mem_mm_memmap_size(vm->geo.mb_size));
	return 0;
}

static int virtio_mem_init_bbm(struct virtio_mem *vm)
{
	int rc;

	rc = virtio_mem_bbm_init(&vm->bbm, vm->geo.first_bb_id,
				 vm->geo.last_bb_id);
	if (rc || !virtio_mem_memmap_on_memory)
		return rc;
	/* As in SBM: a small guest need not find room for the memmap. */
	if (virtio_mem_compat_memmap_on_memory_range())
		vm->bbm.memmap_size =
			virtio_mem_bbm_memmap_size(&vm->geo,
						   virtio_mem_mm_memmap_size(vm->geo.mb_size),
						   PAGE_SIZE << pageblock_order);
	/* (6.1 cannot do it for a big block at all: nothing to advise.) */
	if (!vm->bbm.memmap_size && !virtio_mem_compat_memmap_on_memory())
		virtio_mem_mm_no_memmap_on_memory(vm);
	return 0;
}

/* Read and validate the config, set up geometry and state. */
static int virtio_mem_init(struct virtio_mem *vm)
{
	int rc;

	rc = virtio_mem_init_geometry(vm);
	if (rc)
		return rc;

	vm->nid = virtio_mem_node(vm);
	vm->offline_limit = virtio_mem_offline_limit(&vm->geo,
						     VIRTIO_MEM_OFFLINE_LIMIT);
	vm->retry_ms = VIRTIO_MEM_RETRY_MS_MIN;
	/*
	 * Memory plugged before we came (kexec, a failed reset) is unknown to
	 * us and must be unplugged first (C4); adoption may clear this.
	 */
	vm->unplug_all_required = vm->cfg.plugged_size != 0;

	if (vm->geo.bbm)
		return virtio_mem_init_bbm(vm);
	return virtio_mem_init_sbm(vm);
}

static void virtio_mem_destroy(struct virtio_mem *vm)
{
	bitmap_free(vm->sbm_sweep_failed);
	virtio_mem_sbm_destroy(&vm->sbm);
	virtio_mem_bbm_destroy(&vm->bbm);
}

/*
 * Reserve the whole device region, so that nothing else (including /dev/mem)
 * maps it, but leave it not busy so that add_memory can add children.
 */
static int virtio_mem_create_resource(struct virtio_mem *vm)
{
	const char *name = kstrdup(dev_name(&vm->vdev->dev), GFP_KERNEL);

	if (!name)
		return -ENOMEM;
	vm->parent_resource = __request_mem_region(vm->cfg.addr,
						   vm->cfg.region_size, name,
						   IORESOURCE_SYSTEM_RAM |
						   IORESOURCE_EXCLUSIVE);
	if (!vm->parent_resource) {
		kfree(name);
		return -EBUSY;
	}
	vm->parent_resource->flags &= ~IORESOURCE_BUSY;
	return 0;
}

static void virtio_mem_delete_resource(struct virtio_mem *vm)
{
	const char *name = vm->parent_resource->name;

	release_resource(vm->parent_resource);
	kfree(vm->parent_resource);
	kfree(name);
	vm->parent_resource = NULL;
}

/*
 * Reserve the device region or, if it is reserved already, take over what
 * an earlier instance of the driver left in it. Adopting sends requests, so
 * it makes the device ready first and says so in @ready.
 */
static int virtio_mem_claim_region(struct virtio_mem *vm, bool *ready)
{
	int rc;

	rc = virtio_mem_create_resource(vm);
	if (rc != -EBUSY)
		return rc;
	virtio_device_ready(vm->vdev);
	*ready = true;
	rc = virtio_mem_adopt(vm);
	if (rc)
		dev_err(&vm->vdev->dev,
			"device region [0x%llx-0x%llx] is in use, and not by memory an earlier instance of this driver left\n",
			vm->cfg.addr, vm->cfg.addr + vm->cfg.region_size - 1);
	return rc;
}

/* Blocks (SBM) or big blocks (BBM) still added to Linux. */
static unsigned long virtio_mem_nr_added(struct virtio_mem *vm)
{
	unsigned long nr;

	mutex_lock(&vm->hotplug_mutex);
	if (vm->geo.bbm)
		nr = vm->bbm.bb_count[VIRTIO_MEM_BBM_BB_ADDED] +
		     vm->bbm.bb_count[VIRTIO_MEM_BBM_BB_FAKE_OFFLINE];
	else
		nr = vm->sbm.next_mb_id - vm->sbm.first_mb_id -
		     vm->sbm.mb_count[VIRTIO_MEM_SBM_MB_UNUSED] -
		     vm->sbm.mb_count[VIRTIO_MEM_SBM_MB_PLUGGED];
	mutex_unlock(&vm->hotplug_mutex);
	return nr;
}

/*
 * Undo virtio_mem_claim_region() for a probe that fails after it. Memory
 * adopted from an earlier instance is still added and online, its
 * unplugged parts fake offline: as remove does with memory Linux would
 * not give up, leave the region reserved, so that the next instance
 * takes that memory over instead of unplugging it under Linux.
 */
static void virtio_mem_release_region(struct virtio_mem *vm)
{
	const unsigned long left = virtio_mem_nr_added(vm);

	if (left) {
		dev_warn(&vm->vdev->dev,
			 "%lu %s adopted stay plugged; the device region stays reserved for the next instance of this driver\n",
			 left, vm->geo.bbm ? "big blocks" : "memory blocks");
		return;
	}
	virtio_mem_delete_resource(vm);
}

/*
 * The memory group and the resource name that every add of our memory
 * passes. The group's unit is what we add at once, so that the online
 * policies see it as one.
 */
static int virtio_mem_register_group(struct virtio_mem *vm)
{
	int rc;

	rc = memory_group_register_dynamic(vm->nid,
					   PHYS_PFN(vm->geo.bbm ? vm->geo.bb_size :
								  vm->geo.mb_size));
	if (rc < 0)
		return rc;
	vm->mgid = rc;

	vm->resource_name = kstrdup_const("System RAM (virtio_mem)",
					  GFP_KERNEL);
	if (!vm->resource_name) {
		memory_group_unregister(vm->mgid);
		return -ENOMEM;
	}
	return 0;
}

static void virtio_mem_unregister_group(struct virtio_mem *vm)
{
	kfree_const(vm->resource_name);
	memory_group_unregister(vm->mgid);
}

static struct virtio_mem *virtio_mem_alloc(struct virtio_device *vdev)
{
	struct virtio_mem *vm;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL);
	if (!vm)
		return NULL;
	vdev->priv = vm;
	vm->vdev = vdev;
	init_waitqueue_head(&vm->host_resp);
	mutex_init(&vm->hotplug_mutex);
	init_waitqueue_head(&vm->hotplug_done);
	vm->hotplug_mb = VIRTIO_MEM_MM_NO_MB;
	spin_lock_init(&vm->removal_lock);
	INIT_WORK(&vm->wq, virtio_mem_run_wq);
	hrtimer_init(&vm->retry_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	vm->retry_timer.function = virtio_mem_timer_expired;
	INIT_LIST_HEAD(&vm->next);
	return vm;
}

static void virtio_mem_free(struct virtio_mem *vm)
{
	struct virtio_device *vdev = vm->vdev;

	kfree(vm);
	vdev->priv = NULL;
}

/*
 * The last step of probe: the worker may run from here on, so nothing
 * after this may fail.
 */
static void virtio_mem_start(struct virtio_mem *vm, bool ready)
{
	if (!ready)
		virtio_device_ready(vm->vdev);

	dev_info(&vm->vdev->dev,
		 "region 0x%llx-0x%llx, block %llu KiB, %s %llu KiB, node %d, plugged %llu MiB, requested %llu MiB\n",
		 vm->cfg.addr, vm->cfg.addr + vm->cfg.region_size - 1,
		 vm->cfg.block_size >> 10,
		 vm->geo.bbm ? "big block" : "subblock",
		 (vm->geo.bbm ? vm->geo.bb_size : vm->geo.sb_size) >> 10,
		 vm->nid,
		 vm->cfg.plugged_size >> 20, vm->cfg.requested_size >> 20);

	if (vm->cfg.requested_size || vm->unplug_all_required)
		virtio_mem_retry(vm);
}

static int virtio_mem_probe(struct virtio_device *vdev)
{
	struct virtio_mem *vm;
	bool ready = false;
	int rc;

	BUILD_BUG_ON(sizeof(struct virtio_mem_req) != 24);
	BUILD_BUG_ON(sizeof(struct virtio_mem_resp) != 10);

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "config access disabled\n");
		return -EINVAL;
	}
	vm = virtio_mem_alloc(vdev);
	if (!vm)
		return -ENOMEM;

	rc = virtio_mem_init_vq(vm);
	if (rc)
		goto out_free_vm;

	if (is_kdump_kernel()) {
		rc = virtio_mem_kdump_init(vm);
		if (rc)
			goto out_del_vq;
		return 0;
	}

	rc = virtio_mem_init(vm);
	if (rc)
		goto out_del_vq;

	rc = virtio_mem_claim_region(vm, &ready);
	if (rc)
		goto out_destroy_state;

	rc = virtio_mem_register_group(vm);
	if (rc)
		goto out_delete_resource;

	rc = virtio_mem_mm_register(vm);
	if (rc)
		goto out_unregister_group;

	rc = virtio_mem_sysfs_init(vm);
	if (rc)
		goto out_mm_unregister;

	rc = virtio_mem_pm_register(vm);
	if (rc)
		goto out_sysfs_exit;

	virtio_mem_start(vm, ready);
	return 0;

out_sysfs_exit:
	virtio_mem_sysfs_exit(vm);
out_mm_unregister:
	virtio_mem_mm_unregister(vm);
out_unregister_group:
	virtio_mem_unregister_group(vm);
out_delete_resource:
	virtio_mem_release_region(vm);
out_destroy_state:
	virtio_mem_destroy(vm);
out_del_vq:
	/* Adopting made the device ready; it may have buffers in flight. */
	if (ready)
		virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
out_free_vm:
	virtio_mem_free(vm);
	return rc;
}

/*
 * Stop the worker for good: once @removing is set nothing queues it
 * again. The notifier reads @removing under the hotplug_mutex, and from
 * then on refuses what is not remove's own.
 */
static void virtio_mem_stop_worker(struct virtio_mem *vm)
{
	mutex_lock(&vm->hotplug_mutex);
	spin_lock_irq(&vm->removal_lock);
	vm->removing = true;
	spin_unlock_irq(&vm->removal_lock);
	mutex_unlock(&vm->hotplug_mutex);
	cancel_work_sync(&vm->wq);
	hrtimer_cancel(&vm->retry_timer);
}

static void virtio_mem_remove(struct virtio_device *vdev)
{
	struct virtio_mem *vm = vdev->priv;
	unsigned long left;

	if (vm->kdump.active) {
		virtio_mem_kdump_exit(vm);
		virtio_mem_free(vm);
		return;
	}

	virtio_mem_pm_unregister(vm);
	virtio_mem_stop_worker(vm);
	virtio_mem_mm_quiesce(vm);
	virtio_mem_sysfs_exit(vm);

	/*
	 * This needs the notifier, so that blocks with holes can go offline.
	 * A broken device goes through it too: an offline block left added
	 * could be onlined whole once we are gone.
	 */
	virtio_mem_mm_remove_own(vm, true);
	if (vm->geo.bbm)
		virtio_mem_bbm_remove_all(vm);
	else
		virtio_mem_sbm_remove_all(vm);
	virtio_mem_mm_offliner_stop(vm);
	virtio_mem_mm_remove_own(vm, false);
	virtio_mem_mm_unregister(vm);

	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);

	left = virtio_mem_nr_added(vm);
	if (left) {
		/*
		 * Linux could not give these blocks up. They stay added,
		 * online, and their unplugged parts fake offline, which
		 * nothing can undo without us; so the region, its group and
		 * its name stay too.
		 */
		dev_warn(&vdev->dev,
			 "%lu %s still in use by Linux stay plugged; the device region stays reserved for the next instance of this driver, which takes them over\n",
			 left, vm->geo.bbm ? "big blocks" : "memory blocks");
	} else {
		virtio_mem_unregister_group(vm);
		virtio_mem_delete_resource(vm);
	}
	virtio_mem_destroy(vm);
	virtio_mem_free(vm);
}

static unsigned int virtio_mem_features[] = {
#if defined(CONFIG_NUMA) && defined(CONFIG_ACPI_NUMA)
	VIRTIO_MEM_F_ACPI_PXM,
#endif
	VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
	VIRTIO_MEM_F_PERSISTENT_SUSPEND,
};

static const struct virtio_device_id virtio_mem_id_table[] = {
	{ VIRTIO_ID_MEM, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

static struct virtio_driver virtio_mem_driver = {
	.feature_table = virtio_mem_features,
	.feature_table_size = ARRAY_SIZE(virtio_mem_features),
	.driver.name = KBUILD_MODNAME,
	.driver.owner = THIS_MODULE,
	.id_table = virtio_mem_id_table,
	.probe = virtio_mem_probe,
	.remove = virtio_mem_remove,
	.config_changed = virtio_mem_config_changed,
#ifdef CONFIG_PM_SLEEP
	.freeze = virtio_mem_freeze,
	.restore = virtio_mem_restore,
#endif
};

static int __init virtio_mem_module_init(void)
{
	int rc;

	virtio_mem_sysfs_module_init();
	rc = register_virtio_driver(&virtio_mem_driver);
	if (rc)
		virtio_mem_sysfs_module_exit();
	return rc;
}
module_init(virtio_mem_module_init);

static void __exit virtio_mem_module_exit(void)
{
	unregister_virtio_driver(&virtio_mem_driver);
	virtio_mem_sysfs_module_exit();
}
module_exit(virtio_mem_module_exit);
MODULE_DEVICE_TABLE(virtio, virtio_mem_id_table);
MODULE_AUTHOR("The virtio-mem driver developers");
MODULE_DESCRIPTION("virtio-mem: paravirtualized memory hot(un)plug");
MODULE_LICENSE("GPL");
/*
 * DKMS installs a module over the distro's only when the versions differ;
 * the in-tree driver has none. dkms.conf and debian/changelog say the same.
 */
MODULE_VERSION("0.2");
