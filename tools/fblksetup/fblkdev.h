/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fblkdev.h - how fblksetup talks to the fblk driver: /dev/fblk-control,
 * /dev/fblkN and /sys/block/fblkN/fblk/.
 *
 * Every function returns 0 (or a device number) on success and a negative
 * errno on failure; callers print the message, because only they know
 * whether the device or the file is the thing to name.
 */
#ifndef FBLKSETUP_FBLKDEV_H
#define FBLKSETUP_FBLKDEV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/fblk.h>

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

/*
 * The run-time settings io_mode, submit and pool_size came with
 * FBLK_SET_PARAMS; ra_policy, ra_kb and inline_depth later, with
 * FBLK_MAX_RA_KB.  Built against an older header, their options are left out.
 */
#ifdef FBLK_MAX_RA_KB
#define HAVE_FBLK_RA_PARAMS	1
#endif

#define FBLK_DEV_DIR		"/dev"
#define FBLK_SYSFS_DIR		"/sys/block"
#define FBLK_CONTROL_PATH	FBLK_DEV_DIR "/" FBLK_CONTROL_NAME

/* Room for "/dev/fblk4294967295" and a terminating NUL. */
#define FBLK_NAME_SIZE		32

/* What fblksetup knows about one device, bound or not. */
struct fblkdev {
	unsigned int number;
	char path[FBLK_NAME_SIZE];	/* /dev/fblkN */
	struct fblk_info info;		/* valid when info.state is not unbound */
	dev_t devt;			/* of /dev/fblkN itself, 0 if unknown */
	char backing_file[PATH_MAX];	/* sysfs's full path, else info's */
};

/* "/dev/fblk3", "fblk3" or a node/symlink that resolves to one -> 3. */
int fblk_parse_name(const char *arg, unsigned int *number);
void fblk_path(unsigned int number, char *buf, size_t size);

/* Is the fblk module loaded (or built in)? */
bool fblk_module_loaded(void);

/* Does /sys/block/fblkN exist? */
bool fblk_exists(unsigned int number);
/* Is the device attached (sysfs state bound or rundown)? */
bool fblk_is_bound(unsigned int number);
/* nr_hw_queues and queue_depth of a device, bound or not, from sysfs. */
int fblk_get_geometry(unsigned int number, unsigned int *queues,
		      unsigned int *depth);

/*
 * Possible CPUs (0 if unknown): blk-mq makes no more hardware queues than
 * that, so a device asked for more has this many.
 */
unsigned int fblk_possible_cpus(void);

/* Every device present, sorted by number; free() *numbers when done. */
int fblk_list_devices(unsigned int **numbers, size_t *count);

/*
 * Open /dev/fblkN.  A node that sysfs already knows about but devtmpfs has
 * not created yet is waited for, briefly.  O_RDWR falls back to O_RDONLY
 * when the device refuses writers (EROFS/EACCES) if fallback_ro is set.
 */
int fblk_open_device(unsigned int number, int flags, bool fallback_ro);
int fblk_open_control(void);
/*
 * Open /dev/fblk-control, first loading the module if it is not loaded (as
 * loop-control's devname alias does for loop; fblk's control node has a
 * dynamic minor, so nothing makes it before the module is in).  The
 * modprobe run is $FBLK_MODPROBE, "modprobe" by default; set empty, none.
 * *modprobe_failed says that loading was tried and did not work.
 */
int fblk_open_control_load(bool *modprobe_failed);

/*
 * Fill @dev for device @number: FBLK_GET_INFO, or sysfs when the caller may
 * not open the node (not root).  -ENXIO when the device is not bound.
 */
int fblk_read_device(unsigned int number, struct fblkdev *dev);

#ifdef HAVE_FBLK_RA_PARAMS
/* enum fblk_ra_policy's names, as in sysfs; NULL for a gap. */
extern const char *const fblk_ra_policy_names[FBLK_RA_OFF + 1];
/* Its name, or "?" for a value this fblksetup does not know. */
const char *fblk_ra_policy_name(unsigned int policy);
#endif

/*
 * The engine's counters of a device: /sys/block/fblkN/fblk/stats as it is,
 * "name value" a line, NUL terminated.  -ENOENT if the module has none.
 */
int fblk_read_stats(unsigned int number, char *buf, size_t size);

/* Kernel's new_encode_dev() form (struct fblk_info.backing_dev) -> dev_t. */
dev_t fblk_decode_dev(uint64_t encoded);

#endif /* FBLKSETUP_FBLKDEV_H */
