// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/fblk-control: FBLK_CTL_ADD, FBLK_CTL_REMOVE, FBLK_CTL_GET_FREE and
 * their refusals.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "fblk_test.h"

#define MAX_DEVS 8

FIXTURE(ctl) {
	int ctl;
	int made[MAX_DEVS];	/* numbers to remove in teardown */
	int nr_made;
	char file[256];
	int file_fd;
};

FIXTURE_SETUP(ctl)
{
	self->nr_made = 0;
	self->file_fd = -1;
	self->ctl = fblk_ctl_open();
	ASSERT_LE(0, self->ctl) TH_LOG("open %s: %s", FBLK_CONTROL_PATH, strerror(-self->ctl));
}

FIXTURE_TEARDOWN(ctl)
{
	int i, j;

	for (i = 0; i < self->nr_made; i++) {
		/* a deferred detach may still be finishing */
		for (j = 0; j < 50 && fblk_ctl_remove(self->ctl, self->made[i]) == -EBUSY; j++)
			usleep(100000);
	}
	if (self->file_fd >= 0) {
		close(self->file_fd);
		unlink(self->file);
	}
	close(self->ctl);
}

/* Add a device (id -1 for any) and remember it for teardown. */
static int add_dev(FIXTURE_DATA(ctl) *self, int id, unsigned int queues, unsigned int depth)
{
	struct fblk_ctl_add req = { .id = id, .nr_hw_queues = queues, .queue_depth = depth };
	int nr = fblk_ctl_add(self->ctl, &req);

	if (nr >= 0 && self->nr_made < MAX_DEVS)
		self->made[self->nr_made++] = nr;
	return nr;
}

/* A number no device has, well away from the ones tests make. */
static int unused_number(void)
{
	int nr;

	for (nr = 900; nr < 1000; nr++) {
		char path[64];

		snprintf(path, sizeof(path), "/sys/block/" FBLK_DISK_PREFIX "%d", nr);
		if (access(path, F_OK))
			return nr;
	}
	return -1;
}

TEST_F(ctl, add_any_then_remove)
{
	char state[32];
	int nr, fd;

	nr = add_dev(self, -1, 0, 0);
	ASSERT_LE(0, nr);
	ASSERT_EQ(0, fblk_sysfs_read(nr, "fblk/state", state, sizeof(state)));
	EXPECT_STREQ("unbound", state);
	fd = fblk_node_open(nr, O_RDONLY);
	ASSERT_LE(0, fd) TH_LOG("/dev/fblk%d: %s", nr, strerror(-fd));
	close(fd);

	ASSERT_EQ(0, fblk_ctl_remove(self->ctl, nr));
	self->nr_made--;
	EXPECT_FALSE(fblk_sysfs_exists(nr, "fblk"));
	EXPECT_EQ(-ENODEV, fblk_ctl_remove(self->ctl, nr));
}

TEST_F(ctl, add_specific_id)
{
	int want = unused_number();

	ASSERT_LE(0, want);
	ASSERT_EQ(want, add_dev(self, want, 0, 0));
	EXPECT_TRUE(fblk_sysfs_exists(want, "fblk/state"));
}

TEST_F(ctl, add_existing_id_eexist)
{
	struct fblk_ctl_add req = { 0 };
	int nr = add_dev(self, -1, 0, 0);

	ASSERT_LE(0, nr);
	req.id = nr;
	EXPECT_EQ(-EEXIST, fblk_ctl_add(self->ctl, &req));
}

TEST_F(ctl, add_bad_id_einval)
{
	struct fblk_ctl_add req = { .id = -2 };

	EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req));
	req.id = INT32_MIN;
	EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req));
}

TEST_F(ctl, add_bad_geometry_einval)
{
	struct fblk_ctl_add req = { .id = -1 };

	req.nr_hw_queues = FBLK_MAX_HW_QUEUES + 1;
	EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req));
	req.nr_hw_queues = 0;
	req.queue_depth = FBLK_MAX_QUEUE_DEPTH + 1;
	EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req));
	req.queue_depth = UINT32_MAX;
	EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req));
}

