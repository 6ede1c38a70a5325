// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-mem: what an operator can read. A read-only sysfs group per
 * device (stable ABI, Documentation/ABI/testing/sysfs-driver-virtio_mem)
 * and a debugfs map of every memory block (no ABI).
 *
 * Every sysfs file is one value read with READ_ONCE(), without the
 * hotplug_mutex: the worker may hold it for seconds, and reading a file
 * should not wait for that.
 */

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/seq_file.h>
#include <linux/sysfs.h>

#include "virtio_mem.h"

static struct virtio_mem *virtio_mem_from_dev(struct device *dev)
{
	return dev_to_virtio(dev)->priv;
}

#define VIRTIO_MEM_ATTR_U64(_name, _expr)				\
static ssize_t _name##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	struct virtio_mem *vm = virtio_mem_from_dev(dev);		\
									\
	return sysfs_emit(buf, "%llu\n", (unsigned long long)(_expr));	\
}									\
static DEVICE_ATTR_RO(_name)

VIRTIO_MEM_ATTR_U64(region_start, READ_ONCE(vm->cfg.addr));
VIRTIO_MEM_ATTR_U64(region_size, READ_ONCE(vm->cfg.region_size));
VIRTIO_MEM_ATTR_U64(usable_region_size, READ_ONCE(vm->cfg.usable_region_size));
VIRTIO_MEM_ATTR_U64(block_size, READ_ONCE(vm->cfg.block_size));
VIRTIO_MEM_ATTR_U64(subblock_size, READ_ONCE(vm->geo.sb_size));
VIRTIO_MEM_ATTR_U64(memory_block_size, READ_ONCE(vm->geo.mb_size));
VIRTIO_MEM_ATTR_U64(big_block_size, READ_ONCE(vm->geo.bb_size));
VIRTIO_MEM_ATTR_U64(requested_size, READ_ONCE(vm->cfg.requested_size));
VIRTIO_MEM_ATTR_U64(plugged_size, READ_ONCE(vm->cfg.plugged_size));
VIRTIO_MEM_ATTR_U64(unusable_size, READ_ONCE(vm->geo.unusable_size));
VIRTIO_MEM_ATTR_U64(memmap_on_memory,
		    READ_ONCE(vm->sbm.memmap_sbs) || vm->bbm.memmap_size);
VIRTIO_MEM_ATTR_U64(bytes_plugged, atomic64_read(&vm->stats.plugged_bytes));
VIRTIO_MEM_ATTR_U64(bytes_unplugged,
		    atomic64_read(&vm->stats.unplugged_bytes));
VIRTIO_MEM_ATTR_U64(fake_offline_failures,
		    atomic64_read(&vm->stats.fake_offline_failures));
VIRTIO_MEM_ATTR_U64(offline_timeouts,
		    atomic64_read(&vm->stats.offline_timeouts));
VIRTIO_MEM_ATTR_U64(retries, atomic64_read(&vm->stats.retries));

static ssize_t node_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%d\n", virtio_mem_from_dev(dev)->nid);
}
static DEVICE_ATTR_RO(node);

static ssize_t mode_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  virtio_mem_from_dev(dev)->geo.bbm ? "bbm" : "sbm");
}
static DEVICE_ATTR_RO(mode);

/* The words of the status file, listed in its ABI document. */
static const char *const virtio_mem_status_names[VIRTIO_MEM_STATUS_COUNT] = {
	[VIRTIO_MEM_STATUS_OK] = "ok",
	[VIRTIO_MEM_STATUS_WORKING] = "working",
	[VIRTIO_MEM_STATUS_OFFLINE_LIMIT] = "offline_limit",
	[VIRTIO_MEM_STATUS_NO_SPACE] = "no_space",
	[VIRTIO_MEM_STATUS_BUSY] = "busy",
	[VIRTIO_MEM_STATUS_NACK] = "nack",
	[VIRTIO_MEM_STATUS_PLUG_ERROR] = "plug_error",
	[VIRTIO_MEM_STATUS_NOMEM] = "nomem",
	[VIRTIO_MEM_STATUS_ADD_FAILED] = "add_failed",
	[VIRTIO_MEM_STATUS_UNPLUG_ONLINE_OFF] = "unplug_online_off",
	[VIRTIO_MEM_STATUS_MEMORY_PRESSURE] = "memory_pressure",
	[VIRTIO_MEM_STATUS_UNMOVABLE] = "unmovable",
	[VIRTIO_MEM_STATUS_BROKEN] = "broken",
};

