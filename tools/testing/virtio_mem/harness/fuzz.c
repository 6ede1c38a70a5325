// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target. The input is read as:
 *
 *   byte 0     mode: even = raw config (any u64s), odd = plausible config
 *   then       the config and the kernel's limits (see read_config())
 *   the rest   operations, one byte each (see run_ops()), run through the
 *              worker loop against the models when the config is accepted
 *              and small enough to model
 *
 * Checked: virtio_mem_cfg_check() and virtio_mem_geo_init() never accept a
 * geometry that leaves the region, the pluggable range or whole memory
 * blocks, and name a field when they refuse; and after every operation,
 * every invariant of check.c. Any violation aborts (a crash to libFuzzer),
 * as do sanitizer reports.
 */
#include "model.h"

struct reader {
	const u8 *p;
	size_t n;
};

static u64 get(struct reader *r, unsigned int bytes)
{
	u64 v = 0;

	while (bytes--) {
		v = v << 8 | (r->n ? *r->p : 0);
		if (r->n) {
			r->p++;
			r->n--;
		}
	}
	return v;
}

static void die(const char *what, const struct vmh *h)
{
	fprintf(stderr, "vmfuzz: %s%s%s\n", what, h ? ": " : "",
		h ? h->failure : "");
	if (h && h->probed)
		vmh_dump((struct vmh *)h, stderr);
	abort();
}

static void read_config(struct reader *r, struct vmh_params *p)
{
	const bool plausible = get(r, 1) & 1;
	u64 bs;

	vmh_default_params(p);
	p->mb_size = 1ULL << (15 + get(r, 1) % 17);		/* 32K..2G */
	p->pageblock_size = 1ULL << (12 + get(r, 1) % 10);	/* 4K..2M */
	if (p->pageblock_size > p->mb_size)
		p->pageblock_size = p->mb_size;
	if (!plausible) {
		p->block_size = get(r, 8);
		p->addr = get(r, 8);
		p->region_size = get(r, 8);
		p->usable_region_size = get(r, 8);
		p->plugged_size = get(r, 8);
		p->requested_size = get(r, 8);
		p->pluggable_start = get(r, 8);
		p->pluggable_end = get(r, 8);
		return;
	}
	bs = 1ULL << (12 + get(r, 1) % 20);			/* 4K..2G */
	p->block_size = bs;
	p->addr = get(r, 3) * bs;
	p->region_size = (get(r, 2) + 1) * bs;
	p->usable_region_size = get(r, 2) * bs;
	p->requested_size = get(r, 2) * bs;
	p->plugged_size = get(r, 1) & 1 ? get(r, 1) * bs : 0;
	p->pluggable_start = get(r, 1) & 1 ? get(r, 3) * bs : 0;
	p->pluggable_end = get(r, 1) & 1 ? get(r, 3) * bs - 1 :
				      (1ULL << 52) - 1;
	p->host = get(r, 1) % VMH_NR_HOSTS;
	p->online = get(r, 1) % VMH_NR_ONLINE;
	p->qemu_extra = get(r, 1) * bs;
	p->fc_slot = bs << (get(r, 1) % 4);
	p->memmap_on_memory = get(r, 1) & 1;
}

/* What probe would accept must make sense. */
static bool check_config(const struct vmh_params *p, struct virtio_mem_geo *geo)
{
	struct virtio_mem_cfg cfg = {
		.block_size = p->block_size,
		.addr = p->addr,
		.region_size = p->region_size,
		.usable_region_size = p->usable_region_size,
		.plugged_size = p->plugged_size,
		.requested_size = p->requested_size,
	};
	struct virtio_mem_limits limits = {
		.mb_size = p->mb_size,
		.pageblock_size = p->pageblock_size,
		.pluggable_start = p->pluggable_start,
		.pluggable_end = p->pluggable_end,
	};
	struct virtio_mem_cfg_problem problem = { 0 };
	u64 start, end;
	int rc;

	rc = virtio_mem_cfg_check(&cfg, PAGE_SIZE, &problem);
	if (rc) {
		if (rc != -EINVAL || !problem.field || !problem.why)
			die("cfg_check refused without naming a field", NULL);
		return false;
	}
	if (!is_power_of_2(cfg.block_size) || cfg.addr % cfg.block_size ||
	    !cfg.region_size || cfg.region_size % cfg.block_size ||
	    cfg.addr + cfg.region_size < cfg.addr ||
	    cfg.usable_region_size > cfg.region_size ||
	    cfg.requested_size > cfg.region_size)
		die("cfg_check accepted a bad config", NULL);
	memset(&problem, 0, sizeof(problem));
	rc = virtio_mem_geo_init(geo, &cfg, &limits, &problem);
	if (rc) {
		if ((rc != -EINVAL && rc != -EOPNOTSUPP) || !problem.field)
			die("geo_init refused without naming a field", NULL);
		return false;
	}
	if (geo->bbm) {
		/* Big Block Mode: big blocks tile the usable range. */
		start = (u64)geo->first_bb_id * geo->bb_size;
		end = ((u64)geo->last_bb_id + 1) * geo->bb_size;
		if (!is_power_of_2(geo->bb_size) ||
		    geo->bb_size < cfg.block_size || geo->bb_size < p->mb_size ||
		    geo->last_bb_id < geo->first_bb_id || start < cfg.addr ||
		    end > cfg.addr + cfg.region_size ||
		    start < p->pluggable_start || end - 1 > p->pluggable_end ||
		    geo->unusable_size != cfg.region_size - (end - start))
			die("geo_init: big blocks outside the region", NULL);
		/* The harness models Sub Block Mode only, so far. */
		return false;
	}
	start = (u64)geo->first_mb_id * p->mb_size;
	end = ((u64)geo->last_mb_id + 1) * p->mb_size;	/* exclusive */
	if ( geo->sb_size * geo->sbs_per_mb != p->mb_size ||
	    geo->sbs_per_mb < 2 || geo->sb_size < cfg.block_size ||
	    geo->sb_size % cfg.block_size)
		die("geo_init: subblocks do not tile a memory block", NULL);
	if (geo->last_mb_id < geo->first_mb_id || start < cfg.addr ||
	    end > cfg.addr + cfg.region_size || end <= start ||
	    start < p->pluggable_start || end - 1 > p->pluggable_end)
		die("geo_init: memory blocks outside the region or the pluggable range",
		    NULL);
	if (geo->unusable_size != cfg.region_size - (end - start))
		die("geo_init: unusable_size does not add up", NULL);
	return true;
}

