/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Models of the virtio-mem device and of core-mm, and the harness's
 * stand-ins for the thin interfaces of drivers/virtio/virtio_mem.h that
 * virtio_mem_sbm.c calls. See README.md for the invariants.
 */
#ifndef _VMH_MODEL_H
#define _VMH_MODEL_H

#include <kstub.h>

#include "virtio_mem.h"

#define SZ_1M	(1ULL << 20)
#define SZ_1G	(1ULL << 30)

/* How the host behaves where hosts differ (protocol notes, last table). */
enum vmh_host {
	VMH_QEMU,	/* NACK beyond requested; BUSY; UNPLUG_ALL recomputes usable */
	VMH_CH,		/* NACK beyond requested; never BUSY; usable = region */
	VMH_FC,		/* ERROR beyond requested; never BUSY; UNPLUG_ALL: usable 0 */
	VMH_NR_HOSTS
};

/* memhp_default_state / online_policy, as far as the driver can tell. */
enum vmh_online {
	VMH_ONLINE_NONE,	/* user space onlines (or not) */
	VMH_ONLINE_KERNEL,	/* online */
	VMH_ONLINE_MOVABLE,	/* online_movable */
	VMH_ONLINE_MIXED,	/* auto-movable: some kernel, some movable */
	VMH_NR_ONLINE
};

struct vmh_params {
	enum vmh_host host;
	enum vmh_online online;
	u64 mb_size;
	u64 pageblock_size;
	u64 block_size;
	u64 addr;
	u64 region_size;
	u64 usable_region_size;
	u64 requested_size;
	u64 plugged_size;	/* left from before (kexec): C4 */
	u64 pluggable_start;
	u64 pluggable_end;
	u64 qemu_extra;		/* QEMU: usable = requested + this */
	u64 fc_slot;		/* Firecracker: usable rounded to this */
	bool memmap_on_memory;	/* the kernel puts a block's memmap on it */
	bool force_bbm;		/* module parameter force_bbm */
	u64 bb_size;		/* module parameter bbm_block_size (0: default) */
};

/* The device, as the host implements it. */
struct vmh_dev {
	enum vmh_host host;
	struct virtio_mem_cfg cfg;
	u8 *plugged;		/* one byte per device block */
	u64 nr_blocks;
	u64 qemu_extra;
	u64 fc_slot;
	/* Plugged may not exceed this: requested, or plugged at a shrink. */
	u64 cap;
	/* requested/usable changed since the driver last read the config. */
	bool stale;
	/* Fault injection: the next request(s) get this answer. */
	unsigned int nack_next, busy_next, error_next;
	unsigned int busy_next_unplug;	/* the next UNPLUG gets BUSY */
	unsigned int busy_pct;	/* BUSY at random (QEMU only) */
	unsigned int midop_pct;	/* host resizes while a request is in flight */
	bool resize_at_next_plug;	/* ... deterministically, to this: */
	u64 resize_at_next_plug_to;
	unsigned long nr_req[4], nr_resp[4];
};

struct vmh_mb {
	bool added;
	bool online;
	bool movable;
	/* Pages at its start that hold its own memmap (memmap_on_memory). */
	unsigned int memmap_pages;
};

