// SPDX-License-Identifier: GPL-2.0
/*
 * The invariants, checked after every step of every test that drives the
 * driver through the models. Each check recomputes from scratch what the
 * driver keeps incrementally, or compares the driver against a model.
 */
#include "model.h"

u64 vmh_drv_plugged(const struct vmh *h)
{
	const unsigned long *count = h->vm.bbm.bb_count;

	if (h->vm.geo.bbm)
		return (u64)(count[VIRTIO_MEM_BBM_BB_PLUGGED] +
			     count[VIRTIO_MEM_BBM_BB_ADDED] +
			     count[VIRTIO_MEM_BBM_BB_FAKE_OFFLINE]) *
		       h->vm.geo.bb_size;
	return (u64)h->vm.sbm.nr_sbs_plugged * h->vm.geo.sb_size;
}

/* Does the driver think the memory at @addr is plugged? */
static bool vmh_drv_addr_plugged(const struct vmh *h, u64 addr)
{
	const struct virtio_mem_geo *geo = &h->vm.geo;
	const struct virtio_mem_sbm *sbm = &h->vm.sbm;
	const struct virtio_mem_bbm *bbm = &h->vm.bbm;
	unsigned long mb_id = addr / geo->mb_size, bb_id;

	if (geo->bbm) {
		bb_id = addr / geo->bb_size;
		return bb_id >= bbm->first_bb_id && bb_id <= bbm->last_bb_id &&
		       virtio_mem_bbm_get_bb_state(bbm, bb_id) !=
		       VIRTIO_MEM_BBM_BB_UNUSED;
	}
	return mb_id >= sbm->first_mb_id && mb_id < sbm->next_mb_id &&
	       virtio_mem_sbm_test_sb_plugged(sbm, mb_id,
					      (addr % geo->mb_size) /
					      geo->sb_size, 1);
}

/* BBM: per-state counters against a recount. */
static void vmh_check_bbm_counters(struct vmh *h)
{
	const struct virtio_mem_bbm *bbm = &h->vm.bbm;
	unsigned long count[VIRTIO_MEM_BBM_BB_COUNT] = { 0 };
	unsigned long bb_id;
	int s;

	for (bb_id = bbm->first_bb_id; bb_id <= bbm->last_bb_id; bb_id++) {
		s = virtio_mem_bbm_get_bb_state(bbm, bb_id);
		if (s >= VIRTIO_MEM_BBM_BB_COUNT) {
			vmh_fail(h, "bb %lu: state %d out of range", bb_id, s);
			return;
		}
		count[s]++;
	}
	for (s = 0; s < VIRTIO_MEM_BBM_BB_COUNT; s++)
		if (count[s] != bbm->bb_count[s])
			vmh_fail(h, "bb_count[%d] = %lu, recount says %lu", s,
				 bbm->bb_count[s], count[s]);
}

static bool vmh_state_movable(enum virtio_mem_sbm_mb_state s)
{
	return s == VIRTIO_MEM_SBM_MB_MOVABLE ||
	       s == VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL;
}

/* Per-state counters and nr_sbs_plugged against a recount. */
static void vmh_check_counters(struct vmh *h)
{
	const struct virtio_mem_sbm *sbm = &h->vm.sbm;
	unsigned long count[VIRTIO_MEM_SBM_MB_COUNT] = { 0 };
	unsigned long mb_id, bit, nbits, plugged = 0;
	int s;

	if (h->vm.geo.bbm) {
		vmh_check_bbm_counters(h);
		return;
	}
	if (sbm->next_mb_id < sbm->first_mb_id ||
	    sbm->next_mb_id > sbm->last_mb_id + 1 ||
	    sbm->next_mb_id - sbm->first_mb_id > sbm->nr_mbs_alloc) {
		vmh_fail(h, "next_mb_id %lu outside [%lu, %lu + 1] or beyond the %lu allocated",
			 sbm->next_mb_id, sbm->first_mb_id, sbm->last_mb_id,
			 sbm->nr_mbs_alloc);
		return;
	}
	for (mb_id = sbm->first_mb_id; mb_id < sbm->next_mb_id; mb_id++) {
		s = sbm->mb_states[mb_id - sbm->first_mb_id];
		if (s >= VIRTIO_MEM_SBM_MB_COUNT) {
			vmh_fail(h, "mb %lu: state %d out of range", mb_id, s);
			return;
		}
		count[s]++;
	}
	for (s = 0; s < VIRTIO_MEM_SBM_MB_COUNT; s++)
		if (count[s] != sbm->mb_count[s])
			vmh_fail(h, "mb_count[%d] = %lu, recount says %lu", s,
				 sbm->mb_count[s], count[s]);
	nbits = sbm->nr_mbs_alloc * sbm->sbs_per_mb;
	for (bit = 0; bit < nbits; bit++) {
		if (!test_bit(bit, sbm->sb_plugged))
			continue;
		if (bit >= (sbm->next_mb_id - sbm->first_mb_id) * sbm->sbs_per_mb)
			vmh_fail(h, "subblock bit %lu set in a never-used memory block",
				 bit);
		plugged++;
	}
	if (plugged != sbm->nr_sbs_plugged)
		vmh_fail(h, "nr_sbs_plugged = %lu, the bitmap holds %lu",
			 sbm->nr_sbs_plugged, plugged);
}

