// SPDX-License-Identifier: GPL-2.0
/*
 * fblkdev.c - the driver's nodes and sysfs files, seen from user space.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fblkdev.h"

/* How long a node announced in sysfs may take to show up in /dev. */
#define NODE_WAIT_MS		2000
#define NODE_WAIT_STEP_MS	10

static int parse_number(const char *s, unsigned int *number)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	/* "fblk01" is not a name the kernel gives a disk. */
	if (s[0] == '0' && s[1] != '\0')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > INT32_MAX)
		return -EINVAL;
	*number = v;
	return 0;
}

static int parse_basename(const char *path, unsigned int *number)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (strncmp(base, FBLK_DISK_PREFIX, strlen(FBLK_DISK_PREFIX)))
		return -EINVAL;
	return parse_number(base + strlen(FBLK_DISK_PREFIX), number);
}

int fblk_parse_name(const char *arg, unsigned int *number)
{
	char *real;
	int ret;

	/* Plain names need no node: the device may not exist yet. */
	if (!strchr(arg, '/'))
		return parse_basename(arg, number);
	if (!strncmp(arg, FBLK_DEV_DIR "/" FBLK_DISK_PREFIX,
		     strlen(FBLK_DEV_DIR "/" FBLK_DISK_PREFIX)) &&
	    !strchr(arg + strlen(FBLK_DEV_DIR "/"), '/') &&
	    parse_basename(arg, number) == 0)
		return 0;
	/* Anything else (a udev symlink, a relative path) must resolve. */
	real = realpath(arg, NULL);
	if (!real)
		return -errno;
	ret = parse_basename(real, number);
	free(real);
	return ret;
}

void fblk_path(unsigned int number, char *buf, size_t size)
{
	snprintf(buf, size, FBLK_DEV_DIR "/" FBLK_DISK_PREFIX "%u", number);
}

static void sysfs_path(unsigned int number, const char *attr, char *buf,
		       size_t size)
{
	snprintf(buf, size, FBLK_SYSFS_DIR "/" FBLK_DISK_PREFIX "%u%s%s",
		 number, attr ? "/" : "", attr ? attr : "");
}