TEST_F(ctl, add_bad_flags_or_reserved_einval)
{
	struct fblk_ctl_add req = { .id = -1, .flags = 1 };
	int i;

	EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req));
	req.flags = 1u << 31;
	EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req));
	req.flags = 0;
	for (i = 0; i < 6; i++) {
		memset(req.reserved, 0, sizeof(req.reserved));
		req.reserved[i] = 1ULL << (i * 8);
		EXPECT_EQ(-EINVAL, fblk_ctl_add(self->ctl, &req)) TH_LOG("reserved[%d]", i);
	}
}

/*
 * blk-mq never makes more hardware queues than possible CPUs: sysfs shows
 * the number in effect.
 */
static uint64_t queues_in_effect(unsigned int asked)
{
	unsigned int cpus = nr_possible_cpus();

	return asked < cpus ? asked : cpus;
}

TEST_F(ctl, add_geometry_in_sysfs)
{
	uint64_t queues, depth, mq_depth, want = queues_in_effect(3);
	int nr = add_dev(self, -1, 3, 64);
	char attr[64];

	ASSERT_LE(0, nr);
	ASSERT_EQ(0, fblk_sysfs_u64(nr, "fblk/nr_hw_queues", &queues));
	ASSERT_EQ(0, fblk_sysfs_u64(nr, "fblk/queue_depth", &depth));
	EXPECT_EQ(want, queues);
	EXPECT_EQ(64ULL, depth);
	/* blk-mq agrees: that many hardware contexts of 64 tags each */
	snprintf(attr, sizeof(attr), "mq/%llu", (unsigned long long)want - 1);
	EXPECT_TRUE(fblk_sysfs_exists(nr, attr)) TH_LOG("%s", attr);
	snprintf(attr, sizeof(attr), "mq/%llu", (unsigned long long)want);
	EXPECT_FALSE(fblk_sysfs_exists(nr, attr)) TH_LOG("%s", attr);
	ASSERT_EQ(0, fblk_sysfs_u64(nr, "mq/0/nr_tags", &mq_depth));
	EXPECT_EQ(64ULL, mq_depth);
}

TEST_F(ctl, add_geometry_limits)
{
	uint64_t queues, depth;
	int nr = add_dev(self, -1, FBLK_MAX_HW_QUEUES, FBLK_MAX_QUEUE_DEPTH);

	ASSERT_LE(0, nr);
	ASSERT_EQ(0, fblk_sysfs_u64(nr, "fblk/nr_hw_queues", &queues));
	ASSERT_EQ(0, fblk_sysfs_u64(nr, "fblk/queue_depth", &depth));
	EXPECT_EQ(queues_in_effect(FBLK_MAX_HW_QUEUES), queues);
	EXPECT_EQ((uint64_t)FBLK_MAX_QUEUE_DEPTH, depth);

	nr = add_dev(self, -1, 1, 1);
	ASSERT_LE(0, nr);
	ASSERT_EQ(0, fblk_sysfs_u64(nr, "fblk/nr_hw_queues", &queues));
	ASSERT_EQ(0, fblk_sysfs_u64(nr, "fblk/queue_depth", &depth));
	EXPECT_EQ(1ULL, queues);
	EXPECT_EQ(1ULL, depth);
}

TEST_F(ctl, remove_absent_enodev)
{
	int nr = unused_number();

	ASSERT_LE(0, nr);
	EXPECT_EQ(-ENODEV, fblk_ctl_remove(self->ctl, nr));
}

TEST_F(ctl, remove_negative_einval)
{
	EXPECT_EQ(-EINVAL, fblk_ctl_remove(self->ctl, -1));
	EXPECT_EQ(-EINVAL, fblk_ctl_remove(self->ctl, -1000));
}

