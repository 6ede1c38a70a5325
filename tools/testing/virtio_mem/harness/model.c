// SPDX-License-Identifier: GPL-2.0
/*
 * The harness side of the driver's thin interfaces (virtio_mem.h), built on
 * two models:
 *
 * - the device (struct vmh_dev): device blocks plugged or not, and the
 *   spec's rules for requests. A request outside the usable region,
 *   misaligned, of zero blocks, or naming a block already in the target
 *   state gets ERROR and fails the test: a correct driver never sends one.
 *   Plugging beyond requested_size gets NACK (QEMU, Cloud Hypervisor) or
 *   ERROR (Firecracker), and fails the test unless the host changed
 *   requested_size after the driver last read the config (a race the
 *   driver cannot avoid). NACK, BUSY and ERROR can be injected, and the
 *   host can resize while a request is in flight.
 *
 * - core-mm (struct vmh_mm): memory blocks added, online, in which zone;
 *   the auto-online policy; adds that fail with -ENOMEM or -EBUSY; user
 *   space onlining and offlining added blocks whenever the driver does not
 *   hold vm->hotplug_mutex (the kernel's memory notifier would wait for it
 *   otherwise), and which pages went to the page allocator.
 *
 * The memory notifier and the online_page callback are the driver's own
 * (virtio_mem_notify.c, compiled as it is). The model is core-mm's side of
 * them: memory_notify() sequences (MEM_GOING_ONLINE, the online_page
 * callback per MAX_PAGE_ORDER chunk, MEM_ONLINE; MEM_GOING_OFFLINE, then
 * MEM_OFFLINE or MEM_CANCEL_OFFLINE), a notifier before ours that may
 * refuse MEM_GOING_* (ours then sees only MEM_CANCEL_*), transitions left
 * in flight between steps, and a memmap (struct page per 4 KiB) whose
 * KSTUB_PG_BUDDY flag is the model's view of the page allocator.
 *
 * The worker loop (vmh_run_worker(), vmh_resize()) is a minimal
 * re-implementation of virtio_mem_run_wq()/virtio_mem_resize() from
 * virtio_mem_core.c, which only builds in the kernel; keep it in step.
 * Likewise vmh_probe()/vmh_remove() for virtio_mem_init()/virtio_mem_remove().
 */
#include <stdarg.h>

#include "model.h"

struct vmh *vmh_cur;

bool vmh_break(const char *name)
{
	const char *b = getenv("VMH_BREAK");

	return b && !strcmp(b, name);
}

static struct vmh *to_vmh(struct virtio_mem *vm)
{
	return container_of(vm, struct vmh, vm);
}

/* ---- randomness: splitmix64, seeded, reproducible ---- */

