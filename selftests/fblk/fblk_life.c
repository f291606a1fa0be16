// SPDX-License-Identifier: GPL-2.0
/*
 * A bound device's life after FBLK_CONFIGURE: FBLK_SET_CAPACITY after the
 * backing file changes size, autoclear on the last close, and FBLK_DETACH
 * deferred while someone else has the device open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fblk_test.h"

#define FILE_SIZE	(8 * MiB)
#define SEED		0x3u

FIXTURE(life) {
	struct fblk_dev dev;
	char file[PATH_MAX];
	int file_fd;
	int other_fd;		/* a second opener of /dev/fblkN */
};

FIXTURE_SETUP(life)
{
	self->other_fd = -1;
	self->file_fd = make_file(scratch_dir("FBLK_SCRATCH", "/tmp"), FILE_SIZE,
				  self->file, sizeof(self->file));
	ASSERT_LE(0, self->file_fd);
	ASSERT_EQ(0, fblk_dev_new(&self->dev));
}

FIXTURE_TEARDOWN(life)
{
	if (self->other_fd >= 0)
		close(self->other_fd);
	fblk_dev_put(&self->dev);
	close(self->file_fd);
	unlink(self->file);
}

/* The device's size seen through BLKGETSIZE64, sysfs "size" and FBLK_GET_INFO. */
static void expect_size(struct __test_metadata *_metadata, FIXTURE_DATA(life) *self,
			uint64_t want)
{
	struct fblk_info info;
	uint64_t bytes, sectors;

	ASSERT_EQ(0, fblk_dev_size(self->dev.fd, &bytes));
	EXPECT_EQ(want, bytes);
	ASSERT_EQ(0, fblk_sysfs_u64(self->dev.nr, "size", &sectors));
	EXPECT_EQ(want / 512, sectors);
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ(want, info.size);
}

TEST_F(life, set_capacity_after_grow)
{
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	expect_size(_metadata, self, FILE_SIZE);
	ASSERT_EQ(0, ftruncate(self->file_fd, 2 * FILE_SIZE));
	/* nothing changes until asked */
	expect_size(_metadata, self, FILE_SIZE);
	ASSERT_EQ(0, fblk_set_capacity(self->dev.fd));
	expect_size(_metadata, self, 2 * FILE_SIZE);

	/* the new space is usable */
	ASSERT_EQ(0, pattern_write(self->dev.fd, FILE_SIZE, FILE_SIZE, 0, SEED));
	ASSERT_EQ(0, flush_bdev(self->dev.fd));
	EXPECT_EQ(0, pattern_check(self->file_fd, FILE_SIZE, FILE_SIZE, 0, SEED));
}

TEST_F(life, set_capacity_after_shrink)
{
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	ASSERT_EQ(0, ftruncate(self->file_fd, FILE_SIZE / 4));
	ASSERT_EQ(0, fblk_set_capacity(self->dev.fd));
	expect_size(_metadata, self, FILE_SIZE / 4);
}

TEST_F(life, set_capacity_keeps_sizelimit)
{
	struct fblk_config cfg;

	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.offset = 1 * MiB;
	cfg.sizelimit = 4 * MiB;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	expect_size(_metadata, self, 4 * MiB);
	ASSERT_EQ(0, ftruncate(self->file_fd, 4 * FILE_SIZE));
	ASSERT_EQ(0, fblk_set_capacity(self->dev.fd));
	expect_size(_metadata, self, 4 * MiB);
	/* below the limit, the file decides: 1 MiB offset + 2 MiB left */
	ASSERT_EQ(0, ftruncate(self->file_fd, 3 * MiB));
	ASSERT_EQ(0, fblk_set_capacity(self->dev.fd));
	expect_size(_metadata, self, 2 * MiB);
}

TEST_F(life, autoclear_on_last_close)
{
	char buf[8];

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, FBLK_FL_AUTOCLEAR));
	ASSERT_EQ(0, fblk_sysfs_read(self->dev.nr, "fblk/autoclear", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	self->other_fd = open(self->dev.path, O_RDONLY);
	ASSERT_LE(0, self->other_fd);

	close(self->dev.fd);
	self->dev.fd = -1;
	/* one opener left: still bound */
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "bound", 0));
	close(self->other_fd);
	self->other_fd = -1;
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "unbound", 5000));
	EXPECT_EQ(0, fblk_sysfs_read(self->dev.nr, "fblk/backing_file", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
}

TEST_F(life, no_autoclear_stays_bound)
{
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	close(self->dev.fd);
	self->dev.fd = -1;
	usleep(200000);
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "bound", 0));
	self->dev.fd = fblk_node_open(self->dev.nr, O_RDWR);
	ASSERT_LE(0, self->dev.fd);
}

TEST_F(life, detach_deferred_while_open)
{
	struct fblk_info info;
	char buf[8];

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	self->other_fd = open(self->dev.path, O_RDWR);
	ASSERT_LE(0, self->other_fd);

	ASSERT_EQ(0, fblk_detach(self->dev.fd));
	/* deferred: still bound, now with autoclear, and still doing I/O */
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "bound", 0));
	ASSERT_EQ(0, fblk_sysfs_read(self->dev.nr, "fblk/autoclear", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ((uint32_t)FBLK_FL_AUTOCLEAR, info.flags & FBLK_FL_AUTOCLEAR);
	EXPECT_EQ(0, pattern_write(self->other_fd, 0, 1 * MiB, 0, SEED));
	EXPECT_EQ(0, flush_bdev(self->other_fd));
	EXPECT_EQ(0, pattern_check(self->file_fd, 0, 1 * MiB, 0, SEED));

	close(self->other_fd);
	self->other_fd = -1;
	/* the detaching descriptor is itself still open */
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "bound", 0));
	close(self->dev.fd);
	self->dev.fd = -1;
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "unbound", 5000));
}

/*
 * A flush carries no sectors, so an unbound device's zero capacity does
 * not stop one: it must fail cleanly, before and after an attach.
 */
TEST_F(life, flush_unbound_fails_cleanly)
{
	EXPECT_NE(0, fsync(self->dev.fd));
	EXPECT_EQ(EIO, errno);
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	EXPECT_EQ(0, fsync(self->dev.fd));
	/* detached for good once the detaching descriptor is closed too */
	ASSERT_EQ(0, fblk_detach(self->dev.fd));
	close(self->dev.fd);
	self->dev.fd = open(self->dev.path, O_RDWR);
	ASSERT_LE(0, self->dev.fd);
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "unbound", 5000));
	EXPECT_NE(0, fsync(self->dev.fd));
	EXPECT_EQ(EIO, errno);
}

TEST_HARNESS_MAIN
