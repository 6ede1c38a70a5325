/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virtio-mem: the driver's shared definitions (kernel side only).
 *
 * See virtio_mem_core.c for the overview.
 */

#ifndef _VIRTIO_MEM_H
#define _VIRTIO_MEM_H

#include <linux/atomic.h>
#include <linux/crash_dump.h>
#include <linux/hrtimer.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/virtio_mem.h>

#include "virtio_mem_state.h"
#include "virtio_mem_policy.h"

struct kthread_worker;

/* No memory block: see struct virtio_mem's @hotplug_mb. */
#define VIRTIO_MEM_MM_NO_MB		ULONG_MAX

/* Request types and response codes, for the counters. */
#define VIRTIO_MEM_NR_REQ_TYPES		4
#define VIRTIO_MEM_NR_RESP_TYPES	4
/* A request unanswered this long is logged, and remove gives up on it. */
#define VIRTIO_MEM_REQ_SLOW_SECS	10

/**
 * struct virtio_mem - one virtio-mem device
 *
 * Locking:
 * - @hotplug_mutex protects @sbm, @bbm, @bbm_offline_mbs, @status (written
 *   under it, read locklessly for sysfs and the log), @status_logged,
 *   @hold, @sbm_sweep_failed, @hotplug_mb and @removing_own (and
 *   @removing, which it reads). The memory notifier and the
 *   online_page callback take it for each call; never hold it across
 *   add_memory_driver_managed() or offline_and_remove_memory(), which call
 *   both. Between a block's MEM_GOING_* and the event that ends it,
 *   @hotplug_mb names the block and the worker leaves it alone, so that
 *   the callback and the notifier see the state it had at MEM_GOING_*.
 * - Requests to the device are sent only by the worker, by probe before
 *   the worker can run, and by remove after it stopped: one at a time, no
 *   lock needed. @req, @resp and @req_lost belong to that one sender.
 * - @removal_lock protects @removing, which stops new work and retries;
 *   remove sets it under @hotplug_mutex too, for the notifier.
 * - @cfg is written by the worker only.
 * - @offliner belongs to the worker, and to remove once the worker stopped.
 */
struct virtio_mem {
	struct virtio_device *vdev;
	struct virtqueue *vq;
	wait_queue_head_t host_resp;
	struct virtio_mem_req req;
	struct virtio_mem_resp resp;
	/* A request was given up on; it still holds the queue. */
	bool req_lost;

	struct virtio_mem_cfg cfg;
	struct virtio_mem_geo geo;
	int nid;
	int mgid;
	struct resource *parent_resource;
	const char *resource_name;

	/* See "Locking" above. */
	struct mutex hotplug_mutex;
	struct virtio_mem_sbm sbm;
	struct virtio_mem_bbm bbm;
	/* BBM: memory blocks of ours that are added but offline. */
	unsigned long bbm_offline_mbs;
	enum virtio_mem_status status;
	/* The last reason written to the log; "working" never is. */
	enum virtio_mem_status status_logged;
	u64 offline_limit;
	/*
	 * SBM: memory blocks added by the current plug pass whose kernel-zone
	 * pages the online_page callback keeps back, so that the memmap and
	 * sysfs objects of the next blocks cannot land in them.
	 */
	struct virtio_mem_sbm_hold hold;
	/* SBM: a memory block was added with its memmap on itself. Worker. */
	bool memmap_on_memory_seen;
	/* SBM: blocks whose offlining in one sweep ran out of time. */
	unsigned long *sbm_sweep_failed;
	/* The block core-mm is onlining or offlining, or VIRTIO_MEM_MM_NO_MB. */
	unsigned long hotplug_mb;
	/* Woken when @hotplug_mb goes back to VIRTIO_MEM_MM_NO_MB. */
	wait_queue_head_t hotplug_done;
	/* Remove is offlining our memory itself: let it through. */
	bool removing_own;
	/* The thread that offlines for one worker pass, or for remove. */
	struct kthread_worker *offliner;

