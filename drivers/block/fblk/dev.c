// SPDX-License-Identifier: GPL-2.0
/*
 * A device's life: added (unbound), configured onto a backing file (bound),
 * detached (rundown, then unbound again), removed.
 *
 * Lock order: fblk_ctl_mutex -> disk->open_mutex -> fblk_bind_mutex ->
 * dev->lock.  ->release runs under open_mutex, so nothing may take open_mutex
 * while holding the bind mutex or a device lock: partition scans happen after
 * both are dropped.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/file.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/pagemap.h>
#include <linux/part_stat.h>
#include <linux/slab.h>
#include <linux/stat.h>

#include "fblk.h"

static int fblk_major;
static DEFINE_IDR(fblk_index_idr);
/* Guards the idr: adding, removing and finding devices. */
static DEFINE_MUTEX(fblk_ctl_mutex);
/*
 * Guards every device's ->backing against change while a configure walks a
 * chain of fblk devices looking for a cycle.
 */
static DEFINE_MUTEX(fblk_bind_mutex);

static const struct block_device_operations fblk_fops;

static struct fblk_device *fblk_of_bdev(struct block_device *bdev)
{
	if (bdev && bdev->bd_disk && bdev->bd_disk->fops == &fblk_fops)
		return bdev->bd_disk->private_data;
	return NULL;
}

/*
 * The block device a file's data lives on: itself, or its filesystem's
 * (NULL for one without a block device, or spread over several).
 */
struct block_device *fblk_file_bdev(struct file *file)
{
	struct inode *inode = file->f_mapping->host;

	if (S_ISBLK(inode->i_mode))
		return I_BDEV(inode);
	return inode->i_sb->s_bdev;
}

/* 0 without a block device. */
u64 fblk_bdev_sectors_read(struct block_device *bdev)
{
	return bdev ? part_stat_read(bdev, sectors[STAT_READ]) : 0;
}

/* Caller holds fblk_bind_mutex, so no device's ->backing changes under us. */
static int fblk_check_cycle(struct fblk_device *dev, struct file *file)
{
	struct fblk_device *lower;

	while ((lower = fblk_of_bdev(fblk_file_bdev(file)))) {
		if (lower == dev)
			return -ELOOP;
		file = lower->backing;
		if (!file)
			break;
	}
	return 0;
}

/*
 * @file's level in a stack of fblk devices, which picks the workqueues of
 * the device's contexts (fblk.h): one above the fblk device its data lives
 * on, if any.  Caller holds fblk_bind_mutex; that device is bound, its
 * level set.
 */
static unsigned int fblk_stack_level(struct file *file)
{
	struct fblk_device *lower = fblk_of_bdev(fblk_file_bdev(file));

	if (!lower)
		return 0;
	return min_t(unsigned int, lower->stack_level + 1, FBLK_STACK_LEVELS - 1);
}

static int fblk_validate_params(const struct fblk_params *p)
{
	if (p->mask & ~FBLK_PARAM_ALL)
		return -EINVAL;
	if (memchr_inv(p->reserved, 0, sizeof(p->reserved)) || p->reserved32)
		return -EINVAL;
	if ((p->mask & FBLK_PARAM_IO_MODE) && p->io_mode > FBLK_IO_AUTO)
		return -EINVAL;
	if ((p->mask & FBLK_PARAM_SUBMIT) && p->submit > FBLK_SUBMIT_THREADS)
		return -EINVAL;
	if ((p->mask & FBLK_PARAM_POOL_SIZE) &&
	    (!p->pool_size || p->pool_size > FBLK_MAX_POOL_SIZE))
		return -EINVAL;
	if ((p->mask & FBLK_PARAM_RA_POLICY) && p->ra_policy > FBLK_RA_OFF)
		return -EINVAL;
	if ((p->mask & FBLK_PARAM_RA_KB) && p->ra_kb > FBLK_MAX_RA_KB)
		return -EINVAL;
	if ((p->mask & FBLK_PARAM_INLINE_DEPTH) &&
	    p->inline_depth > FBLK_MAX_QUEUE_DEPTH)
		return -EINVAL;
	return 0;
}

static int fblk_validate_config(const struct fblk_config *cfg)
{
	const struct fblk_params *p = &cfg->params;
	unsigned int bs = cfg->block_size;
	int err;

	if (cfg->flags & ~FBLK_FL_SETTABLE || cfg->__pad)
		return -EINVAL;
	err = fblk_validate_params(p);
	if (err)
		return err;
	/* The loop-style flag and io_mode must not contradict each other. */
	if ((cfg->flags & FBLK_FL_DIRECT_IO) && (p->mask & FBLK_PARAM_IO_MODE) &&
	    p->io_mode != FBLK_IO_DIRECT)
		return -EINVAL;
	if (bs && (bs < FBLK_MIN_BLOCK_SIZE || bs > FBLK_MAX_BLOCK_SIZE ||
		   !is_power_of_2(bs)))
		return -EINVAL;
	if (!IS_ALIGNED(cfg->offset, SECTOR_SIZE) ||
	    !IS_ALIGNED(cfg->sizelimit, SECTOR_SIZE))
		return -EINVAL;
	if (cfg->offset > LLONG_MAX || cfg->sizelimit > LLONG_MAX)
		return -EINVAL;
	return 0;
}

