// SPDX-License-Identifier: GPL-2.0
/*
 * fblk-fuzz: random ioctls on /dev/fblk-control and /dev/fblkN, checked
 * against a model of what the driver must do.
 *
 * Each call is drawn from a seeded generator: valid and invalid commands,
 * sizes, flags and field values, backing fds of every kind (image files
 * opened every way, directories, pipes, sockets, /dev/null, the control
 * node, closed and O_PATH fds, other fblk devices and the device itself),
 * bad pointers.  Every call must end in 0 or an errno from a fixed set; on
 * top of that a model of the devices the fuzzer owns (bound or not, with
 * what, opened how often, autoclear pending) says what some calls must
 * return, GET_INFO and sysfs must agree with it, and reads through a device
 * must return the backing file's bytes.  At the end every device the fuzzer
 * added is detached and removed, and no device is left that it did not add;
 * devices that existed before are never configured, detached or removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fblk.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_CLEAN	0	/* every check passed */
#define EXIT_FAILED	1	/* a check failed (the report says which) */
#define EXIT_USAGE	2	/* bad command line */
#define EXIT_SETUP	3	/* could not start: no control node, no images */

#define MAX_DEVS	64	/* devices the model tracks (owned or not) */
#define MAX_DEVFDS	24	/* fds the fuzzer holds open on device nodes */
#define NR_IMAGES	5
#define MAX_REPORTS	20
#define DATA_MAX	(64 * 1024)
#define FBLK_MAX_SCAN	65536	/* device numbers looked for in /sys/block */

/* ---- options ---- */

static struct {
	uint64_t seed;
	unsigned long calls;
	double seconds;
	const char *dir;
	const char *control;
	unsigned int max_devices;
	bool json;
	bool verbose;
	bool skip_unbound_flush;
} opt = {
	.seed = 1, .calls = 100000, .dir = "/tmp",
	.control = "/dev/fblk-control", .max_devices = 6,
};

/* ---- random numbers ---- */

static uint64_t rng_state;

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
	return splitmix(&rng_state);
}

/* 0..n-1 */
static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int pct)
{
	return below(100) < pct;
}

/* ---- results ---- */

enum op {
	OP_OPEN, OP_CLOSE, OP_ADD, OP_REMOVE, OP_GET_FREE, OP_CONFIGURE,
	OP_DETACH, OP_GET_INFO, OP_SET_CAPACITY, OP_SET_PARAMS, OP_BAD_CMD,
	OP_READ, OP_WRITE, OP_FSYNC, OP_BLKQUERY, OP_RRPART, OP_REOPEN,
	NR_OPS
};

static const char *const op_names[NR_OPS] = {
	[OP_OPEN] = "open", [OP_CLOSE] = "close", [OP_ADD] = "ctl_add",
	[OP_REMOVE] = "ctl_remove", [OP_GET_FREE] = "ctl_get_free",
	[OP_CONFIGURE] = "configure", [OP_DETACH] = "detach",
	[OP_GET_INFO] = "get_info", [OP_SET_CAPACITY] = "set_capacity",
	[OP_SET_PARAMS] = "set_params", [OP_BAD_CMD] = "bad_cmd",
	[OP_READ] = "read", [OP_WRITE] = "write", [OP_FSYNC] = "fsync",
	[OP_BLKQUERY] = "blk_query", [OP_RRPART] = "blkrrpart",
	[OP_REOPEN] = "reopen_backing",
};

/* Weights of the operations in the mix. */
static const unsigned int op_weight[NR_OPS] = {
	[OP_OPEN] = 8, [OP_CLOSE] = 6, [OP_ADD] = 2, [OP_REMOVE] = 3,
	[OP_GET_FREE] = 1, [OP_CONFIGURE] = 12, [OP_DETACH] = 5,
	[OP_GET_INFO] = 10, [OP_SET_CAPACITY] = 3, [OP_SET_PARAMS] = 6,
	[OP_BAD_CMD] = 10, [OP_READ] = 6, [OP_WRITE] = 3, [OP_FSYNC] = 1,
	[OP_BLKQUERY] = 4, [OP_RRPART] = 1, [OP_REOPEN] = 2,
};

/* errnos a call may end in */
static const int allowed_errnos[] = {
	EINVAL, EBUSY, ENXIO, EBADF, ENOTTY, EPERM, EROFS, ENOSPC, ELOOP,
	EISDIR, EOPNOTSUPP, EFAULT, ENOMEM, EEXIST, ENODEV, EACCES, EFBIG,
	ERANGE, ENOENT,
};

#define MAX_ERRNO 4096

static struct {
	unsigned long calls, ok, unexpected, model, data, leftover, adopted;
	unsigned long per_errno[MAX_ERRNO];
	unsigned long op_calls[NR_OPS], op_ok[NR_OPS];
	unsigned long added, removed, configured, detached, autoclears;
	unsigned long reports;
} st;

static bool errno_allowed(int e)
{
	size_t i;

	for (i = 0; i < sizeof(allowed_errnos) / sizeof(allowed_errnos[0]); i++)
		if (allowed_errnos[i] == e)
			return true;
	return false;
}

static const char *errno_name(int e)
{
	static char buf[16];

	switch (e) {
#define E(x) case x: return #x
	E(EINVAL); E(EBUSY); E(ENXIO); E(EBADF); E(ENOTTY); E(EPERM);
	E(EROFS); E(ENOSPC); E(ELOOP); E(EISDIR); E(EOPNOTSUPP); E(EFAULT);
	E(ENOMEM); E(EEXIST); E(ENODEV); E(EACCES); E(EFBIG); E(ERANGE);
	E(ENOENT); E(EIO); E(EAGAIN); E(EINTR); E(ENOSYS); E(E2BIG);
	E(EOVERFLOW); E(ESPIPE); E(ETXTBSY); E(EMFILE); E(ENFILE);
#undef E
	}
	snprintf(buf, sizeof(buf), "errno%d", e);
	return buf;
}

static const char *cur_what = "";	/* the call under way, for reports */

