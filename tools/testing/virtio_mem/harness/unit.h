/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Table-driven unit tests: one case per row, a picture of the memory blocks
 * and what to expect, in words.
 *
 * Pictures: one string per memory block, lowest first, as "S:bits", where S
 * is the block's state and bits one character per subblock ('#' plugged,
 * '.' not). States: U unused, P plugged but not added, O offline, K online
 * in a kernel zone, M online in ZONE_MOVABLE (full or partial follows from
 * the bits). "-" alone is a block that was never used (beyond next_mb_id).
 */
#ifndef _VMH_UNIT_H
#define _VMH_UNIT_H

#include "model.h"

struct vmu_case {
	const char *name;
	bool (*fn)(void);
};

void vmu_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define EXPECT(cond, ...) do {					\
	if (!(cond)) {						\
		vmu_fail(__FILE__, __LINE__, __VA_ARGS__);	\
		return false;					\
	}							\
} while (0)

#define EXPECT_NO_WARN() do {					\
	EXPECT(!kstub_warnings, "the driver warned");		\
} while (0)

/* Build @sbm from a picture (see above), blocks from @first_mb_id on. */
bool vmu_build(struct virtio_mem_sbm *sbm, unsigned long first_mb_id,
	       unsigned long last_mb_id, unsigned int sbs_per_mb,
	       const char *const *pic);
/* Render @sbm as a picture into @buf, blocks separated by spaces. */
const char *vmu_render(const struct virtio_mem_sbm *sbm, char *buf,
		       size_t len);

/* Set by a case that needs cleaning up even when it fails early. */
extern void (*vmu_after_case)(void);

extern const struct vmu_case vmu_state_cases[];
extern const struct vmu_case vmu_policy_cases[];
extern const struct vmu_case vmu_sbm_cases[];

#endif /* _VMH_UNIT_H */
