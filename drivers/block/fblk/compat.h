/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The API differences between the kernel lines fblk supports (Debian's 6.1,
 * 6.12 and 7.x), absorbed here so that the rest of the driver is written
 * against one interface.  Keyed on LINUX_VERSION_CODE only.
 */
#ifndef _FBLK_COMPAT_H
#define _FBLK_COMPAT_H

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/interrupt.h>
#include <linux/smp.h>
#include <linux/workqueue.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/version.h>

/*
 * Largest request, in sectors: without a limit of its own a queue takes
 * BLK_SAFE_MAX_SECTORS (255), and a 128 KiB read reached us as 127.5 KiB
 * plus a 512-byte request at an odd offset.  1.25 MiB, as loop's.
 */
#define FBLK_MAX_HW_SECTORS		2560

/* Queue limits an attach sets; applied by fblk_apply_limits(). */
struct fblk_limits {
	unsigned int logical_block_size;
	unsigned int max_discard_sectors;
	unsigned int discard_granularity;
	unsigned int max_write_zeroes_sectors;
};

/* 6.5: block_device_operations take a gendisk and a blk_mode_t. */
#if KERNEL_VERSION(6, 5, 0) <= LINUX_VERSION_CODE
#define fblk_mode_t			blk_mode_t
#define FBLK_MODE_WRITE			BLK_OPEN_WRITE
#define FBLK_DEFINE_BDOPS_OPEN(fn)					\
	static int fn##_bdops(struct gendisk *disk, blk_mode_t mode)	\
	{								\
		return fn(disk, mode);					\
	}
#define FBLK_DEFINE_BDOPS_RELEASE(fn)					\
	static void fn##_bdops(struct gendisk *disk)			\
	{								\
		fn(disk);						\
	}
#else
#define fblk_mode_t			fmode_t
#define FBLK_MODE_WRITE			FMODE_WRITE
#define FBLK_DEFINE_BDOPS_OPEN(fn)					\
	static int fn##_bdops(struct block_device *bdev, fmode_t mode)	\
	{								\
		return fn(bdev->bd_disk, mode);				\
	}
#define FBLK_DEFINE_BDOPS_RELEASE(fn)					\
	static void fn##_bdops(struct gendisk *disk, fmode_t mode)	\
	{								\
		fn(disk);						\
	}
#endif

/* 7.0: blk_mq_ops->init_request takes the NUMA node as an int. */
#if KERNEL_VERSION(7, 0, 0) <= LINUX_VERSION_CODE
#define fblk_numa_node_t		int
#else
#define fblk_numa_node_t		unsigned int
#endif

/* 6.14: BLK_MQ_F_SHOULD_MERGE is gone, merging is the default. */
#if KERNEL_VERSION(6, 14, 0) <= LINUX_VERSION_CODE
#define FBLK_TAG_SET_FLAGS		0
#else
#define FBLK_TAG_SET_FLAGS		BLK_MQ_F_SHOULD_MERGE
#endif

/* 6.14: freezing returns memalloc flags that unfreezing must restore. */
#if KERNEL_VERSION(6, 14, 0) <= LINUX_VERSION_CODE
static inline unsigned int fblk_freeze_queue(struct request_queue *q)
{
	return blk_mq_freeze_queue(q);
}

static inline void fblk_unfreeze_queue(struct request_queue *q,
				       unsigned int memflags)
{
	blk_mq_unfreeze_queue(q, memflags);
}
#else
static inline unsigned int fblk_freeze_queue(struct request_queue *q)
{
	blk_mq_freeze_queue(q);
	return 0;
}

static inline void fblk_unfreeze_queue(struct request_queue *q,
				       unsigned int memflags)
{
	blk_mq_unfreeze_queue(q);
}
#endif

/*
 * 6.9: the disk is allocated with its queue_limits, which are changed with
 * queue_limits_start_update()/commit_update(); 6.11: write cache and FUA
 * are limits features rather than queue flags.
 */