static void report(unsigned long *counter, const char *fmt, ...)
{
	va_list ap;

	(*counter)++;
	if (st.reports++ >= MAX_REPORTS) {
		if (st.reports == MAX_REPORTS + 1)
			fprintf(stderr, "fblk-fuzz: further failures not shown\n");
		return;
	}
	fprintf(stderr, "fblk-fuzz: FAIL call %lu (%s): ", st.calls, cur_what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Account the result of one system call: ret < 0 means errno is set. */
static int account(enum op op, long ret)
{
	int e = ret < 0 ? errno : 0;

	st.calls++;
	st.op_calls[op]++;
	if (!e) {
		st.ok++;
		st.op_ok[op]++;
		if (opt.verbose)
			fprintf(stderr, "%lu %s = %ld\n", st.calls, cur_what, ret);
		return 0;
	}
	if (e > 0 && e < MAX_ERRNO)
		st.per_errno[e]++;
	if (opt.verbose)
		fprintf(stderr, "%lu %s: %s\n", st.calls, cur_what, errno_name(e));
	if (!errno_allowed(e))
		report(&st.unexpected, "unexpected errno %s (%s)", errno_name(e),
		       strerror(e));
	return e;
}

/*
 * Like account(), for a call the model says must fail with @expected: that
 * errno is then no surprise, whatever the allowed set says; success is.
 */
static int account_failure(enum op op, long ret, int expected)
{
	int e = ret < 0 ? errno : 0;

	if (e != expected)
		return account(op, ret) ?: -1;
	st.calls++;
	st.op_calls[op]++;
	st.per_errno[e]++;
	if (opt.verbose)
		fprintf(stderr, "%lu %s: %s (expected)\n", st.calls, cur_what,
			errno_name(e));
	return 0;
}

/* ---- images: files with bytes any reader can predict ---- */

struct image {
	char path[PATH_MAX];
	off_t size;
	int fd;			/* O_RDWR, for fstat */
	dev_t st_dev;
	ino_t st_ino;
	bool memfd;
};

static struct image images[NR_IMAGES];

static uint64_t pattern_word(int img, uint64_t idx)
{
	uint64_t s = ((uint64_t)(img + 1) << 48) ^ idx;

	return splitmix(&s);
}

static void pattern_fill(int img, uint64_t off, uint8_t *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t w = pattern_word(img, (off + i) / 8);
		unsigned int b = (off + i) % 8;

		buf[i++] = (uint8_t)(w >> (8 * b));
	}
}

static int image_create(int i)
{
	struct image *im = &images[i];
	uint8_t *buf = malloc(DATA_MAX);
	struct stat sb;
	off_t off;

	if (!buf)
		return -1;
	/* 256 KiB..4 MiB; some not a multiple of 4 KiB, one not of 512. */
	im->size = (256 << 10) + (off_t)below(15) * (256 << 10);
	if (i == 1)
		im->size += 3 * 512;
	if (i == 2)
		im->size += 777;
	if (i == NR_IMAGES - 1) {
		im->memfd = true;
		im->fd = memfd_create("fblk-fuzz", 0);
		snprintf(im->path, sizeof(im->path), "memfd");
	} else {
		snprintf(im->path, sizeof(im->path), "%s/fblk-fuzz.%d.%d.img",
			 opt.dir, (int)getpid(), i);
		im->fd = open(im->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	}
	if (im->fd < 0) {
		fprintf(stderr, "fblk-fuzz: %s: %s\n", im->path, strerror(errno));
		free(buf);
		return -1;
	}
	for (off = 0; off < im->size; off += DATA_MAX) {
		size_t len = im->size - off < DATA_MAX ? im->size - off : DATA_MAX;

		pattern_fill(i, off, buf, len);
		if (pwrite(im->fd, buf, len, off) != (ssize_t)len) {
			fprintf(stderr, "fblk-fuzz: writing %s: %s\n", im->path,
				strerror(errno));
			free(buf);
			return -1;
		}
	}
	free(buf);
	fsync(im->fd);
	fstat(im->fd, &sb);
	im->st_dev = sb.st_dev;
	im->st_ino = sb.st_ino;
	return 0;
}

/* ---- the model ---- */

enum bkind { BK_NONE, BK_IMAGE, BK_DEV };

struct mdev {
	bool exists;		/* in the model */
	bool owned;		/* added by us; others are only looked at */
	bool bound;
	bool autoclear;
	bool ro, partscan;
	int nr_hw_queues, queue_depth;
	enum bkind bkind;
	int bidx;		/* image index or device number */
	uint64_t offset, sizelimit, size;
	unsigned int bs;
	struct fblk_params params;	/* as asked (mask: ALL) */
	int held;		/* bound devices whose backing is this one */
	char init_state[16];	/* foreign devices: sysfs state at start */
};

static struct mdev devs[MAX_DEVS];

struct devfd {
	int fd;			/* -1: free slot */
	int dev;
	bool writable;
	bool use_as_backing;	/* handed to a device: the file lives on */
};

static struct devfd devfds[MAX_DEVFDS];

/* Candidate backing fds of kinds other than device nodes. */
enum fdkind {
	FK_IMG_RW, FK_IMG_RO, FK_IMG_WO, FK_IMG_APPEND, FK_IMG_DIRECT,
	FK_IMG_SYNC, FK_IMG_PATH, FK_DIR, FK_PIPE_R, FK_PIPE_W, FK_SOCKET,
	FK_DEVNULL, FK_EVENTFD, FK_CONTROL, FK_CLOSED, NR_FK
};

struct bfd {
	int fd;
	enum fdkind kind;
	int img;
};

#define NR_BFDS 24
static struct bfd bfds[NR_BFDS];
static int ctl_fd = -1;
static void *bad_page;		/* PROT_NONE */
static void *ro_page;		/* PROT_READ */

static int dev_openers(int n)
{
	int i, c = devs[n].held;

	for (i = 0; i < MAX_DEVFDS; i++)
		if (devfds[i].fd >= 0 && devfds[i].dev == n)
			c++;
	return c;
}

static void model_unbind(int n);

/* A device whose last opener went away detaches if autoclear is pending. */
static void model_maybe_release(int n)
{
	if (devs[n].exists && devs[n].bound && devs[n].autoclear &&
	    !dev_openers(n)) {
		st.autoclears++;
		model_unbind(n);
	}
}

static void model_unbind(int n)
{
	struct mdev *d = &devs[n];

	d->bound = false;
	d->autoclear = false;
	d->size = 0;
	if (d->bkind == BK_DEV) {
		int lower = d->bidx;

		devs[lower].held--;
		model_maybe_release(lower);
	}
	d->bkind = BK_NONE;
}

/* ---- device nodes ---- */

static int open_dev_node(int n, int flags)
{
	char path[64];
	int fd, i;

	snprintf(path, sizeof(path), "/dev/" FBLK_DISK_PREFIX "%d", n);
	for (i = 0; i < 50; i++) {
		fd = open(path, flags | O_CLOEXEC);
		/* devtmpfs may lag a moment behind a new disk */
		if (fd >= 0 || errno != ENOENT || !devs[n].exists)
			return fd;
		usleep(10000);
	}
	return fd;
}

static int sysfs_state(int n, char *buf, size_t len)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/" FBLK_DISK_PREFIX "%d/fblk/state", n);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Devices present now, from /sys/block. */
static int list_sys_devices(bool *present)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int count = 0;

	memset(present, 0, sizeof(bool) * FBLK_MAX_SCAN);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char *end;
		long n;

		if (strncmp(e->d_name, FBLK_DISK_PREFIX, 4))
			continue;
		n = strtol(e->d_name + 4, &end, 10);
		if (*end || end == e->d_name + 4 || n < 0 || n >= FBLK_MAX_SCAN)
			continue;
		present[n] = true;
		count++;
	}
	closedir(d);
	return count;
}

/* ---- bad pointers and fds ---- */

static uint8_t *pages;		/* RW page, PROT_NONE page, read-only page */

/* A pointer the kernel must refuse: NULL, wild, unmapped, read-only, torn. */
static void *bad_ptr(void)
{
	switch (below(5)) {
	case 0:
		return NULL;
	case 1:
		return (void *)(uintptr_t)(1 + below(4095));
	case 2:
		return bad_page;
	case 3:
		return ro_page;		/* readable: only copy_to_user fails */
	default:
		return pages + 4096 - 8 - 8 * below(4);	/* runs into PROT_NONE */
	}
}

static int closed_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd >= 0 ? fd : 1000;
}

static int open_bfd(struct bfd *b)
{
	struct image *im;
	int p[2];

	b->img = (int)below(NR_IMAGES);
	im = &images[b->img];
	switch (b->kind) {
	case FK_IMG_RW:
	case FK_IMG_RO:
	case FK_IMG_WO:
	case FK_IMG_APPEND:
	case FK_IMG_DIRECT:
	case FK_IMG_SYNC:
	case FK_IMG_PATH: {
		static const int fl[] = {
			[FK_IMG_RW] = O_RDWR, [FK_IMG_RO] = O_RDONLY,
			[FK_IMG_WO] = O_WRONLY, [FK_IMG_APPEND] = O_RDWR | O_APPEND,
			[FK_IMG_DIRECT] = O_RDWR | O_DIRECT,
			[FK_IMG_SYNC] = O_RDWR | O_SYNC, [FK_IMG_PATH] = O_PATH,
		};
		char path[64];

		if (im->memfd) {
			/* reopen the memfd through /proc, like any file */
			snprintf(path, sizeof(path), "/proc/self/fd/%d", im->fd);
			b->fd = open(path, fl[b->kind] & ~O_DIRECT);
		} else {
			b->fd = open(im->path, fl[b->kind]);
			if (b->fd < 0 && b->kind == FK_IMG_DIRECT)
				b->fd = open(im->path, O_RDWR);	/* tmpfs */
		}
		break;
	}
	case FK_DIR:
		b->fd = open(opt.dir, O_RDONLY | O_DIRECTORY);
		break;
	case FK_PIPE_R:
	case FK_PIPE_W:
		if (pipe(p))
			return -1;
		b->fd = p[b->kind == FK_PIPE_R ? 0 : 1];
		close(p[b->kind == FK_PIPE_R ? 1 : 0]);
		break;
	case FK_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p))
			return -1;
		b->fd = p[0];
		close(p[1]);
		break;
	case FK_DEVNULL:
		b->fd = open("/dev/null", O_RDWR);
		break;
	case FK_EVENTFD:
		b->fd = eventfd(0, 0);
		break;
	case FK_CONTROL:
		b->fd = open(opt.control, O_RDWR);
		break;
	default:
		b->fd = -1;
		break;
	}
	return b->fd;
}

static void reopen_bfd(int i)
{
	if (bfds[i].fd >= 0)
		close(bfds[i].fd);
	bfds[i].kind = (enum fdkind)below(NR_FK);
	if (i < 6)
		bfds[i].kind = FK_IMG_RW;	/* keep usable ones around */
	if (bfds[i].kind == FK_CLOSED)
		bfds[i].fd = -1;
	else if (open_bfd(&bfds[i]) < 0)
		bfds[i].kind = FK_CLOSED;
}

/* ---- picking ---- */

static int pick_devfd(bool owned_only)
{
	int cand[MAX_DEVFDS], n = 0, i;

	for (i = 0; i < MAX_DEVFDS; i++)
		if (devfds[i].fd >= 0 &&
		    (!owned_only || devs[devfds[i].dev].owned))
			cand[n++] = i;
	return n ? cand[below(n)] : -1;
}

static int nr_owned(void)
{
	int i, n = 0;

	for (i = 0; i < MAX_DEVS; i++)
		n += devs[i].exists && devs[i].owned;
	return n;
}

static int pick_owned(void)
{
	int cand[MAX_DEVS], n = 0, i;

	for (i = 0; i < MAX_DEVS; i++)
		if (devs[i].exists && devs[i].owned)
			cand[n++] = i;
	return n ? cand[below(n)] : -1;
}

/* A number in the model's range that no device has. */
static int pick_absent(void)
{
	int i, n;

	for (i = 0; i < 100; i++) {
		n = (int)below(MAX_DEVS);
		if (!devs[n].exists)
			return n;
	}
	return -1;
}

static void model_error(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	report(&st.model, "%s", buf);
}

/* Adopt devices that appeared without our knowing (an add that failed). */
static int adopt_new(void)
{
	static bool present[FBLK_MAX_SCAN];
	int n, found = 0;

	if (list_sys_devices(present) < 0)
		return 0;
	for (n = 0; n < FBLK_MAX_SCAN; n++) {
		if (!present[n] || (n < MAX_DEVS && devs[n].exists))
			continue;
		if (n >= MAX_DEVS) {
			model_error("fblk%d appeared outside the fuzzer's range", n);
			continue;
		}
		memset(&devs[n], 0, sizeof(devs[n]));
		devs[n].exists = devs[n].owned = true;
		found++;
		st.adopted++;
	}
	return found;
}

