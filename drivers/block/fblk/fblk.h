/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fblk: files exported as block devices through asynchronous kiocb I/O.
 *
 * A request's life, file by file:
 *   main.c   module parameters, the control device, module load and unload
 *   dev.c    a device's life: add, configure (attach), detach, remove, ioctls
 *   mq.c     blk-mq: the tag set, ->queue_rq and request completion
 *   io.c     the I/O engine: kiocbs on the backing file and their completion
 *   sysfs.c  /sys/block/fblkN/fblk/
 */
#ifndef _FBLK_H
#define _FBLK_H

#include <linux/blk-mq.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <uapi/linux/fblk.h>

#include "compat.h"

/* Partitions per device: minors are split as loop splits them. */
#define FBLK_PART_SHIFT		4
#define FBLK_MAX_DEVICES	(1 << (MINORBITS - FBLK_PART_SHIFT))

/*
 * A request spanning several bios needs its bvecs gathered in one array for
 * the iov_iter; this many fit in the pdu, more (rare) are allocated.
 */
#define FBLK_INLINE_BVECS	8

/* Internal states beyond the ABI's: a device being removed takes no opens. */
#define FBLK_STATE_DELETING	(FBLK_STATE_RUNDOWN + 1)

struct fblk_device {
	int			number;
	/* Serialises configure, detach, open-vs-remove; guards the fields below. */
	struct mutex		lock;
	int			state;
	struct file		*backing;
	loff_t			offset;
	loff_t			sizelimit;
	unsigned int		block_size;
	unsigned int		flags;		/* FBLK_FL_* in effect */
	gfp_t			old_gfp_mask;
	bool			can_discard;

	struct blk_mq_tag_set	tag_set;
	struct gendisk		*disk;
	/* Runs what must block: buffered I/O, fsync, fallocate, continuations. */
	struct workqueue_struct	*wq;
};

/* The blk-mq pdu: everything one request needs, preallocated per tag. */
struct fblk_cmd {
	struct fblk_device	*dev;
	struct kiocb		iocb;
	struct work_struct	work;
	/* Bytes of the request already transferred by earlier partial I/O. */
	unsigned int		done;
	/* Submitter and ->ki_complete: the last to let go finishes the kiocb. */
	atomic_t		ref;
	long			ret;
	blk_status_t		status;
	struct bio_vec		*bvec;		/* gathered bvecs, or NULL */
	unsigned int		nr_bvec;
	struct bio_vec		inline_bvec[FBLK_INLINE_BVECS];
};

static inline struct request *fblk_cmd_rq(struct fblk_cmd *cmd)
{
	return blk_mq_rq_from_pdu(cmd);
}

extern unsigned int fblk_default_hw_queues;
extern unsigned int fblk_default_queue_depth;

/* dev.c */
int fblk_dev_add(int id, unsigned int nr_hw_queues, unsigned int queue_depth);
int fblk_dev_remove(int id);
int fblk_dev_get_free(void);
void fblk_dev_remove_all(void);
int fblk_dev_init(void);
void fblk_dev_exit(void);

/* mq.c */
int fblk_init_tag_set(struct fblk_device *dev, unsigned int nr_hw_queues,
		      unsigned int queue_depth);

/* io.c */
void fblk_io_work(struct work_struct *work);
void fblk_cmd_prepare(struct fblk_cmd *cmd);

/* sysfs.c */
extern const struct attribute_group *fblk_disk_groups[];

#endif /* _FBLK_H */
