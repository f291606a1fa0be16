// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/block/fblkN/fblk/: a device's configuration, readable without the
 * tool.  Present for every device; backing fields are empty while unbound.
 */
#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/kdev_t.h>
#include <linux/sysfs.h>

#include "fblk.h"

static struct fblk_device *fblk_of_device(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

/* One read-only attribute: @fmt applied to @expr under the device lock. */
#define FBLK_ATTR_RO(_name, _fmt, _expr)				\
static ssize_t _name##_show(struct device *d,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	struct fblk_device *dev = fblk_of_device(d);			\
	ssize_t ret;							\
									\
	mutex_lock(&dev->lock);						\
	ret = sysfs_emit(buf, _fmt "\n", _expr);			\
	mutex_unlock(&dev->lock);					\
	return ret;							\
}									\
static DEVICE_ATTR_RO(_name)

static const char *fblk_state_name(int state)
{
	switch (state) {
	case FBLK_STATE_UNBOUND:
		return "unbound";
	case FBLK_STATE_BOUND:
		return "bound";
	case FBLK_STATE_RUNDOWN:
		return "rundown";
	default:
		return "deleting";
	}
}

static bool fblk_flag(struct fblk_device *dev, unsigned int flag)
{
	return dev->flags & flag;
}

/* Where the data lives: the block device itself or the file's filesystem. */
static dev_t fblk_backing_devt(struct fblk_device *dev)
{
	struct inode *inode;

	if (!dev->backing)
		return 0;
	inode = dev->backing->f_mapping->host;
	return S_ISBLK(inode->i_mode) ? inode->i_rdev : inode->i_sb->s_dev;
}

FBLK_ATTR_RO(state, "%s", fblk_state_name(dev->state));
FBLK_ATTR_RO(offset, "%lld", dev->offset);
FBLK_ATTR_RO(sizelimit, "%lld", dev->sizelimit);
FBLK_ATTR_RO(block_size, "%u", dev->block_size);
FBLK_ATTR_RO(autoclear, "%d", fblk_flag(dev, FBLK_FL_AUTOCLEAR));
FBLK_ATTR_RO(partscan, "%d", fblk_flag(dev, FBLK_FL_PARTSCAN));
FBLK_ATTR_RO(read_only, "%d", fblk_flag(dev, FBLK_FL_READ_ONLY));
FBLK_ATTR_RO(direct_io, "%d", fblk_flag(dev, FBLK_FL_DIRECT_IO));
FBLK_ATTR_RO(io_mode, "%s",
	     fblk_flag(dev, FBLK_FL_DIRECT_IO) ? "direct" : "buffered");
FBLK_ATTR_RO(nr_hw_queues, "%u", dev->tag_set.nr_hw_queues);
FBLK_ATTR_RO(queue_depth, "%u", dev->tag_set.queue_depth);
/* i_ino widened from unsigned long to u64 in 7.x: print it as the wider. */
FBLK_ATTR_RO(backing_inode, "%llu",
	     dev->backing ?
	     (unsigned long long)file_inode(dev->backing)->i_ino : 0);

static ssize_t backing_dev_show(struct device *d,
				struct device_attribute *attr, char *buf)
{
	struct fblk_device *dev = fblk_of_device(d);
	dev_t devt;

	mutex_lock(&dev->lock);
	devt = fblk_backing_devt(dev);
	mutex_unlock(&dev->lock);
	if (!devt)
		return sysfs_emit(buf, "\n");
	return sysfs_emit(buf, "%u:%u\n", MAJOR(devt), MINOR(devt));
}
static DEVICE_ATTR_RO(backing_dev);

static ssize_t backing_file_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	struct fblk_device *dev = fblk_of_device(d);
	ssize_t ret = 0;
	char *path;

	mutex_lock(&dev->lock);
	if (dev->backing) {
		/* file_path() writes at the end of the buffer. */
		path = file_path(dev->backing, buf, PAGE_SIZE - 1);
		if (IS_ERR(path)) {
			ret = PTR_ERR(path);
		} else {
			ret = strlen(path);
			memmove(buf, path, ret);
		}
	}
	mutex_unlock(&dev->lock);
	if (ret >= 0)
		buf[ret++] = '\n';
	return ret;
}
static DEVICE_ATTR_RO(backing_file);

static struct attribute *fblk_attrs[] = {
	&dev_attr_state.attr,
	&dev_attr_backing_file.attr,
	&dev_attr_backing_dev.attr,
	&dev_attr_backing_inode.attr,
	&dev_attr_offset.attr,
	&dev_attr_sizelimit.attr,
	&dev_attr_block_size.attr,
	&dev_attr_autoclear.attr,
	&dev_attr_partscan.attr,
	&dev_attr_read_only.attr,
	&dev_attr_direct_io.attr,
	&dev_attr_io_mode.attr,
	&dev_attr_nr_hw_queues.attr,
	&dev_attr_queue_depth.attr,
	NULL,
};

static const struct attribute_group fblk_attr_group = {
	.name	= "fblk",
	.attrs	= fblk_attrs,
};

const struct attribute_group *fblk_disk_groups[] = {
	&fblk_attr_group,
	NULL,
};
