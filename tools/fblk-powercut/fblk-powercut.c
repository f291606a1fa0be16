// SPDX-License-Identifier: GPL-2.0
/*
 * fblk-powercut: which writes a power cut may lose, and whether it lost more.
 *
 *   fblk-powercut write DEVICE --state FILE [--seconds S] [--threads N] ...
 *   fblk-powercut now
 *   fblk-powercut verify DEVICE --state FILE --cut NS
 *
 * write: N threads write 4 KiB-stamped blocks (O_DIRECT, 1..8 blocks a
 * write, each thread in its own region, so no two writes in flight overlap);
 * one write in --fua-every goes with RWF_DSYNC (REQ_FUA on a block device),
 * and a flusher thread calls fdatasync() (REQ_PREFLUSH) every --flush-ms.
 * Every write and flush is recorded with its submission and completion
 * times (CLOCK_MONOTONIC) and saved to --state at the end.
 *
 * now: prints CLOCK_MONOTONIC in ns, for the script to note the cut.
 *
 * verify: a write is durable from its own completion if it was FUA, else
 * from the completion of the first flush submitted after it completed.
 * Given the cut time, each block must hold the newest write that was
 * durable before the cut, or a newer write of that block; a block no
 * durable write reached must hold zeros or some write of that block.  Any
 * other content is a lost (stale, zero) or corrupt block.  Prints counts as
 * key=value lines; exit 0 if nothing was lost, 1 otherwise, 2 usage, 3 I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLK		4096u
#define MAGIC		0x7475637265776f70ULL	/* "powercut" */
#define MAX_NBLK	8u
#define STATE_MAGIC	0x31747563626c6266ULL	/* "fblbcut1" */

#ifndef RWF_DSYNC
#define RWF_DSYNC	0x00000002
#endif

struct stamp {
	uint64_t magic;
	uint64_t blk;
	uint64_t gen;
	uint64_t seed;
};

struct wrec {
	uint64_t blk;
	uint32_t nblk;
	uint32_t fua;
	uint64_t gen;
	uint64_t t_sub, t_done;
};

struct frec {
	uint64_t t_sub, t_done;
};

struct state_hdr {
	uint64_t magic;
	uint64_t seed;
	uint64_t nr_blocks;
	uint64_t nr_writes;
	uint64_t nr_flushes;
	uint64_t t_start, t_end;
};

static struct {
	const char *dev, *state;
	double seconds;
	unsigned int threads, fua_every, flush_ms;
	uint64_t seed, cut, size;
} opt = { .seconds = 8, .threads = 4, .fua_every = 8, .flush_ms = 20, .seed = 1 };

static int dev_fd;
static uint64_t nr_blocks;
static atomic_uint_fast64_t next_gen = 1;
static atomic_bool stop;
static uint64_t t_end_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The contents of block @blk as written by generation @gen. */
static void fill_block(uint8_t *buf, uint64_t blk, uint64_t gen, uint64_t seed)
{
	struct stamp *s = (struct stamp *)buf;
	uint64_t *w = (uint64_t *)buf;
	size_t i;

	for (i = sizeof(*s) / 8; i < BLK / 8; i++)
		w[i] = mix(seed ^ (blk << 20) ^ (gen << 40) ^ i);
	s->magic = MAGIC;
	s->blk = blk;
	s->gen = gen;
	s->seed = seed;
}

/* ---- write ---- */

struct vec {
	void *v;
	size_t n, cap, size;
};

static int vec_push(struct vec *v, const void *item)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		void *p = realloc(v->v, cap * v->size);

		if (!p)
			return -1;
		v->v = p;
		v->cap = cap;
	}
	memcpy((char *)v->v + v->n * v->size, item, v->size);
	v->n++;
	return 0;
}

struct worker {
	pthread_t tid;
	unsigned int idx;
	uint64_t first, count;	/* region of blocks */
	uint64_t rng;
	struct vec recs;
	int err;
};

static struct vec flushes = { .size = sizeof(struct frec) };
static int flush_err;