/* Read one sysfs value, without its trailing newline. */
static int sysfs_read(unsigned int number, const char *attr, char *buf,
		      size_t size)
{
	char path[PATH_MAX];
	ssize_t len;
	int fd;

	sysfs_path(number, attr, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, size - 1);
	if (len < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	return 0;
}

static int sysfs_read_u64(unsigned int number, const char *attr, __u64 *val)
{
	char buf[64], *end;
	int ret;

	ret = sysfs_read(number, attr, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EINVAL;
	return 0;
}

bool fblk_module_loaded(void)
{
	return access("/sys/module/fblk", F_OK) == 0;
}

bool fblk_exists(unsigned int number)
{
	char path[PATH_MAX];

	sysfs_path(number, NULL, path, sizeof(path));
	return access(path, F_OK) == 0;
}

bool fblk_is_bound(unsigned int number)
{
	char state[32];

	if (sysfs_read(number, "fblk/state", state, sizeof(state)))
		return false;
	return strcmp(state, "unbound") != 0;
}

int fblk_get_geometry(unsigned int number, unsigned int *queues,
		      unsigned int *depth)
{
	__u64 q, d;
	int ret;

	ret = sysfs_read_u64(number, "fblk/nr_hw_queues", &q);
	if (!ret)
		ret = sysfs_read_u64(number, "fblk/queue_depth", &d);
	if (ret)
		return ret;
	*queues = q;
	*depth = d;
	return 0;
}

unsigned int fblk_possible_cpus(void)
{
	unsigned int count = 0, first, last;
	char buf[256], *p = buf;
	int fd, len;

	fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	/* "0-3,8-11": ranges and single CPUs, comma-separated */
	while (*p && *p != '\n') {
		char *end;

		first = strtoul(p, &end, 10);
		if (end == p)
			return 0;
		last = first;
		if (*end == '-') {
			p = end + 1;
			last = strtoul(p, &end, 10);
			if (end == p || last < first)
				return 0;
		}
		count += last - first + 1;
		p = *end == ',' ? end + 1 : end;
	}
	return count;
}

static int cmp_uint(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return (x > y) - (x < y);
}

int fblk_list_devices(unsigned int **numbers, size_t *count)
{
	unsigned int *list = NULL, n;
	size_t used = 0, room = 0;
	struct dirent *de;
	DIR *dir;

	dir = opendir(FBLK_SYSFS_DIR);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (parse_basename(de->d_name, &n))
			continue;
		if (used == room) {
			unsigned int *bigger;

			room = room ? room * 2 : 16;
			bigger = realloc(list, room * sizeof(*list));
			if (!bigger) {
				free(list);
				closedir(dir);
				return -ENOMEM;
			}
			list = bigger;
		}
		list[used++] = n;
	}
	closedir(dir);
	if (used)
		qsort(list, used, sizeof(*list), cmp_uint);
	*numbers = list;
	*count = used;
	return 0;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int fblk_open_device(unsigned int number, int flags, bool fallback_ro)
{
	unsigned int waited = 0;
	char path[FBLK_NAME_SIZE];
	int fd;

	fblk_path(number, path, sizeof(path));
	for (;;) {
		fd = open(path, flags | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (fallback_ro && (flags & O_ACCMODE) == O_RDWR &&
		    (errno == EROFS || errno == EACCES)) {
			flags = (flags & ~O_ACCMODE) | O_RDONLY;
			continue;
		}
		/* devtmpfs creates the node just after sysfs shows the disk. */
		if (errno != ENOENT || waited >= NODE_WAIT_MS ||
		    !fblk_exists(number))
			return -errno;
		sleep_ms(NODE_WAIT_STEP_MS);
		waited += NODE_WAIT_STEP_MS;
	}
}

int fblk_open_control(void)
{
	int fd = open(FBLK_CONTROL_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

extern char **environ;

/* Run "$FBLK_MODPROBE fblk"; 0 if it exited 0. */
static int run_modprobe(void)
{
	const char *modprobe = getenv("FBLK_MODPROBE");
	char *argv[3];
	int status;
	pid_t pid;

	if (!modprobe)
		modprobe = "modprobe";
	argv[0] = (char *)modprobe;
	argv[1] = (char *)"fblk";
	argv[2] = NULL;
	/* stderr stays ours: modprobe's own message says why it failed. */
	if (posix_spawnp(&pid, modprobe, NULL, NULL, argv, environ))
		return -ENOENT;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int fblk_open_control_load(bool *modprobe_failed)
{
	unsigned int waited = 0;
	int fd = fblk_open_control();
	const char *modprobe = getenv("FBLK_MODPROBE");

	*modprobe_failed = false;
	if (fd != -ENOENT || fblk_module_loaded() || (modprobe && !*modprobe))
		return fd;
	if (run_modprobe()) {
		*modprobe_failed = true;
		return fd;
	}
	/* devtmpfs makes the node at load; udev may still be renaming it. */
	while ((fd = fblk_open_control()) == -ENOENT && waited < NODE_WAIT_MS) {
		sleep_ms(NODE_WAIT_STEP_MS);
		waited += NODE_WAIT_STEP_MS;
	}
	return fd;
}

dev_t fblk_decode_dev(uint64_t encoded)
{
	unsigned int maj = (encoded & 0xfff00) >> 8;
	unsigned int min = (encoded & 0xff) | ((encoded >> 12) & 0xfff00);

	return makedev(maj, min);
}

/* new_encode_dev(), to store a sysfs MAJ:MIN as GET_INFO would. */
static uint64_t encode_dev(unsigned int maj, unsigned int min)
{
	return (min & 0xff) | (maj << 8) | ((uint64_t)(min & ~0xffu) << 12);
}

static int sysfs_flag(unsigned int number, const char *attr, uint32_t bit,
		      uint32_t *flags)
{
	__u64 v;
	int ret = sysfs_read_u64(number, attr, &v);

	if (!ret && v)
		*flags |= bit;
	return ret;
}

static unsigned int io_mode_number(const char *name)
{
	if (!strcmp(name, "direct"))
		return FBLK_IO_DIRECT;
#ifdef FBLK_SET_PARAMS
	if (!strcmp(name, "dontcache"))
		return FBLK_IO_DONTCACHE;
	if (!strcmp(name, "auto"))
		return FBLK_IO_AUTO;
#endif
	return FBLK_IO_BUFFERED;
}

#ifdef HAVE_FBLK_RA_PARAMS
const char *const fblk_ra_policy_names[FBLK_RA_OFF + 1] = {
	[FBLK_RA_AUTO]		= "auto",
	[FBLK_RA_SEQUENTIAL]	= "sequential",
	[FBLK_RA_RANDOM]	= "random",
	[FBLK_RA_OFF]		= "off",
};

const char *fblk_ra_policy_name(unsigned int policy)
{
	return policy < ARRAY_SIZE(fblk_ra_policy_names) &&
	       fblk_ra_policy_names[policy] ? fblk_ra_policy_names[policy] : "?";
}
#endif

int fblk_read_stats(unsigned int number, char *buf, size_t size)
{
	return sysfs_read(number, "fblk/stats", buf, size);
}

#ifdef FBLK_SET_PARAMS
/* The run-time settings, where this module version has them in sysfs. */
static void read_params_sysfs(unsigned int number, struct fblk_params *p)
{
	char buf[64];
	__u64 v;
#ifdef HAVE_FBLK_RA_PARAMS
	unsigned int i;
#endif

	if (!sysfs_read(number, "fblk/io_mode_requested", buf, sizeof(buf))) {
		p->io_mode = io_mode_number(buf);
		p->mask |= FBLK_PARAM_IO_MODE;
	}
	if (!sysfs_read(number, "fblk/submit", buf, sizeof(buf))) {
		p->submit = strcmp(buf, "threads") ? FBLK_SUBMIT_ASYNC :
						     FBLK_SUBMIT_THREADS;
		p->mask |= FBLK_PARAM_SUBMIT;
	}
	if (!sysfs_read_u64(number, "fblk/pool_size", &v)) {
		p->pool_size = v;
		p->mask |= FBLK_PARAM_POOL_SIZE;
	}
#ifdef HAVE_FBLK_RA_PARAMS
	if (!sysfs_read(number, "fblk/ra_policy", buf, sizeof(buf))) {
		for (i = 0; i < ARRAY_SIZE(fblk_ra_policy_names); i++) {
			if (fblk_ra_policy_names[i] &&
			    !strcmp(buf, fblk_ra_policy_names[i])) {
				p->ra_policy = i;
				p->mask |= FBLK_PARAM_RA_POLICY;
			}
		}
	}
	if (!sysfs_read_u64(number, "fblk/ra_kb", &v)) {
		p->ra_kb = v;
		p->mask |= FBLK_PARAM_RA_KB;
	}
	if (!sysfs_read_u64(number, "fblk/inline_depth", &v)) {
		p->inline_depth = v;
		p->mask |= FBLK_PARAM_INLINE_DEPTH;
	}
#endif
}
#endif

/*
 * The same information as FBLK_GET_INFO, from files anyone may read: lets a
 * user who cannot open /dev/fblkN still list devices, as losetup does.
 */
static int read_info_sysfs(unsigned int number, struct fblk_info *info)
{
	unsigned int maj, min;
	struct stat st;
	char buf[64];
	__u64 v = 0;
	int ret;

	memset(info, 0, sizeof(*info));
	info->number = number;
	ret = sysfs_read(number, "fblk/state", buf, sizeof(buf));
	if (ret)
		return ret;
	if (!strcmp(buf, "unbound"))
		return -ENXIO;
	info->state = strcmp(buf, "rundown") ? FBLK_STATE_BOUND :
					       FBLK_STATE_RUNDOWN;
	ret = sysfs_read(number, "fblk/io_mode", buf, sizeof(buf));
	if (ret)
		return ret;
	info->io_mode = io_mode_number(buf);
	ret = sysfs_read(number, "fblk/backing_dev", buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%u:%u", &maj, &min) == 2)
		info->backing_dev = encode_dev(maj, min);
	ret = sysfs_read(number, "fblk/backing_file", (char *)info->backing_file,
			 sizeof(info->backing_file));
	ret = ret ?: sysfs_read_u64(number, "fblk/backing_inode",
				    &info->backing_inode);
	ret = ret ?: sysfs_read_u64(number, "fblk/offset",
				    &info->offset);
	ret = ret ?: sysfs_read_u64(number, "fblk/sizelimit",
				    &info->sizelimit);
	ret = ret ?: sysfs_read_u64(number, "size", &v);
	info->size = v * 512;
	ret = ret ?: sysfs_read_u64(number, "fblk/block_size", &v);
	info->block_size = v;
	ret = ret ?: fblk_get_geometry(number, &info->nr_hw_queues,
				       &info->queue_depth);
	ret = ret ?: sysfs_flag(number, "fblk/read_only", FBLK_FL_READ_ONLY,
				&info->flags);
	ret = ret ?: sysfs_flag(number, "fblk/autoclear", FBLK_FL_AUTOCLEAR,
				&info->flags);
	ret = ret ?: sysfs_flag(number, "fblk/partscan", FBLK_FL_PARTSCAN,
				&info->flags);
	ret = ret ?: sysfs_flag(number, "fblk/direct_io", FBLK_FL_DIRECT_IO,
				&info->flags);
	if (ret)
		return ret;
#ifdef FBLK_SET_PARAMS
	read_params_sysfs(number, &info->params);
#endif

	/*
	 * sysfs's backing_dev is where the data lives (for a block device, its
	 * own number); GET_INFO's is st_dev of the file and backing_rdev the
	 * block device's number.  The file itself tells, if we may see it.
	 */
	if (!stat((const char *)info->backing_file, &st) &&
	    st.st_ino == info->backing_inode) {
		info->backing_dev = encode_dev(major(st.st_dev), minor(st.st_dev));
		if (S_ISBLK(st.st_mode))
			info->backing_rdev = encode_dev(major(st.st_rdev),
							minor(st.st_rdev));
	}
	return 0;
}

int fblk_read_device(unsigned int number, struct fblkdev *dev)
{
	unsigned int maj, min;
	char buf[32];
	int fd, ret;

	memset(dev, 0, sizeof(*dev));
	dev->number = number;
	fblk_path(number, dev->path, sizeof(dev->path));

	/* Opening an unbound device is pointless and would race removal. */
	ret = sysfs_read(number, "fblk/state", buf, sizeof(buf));
	if (!ret && !strcmp(buf, "unbound"))
		return -ENXIO;
	if (ret && !fblk_exists(number))
		return -ENODEV;

	fd = fblk_open_device(number, O_RDONLY, false);
	if (fd >= 0) {
		ret = ioctl(fd, FBLK_GET_INFO, &dev->info) ? -errno : 0;
		close(fd);
	} else {
		ret = fd;
	}
	if (ret == -EACCES || ret == -EPERM)
		ret = read_info_sysfs(number, &dev->info);
	if (ret)
		return ret;
	dev->info.backing_file[sizeof(dev->info.backing_file) - 1] = '\0';

	/* GET_INFO's copy of the path may be cut short; sysfs's is not. */
	if (sysfs_read(number, "fblk/backing_file", dev->backing_file,
		       sizeof(dev->backing_file)) || !dev->backing_file[0])
		snprintf(dev->backing_file, sizeof(dev->backing_file), "%s",
			 (const char *)dev->info.backing_file);

	if (!sysfs_read(number, "dev", buf, sizeof(buf)) &&
	    sscanf(buf, "%u:%u", &maj, &min) == 2)
		dev->devt = makedev(maj, min);
	return 0;
}
