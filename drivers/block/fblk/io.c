// SPDX-License-Identifier: GPL-2.0
/*
 * The I/O engine: each request becomes kiocbs on its queue's backing file.
 * This file has a request's kiocb, direct I/O and buffered writes; mq.c
 * the way in (->queue_rq and the issuer), read.c buffered reads that wait
 * for a folio, pool.c what must block.
 *
 * ->queue_rq never calls into the backing file: it may run inside an upper
 * filesystem's transaction, under its locks, with a plug being flushed and
 * current->bio_list set, deep in a stack of devices, or in a task with a
 * fatal signal pending, and any of these reaching the lower filesystem is a
 * bug (upstream loop tried the opposite for 6.19 and reverted it).  It
 * queues the request to its hardware queue's issuer and kicks it once per
 * burst; what can only be done blocking goes to the device's pool.
 *
 * Every call into the backing file runs in fblk's own contexts: the queue's
 * issuer (first attempts), its retry and reissue work, its readahead helper
 * and the pool.  Each runs with PF_MEMALLOC_NOIO (reclaim must not wait on
 * I/O queued behind us) and PF_LOCAL_THROTTLE (it cleans the dirty pages it
 * would otherwise be throttled on), set once per work item as loop does.
 *
 *  - Direct I/O queues its kiocb and completes through ->ki_complete.  If
 *    NOWAIT says it would block (block allocation, lock contention), the
 *    queue's reissuer issues the kiocb again without NOWAIT, still
 *    asynchronous.
 *  - A buffered read that would block arms IOCB_WAITQ with the request's own
 *    wait_page_queue: the read queues us on the folio it needs and returns.
 *    Our wake function lets through only wakeups for that folio, and puts
 *    the request on its queue's retry list; one work item retries the whole
 *    list, reissuing only the bytes still missing.  A read that cannot make
 *    progress that way (no folio even after readahead, a folio that stays
 *    !uptodate after a read error, too many wakeups, a lower lock held by a
 *    hole punch or truncation) is read blocking in the pool, which also
 *    surfaces the real error.
 *  - Buffered writes try NOWAIT where the filesystem supports it (xfs,
 *    btrfs), else go to the pool; so do flush, discard and write-zeroes.
 *  - Writes hold the backing filesystem's freeze protection from issue to
 *    completion (the trylock under NOWAIT): a frozen filesystem sees none.
 *
 * The pool is one workqueue for every device, each device's share bounded
 * by its pool_size: a request waits in its device's line for a worker
 * holding nothing a worker needs.  With submit=threads every I/O is done
 * blocking in the pool instead (QEMU's aio=threads).
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/slab.h>

#include "fblk.h"

/*
 * Runs the queues' issuers (mq.c), reissuers (below) and readahead helpers
 * (ra.c); the retries of buffered reads (read.c) and the pool (pool.c) have
 * workqueues of their own.
 */
struct workqueue_struct *fblk_issue_wq[FBLK_STACK_LEVELS];
struct workqueue_struct *fblk_retry_wq;
struct workqueue_struct *fblk_pool_wq[FBLK_STACK_LEVELS];

void fblk_cmd_init(struct fblk_cmd *cmd, struct fblk_device *dev)
{
	cmd->dev = dev;
	INIT_WORK(&cmd->work, fblk_pool_work);
	fblk_bh_init(&cmd->wake_bh, fblk_read_finish);
	init_waitqueue_entry(&cmd->wpq.wait, NULL);
}

/*
 * A wakeup's softirq work that completed its request may still be returning
 * from it:
 * the request's memory must outlive that.
 */
void fblk_cmd_exit(struct fblk_cmd *cmd)
{
	fblk_bh_kill(&cmd->wake_bh);
}

void fblk_cmd_finish(struct fblk_cmd *cmd, blk_status_t status)
{
	struct fblk_device *dev = cmd->dev;

	if (cmd->bvec != cmd->inline_bvec)
		kfree(cmd->bvec);
	cmd->bvec = NULL;
	cmd->status = status;
	/*
	 * Only a discard or write-zeroes the backing file cannot do ends
	 * BLK_STS_NOTSUPP (a FUSE server without hole punching): refused,
	 * not failed, and nothing was lost.
	 */
	if (status && status != BLK_STS_NOTSUPP)
		fblk_stat_inc(dev, FBLK_STAT_ERRORS);
	/*
	 * Not a completion interrupting the issuer: the direct kiocbs of an
	 * issuer's batch mostly complete in interrupts taken while it is
	 * still issuing.
	 */
	if (cmd->submitter == current && in_task())
		fblk_stat_inc(dev, FBLK_STAT_INLINE_COMPLETED);
	if (cmd->retries)
		fblk_atomic_max(&dev->retries_max, cmd->retries);
	atomic_dec(&cmd->queue->inflight);
	blk_mq_complete_request(fblk_cmd_rq(cmd));
}

