// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: the device across the system's lifecycle events, apart from
 * probe and remove: a kdump kernel, suspend and hibernation, and a new
 * instance of the driver taking over what the last one left.
 *
 * In a kdump kernel the device still holds the crashed kernel's plugged
 * memory. We never plug or unplug there; we only tell /proc/vmcore which
 * pages are plugged, asking the device with STATE requests, so that
 * reading the dump never touches unplugged memory (C6).
 *
 * Suspend-to-idle leaves the device alone, so plugged memory stays.
 * Suspend-to-RAM resets the machine's devices: plugged memory survives it
 * only if the device says so with PERSISTENT_SUSPEND. Hibernation restores
 * an image into memory the device may have unplugged meanwhile, so it is
 * refused before the kernel starts freezing anything.
 */

#include <linux/bitmap.h>
#include <linux/crash_dump.h>
#include <linux/ioport.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/math64.h>
#include <linux/mutex.h>
#include <linux/pfn.h>
#include <linux/suspend.h>
#include <linux/virtio_config.h>

#include "virtio_mem.h"

#ifdef CONFIG_PROC_VMCORE
/*
 * /proc/vmcore asks page by page, in address order. So we send one STATE
 * request per device block and keep its answer for the pages that follow.
 */
static bool virtio_mem_vmcore_pfn_is_ram(struct vmcore_cb *cb,
					 unsigned long pfn)
{
	struct virtio_mem *vm = container_of(cb, struct virtio_mem,
					     kdump.vmcore_cb);
	u64 addr = PFN_PHYS(pfn);
	u64 block_id, block_addr;
	bool is_ram;
	u16 state;

	if (addr < vm->cfg.addr || addr - vm->cfg.addr >= vm->cfg.region_size)
		return true;
	/*
	 * Nothing is plugged beyond the usable region, nor anywhere when
	 * plugged_size is 0.
	 */
	if (!vm->cfg.plugged_size ||
	    addr - vm->cfg.addr >= vm->cfg.usable_region_size)
		return false;

	block_id = div64_u64(addr - vm->cfg.addr, vm->cfg.block_size);
	block_addr = vm->cfg.addr + block_id * vm->cfg.block_size;

	mutex_lock(&vm->kdump.lock);
	if (vm->kdump.last_valid && vm->kdump.last_block == block_id) {
		is_ram = vm->kdump.last_is_ram;
		goto out;
	}
	/*
	 * On any failure the page reads as not RAM: the dump gets zeros and
	 * the memory is not touched. Only an answer is kept, so the next
	 * page asks again.
	 */
	if (virtio_mem_send_state(vm, block_addr, vm->cfg.block_size, &state)) {
		is_ram = false;
		goto out;
	}
	is_ram = state == VIRTIO_MEM_STATE_PLUGGED;
	vm->kdump.last_block = block_id;
	vm->kdump.last_is_ram = is_ram;
	vm->kdump.last_valid = true;
out:
	mutex_unlock(&vm->kdump.lock);
	return is_ram;
}

/**
 * virtio_mem_kdump_init() - take the device in a kdump kernel
 * @vm: the device, its virtqueue set up, nothing else
 *
 * Validates the config, marks the device ready (the callback sends
 * requests as soon as it is registered) and hooks /proc/vmcore.
 *
 * Return: 0, or -EINVAL for a config that makes no sense.
 */
int virtio_mem_kdump_init(struct virtio_mem *vm)
{
	struct virtio_mem_cfg_problem problem;
	int rc;

	virtio_mem_read_config(vm, &vm->cfg);
	rc = virtio_mem_cfg_check(&vm->cfg, PAGE_SIZE, &problem);
	if (rc) {
		virtio_mem_log_problem(vm, &problem);
		return rc;
	}
	mutex_init(&vm->kdump.lock);
	vm->kdump.vmcore_cb.pfn_is_ram = virtio_mem_vmcore_pfn_is_ram;
	vm->kdump.active = true;
	virtio_device_ready(vm->vdev);
	register_vmcore_cb(&vm->kdump.vmcore_cb);
	/*
	 * Once we are gone, /proc/vmcore would read all of the region,
	 * unplugged memory too: stay until the crash kernel ends.
	 */
	__module_get(THIS_MODULE);
	dev_info(&vm->vdev->dev,
		 "kdump kernel: region 0x%llx-0x%llx, %llu MiB plugged; /proc/vmcore reads only plugged memory, nothing is plugged or unplugged\n",
		 vm->cfg.addr, vm->cfg.addr + vm->cfg.region_size - 1,
		 vm->cfg.plugged_size >> 20);
	return 0;
}