static void dev_created(int n)
{
	memset(&devs[n], 0, sizeof(devs[n]));
	devs[n].exists = true;
	devs[n].owned = true;
	st.added++;
}

/* ---- checks ---- */

static uint64_t backing_size(enum bkind k, int idx)
{
	struct stat sb;

	if (k == BK_IMAGE) {
		if (fstat(images[idx].fd, &sb))
			return 0;
		return sb.st_size;
	}
	return devs[idx].bound ? devs[idx].size : 0;
}

static uint64_t calc_size(const struct mdev *d)
{
	uint64_t size = backing_size(d->bkind, d->bidx);

	if (d->offset > size)
		return 0;
	size -= d->offset;
	if (d->sizelimit && d->sizelimit < size)
		size = d->sizelimit;
	return size / d->bs * d->bs;
}

static char what[256];

#define SET_WHAT(...) (snprintf(what, sizeof(what), __VA_ARGS__), cur_what = what)

/* GET_INFO (not a fuzz call) against the model; ok is 0 or an errno. */
static int fetch_info(int fd, struct fblk_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, FBLK_GET_INFO, info) ? errno : 0;
}

static void check_info(int n, const struct fblk_info *info)
{
	const struct mdev *d = &devs[n];
	const struct fblk_params *p = &info->params;

	if (info->number != (unsigned int)n || info->state != FBLK_STATE_BOUND)
		model_error("fblk%d: info number %u state %u", n, info->number,
			    info->state);
	if (!!(info->flags & FBLK_FL_READ_ONLY) != d->ro ||
	    !!(info->flags & FBLK_FL_PARTSCAN) != d->partscan ||
	    !!(info->flags & FBLK_FL_AUTOCLEAR) != d->autoclear)
		model_error("fblk%d: info flags %#x, model ro %d partscan %d autoclear %d",
			    n, info->flags, d->ro, d->partscan, d->autoclear);
	if (info->offset != d->offset || info->sizelimit != d->sizelimit ||
	    info->block_size != d->bs || info->size != d->size)
		model_error("fblk%d: info offset %llu sizelimit %llu bs %u size %llu, model %llu %llu %u %llu",
			    n, (unsigned long long)info->offset,
			    (unsigned long long)info->sizelimit, info->block_size,
			    (unsigned long long)info->size,
			    (unsigned long long)d->offset,
			    (unsigned long long)d->sizelimit, d->bs,
			    (unsigned long long)d->size);
	if (d->bkind == BK_IMAGE &&
	    info->backing_inode != (uint64_t)images[d->bidx].st_ino)
		model_error("fblk%d: backing inode %llu, image %s has %llu", n,
			    (unsigned long long)info->backing_inode,
			    images[d->bidx].path,
			    (unsigned long long)images[d->bidx].st_ino);
	if (info->io_mode > FBLK_IO_DONTCACHE ||
	    (p->io_mode != FBLK_IO_AUTO && info->io_mode != p->io_mode) ||
	    !!(info->flags & FBLK_FL_DIRECT_IO) != (info->io_mode == FBLK_IO_DIRECT))
		model_error("fblk%d: io_mode %u asked %u flags %#x", n,
			    info->io_mode, p->io_mode, info->flags);
	if (p->mask != FBLK_PARAM_ALL || p->io_mode != d->params.io_mode ||
	    p->submit != d->params.submit ||
	    p->pool_size != d->params.pool_size ||
	    p->ra_policy != d->params.ra_policy ||
	    p->ra_kb != d->params.ra_kb ||
	    p->inline_depth != d->params.inline_depth)
		model_error("fblk%d: params mask %#x io %u submit %u pool %u ra %u/%u inline %u, model io %u submit %u pool %u ra %u/%u inline %u",
			    n, p->mask, p->io_mode, p->submit, p->pool_size,
			    p->ra_policy, p->ra_kb, p->inline_depth,
			    d->params.io_mode, d->params.submit,
			    d->params.pool_size, d->params.ra_policy,
			    d->params.ra_kb, d->params.inline_depth);
	if (d->nr_hw_queues && (info->nr_hw_queues != (unsigned int)d->nr_hw_queues ||
				info->queue_depth != (unsigned int)d->queue_depth))
		model_error("fblk%d: %u queues x %u, was %d x %d", n,
			    info->nr_hw_queues, info->queue_depth,
			    d->nr_hw_queues, d->queue_depth);
}

/* sysfs and GET_INFO agree with the model for every owned device. */
static void audit(void)
{
	char state[32];
	int n;

	for (n = 0; n < MAX_DEVS; n++) {
		struct mdev *d = &devs[n];
		struct fblk_info info;
		int fd, e;

		if (!d->exists)
			continue;
		if (!d->owned) {
			if (sysfs_state(n, state, sizeof(state)) ||
			    strcmp(state, d->init_state))
				model_error("fblk%d (not ours) changed state: %s -> %s",
					    n, d->init_state, state);
			continue;
		}
		if (sysfs_state(n, state, sizeof(state))) {
			model_error("fblk%d: no sysfs state", n);
			continue;
		}
		if (strcmp(state, d->bound ? "bound" : "unbound"))
			model_error("fblk%d: sysfs state %s, model %s", n, state,
				    d->bound ? "bound" : "unbound");
		fd = open_dev_node(n, O_RDONLY);
		if (fd < 0) {
			model_error("fblk%d: open: %s", n, strerror(errno));
			continue;
		}
		e = fetch_info(fd, &info);
		if (d->bound && e)
			model_error("fblk%d: GET_INFO: %s on a bound device", n,
				    errno_name(e));
		else if (!d->bound && e != ENXIO)
			model_error("fblk%d: GET_INFO: %s on an unbound device", n,
				    errno_name(e));
		else if (d->bound)
			check_info(n, &info);
		close(fd);
		/* our open and close may have been the last: autoclear */
		model_maybe_release(n);
	}
}

/* ---- random values ---- */

static uint32_t rnd_u32_edge(void)
{
	static const uint32_t edges[] = {
		0, 1, 2, 3, 4, 7, 64, 511, 512, 513, 1023, 1024, 1025, 4096,
		65535, 65536, 65537, 0x7fffffff, 0x80000000, 0xfffffffe,
		0xffffffff,
	};

	if (chance(50))
		return edges[below(sizeof(edges) / sizeof(edges[0]))];
	return (uint32_t)rnd();
}

static void rnd_params(struct fblk_params *p)
{
	memset(p, 0, sizeof(*p));
	if (chance(30))
		return;
	p->mask = chance(90) ? (uint32_t)below(FBLK_PARAM_ALL + 1) :
			       rnd_u32_edge();
	p->io_mode = chance(90) ? (uint32_t)below(4) : rnd_u32_edge();
	p->submit = chance(90) ? (uint32_t)below(2) : rnd_u32_edge();
	p->pool_size = chance(85) ? 1 + (uint32_t)below(FBLK_MAX_POOL_SIZE) :
				    rnd_u32_edge();
	p->ra_policy = chance(90) ? (uint32_t)below(4) : rnd_u32_edge();
	p->ra_kb = chance(85) ? (uint32_t)below(FBLK_MAX_RA_KB + 1) :
				rnd_u32_edge();
	p->inline_depth = chance(85) ? (uint32_t)below(FBLK_MAX_QUEUE_DEPTH + 1) :
				       rnd_u32_edge();
	if (chance(4))
		p->reserved32 = rnd_u32_edge() | 1;
	if (chance(4))
		p->reserved[below(4)] = rnd() | 1;
}

static bool params_valid(const struct fblk_params *p)
{
	if (p->mask & ~FBLK_PARAM_ALL || p->reserved32 || p->reserved[0] ||
	    p->reserved[1] || p->reserved[2] || p->reserved[3])
		return false;
	if ((p->mask & FBLK_PARAM_IO_MODE) && p->io_mode > FBLK_IO_AUTO)
		return false;
	if ((p->mask & FBLK_PARAM_SUBMIT) && p->submit > FBLK_SUBMIT_THREADS)
		return false;
	if ((p->mask & FBLK_PARAM_POOL_SIZE) &&
	    (!p->pool_size || p->pool_size > FBLK_MAX_POOL_SIZE))
		return false;
	if ((p->mask & FBLK_PARAM_RA_POLICY) && p->ra_policy > FBLK_RA_OFF)
		return false;
	if ((p->mask & FBLK_PARAM_RA_KB) && p->ra_kb > FBLK_MAX_RA_KB)
		return false;
	if ((p->mask & FBLK_PARAM_INLINE_DEPTH) &&
	    p->inline_depth > FBLK_MAX_QUEUE_DEPTH)
		return false;
	return true;
}

static void params_apply(struct fblk_params *m, const struct fblk_params *p)
{
	if (p->mask & FBLK_PARAM_IO_MODE)
		m->io_mode = p->io_mode;
	if (p->mask & FBLK_PARAM_SUBMIT)
		m->submit = p->submit;
	if (p->mask & FBLK_PARAM_POOL_SIZE)
		m->pool_size = p->pool_size;
	if (p->mask & FBLK_PARAM_RA_POLICY)
		m->ra_policy = p->ra_policy;
	if (p->mask & FBLK_PARAM_RA_KB)
		m->ra_kb = p->ra_kb;
	if (p->mask & FBLK_PARAM_INLINE_DEPTH)
		m->inline_depth = p->inline_depth;
}

