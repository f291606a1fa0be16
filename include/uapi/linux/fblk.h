/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * fblk: files exported as block devices through asynchronous kiocb I/O.
 *
 * Two kinds of node speak this ABI:
 *   /dev/fblk-control  adds, removes and finds devices (FBLK_CTL_*);
 *   /dev/fblkN         configures, inspects and detaches one device.
 *
 * Every struct carries reserved space for later fields.  The kernel refuses
 * (EINVAL) any reserved byte or flag bit it does not know, so a field added
 * later can never be silently ignored by an older module.
 */
#ifndef _UAPI_LINUX_FBLK_H
#define _UAPI_LINUX_FBLK_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define FBLK_CONTROL_NAME	"fblk-control"
#define FBLK_DISK_PREFIX	"fblk"

/* Upper bounds of what a device may ask for; 0 in a request means "default". */
#define FBLK_MAX_HW_QUEUES	64
#define FBLK_MAX_QUEUE_DEPTH	1024
#define FBLK_MIN_BLOCK_SIZE	512
#define FBLK_MAX_BLOCK_SIZE	4096

#define FBLK_PATH_SIZE		256
#define FBLK_MAX_POOL_SIZE	512

/* struct fblk_config.flags and struct fblk_info.flags */
enum {
	FBLK_FL_READ_ONLY	= 1 << 0,	/* refuse writes */
	FBLK_FL_AUTOCLEAR	= 1 << 1,	/* detach on last close */
	FBLK_FL_PARTSCAN	= 1 << 2,	/* scan for partitions */
	FBLK_FL_DIRECT_IO	= 1 << 3,	/* O_DIRECT kiocbs on the backing file */
};

#define FBLK_FL_SETTABLE	(FBLK_FL_READ_ONLY | FBLK_FL_AUTOCLEAR | \
				 FBLK_FL_PARTSCAN | FBLK_FL_DIRECT_IO)

/* How reads and writes reach the backing file. */
enum fblk_io_mode {
	FBLK_IO_BUFFERED	= 0,	/* through the backing file's page cache */
	FBLK_IO_DIRECT		= 1,	/* O_DIRECT, bypassing it */
	FBLK_IO_DONTCACHE	= 2,	/* buffered, pages dropped once done */
	FBLK_IO_AUTO		= 3,	/* direct, else dontcache, else buffered */
};

/* Who issues the kiocbs. */
enum fblk_submit {
	FBLK_SUBMIT_ASYNC	= 0,	/* NOWAIT inline, waitq retries, pool */
	FBLK_SUBMIT_THREADS	= 1,	/* every I/O blocking in the pool */
};

/* How the backing file reads ahead for buffered reads. */
enum fblk_ra_policy {
	FBLK_RA_AUTO		= 0,	/* per queue: streams grow, others exact */
	FBLK_RA_SEQUENTIAL	= 1,	/* every read starts a readahead stream */
	FBLK_RA_RANDOM		= 2,	/* read exactly what is asked */
	FBLK_RA_OFF		= 3,	/* the kernel's default heuristics */
};

/* struct fblk_info.state */
enum fblk_state {
	FBLK_STATE_UNBOUND	= 0,
	FBLK_STATE_BOUND	= 1,
	FBLK_STATE_RUNDOWN	= 2,	/* detach under way */
};

/* struct fblk_params.mask: which fields a request sets. */
enum {
	FBLK_PARAM_IO_MODE	= 1 << 0,
	FBLK_PARAM_SUBMIT	= 1 << 1,
	FBLK_PARAM_POOL_SIZE	= 1 << 2,
	FBLK_PARAM_RA_POLICY	= 1 << 3,
	FBLK_PARAM_RA_KB	= 1 << 4,
	FBLK_PARAM_INLINE_DEPTH	= 1 << 5,
};

#define FBLK_PARAM_ALL		(FBLK_PARAM_IO_MODE | FBLK_PARAM_SUBMIT | \
				 FBLK_PARAM_POOL_SIZE | FBLK_PARAM_RA_POLICY | \
				 FBLK_PARAM_RA_KB | FBLK_PARAM_INLINE_DEPTH)

/* Largest readahead window, in KiB. */
#define FBLK_MAX_RA_KB		65536

/**
 * struct fblk_params - run-time settings of a bound device
 * @mask:      FBLK_PARAM_* naming the fields to apply; others are ignored
 *             (in FBLK_GET_INFO: every field the module knows)
 * @io_mode:   enum fblk_io_mode asked for (FBLK_IO_AUTO stays AUTO here;
 *             struct fblk_info.io_mode says what it chose)
 * @submit:    enum fblk_submit
 * @pool_size: workers of the device's pool, 1..FBLK_MAX_POOL_SIZE
 * @ra_policy: enum fblk_ra_policy
 * @ra_kb:     readahead window of the backing file in KiB, 0..FBLK_MAX_RA_KB;
 *             0: the backing device's own read_ahead_kb
 * @inline_depth: requests in flight per hardware queue up to which the
 *             submitting context issues a request itself; beyond, the
 *             queue's issuer (a worker) does, in parallel with the submitter;
 *             0..FBLK_MAX_QUEUE_DEPTH
 * @reserved32: must be 0
 * @reserved:  must be 0
 *
 * Applying them drains the device's I/O first, then resumes it.
 */