loff_t fblk_cmd_pos(struct fblk_cmd *cmd)
{
	return ((loff_t)blk_rq_pos(fblk_cmd_rq(cmd)) << SECTOR_SHIFT) +
		cmd->dev->offset;
}

/* Bytes of the request not transferred yet. */
size_t fblk_cmd_rest(struct fblk_cmd *cmd)
{
	return blk_rq_bytes(fblk_cmd_rq(cmd)) - cmd->done;
}

/*
 * A request of several bios needs its bvecs in one array: gathered once, into
 * the pdu when they fit.  A single bio's own bvec table serves as it is.
 */
int fblk_cmd_gather_bvecs(struct fblk_cmd *cmd, gfp_t gfp)
{
	struct request *rq = fblk_cmd_rq(cmd);
	struct req_iterator rq_iter;
	struct bio_vec bv, *bvec;
	unsigned int i = 0;

	rq_for_each_bvec(bv, rq, rq_iter)
		cmd->nr_bvec++;
	if (rq->bio == rq->biotail)
		return 0;

	bvec = cmd->inline_bvec;
	if (cmd->nr_bvec > FBLK_INLINE_BVECS) {
		bvec = kmalloc_array(cmd->nr_bvec, sizeof(*bvec), gfp);
		if (!bvec)
			return -ENOMEM;
	}
	cmd->bvec = bvec;
	rq_for_each_bvec(bv, rq, rq_iter)
		bvec[i++] = bv;
	return 0;
}

/* An iterator over what is left of the request after @cmd->done bytes. */
void fblk_cmd_iter(struct fblk_cmd *cmd, struct iov_iter *iter,
		   unsigned int dir)
{
	struct request *rq = fblk_cmd_rq(cmd);
	struct bio *bio = rq->bio;

	if (cmd->bvec) {
		iov_iter_bvec(iter, dir, cmd->bvec, cmd->nr_bvec,
			      blk_rq_bytes(rq));
	} else {
		const struct bio_vec *first = __bvec_iter_bvec(bio->bi_io_vec,
							       bio->bi_iter);

		/* A split bio may start in the middle of its first bvec. */
		iov_iter_bvec(iter, dir, first, cmd->nr_bvec, blk_rq_bytes(rq));
		iter->iov_offset = mp_bvec_iter_offset(bio->bi_io_vec,
						       bio->bi_iter) -
				   first->bv_offset;
	}
	iov_iter_advance(iter, cmd->done);
}

/* The backing file ended before the read did: the rest reads as zeroes. */
static void fblk_cmd_zero_rest(struct fblk_cmd *cmd)
{
	struct iov_iter iter;

	fblk_cmd_iter(cmd, &iter, ITER_DEST);
	iov_iter_zero(iov_iter_count(&iter), &iter);
}

static bool fblk_cmd_past_eof(struct fblk_cmd *cmd)
{
	struct inode *inode = cmd->queue->file->f_mapping->host;

	return fblk_cmd_pos(cmd) + cmd->done >= i_size_read(inode);
}

/*
 * A read or write that failed: what its submitter is told.  Would-block
 * answers reach here only from a call that was allowed to block (NOWAIT's
 * are retried elsewhere), and must not tell the submitter to try again
 * (BLK_STS_AGAIN is for REQ_NOWAIT bios) or that reads are unsupported.
 */
static blk_status_t fblk_rw_status(ssize_t ret)
{
	if (ret == -EAGAIN || ret == -EOPNOTSUPP)
		return BLK_STS_IOERR;
	return errno_to_blk_status(ret);
}

/*
 * Account a transfer of @ret bytes (or an error).  Returns true while the
 * request has more to transfer; false once it is finished.
 */
bool fblk_rw_progress(struct fblk_cmd *cmd, ssize_t ret)
{
	if (ret < 0) {
		fblk_cmd_finish(cmd, fblk_rw_status(ret));
		return false;
	}
	cmd->done += ret;
	if (cmd->done == blk_rq_bytes(fblk_cmd_rq(cmd))) {
		fblk_cmd_finish(cmd, BLK_STS_OK);
		return false;
	}
	if (fblk_cmd_is_write(cmd)) {
		if (!ret) {	/* no progress: the file takes no more */
			fblk_cmd_finish(cmd, BLK_STS_IOERR);
			return false;
		}
	} else if (!ret || fblk_cmd_past_eof(cmd)) {
		fblk_cmd_zero_rest(cmd);
		fblk_cmd_finish(cmd, BLK_STS_OK);
		return false;
	}
	fblk_stat_inc(cmd->dev, FBLK_STAT_PARTIAL);
	return true;
}

