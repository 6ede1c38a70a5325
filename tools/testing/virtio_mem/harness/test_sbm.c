// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_mem_sbm.c, acting: directed scenarios through the worker loop and
 * the models (model.c), every invariant of check.c checked after each
 * worker pass. Each case sets up a device, does one thing, and says what
 * must follow.
 *
 * Geometry unless a case says otherwise: QEMU, 2 MiB blocks = subblocks,
 * 64 per 128 MiB memory block, region of 8 memory blocks at 4 GiB
 * (mb 32..39), usable 512 MiB.
 */
#include "unit.h"

#define MiB	SZ_1M
#define GiB	SZ_1G
#define MB0	32UL

static struct vmh H;

static void params(struct vmh_params *p)
{
	vmh_default_params(p);
	p->region_size = GiB;
	p->usable_region_size = 512 * MiB;
}

static void cleanup(void)
{
	if (H.dev.plugged)
		vmh_exit(&H);
	kstub_live_allocs = 0;
}

static bool setup(const struct vmh_params *p)
{
	kstub_live_allocs = 0;
	vmu_after_case = cleanup;
	return !vmh_init(&H, p, 42) && !vmh_probe(&H);
}

/* Worker passes (and retry timers) until it goes idle; checks each pass. */
static bool settle_worker(void)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (H.retry_pending)
			H.work_pending = true;
		if (!H.work_pending)
			return vmh_check(&H);
		vmh_run_worker(&H);
		if (!vmh_check(&H))
			return false;
	}
	vmu_fail(__FILE__, __LINE__, "worker never idle");
	return false;
}

static bool teardown(void)
{
	vmh_remove(&H);
	EXPECT(!kstub_live_allocs, "%lu allocations left", kstub_live_allocs);
	vmh_exit(&H);
	return true;
}

#define EXPECT_MODEL() EXPECT(!H.failures, "%s", H.failure)

static enum virtio_mem_sbm_mb_state st(unsigned long mb)
{
	return virtio_mem_sbm_get_mb_state(&H.vm.sbm, MB0 + mb);
}

/*
 * Host asks for 200 MiB, auto-online movable:
 *   expect mb 32 M:full, mb 33 left for last (policy: the gap), mb 34
 *   M:36 of 64, 200 MiB plugged, worker "ok".
 */
static bool sbm_plug_fills_blocks_in_order(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 200 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(vmh_drv_plugged(&H) == 200 * MiB, "expect 200 MiB plugged");
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_MOVABLE &&
	       st(1) == VIRTIO_MEM_SBM_MB_UNUSED &&
	       st(2) == VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL,
	       "expect M:full U M:partial, got %d %d %d", st(0), st(1), st(2));
	EXPECT(H.last_outcome == VIRTIO_MEM_OUTCOME_DONE &&
	       H.vm.status == VIRTIO_MEM_STATUS_OK, "expect done, status ok");
	return teardown();
}

/*
 * Growing into an online partial block: only the new subblocks reach the
 * buddy (fake_online), nothing twice (check.c's online_page rule).
 *   M:####.... -> M:######.. : expect 2 subblocks fake-onlined
 */
static bool sbm_plug_into_online_block_fake_onlines_new_sbs(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 100 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(!H.mm.nr_fake_online_sbs, "nothing to fake-online yet");
	vmh_host_resize(&H, 104 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(H.mm.nr_fake_online_sbs == 2, "expect 2, got %lu",
	       H.mm.nr_fake_online_sbs);
	return teardown();
}

/*
 * Adding fails (-ENOMEM): the subblocks go back, the block is free again,
 * and the retry uses the same block.
 *   expect: U:........ after the failure; M:full after the retry.
 */
static bool sbm_add_failure_unplugs_and_retries(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	H.mm.add_fail_next = 1;
	H.mm.add_fail_errno = -ENOMEM;
	vmh_host_resize(&H, 128 * MiB);
	vmh_run_worker(&H);
	EXPECT(vmh_check(&H), "%s", H.failure);
	EXPECT(H.last_outcome == VIRTIO_MEM_OUTCOME_NOMEM && H.retry_pending,
	       "expect no memory and a retry, got outcome %d", H.last_outcome);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_UNUSED && !vmh_dev_plugged(&H),
	       "expect block free again and nothing plugged");
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_MOVABLE && H.vm.sbm.next_mb_id == MB0 + 1,
	       "expect the same block reused");
	return teardown();
}