struct fblk_params {
	__u32 mask;
	__u32 io_mode;
	__u32 submit;
	__u32 pool_size;
	__u32 ra_policy;
	__u32 ra_kb;
	__u32 inline_depth;
	__u32 reserved32;
	__u64 reserved[4];
};

/**
 * struct fblk_ctl_add - FBLK_CTL_ADD argument
 * @id:           in: device number wanted, or -1 for the first free one;
 *                out: the number of the device made
 * @nr_hw_queues: hardware queues, 0 for the module's default
 * @queue_depth:  tags per hardware queue, 0 for the module's default
 * @flags:        none defined yet, must be 0
 * @reserved:     must be 0
 */
struct fblk_ctl_add {
	__s32 id;
	__u32 nr_hw_queues;
	__u32 queue_depth;
	__u32 flags;
	__u64 reserved[6];
};

/**
 * struct fblk_config - FBLK_CONFIGURE argument: attach in one step
 * @fd:         open file descriptor of the backing file or block device;
 *              opened read-only, it makes the device read-only
 * @block_size: logical block size, 512..4096 and a power of two; 0 means 512
 * @offset:     where the device starts in the backing file, a multiple of 512
 * @sizelimit:  the device's size at most, a multiple of 512; 0 for no limit
 * @flags:      FBLK_FL_*
 * @params:     run-time settings to start with (params.mask 0: defaults);
 *              FBLK_FL_DIRECT_IO is the same as io_mode FBLK_IO_DIRECT, and
 *              asking for both it and another io_mode is EINVAL
 */
struct fblk_config {
	__u32 fd;
	__u32 block_size;
	__u64 offset;
	__u64 sizelimit;
	__u32 flags;
	__u32 __pad;
	struct fblk_params params;
};

/**
 * struct fblk_info - FBLK_GET_INFO result
 * @number:        N of /dev/fblkN
 * @state:         enum fblk_state
 * @flags:         FBLK_FL_* in effect (READ_ONLY also when the file forced it;
 *                 DIRECT_IO when io_mode is FBLK_IO_DIRECT)
 * @io_mode:       enum fblk_io_mode in effect (never FBLK_IO_AUTO)
 * @backing_dev:   st_dev of the backing file (new_encode_dev form)
 * @backing_inode: st_ino of the backing file
 * @backing_rdev:  st_rdev when the backing file is a block device, else 0
 * @offset:        as configured
 * @sizelimit:     as configured
 * @size:          the device's size in bytes
 * @block_size:    logical block size in bytes
 * @nr_hw_queues:  hardware queues
 * @queue_depth:   tags per hardware queue
 * @backing_file:  path of the backing file, NUL terminated, possibly cut short
 * @params:        the run-time settings as asked for
 */
struct fblk_info {
	__u32 number;
	__u32 state;
	__u32 flags;
	__u32 io_mode;
	__u64 backing_dev;
	__u64 backing_inode;
	__u64 backing_rdev;
	__u64 offset;
	__u64 sizelimit;
	__u64 size;
	__u32 block_size;
	__u32 nr_hw_queues;
	__u32 queue_depth;
	__u32 __pad;
	__u8  backing_file[FBLK_PATH_SIZE];
	struct fblk_params params;
};

#define FBLK_IOCTL_MAGIC	0xFB

/* On /dev/fblkN */
#define FBLK_CONFIGURE		_IOW(FBLK_IOCTL_MAGIC, 0x01, struct fblk_config)
#define FBLK_DETACH		_IO(FBLK_IOCTL_MAGIC, 0x02)
#define FBLK_GET_INFO		_IOR(FBLK_IOCTL_MAGIC, 0x03, struct fblk_info)
#define FBLK_SET_CAPACITY	_IO(FBLK_IOCTL_MAGIC, 0x04)
#define FBLK_SET_PARAMS		_IOW(FBLK_IOCTL_MAGIC, 0x05, struct fblk_params)

/* On /dev/fblk-control; each returns a device number or -1 with errno set */
#define FBLK_CTL_ADD		_IOWR(FBLK_IOCTL_MAGIC, 0x80, struct fblk_ctl_add)
#define FBLK_CTL_REMOVE		_IO(FBLK_IOCTL_MAGIC, 0x81)	/* arg: number */
#define FBLK_CTL_GET_FREE	_IO(FBLK_IOCTL_MAGIC, 0x82)

#endif /* _UAPI_LINUX_FBLK_H */
