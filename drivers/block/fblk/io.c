// SPDX-License-Identifier: GPL-2.0
/*
 * The I/O engine: each request becomes kiocbs on the backing file.
 *
 * Reads and writes build an ITER_BVEC over the request's pages and call
 * ->read_iter/->write_iter with a kiocb whose ->ki_complete finishes the
 * request, so direct I/O completes asynchronously; buffered I/O completes
 * before the call returns and takes the same completion path.  A partial
 * transfer is continued from where it stopped; a read that meets the end of
 * the file reads zeroes for the rest.  Flush, discard and write-zeroes map to
 * fsync and fallocate.  Everything here runs from the device's workqueue,
 * in a memalloc_noio scope: an allocation in the lower file must never wait
 * for I/O that might be queued behind this very request.
 */
#include <linux/blk-mq.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "fblk.h"

void fblk_cmd_prepare(struct fblk_cmd *cmd)
{
	cmd->done = 0;
	cmd->status = BLK_STS_OK;
	cmd->bvec = NULL;
	cmd->nr_bvec = 0;
}

static void fblk_cmd_finish(struct fblk_cmd *cmd, blk_status_t status)
{
	if (cmd->bvec != cmd->inline_bvec)
		kfree(cmd->bvec);
	cmd->bvec = NULL;
	cmd->status = status;
	blk_mq_complete_request(fblk_cmd_rq(cmd));
}

static loff_t fblk_cmd_pos(struct fblk_cmd *cmd)
{
	return ((loff_t)blk_rq_pos(fblk_cmd_rq(cmd)) << SECTOR_SHIFT) +
		cmd->dev->offset;
}

/*
 * A request of several bios needs its bvecs in one array: gathered once, on
 * the first attempt, into the pdu when they fit.  A single bio's own bvec
 * table serves as it is.
 */
static int fblk_cmd_gather_bvecs(struct fblk_cmd *cmd)
{
	struct request *rq = fblk_cmd_rq(cmd);
	struct req_iterator rq_iter;
	struct bio_vec bv, *bvec;

	rq_for_each_bvec(bv, rq, rq_iter)
		cmd->nr_bvec++;
	if (rq->bio == rq->biotail)
		return 0;

	bvec = cmd->inline_bvec;
	if (cmd->nr_bvec > FBLK_INLINE_BVECS) {
		bvec = kmalloc_array(cmd->nr_bvec, sizeof(*bvec), GFP_NOIO);
		if (!bvec)
			return -ENOMEM;
	}
	cmd->bvec = bvec;
	rq_for_each_bvec(bv, rq, rq_iter)
		*bvec++ = bv;
	return 0;
}