u64 vmh_rand(struct vmh *h)
{
	u64 z = (h->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

unsigned int vmh_pct(struct vmh *h)
{
	return vmh_rand(h) % 100;
}

u64 vmh_rand_range(struct vmh *h, u64 lo, u64 hi)
{
	if (hi <= lo)
		return lo;
	return lo + vmh_rand(h) % (hi - lo + 1);
}

void vmh_fail(struct vmh *h, const char *fmt, ...)
{
	va_list ap;

	if (!h->failures++) {
		va_start(ap, fmt);
		vsnprintf(h->failure, sizeof(h->failure), fmt, ap);
		va_end(ap);
	}
}

/* ---- geometry as the models see it (independent of the driver's) ---- */

static u64 vmh_sb_size(const struct vmh *h)
{
	return h->p.block_size > h->p.pageblock_size ? h->p.block_size :
						       h->p.pageblock_size;
}

/* Memory blocks touching the device region: the mm model's index. */
static unsigned long vmh_mm_first(const struct vmh *h)
{
	return h->p.addr / h->p.mb_size;
}

static unsigned long vmh_mm_nr(const struct vmh *h)
{
	return (h->p.addr + h->p.region_size - 1) / h->p.mb_size -
	       vmh_mm_first(h) + 1;
}

static struct vmh_mb *vmh_mb(struct vmh *h, unsigned long mb_id)
{
	if (mb_id < vmh_mm_first(h) || mb_id - vmh_mm_first(h) >= vmh_mm_nr(h))
		return NULL;
	return &h->mm.mbs[mb_id - vmh_mm_first(h)];
}

void vmh_default_params(struct vmh_params *p)
{
	memset(p, 0, sizeof(*p));
	p->host = VMH_QEMU;
	p->online = VMH_ONLINE_MOVABLE;
	p->mb_size = 128 * SZ_1M;
	p->pageblock_size = 2 * SZ_1M;
	p->block_size = 2 * SZ_1M;
	p->addr = 4 * SZ_1G;
	p->region_size = 4 * SZ_1G;
	p->usable_region_size = 256 * SZ_1M;
	p->pluggable_start = 0;
	p->pluggable_end = (1ULL << 46) - 1;
	p->qemu_extra = 256 * SZ_1M;
	p->fc_slot = 128 * SZ_1M;
}

static const u64 vmh_default_kernel_free = 64ULL << 30;

/* ---- the device model ---- */

static void vmh_dev_sync(struct vmh *h)
{
	u64 i, n = 0;

	for (i = 0; i < h->dev.nr_blocks; i++)
		n += h->dev.plugged[i];
	h->dev.cfg.plugged_size = n * h->dev.cfg.block_size;
}

u64 vmh_dev_plugged(const struct vmh *h)
{
	return h->dev.cfg.plugged_size;
}

static void vmh_config_changed(struct vmh *h)
{
	h->dev.stale = true;
	/* virtio_mem_config_changed(): flag, then queue the worker. */
	if (h->probed) {
		atomic_set(&h->vm.config_changed, 1);
		h->work_pending = true;
	}
}

/* The host's rule for usable_region_size at a given requested_size. */
static u64 vmh_host_usable(const struct vmh *h, u64 requested)
{
	const struct vmh_dev *d = &h->dev;
	u64 bs = d->cfg.block_size, u;

	switch (d->host) {
	case VMH_QEMU:
		u = round_up(requested + d->qemu_extra, bs);
		break;
	case VMH_FC:
		u = round_up(requested, d->fc_slot > bs ? d->fc_slot : bs);
		break;
	default:
		u = d->cfg.region_size;
		break;
	}
	return u < d->cfg.region_size ? u : d->cfg.region_size;
}

void vmh_host_resize(struct vmh *h, u64 requested)
{
	struct vmh_dev *d = &h->dev;
	u64 u;

	requested = round_down(requested, d->cfg.block_size);
	if (requested > d->cfg.region_size)
		requested = d->cfg.region_size;
	d->cfg.requested_size = requested;
	d->cap = requested > d->cfg.plugged_size || vmh_break("cap") ?
		 requested : d->cfg.plugged_size;
	u = vmh_host_usable(h, requested);
	if (u > d->cfg.usable_region_size)
		d->cfg.usable_region_size = u;
	vmh_config_changed(h);
}

void vmh_host_grow_usable(struct vmh *h, u64 usable)
{
	struct vmh_dev *d = &h->dev;

	usable = round_down(usable, d->cfg.block_size);
	if (usable > d->cfg.region_size)
		usable = d->cfg.region_size;
	if (usable <= d->cfg.usable_region_size)
		return;
	d->cfg.usable_region_size = usable;
	vmh_config_changed(h);
}

/*
 * C7: never unplug memory that is still in use: no subblock of the range
 * may be with the page allocator. And when shrinking toward
 * requested_size, never below it.
 */
static void vmh_check_unplug(struct vmh *h, u64 addr, u64 size)
{
	struct vmh_dev *d = &h->dev;
	unsigned long pfn, mb_id;
	struct vmh_mb *mb;
	u64 a;

	for (a = round_down(addr, PFN_PHYS(pageblock_nr_pages)); a < addr + size;
	     a += PFN_PHYS(pageblock_nr_pages)) {
		pfn = PHYS_PFN(a);
		mb_id = a / h->p.mb_size;
		mb = vmh_mb(h, mb_id);
		if (!mb)
			continue;
		if (vmh_page(h, pfn)->flags & KSTUB_PG_BUDDY) {
			vmh_fail(h, "UNPLUG 0x%llx+0x%llx: 0x%llx is still with the page allocator (C7)",
				 (unsigned long long)addr,
				 (unsigned long long)size,
				 (unsigned long long)a);
			return;
		}
		/* The memmap lives there while the block is added. */
		if (mb->added && pfn - mb_id * PHYS_PFN(h->p.mb_size) <
		    mb->memmap_pages) {
			vmh_fail(h, "UNPLUG 0x%llx+0x%llx: 0x%llx holds the memmap of added mb %lu",
				 (unsigned long long)addr,
				 (unsigned long long)size,
				 (unsigned long long)a, mb_id);
			return;
		}
		/* BBM: a big block goes only once Linux has removed it. */
		if (h->vm.geo.bbm && mb->added) {
			vmh_fail(h, "UNPLUG 0x%llx+0x%llx: mb %lu is still added to Linux",
				 (unsigned long long)addr,
				 (unsigned long long)size, mb_id);
			return;
		}
	}
	if (h->unplugging && !d->stale &&
	    d->cfg.plugged_size < size + d->cfg.requested_size)
		vmh_fail(h, "UNPLUG 0x%llx+0x%llx: below requested_size 0x%llx (plugged 0x%llx)",
			 (unsigned long long)addr, (unsigned long long)size,
			 (unsigned long long)d->cfg.requested_size,
			 (unsigned long long)d->cfg.plugged_size);
}

static const char *const vmh_req_names[] = {
	"PLUG", "UNPLUG", "UNPLUG_ALL", "STATE"
};

/*
 * One request, answered as the host would. Returns the outcome that
 * virtio_mem_device.c maps the answer to.
 */
static enum virtio_mem_outcome vmh_dev_request(struct vmh *h, u16 type,
					       u64 addr, u64 size)
{
	struct vmh_dev *d = &h->dev;
	const u64 bs = d->cfg.block_size;
	const u64 start = d->cfg.addr;
	u64 nb, first, i;
	u8 target = type == VIRTIO_MEM_REQ_PLUG;

	d->nr_req[type]++;
	if (getenv("VMH_TRACE"))
		fprintf(stderr, "  req %s 0x%llx+0x%llx (mutex %d) plugged 0x%llx req 0x%llx\n",
			vmh_req_names[type], (unsigned long long)addr,
			(unsigned long long)size, h->vm.hotplug_mutex.held,
			(unsigned long long)d->cfg.plugged_size,
			(unsigned long long)d->cfg.requested_size);
	if (type == VIRTIO_MEM_REQ_UNPLUG_ALL) {
		if (d->error_next) {
			d->error_next--;
			h->expect_broken = true;
			goto error;
		}
		if (d->host == VMH_QEMU && (d->busy_next || vmh_pct(h) < d->busy_pct)) {
			if (d->busy_next)
				d->busy_next--;
			goto busy;
		}
		memset(d->plugged, 0, d->nr_blocks);
		vmh_dev_sync(h);
		if (d->host == VMH_QEMU)
			d->cfg.usable_region_size =
				vmh_host_usable(h, d->cfg.requested_size);
		else if (d->host == VMH_FC)
			d->cfg.usable_region_size = 0;
		d->stale = true;
		goto ack;
	}

	/* What virtio_mem_send_range() refuses with a WARN. */
	nb = size / bs;
	if (!nb || nb > U16_MAX || size % bs || addr % bs) {
		vmh_fail(h, "%s 0x%llx+0x%llx: not a whole number (1..65535) of aligned device blocks",
			 vmh_req_names[type], (unsigned long long)addr,
			 (unsigned long long)size);
		goto error;
	}
	if (addr < start ||
	    addr + size > start + d->cfg.usable_region_size -
	    (vmh_break("usable") ? bs : 0) ||
	    addr + size < addr) {
		vmh_fail(h, "%s 0x%llx+0x%llx: outside the usable region 0x%llx+0x%llx",
			 vmh_req_names[type], (unsigned long long)addr,
			 (unsigned long long)size, (unsigned long long)start,
			 (unsigned long long)d->cfg.usable_region_size);
		goto error;
	}
	first = (addr - start) / bs;
	for (i = 0; i < nb; i++) {
		if (d->plugged[first + i] == target) {
			vmh_fail(h, "%s 0x%llx+0x%llx: device block 0x%llx is already %s",
				 vmh_req_names[type], (unsigned long long)addr,
				 (unsigned long long)size,
				 (unsigned long long)(addr + i * bs),
				 target ? "plugged" : "unplugged");
			goto error;
		}
	}
	if (!target)
		vmh_check_unplug(h, addr, size);
	if (d->error_next) {
		d->error_next--;
		h->expect_broken = true;
		goto error;
	}
	if (!target && d->busy_next_unplug) {
		d->busy_next_unplug--;
		goto busy;
	}
	if (d->host == VMH_QEMU && (d->busy_next || vmh_pct(h) < d->busy_pct)) {
		if (d->busy_next)
			d->busy_next--;
		goto busy;
	}
	if (target && d->nack_next) {
		d->nack_next--;
		/* Firecracker refuses with ERROR: the driver must back off. */
		if (d->host == VMH_FC) {
			h->fc_refusals++;
			goto error;
		}
		goto nack;
	}
	if (target && d->cfg.plugged_size + size > d->cfg.requested_size) {
		if (!d->stale)
			vmh_fail(h, "PLUG 0x%llx+0x%llx: beyond requested_size 0x%llx (plugged 0x%llx), which the driver had read",
				 (unsigned long long)addr,
				 (unsigned long long)size,
				 (unsigned long long)d->cfg.requested_size,
				 (unsigned long long)d->cfg.plugged_size);
		if (d->host == VMH_FC) {
			h->fc_race_error = true;
			goto error;
		}
		goto nack;
	}
	memset(d->plugged + first, target, nb);
	if (vmh_break("forget") && target)
		d->plugged[first] = 0;
	if (vmh_break("swap") && target && first + nb < d->nr_blocks &&
	    !d->plugged[first + nb]) {
		d->plugged[first] = 0;
		d->plugged[first + nb] = 1;
	}
	vmh_dev_sync(h);
ack:
	d->nr_resp[VIRTIO_MEM_RESP_ACK]++;
	return VIRTIO_MEM_OUTCOME_DONE;
nack:
	d->nr_resp[VIRTIO_MEM_RESP_NACK]++;
	return VIRTIO_MEM_OUTCOME_NACK;
busy:
	d->nr_resp[VIRTIO_MEM_RESP_BUSY]++;
	return VIRTIO_MEM_OUTCOME_BUSY;
error:
	d->nr_resp[VIRTIO_MEM_RESP_ERROR]++;
	return VIRTIO_MEM_OUTCOME_FAILED;
}

/*
 * While a request is out, the host may resize and (when the driver does not
 * hold the hotplug mutex) user space may online or offline a block.
 */
static void vmh_request_hooks(struct vmh *h)
{
	if (h->dev.midop_pct && vmh_pct(h) < h->dev.midop_pct)
		vmh_host_resize(h, vmh_rand_range(h, 0, h->dev.cfg.region_size));
	if (!h->vm.hotplug_mutex.held && h->mm.user_pct &&
	    vmh_pct(h) < h->mm.user_pct)
		vmh_user_event(h);
}

static enum virtio_mem_outcome vmh_trace_outcome(enum virtio_mem_outcome outcome)
{
	if (getenv("VMH_TRACE"))
		fprintf(stderr, "   -> outcome %d\n", outcome);
	return outcome;
}

/* ---- virtio_mem_device.c's interface ---- */

void virtio_mem_read_config(struct virtio_mem *vm, struct virtio_mem_cfg *cfg)
{
	struct vmh *h = to_vmh(vm);

	*cfg = h->dev.cfg;
	if (vmh_break("requested") &&
	    cfg->requested_size + 2 * cfg->block_size <= cfg->usable_region_size)
		cfg->requested_size += 2 * cfg->block_size;
	h->dev.stale = false;
}

enum virtio_mem_outcome virtio_mem_send_plug(struct virtio_mem *vm, u64 addr,
					     u64 size)
{
	struct vmh *h = to_vmh(vm);

	if (h->dev.resize_at_next_plug) {
		h->dev.resize_at_next_plug = false;
		vmh_host_resize(h, h->dev.resize_at_next_plug_to);
	}
	vmh_request_hooks(h);
	if (vmh_break("aligned"))
		addr += PAGE_SIZE;
	return vmh_trace_outcome(vmh_dev_request(h, VIRTIO_MEM_REQ_PLUG, addr,
						 size));
}

enum virtio_mem_outcome virtio_mem_send_unplug(struct virtio_mem *vm,
					       u64 addr, u64 size)
{
	struct vmh *h = to_vmh(vm);

	vmh_request_hooks(h);
	return vmh_trace_outcome(vmh_dev_request(h, VIRTIO_MEM_REQ_UNPLUG, addr,
						 size));
}

/* The model's device always answers. */
bool virtio_mem_device_lost(struct virtio_mem *vm)
{
	return false;
}

/* As virtio_mem_device.c: no reason to refuse this one, so NACK fails. */
enum virtio_mem_outcome virtio_mem_send_unplug_all(struct virtio_mem *vm)
{
	struct vmh *h = to_vmh(vm);
	enum virtio_mem_outcome outcome;

	vmh_request_hooks(h);
	outcome = vmh_trace_outcome(vmh_dev_request(h,
						    VIRTIO_MEM_REQ_UNPLUG_ALL,
						    0, 0));
	return outcome == VIRTIO_MEM_OUTCOME_NACK ? VIRTIO_MEM_OUTCOME_FAILED :
						    outcome;
}

/* ---- virtio_mem_core.c's interface ---- */

void virtio_mem_retry(struct virtio_mem *vm)
{
	to_vmh(vm)->work_pending = true;
}

void virtio_mem_set_status(struct virtio_mem *vm, enum virtio_mem_status status)
{
	mutex_lock(&vm->hotplug_mutex);
	vm->status = status;
	mutex_unlock(&vm->hotplug_mutex);
}

/* ---- core-mm model ---- */

/*
 * The memmap: one struct page per 4 KiB of the memory blocks touching the
 * region. The model owns the flags' meaning (see kstub.h): KSTUB_PG_BUDDY is
 * the model's own view of what the page allocator holds, which check.c
 * compares with the device and the driver.
 */
static unsigned long vmh_mb_pages(const struct vmh *h)
{
	return PHYS_PFN(h->p.mb_size);
}

static unsigned long vmh_mb_pfn(const struct vmh *h, unsigned long mb_id)
{
	return mb_id * vmh_mb_pages(h);
}

struct page *vmh_page(struct vmh *h, unsigned long pfn)
{
	return pfn_to_page(pfn);
}

/* Is the device block under @pfn plugged, as the device says? */
bool vmh_pfn_plugged(const struct vmh *h, unsigned long pfn)
{
	const struct vmh_dev *d = &h->dev;
	u64 addr = PFN_PHYS(pfn);

	if (addr < d->cfg.addr || addr >= d->cfg.addr + d->cfg.region_size)
		return false;
	return d->plugged[(addr - d->cfg.addr) / d->cfg.block_size];
}

static void vmh_poison(struct vmh *h, unsigned long pfn, unsigned long nr)
{
	struct page *page;

	for (; nr--; pfn++) {
		page = vmh_page(h, pfn);
		page->flags = KSTUB_PG_POISON;
		page->refcount = 0;
	}
}

/* The memory blocks core-mm hands to the page allocator, in the buddy. */
static unsigned long vmh_mb_of_pfn(const struct vmh *h, unsigned long pfn)
{
	return pfn / vmh_mb_pages(h);
}

unsigned long vmh_dirty_freed;

/* Pages go to the buddy: generic_online_page() and free_contig_range(). */
static void vmh_to_buddy(struct vmh *h, const char *what, unsigned long pfn,
			 unsigned long nr)
{
	unsigned long mb_id = vmh_mb_of_pfn(h, pfn), i;
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	struct page *page;

	if (!mb || vmh_mb_of_pfn(h, pfn + nr - 1) != mb_id || !mb->added ||
	    (!h->mm.in_callbacks && !mb->online)) {
		vmh_fail(h, "%s(pfn 0x%lx, %lu pages): its memory block is not online",
			 what, pfn, nr);
		return;
	}
	for (i = 0; i < nr; i++) {
		page = vmh_page(h, pfn + i);
		if (page->flags & (KSTUB_PG_BUDDY | KSTUB_PG_POISON)) {
			vmh_fail(h, "%s: pfn 0x%lx already in the buddy (or no memmap)",
				 what, pfn + i);
			return;
		}
		if (page->refcount != 1) {
			vmh_fail(h, "%s: pfn 0x%lx handed over with %d references",
				 what, pfn + i, page->refcount);
			return;
		}
		/*
		 * Freeing clears PageDirty (free_pages_prepare()), so a fresh
		 * page through free_contig_range() is harmless on x86. It
		 * happens when virtio_mem_mm_fake_online() frees a chunk of
		 * two subblocks, the first fake-offlined from the buddy and
		 * the next never onlined: counted, not failed (README).
		 */
		if (page->flags & KSTUB_PG_DIRTY) {
			vmh_dirty_freed++;
			page->flags &= ~KSTUB_PG_DIRTY;
		}
		if (!vmh_pfn_plugged(h, pfn + i)) {
			vmh_fail(h, "mb %lu pfn 0x%lx: in the buddy, but unplugged (%s)",
				 mb_id, pfn + i, what);
			return;
		}
	}
	for (i = 0; i < nr; i++) {
		page = vmh_page(h, pfn + i);
		page->flags &= ~(KSTUB_PG_OFFLINE | KSTUB_PG_RESERVED);
		page->flags |= KSTUB_PG_BUDDY;
		if ((pfn + i) % pageblock_nr_pages == 0 &&
		    vmh_pct(h) < h->mm.used_pct)
			page->flags |= KSTUB_PG_USED;
		page->refcount = 0;
	}
	if (!h->mm.in_callbacks)
		h->mm.nr_fake_online_sbs += PFN_PHYS(nr) / vmh_sb_size(h);
}

void generic_online_page(struct page *page, unsigned int order)
{
	struct vmh *h = vmh_cur;

	vmh_to_buddy(h, "generic_online_page", page_to_pfn(page), 1UL << order);
	/* What __free_pages_core() counts. */
	if (!vmh_break("managed"))
		h->mm.managed += 1L << order;
}

void free_contig_range(unsigned long pfn, unsigned long nr_pages)
{
	struct vmh *h = vmh_cur;
	unsigned long i;

	if (vmh_break("fake_online")) {
		for (i = 0; i < nr_pages; i++)
			vmh_page(h, pfn + i)->refcount = 0;
		return;
	}
	vmh_to_buddy(h, "free_contig_range", pfn, nr_pages);
}

void adjust_managed_page_count(struct page *page, long count)
{
	vmh_cur->mm.managed += count;
}

struct page *pfn_to_online_page(unsigned long pfn)
{
	struct vmh *h = vmh_cur;
	struct vmh_mb *mb = vmh_mb(h, vmh_mb_of_pfn(h, pfn));

	return mb && mb->online ? vmh_page(h, pfn) : NULL;
}

/* ---- the notifier chain and the online_page callback ---- */

int register_memory_notifier(struct notifier_block *nb)
{
	struct vmh *h = vmh_cur;

	if (h->mm.nb)
		vmh_fail(h, "a second memory notifier registered");
	h->mm.nb = nb;
	return 0;
}

void unregister_memory_notifier(struct notifier_block *nb)
{
	struct vmh *h = vmh_cur;

	if (h->mm.nb != nb)
		vmh_fail(h, "unregistering a memory notifier that is not ours");
	h->mm.nb = NULL;
}

int set_online_page_callback(online_page_callback_t callback)
{
	struct vmh *h = vmh_cur;

	if (h->mm.online_page)
		return -EBUSY;
	h->mm.online_page = callback;
	return 0;
}

int restore_online_page_callback(online_page_callback_t callback)
{
	struct vmh *h = vmh_cur;

	if (h->mm.online_page != callback)
		return -EINVAL;
	h->mm.online_page = NULL;
	return 0;
}

static const char *vmh_action_name(unsigned long action)
{
	switch (action) {
	case MEM_GOING_ONLINE:
		return "GOING_ONLINE";
	case MEM_ONLINE:
		return "ONLINE";
	case MEM_CANCEL_ONLINE:
		return "CANCEL_ONLINE";
	case MEM_GOING_OFFLINE:
		return "GOING_OFFLINE";
	case MEM_OFFLINE:
		return "OFFLINE";
	case MEM_CANCEL_OFFLINE:
		return "CANCEL_OFFLINE";
	}
	return "?";
}

/*
 * memory_notify(): a notifier before ours may refuse MEM_GOING_* (then the
 * chain stops there and ours never sees it); ours is called without the
 * hotplug mutex (core-mm holds its own locks, not ours).
 */
static int vmh_notify(struct vmh *h, unsigned long action,
		      unsigned long mb_id, bool earlier_refuses)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	struct memory_notify mn = {
		.start_pfn = vmh_mb_pfn(h, mb_id) + mb->memmap_pages,
		.nr_pages = vmh_mb_pages(h) - mb->memmap_pages,
	};
	int rc = 0;

	if (getenv("VMH_TRACE"))
		fprintf(stderr, "  notify %s mb %lu%s\n", vmh_action_name(action),
			mb_id, earlier_refuses ? " (an earlier notifier refuses)" : "");
	if (h->vm.hotplug_mutex.held)
		vmh_fail(h, "harness: memory_notify(%s) with the hotplug mutex held",
			 vmh_action_name(action));
	if (earlier_refuses) {
		h->mm.nr_refusals++;
		return -EBUSY;
	}
	if (h->mm.nb)
		rc = notifier_to_errno(h->mm.nb->notifier_call(h->mm.nb, action,
								&mn));
	return rc;
}

static bool vmh_refuse(struct vmh *h, unsigned int *next)
{
	if (*next) {
		(*next)--;
		return true;
	}
	return h->mm.refuse_pct && vmh_pct(h) < h->mm.refuse_pct;
}

/*
 * online_pages(), up to MEM_GOING_ONLINE: the memmap gets initialised
 * (PageOffline, one reference, the zone; a 6.12 kernel), then the chain.
 * On a refusal, MEM_CANCEL_ONLINE to all.
 */
static int vmh_mm_going_online(struct vmh *h, unsigned long mb_id,
			       bool movable)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	unsigned long pfn = vmh_mb_pfn(h, mb_id), i;
	struct page *page;
	int rc;

	for (i = 0; i < vmh_mb_pages(h); i++) {
		page = vmh_page(h, pfn + i);
		page->flags = (i < mb->memmap_pages ? KSTUB_PG_RESERVED :
			       KSTUB_PG_OFFLINE) |
			      (movable ? KSTUB_PG_MOVABLE : 0);
		page->refcount = vmh_break("refcount") ? 2 : 1;
	}
	mb->movable = movable;
	rc = vmh_notify(h, MEM_GOING_ONLINE, mb_id,
			vmh_refuse(h, &h->mm.refuse_next_online));
	if (!rc)
		return 0;
	vmh_notify(h, MEM_CANCEL_ONLINE, mb_id, false);
	vmh_poison(h, pfn + mb->memmap_pages,
		   vmh_mb_pages(h) - mb->memmap_pages);
	h->mm.nr_cancels++;
	return rc;
}