static void *writer_thread(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf;
	uint64_t n = 0;

	if (posix_memalign((void **)&buf, BLK, MAX_NBLK * BLK))
		return NULL;
	while (!atomic_load(&stop)) {
		struct wrec r;
		struct iovec iov;
		unsigned int i;
		ssize_t ret;

		w->rng = mix(w->rng);
		r.nblk = 1 + w->rng % MAX_NBLK;
		if (r.nblk > w->count)
			r.nblk = w->count;
		r.blk = w->first + (w->rng >> 16) % (w->count - r.nblk + 1);
		r.fua = opt.fua_every && (++n % opt.fua_every) == 0;
		r.gen = atomic_fetch_add(&next_gen, 1);
		for (i = 0; i < r.nblk; i++)
			fill_block(buf + i * BLK, r.blk + i, r.gen, opt.seed);
		iov.iov_base = buf;
		iov.iov_len = (size_t)r.nblk * BLK;
		r.t_sub = now_ns();
		ret = pwritev2(dev_fd, &iov, 1, (off_t)(r.blk * BLK),
			       r.fua ? RWF_DSYNC : 0);
		r.t_done = now_ns();
		if (ret != (ssize_t)iov.iov_len) {
			/* not acknowledged: not recorded as written */
			fprintf(stderr, "fblk-powercut: write of %u blocks at %" PRIu64 ": %s\n",
				r.nblk, r.blk, ret < 0 ? strerror(errno) : "short");
			w->err++;
			/* it may still have reached the disk: keep it as a candidate */
			r.t_done = UINT64_MAX;
		}
		if (vec_push(&w->recs, &r)) {
			w->err++;
			break;
		}
		if (now_ns() >= t_end_ns)
			break;
	}
	free(buf);
	return NULL;
}

static void *flusher_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop) && now_ns() < t_end_ns) {
		struct frec f;

		usleep(opt.flush_ms * 1000);
		f.t_sub = now_ns();
		if (fdatasync(dev_fd)) {
			fprintf(stderr, "fblk-powercut: fdatasync: %s\n", strerror(errno));
			flush_err++;
			continue;
		}
		f.t_done = now_ns();
		if (vec_push(&flushes, &f))
			flush_err++;
	}
	return NULL;
}

static uint64_t dev_size(int fd)
{
	struct stat sb;
	uint64_t size = 0;

	if (fstat(fd, &sb))
		return 0;
	if (S_ISBLK(sb.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size))
			return 0;
		return size;
	}
	return sb.st_size;
}

