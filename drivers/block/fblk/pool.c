// SPDX-License-Identifier: GPL-2.0
/*
 * The pool: what must block (flush, discard, write-zeroes, buffered I/O the
 * backing file cannot do without waiting, reads that cannot wait on a
 * folio, everything with submit=threads), done by the workers of one
 * workqueue that every device shares, each device's share bounded by its
 * pool_size.
 */
#include <linux/blk-mq.h>
#include <linux/errseq.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/spinlock.h>
#include <linux/wait_bit.h>

#include "fblk.h"

void fblk_pool_init(struct fblk_device *dev)
{
	spin_lock_init(&dev->pool_lock);
	INIT_LIST_HEAD(&dev->pool_waiting);
	INIT_LIST_HEAD(&dev->pool_reads);
}

/*
 * Reads wait in a line of their own and pass the writes, discards and
 * flushes waiting: a read comes to the pool for a moment's lock below (a
 * hole punch holding the mapping's invalidate_lock), while a burst of
 * writeback can fill the pool with writes that queue on the same inode's
 * lock; in one line the read would wait for every one of them.  As
 * mq-deadline does, writes are not starved: after this many reads passed
 * a waiting write, the write goes first.
 */
#define FBLK_POOL_READS_PASS_MAX	16

static struct list_head *fblk_pool_line(struct fblk_cmd *cmd)
{
	struct fblk_device *dev = cmd->dev;

	if (req_op(fblk_cmd_rq(cmd)) == REQ_OP_READ)
		return &dev->pool_reads;
	return &dev->pool_waiting;
}

/*
 * The pool: jobs that may block, at most pool_size of a device's at once.
 * The workers are those of its level's fblk_pool_wq, shared by every
 * device at that level: a device costs no thread of its own (a workqueue
 * of its own with WQ_MEM_RECLAIM would cost a rescuer thread each).
 */
void fblk_punt(struct fblk_cmd *cmd)
{
	struct fblk_device *dev = cmd->dev;
	unsigned long flags;
	bool run;

	fblk_stat_inc(dev, FBLK_STAT_PUNTS);
	cmd->submitter = NULL;
	fblk_atomic_max(&dev->pool_depth_max,
			atomic_inc_return(&dev->pool_depth));
	spin_lock_irqsave(&dev->pool_lock, flags);
	run = dev->pool_running < READ_ONCE(dev->pool_size);
	if (run)
		dev->pool_running++;
	else
		list_add_tail(&cmd->pool_entry, fblk_pool_line(cmd));
	spin_unlock_irqrestore(&dev->pool_lock, flags);
	if (run)
		queue_work(fblk_pool_wq[dev->stack_level], &cmd->work);
}

/* A waiting read, unless the writes have waited long enough; locked. */
static struct fblk_cmd *fblk_pool_pick(struct fblk_device *dev)
{
	bool writes_waiting = !list_empty(&dev->pool_waiting);

	if (!list_empty(&dev->pool_reads) &&
	    (!writes_waiting ||
	     dev->pool_reads_passed < FBLK_POOL_READS_PASS_MAX)) {
		if (writes_waiting)
			dev->pool_reads_passed++;
		return list_first_entry(&dev->pool_reads, struct fblk_cmd,
					pool_entry);
	}
	dev->pool_reads_passed = 0;
	return list_first_entry_or_null(&dev->pool_waiting, struct fblk_cmd,
					pool_entry);
}

/* The next job in line for a worker that finished one, or NULL. */
static struct fblk_cmd *fblk_pool_next(struct fblk_device *dev)
{
	struct fblk_cmd *next;
	unsigned long flags;

	spin_lock_irqsave(&dev->pool_lock, flags);
	next = fblk_pool_pick(dev);
	if (next)
		list_del(&next->pool_entry);
	else
		dev->pool_running--;
	spin_unlock_irqrestore(&dev->pool_lock, flags);
	return next;
}

/* No job of the device waiting or running, nor a worker returning from one. */
static bool fblk_pool_idle(struct fblk_device *dev)
{
	unsigned long flags;
	bool idle;

	spin_lock_irqsave(&dev->pool_lock, flags);
	idle = !dev->pool_running;
	spin_unlock_irqrestore(&dev->pool_lock, flags);
	return idle;
}

void fblk_pool_drain(struct fblk_device *dev)
{
	wait_var_event(&dev->pool_running, fblk_pool_idle(dev));
}

/* A read or write done entirely here, waiting for each kiocb. */
static void fblk_rw_blocking(struct fblk_cmd *cmd)
{
	int flags = fblk_buffered_flags(cmd);
	ssize_t ret;

	if (cmd->dev->io_mode == FBLK_IO_DIRECT)
		flags = IOCB_DIRECT;
	do {
		ret = fblk_issue(cmd, flags, false);
	} while (fblk_rw_progress(cmd, ret));
}

/*
 * The file's filesystem does not do this fallocate mode, or not for this
 * range: a FUSE server answers as it likes (6.1's fuse2fs refuses
 * FALLOC_FL_ZERO_RANGE), where a local filesystem says EOPNOTSUPP.
 */
static bool fblk_fallocate_refused(int err)
{
	return err == -EOPNOTSUPP || err == -EINVAL;
}