/* ... and the rest: the callback per chunk, then MEM_ONLINE. */
static void vmh_mm_finish_online(struct vmh *h, unsigned long mb_id)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	const unsigned long start = vmh_mb_pfn(h, mb_id) + mb->memmap_pages;
	const unsigned long end = vmh_mb_pfn(h, mb_id) + vmh_mb_pages(h);
	unsigned long pfn;
	unsigned int order;

	h->mm.in_callbacks = true;
	for (pfn = start; pfn < end; pfn += 1UL << order) {
		order = pfn ? min_t(unsigned int, MAX_PAGE_ORDER, __ffs(pfn)) :
			      MAX_PAGE_ORDER;
		/* Self-check: core-mm forgets our callback. */
		if (h->mm.online_page && !vmh_break("online_page"))
			h->mm.online_page(vmh_page(h, pfn), order);
		else
			generic_online_page(vmh_page(h, pfn), order);
	}
	h->mm.in_callbacks = false;
	mb->online = true;
	h->mm.nr_onlines++;
	if (!vmh_break("end"))
		vmh_notify(h, MEM_ONLINE, mb_id, false);
	/* Self-check: a block lands on the hold list outside a plug pass. */
	if (vmh_break("hold") && !h->vm.hold.active) {
		mutex_lock(&h->vm.hotplug_mutex);
		virtio_mem_sbm_hold_add(&h->vm.hold, mb_id);
		mutex_unlock(&h->vm.hotplug_mutex);
	}
}