/**
 * virtio_mem_status_name() - the word for a reason, as sysfs shows it
 * @status: the reason
 *
 * Return: a static string.
 */
const char *virtio_mem_status_name(enum virtio_mem_status status)
{
	return status < VIRTIO_MEM_STATUS_COUNT ? virtio_mem_status_names[status] : "?";
}

static ssize_t status_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct virtio_mem *vm = virtio_mem_from_dev(dev);

	return sysfs_emit(buf, "%s\n", virtio_mem_status_name(READ_ONCE(vm->status)));
}
static DEVICE_ATTR_RO(status);

/* Memory blocks per state: one file per state. */
#define VIRTIO_MEM_ATTR_MBS(_name, _state)				\
	VIRTIO_MEM_ATTR_U64(_name, READ_ONCE(vm->sbm.mb_count[_state]))

VIRTIO_MEM_ATTR_MBS(blocks_plugged_not_added, VIRTIO_MEM_SBM_MB_PLUGGED);
VIRTIO_MEM_ATTR_MBS(blocks_offline, VIRTIO_MEM_SBM_MB_OFFLINE);
VIRTIO_MEM_ATTR_MBS(blocks_offline_partial, VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL);
VIRTIO_MEM_ATTR_MBS(blocks_kernel, VIRTIO_MEM_SBM_MB_KERNEL);
VIRTIO_MEM_ATTR_MBS(blocks_kernel_partial, VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL);
VIRTIO_MEM_ATTR_MBS(blocks_movable, VIRTIO_MEM_SBM_MB_MOVABLE);
VIRTIO_MEM_ATTR_MBS(blocks_movable_partial,
		    VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL);

#define VIRTIO_MEM_ATTR_BBS(_name, _state)				\
	VIRTIO_MEM_ATTR_U64(_name, READ_ONCE(vm->bbm.bb_count[_state]))

VIRTIO_MEM_ATTR_BBS(big_blocks_plugged_not_added, VIRTIO_MEM_BBM_BB_PLUGGED);
VIRTIO_MEM_ATTR_BBS(big_blocks_added, VIRTIO_MEM_BBM_BB_ADDED);
VIRTIO_MEM_ATTR_BBS(big_blocks_fake_offline, VIRTIO_MEM_BBM_BB_FAKE_OFFLINE);

