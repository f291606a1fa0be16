// SPDX-License-Identifier: GPL-2.0
/*
 * FBLK_CONFIGURE, FBLK_GET_INFO and FBLK_DETACH: round trips through the
 * ioctls and sysfs, and every refusal FBLK_CONFIGURE documents, one test each.
 * A refused configure must leave the device unbound.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kselftest_harness.h"
#include "fblk_test.h"

#define FILE_SIZE	(16 * MiB)

FIXTURE(cfg) {
	struct fblk_dev dev;		/* the device under test */
	struct fblk_dev other[2];	/* more devices for chains */
	char file[PATH_MAX];		/* its backing file on FBLK_SCRATCH */
	int file_fd;
	char mnt[PATH_MAX];		/* a mount point, if a test mounted something */
	char nested[PATH_MAX];		/* a file inside that mount */
	char tmpfile[PATH_MAX];		/* a file on FBLK_SCRATCH_TMP */
};

FIXTURE_SETUP(cfg)
{
	fblk_dev_init(&self->other[0]);
	fblk_dev_init(&self->other[1]);
	self->mnt[0] = self->nested[0] = self->tmpfile[0] = '\0';
	self->file_fd = make_file(scratch_dir("FBLK_SCRATCH", "/tmp"), FILE_SIZE,
				  self->file, sizeof(self->file));
	ASSERT_LE(0, self->file_fd) TH_LOG("backing file: %s", strerror(-self->file_fd));
	ASSERT_EQ(0, fblk_dev_new(&self->dev)) {
		close(self->file_fd);
		unlink(self->file);
	}
}

FIXTURE_TEARDOWN(cfg)
{
	/*
	 * Devices may be stacked either way round: detach top-down where the
	 * order is known, and let deferred detaches finish as the holders
	 * close; fblk_dev_put() waits for them before removing.
	 */
	if (self->nested[0])
		unlink(self->nested);
	fblk_dev_release(&self->other[1]);
	if (self->mnt[0]) {
		umount(self->mnt);
		rmdir(self->mnt);
	}
	fblk_dev_release(&self->dev);
	fblk_dev_release(&self->other[0]);
	fblk_dev_put(&self->other[1]);
	fblk_dev_put(&self->dev);
	fblk_dev_put(&self->other[0]);
	if (self->tmpfile[0])
		unlink(self->tmpfile);
	close(self->file_fd);
	unlink(self->file);
}

/* FBLK_CONFIGURE must fail with @err and leave the device unbound. */
static void expect_refused(struct __test_metadata *_metadata, int devfd, int nr,
			   const struct fblk_config *cfg, int err)
{
	struct fblk_info info;
	char state[32];

	EXPECT_EQ(-err, fblk_configure(devfd, cfg));
	EXPECT_EQ(-ENXIO, fblk_get_info(devfd, &info));
	ASSERT_EQ(0, fblk_sysfs_read(nr, "fblk/state", state, sizeof(state)));
	EXPECT_STREQ("unbound", state);
}

static void refuse(struct __test_metadata *_metadata, FIXTURE_DATA(cfg) *self,
		   const struct fblk_config *cfg, int err)
{
	expect_refused(_metadata, self->dev.fd, self->dev.nr, cfg, err);
}

/* Expect sysfs attribute fblk/@attr of device @nr to read @want. */
static void expect_sysfs(struct __test_metadata *_metadata, int nr, const char *attr,
			 const char *want)
{
	char path[64], buf[PATH_MAX];

	snprintf(path, sizeof(path), "fblk/%s", attr);
	ASSERT_EQ(0, fblk_sysfs_read(nr, path, buf, sizeof(buf))) TH_LOG("%s", path);
	EXPECT_STREQ(want, buf) TH_LOG("%s", path);
}

