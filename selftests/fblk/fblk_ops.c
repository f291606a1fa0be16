// SPDX-License-Identifier: GPL-2.0
/*
 * Request types other than plain reads and writes, in buffered and direct
 * modes: flush (fsync on the device), discard (a hole in the backing file),
 * write-zeroes, writes refused on a read-only device, and a detach while
 * asynchronous I/O is in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "fblk_test.h"

#define FILE_SIZE	(16 * MiB)
#define SEED_BACKING	0xdeadu
#define SEED_DEVICE	0x2u

FIXTURE(ops) {
	struct fblk_dev dev;
	char file[PATH_MAX];
	int file_fd;
	int direct_fd;
};

FIXTURE_VARIANT(ops) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(ops, buffered) {
	.flags = 0,
};

FIXTURE_VARIANT_ADD(ops, direct) {
	.flags = FBLK_FL_DIRECT_IO,
};

FIXTURE_SETUP(ops)
{
	self->direct_fd = -1;
	self->file_fd = make_file(scratch_dir("FBLK_SCRATCH", "/tmp"), FILE_SIZE,
				  self->file, sizeof(self->file));
	ASSERT_LE(0, self->file_fd);
	/* fully allocated, so that a discard has blocks to free */
	ASSERT_EQ(0, pattern_write(self->file_fd, 0, FILE_SIZE, 0, SEED_BACKING));
	ASSERT_EQ(0, fsync(self->file_fd));
	ASSERT_EQ(0, fblk_dev_new(&self->dev));
}

FIXTURE_TEARDOWN(ops)
{
	if (self->direct_fd >= 0)
		close(self->direct_fd);
	fblk_dev_put(&self->dev);
	if (self->file_fd >= 0) {
		close(self->file_fd);
		unlink(self->file);
	}
}

static void attach(struct __test_metadata *_metadata, FIXTURE_DATA(ops) *self,
		   const FIXTURE_VARIANT(ops) *variant, uint32_t flags)
{
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, variant->flags | flags));
	self->direct_fd = open(self->dev.path, O_RDONLY | O_DIRECT);
	ASSERT_LE(0, self->direct_fd);
}

/* Field @idx (0-based) of /sys/block/fblkN/stat. */
static uint64_t disk_stat(struct __test_metadata *_metadata, int nr, int idx)
{
	unsigned long long v[17] = { 0 };
	char buf[512];

	EXPECT_EQ(0, fblk_sysfs_read(nr, "stat", buf, sizeof(buf)));
	EXPECT_EQ(17, sscanf(buf, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
			     "%llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
			     &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11],
			     &v[12], &v[13], &v[14], &v[15], &v[16]));
	return v[idx];
}

#define STAT_FLUSH_IOS		15

TEST_F(ops, flush_on_fsync)
{
	char cache[32];
	uint64_t before;

	attach(_metadata, self, variant, 0);
	/* a volatile write cache is what makes the block layer send flushes */
	ASSERT_EQ(0, fblk_sysfs_read(self->dev.nr, "queue/write_cache", cache, sizeof(cache)));
	EXPECT_STREQ("write back", cache);

	ASSERT_EQ(0, pattern_write(self->dev.fd, 0, 4 * MiB, 0, SEED_DEVICE));
	before = disk_stat(_metadata, self->dev.nr, STAT_FLUSH_IOS);
	ASSERT_EQ(0, fsync(self->dev.fd));
	EXPECT_LT(before, disk_stat(_metadata, self->dev.nr, STAT_FLUSH_IOS));
	/* the data is in the backing file (read through its own cache) */
	EXPECT_EQ(0, pattern_check(self->file_fd, 0, 4 * MiB, 0, SEED_DEVICE));
	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(0, pattern_check(self->file_fd, 0, 4 * MiB, 0, SEED_DEVICE));
}

TEST_F(ops, discard_punches_hole)
{
	uint64_t range[2] = { 1 * MiB, 4 * MiB }, max;
	struct stat before, after;

	attach(_metadata, self, variant, 0);
	ASSERT_EQ(0, fblk_sysfs_u64(self->dev.nr, "queue/discard_max_bytes", &max));
	ASSERT_LT(0ULL, max) TH_LOG("the device does not advertise discard");

	ASSERT_EQ(0, fstat(self->file_fd, &before));
	ASSERT_EQ(0, ioctl(self->dev.fd, BLKDISCARD, range)) TH_LOG("BLKDISCARD: %s",
								       strerror(errno));
	ASSERT_EQ(0, fsync(self->dev.fd));
	ASSERT_EQ(0, fstat(self->file_fd, &after));
	/* 4 MiB freed, give or take an extent block */
	EXPECT_LE((uint64_t)after.st_blocks + range[1] / 512 - 16, (uint64_t)before.st_blocks)
		TH_LOG("st_blocks %llu -> %llu", (unsigned long long)before.st_blocks,
		       (unsigned long long)after.st_blocks);
	EXPECT_EQ((off_t)FILE_SIZE, after.st_size);

	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(0, pattern_check(self->direct_fd, range[0], range[1], 0, 0));
	EXPECT_EQ(0, pattern_check(self->file_fd, range[0], range[1], 0, 0));
	/* the neighbours are intact */
	EXPECT_EQ(0, pattern_check(self->direct_fd, 0, range[0], 0, SEED_BACKING));
	EXPECT_EQ(0, pattern_check(self->direct_fd, range[0] + range[1], 1 * MiB,
				   range[0] + range[1], SEED_BACKING));
}

