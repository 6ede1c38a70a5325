/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virtio-mem: the differences between the supported kernels (6.1, 6.12),
 * each behind one helper that names the upstream change it papers over.
 * Nothing else in the driver tests LINUX_VERSION_CODE.
 */

#ifndef _VIRTIO_MEM_COMPAT_H
#define _VIRTIO_MEM_COMPAT_H

#include <linux/version.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/page-flags.h>

/*
 * "mm, treewide: redefine MAX_ORDER sanely" (6.4) made MAX_ORDER the
 * largest order instead of one past it, and "mm, treewide: rename
 * MAX_ORDER to MAX_PAGE_ORDER" (6.8) renamed it.
 */
#if defined(MAX_PAGE_ORDER)
#define VIRTIO_MEM_MAX_ORDER	MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
#define VIRTIO_MEM_MAX_ORDER	(MAX_ORDER - 1)
#else
#define VIRTIO_MEM_MAX_ORDER	MAX_ORDER
#endif

/*
 * "mm/memory_hotplug: initialize memmap of !ZONE_DEVICE with PageOffline()
 * instead of PageReserved()" (6.12): before it, the memmap of hot-added
 * memory starts out PageReserved and generic_online_page() clears that;
 * since, it starts out PageOffline and generic_online_page() clears that.
 *
 * virtio_mem_compat_keep_fresh() makes a page that the online_page callback
 * keeps from the buddy PageOffline; virtio_mem_compat_release_fresh()
 * prepares such a page for generic_online_page().
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
static inline void virtio_mem_compat_keep_fresh(struct page *page)
{
	ClearPageReserved(page);
	__SetPageOffline(page);
}

static inline void virtio_mem_compat_release_fresh(struct page *page)
{
	__ClearPageOffline(page);
}
#else
static inline void virtio_mem_compat_keep_fresh(struct page *page)
{
}

static inline void virtio_mem_compat_release_fresh(struct page *page)
{
}
#endif

/*
 * Offlining and fake-offline pages. In 6.1, offline_pages() takes the
 * whole range off the managed page counters, so fake-offline pages (which
 * are not counted as managed) must be counted again while memory goes
 * offline, and taken off again if offlining is cancelled. By 6.12,
 * offline_pages() subtracts only what __offline_isolated_pages() reports
 * it took, which leaves PageOffline pages out, and nothing is needed. The
 * change landed between the two; 6.12 is the first supported kernel with
 * it, so that is the cutoff here.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
static inline void virtio_mem_compat_going_offline(struct page *page,
						   unsigned long nr_pages,
						   bool going)
{
	adjust_managed_page_count(page, going ? (long)nr_pages :
						-(long)nr_pages);
}
#else
static inline void virtio_mem_compat_going_offline(struct page *page,
						   unsigned long nr_pages,
						   bool going)
{
}
#endif

/*
 * memmap_on_memory. By 6.12, mhp_supports_memmap_on_memory() takes no
 * arguments and is exported (for dax/kmem), and adding memory with
 * MHP_MEMMAP_ON_MEMORY quietly falls back to a normal memmap where the
 * kernel does not offer it. In 6.1 nothing tells a module, and such an
 * add fails with -EINVAL: answer "maybe" and let the first add find out
 * (virtio_mem_mm_add_mb()). An add of several memory blocks at once (Big
 * Block Mode) gives each its own memmap since 6.6; 6.1 takes the flag for
 * one memory block only: "no" there. The changes landed between the two;
 * 6.12 is the first supported kernel with them, so that is the cutoff.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
static inline bool virtio_mem_compat_memmap_on_memory(void)
{
	return true;
}

static inline bool virtio_mem_compat_memmap_on_memory_range(void)
{
	return false;
}
#else
static inline bool virtio_mem_compat_memmap_on_memory(void)
{
	return mhp_supports_memmap_on_memory();
}

static inline bool virtio_mem_compat_memmap_on_memory_range(void)
{
	return mhp_supports_memmap_on_memory();
}
#endif

/*
 * The mapcount of a small folio. By 6.12, folio_mapcount() is inline and
 * answers 0 for a typed page (page tables), whose mapcount field holds the
 * type. In 6.1 it is out of line and not exported; page_mapcount() is
 * inline there but reads the type of a typed page as a mapcount. The
 * change landed between the two; 6.12 is the first supported kernel with
 * it, so that is the cutoff here.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
static inline int virtio_mem_compat_small_mapcount(struct folio *folio)
{
	if (page_has_type(&folio->page))
		return 0;
	return max(page_mapcount(&folio->page), 0);
}
#else
static inline int virtio_mem_compat_small_mapcount(struct folio *folio)
{
	return folio_mapcount(folio);
}
#endif

#endif /* _VIRTIO_MEM_COMPAT_H */