TEST_F(cfg, configure_info_round_trip)
{
	struct fblk_config cfg;
	struct fblk_info info;
	char real[PATH_MAX];
	uint64_t size;
	struct stat st;

	ASSERT_EQ(0, fstat(self->file_fd, &st));
	ASSERT_NE(NULL, realpath(self->file, real));
	fblk_config_init(&cfg, self->file_fd, FBLK_FL_PARTSCAN);
	cfg.block_size = 4096;
	cfg.offset = 1 * MiB;
	cfg.sizelimit = 8 * MiB;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));

	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ((uint32_t)self->dev.nr, info.number);
	EXPECT_EQ(FBLK_STATE_BOUND, info.state);
	EXPECT_EQ((uint32_t)FBLK_FL_PARTSCAN, info.flags);
	EXPECT_EQ(FBLK_IO_BUFFERED, info.io_mode);
	EXPECT_EQ(fblk_encode_dev(st.st_dev), info.backing_dev);
	EXPECT_EQ((uint64_t)st.st_ino, info.backing_inode);
	EXPECT_EQ(0ULL, info.backing_rdev);
	EXPECT_EQ(1 * MiB, info.offset);
	EXPECT_EQ(8 * MiB, info.sizelimit);
	EXPECT_EQ(8 * MiB, info.size);
	EXPECT_EQ(4096U, info.block_size);
	EXPECT_LE(1U, info.nr_hw_queues);
	EXPECT_LE(1U, info.queue_depth);
	EXPECT_STREQ(real, (char *)info.backing_file);
	EXPECT_EQ((uint32_t)FBLK_PARAM_ALL, info.params.mask);
	EXPECT_EQ((uint32_t)FBLK_IO_BUFFERED, info.params.io_mode);
	EXPECT_EQ((uint32_t)FBLK_SUBMIT_ASYNC, info.params.submit);
	EXPECT_LE(1U, info.params.pool_size);
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(0ULL, info.params.reserved[i]) TH_LOG("reserved[%d]", i);
	}
	EXPECT_EQ(0U, info.params.reserved32);

	ASSERT_EQ(0, fblk_dev_size(self->dev.fd, &size));
	EXPECT_EQ(8 * MiB, size);
}

TEST_F(cfg, configure_sysfs)
{
	struct fblk_config cfg;
	char want[PATH_MAX + 32];
	uint64_t v;
	struct stat st;

	ASSERT_EQ(0, fstat(self->file_fd, &st));
	fblk_config_init(&cfg, self->file_fd, FBLK_FL_AUTOCLEAR);
	cfg.block_size = 2048;
	cfg.offset = 512 * KiB;
	cfg.sizelimit = 4 * MiB;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));

	expect_sysfs(_metadata, self->dev.nr, "state", "bound");
	ASSERT_NE(NULL, realpath(self->file, want));
	expect_sysfs(_metadata, self->dev.nr, "backing_file", want);
	snprintf(want, sizeof(want), "%u:%u", major(st.st_dev), minor(st.st_dev));
	expect_sysfs(_metadata, self->dev.nr, "backing_dev", want);
	snprintf(want, sizeof(want), "%llu", (unsigned long long)st.st_ino);
	expect_sysfs(_metadata, self->dev.nr, "backing_inode", want);
	expect_sysfs(_metadata, self->dev.nr, "offset", "524288");
	expect_sysfs(_metadata, self->dev.nr, "sizelimit", "4194304");
	expect_sysfs(_metadata, self->dev.nr, "block_size", "2048");
	expect_sysfs(_metadata, self->dev.nr, "autoclear", "1");
	expect_sysfs(_metadata, self->dev.nr, "partscan", "0");
	expect_sysfs(_metadata, self->dev.nr, "read_only", "0");
	expect_sysfs(_metadata, self->dev.nr, "direct_io", "0");
	expect_sysfs(_metadata, self->dev.nr, "io_mode", "buffered");

	/* the block layer's view agrees */
	ASSERT_EQ(0, fblk_sysfs_u64(self->dev.nr, "size", &v));
	EXPECT_EQ(4 * MiB / 512, v);
	ASSERT_EQ(0, fblk_sysfs_u64(self->dev.nr, "queue/logical_block_size", &v));
	EXPECT_EQ(2048ULL, v);
	ASSERT_EQ(0, fblk_sysfs_u64(self->dev.nr, "ro", &v));
	EXPECT_EQ(0ULL, v);
}