static int cmd_write(void)
{
	struct worker *ws;
	struct state_hdr h = { .magic = STATE_MAGIC };
	pthread_t flusher;
	uint64_t per, total = 0, fua = 0;
	unsigned int i;
	int errs = 0;
	FILE *f;

	dev_fd = open(opt.dev, O_RDWR | O_DIRECT);
	if (dev_fd < 0) {
		fprintf(stderr, "fblk-powercut: %s: %s\n", opt.dev, strerror(errno));
		return 3;
	}
	nr_blocks = (opt.size ? opt.size : dev_size(dev_fd)) / BLK;
	if (nr_blocks < opt.threads * MAX_NBLK) {
		fprintf(stderr, "fblk-powercut: %s is too small\n", opt.dev);
		return 3;
	}
	ws = calloc(opt.threads, sizeof(*ws));
	if (!ws)
		return 3;
	per = nr_blocks / opt.threads;
	h.seed = opt.seed;
	h.nr_blocks = nr_blocks;
	h.t_start = now_ns();
	t_end_ns = h.t_start + (uint64_t)(opt.seconds * 1e9);
	for (i = 0; i < opt.threads; i++) {
		ws[i].idx = i;
		ws[i].first = i * per;
		ws[i].count = per;
		ws[i].rng = mix(opt.seed * 1000 + i);
		ws[i].recs.size = sizeof(struct wrec);
		pthread_create(&ws[i].tid, NULL, writer_thread, &ws[i]);
	}
	pthread_create(&flusher, NULL, flusher_thread, NULL);
	for (i = 0; i < opt.threads; i++)
		pthread_join(ws[i].tid, NULL);
	atomic_store(&stop, true);
	pthread_join(flusher, NULL);
	h.t_end = now_ns();

	f = fopen(opt.state, "w");
	if (!f) {
		fprintf(stderr, "fblk-powercut: %s: %s\n", opt.state, strerror(errno));
		return 3;
	}
	for (i = 0; i < opt.threads; i++) {
		h.nr_writes += ws[i].recs.n;
		errs += ws[i].err;
	}
	h.nr_flushes = flushes.n;
	fwrite(&h, sizeof(h), 1, f);
	for (i = 0; i < opt.threads; i++) {
		struct wrec *r = ws[i].recs.v;
		size_t j;

		fwrite(r, sizeof(*r), ws[i].recs.n, f);
		for (j = 0; j < ws[i].recs.n; j++) {
			total += r[j].nblk;
			fua += r[j].fua;
		}
	}
	fwrite(flushes.v, sizeof(struct frec), flushes.n, f);
	if (fclose(f)) {
		fprintf(stderr, "fblk-powercut: %s: %s\n", opt.state, strerror(errno));
		return 3;
	}
	printf("writes=%" PRIu64 "\nblocks_written=%" PRIu64 "\nfua_writes=%" PRIu64
	       "\nflushes=%zu\nwrite_errors=%d\nflush_errors=%d\nseconds=%.1f\n",
	       h.nr_writes, total, fua, flushes.n, errs, flush_err,
	       (h.t_end - h.t_start) / 1e9);
	return errs || flush_err ? 1 : 0;
}

/* ---- verify ---- */

struct cand {
	uint64_t gen;
	uint64_t durable;	/* when it became durable, UINT64_MAX never */
	uint64_t t_sub;
};

static int cmp_frec(const void *a, const void *b)
{
	const struct frec *x = a, *y = b;

	return x->t_sub < y->t_sub ? -1 : x->t_sub > y->t_sub;
}

