// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime of the kernel stand-ins declared in include/kstub.h.
 */
#include <stdarg.h>

#include <kstub.h>

unsigned long kstub_warnings;
bool kstub_warn_quiet;
unsigned long kstub_fail_allocs;
unsigned long kstub_fail_nth;
unsigned long kstub_live_allocs;

void kstub_warn(const char *file, int line, const char *cond)
{
	kstub_warnings++;
	if (!kstub_warn_quiet)
		fprintf(stderr, "WARNING: %s:%d: %s\n", file, line, cond);
}

static void *kstub_alloc(size_t size)
{
	void *p;

	if (kstub_fail_allocs) {
		kstub_fail_allocs--;
		return NULL;
	}
	if (kstub_fail_nth && !--kstub_fail_nth)
		return NULL;
	p = calloc(1, size ? size : 1);
	if (p)
		kstub_live_allocs++;
	return p;
}

void *kvzalloc(size_t size, gfp_t gfp)
{
	(void)gfp;
	return kstub_alloc(size);
}

void *kzalloc(size_t size, gfp_t gfp)
{
	(void)gfp;
	return kstub_alloc(size);
}

void *kvcalloc(size_t n, size_t size, gfp_t gfp)
{
	(void)gfp;
	if (size && n > SIZE_MAX / size)
		return NULL;
	return kstub_alloc(n * size);
}

void *kvmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	return kvcalloc(n, size, gfp);
}

void kvfree(const void *p)
{
	if (p)
		kstub_live_allocs--;
	free((void *)p);
}

void kfree(const void *p)
{
	kvfree(p);
}

/* The first bit at or after @offset that differs from @skip (0 or ~0UL). */
static unsigned long find_next(const unsigned long *map, unsigned long size,
			       unsigned long offset, unsigned long skip)
{
	unsigned long word;

	while (offset < size) {
		word = (map[offset / BITS_PER_LONG] ^ skip) >>
		       (offset % BITS_PER_LONG);
		if (!word) {
			offset = (offset / BITS_PER_LONG + 1) * BITS_PER_LONG;
			continue;
		}
		offset += __builtin_ctzl(word);
		return offset < size ? offset : size;
	}
	return size;
}

unsigned long find_next_bit(const unsigned long *map, unsigned long size,
			    unsigned long offset)
{
	return find_next(map, size, offset, 0);
}

unsigned long find_next_zero_bit(const unsigned long *map, unsigned long size,
				 unsigned long offset)
{
	return find_next(map, size, offset, ~0UL);
}

void bitmap_set(unsigned long *map, unsigned int start, unsigned int nr)
{
	for (; nr; nr--, start++)
		map[start / BITS_PER_LONG] |= 1UL << (start % BITS_PER_LONG);
}

void bitmap_clear(unsigned long *map, unsigned int start, unsigned int nr)
{
	for (; nr; nr--, start++)
		map[start / BITS_PER_LONG] &= ~(1UL << (start % BITS_PER_LONG));
}

void bitmap_copy(unsigned long *dst, const unsigned long *src,
		 unsigned int nbits)
{
	memcpy(dst, src, BITS_TO_LONGS(nbits) * sizeof(long));
}

void mutex_init(struct mutex *m)
{
	m->held = 0;
}

void mutex_lock(struct mutex *m)
{
	if (m->held)
		kstub_warn(__FILE__, __LINE__, "mutex_lock(): already held");
	m->held = 1;
}

void mutex_unlock(struct mutex *m)
{
	if (!m->held)
		kstub_warn(__FILE__, __LINE__, "mutex_unlock(): not held");
	m->held = 0;
}

void kstub_assert_held(const struct mutex *m, bool held, const char *file,
		       int line)
{
	if (!!m->held != held)
		kstub_warn(file, line, held ? "lockdep_assert_held()" :
				       "lockdep_assert_not_held()");
}

void kstub_printk(const char *level, const struct device *dev,
		  const char *fmt, ...)
{
	static int verbose = -1;
	va_list ap;

	if (verbose < 0)
		verbose = getenv("KSTUB_VERBOSE") != NULL;
	if (!verbose)
		return;
	fprintf(stderr, "[%s] %s: ", level, dev && dev->name ? dev->name : "?");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* The memmap of the region, owned by the model. */
struct page *kstub_memmap;
unsigned long kstub_memmap_pfn, kstub_memmap_nr;
int kstub_page_offline_depth;
bool (*kstub_wait_hook)(void);

static struct page kstub_stray_page;

struct page *pfn_to_page(unsigned long pfn)
{
	if (pfn < kstub_memmap_pfn || pfn - kstub_memmap_pfn >= kstub_memmap_nr) {
		kstub_warn(__FILE__, __LINE__, "pfn_to_page(): pfn outside the memmap");
		kstub_stray_page.flags = KSTUB_PG_POISON;
		return &kstub_stray_page;
	}
	return &kstub_memmap[pfn - kstub_memmap_pfn];
}

unsigned long page_to_pfn(const struct page *page)
{
	if (page < kstub_memmap || page >= kstub_memmap + kstub_memmap_nr) {
		kstub_warn(__FILE__, __LINE__, "page_to_pfn(): page outside the memmap");
		return 0;
	}
	return kstub_memmap_pfn + (page - kstub_memmap);
}

unsigned int kstub_page_flags(const struct page *page)
{
	if (page->flags & KSTUB_PG_POISON)
		kstub_warn(__FILE__, __LINE__,
			   "page flags read from an uninitialised memmap (offline or removed memory)");
	return page->flags;
}

void dump_page(struct page *page, const char *reason)
{
	fprintf(stderr, "dump_page: pfn 0x%lx flags 0x%x refcount %d: %s\n",
		page_to_pfn(page), page->flags, page->refcount, reason);
}

void page_offline_begin(void)
{
	if (kstub_page_offline_depth++)
		kstub_warn(__FILE__, __LINE__, "page_offline_begin() nested");
}

void page_offline_end(void)
{
	if (--kstub_page_offline_depth)
		kstub_warn(__FILE__, __LINE__, "page_offline_end() unbalanced");
}
