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
 * The memory notifier and the online_page callback live in virtio_mem_mm.c,
 * which only builds in the kernel. vmh_mm_online() and vmh_mm_offline()
 * do what they do, in the same order: take vm->hotplug_mutex (GOING_*),
 * hand plugged subblocks to the buddy and keep unplugged ones back (the
 * online_page callback), then, at MEM_ONLINE/MEM_OFFLINE, call
 * virtio_mem_sbm_set_mb_state(..., virtio_mem_sbm_state_for(...)) exactly
 * as the notifier does, drop the mutex and, when onlining, queue the worker.
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

static unsigned long vmh_sbs_per_mb(const struct vmh *h)
{
	return h->p.mb_size / vmh_sb_size(h);
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

static u8 *vmh_buddy(struct vmh *h, unsigned long mb_id, unsigned long sb_id)
{
	return &h->mm.buddy[(mb_id - vmh_mm_first(h)) * vmh_sbs_per_mb(h) +
			    sb_id];
}

static u8 *vmh_used(struct vmh *h, unsigned long mb_id, unsigned long sb_id)
{
	return &h->mm.used[(mb_id - vmh_mm_first(h)) * vmh_sbs_per_mb(h) +
			   sb_id];
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
	const u64 sb_size = vmh_sb_size(h);
	struct vmh_dev *d = &h->dev;
	u64 a;

	for (a = round_down(addr, sb_size); a < addr + size; a += sb_size) {
		unsigned long mb_id = a / h->p.mb_size;

		if (vmh_mb(h, mb_id) &&
		    *vmh_buddy(h, mb_id, (a % h->p.mb_size) / sb_size)) {
			vmh_fail(h, "UNPLUG 0x%llx+0x%llx: 0x%llx is still with the page allocator (C7)",
				 (unsigned long long)addr,
				 (unsigned long long)size,
				 (unsigned long long)a);
			return;
		}
		/* The memmap lives there while the block is added. */
		if (vmh_mb(h, mb_id) && vmh_mb(h, mb_id)->added &&
		    (a % h->p.mb_size) / sb_size < h->vm.sbm.memmap_sbs) {
			vmh_fail(h, "UNPLUG 0x%llx+0x%llx: 0x%llx holds the memmap of added mb %lu",
				 (unsigned long long)addr,
				 (unsigned long long)size,
				 (unsigned long long)a, mb_id);
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
 * One request, answered as the host would. Returns the errno that
 * virtio_mem_device.c maps the answer to.
 */
static int vmh_dev_request(struct vmh *h, u16 type, u64 addr, u64 size)
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
	return 0;
nack:
	d->nr_resp[VIRTIO_MEM_RESP_NACK]++;
	return -EPERM;
busy:
	d->nr_resp[VIRTIO_MEM_RESP_BUSY]++;
	return -ETXTBSY;
error:
	d->nr_resp[VIRTIO_MEM_RESP_ERROR]++;
	return -EIO;
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

static int vmh_trace_rc(int rc)
{
	if (getenv("VMH_TRACE"))
		fprintf(stderr, "   -> %d\n", rc);
	return rc;
}

/* ---- virtio_mem_device.c's interface ---- */

int virtio_mem_read_config(struct virtio_mem *vm, struct virtio_mem_cfg *cfg)
{
	struct vmh *h = to_vmh(vm);

	*cfg = h->dev.cfg;
	if (vmh_break("requested") &&
	    cfg->requested_size + 2 * cfg->block_size <= cfg->usable_region_size)
		cfg->requested_size += 2 * cfg->block_size;
	h->dev.stale = false;
	return 0;
}

int virtio_mem_send_plug(struct virtio_mem *vm, u64 addr, u64 size)
{
	struct vmh *h = to_vmh(vm);

	if (h->dev.resize_at_next_plug) {
		h->dev.resize_at_next_plug = false;
		vmh_host_resize(h, h->dev.resize_at_next_plug_to);
	}
	vmh_request_hooks(h);
	if (vmh_break("aligned"))
		addr += PAGE_SIZE;
	return vmh_trace_rc(vmh_dev_request(h, VIRTIO_MEM_REQ_PLUG, addr, size));
}

int virtio_mem_send_unplug(struct virtio_mem *vm, u64 addr, u64 size)
{
	struct vmh *h = to_vmh(vm);

	vmh_request_hooks(h);
	return vmh_trace_rc(vmh_dev_request(h, VIRTIO_MEM_REQ_UNPLUG, addr, size));
}

int virtio_mem_send_unplug_all(struct virtio_mem *vm)
{
	struct vmh *h = to_vmh(vm);

	vmh_request_hooks(h);
	return vmh_trace_rc(vmh_dev_request(h, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0));
}

/* ---- virtio_mem_core.c's interface ---- */

void virtio_mem_retry(struct virtio_mem *vm)
{
	to_vmh(vm)->work_pending = true;
}

void virtio_mem_set_why(struct virtio_mem *vm, enum virtio_mem_why why)
{
	mutex_lock(&vm->hotplug_mutex);
	vm->why = why;
	mutex_unlock(&vm->hotplug_mutex);
}

/* ---- core-mm model ---- */

/*
 * Held memory blocks (virtio_mem_mm_hold_begin() in virtio_mem_mm.c): the
 * online_page callback keeps all pages of a kernel-zone block added during
 * a plug pass out of the buddy; the pass end, or the block going offline,
 * hands its plugged subblocks over. The model does the same with its own
 * list, so that a subblock handed over twice, or never, shows.
 */
static void vmh_release_mb(struct vmh *h, unsigned long mb_id)
{
	unsigned long sb;

	for (sb = h->vm.sbm.memmap_sbs; sb < vmh_sbs_per_mb(h); sb++) {
		if (!virtio_mem_sbm_test_sb_plugged(&h->vm.sbm, mb_id, sb, 1))
			continue;
		if (*vmh_buddy(h, mb_id, sb))
			vmh_fail(h, "releasing held mb %lu: subblock %lu already in the buddy",
				 mb_id, sb);
		*vmh_buddy(h, mb_id, sb) = 1;
		*vmh_used(h, mb_id, sb) = vmh_pct(h) < h->mm.used_pct;
	}
}

void virtio_mem_mm_hold_begin(struct virtio_mem *vm)
{
	mutex_lock(&vm->hotplug_mutex);
	if (vm->hold.active || vm->hold.nr)
		vmh_fail(to_vmh(vm), "hold_begin: a hold is still on (%u blocks)",
			 vm->hold.nr);
	vm->hold.active = true;
	mutex_unlock(&vm->hotplug_mutex);
}

bool virtio_mem_mm_hold_full(struct virtio_mem *vm)
{
	return vm->hold.nr == VIRTIO_MEM_SBM_HOLD_MAX;
}

bool virtio_mem_mm_held(struct virtio_mem *vm, unsigned long mb_id)
{
	lockdep_assert_held(&vm->hotplug_mutex);
	return virtio_mem_sbm_hold_test(&vm->hold, mb_id);
}

void virtio_mem_mm_hold_end(struct virtio_mem *vm)
{
	struct vmh *h = to_vmh(vm);

	mutex_lock(&vm->hotplug_mutex);
	if (!vm->hold.active)
		vmh_fail(h, "hold_end without hold_begin");
	vm->hold.active = false;
	while (vm->hold.nr && !vmh_break("hold"))
		vmh_release_mb(h, vm->hold.mb_ids[--vm->hold.nr]);
	mutex_unlock(&vm->hotplug_mutex);
}

/* Online: memory notifier + online_page callback, see the top comment. */
static void vmh_mm_online(struct vmh *h, unsigned long mb_id, bool movable)
{
	struct virtio_mem *vm = &h->vm;
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	enum virtio_mem_sbm_mb_state state;
	bool hold;
	unsigned long sb;

	/* MEM_GOING_ONLINE */
	mutex_lock(&vm->hotplug_mutex);
	hold = vm->hold.active && !movable &&
	       virtio_mem_sbm_hold_add(&vm->hold, mb_id);
	/* online_pages() -> online_page callback, per subblock past the memmap */
	for (sb = vm->sbm.memmap_sbs; sb < vmh_sbs_per_mb(h) && !hold; sb++) {
		u8 *b = vmh_buddy(h, mb_id, sb);

		if (!virtio_mem_sbm_test_sb_plugged(&vm->sbm, mb_id, sb, 1) &&
		    !vmh_break("online_page"))
			continue;
		if (*b)
			vmh_fail(h, "onlining mb %lu: subblock %lu already in the buddy",
				 mb_id, sb);
		*b = 1;
		*vmh_used(h, mb_id, sb) = vmh_pct(h) < h->mm.used_pct;
	}
	mb->online = true;
	mb->movable = movable;
	h->mm.nr_onlines++;
	/* MEM_ONLINE */
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	if (!WARN_ON_ONCE(!virtio_mem_sbm_state_added(state)))
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    virtio_mem_sbm_state_for(&vm->sbm,
								     mb_id,
								     true,
								     movable));
	mutex_unlock(&vm->hotplug_mutex);
	virtio_mem_retry(vm);
}

/* Offline: may fail (pages that cannot be migrated). */
static int vmh_mm_offline(struct vmh *h, unsigned long mb_id, bool may_fail)
{
	struct virtio_mem *vm = &h->vm;
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	enum virtio_mem_sbm_mb_state state;
	unsigned long sb;

	/* MEM_GOING_OFFLINE */
	mutex_lock(&vm->hotplug_mutex);
	if (virtio_mem_sbm_hold_forget(&vm->hold, mb_id))
		vmh_release_mb(h, mb_id);
	if (may_fail && h->mm.offline_fail_pct &&
	    vmh_pct(h) < h->mm.offline_fail_pct) {
		/* MEM_CANCEL_OFFLINE; or the driver's time for it ran out. */
		mutex_unlock(&vm->hotplug_mutex);
		return vmh_pct(h) < 50 ? -EINTR : -EBUSY;
	}
	for (sb = 0; sb < vmh_sbs_per_mb(h); sb++) {
		*vmh_buddy(h, mb_id, sb) = 0;
		*vmh_used(h, mb_id, sb) = 0;
	}
	mb->online = false;
	mb->movable = false;
	h->mm.nr_offlines++;
	/* MEM_OFFLINE */
	state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
	if (!WARN_ON_ONCE(!virtio_mem_sbm_state_added(state)))
		virtio_mem_sbm_set_mb_state(&vm->sbm, mb_id,
					    virtio_mem_sbm_state_for(&vm->sbm,
								     mb_id,
								     false,
								     false));
	mutex_unlock(&vm->hotplug_mutex);
	return 0;
}

int vmh_user_online(struct vmh *h, unsigned long mb_id, bool movable)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);

	if (!mb || !mb->added || mb->online)
		return -EINVAL;
	if (h->vm.hotplug_mutex.held) {
		vmh_fail(h, "harness: onlining with the hotplug mutex held");
		return -EDEADLK;
	}
	vmh_mm_online(h, mb_id, movable);
	return 0;
}

int vmh_user_offline(struct vmh *h, unsigned long mb_id)
{
	struct vmh_mb *mb = vmh_mb(h, mb_id);

	if (!mb || !mb->added || !mb->online)
		return -EINVAL;
	if (h->vm.hotplug_mutex.held) {
		vmh_fail(h, "harness: offlining with the hotplug mutex held");
		return -EDEADLK;
	}
	return vmh_mm_offline(h, mb_id, true);
}

/* User space onlines or offlines one added block, at random. */
void vmh_user_event(struct vmh *h)
{
	unsigned long nr = vmh_mm_nr(h), i, start, mb_id;
	struct vmh_mb *mb;

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

int virtio_mem_mm_add_mb(struct virtio_mem *vm, unsigned long mb_id)
{
	struct vmh *h = to_vmh(vm);
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	enum virtio_mem_sbm_mb_state state;
	bool movable;
	int err;

	lockdep_assert_not_held(&vm->hotplug_mutex);
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
	if (!vm->sbm.memmap_sbs && virtio_mem_mm_kernel_free() <
	    virtio_mem_mm_memmap_size(h->p.mb_size)) {
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
	mb->added = !vmh_break("added");
	h->mm.nr_adds++;

	switch (h->mm.online) {
	case VMH_ONLINE_NONE:
		return 0;
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
	vmh_mm_online(h, mb_id, movable);
	return 0;
}

int virtio_mem_mm_remove_mb(struct virtio_mem *vm, unsigned long mb_id)
{
	struct vmh *h = to_vmh(vm);
	struct vmh_mb *mb = vmh_mb(h, mb_id);

	lockdep_assert_not_held(&vm->hotplug_mutex);
	if (!mb || !mb->added) {
		vmh_fail(h, "remove of mb %lu, which is not added", mb_id);
		return -EINVAL;
	}
	if (mb->online)
		return -EBUSY;
	mb->added = false;
	return 0;
}

/* User space never onlines or offlines while the worker runs here. */
bool virtio_mem_mm_busy(struct virtio_mem *vm, unsigned long mb_id,
			unsigned long nr)
{
	lockdep_assert_held(&vm->hotplug_mutex);
	return false;
}

int virtio_mem_mm_offline_and_remove_mb(struct virtio_mem *vm,
					unsigned long mb_id)
{
	struct vmh *h = to_vmh(vm);
	struct vmh_mb *mb = vmh_mb(h, mb_id);
	int rc;

	lockdep_assert_not_held(&vm->hotplug_mutex);
	if (!mb || !mb->added) {
		vmh_fail(h, "offline_and_remove of mb %lu, which is not added",
			 mb_id);
		return -EINVAL;
	}
	if (mb->online) {
		rc = vmh_mm_offline(h, mb_id, true);
		if (rc)
			return rc;
	}
	mb->added = false;
	return 0;
}

/* The only way plugged pages of an online block reach the buddy later. */
void virtio_mem_mm_fake_online(unsigned long pfn, unsigned long nr_pages)
{
	struct vmh *h = vmh_cur;
	const u64 sb_size = vmh_sb_size(h);
	const unsigned long sb_pages = PHYS_PFN(sb_size);
	u64 addr = PFN_PHYS(pfn);
	unsigned long mb_id, sb_id, i;
	struct vmh_mb *mb;

	if (!nr_pages || pfn % sb_pages || nr_pages % sb_pages) {
		vmh_fail(h, "fake_online(pfn 0x%lx, %lu pages): not whole subblocks",
			 pfn, nr_pages);
		return;
	}
	for (i = 0; i < nr_pages / sb_pages; i++, addr += sb_size) {
		mb_id = addr / h->p.mb_size;
		sb_id = (addr % h->p.mb_size) / sb_size;
		mb = vmh_mb(h, mb_id);
		if (!mb || !mb->added || !mb->online) {
			vmh_fail(h, "fake_online of 0x%llx: its memory block is not online",
				 (unsigned long long)addr);
			return;
		}
		if (!virtio_mem_sbm_test_sb_plugged(&h->vm.sbm, mb_id, sb_id, 1)) {
			vmh_fail(h, "fake_online of 0x%llx: subblock not plugged",
				 (unsigned long long)addr);
			return;
		}
		if (*vmh_buddy(h, mb_id, sb_id)) {
			vmh_fail(h, "fake_online of 0x%llx: already in the buddy",
				 (unsigned long long)addr);
			return;
		}
		*vmh_buddy(h, mb_id, sb_id) = !vmh_break("fake_online");
		*vmh_used(h, mb_id, sb_id) = 0;
		h->mm.nr_fake_online_sbs++;
	}
}

/* Resolve a subblock-aligned run of pages to the model's subblocks. */
static bool vmh_sb_range(struct vmh *h, const char *what, unsigned long pfn,
			 unsigned long nr_pages, unsigned long *mb_id,
			 unsigned long *sb_id, unsigned long *nr_sbs)
{
	const u64 sb_size = vmh_sb_size(h);
	const unsigned long sb_pages = PHYS_PFN(sb_size);
	u64 addr = PFN_PHYS(pfn);

	*mb_id = addr / h->p.mb_size;
	*sb_id = (addr % h->p.mb_size) / sb_size;
	*nr_sbs = nr_pages / sb_pages;
	if (!nr_pages || pfn % sb_pages || nr_pages % sb_pages ||
	    *sb_id + *nr_sbs > vmh_sbs_per_mb(h) || !vmh_mb(h, *mb_id)) {
		vmh_fail(h, "%s(pfn 0x%lx, %lu pages): not whole subblocks of one block in the region",
			 what, pfn, nr_pages);
		return false;
	}
	return true;
}

/* MemAvailable, as far as the device's memory is concerned. */
u64 virtio_mem_mm_available(void)
{
	struct vmh *h = vmh_cur;
	unsigned long i, n = vmh_mm_nr(h) * vmh_sbs_per_mb(h), nr = 0;

	for (i = 0; i < n; i++)
		nr += h->mm.buddy[i] && !h->mm.used[i];
	return h->mm.avail_base + nr * vmh_sb_size(h);
}

/* sizeof(struct page) on x86-64. */
#define VMH_STRUCT_PAGE	64

u64 virtio_mem_mm_memmap_size(u64 size)
{
	return PHYS_PFN(size) * VMH_STRUCT_PAGE;
}

/*
 * Free kernel-zone memory: what is free outside the device, less the
 * memmap of every block added, plus free subblocks of our blocks online
 * in a kernel zone.
 */
u64 virtio_mem_mm_kernel_free(void)
{
	struct vmh *h = vmh_cur;
	const u64 memmap = virtio_mem_mm_memmap_size(h->p.mb_size);
	unsigned long i, sb, nr_sbs = vmh_sbs_per_mb(h);
	u64 free = h->mm.kernel_free_base;

	for (i = 0; i < vmh_mm_nr(h); i++) {
		if (!h->mm.mbs[i].added)
			continue;
		if (!h->vm.sbm.memmap_sbs)
			free = free > memmap ? free - memmap : 0;
		if (!h->mm.mbs[i].online || h->mm.mbs[i].movable)
			continue;
		for (sb = 0; sb < nr_sbs; sb++)
			if (h->mm.buddy[i * nr_sbs + sb] &&
			    !h->mm.used[i * nr_sbs + sb])
				free += vmh_sb_size(h);
	}
	return free;
}

u64 virtio_mem_unplug_floor(void)
{
	return vmh_cur->mm.floor;
}

bool virtio_mem_unplug_online = true;

bool virtio_mem_mm_range_free(unsigned long pfn, unsigned long nr_pages)
{
	struct vmh *h = vmh_cur;
	unsigned long mb_id, sb_id, nr, i;

	if (!vmh_sb_range(h, "range_free", pfn, nr_pages, &mb_id, &sb_id, &nr))
		return false;
	for (i = 0; i < nr; i++)
		if (!*vmh_buddy(h, mb_id, sb_id + i) ||
		    *vmh_used(h, mb_id, sb_id + i))
			return false;
	return true;
}

/* alloc_contig_range() on plugged memory of an online block. */
int virtio_mem_mm_fake_offline(unsigned long pfn, unsigned long nr_pages)
{
	struct vmh *h = vmh_cur;
	unsigned long mb_id, sb_id, nr, i;
	struct vmh_mb *mb;
	u64 avail;

	if (!vmh_sb_range(h, "fake_offline", pfn, nr_pages, &mb_id, &sb_id, &nr))
		return -EINVAL;
	mb = vmh_mb(h, mb_id);
	if (!mb->added || !mb->online) {
		vmh_fail(h, "fake_offline of mb %lu sb %lu: block not online",
			 mb_id, sb_id);
		return -EINVAL;
	}
	avail = virtio_mem_mm_available();
	if (h->mm.floor && avail < PFN_PHYS(nr_pages) + h->mm.floor)
		vmh_fail(h, "fake_offline of 0x%llx bytes with 0x%llx available: below the OOM guard's floor 0x%llx",
			 (unsigned long long)PFN_PHYS(nr_pages),
			 (unsigned long long)avail,
			 (unsigned long long)h->mm.floor);
	for (i = 0; i < nr; i++) {
		if (!virtio_mem_sbm_test_sb_plugged(&h->vm.sbm, mb_id,
						    sb_id + i, 1) ||
		    !*vmh_buddy(h, mb_id, sb_id + i)) {
			vmh_fail(h, "fake_offline of mb %lu sb %lu: not plugged or not in the buddy",
				 mb_id, sb_id + i);
			return -EINVAL;
		}
		if (*vmh_used(h, mb_id, sb_id + i) && h->mm.unmovable_pct &&
		    vmh_pct(h) < h->mm.unmovable_pct)
			return -EBUSY;
	}
	for (i = 0; i < nr; i++) {
		*vmh_buddy(h, mb_id, sb_id + i) = vmh_break("fake_offline");
		*vmh_used(h, mb_id, sb_id + i) = 0;
		h->mm.nr_fake_offline_sbs++;
	}
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
	h->mm.buddy = calloc(vmh_mm_nr(h) * vmh_sbs_per_mb(h), 1);
	h->mm.used = calloc(vmh_mm_nr(h) * vmh_sbs_per_mb(h), 1);
	vmh_cur = h;
	return d->plugged && h->mm.mbs && h->mm.buddy && h->mm.used ? 0 :
								      -ENOMEM;
}

void vmh_exit(struct vmh *h)
{
	if (h->probed)
		vmh_remove(h);
	free(h->dev.plugged);
	free(h->mm.mbs);
	free(h->mm.buddy);
	free(h->mm.used);
	h->mm.used = NULL;
	h->dev.plugged = NULL;
	h->mm.mbs = NULL;
	h->mm.buddy = NULL;
	if (vmh_cur == h)
		vmh_cur = NULL;
}

/* virtio_mem_init(), minus what only the kernel has. */
int vmh_probe(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;
	struct virtio_mem_limits limits = {
		.mb_size = h->p.mb_size,
		.pageblock_size = h->p.pageblock_size,
		.pluggable_start = h->p.pluggable_start,
		.pluggable_end = h->p.pluggable_end,
	};
	struct virtio_mem_cfg_problem problem;
	int rc;

	/* An injected allocation fault is meant for the worker. */
	kstub_fail_allocs = 0;
	memset(vm, 0, sizeof(*vm));
	vm->vdev = &h->vdev;
	mutex_init(&vm->hotplug_mutex);
	virtio_mem_read_config(vm, &vm->cfg);
	rc = virtio_mem_cfg_check(&vm->cfg, PAGE_SIZE, &problem);
	if (!rc)
		rc = virtio_mem_geo_init(&vm->geo, &vm->cfg, &limits, &problem);
	if (rc)
		return rc;
	vm->offline_limit = virtio_mem_offline_limit(&vm->geo, SZ_1G);
	vm->unplug_all_required = vm->cfg.plugged_size != 0;
	rc = virtio_mem_sbm_init(&vm->sbm, vm->geo.first_mb_id,
				 vm->geo.last_mb_id, vm->geo.sbs_per_mb);
	if (rc)
		return rc;
	vm->hotplug_mb = VIRTIO_MEM_MM_NO_MB;
	vm->sbm_sweep_failed = kvcalloc(BITS_TO_LONGS(vm->geo.last_mb_id -
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
	h->probed = true;
	h->expect_broken = false;
	h->fc_race_error = false;
	if (vm->cfg.requested_size || vm->unplug_all_required)
		h->work_pending = true;
	return 0;
}

/* virtio_mem_remove(), minus what only the kernel has. */
void vmh_remove(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;

	h->work_pending = false;
	h->retry_pending = false;
	vm->removing = true;
	virtio_mem_sbm_remove_all(vm);
	if (!vmh_break("leak")) {
		kvfree(vm->sbm_sweep_failed);
		virtio_mem_sbm_destroy(&vm->sbm);
	}
	h->probed = false;
}

static int vmh_resize(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;
	struct virtio_mem_cfg_problem problem;
	struct virtio_mem_cfg cfg;
	u64 plugged, requested;
	int rc;

	virtio_mem_read_config(vm, &cfg);
	if (virtio_mem_cfg_check_update(&vm->cfg, &cfg, &problem))
		return -EIO;
	vm->cfg = cfg;

	if (vm->unplug_all_required) {
		rc = virtio_mem_send_unplug_all(vm);
		if (rc)
			return rc == -EPERM ? -EIO : rc;
		vm->unplug_all_required = false;
		return -EAGAIN;
	}
	rc = virtio_mem_sbm_readd_plugged(vm);
	if (rc)
		return rc;
	requested = min(vm->cfg.requested_size, vm->cfg.usable_region_size);
	mutex_lock(&vm->hotplug_mutex);
	plugged = (u64)vm->sbm.nr_sbs_plugged * vm->geo.sb_size;
	mutex_unlock(&vm->hotplug_mutex);
	if (requested > plugged) {
		virtio_mem_set_why(vm, VIRTIO_MEM_WHY_WORKING);
		return virtio_mem_sbm_plug(vm, requested - plugged);
	}
	if (requested < plugged) {
		virtio_mem_set_why(vm, VIRTIO_MEM_WHY_WORKING);
		h->unplugging = true;
		rc = virtio_mem_sbm_unplug(vm, plugged - requested);
		h->unplugging = false;
		return rc;
	}
	return 0;
}

void vmh_run_worker(struct vmh *h)
{
	struct virtio_mem *vm = &h->vm;
	enum virtio_mem_why why;
	unsigned int loops = 0;
	int rc;

	h->work_pending = false;
	if (!h->probed || vm->broken)
		return;
	h->retry_pending = false;	/* hrtimer_cancel() */
again:
	atomic_set(&vm->config_changed, 0);
	rc = vmh_resize(h);
	if (getenv("VMH_TRACE"))
		fprintf(stderr, " worker pass: %d\n", rc);
	h->last_rc = rc;
	/* Drivers built without unplug answer like unplug_online=0. */
	if (rc == -EOPNOTSUPP)
		rc = -EACCES;
	/* The driver's own retry policy, not a copy of it. */
	switch (virtio_mem_decide(rc, &why)) {
	case VIRTIO_MEM_NEXT_AGAIN:
		if (++loops > 1000) {
			vmh_fail(h, "worker: -EAGAIN 1000 times in a row");
			return;
		}
		goto again;
	case VIRTIO_MEM_NEXT_WAIT:
		/* Done must mean done, as far as subblocks allow. */
		if (!rc && !atomic_read(&vm->config_changed)) {
			u64 want = min(vm->cfg.requested_size,
				       vm->cfg.usable_region_size);
			u64 have = vmh_drv_plugged(h);

			if ((want > have && want - have >= vm->geo.sb_size) ||
			    (have > want && have - want >= vm->geo.sb_size))
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
	virtio_mem_set_why(vm, why);
}