TEST_F(cfg, unbound_sysfs)
{
	expect_sysfs(_metadata, self->dev.nr, "state", "unbound");
	expect_sysfs(_metadata, self->dev.nr, "backing_file", "");
	expect_sysfs(_metadata, self->dev.nr, "backing_dev", "");
}

TEST_F(cfg, valid_block_sizes)
{
	static const uint32_t sizes[] = { 0, 512, 1024, 2048, 4096 };
	struct fblk_config cfg;
	struct fblk_info info;
	unsigned int i;
	int ssz;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t want = sizes[i] ? sizes[i] : 512;

		fblk_config_init(&cfg, self->file_fd, 0);
		cfg.block_size = sizes[i];
		ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg)) TH_LOG("block_size %u", sizes[i]);
		ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
		EXPECT_EQ(want, info.block_size);
		ASSERT_EQ(0, ioctl(self->dev.fd, BLKSSZGET, &ssz));
		EXPECT_EQ((int)want, ssz);
		ASSERT_EQ(0, fblk_detach(self->dev.fd));
	}
}

TEST_F(cfg, detach_now_when_only_opener)
{
	struct fblk_info info;
	uint64_t size = 1;

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	ASSERT_EQ(0, fblk_detach(self->dev.fd));
	/* nobody else had it open: detached on return, not deferred */
	expect_sysfs(_metadata, self->dev.nr, "state", "unbound");
	expect_sysfs(_metadata, self->dev.nr, "backing_file", "");
	EXPECT_EQ(-ENXIO, fblk_get_info(self->dev.fd, &info));
	ASSERT_EQ(0, fblk_dev_size(self->dev.fd, &size));
	EXPECT_EQ(0ULL, size);
	/* and it can be configured again */
	EXPECT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
}

TEST_F(cfg, detach_unbound_enxio)
{
	EXPECT_EQ(-ENXIO, fblk_detach(self->dev.fd));
}

TEST_F(cfg, get_info_unbound_enxio)
{
	struct fblk_info info;

	EXPECT_EQ(-ENXIO, fblk_get_info(self->dev.fd, &info));
}

TEST_F(cfg, set_capacity_unbound_enxio)
{
	EXPECT_EQ(-ENXIO, fblk_set_capacity(self->dev.fd));
}

TEST_F(cfg, configure_bound_ebusy)
{
	struct fblk_config cfg;
	struct fblk_info info;
	struct stat st;

	ASSERT_EQ(0, fstat(self->file_fd, &st));
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	fblk_config_init(&cfg, self->file_fd, FBLK_FL_READ_ONLY);
	EXPECT_EQ(-EBUSY, fblk_configure(self->dev.fd, &cfg));
	/* the first binding is untouched */
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ((uint64_t)st.st_ino, info.backing_inode);
	EXPECT_EQ(0U, info.flags);
}

TEST_F(cfg, directory_eisdir)
{
	struct fblk_config cfg;
	int fd = open(scratch_dir("FBLK_SCRATCH", "/tmp"), O_RDONLY | O_DIRECTORY);

	ASSERT_LE(0, fd);
	fblk_config_init(&cfg, fd, 0);
	refuse(_metadata, self, &cfg, EISDIR);
	close(fd);
}

