// SPDX-License-Identifier: GPL-2.0
/*
 * Readahead of buffered reads on the backing file.
 *
 * A read that misses the page cache is announced to the backing file's
 * readahead once, for everything it still lacks, before its first
 * asynchronous attempt: that attempt then finds folios to wait on
 * (IOCB_WAITQ) instead of -EAGAIN, a large read goes down in one go rather
 * than window by window (beside the queue's issuer, by its readahead
 * helper, when requests wait for the issuer: fblk_ra_first_part()), and the
 * retries after each wakeup never start readahead again.  How much more
 * than the request is read is the device's ra_policy:
 *
 *  random      exactly the request's pages, nothing around them
 *  sequential  the readahead state machine of the queue's own clone of the
 *              backing file, whose windows grow with a stream up to ra_kb
 *  auto        per queue: a read that starts where the queue's previous
 *              read ended continues a stream (as sequential), any other is
 *              read exactly; so is a read the upper page cache already
 *              issued as readahead (REQ_RAHEAD): no byte is read ahead
 *              twice; and so is a stream whose reads in flight on the queue
 *              already cover the window: they are its readahead, issued in
 *              parallel, where a window ahead of them would put the lower
 *              reads in a row
 *  off         fblk stays out of it: the backing file reads ahead as the
 *              kernel's own heuristics decide for any reader
 */
#include <linux/backing-dev.h>
#include <linux/blk-mq.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#include "fblk.h"

static const char * const fblk_ra_policy_names[] = {
	[FBLK_RA_AUTO]		= "auto",
	[FBLK_RA_SEQUENTIAL]	= "sequential",
	[FBLK_RA_RANDOM]	= "random",
	[FBLK_RA_OFF]		= "off",
};

const char *fblk_ra_policy_name(unsigned int policy)
{
	return policy < ARRAY_SIZE(fblk_ra_policy_names) ?
		fblk_ra_policy_names[policy] : "?";
}

int fblk_ra_policy_parse(const char *buf)
{
	return sysfs_match_string(fblk_ra_policy_names, buf);
}

/* A clone's window in pages: ra_kb, else what its device reads ahead. */
static unsigned long fblk_ra_window(struct fblk_device *dev, struct file *file)
{
	unsigned long pages = inode_to_bdi(file_inode(file))->ra_pages;

	if (dev->ra_kb && dev->ra_policy != FBLK_RA_OFF)
		pages = max(1UL, (unsigned long)dev->ra_kb >> (PAGE_SHIFT - 10));
	return pages;
}

/* Set each queue's clone to the device's policy; clones not open are skipped. */
void fblk_ra_apply(struct fblk_device *dev)
{
	unsigned int i;

	for (i = 0; i < dev->tag_set.nr_hw_queues; i++) {
		struct fblk_queue *fq = &dev->queues[i];
		struct file *file = fq->file;

		fq->ra_next = -1;
		fq->ra_streak = 0;
		if (!file)
			continue;
		spin_lock(&file->f_lock);
		file->f_ra.ra_pages = fblk_ra_window(dev, file);
		spin_unlock(&file->f_lock);
	}
}

/*
 * ra_policy auto: is this read the next one of a stream on its queue?
 * Unlocked: requests of one queue race here only when several are
 * dispatched at once, and a wrong guess costs one window, not data.
 */
static bool fblk_ra_continues_stream(struct fblk_queue *fq, loff_t pos,
				     unsigned int len)
{
	unsigned int streak = 0;

	if (READ_ONCE(fq->ra_next) == pos)
		streak = READ_ONCE(fq->ra_streak) + 1;
	WRITE_ONCE(fq->ra_streak, streak);
	WRITE_ONCE(fq->ra_next, pos + len);
	return streak + 1 >= FBLK_RA_STREAM_MIN;
}