static int cmd_verify(void)
{
	struct state_hdr h;
	struct wrec *w;
	struct frec *fl;
	uint64_t *req_gen, *req_at, i;
	uint64_t *suffix_min;
	uint8_t *buf, *want;
	uint64_t acked_durable = 0, required = 0, intact = 0, newer = 0,
		 lost = 0, corrupt = 0, zero = 0, unrequired_written = 0,
		 last_flush = 0, flushes_before = 0, acked_after = 0;
	FILE *f = fopen(opt.state, "r");
	int fd;

	if (!f || fread(&h, sizeof(h), 1, f) != 1 || h.magic != STATE_MAGIC) {
		fprintf(stderr, "fblk-powercut: %s: not a state file\n", opt.state);
		return 3;
	}
	w = calloc(h.nr_writes ? h.nr_writes : 1, sizeof(*w));
	fl = calloc(h.nr_flushes + 1, sizeof(*fl));
	req_gen = calloc(h.nr_blocks, sizeof(*req_gen));
	req_at = calloc(h.nr_blocks, sizeof(*req_at));
	suffix_min = calloc(h.nr_flushes + 1, sizeof(*suffix_min));
	if (!w || !fl || !req_gen || !req_at || !suffix_min ||
	    fread(w, sizeof(*w), h.nr_writes, f) != h.nr_writes ||
	    fread(fl, sizeof(*fl), h.nr_flushes, f) != h.nr_flushes) {
		fprintf(stderr, "fblk-powercut: %s: short\n", opt.state);
		return 3;
	}
	fclose(f);

	/* Earliest completion among flushes submitted at or after a time. */
	qsort(fl, h.nr_flushes, sizeof(*fl), cmp_frec);
	suffix_min[h.nr_flushes] = UINT64_MAX;
	for (i = h.nr_flushes; i-- > 0;)
		suffix_min[i] = fl[i].t_done < suffix_min[i + 1] ?
				fl[i].t_done : suffix_min[i + 1];
	for (i = 0; i < h.nr_flushes; i++)
		if (fl[i].t_done < opt.cut) {
			flushes_before++;
			if (fl[i].t_done > last_flush)
				last_flush = fl[i].t_done;
		}

	for (i = 0; i < h.nr_writes; i++) {
		struct wrec *r = &w[i];
		uint64_t durable = UINT64_MAX, lo = 0, hi = h.nr_flushes, b;

		if (r->t_done != UINT64_MAX) {
			if (r->fua) {
				durable = r->t_done;
			} else {
				while (lo < hi) {	/* first flush submitted after */
					uint64_t mid = (lo + hi) / 2;

					if (fl[mid].t_sub < r->t_done)
						lo = mid + 1;
					else
						hi = mid;
				}
				durable = suffix_min[lo];
			}
		}
		if (durable < opt.cut)
			acked_durable++;
		if (r->t_done != UINT64_MAX && r->t_done >= opt.cut)
			acked_after++;
		for (b = r->blk; b < r->blk + r->nblk && b < h.nr_blocks; b++) {
			if (durable < opt.cut && r->gen > req_gen[b]) {
				req_gen[b] = r->gen;
				req_at[b] = durable;
			}
		}
	}

	fd = open(opt.dev, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "fblk-powercut: %s: %s\n", opt.dev, strerror(errno));
		return 3;
	}
	if (posix_memalign((void **)&buf, BLK, BLK) ||
	    posix_memalign((void **)&want, BLK, BLK))
		return 3;
	for (i = 0; i < h.nr_blocks; i++) {
		const struct stamp *s = (const struct stamp *)buf;
		bool is_zero, valid;

		if (pread(fd, buf, BLK, (off_t)(i * BLK)) != BLK) {
			fprintf(stderr, "fblk-powercut: read of block %" PRIu64 ": %s\n",
				i, strerror(errno));
			return 3;
		}
		is_zero = buf[0] == 0 && !memcmp(buf, buf + 1, BLK - 1);
		valid = false;
		if (!is_zero && s->magic == MAGIC && s->blk == i &&
		    s->seed == h.seed) {
			fill_block(want, i, s->gen, h.seed);
			valid = !memcmp(buf, want, BLK);
		}
		if (req_gen[i])
			required++;
		if (is_zero) {
			zero++;
			if (req_gen[i]) {
				lost++;
				if (lost <= 10)
					fprintf(stderr, "lost: block %" PRIu64 " reads zeros, gen %" PRIu64 " was durable %.3f s before the cut\n",
						i, req_gen[i], (opt.cut - req_at[i]) / 1e9);
			}
			continue;
		}
		if (!valid) {
			corrupt++;
			if (corrupt <= 10)
				fprintf(stderr, "corrupt: block %" PRIu64 " (stamp: magic %#" PRIx64 " block %" PRIu64 " gen %" PRIu64 ")\n",
					i, s->magic, s->blk, s->gen);
			continue;
		}
		if (!req_gen[i]) {
			unrequired_written++;
			continue;
		}
		if (s->gen == req_gen[i]) {
			intact++;
		} else if (s->gen > req_gen[i]) {
			newer++;
		} else {
			lost++;
			if (lost <= 10)
				fprintf(stderr, "lost: block %" PRIu64 " holds gen %" PRIu64 ", gen %" PRIu64 " was durable %.3f s before the cut\n",
					i, s->gen, req_gen[i], (opt.cut - req_at[i]) / 1e9);
		}
	}
	printf("writes=%" PRIu64 "\nflushes=%" PRIu64 "\nflushes_before_cut=%" PRIu64
	       "\nlast_flush_before_cut_s=%.3f\nwrites_durable_before_cut=%" PRIu64
	       "\nwrites_acked_after_cut=%" PRIu64
	       "\nblocks=%" PRIu64 "\nblocks_required=%" PRIu64
	       "\nblocks_intact=%" PRIu64 "\nblocks_newer=%" PRIu64
	       "\nblocks_lost=%" PRIu64 "\nblocks_corrupt=%" PRIu64
	       "\nblocks_zero=%" PRIu64 "\nblocks_undurable_written=%" PRIu64 "\n",
	       h.nr_writes, h.nr_flushes, flushes_before,
	       last_flush ? (opt.cut - last_flush) / 1e9 : -1.0, acked_durable,
	       acked_after,
	       h.nr_blocks, required, intact, newer, lost, corrupt, zero,
	       unrequired_written);
	return lost || corrupt ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: fblk-powercut write DEVICE --state FILE [options]\n"