TEST_F(cfg, socket_einval)
{
	struct fblk_config cfg;
	int sv[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	fblk_config_init(&cfg, sv[0], 0);
	refuse(_metadata, self, &cfg, EINVAL);
	close(sv[0]);
	close(sv[1]);
}

TEST_F(cfg, pipe_einval)
{
	struct fblk_config cfg;
	int p[2];

	ASSERT_EQ(0, pipe(p));
	fblk_config_init(&cfg, p[0], 0);
	refuse(_metadata, self, &cfg, EINVAL);
	close(p[0]);
	close(p[1]);
}

TEST_F(cfg, char_device_einval)
{
	struct fblk_config cfg;
	int fd = open("/dev/zero", O_RDWR);

	ASSERT_LE(0, fd);
	fblk_config_init(&cfg, fd, 0);
	refuse(_metadata, self, &cfg, EINVAL);
	close(fd);
}

TEST_F(cfg, bad_fd_ebadf)
{
	struct fblk_config cfg;
	int fd = dup(self->file_fd);

	ASSERT_LE(0, fd);
	close(fd);		/* a descriptor number that is surely closed */
	fblk_config_init(&cfg, fd, 0);
	refuse(_metadata, self, &cfg, EBADF);
	fblk_config_init(&cfg, (uint32_t)-1, 0);
	refuse(_metadata, self, &cfg, EBADF);
}

TEST_F(cfg, write_only_fd_ebadf)
{
	struct fblk_config cfg;
	int fd = open(self->file, O_WRONLY);

	ASSERT_LE(0, fd);
	fblk_config_init(&cfg, fd, 0);
	refuse(_metadata, self, &cfg, EBADF);
	close(fd);
}

TEST_F(cfg, unknown_flags_einval)
{
	struct fblk_config cfg;
	int bit;

	for (bit = 4; bit < 32; bit++) {
		fblk_config_init(&cfg, self->file_fd, 1u << bit);
		refuse(_metadata, self, &cfg, EINVAL);
	}
}

TEST_F(cfg, reserved_nonzero_einval)
{
	struct fblk_config cfg;
	int i;

	for (i = 0; i < 4; i++) {
		fblk_config_init(&cfg, self->file_fd, 0);
		cfg.params.reserved[i] = 1ULL << 63;
		refuse(_metadata, self, &cfg, EINVAL);
	}
	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.params.reserved32 = 1;
	refuse(_metadata, self, &cfg, EINVAL);
	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.params.mask = 1U << 31;	/* a parameter no module knows */
	refuse(_metadata, self, &cfg, EINVAL);
}

TEST_F(cfg, bad_block_size_einval)
{
	static const uint32_t sizes[] = { 1, 256, 511, 513, 768, 3072, 8192, 65536, UINT32_MAX };
	struct fblk_config cfg;
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fblk_config_init(&cfg, self->file_fd, 0);
		cfg.block_size = sizes[i];
		refuse(_metadata, self, &cfg, EINVAL);
	}
}

TEST_F(cfg, misaligned_offset_einval)
{
	struct fblk_config cfg;

	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.offset = 100;
	refuse(_metadata, self, &cfg, EINVAL);
	cfg.offset = 4096 + 511;
	refuse(_metadata, self, &cfg, EINVAL);
}

TEST_F(cfg, misaligned_sizelimit_einval)
{
	struct fblk_config cfg;

	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.sizelimit = 1000;
	refuse(_metadata, self, &cfg, EINVAL);
	cfg.sizelimit = 1 * MiB + 1;
	refuse(_metadata, self, &cfg, EINVAL);
}

TEST_F(cfg, offset_beyond_eof_einval)
{
	struct fblk_config cfg;

	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.offset = FILE_SIZE + 512;
	refuse(_metadata, self, &cfg, EINVAL);
	cfg.offset = 1ULL << 62;
	refuse(_metadata, self, &cfg, EINVAL);
}

/* /dev/fblkN backed by /dev/fblkN */
TEST_F(cfg, cycle_self_eloop)
{
	struct fblk_config cfg;
	int fd = open(self->dev.path, O_RDWR);

	ASSERT_LE(0, fd);
	fblk_config_init(&cfg, fd, 0);
	refuse(_metadata, self, &cfg, ELOOP);
	close(fd);
}

/* B backed by A, then A backed by B */
TEST_F(cfg, cycle_through_other_device_eloop)
{
	struct fblk_dev *b = &self->other[0];
	struct fblk_config cfg;
	int a_node, b_node;

	ASSERT_EQ(0, fblk_dev_new(b));
	a_node = open(self->dev.path, O_RDWR);
	ASSERT_LE(0, a_node);
	ASSERT_EQ(0, fblk_attach(b->fd, a_node, 0)) TH_LOG("B backed by unbound A");
	close(a_node);

	b_node = open(b->path, O_RDWR);
	ASSERT_LE(0, b_node);
	fblk_config_init(&cfg, b_node, 0);
	refuse(_metadata, self, &cfg, ELOOP);
	close(b_node);
}

