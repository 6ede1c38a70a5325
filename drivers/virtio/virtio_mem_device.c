// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: talking to the device. Reading the config and sending one
 * request at a time on the guest-request virtqueue.
 *
 * Responses are reduced to an outcome right here, so the rest of the driver
 * never sees protocol codes:
 *   ACK -> DONE, NACK -> NACK, BUSY -> BUSY, ERROR/garbage -> FAILED.
 */

#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/scatterlist.h>
#include <linux/virtio_config.h>

#include "virtio_mem.h"
#include <trace/events/virtio_mem.h>

/**
 * virtio_mem_read_config() - read every config field at once
 * @vm: the device
 * @cfg: filled in, CPU byte order; padding is ignored (C1)
 *
 * Reading the config cannot fail; whether it makes sense is the policy's
 * business (virtio_mem_cfg_check()).
 */
void virtio_mem_read_config(struct virtio_mem *vm, struct virtio_mem_cfg *cfg)
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

/* Map a response code to an outcome; only the type is looked at (C10). */
static enum virtio_mem_outcome virtio_mem_resp_to_outcome(u16 type)
{
	switch (type) {
	case VIRTIO_MEM_RESP_ACK:
		return VIRTIO_MEM_OUTCOME_DONE;
	case VIRTIO_MEM_RESP_NACK:
		return VIRTIO_MEM_OUTCOME_NACK;
	case VIRTIO_MEM_RESP_BUSY:
		return VIRTIO_MEM_OUTCOME_BUSY;
	default:
		return VIRTIO_MEM_OUTCOME_FAILED;
	}
}

/*
 * virtqueue_add_sgs() fails for want of memory (-ENOMEM, e.g. to map the
 * buffers), with a full ring (-ENOSPC) or on a broken queue (-EIO). A full
 * ring reads as no space, as it always has; one request at a time never
 * fills it.
 */
static enum virtio_mem_outcome virtio_mem_vq_outcome(int rc)
{
	switch (rc) {
	case -ENOMEM:
		return VIRTIO_MEM_OUTCOME_NOMEM;
	case -ENOSPC:
		return VIRTIO_MEM_OUTCOME_NO_SPACE;
	default:
		return VIRTIO_MEM_OUTCOME_FAILED;
	}
}

static const char *const virtio_mem_req_names[VIRTIO_MEM_NR_REQ_TYPES] = {
	[VIRTIO_MEM_REQ_PLUG] = "plug",
	[VIRTIO_MEM_REQ_UNPLUG] = "unplug",
	[VIRTIO_MEM_REQ_UNPLUG_ALL] = "unplug all",
	[VIRTIO_MEM_REQ_STATE] = "state",
};

/*
 * Wait for the answer to the request just sent. A device that broke
 * (surprise removal) never answers, and breaking a queue wakes nobody:
 * look every second. One that is merely slow is waited for, with a word
 * in the log, except by remove, which resets the device afterwards and so
 * may stop waiting. A request given up on stays in the queue, which is
 * why @req_lost then fails every later one.
 *
 * Return: true once the answer is in vm->resp.
 */
static bool virtio_mem_wait_answer(struct virtio_mem *vm, u16 type)
{
	const char *name = virtio_mem_req_names[type];
	unsigned int len, secs = 0;

	for (;;) {
		if (wait_event_timeout(vm->host_resp,
				       virtqueue_get_buf(vm->vq, &len), HZ))
			return true;
		if (virtqueue_is_broken(vm->vq)) {
			dev_err(&vm->vdev->dev,
				"the device broke with a %s request outstanding\n",
				name);
			break;
		}
		if (++secs == VIRTIO_MEM_REQ_SLOW_SECS)
			dev_warn(&vm->vdev->dev,
				 "no answer to a %s request for %u s; waiting on\n",
				 name, secs);
		/* A hint only: remove sets it before it sends requests. */
		if (READ_ONCE(vm->removing) &&
		    secs >= VIRTIO_MEM_REQ_SLOW_SECS) {
			dev_warn(&vm->vdev->dev,
				 "removing: no longer waiting for the answer to a %s request\n",
				 name);
			break;
		}
	}
	vm->req_lost = true;
	return false;
}

/**
 * virtio_mem_device_lost() - no request can be sent any more
 * @vm: the device
 *
 * The queue broke, or a request went unanswered and still holds it. A
 * request that failed so got no answer at all, so it says nothing of
 * what the device would have answered.
 *
 * Return: true if so.
 */
bool virtio_mem_device_lost(struct virtio_mem *vm)
{
	return vm->req_lost || (vm->vq && virtqueue_is_broken(vm->vq));
}

/*
 * Send vm->req and wait for the answer. The caller is the single sender
 * (see struct virtio_mem).
 */
