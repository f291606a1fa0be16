// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the fblk selftests; see fblk_test.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "fblk_test.h"

#define IO_CHUNK	(1 * MiB)
#define IO_ALIGN	4096

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int ret_errno(int ret)
{
	return ret < 0 ? -errno : ret;
}

int fblk_ctl_open(void)
{
	return ret_errno(open(FBLK_CONTROL_PATH, O_RDWR | O_CLOEXEC));
}

int fblk_ctl_add(int ctl, struct fblk_ctl_add *req)
{
	return ret_errno(ioctl(ctl, FBLK_CTL_ADD, req));
}

int fblk_ctl_remove(int ctl, long nr)
{
	return ret_errno(ioctl(ctl, FBLK_CTL_REMOVE, nr));
}

int fblk_ctl_get_free(int ctl)
{
	return ret_errno(ioctl(ctl, FBLK_CTL_GET_FREE));
}

void fblk_node_path(int nr, char *buf, size_t size)
{
	snprintf(buf, size, "/dev/" FBLK_DISK_PREFIX "%d", nr);
}

/* devtmpfs makes the node during add_disk(); wait a little all the same. */
int fblk_node_open(int nr, int flags)
{
	char path[64];
	int fd, i;

	fblk_node_path(nr, path, sizeof(path));
	for (i = 0; i < 50; i++) {
		fd = open(path, flags | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			break;
		sleep_ms(100);
	}
	return ret_errno(fd);
}

void fblk_dev_init(struct fblk_dev *d)
{
	d->ctl = -1;
	d->nr = -1;
	d->fd = -1;
	d->path[0] = '\0';
}

/* Make a new device with default geometry and open it read-write. */
int fblk_dev_new(struct fblk_dev *d)
{
	struct fblk_ctl_add req = { .id = -1 };
	int ret;

	fblk_dev_init(d);
	d->ctl = fblk_ctl_open();
	if (d->ctl < 0)
		return d->ctl;
	ret = fblk_ctl_add(d->ctl, &req);
	if (ret < 0)
		return ret;
	d->nr = ret;
	fblk_node_path(d->nr, d->path, sizeof(d->path));
	d->fd = fblk_node_open(d->nr, O_RDWR);
	return d->fd < 0 ? d->fd : 0;
}

/* Detach (if still bound) and close; the device itself stays. */
void fblk_dev_release(struct fblk_dev *d)
{
	if (d->fd >= 0) {
		fblk_detach(d->fd);
		close(d->fd);
		d->fd = -1;
	}
}

/*
 * Detach, close and remove.  Removal can see EBUSY for a moment while a
 * deferred detach finishes after the last close.
 */
void fblk_dev_put(struct fblk_dev *d)
{
	int i;

	fblk_dev_release(d);
	if (d->ctl >= 0 && d->nr >= 0) {
		for (i = 0; i < 50; i++) {
			if (fblk_ctl_remove(d->ctl, d->nr) != -EBUSY)
				break;
			sleep_ms(100);
		}
	}
	if (d->ctl >= 0)
		close(d->ctl);
	fblk_dev_init(d);
}

void fblk_config_init(struct fblk_config *cfg, int backing_fd, uint32_t flags)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->fd = backing_fd;
	cfg->flags = flags;
}

int fblk_configure(int devfd, const struct fblk_config *cfg)
{
	return ret_errno(ioctl(devfd, FBLK_CONFIGURE, cfg));
}

int fblk_attach(int devfd, int backing_fd, uint32_t flags)
{
	struct fblk_config cfg;

	fblk_config_init(&cfg, backing_fd, flags);
	return fblk_configure(devfd, &cfg);
}

int fblk_detach(int devfd)
{
	return ret_errno(ioctl(devfd, FBLK_DETACH));
}

int fblk_get_info(int devfd, struct fblk_info *info)
{
	memset(info, 0xa5, sizeof(*info));
	return ret_errno(ioctl(devfd, FBLK_GET_INFO, info));
}

int fblk_set_capacity(int devfd)
{
	return ret_errno(ioctl(devfd, FBLK_SET_CAPACITY));
}

int fblk_set_params(int devfd, const struct fblk_params *params)
{
	return ret_errno(ioctl(devfd, FBLK_SET_PARAMS, params));
}

int fblk_dev_size(int devfd, uint64_t *bytes)
{
	return ret_errno(ioctl(devfd, BLKGETSIZE64, bytes));
}

int fblk_sysfs_read(int nr, const char *attr, char *buf, size_t size)
{
	char path[256];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/sys/block/" FBLK_DISK_PREFIX "%d/%s", nr, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, size - 1);
	if (len < 0) {
		len = -errno;
		close(fd);
		return len;
	}
	close(fd);
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	return 0;
}

