// SPDX-License-Identifier: GPL-2.0
/*
 * Buffered reads that would block: parked on the folio they need
 * (IOCB_WAITQ with the request's own wait_page_queue), woken only for that
 * folio, then finished from the wakeup or retried for what is missing.
 * Called from the queue's issuer and its retry work, never from ->queue_rq.
 */
#include <linux/blk-mq.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/uio.h>

#include "fblk.h"

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
		queue_work_on(blk_mq_rq_cpu(fblk_cmd_rq(cmd)), fblk_retry_wq,
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
void fblk_read_finish(struct fblk_bh *bh)
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
	fblk_bh_queue_on(&cmd->wake_bh, blk_mq_rq_cpu(fblk_cmd_rq(cmd)));
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
 * read takes what is cached (which needs no lock) and goes to the pool for
 * the rest.  A probe, not a guarantee: a punch that starts right after it
 * costs one wait.
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
void fblk_buffered_read(struct fblk_cmd *cmd)
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
		if (fblk_lower_mapping_busy(cmd->queue->file)) {
			/* What is cached needs no lock: read it first. */
			if (probe)
				break;
			probe = true;
			continue;
		}
		probe = true;
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

void fblk_retry_work(struct work_struct *work)
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