static int vmh_mm_online(struct vmh *h, unsigned long mb_id, bool movable)
{
	int rc = vmh_mm_going_online(h, mb_id, movable);

	if (!rc)
		vmh_mm_finish_online(h, mb_id);
	return rc;
}

static int vmh_mm_going_offline(struct vmh *h, unsigned long mb_id)
{
	int rc = vmh_notify(h, MEM_GOING_OFFLINE, mb_id,
			    vmh_refuse(h, &h->mm.refuse_next_offline));

	if (rc) {
		vmh_notify(h, MEM_CANCEL_OFFLINE, mb_id, false);
		h->mm.nr_cancels++;
	}
	return rc;
}

/*
 * offline_pages() after MEM_GOING_OFFLINE: everything must be free or
 * movable, and a PageOffline page is skipped only without references.
 * May fail as offlining does: -EBUSY (unmovable), -EINTR (the driver's
 * offliner ran out of time).
 */
static int vmh_mm_finish_offline(struct vmh *h, unsigned long mb_id,
				 bool may_fail)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	const unsigned long start = vmh_mb_pfn(h, mb_id) + mb->memmap_pages;
	const unsigned long nr = vmh_mb_pages(h) - mb->memmap_pages;
	unsigned long i, buddy = 0;
	struct page *page;
	int rc = 0;

	if (vmh_break("refs")) {
		for (i = 0; i < nr; i++) {
			page = vmh_page(h, start + i);
			if (page->flags & KSTUB_PG_OFFLINE) {
				page->refcount++;
				break;
			}
		}
	}
	for (i = 0; i < nr; i++) {
		page = vmh_page(h, start + i);
		if (page->flags & KSTUB_PG_BUDDY) {
			buddy++;
			continue;
		}
		if (!(page->flags & KSTUB_PG_OFFLINE) || page->refcount) {
			vmh_fail(h, "offlining mb %lu: pfn 0x%lx is neither in the buddy nor PageOffline without references (flags 0x%x, %d references)",
				 mb_id, start + i, page->flags, page->refcount);
			rc = -EBUSY;
			break;
		}
	}
	if (!rc && may_fail && h->mm.offline_fail_pct &&
	    vmh_pct(h) < h->mm.offline_fail_pct)
		rc = vmh_pct(h) < 50 ? -EINTR : -EBUSY;
	if (rc) {
		vmh_notify(h, MEM_CANCEL_OFFLINE, mb_id, false);
		return rc;
	}
	h->mm.managed -= buddy;
	vmh_poison(h, start, nr);
	mb->online = false;
	mb->movable = false;
	h->mm.nr_offlines++;
	if (!vmh_break("end"))
		vmh_notify(h, MEM_OFFLINE, mb_id, false);
	return 0;
}