/* Device blocks against the driver's subblock bits. */
static void vmh_check_device(struct vmh *h)
{
	const struct vmh_dev *d = &h->dev;
	u64 i, addr;
	bool drv;

	/* Before UNPLUG_ALL (C4) the device holds what the driver never knew. */
	if (h->vm.unplug_all_required)
		return;
	if (vmh_drv_plugged(h) != vmh_dev_plugged(h))
		vmh_fail(h, "driver counts 0x%llx bytes plugged, the device 0x%llx",
			 (unsigned long long)vmh_drv_plugged(h),
			 (unsigned long long)vmh_dev_plugged(h));
	if (vmh_dev_plugged(h) > d->cap)
		vmh_fail(h, "plugged 0x%llx beyond what the host asked for (0x%llx)",
			 (unsigned long long)vmh_dev_plugged(h),
			 (unsigned long long)d->cap);
	for (i = 0; i < d->nr_blocks; i++) {
		addr = d->cfg.addr + i * d->cfg.block_size;
		drv = vmh_drv_addr_plugged(h, addr);
		if (drv != !!d->plugged[i]) {
			vmh_fail(h, "device block 0x%llx is %s, the driver thinks %s",
				 (unsigned long long)addr,
				 d->plugged[i] ? "plugged" : "unplugged",
				 drv ? "plugged" : "unplugged");
			return;
		}
	}
}

/* Memory block states against the mm model, and the online_page rule. */
static void vmh_check_mm(struct vmh *h)
{
	const struct virtio_mem_sbm *sbm = &h->vm.sbm;
	const unsigned long first = h->p.addr / h->p.mb_size;
	const unsigned long last = (h->p.addr + h->p.region_size - 1) /
				   h->p.mb_size;
	enum virtio_mem_sbm_mb_state s;
	unsigned long mb_id, nr;
	const struct vmh_mb *mb;
	bool full;

	for (mb_id = first; mb_id <= last; mb_id++) {
		mb = &h->mm.mbs[mb_id - first];
		s = virtio_mem_sbm_get_mb_state(sbm, mb_id);
		if (mb->added != virtio_mem_sbm_state_added(s) ||
		    mb->online != virtio_mem_sbm_state_online(s) ||
		    (mb->online && mb->movable != vmh_state_movable(s))) {
			vmh_fail(h, "mb %lu: mm says %s%s%s, the driver's state is %d",
				 mb_id, mb->added ? "added" : "not added",
				 mb->online ? ", online" : "",
				 mb->online ? (mb->movable ? " movable" :
					       " kernel") : "", s);
			return;
		}
		nr = virtio_mem_sbm_nr_sb_plugged(sbm, mb_id);
		full = nr == sbm->sbs_per_mb;
		if ((s == VIRTIO_MEM_SBM_MB_UNUSED && nr) ||
		    (s == VIRTIO_MEM_SBM_MB_PLUGGED && !nr) ||
		    (virtio_mem_sbm_state_added(s) &&
		     virtio_mem_sbm_state_partial(s) == full)) {
			vmh_fail(h, "mb %lu: state %d with %lu of %u subblocks plugged",
				 mb_id, s, nr, sbm->sbs_per_mb);
			return;
		}
	}
}