	struct work_struct wq;
	atomic_t config_changed;
	struct hrtimer retry_timer;
	unsigned int retry_ms;
	bool unplug_all_required;
	bool broken;

	/* Protects @removing. */
	spinlock_t removal_lock;
	bool removing;

	struct notifier_block memory_notifier;
	/* Entry in the device list the online_page callback looks at. */
	struct list_head next;
	/* Refuses hibernation (virtio_mem_lifecycle.c). */
	struct notifier_block pm_notifier;

	/* In a kdump kernel: nothing above is used but @cfg and the queue. */
	struct {
		bool active;
#ifdef CONFIG_PROC_VMCORE
		struct vmcore_cb vmcore_cb;
		/* Protects the request and the cached answer below. */
		struct mutex lock;
		u64 last_block;
		bool last_valid;
		bool last_is_ram;
#endif
	} kdump;

	struct {
		atomic64_t req[VIRTIO_MEM_NR_REQ_TYPES][VIRTIO_MEM_NR_RESP_TYPES];
		atomic64_t plugged_bytes;
		atomic64_t unplugged_bytes;
		atomic64_t fake_offline_failures;
		atomic64_t offline_timeouts;
		atomic64_t retries;
	} stats;

	/* Our directory under <debugfs>/virtio_mem/. */
	struct dentry *debugfs;
};

/*
 * What the worker makes of a plug plan that is not a step: done, or why
 * not (see virtio_mem_run_wq()).
 */
static inline enum virtio_mem_outcome
virtio_mem_plan_outcome(enum virtio_mem_plan plan)
{
	switch (plan) {
	case VIRTIO_MEM_PLAN_NO_SPACE:
		return VIRTIO_MEM_OUTCOME_NO_SPACE;
	case VIRTIO_MEM_PLAN_OFFLINE_LIMIT:
		return VIRTIO_MEM_OUTCOME_OFFLINE_LIMIT;
	case VIRTIO_MEM_PLAN_NO_MEMMAP:
		return VIRTIO_MEM_OUTCOME_NOMEM;
	default:
		return VIRTIO_MEM_OUTCOME_DONE;
	}
}

/*
 * What the errno of adding memory (virtio_mem_mm_add_mb(),
 * virtio_mem_mm_add_range()) comes to: out of memory, else whatever Linux
 * had against it.
 */
static inline enum virtio_mem_outcome virtio_mem_add_outcome(int rc)
{
	if (!rc)
		return VIRTIO_MEM_OUTCOME_DONE;
	return rc == -ENOMEM ? VIRTIO_MEM_OUTCOME_NOMEM :
			       VIRTIO_MEM_OUTCOME_ADD_FAILED;
}

/* What the errno of virtio_mem_mm_fake_offline() comes to. */
static inline enum virtio_mem_outcome virtio_mem_fake_offline_outcome(int rc)
{
	switch (rc) {
	case 0:
		return VIRTIO_MEM_OUTCOME_DONE;
	case -ENOMEM:
		return VIRTIO_MEM_OUTCOME_NOMEM;
	case -EBUSY:
		return VIRTIO_MEM_OUTCOME_UNMOVABLE;
	default:
		return VIRTIO_MEM_OUTCOME_FAILED;
	}
}

/* virtio_mem_device.c */
void virtio_mem_read_config(struct virtio_mem *vm, struct virtio_mem_cfg *cfg);
enum virtio_mem_outcome virtio_mem_send_plug(struct virtio_mem *vm, u64 addr,
					     u64 size);
enum virtio_mem_outcome virtio_mem_send_unplug(struct virtio_mem *vm,
					       u64 addr, u64 size);
enum virtio_mem_outcome virtio_mem_send_unplug_all(struct virtio_mem *vm);
enum virtio_mem_outcome virtio_mem_send_state(struct virtio_mem *vm, u64 addr,
					      u64 size, u16 *state);