static void run_ops(struct reader *r, struct vmh *h)
{
	const u64 bs = h->dev.cfg.block_size;
	unsigned long i, nr;

	while (r->n) {
		switch (get(r, 1) % 16) {
		case 0:
		case 1:
		case 2:
			vmh_host_resize(h, get(r, 2) * bs);
			break;
		case 3:
			vmh_host_grow_usable(h, h->dev.cfg.usable_region_size +
					     get(r, 1) * bs);
			break;
		case 4:
		case 5:
			vmh_user_event(h);
			break;
		case 6:
			h->dev.nack_next++;
			break;
		case 7:
			h->dev.busy_next++;
			break;
		case 8:
			h->mm.add_fail_next++;
			break;
		case 9:
			kstub_fail_allocs = 1;
			break;
		case 10:
			h->mm.used_pct = get(r, 1) % 101;
			h->mm.unmovable_pct = get(r, 1) % 101;
			break;
		case 11:
			virtio_mem_unplug_online = !virtio_mem_unplug_online;
			break;
		case 12:
			h->dev.resize_at_next_plug = true;
			h->dev.resize_at_next_plug_to = get(r, 2) * bs;
			break;
		case 13:
			/* Driver reload, when Linux let go of everything. */
			vmh_remove(h);
			nr = (h->p.addr + h->p.region_size - 1) / h->p.mb_size -
			     h->p.addr / h->p.mb_size + 1;
			for (i = 0; i < nr; i++)
				if (h->mm.mbs[i].added)
					return;
			if (vmh_probe(h))
				die("re-probe failed", h);
			break;
		default:
			if (h->retry_pending)
				h->work_pending = true;
			vmh_run_worker(h);
			break;
		}
		if (!vmh_check(h))
			die("invariant", h);
		if (h->vm.broken)
			return;
	}
	if (!vmh_settle(h))
		die("settle", h);
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct reader r = { data, size };
	struct virtio_mem_geo geo;
	struct vmh_params p;
	struct vmh *h;
	u64 nr_blocks, nr_mbs;

	read_config(&r, &p);
	if (!check_config(&p, &geo))
		return 0;

	/* Model only what is small enough to model quickly. */
	nr_blocks = p.region_size / p.block_size;
	nr_mbs = (p.addr + p.region_size - 1) / p.mb_size - p.addr / p.mb_size + 1;
	if (nr_blocks > (1 << 16) || nr_mbs > 64 || geo.sbs_per_mb > 512 ||
	    p.plugged_size > p.usable_region_size)
		return 0;
	/*
	 * The memmap model: Linux's memory blocks hold whole MAX_PAGE_ORDER
	 * chunks, the model's buddy is pageblock (2 MiB) grained, and a struct
	 * page per 4 KiB of up to 16 GiB is enough.
	 */
	if (p.mb_size < PFN_PHYS(1UL << MAX_PAGE_ORDER) ||
	    p.pageblock_size != PFN_PHYS(pageblock_nr_pages) ||
	    nr_mbs * p.mb_size > 16 * SZ_1G)
		return 0;

	h = calloc(1, sizeof(*h));
	kstub_fail_allocs = 0;
	kstub_live_allocs = 0;
	virtio_mem_unplug_online = true;
	if (vmh_init(h, &p, size) || vmh_probe(h))
		die("probe of an accepted config failed", h);
	run_ops(&r, h);
	if (h->probed && !h->vm.broken) {
		h->mm.offline_fail_pct = 0;
		h->dev.busy_pct = 0;
		vmh_remove(h);
		if (kstub_live_allocs)
			die("allocations left after remove", h);
	}
	vmh_exit(h);
	free(h);
	kstub_fail_allocs = 0;
	return 0;
}