static int fblk_punch_hole(struct file *file, loff_t pos, loff_t len)
{
	return vfs_fallocate(file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     pos, len);
}

/* Up to a page of zeroes at @pos, a kiocb of its own, freeze protected. */
static ssize_t fblk_write_zero_chunk(struct file *file, loff_t pos,
				     size_t len)
{
	struct kiocb iocb;
	struct bio_vec bv;
	struct iov_iter iter;
	ssize_t ret;

	init_sync_kiocb(&iocb, file);
	iocb.ki_pos = pos;
	iocb.ki_flags = fblk_file_iocb_flags(file) | IOCB_WRITE;
	bvec_set_page(&bv, ZERO_PAGE(0), len, 0);
	iov_iter_bvec(&iter, ITER_SOURCE, &bv, 1, len);
	fblk_start_write(&iocb, false);
	ret = file->f_op->write_iter(&iocb, &iter);
	fblk_end_write(&iocb);
	return ret;
}

static int fblk_write_zero_pages(struct file *file, loff_t pos, loff_t len)
{
	ssize_t ret;

	while (len > 0) {
		ret = fblk_write_zero_chunk(file, pos,
					    min_t(loff_t, len, PAGE_SIZE));
		if (ret < 0)
			return ret;
		if (!ret)
			return -EIO;
		pos += ret;
		len -= ret;
	}
	return 0;
}

/*
 * Zeroes without unmapping where the file can (REQ_NOUNMAP asks to keep the
 * blocks allocated), else by punching a hole, else by writing zero pages.
 */
static int fblk_write_zeroes(struct fblk_cmd *cmd, loff_t pos, loff_t len)
{
	struct file *file = cmd->queue->file;
	int err = -EOPNOTSUPP;

	if (!(fblk_cmd_rq(cmd)->cmd_flags & REQ_NOUNMAP))
		err = fblk_punch_hole(file, pos, len);
	if (fblk_fallocate_refused(err))
		err = vfs_fallocate(file, FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_KEEP_SIZE, pos, len);
	if (fblk_fallocate_refused(err))
		err = fblk_punch_hole(file, pos, len);
	if (fblk_fallocate_refused(err))
		err = fblk_write_zero_pages(file, pos, len);
	return err;
}

/*
 * A writeback error is reported once per struct file (its f_wb_err cursor),
 * and every queue has its own clone: a flush through each queue would report
 * the same lost write again.  So every flush syncs through the first queue's
 * file, the one cursor that decides, and moves the other queues' cursors past
 * what it reported so that a later FUA write through them does not report it
 * either.
 */
static void fblk_skip_wb_err(struct file *file)
{
	spin_lock(&file->f_lock);
	errseq_check_and_advance(&file->f_mapping->wb_err, &file->f_wb_err);
	spin_unlock(&file->f_lock);
}

static int fblk_flush(struct fblk_device *dev)
{
	struct file *file = dev->queues[0].file;
	unsigned int i;
	int err;

	if (unlikely(!file))		/* an attach still handing out files */
		return -EIO;
	err = vfs_fsync(file, 0);
	for (i = 1; i < dev->tag_set.nr_hw_queues; i++) {
		struct file *clone = dev->queues[i].file;

		if (clone)
			fblk_skip_wb_err(clone);
	}
	return err;
}

static int fblk_do_sync_op(struct fblk_cmd *cmd)
{
	struct file *file = cmd->queue->file;
	loff_t pos = fblk_cmd_pos(cmd);
	loff_t len = blk_rq_bytes(fblk_cmd_rq(cmd));
	int err;

	switch (req_op(fblk_cmd_rq(cmd))) {
	case REQ_OP_FLUSH:
		return fblk_flush(cmd->dev);
	case REQ_OP_DISCARD:
		err = fblk_punch_hole(file, pos, len);
		return fblk_fallocate_refused(err) ? -EOPNOTSUPP : err;
	case REQ_OP_WRITE_ZEROES:
		return fblk_write_zeroes(cmd, pos, len);
	default:
		return -EOPNOTSUPP;
	}
}

static void fblk_pool_job(struct fblk_cmd *cmd)
{
	switch (req_op(fblk_cmd_rq(cmd))) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		fblk_rw_blocking(cmd);
		return;
	default:
		fblk_cmd_finish(cmd, errno_to_blk_status(fblk_do_sync_op(cmd)));
		return;
	}
}

/*
 * A pool job; its place goes to the next job in the device's line, queued
 * as a work item of its own (running it here would hold up a reuse of
 * @cmd's work item, queued behind this one).
 */
void fblk_pool_work(struct work_struct *work)
{
	struct fblk_cmd *cmd = container_of(work, struct fblk_cmd, work);
	struct fblk_device *dev = cmd->dev;
	unsigned int ctx = fblk_lower_ctx_enter();
	struct fblk_cmd *next;

	fblk_pool_job(cmd);
	/* @cmd may be reused from here on. */
	atomic_dec(&dev->pool_depth);
	fblk_lower_ctx_exit(ctx);
	next = fblk_pool_next(dev);
	if (next)
		queue_work(fblk_pool_wq[dev->stack_level], &next->work);
	else
		/* Only the address: a drain that saw it idle may free @dev. */
		wake_up_var(&dev->pool_running);
}