/* Requests by type and response. */
#define VIRTIO_MEM_ATTR_REQ(_name, _type, _resp)			\
	VIRTIO_MEM_ATTR_U64(_name,					\
		atomic64_read(&vm->stats.req[VIRTIO_MEM_REQ_##_type]	\
					    [VIRTIO_MEM_RESP_##_resp]))

VIRTIO_MEM_ATTR_REQ(requests_plug_ack, PLUG, ACK);
VIRTIO_MEM_ATTR_REQ(requests_plug_nack, PLUG, NACK);
VIRTIO_MEM_ATTR_REQ(requests_plug_busy, PLUG, BUSY);
VIRTIO_MEM_ATTR_REQ(requests_plug_error, PLUG, ERROR);
VIRTIO_MEM_ATTR_REQ(requests_unplug_ack, UNPLUG, ACK);
VIRTIO_MEM_ATTR_REQ(requests_unplug_nack, UNPLUG, NACK);
VIRTIO_MEM_ATTR_REQ(requests_unplug_busy, UNPLUG, BUSY);
VIRTIO_MEM_ATTR_REQ(requests_unplug_error, UNPLUG, ERROR);
VIRTIO_MEM_ATTR_REQ(requests_unplug_all_ack, UNPLUG_ALL, ACK);
VIRTIO_MEM_ATTR_REQ(requests_unplug_all_nack, UNPLUG_ALL, NACK);
VIRTIO_MEM_ATTR_REQ(requests_unplug_all_busy, UNPLUG_ALL, BUSY);
VIRTIO_MEM_ATTR_REQ(requests_unplug_all_error, UNPLUG_ALL, ERROR);

static struct attribute *virtio_mem_attrs[] = {
	&dev_attr_region_start.attr,
	&dev_attr_region_size.attr,
	&dev_attr_usable_region_size.attr,
	&dev_attr_block_size.attr,
	&dev_attr_subblock_size.attr,
	&dev_attr_memory_block_size.attr,
	&dev_attr_big_block_size.attr,
	&dev_attr_mode.attr,
	&dev_attr_node.attr,
	&dev_attr_requested_size.attr,
	&dev_attr_plugged_size.attr,
	&dev_attr_unusable_size.attr,
	&dev_attr_memmap_on_memory.attr,
	&dev_attr_status.attr,
	&dev_attr_blocks_plugged_not_added.attr,
	&dev_attr_blocks_offline.attr,
	&dev_attr_blocks_offline_partial.attr,
	&dev_attr_blocks_kernel.attr,
	&dev_attr_blocks_kernel_partial.attr,
	&dev_attr_blocks_movable.attr,
	&dev_attr_blocks_movable_partial.attr,
	&dev_attr_big_blocks_plugged_not_added.attr,
	&dev_attr_big_blocks_added.attr,
	&dev_attr_big_blocks_fake_offline.attr,
	&dev_attr_requests_plug_ack.attr,
	&dev_attr_requests_plug_nack.attr,
	&dev_attr_requests_plug_busy.attr,
	&dev_attr_requests_plug_error.attr,
	&dev_attr_requests_unplug_ack.attr,
	&dev_attr_requests_unplug_nack.attr,
	&dev_attr_requests_unplug_busy.attr,
	&dev_attr_requests_unplug_error.attr,
	&dev_attr_requests_unplug_all_ack.attr,
	&dev_attr_requests_unplug_all_nack.attr,
	&dev_attr_requests_unplug_all_busy.attr,
	&dev_attr_requests_unplug_all_error.attr,
	&dev_attr_bytes_plugged.attr,
	&dev_attr_bytes_unplugged.attr,
	&dev_attr_fake_offline_failures.attr,
	&dev_attr_offline_timeouts.attr,
	&dev_attr_retries.attr,
	NULL,
};

static const struct attribute_group virtio_mem_attr_group = {
	.name = "virtio_mem",
	.attrs = virtio_mem_attrs,
};

static const char virtio_mem_state_chars[VIRTIO_MEM_SBM_MB_COUNT] = {
	[VIRTIO_MEM_SBM_MB_UNUSED] = '-',
	[VIRTIO_MEM_SBM_MB_PLUGGED] = 'p',
	[VIRTIO_MEM_SBM_MB_OFFLINE] = 'O',
	[VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL] = 'o',
	[VIRTIO_MEM_SBM_MB_KERNEL] = 'K',
	[VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL] = 'k',
	[VIRTIO_MEM_SBM_MB_MOVABLE] = 'M',
	[VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL] = 'm',
};

static const char *const virtio_mem_state_names[VIRTIO_MEM_SBM_MB_COUNT] = {
	[VIRTIO_MEM_SBM_MB_UNUSED] = "unused",
	[VIRTIO_MEM_SBM_MB_PLUGGED] = "plugged",
	[VIRTIO_MEM_SBM_MB_OFFLINE] = "offline",
	[VIRTIO_MEM_SBM_MB_OFFLINE_PARTIAL] = "offline_partial",
	[VIRTIO_MEM_SBM_MB_KERNEL] = "kernel",
	[VIRTIO_MEM_SBM_MB_KERNEL_PARTIAL] = "kernel_partial",
	[VIRTIO_MEM_SBM_MB_MOVABLE] = "movable",
	[VIRTIO_MEM_SBM_MB_MOVABLE_PARTIAL] = "movable_partial",
};

static const char *const virtio_mem_bb_state_names[VIRTIO_MEM_BBM_BB_COUNT] = {
	[VIRTIO_MEM_BBM_BB_UNUSED] = "unused",
	[VIRTIO_MEM_BBM_BB_PLUGGED] = "plugged",
	[VIRTIO_MEM_BBM_BB_ADDED] = "added",
	[VIRTIO_MEM_BBM_BB_FAKE_OFFLINE] = "fake_offline",
};

/*
 * BBM: one line per big block that is not unused:
 *   bb<N> <state> memory<first>-memory<last>
 */
static void virtio_mem_bbm_blocks_show(struct seq_file *m,
				       struct virtio_mem *vm)
{
	const unsigned long mbs = div64_u64(vm->geo.bb_size, vm->geo.mb_size);
	enum virtio_mem_bbm_bb_state state;
	unsigned long bb_id;

	seq_printf(m, "# big block size %llu, memory block size %llu\n",
		   vm->geo.bb_size, vm->geo.mb_size);
	for (bb_id = vm->bbm.first_bb_id; bb_id <= vm->bbm.last_bb_id;
	     bb_id++) {
		state = virtio_mem_bbm_get_bb_state(&vm->bbm, bb_id);
		if (state == VIRTIO_MEM_BBM_BB_UNUSED)
			continue;
		seq_printf(m, "bb%lu %s memory%lu-memory%lu\n", bb_id,
			   virtio_mem_bb_state_names[state], bb_id * mbs,
			   (bb_id + 1) * mbs - 1);
	}
}

/*
 * One line per used memory block:
 *   memory<N> <state> <plugged>/<subblocks> <map>
 * where the map has one character per subblock: '#' plugged, '.' not.
 */
static int virtio_mem_blocks_show(struct seq_file *m, void *unused)
{
	struct virtio_mem *vm = m->private;
	enum virtio_mem_sbm_mb_state state;
	unsigned long mb_id;
	unsigned int sb_id;

	mutex_lock(&vm->hotplug_mutex);
	if (vm->geo.bbm) {
		virtio_mem_bbm_blocks_show(m, vm);
		mutex_unlock(&vm->hotplug_mutex);
		return 0;
	}
	seq_printf(m, "# memory block size %llu, subblock size %llu, legend %.*s\n",
		   vm->geo.mb_size, vm->geo.sb_size,
		   (int)sizeof(virtio_mem_state_chars), virtio_mem_state_chars);
	for (mb_id = vm->sbm.first_mb_id; mb_id < vm->sbm.next_mb_id; mb_id++) {
		state = virtio_mem_sbm_get_mb_state(&vm->sbm, mb_id);
		seq_printf(m, "memory%lu %s %u/%u ", mb_id,
			   virtio_mem_state_names[state],
			   virtio_mem_sbm_nr_sb_plugged(&vm->sbm, mb_id),
			   vm->sbm.sbs_per_mb);
		for (sb_id = 0; sb_id < vm->sbm.sbs_per_mb; sb_id++)
			seq_putc(m, virtio_mem_sbm_test_sb_plugged(&vm->sbm,
								   mb_id, sb_id,
								   1) ?
				 '#' : '.');
		seq_putc(m, '\n');
	}
	mutex_unlock(&vm->hotplug_mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(virtio_mem_blocks);

/* <debugfs>/virtio_mem/, one directory per device below it. */
static struct dentry *virtio_mem_debugfs_root;

/**
 * virtio_mem_sysfs_module_init() - create the module's debugfs directory
 *
 * Call before any device can probe. A missing debugfs is not an error.
 */
void __init virtio_mem_sysfs_module_init(void)
{
	virtio_mem_debugfs_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
}

/**
 * virtio_mem_sysfs_module_exit() - undo virtio_mem_sysfs_module_init()
 *
 * Call once no device is bound.
 */
void virtio_mem_sysfs_module_exit(void)
{
	debugfs_remove_recursive(virtio_mem_debugfs_root);
}

/**
 * virtio_mem_sysfs_init() - create the sysfs group and the debugfs map
 * @vm: the device
 *
 * A missing debugfs is not an error; a missing sysfs group is.
 *
 * Return: 0 or a negative errno.
 */
int virtio_mem_sysfs_init(struct virtio_mem *vm)
{
	int rc;

	rc = sysfs_create_group(&vm->vdev->dev.kobj, &virtio_mem_attr_group);
	if (rc)
		return rc;
	vm->debugfs = debugfs_create_dir(dev_name(&vm->vdev->dev),
					 virtio_mem_debugfs_root);
	debugfs_create_file("blocks", 0400, vm->debugfs, vm,
			    &virtio_mem_blocks_fops);
	return 0;
}

/**
 * virtio_mem_sysfs_exit() - undo virtio_mem_sysfs_init()
 * @vm: the device
 */
void virtio_mem_sysfs_exit(struct virtio_mem *vm)
{
	debugfs_remove_recursive(vm->debugfs);
	sysfs_remove_group(&vm->vdev->dev.kobj, &virtio_mem_attr_group);
}
