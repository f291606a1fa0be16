/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the fblk selftests: the control node, one device's life
 * (add, configure, detach, remove), backing files, data patterns and sysfs.
 *
 * Every function that can fail returns 0 (or a number) on success and
 * -errno on failure, so a test can write ASSERT_EQ(-ELOOP, fblk_configure(..)).
 */
#ifndef FBLK_TEST_H
#define FBLK_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/fblk.h>

#define FBLK_CONTROL_PATH	"/dev/" FBLK_CONTROL_NAME
#define KiB			1024ULL
#define MiB			(1024 * KiB)

/* A device a test made with FBLK_CTL_ADD and removes again in its teardown. */
struct fblk_dev {
	int ctl;		/* /dev/fblk-control, -1 if not open */
	int nr;			/* N of /dev/fblkN, -1 if none */
	int fd;			/* /dev/fblkN opened O_RDWR, -1 if closed */
	char path[64];		/* /dev/fblkN */
};

/* The control node */
int fblk_ctl_open(void);
int fblk_ctl_add(int ctl, struct fblk_ctl_add *req);
int fblk_ctl_remove(int ctl, long nr);
int fblk_ctl_get_free(int ctl);

/* One device */
void fblk_dev_init(struct fblk_dev *d);
int fblk_dev_new(struct fblk_dev *d);
void fblk_dev_release(struct fblk_dev *d);
void fblk_dev_put(struct fblk_dev *d);
int fblk_node_open(int nr, int flags);
void fblk_node_path(int nr, char *buf, size_t size);

/* Device ioctls */
void fblk_config_init(struct fblk_config *cfg, int backing_fd, uint32_t flags);
int fblk_configure(int devfd, const struct fblk_config *cfg);
int fblk_attach(int devfd, int backing_fd, uint32_t flags);
int fblk_detach(int devfd);
int fblk_get_info(int devfd, struct fblk_info *info);
int fblk_set_capacity(int devfd);
int fblk_dev_size(int devfd, uint64_t *bytes);
int fblk_set_params(int devfd, const struct fblk_params *params);

/* sysfs: attr is relative to /sys/block/fblkN/, e.g. "fblk/state" or "ro" */
int fblk_sysfs_read(int nr, const char *attr, char *buf, size_t size);
int fblk_sysfs_u64(int nr, const char *attr, uint64_t *val);
int fblk_sysfs_write(int nr, const char *attr, const char *val);
bool fblk_sysfs_exists(int nr, const char *attr);
bool fblk_wait_state(int nr, const char *state, int timeout_ms);
uint64_t fblk_encode_dev(dev_t dev);
unsigned int nr_possible_cpus(void);

/* Backing files and directories */
const char *scratch_dir(const char *env, const char *fallback);
int make_file(const char *dir, uint64_t size, char *path, size_t pathsize);
int make_tmpdir(const char *dir, char *path, size_t pathsize);
bool fs_supports_odirect(const char *dir);
bool fs_supports_dontcache(const char *dir);

/*
 * Data patterns: the byte at pattern position key+i depends on (key + i) and
 * seed, so data written at device offset X can be checked in the backing
 * file at offset + X.  seed 0 means zeroes.
 */
int pattern_write(int fd, uint64_t pos, uint64_t len, uint64_t key, uint32_t seed);
int pattern_check(int fd, uint64_t pos, uint64_t len, uint64_t key, uint32_t seed);

/* Caches */
int drop_caches(void);
int flush_bdev(int devfd);

/* Running a command: its exit status, or -1 if it did not run or died */
int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* FBLK_TEST_H */
