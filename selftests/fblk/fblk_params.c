// SPDX-License-Identifier: GPL-2.0
/*
 * Run-time settings of a bound device (struct fblk_params): FBLK_SET_PARAMS,
 * the params part of FBLK_CONFIGURE and FBLK_GET_INFO, and the writable
 * sysfs attributes io_mode, submit and pool_size.  Refusals change nothing;
 * switches keep the data intact, also while I/O is running.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fblk_test.h"

#define FILE_SIZE	(16 * MiB)
#define SEED		0x4u

FIXTURE(params) {
	struct fblk_dev dev;
	char file[PATH_MAX];
	int file_fd;
	char tmpfile[PATH_MAX];
};

FIXTURE_SETUP(params)
{
	self->tmpfile[0] = '\0';
	self->file_fd = make_file(scratch_dir("FBLK_SCRATCH", "/tmp"), FILE_SIZE,
				  self->file, sizeof(self->file));
	ASSERT_LE(0, self->file_fd);
	ASSERT_EQ(0, fblk_dev_new(&self->dev));
}

FIXTURE_TEARDOWN(params)
{
	fblk_dev_put(&self->dev);
	close(self->file_fd);
	unlink(self->file);
	if (self->tmpfile[0])
		unlink(self->tmpfile);
}

static void expect_sysfs(struct __test_metadata *_metadata, int nr, const char *attr,
			 const char *want)
{
	char path[64], buf[64];

	snprintf(path, sizeof(path), "fblk/%s", attr);
	ASSERT_EQ(0, fblk_sysfs_read(nr, path, buf, sizeof(buf))) TH_LOG("%s", path);
	EXPECT_STREQ(want, buf) TH_LOG("%s", path);
}

/* What FBLK_GET_INFO says of the io_mode (asked and in effect) and submit. */
static void expect_mode(struct __test_metadata *_metadata, FIXTURE_DATA(params) *self,
			uint32_t asked, uint32_t effective, uint32_t submit)
{
	struct fblk_info info;

	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ((uint32_t)FBLK_PARAM_ALL, info.params.mask);
	EXPECT_EQ(asked, info.params.io_mode);
	EXPECT_EQ(effective, info.io_mode);
	EXPECT_EQ(submit, info.params.submit);
	EXPECT_EQ(effective == FBLK_IO_DIRECT ? (uint32_t)FBLK_FL_DIRECT_IO : 0U,
		  info.flags & FBLK_FL_DIRECT_IO);
}

/* Write a pattern through the device, drop every cache, read it back two ways. */
static void round_trip(struct __test_metadata *_metadata, FIXTURE_DATA(params) *self,
		       uint32_t seed)
{
	ASSERT_EQ(0, pattern_write(self->dev.fd, 0, 4 * MiB, 0, seed));
	ASSERT_EQ(0, flush_bdev(self->dev.fd));
	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(0, pattern_check(self->dev.fd, 0, 4 * MiB, 0, seed));
	EXPECT_EQ(0, pattern_check(self->file_fd, 0, 4 * MiB, 0, seed));
}

static void set_io_mode(struct fblk_params *p, uint32_t mode)
{
	memset(p, 0, sizeof(*p));
	p->mask = FBLK_PARAM_IO_MODE;
	p->io_mode = mode;
}

TEST_F(params, set_params_unbound_enxio)
{
	struct fblk_params p;

	set_io_mode(&p, FBLK_IO_BUFFERED);
	EXPECT_EQ(-ENXIO, fblk_set_params(self->dev.fd, &p));
}

TEST_F(params, defaults_in_info_and_sysfs)
{
	struct fblk_info info;
	uint64_t pool;

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	expect_mode(_metadata, self, FBLK_IO_BUFFERED, FBLK_IO_BUFFERED, FBLK_SUBMIT_ASYNC);
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_LE(1U, info.params.pool_size);
	EXPECT_GE((uint32_t)FBLK_MAX_POOL_SIZE, info.params.pool_size);
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(0ULL, info.params.reserved[i]) TH_LOG("reserved[%d]", i);
	}
	EXPECT_EQ(0U, info.params.reserved32);
	expect_sysfs(_metadata, self->dev.nr, "io_mode", "buffered");
	expect_sysfs(_metadata, self->dev.nr, "io_mode_requested", "buffered");
	expect_sysfs(_metadata, self->dev.nr, "submit", "async");
	ASSERT_EQ(0, fblk_sysfs_u64(self->dev.nr, "fblk/pool_size", &pool));
	EXPECT_EQ((uint64_t)info.params.pool_size, pool);
}