/* io modes whose outcome depends on the backing file and kernel */
static bool mode_uncertain(unsigned int mode)
{
	return mode == FBLK_IO_DIRECT || mode == FBLK_IO_DONTCACHE;
}

/* ---- the operations ---- */

static void op_open(void)
{
	int slot, n, fd, flags, e, i;
	bool foreign = false;

	for (slot = 0; slot < MAX_DEVFDS && devfds[slot].fd >= 0; slot++)
		;
	if (slot == MAX_DEVFDS)
		return;
	n = pick_owned();
	if (chance(10) || n < 0) {
		/* one that is not ours (looked at only), or none */
		for (i = 0, n = -1; i < MAX_DEVS; i++)
			if (devs[i].exists && !devs[i].owned && chance(50)) {
				n = i;
				foreign = true;
				break;
			}
	}
	if (n < 0 || chance(10)) {
		n = pick_absent();
		foreign = false;
		if (n < 0)
			return;
	}
	flags = chance(50) || foreign ? O_RDONLY : O_RDWR;
	if (chance(5))
		flags |= O_NONBLOCK;
	SET_WHAT("open fblk%d %s", n, flags & O_RDWR ? "rw" : "ro");
	fd = open_dev_node(n, flags);
	e = account(OP_OPEN, fd);
	if (!devs[n].exists) {
		if (!e) {
			model_error("opened fblk%d, which should not exist", n);
			close(fd);
		} else if (e != ENOENT && e != ENXIO) {
			model_error("open of an absent device: %s", errno_name(e));
		}
		return;
	}
	if (e) {
		if (devs[n].owned &&
		    !(e == EROFS && devs[n].bound && devs[n].ro && (flags & O_RDWR)))
			model_error("open fblk%d: %s (bound %d ro %d)", n,
				    errno_name(e), devs[n].bound, devs[n].ro);
		return;
	}
	if (devs[n].owned && devs[n].bound && devs[n].ro && (flags & O_RDWR))
		model_error("fblk%d is read-only but opened for writing", n);
	devfds[slot].fd = fd;
	devfds[slot].dev = n;
	devfds[slot].writable = flags & O_RDWR;
	devfds[slot].use_as_backing = false;
}

static void op_close(void)
{
	int s = pick_devfd(false), n;

	if (s < 0)
		return;
	n = devfds[s].dev;
	SET_WHAT("close fd of fblk%d", n);
	account(OP_CLOSE, close(devfds[s].fd));
	devfds[s].fd = -1;
	if (devs[n].owned)
		model_maybe_release(n);
}

static void op_add(void)
{
	struct fblk_ctl_add *req = (struct fblk_ctl_add *)(pages + 1024);
	void *arg = req;
	bool valid = true, bad = false;
	int want, ret, e, created;

	memset(req, 0, sizeof(*req));
	switch (below(10)) {
	case 0: case 1:
		want = (int)below(MAX_DEVS);
		break;
	case 2:
		want = chance(50) ? -2 - (int)below(1000) : FBLK_MAX_SCAN + (int)below(1 << 20);
		valid = false;
		break;
	default:
		want = -1;
	}
	req->id = want;
	if (chance(80))
		req->nr_hw_queues = 0;
	else if (chance(70))
		req->nr_hw_queues = 1 + below(4);
	else
		req->nr_hw_queues = rnd_u32_edge();
	if (chance(70))
		req->queue_depth = 0;
	else if (chance(70))
		req->queue_depth = 1 + below(256);
	else
		req->queue_depth = rnd_u32_edge() % 4096;
	if (req->nr_hw_queues > FBLK_MAX_HW_QUEUES ||
	    req->queue_depth > FBLK_MAX_QUEUE_DEPTH)
		valid = false;
	if (chance(5)) {
		req->flags = 1u << below(32);
		valid = false;
	}
	if (chance(5)) {
		req->reserved[below(6)] = rnd() | 1;
		valid = false;
	}
	/* keep the number of devices bounded: only failing adds past it */
	if (nr_owned() >= (int)opt.max_devices && valid) {
		req->flags = 1;
		valid = false;
	}
	if (chance(8)) {
		arg = bad_ptr();
		bad = true;
		/* the read-only page asks for the first free id */
	}
	SET_WHAT("ctl_add id %d queues %u depth %u flags %#x%s", want,
		 req->nr_hw_queues, req->queue_depth, req->flags,
		 bad ? " bad pointer" : "");
	ret = ioctl(ctl_fd, FBLK_CTL_ADD, arg);
	e = account(OP_ADD, ret);
	if (!e) {
		if (bad) {
			model_error("ctl_add succeeded with a bad pointer");
			return;
		}
		if (ret < 0 || ret >= MAX_DEVS || devs[ret].exists ||
		    req->id != ret || (want >= 0 && ret != want)) {
			model_error("ctl_add returned %d (id %d, asked %d)", ret,
				    req->id, want);
			if (ret >= 0 && ret < MAX_DEVS && !devs[ret].exists)
				dev_created(ret);
			return;
		}
		dev_created(ret);
		devs[ret].nr_hw_queues = 0;	/* learnt at the first GET_INFO */
		return;
	}
	created = adopt_new();
	if (created && !(e == EFAULT && arg == ro_page))
		model_error("a failed ctl_add (%s) left %d device(s)",
			    errno_name(e), created);
	if (bad)
		return;
	if (!valid && e != EINVAL)
		model_error("invalid ctl_add: %s, not EINVAL", errno_name(e));
	if (valid && want >= 0 && devs[want].exists && e != EEXIST)
		model_error("ctl_add of existing fblk%d: %s, not EEXIST", want,
			    errno_name(e));
	if (valid && (want < 0 || !devs[want].exists) && e != ENOMEM)
		model_error("valid ctl_add failed: %s", errno_name(e));
}

static void op_remove(void)
{
	unsigned long arg;
	int n = -1, e, kind = (int)below(10);

	if (kind < 6) {
		n = pick_owned();
		if (n < 0)
			kind = 6;
		arg = n;
	}
	if (kind >= 6 && kind < 8) {
		n = pick_absent();
		if (n < 0)
			return;
		arg = n;
	} else if (kind == 8) {
		arg = (unsigned long)INT_MAX + 1 + below(1000);
		n = -2;
	} else if (kind == 9) {
		arg = chance(50) ? (unsigned long)-1 : FBLK_MAX_SCAN + below(1 << 20);
		n = arg > INT_MAX ? -2 : -3;
	}
	SET_WHAT("ctl_remove %ld", (long)arg);
	e = account(OP_REMOVE, ioctl(ctl_fd, FBLK_CTL_REMOVE, arg));
	if (n == -2) {
		if (e != EINVAL)
			model_error("remove of %lu: %s, not EINVAL", arg, errno_name(e));
		return;
	}
	if (n == -3 || !devs[n].exists) {
		if (e != ENODEV)
			model_error("remove of absent %lu: %s, not ENODEV", arg,
				    errno_name(e));
		return;
	}
	if (devs[n].bound || dev_openers(n)) {
		if (e != EBUSY)
			model_error("remove of fblk%d (bound %d, openers %d): %s, not EBUSY",
				    n, devs[n].bound, dev_openers(n), errno_name(e));
		if (!e)
			devs[n].exists = false;
		return;
	}
	if (e) {
		model_error("remove of idle fblk%d: %s", n, errno_name(e));
		return;
	}
	devs[n].exists = false;
	st.removed++;
}

static void op_get_free(void)
{
	int ret, e, n;
	bool any_free = false;

	if (nr_owned() >= (int)opt.max_devices + 2)
		return;
	SET_WHAT("ctl_get_free");
	ret = ioctl(ctl_fd, FBLK_CTL_GET_FREE, rnd());
	e = account(OP_GET_FREE, ret);
	if (e) {
		if (adopt_new())
			model_error("a failed get_free left a device");
		return;
	}
	for (n = 0; n < ret && n < MAX_DEVS; n++)
		if (devs[n].exists && devs[n].owned && !devs[n].bound)
			any_free = true;
	if (any_free)
		model_error("get_free returned %d, a higher number than an unbound device", ret);
	if (ret < MAX_DEVS && devs[ret].exists) {
		if (devs[ret].owned && devs[ret].bound)
			model_error("get_free returned bound fblk%d", ret);
		return;
	}
	if (ret >= MAX_DEVS) {
		model_error("get_free made fblk%d, out of range", ret);
		return;
	}
	dev_created(ret);
}

/* Would configuring fblk@n onto device @lower close a cycle? */
static bool makes_cycle(int n, int lower)
{
	int depth;

	for (depth = 0; depth < MAX_DEVS; depth++) {
		if (lower == n)
			return true;
		if (lower < 0 || lower >= MAX_DEVS || !devs[lower].bound ||
		    devs[lower].bkind != BK_DEV)
			return false;
		lower = devs[lower].bidx;
	}
	return false;
}