#if KERNEL_VERSION(6, 11, 0) <= LINUX_VERSION_CODE
static inline struct gendisk *fblk_alloc_disk(struct blk_mq_tag_set *set,
					      void *queuedata)
{
	struct queue_limits lim = {
		.features = BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA,
		.max_hw_sectors = FBLK_MAX_HW_SECTORS,
	};

	return blk_mq_alloc_disk(set, &lim, queuedata);
}
#elif KERNEL_VERSION(6, 9, 0) <= LINUX_VERSION_CODE
static inline struct gendisk *fblk_alloc_disk(struct blk_mq_tag_set *set,
					      void *queuedata)
{
	struct queue_limits lim = {
		.max_hw_sectors = FBLK_MAX_HW_SECTORS,
	};
	struct gendisk *disk = blk_mq_alloc_disk(set, &lim, queuedata);

	if (!IS_ERR(disk)) {
		blk_queue_write_cache(disk->queue, true, true);
		blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	}
	return disk;
}
#else
static inline struct gendisk *fblk_alloc_disk(struct blk_mq_tag_set *set,
					      void *queuedata)
{
	struct gendisk *disk = blk_mq_alloc_disk(set, queuedata);

	if (!IS_ERR(disk)) {
		blk_queue_max_hw_sectors(disk->queue, FBLK_MAX_HW_SECTORS);
		blk_queue_write_cache(disk->queue, true, true);
		blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	}
	return disk;
}
#endif

#if KERNEL_VERSION(6, 9, 0) <= LINUX_VERSION_CODE
static inline int fblk_apply_limits(struct request_queue *q,
				    const struct fblk_limits *fl)
{
	struct queue_limits lim = queue_limits_start_update(q);
	unsigned int memflags;
	int err;

	lim.logical_block_size = fl->logical_block_size;
	lim.physical_block_size = fl->logical_block_size;
	lim.io_min = fl->logical_block_size;
	lim.max_hw_discard_sectors = fl->max_discard_sectors;
	lim.discard_granularity = fl->discard_granularity;
	lim.max_write_zeroes_sectors = fl->max_write_zeroes_sectors;

	memflags = fblk_freeze_queue(q);
	err = queue_limits_commit_update(q, &lim);
	fblk_unfreeze_queue(q, memflags);
	return err;
}
#else
static inline int fblk_apply_limits(struct request_queue *q,
				    const struct fblk_limits *fl)
{
	unsigned int memflags = fblk_freeze_queue(q);

	blk_queue_logical_block_size(q, fl->logical_block_size);
	blk_queue_physical_block_size(q, fl->logical_block_size);
	blk_queue_io_min(q, fl->logical_block_size);
	blk_queue_max_discard_sectors(q, fl->max_discard_sectors);
	q->limits.discard_granularity = fl->discard_granularity;
	blk_queue_max_write_zeroes_sectors(q, fl->max_write_zeroes_sectors);
	fblk_unfreeze_queue(q, memflags);
	return 0;
}
#endif

/*
 * 6.9: BH workqueues replace tasklets.  fblk_bh runs a function in softirq
 * context on a given CPU: a work item of system_bh_wq queued there, or
 * before 6.9 a tasklet, scheduled from another CPU by an IPI (tasklets run
 * where they are scheduled).  Queued with interrupts off.
 */
struct fblk_bh;
typedef void (*fblk_bh_fn)(struct fblk_bh *bh);

#if KERNEL_VERSION(6, 9, 0) <= LINUX_VERSION_CODE
struct fblk_bh {
	struct work_struct	work;
	fblk_bh_fn		fn;
};

static inline void fblk_bh_work(struct work_struct *work)
{
	struct fblk_bh *bh = container_of(work, struct fblk_bh, work);

	bh->fn(bh);
}

static inline void fblk_bh_init(struct fblk_bh *bh, fblk_bh_fn fn)
{
	bh->fn = fn;
	INIT_WORK(&bh->work, fblk_bh_work);
}

static inline void fblk_bh_queue_on(struct fblk_bh *bh, int cpu)
{
	if (!cpu_online(cpu))
		cpu = smp_processor_id();
	queue_work_on(cpu, system_bh_wq, &bh->work);
}

static inline void fblk_bh_kill(struct fblk_bh *bh)
{
	cancel_work_sync(&bh->work);
}
#else
struct fblk_bh {
	struct tasklet_struct	tasklet;
	call_single_data_t	ipi;
	fblk_bh_fn		fn;
};

