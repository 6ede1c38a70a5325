/* SPDX-License-Identifier: GPL-2.0 */
/* Harness stub: see ../kstub.h. */
#include <kstub.h>
