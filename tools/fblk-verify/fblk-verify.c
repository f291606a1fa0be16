// SPDX-License-Identifier: GPL-2.0
/*
 * fblk-verify: data integrity under many requests in flight, through io_uring.
 *
 * Every 4 KiB block written carries a header (magic, its own byte offset, a
 * generation number, the run's seed) and a body derived from the three, with
 * a CRC32C over the whole block.  A read can therefore tell a block that is
 * intact but old (stale), written somewhere else (misplaced), torn or
 * garbled (corrupt), or never written.  The generation each block should
 * have is tracked in memory; no two requests in flight ever overlap, so the
 * expected contents of a block are always known.  See usage() for the modes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK		4096u
#define MAX_BLOCKS	64u		/* 256 KiB per request at most */
#define MAGIC		0x6b6c62667966ULL	/* "fyfblk" */
#define MAX_REPORTS	10

struct blk_hdr {
	uint64_t magic;
	uint64_t offset;
	uint64_t gen;
	uint64_t seed;
	uint32_t crc;
	uint32_t pad;
};

enum op { OP_NONE, OP_READ, OP_WRITE };

struct slot {
	enum op op;
	uint64_t blk;		/* first block */
	unsigned int nblk;
	unsigned int done;	/* bytes transferred so far */
	uint64_t gen;		/* write: generation stamped */
	uint8_t *buf;
};

enum mode { M_WRITE, M_WRITE_ONLY, M_VERIFY, M_MIXED };
static const char *const mode_names[] = {
	[M_WRITE] = "write", [M_WRITE_ONLY] = "write-only",
	[M_VERIFY] = "verify", [M_MIXED] = "mixed",
};

static struct {
	const char *path;
	const char *state;
	enum mode mode;
	unsigned int depth;
	double seconds;
	uint64_t seed;
	uint64_t size;
	unsigned int max_blocks;
	unsigned int read_pct;
	bool buffered;
	bool json;
	bool quiet;
} opt = {
	.mode = M_WRITE, .depth = 64, .seconds = 10, .seed = 1,
	.max_blocks = MAX_BLOCKS, .read_pct = 50,
};

static struct {
	uint64_t writes, reads, bytes_written, bytes_read;
	uint64_t checked, unwritten, stale, misplaced, corrupt, io_errors;
	uint64_t short_io;
	double write_secs, verify_secs, mixed_secs;
} st;

static int fd;
static uint64_t nblocks;
static uint64_t *gens;		/* generation each block must hold; 0 = none */
static uint8_t *busy;		/* a request in flight covers the block */
static uint64_t next_gen = 1;
static uint64_t rng_state;
static struct io_uring ring;
static struct slot *slots;
static unsigned int inflight;
static unsigned int reports;