static enum virtio_mem_outcome
virtio_mem_send_request(struct virtio_mem *vm, u16 type, u64 addr,
			u16 nb_blocks)
{
	struct scatterlist *sgs[2], sg_req, sg_resp;
	u16 resp_type;
	u64 start;
	int rc;

	memset(&vm->req, 0, sizeof(vm->req));
	vm->req.type = cpu_to_virtio16(vm->vdev, type);
	switch (type) {
	case VIRTIO_MEM_REQ_PLUG:
		vm->req.u.plug.addr = cpu_to_virtio64(vm->vdev, addr);
		vm->req.u.plug.nb_blocks = cpu_to_virtio16(vm->vdev, nb_blocks);
		break;
	case VIRTIO_MEM_REQ_UNPLUG:
		vm->req.u.unplug.addr = cpu_to_virtio64(vm->vdev, addr);
		vm->req.u.unplug.nb_blocks = cpu_to_virtio16(vm->vdev,
							     nb_blocks);
		break;
	case VIRTIO_MEM_REQ_STATE:
		vm->req.u.state.addr = cpu_to_virtio64(vm->vdev, addr);
		vm->req.u.state.nb_blocks = cpu_to_virtio16(vm->vdev,
							    nb_blocks);
		break;
	}
	/* A stale or short answer must not pass for this one's. */
	vm->resp.type = cpu_to_virtio16(vm->vdev, VIRTIO_MEM_RESP_ERROR);
	vm->resp.u.state.state = cpu_to_virtio16(vm->vdev, U16_MAX);
	/* After a failed resume there is no queue, and the device is broken. */
	if (WARN_ON_ONCE(!vm->vq))
		return VIRTIO_MEM_OUTCOME_FAILED;
	/* Its answer could land in this one's buffers. */
	if (vm->req_lost)
		return VIRTIO_MEM_OUTCOME_FAILED;

	sg_init_one(&sg_req, &vm->req, sizeof(vm->req));
	sg_init_one(&sg_resp, &vm->resp, sizeof(vm->resp));
	sgs[0] = &sg_req;
	sgs[1] = &sg_resp;

	trace_virtio_mem_request_send(vm->vdev->index, type, addr, nb_blocks);
	start = ktime_get_ns();
	rc = virtqueue_add_sgs(vm->vq, sgs, 1, 1, vm, GFP_KERNEL);
	if (rc < 0)
		return virtio_mem_vq_outcome(rc);
	virtqueue_kick(vm->vq);
	if (!virtio_mem_wait_answer(vm, type))
		return VIRTIO_MEM_OUTCOME_FAILED;

	resp_type = virtio16_to_cpu(vm->vdev, vm->resp.type);
	trace_virtio_mem_request_done(vm->vdev->index, type, addr, nb_blocks,
				      resp_type, ktime_get_ns() - start);
	/* Garbage counts as ERROR, like it is treated. */
	if (resp_type >= VIRTIO_MEM_NR_RESP_TYPES)
		resp_type = VIRTIO_MEM_RESP_ERROR;
	atomic64_inc(&vm->stats.req[type][resp_type]);
	return virtio_mem_resp_to_outcome(resp_type);
}

/* One request for @size bytes at @addr, at most U16_MAX device blocks. */
static enum virtio_mem_outcome
virtio_mem_send_one(struct virtio_mem *vm, u16 type, u64 addr, u64 size)
{
	enum virtio_mem_outcome outcome;

	outcome = virtio_mem_send_request(vm, type, addr,
					  div64_u64(size, vm->cfg.block_size));
	dev_dbg(&vm->vdev->dev, "%s 0x%llx-0x%llx: %s\n",
		virtio_mem_req_names[type], addr, addr + size - 1,
		virtio_mem_outcome_name(outcome));
	return outcome;
}

/*
 * Send a range in requests of at most U16_MAX device blocks. If one of
 * them fails, the ones before are undone, so that the whole range is as
 * it was; an undo the device refuses leaves it in a state we do not know.
 * A range no request can name is our bug, and fatal (BUG, not an ERROR).
 */
static enum virtio_mem_outcome
virtio_mem_send_range(struct virtio_mem *vm, u16 type, u64 addr, u64 size)
{
	const u16 undo = type == VIRTIO_MEM_REQ_PLUG ? VIRTIO_MEM_REQ_UNPLUG :
						     VIRTIO_MEM_REQ_PLUG;
	const u64 max = (u64)U16_MAX * vm->cfg.block_size;
	enum virtio_mem_outcome outcome;
	u64 done = 0, off;

	if (WARN_ON_ONCE(!size || size % vm->cfg.block_size ||
			 addr % vm->cfg.block_size))
		return VIRTIO_MEM_OUTCOME_BUG;
	for (; done < size; done += min(size - done, max)) {
		outcome = virtio_mem_send_one(vm, type, addr + done,
					      min(size - done, max));
		if (outcome)
			break;
	}
	if (done == size || !done)
		return done == size ? VIRTIO_MEM_OUTCOME_DONE : outcome;
	for (off = 0; off < done; off += min(done - off, max))
		if (virtio_mem_send_one(vm, undo, addr + off,
					min(done - off, max)))
			return VIRTIO_MEM_OUTCOME_FAILED;
	return outcome;
}