static int fblk_validate_file(struct file *file)
{
	umode_t mode = file_inode(file)->i_mode;

	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	if (S_ISDIR(mode))
		return -EISDIR;
	if (!S_ISREG(mode) && !S_ISBLK(mode))
		return -EINVAL;
	if (!file->f_op->read_iter)
		return -EINVAL;
	return 0;
}

/*
 * FMODE_CAN_ODIRECT is a claim, not proof: 6.1's overlayfs makes it for
 * every file and fails each direct kiocb with EINVAL when the file lives
 * on tmpfs.  One aligned direct read at the start of the file says
 * whether direct I/O works, so that auto never picks a mode whose every
 * request fails.  Only the answers "not supported" count against it.
 */
static bool fblk_direct_works(struct file *file)
{
	struct block_device *bdev = fblk_file_bdev(file);
	unsigned int len = PAGE_SIZE;
	struct iov_iter iter;
	struct kiocb iocb;
	struct bio_vec bv;
	struct page *page;
	ssize_t ret;

	if (!fblk_file_can_direct(file))
		return false;
	if (bdev)
		len = max(len, bdev_logical_block_size(bdev));
	page = alloc_pages(GFP_KERNEL, get_order(len));
	if (!page)
		return true;	/* unknown: the requests will say */
	init_sync_kiocb(&iocb, file);
	iocb.ki_pos = 0;
	iocb.ki_flags = fblk_file_iocb_flags(file) | IOCB_DIRECT;
	bvec_set_page(&bv, page, len, 0);
	iov_iter_bvec(&iter, ITER_DEST, &bv, 1, len);
	ret = file->f_op->read_iter(&iocb, &iter);
	__free_pages(page, get_order(len));
	return ret != -EINVAL && ret != -EOPNOTSUPP;
}

/* Direct I/O needs the backing's support and its alignment in our blocks. */
static int fblk_check_direct(struct fblk_device *dev)
{
	struct block_device *bdev = fblk_file_bdev(dev->backing);
	unsigned int align = bdev ? bdev_logical_block_size(bdev) : SECTOR_SIZE;
	unsigned int block_size = dev->block_size;
	loff_t offset = dev->offset;

	if (!dev->caps.direct)
		return -EOPNOTSUPP;
	if (block_size < align || !IS_ALIGNED(offset, align))
		return -EINVAL;
	return 0;
}

/*
 * Without a block size asked for, a device that starts in direct (or auto)
 * mode takes the backing device's logical block size, as loop does: direct
 * I/O needs that alignment.  Others keep 512-byte sectors.
 */
static unsigned int fblk_default_block_size(struct file *file,
					    const struct fblk_config *cfg)
{
	const struct fblk_params *p = &cfg->params;
	struct block_device *bdev = fblk_file_bdev(file);
	bool direct = cfg->flags & FBLK_FL_DIRECT_IO;

	if (p->mask & FBLK_PARAM_IO_MODE)
		direct |= p->io_mode == FBLK_IO_DIRECT ||
			  p->io_mode == FBLK_IO_AUTO;
	if (!direct || !bdev || !fblk_file_can_direct(file))
		return SECTOR_SIZE;
	return bdev_logical_block_size(bdev);
}

/*
 * The device's size: the backing file past @offset, at most @sizelimit,
 * whole blocks only.  -EINVAL if @offset lies beyond the file's end.
 */
static loff_t fblk_device_size(struct file *file, loff_t offset,
			       loff_t sizelimit, unsigned int block_size)
{
	loff_t size = i_size_read(file->f_mapping->host);

	if (offset > size)
		return -EINVAL;
	size -= offset;
	if (sizelimit && sizelimit < size)
		size = sizelimit;
	return round_down(size, block_size);
}

static bool fblk_backing_can_punch(struct file *file)
{
	struct inode *inode = file->f_mapping->host;

	if (S_ISBLK(inode->i_mode))
		/* A block device punches holes by writing zeroes, offloaded. */
		return bdev_write_zeroes_sectors(I_BDEV(inode)) > 0;
	return file->f_op->fallocate;
}

static void fblk_probe_caps(struct file *file, bool direct,
			    struct fblk_caps *caps)
{
	struct block_device *bdev = fblk_file_bdev(file);

	caps->direct = direct;
	caps->nowait = file->f_mode & FMODE_NOWAIT;
	/*
	 * Direct I/O's NOWAIT goes all the way down, and a lower device may
	 * refuse REQ_NOWAIT bios; buffered I/O's stops at the page cache.
	 */
	caps->nowait_direct = caps->nowait && (!bdev || bdev_nowait(bdev));
	caps->buf_rasync = fblk_file_buf_rasync(file);
	caps->buf_wasync = fblk_file_buf_wasync(file);
	caps->dontcache = fblk_file_dontcache(file);
	caps->punch = fblk_backing_can_punch(file);
	caps->blkdev = S_ISBLK(file->f_mapping->host->i_mode);
}

static const char * const fblk_io_mode_names[] = {
	[FBLK_IO_BUFFERED]	= "buffered",
	[FBLK_IO_DIRECT]	= "direct",
	[FBLK_IO_DONTCACHE]	= "dontcache",
	[FBLK_IO_AUTO]		= "auto",
};