/*
 * Forget the kept answer once the device was reset. Only resume resets it,
 * so only PM_SLEEP needs this.
 */
static void __maybe_unused virtio_mem_kdump_forget(struct virtio_mem *vm)
{
	if (!vm->kdump.active)
		return;
	mutex_lock(&vm->kdump.lock);
	vm->kdump.last_valid = false;
	mutex_unlock(&vm->kdump.lock);
}

/**
 * virtio_mem_kdump_exit() - let go of the device in a kdump kernel
 * @vm: the device, after virtio_mem_kdump_init() succeeded
 */
void virtio_mem_kdump_exit(struct virtio_mem *vm)
{
	dev_warn(&vm->vdev->dev,
		 "kdump kernel: unbound; /proc/vmcore no longer keeps off unplugged memory\n");
	unregister_vmcore_cb(&vm->kdump.vmcore_cb);
	virtio_reset_device(vm->vdev);
	vm->vdev->config->del_vqs(vm->vdev);
	mutex_destroy(&vm->kdump.lock);
}
#else
int virtio_mem_kdump_init(struct virtio_mem *vm)
{
	dev_err(&vm->vdev->dev,
		"kdump kernel without CONFIG_PROC_VMCORE: cannot keep a dump off unplugged memory, not using the device\n");
	return -EINVAL;
}

void virtio_mem_kdump_exit(struct virtio_mem *vm)
{
}

static void __maybe_unused virtio_mem_kdump_forget(struct virtio_mem *vm)
{
}
#endif /* CONFIG_PROC_VMCORE */

#ifdef CONFIG_PM_SLEEP
static int virtio_mem_pm_notify(struct notifier_block *nb,
				unsigned long action, void *data)
{
	struct virtio_mem *vm = container_of(nb, struct virtio_mem,
					     pm_notifier);

	switch (action) {
	case PM_HIBERNATION_PREPARE:
	case PM_RESTORE_PREPARE:
		/*
		 * The image holds our plugged memory, but on the way back
		 * the device starts with everything unplugged.
		 */
		dev_err(&vm->vdev->dev,
			"hibernation is not supported with a virtio-mem device\n");
		return notifier_from_errno(-EPERM);
	default:
		return NOTIFY_DONE;
	}
}

/**
 * virtio_mem_pm_register() - refuse hibernation while we are bound
 * @vm: the device
 *
 * Return: 0 or the errno of register_pm_notifier().
 */
int virtio_mem_pm_register(struct virtio_mem *vm)
{
	vm->pm_notifier.notifier_call = virtio_mem_pm_notify;
	/* Run first, so that no other notifier prepares for what we refuse. */
	vm->pm_notifier.priority = INT_MAX;
	return register_pm_notifier(&vm->pm_notifier);
}

/**
 * virtio_mem_pm_unregister() - undo virtio_mem_pm_register()
 * @vm: the device
 */
void virtio_mem_pm_unregister(struct virtio_mem *vm)
{
	unregister_pm_notifier(&vm->pm_notifier);
}

/**
 * virtio_mem_freeze() - the device goes down for suspend
 * @vdev: the device
 *
 * The worker runs on a freezable workqueue and is frozen by now, so
 * nothing sends requests until virtio_mem_restore().
 *
 * Return: 0, or -EPERM for suspend-to-RAM with memory the device would
 * lose.
 */