/**
 * virtio_mem_send_plug() - ask the device to plug a range
 * @vm: the device
 * @addr: start, device-block aligned
 * @size: size, a multiple of the device block size
 *
 * Return: %VIRTIO_MEM_OUTCOME_DONE on ACK, NACK on NACK, BUSY on BUSY;
 * NOMEM or NO_SPACE when a request could not be queued; FAILED on ERROR
 * (see virtio_mem_plug_error() for what that means to a plug) or with the
 * device in a state we do not know.
 */
enum virtio_mem_outcome virtio_mem_send_plug(struct virtio_mem *vm, u64 addr,
					     u64 size)
{
	enum virtio_mem_outcome outcome;

	outcome = virtio_mem_send_range(vm, VIRTIO_MEM_REQ_PLUG, addr, size);
	if (!outcome)
		atomic64_add(size, &vm->stats.plugged_bytes);
	return outcome;
}

/**
 * virtio_mem_send_unplug() - ask the device to unplug a range
 * @vm: the device
 * @addr: start, device-block aligned
 * @size: size, a multiple of the device block size
 *
 * Return: like virtio_mem_send_plug().
 */
enum virtio_mem_outcome virtio_mem_send_unplug(struct virtio_mem *vm,
					       u64 addr, u64 size)
{
	enum virtio_mem_outcome outcome;

	outcome = virtio_mem_send_range(vm, VIRTIO_MEM_REQ_UNPLUG, addr, size);
	if (!outcome)
		atomic64_add(size, &vm->stats.unplugged_bytes);
	return outcome;
}

/**
 * virtio_mem_send_unplug_all() - ask the device to unplug everything
 * @vm: the device
 *
 * Return: %VIRTIO_MEM_OUTCOME_DONE on ACK, BUSY on BUSY; NOMEM or NO_SPACE
 * when the request could not be queued; else FAILED: the device has no
 * reason to refuse this one.
 */
enum virtio_mem_outcome virtio_mem_send_unplug_all(struct virtio_mem *vm)
{
	enum virtio_mem_outcome outcome;

	outcome = virtio_mem_send_request(vm, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0);
	return outcome == VIRTIO_MEM_OUTCOME_NACK ? VIRTIO_MEM_OUTCOME_FAILED :
						    outcome;
}

/**
 * virtio_mem_send_state() - ask the device whether a range is plugged
 * @vm: the device
 * @addr: start, device-block aligned
 * @size: size, a multiple of the device block size, U16_MAX blocks at most
 * @state: the answer, VIRTIO_MEM_STATE_*, when DONE is returned
 *
 * Return: %VIRTIO_MEM_OUTCOME_DONE on ACK with a state, else FAILED: the
 * device has no reason to refuse a query of a valid range, and a range
 * too long for one request is our bug.
 */
enum virtio_mem_outcome virtio_mem_send_state(struct virtio_mem *vm, u64 addr,
					      u64 size, u16 *state)
{
	u64 nb_blocks = div64_u64(size, vm->cfg.block_size);

	if (!nb_blocks || nb_blocks > U16_MAX)
		return VIRTIO_MEM_OUTCOME_FAILED;
	if (virtio_mem_send_request(vm, VIRTIO_MEM_REQ_STATE, addr, nb_blocks))
		return VIRTIO_MEM_OUTCOME_FAILED;
	*state = virtio16_to_cpu(vm->vdev, vm->resp.u.state.state);
	/* Anything else is garbage (or an answer too short to hold one). */
	return *state <= VIRTIO_MEM_STATE_MIXED ? VIRTIO_MEM_OUTCOME_DONE :
						  VIRTIO_MEM_OUTCOME_FAILED;
}

/**
 * virtio_mem_init_vq() - find the guest-request virtqueue
 * @vm: the device
 *
 * Return: 0 or the errno of virtio_find_single_vq().
 */
int virtio_mem_init_vq(struct virtio_mem *vm)
{
	struct virtqueue *vq;

	vq = virtio_find_single_vq(vm->vdev, virtio_mem_vq_done,
				   "guest-request");
	if (IS_ERR(vq))
		return PTR_ERR(vq);
	vm->vq = vq;
	return 0;
}

/**
 * virtio_mem_log_problem() - say why a device config was refused
 * @vm: the device
 * @p: the problem, as the policy found it
 */
void virtio_mem_log_problem(struct virtio_mem *vm,
			    const struct virtio_mem_cfg_problem *p)
{
	dev_err(&vm->vdev->dev, "bad device config: %s = 0x%llx: %s\n",
		p->field, p->value, p->why);
}