static int vmh_mm_offline(struct vmh *h, unsigned long mb_id, bool may_fail)
{
	int rc = vmh_mm_going_offline(h, mb_id);

	return rc ? rc : vmh_mm_finish_offline(h, mb_id, may_fail);
}

/*
 * A transition in flight: user space began onlining or offlining a block
 * and core-mm has sent MEM_GOING_* but not yet the rest. Ends now.
 */
bool vmh_inflight_end(struct vmh *h)
{
	unsigned long mb_id = h->mm.inflight_mb;
	unsigned long action = h->mm.inflight;

	if (!action)
		return false;
	h->mm.inflight = 0;
	if (getenv("VMH_TRACE"))
		fprintf(stderr, "  in flight: %s of mb %lu ends\n",
			vmh_action_name(action), mb_id);
	if (action == MEM_GOING_ONLINE)
		vmh_mm_finish_online(h, mb_id);
	else
		vmh_mm_finish_offline(h, mb_id, true);
	return true;
}

/*
 * The driver waits (remove's quiesce): the transition in flight ends
 * meanwhile. A wait that nothing can end would hang the kernel too.
 */
static bool vmh_wait_hook(void)
{
	struct vmh *h = vmh_cur;

	if (vmh_inflight_end(h))
		return true;
	fprintf(stderr, "harness: the driver waits for mb %lu to finish a transition, but core-mm has none in flight\n",
		h->vm.hotplug_mb);
	printf("not ok - the driver waits for a transition nobody has in flight (mb %lu)\n",
	       h->vm.hotplug_mb);
	exit(1);
}

int vmh_user_online(struct vmh *h, unsigned long mb_id, bool movable)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	int rc;

	if (!mb || !mb->added || mb->online || h->mm.inflight)
		return -EINVAL;
	if (h->vm.hotplug_mutex.held) {
		vmh_fail(h, "harness: onlining with the hotplug mutex held");
		return -EDEADLK;
	}
	rc = vmh_mm_going_online(h, mb_id, movable);
	if (rc)
		return rc;
	if (h->mm.inflight_pct && vmh_pct(h) < h->mm.inflight_pct) {
		h->mm.inflight = MEM_GOING_ONLINE;
		h->mm.inflight_mb = mb_id;
		return 0;
	}
	vmh_mm_finish_online(h, mb_id);
	return 0;
}

int vmh_user_offline(struct vmh *h, unsigned long mb_id)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	int rc;

	if (!mb || !mb->added || !mb->online || h->mm.inflight)
		return -EINVAL;
	if (h->vm.hotplug_mutex.held) {
		vmh_fail(h, "harness: offlining with the hotplug mutex held");
		return -EDEADLK;
	}
	rc = vmh_mm_going_offline(h, mb_id);
	if (rc)
		return rc;
	if (h->mm.inflight_pct && vmh_pct(h) < h->mm.inflight_pct) {
		h->mm.inflight = MEM_GOING_OFFLINE;
		h->mm.inflight_mb = mb_id;
		return 0;
	}
	return vmh_mm_finish_offline(h, mb_id, true);
}

/* User space onlines or offlines one added block, at random. */
void vmh_user_event(struct vmh *h)
{
	unsigned long nr = vmh_mm_nr(h), i, start, mb_id;
	struct vmh_mb *mb;

	if (!h->probed)
		return;
	if (h->mm.inflight) {
		vmh_inflight_end(h);
		return;
	}
	start = vmh_rand(h) % nr;
	for (i = 0; i < nr; i++) {
		mb_id = vmh_mm_first(h) + (start + i) % nr;
		mb = vmh_mb(h, mb_id);
		if (!mb->added)
			continue;
		if (mb->online)
			vmh_user_offline(h, mb_id);
		else
			vmh_user_online(h, mb_id, vmh_pct(h) < 70);
		return;
	}
}

/* ---- virtio_mem_mm.c's interface ---- */

/* The zone auto-onlining picks; user space may have picked another. */
static void vmh_auto_online(struct vmh *h, unsigned long mb_id)
{
	bool movable;

	switch (h->mm.online) {
	case VMH_ONLINE_NONE:
		return;
	case VMH_ONLINE_KERNEL:
		movable = false;
		break;
	case VMH_ONLINE_MOVABLE:
		movable = true;
		break;
	default:
		movable = vmh_rand(h) & 1;
		break;
	}
	/* Refused by a notifier: it stays offline, as add_memory leaves it. */
	vmh_mm_online(h, mb_id, movable);
}

/* add_memory_driver_managed() refuses or runs out of memory. */
static int vmh_add_fails(struct vmh *h, unsigned long nr_mbs)
{
	int err;

	if (!h->vm.sbm.memmap_sbs && !h->vm.bbm.memmap_size &&
	    virtio_mem_mm_kernel_free() <
	    nr_mbs * virtio_mem_mm_memmap_size(h->p.mb_size)) {
		/* vmemmap allocation failure */
		h->mm.nr_add_fails++;
		return -ENOMEM;
	}
	if (h->mm.add_fail_next ||
	    (h->mm.add_fail_pct && vmh_pct(h) < h->mm.add_fail_pct)) {
		if (h->mm.add_fail_next)
			h->mm.add_fail_next--;
		err = h->mm.add_fail_errno ? h->mm.add_fail_errno :
		      (vmh_rand(h) & 1 ? -ENOMEM : -EBUSY);
		h->mm.nr_add_fails++;
		return err;
	}
	return 0;
}

static void vmh_mm_added(struct vmh *h, unsigned long mb_id,
			 unsigned int memmap_pages)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);

	mb->added = !vmh_break("added");
	mb->memmap_pages = memmap_pages;
	h->mm.nr_adds++;
}

