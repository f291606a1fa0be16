// SPDX-License-Identifier: GPL-2.0
/*
 * blk-mq: one tag set per device, one struct fblk_queue per hardware queue,
 * and how a request gets to the context that issues it.
 *
 * ->queue_rq prepares the request and queues it to its hardware queue's
 * issuer, or to the pool (pool.c) for what can only be done blocking,
 * without calling into the backing file and without sleeping: the tag set
 * is not BLK_MQ_F_BLOCKING, so blk-mq dispatches under RCU and never needs
 * a queue's SRCU.  The issuer, a work item of the queue, makes the first
 * attempt of each request (io.c for direct I/O and buffered writes, read.c
 * for buffered reads).
 */
#include <linux/blk-mq.h>
#include <linux/llist.h>

#include "fblk.h"

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
static void fblk_issuer_kick(struct fblk_queue *fq)
{
	if (!llist_empty(&fq->issues) && fblk_claim(fq, FBLK_ISSUER_BUSY))
		queue_work(fblk_issue_wq[fq->dev->stack_level], &fq->issue_work);
}

static bool fblk_cmd_is_rw(struct fblk_cmd *cmd)
{
	return req_op(fblk_cmd_rq(cmd)) == REQ_OP_READ || fblk_cmd_is_write(cmd);
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
static blk_status_t fblk_cmd_start(struct fblk_cmd *cmd)
{
	struct request *rq = fblk_cmd_rq(cmd);

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

/* Before the queue's file is closed: nothing of ours may still use it. */
void fblk_queue_drain(struct fblk_queue *fq)
{
	flush_work(&fq->issue_work);
	flush_work(&fq->retry_work);
	flush_work(&fq->reissue_work);
	fblk_ra_helper_stop(fq);
}

static blk_status_t fblk_queue_one(struct fblk_queue *fq, struct request *rq)
{
	struct fblk_cmd *cmd = blk_mq_rq_to_pdu(rq);

	/*
	 * Nothing to send a request to: an unbound device (a flush comes
	 * without sectors, so capacity 0 does not stop it), or one whose
	 * attach is still opening its files or failed doing so.  Unbinding
	 * closes the files with the queue frozen: a request sees either.
	 */
	if (!fq->file || READ_ONCE(cmd->dev->state) == FBLK_STATE_UNBOUND)
		return BLK_STS_IOERR;

	/*
	 * A read-only device refuses writes itself: the block layer only
	 * warns about writes to a read-only disk.
	 */
	if (op_is_write(req_op(rq)) && (cmd->dev->flags & FBLK_FL_READ_ONLY))
		return BLK_STS_IOERR;

	cmd->queue = fq;
	return fblk_cmd_start(cmd);
}

static blk_status_t fblk_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct fblk_queue *fq = hctx->driver_data;
	blk_status_t status = fblk_queue_one(fq, bd->rq);

	/* Whatever became of this one, the burst's earlier ones may wait. */
	if (bd->last)
		fblk_issuer_kick(fq);
	return status;
}

/* A burst that ->queue_rq was told would go on ended early. */
static void fblk_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	fblk_issuer_kick(hctx->driver_data);
}

static void fblk_complete_rq(struct request *rq)
{
	struct fblk_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->status);
}

static int fblk_init_hctx(struct blk_mq_hw_ctx *hctx, void *driver_data,
			  unsigned int hctx_idx)
{
	struct fblk_device *dev = driver_data;

	hctx->driver_data = &dev->queues[hctx_idx];
	return 0;
}

static int fblk_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, fblk_numa_node_t numa_node)
{
	fblk_cmd_init(blk_mq_rq_to_pdu(rq), set->driver_data);
	return 0;
}

static void fblk_exit_request(struct blk_mq_tag_set *set, struct request *rq,
			      unsigned int hctx_idx)
{
	fblk_cmd_exit(blk_mq_rq_to_pdu(rq));
}

static const struct blk_mq_ops fblk_mq_ops = {
	.queue_rq	= fblk_queue_rq,
	.commit_rqs	= fblk_commit_rqs,
	.complete	= fblk_complete_rq,
	.init_hctx	= fblk_init_hctx,
	.init_request	= fblk_init_request,
	.exit_request	= fblk_exit_request,
};

int fblk_init_tag_set(struct fblk_device *dev, unsigned int nr_hw_queues,
		      unsigned int queue_depth)
{
	struct blk_mq_tag_set *set = &dev->tag_set;

	set->ops = &fblk_mq_ops;
	set->nr_hw_queues = nr_hw_queues;
	set->queue_depth = queue_depth;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = sizeof(struct fblk_cmd);
	/*
	 * No I/O scheduler unless asked for, as loop: the lower file's has
	 * the say (a single queue would get mq-deadline).
	 */
	set->flags = FBLK_TAG_SET_FLAGS | BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	set->driver_data = dev;
	return blk_mq_alloc_tag_set(set);
}
