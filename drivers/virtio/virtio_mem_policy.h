/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virtio-mem: decisions. Config validation, geometry and what to plug next.
 *
 * Pure: takes state and facts, returns a decision; never calls into mm or
 * virtio. Builds into the module and into the userspace harness.
 */

#ifndef _VIRTIO_MEM_POLICY_H
#define _VIRTIO_MEM_POLICY_H

#include <linux/types.h>

#include "virtio_mem_state.h"

/* The device config in CPU byte order, as read at one moment. */
struct virtio_mem_cfg {
	u64 block_size;
	u16 node_id;
	u64 addr;
	u64 region_size;
	u64 usable_region_size;
	u64 plugged_size;
	u64 requested_size;
};

/* Why a config was refused: "field = value: why". */
struct virtio_mem_cfg_problem {
	const char *field;
	u64 value;
	const char *why;
};

/* What this kernel allows, passed in so the policy stays pure. */
struct virtio_mem_limits {
	/* Linux memory block size. */
	u64 mb_size;
	/* Pageblock size: the smallest unit the page allocator can isolate. */
	u64 pageblock_size;
	/* First and last physical address memory can be hot-added at. */
	u64 pluggable_start;
	u64 pluggable_end;
	/* Use Big Block Mode even for small device blocks. */
	bool force_bbm;
	/* Big block size wanted; 0: max(device block, memory block). */
	u64 bb_size;
};

/**
 * struct virtio_mem_geo - how the driver cuts up the device region
 * @mb_size: memory block size
 * @sb_size: subblock size: max(pageblock size, device block size)
 * @sbs_per_mb: subblocks per memory block
 * @bbm: Big Block Mode: device blocks are at least as big as memory blocks,
 *	or it was forced
 * @first_mb_id: first memory block wholly inside region and pluggable range
 * @last_mb_id: last such memory block
 * @bb_size: BBM: big block size, a power of two >= device and memory block
 * @first_bb_id: BBM: first big block inside region and pluggable range
 * @last_bb_id: BBM: last such big block
 * @unusable_size: bytes of the region outside those memory blocks, which
 *	are never plugged
 */
struct virtio_mem_geo {
	u64 mb_size;
	u64 sb_size;
	unsigned int sbs_per_mb;
	bool bbm;
	unsigned long first_mb_id;
	unsigned long last_mb_id;
	u64 bb_size;
	unsigned long first_bb_id;
	unsigned long last_bb_id;
	u64 unusable_size;
};

static inline u64 virtio_mem_bb_addr(const struct virtio_mem_geo *geo,
				     unsigned long bb_id)
{
	return (u64)bb_id * geo->bb_size;
}

int virtio_mem_cfg_check(const struct virtio_mem_cfg *cfg, u64 page_size,
			 struct virtio_mem_cfg_problem *problem);
int virtio_mem_cfg_check_update(const struct virtio_mem_cfg *old,
				const struct virtio_mem_cfg *cfg,
				struct virtio_mem_cfg_problem *problem);
unsigned int virtio_mem_memmap_sbs(const struct virtio_mem_geo *geo,
				   u64 memmap_size);
u64 virtio_mem_bbm_memmap_size(const struct virtio_mem_geo *geo,
			       u64 memmap_size, u64 pageblock_size);
u64 virtio_mem_offline_limit(const struct virtio_mem_geo *geo, u64 base);
bool virtio_mem_may_suspend(bool to_idle, u64 plugged, bool persistent);
int virtio_mem_geo_init(struct virtio_mem_geo *geo,
			const struct virtio_mem_cfg *cfg,
			const struct virtio_mem_limits *limits,
			struct virtio_mem_cfg_problem *problem);

static inline u64 virtio_mem_mb_addr(const struct virtio_mem_geo *geo,
				     unsigned long mb_id)
{
	return (u64)mb_id * geo->mb_size;
}

static inline unsigned long virtio_mem_addr_to_mb_id(const struct virtio_mem_geo *geo,
						     u64 addr)
{
	return addr / geo->mb_size;
}

static inline u64 virtio_mem_sb_addr(const struct virtio_mem_geo *geo,
				     unsigned long mb_id, unsigned int sb_id)
{
	return virtio_mem_mb_addr(geo, mb_id) + (u64)sb_id * geo->sb_size;
}

