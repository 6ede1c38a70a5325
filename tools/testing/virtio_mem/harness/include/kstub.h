/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace stand-ins for the few kernel interfaces that the driver's
 * state, policy and SBM files (and struct virtio_mem) use. Every stub
 * header under include/linux/ includes just this file, so the driver's
 * own sources build unchanged. Written for this harness; shapes only.
 *
 * What is not a plain stand-in:
 *  - WARN_ON*() record a warning; the harness fails any test that warns.
 *  - kvzalloc()/kvcalloc() fail on demand (kstub_fail_allocs).
 *  - struct mutex knows whether it is held: lockdep_assert_held() and
 *    lockdep_assert_not_held() check it, double locks fail the test.
 *  - min()/max() refuse operands of different types, as 6.1's do.
 */
#ifndef _KSTUB_H
#define _KSTUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

/* Kernel headers such as mm.h bring the errno values along. */
#include <linux/errno.h>

/* ---- types ---- */
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef uint16_t __le16;
typedef uint32_t __le32;
typedef uint64_t __le64;
typedef uint16_t __virtio16;
typedef uint32_t __virtio32;
typedef uint64_t __virtio64;
typedef u64 phys_addr_t;
typedef unsigned int gfp_t;

#define U16_MAX		((u16)~0U)
#define U32_MAX		((u32)~0U)
#define U64_MAX		((u64)~0ULL)
#define BITS_PER_LONG	(8 * (int)sizeof(long))
#define GFP_KERNEL	0U

/* ---- compiler, kernel.h ---- */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define BUILD_BUG_ON(c)	_Static_assert(!(c), #c)
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define __always_unused	__attribute__((unused))

#define __kstub_cmp(a, b, op) ({			\
	__typeof__(a) __a = (a);			\
	__typeof__(b) __b = (b);			\
	(void)(&__a == &__b);				\
	__a op __b ? __a : __b; })
#define min(a, b)	__kstub_cmp(a, b, <)
#define max(a, b)	__kstub_cmp(a, b, >)
#define min_t(t, a, b)	({ t __x = (a); t __y = (b); __x < __y ? __x : __y; })
#define max_t(t, a, b)	({ t __x = (a); t __y = (b); __x > __y ? __x : __y; })

#define round_up(x, y)		((((x) - 1) | ((__typeof__(x))((y) - 1))) + 1)
#define round_down(x, y)	((x) & ~((__typeof__(x))((y) - 1)))
#define IS_ALIGNED(x, a)	(((x) & ((__typeof__(x))(a) - 1)) == 0)

static inline bool is_power_of_2(unsigned long n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

static inline u64 div64_u64(u64 a, u64 b)
{
	return a / b;
}

/* ---- pages ---- */
#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PHYS_PFN(x)	((unsigned long)((x) >> PAGE_SHIFT))
#define PFN_PHYS(x)	((phys_addr_t)(x) << PAGE_SHIFT)

/* ---- bug.h: a warning is a test failure ---- */
extern unsigned long kstub_warnings;
extern bool kstub_warn_quiet;	/* a test expects warnings: do not print */
void kstub_warn(const char *file, int line, const char *cond);
#define WARN_ON(c) ({						\
	bool __c = !!(c);					\
	if (__c)						\
		kstub_warn(__FILE__, __LINE__, #c);		\
	__c; })
#define WARN_ON_ONCE(c)	WARN_ON(c)

/* ---- slab.h: allocations that can be made to fail ---- */
extern unsigned long kstub_fail_allocs;	/* fail the next N allocations */
extern unsigned long kstub_fail_nth;	/* fail only the Nth from now (1 = next) */
extern unsigned long kstub_live_allocs;
void *kvzalloc(size_t size, gfp_t gfp);
void *kvcalloc(size_t n, size_t size, gfp_t gfp);
void *kzalloc(size_t size, gfp_t gfp);
void *kvmalloc_array(size_t n, size_t size, gfp_t gfp);
void kvfree(const void *p);
void kfree(const void *p);

/* ---- bitops.h, bitmap.h ---- */
#define BITS_TO_LONGS(n)	(((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)
unsigned long find_next_bit(const unsigned long *map, unsigned long size,
			    unsigned long offset);
unsigned long find_next_zero_bit(const unsigned long *map, unsigned long size,
				 unsigned long offset);
void bitmap_set(unsigned long *map, unsigned int start, unsigned int nr);
void bitmap_clear(unsigned long *map, unsigned int start, unsigned int nr);
void bitmap_copy(unsigned long *dst, const unsigned long *src,
		 unsigned int nbits);
static inline bool test_bit(unsigned long nr, const unsigned long *map)
{
	return (map[nr / BITS_PER_LONG] >> (nr % BITS_PER_LONG)) & 1;
}
static inline void set_bit(unsigned long nr, unsigned long *map)
{
	map[nr / BITS_PER_LONG] |= 1UL << (nr % BITS_PER_LONG);
}
static inline void clear_bit(unsigned long nr, unsigned long *map)
{
	map[nr / BITS_PER_LONG] &= ~(1UL << (nr % BITS_PER_LONG));
}