"       fblk-powercut now\n"
"       fblk-powercut verify DEVICE --state FILE --cut NS\n"
"\n"
"write: threads write stamped 4 KiB blocks with O_DIRECT (some with RWF_DSYNC,\n"
"i.e. FUA) while a flusher calls fdatasync(); every write and flush is\n"
"recorded with CLOCK_MONOTONIC times in --state.\n"
"now: print CLOCK_MONOTONIC in nanoseconds (note the moment of a cut).\n"
"verify: with the cut at --cut, every block must hold the newest write that\n"
"was durable before the cut (FUA completed, or a flush submitted after it\n"
"completed had completed) or a newer write of the block; others zeros or any\n"
"write of theirs.  Prints key=value counts.\n"
"\n"
"Options:\n"
"  -S, --state FILE      the record of writes and flushes\n"
"  -t, --seconds S       how long to write (default 8)\n"
"  -T, --threads N       writer threads (default 4)\n"
"  -F, --fua-every N     every Nth write of a thread with RWF_DSYNC (0: none; default 8)\n"
"  -f, --flush-ms MS     pause between fdatasync() calls (default 20)\n"
"  -s, --seed N          seed (default 1)\n"
"  -z, --size BYTES      use only the first BYTES of DEVICE\n"
"  -c, --cut NS          the cut, as printed by `now` (verify)\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 fine; 1 writes failed (write) or blocks were lost or corrupt\n"
"(verify); 2 usage; 3 cannot open or read.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "seconds", required_argument, NULL, 't' },
		{ "threads", required_argument, NULL, 'T' },
		{ "fua-every", required_argument, NULL, 'F' },
		{ "flush-ms", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'z' },
		{ "cut", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "S:t:T:F:f:s:z:c:h", longopts, NULL)) != -1) {
		errno = 0;
		switch (c) {
		case 'S':
			opt.state = optarg;
			continue;
		case 't':
			opt.seconds = strtod(optarg, &end);
			break;
		case 'T':
			opt.threads = strtoul(optarg, &end, 0);
			break;
		case 'F':
			opt.fua_every = strtoul(optarg, &end, 0);
			break;
		case 'f':
			opt.flush_ms = strtoul(optarg, &end, 0);
			break;
		case 's':
			opt.seed = strtoull(optarg, &end, 0);
			break;
		case 'z':
			opt.size = strtoull(optarg, &end, 0);
			break;
		case 'c':
			opt.cut = strtoull(optarg, &end, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (c == 'T' && (!opt.threads || opt.threads > 64))
			goto bad;
		if (errno || *end || end == optarg)
			goto bad;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (!strcmp(cmd, "now") && optind + 1 == argc) {
		printf("%" PRIu64 "\n", now_ns());
		return 0;
	}
	if (optind + 2 != argc || !opt.state) {
		usage(stderr);
		return 2;
	}
	opt.dev = argv[optind + 1];
	if (!strcmp(cmd, "write"))
		return cmd_write();
	if (!strcmp(cmd, "verify")) {
		if (!opt.cut) {
			fprintf(stderr, "fblk-powercut: verify needs --cut\n");
			return 2;
		}
		return cmd_verify();
	}
	usage(stderr);
	return 2;
bad:
	fprintf(stderr, "fblk-powercut: bad value for -%c: %s\n", c, optarg);
	return 2;
}