static void op_configure(void)
{
	struct fblk_config *cfg = (struct fblk_config *)(pages + 2048);
	int s = pick_devfd(true), n, e, bslot = -1, lower = -1, fd_err = 0;
	bool bwritable = false, bad = false, cfg_ok = true, certain;
	enum bkind bkind = BK_NONE;
	int bidx = -1, c;
	unsigned int asked;
	void *arg = cfg;
	uint64_t bsize = 0;

	if (s < 0)
		return;
	n = devfds[s].dev;
	memset(cfg, 0, sizeof(*cfg));

	/* the backing fd */
	c = (int)below(100);
	if (c < 20) {
		bslot = (int)below(6);	/* plain read-write images */
	} else if (c < 75) {
		bslot = (int)below(NR_BFDS);
	} else if (c < 90) {
		int ds = pick_devfd(false);

		if (ds < 0) {
			bslot = 0;
		} else {
			cfg->fd = devfds[ds].fd;
			lower = devfds[ds].dev;
			bwritable = devfds[ds].writable;
			bkind = BK_DEV;
			bidx = lower;
		}
	} else {
		static const uint32_t wild[] = { 0xffffffff, 0x7fffffff, 4096, 100000 };

		cfg->fd = chance(50) ? (uint32_t)closed_fd() : wild[below(4)];
		fd_err = EBADF;
	}
	if (bslot >= 0) {
		struct bfd *b = &bfds[bslot];

		cfg->fd = b->fd < 0 ? (uint32_t)closed_fd() : (uint32_t)b->fd;
		switch (b->kind) {
		case FK_IMG_RW: case FK_IMG_APPEND: case FK_IMG_DIRECT:
		case FK_IMG_SYNC:
			bwritable = true;
			/* fall through */
		case FK_IMG_RO:
			bkind = BK_IMAGE;
			bidx = b->img;
			break;
		case FK_IMG_WO: case FK_IMG_PATH: case FK_PIPE_W: case FK_CLOSED:
			fd_err = EBADF;
			break;
		case FK_DIR:
			fd_err = EISDIR;
			break;
		default:
			fd_err = EINVAL;
		}
		if (b->fd < 0)
			fd_err = EBADF;
	}

	/* sizes and flags */
	c = (int)below(10);
	if (c < 5)
		cfg->block_size = 0;
	else if (c < 8)
		cfg->block_size = 512u << below(4);
	else
		cfg->block_size = rnd_u32_edge();
	if (cfg->block_size && (cfg->block_size < FBLK_MIN_BLOCK_SIZE ||
				cfg->block_size > FBLK_MAX_BLOCK_SIZE ||
				(cfg->block_size & (cfg->block_size - 1))))
		cfg_ok = false;
	bsize = bkind == BK_IMAGE ? backing_size(BK_IMAGE, bidx) : 4 << 20;
	c = (int)below(20);
	if (c < 10)
		cfg->offset = 0;
	else if (c < 17)
		cfg->offset = below(bsize / 512 + 2) * 512;
	else
		cfg->offset = chance(50) ? rnd() : below(bsize + 1);
	c = (int)below(20);
	if (c < 10)
		cfg->sizelimit = 0;
	else if (c < 17)
		cfg->sizelimit = below(bsize / 512 + 2) * 512;
	else
		cfg->sizelimit = chance(50) ? rnd() : below(bsize + 1);
	if (cfg->offset % 512 || cfg->sizelimit % 512 ||
	    cfg->offset > LLONG_MAX || cfg->sizelimit > LLONG_MAX)
		cfg_ok = false;
	cfg->flags = 0;
	if (chance(20))
		cfg->flags |= FBLK_FL_READ_ONLY;
	if (chance(20))
		cfg->flags |= FBLK_FL_AUTOCLEAR;
	if (chance(20))
		cfg->flags |= FBLK_FL_PARTSCAN;
	if (chance(15))
		cfg->flags |= FBLK_FL_DIRECT_IO;
	if (chance(4)) {
		cfg->flags |= 1u << (4 + below(28));
		cfg_ok = false;
	}
	if (chance(3)) {
		cfg->__pad = rnd_u32_edge() | 1;
		cfg_ok = false;
	}
	rnd_params(&cfg->params);
	if (!params_valid(&cfg->params))
		cfg_ok = false;
	if ((cfg->flags & FBLK_FL_DIRECT_IO) &&
	    (cfg->params.mask & FBLK_PARAM_IO_MODE) &&
	    cfg->params.io_mode != FBLK_IO_DIRECT)
		cfg_ok = false;
	if (chance(5)) {
		arg = bad_ptr();
		bad = true;
	}
	asked = cfg->flags & FBLK_FL_DIRECT_IO ? FBLK_IO_DIRECT :
		cfg->params.mask & FBLK_PARAM_IO_MODE ? cfg->params.io_mode :
		FBLK_IO_BUFFERED;

	SET_WHAT("configure fblk%d fd %u (%s) bs %u offset %llu sizelimit %llu flags %#x params mask %#x io %u%s",
		 n, cfg->fd, bkind == BK_IMAGE ? images[bidx].path :
		 bkind == BK_DEV ? "an fblk device" : "not a file",
		 cfg->block_size, (unsigned long long)cfg->offset,
		 (unsigned long long)cfg->sizelimit, cfg->flags,
		 cfg->params.mask, cfg->params.io_mode, bad ? " bad pointer" : "");
	e = account(OP_CONFIGURE, ioctl(devfds[s].fd, FBLK_CONFIGURE, arg));

	if (bad) {
		if (!e)
			model_error("configure succeeded with a bad pointer");
		if (!e)
			goto bound;	/* keep the model right anyway */
		return;
	}
	if (!cfg_ok) {
		if (e != EINVAL)
			model_error("invalid configure: %s, not EINVAL", errno_name(e));
		return;
	}
	if (fd_err) {
		if (e != fd_err)
			model_error("configure with a bad fd: %s, not %s",
				    errno_name(e), errno_name(fd_err));
		return;
	}
	if (devs[n].bound) {
		if (e != EBUSY)
			model_error("configure of bound fblk%d: %s, not EBUSY", n,
				    errno_name(e));
		return;
	}
	if (bkind == BK_DEV && makes_cycle(n, lower)) {
		if (e != ELOOP)
			model_error("configure fblk%d onto fblk%d (a cycle): %s, not ELOOP",
				    n, lower, errno_name(e));
		return;
	}
	if (bkind == BK_DEV && !devs[lower].owned &&
	    strcmp(devs[lower].init_state, "unbound"))
		certain = false;	/* size unknown */
	else
		certain = !mode_uncertain(asked);
	if (certain && cfg->offset > backing_size(bkind, bidx)) {
		if (e != EINVAL)
			model_error("configure with offset %llu past the end (%llu): %s, not EINVAL",
				    (unsigned long long)cfg->offset,
				    (unsigned long long)backing_size(bkind, bidx),
				    errno_name(e));
		return;
	}
	if (e) {
		/*
		 * A writable fd on a lower fblk device that has become
		 * read-only since: its clones cannot be opened for writing.
		 */
		bool lower_ro = bkind == BK_DEV && devs[lower].ro && bwritable;

		if (certain && e != ENOMEM && !(e == EROFS && lower_ro))
			model_error("valid configure of fblk%d failed: %s", n,
				    errno_name(e));
		return;
	}
bound:
	{
		struct mdev *d = &devs[n];
		struct fblk_info info;
		struct fblk_params def = { 0 };

		st.configured++;
		d->bound = true;
		d->autoclear = cfg->flags & FBLK_FL_AUTOCLEAR;
		d->partscan = cfg->flags & FBLK_FL_PARTSCAN;
		d->ro = (cfg->flags & FBLK_FL_READ_ONLY) || !bwritable ||
			!devfds[s].writable;
		d->bkind = bkind;
		d->bidx = bidx;
		d->offset = cfg->offset;
		d->sizelimit = cfg->sizelimit;
		if (bkind == BK_DEV)
			devs[lower].held++;
		e = fetch_info(devfds[s].fd, &info);
		if (e) {
			model_error("GET_INFO after configure: %s", errno_name(e));
			return;
		}
		/*
		 * Block size 0 is 512, but a device that starts in direct or
		 * auto mode takes the backing's logical block size.
		 */
		d->bs = cfg->block_size ? cfg->block_size : 512;
		if (!cfg->block_size &&
		    (asked == FBLK_IO_DIRECT || asked == FBLK_IO_AUTO))
			d->bs = info.block_size;
		d->size = calc_size(d);
		/* defaults the model cannot know: the module's parameters */
		def.mask = FBLK_PARAM_ALL;
		def.pool_size = info.params.pool_size;
		def.inline_depth = info.params.inline_depth;
		def.io_mode = asked;
		params_apply(&def, &cfg->params);
		def.io_mode = asked;
		d->params = def;
		if (!d->nr_hw_queues) {
			d->nr_hw_queues = info.nr_hw_queues;
			d->queue_depth = info.queue_depth;
		}
		check_info(n, &info);
	}
}

static void op_detach(void)
{
	int s = pick_devfd(true), n, e, openers;

	if (s < 0)
		return;
	n = devfds[s].dev;
	SET_WHAT("detach fblk%d", n);
	e = account(OP_DETACH, ioctl(devfds[s].fd, FBLK_DETACH, rnd()));
	if (!devs[n].bound) {
		if (e != ENXIO)
			model_error("detach of unbound fblk%d: %s, not ENXIO", n,
				    errno_name(e));
		return;
	}
	if (e) {
		model_error("detach of bound fblk%d: %s", n, errno_name(e));
		return;
	}
	openers = dev_openers(n);
	if (openers > 1) {
		devs[n].autoclear = true;	/* at the last close */
	} else {
		st.detached++;
		model_unbind(n);
	}
}