/* BBM: memory blocks against the big blocks, and the offline count. */
static void vmh_check_bbm_mm(struct vmh *h)
{
	const struct virtio_mem_geo *geo = &h->vm.geo;
	const unsigned long first = h->p.addr / h->p.mb_size;
	const unsigned long last = (h->p.addr + h->p.region_size - 1) /
				   h->p.mb_size;
	unsigned long mb_id, bb_id, offline = 0;
	enum virtio_mem_bbm_bb_state s;
	const struct vmh_mb *mb;
	bool added;

	for (mb_id = first; mb_id <= last; mb_id++) {
		mb = &h->mm.mbs[mb_id - first];
		bb_id = mb_id * geo->mb_size / geo->bb_size;
		s = bb_id >= geo->first_bb_id && bb_id <= geo->last_bb_id ?
		    virtio_mem_bbm_get_bb_state(&h->vm.bbm, bb_id) :
		    VIRTIO_MEM_BBM_BB_UNUSED;
		added = s == VIRTIO_MEM_BBM_BB_ADDED ||
			s == VIRTIO_MEM_BBM_BB_FAKE_OFFLINE;
		if (mb->added != added) {
			vmh_fail(h, "mb %lu: mm says %s, the driver's big block %lu is in state %d",
				 mb_id, mb->added ? "added" : "not added",
				 bb_id, s);
			return;
		}
		offline += mb->added && !mb->online;
	}
	if (offline != h->vm.bbm_offline_mbs)
		vmh_fail(h, "bbm_offline_mbs = %lu, but %lu memory blocks of ours are added and offline",
			 h->vm.bbm_offline_mbs, offline);
}

/*
 * The pages, one pageblock at a time (all pages of one are alike): with
 * the buddy exactly what is plugged, online, not the memmap and (BBM) not
 * being taken; everything else of an online block fake offline with our
 * one reference (none while MEM_GOING_OFFLINE is in flight); and the
 * managed page count what the buddy holds.
 */
static void vmh_check_pages(struct vmh *h)
{
	const unsigned long first = h->p.addr / h->p.mb_size;
	const unsigned long nr = (h->p.addr + h->p.region_size - 1) /
				 h->p.mb_size - first + 1;
	const unsigned long mb_pages = PHYS_PFN(h->p.mb_size);
	unsigned long mb_id, off, pfn, bb_id;
	long buddy = 0;
	const struct vmh_mb *mb;
	const struct page *page;
	bool want, plugged;
	int refs;

	for (mb_id = first; mb_id < first + nr; mb_id++) {
		mb = &h->mm.mbs[mb_id - first];
		for (off = 0; off < mb_pages; off += pageblock_nr_pages) {
			pfn = mb_id * mb_pages + off;
			page = vmh_page(h, pfn);
			plugged = vmh_drv_addr_plugged(h, PFN_PHYS(pfn));
			want = mb->online && plugged && off >= mb->memmap_pages;
			if (want && h->vm.geo.bbm) {
				bb_id = PFN_PHYS(pfn) / h->vm.geo.bb_size;
				want = virtio_mem_bbm_get_bb_state(&h->vm.bbm,
								   bb_id) ==
				       VIRTIO_MEM_BBM_BB_ADDED;
			}
			if (!!(page->flags & KSTUB_PG_BUDDY) != want) {
				vmh_fail(h, "mb %lu pfn 0x%lx: %s the buddy, but %s and %s",
					 mb_id, pfn, want ? "not in" : "in",
					 plugged ? "plugged" : "unplugged",
					 mb->online ? "online" : "offline");
				return;
			}
			if (page->flags & KSTUB_PG_BUDDY) {
				buddy += pageblock_nr_pages;
				if (!vmh_pfn_plugged(h, pfn)) {
					vmh_fail(h, "mb %lu pfn 0x%lx: in the buddy, but unplugged (the device says)",
						 mb_id, pfn);
					return;
				}
				continue;
			}
			if (!mb->online || off < mb->memmap_pages)
				continue;
			refs = h->mm.inflight == MEM_GOING_OFFLINE &&
			       h->mm.inflight_mb == mb_id ? 0 : 1;
			if (!(page->flags & KSTUB_PG_OFFLINE) ||
			    page->refcount != refs) {
				vmh_fail(h, "mb %lu pfn 0x%lx: fake offline with %d references (want %d)%s",
					 mb_id, pfn, page->refcount, refs,
					 page->flags & KSTUB_PG_OFFLINE ? "" :
					 ", not PageOffline");
				return;
			}
		}
	}
	if (buddy != h->mm.managed)
		vmh_fail(h, "managed pages %ld, the buddy holds %ld",
			 h->mm.managed, buddy);
}

