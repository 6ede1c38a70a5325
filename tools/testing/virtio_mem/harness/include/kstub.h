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
