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

#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/sched.h>

#include "virtio_mem.h"

static int virtio_mem_sbm_send_plug(struct virtio_mem *vm, unsigned long mb_id,
				    unsigned int sb_id, unsigned int count)
{
	return virtio_mem_send_plug(vm, virtio_mem_sb_addr(&vm->geo, mb_id,
							    sb_id),
				    (u64)count * vm->geo.sb_size);
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

	rc = virtio_mem_send_plug(vm, addr, size);
	if (rc)
		return rc;
	virtio_mem_sbm_set_sb_plugged(&vm->sbm, step->mb_id, step->sb_id,
				      step->count);
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, step->mb_id);
	if (virtio_mem_sbm_state_online(state))
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
	/* A broken device trumps the add failure. */
	return rc_unplug == -EIO ? rc_unplug : rc;
}

/**
 * virtio_mem_sbm_plug() - plug toward a bigger requested_size
 * @vm: the device
 * @diff: bytes still to plug
 *
 * Context: the worker.
 *
 * Return: 0 when done (or as close as subblocks allow), -EAGAIN when the
 * config changed meanwhile, -ENOSPC when the usable region is full,
 * -EDQUOT at the offline limit, or the errno of a failed request or add.
 */
int virtio_mem_sbm_plug(struct virtio_mem *vm, u64 diff)
{
	struct virtio_mem_plug_facts facts = {
		.nr_sbs = div64_u64(diff, vm->geo.sb_size),
		.usable_end = vm->cfg.addr + vm->cfg.usable_region_size,
		.offline_limit = vm->offline_limit,
	};
	struct virtio_mem_sbm_step step;
	enum virtio_mem_plan plan;
	int rc;

	for (;;) {
		if (atomic_read(&vm->config_changed))
			return -EAGAIN;

		mutex_lock(&vm->hotplug_mutex);
		plan = virtio_mem_sbm_plan_plug(&vm->sbm, &vm->geo, &facts,
						&step);
		if (plan == VIRTIO_MEM_PLAN_STEP && !step.add) {
			rc = virtio_mem_sbm_plug_added(vm, &step);
			mutex_unlock(&vm->hotplug_mutex);
		} else {
			mutex_unlock(&vm->hotplug_mutex);
			switch (plan) {
			case VIRTIO_MEM_PLAN_STEP:
				rc = virtio_mem_sbm_plug_and_add(vm, &step);
				break;
			case VIRTIO_MEM_PLAN_DONE:
				return 0;
			case VIRTIO_MEM_PLAN_NO_SPACE:
				return -ENOSPC;
			case VIRTIO_MEM_PLAN_OFFLINE_LIMIT:
				return -EDQUOT;
			}
		}
		if (rc)
			return rc;
		facts.nr_sbs -= step.count;
		cond_resched();
	}
}

/*
 * Take one memory block away from Linux and give its subblocks back to the
 * device. Offline blocks are simply removed; online ones are offlined first,
 * which migrates what is in use and may fail.
 */
static int virtio_mem_sbm_remove_and_unplug_mb(struct virtio_mem *vm,
					       unsigned long mb_id)
{
	enum virtio_mem_sbm_mb_state state;
	unsigned int sb_id, count;
	int rc = 0;

	mutex_lock(&vm->hotplug_mutex);
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	mutex_unlock(&vm->hotplug_mutex);

	if (virtio_mem_sbm_state_added(state))
		rc = virtio_mem_mm_offline_and_remove_mb(vm, mb_id);
	if (rc)
		return rc;

	/* Removed from Linux: nobody else looks at this block any more. */
	for (sb_id = virtio_mem_sbm_find_plugged(&vm->sbm, mb_id, 0, &count);
	     count;
	     sb_id = virtio_mem_sbm_find_plugged(&vm->sbm, mb_id, sb_id + count,
						 &count)) {
		rc = virtio_mem_sbm_send_unplug(vm, mb_id, sb_id, count);
		if (rc)
			break;
		virtio_mem_sbm_set_sb_unplugged(&vm->sbm, mb_id, sb_id, count);
	}
	mutex_lock(&vm->hotplug_mutex);
	virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
				    virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id) ?
				    VIRTIO_MEM_SBM_MB_PLUGGED :
				    VIRTIO_MEM_SBM_MB_UNUSED);
	mutex_unlock(&vm->hotplug_mutex);
	return rc;
}

/**
 * virtio_mem_sbm_remove_all() - give back all memory, as far as possible
 * @vm: the device, with the worker stopped
 *
 * Used when the driver goes away. Memory that Linux cannot give up stays
 * added and plugged, and stays fake offline where unplugged.
 */
void virtio_mem_sbm_remove_all(struct virtio_mem *vm)
{
	unsigned long mb_id;

	for (mb_id = vm->sbm.first_mb_id; mb_id < vm->sbm.next_mb_id; mb_id++) {
		if (virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id) ==
		    VIRTIO_MEM_SBM_MB_UNUSED)
			continue;
		if (virtio_mem_sbm_remove_and_unplug_mb(vm, mb_id) == -EIO)
			break;
	}
}