/* The mode @asked comes to on this device's backing file, or an error. */
static int fblk_resolve_io_mode(struct fblk_device *dev, unsigned int asked)
{
	int err;

	switch (asked) {
	case FBLK_IO_BUFFERED:
		return FBLK_IO_BUFFERED;
	case FBLK_IO_DIRECT:
		err = fblk_check_direct(dev);
		if (err == -EOPNOTSUPP)
			pr_info("fblk%d: io_mode direct: the backing file cannot do direct I/O\n",
				dev->number);
		else if (err)
			pr_info("fblk%d: io_mode direct: block size or offset below the backing device's alignment\n",
				dev->number);
		return err ?: FBLK_IO_DIRECT;
	case FBLK_IO_DONTCACHE:
		if (dev->caps.dontcache)
			return FBLK_IO_DONTCACHE;
		pr_info("fblk%d: io_mode dontcache: not offered by this kernel or backing filesystem\n",
			dev->number);
		return -EOPNOTSUPP;
	case FBLK_IO_AUTO:
		if (!fblk_check_direct(dev))
			return FBLK_IO_DIRECT;
		return dev->caps.dontcache ? FBLK_IO_DONTCACHE :
					     FBLK_IO_BUFFERED;
	}
	return -EINVAL;
}

/*
 * Apply what @p names; dev->lock held, and the queue frozen or no I/O
 * possible.  Nothing changes on error.
 */
static int fblk_apply_params(struct fblk_device *dev,
			     const struct fblk_params *p)
{
	unsigned int asked = dev->io_mode_asked;
	int mode;

	if (p->mask & FBLK_PARAM_IO_MODE)
		asked = p->io_mode;
	mode = fblk_resolve_io_mode(dev, asked);
	if (mode < 0)
		return mode;

	dev->io_mode_asked = asked;
	dev->io_mode = mode;
	if (mode == FBLK_IO_DIRECT)
		dev->flags |= FBLK_FL_DIRECT_IO;
	else
		dev->flags &= ~FBLK_FL_DIRECT_IO;
	if (p->mask & FBLK_PARAM_SUBMIT)
		dev->submit = p->submit;
	if (p->mask & FBLK_PARAM_POOL_SIZE)
		WRITE_ONCE(dev->pool_size, p->pool_size);
	if (p->mask & FBLK_PARAM_INLINE_DEPTH)
		dev->inline_depth = p->inline_depth;
	if (p->mask & FBLK_PARAM_RA_POLICY)
		dev->ra_policy = p->ra_policy;
	if (p->mask & FBLK_PARAM_RA_KB)
		dev->ra_kb = p->ra_kb;
	fblk_ra_apply(dev);
	return 0;
}

int fblk_set_params(struct fblk_device *dev, const struct fblk_params *p)
{
	unsigned int memflags;
	int err;

	err = fblk_validate_params(p);
	if (err)
		return err;
	mutex_lock(&dev->lock);
	if (dev->state != FBLK_STATE_BOUND) {
		mutex_unlock(&dev->lock);
		return -ENXIO;
	}
	/*
	 * Leaving buffered I/O: what it left dirty in the backing file's
	 * page cache is written back and synced first, as loop does before
	 * it switches to direct I/O.  A writeback error it meets belongs to
	 * the old mode's writes, which the device's flushes report (through
	 * the queues' own files): it does not refuse the switch, as loop's
	 * does not.
	 */
	if ((p->mask & FBLK_PARAM_IO_MODE) && p->io_mode != dev->io_mode_asked &&
	    dev->io_mode != FBLK_IO_DIRECT)
		vfs_fsync(dev->backing, 0);
	/* Drain, switch, resume: no request sees two settings. */
	memflags = fblk_freeze_queue(dev->disk->queue);
	err = fblk_apply_params(dev, p);
	fblk_unfreeze_queue(dev->disk->queue, memflags);
	mutex_unlock(&dev->lock);
	return err;
}

/* Caller holds dev->lock. */
void fblk_get_params(struct fblk_device *dev, struct fblk_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mask = FBLK_PARAM_ALL;
	p->io_mode = dev->io_mode_asked;
	p->submit = dev->submit;
	p->pool_size = dev->pool_size;
	p->ra_policy = dev->ra_policy;
	p->ra_kb = dev->ra_kb;
	p->inline_depth = dev->inline_depth;
}

const char *fblk_io_mode_name(unsigned int mode)
{
	return mode < ARRAY_SIZE(fblk_io_mode_names) ?
		fblk_io_mode_names[mode] : "?";
}

int fblk_io_mode_parse(const char *buf)
{
	return sysfs_match_string(fblk_io_mode_names, buf);
}

/*
 * Each hardware queue reads through its own open file: see fblk_queue.
 * They are opened before configure takes any lock: opening a block device
 * takes its open_mutex, and a last close (autoclear) holds that while it
 * takes fblk_bind_mutex and the device lock.
 */
static struct file **fblk_open_clones(struct file *file, unsigned int nr)
{
	int flags = file->f_flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	struct file **clones;
	unsigned int i;

	clones = kcalloc(nr, sizeof(*clones), GFP_KERNEL);
	if (!clones)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < nr; i++) {
		struct file *clone = dentry_open(&file->f_path, flags,
						 file->f_cred);

		if (IS_ERR(clone)) {
			while (i--)
				fput(clones[i]);
			kfree(clones);
			return ERR_CAST(clone);
		}
		clones[i] = clone;
	}
	return clones;
}

/* What bind did not hand to the queues goes back. */
static void fblk_put_clones(struct file **clones, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (clones[i])
			fput(clones[i]);
	kfree(clones);
}

