/* SPDX-License-Identifier: GPL-2.0 */
/* Harness stub: libc needs the real one (its <errno.h> includes it). */
#include_next <linux/errno.h>