int virtio_mem_freeze(struct virtio_device *vdev)
{
	struct virtio_mem *vm = vdev->priv;
	bool persistent;
	u64 plugged;

	/*
	 * PM_SUSPEND_ON means that no suspend is under way: this is a
	 * hibernation image our notifier did not see coming, and no device
	 * feature makes that safe.
	 */
	persistent = virtio_has_feature(vdev, VIRTIO_MEM_F_PERSISTENT_SUSPEND) &&
		     pm_suspend_target_state != PM_SUSPEND_ON;
	virtio_cread_le(vdev, struct virtio_mem_config, plugged_size, &plugged);
	if (!virtio_mem_may_suspend(pm_suspend_target_state ==
				    PM_SUSPEND_TO_IDLE, plugged, persistent)) {
		dev_err(&vdev->dev,
			"%s refused: %llu MiB plugged%s\n",
			pm_suspend_target_state == PM_SUSPEND_ON ?
			"hibernation" : "suspend-to-RAM", plugged >> 20,
			pm_suspend_target_state == PM_SUSPEND_ON ? "" :
			" and the device does not offer PERSISTENT_SUSPEND");
		return -EPERM;
	}
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	vm->vq = NULL;
	return 0;
}

/**
 * virtio_mem_restore() - the device comes back after suspend
 * @vdev: the device
 *
 * The host may have changed requested_size while we slept: look again.
 *
 * Return: 0 or the errno of setting up the virtqueue.
 */
int virtio_mem_restore(struct virtio_device *vdev)
{
	struct virtio_mem *vm = vdev->priv;
	int rc;

	rc = virtio_mem_init_vq(vm);
	if (rc) {
		/*
		 * Without a queue nothing may be sent. The worker is still
		 * frozen, and once thawed it sees the device broken.
		 */
		vm->broken = true;
		virtio_mem_set_status(vm, VIRTIO_MEM_STATUS_BROKEN);
		return rc;
	}
	virtio_device_ready(vdev);
	virtio_mem_kdump_forget(vm);
	/* Through config_changed, which does nothing in a kdump kernel. */
	virtio_mem_config_changed(vdev);
	return 0;
}
#endif /* CONFIG_PM_SLEEP */

/*
 * Adopting what an earlier instance of the driver left behind.
 *
 * Remove gives back all it can; blocks Linux cannot give up stay added and
 * online, their unplugged subblocks PageOffline with a reference held, and
 * the device region stays reserved under the device's name. Until a new
 * instance comes, nothing can hand that memory to the page allocator: an
 * online block with PageOffline pages that hold a reference cannot go
 * offline without our notifier (the pages are not movable), and only an
 * offline block could be onlined again. So the next probe finds the region
 * reserved, the leftover "System RAM (virtio_mem)" ranges inside it, and
 * the device still plugged there; it takes all of it over instead of
 * refusing the device.
 */
struct virtio_mem_adopt {
	struct virtio_mem *vm;
	struct resource *parent;
	unsigned long *added;	/* one bit per memory block of the region */
	bool foreign;		/* a range not inside our reservation */
};

static int virtio_mem_adopt_range(struct resource *res, void *arg)
{
	struct virtio_mem_adopt *a = arg;
	struct virtio_mem *vm = a->vm;
	u64 mb_size = vm->geo.mb_size;
	unsigned long mb_id;

	if (!res->parent || (a->parent && a->parent != res->parent) ||
	    res->start % mb_size || (res->end + 1) % mb_size) {
		a->foreign = true;
		return 0;
	}
	a->parent = res->parent;
	for (mb_id = res->start / mb_size; mb_id <= res->end / mb_size; mb_id++)
		if (mb_id >= vm->geo.first_mb_id && mb_id <= vm->geo.last_mb_id)
			__set_bit(mb_id - vm->geo.first_mb_id, a->added);
		else
			a->foreign = true;
	return 0;
}

/*
 * Ask the device which subblocks of one memory block are plugged. One
 * STATE request covers the block; only a mixed block needs one per
 * subblock.
 */
static int virtio_mem_adopt_sbs(struct virtio_mem *vm, unsigned long mb_id,
				unsigned long *plugged)
{
	u64 addr = (u64)mb_id * vm->geo.mb_size;
	unsigned int sb_id;
	u16 state;

	bitmap_zero(plugged, vm->geo.sbs_per_mb);
	if (virtio_mem_send_state(vm, addr, vm->geo.mb_size, &state))
		return -EIO;
	if (state == VIRTIO_MEM_STATE_UNPLUGGED)
		return 0;
	if (state == VIRTIO_MEM_STATE_PLUGGED) {
		bitmap_fill(plugged, vm->geo.sbs_per_mb);
		return 0;
	}
	for (sb_id = 0; sb_id < vm->geo.sbs_per_mb; sb_id++) {
		if (virtio_mem_send_state(vm, addr + sb_id * vm->geo.sb_size,
					  vm->geo.sb_size, &state))
			return -EIO;
		/* A subblock is plugged and unplugged as a whole. */
		if (state == VIRTIO_MEM_STATE_MIXED)
			return -EINVAL;
		if (state == VIRTIO_MEM_STATE_PLUGGED)
			__set_bit(sb_id, plugged);
	}
	return 0;
}