/* ra_policy auto: do the reads in flight on the queue cover its window? */
static bool fblk_ra_stream_is_deep(struct fblk_queue *fq, unsigned int len)
{
	u64 window = (u64)READ_ONCE(fq->file->f_ra.ra_pages) << PAGE_SHIFT;

	return (u64)atomic_read(&fq->inflight) * len >= window;
}

/*
 * Note a read as ->queue_rq takes it, cached or not, whoever issues it: a
 * stream that is partly cached must still be recognised when it reaches
 * the uncached part.
 */
void fblk_ra_note(struct fblk_cmd *cmd)
{
	struct request *rq = fblk_cmd_rq(cmd);
	struct fblk_device *dev = cmd->dev;
	loff_t pos = (loff_t)blk_rq_pos(rq) << SECTOR_SHIFT;
	unsigned int len = blk_rq_bytes(rq);
	bool stream;

	switch (dev->ra_policy) {
	case FBLK_RA_AUTO:
		stream = fblk_ra_continues_stream(cmd->queue, pos, len);
		cmd->ra_stream = stream && !(rq->cmd_flags & REQ_RAHEAD) &&
				 !fblk_ra_stream_is_deep(cmd->queue, len);
		break;
	case FBLK_RA_SEQUENTIAL:
		cmd->ra_stream = true;
		break;
	default:
		cmd->ra_stream = false;
	}
}

/*
 * How much one step of an exact read reads at most: the larger of the clone's
 * window and the device's largest request (io_pages), rounded down to whole
 * largest requests.  Else every step ends in a small request: null_blk
 * takes 124 KiB, a 128 KiB window read a 256 KiB request as 124 + 4 + 124
 * + 4 KiB where 124 + 124 + 8 will do.
 */
static unsigned long fblk_ra_exact_step(struct file *file)
{
	unsigned long io_pages = inode_to_bdi(file_inode(file))->io_pages;
	unsigned long step = max_t(unsigned long, file->f_ra.ra_pages, io_pages);

	if (io_pages)
		step = rounddown(step, io_pages);
	return max(step, 1UL);
}

/* tmpfs reads without the page cache's readahead: none to start. */
static bool fblk_ra_possible(struct address_space *mapping)
{
	return mapping->a_ops->readahead || mapping->a_ops->read_folio;
}

/*
 * Exactly @nr pages from @index, up to EOF, in steps of what one lower
 * request reads; what is cached is skipped.  Straight into the page cache,
 * as POSIX_FADV_WILLNEED reads, but without the filesystem's ->fadvise
 * (xfs takes its IOLOCK there, which a buffered writer holds).
 */
static void fblk_ra_exact(struct file *file, pgoff_t index, unsigned long nr)
{
	struct address_space *mapping = file->f_mapping;
	loff_t size = i_size_read(mapping->host);
	pgoff_t end = DIV_ROUND_UP(size, PAGE_SIZE);
	unsigned long step = fblk_ra_exact_step(file);

	if (index >= end || !fblk_ra_possible(mapping))
		return;
	nr = min_t(unsigned long, nr, end - index);
	while (nr) {
		unsigned long n = min(nr, step);
		DEFINE_READAHEAD(ractl, file, &file->f_ra, mapping, index);

		fblk_page_cache_ra_unbounded(&ractl, n);
		index += n;
		nr -= n;
	}
}

/*
 * How much of @len bytes at @pos the queue's issuer reads ahead itself when
 * other requests wait behind this one: one step of an exact read, up to a
 * page boundary; the readahead helper reads the rest beside it.  The issuer
 * is the queue's one serial stage, and every page it reads ahead costs it
 * an allocation and a page cache insertion while the other CPU idles.  A
 * stream is left whole: its window
 * decides, not the request.
 */
size_t fblk_ra_first_part(struct fblk_cmd *cmd, loff_t pos, size_t len)
{
	unsigned long step = fblk_ra_exact_step(cmd->queue->file);
	loff_t end = round_down(pos, PAGE_SIZE) + ((loff_t)step << PAGE_SHIFT);
	size_t first = end - pos;

	if (cmd->ra_stream || cmd->dev->ra_policy == FBLK_RA_OFF)
		return len;
	/* A rest of less than a step is not worth a hand-over. */
	if (len < first || len - first < ((size_t)step << PAGE_SHIFT))
		return len;
	return first;
}