/* core-mm, as the driver sees it. */
struct vmh_mm {
	enum vmh_online online;
	struct vmh_mb *mbs;	/* indexed by mb_id - first_mb_id */
	/* The pages themselves are kstub_memmap[], see kstub.h. */
	long managed;		/* managed pages of the region's memory */
	struct notifier_block *nb;	/* ours, once registered */
	online_page_callback_t online_page;	/* set_online_page_callback() */
	bool in_callbacks;	/* online_pages() is calling the callback */
	/* A transition between MEM_GOING_* and its end: the action, or 0. */
	unsigned long inflight;
	unsigned long inflight_mb;
	unsigned int inflight_pct;	/* user space transitions left in flight */
	/* A notifier before ours refuses MEM_GOING_ONLINE/OFFLINE. */
	unsigned int refuse_next_online, refuse_next_offline, refuse_pct;
	unsigned int race_remove_pct;	/* user space acts as remove begins */
	unsigned long nr_refusals, nr_cancels;
	unsigned int used_pct;	/* chance a pageblock given to the buddy gets used */
	unsigned int unmovable_pct;	/* chance taking a used one fails */
	u64 avail_base;		/* MemAvailable outside the device */
	u64 floor;		/* virtio_mem_unplug_floor() */
	u64 kernel_free_base;	/* free kernel-zone memory outside the device */
	unsigned int add_fail_next;	/* fail the next add with ... */
	int add_fail_errno;
	unsigned int add_fail_pct;
	unsigned int offline_fail_pct;
	/*
	 * The next offline_and_remove fails, and user space offlines the
	 * block right after (bug 6 of the checkers' issue).
	 */
	bool sweep_fail_user_offline;
	/*
	 * The next offline_and_remove fails while user space is half way
	 * through offlining the first online block of the range.
	 */
	bool remove_fail_user_offline_inflight;
	unsigned int user_pct;	/* user space acts while a request is out */
	unsigned long nr_adds, nr_add_fails, nr_onlines, nr_offlines;
	unsigned long nr_fake_online_sbs, nr_fake_offline_sbs;
	/*
	 * offline_and_remove calls over a block user space is onlining or
	 * offlining: in Linux they wait on the device hotplug lock for as
	 * long as user space's transition takes, which may be for ever.
	 */
	unsigned long nr_removes_inflight;
};

struct vmh {
	struct virtio_mem vm;
	struct virtio_device vdev;
	struct vmh_params p;
	struct vmh_dev dev;
	struct vmh_mm mm;
	u64 rng;
	bool probed;
	bool work_pending;
	bool retry_pending;
	bool expect_broken;	/* an ERROR was injected: broken is fine */
	/* Firecracker answered ERROR to a plug that raced with a shrink. */
	bool fc_race_error;
	/* Plugs Firecracker refused with ERROR: never a broken driver. */
	unsigned long fc_refusals;
	enum virtio_mem_outcome last_outcome;	/* of the last worker pass */
	bool unplugging;	/* inside virtio_mem_sbm_unplug() */
	/* The first failure, and how many. */
	unsigned long failures;
	char failure[512];
};

extern struct vmh *vmh_cur;

/*
 * Self-check: VMH_BREAK=<name> makes the models (or the checker's view of
 * the driver) wrong in one way, so that one invariant must fire; see
 * selfcheck.sh.
 */
bool vmh_break(const char *name);

/* Module parameter of virtio_mem_core.c, which the harness owns here. */
extern bool virtio_mem_unplug_online;

u64 vmh_rand(struct vmh *h);
unsigned int vmh_pct(struct vmh *h);	/* uniform 0..99 */
u64 vmh_rand_range(struct vmh *h, u64 lo, u64 hi); /* inclusive */

void vmh_fail(struct vmh *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void vmh_default_params(struct vmh_params *p);
int vmh_init(struct vmh *h, const struct vmh_params *p, u64 seed);
int vmh_probe(struct vmh *h);
void vmh_remove(struct vmh *h);
void vmh_exit(struct vmh *h);

void vmh_run_worker(struct vmh *h);
void vmh_host_resize(struct vmh *h, u64 requested);
void vmh_host_grow_usable(struct vmh *h, u64 usable);
void vmh_user_event(struct vmh *h);
int vmh_user_online(struct vmh *h, unsigned long mb_id, bool movable);
int vmh_user_offline(struct vmh *h, unsigned long mb_id);
bool vmh_inflight_end(struct vmh *h);
/* Fresh (PageDirty) pages that reached the buddy by free_contig_range(). */
extern unsigned long vmh_dirty_freed;
struct page *vmh_page(struct vmh *h, unsigned long pfn);
bool vmh_pfn_plugged(const struct vmh *h, unsigned long pfn);

u64 vmh_dev_plugged(const struct vmh *h);
u64 vmh_drv_plugged(const struct vmh *h);
u64 vmh_capacity(const struct vmh *h);
bool vmh_check(struct vmh *h);
bool vmh_settle(struct vmh *h);
void vmh_dump(struct vmh *h, FILE *f);

#endif /* _VMH_MODEL_H */