/*
 * Take one memory block over: its subblocks as the device has them, its
 * state from whether Linux has it added and online. This runs in probe,
 * before the worker can.
 */
static int virtio_mem_adopt_mb(struct virtio_mem *vm, unsigned long mb_id,
			       bool added, const unsigned long *plugged,
			       u64 *bytes)
{
	unsigned long pfn = PFN_DOWN((u64)mb_id * vm->geo.mb_size);
	enum virtio_mem_sbm_mb_state state = VIRTIO_MEM_SBM_MB_UNUSED;
	unsigned int nr = bitmap_weight(plugged, vm->geo.sbs_per_mb);
	unsigned int sb_id;
	struct page *page;
	unsigned long id;
	int rc;

	rc = virtio_mem_sbm_new_mb(&vm->sbm, &id);
	if (rc)
		return rc;
	if (WARN_ON_ONCE(id != mb_id))
		return -EINVAL;
	for_each_set_bit(sb_id, plugged, vm->geo.sbs_per_mb)
		virtio_mem_sbm_set_sb_plugged(&vm->sbm, mb_id, sb_id, 1);
	if (added) {
		page = pfn_to_online_page(pfn);
		state = virtio_mem_sbm_state_for(&vm->sbm, mb_id, !!page,
						 page && page_zonenum(page) ==
							 ZONE_MOVABLE);
	} else if (nr) {
		state = VIRTIO_MEM_SBM_MB_PLUGGED;
	}
	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id, state);
	mutex_unlock(&vm->hotplug_mutex);
	*bytes += (u64)nr * vm->geo.sb_size;
	return 0;
}

/*
 * Blocks are adopted in order, up to the last one that is added or has
 * memory plugged; what follows is unused. @idx: the next memory block,
 * counted from the first of the region.
 */
static bool virtio_mem_adopt_done(struct virtio_mem *vm,
				  const unsigned long *added,
				  unsigned long idx, u64 bytes)
{
	unsigned long nr_mbs = vm->geo.last_mb_id - vm->geo.first_mb_id + 1;

	return bytes >= vm->cfg.plugged_size &&
	       find_next_bit(added, nr_mbs, idx) >= nr_mbs;
}

/* Sub Block Mode: adopt memory blocks in order, up to the last one used. */
static int virtio_mem_adopt_mbs(struct virtio_mem *vm,
				const unsigned long *added, u64 *bytes,
				unsigned long *nr)
{
	unsigned long nr_mbs = vm->geo.last_mb_id - vm->geo.first_mb_id + 1;
	unsigned long *plugged, idx;
	int rc = 0;

	plugged = bitmap_zalloc(vm->geo.sbs_per_mb, GFP_KERNEL);
	if (!plugged)
		return -ENOMEM;
	/* The state array grows in order, so unused blocks get entries too. */
	for (idx = 0; idx < nr_mbs; idx++) {
		if (virtio_mem_adopt_done(vm, added, idx, *bytes))
			break;
		rc = virtio_mem_adopt_sbs(vm, vm->geo.first_mb_id + idx,
					  plugged);
		if (rc)
			break;
		rc = virtio_mem_adopt_mb(vm, vm->geo.first_mb_id + idx,
					 test_bit(idx, added), plugged, bytes);
		if (rc)
			break;
	}
	*nr = idx;
	bitmap_free(plugged);
	return rc;
}

/*
 * Big Block Mode: adopt big blocks in order, up to the last one used, with
 * one STATE request each. A big block is added whole or not at all, and
 * added memory must be plugged. Its offline memory blocks are counted as
 * the notifier would have counted them.
 */