int fblk_sysfs_u64(int nr, const char *attr, uint64_t *val)
{
	char buf[64], *end;
	int ret;

	ret = fblk_sysfs_read(nr, attr, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EINVAL;
	return 0;
}

int fblk_sysfs_write(int nr, const char *attr, const char *val)
{
	char path[256];
	ssize_t len = strlen(val);
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/block/" FBLK_DISK_PREFIX "%d/%s", nr, attr);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

bool fblk_sysfs_exists(int nr, const char *attr)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/block/" FBLK_DISK_PREFIX "%d/%s", nr, attr);
	return access(path, F_OK) == 0;
}

/* Poll fblk/state until it reads @state (detach on last close may be async). */
bool fblk_wait_state(int nr, const char *state, int timeout_ms)
{
	char buf[32];
	int waited;

	for (waited = 0; ; waited += 50) {
		if (!fblk_sysfs_read(nr, "fblk/state", buf, sizeof(buf)) &&
		    !strcmp(buf, state))
			return true;
		if (waited >= timeout_ms)
			return false;
		sleep_ms(50);
	}
}

/* The kernel's new_encode_dev(), as struct fblk_info.backing_dev uses it. */
uint64_t fblk_encode_dev(dev_t dev)
{
	uint64_t ma = major(dev), mi = minor(dev);

	return (mi & 0xff) | (ma << 8) | ((mi & ~0xffULL) << 12);
}

/* nr_cpu_ids: the highest possible CPU + 1, from "0-3" or "0,2-5". */
unsigned int nr_possible_cpus(void)
{
	unsigned int lo, hi, max = 0;
	char buf[256], *p = buf;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");

	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return sysconf(_SC_NPROCESSORS_CONF);
	}
	fclose(f);
	while (*p) {
		int n = 0;

		if (sscanf(p, "%u-%u%n", &lo, &hi, &n) == 2 && n)
			;
		else if (sscanf(p, "%u%n", &lo, &n) == 1 && n)
			hi = lo;
		else
			break;
		if (hi + 1 > max)
			max = hi + 1;
		p += n;
		if (*p == ',')
			p++;
		else
			break;
	}
	return max;
}

const char *scratch_dir(const char *env, const char *fallback)
{
	const char *dir = getenv(env);

	return dir && *dir ? dir : fallback;
}

/* A sparse file of @size bytes in @dir; returns an O_RDWR fd. */
int make_file(const char *dir, uint64_t size, char *path, size_t pathsize)
{
	int fd;

	snprintf(path, pathsize, "%s/fblk-test.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		int err = -errno;

		close(fd);
		unlink(path);
		return err;
	}
	return fd;
}

int make_tmpdir(const char *dir, char *path, size_t pathsize)
{
	snprintf(path, pathsize, "%s/fblk-test.XXXXXX", dir);
	return mkdtemp(path) ? 0 : -errno;
}

/* tmpfs before 6.6 refuses O_DIRECT opens with EINVAL. */
bool fs_supports_odirect(const char *dir)
{
	char path[256];
	int fd, dfd;

	snprintf(path, sizeof(path), "%s/fblk-odirect.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return false;
	dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	unlink(path);
	close(fd);
	if (dfd < 0)
		return false;
	close(dfd);
	return true;
}

#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE	0x00000080
#endif

/* Uncached buffered I/O (6.14 and later, where the filesystem offers it). */
bool fs_supports_dontcache(const char *dir)
{
	char path[256], byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	ssize_t ret;
	int fd;

	snprintf(path, sizeof(path), "%s/fblk-dontcache.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return false;
	unlink(path);
	ret = pwritev2(fd, &iov, 1, 0, RWF_DONTCACHE);
	close(fd);
	return ret == 1;
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t key, uint32_t seed)
{
	uint64_t *w = (uint64_t *)buf;
	size_t i;

	if (!seed) {
		memset(buf, 0, len);
		return;
	}
	/* key and len are multiples of 8 in every caller */
	for (i = 0; i < len / 8; i++) {
		uint64_t x = (key + i * 8) ^ ((uint64_t)seed << 32);

		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ULL;
		x ^= x >> 32;
		w[i] = x;
	}
}

static void *io_buffer(void)
{
	void *buf;

	if (posix_memalign(&buf, IO_ALIGN, IO_CHUNK))
		return NULL;
	return buf;
}

int pattern_write(int fd, uint64_t pos, uint64_t len, uint64_t key, uint32_t seed)
{
	uint8_t *buf = io_buffer();
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (len) {
		size_t n = len < IO_CHUNK ? len : IO_CHUNK;
		ssize_t done;

		fill_pattern(buf, n, key, seed);
		done = pwrite(fd, buf, n, pos);
		if (done < 0) {
			ret = -errno;
			break;
		}
		if ((size_t)done != n) {
			ret = -ENOSPC;
			break;
		}
		pos += n;
		key += n;
		len -= n;
	}
	free(buf);
	return ret;
}

/* 0 if the data matches, -EILSEQ (after saying where) if not, -errno on a read error. */
int pattern_check(int fd, uint64_t pos, uint64_t len, uint64_t key, uint32_t seed)
{
	uint8_t *buf = io_buffer(), *want = io_buffer();
	int ret = 0;

	if (!buf || !want) {
		ret = -ENOMEM;
		goto out;
	}
	while (len) {
		size_t n = len < IO_CHUNK ? len : IO_CHUNK;
		ssize_t done = pread(fd, buf, n, pos);
		size_t i;

		if (done < 0) {
			ret = -errno;
			break;
		}
		if ((size_t)done != n) {
			fprintf(stderr, "# short read at %llu: %zd of %zu bytes\n",
				(unsigned long long)pos, done, n);
			ret = -EILSEQ;
			break;
		}
		fill_pattern(want, n, key, seed);
		if (memcmp(buf, want, n)) {
			for (i = 0; i < n && buf[i] == want[i]; i++)
				;
			fprintf(stderr, "# data mismatch at %llu: got 0x%02x, want 0x%02x\n",
				(unsigned long long)(pos + i), buf[i], want[i]);
			ret = -EILSEQ;
			break;
		}
		pos += n;
		key += n;
		len -= n;
	}
out:
	free(buf);
	free(want);
	return ret;
}

int drop_caches(void)
{
	int fd, ret = 0;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "3\n", 2) != 2)
		ret = -errno;
	close(fd);
	return ret;
}

/* Write back and drop the device's own page cache. */
int flush_bdev(int devfd)
{
	if (fsync(devfd))
		return -errno;
	return ret_errno(ioctl(devfd, BLKFLSBUF, 0));
}

int run_cmd(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	status = system(cmd);
	if (status == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}