/* ---- helpers ---- */

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const uint8_t *p, size_t len)
{
	uint32_t c = ~0u;

	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t n)
{
	return splitmix(&rng_state) % n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "fblk-verify: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* ---- block stamps ---- */

static void stamp_block(uint8_t *b, uint64_t blk, uint64_t gen)
{
	struct blk_hdr *h = (struct blk_hdr *)b;
	uint64_t s = blk * 0x100000001b3ULL ^ gen << 20 ^ opt.seed;
	uint64_t *w = (uint64_t *)b;

	for (unsigned int i = sizeof(*h) / 8; i < BLK / 8; i++)
		w[i] = splitmix(&s);
	h->magic = MAGIC;
	h->offset = blk * BLK;
	h->gen = gen;
	h->seed = opt.seed;
	h->pad = 0;
	h->crc = 0;
	h->crc = crc32c(b, BLK);
}

static void report(const char *what, uint64_t blk, uint64_t want,
		   const struct blk_hdr *h)
{
	if (opt.quiet || reports++ >= MAX_REPORTS)
		return;
	fprintf(stderr, "fblk-verify: %s at offset %" PRIu64 ": want gen %" PRIu64
		", found magic %#" PRIx64 " offset %" PRIu64 " gen %" PRIu64
		" seed %" PRIu64 "\n", what, blk * BLK, want, h->magic,
		h->offset, h->gen, h->seed);
}

/*
 * Check one block read back.  @want: the generation it must hold; 0 if it
 * was not written in this run and UINT64_MAX if it is not known (verify
 * without a state file, or a failed write): then a block without our stamp
 * passes as unwritten, and one with it must still be intact and in place.
 */
static void check_block(uint8_t *b, uint64_t blk, uint64_t want)
{
	struct blk_hdr *h = (struct blk_hdr *)b;
	uint32_t crc = h->crc, sum;
	bool known = want != 0 && want != UINT64_MAX;

	if (h->magic != MAGIC || h->seed != opt.seed) {
		if (!known) {
			st.unwritten++;
			return;
		}
		st.checked++;
		st.corrupt++;
		report("corrupt block (no stamp)", blk, want, h);
		return;
	}
	st.checked++;
	h->crc = 0;
	sum = crc32c(b, BLK);
	h->crc = crc;
	if (sum != crc) {
		st.corrupt++;
		report("corrupt block (bad checksum)", blk, want, h);
	} else if (h->offset != blk * BLK) {
		st.misplaced++;
		report("misplaced block", blk, want, h);
	} else if (known && h->gen != want) {
		st.stale++;
		report(h->gen < want ? "stale block" : "block from the future",
		       blk, want, h);
	}
}

/* ---- requests ---- */

static void submit_slot(struct slot *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	off_t off = s->blk * BLK + s->done;
	unsigned int len = s->nblk * BLK - s->done;

	if (!sqe) {
		errno = EBUSY;
		die("io_uring_get_sqe");
	}
	if (s->op == OP_WRITE)
		io_uring_prep_write(sqe, fd, s->buf + s->done, len, off);
	else
		io_uring_prep_read(sqe, fd, s->buf + s->done, len, off);
	io_uring_sqe_set_data(sqe, s);
}

static bool range_free(uint64_t blk, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (busy[blk + i])
			return false;
	return true;
}

static void set_busy(uint64_t blk, unsigned int n, uint8_t v)
{
	memset(busy + blk, v, n);
}

/* A random range no request in flight touches; false if none found soon. */
static bool pick_range(uint64_t *blk, unsigned int *n)
{
	for (int tries = 0; tries < 32; tries++) {
		unsigned int len = 1 + rnd(opt.max_blocks);

		if (len > nblocks)
			len = nblocks;
		*blk = rnd(nblocks - len + 1);
		*n = len;
		if (range_free(*blk, len))
			return true;
	}
	return false;
}

static void start_write(struct slot *s, uint64_t blk, unsigned int n)
{
	s->op = OP_WRITE;
	s->blk = blk;
	s->nblk = n;
	s->done = 0;
	s->gen = next_gen++;
	for (unsigned int i = 0; i < n; i++)
		stamp_block(s->buf + i * BLK, blk + i, s->gen);
	set_busy(blk, n, 1);
	submit_slot(s);
	inflight++;
}

static void start_read(struct slot *s, uint64_t blk, unsigned int n)
{
	s->op = OP_READ;
	s->blk = blk;
	s->nblk = n;
	s->done = 0;
	set_busy(blk, n, 1);
	submit_slot(s);
	inflight++;
}

/* Handle one completion; the slot is free again unless resubmitted. */
static void complete(struct io_uring_cqe *cqe, bool know_gens)
{
	struct slot *s = io_uring_cqe_get_data(cqe);
	int res = cqe->res;

	io_uring_cqe_seen(&ring, cqe);
	if (res < 0 || (res == 0 && s->op == OP_WRITE)) {
		st.io_errors++;
		if (!opt.quiet && reports++ < MAX_REPORTS)
			fprintf(stderr, "fblk-verify: %s at offset %" PRIu64
				" length %u: %s\n",
				s->op == OP_WRITE ? "write" : "read",
				s->blk * BLK + s->done, s->nblk * BLK - s->done,
				res ? strerror(-res) : "no progress");
		/* The blocks of a failed write hold either generation. */
		if (s->op == OP_WRITE)
			for (unsigned int i = 0; i < s->nblk; i++)
				gens[s->blk + i] = UINT64_MAX;
		goto done;
	}
	if (res == 0) {		/* read at the end of a file */
		memset(s->buf + s->done, 0, s->nblk * BLK - s->done);
		res = s->nblk * BLK - s->done;
	}
	if ((unsigned int)res < s->nblk * BLK - s->done) {
		st.short_io++;
		s->done += res;
		submit_slot(s);
		return;
	}
	if (s->op == OP_WRITE) {
		st.writes++;
		st.bytes_written += s->nblk * BLK;
		for (unsigned int i = 0; i < s->nblk; i++)
			gens[s->blk + i] = s->gen;
	} else {
		st.reads++;
		st.bytes_read += s->nblk * BLK;
		for (unsigned int i = 0; i < s->nblk; i++)
			check_block(s->buf + i * BLK, s->blk + i,
				    know_gens ? gens[s->blk + i] : UINT64_MAX);
	}
done:
	set_busy(s->blk, s->nblk, 0);
	s->op = OP_NONE;
	inflight--;
}

static void reap(bool wait, bool know_gens)
{
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_submit(&ring);
	if (ret < 0) {
		errno = -ret;
		die("io_uring_submit");
	}
	if (wait && inflight) {
		ret = io_uring_wait_cqe(&ring, &cqe);
		if (ret < 0 && ret != -EINTR) {
			errno = -ret;
			die("io_uring_wait_cqe");
		}
	}
	while (io_uring_peek_cqe(&ring, &cqe) == 0)
		complete(cqe, know_gens);
}

static struct slot *free_slot(void)
{
	for (unsigned int i = 0; i < opt.depth; i++)
		if (slots[i].op == OP_NONE)
			return &slots[i];
	return NULL;
}

/* Random writes (and reads, @read_pct of them) for opt.seconds. */
static void random_phase(unsigned int read_pct, double *secs)
{
	double t0 = now(), end = t0 + opt.seconds;
	uint64_t blk;
	unsigned int n;
	struct slot *s;

	while (now() < end) {
		while ((s = free_slot()) && pick_range(&blk, &n)) {
			if (rnd(100) < read_pct)
				start_read(s, blk, n);
			else
				start_write(s, blk, n);
		}
		reap(true, true);
	}
	while (inflight)
		reap(true, true);
	*secs = now() - t0;
}

/* Read everything once, in order; @know_gens: check against the map. */
static void verify_phase(bool know_gens)
{
	double t0 = now();
	uint64_t blk = 0;
	struct slot *s;

	while (blk < nblocks || inflight) {
		while (blk < nblocks && (s = free_slot())) {
			unsigned int n = opt.max_blocks;

			if (n > nblocks - blk)
				n = nblocks - blk;
			start_read(s, blk, n);
			blk += n;
		}
		reap(true, know_gens);
	}
	st.verify_secs = now() - t0;
}

/* ---- state file: the generation map between runs ---- */

static void save_state(void)
{
	FILE *f = fopen(opt.state, "w");

	if (!f)
		die(opt.state);
	if (fwrite(&opt.seed, sizeof(opt.seed), 1, f) != 1 ||
	    fwrite(&nblocks, sizeof(nblocks), 1, f) != 1 ||
	    fwrite(gens, sizeof(*gens), nblocks, f) != nblocks ||
	    fclose(f))
		die(opt.state);
}

static void load_state(void)
{
	FILE *f = fopen(opt.state, "r");
	uint64_t seed, n;

	if (!f)
		die(opt.state);
	if (fread(&seed, sizeof(seed), 1, f) != 1 ||
	    fread(&n, sizeof(n), 1, f) != 1)
		die(opt.state);
	if (n != nblocks) {
		fprintf(stderr, "fblk-verify: %s: %" PRIu64 " blocks, the target has %" PRIu64 "\n",
			opt.state, n, nblocks);
		exit(2);
	}
	opt.seed = seed;
	if (fread(gens, sizeof(*gens), nblocks, f) != nblocks)
		die(opt.state);
	fclose(f);
	for (uint64_t i = 0; i < nblocks; i++)
		if (gens[i] != UINT64_MAX && gens[i] >= next_gen)
			next_gen = gens[i] + 1;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: fblk-verify [options] DEVICE|FILE\n"
"\n"
"Data integrity through io_uring with many requests in flight (O_DIRECT by\n"
"default).  Each 4 KiB block written is stamped with its offset, a generation\n"
"number and the seed, and carries a CRC32C; the generation every block must\n"
"hold is kept in memory.  Requests have random offsets and random sizes (4 KiB\n"
"multiples up to 256 KiB); no two requests in flight overlap.\n"
"\n"
"Modes (--mode):\n"
"  write       random writes for --seconds, then read everything back (default)\n"
"  write-only  random writes for --seconds; with --state, save the map\n"
"  verify      read everything back: against the map of --state, else check\n"
"              that every stamped block is self-consistent and in place\n"
"  mixed       random reads and writes for --seconds, each read checked against\n"
"              the latest generation of its blocks, then a full verify pass\n"
"\n"
"Options:\n"
"  -m, --mode MODE      see above\n"
"  -d, --depth N        requests in flight (default 64)\n"
"  -t, --seconds S      length of the random phase (default 10)\n"
"  -s, --seed N         seed of offsets, sizes and contents (default 1)\n"
"  -S, --size BYTES     bytes of the target to use (default: all of it;\n"
"                       K, M, G suffixes)\n"
"  -b, --max-bs BYTES   largest request (4K..256K, default 256K)\n"
"  -r, --read-pct N     share of reads in mixed mode (default 50)\n"
"  -f, --state FILE     save (write, write-only, mixed) or load (verify) the map\n"
"  -B, --buffered       no O_DIRECT\n"
"  -j, --json           a JSON summary on stdout\n"
"  -q, --quiet          no per-block reports on stderr\n"
"  -h, --help           this text\n"
"\n"
"Exit status: 0 if every block read back was right and no I/O failed;\n"
"1 on any mismatch or I/O error; 2 on a usage or setup error.\n");
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end || end == s) {
		fprintf(stderr, "fblk-verify: bad size '%s'\n", s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "depth", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'S' },
		{ "max-bs", required_argument, NULL, 'b' },
		{ "read-pct", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 'f' },
		{ "buffered", no_argument, NULL, 'B' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int c;
	uint64_t bs;

	while ((c = getopt_long(argc, argv, "m:d:t:s:S:b:r:f:Bjqh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'm':
			for (c = 0; c < (int)(sizeof(mode_names) / sizeof(*mode_names)); c++)
				if (!strcmp(optarg, mode_names[c]))
					break;
			if (c == (int)(sizeof(mode_names) / sizeof(*mode_names))) {
				fprintf(stderr, "fblk-verify: unknown mode '%s'\n", optarg);
				exit(2);
			}
			opt.mode = c;
			break;
		case 'd':
			opt.depth = strtoul(optarg, NULL, 0);
			if (opt.depth < 1 || opt.depth > 4096) {
				fprintf(stderr, "fblk-verify: depth must be 1..4096\n");
				exit(2);
			}
			break;
		case 't':
			opt.seconds = strtod(optarg, NULL);
			break;
		case 's':
			opt.seed = strtoull(optarg, NULL, 0);
			break;
		case 'S':
			opt.size = parse_size(optarg);
			break;
		case 'b':
			bs = parse_size(optarg);
			if (bs < BLK || bs > MAX_BLOCKS * BLK || bs % BLK) {
				fprintf(stderr, "fblk-verify: --max-bs: 4K..256K in 4K steps\n");
				exit(2);
			}
			opt.max_blocks = bs / BLK;
			break;
		case 'r':
			opt.read_pct = strtoul(optarg, NULL, 0);
			if (opt.read_pct > 100) {
				fprintf(stderr, "fblk-verify: --read-pct: 0..100\n");
				exit(2);
			}
			break;
		case 'f':
			opt.state = optarg;
			break;
		case 'B':
			opt.buffered = true;
			break;
		case 'j':
			opt.json = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	opt.path = argv[optind];
}

static uint64_t target_size(void)
{
	struct stat sb;
	uint64_t size;

	if (fstat(fd, &sb))
		die(opt.path);
	if (S_ISBLK(sb.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size))
			die("BLKGETSIZE64");
	} else {
		size = sb.st_size;
	}
	if (opt.size) {
		if (S_ISBLK(sb.st_mode) && opt.size > size) {
			fprintf(stderr, "fblk-verify: --size beyond the device's %" PRIu64 " bytes\n",
				size);
			exit(2);
		}
		size = opt.size;
	}
	return size;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(double elapsed)
{
	uint64_t mism = st.stale + st.misplaced + st.corrupt;

	/* A path may hold any byte but NUL: it is the one string to escape. */
	fputs("{\"path\": ", stdout);
	print_json_string(opt.path);
	printf(", \"mode\": \"%s\", \"direct\": %s, \"seed\": %" PRIu64
	       ", \"depth\": %u, \"size\": %" PRIu64 ", \"seconds\": %.3f"
	       ", \"writes\": %" PRIu64 ", \"reads\": %" PRIu64
	       ", \"bytes_written\": %" PRIu64 ", \"bytes_read\": %" PRIu64
	       ", \"short_io\": %" PRIu64 ", \"blocks_checked\": %" PRIu64
	       ", \"blocks_unwritten\": %" PRIu64 ", \"stale\": %" PRIu64
	       ", \"misplaced\": %" PRIu64 ", \"corrupt\": %" PRIu64
	       ", \"mismatches\": %" PRIu64 ", \"io_errors\": %" PRIu64
	       ", \"write_secs\": %.3f, \"mixed_secs\": %.3f, \"verify_secs\": %.3f"
	       ", \"result\": \"%s\"}\n",
	       mode_names[opt.mode], opt.buffered ? "false" : "true",
	       opt.seed, opt.depth, nblocks * BLK, elapsed, st.writes, st.reads,
	       st.bytes_written, st.bytes_read, st.short_io, st.checked,
	       st.unwritten, st.stale, st.misplaced, st.corrupt, mism,
	       st.io_errors, st.write_secs, st.mixed_secs, st.verify_secs,
	       mism || st.io_errors ? "fail" : "pass");
}

int main(int argc, char **argv)
{
	double t0 = now();
	uint64_t mism;
	int flags, ret;

	parse_args(argc, argv);
	crc_init();
	rng_state = opt.seed * 0x2545f4914f6cdd1dULL + 1;

	flags = (opt.mode == M_VERIFY ? O_RDONLY : O_RDWR) |
		(opt.buffered ? 0 : O_DIRECT);
	fd = open(opt.path, flags);
	if (fd < 0)
		die(opt.path);
	nblocks = target_size() / BLK;
	if (!nblocks) {
		fprintf(stderr, "fblk-verify: %s: smaller than 4 KiB (use --size for a file)\n",
			opt.path);
		return 2;
	}
	gens = calloc(nblocks, sizeof(*gens));
	busy = calloc(nblocks, 1);
	slots = calloc(opt.depth, sizeof(*slots));
	if (!gens || !busy || !slots)
		die("calloc");
	for (unsigned int i = 0; i < opt.depth; i++)
		if (posix_memalign((void **)&slots[i].buf, BLK, MAX_BLOCKS * BLK))
			die("posix_memalign");
	ret = io_uring_queue_init(opt.depth, &ring, 0);
	if (ret < 0) {
		errno = -ret;
		die("io_uring_queue_init");
	}

	switch (opt.mode) {
	case M_WRITE:
		random_phase(0, &st.write_secs);
		verify_phase(true);
		break;
	case M_WRITE_ONLY:
		random_phase(0, &st.write_secs);
		break;
	case M_VERIFY:
		if (opt.state)
			load_state();
		verify_phase(opt.state);
		break;
	case M_MIXED:
		random_phase(opt.read_pct, &st.mixed_secs);
		verify_phase(true);
		break;
	}
	if (opt.state && opt.mode != M_VERIFY)
		save_state();
	io_uring_queue_exit(&ring);
	close(fd);

	mism = st.stale + st.misplaced + st.corrupt;
	if (opt.json)
		print_json(now() - t0);
	else
		printf("fblk-verify: %s %s: %" PRIu64 " writes, %" PRIu64
		       " reads, %" PRIu64 " blocks checked, %" PRIu64
		       " mismatches (%" PRIu64 " stale, %" PRIu64 " misplaced, %"
		       PRIu64 " corrupt), %" PRIu64 " I/O errors: %s\n",
		       mode_names[opt.mode], opt.path, st.writes, st.reads,
		       st.checked, mism, st.stale, st.misplaced, st.corrupt,
		       st.io_errors, mism || st.io_errors ? "FAIL" : "ok");
	return mism || st.io_errors ? 1 : 0;
}