static inline void fblk_bh_tasklet(struct tasklet_struct *t)
{
	struct fblk_bh *bh = from_tasklet(bh, t, tasklet);

	bh->fn(bh);
}

static inline void fblk_bh_ipi(void *data)
{
	struct fblk_bh *bh = data;

	tasklet_schedule(&bh->tasklet);
}

static inline void fblk_bh_init(struct fblk_bh *bh, fblk_bh_fn fn)
{
	bh->fn = fn;
	tasklet_setup(&bh->tasklet, fblk_bh_tasklet);
	INIT_CSD(&bh->ipi, fblk_bh_ipi, bh);
}

/* An online CPU stays so until it has run the IPI. */
static inline void fblk_bh_queue_on(struct fblk_bh *bh, int cpu)
{
	if (cpu == smp_processor_id() || !cpu_online(cpu) ||
	    smp_call_function_single_async(cpu, &bh->ipi))
		tasklet_schedule(&bh->tasklet);
}

static inline void fblk_bh_kill(struct fblk_bh *bh)
{
	tasklet_kill(&bh->tasklet);
}
#endif

/* 6.17: per-CPU workqueues say so (WQ_PERCPU); 7.x warns otherwise. */
#if KERNEL_VERSION(6, 17, 0) <= LINUX_VERSION_CODE
#define FBLK_WQ_PERCPU			WQ_PERCPU
#else
#define FBLK_WQ_PERCPU			0
#endif

/* Whether the backing file can take IOCB_DIRECT kiocbs at all. */
static inline bool fblk_file_can_direct(struct file *file)
{
	return file->f_mode & FMODE_CAN_ODIRECT;
}

/*
 * Asynchronous buffered I/O support moved from f_mode (FMODE_BUF_RASYNC,
 * FMODE_BUF_WASYNC: 6.1) to f_op->fop_flags (FOP_BUFFER_*: 6.12).
 */
#if KERNEL_VERSION(6, 12, 0) <= LINUX_VERSION_CODE
static inline bool fblk_file_buf_rasync(struct file *file)
{
	return file->f_op->fop_flags & FOP_BUFFER_RASYNC;
}

static inline bool fblk_file_buf_wasync(struct file *file)
{
	return file->f_op->fop_flags & FOP_BUFFER_WASYNC;
}
#else
static inline bool fblk_file_buf_rasync(struct file *file)
{
	return file->f_mode & FMODE_BUF_RASYNC;
}

static inline bool fblk_file_buf_wasync(struct file *file)
{
	return file->f_mode & FMODE_BUF_WASYNC;
}
#endif

/* 6.14: uncached buffered I/O, where the filesystem offers it. */
#if KERNEL_VERSION(6, 14, 0) <= LINUX_VERSION_CODE
#define FBLK_IOCB_DONTCACHE		IOCB_DONTCACHE
static inline bool fblk_file_dontcache(struct file *file)
{
	return file->f_op->fop_flags & FOP_DONTCACHE;
}
#else
#define FBLK_IOCB_DONTCACHE		0
static inline bool fblk_file_dontcache(struct file *file)
{
	return false;
}
#endif

/* 6.10: a block device's page cache is bd_mapping; bd_inode is gone. */
#if KERNEL_VERSION(6, 10, 0) <= LINUX_VERSION_CODE
static inline struct inode *fblk_bdev_inode(struct block_device *bdev)
{
	return bdev->bd_mapping->host;
}
#else
static inline struct inode *fblk_bdev_inode(struct block_device *bdev)
{
	return bdev->bd_inode;
}
#endif

/*
 * 7.0: page_cache_ra_unbounded() asserts that its caller holds the mapping's
 * invalidate_lock (it used to take it shared itself), so that no folio is
 * added to a range a hole punch or truncation is removing.
 */
static inline void fblk_page_cache_ra_unbounded(struct readahead_control *ractl,
						unsigned long nr_to_read)
{
#if KERNEL_VERSION(7, 0, 0) <= LINUX_VERSION_CODE
	filemap_invalidate_lock_shared(ractl->mapping);
	page_cache_ra_unbounded(ractl, nr_to_read, 0);
	filemap_invalidate_unlock_shared(ractl->mapping);
#else
	page_cache_ra_unbounded(ractl, nr_to_read, 0);
#endif
}

#endif /* _FBLK_COMPAT_H */
