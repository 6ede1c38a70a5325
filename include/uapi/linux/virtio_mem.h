/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-mem device protocol (virtio device ID 24), as the guest driver
 * sees it. See the "Memory Device" chapter of the virtio specification.
 *
 * The build puts this directory ahead of the kernel's own uapi headers, so
 * the driver always speaks the protocol as written here, whatever the
 * kernel it is built against ships.
 */

#ifndef _LINUX_VIRTIO_MEM_H
#define _LINUX_VIRTIO_MEM_H

#include <linux/types.h>
#include <linux/virtio_types.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_config.h>

#ifndef VIRTIO_ID_MEM
#define VIRTIO_ID_MEM			24
#endif

/* --- feature bits --- */

/* node_id is an ACPI proximity domain and is valid. */
#define VIRTIO_MEM_F_ACPI_PXM		0
/* The driver must not touch unplugged memory at all. */
#define VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE	1
/* Plugged memory survives suspend-to-RAM (virtio 1.4). */
#define VIRTIO_MEM_F_PERSISTENT_SUSPEND	2

/* --- requests: 24 bytes on the wire --- */

/* Plug nb_blocks device blocks starting at addr. */
#define VIRTIO_MEM_REQ_PLUG		0
/* Unplug nb_blocks device blocks starting at addr. */
#define VIRTIO_MEM_REQ_UNPLUG		1
/* Unplug everything; may shrink usable_region_size. */
#define VIRTIO_MEM_REQ_UNPLUG_ALL	2
/* Query whether nb_blocks device blocks at addr are plugged. */
#define VIRTIO_MEM_REQ_STATE		3

/*
 * PLUG, UNPLUG and STATE each name a range of device blocks, with the same
 * layout; the names are the ones Linux's uapi header has always used.
 */
struct virtio_mem_req_plug {
	__virtio64 addr;
	__virtio16 nb_blocks;
	__u16 padding[3];
};

struct virtio_mem_req_unplug {
	__virtio64 addr;
	__virtio16 nb_blocks;
	__u16 padding[3];
};

struct virtio_mem_req_state {
	__virtio64 addr;
	__virtio16 nb_blocks;
	__u16 padding[3];
};

struct virtio_mem_req {
	__virtio16 type;
	__u16 padding[3];
	union {
		struct virtio_mem_req_plug plug;
		struct virtio_mem_req_unplug unplug;
		struct virtio_mem_req_state state;
	} u;
};

/* --- responses: 10 bytes on the wire --- */

/* Done: every block in the range changed state. */
#define VIRTIO_MEM_RESP_ACK		0
/* Refused by the device's policy (e.g. beyond requested_size). */
#define VIRTIO_MEM_RESP_NACK		1
/* Transient failure: try again later. */
#define VIRTIO_MEM_RESP_BUSY		2
/* Malformed request: a bookkeeping bug in a correct driver. */
#define VIRTIO_MEM_RESP_ERROR		3

/* Answers to an ACKed STATE request. */
#define VIRTIO_MEM_STATE_PLUGGED	0
#define VIRTIO_MEM_STATE_UNPLUGGED	1
#define VIRTIO_MEM_STATE_MIXED		2

struct virtio_mem_resp_state {
	__virtio16 state;
};

struct virtio_mem_resp {
	__virtio16 type;
	__u16 padding[3];
	union {
		struct virtio_mem_resp_state state;
	} u;
};

/* --- device configuration: read-only for the driver --- */

struct virtio_mem_config {
	/* Size and alignment of a device block: a power of two. Constant. */
	__le64 block_size;
	/* Valid with VIRTIO_MEM_F_ACPI_PXM. Constant. */
	__le16 node_id;
	__u8 padding[6];
	/* Start of the device region. Constant. */
	__le64 addr;
	/* Size of the device region. Constant. */
	__le64 region_size;
	/* Part of the region that may be plugged: grows up to region_size. */
	__le64 usable_region_size;
	/* Currently plugged memory. */
	__le64 plugged_size;
	/* The host's wish for plugged_size. */
	__le64 requested_size;
};

#endif /* _LINUX_VIRTIO_MEM_H */