TEST_F(params, refusals_einval_change_nothing)
{
	struct fblk_info before, after;
	struct fblk_params p;
	int i;

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &before));

	memset(&p, 0, sizeof(p));
	p.mask = 1U << 31;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("unknown mask bit");
	for (i = 0; i < 4; i++) {
		set_io_mode(&p, FBLK_IO_DIRECT);
		p.reserved[i] = 1;
		EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("reserved[%d]", i);
	}
	set_io_mode(&p, FBLK_IO_DIRECT);
	p.reserved32 = 1;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("reserved32");
	memset(&p, 0, sizeof(p));
	p.mask = FBLK_PARAM_RA_POLICY;
	p.ra_policy = FBLK_RA_OFF + 1;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("ra_policy");
	memset(&p, 0, sizeof(p));
	p.mask = FBLK_PARAM_RA_KB;
	p.ra_kb = FBLK_MAX_RA_KB + 1;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("ra_kb");
	memset(&p, 0, sizeof(p));
	p.mask = FBLK_PARAM_INLINE_DEPTH;
	p.inline_depth = FBLK_MAX_QUEUE_DEPTH + 1;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("inline_depth");
	set_io_mode(&p, FBLK_IO_AUTO + 1);
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("io_mode");
	memset(&p, 0, sizeof(p));
	p.mask = FBLK_PARAM_SUBMIT;
	p.submit = FBLK_SUBMIT_THREADS + 1;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("submit");
	memset(&p, 0, sizeof(p));
	p.mask = FBLK_PARAM_POOL_SIZE;
	p.pool_size = 0;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("pool_size 0");
	p.pool_size = FBLK_MAX_POOL_SIZE + 1;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("pool_size too big");
	/* a valid io_mode next to an invalid pool size: all or nothing */
	p.mask = FBLK_PARAM_POOL_SIZE | FBLK_PARAM_IO_MODE;
	p.io_mode = FBLK_IO_DIRECT;
	EXPECT_EQ(-EINVAL, fblk_set_params(self->dev.fd, &p)) TH_LOG("mixed");

	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &after));
	EXPECT_EQ(0, memcmp(&before.params, &after.params, sizeof(before.params)));
	EXPECT_EQ(before.io_mode, after.io_mode);
	EXPECT_EQ(before.flags, after.flags);
}

TEST_F(params, switch_to_direct_and_back)
{
	struct fblk_params p;

	ASSERT_EQ(0, pattern_write(self->file_fd, 0, FILE_SIZE, 0, SEED));
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	set_io_mode(&p, FBLK_IO_DIRECT);
	ASSERT_EQ(0, fblk_set_params(self->dev.fd, &p));
	expect_mode(_metadata, self, FBLK_IO_DIRECT, FBLK_IO_DIRECT, FBLK_SUBMIT_ASYNC);
	expect_sysfs(_metadata, self->dev.nr, "io_mode", "direct");
	expect_sysfs(_metadata, self->dev.nr, "direct_io", "1");
	/* what was there before the switch reads back after it */
	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(0, pattern_check(self->dev.fd, 0, FILE_SIZE, 0, SEED));
	round_trip(_metadata, self, SEED + 1);

	set_io_mode(&p, FBLK_IO_BUFFERED);
	ASSERT_EQ(0, fblk_set_params(self->dev.fd, &p));
	expect_mode(_metadata, self, FBLK_IO_BUFFERED, FBLK_IO_BUFFERED, FBLK_SUBMIT_ASYNC);
	expect_sysfs(_metadata, self->dev.nr, "direct_io", "0");
	round_trip(_metadata, self, SEED + 2);
}

