// SPDX-License-Identifier: GPL-2.0
/*
 * blk-mq: one tag set per device, one struct fblk_queue per hardware queue.
 * ->queue_rq hands each request to the I/O engine, which queues it to the
 * hardware queue's issuer (or the pool) without calling into the backing
 * file and without sleeping: the tag set is not BLK_MQ_F_BLOCKING, so
 * blk-mq dispatches under RCU and never needs a queue's SRCU.
 */
#include <linux/blk-mq.h>

#include "fblk.h"

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
