// SPDX-License-Identifier: GPL-2.0
#include "unit.h"
const struct vmu_case vmu_sbm_cases[] = { { NULL, NULL } };