/* An iterator over what is left of the request after @cmd->done bytes. */
static void fblk_cmd_iter(struct fblk_cmd *cmd, struct iov_iter *iter,
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

static bool fblk_cmd_is_write(struct fblk_cmd *cmd)
{
	return req_op(fblk_cmd_rq(cmd)) == REQ_OP_WRITE;
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
	struct inode *inode = cmd->dev->backing->f_mapping->host;

	return fblk_cmd_pos(cmd) + cmd->done >= i_size_read(inode);
}

/* Both the submitter and ->ki_complete are done with the kiocb. */
static void fblk_rw_done(struct fblk_cmd *cmd)
{
	struct request *rq = fblk_cmd_rq(cmd);
	long ret = cmd->ret;

	if (ret < 0) {
		fblk_cmd_finish(cmd, errno_to_blk_status(ret));
		return;
	}
	cmd->done += ret;
	if (cmd->done == blk_rq_bytes(rq)) {
		fblk_cmd_finish(cmd, BLK_STS_OK);
		return;
	}
	if (fblk_cmd_is_write(cmd)) {
		if (!ret) {	/* no progress: the file will not take more */
			fblk_cmd_finish(cmd, BLK_STS_IOERR);
			return;
		}
	} else if (!ret || fblk_cmd_past_eof(cmd)) {
		fblk_cmd_zero_rest(cmd);
		fblk_cmd_finish(cmd, BLK_STS_OK);
		return;
	}
	/* Partial transfer: continue in process context for the rest. */
	queue_work(cmd->dev->wq, &cmd->work);
}

static void fblk_rw_put(struct fblk_cmd *cmd)
{
	if (atomic_dec_and_test(&cmd->ref))
		fblk_rw_done(cmd);
}

static void fblk_rw_complete(struct kiocb *iocb, long ret)
{
	struct fblk_cmd *cmd = container_of(iocb, struct fblk_cmd, iocb);

	cmd->ret = ret;
	fblk_rw_put(cmd);
}

static void fblk_rw_submit(struct fblk_cmd *cmd)
{
	struct request *rq = fblk_cmd_rq(cmd);
	struct fblk_device *dev = cmd->dev;
	struct file *file = dev->backing;
	struct kiocb *iocb = &cmd->iocb;
	bool write = fblk_cmd_is_write(cmd);
	struct iov_iter iter;
	ssize_t ret;

	if (!cmd->done && fblk_cmd_gather_bvecs(cmd)) {
		fblk_cmd_finish(cmd, BLK_STS_RESOURCE);
		return;
	}
	fblk_cmd_iter(cmd, &iter, write ? ITER_SOURCE : ITER_DEST);

	iocb->ki_filp = file;
	iocb->ki_pos = fblk_cmd_pos(cmd) + cmd->done;
	iocb->ki_complete = fblk_rw_complete;
	iocb->ki_ioprio = req_get_ioprio(rq);
	iocb->ki_flags = 0;
	if (dev->flags & FBLK_FL_DIRECT_IO)
		iocb->ki_flags |= IOCB_DIRECT;
	if (write)
		iocb->ki_flags |= IOCB_WRITE;
	if (rq->cmd_flags & REQ_FUA)
		iocb->ki_flags |= IOCB_DSYNC;

	/*
	 * ->ki_complete may run before the call returns; the request is
	 * finished by whichever of the two lets go last.
	 */
	atomic_set(&cmd->ref, 2);
	if (write)
		ret = file->f_op->write_iter(iocb, &iter);
	else
		ret = file->f_op->read_iter(iocb, &iter);
	if (ret != -EIOCBQUEUED)
		fblk_rw_complete(iocb, ret);
	fblk_rw_put(cmd);
}

static int fblk_punch_hole(struct file *file, loff_t pos, loff_t len)
{
	return vfs_fallocate(file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     pos, len);
}

static int fblk_write_zero_pages(struct file *file, loff_t pos, loff_t len)
{
	struct bio_vec bv;
	struct iov_iter iter;
	ssize_t ret;

	while (len > 0) {
		size_t chunk = min_t(loff_t, len, PAGE_SIZE);

		bvec_set_page(&bv, ZERO_PAGE(0), chunk, 0);
		iov_iter_bvec(&iter, ITER_SOURCE, &bv, 1, chunk);
		ret = vfs_iter_write(file, &iter, &pos, 0);
		if (ret < 0)
			return ret;
		if (!ret)
			return -EIO;
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
	struct file *file = cmd->dev->backing;
	int err = -EOPNOTSUPP;

	if (!(fblk_cmd_rq(cmd)->cmd_flags & REQ_NOUNMAP))
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

static int fblk_do_sync_op(struct fblk_cmd *cmd)
{
	struct file *file = cmd->dev->backing;
	loff_t pos = fblk_cmd_pos(cmd);
	loff_t len = blk_rq_bytes(fblk_cmd_rq(cmd));

	switch (req_op(fblk_cmd_rq(cmd))) {
	case REQ_OP_FLUSH:
		return vfs_fsync(file, 0);
	case REQ_OP_DISCARD:
		return fblk_punch_hole(file, pos, len);
	case REQ_OP_WRITE_ZEROES:
		return fblk_write_zeroes(cmd, pos, len);
	default:
		return -EOPNOTSUPP;
	}
}

void fblk_io_work(struct work_struct *work)
{
	struct fblk_cmd *cmd = container_of(work, struct fblk_cmd, work);
	unsigned int noio = memalloc_noio_save();

	switch (req_op(fblk_cmd_rq(cmd))) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		fblk_rw_submit(cmd);
		break;
	default:
		fblk_cmd_finish(cmd, errno_to_blk_status(fblk_do_sync_op(cmd)));
		break;
	}
	memalloc_noio_restore(noio);
}
