/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the virtio-mem driver: requests to the device, memory
 * block state changes, fake-offlining and the worker's retry decisions.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM virtio_mem

#if !defined(_TRACE_VIRTIO_MEM_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_VIRTIO_MEM_H

#include <linux/tracepoint.h>

#define virtio_mem_show_req(type)					\
	__print_symbolic(type, { 0, "plug" }, { 1, "unplug" },		\
			 { 2, "unplug_all" }, { 3, "state" })

#define virtio_mem_show_resp(resp)					\
	__print_symbolic(resp, { 0, "ack" }, { 1, "nack" },		\
			 { 2, "busy" }, { 3, "error" })

/* Values of enum virtio_mem_sbm_mb_state. */
#define virtio_mem_show_mb_state(state)					\
	__print_symbolic(state, { 0, "unused" }, { 1, "plugged" },	\
			 { 2, "offline" }, { 3, "offline_partial" },	\
			 { 4, "kernel" }, { 5, "kernel_partial" },	\
			 { 6, "movable" }, { 7, "movable_partial" })

TRACE_EVENT(virtio_mem_request_send,
	TP_PROTO(int dev, u16 type, u64 addr, u16 nb_blocks),
	TP_ARGS(dev, type, addr, nb_blocks),
	TP_STRUCT__entry(
		__field(int, dev)
		__field(u16, type)
		__field(u64, addr)
		__field(u16, nb_blocks)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->type = type;
		__entry->addr = addr;
		__entry->nb_blocks = nb_blocks;
	),
	TP_printk("virtio%d %s addr=0x%llx blocks=%u", __entry->dev,
		  virtio_mem_show_req(__entry->type), __entry->addr,
		  __entry->nb_blocks)
);

TRACE_EVENT(virtio_mem_request_done,
	TP_PROTO(int dev, u16 type, u64 addr, u16 nb_blocks, u16 resp,
		 u64 latency_ns),
	TP_ARGS(dev, type, addr, nb_blocks, resp, latency_ns),
	TP_STRUCT__entry(
		__field(int, dev)
		__field(u16, type)
		__field(u64, addr)
		__field(u16, nb_blocks)
		__field(u16, resp)
		__field(u64, latency_ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->type = type;
		__entry->addr = addr;
		__entry->nb_blocks = nb_blocks;
		__entry->resp = resp;
		__entry->latency_ns = latency_ns;
	),
	TP_printk("virtio%d %s addr=0x%llx blocks=%u resp=%s latency_ns=%llu",
		  __entry->dev, virtio_mem_show_req(__entry->type),
		  __entry->addr, __entry->nb_blocks,
		  virtio_mem_show_resp(__entry->resp), __entry->latency_ns)
);

TRACE_EVENT(virtio_mem_mb_state,
	TP_PROTO(int dev, unsigned long mb_id, int old, int new),
	TP_ARGS(dev, mb_id, old, new),
	TP_STRUCT__entry(
		__field(int, dev)
		__field(unsigned long, mb_id)
		__field(int, old)
		__field(int, new)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->mb_id = mb_id;
		__entry->old = old;
		__entry->new = new;
	),
	TP_printk("virtio%d memory%lu %s -> %s", __entry->dev, __entry->mb_id,
		  virtio_mem_show_mb_state(__entry->old),
		  virtio_mem_show_mb_state(__entry->new))
);

TRACE_EVENT(virtio_mem_fake_offline,
	TP_PROTO(int dev, unsigned long pfn, unsigned long nr_pages, int rc),
	TP_ARGS(dev, pfn, nr_pages, rc),
	TP_STRUCT__entry(
		__field(int, dev)
		__field(unsigned long, pfn)
		__field(unsigned long, nr_pages)
		__field(int, rc)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->pfn = pfn;
		__entry->nr_pages = nr_pages;
		__entry->rc = rc;
	),
	TP_printk("virtio%d pfn=0x%lx nr_pages=%lu rc=%d", __entry->dev,
		  __entry->pfn, __entry->nr_pages, __entry->rc)
);

TRACE_EVENT(virtio_mem_retry,
	TP_PROTO(int dev, const char *outcome, const char *status,
		 unsigned int delay_ms),
	TP_ARGS(dev, outcome, status, delay_ms),
	TP_STRUCT__entry(
		__field(int, dev)
		__array(char, outcome, 24)
		__array(char, status, 24)
		__field(unsigned int, delay_ms)
	),
	TP_fast_assign(
		__entry->dev = dev;
		strscpy(__entry->outcome, outcome, sizeof(__entry->outcome));
		strscpy(__entry->status, status, sizeof(__entry->status));
		__entry->delay_ms = delay_ms;
	),
	TP_printk("virtio%d outcome=%s status=%s retry_in_ms=%u", __entry->dev,
		  __entry->outcome, __entry->status, __entry->delay_ms)
);

#endif /* _TRACE_VIRTIO_MEM_H */

#include <trace/define_trace.h>