int virtio_mem_mm_add_mb(struct virtio_mem *vm, unsigned long mb_id)
{
	struct vmh *h = to_vmh(vm);
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	enum virtio_mem_sbm_mb_state state;
	int err;

	lockdep_assert_not_held(&vm->hotplug_mutex);
	/* Core-mm's hotplug lock: a transition in flight ends first. */
	vmh_inflight_end(h);
	if (!mb || mb_id < vm->geo.first_mb_id || mb_id > vm->geo.last_mb_id) {
		vmh_fail(h, "add of mb %lu, outside the usable memory blocks",
			 mb_id);
		return -EINVAL;
	}
	if (mb->added) {
		vmh_fail(h, "add of mb %lu, which is added already", mb_id);
		return -EEXIST;
	}
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	if (state != VIRTIO_MEM_SBM_MB_OFFLINE &&
	    state != VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL)
		vmh_fail(h, "add of mb %lu in driver state %d", mb_id, state);

	if (vm->sbm.memmap_sbs &&
	    !virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id, 0,
					    vm->sbm.memmap_sbs))
		vmh_fail(h, "add of mb %lu with its memmap on its unplugged first subblock",
			 mb_id);
	err = vmh_add_fails(h, 1);
	if (err)
		return err;
	vmh_mm_added(h, mb_id, vm->sbm.memmap_sbs * PHYS_PFN(vm->geo.sb_size));
	vmh_auto_online(h, mb_id);
	return 0;
}

int virtio_mem_mm_add_range(struct virtio_mem *vm, u64 addr, u64 size,
			    bool memmap)
{
	struct vmh *h = to_vmh(vm);
	const unsigned long first = addr / h->p.mb_size;
	const unsigned long nr = size / h->p.mb_size;
	unsigned long i;
	int err;

	lockdep_assert_not_held(&vm->hotplug_mutex);
	vmh_inflight_end(h);
	if (!nr || addr % h->p.mb_size || size % h->p.mb_size ||
	    first < vm->geo.first_mb_id || first + nr - 1 > vm->geo.last_mb_id) {
		vmh_fail(h, "add of 0x%llx+0x%llx: not whole usable memory blocks",
			 (unsigned long long)addr, (unsigned long long)size);
		return -EINVAL;
	}
	for (i = 0; i < nr; i++) {
		if (vmh_mb(h, first + i)->added) {
			vmh_fail(h, "add of mb %lu, which is added already",
				 first + i);
			return -EEXIST;
		}
		if (!vmh_pfn_plugged(h, vmh_mb_pfn(h, first + i)))
			vmh_fail(h, "add of mb %lu, which is not plugged",
				 first + i);
	}
	err = vmh_add_fails(h, nr);
	if (err)
		return err;
	if (memmap != !!vm->bbm.memmap_size)
		vmh_fail(h, "add of 0x%llx+0x%llx: memmap %d, set up %llu",
			 (unsigned long long)addr, (unsigned long long)size,
			 memmap, (unsigned long long)vm->bbm.memmap_size);
	for (i = 0; i < nr; i++)
		vmh_mm_added(h, first + i,
			     memmap ? PHYS_PFN(vm->bbm.memmap_size) : 0);
	for (i = 0; i < nr; i++)
		vmh_auto_online(h, first + i);
	return 0;
}

/*
 * offline_and_remove_memory(): offline each block, and on a failure online
 * again (same zone) the ones it offlined; then remove them all.
 */
int virtio_mem_mm_offline_and_remove_range(struct virtio_mem *vm, u64 addr,
					   u64 size)
{
	struct vmh *h = to_vmh(vm);
	const unsigned long first = addr / h->p.mb_size;
	const unsigned long nr = size / h->p.mb_size;
	int was_movable[64];	/* -1: offline */
	unsigned long i, j;
	struct vmh_mb *mb;
	int rc;

	lockdep_assert_not_held(&vm->hotplug_mutex);
	if (h->mm.inflight && h->mm.inflight_mb >= first &&
	    h->mm.inflight_mb - first < nr)
		h->mm.nr_removes_inflight++;
	vmh_inflight_end(h);
	if (!nr || nr > ARRAY_SIZE(was_movable) || addr % h->p.mb_size ||
	    size % h->p.mb_size || !vmh_mb(h, first) ||
	    !vmh_mb(h, first + nr - 1)) {
		vmh_fail(h, "offline_and_remove of 0x%llx+0x%llx: not whole memory blocks of the region",
			 (unsigned long long)addr, (unsigned long long)size);
		return -EINVAL;
	}
	for (i = 0; i < nr; i++) {
		if (!vmh_mb(h, first + i)->added) {
			vmh_fail(h, "offline_and_remove of mb %lu, which is not added",
				 first + i);
			return -EINVAL;
		}
	}
	if (h->mm.remove_fail_user_offline_inflight) {
		unsigned int pct = h->mm.inflight_pct;

		h->mm.remove_fail_user_offline_inflight = false;
		for (i = 0; i < nr && !vmh_mb(h, first + i)->online; i++)
			;
		h->mm.inflight_pct = 100;
		if (i == nr || vmh_user_offline(h, first + i) ||
		    !h->mm.inflight)
			vmh_fail(h, "harness: user space could not begin offlining a block of 0x%llx+0x%llx",
				 (unsigned long long)addr,
				 (unsigned long long)size);
		h->mm.inflight_pct = pct;
		return -EBUSY;
	}
	for (i = 0; i < nr; i++) {
		mb = vmh_mb(h, first + i);
		was_movable[i] = mb->movable;
		if (!mb->online) {
			was_movable[i] = -1;
			continue;
		}
		if (h->mm.sweep_fail_user_offline) {
			h->mm.sweep_fail_user_offline = false;
			rc = -EBUSY;
			if (vmh_user_offline(h, first + i))
				vmh_fail(h, "harness: user space could not offline mb %lu",
					 first + i);
		} else {
			rc = vmh_mm_offline(h, first + i, true);
		}
		if (!rc)
			continue;
		for (j = 0; j < i; j++)
			if (was_movable[j] >= 0)
				vmh_mm_online(h, first + j, was_movable[j]);
		return rc;
	}
	for (i = 0; i < nr; i++) {
		mb = vmh_mb(h, first + i);
		mb->added = false;
		mb->memmap_pages = 0;
		vmh_poison(h, vmh_mb_pfn(h, first + i), vmh_mb_pages(h));
	}
	return 0;
}

int virtio_mem_mm_offline_and_remove_mb(struct virtio_mem *vm,
					unsigned long mb_id)
{
	return virtio_mem_mm_offline_and_remove_range(vm,
			(u64)mb_id * vm->geo.mb_size, vm->geo.mb_size);
}

void virtio_mem_mm_no_memmap_on_memory(struct virtio_mem *vm)
{
}

/* Resolve a pageblock-aligned run of pages inside one memory block. */
static bool vmh_pb_range(struct vmh *h, const char *what, unsigned long pfn,
			 unsigned long nr_pages)
{
	if (!nr_pages || pfn % pageblock_nr_pages ||
	    nr_pages % pageblock_nr_pages ||
	    vmh_mb_of_pfn(h, pfn) != vmh_mb_of_pfn(h, pfn + nr_pages - 1) ||
	    !vmh_mb(h, vmh_mb_of_pfn(h, pfn))) {
		vmh_fail(h, "%s(pfn 0x%lx, %lu pages): not whole pageblocks of one block in the region",
			 what, pfn, nr_pages);
		return false;
	}
	return true;
}

/* MemAvailable, as far as the device's memory is concerned. */
u64 virtio_mem_mm_available(void)
{
	struct vmh *h = vmh_cur;
	unsigned long pfn, nr = 0;
	unsigned int f;

	for (pfn = 0; pfn < kstub_memmap_nr; pfn += pageblock_nr_pages) {
		f = kstub_memmap[pfn].flags;
		nr += (f & KSTUB_PG_BUDDY) && !(f & KSTUB_PG_USED);
	}
	return h->mm.avail_base + PFN_PHYS(nr * pageblock_nr_pages);
}

/* sizeof(struct page) on x86-64. */
#define VMH_STRUCT_PAGE	64

u64 virtio_mem_mm_memmap_size(u64 size)
{
	return PHYS_PFN(size) * VMH_STRUCT_PAGE;
}

