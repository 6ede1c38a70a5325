// SPDX-License-Identifier: GPL-2.0
/*
 * A test module for the VM tier: owns the online_page callback while it is
 * loaded, as another memory hot-plug driver (hv_balloon, the Xen balloon)
 * would. virtio_mem cannot take the callback then, so its probe fails at
 * that step, and the tests see what a failed probe leaves behind.
 * Memory onlined meanwhile goes to the buddy as without a callback.
 */

#include <linux/memory_hotplug.h>
#include <linux/module.h>

static void virtio_mem_test_online_page(struct page *page, unsigned int order)
{
	generic_online_page(page, order);
}

static int __init virtio_mem_test_init(void)
{
	return set_online_page_callback(&virtio_mem_test_online_page);
}
module_init(virtio_mem_test_init);

static void __exit virtio_mem_test_exit(void)
{
	restore_online_page_callback(&virtio_mem_test_online_page);
}
module_exit(virtio_mem_test_exit);
MODULE_DESCRIPTION("virtio-mem VM tests: hold the online_page callback");
MODULE_LICENSE("GPL");
