// SPDX-License-Identifier: GPL-2.0
/*
 * The I/O engine: each request becomes kiocbs on its queue's backing file.
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
 * holding nothing a worker needs.  With submit=threads
 * every I/O is done blocking in the pool instead (QEMU's aio=threads).
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/errseq.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/smp.h>

#include "fblk.h"

/* Runs the retry batches: short jobs, woken from I/O completion. */
static struct workqueue_struct *fblk_retry_wq;
/* The pool's workers, for every device: jobs that may block. */
static struct workqueue_struct *fblk_pool_wq;
/*
 * Runs the queues' issuers (requests a busy submitter left behind),
 * reissuers (direct kiocbs NOWAIT refused) and readahead helpers.
 */
struct workqueue_struct *fblk_issue_wq;

static void fblk_pool_work(struct work_struct *work);
static void fblk_retry_work(struct work_struct *work);
static void fblk_issue_work(struct work_struct *work);
static void fblk_reissue_work(struct work_struct *work);
static void fblk_read_finish(struct fblk_bh *bh);

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

void fblk_queue_init(struct fblk_queue *fq, struct fblk_device *dev)
{
	fq->dev = dev;
	init_llist_head(&fq->retries);
	INIT_WORK(&fq->retry_work, fblk_retry_work);
	init_llist_head(&fq->issues);
	INIT_WORK(&fq->issue_work, fblk_issue_work);
	init_llist_head(&fq->reissues);
	INIT_WORK(&fq->reissue_work, fblk_reissue_work);
	atomic_set(&fq->inflight, 0);
	fblk_ra_helper_init(fq);
}

static void fblk_atomic_max(atomic_t *max, int value)
{
	int old = atomic_read(max);

	while (value > old && !atomic_try_cmpxchg(max, &old, value))
		;
}

/*
 * A queue's issuer and reissuer each drain a list that other contexts add
 * to, and stay until it is empty: queueing a work item that is running
 * would queue it again, and an unbound workqueue wakes an idle worker for
 * it that only finds it running and leaves it to the worker running it,
 * two context switches for nothing.  So whoever adds to the list queues
 * the work item only if it claims the busy bit, and the work item lets go
 * of the bit only once the list is empty.
 */
enum { FBLK_ISSUER_BUSY, FBLK_REISSUER_BUSY };

static bool fblk_claim(struct fblk_queue *fq, int bit)
{
	return !test_and_set_bit(bit, &fq->busy);
}

/*
 * The list was found empty: let go of it, unless something was added
 * meanwhile by one who found the bit still set (the caller drains again).
 */
static bool fblk_drained(struct fblk_queue *fq, int bit,
			 struct llist_head *list)
{
	clear_bit(bit, &fq->busy);
	/* Pairs with test_and_set_bit() after the adder's llist_add(). */
	smp_mb__after_atomic();
	return llist_empty(list) || !fblk_claim(fq, bit);
}

static struct request *rq_of(struct fblk_cmd *cmd)
{
	return blk_mq_rq_from_pdu(cmd);
}

static bool fblk_cmd_is_write(struct fblk_cmd *cmd)
{
	return req_op(rq_of(cmd)) == REQ_OP_WRITE;
}

static void fblk_cmd_finish(struct fblk_cmd *cmd, blk_status_t status)
{
	struct fblk_device *dev = cmd->dev;

	if (cmd->bvec != cmd->inline_bvec)
		kfree(cmd->bvec);
	cmd->bvec = NULL;
	cmd->status = status;
	if (status)
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
	blk_mq_complete_request(rq_of(cmd));
}

static loff_t fblk_cmd_pos(struct fblk_cmd *cmd)
{
	return ((loff_t)blk_rq_pos(rq_of(cmd)) << SECTOR_SHIFT) +
		cmd->dev->offset;
}

/* Bytes of the request not transferred yet. */
static size_t fblk_cmd_rest(struct fblk_cmd *cmd)
{
	return blk_rq_bytes(rq_of(cmd)) - cmd->done;
}

/*
 * A request of several bios needs its bvecs in one array: gathered once, into
 * the pdu when they fit.  A single bio's own bvec table serves as it is.
 */