/*
 * Free kernel-zone memory: what is free outside the device, less the
 * memmap of every block added, plus free pageblocks of our blocks online
 * in a kernel zone.
 */
u64 virtio_mem_mm_kernel_free(void)
{
	struct vmh *h = vmh_cur;
	const u64 memmap = virtio_mem_mm_memmap_size(h->p.mb_size);
	const unsigned long first = vmh_mm_first(h);
	unsigned long i, pfn, end;
	u64 free = h->mm.kernel_free_base;
	unsigned int f;

	for (i = 0; i < vmh_mm_nr(h); i++) {
		if (!h->mm.mbs[i].added)
			continue;
		if (!h->mm.mbs[i].memmap_pages)
			free = free > memmap ? free - memmap : 0;
		if (!h->mm.mbs[i].online || h->mm.mbs[i].movable)
			continue;
		pfn = vmh_mb_pfn(h, first + i);
		for (end = pfn + vmh_mb_pages(h); pfn < end;
		     pfn += pageblock_nr_pages) {
			f = vmh_page(h, pfn)->flags;
			if ((f & KSTUB_PG_BUDDY) && !(f & KSTUB_PG_USED))
				free += PFN_PHYS(pageblock_nr_pages);
		}
	}
	return free;
}

u64 virtio_mem_unplug_floor(void)
{
	return vmh_cur->mm.floor;
}

bool virtio_mem_unplug_online = true;

/* The model's buddy is pageblock-grained: a pageblock is free or in use. */
bool virtio_mem_mm_range_free(unsigned long pfn, unsigned long nr_pages)
{
	struct vmh *h = vmh_cur;
	unsigned long i;
	unsigned int f;

	if (!vmh_pb_range(h, "range_free", pfn, nr_pages))
		return false;
	for (i = 0; i < nr_pages; i += pageblock_nr_pages) {
		f = vmh_page(h, pfn + i)->flags;
		if (!(f & KSTUB_PG_BUDDY) || (f & KSTUB_PG_USED))
			return false;
	}
	return true;
}

/*
 * alloc_contig_range() on memory of an online block, and what the driver's
 * virtio_mem_mm_fake_offline() (virtio_mem_mm.c, real mm work) then does
 * with the pages: PageOffline, our one reference, not managed.
 */
int virtio_mem_mm_fake_offline(unsigned long pfn, unsigned long nr_pages)
{
	struct vmh *h = vmh_cur;
	struct vmh_mb *mb;
	struct page *page;
	unsigned long i;
	u64 avail;

	if (!vmh_pb_range(h, "fake_offline", pfn, nr_pages))
		return -EINVAL;
	mb = vmh_mb(h, vmh_mb_of_pfn(h, pfn));
	if (!mb->added || !mb->online) {
		vmh_fail(h, "fake_offline of pfn 0x%lx: block not online", pfn);
		return -EINVAL;
	}
	avail = virtio_mem_mm_available();
	if (h->mm.floor && avail < PFN_PHYS(nr_pages) + h->mm.floor)
		vmh_fail(h, "fake_offline of 0x%llx bytes with 0x%llx available: below the OOM guard's floor 0x%llx",
			 (unsigned long long)PFN_PHYS(nr_pages),
			 (unsigned long long)avail,
			 (unsigned long long)h->mm.floor);
	for (i = 0; i < nr_pages; i++) {
		page = vmh_page(h, pfn + i);
		if (!(page->flags & KSTUB_PG_BUDDY) ||
		    !vmh_pfn_plugged(h, pfn + i)) {
			vmh_fail(h, "fake_offline of pfn 0x%lx: not plugged or not in the buddy",
				 pfn + i);
			return -EINVAL;
		}
		if (i % pageblock_nr_pages == 0 &&
		    (page->flags & KSTUB_PG_USED) && h->mm.unmovable_pct &&
		    vmh_pct(h) < h->mm.unmovable_pct)
			return -EBUSY;
	}
	if (vmh_break("fake_offline"))
		return 0;
	for (i = 0; i < nr_pages; i++) {
		page = vmh_page(h, pfn + i);
		page->flags &= ~(KSTUB_PG_BUDDY | KSTUB_PG_USED);
		page->flags |= KSTUB_PG_OFFLINE;
		page->refcount = 1;
	}
	h->mm.managed -= nr_pages;
	h->mm.nr_fake_offline_sbs += PFN_PHYS(nr_pages) / vmh_sb_size(h);
	return 0;
}

/* ---- probe, remove, worker: minimal copies of virtio_mem_core.c ---- */

int vmh_init(struct vmh *h, const struct vmh_params *p, u64 seed)
{
	struct vmh_dev *d = &h->dev;

	memset(h, 0, sizeof(*h));
	h->p = *p;
	h->rng = seed;
	h->vdev.dev.name = "virtio-mem-harness";
	d->host = p->host;
	d->cfg.block_size = p->block_size;
	d->cfg.addr = p->addr;
	d->cfg.region_size = p->region_size;
	d->cfg.usable_region_size = p->usable_region_size;
	d->cfg.requested_size = p->requested_size;
	d->qemu_extra = p->qemu_extra;
	d->fc_slot = p->fc_slot;
	d->nr_blocks = p->block_size ? p->region_size / p->block_size : 0;
	d->plugged = calloc(d->nr_blocks ? d->nr_blocks : 1, 1);
	/* Left from before: the first blocks of the region. */
	if (p->block_size)
		memset(d->plugged, 1, p->plugged_size / p->block_size);
	vmh_dev_sync(h);
	d->cap = d->cfg.requested_size > d->cfg.plugged_size ?
		 d->cfg.requested_size : d->cfg.plugged_size;
	h->mm.online = p->online;
	h->mm.kernel_free_base = vmh_default_kernel_free;
	h->mm.mbs = calloc(vmh_mm_nr(h), sizeof(*h->mm.mbs));
	vmh_cur = h;
	kstub_memmap_pfn = vmh_mb_pfn(h, vmh_mm_first(h));
	kstub_memmap_nr = vmh_mm_nr(h) * vmh_mb_pages(h);
	kstub_memmap = malloc(kstub_memmap_nr * sizeof(*kstub_memmap));
	if (!d->plugged || !h->mm.mbs || !kstub_memmap)
		return -ENOMEM;
	vmh_poison(h, kstub_memmap_pfn, kstub_memmap_nr);
	kstub_wait_hook = vmh_wait_hook;
	return 0;
}

void vmh_exit(struct vmh *h)
{
	if (h->probed)
		vmh_remove(h);
	free(h->dev.plugged);
	free(h->mm.mbs);
	h->dev.plugged = NULL;
	h->mm.mbs = NULL;
	if (vmh_cur == h) {
		free(kstub_memmap);
		kstub_memmap = NULL;
		kstub_memmap_nr = 0;
		vmh_cur = NULL;
	}
}