/*
 * Adding fails and so does giving the subblocks back (BUSY): the block is
 * left plugged but not added (P). Once the device and Linux are fine
 * again, the next passes must put that memory to use (or give it back and
 * plug elsewhere):
 *   after the failure: P:######## (128 MiB plugged, none usable)
 *   expect after settling: no P block, 128 MiB plugged, all of it added.
 */
static bool sbm_block_left_plugged_is_used_later(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	H.mm.add_fail_next = 1;
	H.mm.add_fail_errno = -EBUSY;
	H.dev.busy_next_unplug = 1;
	vmh_host_resize(&H, 128 * MiB);
	vmh_run_worker(&H);
	EXPECT(vmh_check(&H), "%s", H.failure);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_PLUGGED,
	       "expect P after a failed add and a BUSY undo, got %d", st(0));
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(!H.vm.sbm.mb_count[VIRTIO_MEM_SBM_MB_PLUGGED],
	       "expect no P block; %lu left, 0x%llx bytes plugged that Linux does not have",
	       H.vm.sbm.mb_count[VIRTIO_MEM_SBM_MB_PLUGGED],
	       (unsigned long long)vmh_drv_plugged(&H));
	return teardown();
}

/*
 * Unplugging from a P block (plugged, not added) until it is empty:
 *   P:######## -> host asks for 0 -> expect U (free for reuse), not an
 *   empty P that nothing will ever use again.
 */
static bool sbm_emptied_plugged_block_becomes_unused(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	H.mm.add_fail_next = 1;
	H.mm.add_fail_errno = -EBUSY;
	H.dev.busy_next_unplug = 1;
	vmh_host_resize(&H, 128 * MiB);
	vmh_run_worker(&H);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_PLUGGED, "setup: expect P");
	H.retry_pending = false;
	vmh_host_resize(&H, 0);
	vmh_run_worker(&H);
	EXPECT(!vmh_dev_plugged(&H), "expect everything unplugged");
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_UNUSED,
	       "expect U, got state %d with %u subblocks plugged", st(0),
	       virtio_mem_sbm_nr_sb_plugged(&H.vm.sbm, MB0));
	EXPECT(vmh_check(&H), "%s", H.failure);
	return teardown();
}

/*
 * Firecracker answers ERROR, not NACK, to a plug beyond requested_size.
 * The host shrinking requested_size while our PLUG is in flight is a race
 * the driver cannot avoid; it must not take that ERROR for a broken device:
 *   requested 256 MiB -> PLUG sent -> host shrinks to 0 -> ERROR
 *   expect: not broken, the next pass sees requested 0.
 */
static bool sbm_firecracker_error_on_shrink_race_is_not_fatal(void)
{
	struct vmh_params p;

	params(&p);
	p.host = VMH_FC;
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 256 * MiB);
	H.dev.resize_at_next_plug = true;
	H.dev.resize_at_next_plug_to = 0;
	vmh_run_worker(&H);
	EXPECT(!H.vm.broken,
	       "expect the driver alive; it stopped (outcome %d) on ERROR for a plug that raced with a shrink",
	       H.last_outcome);
	EXPECT(settle_worker(), "%s", H.failure);
	return teardown();
}

/*
 * Firecracker refusing every plug with ERROR (no race: requested_size as
 * the driver read it):
 *   requested 256 MiB -> PLUG -> ERROR, again and again
 *   expect: one PLUG per pass, the pass ends in a retry with backoff and
 *   status plug_error, never a broken driver; once the host accepts, the
 *   retry plugs it all.
 */
