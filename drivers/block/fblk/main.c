// SPDX-License-Identifier: GPL-2.0
/*
 * fblk: files exported as block devices through asynchronous kiocb I/O.
 *
 * Module parameters seed defaults; each device is configured on its own
 * through /dev/fblk-control (add, remove, get a free one) and its own ioctls.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "fblk.h"

static unsigned int nr_devices = 1;
module_param(nr_devices, uint, 0444);
MODULE_PARM_DESC(nr_devices, "Devices made at load (default 1)");

unsigned int fblk_default_hw_queues;
module_param_named(nr_hw_queues, fblk_default_hw_queues, uint, 0444);
MODULE_PARM_DESC(nr_hw_queues,
		 "Default hardware queues per device (0: one per online CPU, at least 2)");

unsigned int fblk_default_queue_depth = 128;
module_param_named(queue_depth, fblk_default_queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "Default tags per hardware queue (default 128)");

unsigned int fblk_default_pool_size = 64;
module_param_named(pool_size, fblk_default_pool_size, uint, 0444);
MODULE_PARM_DESC(pool_size,
		 "Default workers per device for I/O that must block (default 64)");

static int fblk_ctl_add(struct fblk_ctl_add __user *arg)
{
	struct fblk_ctl_add req;
	int id;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.flags || memchr_inv(req.reserved, 0, sizeof(req.reserved)))
		return -EINVAL;
	id = fblk_dev_add(req.id, req.nr_hw_queues, req.queue_depth);
	if (id < 0)
		return id;
	/* The device exists either way; the number is also the return value. */
	if (put_user(id, &arg->id))
		return -EFAULT;
	return id;
}

static long fblk_ctl_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	switch (cmd) {
	case FBLK_CTL_ADD:
		return fblk_ctl_add((struct fblk_ctl_add __user *)arg);
	case FBLK_CTL_REMOVE:
		if (arg > INT_MAX)
			return -EINVAL;
		return fblk_dev_remove(arg);
	case FBLK_CTL_GET_FREE:
		return fblk_dev_get_free();
	}
	return -ENOTTY;
}

static const struct file_operations fblk_ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= nonseekable_open,
	.unlocked_ioctl	= fblk_ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice fblk_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= FBLK_CONTROL_NAME,
	.fops		= &fblk_ctl_fops,
};

static int __init fblk_check_params(void)
{
	if (!fblk_default_hw_queues)
		fblk_default_hw_queues = clamp_t(unsigned int,
						 num_online_cpus(), 2,
						 FBLK_MAX_HW_QUEUES);
	if (fblk_default_hw_queues > FBLK_MAX_HW_QUEUES) {
		pr_err("nr_hw_queues=%u: at most %d\n",
		       fblk_default_hw_queues, FBLK_MAX_HW_QUEUES);
		return -EINVAL;
	}
	if (!fblk_default_queue_depth ||
	    fblk_default_queue_depth > FBLK_MAX_QUEUE_DEPTH) {
		pr_err("queue_depth=%u: must be 1..%d\n",
		       fblk_default_queue_depth, FBLK_MAX_QUEUE_DEPTH);
		return -EINVAL;
	}
	if (!fblk_default_pool_size ||
	    fblk_default_pool_size > FBLK_MAX_POOL_SIZE) {
		pr_err("pool_size=%u: must be 1..%d\n", fblk_default_pool_size,
		       FBLK_MAX_POOL_SIZE);
		return -EINVAL;
	}
	if (nr_devices > FBLK_MAX_DEVICES) {
		pr_err("nr_devices=%u: at most %d\n", nr_devices,
		       FBLK_MAX_DEVICES);
		return -EINVAL;
	}
	return 0;
}

static int __init fblk_init(void)
{
	unsigned int i;
	int err;

	err = fblk_check_params();
	if (err)
		return err;
	err = fblk_io_init();
	if (err)
		return err;
	err = fblk_dev_init();
	if (err)
		goto out_io_exit;
	err = misc_register(&fblk_misc);
	if (err)
		goto out_dev_exit;
	for (i = 0; i < nr_devices; i++) {
		err = fblk_dev_add(i, 0, 0);
		if (err < 0)
			goto out_remove;
	}
	pr_info("ready: %u devices, %u hw queues x %u deep by default\n",
		nr_devices, fblk_default_hw_queues, fblk_default_queue_depth);
	return 0;

out_remove:
	misc_deregister(&fblk_misc);
	fblk_dev_remove_all();
out_dev_exit:
	fblk_dev_exit();
out_io_exit:
	fblk_io_exit();
	return err;
}

static void __exit fblk_exit(void)
{
	misc_deregister(&fblk_misc);
	fblk_dev_remove_all();
	fblk_dev_exit();
	fblk_io_exit();
}

module_init(fblk_init);
module_exit(fblk_exit);

MODULE_DESCRIPTION("Files as block devices through asynchronous kiocb I/O");
MODULE_LICENSE("GPL");
MODULE_ALIAS("devname:" FBLK_CONTROL_NAME);