/* The next thing the plug loop should do. */
enum virtio_mem_plan {
	/* Plug the step's subblocks. */
	VIRTIO_MEM_PLAN_STEP,
	/* Nothing to plug. */
	VIRTIO_MEM_PLAN_DONE,
	/* No room left in the usable region for another subblock. */
	VIRTIO_MEM_PLAN_NO_SPACE,
	/* A new memory block is needed, but too much added memory is offline. */
	VIRTIO_MEM_PLAN_OFFLINE_LIMIT,
	/* A new memory block is needed, but its memmap would not fit. */
	VIRTIO_MEM_PLAN_NO_MEMMAP,
};

/**
 * struct virtio_mem_sbm_step - subblocks to plug in one request
 * @mb_id: the memory block
 * @sb_id: first subblock
 * @count: number of subblocks
 * @add: the memory block is not added yet: plug, then add it
 */
struct virtio_mem_sbm_step {
	unsigned long mb_id;
	unsigned int sb_id;
	unsigned int count;
	bool add;
};

/* Facts the plug policy looks at besides the block state. */
struct virtio_mem_plug_facts {
	/* Still to plug: subblocks in SBM, big blocks in BBM. */
	union {
		unsigned long nr_sbs;
		unsigned long nr_bbs;
	};
	/* End of the usable region (addr + usable_region_size). */
	u64 usable_end;
	/* Bytes of added-but-offline memory allowed before adding stops. */
	u64 offline_limit;
	/* Free memory in kernel zones, above their high watermarks. */
	u64 kernel_free;
	/* What adding a memory block takes from there (its memmap). */
	u64 memmap_per_mb;
	/* BBM: bytes of added memory that is offline now. */
	u64 offline_bytes;
};

/* Kernel memory that must stay free after a memmap is allocated. */
#define VIRTIO_MEM_MEMMAP_MARGIN	(32ULL << 20)

enum virtio_mem_plan
virtio_mem_sbm_plan_plug(const struct virtio_mem_sbm *sbm,
			 const struct virtio_mem_geo *geo,
			 const struct virtio_mem_plug_facts *facts,
			 struct virtio_mem_sbm_step *step);

/**
 * struct virtio_mem_candidate - a block to try for unplug
 * @mb_id: SBM: the memory block
 * @bb_id: BBM: the big block
 * @key: its rank: lower is tried first
 * @sweep: BBM: offline and remove it as it is, without taking its pages
 *	first (see virtio_mem_bbm_unplug_order())
 */
struct virtio_mem_candidate {
	union {
		unsigned long mb_id;
		unsigned long bb_id;
	};
	u64 key;
	bool sweep;
};

unsigned long
virtio_mem_sbm_unplug_order(const struct virtio_mem_sbm *sbm,
			    const u16 *free_sbs, bool unplug_online,
			    struct virtio_mem_candidate *out,
			    unsigned long max);

bool virtio_mem_may_take(u64 available, u64 size, u64 floor);

enum virtio_mem_plan
virtio_mem_bbm_plan_plug(const struct virtio_mem_bbm *bbm,
			 const struct virtio_mem_geo *geo,
			 const struct virtio_mem_plug_facts *facts,
			 unsigned long *bb_id);

/* What the actor saw of one big block, for ranking it for unplug. */
struct virtio_mem_bbm_seen {
	/* Online memory blocks in it, and how many of those are not movable. */
	u16 online_mbs;
	u16 kernel_mbs;
	/* Online bytes that did not look free, in MiB. */
	u32 busy_mib;
};

unsigned long
virtio_mem_bbm_unplug_order(const struct virtio_mem_bbm *bbm,
			    const struct virtio_mem_bbm_seen *seen,
			    bool unplug_online,
			    struct virtio_mem_candidate *out,
			    unsigned long max);

/*
 * What a pass of the worker, or one step of it, came to: the acting layers
 * say so, and virtio_mem_decide() makes of it what to do next. Errnos stay
 * for what goes to or comes from kernel interfaces.
 */