static void fblk_give_queue_files(struct fblk_device *dev,
				  struct file **clones)
{
	unsigned int i;

	for (i = 0; i < dev->tag_set.nr_hw_queues; i++) {
		dev->queues[i].file = clones[i];
		clones[i] = NULL;
	}
}

/*
 * No request is in flight (the queue is frozen, or nobody has it open), but
 * the contexts that completed the last ones may still be returning: wait
 * for each before its file goes.
 */
static void fblk_close_queue_files(struct fblk_device *dev)
{
	unsigned int i;

	fblk_pool_drain(dev);
	for (i = 0; i < dev->tag_set.nr_hw_queues; i++) {
		fblk_queue_drain(&dev->queues[i]);
		if (dev->queues[i].file)
			fput(dev->queues[i].file);
		dev->queues[i].file = NULL;
	}
}

static void fblk_reset_stats(struct fblk_device *dev)
{
	int cpu;

	for_each_possible_cpu(cpu)
		memset(per_cpu_ptr(dev->stats, cpu), 0,
		       sizeof(struct fblk_pcpu_stats));
	atomic_set(&dev->pool_depth_max, 0);
	atomic_set(&dev->retries_max, 0);
}

static void fblk_limits_for(struct fblk_device *dev, struct fblk_limits *lim)
{
	struct inode *inode = dev->backing->f_mapping->host;

	lim->logical_block_size = dev->block_size;
	lim->max_write_zeroes_sectors = UINT_MAX >> SECTOR_SHIFT;
	lim->max_discard_sectors = 0;
	lim->discard_granularity = 0;
	if (dev->caps.punch) {
		lim->max_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
		lim->discard_granularity = max_t(unsigned int, dev->block_size,
						 inode->i_sb->s_blocksize);
	}
}

/*
 * @drop (at unbind, capacity 0): every partition goes, scanned or added
 * by hand (BLKPG), and none may come back, so GENHD_FL_NO_PART is set
 * under the open_mutex that BLKPG_ADD_PARTITION checks it under, before
 * the scan drops them: a partx that read the table while the device was
 * bound cannot add one back after the drop.
 */
static void fblk_rescan_partitions(struct fblk_device *dev, bool locked,
				   bool drop)
{
	int err;

	if (!locked)
		mutex_lock(&dev->disk->open_mutex);
	if (drop) {
		dev->disk->flags |= GENHD_FL_NO_PART;
		set_bit(GD_SUPPRESS_PART_SCAN, &dev->disk->state);
	}
	err = bdev_disk_changed(dev->disk, false);
	dev->partitions_stale = err == -EBUSY;
	if (!locked)
		mutex_unlock(&dev->disk->open_mutex);
	if (err)
		pr_warn("fblk%d: partition scan failed: %d\n", dev->number, err);
}

/*
 * The block device's page cache works in blocks whose size its first opener
 * set from the logical block size and size then.  An opener from before the
 * attach keeps that: a previous attach's 512 bytes on a device now of 4 KiB
 * blocks sends the queue pieces it refuses (7.x fails them with EIO), and
 * page-sized blocks (an empty device's) on a size that is not a multiple of
 * them leave the last sectors out of reach.  So set it as a first open
 * would: the logical block size, doubled up to a page while the size allows.
 * Unbound, the device had no capacity, so its page cache holds nothing to
 * write back.
 */
static void fblk_fit_bdev_block_size(struct fblk_device *dev, loff_t size)
{
	struct inode *inode = fblk_bdev_inode(dev->disk->part0);
	unsigned int bsize = dev->block_size;

	while (bsize < PAGE_SIZE && !(size & bsize))
		bsize <<= 1;
	if (inode->i_blkbits == blksize_bits(bsize))
		return;
	inode_lock(inode);
	filemap_invalidate_lock(inode->i_mapping);
	truncate_inode_pages(inode->i_mapping, 0);
	inode->i_blkbits = blksize_bits(bsize);
	filemap_invalidate_unlock(inode->i_mapping);
	inode_unlock(inode);
}