static int fblk_cmd_gather_bvecs(struct fblk_cmd *cmd, gfp_t gfp)
{
	struct request *rq = rq_of(cmd);
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
static void fblk_cmd_iter(struct fblk_cmd *cmd, struct iov_iter *iter,
			  unsigned int dir)
{
	struct request *rq = rq_of(cmd);
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
static bool fblk_rw_progress(struct fblk_cmd *cmd, ssize_t ret)
{
	if (ret < 0) {
		fblk_cmd_finish(cmd, fblk_rw_status(ret));
		return false;
	}
	cmd->done += ret;
	if (cmd->done == blk_rq_bytes(rq_of(cmd))) {
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
static bool fblk_start_write(struct kiocb *iocb, bool nowait)
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

static void fblk_end_write(struct kiocb *iocb)
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
static int fblk_file_iocb_flags(struct file *file)
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
static ssize_t fblk_issue(struct fblk_cmd *cmd, int flags, bool async)
{
	struct request *rq = rq_of(cmd);
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

void fblk_pool_init(struct fblk_device *dev)
{
	spin_lock_init(&dev->pool_lock);
	INIT_LIST_HEAD(&dev->pool_waiting);
}

/*
 * The pool: jobs that may block, at most pool_size of a device's at once.
 * The workers are fblk_pool_wq's, shared by every device: a device costs
 * no thread of its own (a workqueue of its own with WQ_MEM_RECLAIM would
 * cost a rescuer thread each).
 */
static void fblk_punt(struct fblk_cmd *cmd)
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
		list_add_tail(&cmd->pool_entry, &dev->pool_waiting);
	spin_unlock_irqrestore(&dev->pool_lock, flags);
	if (run)
		queue_work(fblk_pool_wq, &cmd->work);
}

/* The next job in line for a worker that finished one, or NULL. */
static struct fblk_cmd *fblk_pool_next(struct fblk_device *dev)
{
	struct fblk_cmd *next;
	unsigned long flags;

	spin_lock_irqsave(&dev->pool_lock, flags);
	next = list_first_entry_or_null(&dev->pool_waiting, struct fblk_cmd,
					pool_entry);
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

/* ---- direct I/O: asynchronous kiocbs ---- */

/*
 * An IOCB_NOWAIT attempt that would have blocked.  Like io_uring, take
 * -EOPNOTSUPP as that too: it is what a lower device that cannot take
 * REQ_NOWAIT bios, or a filesystem without NOWAIT support for this kind of
 * I/O, answers.
 */
static bool fblk_would_block(long ret)
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
		queue_work(fblk_issue_wq, &fq->reissue_work);
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

static void fblk_direct_issue(struct fblk_cmd *cmd, bool nowait)
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

static void fblk_reissue_work(struct work_struct *work)
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

/* ---- buffered I/O ---- */

static int fblk_buffered_flags(struct fblk_cmd *cmd)
{
	return cmd->dev->io_mode == FBLK_IO_DONTCACHE ? FBLK_IOCB_DONTCACHE : 0;
}

static void fblk_read_blocking(struct fblk_cmd *cmd)
{
	fblk_stat_inc(cmd->dev, FBLK_STAT_BLOCKING_FALLBACKS);
	fblk_punt(cmd);
}

/*
 * One work item retries every request queued before it runs, on the CPU
 * that submitted the request that queued it (with one queue per CPU, the
 * queue's CPU), where blk-mq completes it anyway: the CPU that took the
 * lower device's interrupt is mostly the one that issued the lower read,
 * the queue's issuer, whose next requests would wait behind the copy.
 * Should that CPU
 * have gone offline meanwhile, the workqueue runs the item on another.
 */
static void fblk_queue_retry(struct fblk_cmd *cmd)
{
	struct fblk_queue *fq = cmd->queue;

	cmd->submitter = NULL;
	if (llist_add(&cmd->node, &fq->retries))
		queue_work_on(blk_mq_rq_cpu(rq_of(cmd)), fblk_retry_wq,
			      &fq->retry_work);
}

/*
 * A read whose rest lies in the folio it waited for is finished from its
 * wakeup, without a retry: the wakeup hands the folio to softirq work on
 * the CPU that submitted the read, which copies the rest and completes it,
 * as blk-mq completes a request from another CPU.  A retry worker woken on
 * a CPU busy submitting starts late.  Not in the wakeup itself: it runs
 * under the folio wait queue's lock, which completing an upper folio (a
 * filesystem on fblk) may take again.  Nor in hard interrupt context:
 * completion takes locks that sleep on PREEMPT_RT (lockdep: invalid wait
 * context).  Softirq context bounds the copy; a larger rest, dontcache
 * (whose read drops the folios it copied) and every other case take the
 * retry, which reads through the file.
 */
#define FBLK_WAKEUP_COPY_MAX	(16 * 1024)

/*
 * Copy the rest if the folio is still the file's, read, and holds all of
 * it below the file's size.  The wakeup's reference keeps the folio, not
 * its place in the file: a read racing a truncation gets either side.
 */
static bool fblk_read_copy_folio(struct fblk_cmd *cmd, struct folio *folio)
{
	struct address_space *mapping = cmd->queue->file->f_mapping;
	loff_t pos = fblk_cmd_pos(cmd) + cmd->done;
	size_t rest = fblk_cmd_rest(cmd);
	struct iov_iter iter;

	if (folio->mapping != mapping || !folio_test_uptodate(folio))
		return false;
	if (pos < folio_pos(folio) ||
	    pos + rest > folio_pos(folio) + folio_size(folio) ||
	    pos + rest > i_size_read(mapping->host))
		return false;
	fblk_cmd_iter(cmd, &iter, ITER_DEST);
	if (copy_folio_to_iter(folio, pos - folio_pos(folio), rest,
			       &iter) != rest)
		return false;
	cmd->done += rest;
	return true;
}

/* The folio is the one the read waited for, with the wakeup's reference. */
static void fblk_read_finish(struct fblk_bh *bh)
{
	struct fblk_cmd *cmd = container_of(bh, struct fblk_cmd, wake_bh);
	struct folio *folio = cmd->wpq.folio;
	bool copied = fblk_read_copy_folio(cmd, folio);

	folio_put(folio);
	if (!copied) {
		fblk_queue_retry(cmd);
		return;
	}
	fblk_stat_inc(cmd->dev, FBLK_STAT_WAKEUP_COMPLETED);
	fblk_cmd_finish(cmd, BLK_STS_OK);
}

/* In the wakeup, interrupts off: the copy runs once the lock is released. */
static bool fblk_read_finish_on_wakeup(struct fblk_cmd *cmd,
				       struct folio *folio)
{
	if (cmd->dev->io_mode != FBLK_IO_BUFFERED ||
	    fblk_cmd_rest(cmd) > FBLK_WAKEUP_COPY_MAX || !folio_try_get(folio))
		return false;
	cmd->submitter = NULL;
	fblk_bh_queue_on(&cmd->wake_bh, blk_mq_rq_cpu(rq_of(cmd)));
	return true;
}

/*
 * Only a wakeup for the folio and bit we wait on concerns us: the folio wait
 * queues are hashed and shared by unrelated folios.
 */
static int fblk_wake_page(struct wait_queue_entry *wait, unsigned int mode,
			  int sync, void *key)
{
	struct wait_page_queue *wpq = container_of(wait, struct wait_page_queue,
						   wait);
	struct fblk_cmd *cmd = wait->private;

	if (!wake_page_match(wpq, key)) {
		fblk_stat_inc(cmd->dev, FBLK_STAT_WAKEUPS_FILTERED);
		return 0;
	}
	fblk_stat_inc(cmd->dev, FBLK_STAT_WAKEUPS);
	list_del_init(&wait->entry);
	/* The context that armed it is still in the call: it goes on. */
	if (!atomic_dec_and_test(&cmd->ref))
		return 1;
	if (!fblk_read_finish_on_wakeup(cmd, wpq->folio))
		fblk_queue_retry(cmd);
	return 1;
}

/*
 * Park the read on the folio it needs; true if it is parked, and its wakeup
 * goes on with it.  The read holds a reference while it is in the call: a
 * wakeup may come before ->read_iter returns, and the request must not
 * complete (and its device go away) under the call.  -EIOCBQUEUED with
 * false: woken already, the caller reads again.
 */
static bool fblk_read_arm_waitq(struct fblk_cmd *cmd, ssize_t *ret)
{
	cmd->wpq.wait.func = fblk_wake_page;
	cmd->wpq.wait.private = cmd;
	INIT_LIST_HEAD(&cmd->wpq.wait.entry);
	atomic_set(&cmd->ref, 2);
	*ret = fblk_issue(cmd, IOCB_WAITQ | fblk_buffered_flags(cmd), false);
	if (*ret != -EIOCBQUEUED)
		return false;
	fblk_stat_inc(cmd->dev, FBLK_STAT_WAITQ_ARMED);
	return !atomic_dec_and_test(&cmd->ref);
}

/*
 * Readahead and arming a waitq take the backing mapping's invalidate_lock
 * shared, blocking; a hole punch or truncation below holds it exclusively
 * for as long as it runs, and an issuer must not wait behind it: such a
 * read goes to the pool.  A probe, not a guarantee: a punch that starts
 * right after it costs one wait.
 */
static bool fblk_lower_mapping_busy(struct file *file)
{
	struct address_space *mapping = file->f_mapping;

	if (!filemap_invalidate_trylock_shared(mapping))
		return true;
	filemap_invalidate_unlock_shared(mapping);
	return false;
}

/*
 * Start what the rest of the request needs from the lower device, once:
 * retries after a wakeup find it started.  Split (fblk_ra_first_part()),
 * the rest goes to the queue's readahead helper first, so that it reads
 * beside us, unless its ring is full.
 */
static void fblk_read_ahead(struct fblk_cmd *cmd)
{
	size_t len, first;
	loff_t pos;

	if (cmd->ra_done)
		return;
	cmd->ra_done = true;
	pos = fblk_cmd_pos(cmd) + cmd->done;
	len = fblk_cmd_rest(cmd);
	first = len;
	if (cmd->ra_split)
		first = fblk_ra_first_part(cmd, pos, len);
	if (first < len && fblk_ra_defer(cmd->queue, pos + first, len - first))
		len = first;
	fblk_ra_start(cmd, pos, len);
}

/*
 * Is a cached attempt worth making first?  A read that the policy reads
 * exactly (random, or auto off a stream) mostly misses, so the issuer starts
 * its readahead and parks it at once: a cached attempt would cost a trip
 * into the lower file for an -EAGAIN, on the issuer, which every request of
 * a deep queue goes through.  Streams find their reads cached by earlier
 * readahead, and a retry after a wakeup finds its folio read.
 */
static bool fblk_read_probe_first(struct fblk_cmd *cmd)
{
	return cmd->dev->ra_policy == FBLK_RA_OFF || cmd->ra_stream ||
	       cmd->ra_done;
}

/*
 * Read what is cached without blocking, start readahead for the rest, park
 * on the first folio still being read.  The cached attempt starts no I/O
 * (IOCB_NOIO) unless the policy leaves readahead to the lower file itself.
 * Like io_uring's, these attempts may start lower I/O even for a REQ_NOWAIT
 * submitter: they never wait for it.
 */
static void fblk_buffered_read(struct fblk_cmd *cmd)
{
	struct fblk_device *dev = cmd->dev;
	bool tuned = dev->ra_policy != FBLK_RA_OFF;
	bool probe = fblk_read_probe_first(cmd);
	int flags = IOCB_NOWAIT | fblk_buffered_flags(cmd);
	ssize_t ret;

	if (!dev->caps.nowait || !dev->caps.buf_rasync) {
		fblk_punt(cmd);
		return;
	}
	for (;;) {
		if (probe) {
			ret = fblk_issue(cmd, flags | (tuned ? IOCB_NOIO : 0),
					 false);
			if (!fblk_would_block(ret)) {
				if (fblk_rw_progress(cmd, ret))
					continue;
				return;
			}
			fblk_stat_inc(dev, FBLK_STAT_NOWAIT_EAGAIN);
		}
		probe = true;
		if (fblk_lower_mapping_busy(cmd->queue->file))
			break;
		if (tuned)
			fblk_read_ahead(cmd);
		if (fblk_read_arm_waitq(cmd, &ret))
			return;
		if (ret == -EIOCBQUEUED) {
			if (++cmd->retries > FBLK_MAX_RETRIES)
				break;
			continue;
		}
		if (ret == -EAGAIN)
			break;
		if (!fblk_rw_progress(cmd, ret))
			return;
	}
	fblk_read_blocking(cmd);
}

static void fblk_retry_work(struct work_struct *work)
{
	struct fblk_queue *fq = container_of(work, struct fblk_queue,
					     retry_work);
	struct llist_node *batch = llist_del_all(&fq->retries);
	unsigned int ctx = fblk_lower_ctx_enter();
	struct fblk_cmd *cmd, *next;

	batch = llist_reverse_order(batch);
	llist_for_each_entry_safe(cmd, next, batch, node) {
		fblk_stat_inc(cmd->dev, FBLK_STAT_RETRIES);
		if (++cmd->retries > FBLK_MAX_RETRIES)
			fblk_read_blocking(cmd);
		else
			fblk_buffered_read(cmd);
	}
	fblk_lower_ctx_exit(ctx);
}

static void fblk_buffered_write(struct fblk_cmd *cmd)
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

/* ---- the pool ---- */

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

	if (!(rq_of(cmd)->cmd_flags & REQ_NOUNMAP))
		err = fblk_punch_hole(file, pos, len);
	if (err == -EOPNOTSUPP)
		err = vfs_fallocate(file, FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_KEEP_SIZE, pos, len);
	if (err == -EOPNOTSUPP)
		err = fblk_punch_hole(file, pos, len);
	if (err == -EOPNOTSUPP)
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
	loff_t len = blk_rq_bytes(rq_of(cmd));

	switch (req_op(rq_of(cmd))) {
	case REQ_OP_FLUSH:
		return fblk_flush(cmd->dev);
	case REQ_OP_DISCARD:
		return fblk_punch_hole(file, pos, len);
	case REQ_OP_WRITE_ZEROES:
		return fblk_write_zeroes(cmd, pos, len);
	default:
		return -EOPNOTSUPP;
	}
}

static void fblk_pool_job(struct fblk_cmd *cmd)
{
	switch (req_op(rq_of(cmd))) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		fblk_rw_blocking(cmd);
		return;
	default:
		fblk_cmd_finish(cmd, errno_to_blk_status(fblk_do_sync_op(cmd)));
		return;
	}
}

/* A pool worker runs its job, then those waiting behind it in line. */
static void fblk_pool_work(struct work_struct *work)
{
	struct fblk_cmd *cmd = container_of(work, struct fblk_cmd, work);
	struct fblk_device *dev = cmd->dev;
	unsigned int ctx = fblk_lower_ctx_enter();

	do {
		fblk_pool_job(cmd);
		/* @cmd may be reused from here on. */
		atomic_dec(&dev->pool_depth);
		cond_resched();
	} while ((cmd = fblk_pool_next(dev)));
	fblk_lower_ctx_exit(ctx);
	/* Only the address: a drain that saw the pool idle may free @dev. */
	wake_up_var(&dev->pool_running);
}

/* ---- the queue's issuer: first attempts, never blocking ---- */

static void fblk_cmd_dispatch(struct fblk_cmd *cmd)
{
	struct fblk_device *dev = cmd->dev;

	if (dev->io_mode == FBLK_IO_DIRECT)
		fblk_direct_issue(cmd, dev->caps.nowait_direct);
	else if (fblk_cmd_is_write(cmd))
		fblk_buffered_write(cmd);
	else
		fblk_buffered_read(cmd);
}

/*
 * A queue's issuer makes the first attempts of the requests ->queue_rq left
 * it, on a CPU of the scheduler's choosing: with a deep queue, the submitter
 * only queues requests while the work of issuing them, and of completing
 * the lower I/O it starts, runs in parallel elsewhere.
 *
 * The batch is plugged: its lower bios go down together when it ends (or
 * when the issuer sleeps), as io_uring plugs a batch of submissions.
 */
static void fblk_issue_batch(struct fblk_queue *fq, struct llist_node *batch)
{
	struct fblk_cmd *cmd, *next;
	struct blk_plug plug;

	fblk_stat_inc(fq->dev, FBLK_STAT_ISSUER_RUNS);
	batch = llist_reverse_order(batch);
	blk_start_plug(&plug);
	llist_for_each_entry_safe(cmd, next, batch, node) {
		cmd->submitter = current;
		cmd->ra_split = cmd->node.next || !llist_empty(&fq->issues);
		fblk_cmd_dispatch(cmd);
	}
	blk_finish_plug(&plug);
}

static void fblk_issue_work(struct work_struct *work)
{
	struct fblk_queue *fq = container_of(work, struct fblk_queue,
					     issue_work);
	unsigned int ctx = fblk_lower_ctx_enter();
	struct llist_node *batch;

	do {
		while ((batch = llist_del_all(&fq->issues))) {
			fblk_issue_batch(fq, batch);
			cond_resched();
		}
	} while (!fblk_drained(fq, FBLK_ISSUER_BUSY, &fq->issues));
	fblk_lower_ctx_exit(ctx);
}

/*
 * Wake the queue's issuer for what the submitter left it.  blk-mq says when
 * a burst of requests ends (->queue_rq's last, or ->commit_rqs when the
 * burst stops early), so a burst costs one wakeup, as a virtqueue kick does.
 */
void fblk_issuer_kick(struct fblk_queue *fq)
{
	if (!llist_empty(&fq->issues) && fblk_claim(fq, FBLK_ISSUER_BUSY))
		queue_work(fblk_issue_wq, &fq->issue_work);
}

/* ---- submission, from ->queue_rq: nothing here enters a filesystem ---- */

static bool fblk_cmd_is_rw(struct fblk_cmd *cmd)
{
	return req_op(rq_of(cmd)) == REQ_OP_READ || fblk_cmd_is_write(cmd);
}

/* Leave the request to the queue's issuer, woken when the burst ends. */
static void fblk_hand_off(struct fblk_cmd *cmd)
{
	fblk_stat_inc(cmd->dev, FBLK_STAT_HANDED_OFF);
	llist_add(&cmd->node, &cmd->queue->issues);
}

/*
 * What can only be done blocking goes straight to the pool, not through an
 * issuer: flush, discard, write-zeroes, everything with submit=threads, and
 * buffered I/O the backing file cannot do without waiting.
 */
static bool fblk_cmd_blocks(struct fblk_cmd *cmd)
{
	struct fblk_device *dev = cmd->dev;

	if (!fblk_cmd_is_rw(cmd) || dev->submit == FBLK_SUBMIT_THREADS)
		return true;
	if (dev->io_mode == FBLK_IO_DIRECT)
		return false;
	if (!dev->caps.nowait)
		return true;
	return fblk_cmd_is_write(cmd) ? !dev->caps.buf_wasync :
					!dev->caps.buf_rasync;
}

/*
 * Prepare the request and queue it to the context that will issue it.
 * Called under RCU (the tag set does not block): nothing here sleeps.
 */
blk_status_t fblk_cmd_start(struct fblk_cmd *cmd)
{
	struct request *rq = rq_of(cmd);

	cmd->submitter = NULL;
	cmd->done = 0;
	cmd->retries = 0;
	cmd->ra_done = false;
	cmd->ra_split = false;
	cmd->status = BLK_STS_OK;
	cmd->bvec = NULL;
	cmd->nr_bvec = 0;

	if (fblk_cmd_is_rw(cmd) && fblk_cmd_gather_bvecs(cmd, GFP_NOWAIT))
		return rq->cmd_flags & REQ_NOWAIT ? BLK_STS_AGAIN :
						    BLK_STS_RESOURCE;
	blk_mq_start_request(rq);

	/* In submission order, whoever issues it: auto's streams are in it. */
	if (cmd->dev->io_mode != FBLK_IO_DIRECT && req_op(rq) == REQ_OP_READ)
		fblk_ra_note(cmd);
	atomic_inc(&cmd->queue->inflight);
	if (fblk_cmd_blocks(cmd))
		fblk_punt(cmd);
	else
		fblk_hand_off(cmd);
	return BLK_STS_OK;
}

/* Before the queue's file is closed: nothing of ours may still use it. */
void fblk_queue_drain(struct fblk_queue *fq)
{
	flush_work(&fq->issue_work);
	flush_work(&fq->retry_work);
	flush_work(&fq->reissue_work);
	fblk_ra_helper_stop(fq);
}

int fblk_io_init(void)
{
	/* Per CPU: a retry runs where its request was submitted. */
	fblk_retry_wq = alloc_workqueue("fblk_retry", WQ_HIGHPRI |
					WQ_MEM_RECLAIM | FBLK_WQ_PERCPU, 0);
	/* Unbound: the point of an issuer is to run beside the submitter. */
	fblk_issue_wq = alloc_workqueue("fblk_issue", WQ_HIGHPRI |
					WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	/* Each device bounds its own share (pool_size). */
	fblk_pool_wq = alloc_workqueue("fblk_pool", WQ_MEM_RECLAIM |
				       WQ_UNBOUND, WQ_MAX_ACTIVE);
	if (!fblk_retry_wq || !fblk_issue_wq || !fblk_pool_wq) {
		fblk_io_exit();
		return -ENOMEM;
	}
	return 0;
}

void fblk_io_exit(void)
{
	if (fblk_pool_wq)
		destroy_workqueue(fblk_pool_wq);
	if (fblk_issue_wq)
		destroy_workqueue(fblk_issue_wq);
	if (fblk_retry_wq)
		destroy_workqueue(fblk_retry_wq);
}
