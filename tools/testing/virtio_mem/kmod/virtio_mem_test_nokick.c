// SPDX-License-Identifier: GPL-2.0
/*
 * A test module for the VM tier: a virtio-mem device that stops answering.
 * While it is loaded, virtqueue_kick() on a virtio-mem device's queue
 * returns without telling the device, so a request the driver sends then
 * is never seen, and never answered. Writing 1 to the break_device
 * parameter then breaks that device, as a surprise removal would; the
 * driver must notice both, not wait for ever.
 *
 * x86-64 only: the kprobe sends the call elsewhere by setting the
 * instruction pointer, as error injection does there.
 */

#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/virtio.h>
#include <uapi/linux/virtio_ids.h>

static struct virtio_device *virtio_mem_test_vdev;
static atomic_t virtio_mem_test_swallowed = ATOMIC_INIT(0);

#ifdef CONFIG_X86_64
static bool virtio_mem_test_no_kick(struct virtqueue *vq)
{
	return true;
}

static int virtio_mem_test_kick_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct virtqueue *vq = (void *)regs_get_kernel_argument(regs, 0);

	if (vq->vdev->id.device != VIRTIO_ID_MEM)
		return 0;
	WRITE_ONCE(virtio_mem_test_vdev, vq->vdev);
	atomic_inc(&virtio_mem_test_swallowed);
	instruction_pointer_set(regs, (unsigned long)virtio_mem_test_no_kick);
	return 1;
}

/*
 * Never called (the pre-handler sends the call elsewhere), but a kprobe
 * with one is never optimized into a jump, which would ignore the new
 * instruction pointer: kernels without ftrace-based kprobes do that.
 */
static void virtio_mem_test_kick_post(struct kprobe *p, struct pt_regs *regs,
				      unsigned long flags)
{
}

static struct kprobe virtio_mem_test_kp = {
	.symbol_name = "virtqueue_kick",
	.pre_handler = virtio_mem_test_kick_pre,
	.post_handler = virtio_mem_test_kick_post,
};
#endif

static int virtio_mem_test_break_set(const char *val,
				     const struct kernel_param *kp)
{
	struct virtio_device *vdev = READ_ONCE(virtio_mem_test_vdev);
	bool on;
	int rc;

	rc = kstrtobool(val, &on);
	if (rc)
		return rc;
	if (!on)
		return 0;
	if (!vdev)
		return -ENODEV;
	virtio_break_device(vdev);
	pr_info("virtio_mem_test_nokick: broke %s\n", dev_name(&vdev->dev));
	return 0;
}

static int virtio_mem_test_swallowed_get(char *buf,
					 const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&virtio_mem_test_swallowed));
}

static const struct kernel_param_ops virtio_mem_test_break_ops = {
	.set = virtio_mem_test_break_set,
};
module_param_cb(break_device, &virtio_mem_test_break_ops, NULL, 0200);
MODULE_PARM_DESC(break_device, "1: break the device whose kick was swallowed");

static const struct kernel_param_ops virtio_mem_test_swallowed_ops = {
	.get = virtio_mem_test_swallowed_get,
};
module_param_cb(swallowed, &virtio_mem_test_swallowed_ops, NULL, 0444);
MODULE_PARM_DESC(swallowed, "kicks of virtio-mem queues not passed on");

static int __init virtio_mem_test_init(void)
{
#ifdef CONFIG_X86_64
	return register_kprobe(&virtio_mem_test_kp);
#else
	return -EOPNOTSUPP;
#endif
}
module_init(virtio_mem_test_init);

static void __exit virtio_mem_test_exit(void)
{
#ifdef CONFIG_X86_64
	unregister_kprobe(&virtio_mem_test_kp);
#endif
}
module_exit(virtio_mem_test_exit);
MODULE_DESCRIPTION("virtio-mem VM tests: a device that stops answering");
MODULE_LICENSE("GPL");