static void op_get_info(void)
{
	struct fblk_info *info = (struct fblk_info *)(pages + 4096 * 3);
	int s = pick_devfd(false), n, e;
	void *arg = info;
	bool bad = false;

	if (s < 0)
		return;
	n = devfds[s].dev;
	if (chance(8)) {
		arg = bad_ptr();
		bad = true;
	}
	memset(info, 0xa5, sizeof(*info));
	SET_WHAT("get_info fblk%d%s", n, bad ? " bad pointer" : "");
	e = account(OP_GET_INFO, ioctl(devfds[s].fd, FBLK_GET_INFO, arg));
	if (!devs[n].owned)
		return;
	if (!devs[n].bound) {
		if (e != ENXIO)
			model_error("get_info of unbound fblk%d: %s, not ENXIO", n,
				    errno_name(e));
		return;
	}
	if (bad) {
		if (e != EFAULT)
			model_error("get_info with a bad pointer: %s, not EFAULT",
				    errno_name(e));
		return;
	}
	if (e)
		model_error("get_info of bound fblk%d: %s", n, errno_name(e));
	else
		check_info(n, info);
}

static void op_set_capacity(void)
{
	int s = pick_devfd(true), n, e;

	if (s < 0)
		return;
	n = devfds[s].dev;
	SET_WHAT("set_capacity fblk%d", n);
	e = account(OP_SET_CAPACITY, ioctl(devfds[s].fd, FBLK_SET_CAPACITY, rnd()));
	if (!devs[n].bound) {
		if (e != ENXIO)
			model_error("set_capacity of unbound fblk%d: %s", n,
				    errno_name(e));
		return;
	}
	if (e)
		model_error("set_capacity of bound fblk%d: %s", n, errno_name(e));
	else
		devs[n].size = calc_size(&devs[n]);
}

static void op_set_params(void)
{
	struct fblk_params *p = (struct fblk_params *)(pages + 4096 * 3 + 2048);
	int s = pick_devfd(true), n, e;
	unsigned int asked;
	void *arg = p;
	bool bad = false;

	if (s < 0)
		return;
	n = devfds[s].dev;
	rnd_params(p);
	if (chance(5)) {
		arg = bad_ptr();
		bad = true;
	}
	SET_WHAT("set_params fblk%d mask %#x io %u submit %u pool %u ra %u/%u inline %u%s",
		 n, p->mask, p->io_mode, p->submit, p->pool_size, p->ra_policy,
		 p->ra_kb, p->inline_depth, bad ? " bad pointer" : "");
	e = account(OP_SET_PARAMS, ioctl(devfds[s].fd, FBLK_SET_PARAMS, arg));
	if (bad) {
		if (!e)
			model_error("set_params succeeded with a bad pointer");
		return;	/* the read-only page may hold valid params: rare */
	}
	if (!params_valid(p)) {
		if (e != EINVAL)
			model_error("invalid set_params: %s, not EINVAL", errno_name(e));
		return;
	}
	if (!devs[n].bound) {
		if (e != ENXIO)
			model_error("set_params of unbound fblk%d: %s, not ENXIO", n,
				    errno_name(e));
		return;
	}
	asked = p->mask & FBLK_PARAM_IO_MODE ? p->io_mode : devs[n].params.io_mode;
	if (e) {
		if (!mode_uncertain(asked) && e != ENOMEM)
			model_error("valid set_params of fblk%d failed: %s", n,
				    errno_name(e));
		return;
	}
	params_apply(&devs[n].params, p);
}

/* Is @cmd one the node (a device when @on_dev, else control) knows? */
static bool fblk_cmd_valid(unsigned long cmd, bool on_dev)
{
	switch (cmd) {
	case FBLK_CONFIGURE: case FBLK_DETACH: case FBLK_GET_INFO:
	case FBLK_SET_CAPACITY: case FBLK_SET_PARAMS:
		return on_dev;
	case FBLK_CTL_ADD: case FBLK_CTL_REMOVE: case FBLK_CTL_GET_FREE:
		return !on_dev;
	}
	return false;
}

/*
 * Command types the VFS or the block layer act on for any file or block
 * device (FIFREEZE would freeze devtmpfs, BLKROSET changes the disk):
 * random commands of these types are not sent.
 */
static bool type_denied(unsigned int type)
{
	static const unsigned char denied[] = {
		0x00, 0x03, 0x12, 0x15, 0x22, 0x4c, 0x53, 0x54, 0x58, 0x66,
		0x70, 0x76, 0x94,
	};
	size_t i;

	for (i = 0; i < sizeof(denied); i++)
		if (denied[i] == type)
			return true;
	return false;
}

static void op_bad_cmd(void)
{
	static const unsigned long dev_cmds[] = {
		FBLK_CONFIGURE, FBLK_DETACH, FBLK_GET_INFO, FBLK_SET_CAPACITY,
		FBLK_SET_PARAMS,
	};
	static const unsigned long ctl_cmds[] = {
		FBLK_CTL_ADD, FBLK_CTL_REMOVE, FBLK_CTL_GET_FREE,
	};
	int s = chance(50) ? pick_devfd(false) : -1, fd = s < 0 ? ctl_fd : devfds[s].fd;
	unsigned long cmd, arg;
	bool ours = true;	/* an fblk-type command: must be ENOTTY */
	int e;

	switch (below(4)) {
	case 0:	/* the other node's commands */
		cmd = s < 0 ? dev_cmds[below(5)] : ctl_cmds[below(3)];
		break;
	case 1: {	/* a real command with another size or direction */
		unsigned long base = chance(50) ? dev_cmds[below(5)] : ctl_cmds[below(3)];

		cmd = (base & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT)) |
		      ((below(1 << 14)) << _IOC_SIZESHIFT);
		if (chance(50))
			cmd ^= (unsigned long)(1 + below(3)) << _IOC_DIRSHIFT;
		break;
	}
	case 2:	/* an unknown number of ours */
		cmd = _IOC(below(4), FBLK_IOCTL_MAGIC, below(256), below(1 << 14));
		break;
	default:	/* anything else */
		do {
			cmd = (uint32_t)rnd();
		} while (type_denied(_IOC_TYPE(cmd)));
		ours = _IOC_TYPE(cmd) == FBLK_IOCTL_MAGIC;
	}
	if (fblk_cmd_valid(cmd, s >= 0))
		return;
	arg = chance(50) ? (unsigned long)(pages + 1024) : (unsigned long)bad_ptr();
	SET_WHAT("cmd %#lx on %s", cmd, s < 0 ? "the control node" : "a device");
	e = account(OP_BAD_CMD, ioctl(fd, cmd, arg));
	if (ours && e != ENOTTY)
		model_error("unknown command %#lx: %s, not ENOTTY", cmd, errno_name(e));
}

/*
 * Where byte @pos of fblk@n lives: the image and its offset, if every level
 * of the chain has [pos, pos + len) inside its current size.
 */
static int locate(int n, uint64_t pos, uint64_t len, uint64_t *img_off)
{
	int depth;

	for (depth = 0; depth < MAX_DEVS; depth++) {
		const struct mdev *d = &devs[n];

		if (!d->exists || !d->owned || !d->bound || pos + len > d->size)
			return -1;
		pos += d->offset;
		if (d->bkind == BK_IMAGE) {
			*img_off = pos;
			return d->bidx;
		}
		if (d->bkind != BK_DEV)
			return -1;
		n = d->bidx;
	}
	return -1;
}

static uint8_t data_buf[DATA_MAX], want_buf[DATA_MAX];

static void op_read(void)
{
	int s = pick_devfd(false), n, e, img;
	uint64_t pos = 0, len = 4096, img_off;
	ssize_t ret;

	if (s < 0)
		return;
	n = devfds[s].dev;
	if (devs[n].owned && devs[n].size) {
		pos = below(devs[n].size / 512) * 512;
		len = 512 * (1 + below(DATA_MAX / 512));
		if (len > devs[n].size - pos)
			len = devs[n].size - pos;
	}
	SET_WHAT("read fblk%d %llu+%llu", n, (unsigned long long)pos,
		 (unsigned long long)len);
	ret = pread(devfds[s].fd, data_buf, len, pos);
	e = account(OP_READ, ret);
	if (!devs[n].owned)
		return;
	if (!devs[n].size) {
		if (ret != 0)
			model_error("read of fblk%d (size 0) returned %zd (%s)", n,
				    ret, e ? errno_name(e) : "");
		return;
	}
	if (ret != (ssize_t)len) {
		model_error("read of fblk%d returned %zd (%s), not %llu", n, ret,
			    e ? errno_name(e) : "short", (unsigned long long)len);
		return;
	}
	img = locate(n, pos, len, &img_off);
	if (img < 0)
		return;
	pattern_fill(img, img_off, want_buf, len);
	if (memcmp(data_buf, want_buf, len)) {
		uint64_t i = 0;

		while (data_buf[i] == want_buf[i])
			i++;
		report(&st.data, "fblk%d: bytes at %llu differ from %s at %llu (first at +%llu)",
		       n, (unsigned long long)pos, images[img].path,
		       (unsigned long long)img_off, (unsigned long long)i);
	}
}

