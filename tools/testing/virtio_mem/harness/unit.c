// SPDX-License-Identifier: GPL-2.0
/*
 * Runner of the table-driven tests (test_*.c). Prints "ok N - name" or
 * "not ok N - name" per case, and the reason under a failing one.
 *
 *   vmunit [substring]   run only the cases whose name contains it
 */
#include <stdarg.h>

#include "unit.h"

static char vmu_reason[1024];
void (*vmu_after_case)(void);

void vmu_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(vmu_reason, sizeof(vmu_reason), "%s:%d: ", file, line);
	va_start(ap, fmt);
	vsnprintf(vmu_reason + n, sizeof(vmu_reason) - n, fmt, ap);
	va_end(ap);
}

bool vmu_build(struct virtio_mem_sbm *sbm, unsigned long first_mb_id,
	       unsigned long last_mb_id, unsigned int sbs_per_mb,
	       const char *const *pic)
{
	unsigned long mb_id;
	unsigned int sb;
	const char *p;
	bool online, movable;

	if (virtio_mem_sbm_init(sbm, first_mb_id, last_mb_id, sbs_per_mb))
		return false;
	for (; *pic; pic++) {
		p = *pic;
		if (!strcmp(p, "-"))
			continue;
		if (virtio_mem_sbm_new_mb(sbm, &mb_id) ||
		    strlen(p) != 2 + sbs_per_mb || p[1] != ':')
			return false;
		for (sb = 0; sb < sbs_per_mb; sb++)
			if (p[2 + sb] == '#')
				virtio_mem_sbm_set_sb_plugged(sbm, mb_id, sb, 1);
		switch (p[0]) {
		case 'U':
			break;
		case 'P':
			virtio_mem_sbm_set_mb_state(sbm, mb_id,
						    VIRTIO_MEM_SBM_MB_PLUGGED);
			break;
		case 'O':
		case 'K':
		case 'M':
			online = p[0] != 'O';
			movable = p[0] == 'M';
			virtio_mem_sbm_set_mb_state(sbm, mb_id,
				virtio_mem_sbm_state_for(sbm, mb_id, online,
							 movable));
			break;
		default:
			return false;
		}
	}
	return true;
}

const char *vmu_render(const struct virtio_mem_sbm *sbm, char *buf,
		       size_t len)
{
	static const char letter[] = "UPOOKKMM";
	unsigned long mb_id;
	unsigned int sb;
	size_t n = 0;

	buf[0] = 0;
	for (mb_id = sbm->first_mb_id; mb_id < sbm->next_mb_id; mb_id++) {
		if (n + sbm->sbs_per_mb + 4 >= len)
			break;
		n += snprintf(buf + n, len - n, "%s%c:", n ? " " : "",
			      letter[virtio_mem_sbm_get_mb_state(sbm, mb_id)]);
		for (sb = 0; sb < sbm->sbs_per_mb; sb++)
			buf[n++] = virtio_mem_sbm_test_sb_plugged(sbm, mb_id,
								  sb, 1) ?
				   '#' : '.';
		buf[n] = 0;
	}
	return buf;
}

int main(int argc, char **argv)
{
	const struct vmu_case *const tables[] = {
		vmu_state_cases, vmu_policy_cases, vmu_sbm_cases, NULL,
	};
	const struct vmu_case *const *t;
	const struct vmu_case *c;
	unsigned int n = 0, failed = 0;
	bool ok;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (t = tables; *t; t++) {
		for (c = *t; c->name; c++) {
			if (argc > 1 && !strstr(c->name, argv[1]))
				continue;
			vmu_reason[0] = 0;
			kstub_warnings = 0;
			kstub_fail_allocs = 0;
			kstub_fail_nth = 0;
			ok = c->fn();
			if (vmu_after_case) {
				vmu_after_case();
				vmu_after_case = NULL;
			}
			if (ok && kstub_warnings)
				ok = false, snprintf(vmu_reason, sizeof(vmu_reason),
						     "the driver warned");
			printf("%s %u - %s\n", ok ? "ok" : "not ok", ++n,
			       c->name);
			if (!ok) {
				printf("#   %s\n", vmu_reason);
				failed++;
			}
		}
	}
	printf("# table: %u passed, %u failed\n", n - failed, failed);
	return failed ? 1 : 0;
}