static int virtio_mem_adopt_bbs(struct virtio_mem *vm,
				const unsigned long *added, u64 *bytes,
				unsigned long *nr)
{
	const unsigned long mbs = div64_u64(vm->geo.bb_size, vm->geo.mb_size);
	const unsigned long mb_pages = PHYS_PFN(vm->geo.mb_size);
	enum virtio_mem_bbm_bb_state bb_state;
	unsigned long bb_id, idx, i, n, offline;
	u64 addr;
	u16 state;

	*nr = 0;
	for (bb_id = vm->geo.first_bb_id; bb_id <= vm->geo.last_bb_id;
	     bb_id++) {
		addr = virtio_mem_bb_addr(&vm->geo, bb_id);
		idx = virtio_mem_addr_to_mb_id(&vm->geo, addr) -
		      vm->geo.first_mb_id;
		if (virtio_mem_adopt_done(vm, added, idx, *bytes))
			break;
		for (n = 0, i = 0; i < mbs; i++)
			n += test_bit(idx + i, added);
		if (n && n != mbs)
			return -EINVAL;
		if (virtio_mem_send_state(vm, addr, vm->geo.bb_size, &state))
			return -EIO;
		if (state == VIRTIO_MEM_STATE_MIXED ||
		    (n && state != VIRTIO_MEM_STATE_PLUGGED))
			return -EINVAL;
		if (!n && state != VIRTIO_MEM_STATE_PLUGGED)
			continue;	/* unused: the state it starts in */
		bb_state = VIRTIO_MEM_BBM_BB_PLUGGED;
		offline = 0;
		if (n) {
			bb_state = VIRTIO_MEM_BBM_BB_ADDED;
			for (i = 0; i < mbs; i++)
				offline += !pfn_to_online_page(PHYS_PFN(addr) +
							       i * mb_pages);
			*nr += mbs;
		}
		*bytes += vm->geo.bb_size;
		mutex_lock(&vm->hotplug_mutex);
		virtio_mem_bbm_set_bb_state(&vm->bbm, bb_id, bb_state);
		vm->bbm_offline_mbs += offline;
		mutex_unlock(&vm->hotplug_mutex);
	}
	return 0;
}

/**
 * virtio_mem_adopt() - take over what an earlier instance left behind
 * @vm: the device, initialized (state allocated), its region reserved by
 *	someone else
 *
 * Adopts only a reservation under our device's name, with nothing but
 * whole memory blocks (whole big blocks in Big Block Mode) of ours inside,
 * and only if the device's plugged size is exactly what the blocks say.
 * Otherwise the region is not ours to take, and the device is refused.
 *
 * Return: 0 with @vm->parent_resource set, else -EBUSY.
 */
int virtio_mem_adopt(struct virtio_mem *vm)
{
	unsigned long nr_mbs = vm->geo.last_mb_id - vm->geo.first_mb_id + 1;
	struct virtio_mem_adopt a = { .vm = vm };
	unsigned long nr = 0;
	u64 bytes = 0;
	int rc = -EBUSY;

	a.added = bitmap_zalloc(nr_mbs, GFP_KERNEL);
	if (!a.added)
		return rc;
	walk_iomem_res_desc(IORES_DESC_NONE,
			    IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY,
			    vm->cfg.addr, vm->cfg.addr + vm->cfg.region_size - 1,
			    &a, virtio_mem_adopt_range);
	/* Only our own reservation, of exactly our region. */
	if (a.foreign || !a.parent || a.parent->start != vm->cfg.addr ||
	    resource_size(a.parent) != vm->cfg.region_size ||
	    !a.parent->name || strcmp(a.parent->name, dev_name(&vm->vdev->dev)))
		goto out;
	if (vm->geo.bbm ? virtio_mem_adopt_bbs(vm, a.added, &bytes, &nr) :
			  virtio_mem_adopt_mbs(vm, a.added, &bytes, &nr))
		goto out;
	if (bytes != vm->cfg.plugged_size)
		goto out;
	vm->parent_resource = a.parent;
	vm->unplug_all_required = false;
	dev_info(&vm->vdev->dev,
		 "adopted %llu MiB plugged in %lu memory blocks that an earlier instance left\n",
		 bytes >> 20, nr);
	rc = 0;
out:
	bitmap_free(a.added);
	return rc;
}