/*
 * Freeze protection for a write to a regular file, held until the kiocb
 * completes, possibly in another context: lockdep is told the lock is
 * released here and taken again there, as kiocb_start_write() does.
 */
bool fblk_start_write(struct kiocb *iocb, bool nowait)
{
	struct inode *inode = file_inode(iocb->ki_filp);

	if (!S_ISREG(inode->i_mode))
		return true;
	if (nowait) {
		if (!sb_start_write_trylock(inode->i_sb))
			return false;
	} else {
		sb_start_write(inode->i_sb);
	}
	__sb_writers_release(inode->i_sb, SB_FREEZE_WRITE);
	return true;
}

void fblk_end_write(struct kiocb *iocb)
{
	struct inode *inode = file_inode(iocb->ki_filp);

	if (!S_ISREG(inode->i_mode))
		return;
	__sb_writers_acquired(inode->i_sb, SB_FREEZE_WRITE);
	sb_end_write(inode->i_sb);
}

/*
 * The open flags of the backing file that a kiocb honours (O_DSYNC, say);
 * the device's mode decides direct or buffered, and a device never appends.
 */
int fblk_file_iocb_flags(struct file *file)
{
	return file->f_iocb_flags & ~(IOCB_DIRECT | IOCB_APPEND);
}

static void fblk_kiocb_complete(struct kiocb *iocb, long ret);

/*
 * One kiocb on the queue's backing file for what is left of the request.
 * @async: completion through ->ki_complete (direct I/O); else the call is a
 * synchronous kiocb whose -EIOCBQUEUED can only mean a waitq was armed.
 * A write that would wait for a frozen filesystem under NOWAIT is -EAGAIN.
 */
ssize_t fblk_issue(struct fblk_cmd *cmd, int flags, bool async)
{
	struct request *rq = fblk_cmd_rq(cmd);
	struct file *file = cmd->queue->file;
	struct kiocb *iocb = &cmd->iocb;
	bool write = fblk_cmd_is_write(cmd);
	struct iov_iter iter;
	ssize_t ret;

	fblk_cmd_iter(cmd, &iter, write ? ITER_SOURCE : ITER_DEST);
	iocb->ki_filp = file;
	iocb->ki_pos = fblk_cmd_pos(cmd) + cmd->done;
	iocb->ki_complete = async ? fblk_kiocb_complete : NULL;
	iocb->ki_ioprio = req_get_ioprio(rq);
	iocb->ki_flags = flags | fblk_file_iocb_flags(file);
	if (rq->cmd_flags & REQ_FUA)
		iocb->ki_flags |= IOCB_DSYNC;
	if (flags & IOCB_WAITQ)
		iocb->ki_waitq = &cmd->wpq;
	if (!write)
		return file->f_op->read_iter(iocb, &iter);

	iocb->ki_flags |= IOCB_WRITE;
	if (!fblk_start_write(iocb, flags & IOCB_NOWAIT))
		return -EAGAIN;
	ret = file->f_op->write_iter(iocb, &iter);
	if (ret != -EIOCBQUEUED)
		fblk_end_write(iocb);
	return ret;
}

/*
 * An IOCB_NOWAIT attempt that would have blocked.  Like io_uring, take
 * -EOPNOTSUPP as that too: it is what a lower device that cannot take
 * REQ_NOWAIT bios, or a filesystem without NOWAIT support for this kind of
 * I/O, answers.
 */
bool fblk_would_block(long ret)
{
	return ret == -EAGAIN || ret == -EOPNOTSUPP;
}

/*
 * Issue a direct kiocb again, without NOWAIT, from the queue's reissuer:
 * one context per queue issuing one kiocb after another, as loop's worker
 * does.  Issuing blocks only for what NOWAIT refused (allocating blocks in
 * a sparse file takes the inode's allocation lock), and completion stays
 * asynchronous, so one context keeps up; a pool's worth of them would only
 * contend for the lower filesystem's locks (measured: see
 * Documentation/fblk.rst).
 */
static void fblk_reissue(struct fblk_cmd *cmd)
{
	struct fblk_queue *fq = cmd->queue;

	fblk_stat_inc(cmd->dev, FBLK_STAT_REISSUED);
	cmd->submitter = NULL;
	llist_add(&cmd->node, &fq->reissues);
	if (fblk_claim(fq, FBLK_REISSUER_BUSY))
		queue_work(fblk_issue_wq[fq->dev->stack_level], &fq->reissue_work);
}

static void fblk_direct_done(struct fblk_cmd *cmd)
{
	long ret = cmd->ret;

	if (cmd->nowait && fblk_would_block(ret)) {
		fblk_stat_inc(cmd->dev, FBLK_STAT_NOWAIT_EAGAIN);
		fblk_reissue(cmd);
		return;
	}
	/* Completion may run in interrupt context: continue elsewhere. */
	if (fblk_rw_progress(cmd, ret))
		fblk_reissue(cmd);
}