/* auto: direct where the backing can, which a file on ext4 can. */
TEST_F(params, auto_resolves_to_direct)
{
	struct fblk_config cfg;

	if (!fs_supports_odirect(scratch_dir("FBLK_SCRATCH", "/tmp")))
		SKIP(return, "the scratch filesystem has no O_DIRECT");
	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.params.mask = FBLK_PARAM_IO_MODE;
	cfg.params.io_mode = FBLK_IO_AUTO;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	expect_mode(_metadata, self, FBLK_IO_AUTO, FBLK_IO_DIRECT, FBLK_SUBMIT_ASYNC);
	expect_sysfs(_metadata, self->dev.nr, "io_mode", "direct");
	expect_sysfs(_metadata, self->dev.nr, "io_mode_requested", "auto");
	round_trip(_metadata, self, SEED);
}

/* auto on tmpfs: direct if tmpfs has O_DIRECT, else dontcache if offered, else buffered */
TEST_F(params, auto_on_tmpfs)
{
	const char *tmp = scratch_dir("FBLK_SCRATCH_TMP", "/tmp");
	struct fblk_config cfg;
	uint32_t want;
	int fd;

	fd = make_file(tmp, 4 * MiB, self->tmpfile, sizeof(self->tmpfile));
	ASSERT_LE(0, fd);
	want = fs_supports_odirect(tmp) ? FBLK_IO_DIRECT :
	       fs_supports_dontcache(tmp) ? FBLK_IO_DONTCACHE : FBLK_IO_BUFFERED;
	fblk_config_init(&cfg, fd, 0);
	cfg.params.mask = FBLK_PARAM_IO_MODE;
	cfg.params.io_mode = FBLK_IO_AUTO;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	close(fd);
	expect_mode(_metadata, self, FBLK_IO_AUTO, want, FBLK_SUBMIT_ASYNC);
}

/* dontcache where the kernel and filesystem offer RWF_DONTCACHE, else EOPNOTSUPP. */
TEST_F(params, dontcache_or_eopnotsupp)
{
	struct fblk_params p;

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	set_io_mode(&p, FBLK_IO_DONTCACHE);
	if (!fs_supports_dontcache(scratch_dir("FBLK_SCRATCH", "/tmp"))) {
		EXPECT_EQ(-EOPNOTSUPP, fblk_set_params(self->dev.fd, &p));
		expect_mode(_metadata, self, FBLK_IO_BUFFERED, FBLK_IO_BUFFERED,
			    FBLK_SUBMIT_ASYNC);
		return;
	}
	ASSERT_EQ(0, fblk_set_params(self->dev.fd, &p));
	expect_mode(_metadata, self, FBLK_IO_DONTCACHE, FBLK_IO_DONTCACHE, FBLK_SUBMIT_ASYNC);
	expect_sysfs(_metadata, self->dev.nr, "io_mode", "dontcache");
	round_trip(_metadata, self, SEED);
}

TEST_F(params, direct_flag_and_io_mode_must_agree)
{
	struct fblk_config cfg;
	struct fblk_info info;

	fblk_config_init(&cfg, self->file_fd, FBLK_FL_DIRECT_IO);
	cfg.params.mask = FBLK_PARAM_IO_MODE;
	cfg.params.io_mode = FBLK_IO_BUFFERED;
	EXPECT_EQ(-EINVAL, fblk_configure(self->dev.fd, &cfg));
	EXPECT_EQ(-ENXIO, fblk_get_info(self->dev.fd, &info));
	cfg.params.io_mode = FBLK_IO_DIRECT;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	expect_mode(_metadata, self, FBLK_IO_DIRECT, FBLK_IO_DIRECT, FBLK_SUBMIT_ASYNC);
}

TEST_F(params, configure_with_params)
{
	struct fblk_config cfg;
	struct fblk_info info;

	fblk_config_init(&cfg, self->file_fd, 0);
	cfg.params.mask = FBLK_PARAM_ALL;
	cfg.params.io_mode = FBLK_IO_DIRECT;
	cfg.params.submit = FBLK_SUBMIT_THREADS;
	cfg.params.pool_size = 3;
	ASSERT_EQ(0, fblk_configure(self->dev.fd, &cfg));
	expect_mode(_metadata, self, FBLK_IO_DIRECT, FBLK_IO_DIRECT, FBLK_SUBMIT_THREADS);
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ(3U, info.params.pool_size);
	expect_sysfs(_metadata, self->dev.nr, "submit", "threads");
	expect_sysfs(_metadata, self->dev.nr, "pool_size", "3");
	round_trip(_metadata, self, SEED);
}

