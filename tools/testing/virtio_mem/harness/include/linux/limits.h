/* SPDX-License-Identifier: GPL-2.0 */
/* Harness stub: the uapi limits that libc wants, then ../kstub.h. */
#include_next <linux/limits.h>
#include <kstub.h>
