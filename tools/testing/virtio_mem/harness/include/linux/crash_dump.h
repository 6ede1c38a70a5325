/* SPDX-License-Identifier: GPL-2.0 */
/* Harness stub: no kdump here (CONFIG_PROC_VMCORE is not set). */