/* Transitions: the driver's view of what is in flight is core-mm's. */
static void vmh_check_transition(struct vmh *h)
{
	unsigned long want = h->mm.inflight ? h->mm.inflight_mb :
					      VIRTIO_MEM_MM_NO_MB;

	if (h->vm.hotplug_mb != want)
		vmh_fail(h, "the driver thinks mb %lu is in transition, core-mm has %lu in flight",
			 h->vm.hotplug_mb, want);
	if (kstub_page_offline_depth)
		vmh_fail(h, "page_offline_begin() without page_offline_end()");
}

/*
 * Blocks still held back after a plug pass, but for one user space is
 * onlining right now: its MEM_ONLINE hands it over (the next check sees).
 */
static unsigned int vmh_held_settled(const struct vmh *h)
{
	unsigned int i, n = 0;

	for (i = 0; i < h->vm.hold.nr; i++)
		if (!(h->mm.inflight == MEM_GOING_ONLINE &&
		      h->mm.inflight_mb == h->vm.hold.mb_ids[i]))
			n++;
	return n;
}

/**
 * vmh_check() - every invariant, now
 * Return: true if all hold; else h->failure says what broke first.
 */
bool vmh_check(struct vmh *h)
{
	/* First: a transition left open makes the driver warn later on. */
	if (h->probed)
		vmh_check_transition(h);
	if (kstub_warnings) {
		vmh_fail(h, "the driver warned (WARN_ON or lockdep), see stderr");
		kstub_warnings = 0;
	}
	if (h->vm.hotplug_mutex.held)
		vmh_fail(h, "hotplug_mutex still held between steps");
	if (h->vm.hold.active || vmh_held_settled(h))
		vmh_fail(h, "a plug pass left %u memory blocks held back",
			 vmh_held_settled(h));
	if (h->probed && !h->vm.geo.bbm &&
	    h->vm.sbm.next_mb_id > h->vm.sbm.first_mb_id) {
		/* Self-check: the checker must notice a corrupted driver. */
		if (vmh_break("counters"))
			h->vm.sbm.mb_count[VIRTIO_MEM_SBM_MB_UNUSED]++;
		if (vmh_break("nr_sbs_plugged"))
			h->vm.sbm.nr_sbs_plugged++;
	}
	if (h->probed) {
		vmh_check_counters(h);
		vmh_check_device(h);
		if (h->vm.geo.bbm)
			vmh_check_bbm_mm(h);
		else
			vmh_check_mm(h);
		vmh_check_pages(h);
		if (h->vm.broken && !h->expect_broken)
			vmh_fail(h, h->fc_race_error ?
				 "driver broke down on Firecracker's ERROR for a plug that raced with a shrink of requested_size" :
				 "driver broke down without an injected ERROR");
	}
	return !h->failures;
}

/* Subblocks the driver can ever plug with the current usable region. */
u64 vmh_capacity(const struct vmh *h)
{
	const u64 mb = h->p.mb_size, sb = h->vm.geo.sb_size;
	u64 start = h->p.addr > h->p.pluggable_start ? h->p.addr :
						       h->p.pluggable_start;
	u64 end = h->p.addr + h->p.region_size;	/* exclusive */
	u64 usable_end = h->dev.cfg.addr + h->dev.cfg.usable_region_size;

	if (end - 1 > h->p.pluggable_end)
		end = h->p.pluggable_end + 1;
	start = round_up(start, mb);
	end = round_down(end, mb);
	if (usable_end < end)
		end = round_down(usable_end, sb);
	return end > start ? end - start : 0;
}

/**
 * vmh_settle() - faults off, user space onlines everything: does the
 * driver get where the host wants it, with everything it plugged in use?
 * Return: true if so.
 */