static bool sbm_firecracker_refusal_backs_off(void)
{
	struct vmh_params p;
	unsigned long sent;

	params(&p);
	p.host = VMH_FC;
	EXPECT(setup(&p), "setup");
	H.dev.nack_next = 1000;
	vmh_host_resize(&H, 256 * MiB);
	sent = H.dev.nr_req[VIRTIO_MEM_REQ_PLUG];
	vmh_run_worker(&H);
	EXPECT(H.dev.nr_req[VIRTIO_MEM_REQ_PLUG] - sent == 1,
	       "expect one PLUG in the pass, got %lu",
	       H.dev.nr_req[VIRTIO_MEM_REQ_PLUG] - sent);
	EXPECT(!H.vm.broken && H.retry_pending &&
	       H.vm.status == VIRTIO_MEM_STATUS_PLUG_ERROR,
	       "expect a retry with status plug_error (broken %d, retry %d, status %d)",
	       H.vm.broken, H.retry_pending, H.vm.status);
	H.dev.nack_next = 0;
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(vmh_drv_plugged(&H) == 256 * MiB, "expect 256 MiB plugged");
	return teardown();
}

/* The same race on QEMU: NACK, and the config change brings it back. */
static bool sbm_qemu_nack_on_shrink_race_recovers(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 256 * MiB);
	H.dev.resize_at_next_plug = true;
	H.dev.resize_at_next_plug_to = 64 * MiB;
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(!H.vm.broken && vmh_drv_plugged(&H) == 64 * MiB,
	       "expect 64 MiB plugged, got 0x%llx",
	       (unsigned long long)vmh_drv_plugged(&H));
	return teardown();
}

/*
 * Nobody onlines (auto-online off): adding stops at the offline limit,
 * 1 GiB = 8 blocks, and goes on when user space onlines.
 */
static bool sbm_offline_limit_waits_for_onlining(void)
{
	struct vmh_params p;
	unsigned long mb;

	params(&p);
	p.online = VMH_ONLINE_NONE;
	p.region_size = 2 * GiB;
	p.usable_region_size = 2 * GiB;
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 2 * GiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(H.last_outcome == VIRTIO_MEM_OUTCOME_OFFLINE_LIMIT &&
	       H.vm.sbm.mb_count[VIRTIO_MEM_SBM_MB_OFFLINE] == 8,
	       "expect the offline limit with 8 offline blocks, got outcome %d and %lu",
	       H.last_outcome, H.vm.sbm.mb_count[VIRTIO_MEM_SBM_MB_OFFLINE]);
	for (mb = MB0; mb < MB0 + 16; mb++)
		if (st(mb - MB0) == VIRTIO_MEM_SBM_MB_OFFLINE)
			vmh_user_online(&H, mb, true);
	EXPECT(H.work_pending, "expect onlining to queue the worker");
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(vmh_drv_plugged(&H) == 2 * GiB, "expect 2 GiB after onlining");
	return teardown();
}

/*
 * Nobody onlines; 130 MiB plugged: mb 32 full and mb 34 with one subblock,
 * both added and offline. The device breaks, then the driver goes:
 *   expect both blocks removed from Linux all the same (bug 4 of the
 *   checkers' issue: left added, onlining them after unload would give
 *   mb 34's unplugged memory to the page allocator), and no request sent.
 */
static bool sbm_broken_device_remove_takes_offline_blocks(void)
{
	struct vmh_params p;
	unsigned long sent, i;

	params(&p);
	p.online = VMH_ONLINE_NONE;
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 130 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_OFFLINE &&
	       st(2) == VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL,
	       "expect two offline blocks, got %d %d", st(0), st(2));
	H.vm.broken = true;
	H.expect_broken = true;
	for (sent = 0, i = 0; i < ARRAY_SIZE(H.dev.nr_req); i++)
		sent += H.dev.nr_req[i];
	vmh_remove(&H);
	EXPECT(!H.mm.mbs[0].added && !H.mm.mbs[2].added,
	       "expect both blocks removed, added: %d %d",
	       H.mm.mbs[0].added, H.mm.mbs[2].added);
	for (i = 0; i < ARRAY_SIZE(H.dev.nr_req); i++)
		sent -= H.dev.nr_req[i];
	EXPECT(!sent, "expect no request to a broken device");
	EXPECT(!kstub_live_allocs, "%lu allocations left", kstub_live_allocs);
	vmh_exit(&H);
	return true;
}

