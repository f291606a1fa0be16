// SPDX-License-Identifier: GPL-2.0
/*
 * Data integrity: what is written through /dev/fblkN lands in the backing
 * file at offset + position and reads back after the caches are dropped;
 * nothing outside [offset, offset + size) is touched; reads past the end of
 * a short backing file return zeroes.  Run in buffered and direct modes,
 * with 512- and 4096-byte blocks, with and without offset and sizelimit,
 * with async and threads submission, and on a block device (/dev/ram2) as
 * the backing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "fblk_test.h"

#define FILE_SIZE	(16 * MiB)
#define SEED_BACKING	0xdeadu		/* what the backing file holds first */
#define SEED_DEVICE	0x1u		/* what the tests write through the device */
#define NR_WRITERS	4

FIXTURE(data) {
	struct fblk_dev dev;
	char file[PATH_MAX];
	int file_fd;
	int direct_fd;		/* /dev/fblkN opened O_DIRECT */
	uint64_t size;		/* the device's size */
};

FIXTURE_VARIANT(data) {
	uint32_t flags;
	uint32_t block_size;
	uint64_t offset;
	uint64_t sizelimit;
	uint32_t submit;	/* enum fblk_submit, through cfg.params */
};

FIXTURE_VARIANT_ADD(data, buffered_512) {
	.flags = 0, .block_size = 512,
};

FIXTURE_VARIANT_ADD(data, buffered_4096) {
	.flags = 0, .block_size = 4096,
};

FIXTURE_VARIANT_ADD(data, direct_512) {
	.flags = FBLK_FL_DIRECT_IO, .block_size = 512,
};

FIXTURE_VARIANT_ADD(data, direct_4096) {
	.flags = FBLK_FL_DIRECT_IO, .block_size = 4096,
};

FIXTURE_VARIANT_ADD(data, buffered_offset_sizelimit) {
	.flags = 0, .block_size = 512, .offset = 1 * MiB + 512, .sizelimit = 8 * MiB,
};

FIXTURE_VARIANT_ADD(data, direct_offset_sizelimit) {
	.flags = FBLK_FL_DIRECT_IO, .block_size = 4096, .offset = 2 * MiB,
	.sizelimit = 8 * MiB,
};

FIXTURE_VARIANT_ADD(data, threads_buffered_4096) {
	.flags = 0, .block_size = 4096, .submit = FBLK_SUBMIT_THREADS,
};

FIXTURE_VARIANT_ADD(data, threads_direct_offset) {
	.flags = FBLK_FL_DIRECT_IO, .block_size = 512, .offset = 512 * KiB,
	.submit = FBLK_SUBMIT_THREADS,
};

FIXTURE_SETUP(data)
{
	struct fblk_config cfg;
	struct fblk_info info;
	uint64_t want;

	self->direct_fd = -1;
	self->file_fd = make_file(scratch_dir("FBLK_SCRATCH", "/tmp"), FILE_SIZE,
				  self->file, sizeof(self->file));
	ASSERT_LE(0, self->file_fd);
	ASSERT_EQ(0, pattern_write(self->file_fd, 0, FILE_SIZE, 0, SEED_BACKING));
	ASSERT_EQ(0, fsync(self->file_fd));
	ASSERT_EQ(0, fblk_dev_new(&self->dev));

	fblk_config_init(&cfg, self->file_fd, variant->flags);
	cfg.block_size = variant->block_size;
	cfg.offset = variant->offset;
	cfg.sizelimit = variant->sizelimit;
	if (variant->submit) {
		cfg.params.mask = FBLK_PARAM_SUBMIT;
		cfg.params.submit = variant->submit;
	}
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	ASSERT_EQ(variant->submit, info.params.submit);
	ASSERT_EQ(variant->flags & FBLK_FL_DIRECT_IO ? FBLK_IO_DIRECT : FBLK_IO_BUFFERED,
		  info.io_mode);

	ASSERT_EQ(0, fblk_dev_size(self->dev.fd, &self->size));
	want = FILE_SIZE - variant->offset;
	if (variant->sizelimit && variant->sizelimit < want)
		want = variant->sizelimit;
	ASSERT_EQ(want, self->size);
	self->direct_fd = open(self->dev.path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, self->direct_fd);
}

FIXTURE_TEARDOWN(data)
{
	if (self->direct_fd >= 0)
		close(self->direct_fd);
	fblk_dev_put(&self->dev);
	if (self->file_fd >= 0) {
		close(self->file_fd);
		unlink(self->file);
	}
}