/* virtio_mem_init() and virtio_mem_probe(), minus what only the kernel has. */
int vmh_probe(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;
	struct virtio_mem_limits limits = {
		.mb_size = h->p.mb_size,
		.pageblock_size = h->p.pageblock_size,
		.pluggable_start = h->p.pluggable_start,
		.pluggable_end = h->p.pluggable_end,
		.force_bbm = h->p.force_bbm,
		.bb_size = h->p.bb_size,
	};
	struct virtio_mem_cfg_problem problem;
	int rc;

	/* An injected allocation fault is meant for the worker. */
	kstub_fail_allocs = 0;
	memset(vm, 0, sizeof(*vm));
	vm->vdev = &h->vdev;
	mutex_init(&vm->hotplug_mutex);
	vm->hotplug_mb = VIRTIO_MEM_MM_NO_MB;
	INIT_LIST_HEAD(&vm->next);
	virtio_mem_read_config(vm, &vm->cfg);
	rc = virtio_mem_cfg_check(&vm->cfg, PAGE_SIZE, &problem);
	if (!rc)
		rc = virtio_mem_geo_init(&vm->geo, &vm->cfg, &limits, &problem);
	if (rc)
		return rc;
	vm->offline_limit = virtio_mem_offline_limit(&vm->geo, SZ_1G);
	vm->unplug_all_required = vm->cfg.plugged_size != 0;
	if (vm->geo.bbm) {
		rc = virtio_mem_bbm_init(&vm->bbm, vm->geo.first_bb_id,
					 vm->geo.last_bb_id);
		if (rc)
			return rc;
		if (h->p.memmap_on_memory)
			vm->bbm.memmap_size =
				virtio_mem_bbm_memmap_size(&vm->geo,
							   virtio_mem_mm_memmap_size(vm->geo.mb_size),
							   PAGE_SIZE * pageblock_nr_pages);
	} else {
		rc = virtio_mem_sbm_init(&vm->sbm, vm->geo.first_mb_id,
					 vm->geo.last_mb_id,
					 vm->geo.sbs_per_mb);
		if (rc)
			return rc;
		vm->sbm_sweep_failed =
			kvcalloc(BITS_TO_LONGS(vm->geo.last_mb_id -
					       vm->geo.first_mb_id + 1),
				 sizeof(long), GFP_KERNEL);
		if (!vm->sbm_sweep_failed) {
			virtio_mem_sbm_destroy(&vm->sbm);
			return -ENOMEM;
		}
		if (h->p.memmap_on_memory)
			vm->sbm.memmap_sbs =
				virtio_mem_memmap_sbs(&vm->geo,
						      virtio_mem_mm_memmap_size(vm->geo.mb_size));
	}
	rc = virtio_mem_mm_register(vm);
	if (rc) {
		kvfree(vm->sbm_sweep_failed);
		virtio_mem_sbm_destroy(&vm->sbm);
		virtio_mem_bbm_destroy(&vm->bbm);
		return rc;
	}
	h->probed = true;
	h->expect_broken = false;
	h->fc_race_error = false;
	if (vm->cfg.requested_size || vm->unplug_all_required)
		h->work_pending = true;
	return 0;
}

/*
 * User space onlines or offlines a block while remove begins: the notifier
 * must refuse it (remove would leave a block onlined after it without
 * anyone to keep its unplugged parts away from the buddy).
 */
static void vmh_remove_race(struct vmh *h)
{
	unsigned long i, nr = vmh_mm_nr(h), mb_id;
	struct vmh_mb *mb;
	int rc;

	for (i = 0; i < nr; i++) {
		mb_id = vmh_mm_first(h) + i;
		mb = vmh_mb(h, mb_id);
		if (!mb->added || h->mm.inflight)
			continue;
		/* Self-check: remove's own transitions would pass. */
		if (vmh_break("remove_race"))
			virtio_mem_mm_remove_own(&h->vm, true);
		rc = mb->online ? vmh_user_offline(h, mb_id) :
				  vmh_user_online(h, mb_id, true);
		if (vmh_break("remove_race"))
			virtio_mem_mm_remove_own(&h->vm, false);
		if (!rc)
			vmh_fail(h, "remove: user space %s mb %lu after remove began",
				 mb->online ? "onlined" : "offlined", mb_id);
		return;
	}
}

/* virtio_mem_remove(), minus what only the kernel has. */
void vmh_remove(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;

	mutex_lock(&vm->hotplug_mutex);
	vm->removing = true;
	mutex_unlock(&vm->hotplug_mutex);
	h->work_pending = false;
	h->retry_pending = false;
	if (h->mm.race_remove_pct && vmh_pct(h) < h->mm.race_remove_pct)
		vmh_remove_race(h);
	virtio_mem_mm_quiesce(vm);
	virtio_mem_mm_remove_own(vm, true);
	if (vm->geo.bbm)
		virtio_mem_bbm_remove_all(vm);
	else
		virtio_mem_sbm_remove_all(vm);
	virtio_mem_mm_remove_own(vm, false);
	virtio_mem_mm_unregister(vm);
	if (!vmh_break("leak")) {
		kvfree(vm->sbm_sweep_failed);
		vm->sbm_sweep_failed = NULL;
		virtio_mem_sbm_destroy(&vm->sbm);
		virtio_mem_bbm_destroy(&vm->bbm);
	}
	h->probed = false;
}

static enum virtio_mem_outcome vmh_resize(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;
	struct virtio_mem_cfg_problem problem;
	enum virtio_mem_outcome outcome;
	struct virtio_mem_cfg cfg;
	u64 plugged, requested;

	virtio_mem_read_config(vm, &cfg);
	if (virtio_mem_cfg_check_update(&vm->cfg, &cfg, &problem))
		return VIRTIO_MEM_OUTCOME_FAILED;
	vm->cfg = cfg;

	if (vm->unplug_all_required) {
		outcome = virtio_mem_send_unplug_all(vm);
		if (outcome)
			return outcome;
		vm->unplug_all_required = false;
		return VIRTIO_MEM_OUTCOME_CONFIG_CHANGED;
	}
	requested = min(vm->cfg.requested_size, vm->cfg.usable_region_size);
	mutex_lock(&vm->hotplug_mutex);
	plugged = vmh_drv_plugged(h);
	mutex_unlock(&vm->hotplug_mutex);
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
		h->unplugging = true;
		outcome = vm->geo.bbm ? virtio_mem_bbm_unplug(vm, plugged - requested) :
					virtio_mem_sbm_unplug(vm, plugged - requested);
		h->unplugging = false;
		return outcome;
	}
	return VIRTIO_MEM_OUTCOME_DONE;
}

void vmh_run_worker(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;
	enum virtio_mem_outcome outcome;
	enum virtio_mem_status status;
	unsigned int loops = 0;

	h->work_pending = false;
	if (!h->probed || vm->broken)
		return;
	h->retry_pending = false;	/* hrtimer_cancel() */
again:
	atomic_set(&vm->config_changed, 0);
	outcome = vmh_resize(h);
	if (getenv("VMH_TRACE"))
		fprintf(stderr, " worker pass: outcome %d\n", outcome);
	h->last_outcome = outcome;
	/* The driver's own retry policy, not a copy of it. */
	switch (virtio_mem_decide(outcome, &status)) {
	case VIRTIO_MEM_NEXT_AGAIN:
		if (++loops > 1000) {
			vmh_fail(h, "worker: config changed 1000 times in a row");
			return;
		}
		goto again;
	case VIRTIO_MEM_NEXT_WAIT:
		/* Done must mean done, as far as subblocks allow. */
		if (!outcome && !atomic_read(&vm->config_changed)) {
			u64 want = min(vm->cfg.requested_size,
				       vm->cfg.usable_region_size);
			u64 have = vmh_drv_plugged(h);
			u64 unit = vm->geo.bbm ? vm->geo.bb_size :
						 vm->geo.sb_size;

			if ((want > have && want - have >= unit) ||
			    (have > want && have - want >= unit))
				vmh_fail(h, "worker said done at 0x%llx plugged, 0x%llx requested",
					 (unsigned long long)have,
					 (unsigned long long)want);
		}
		break;
	case VIRTIO_MEM_NEXT_RETRY:
		/* Waits for virtio_mem_retry_later(). */
		h->retry_pending = true;
		break;
	case VIRTIO_MEM_NEXT_BROKEN:
		vm->broken = true;
		break;
	}
	virtio_mem_set_status(vm, status);
}