/*
 * Memory left plugged from before (kexec) is unplugged first (C4), even
 * when the device is BUSY at first.
 */
static bool sbm_unplug_all_at_probe(void)
{
	struct vmh_params p;

	params(&p);
	p.plugged_size = 64 * MiB;
	p.requested_size = 32 * MiB;
	EXPECT(setup(&p), "setup");
	EXPECT(H.vm.unplug_all_required && H.work_pending,
	       "expect UNPLUG_ALL pending");
	H.dev.busy_next = 1;
	vmh_run_worker(&H);
	EXPECT(H.last_outcome == VIRTIO_MEM_OUTCOME_BUSY && H.retry_pending,
	       "expect BUSY, retry");
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(H.dev.nr_req[VIRTIO_MEM_REQ_UNPLUG_ALL] == 2 &&
	       vmh_drv_plugged(&H) == 32 * MiB,
	       "expect 2 UNPLUG_ALL, then 32 MiB plugged");
	return teardown();
}

/*
 * Shrinking: offline memory goes before online memory, and no subblock
 * still with the page allocator is unplugged (C7, checked by the device
 * model). 4 blocks (mb 32, 34, 35, 36: mb 33 waits for last), mb 34
 * offline; host asks for 3 blocks' worth.
 *   expect the offline block gone, the online ones kept.
 */