/* Everything written out, and no cache above or below the device holds it. */
static void drop_all_caches(struct __test_metadata *_metadata, FIXTURE_DATA(data) *self)
{
	ASSERT_EQ(0, flush_bdev(self->dev.fd));
	ASSERT_EQ(0, drop_caches());
}

/* The device holds pattern SEED_DEVICE over [pos, pos + len), as seen three ways. */
static void expect_device_data(struct __test_metadata *_metadata, FIXTURE_DATA(data) *self,
			       const FIXTURE_VARIANT(data) *variant, uint64_t pos, uint64_t len)
{
	drop_all_caches(_metadata, self);
	EXPECT_EQ(0, pattern_check(self->direct_fd, pos, len, pos, SEED_DEVICE))
		TH_LOG("device, O_DIRECT");
	EXPECT_EQ(0, pattern_check(self->dev.fd, pos, len, pos, SEED_DEVICE))
		TH_LOG("device, buffered");
	EXPECT_EQ(0, pattern_check(self->file_fd, variant->offset + pos, len, pos, SEED_DEVICE))
		TH_LOG("backing file at offset %llu", (unsigned long long)variant->offset);
}

TEST_F(data, write_read_back)
{
	ASSERT_EQ(0, pattern_write(self->dev.fd, 0, self->size, 0, SEED_DEVICE));
	ASSERT_EQ(0, fsync(self->dev.fd));
	expect_device_data(_metadata, self, variant, 0, self->size);
}

TEST_F(data, direct_write_read_back)
{
	ASSERT_EQ(0, pattern_write(self->direct_fd, 0, self->size, 0, SEED_DEVICE));
	expect_device_data(_metadata, self, variant, 0, self->size);
}

TEST_F(data, backing_file_to_device)
{
	/* the device shows what the backing file holds at offset onwards */
	EXPECT_EQ(0, pattern_check(self->direct_fd, 0, self->size, variant->offset,
				   SEED_BACKING));
	ASSERT_EQ(0, pattern_write(self->file_fd, variant->offset, self->size, 0, SEED_DEVICE));
	ASSERT_EQ(0, fsync(self->file_fd));
	expect_device_data(_metadata, self, variant, 0, self->size);
}

TEST_F(data, stays_within_bounds)
{
	char byte = 0;

	ASSERT_EQ(0, pattern_write(self->direct_fd, 0, self->size, 0, SEED_DEVICE));
	ASSERT_EQ(0, pattern_write(self->dev.fd, 0, self->size, 0, SEED_DEVICE));
	ASSERT_EQ(0, fsync(self->dev.fd));
	drop_all_caches(_metadata, self);
	/* before offset and after offset + size, the backing file is untouched */
	EXPECT_EQ(0, pattern_check(self->file_fd, 0, variant->offset, 0, SEED_BACKING));
	EXPECT_EQ(0, pattern_check(self->file_fd, variant->offset + self->size,
				   FILE_SIZE - variant->offset - self->size,
				   variant->offset + self->size, SEED_BACKING));
	/* and the device ends where it says */
	EXPECT_EQ(-1, pwrite(self->dev.fd, &byte, 1, self->size));
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_EQ(0, pread(self->dev.fd, &byte, 1, self->size));
}

/*
 * Cut the backing file short, 104 bytes into the device's last MiB: the
 * device keeps its size, and reads past the new end of file return zeroes,
 * in the block that straddles the end too.
 */
TEST_F(data, read_past_eof_zeroes)
{
	uint64_t cut = self->size - 1 * MiB;	/* device position of the cut */
	uint8_t *direct, *buffered;

	ASSERT_EQ(0, ftruncate(self->file_fd, variant->offset + cut + 104));
	drop_all_caches(_metadata, self);

	EXPECT_EQ(0, pattern_check(self->direct_fd, 0, cut, variant->offset, SEED_BACKING));
	EXPECT_EQ(0, pattern_check(self->direct_fd, cut + 4096, 1 * MiB - 4096, 0, 0))
		TH_LOG("O_DIRECT read past EOF");
	/* the straddling block, buffered: 104 bytes of data, then zeroes */
	EXPECT_EQ(0, pattern_check(self->dev.fd, cut, 104, variant->offset + cut, SEED_BACKING));
	EXPECT_EQ(0, pattern_check(self->dev.fd, cut + 104, 1 * MiB - 104, 0, 0))
		TH_LOG("buffered read past EOF");
	/* and O_DIRECT reads the same block */
	ASSERT_EQ(0, posix_memalign((void **)&direct, 4096, 4096));
	ASSERT_EQ(0, posix_memalign((void **)&buffered, 4096, 4096));
	ASSERT_EQ(4096, pread(self->direct_fd, direct, 4096, cut));
	ASSERT_EQ(4096, pread(self->dev.fd, buffered, 4096, cut));
	EXPECT_EQ(0, memcmp(direct, buffered, 4096));
	free(direct);
	free(buffered);
}

