// SPDX-License-Identifier: GPL-2.0
/*
 * Model-based random sequences: the driver's virtio_mem_sbm_plug() under a
 * minimal copy of its worker, against the device and core-mm models, with
 * host resizes, usable-region growth, user space onlining and offlining,
 * injected faults, and driver reloads. Every invariant in check.c is
 * checked after every step.
 *
 *   vmrandom [-s SEED] [-n STEPS] [-r RUNS] [-v]
 *   (or VMH_SEED, VMH_STEPS, VMH_RUNS in the environment)
 *
 * Each run has its own seed, printed; "-s <run seed> -r 1" replays it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

static const char *const host_names[] = { "qemu", "ch", "firecracker" };
static const char *const online_names[] = {
	"none", "online_kernel", "online_movable", "auto-mixed"
};

static int verbose;
/* -x fcrace: no host resizes mid-request on Firecracker (see README). */
static bool no_fc_race;

struct run_stats {
	unsigned long steps, worker_runs, resizes, user_events, faults;
	unsigned long reprobes, instances, races;
};

static u64 mix(u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A scenario: host, online policy, geometry, fault rates. */
static void pick_params(struct vmh *h, struct vmh_params *p)
{
	static const u64 bss[] = { SZ_1M, 2 * SZ_1M, 4 * SZ_1M };
	u64 nr_mbs;

	vmh_default_params(p);
	p->host = vmh_rand(h) % VMH_NR_HOSTS;
	p->online = vmh_rand(h) % VMH_NR_ONLINE;
	p->block_size = bss[vmh_rand(h) % 3];
	nr_mbs = vmh_rand_range(h, 2, 40);
	p->addr = 4 * SZ_1G;
	if (vmh_pct(h) < 30)	/* a region that starts mid memory block */
		p->addr += vmh_rand_range(h, 1, 63) * p->block_size;
	p->region_size = nr_mbs * p->mb_size;
	if (vmh_pct(h) < 30)	/* ... or ends mid memory block */
		p->region_size += vmh_rand_range(h, 1, 63) * p->block_size;
	/*
	 * Linux can hot-add only part of it, but at least one whole memory
	 * block: with none, probe refuses the device (a table test checks that).
	 */
	if (vmh_pct(h) < 15)
		p->pluggable_end = max(p->addr + p->region_size / 2,
				       round_up(p->addr, p->mb_size) + p->mb_size) - 1;
	p->requested_size = vmh_pct(h) < 50 ? 0 :
		round_down(vmh_rand_range(h, 0, p->region_size), p->block_size);
	if (p->host == VMH_CH)
		p->usable_region_size = p->region_size;
	else
		p->usable_region_size = min(p->region_size,
					    round_up(p->requested_size + p->mb_size,
						     p->block_size));
	if (vmh_pct(h) < 15)	/* left plugged from before: C4 */
		p->plugged_size = round_down(vmh_rand_range(h, 1,
						p->usable_region_size),
					     p->block_size);
	p->memmap_on_memory = vmh_pct(h) < 50;
	/*
	 * Big Block Mode in a third of the runs: device blocks of a memory
	 * block or more, or force_bbm with small ones; big blocks of 1..4
	 * memory blocks, some of them over the 1 GiB offline limit.
	 */
	if (vmh_pct(h) < 33) {
		static const u64 mbs[] = { 128 * SZ_1M, 512 * SZ_1M, 512 * SZ_1M };
		u64 nr_bbs = vmh_rand_range(h, 2, 4), bb;

		p->mb_size = mbs[vmh_rand(h) % 3];
		p->pluggable_end = (1ULL << 46) - 1;
		if (vmh_pct(h) < 50) {
			p->force_bbm = true;
			p->block_size = bss[vmh_rand(h) % 3];
		} else {
			p->block_size = p->mb_size << vmh_rand_range(h, 0, 1);
		}
		p->bb_size = vmh_pct(h) < 50 ? 0 :
			     p->mb_size << vmh_rand_range(h, 1, 2);
		if (p->bb_size && p->bb_size < p->block_size)
			p->bb_size = p->block_size;
		bb = p->bb_size ? p->bb_size :
		     max(p->block_size, p->mb_size);
		p->addr = round_up(4 * SZ_1G, bb);
		p->region_size = nr_bbs * bb;
		p->requested_size = vmh_pct(h) < 50 ? 0 :
			round_down(vmh_rand_range(h, 0, p->region_size),
				   p->block_size);
		if (p->host == VMH_CH)
			p->usable_region_size = p->region_size;
		else
			p->usable_region_size = min(p->region_size,
						    round_up(p->requested_size + bb,
							     p->block_size));
		p->plugged_size = 0;
		if (vmh_pct(h) < 15)
			p->plugged_size = round_down(vmh_rand_range(h, 1,
							p->usable_region_size),
						     p->block_size);
		p->fc_slot = max(p->fc_slot, p->block_size);
	}
	p->qemu_extra = vmh_rand_range(h, 0, 4) * 64 * SZ_1M;
	p->fc_slot = (vmh_rand_range(h, 0, 2) ? 128 : 32) * SZ_1M;
}

static void pick_rates(struct vmh *h)
{
	h->dev.busy_pct = h->p.host == VMH_QEMU ? vmh_rand_range(h, 0, 5) : 0;
	h->dev.midop_pct = vmh_rand_range(h, 0, 8);
	if (no_fc_race && h->p.host == VMH_FC)
		h->dev.midop_pct = 0;
	h->mm.user_pct = vmh_rand_range(h, 0, 30);
	h->mm.add_fail_pct = vmh_rand_range(h, 0, 5);
	h->mm.offline_fail_pct = vmh_rand_range(h, 0, 30);
	h->mm.refuse_pct = vmh_rand_range(h, 0, 10);
	h->mm.inflight_pct = vmh_rand_range(h, 0, 30);
	h->mm.race_remove_pct = vmh_rand_range(h, 0, 50);
	h->mm.used_pct = vmh_rand_range(h, 0, 80);
	h->mm.unmovable_pct = vmh_rand_range(h, 0, 20);
	h->mm.avail_base = vmh_rand_range(h, 0, 8) * 64 * SZ_1M;
	h->mm.floor = vmh_pct(h) < 50 ? 0 : vmh_rand_range(h, 1, 4) * 64 * SZ_1M;
	virtio_mem_unplug_online = vmh_pct(h) < 80;
	/* A small guest: the memmap of a few blocks exhausts it. */
	if (vmh_pct(h) < 20)
		h->mm.kernel_free_base = vmh_rand_range(h, 0, 16) * SZ_1M;
}

static void describe(const struct vmh *h, char *buf, size_t len)
{
	snprintf(buf, len,
		 "%s mb=%lluM bb=%lluM host=%s online=%s%s bs=%lluM addr=0x%llx region=0x%llx usable=0x%llx requested=0x%llx plugged=0x%llx pluggable_end=0x%llx",
		 h->p.force_bbm || h->p.block_size >= h->p.mb_size ? "bbm" : "sbm",
		 (unsigned long long)(h->p.mb_size >> 20),
		 (unsigned long long)(h->p.bb_size >> 20),
		 host_names[h->p.host], online_names[h->p.online],
		 h->p.memmap_on_memory ? " memmap_on_memory" : "",
		 (unsigned long long)(h->p.block_size >> 20),
		 (unsigned long long)h->p.addr,
		 (unsigned long long)h->p.region_size,
		 (unsigned long long)h->p.usable_region_size,
		 (unsigned long long)h->p.requested_size,
		 (unsigned long long)h->p.plugged_size,
		 (unsigned long long)h->p.pluggable_end);
}

static void inject_fault(struct vmh *h, struct run_stats *st)
{
	unsigned int r = vmh_pct(h);

	st->faults++;
	if (r < 25)
		h->dev.nack_next++;
	else if (r < 45)
		h->dev.busy_next++;
	else if (r < 65)
		h->mm.add_fail_next++;
	else if (r < 75) {
		/* A notifier before ours refuses the next transition. */
		if (r & 1)
			h->mm.refuse_next_online++;
		else
			h->mm.refuse_next_offline++;
	} else if (r < 97)
		kstub_fail_allocs = 1;
	else
		h->dev.error_next++;
}

static void host_resize(struct vmh *h, struct run_stats *st)
{
	const u64 region = h->dev.cfg.region_size, bs = h->dev.cfg.block_size;
	u64 req = h->dev.cfg.requested_size, n;
	unsigned int r = vmh_pct(h);

	st->resizes++;
	n = vmh_rand_range(h, 1, 200) * bs;
	if (r < 55)
		req = req + n > region ? region : req + n;
	else if (r < 80)
		req = req > n ? req - n : 0;
	else
		req = vmh_rand_range(h, 0, region);
	vmh_host_resize(h, req);
}

/* Driver reload: remove (gives back what it can), then probe again. */
static bool reprobe(struct vmh *h, struct run_stats *st)
{
	unsigned long i, nr = (h->p.addr + h->p.region_size - 1) / h->p.mb_size -
			      h->p.addr / h->p.mb_size + 1;
	int rc;

	st->reprobes++;
	vmh_remove(h);
	if (kstub_live_allocs)
		vmh_fail(h, "remove: %lu driver allocations left", kstub_live_allocs);
	for (i = 0; i < nr; i++)
		if (h->mm.mbs[i].added)
			return false;	/* Linux kept some: no reload */
	rc = vmh_probe(h);
	if (rc)
		vmh_fail(h, "re-probe failed: %d", rc);
	return true;
}

/* One run: a scenario and its instances, @steps steps in all. */
static bool one_run(u64 seed, unsigned long steps, struct run_stats *st)
{
	struct vmh *h = calloc(1, sizeof(*h));
	struct vmh_params p;
	char desc[512];
	unsigned long step, i, nr;
	u64 rng = seed;
	bool ok = true;
	int rc;

	h->rng = seed;
	pick_params(h, &p);
	rng = h->rng;
	rc = vmh_init(h, &p, rng);
	describe(h, desc, sizeof(desc));
	if (!rc)
		rc = vmh_probe(h);
	if (rc) {
		printf("# seed 0x%016" PRIx64 ": probe refused the scenario (%d): %s\n",
		       seed, rc, desc);
		vmh_exit(h);
		free(h);
		return false;
	}
	pick_rates(h);
	st->instances++;
	if (verbose)
		printf("# %s\n", desc);

	for (step = 0; step < steps && ok; step++) {
		unsigned int r = vmh_pct(h);

		st->steps++;
		if (getenv("VMH_TRACE"))
			fprintf(stderr, "step %lu: r=%u\n", step, r);
		if (r < 30) {
			if (h->work_pending || (h->retry_pending && vmh_pct(h) < 50)) {
				st->worker_runs++;
				vmh_run_worker(h);
			}
		} else if (r < 45) {
			host_resize(h, st);
		} else if (r < 50) {
			vmh_host_grow_usable(h, h->dev.cfg.usable_region_size +
					     vmh_rand_range(h, 1, 64) *
					     h->dev.cfg.block_size);
		} else if (r < 65) {
			st->user_events++;
			vmh_user_event(h);
		} else if (r < 75) {
			inject_fault(h, st);
		} else if (r < 76) {
			/*
			 * Remove while a transition is in flight: its quiesce
			 * must wait for it (the wait stub ends it).
			 */
			if (vmh_pct(h) < 50) {
				unsigned int pct = h->mm.inflight_pct;

				h->mm.inflight_pct = 100;
				vmh_user_event(h);
				h->mm.inflight_pct = pct;
				st->races++;
			}
			if (!reprobe(h, st)) {
				vmh_exit(h);
				vmh_init(h, &p, vmh_rand(h));
				vmh_probe(h);
				pick_rates(h);
				st->instances++;
			}
		} else {
			st->worker_runs++;
			vmh_run_worker(h);
		}
		if (vmh_check(h) && h->vm.broken) {
			/* An injected ERROR: the driver gave up, as it must. */
			u64 next = vmh_rand(h);

			vmh_exit(h);
			vmh_init(h, &p, next);
			vmh_probe(h);
			pick_rates(h);
			st->instances++;
		}
		ok = !h->failures;
	}
	if (ok)
		ok = vmh_settle(h);
	if (ok) {
		/* Unload with nothing in the way: everything goes back. */
		h->mm.offline_fail_pct = 0;
		vmh_remove(h);
		nr = (h->p.addr + h->p.region_size - 1) / h->p.mb_size -
		     h->p.addr / h->p.mb_size + 1;
		for (i = 0; i < nr; i++)
			if (h->mm.mbs[i].added)
				vmh_fail(h, "unload: mb %lu still added",
					 h->p.addr / h->p.mb_size + i);
		if (vmh_dev_plugged(h))
			vmh_fail(h, "unload: 0x%llx bytes still plugged",
				 (unsigned long long)vmh_dev_plugged(h));
		if (kstub_live_allocs)
			vmh_fail(h, "unload: %lu driver allocations left",
				 kstub_live_allocs);
		ok = vmh_check(h);
	}
	if (!ok) {
		printf("# seed 0x%016" PRIx64 " failed at step %lu: %s\n", seed,
		       step, h->failure);
		printf("#   scenario: %s\n", desc);
		if (h->probed)
			vmh_dump(h, stdout);
		printf("#   replay: vmrandom -s 0x%016" PRIx64 " -r 1 -n %lu\n",
		       seed, steps);
	}
	vmh_exit(h);
	free(h);
	kstub_fail_allocs = 0;
	kstub_live_allocs = 0;
	return ok;
}

int main(int argc, char **argv)
{
	unsigned long steps = 2000, runs = 8, r, passed = 0, failed = 0;
	struct run_stats st = { 0 };
	u64 seed = 0;
	bool have_seed = false;
	const char *env;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((env = getenv("VMH_SEED"))) {
		seed = strtoull(env, NULL, 0);
		have_seed = true;
	}
	if ((env = getenv("VMH_STEPS")))
		steps = strtoul(env, NULL, 0);
	if ((env = getenv("VMH_RUNS")))
		runs = strtoul(env, NULL, 0);
	while ((c = getopt(argc, argv, "s:n:r:vx:")) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 'n':
			steps = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			runs = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'x':
			if (!strcmp(optarg, "fcrace")) {
				no_fc_race = true;
				break;
			}
			fprintf(stderr, "unknown -x %s\n", optarg);
			return 2;
		default:
			fprintf(stderr, "usage: %s [-s seed] [-n steps] [-r runs] [-v] [-x fcrace]\n",
				argv[0]);
			return 2;
		}
	}
	if (!have_seed)
		seed = mix((u64)time(NULL) ^ ((u64)getpid() << 32));
	printf("# random sequences: seed 0x%016" PRIx64 ", %lu runs of %lu steps\n",
	       seed, runs, steps);
	for (r = 0; r < runs; r++) {
		/* Run 0 uses the seed itself, so a printed run seed replays. */
		u64 run_seed = r ? mix(seed + r) : seed;
		bool ok = one_run(run_seed, steps, &st);

		printf("%s %lu - random run seed=0x%016" PRIx64 "\n",
		       ok ? "ok" : "not ok", r + 1, run_seed);
		if (ok)
			passed++;
		else
			failed++;
	}
	printf("# %lu steps, %lu worker passes, %lu resizes, %lu user on/offline, %lu faults, %lu reloads, %lu driver instances\n",
	       st.steps, st.worker_runs, st.resizes, st.user_events, st.faults,
	       st.reprobes, st.instances);
	printf("# %lu removes with a transition in flight\n", st.races);
	printf("# note: %lu fresh (PageDirty) pages reached the buddy through free_contig_range()\n",
	       vmh_dirty_freed);
	printf("# random: %lu passed, %lu failed\n", passed, failed);
	return failed ? 1 : 0;
}