static void fblk_kiocb_put(struct fblk_cmd *cmd)
{
	if (atomic_dec_and_test(&cmd->ref))
		fblk_direct_done(cmd);
}

static void fblk_kiocb_done(struct fblk_cmd *cmd, long ret)
{
	cmd->ret = ret;
	fblk_kiocb_put(cmd);
}

/* ->ki_complete of a queued direct kiocb. */
static void fblk_kiocb_complete(struct kiocb *iocb, long ret)
{
	struct fblk_cmd *cmd = container_of(iocb, struct fblk_cmd, iocb);

	if (iocb->ki_flags & IOCB_WRITE)
		fblk_end_write(iocb);
	fblk_kiocb_done(cmd, ret);
}

void fblk_direct_issue(struct fblk_cmd *cmd, bool nowait)
{
	ssize_t ret;

	cmd->nowait = nowait;
	/*
	 * ->ki_complete may run before the call returns; the request is
	 * finished by whichever of the two lets go last.
	 */
	atomic_set(&cmd->ref, 2);
	ret = fblk_issue(cmd, IOCB_DIRECT | (nowait ? IOCB_NOWAIT : 0), true);
	if (ret == -EIOCBQUEUED)
		fblk_stat_inc(cmd->dev, FBLK_STAT_QUEUED_ASYNC);
	else
		fblk_kiocb_done(cmd, ret);
	fblk_kiocb_put(cmd);
}

static void fblk_reissue_batch(struct llist_node *batch)
{
	struct fblk_cmd *cmd, *next;

	batch = llist_reverse_order(batch);
	llist_for_each_entry_safe(cmd, next, batch, node)
		fblk_direct_issue(cmd, false);
}

void fblk_reissue_work(struct work_struct *work)
{
	struct fblk_queue *fq = container_of(work, struct fblk_queue,
					     reissue_work);
	unsigned int ctx = fblk_lower_ctx_enter();
	struct llist_node *batch;

	do {
		while ((batch = llist_del_all(&fq->reissues))) {
			fblk_reissue_batch(batch);
			cond_resched();
		}
	} while (!fblk_drained(fq, FBLK_REISSUER_BUSY, &fq->reissues));
	fblk_lower_ctx_exit(ctx);
}

void fblk_buffered_write(struct fblk_cmd *cmd)
{
	struct fblk_device *dev = cmd->dev;
	ssize_t ret;

	if (!dev->caps.nowait || !dev->caps.buf_wasync) {
		fblk_punt(cmd);
		return;
	}
	ret = fblk_issue(cmd, IOCB_NOWAIT | fblk_buffered_flags(cmd), false);
	if (fblk_would_block(ret)) {
		fblk_stat_inc(dev, FBLK_STAT_NOWAIT_EAGAIN);
		fblk_punt(cmd);
		return;
	}
	if (fblk_rw_progress(cmd, ret))
		fblk_punt(cmd);
}

int fblk_io_init(void)
{
	unsigned int i;

	/* Per CPU: a retry runs where its request was submitted. */
	fblk_retry_wq = alloc_workqueue("fblk_retry", WQ_HIGHPRI |
					WQ_MEM_RECLAIM | FBLK_WQ_PERCPU, 0);
	if (!fblk_retry_wq)
		goto fail;
	for (i = 0; i < FBLK_STACK_LEVELS; i++) {
		/* Unbound: the point of an issuer is to run beside the submitter. */
		fblk_issue_wq[i] = alloc_workqueue("fblk_issue%u", WQ_HIGHPRI |
						   WQ_MEM_RECLAIM | WQ_UNBOUND,
						   0, i);
		/* Each device bounds its own share (pool_size). */
		fblk_pool_wq[i] = alloc_workqueue("fblk_pool%u", WQ_MEM_RECLAIM |
						  WQ_UNBOUND, WQ_MAX_ACTIVE, i);
		if (!fblk_issue_wq[i] || !fblk_pool_wq[i])
			goto fail;
	}
	return 0;
fail:
	fblk_io_exit();
	return -ENOMEM;
}

void fblk_io_exit(void)
{
	unsigned int i;

	for (i = 0; i < FBLK_STACK_LEVELS; i++) {
		if (fblk_pool_wq[i])
			destroy_workqueue(fblk_pool_wq[i]);
		if (fblk_issue_wq[i])
			destroy_workqueue(fblk_issue_wq[i]);
		fblk_pool_wq[i] = NULL;
		fblk_issue_wq[i] = NULL;
	}
	if (fblk_retry_wq)
		destroy_workqueue(fblk_retry_wq);
	fblk_retry_wq = NULL;
}
