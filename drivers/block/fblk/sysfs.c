// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/block/fblkN/fblk/: a device's configuration, readable without the
 * tool.  Present for every device; backing fields are empty while unbound.
 */
#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/kdev_t.h>
#include <linux/part_stat.h>
#include <linux/stringify.h>
#include <linux/sysfs.h>

#include "fblk.h"

static struct fblk_device *fblk_of_device(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

/* An attribute's show: @fmt applied to @expr under the device lock. */
#define FBLK_SHOW(_name, _fmt, _expr)					\
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
}

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

FBLK_SHOW(state, "%s", fblk_state_name(dev->state))
static DEVICE_ATTR_RO(state);
FBLK_SHOW(offset, "%lld", dev->offset)
static DEVICE_ATTR_RO(offset);
FBLK_SHOW(sizelimit, "%lld", dev->sizelimit)
static DEVICE_ATTR_RO(sizelimit);
FBLK_SHOW(block_size, "%u", dev->block_size)
static DEVICE_ATTR_RO(block_size);
FBLK_SHOW(autoclear, "%d", fblk_flag(dev, FBLK_FL_AUTOCLEAR))
static DEVICE_ATTR_RO(autoclear);
FBLK_SHOW(partscan, "%d", fblk_flag(dev, FBLK_FL_PARTSCAN))
static DEVICE_ATTR_RO(partscan);
FBLK_SHOW(read_only, "%d", fblk_flag(dev, FBLK_FL_READ_ONLY))
static DEVICE_ATTR_RO(read_only);
FBLK_SHOW(direct_io, "%d", fblk_flag(dev, FBLK_FL_DIRECT_IO))
static DEVICE_ATTR_RO(direct_io);
FBLK_SHOW(io_mode_requested, "%s", fblk_io_mode_name(dev->io_mode_asked))
static DEVICE_ATTR_RO(io_mode_requested);
FBLK_SHOW(stack_level, "%u", dev->stack_level)
static DEVICE_ATTR_RO(stack_level);
FBLK_SHOW(nr_hw_queues, "%u", dev->tag_set.nr_hw_queues)
static DEVICE_ATTR_RO(nr_hw_queues);
FBLK_SHOW(queue_depth, "%u", dev->tag_set.queue_depth)
static DEVICE_ATTR_RO(queue_depth);
/* i_ino widened from unsigned long to u64 in 7.x: print it as the wider. */
FBLK_SHOW(backing_inode, "%llu",
	  dev->backing ? (unsigned long long)file_inode(dev->backing)->i_ino : 0)
static DEVICE_ATTR_RO(backing_inode);

/*
 * What the backing file was found able to do at attach, which decides what
 * auto picks and what goes to the pool rather than the issuer: the reason a
 * device behaves differently over another filesystem, without a debugger.
 */
#define FBLK_CAP(_field) { #_field, offsetof(struct fblk_caps, _field) }
static const struct {
	const char *name;
	size_t offset;
} fblk_cap_fields[] = {
	FBLK_CAP(direct), FBLK_CAP(nowait), FBLK_CAP(nowait_direct),
	FBLK_CAP(buf_rasync), FBLK_CAP(buf_wasync), FBLK_CAP(dontcache),
	FBLK_CAP(punch),
};

static ssize_t backing_caps_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	struct fblk_device *dev = fblk_of_device(d);
	struct fblk_caps caps = {};
	int len = 0, i;

	mutex_lock(&dev->lock);
	if (dev->state == FBLK_STATE_BOUND)
		caps = dev->caps;
	mutex_unlock(&dev->lock);
	for (i = 0; i < ARRAY_SIZE(fblk_cap_fields); i++) {
		const bool *have = (void *)&caps + fblk_cap_fields[i].offset;

		if (*have)
			len += sysfs_emit_at(buf, len, "%s%s", len ? " " : "",
					     fblk_cap_fields[i].name);
	}
	return len + sysfs_emit_at(buf, len, "\n");
}
static DEVICE_ATTR_RO(backing_caps);

/* Writing a run-time setting drains the device, switches, resumes. */
static ssize_t fblk_store_param(struct device *d, struct fblk_params *p,
				size_t count)
{
	int err = fblk_set_params(fblk_of_device(d), p);

	return err ? err : count;
}

FBLK_SHOW(io_mode, "%s", fblk_io_mode_name(dev->io_mode))

static ssize_t io_mode_store(struct device *d, struct device_attribute *attr,
			     const char *buf, size_t count)
{
	struct fblk_params p = { .mask = FBLK_PARAM_IO_MODE };
	int mode = fblk_io_mode_parse(buf);

	if (mode < 0)
		return mode;
	p.io_mode = mode;
	return fblk_store_param(d, &p, count);
}
static DEVICE_ATTR_RW(io_mode);

static const char * const fblk_submit_names[] = {
	[FBLK_SUBMIT_ASYNC]	= "async",
	[FBLK_SUBMIT_THREADS]	= "threads",
};

FBLK_SHOW(submit, "%s", fblk_submit_names[dev->submit])

static ssize_t submit_store(struct device *d, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	struct fblk_params p = { .mask = FBLK_PARAM_SUBMIT };
	int submit = sysfs_match_string(fblk_submit_names, buf);

	if (submit < 0)
		return submit;
	p.submit = submit;
	return fblk_store_param(d, &p, count);
}
static DEVICE_ATTR_RW(submit);