/* Rewrite what is there: the write path runs, the image stays the same. */
static void op_write(void)
{
	int s = pick_devfd(true), n, e, img;
	uint64_t pos, len, img_off;
	ssize_t ret;

	if (s < 0 || !devfds[s].writable)
		return;
	n = devfds[s].dev;
	if (!devs[n].bound || devs[n].bkind != BK_IMAGE || !devs[n].size)
		return;
	pos = below(devs[n].size / 512) * 512;
	len = 512 * (1 + below(DATA_MAX / 512));
	if (len > devs[n].size - pos)
		len = devs[n].size - pos;
	img = locate(n, pos, len, &img_off);
	if (img < 0)
		return;
	pattern_fill(img, img_off, data_buf, len);
	SET_WHAT("write fblk%d %llu+%llu%s", n, (unsigned long long)pos,
		 (unsigned long long)len, devs[n].ro ? " (read-only)" : "");
	ret = pwrite(devfds[s].fd, data_buf, len, pos);
	e = account(OP_WRITE, ret);
	if (devs[n].ro) {
		if (e != EPERM && e != EROFS)
			model_error("write to read-only fblk%d: %zd %s", n, ret,
				    e ? errno_name(e) : "");
	} else if (ret != (ssize_t)len) {
		model_error("write to fblk%d returned %zd (%s)", n, ret,
			    e ? errno_name(e) : "short");
	}
}

/*
 * A flush reaches the bottom of a chain of fblk devices: it fails (EIO, as
 * loop's does) when a device on the way is unbound, else it succeeds.
 */
static bool flush_hits_unbound(int n)
{
	int depth;

	for (depth = 0; depth < MAX_DEVS; depth++) {
		if (!devs[n].bound)
			return true;
		if (devs[n].bkind != BK_DEV)
			return false;
		n = devs[n].bidx;
	}
	return false;
}

static void op_fsync(void)
{
	int s = pick_devfd(true), n, e;
	bool unbound;

	if (s < 0)
		return;
	n = devfds[s].dev;
	unbound = flush_hits_unbound(n);
	if (opt.skip_unbound_flush && unbound)
		return;
	SET_WHAT("fsync fblk%d (%s)", n, devs[n].bound ? "bound" : "unbound");
	if (unbound) {
		if (account_failure(OP_FSYNC, fsync(devfds[s].fd), EIO))
			model_error("fsync of fblk%d over an unbound device did not fail with EIO", n);
		return;
	}
	e = account(OP_FSYNC, fsync(devfds[s].fd));
	if (e)
		model_error("fsync of fblk%d: %s", n, errno_name(e));
}

static void op_blkquery(void)
{
	int s = pick_devfd(true), n, ro = -1, ssz = -1;
	uint64_t size = 1;

	if (s < 0)
		return;
	n = devfds[s].dev;
	SET_WHAT("BLKGETSIZE64/BLKSSZGET/BLKROGET fblk%d", n);
	if (account(OP_BLKQUERY, ioctl(devfds[s].fd, BLKGETSIZE64, &size)) ||
	    account(OP_BLKQUERY, ioctl(devfds[s].fd, BLKSSZGET, &ssz)) ||
	    account(OP_BLKQUERY, ioctl(devfds[s].fd, BLKROGET, &ro))) {
		model_error("block ioctls on fblk%d failed", n);
		return;
	}
	if (size != devs[n].size ||
	    (devs[n].bound && ((unsigned int)ssz != devs[n].bs || ro != devs[n].ro)) ||
	    (!devs[n].bound && ro))
		model_error("fblk%d: size %llu block %d ro %d; model size %llu block %u ro %d bound %d",
			    n, (unsigned long long)size, ssz, ro,
			    (unsigned long long)devs[n].size, devs[n].bs,
			    devs[n].ro, devs[n].bound);
}

static void op_rrpart(void)
{
	int s = pick_devfd(true), n, e;

	if (s < 0)
		return;
	n = devfds[s].dev;
	SET_WHAT("BLKRRPART fblk%d", n);
	e = account(OP_RRPART, ioctl(devfds[s].fd, BLKRRPART, 0));
	if (!(devs[n].bound && devs[n].partscan)) {
		if (e != EINVAL)
			model_error("BLKRRPART without partscan: %s, not EINVAL",
				    errno_name(e));
	} else if (e && e != EBUSY &&
		   !(e == EROFS && devs[n].ro && devfds[s].writable)) {
		/* the scan opens the disk with our fd's mode: a write open */
		model_error("BLKRRPART of fblk%d: %s", n, errno_name(e));
	}
}

static void op_reopen(void)
{
	int i = (int)below(NR_BFDS);

	SET_WHAT("reopen backing candidate %d", i);
	reopen_bfd(i);
	account(OP_REOPEN, 0);
}

/* ---- run and clean up ---- */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(void)
{
	static void (*const fns[NR_OPS])(void) = {
		[OP_OPEN] = op_open, [OP_CLOSE] = op_close, [OP_ADD] = op_add,
		[OP_REMOVE] = op_remove, [OP_GET_FREE] = op_get_free,
		[OP_CONFIGURE] = op_configure, [OP_DETACH] = op_detach,
		[OP_GET_INFO] = op_get_info, [OP_SET_CAPACITY] = op_set_capacity,
		[OP_SET_PARAMS] = op_set_params, [OP_BAD_CMD] = op_bad_cmd,
		[OP_READ] = op_read, [OP_WRITE] = op_write, [OP_FSYNC] = op_fsync,
		[OP_BLKQUERY] = op_blkquery, [OP_RRPART] = op_rrpart,
		[OP_REOPEN] = op_reopen,
	};
	unsigned int total = 0, r, i;
	unsigned long last_audit = 0;
	double end = opt.seconds > 0 ? now() + opt.seconds : 0;

	for (i = 0; i < NR_OPS; i++)
		total += op_weight[i];
	while (!stop && st.calls < opt.calls) {
		r = (unsigned int)below(total);
		for (i = 0; r >= op_weight[i]; i++)
			r -= op_weight[i];
		fns[i]();
		if (st.calls - last_audit >= 1000) {
			last_audit = st.calls;
			audit();
			if (end && now() > end)
				break;
		}
	}
}

/* Detach and remove everything we own; returns devices left bound. */
static void cleanup(void)
{
	static bool present[FBLK_MAX_SCAN];
	int i, n, round, e, fd;
	bool any;

	cur_what = "cleanup";
	for (i = 0; i < MAX_DEVFDS; i++) {
		if (devfds[i].fd < 0)
			continue;
		close(devfds[i].fd);
		devfds[i].fd = -1;
		if (devs[devfds[i].dev].owned)
			model_maybe_release(devfds[i].dev);
	}
	audit();
	/* Upper devices first: a held device only detaches when let go. */
	for (round = 0; round < MAX_DEVS; round++) {
		any = false;
		for (n = 0; n < MAX_DEVS; n++) {
			if (!devs[n].exists || !devs[n].owned || !devs[n].bound ||
			    devs[n].held)
				continue;
			any = true;
			fd = open_dev_node(n, O_RDONLY);
			if (fd < 0 || ioctl(fd, FBLK_DETACH, 0)) {
				report(&st.leftover, "cleanup: detach of fblk%d: %s", n,
				       strerror(errno));
				devs[n].owned = false;	/* not ours to trust */
				if (fd >= 0)
					close(fd);
				continue;
			}
			close(fd);
			st.detached++;
			model_unbind(n);
		}
		if (!any)
			break;
	}
	for (n = 0; n < MAX_DEVS; n++)
		if (devs[n].exists && devs[n].owned && devs[n].bound)
			report(&st.leftover, "cleanup: fblk%d still bound in the model (held %d)",
			       n, devs[n].held);
	audit();
	for (n = 0; n < MAX_DEVS; n++) {
		if (!devs[n].exists || !devs[n].owned)
			continue;
		for (i = 0; i < 50; i++) {
			e = ioctl(ctl_fd, FBLK_CTL_REMOVE, n) ? errno : 0;
			if (e != EBUSY)
				break;
			usleep(20000);
		}
		if (e)
			report(&st.leftover, "cleanup: remove of fblk%d: %s", n,
			       errno_name(e));
		else
			st.removed++;
		devs[n].exists = false;
	}
	if (list_sys_devices(present) < 0) {
		report(&st.leftover, "cleanup: cannot read /sys/block");
		return;
	}
	for (n = 0; n < FBLK_MAX_SCAN; n++) {
		char state[32];

		if (!present[n])
			continue;
		if (n < MAX_DEVS && devs[n].exists && !devs[n].owned) {
			if (sysfs_state(n, state, sizeof(state)) ||
			    strcmp(state, devs[n].init_state))
				report(&st.leftover, "fblk%d (not ours) was %s, is %s",
				       n, devs[n].init_state, state);
			continue;
		}
		report(&st.leftover, "fblk%d is left behind", n);
	}
}

/* The images must hold exactly what they were made with. */
static void check_images(void)
{
	int i;

	cur_what = "image check";
	for (i = 0; i < NR_IMAGES; i++) {
		struct image *im = &images[i];
		struct stat sb;
		off_t off;

		if (fstat(im->fd, &sb) || sb.st_size != im->size) {
			report(&st.data, "%s: size %lld, made with %lld", im->path,
			       (long long)sb.st_size, (long long)im->size);
			continue;
		}
		for (off = 0; off < im->size; off += DATA_MAX) {
			size_t len = im->size - off < DATA_MAX ? im->size - off : DATA_MAX;

			pattern_fill(i, off, want_buf, len);
			if (pread(im->fd, data_buf, len, off) != (ssize_t)len ||
			    memcmp(data_buf, want_buf, len)) {
				report(&st.data, "%s: bytes at %lld changed", im->path,
				       (long long)off);
				break;
			}
		}
	}
}