static bool sbm_unplug_takes_offline_memory_first(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	H.mm.used_pct = 50;
	vmh_host_resize(&H, 512 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(!vmh_user_offline(&H, MB0 + 2), "offline mb 34");
	vmh_host_resize(&H, 384 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_MOVABLE &&
	       st(1) == VIRTIO_MEM_SBM_MB_UNUSED &&
	       st(2) == VIRTIO_MEM_SBM_MB_UNUSED &&
	       st(3) == VIRTIO_MEM_SBM_MB_MOVABLE &&
	       st(4) == VIRTIO_MEM_SBM_MB_MOVABLE,
	       "expect M U U M M, got %d %d %d %d %d", st(0), st(1), st(2),
	       st(3), st(4));
	return teardown();
}

/*
 * 256 MiB plugged movable, host asks for 128 MiB; the one-sweep offline of
 * the block to go fails, and user space offlines that block right after:
 *   expect the driver to look at the block again and unplug it as the
 *   offline block it now is, not pick it apart as an online one
 *   (fake-offlining pages of an offline block); 128 MiB plugged.
 */
static bool sbm_failed_sweep_rereads_state(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 256 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	H.mm.sweep_fail_user_offline = true;
	vmh_host_resize(&H, 128 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(!H.mm.sweep_fail_user_offline, "no sweep was tried");
	EXPECT(vmh_drv_plugged(&H) == 128 * MiB &&
	       vmh_dev_plugged(&H) == 128 * MiB,
	       "expect 128 MiB plugged, got %llu MiB",
	       (unsigned long long)vmh_dev_plugged(&H) >> 20);
	EXPECT_MODEL();
	return teardown();
}

/*
 * Big Block Mode, 256 MiB big blocks (two memory blocks each), 256 MiB
 * plugged movable, host asks for 0. Offlining the big block (idle, so
 * swept as it is) fails while user space is half way through offlining
 * one of its memory blocks (core-mm sent MEM_GOING_OFFLINE):
 *   expect the driver to leave that block alone while core-mm is busy
 *   with it (vm->hotplug_mb), no page freed twice, the model consistent,
 *   and the big block unplugged on a pass after user space is done.
 */
static bool bbm_failed_offline_waits_for_user_offline(void)
{
	struct vmh_params p;

	params(&p);
	p.block_size = 256 * MiB;
	EXPECT(setup(&p), "setup");
	EXPECT(H.vm.geo.bbm && H.vm.geo.bb_size == 256 * MiB, "bbm, 256 MiB");
	vmh_host_resize(&H, 256 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	H.mm.remove_fail_user_offline_inflight = true;
	vmh_host_resize(&H, 0);
	vmh_run_worker(&H);
	EXPECT(!H.mm.remove_fail_user_offline_inflight, "no offline was tried");
	EXPECT(H.mm.inflight, "user space still offlining");
	EXPECT(vmh_dev_plugged(&H) == 256 * MiB, "nothing unplugged meanwhile");
	vmh_inflight_end(&H);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT_MODEL();
	EXPECT(vmh_dev_plugged(&H) == 0, "expect 0 plugged, got %llu MiB",
	       (unsigned long long)vmh_dev_plugged(&H) >> 20);
	return teardown();
}

/*
 * Big Block Mode, 256 MiB big blocks, 256 MiB plugged movable and idle;
 * user space has begun offlining the first memory block (core-mm sent
 * MEM_GOING_OFFLINE) when the host asks for 0:
 *   expect no offline_and_remove of that big block while the offline is
 *   in flight (it would wait behind user space, which may loop for
 *   ever), and the big block unplugged once user space is done.
 */
static bool bbm_sweep_leaves_user_offline_alone(void)
{
	struct vmh_params p;
	unsigned long first;

	params(&p);
	p.block_size = 256 * MiB;
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 256 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	first = H.vm.geo.first_bb_id * 2;
	H.mm.inflight_pct = 100;
	EXPECT(!vmh_user_offline(&H, first) && H.mm.inflight,
	       "user space offlining mb %lu, in flight", first);
	H.mm.inflight_pct = 0;
	vmh_host_resize(&H, 0);
	vmh_run_worker(&H);
	EXPECT(!H.mm.nr_removes_inflight,
	       "offline_and_remove while user space offlines a block of it");
	vmh_inflight_end(&H);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(vmh_dev_plugged(&H) == 0, "expect 0 plugged, got %llu MiB",
	       (unsigned long long)vmh_dev_plugged(&H) >> 20);
	EXPECT_MODEL();
	return teardown();
}

/* unplug_online off: online memory stays; the worker says why. */
static bool sbm_unplug_online_off_keeps_online_memory(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	vmh_host_resize(&H, 256 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	virtio_mem_unplug_online = false;
	vmh_host_resize(&H, 0);
	vmh_run_worker(&H);
	virtio_mem_unplug_online = true;
	EXPECT(vmh_check(&H), "%s", H.failure);
	EXPECT(H.last_outcome == VIRTIO_MEM_OUTCOME_UNPLUG_ONLINE_OFF &&
	       vmh_drv_plugged(&H) == 256 * MiB,
	       "expect no unplug and everything kept, got outcome %d",
	       H.last_outcome);
	return teardown();
}

/* The OOM guard: nothing online is taken below the floor. */
static bool sbm_oom_guard_stops_unplug(void)
{
	struct vmh_params p;

	params(&p);
	EXPECT(setup(&p), "setup");
	H.mm.used_pct = 100;	/* every subblock in use: nothing free */
	H.mm.avail_base = 16 * MiB;
	H.mm.floor = 64 * MiB;
	vmh_host_resize(&H, 256 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	vmh_host_resize(&H, 128 * MiB);
	vmh_run_worker(&H);
	EXPECT(vmh_check(&H), "%s", H.failure);
	EXPECT(H.last_outcome == VIRTIO_MEM_OUTCOME_MEMORY_PRESSURE &&
	       vmh_drv_plugged(&H) == 256 * MiB,
	       "expect memory pressure, nothing taken; got outcome %d, 0x%llx",
	       H.last_outcome,
	       (unsigned long long)vmh_drv_plugged(&H));
	H.mm.floor = 0;
	return teardown();
}

/* Unload gives everything back: nothing added, nothing plugged. */
static bool sbm_remove_all_gives_everything_back(void)
{
	struct vmh_params p;
	unsigned long mb;

	params(&p);
	p.online = VMH_ONLINE_MIXED;
	EXPECT(setup(&p), "setup");
	H.mm.used_pct = 30;
	vmh_host_resize(&H, 300 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	vmh_user_offline(&H, MB0);
	vmh_remove(&H);
	for (mb = 0; mb < 8; mb++)
		EXPECT(!H.mm.mbs[mb].added, "mb %lu still added", MB0 + mb);
	EXPECT(!vmh_dev_plugged(&H), "0x%llx still plugged",
	       (unsigned long long)vmh_dev_plugged(&H));
	EXPECT(!kstub_live_allocs, "allocations left");
	EXPECT_MODEL();
	vmh_exit(&H);
	return true;
}

/*
 * memmap_on_memory: each added block carries its memmap in subblock 0,
 * which must be plugged before the add (the model fails the add if not),
 * never reaches the buddy, and goes only with the block.
 *   130 MiB, kernel zone, kernel memory for no memmap at all: expect
 *   K:full, U (mb 33 waits for last), K:#....... (mb 34 is its memmap
 *   only).
 *   -> 128 MiB: expect mb 34 removed and unplugged.
 *   -> 64 MiB, block offline first: expect O:#...: 32 subblocks
 *   unplugged from the top, the memmap kept while the block is added.
 *   -> 0: expect nothing added, nothing plugged.
 */
static bool sbm_memmap_on_memory_stays_with_its_block(void)
{
	struct vmh_params p;

	params(&p);
	p.memmap_on_memory = true;
	p.online = VMH_ONLINE_KERNEL;
	EXPECT(setup(&p), "setup");
	EXPECT(H.vm.sbm.memmap_sbs == 1, "expect 1 memmap subblock, got %u",
	       H.vm.sbm.memmap_sbs);
	/* A small guest: no room for a memmap, just for the margin. */
	H.mm.kernel_free_base = VIRTIO_MEM_MEMMAP_MARGIN + MiB;
	vmh_host_resize(&H, 130 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(vmh_drv_plugged(&H) == 130 * MiB, "expect 130 MiB plugged");
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_KERNEL &&
	       st(2) == VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL &&
	       virtio_mem_sbm_nr_sb_plugged(&H.vm.sbm, MB0 + 2) == 1,
	       "expect K:full and K with only its memmap, got %d %d", st(0),
	       st(2));

	vmh_host_resize(&H, 128 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(vmh_drv_plugged(&H) == 128 * MiB && st(2) == VIRTIO_MEM_SBM_MB_UNUSED,
	       "expect the memmap-only block gone, got state %d, 0x%llx plugged",
	       st(2), (unsigned long long)vmh_drv_plugged(&H));

	EXPECT(!vmh_user_offline(&H, MB0), "offline mb 32");
	vmh_host_resize(&H, 64 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL &&
	       virtio_mem_sbm_test_sb_plugged(&H.vm.sbm, MB0, 0, 32) &&
	       vmh_drv_plugged(&H) == 64 * MiB,
	       "expect O:#... with subblocks 0-31, got state %d, 0x%llx plugged",
	       st(0), (unsigned long long)vmh_drv_plugged(&H));

	vmh_host_resize(&H, 0);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(!vmh_drv_plugged(&H) && st(0) == VIRTIO_MEM_SBM_MB_UNUSED,
	       "expect all gone, got state %d", st(0));
	return teardown();
}

/*
 * Kernel zone, nothing in use. Unplugging part of it removes whole blocks
 * (offlining is the cheap way); unplugging all of it first takes what is
 * free in every block (fake offline, one run per block), so that nothing
 * new lands there while blocks are offlined, then removes the emptied ones.
 *   K:full U K:full -> 128 MiB: expect one block gone, nothing
 *   fake-offlined.
 *   -> 0: expect the last block's 64 subblocks fake-offlined, then gone.
 */
static bool sbm_unplug_all_takes_free_kernel_memory_first(void)
{
	struct vmh_params p;

	params(&p);
	p.online = VMH_ONLINE_KERNEL;
	EXPECT(setup(&p), "setup");
	H.mm.used_pct = 0;
	vmh_host_resize(&H, 256 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_KERNEL &&
	       st(2) == VIRTIO_MEM_SBM_MB_KERNEL, "expect K:full U K:full");

	vmh_host_resize(&H, 128 * MiB);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(vmh_drv_plugged(&H) == 128 * MiB && !H.mm.nr_fake_offline_sbs,
	       "expect a block removed whole, got 0x%llx plugged, %lu subblocks fake-offlined",
	       (unsigned long long)vmh_drv_plugged(&H),
	       H.mm.nr_fake_offline_sbs);

	vmh_host_resize(&H, 0);
	EXPECT(settle_worker(), "%s", H.failure);
	EXPECT(!vmh_drv_plugged(&H) && H.mm.nr_fake_offline_sbs == 64,
	       "expect all gone after 64 subblocks fake-offlined, got 0x%llx plugged, %lu",
	       (unsigned long long)vmh_drv_plugged(&H),
	       H.mm.nr_fake_offline_sbs);
	EXPECT(st(0) == VIRTIO_MEM_SBM_MB_UNUSED &&
	       st(2) == VIRTIO_MEM_SBM_MB_UNUSED,
	       "expect both blocks unused, got %d %d", st(0), st(2));
	return teardown();
}

const struct vmu_case vmu_sbm_cases[] = {
	{ "sbm: plug fills blocks in order",
	  sbm_plug_fills_blocks_in_order },
	{ "sbm: plugging into an online block fake-onlines only the new subblocks",
	  sbm_plug_into_online_block_fake_onlines_new_sbs },
	{ "sbm: add failure unplugs, frees the block, retry reuses it",
	  sbm_add_failure_unplugs_and_retries },
	{ "sbm: a block left plugged after a failed add is used later",
	  sbm_block_left_plugged_is_used_later },
	{ "sbm: an emptied plugged-not-added block becomes unused",
	  sbm_emptied_plugged_block_becomes_unused },
	{ "sbm: Firecracker refusing every plug with ERROR: backoff, not broken",
	  sbm_firecracker_refusal_backs_off },
	{ "sbm: Firecracker ERROR on a plug racing a shrink is not fatal",
	  sbm_firecracker_error_on_shrink_race_is_not_fatal },
	{ "sbm: QEMU NACK on a plug racing a shrink recovers",
	  sbm_qemu_nack_on_shrink_race_recovers },
	{ "sbm: offline limit waits for onlining",
	  sbm_offline_limit_waits_for_onlining },
	{ "sbm: UNPLUG_ALL at probe, BUSY retried (C4)",
	  sbm_unplug_all_at_probe },
	{ "sbm: unplug takes offline memory first, never in-use memory (C7)",
	  sbm_unplug_takes_offline_memory_first },
	{ "sbm: remove of a broken device still takes offline blocks away",
	  sbm_broken_device_remove_takes_offline_blocks },
	{ "bbm: no sweep of a big block user space is offlining",
	  bbm_sweep_leaves_user_offline_alone },
	{ "sbm: a failed sweep looks at the block again (user space offlined it)",
	  sbm_failed_sweep_rereads_state },
	{ "bbm: a failed offline waits for user space's offline to end",
	  bbm_failed_offline_waits_for_user_offline },
	{ "sbm: unplug_online off keeps online memory",
	  sbm_unplug_online_off_keeps_online_memory },
	{ "sbm: OOM guard stops unplug", sbm_oom_guard_stops_unplug },
	{ "sbm: remove_all gives everything back",
	  sbm_remove_all_gives_everything_back },
	{ "sbm: unplugging all of it takes free kernel memory first",
	  sbm_unplug_all_takes_free_kernel_memory_first },
	{ "sbm: memmap_on_memory: the memmap subblock stays with its block",
	  sbm_memmap_on_memory_stays_with_its_block },
	{ NULL, NULL }
};