bool vmh_settle(struct vmh *h)
{
	struct vmh_dev *d = &h->dev;
	unsigned long mb_id;
	u64 want, plugged;
	int i;

	if (!h->probed || h->vm.broken)
		return vmh_check(h);
	d->nack_next = d->busy_next = d->error_next = 0;
	d->busy_pct = d->midop_pct = 0;
	h->mm.add_fail_next = h->mm.add_fail_pct = 0;
	h->mm.offline_fail_pct = h->mm.user_pct = 0;
	h->mm.unmovable_pct = 0;
	h->mm.refuse_pct = h->mm.inflight_pct = 0;
	h->mm.refuse_next_online = h->mm.refuse_next_offline = 0;
	h->mm.floor = 0;
	h->mm.kernel_free_base = 64 * SZ_1G;
	virtio_mem_unplug_online = true;
	kstub_fail_allocs = 0;
	/* A config change notification (a NACK waits for one). */
	vmh_host_resize(h, d->cfg.requested_size);
	vmh_inflight_end(h);
	for (i = 0; i < 1000; i++) {
		for (mb_id = h->vm.geo.first_mb_id;
		     mb_id <= h->vm.geo.last_mb_id; mb_id++)
			vmh_user_online(h, mb_id, true);
		if (h->retry_pending)
			h->work_pending = true;	/* the timer fires */
		if (!h->work_pending)
			break;
		vmh_run_worker(h);
		if (!vmh_check(h))
			return false;
	}
	if (h->work_pending)
		vmh_fail(h, "settle: the worker never went idle");
	want = min(d->cfg.requested_size, d->cfg.usable_region_size);
	want = round_down(want, h->vm.geo.bbm ? h->vm.geo.bb_size :
						h->vm.geo.sb_size);
	if (want > vmh_capacity(h))
		want = vmh_capacity(h);
	plugged = vmh_drv_plugged(h);
	/* Checked first: it also makes the driver miss the target. */
	if (h->vm.geo.bbm ? h->vm.bbm.bb_count[VIRTIO_MEM_BBM_BB_PLUGGED] :
	    h->vm.sbm.mb_count[VIRTIO_MEM_SBM_MB_PLUGGED])
		vmh_fail(h, "settle: %lu memory or big blocks plugged but not added to Linux",
			 h->vm.geo.bbm ?
			 h->vm.bbm.bb_count[VIRTIO_MEM_BBM_BB_PLUGGED] :
			 h->vm.sbm.mb_count[VIRTIO_MEM_SBM_MB_PLUGGED]);
	if (plugged < want)
		vmh_fail(h, "settle: 0x%llx plugged, 0x%llx wanted and possible (status %d, outcome %d)",
			 (unsigned long long)plugged, (unsigned long long)want,
			 h->vm.status, h->last_outcome);
	want = round_up(min(d->cfg.requested_size, d->cfg.usable_region_size),
			h->vm.geo.bbm ? h->vm.geo.bb_size : h->vm.geo.sb_size);
	if (plugged > want)
		vmh_fail(h, "settle: 0x%llx plugged, only 0x%llx wanted (status %d, outcome %d)",
			 (unsigned long long)plugged, (unsigned long long)want,
			 h->vm.status, h->last_outcome);
	return vmh_check(h);
}

/* The driver's blocks, one line each, for failure reports. */
void vmh_dump(struct vmh *h, FILE *f)
{
	static const char letter[] = "UPOoKkMm";
	const struct virtio_mem_sbm *sbm = &h->vm.sbm;
	unsigned long mb_id;
	unsigned int sb;

	fprintf(f, "#   driver: plugged 0x%llx, device 0x%llx, requested 0x%llx, usable 0x%llx, status %d, outcome %d\n",
		(unsigned long long)vmh_drv_plugged(h),
		(unsigned long long)vmh_dev_plugged(h),
		(unsigned long long)h->dev.cfg.requested_size,
		(unsigned long long)h->dev.cfg.usable_region_size,
		h->vm.status, h->last_outcome);
	if (h->vm.geo.bbm) {
		fprintf(f, "#   big blocks %lu..%lu of %llu MiB:", h->vm.bbm.first_bb_id,
			h->vm.bbm.last_bb_id,
			(unsigned long long)(h->vm.geo.bb_size >> 20));
		for (mb_id = h->vm.bbm.first_bb_id;
		     mb_id <= h->vm.bbm.last_bb_id; mb_id++)
			fprintf(f, " %d", virtio_mem_bbm_get_bb_state(&h->vm.bbm,
								     mb_id));
		fputc('\n', f);
		return;
	}
	for (mb_id = sbm->first_mb_id; mb_id < sbm->next_mb_id; mb_id++) {
		fprintf(f, "#   mb %3lu %c ", mb_id,
			letter[virtio_mem_sbm_get_mb_state(sbm, mb_id)]);
		for (sb = 0; sb < sbm->sbs_per_mb; sb++)
			fputc(virtio_mem_sbm_test_sb_plugged(sbm, mb_id, sb, 1) ?
			      '#' : '.', f);
		fputc('\n', f);
	}
}