static void summary(FILE *f, double secs)
{
	bool clean = !st.unexpected && !st.model && !st.data && !st.leftover;
	int e, i;
	bool first = true;

	if (opt.json) {
		fprintf(f, "{\"seed\": %" PRIu64 ", \"calls\": %lu, \"seconds\": %.1f, "
			"\"rate\": %.0f, \"ok\": %lu, \"errnos\": {",
			opt.seed, st.calls, secs, secs > 0 ? st.calls / secs : 0.0,
			st.ok);
		for (e = 1; e < MAX_ERRNO; e++) {
			if (!st.per_errno[e])
				continue;
			fprintf(f, "%s\"%s\": %lu", first ? "" : ", ", errno_name(e),
				st.per_errno[e]);
			first = false;
		}
		fprintf(f, "}, \"ops\": {");
		for (i = 0; i < NR_OPS; i++)
			fprintf(f, "%s\"%s\": [%lu, %lu]", i ? ", " : "", op_names[i],
				st.op_calls[i], st.op_ok[i]);
		fprintf(f, "}, \"unexpected_errno\": %lu, \"model_errors\": %lu, "
			"\"data_errors\": %lu, \"leftovers\": %lu, "
			"\"devices_added\": %lu, \"devices_adopted\": %lu, "
			"\"devices_removed\": %lu, \"configured\": %lu, "
			"\"detached\": %lu, \"autoclear_detaches\": %lu, "
			"\"result\": \"%s\"}\n",
			st.unexpected, st.model, st.data, st.leftover, st.added,
			st.adopted, st.removed, st.configured, st.detached,
			st.autoclears, clean ? "clean" : "failed");
		return;
	}
	fprintf(f, "fblk-fuzz: seed %" PRIu64 ": %lu calls in %.1f s (%.0f/s), %lu returned 0\n",
		opt.seed, st.calls, secs, secs > 0 ? st.calls / secs : 0.0, st.ok);
	for (e = 1; e < MAX_ERRNO; e++)
		if (st.per_errno[e])
			fprintf(f, "  %-11s %lu\n", errno_name(e), st.per_errno[e]);
	fprintf(f, "  per call (calls/ok):");
	for (i = 0; i < NR_OPS; i++)
		fprintf(f, "%s %s %lu/%lu", i % 6 ? "," : "\n   ", op_names[i],
			st.op_calls[i], st.op_ok[i]);
	fprintf(f, "\n  devices: %lu added, %lu adopted, %lu removed; %lu configures, "
		"%lu detaches, %lu at last close\n",
		st.added, st.adopted, st.removed, st.configured, st.detached,
		st.autoclears);
	fprintf(f, "  unexpected errnos %lu, model errors %lu, data errors %lu, leftovers %lu: %s\n",
		st.unexpected, st.model, st.data, st.leftover,
		clean ? "clean" : "FAILED");
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: fblk-fuzz [options]\n"
"\n"
"Random ioctls on /dev/fblk-control and on /dev/fblkN devices the fuzzer adds,\n"
"checked against a model of the driver: every call must return 0 or an errno\n"
"from a fixed set (EINVAL EBUSY ENXIO EBADF ENOTTY EPERM EROFS ENOSPC ELOOP\n"
"EISDIR EOPNOTSUPP EFAULT ENOMEM EEXIST ENODEV EACCES EFBIG ERANGE ENOENT),\n"
"and where the model knows the answer, that answer; GET_INFO, sysfs state\n"
"and BLKGETSIZE64/BLKSSZGET/BLKROGET must agree with it, and reads through a\n"
"device must return the backing image's bytes.  Backing fds: image files\n"
"(read-write, read-only, write-only, O_APPEND, O_DIRECT, O_SYNC, O_PATH, a\n"
"memfd), a directory, pipes, a socket, an eventfd, /dev/null, the control\n"
"node, closed fds, other fblk devices and the device itself.  At the end\n"
"every device it added is detached and removed; none may be left, and\n"
"devices that existed before (never configured, detached or removed by the\n"
"fuzzer) must be in the state they were in.  Needs root and the module.\n"
"\n"
"Options:\n"
"  -s, --seed N         seed of everything random (default 1)\n"
"  -n, --calls N        calls to make (default 100000)\n"
"  -t, --seconds S      stop after S seconds even if fewer calls were made\n"
"  -d, --dir DIR        where the image files go (default /tmp)\n"
"  -m, --max-devices N  devices the fuzzer keeps at most (default 6)\n"
"  -c, --control PATH   the control node (default /dev/fblk-control)\n"
"  -j, --json           the summary as one JSON object on stdout\n"
"  -v, --verbose        every call and its result on stderr\n"
"      --skip-unbound-flush  no fsync() of an unbound device or one stacked\n"
"                       on an unbound device (a known crash: lets a run\n"
"                       look past it)\n"
"  -h, --help           this text\n"
"\n"
"Failures are printed on stderr (the first %d) with the call number and\n"
"the call.  Exit status: 0 all checks passed; 1 a check failed; 2 usage;\n"
"3 setup failed (no control node, no room for images).\n", MAX_REPORTS);
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return !errno && end != s && !*end && *s != '-';
}

static int setup(void)
{
	static bool present[FBLK_MAX_SCAN];
	int i, n;

	ctl_fd = open(opt.control, O_RDWR | O_CLOEXEC);
	if (ctl_fd < 0) {
		fprintf(stderr, "fblk-fuzz: %s: %s\n", opt.control, strerror(errno));
		return -1;
	}
	pages = mmap(NULL, 5 * 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		return -1;
	bad_page = pages + 4096;
	ro_page = pages + 2 * 4096;
	/* As an fblk_ctl_add: "the first free id"; as a config: fd -1. */
	memset(ro_page, 0, 4096);
	*(int32_t *)ro_page = -1;
	if (mprotect(bad_page, 4096, PROT_NONE) || mprotect(ro_page, 4096, PROT_READ))
		return -1;
	for (i = 0; i < NR_IMAGES; i++)
		if (image_create(i))
			return -1;
	for (i = 0; i < MAX_DEVFDS; i++)
		devfds[i].fd = -1;
	for (i = 0; i < NR_BFDS; i++) {
		bfds[i].fd = -1;
		reopen_bfd(i);
	}
	if (list_sys_devices(present) < 0) {
		fprintf(stderr, "fblk-fuzz: /sys/block: %s\n", strerror(errno));
		return -1;
	}
	for (n = 0; n < FBLK_MAX_SCAN; n++) {
		if (!present[n])
			continue;
		if (n >= MAX_DEVS) {
			fprintf(stderr, "fblk-fuzz: fblk%d exists, beyond the %d the fuzzer tracks\n",
				n, MAX_DEVS);
			return -1;
		}
		devs[n].exists = true;
		if (sysfs_state(n, devs[n].init_state, sizeof(devs[n].init_state)))
			strcpy(devs[n].init_state, "?");
	}
	return 0;
}

static void teardown(void)
{
	int i;

	for (i = 0; i < NR_BFDS; i++)
		if (bfds[i].fd >= 0)
			close(bfds[i].fd);
	for (i = 0; i < NR_IMAGES; i++) {
		if (images[i].fd >= 0)
			close(images[i].fd);
		if (!images[i].memfd && images[i].path[0])
			unlink(images[i].path);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "calls", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' },
		{ "dir", required_argument, NULL, 'd' },
		{ "max-devices", required_argument, NULL, 'm' },
		{ "control", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "skip-unbound-flush", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	double t0, secs;
	uint64_t v;
	char *end;
	int c, rc;

	while ((c = getopt_long(argc, argv, "s:n:t:d:m:c:jvUh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!parse_u64(optarg, &opt.seed))
				goto bad;
			break;
		case 'n':
			if (!parse_u64(optarg, &v) || !v)
				goto bad;
			opt.calls = v;
			break;
		case 't':
			opt.seconds = strtod(optarg, &end);
			if (*end || end == optarg || opt.seconds <= 0)
				goto bad;
			break;
		case 'd':
			opt.dir = optarg;
			break;
		case 'm':
			if (!parse_u64(optarg, &v) || !v || v > MAX_DEVS / 2)
				goto bad;
			opt.max_devices = v;
			break;
		case 'c':
			opt.control = optarg;
			break;
		case 'j':
			opt.json = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'U':
			opt.skip_unbound_flush = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_CLEAN;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "fblk-fuzz: no arguments expected\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	rng_state = opt.seed;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (c = 0; c < NR_IMAGES; c++)
		images[c].fd = -1;
	if (setup()) {
		teardown();
		return EXIT_SETUP;
	}
	t0 = now();
	run();
	secs = now() - t0;
	cleanup();
	check_images();
	teardown();
	summary(stdout, secs);
	if (opt.json) {
		opt.json = false;
		summary(stderr, secs);
	}
	rc = st.unexpected || st.model || st.data || st.leftover ? EXIT_FAILED : EXIT_CLEAN;
	return rc;

bad:
	fprintf(stderr, "fblk-fuzz: bad value for -%c: %s\n", c, optarg);
	return EXIT_USAGE;
}
