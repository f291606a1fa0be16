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

/* The block device a file's data lives on: itself, or its filesystem's. */
static struct block_device *fblk_file_bdev(struct file *file)
{
	struct inode *inode = file->f_mapping->host;

	if (S_ISBLK(inode->i_mode))
		return I_BDEV(inode);
	return inode->i_sb->s_bdev;
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

static int fblk_validate_config(const struct fblk_config *cfg)
{
	unsigned int bs = cfg->block_size;
	int i;

	if (cfg->flags & ~FBLK_FL_SETTABLE || cfg->__pad)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(cfg->reserved); i++)
		if (cfg->reserved[i])
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

/* Direct I/O needs the backing's support and its alignment in our blocks. */
static int fblk_check_direct(struct file *file, unsigned int block_size,
			     loff_t offset)
{
	struct block_device *bdev = fblk_file_bdev(file);
	unsigned int align = bdev ? bdev_logical_block_size(bdev) : SECTOR_SIZE;

	if (!fblk_file_can_direct(file))
		return -EOPNOTSUPP;
	if (block_size < align || !IS_ALIGNED(offset, align))
		return -EINVAL;
	return 0;
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

static void fblk_limits_for(struct fblk_device *dev, struct fblk_limits *lim)
{
	struct inode *inode = dev->backing->f_mapping->host;

	lim->logical_block_size = dev->block_size;
	lim->max_write_zeroes_sectors = UINT_MAX >> SECTOR_SHIFT;
	lim->max_discard_sectors = 0;
	lim->discard_granularity = 0;
	if (dev->can_discard) {
		lim->max_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
		lim->discard_granularity = max_t(unsigned int, dev->block_size,
						 inode->i_sb->s_blocksize);
	}
}

static void fblk_rescan_partitions(struct fblk_device *dev, bool locked)
{
	int err;

	if (!locked)
		mutex_lock(&dev->disk->open_mutex);
	err = bdev_disk_changed(dev->disk, false);
	if (!locked)
		mutex_unlock(&dev->disk->open_mutex);
	if (err)
		pr_warn("fblk%d: partition scan failed: %d\n", dev->number, err);
}

/* Caller holds fblk_bind_mutex and dev->lock; the device is unbound. */
static int fblk_bind(struct fblk_device *dev, struct file *file,
		     const struct fblk_config *cfg, fblk_mode_t mode)
{
	unsigned int block_size = cfg->block_size ?: SECTOR_SIZE;
	unsigned int flags = cfg->flags;
	struct fblk_limits lim;
	loff_t size;
	int err;

	if (!(file->f_mode & FMODE_WRITE) || !(mode & FBLK_MODE_WRITE) ||
	    !file->f_op->write_iter)
		flags |= FBLK_FL_READ_ONLY;
	if (flags & FBLK_FL_DIRECT_IO) {
		err = fblk_check_direct(file, block_size, cfg->offset);
		if (err)
			return err;
	}
	size = fblk_device_size(file, cfg->offset, cfg->sizelimit, block_size);
	if (size < 0)
		return size;

	dev->backing = file;
	dev->offset = cfg->offset;
	dev->sizelimit = cfg->sizelimit;
	dev->block_size = block_size;
	dev->flags = flags;
	dev->can_discard = fblk_backing_can_punch(file);
	fblk_limits_for(dev, &lim);
	err = fblk_apply_limits(dev->disk->queue, &lim);
	if (err) {
		dev->backing = NULL;
		return err;
	}

	/*
	 * Page cache allocations of the backing file must not recurse into
	 * I/O or the filesystem: that I/O could be ours, queued behind them.
	 */
	dev->old_gfp_mask = mapping_gfp_mask(file->f_mapping);
	mapping_set_gfp_mask(file->f_mapping,
			     dev->old_gfp_mask & ~(__GFP_IO | __GFP_FS));
	set_disk_ro(dev->disk, flags & FBLK_FL_READ_ONLY);
	if (flags & FBLK_FL_PARTSCAN)
		dev->disk->flags &= ~GENHD_FL_NO_PART;
	dev->state = FBLK_STATE_BOUND;
	set_capacity_and_notify(dev->disk, size >> SECTOR_SHIFT);
	return 0;
}

static int fblk_configure(struct fblk_device *dev, fblk_mode_t mode,
			  const struct fblk_config __user *arg)
{
	struct fblk_config cfg;
	struct file *file;
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

	mutex_lock(&fblk_bind_mutex);
	mutex_lock(&dev->lock);
	if (dev->state != FBLK_STATE_UNBOUND)
		err = -EBUSY;
	else
		err = fblk_check_cycle(dev, file);
	if (!err)
		err = fblk_bind(dev, file, &cfg, mode);
	mutex_unlock(&dev->lock);
	mutex_unlock(&fblk_bind_mutex);
	if (err)
		goto out_putf;

	/* The file reference now belongs to the device. */
	if (cfg.flags & FBLK_FL_PARTSCAN)
		fblk_rescan_partitions(dev, false);
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
	bool partscan;

	if (!in_release)
		memflags = fblk_freeze_queue(q);	/* drains in-flight I/O */

	mutex_lock(&fblk_bind_mutex);
	mutex_lock(&dev->lock);
	file = dev->backing;
	dev->backing = NULL;
	partscan = dev->flags & FBLK_FL_PARTSCAN;
	dev->flags = 0;
	dev->offset = 0;
	dev->sizelimit = 0;
	mutex_unlock(&dev->lock);
	mutex_unlock(&fblk_bind_mutex);

	mapping_set_gfp_mask(file->f_mapping, dev->old_gfp_mask);
	/* Drop what the page cache holds of this device's old contents. */
	invalidate_disk(dev->disk);
	set_disk_ro(dev->disk, false);
	if (!in_release)
		fblk_unfreeze_queue(q, memflags);

	if (partscan) {
		/* Capacity is 0 now: the scan only drops the partitions. */
		fblk_rescan_partitions(dev, in_release);
		dev->disk->flags |= GENHD_FL_NO_PART;
	}
	fput(file);

	mutex_lock(&dev->lock);
	dev->state = FBLK_STATE_UNBOUND;
	mutex_unlock(&dev->lock);
	kobject_uevent(&disk_to_dev(dev->disk)->kobj, KOBJ_CHANGE);
}

static int fblk_detach(struct fblk_device *dev)
{
	mutex_lock(&dev->lock);
	if (dev->state != FBLK_STATE_BOUND) {
		mutex_unlock(&dev->lock);
		return -ENXIO;
	}
	/* Others still have it open (we are one opener): detach at last close. */
	if (disk_openers(dev->disk) > 1) {
		dev->flags |= FBLK_FL_AUTOCLEAR;
		mutex_unlock(&dev->lock);
		return 0;
	}
	dev->state = FBLK_STATE_RUNDOWN;
	mutex_unlock(&dev->lock);

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
	info.io_mode = dev->flags & FBLK_FL_DIRECT_IO ? FBLK_IO_DIRECT :
							FBLK_IO_BUFFERED;
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
		return fblk_set_capacity(dev);
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
	if (dev->state == FBLK_STATE_DELETING)
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
	mutex_unlock(&dev->lock);
}

FBLK_DEFINE_BDOPS_OPEN(fblk_open)
FBLK_DEFINE_BDOPS_RELEASE(fblk_release)

/* Called at the disk's last reference, after del_gendisk and put_disk. */
static void fblk_free_disk(struct gendisk *disk)
{
	struct fblk_device *dev = disk->private_data;

	destroy_workqueue(dev->wq);
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

static int fblk_workqueue_width(struct fblk_device *dev)
{
	return min_t(int, dev->tag_set.nr_hw_queues * dev->tag_set.queue_depth,
		     WQ_MAX_ACTIVE);
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
	snprintf(disk->disk_name, DISK_NAME_LEN, FBLK_DISK_PREFIX "%d",
		 dev->number);
	set_capacity(disk, 0);
	return disk;
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
	dev->wq = alloc_workqueue(FBLK_DISK_PREFIX "%d",
				  WQ_UNBOUND | WQ_MEM_RECLAIM,
				  fblk_workqueue_width(dev), dev->number);
	if (!dev->wq) {
		err = -ENOMEM;
		goto out_free_tags;
	}
	dev->disk = fblk_make_disk(dev);
	if (IS_ERR(dev->disk)) {
		err = PTR_ERR(dev->disk);
		goto out_free_wq;
	}
	err = device_add_disk(NULL, dev->disk, fblk_disk_groups);
	if (err)
		goto out_put_disk;
	return dev->number;

out_put_disk:
	put_disk(dev->disk);
out_free_wq:
	destroy_workqueue(dev->wq);
out_free_tags:
	blk_mq_free_tag_set(&dev->tag_set);
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
