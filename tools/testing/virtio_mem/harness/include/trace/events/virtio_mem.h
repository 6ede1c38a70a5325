/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Harness stub of the driver's tracepoints: type-checked no-ops. Keep the
 * prototypes in step with include/trace/events/virtio_mem.h.
 */
#ifndef _VMH_TRACE_VIRTIO_MEM_H
#define _VMH_TRACE_VIRTIO_MEM_H

#include <kstub.h>

static inline void trace_virtio_mem_request_send(int dev, u16 type, u64 addr,
						 u16 nb_blocks)
{
}

static inline void trace_virtio_mem_mb_state(int dev, unsigned long mb_id,
					     int old, int new)
{
}

static inline void trace_virtio_mem_fake_offline(int dev, unsigned long pfn,
						 unsigned long nr_pages, int rc)
{
}

static inline void trace_virtio_mem_retry(int dev, const char *outcome,
					  const char *status,
					  unsigned int delay_ms)
{
}

#endif