TEST_F(ctl, remove_open_ebusy)
{
	int nr = add_dev(self, -1, 0, 0), fd;

	ASSERT_LE(0, nr);
	fd = fblk_node_open(nr, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EBUSY, fblk_ctl_remove(self->ctl, nr));
	EXPECT_TRUE(fblk_sysfs_exists(nr, "fblk/state"));
	close(fd);
	EXPECT_EQ(0, fblk_ctl_remove(self->ctl, nr));
	if (!_metadata->passed)
		return;
	self->nr_made--;
}

TEST_F(ctl, remove_bound_ebusy)
{
	int nr = add_dev(self, -1, 0, 0), fd;

	ASSERT_LE(0, nr);
	self->file_fd = make_file(scratch_dir("FBLK_SCRATCH", "/tmp"), 4 * MiB,
				  self->file, sizeof(self->file));
	ASSERT_LE(0, self->file_fd);
	fd = fblk_node_open(nr, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fblk_attach(fd, self->file_fd, 0));
	close(fd);
	/* bound, nobody has it open: still refused */
	EXPECT_EQ(-EBUSY, fblk_ctl_remove(self->ctl, nr));

	fd = fblk_node_open(nr, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fblk_detach(fd));
	close(fd);
	EXPECT_EQ(0, fblk_ctl_remove(self->ctl, nr));
	if (!_metadata->passed)
		return;
	self->nr_made--;
}

TEST_F(ctl, get_free_returns_unbound)
{
	char state[32];
	int nr, nr2, fd;

	nr = fblk_ctl_get_free(self->ctl);
	ASSERT_LE(0, nr);
	ASSERT_EQ(0, fblk_sysfs_read(nr, "fblk/state", state, sizeof(state)));
	EXPECT_STREQ("unbound", state);

	/* Bind it: the next call must hand out a different, unbound device. */
	self->file_fd = make_file(scratch_dir("FBLK_SCRATCH", "/tmp"), 4 * MiB,
				  self->file, sizeof(self->file));
	ASSERT_LE(0, self->file_fd);
	fd = fblk_node_open(nr, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fblk_attach(fd, self->file_fd, FBLK_FL_AUTOCLEAR));

	nr2 = fblk_ctl_get_free(self->ctl);
	EXPECT_LE(0, nr2);
	EXPECT_NE(nr, nr2);
	if (nr2 >= 0) {
		ASSERT_EQ(0, fblk_sysfs_read(nr2, "fblk/state", state, sizeof(state)));
		EXPECT_STREQ("unbound", state);
	}
	close(fd);	/* autoclear detaches it */
	EXPECT_TRUE(fblk_wait_state(nr, "unbound", 5000));
	/* get_free may have made nr2: remove it (absent is fine, it was a spare) */
	if (nr2 >= 0 && self->nr_made < MAX_DEVS)
		self->made[self->nr_made++] = nr2;
}

TEST_F(ctl, unknown_ioctl_enotty)
{
	struct fblk_dev d;
	int ret;

	EXPECT_EQ(-1, ioctl(self->ctl, _IO(FBLK_IOCTL_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	/* a device ioctl number on the control node is unknown there */
	EXPECT_EQ(-1, ioctl(self->ctl, FBLK_DETACH));
	EXPECT_EQ(ENOTTY, errno);

	ret = fblk_dev_new(&d);
	ASSERT_EQ(0, ret);
	if (self->nr_made < MAX_DEVS)
		self->made[self->nr_made++] = d.nr;
	EXPECT_EQ(-1, ioctl(d.fd, _IO(FBLK_IOCTL_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	/* a control ioctl on a device node is unknown there */
	EXPECT_EQ(-1, ioctl(d.fd, FBLK_CTL_GET_FREE));
	EXPECT_EQ(ENOTTY, errno);
	close(d.fd);
	close(d.ctl);
}

TEST_HARNESS_MAIN
