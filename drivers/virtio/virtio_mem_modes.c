// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: what Sub Block Mode and Big Block Mode share when acting.
 *
 * Both modes plug by taking one step of their plan at a time, and unplug
 * by walking a ranked list of candidates; both check the OOM guard before
 * they take online memory, and take it the same way. The loops and the
 * checks live here once. Each mode passes in only what differs: how to do
 * one plug step and how to unplug one candidate (virtio_mem_sbm.c,
 * virtio_mem_bbm.c).
 */

#include <linux/mm.h>
#include <linux/sched.h>

#include "virtio_mem.h"
#include <trace/events/virtio_mem.h>

/**
 * virtio_mem_plug_request() - ask the device to plug a range
 * @vm: the device
 * @addr: start of the range
 * @size: its size
 *
 * The device answers ERROR to a plug also when the host merely has no
 * memory for it right now; the config says which (virtio_mem_plug_error()).
 *
 * Return: what the request came to.
 */
enum virtio_mem_outcome virtio_mem_plug_request(struct virtio_mem *vm,
						u64 addr, u64 size)
{
	enum virtio_mem_outcome outcome;
	struct virtio_mem_cfg cfg;

	outcome = virtio_mem_send_plug(vm, addr, size);
	/* No answer at all is no refusal: the device is gone. */
	if (outcome != VIRTIO_MEM_OUTCOME_FAILED || virtio_mem_device_lost(vm))
		return outcome;
	virtio_mem_read_config(vm, &cfg);
	return virtio_mem_plug_error(&vm->cfg, &cfg);
}

/**
 * virtio_mem_plug_loop() - plug toward a bigger requested_size
 * @vm: the device
 * @diff: bytes still to plug
 * @step: the mode's plug step (see virtio_mem.h)
 *
 * Context: the worker.
 *
 * Return: %VIRTIO_MEM_OUTCOME_DONE when done (or as close as the mode's
 * unit allows), CONFIG_CHANGED when the config changed meanwhile, NO_SPACE
 * when the usable region is full, OFFLINE_LIMIT, NOMEM or ADD_FAILED when
 * adding memory failed, IN_TRANSITION, or what a failed request came to.
 */
enum virtio_mem_outcome
virtio_mem_plug_loop(struct virtio_mem *vm, u64 diff,
		     enum virtio_mem_plan (*step)(struct virtio_mem *vm,
						  struct virtio_mem_plug_facts *facts,
						  enum virtio_mem_outcome *outcome))
{
	struct virtio_mem_plug_facts facts = virtio_mem_plug_facts_init(vm,
									diff);
	enum virtio_mem_outcome outcome;
	enum virtio_mem_plan plan;

	for (;;) {
		if (atomic_read(&vm->config_changed))
			return VIRTIO_MEM_OUTCOME_CONFIG_CHANGED;
		facts.kernel_free = virtio_mem_mm_kernel_free();
		plan = step(vm, &facts, &outcome);
		if (plan != VIRTIO_MEM_PLAN_STEP)
			return virtio_mem_plan_outcome(plan);
		if (outcome)
			return outcome;
		cond_resched();
	}
}

/**
 * virtio_mem_may_take_now() - the OOM guard, before taking online memory
 * @vm: the device
 * @size: bytes about to be taken
 *
 * Return: true if the guest keeps enough available memory without @size.
 */
bool virtio_mem_may_take_now(struct virtio_mem *vm, u64 size)
{
	return virtio_mem_may_take(virtio_mem_mm_available(), size,
				   virtio_mem_unplug_floor());
}

/**
 * virtio_mem_take() - take online pages from Linux (fake offline)
 * @vm: the device
 * @pfn: first page
 * @nr_pages: number of pages
 *
 * Checks the OOM guard first, since online memory may have been freed or
 * used up since the caller chose this range.
 *
 * Must be called with vm->hotplug_mutex held, so that the pages cannot be
 * onlined or offlined meanwhile.
 *
 * Return: DONE; MEMORY_PRESSURE at the OOM guard; UNMOVABLE if Linux would
 * not give the pages up; NOMEM; FAILED for any other error.
 */
enum virtio_mem_outcome virtio_mem_take(struct virtio_mem *vm,
					unsigned long pfn,
					unsigned long nr_pages)
{
	int rc;

	lockdep_assert_held(&vm->hotplug_mutex);

	if (!virtio_mem_may_take_now(vm, PFN_PHYS(nr_pages)))
		return VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE;
	rc = virtio_mem_mm_fake_offline(pfn, nr_pages);
	trace_virtio_mem_fake_offline(vm->vdev->index, pfn, nr_pages, rc);
	if (rc)
		atomic64_inc(&vm->stats.fake_offline_failures);
	return virtio_mem_fake_offline_outcome(rc);
}

/**
 * virtio_mem_unplug_walk() - unplug candidates in rank order
 * @vm: the device
 * @cand: the candidates, best first
 * @n: how many
 * @todo: units (subblocks or big blocks) still to unplug; @unplug_one
 *	takes off what it unplugged
 * @all: go on after *@todo reached 0 (SBM: blocks emptied meanwhile must
 *	still be removed)
 * @unplug_one: the mode's way to unplug one candidate (see virtio_mem.h)
 *
 * A candidate whose memory would not move is skipped; the others are still
 * tried.
 *
 * Context: the worker.
 *
 * Return: %VIRTIO_MEM_OUTCOME_DONE when nothing is left to do,
 * CONFIG_CHANGED, UNMOVABLE when some memory could not be taken,
 * UNPLUG_ONLINE_OFF when only online memory is left and unplug_online is
 * off, or the first other outcome of @unplug_one.
 */
enum virtio_mem_outcome
virtio_mem_unplug_walk(struct virtio_mem *vm,
		       const struct virtio_mem_candidate *cand,
		       unsigned long n, unsigned long *todo, bool all,
		       enum virtio_mem_outcome
		       (*unplug_one)(struct virtio_mem *vm,
				     const struct virtio_mem_candidate *cand,
				     unsigned long *todo))
{
	enum virtio_mem_outcome outcome;
	bool busy = false;
	unsigned long i;

	for (i = 0; i < n && (*todo || all); i++) {
		if (atomic_read(&vm->config_changed))
			return VIRTIO_MEM_OUTCOME_CONFIG_CHANGED;
		outcome = unplug_one(vm, &cand[i], todo);
		if (outcome == VIRTIO_MEM_OUTCOME_UNMOVABLE)
			busy = true;
		else if (outcome)
			return outcome;
		cond_resched();
	}
	if (!*todo)
		return VIRTIO_MEM_OUTCOME_DONE;
	/* Without unplug_online, online memory was never a candidate. */
	if (busy || READ_ONCE(virtio_mem_unplug_online))
		return VIRTIO_MEM_OUTCOME_UNMOVABLE;
	return VIRTIO_MEM_OUTCOME_UNPLUG_ONLINE_OFF;
}