bool virtio_mem_device_lost(struct virtio_mem *vm);
void virtio_mem_vq_done(struct virtqueue *vq);
int virtio_mem_init_vq(struct virtio_mem *vm);
void virtio_mem_log_problem(struct virtio_mem *vm,
			    const struct virtio_mem_cfg_problem *p);

/* virtio_mem_mm.c */
int virtio_mem_mm_add_mb(struct virtio_mem *vm, unsigned long mb_id);
void virtio_mem_mm_no_memmap_on_memory(struct virtio_mem *vm);
int virtio_mem_mm_offline_and_remove_mb(struct virtio_mem *vm,
					unsigned long mb_id);
int virtio_mem_mm_add_range(struct virtio_mem *vm, u64 addr, u64 size,
			    bool memmap);
void virtio_mem_mm_offliner_stop(struct virtio_mem *vm);
int virtio_mem_mm_offline_and_remove_range(struct virtio_mem *vm, u64 addr,
					   u64 size);
int virtio_mem_mm_fake_offline(unsigned long pfn, unsigned long nr_pages);
bool virtio_mem_mm_range_free(unsigned long pfn, unsigned long nr_pages);
u64 virtio_mem_mm_available(void);
u64 virtio_mem_mm_kernel_free(void);
u64 virtio_mem_mm_memmap_size(u64 size);

/* virtio_mem_notify.c */
int virtio_mem_mm_register(struct virtio_mem *vm);
void virtio_mem_mm_unregister(struct virtio_mem *vm);
void virtio_mem_mm_fake_online(unsigned long pfn, unsigned long nr_pages);
bool virtio_mem_mm_contains(struct virtio_mem *vm, u64 start, u64 size);
void virtio_mem_mm_hold_begin(struct virtio_mem *vm);
bool virtio_mem_mm_held(struct virtio_mem *vm, unsigned long mb_id);
void virtio_mem_mm_hold_end(struct virtio_mem *vm);
void virtio_mem_mm_hold_make_room(struct virtio_mem *vm);
bool virtio_mem_mm_busy(struct virtio_mem *vm, unsigned long mb_id,
			unsigned long nr);
void virtio_mem_mm_wait_idle(struct virtio_mem *vm, unsigned long mb_id,
			     unsigned long nr);
void virtio_mem_mm_quiesce(struct virtio_mem *vm);
void virtio_mem_mm_remove_own(struct virtio_mem *vm, bool own);

/*
 * virtio_mem_modes.c. Each mode passes in what differs:
 * - a plug step plans one step under vm->hotplug_mutex, does it and takes
 *   it off @facts; it returns the plan followed, and for
 *   %VIRTIO_MEM_PLAN_STEP sets *@outcome to what doing the step came to;
 * - unplug_one unplugs what it can of one candidate, at most *@todo units,
 *   and takes off *@todo what it unplugged.
 */
enum virtio_mem_outcome virtio_mem_plug_request(struct virtio_mem *vm,
						u64 addr, u64 size);
enum virtio_mem_outcome
virtio_mem_plug_loop(struct virtio_mem *vm, u64 diff,
		     enum virtio_mem_plan (*step)(struct virtio_mem *vm,
						  struct virtio_mem_plug_facts *facts,
						  enum virtio_mem_outcome *outcome));
bool virtio_mem_may_take_now(struct virtio_mem *vm, u64 size);
enum virtio_mem_outcome virtio_mem_take(struct virtio_mem *vm,
					unsigned long pfn,
					unsigned long nr_pages);
enum virtio_mem_outcome
virtio_mem_unplug_walk(struct virtio_mem *vm,
		       const struct virtio_mem_candidate *cand,
		       unsigned long n, unsigned long *todo, bool all,
		       enum virtio_mem_outcome
		       (*unplug_one)(struct virtio_mem *vm,
				     const struct virtio_mem_candidate *cand,
				     unsigned long *todo));