TEST_F(ops, write_zeroes_reads_back_zeroes)
{
	uint64_t range[2] = { 2 * MiB, 3 * MiB };

	attach(_metadata, self, variant, 0);
	ASSERT_EQ(0, ioctl(self->dev.fd, BLKZEROOUT, range)) TH_LOG("BLKZEROOUT: %s",
								       strerror(errno));
	ASSERT_EQ(0, fsync(self->dev.fd));
	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(0, pattern_check(self->direct_fd, range[0], range[1], 0, 0));
	EXPECT_EQ(0, pattern_check(self->dev.fd, range[0], range[1], 0, 0));
	EXPECT_EQ(0, pattern_check(self->file_fd, range[0], range[1], 0, 0));
	EXPECT_EQ(0, pattern_check(self->direct_fd, 0, range[0], 0, SEED_BACKING));
	EXPECT_EQ(0, pattern_check(self->direct_fd, range[0] + range[1], 1 * MiB,
				   range[0] + range[1], SEED_BACKING));
}

/*
 * Read-only by flag: every way of writing through a descriptor opened before
 * the bind fails, and the backing file is unchanged.
 */
TEST_F(ops, read_only_refuses_writes)
{
	uint64_t range[2] = { 0, 1 * MiB };
	char buf[4096] = { 1 };
	int ret;

	attach(_metadata, self, variant, FBLK_FL_READ_ONLY);
	EXPECT_EQ(-1, pwrite(self->dev.fd, buf, sizeof(buf), 0));
	EXPECT_EQ(EPERM, errno);
	ret = ioctl(self->dev.fd, BLKZEROOUT, range);
	EXPECT_EQ(-1, ret) TH_LOG("BLKZEROOUT on a read-only device succeeded");
	ret = ioctl(self->dev.fd, BLKDISCARD, range);
	EXPECT_EQ(-1, ret) TH_LOG("BLKDISCARD on a read-only device succeeded");
	ret = fallocate(self->dev.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1 * MiB);
	EXPECT_EQ(-1, ret) TH_LOG("fallocate on a read-only device succeeded");
	fsync(self->dev.fd);

	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(0, pattern_check(self->file_fd, 0, 2 * MiB, 0, SEED_BACKING));
	EXPECT_EQ(0, pattern_check(self->direct_fd, 0, 2 * MiB, 0, SEED_BACKING));
}

/* Linux AIO without libaio */
static long io_setup(unsigned int nr, aio_context_t *ctx)
{
	return syscall(__NR_io_setup, nr, ctx);
}

static long io_submit(aio_context_t ctx, long nr, struct iocb **iocbs)
{
	return syscall(__NR_io_submit, ctx, nr, iocbs);
}

static long io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev,
			 struct timespec *timeout)
{
	return syscall(__NR_io_getevents, ctx, min, max, ev, timeout);
}

static long io_destroy(aio_context_t ctx)
{
	return syscall(__NR_io_destroy, ctx);
}

#define AIO_NR		64
#define AIO_LEN		(64 * KiB)

/*
 * The only opener detaches with reads and writes in flight: the detach
 * drains them (each completes, with data or an error) and nothing hangs.
 */
TEST_F(ops, detach_drains_inflight_aio)
{
	struct iocb cbs[AIO_NR], *cbp[AIO_NR];
	struct io_event ev[AIO_NR];
	struct timespec timeout = { .tv_sec = 60 };
	aio_context_t ctx = 0;
	long done = 0, got;
	uint8_t *buf;
	int fd, i;

	/* one descriptor does everything: nobody else has the device open */
	close(self->dev.fd);
	fd = open(self->dev.path, O_RDWR | O_DIRECT);
	self->dev.fd = fd;
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fblk_attach(fd, self->file_fd, variant->flags));
	ASSERT_EQ(0, posix_memalign((void **)&buf, 4096, AIO_NR * AIO_LEN));
	memset(buf, 0x5a, AIO_NR * AIO_LEN);
	ASSERT_EQ(0, io_setup(AIO_NR, &ctx));

	for (i = 0; i < AIO_NR; i++) {
		memset(&cbs[i], 0, sizeof(cbs[i]));
		cbs[i].aio_fildes = fd;
		cbs[i].aio_lio_opcode = i % 2 ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
		cbs[i].aio_buf = (uintptr_t)(buf + i * AIO_LEN);
		cbs[i].aio_nbytes = AIO_LEN;
		cbs[i].aio_offset = (uint64_t)i * AIO_LEN;
		cbp[i] = &cbs[i];
	}
	ASSERT_EQ(AIO_NR, io_submit(ctx, AIO_NR, cbp));
	EXPECT_EQ(0, fblk_detach(fd));

	while (done < AIO_NR) {
		got = io_getevents(ctx, 1, AIO_NR, ev, &timeout);
		ASSERT_LT(0, got) TH_LOG("%ld of %d I/Os never completed", AIO_NR - done, AIO_NR);
		for (i = 0; i < got; i++) {
			long long res = (long long)ev[i].res;

			EXPECT_TRUE(res == AIO_LEN || res == -EIO || res == -ENXIO)
				TH_LOG("I/O completed with %lld", res);
		}
		done += got;
	}
	EXPECT_TRUE(fblk_wait_state(self->dev.nr, "unbound", 5000));
	io_destroy(ctx);
	free(buf);
}

TEST_HARNESS_MAIN