enum virtio_mem_outcome {
	/* Everything asked for is done. */
	VIRTIO_MEM_OUTCOME_DONE = 0,
	/* The host changed the config meanwhile; what we planned is stale. */
	VIRTIO_MEM_OUTCOME_CONFIG_CHANGED,
	/* Core-mm is onlining or offlining a memory block we need. */
	VIRTIO_MEM_OUTCOME_IN_TRANSITION,
	/* The usable region is full. */
	VIRTIO_MEM_OUTCOME_NO_SPACE,
	/* A new block is needed, but too much added memory is offline. */
	VIRTIO_MEM_OUTCOME_OFFLINE_LIMIT,
	/* The device answered NACK. */
	VIRTIO_MEM_OUTCOME_NACK,
	/* What is left to unplug is online, and unplug_online is off. */
	VIRTIO_MEM_OUTCOME_UNPLUG_ONLINE_OFF,
	/* The device answered BUSY. */
	VIRTIO_MEM_OUTCOME_BUSY,
	/* The device answered ERROR to a plug: a refusal, not a failure. */
	VIRTIO_MEM_OUTCOME_PLUG_ERROR,
	/* Out of memory, for the memmap of added memory or for our state. */
	VIRTIO_MEM_OUTCOME_NOMEM,
	/* Linux refused to add memory. */
	VIRTIO_MEM_OUTCOME_ADD_FAILED,
	/* Taking more would leave the guest short of memory: the OOM guard. */
	VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE,
	/* Memory we wanted to take would not move away. */
	VIRTIO_MEM_OUTCOME_UNMOVABLE,
	/*
	 * The device answered ERROR or garbage, or is in a state we do not
	 * know, or its config is impossible.
	 */
	VIRTIO_MEM_OUTCOME_FAILED,
	/*
	 * Our bookkeeping asked for a request that cannot be right (warned
	 * about); unlike an ERROR answer, never taken for a refusal.
	 */
	VIRTIO_MEM_OUTCOME_BUG,
	VIRTIO_MEM_OUTCOME_COUNT
};

/* Why the device is not (yet) at requested_size; one word each in sysfs. */
enum virtio_mem_status {
	/* At requested_size, or as close as the geometry allows. */
	VIRTIO_MEM_STATUS_OK = 0,
	/* Working on it. */
	VIRTIO_MEM_STATUS_WORKING,
	/* Added memory is not being onlined by user space; waiting. */
	VIRTIO_MEM_STATUS_OFFLINE_LIMIT,
	/* The usable region is full. */
	VIRTIO_MEM_STATUS_NO_SPACE,
	/* The device answered BUSY; retrying with backoff. */
	VIRTIO_MEM_STATUS_BUSY,
	/* The device refused (NACK); waiting for a config change. */
	VIRTIO_MEM_STATUS_NACK,
	/* The device answered ERROR to a plug; retrying with backoff. */
	VIRTIO_MEM_STATUS_PLUG_ERROR,
	/* Out of memory for the memmap or our state; retrying. */
	VIRTIO_MEM_STATUS_NOMEM,
	/* Linux refused to add memory; retrying. */
	VIRTIO_MEM_STATUS_ADD_FAILED,
	/* What is left to unplug is online, and unplug_online is off. */
	VIRTIO_MEM_STATUS_UNPLUG_ONLINE_OFF,
	/* Taking more would leave the guest short of memory; waiting. */
	VIRTIO_MEM_STATUS_MEMORY_PRESSURE,
	/* What is left could not be migrated away; retrying. */
	VIRTIO_MEM_STATUS_UNMOVABLE,
	/* The device or our bookkeeping failed; nothing more is sent. */
	VIRTIO_MEM_STATUS_BROKEN,
	VIRTIO_MEM_STATUS_COUNT
};

/* What the worker does after a pass. */
enum virtio_mem_next {
	/* Nothing until something changes (config, onlining). */
	VIRTIO_MEM_NEXT_WAIT,
	/* Start over right away: the config changed under us. */
	VIRTIO_MEM_NEXT_AGAIN,
	/* Try again after the backoff delay. */
	VIRTIO_MEM_NEXT_RETRY,
	/* Stop for good: the device or our bookkeeping failed. */
	VIRTIO_MEM_NEXT_BROKEN,
};

enum virtio_mem_outcome virtio_mem_plug_error(const struct virtio_mem_cfg *seen,
					      const struct virtio_mem_cfg *now);
enum virtio_mem_next virtio_mem_decide(enum virtio_mem_outcome outcome,
				       enum virtio_mem_status *status);
const char *virtio_mem_outcome_name(enum virtio_mem_outcome outcome);

#endif /* _VIRTIO_MEM_POLICY_H */