/* virtio_mem_sbm.c */
enum virtio_mem_outcome virtio_mem_sbm_plug(struct virtio_mem *vm, u64 diff);
enum virtio_mem_outcome virtio_mem_sbm_readd_plugged(struct virtio_mem *vm);
enum virtio_mem_outcome virtio_mem_sbm_unplug(struct virtio_mem *vm, u64 diff);
void virtio_mem_sbm_remove_all(struct virtio_mem *vm);

/* virtio_mem_bbm.c */
enum virtio_mem_outcome virtio_mem_bbm_plug(struct virtio_mem *vm, u64 diff);
enum virtio_mem_outcome virtio_mem_bbm_readd_plugged(struct virtio_mem *vm);
enum virtio_mem_outcome virtio_mem_bbm_unplug(struct virtio_mem *vm, u64 diff);
void virtio_mem_bbm_remove_all(struct virtio_mem *vm);
u64 virtio_mem_bbm_plugged(struct virtio_mem *vm);

/* virtio_mem_sysfs.c */
void virtio_mem_sysfs_module_init(void);
void virtio_mem_sysfs_module_exit(void);
int virtio_mem_sysfs_init(struct virtio_mem *vm);
void virtio_mem_sysfs_exit(struct virtio_mem *vm);
const char *virtio_mem_status_name(enum virtio_mem_status status);

/* virtio_mem_core.c */
extern bool virtio_mem_unplug_online;
u64 virtio_mem_unplug_floor(void);
void virtio_mem_retry(struct virtio_mem *vm);
void virtio_mem_set_status(struct virtio_mem *vm, enum virtio_mem_status status);
void virtio_mem_config_changed(struct virtio_device *vdev);

/* virtio_mem_lifecycle.c */
int virtio_mem_kdump_init(struct virtio_mem *vm);
int virtio_mem_adopt(struct virtio_mem *vm);
void virtio_mem_kdump_exit(struct virtio_mem *vm);
#ifdef CONFIG_PM_SLEEP
int virtio_mem_pm_register(struct virtio_mem *vm);
void virtio_mem_pm_unregister(struct virtio_mem *vm);
int virtio_mem_freeze(struct virtio_device *vdev);
int virtio_mem_restore(struct virtio_device *vdev);
#else
static inline int virtio_mem_pm_register(struct virtio_mem *vm)
{
	return 0;
}

static inline void virtio_mem_pm_unregister(struct virtio_mem *vm)
{
}
#endif

/*
 * BBM: the first page of memory block @mb_id that the buddy can have, and
 * how many it can have: all but the block's own memmap, if it carries one.
 */
static inline unsigned long virtio_mem_bbm_mb_pfn(const struct virtio_mem *vm,
						  unsigned long mb_id)
{
	return PHYS_PFN(virtio_mem_mb_addr(&vm->geo, mb_id) +
			vm->bbm.memmap_size);
}

static inline unsigned long virtio_mem_bbm_mb_pages(const struct virtio_mem *vm)
{
	return PHYS_PFN(vm->geo.mb_size - vm->bbm.memmap_size);
}

/* What the plug policy is told at the start of a pass, for @diff bytes. */
static inline struct virtio_mem_plug_facts
virtio_mem_plug_facts_init(const struct virtio_mem *vm, u64 diff)
{
	struct virtio_mem_plug_facts facts = {
		.usable_end = vm->cfg.addr + vm->cfg.usable_region_size,
		.offline_limit = vm->offline_limit,
		/* Nothing when each block carries its own memmap. */
		.memmap_per_mb = vm->sbm.memmap_sbs || vm->bbm.memmap_size ? 0 :
				 virtio_mem_mm_memmap_size(vm->geo.mb_size),
	};

	if (vm->geo.bbm)
		facts.nr_bbs = div64_u64(diff, vm->geo.bb_size);
	else
		facts.nr_sbs = div64_u64(diff, vm->geo.sb_size);
	return facts;
}

#endif /* _VIRTIO_MEM_H */