/* Caller holds fblk_bind_mutex and dev->lock; the device is unbound. */
static int fblk_bind(struct fblk_device *dev, struct file *file,
		     struct file **clones, const struct fblk_config *cfg,
		     fblk_mode_t mode, bool direct_works)
{
	struct fblk_params params = cfg->params;
	struct fblk_limits lim;
	loff_t size;
	int err;

	dev->block_size = cfg->block_size ?:
			  fblk_default_block_size(file, cfg);
	size = fblk_device_size(file, cfg->offset, cfg->sizelimit,
				dev->block_size);
	if (size < 0)
		return size;

	dev->backing = file;
	dev->offset = cfg->offset;
	dev->sizelimit = cfg->sizelimit;
	dev->flags = cfg->flags & ~FBLK_FL_DIRECT_IO;
	if (!(file->f_mode & FMODE_WRITE) || !(mode & FBLK_MODE_WRITE) ||
	    !file->f_op->write_iter)
		dev->flags |= FBLK_FL_READ_ONLY;
	fblk_probe_caps(file, direct_works, &dev->caps);
	dev->stack_level = fblk_stack_level(file);
	dev->io_mode_asked = FBLK_IO_BUFFERED;
	dev->submit = FBLK_SUBMIT_ASYNC;
	dev->pool_size = fblk_default_pool_size;
	dev->inline_depth = FBLK_DEFAULT_INLINE_DEPTH;
	dev->ra_policy = FBLK_RA_AUTO;
	dev->ra_kb = 0;
	if (cfg->flags & FBLK_FL_DIRECT_IO) {
		params.mask |= FBLK_PARAM_IO_MODE;
		params.io_mode = FBLK_IO_DIRECT;
	}
	err = fblk_apply_params(dev, &params);
	if (err)
		goto out_unset;
	fblk_give_queue_files(dev, clones);
	fblk_ra_apply(dev);
	fblk_limits_for(dev, &lim);
	err = fblk_apply_limits(dev->disk->queue, &lim);
	if (err)
		goto out_close;

	/*
	 * The backing file's mapping keeps its gfp mask: fblk's contexts run
	 * with PF_MEMALLOC_NOIO, which keeps their page cache allocations
	 * from recursing into I/O that could be ours, queued behind them.
	 */
	fblk_reset_stats(dev);
	dev->read_base = fblk_bdev_sectors_read(dev->disk->part0);
	dev->lower_read_base = fblk_bdev_sectors_read(fblk_file_bdev(file));
	set_disk_ro(dev->disk, dev->flags & FBLK_FL_READ_ONLY);
	/*
	 * A bound device takes partitions added by hand, as loop's do; the
	 * kernel scans its table only when asked to (-P).
	 */
	if (dev->flags & FBLK_FL_PARTSCAN)
		clear_bit(GD_SUPPRESS_PART_SCAN, &dev->disk->state);
	dev->disk->flags &= ~GENHD_FL_NO_PART;
	fblk_fit_bdev_block_size(dev, size);
	dev->state = FBLK_STATE_BOUND;
	set_capacity_and_notify(dev->disk, size >> SECTOR_SHIFT);
	return 0;

out_close:
	fblk_close_queue_files(dev);
out_unset:
	dev->backing = NULL;
	dev->flags = 0;
	return err;
}

/* Does @cfg's offset lie within @file (the size bind will compute)? */
static int fblk_check_size(struct file *file, const struct fblk_config *cfg)
{
	unsigned int bs = cfg->block_size ?: fblk_default_block_size(file, cfg);
	loff_t size = fblk_device_size(file, cfg->offset, cfg->sizelimit, bs);

	return size < 0 ? size : 0;
}

/* Under fblk_bind_mutex and dev->lock: may @file back @dev now? */
static int fblk_check_bindable(struct fblk_device *dev, struct file *file)
{
	if (dev->state != FBLK_STATE_UNBOUND)
		return -EBUSY;
	return fblk_check_cycle(dev, file);
}

static int fblk_configure(struct fblk_device *dev, fblk_mode_t mode,
			  const struct fblk_config __user *arg)
{
	struct fblk_config cfg;
	struct file *file, **clones;
	bool direct_works;
	int err;

	if (copy_from_user(&cfg, arg, sizeof(cfg)))
		return -EFAULT;
	err = fblk_validate_config(&cfg);
	if (err)
		return err;
	file = fget(cfg.fd);
	if (!file)
		return -EBADF;
	err = fblk_validate_file(file);
	if (err)
		goto out_putf;
	/*
	 * A busy device, a cycle or a size that does not fit is the answer
	 * before anything the clones' opening may say (EROFS from a lower
	 * device now read-only, say); checked again once the clones are open
	 * and the locks retaken.
	 */
	mutex_lock(&fblk_bind_mutex);
	mutex_lock(&dev->lock);
	err = fblk_check_bindable(dev, file);
	mutex_unlock(&dev->lock);
	mutex_unlock(&fblk_bind_mutex);
	if (!err)
		err = fblk_check_size(file, &cfg);
	if (err)
		goto out_putf;
	direct_works = fblk_direct_works(file);

	clones = fblk_open_clones(file, dev->tag_set.nr_hw_queues);
	if (IS_ERR(clones)) {
		err = PTR_ERR(clones);
		goto out_putf;
	}

	mutex_lock(&fblk_bind_mutex);
	mutex_lock(&dev->lock);
	err = fblk_check_bindable(dev, file);
	if (!err)
		err = fblk_bind(dev, file, clones, &cfg, mode, direct_works);
	mutex_unlock(&dev->lock);
	mutex_unlock(&fblk_bind_mutex);
	fblk_put_clones(clones, dev->tag_set.nr_hw_queues);
	if (err)
		goto out_putf;

	/* The file reference now belongs to the device. */
	if (cfg.flags & FBLK_FL_PARTSCAN)
		fblk_rescan_partitions(dev, false, false);
	kobject_uevent(&disk_to_dev(dev->disk)->kobj, KOBJ_CHANGE);
	return 0;

out_putf:
	fput(file);
	return err;
}

/*
 * Take the device from rundown back to unbound.  The caller moved it to
 * rundown, which keeps every other configure and detach away.  From
 * ->release, open_mutex is already held and no I/O can be in flight.
 */