/* ---- locking: single-threaded, but held-ness is checked ---- */
struct mutex {
	int held;
};
#define DEFINE_MUTEX(name)	struct mutex name = { 0 }
void mutex_init(struct mutex *m);
void mutex_lock(struct mutex *m);
void mutex_unlock(struct mutex *m);
void kstub_assert_held(const struct mutex *m, bool held, const char *file,
		       int line);
#define lockdep_assert_held(m)	kstub_assert_held(m, true, __FILE__, __LINE__)
#define lockdep_assert_not_held(m) \
	kstub_assert_held(m, false, __FILE__, __LINE__)

typedef struct { int locked; } spinlock_t;
#define spin_lock_init(l)	((l)->locked = 0)

typedef struct { int counter; } atomic_t;
typedef struct { s64 counter; } atomic64_t;
#define atomic_read(v)		((v)->counter)
#define atomic_set(v, i)	((v)->counter = (i))
#define atomic64_read(v)	((v)->counter)
#define atomic64_set(v, i)	((v)->counter = (i))
#define atomic64_add(i, v)	((v)->counter += (i))
#define atomic64_inc(v)		((v)->counter++)

/* ---- list, notifier, wait, work, hrtimer: only their shape ---- */
struct list_head {
	struct list_head *next, *prev;
};
struct notifier_block {
	int (*notifier_call)(struct notifier_block *nb, unsigned long action,
			     void *data);
};
typedef struct { int unused; } wait_queue_head_t;
struct work_struct {
	void (*func)(struct work_struct *work);
};
struct hrtimer {
	int (*function)(struct hrtimer *timer);
};
struct resource;

/* ---- sort.h: the kernel's sort() is not stable either ---- */
static inline void sort(void *base, size_t num, size_t size,
			int (*cmp)(const void *, const void *),
			void (*swap)(void *, void *, int))
{
	(void)swap;
	qsort(base, num, size, cmp);
}

#define READ_ONCE(x)		(*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v)	(*(volatile __typeof__(x) *)&(x) = (v))

/* ---- sched.h ---- */
static inline void cond_resched(void)
{
}

/* ---- virtio ---- */
struct device {
	const char *name;
};
struct virtio_device {
	int index;
	struct device dev;
	void *priv;
};
struct dentry;
struct virtqueue {
	struct virtio_device *vdev;
};

/* ---- log2.h, bitops ---- */
#define ilog2(n)	(63 - __builtin_clzll((unsigned long long)(n)))
#define __ffs(x)	((unsigned long)__builtin_ctzl(x))
#define fallthrough	__attribute__((__fallthrough__))

/* ---- version.h: the harness is a 6.12 kernel (see virtio_mem_compat.h) ---- */
#define KERNEL_VERSION(a, b, c)	(((a) << 16) + ((b) << 8) + (c))
#define LINUX_VERSION_CODE	KERNEL_VERSION(6, 12, 0)

/*
 * ---- struct page: one per 4 KiB page of the device region ----
 * The model (model.c) owns the memmap, kstub_memmap[], and what the flags
 * mean: KSTUB_PG_BUDDY is "handed to the page allocator" (free or in use),
 * the model's own view of the buddy; KSTUB_PG_POISON is a memmap that is
 * not initialised (offline or never added memory), which the driver must
 * not read.
 */
enum zone_type { ZONE_NORMAL, ZONE_MOVABLE };
#define MAX_PAGE_ORDER		10
#define pageblock_nr_pages	512UL
#define HZ			1000

#define KSTUB_PG_DIRTY		(1U << 0)
#define KSTUB_PG_OFFLINE	(1U << 1)
#define KSTUB_PG_RESERVED	(1U << 2)
#define KSTUB_PG_BUDDY		(1U << 3)
#define KSTUB_PG_MOVABLE	(1U << 4)
#define KSTUB_PG_USED		(1U << 5)	/* in the buddy and allocated */
#define KSTUB_PG_POISON		(1U << 6)

struct page {
	unsigned int flags;
	int refcount;
};

extern struct page *kstub_memmap;
extern unsigned long kstub_memmap_pfn, kstub_memmap_nr;
struct page *pfn_to_page(unsigned long pfn);
unsigned long page_to_pfn(const struct page *page);
#define page_to_phys(p)		PFN_PHYS(page_to_pfn(p))