struct writer {
	int fd;
	uint64_t start, len, unit;
	int err;
};

/* Write one region in units, back to front, so neighbouring requests interleave. */
static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	uint64_t pos;

	for (pos = w->start + w->len; pos > w->start; ) {
		uint64_t n = pos - w->start < w->unit ? pos - w->start : w->unit;

		pos -= n;
		w->err = pattern_write(w->fd, pos, n, pos, SEED_DEVICE);
		if (w->err)
			break;
	}
	return NULL;
}

TEST_F(data, parallel_direct_writers)
{
	static const uint64_t units[NR_WRITERS] = { 4096, 8192, 65536, 131072 };
	struct writer w[NR_WRITERS];
	pthread_t tid[NR_WRITERS];
	uint64_t share = self->size / NR_WRITERS;
	int i;

	for (i = 0; i < NR_WRITERS; i++) {
		w[i] = (struct writer){ .fd = self->direct_fd, .start = i * share,
					.len = share, .unit = units[i] };
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, writer_fn, &w[i]));
	}
	for (i = 0; i < NR_WRITERS; i++) {
		pthread_join(tid[i], NULL);
		EXPECT_EQ(0, w[i].err) TH_LOG("writer %d", i);
	}
	expect_device_data(_metadata, self, variant, 0, NR_WRITERS * share);
}

/* A block device as the backing: /dev/ram2 from brd. */
FIXTURE(bdev) {
	struct fblk_dev dev;
	int backing_fd;
};

FIXTURE_VARIANT(bdev) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(bdev, buffered) {
	.flags = 0,
};

FIXTURE_VARIANT_ADD(bdev, direct) {
	.flags = FBLK_FL_DIRECT_IO,
};

#define RAMDISK "/dev/ram2"

FIXTURE_SETUP(bdev)
{
	fblk_dev_init(&self->dev);
	self->backing_fd = open(RAMDISK, O_RDWR | O_EXCL);
	if (self->backing_fd < 0 && errno == ENOENT)
		SKIP(return, RAMDISK " is absent (brd not loaded)");
	ASSERT_LE(0, self->backing_fd) TH_LOG(RAMDISK ": %s", strerror(errno));
	ASSERT_EQ(0, fblk_dev_new(&self->dev));
}

FIXTURE_TEARDOWN(bdev)
{
	fblk_dev_put(&self->dev);
	if (self->backing_fd >= 0)
		close(self->backing_fd);
}

TEST_F(bdev, round_trip)
{
	uint64_t bsize, size, len = 8 * MiB, off = 1 * MiB;
	struct fblk_config cfg;
	struct fblk_info info;
	struct stat st;
	int dfd;

	ASSERT_EQ(0, fstat(self->backing_fd, &st));
	ASSERT_EQ(0, ioctl(self->backing_fd, BLKGETSIZE64, &bsize));
	fblk_config_init(&cfg, self->backing_fd, variant->flags);
	cfg.offset = off;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ(fblk_encode_dev(st.st_rdev), info.backing_rdev);
	ASSERT_EQ(0, fblk_dev_size(self->dev.fd, &size));
	EXPECT_EQ(bsize - off, size);

	dfd = open(self->dev.path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, pattern_write(self->dev.fd, 0, len, 0, SEED_DEVICE));
	ASSERT_EQ(0, pattern_write(dfd, len, len, len, SEED_DEVICE));
	ASSERT_EQ(0, flush_bdev(self->dev.fd));
	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(0, pattern_check(dfd, 0, 2 * len, 0, SEED_DEVICE));
	EXPECT_EQ(0, pattern_check(self->backing_fd, off, 2 * len, 0, SEED_DEVICE));
	close(dfd);
}

TEST_HARNESS_MAIN
