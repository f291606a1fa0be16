// SPDX-License-Identifier: GPL-2.0
/*
 * blk-mq: one tag set per device, ->queue_rq hands each request to the I/O
 * engine, ->complete ends it once the engine has set its status.
 */
#include <linux/blk-mq.h>

#include "fblk.h"

static blk_status_t fblk_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct fblk_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct fblk_device *dev = cmd->dev;

	/*
	 * A read-only device refuses writes itself: the block layer only
	 * warns about writes to a read-only disk.
	 */
	if (op_is_write(req_op(rq)) && (dev->flags & FBLK_FL_READ_ONLY))
		return BLK_STS_IOERR;

	blk_mq_start_request(rq);
	fblk_cmd_prepare(cmd);
	queue_work(dev->wq, &cmd->work);
	return BLK_STS_OK;
}

static void fblk_complete_rq(struct request *rq)
{
	struct fblk_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->status);
}

static int fblk_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, fblk_numa_node_t numa_node)
{
	struct fblk_cmd *cmd = blk_mq_rq_to_pdu(rq);

	cmd->dev = set->driver_data;
	INIT_WORK(&cmd->work, fblk_io_work);
	return 0;
}

static const struct blk_mq_ops fblk_mq_ops = {
	.queue_rq	= fblk_queue_rq,
	.complete	= fblk_complete_rq,
	.init_request	= fblk_init_request,
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
	set->flags = FBLK_TAG_SET_FLAGS;
	set->driver_data = dev;
	return blk_mq_alloc_tag_set(set);
}