/* A chain without a cycle is fine: C backed by B backed by A's file. */
TEST_F(cfg, chain_of_devices_allowed)
{
	struct fblk_dev *b = &self->other[0];
	struct fblk_info info;
	struct stat st;
	int a_node;

	ASSERT_EQ(0, fblk_dev_new(b));
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	a_node = open(self->dev.path, O_RDWR);
	ASSERT_LE(0, a_node);
	ASSERT_EQ(0, fstat(a_node, &st));
	ASSERT_EQ(0, fblk_attach(b->fd, a_node, 0));
	close(a_node);
	ASSERT_EQ(0, fblk_get_info(b->fd, &info));
	EXPECT_EQ(fblk_encode_dev(st.st_rdev), info.backing_rdev);
	EXPECT_EQ(FILE_SIZE, info.size);
	/* B holds A open: A's detach is deferred, not refused */
	EXPECT_EQ(0, fblk_detach(b->fd));
}

/* Make an ext4 filesystem on @dev (bound), mount it and create a file in it. */
static void make_fs_with_file(struct __test_metadata *_metadata, FIXTURE_DATA(cfg) *self,
			      struct fblk_dev *dev)
{
	int fd;

	ASSERT_EQ(0, run_cmd("mkfs.ext4 -q -F %s >/dev/null 2>&1", dev->path))
		TH_LOG("mkfs.ext4 %s failed", dev->path);
	ASSERT_EQ(0, make_tmpdir("/tmp", self->mnt, sizeof(self->mnt)));
	ASSERT_EQ(0, mount(dev->path, self->mnt, "ext4", 0, NULL)) {
		TH_LOG("mount %s: %s", dev->path, strerror(errno));
		rmdir(self->mnt);
		self->mnt[0] = '\0';
	}
	fd = make_file(self->mnt, 4 * MiB, self->nested, sizeof(self->nested));
	ASSERT_LE(0, fd) {
		self->nested[0] = '\0';
	}
	close(fd);
}

/*
 * A file on a filesystem on this very device: the device is necessarily bound
 * (it holds the filesystem), so the refusal is EBUSY or ELOOP; either way the
 * device keeps its first backing file.
 */
TEST_F(cfg, cycle_through_own_filesystem_refused)
{
	struct fblk_config cfg;
	struct fblk_info info;
	struct stat st;
	int fd, ret;

	ASSERT_EQ(0, fstat(self->file_fd, &st));
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	make_fs_with_file(_metadata, self, &self->dev);
	fd = open(self->nested, O_RDWR);
	ASSERT_LE(0, fd);
	fblk_config_init(&cfg, fd, 0);
	ret = fblk_configure(self->dev.fd, &cfg);
	EXPECT_TRUE(ret == -ELOOP || ret == -EBUSY) TH_LOG("configure returned %d", ret);
	close(fd);
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ((uint64_t)st.st_ino, info.backing_inode);
}