/*
 * Leave @len bytes at @pos to the queue's readahead helper; false if its
 * ring is full.  Counted as a readahead call of its own.
 */
bool fblk_ra_defer(struct fblk_queue *fq, loff_t pos, size_t len)
{
	pgoff_t index = pos >> PAGE_SHIFT;
	unsigned long nr = DIV_ROUND_UP(pos + len, PAGE_SIZE) - index;
	bool queued = false;

	spin_lock(&fq->ra_lock);
	if (fq->ra_head - fq->ra_tail < FBLK_RA_RING) {
		struct fblk_ra_range *r = &fq->ra_ring[fq->ra_head % FBLK_RA_RING];

		r->index = index;
		r->nr = nr;
		fq->ra_head++;
		queued = true;
	}
	spin_unlock(&fq->ra_lock);
	if (!queued)
		return false;
	fblk_stat_inc(fq->dev, FBLK_STAT_RA_CALLS);
	fblk_stat_add(fq->dev, FBLK_STAT_RA_PAGES, nr);
	queue_work(fblk_issue_wq[fq->dev->stack_level], &fq->ra_work);
	return true;
}

static bool fblk_ra_next_range(struct fblk_queue *fq, struct fblk_ra_range *r)
{
	bool found;

	spin_lock(&fq->ra_lock);
	found = fq->ra_tail != fq->ra_head;
	if (found)
		*r = fq->ra_ring[fq->ra_tail++ % FBLK_RA_RING];
	spin_unlock(&fq->ra_lock);
	return found;
}

static void fblk_ra_helper_work(struct work_struct *work)
{
	struct fblk_queue *fq = container_of(work, struct fblk_queue, ra_work);
	unsigned int ctx = fblk_lower_ctx_enter();
	struct fblk_ra_range r;

	while (fblk_ra_next_range(fq, &r)) {
		fblk_ra_exact(fq->file, r.index, r.nr);
		cond_resched();
	}
	fblk_lower_ctx_exit(ctx);
}

void fblk_ra_helper_init(struct fblk_queue *fq)
{
	spin_lock_init(&fq->ra_lock);
	INIT_WORK(&fq->ra_work, fblk_ra_helper_work);
}

/*
 * Before the queue's file goes: with no request in flight only the helper
 * can still use it, for ranges nobody waits for any more.
 */
void fblk_ra_helper_stop(struct fblk_queue *fq)
{
	cancel_work_sync(&fq->ra_work);
	spin_lock(&fq->ra_lock);
	fq->ra_tail = fq->ra_head;
	spin_unlock(&fq->ra_lock);
}

/*
 * Start reading what the request still lacks, from @pos on, @len bytes.
 * Called from one of fblk's contexts, once per request.
 */
void fblk_ra_start(struct fblk_cmd *cmd, loff_t pos, size_t len)
{
	struct fblk_device *dev = cmd->dev;
	struct file *file = cmd->queue->file;
	pgoff_t index = pos >> PAGE_SHIFT;
	unsigned long nr = DIV_ROUND_UP(pos + len, PAGE_SIZE) - index;

	if (dev->ra_policy == FBLK_RA_OFF || !len ||
	    !fblk_ra_possible(file->f_mapping))
		return;
	fblk_stat_inc(dev, FBLK_STAT_RA_CALLS);
	fblk_stat_add(dev, FBLK_STAT_RA_PAGES, nr);
	if (cmd->ra_stream) {
		fblk_stat_inc(dev, FBLK_STAT_RA_STREAM);
		page_cache_sync_readahead(file->f_mapping, &file->f_ra, file,
					  index, nr);
	} else {
		fblk_ra_exact(file, index, nr);
	}
}