static void fblk_unbind(struct fblk_device *dev, bool in_release)
{
	struct request_queue *q = dev->disk->queue;
	unsigned int memflags = 0;
	struct file *file;

	/*
	 * No lock is taken with the queue frozen: configure allocates under
	 * fblk_bind_mutex, and reclaim may wait on a frozen queue.  The I/O
	 * path never uses ->backing (each queue has its own file), so it can
	 * go before the drain; what requests read waits until after it.
	 */
	mutex_lock(&fblk_bind_mutex);
	mutex_lock(&dev->lock);
	file = dev->backing;
	dev->backing = NULL;
	mutex_unlock(&dev->lock);
	mutex_unlock(&fblk_bind_mutex);

	if (!in_release)
		memflags = fblk_freeze_queue(q);	/* drains in-flight I/O */
	fblk_close_queue_files(dev);
	/* Drop what the page cache holds of this device's old contents. */
	invalidate_disk(dev->disk);
	set_disk_ro(dev->disk, false);
	if (!in_release)
		fblk_unfreeze_queue(q, memflags);

	/* Capacity is 0 now: the scan only drops the partitions. */
	fblk_rescan_partitions(dev, in_release, true);
	fput(file);

	mutex_lock(&dev->lock);
	dev->flags = 0;
	dev->offset = 0;
	dev->sizelimit = 0;
	dev->state = FBLK_STATE_UNBOUND;
	mutex_unlock(&dev->lock);
	kobject_uevent(&disk_to_dev(dev->disk)->kobj, KOBJ_CHANGE);
}

/*
 * The openers are counted under open_mutex, and fblk_open() turns new ones
 * away once the device is in rundown: an open racing the detach either
 * counts here (the detach waits for the last close) or fails with ENXIO,
 * so none can hold a partition the unbind is about to drop.
 */
static int fblk_detach(struct fblk_device *dev)
{
	mutex_lock(&dev->disk->open_mutex);
	mutex_lock(&dev->lock);
	if (dev->state != FBLK_STATE_BOUND) {
		mutex_unlock(&dev->lock);
		mutex_unlock(&dev->disk->open_mutex);
		return -ENXIO;
	}
	/* Others still have it open (we are one opener): detach at last close. */
	if (disk_openers(dev->disk) > 1) {
		dev->flags |= FBLK_FL_AUTOCLEAR;
		mutex_unlock(&dev->lock);
		mutex_unlock(&dev->disk->open_mutex);
		return 0;
	}
	dev->state = FBLK_STATE_RUNDOWN;
	mutex_unlock(&dev->lock);
	mutex_unlock(&dev->disk->open_mutex);

	/*
	 * Our opener's buffered writes may still sit dirty in the device's
	 * page cache, where invalidation would leave them to be written back
	 * into whatever file is attached next.  Write them to this one (a
	 * last close does the same before it detaches).
	 */
	sync_blockdev(dev->disk->part0);
	fblk_unbind(dev, false);
	return 0;
}

static void fblk_fill_backing_path(struct file *file, struct fblk_info *info)
{
	char *buf = __getname();
	char *path;

	if (!buf)
		return;
	path = file_path(file, buf, PATH_MAX);
	if (!IS_ERR(path))
		strscpy(info->backing_file, path, sizeof(info->backing_file));
	__putname(buf);
}