TEST_F(params, sysfs_writes)
{
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	EXPECT_EQ(0, fblk_sysfs_write(self->dev.nr, "fblk/io_mode", "direct"));
	EXPECT_EQ(0, fblk_sysfs_write(self->dev.nr, "fblk/submit", "threads"));
	EXPECT_EQ(0, fblk_sysfs_write(self->dev.nr, "fblk/pool_size", "7"));
	expect_mode(_metadata, self, FBLK_IO_DIRECT, FBLK_IO_DIRECT, FBLK_SUBMIT_THREADS);
	expect_sysfs(_metadata, self->dev.nr, "pool_size", "7");

	EXPECT_EQ(-EINVAL, fblk_sysfs_write(self->dev.nr, "fblk/io_mode", "sideways"));
	EXPECT_EQ(-EINVAL, fblk_sysfs_write(self->dev.nr, "fblk/submit", "maybe"));
	EXPECT_EQ(-EINVAL, fblk_sysfs_write(self->dev.nr, "fblk/pool_size", "0"));
	EXPECT_EQ(-EINVAL, fblk_sysfs_write(self->dev.nr, "fblk/pool_size", "100000"));
	/* nothing changed */
	expect_mode(_metadata, self, FBLK_IO_DIRECT, FBLK_IO_DIRECT, FBLK_SUBMIT_THREADS);
	expect_sysfs(_metadata, self->dev.nr, "pool_size", "7");
	round_trip(_metadata, self, SEED);
}

TEST_F(params, sysfs_write_unbound_enxio)
{
	EXPECT_EQ(-ENXIO, fblk_sysfs_write(self->dev.nr, "fblk/io_mode", "direct"));
}

TEST_F(params, threads_with_one_worker)
{
	struct fblk_params p = { .mask = FBLK_PARAM_SUBMIT | FBLK_PARAM_POOL_SIZE,
				 .submit = FBLK_SUBMIT_THREADS, .pool_size = 1 };

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	ASSERT_EQ(0, fblk_set_params(self->dev.fd, &p));
	round_trip(_metadata, self, SEED);
	set_io_mode(&p, FBLK_IO_DIRECT);
	ASSERT_EQ(0, fblk_set_params(self->dev.fd, &p));
	expect_mode(_metadata, self, FBLK_IO_DIRECT, FBLK_IO_DIRECT, FBLK_SUBMIT_THREADS);
	round_trip(_metadata, self, SEED + 1);
}