FBLK_SHOW(pool_size, "%u", dev->pool_size)

static ssize_t pool_size_store(struct device *d, struct device_attribute *attr,
			       const char *buf, size_t count)
{
	struct fblk_params p = { .mask = FBLK_PARAM_POOL_SIZE };
	int err = kstrtouint(buf, 0, &p.pool_size);

	if (err)
		return err;
	return fblk_store_param(d, &p, count);
}
static DEVICE_ATTR_RW(pool_size);

/* A numeric run-time setting: @mask names the field of struct fblk_params. */
static ssize_t fblk_store_uint_param(struct device *d, const char *buf,
				     size_t count, u32 mask)
{
	struct fblk_params p = { .mask = mask };
	unsigned int value;
	int err = kstrtouint(buf, 0, &value);

	if (err)
		return err;
	if (mask == FBLK_PARAM_RA_KB)
		p.ra_kb = value;
	else
		p.inline_depth = value;
	return fblk_store_param(d, &p, count);
}

FBLK_SHOW(inline_depth, "%u", dev->inline_depth)

static ssize_t inline_depth_store(struct device *d,
				  struct device_attribute *attr,
				  const char *buf, size_t count)
{
	return fblk_store_uint_param(d, buf, count, FBLK_PARAM_INLINE_DEPTH);
}
static DEVICE_ATTR_RW(inline_depth);

FBLK_SHOW(ra_kb, "%u", dev->ra_kb)

static ssize_t ra_kb_store(struct device *d, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	return fblk_store_uint_param(d, buf, count, FBLK_PARAM_RA_KB);
}
static DEVICE_ATTR_RW(ra_kb);

FBLK_SHOW(ra_policy, "%s", fblk_ra_policy_name(dev->ra_policy))

static ssize_t ra_policy_store(struct device *d, struct device_attribute *attr,
			       const char *buf, size_t count)
{
	struct fblk_params p = { .mask = FBLK_PARAM_RA_POLICY };
	int policy = fblk_ra_policy_parse(buf);

	if (policy < 0)
		return policy;
	p.ra_policy = policy;
	return fblk_store_param(d, &p, count);
}
static DEVICE_ATTR_RW(ra_policy);

static const char * const fblk_stat_names[FBLK_NR_STATS] = {
#define FBLK_STAT(id, name) __stringify(name),
#include "stats.h"
#undef FBLK_STAT
};

static u64 fblk_stat_sum(struct fblk_device *dev, enum fblk_stat stat)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(dev->stats, cpu)->v[stat];
	return sum;
}

/*
 * KiB read through the device since attach, and by the block device under
 * the backing file (for any reader: it may serve others), so that what
 * readahead costs below shows beside what was asked.  Nothing while
 * detached; no lower_read_kb without a single block device below.
 * Returns @len plus what it wrote at @buf + @len.
 */
static int fblk_read_kb_show(struct fblk_device *dev, char *buf, int len)
{
	struct block_device *lower;

	mutex_lock(&dev->lock);
	if (!dev->backing)
		goto out;
	len += sysfs_emit_at(buf, len, "read_kb %llu\n",
			    (fblk_bdev_sectors_read(dev->disk->part0) -
			     dev->read_base) >> 1);
	lower = fblk_file_bdev(dev->backing);
	if (lower)
		len += sysfs_emit_at(buf, len, "lower_read_kb %llu\n",
				     (fblk_bdev_sectors_read(lower) -
				      dev->lower_read_base) >> 1);
out:
	mutex_unlock(&dev->lock);
	return len;
}

/* Counters since the last attach, "name value" a line, like /proc/vmstat. */
static ssize_t stats_show(struct device *d, struct device_attribute *attr,
			  char *buf)
{
	struct fblk_device *dev = fblk_of_device(d);
	int i, len = 0;

	for (i = 0; i < FBLK_NR_STATS; i++)
		len += sysfs_emit_at(buf, len, "%s %llu\n", fblk_stat_names[i],
				     fblk_stat_sum(dev, i));
	len += sysfs_emit_at(buf, len, "retries_max %d\n",
			     atomic_read(&dev->retries_max));
	len += sysfs_emit_at(buf, len, "pool_depth %d\n",
			     atomic_read(&dev->pool_depth));
	len += sysfs_emit_at(buf, len, "pool_depth_max %d\n",
			     atomic_read(&dev->pool_depth_max));
	return fblk_read_kb_show(dev, buf, len);
}
static DEVICE_ATTR_RO(stats);

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
	&dev_attr_backing_caps.attr,
	&dev_attr_stack_level.attr,
	&dev_attr_offset.attr,
	&dev_attr_sizelimit.attr,
	&dev_attr_block_size.attr,
	&dev_attr_autoclear.attr,
	&dev_attr_partscan.attr,
	&dev_attr_read_only.attr,
	&dev_attr_direct_io.attr,
	&dev_attr_io_mode.attr,
	&dev_attr_io_mode_requested.attr,
	&dev_attr_submit.attr,
	&dev_attr_pool_size.attr,
	&dev_attr_inline_depth.attr,
	&dev_attr_ra_policy.attr,
	&dev_attr_ra_kb.attr,
	&dev_attr_stats.attr,
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