static int fblk_get_info(struct fblk_device *dev, struct fblk_info __user *arg)
{
	struct fblk_info info = { };
	struct file *file;
	struct kstat stat;
	int err;

	mutex_lock(&dev->lock);
	if (dev->state != FBLK_STATE_BOUND) {
		mutex_unlock(&dev->lock);
		return -ENXIO;
	}
	info.number = dev->number;
	info.state = dev->state;
	info.flags = dev->flags;
	info.io_mode = dev->io_mode;
	fblk_get_params(dev, &info.params);
	info.offset = dev->offset;
	info.sizelimit = dev->sizelimit;
	info.size = get_capacity(dev->disk) << SECTOR_SHIFT;
	info.block_size = dev->block_size;
	info.nr_hw_queues = dev->tag_set.nr_hw_queues;
	info.queue_depth = dev->tag_set.queue_depth;
	/* The file outlives the unlock: our reference is dropped only here. */
	file = get_file(dev->backing);
	mutex_unlock(&dev->lock);

	fblk_fill_backing_path(file, &info);
	err = vfs_getattr(&file->f_path, &stat, STATX_INO,
			  AT_STATX_SYNC_AS_STAT);
	fput(file);
	if (err)
		return err;
	info.backing_dev = new_encode_dev(stat.dev);
	info.backing_inode = stat.ino;
	info.backing_rdev = S_ISBLK(stat.mode) ? new_encode_dev(stat.rdev) : 0;

	if (copy_to_user(arg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static int fblk_set_capacity(struct fblk_device *dev)
{
	loff_t size;

	mutex_lock(&dev->lock);
	if (dev->state != FBLK_STATE_BOUND) {
		mutex_unlock(&dev->lock);
		return -ENXIO;
	}
	size = fblk_device_size(dev->backing, dev->offset, dev->sizelimit,
				dev->block_size);
	if (size < 0)
		size = 0;	/* the file shrank below our offset */
	set_capacity_and_notify(dev->disk, size >> SECTOR_SHIFT);
	mutex_unlock(&dev->lock);
	return 0;
}

static int fblk_ioctl_set_params(struct fblk_device *dev,
				 const struct fblk_params __user *arg)
{
	struct fblk_params p;

	if (copy_from_user(&p, arg, sizeof(p)))
		return -EFAULT;
	return fblk_set_params(dev, &p);
}

static int fblk_ioctl(struct block_device *bdev, fblk_mode_t mode,
		      unsigned int cmd, unsigned long arg)
{
	struct fblk_device *dev = bdev->bd_disk->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case FBLK_CONFIGURE:
		return fblk_configure(dev, mode, argp);
	case FBLK_DETACH:
		return fblk_detach(dev);
	case FBLK_GET_INFO:
		return fblk_get_info(dev, argp);
	case FBLK_SET_CAPACITY:
	case FBLK_SET_PARAMS:
		/* As loop's LOOP_SET_STATUS and LOOP_SET_CAPACITY. */
		if (!(mode & FBLK_MODE_WRITE) && !capable(CAP_SYS_ADMIN))
			return -EPERM;
		if (cmd == FBLK_SET_CAPACITY)
			return fblk_set_capacity(dev);
		return fblk_ioctl_set_params(dev, argp);
	}
	return -ENOTTY;
}

static int fblk_open(struct gendisk *disk, fblk_mode_t mode)
{
	struct fblk_device *dev = disk->private_data;
	int err;

	err = mutex_lock_killable(&dev->lock);
	if (err)
		return err;
	if (dev->state == FBLK_STATE_DELETING ||
	    dev->state == FBLK_STATE_RUNDOWN)
		err = -ENXIO;
	/* Not every kernel line refuses writers of a read-only disk itself. */
	else if ((mode & FBLK_MODE_WRITE) && (dev->flags & FBLK_FL_READ_ONLY))
		err = -EROFS;
	mutex_unlock(&dev->lock);
	return err;
}

static void fblk_release(struct gendisk *disk)
{
	struct fblk_device *dev = disk->private_data;
	bool stale;

	if (disk_openers(disk) > 0)
		return;

	mutex_lock(&dev->lock);
	if (dev->state == FBLK_STATE_BOUND &&
	    (dev->flags & FBLK_FL_AUTOCLEAR)) {
		dev->state = FBLK_STATE_RUNDOWN;
		mutex_unlock(&dev->lock);
		fblk_unbind(dev, true);
		return;
	}
	stale = dev->state == FBLK_STATE_UNBOUND && dev->partitions_stale;
	mutex_unlock(&dev->lock);
	/*
	 * A partition opened while a detach dropped the partitions kept them;
	 * with the last opener gone none is open: drop them now.
	 */
	if (stale)
		fblk_rescan_partitions(dev, true, true);
}

FBLK_DEFINE_BDOPS_OPEN(fblk_open)
FBLK_DEFINE_BDOPS_RELEASE(fblk_release)

/* What __fblk_dev_add allocates beside the disk; NULLs are skipped. */
static void fblk_free_resources(struct fblk_device *dev)
{
	unsigned int i;

	for (i = 0; dev->queues && i < dev->tag_set.nr_hw_queues; i++) {
		cancel_work_sync(&dev->queues[i].issue_work);
		cancel_work_sync(&dev->queues[i].retry_work);
		cancel_work_sync(&dev->queues[i].reissue_work);
		cancel_work_sync(&dev->queues[i].ra_work);
	}
	kfree(dev->queues);
	free_percpu(dev->stats);
}

/* Called at the disk's last reference, after del_gendisk and put_disk. */
static void fblk_free_disk(struct gendisk *disk)
{
	struct fblk_device *dev = disk->private_data;

	fblk_free_resources(dev);
	mutex_destroy(&dev->lock);
	kfree(dev);
}

static const struct block_device_operations fblk_fops = {
	.owner		= THIS_MODULE,
	.open		= fblk_open_bdops,
	.release	= fblk_release_bdops,
	.ioctl		= fblk_ioctl,
	.compat_ioctl	= blkdev_compat_ptr_ioctl,
	.free_disk	= fblk_free_disk,
};

static int fblk_alloc_id(struct fblk_device *dev, int id)
{
	int err;

	if (id < 0)
		return idr_alloc(&fblk_index_idr, dev, 0, FBLK_MAX_DEVICES,
				 GFP_KERNEL);
	err = idr_alloc(&fblk_index_idr, dev, id, id + 1, GFP_KERNEL);
	return err == -ENOSPC ? -EEXIST : err;
}

/* Queues (sized by the tag set blk-mq settled on), pool and counters. */
static int fblk_alloc_resources(struct fblk_device *dev)
{
	unsigned int i, nr = dev->tag_set.nr_hw_queues;

	dev->queues = kcalloc(nr, sizeof(*dev->queues), GFP_KERNEL);
	dev->stats = alloc_percpu(struct fblk_pcpu_stats);
	dev->pool_size = fblk_default_pool_size;
	dev->inline_depth = FBLK_DEFAULT_INLINE_DEPTH;
	fblk_pool_init(dev);
	if (dev->queues)
		for (i = 0; i < nr; i++)
			fblk_queue_init(&dev->queues[i], dev);
	if (!dev->queues || !dev->stats)
		return -ENOMEM;
	return 0;
}

static struct gendisk *fblk_make_disk(struct fblk_device *dev)
{
	struct gendisk *disk = fblk_alloc_disk(&dev->tag_set, dev);

	if (IS_ERR(disk))
		return disk;
	disk->major = fblk_major;
	disk->first_minor = dev->number << FBLK_PART_SHIFT;
	disk->minors = 1 << FBLK_PART_SHIFT;
	disk->fops = &fblk_fops;
	disk->private_data = dev;
	disk->flags |= GENHD_FL_NO_PART;
	set_bit(GD_SUPPRESS_PART_SCAN, &disk->state);
	snprintf(disk->disk_name, DISK_NAME_LEN, FBLK_DISK_PREFIX "%d",
		 dev->number);
	set_capacity(disk, 0);
	return disk;
}

/*
 * All that fblk hands add_disk is valid by construction, but add_disk
 * allocates the device's name without checking (dev_set_name() in
 * __add_disk(), 6.1 to 7.3) and device_add() then fails the nameless
 * device with EINVAL: that is an allocation failure, and FBLK_CTL_ADD's
 * caller is told so.
 */
static int fblk_add_disk(struct fblk_device *dev)
{
	int err = device_add_disk(NULL, dev->disk, fblk_disk_groups);

	return err == -EINVAL ? -ENOMEM : err;
}

/* Caller holds fblk_ctl_mutex. */
static int __fblk_dev_add(int id, unsigned int nr_hw_queues,
			  unsigned int queue_depth)
{
	struct fblk_device *dev;
	int err;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	mutex_init(&dev->lock);
	dev->state = FBLK_STATE_UNBOUND;
	dev->block_size = SECTOR_SIZE;

	err = fblk_alloc_id(dev, id);
	if (err < 0)
		goto out_free_dev;
	dev->number = err;

	err = fblk_init_tag_set(dev, nr_hw_queues, queue_depth);
	if (err)
		goto out_remove_id;
	err = fblk_alloc_resources(dev);
	if (err)
		goto out_free_tags;
	dev->disk = fblk_make_disk(dev);
	if (IS_ERR(dev->disk)) {
		err = PTR_ERR(dev->disk);
		goto out_free_tags;
	}
	err = fblk_add_disk(dev);
	if (err)
		goto out_put_disk;
	return dev->number;

out_put_disk:
	put_disk(dev->disk);
out_free_tags:
	blk_mq_free_tag_set(&dev->tag_set);
	fblk_free_resources(dev);
out_remove_id:
	idr_remove(&fblk_index_idr, dev->number);
out_free_dev:
	kfree(dev);
	return err;
}

int fblk_dev_add(int id, unsigned int nr_hw_queues, unsigned int queue_depth)
{
	int ret;

	if (id < -1 || id >= FBLK_MAX_DEVICES)
		return -EINVAL;
	if (nr_hw_queues > FBLK_MAX_HW_QUEUES ||
	    queue_depth > FBLK_MAX_QUEUE_DEPTH)
		return -EINVAL;
	mutex_lock(&fblk_ctl_mutex);
	ret = __fblk_dev_add(id, nr_hw_queues ?: fblk_default_hw_queues,
			     queue_depth ?: fblk_default_queue_depth);
	mutex_unlock(&fblk_ctl_mutex);
	return ret;
}

/* Caller holds fblk_ctl_mutex; the device is unbound and nobody opens it. */
static void fblk_dev_delete(struct fblk_device *dev)
{
	idr_remove(&fblk_index_idr, dev->number);
	del_gendisk(dev->disk);
	blk_mq_free_tag_set(&dev->tag_set);
	put_disk(dev->disk);	/* frees dev through ->free_disk */
}

int fblk_dev_remove(int id)
{
	struct fblk_device *dev;
	int err = 0;

	if (id < 0)
		return -EINVAL;
	mutex_lock(&fblk_ctl_mutex);
	dev = idr_find(&fblk_index_idr, id);
	if (!dev) {
		err = -ENODEV;
		goto out;
	}
	mutex_lock(&dev->lock);
	if (dev->state != FBLK_STATE_UNBOUND || disk_openers(dev->disk) > 0)
		err = -EBUSY;
	else
		dev->state = FBLK_STATE_DELETING;
	mutex_unlock(&dev->lock);
	if (!err)
		fblk_dev_delete(dev);
out:
	mutex_unlock(&fblk_ctl_mutex);
	return err;
}

int fblk_dev_get_free(void)
{
	struct fblk_device *dev;
	int id, ret = -1;

	mutex_lock(&fblk_ctl_mutex);
	idr_for_each_entry(&fblk_index_idr, dev, id) {
		if (READ_ONCE(dev->state) == FBLK_STATE_UNBOUND) {
			ret = id;
			break;
		}
	}
	if (ret < 0)
		ret = __fblk_dev_add(-1, fblk_default_hw_queues,
				     fblk_default_queue_depth);
	mutex_unlock(&fblk_ctl_mutex);
	return ret;
}

/* Module unload: nothing is open (the module would be busy), detach all. */
void fblk_dev_remove_all(void)
{
	struct fblk_device *dev;
	int id;

	mutex_lock(&fblk_ctl_mutex);
	idr_for_each_entry(&fblk_index_idr, dev, id) {
		mutex_lock(&dev->lock);
		if (dev->state == FBLK_STATE_BOUND) {
			dev->state = FBLK_STATE_RUNDOWN;
			mutex_unlock(&dev->lock);
			fblk_unbind(dev, false);
			mutex_lock(&dev->lock);
		}
		dev->state = FBLK_STATE_DELETING;
		mutex_unlock(&dev->lock);
		fblk_dev_delete(dev);
	}
	mutex_unlock(&fblk_ctl_mutex);
}

int fblk_dev_init(void)
{
	fblk_major = register_blkdev(0, FBLK_DISK_PREFIX);
	return fblk_major < 0 ? fblk_major : 0;
}

void fblk_dev_exit(void)
{
	unregister_blkdev(fblk_major, FBLK_DISK_PREFIX);
	idr_destroy(&fblk_index_idr);
}