/* C backed by a file on a filesystem on B: nesting, not a cycle. */
TEST_F(cfg, nested_through_filesystem_allowed)
{
	struct fblk_dev *c = &self->other[1];
	struct fblk_info info;
	struct stat st;
	int fd;

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	make_fs_with_file(_metadata, self, &self->dev);
	ASSERT_EQ(0, fblk_dev_new(c));
	fd = open(self->nested, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(0, fblk_attach(c->fd, fd, 0));
	close(fd);
	ASSERT_EQ(0, fblk_get_info(c->fd, &info));
	EXPECT_EQ((uint64_t)st.st_ino, info.backing_inode);
	EXPECT_EQ(fblk_encode_dev(st.st_dev), info.backing_dev);
	EXPECT_EQ(4 * MiB, info.size);
	EXPECT_EQ(0, fblk_detach(c->fd));
}

/*
 * Direct I/O on tmpfs: refused with EOPNOTSUPP where tmpfs has no O_DIRECT
 * (6.1); where it has (6.6 and later), direct I/O must simply work.
 */
TEST_F(cfg, direct_io_on_tmpfs)
{
	const char *tmp = scratch_dir("FBLK_SCRATCH_TMP", "/tmp");
	struct fblk_config cfg;
	struct fblk_info info;
	int fd;

	fd = make_file(tmp, 4 * MiB, self->tmpfile, sizeof(self->tmpfile));
	ASSERT_LE(0, fd);
	fblk_config_init(&cfg, fd, FBLK_FL_DIRECT_IO);
	if (!fs_supports_odirect(tmp)) {
		refuse(_metadata, self, &cfg, EOPNOTSUPP);
	} else {
		TH_LOG("%s supports O_DIRECT: expecting direct I/O to work", tmp);
		ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
		ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
		EXPECT_EQ(FBLK_IO_DIRECT, info.io_mode);
	}
	close(fd);
}

/*
 * Direct I/O below the backing's alignment: a device with 4096-byte blocks
 * as the backing of a device with 512-byte blocks, or at a 512-byte offset.
 */
TEST_F(cfg, direct_io_misaligned_einval)
{
	struct fblk_dev *b = &self->other[0];
	struct fblk_config cfg;
	struct fblk_info info;
	int b_node;

	ASSERT_EQ(0, fblk_dev_new(b));
	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.block_size = 4096;
	ASSERT_EQ(0, fblk_configure(b->fd, &cfg));
	b_node = open(b->path, O_RDWR);
	ASSERT_LE(0, b_node);

	fblk_config_init(&cfg, b_node, FBLK_FL_DIRECT_IO);
	cfg.block_size = 512;
	refuse(_metadata, self, &cfg, EINVAL);
	cfg.block_size = 4096;
	cfg.offset = 512;
	refuse(_metadata, self, &cfg, EINVAL);
	/* aligned: accepted */
	cfg.offset = 4096;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ(FBLK_IO_DIRECT, info.io_mode);
	EXPECT_EQ((uint32_t)FBLK_FL_DIRECT_IO, info.flags & FBLK_FL_DIRECT_IO);
	expect_sysfs(_metadata, self->dev.nr, "io_mode", "direct");
	expect_sysfs(_metadata, self->dev.nr, "direct_io", "1");
	close(b_node);
	EXPECT_EQ(0, fblk_detach(self->dev.fd));
}

/* The device is read-only: info, sysfs, BLKROGET, and no writable opens. */
static void expect_read_only(struct __test_metadata *_metadata, struct fblk_dev *d)
{
	struct fblk_info info;
	char buf[4096];
	int ro = 0, fd;
	uint64_t v;

	ASSERT_EQ(0, fblk_get_info(d->fd, &info));
	EXPECT_EQ((uint32_t)FBLK_FL_READ_ONLY, info.flags & FBLK_FL_READ_ONLY);
	expect_sysfs(_metadata, d->nr, "read_only", "1");
	ASSERT_EQ(0, fblk_sysfs_u64(d->nr, "ro", &v));
	EXPECT_EQ(1ULL, v);
	fd = open(d->path, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, ioctl(fd, BLKROGET, &ro));
	EXPECT_EQ(1, ro);
	EXPECT_EQ((ssize_t)sizeof(buf), pread(fd, buf, sizeof(buf), 0));
	close(fd);
	fd = open(d->path, O_RDWR);
	EXPECT_EQ(-1, fd);
	EXPECT_TRUE(errno == EACCES || errno == EROFS) TH_LOG("open O_RDWR: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

TEST_F(cfg, read_only_backing_fd)
{
	int fd = open(self->file, O_RDONLY);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fblk_attach(self->dev.fd, fd, 0));
	close(fd);
	expect_read_only(_metadata, &self->dev);
}

TEST_F(cfg, read_only_flag)
{
	char buf[4096] = { 0 };

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, FBLK_FL_READ_ONLY));
	expect_read_only(_metadata, &self->dev);
	/* the fd opened for writing before the bind cannot write now */
	EXPECT_EQ(-1, pwrite(self->dev.fd, buf, sizeof(buf), 0));
	EXPECT_EQ(EPERM, errno);
}

TEST_F(cfg, read_only_device_fd)
{
	int fd = open(self->dev.path, O_RDONLY);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fblk_attach(fd, self->file_fd, 0));
	close(fd);
	expect_read_only(_metadata, &self->dev);
}

TEST_HARNESS_MAIN
