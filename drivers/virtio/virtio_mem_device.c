// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: talking to the device. Reading the config and sending one
 * request at a time on the guest-request virtqueue.
 *
 * Responses are reduced to an errno right here, so the rest of the driver
 * never sees protocol codes:
 *   ACK -> 0, NACK -> -EPERM, BUSY -> -ETXTBSY, ERROR/garbage -> -EIO.
 */

#include <linux/ktime.h>
#include <linux/scatterlist.h>
#include <linux/virtio_config.h>

#include "virtio_mem.h"
#include <trace/events/virtio_mem.h>

/**
 * virtio_mem_read_config() - read every config field at once
 * @vm: the device
 * @cfg: filled in, CPU byte order; padding is ignored (C1)
 *
 * Return: always 0; kept an int so callers treat reads like requests.
 */
int virtio_mem_read_config(struct virtio_mem *vm, struct virtio_mem_cfg *cfg)
{
	struct virtio_device *vdev = vm->vdev;

	virtio_cread_le(vdev, struct virtio_mem_config, block_size,
			&cfg->block_size);
	virtio_cread_le(vdev, struct virtio_mem_config, node_id, &cfg->node_id);
	virtio_cread_le(vdev, struct virtio_mem_config, addr, &cfg->addr);
	virtio_cread_le(vdev, struct virtio_mem_config, region_size,
			&cfg->region_size);
	virtio_cread_le(vdev, struct virtio_mem_config, usable_region_size,
			&cfg->usable_region_size);
	virtio_cread_le(vdev, struct virtio_mem_config, plugged_size,
			&cfg->plugged_size);
	virtio_cread_le(vdev, struct virtio_mem_config, requested_size,
			&cfg->requested_size);
	return 0;
}

/**
 * virtio_mem_vq_done() - virtqueue callback: a response arrived
 * @vq: the guest-request virtqueue
 *
 * Context: interrupt.
 */
void virtio_mem_vq_done(struct virtqueue *vq)
{
	struct virtio_mem *vm = vq->vdev->priv;

	wake_up(&vm->host_resp);
}

/* Map a response code to an errno; only the type is looked at (C10). */
static int virtio_mem_resp_to_errno(u16 type)
{
	switch (type) {
	case VIRTIO_MEM_RESP_ACK:
		return 0;
	case VIRTIO_MEM_RESP_NACK:
		return -EPERM;
	case VIRTIO_MEM_RESP_BUSY:
		return -ETXTBSY;
	default:
		return -EIO;
	}
}

/*
 * Send vm->req and wait for the answer. The caller is the single sender
 * (see struct virtio_mem).
 */
static int virtio_mem_send_request(struct virtio_mem *vm, u16 type,
				   u64 addr, u16 nb_blocks)
{
	struct scatterlist *sgs[2], sg_req, sg_resp;
	unsigned int len;
	u16 resp_type;
	u64 start;
	int rc;

	memset(&vm->req, 0, sizeof(vm->req));
	vm->req.type = cpu_to_virtio16(vm->vdev, type);
	vm->req.u.plug.addr = cpu_to_virtio64(vm->vdev, addr);
	vm->req.u.plug.nb_blocks = cpu_to_virtio16(vm->vdev, nb_blocks);
	/* A stale answer must not pass for this one's. */
	vm->resp.type = cpu_to_virtio16(vm->vdev, VIRTIO_MEM_RESP_ERROR);

	sg_init_one(&sg_req, &vm->req, sizeof(vm->req));
	sg_init_one(&sg_resp, &vm->resp, sizeof(vm->resp));
	sgs[0] = &sg_req;
	sgs[1] = &sg_resp;

	trace_virtio_mem_request_send(vm->vdev->index, type, addr, nb_blocks);
	start = ktime_get_ns();
	rc = virtqueue_add_sgs(vm->vq, sgs, 1, 1, vm, GFP_KERNEL);
	if (rc < 0)
		return rc;
	virtqueue_kick(vm->vq);
	wait_event(vm->host_resp, virtqueue_get_buf(vm->vq, &len));

	resp_type = virtio16_to_cpu(vm->vdev, vm->resp.type);
	trace_virtio_mem_request_done(vm->vdev->index, type, addr, nb_blocks,
				      resp_type, ktime_get_ns() - start);
	/* Garbage counts as ERROR, like it is treated. */
	if (resp_type >= VIRTIO_MEM_NR_RESP_TYPES)
		resp_type = VIRTIO_MEM_RESP_ERROR;
	atomic64_inc(&vm->stats.req[type][resp_type]);
	return virtio_mem_resp_to_errno(resp_type);
}