/* Reading the flags of an uninitialised memmap is a bug: it warns. */
unsigned int kstub_page_flags(const struct page *page);
#define PageDirty(p)		(!!(kstub_page_flags(p) & KSTUB_PG_DIRTY))
#define PageOffline(p)		(!!(kstub_page_flags(p) & KSTUB_PG_OFFLINE))
#define SetPageDirty(p)		((p)->flags |= KSTUB_PG_DIRTY)
#define ClearPageDirty(p)	((p)->flags &= ~KSTUB_PG_DIRTY)
#define ClearPageReserved(p)	((p)->flags &= ~KSTUB_PG_RESERVED)
#define __SetPageOffline(p)	((p)->flags |= KSTUB_PG_OFFLINE)
#define __ClearPageOffline(p)	((p)->flags &= ~KSTUB_PG_OFFLINE)
#define page_zonenum(p)		((kstub_page_flags(p) & KSTUB_PG_MOVABLE) ? \
				 ZONE_MOVABLE : ZONE_NORMAL)
static inline void page_ref_inc(struct page *page)
{
	page->refcount++;
}

static inline bool page_ref_dec_and_test(struct page *page)
{
	return --page->refcount == 0;
}

void dump_page(struct page *page, const char *reason);

/* Folios: named by virtio_mem_compat.h only, called from virtio_mem_mm.c. */
struct folio;
int folio_mapcount(struct folio *folio);

/* page_offline_begin()/end() pair up; the model checks that. */
extern int kstub_page_offline_depth;
void page_offline_begin(void);
void page_offline_end(void);

/* Provided by the core-mm model (model.c). */
void generic_online_page(struct page *page, unsigned int order);
void free_contig_range(unsigned long pfn, unsigned long nr_pages);
void adjust_managed_page_count(struct page *page, long count);
struct page *pfn_to_online_page(unsigned long pfn);

/* ---- memory.h, memory_hotplug.h: the notifier chain and the callback ---- */
#define MEM_ONLINE		(1 << 0)
#define MEM_GOING_OFFLINE	(1 << 1)
#define MEM_OFFLINE		(1 << 2)
#define MEM_GOING_ONLINE	(1 << 3)
#define MEM_CANCEL_ONLINE	(1 << 4)
#define MEM_CANCEL_OFFLINE	(1 << 5)

#define NOTIFY_DONE		0x0000
#define NOTIFY_OK		0x0001
#define NOTIFY_STOP_MASK	0x8000

static inline int notifier_from_errno(int err)
{
	return err ? NOTIFY_STOP_MASK | (NOTIFY_OK - err) : NOTIFY_OK;
}

static inline int notifier_to_errno(int ret)
{
	ret &= ~NOTIFY_STOP_MASK;
	return ret > NOTIFY_OK ? NOTIFY_OK - ret : 0;
}

struct memory_notify {
	unsigned long start_pfn;
	unsigned long nr_pages;
};

static inline bool mhp_supports_memmap_on_memory(void)
{
	return true;
}

typedef void (*online_page_callback_t)(struct page *page, unsigned int order);
int set_online_page_callback(online_page_callback_t callback);
int restore_online_page_callback(online_page_callback_t callback);
int register_memory_notifier(struct notifier_block *nb);
void unregister_memory_notifier(struct notifier_block *nb);

/* ---- rculist.h: one thread, so plain lists ---- */
#define LIST_HEAD(name)	struct list_head name = { &(name), &(name) }
#define INIT_LIST_HEAD(l)	((l)->next = (l)->prev = (l))
static inline bool list_empty(const struct list_head *head)
{
	return head->next == head;
}

static inline void list_add_rcu(struct list_head *n, struct list_head *head)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

static inline void list_del_rcu(struct list_head *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = e->prev = NULL;
}

#define list_entry(ptr, type, member)	container_of(ptr, type, member)
#define list_for_each_entry_rcu(pos, head, member)			\
	for (pos = list_entry((head)->next, __typeof__(*pos), member);	\
	     &pos->member != (head);					\
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))
#define rcu_read_lock()		do { } while (0)
#define rcu_read_unlock()	do { } while (0)
#define synchronize_rcu()	do { } while (0)

/*
 * ---- wait.h: one thread, so a wait that is not over lets the model move
 * core-mm along (kstub_wait_hook, e.g. end a transition in flight) ----
 */
extern bool (*kstub_wait_hook)(void);
#define wake_up_all(wq)		do { (void)(wq); } while (0)
#define wait_event_timeout(wq, cond, timeout) ({			\
	(void)(wq);							\
	while (!(cond) && kstub_wait_hook && kstub_wait_hook())		\
		;							\
	(cond) ? 1L : 0L; })

/* ---- printk: checked formats, quiet unless KSTUB_VERBOSE is set ---- */
void kstub_printk(const char *level, const struct device *dev,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define dev_err(d, ...)			kstub_printk("err", d, __VA_ARGS__)
#define dev_warn(d, ...)		kstub_printk("warn", d, __VA_ARGS__)
#define dev_warn_ratelimited(d, ...)	kstub_printk("warn", d, __VA_ARGS__)
#define dev_warn_once(d, ...)		kstub_printk("warn", d, __VA_ARGS__)
#define dev_info(d, ...)		kstub_printk("info", d, __VA_ARGS__)
#define dev_dbg(d, ...)			kstub_printk("dbg", d, __VA_ARGS__)

#endif /* _KSTUB_H */