struct writer {
	int fd;
	uint64_t start, len;
	int rounds;		/* at least min_rounds, then until *stop */
	int min_rounds;
	int err;
	int *stop;		/* set once the switcher has done its part */
	int *done;		/* shared count of finished writers */
};

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	int r;

	for (r = 0; !w->err && (r < w->min_rounds ||
				!__atomic_load_n(w->stop, __ATOMIC_SEQ_CST)); r++)
		w->err = pattern_write(w->fd, w->start, w->len, w->start, SEED + r);
	w->rounds = r;
	__atomic_add_fetch(w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * Switch io_mode and submit back and forth while two writers keep writing
 * through O_DIRECT: every switch drains and resumes, no write fails, and
 * the last round of each writer is what the backing file holds.
 */
TEST_F_TIMEOUT(params, switch_under_load, 120)
{
	static const struct fblk_params steps[] = {
		{ .mask = FBLK_PARAM_IO_MODE, .io_mode = FBLK_IO_DIRECT },
		{ .mask = FBLK_PARAM_SUBMIT, .submit = FBLK_SUBMIT_THREADS },
		{ .mask = FBLK_PARAM_IO_MODE, .io_mode = FBLK_IO_BUFFERED },
		{ .mask = FBLK_PARAM_POOL_SIZE, .pool_size = 2 },
		{ .mask = FBLK_PARAM_SUBMIT, .submit = FBLK_SUBMIT_ASYNC },
		{ .mask = FBLK_PARAM_POOL_SIZE | FBLK_PARAM_IO_MODE,
		  .pool_size = 16, .io_mode = FBLK_IO_AUTO },
	};
	struct writer w[2];
	pthread_t tid[2];
	int dfd, i, step = 0, done = 0, stop = 0;

	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	dfd = open(self->dev.path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, dfd);
	for (i = 0; i < 2; i++) {
		w[i] = (struct writer){ .fd = dfd, .start = i * 4 * MiB, .len = 4 * MiB,
					.min_rounds = 2, .stop = &stop, .done = &done };
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, writer_fn, &w[i]));
	}
	/*
	 * Every step twice while the writers write: they stop only after
	 * that.  A fixed number of rounds let fast writers finish after 5
	 * switches (7.3, CI).
	 */
	while (__atomic_load_n(&done, __ATOMIC_SEQ_CST) < 2) {
		EXPECT_EQ(0, fblk_set_params(self->dev.fd, &steps[step % 6]))
			TH_LOG("step %d", step);
		step++;
		if (step >= 12)
			__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
		usleep(20000);
	}
	pthread_join(tid[0], NULL);
	pthread_join(tid[1], NULL);
	TH_LOG("%d switches", step);
	EXPECT_LE(12, step);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, w[i].err) TH_LOG("writer %d", i);
	}
	close(dfd);
	ASSERT_EQ(0, flush_bdev(self->dev.fd));
	ASSERT_EQ(0, drop_caches());
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, pattern_check(self->file_fd, w[i].start, w[i].len, w[i].start,
					   SEED + w[i].rounds - 1)) TH_LOG("writer %d", i);
	}
}

/*
 * As user nobody in group disk, no capabilities: the node is 0660 root:disk.
 * Returns a bit per answer that was not the one expected.
 */
static int unprivileged_changes(const char *path, gid_t disk)
{
	struct fblk_params p = { .mask = FBLK_PARAM_RA_KB, .ra_kb = 256 };
	struct fblk_info info;
	int bad = 0, rd, wr;

	if (setgroups(0, NULL) || setgid(disk) || setuid(65534))
		return 1 << 7;
	rd = open(path, O_RDONLY);
	if (rd < 0)
		return 1 << 6;
	bad |= (fblk_set_params(rd, &p) != -EPERM) << 0;
	bad |= (fblk_set_capacity(rd) != -EPERM) << 1;
	bad |= (fblk_get_info(rd, &info) != 0) << 2;
	wr = open(path, O_RDWR);
	if (wr < 0)
		return bad | 1 << 5;
	bad |= (fblk_set_params(wr, &p) != 0) << 3;
	bad |= (fblk_set_capacity(wr) != 0) << 4;
	return bad;
}

/*
 * FBLK_SET_PARAMS and FBLK_SET_CAPACITY change the device: they take a
 * writable open or CAP_SYS_ADMIN, as loop's LOOP_SET_STATUS and
 * LOOP_SET_CAPACITY do.  A reader in group disk may still ask what it is.
 */
TEST_F(params, changes_need_writable_open_or_cap_sys_admin)
{
	struct group *grp = getgrnam("disk");
	struct fblk_info info;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, grp);
	ASSERT_EQ(0, fblk_attach(self->dev.fd, self->file_fd, 0));
	ASSERT_EQ(0, chown(self->dev.path, 0, grp->gr_gid));
	ASSERT_EQ(0, chmod(self->dev.path, 0660));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(unprivileged_changes(self->dev.path, grp->gr_gid));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	/*
	 * Bits: 0/1 SET_PARAMS/SET_CAPACITY through a read-only open not
	 * EPERM, 2 GET_INFO refused, 3/4 SET_PARAMS/SET_CAPACITY through a
	 * writable open refused, 5/6 open failed, 7 dropping root failed.
	 */
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, fblk_get_info(self->dev.fd, &info));
	EXPECT_EQ(256U, info.params.ra_kb);
}

TEST_HARNESS_MAIN