/* One request for @size bytes at @addr, at most U16_MAX device blocks. */
static int virtio_mem_send_one(struct virtio_mem *vm, u16 type, u64 addr,
			       u64 size)
{
	int rc;

	rc = virtio_mem_send_request(vm, type, addr,
				     div64_u64(size, vm->cfg.block_size));
	dev_dbg(&vm->vdev->dev, "%s 0x%llx-0x%llx: %d\n",
		type == VIRTIO_MEM_REQ_PLUG ? "plug" : "unplug", addr,
		addr + size - 1, rc);
	return rc;
}

/*
 * Send a range in requests of at most U16_MAX device blocks. If one of
 * them fails, the ones before are undone, so that the whole range is as
 * it was; an undo the device refuses leaves it in a state we do not know.
 */
static int virtio_mem_send_range(struct virtio_mem *vm, u16 type, u64 addr,
				 u64 size)
{
	const u16 undo = type == VIRTIO_MEM_REQ_PLUG ? VIRTIO_MEM_REQ_UNPLUG :
						     VIRTIO_MEM_REQ_PLUG;
	const u64 max = (u64)U16_MAX * vm->cfg.block_size;
	u64 done = 0, off;
	int rc;

	if (WARN_ON_ONCE(!size || size % vm->cfg.block_size ||
			 addr % vm->cfg.block_size))
		return -EINVAL;
	for (; done < size; done += min(size - done, max)) {
		rc = virtio_mem_send_one(vm, type, addr + done,
					 min(size - done, max));
		if (rc)
			break;
	}
	if (done == size || !done)
		return done == size ? 0 : rc;
	for (off = 0; off < done; off += min(done - off, max))
		if (virtio_mem_send_one(vm, undo, addr + off,
					min(done - off, max)))
			return -EIO;
	return rc;
}

/**
 * virtio_mem_send_plug() - ask the device to plug a range
 * @vm: the device
 * @addr: start, device-block aligned
 * @size: size, a multiple of the device block size
 *
 * Return: 0 on ACK, -EPERM on NACK, -ETXTBSY on BUSY, -EIO on ERROR (see
 * virtio_mem_plug_error() for what that means).
 */
int virtio_mem_send_plug(struct virtio_mem *vm, u64 addr, u64 size)
{
	int rc = virtio_mem_send_range(vm, VIRTIO_MEM_REQ_PLUG, addr, size);

	if (!rc)
		atomic64_add(size, &vm->stats.plugged_bytes);
	return rc;
}

/**
 * virtio_mem_send_unplug() - ask the device to unplug a range
 * @vm: the device
 * @addr: start, device-block aligned
 * @size: size, a multiple of the device block size
 *
 * Return: 0 on ACK, -EPERM on NACK, -ETXTBSY on BUSY, -EIO on ERROR.
 */
int virtio_mem_send_unplug(struct virtio_mem *vm, u64 addr, u64 size)
{
	int rc = virtio_mem_send_range(vm, VIRTIO_MEM_REQ_UNPLUG, addr, size);

	if (!rc)
		atomic64_add(size, &vm->stats.unplugged_bytes);
	return rc;
}

/**
 * virtio_mem_send_unplug_all() - ask the device to unplug everything
 * @vm: the device
 *
 * Return: 0 on ACK, -ETXTBSY on BUSY, -EIO otherwise.
 */
int virtio_mem_send_unplug_all(struct virtio_mem *vm)
{
	int rc = virtio_mem_send_request(vm, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0);

	return rc == -EPERM ? -EIO : rc;
}
