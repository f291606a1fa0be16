// SPDX-License-Identifier: GPL-2.0
/*
 * fblksetup - set up and control fblk devices, the way losetup(8) does for
 * loop devices: same options, same output formats, same exit habits.
 *
 * The order of this file follows a run: options, their checks (all done
 * before anything is touched, so that bad input changes nothing), then one
 * function per action.  Talking to the driver lives in fblkdev.c, the
 * --list output in list.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "fblkdev.h"
#include "list.h"

/*
 * Run-time settings (io_mode, submit, pool_size: struct fblk_params) came
 * with FBLK_SET_PARAMS, ra_policy, ra_kb and inline_depth later
 * (HAVE_FBLK_RA_PARAMS, fblkdev.h); without them in the header, their
 * options are left out.
 */
#ifdef FBLK_SET_PARAMS
#define HAVE_FBLK_PARAMS 1
#endif

#ifndef FBLKSETUP_VERSION
#define FBLKSETUP_VERSION "0.1"
#endif

#define __printf(a, b)	__attribute__((format(printf, a, b)))
#define __noreturn	__attribute__((noreturn))

/* Exit codes that scripts test for. */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

/*
 * -f retries when another process configures the device it found first
 * (FBLK_CONFIGURE says EBUSY).  Every round some racer wins, so a few dozen
 * rounds cover any sane number of parallel callers.
 */
#define FIND_ATTEMPTS	64

enum action {
	A_NONE,
	A_CREATE,		/* attach a file to a device */
	A_DELETE,		/* -d */
	A_DELETE_ALL,		/* -D */
	A_SHOW,			/* -a, -j, -l or no argument at all */
	A_SHOW_ONE,		/* fblksetup DEV */
	A_FIND_FREE,		/* -f without a file */
	A_SET_CAPACITY,		/* -c */
	A_SET_PARAMS,		/* --direct-io, --io-mode... DEV */
	A_SET_BLOCK_SIZE,	/* -b N DEV */
};

struct options {
	enum action action;
	char action_opt;	/* the option that chose it, for messages */
	bool find;		/* -f */
	const char *device;
	const char *file;
	const char **detach;	/* -d's devices */
	size_t ndetach;

	uint64_t offset;
	bool has_offset;
	uint64_t sizelimit;
	bool has_sizelimit;
	uint32_t block_size;	/* 0: the driver's default, 512 */
	uint32_t flags;		/* FBLK_FL_* asked for */
	unsigned int queues;	/* 0: not asked for */
	unsigned int depth;
	int direct_io;		/* --direct-io: -1 not given, 0 off, 1 on */
#ifdef HAVE_FBLK_PARAMS
	struct fblk_params params;	/* mask: what was asked for */
#endif
	bool show;
	bool nooverlap;
	bool verbose;
	bool remove;		/* --remove: remove the devices detached */

	bool list;
	struct list_options lo;
	bool columns_set;
};

/* ---- messages ---- */

static void __printf(1, 2) warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("fblksetup: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __printf(1, 2) __noreturn usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("fblksetup: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'fblksetup --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

/*
 * Exit after output that scripts read (--help, -V): a write error (a full
 * disk, a closed pipe) must not pass for success.
 */
static void __noreturn exit_flushed(int status)
{
	if (fflush(stdout) || ferror(stdout)) {
		warnx("write error: %s", strerror(errno ?: EIO));
		status = EXIT_FAIL;
	}
	exit(status);
}

static void __noreturn usage(void)
{
	fputs("\nUsage:\n"
	      " fblksetup [options] [<fblkdev>]\n"
	      " fblksetup [options] -f | <fblkdev> <file>\n"
	      "\nSet up and control fblk devices (files exported as block devices).\n"
	      "\nOptions:\n"
	      " -a, --all                     list all used devices\n"
	      " -d, --detach <fblkdev>...     detach one or more devices\n"
	      " -D, --detach-all              detach all used devices\n"
	      "     --remove                  remove the devices once detached (with -d,\n"
	      "                                 -D, or alone: --remove <fblkdev>...)\n"
	      " -f, --find                    find first unused device\n"
	      " -c, --set-capacity <fblkdev>  resize the device\n"
	      " -j, --associated <file>       list all devices associated with <file>\n"
	      " -L, --nooverlap               avoid possible conflict between devices\n"
	      "\n"
	      " -o, --offset <num>            start at offset <num> into file\n"
	      "     --sizelimit <num>         device is limited to <num> bytes of the file\n"
	      " -b, --sector-size <num>       set the logical sector size to <num>\n"
	      " -P, --partscan                create a partitioned device\n"
	      " -r, --read-only               set up a read-only device\n"
	      "     --direct-io[=<on|off>]    open backing file with O_DIRECT\n"
#ifdef HAVE_FBLK_PARAMS
	      "     --io-mode <mode>          buffered, direct, dontcache or auto\n"
	      "     --submit <how>            async (default) or threads\n"
	      "     --pool-size <num>         workers of the device's pool (1-512)\n"
#endif
#ifdef HAVE_FBLK_RA_PARAMS
	      "     --ra-policy <policy>      readahead: auto, sequential, random or off\n"
	      "     --ra-kb <num>             readahead window in KiB (0-65536, 0: the\n"
	      "                                 backing device's read_ahead_kb)\n"
	      "     --inline-depth <num>      requests in flight per queue up to which the\n"
	      "                                 submitter issues them itself (0-1024)\n"
#endif
	      "     --queues <num>            number of hardware queues (1-64)\n"
	      "     --depth <num>             tags per hardware queue (1-1024)\n"
	      "     --show                    print device name after setup (with -f)\n"
	      " -v, --verbose                 verbose mode\n"
	      "\n"
	      " -J, --json                    use JSON --list output format\n"
	      " -l, --list                    list info about all or specified (default)\n"
	      " -n, --noheadings              don't print headings for --list output\n"
	      " -O, --output <cols>           specify columns to output for --list\n"
	      "     --output-all              output all columns\n"
	      "     --raw                     use raw --list output format\n"
	      "\n"
	      " -h, --help                    display this help\n"
	      " -V, --version                 display version\n"
	      "\n<num> may be followed by K, M, G, T, P, E (KiB, MiB... = powers of 1024)\n"
	      "or KB, MB, GB... (powers of 1000).\n"
	      "\nAvailable output columns:\n", stdout);
	list_print_column_help(stdout);
	fputs("\nExit status: 0 success, 1 failure, 2 bad usage.\n"
	      "\nFor more details see fblksetup(8).\n", stdout);
	exit_flushed(EXIT_OK);
}

/* ---- parsing numbers ---- */

/*
 * Sizes and offsets as losetup takes them: a decimal (or 0x hexadecimal)
 * number, optionally followed by K, M, G, T, P, E, Z or Y for powers of 1024
 * ("KiB" is the same as "K") or KB, MB... for powers of 1000.  A decimal
 * number with a suffix may have a fraction ("1.5K" is 1536; what is below
 * a byte is dropped, as losetup does).  A leading zero does not mean octal
 * here: "010" is ten.
 */
static int parse_size(const char *arg, uint64_t *result)
{
	static const char suffixes[] = "KMGTPEZY";
	const char *p = arg, *s;
	uint64_t value = 0, base, mult = 1, frac = 0, frac_div = 1;
	unsigned __int128 total;
	int digits = 0, hex = 0, exp;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		hex = 1;
		p += 2;
	}
	for (; *p; p++, digits++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (hex && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (hex && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (__builtin_mul_overflow(value, hex ? 16 : 10, &value) ||
		    __builtin_add_overflow(value, d, &value))
			return -ERANGE;
	}
	if (!digits)
		return -EINVAL;
	if (*p == '.' && !hex) {
		/* Digits beyond a nanobyte cannot change the result. */
		for (p++, digits = 0; *p >= '0' && *p <= '9'; p++, digits++) {
			if (frac_div < 1000000000000000000ULL) {
				frac = frac * 10 + (*p - '0');
				frac_div *= 10;
			}
		}
		/* "1." and a fraction of plain bytes are not sizes. */
		if (!digits || !*p)
			return -EINVAL;
	}
	if (!*p)
		goto done;

	s = strchr(suffixes, *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
	if (!s || !*s)
		return -EINVAL;
	exp = s - suffixes + 1;
	if (!p[1] || (p[1] == 'i' && (p[2] == 'B' || p[2] == 'b') && !p[3]))
		base = 1024;
	else if ((p[1] == 'B' || p[1] == 'b') && !p[2])
		base = 1000;
	else
		return -EINVAL;
	while (exp--)
		if (__builtin_mul_overflow(mult, base, &mult))
			return -ERANGE;
done:
	total = (unsigned __int128)value * mult +
		(unsigned __int128)frac * mult / frac_div;
	if (total > UINT64_MAX)
		return -ERANGE;
	*result = total;
	return 0;
}

static uint64_t size_or_usage(const char *arg, const char *what)
{
	uint64_t v;
	int ret = parse_size(arg, &v);

	/* File offsets are signed 64-bit numbers (loff_t) in the kernel. */
	if (ret == -ERANGE || (!ret && v > INT64_MAX))
		usage_error("invalid %s '%s': too large", what, arg);
	if (ret)
		usage_error("invalid %s '%s': not a size", what, arg);
	return v;
}

static unsigned int uint_or_usage(const char *arg, const char *what,
				  unsigned int min, unsigned int max)
{
	uint64_t v = 0;
	const char *p;

	for (p = arg; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > max)
			break;
	}
	if (p == arg || *p || v < min || v > max)
		usage_error("invalid %s '%s': expected a number from %u to %u",
			    what, arg, min, max);
	return v;
}

/* ---- options ---- */

static void set_action(struct options *o, enum action a, char opt)
{
	if (o->action != A_NONE && o->action != a)
		usage_error("options -%c and -%c are mutually exclusive",
			    o->action_opt, opt);
	o->action = a;
	o->action_opt = opt;
}

enum {
	OPT_SIZELIMIT = 256,
	OPT_SHOW,
	OPT_RAW,
	OPT_DIRECT_IO,
	OPT_OUTPUT_ALL,
	OPT_QUEUES,
	OPT_DEPTH,
	OPT_IO_MODE,
	OPT_SUBMIT,
	OPT_POOL_SIZE,
	OPT_RA_POLICY,
	OPT_RA_KB,
	OPT_INLINE_DEPTH,
	OPT_REMOVE,
};

#ifdef HAVE_FBLK_PARAMS
static const char *const io_mode_names[] = {
	[FBLK_IO_BUFFERED]	= "buffered",
	[FBLK_IO_DIRECT]	= "direct",
	[FBLK_IO_DONTCACHE]	= "dontcache",
	[FBLK_IO_AUTO]		= "auto",
};

static const char *const submit_names[] = {
	[FBLK_SUBMIT_ASYNC]	= "async",
	[FBLK_SUBMIT_THREADS]	= "threads",
};

/* The index of @arg in @names; a usage error naming the choices if none. */
static unsigned int name_or_usage(const char *arg, const char *what,
				  const char *const *names, size_t count)
{
	char choices[128] = "";
	size_t i, len = 0, left = 0;

	for (i = 0; i < count; i++)
		if (names[i] && !strcmp(arg, names[i]))
			return i;
	for (i = 0; i < count; i++)
		left += !!names[i];
	/* "a, b, c or d" */
	for (i = 0; i < count && len < sizeof(choices); i++) {
		if (!names[i])
			continue;
		left--;
		len += snprintf(choices + len, sizeof(choices) - len, "%s%s",
				names[i], left > 1 ? ", " : left ? " or " : "");
	}
	usage_error("invalid %s '%s': expected %s", what, arg, choices);
}
#endif

static const struct option longopts[] = {
	{ "all",		no_argument,		NULL, 'a' },
	{ "set-capacity",	required_argument,	NULL, 'c' },
	{ "detach",		required_argument,	NULL, 'd' },
	{ "detach-all",		no_argument,		NULL, 'D' },
	{ "find",		no_argument,		NULL, 'f' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "associated",		required_argument,	NULL, 'j' },
	{ "json",		no_argument,		NULL, 'J' },
	{ "list",		no_argument,		NULL, 'l' },
	{ "nooverlap",		no_argument,		NULL, 'L' },
	{ "noheadings",		no_argument,		NULL, 'n' },
	{ "offset",		required_argument,	NULL, 'o' },
	{ "output",		required_argument,	NULL, 'O' },
	{ "output-all",		no_argument,		NULL, OPT_OUTPUT_ALL },
	{ "sizelimit",		required_argument,	NULL, OPT_SIZELIMIT },
	{ "sector-size",	required_argument,	NULL, 'b' },
	{ "partscan",		no_argument,		NULL, 'P' },
	{ "read-only",		no_argument,		NULL, 'r' },
	{ "direct-io",		optional_argument,	NULL, OPT_DIRECT_IO },
	{ "raw",		no_argument,		NULL, OPT_RAW },
	{ "remove",		no_argument,		NULL, OPT_REMOVE },
	{ "show",		no_argument,		NULL, OPT_SHOW },
	{ "queues",		required_argument,	NULL, OPT_QUEUES },
	{ "depth",		required_argument,	NULL, OPT_DEPTH },
#ifdef HAVE_FBLK_PARAMS
	{ "io-mode",		required_argument,	NULL, OPT_IO_MODE },
	{ "submit",		required_argument,	NULL, OPT_SUBMIT },
	{ "pool-size",		required_argument,	NULL, OPT_POOL_SIZE },
#endif
#ifdef HAVE_FBLK_RA_PARAMS
	{ "ra-policy",		required_argument,	NULL, OPT_RA_POLICY },
	{ "ra-kb",		required_argument,	NULL, OPT_RA_KB },
	{ "inline-depth",	required_argument,	NULL, OPT_INLINE_DEPTH },
#endif
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "version",		no_argument,		NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/*
 * --direct-io is losetup's spelling of io_mode direct (on) or buffered (off,
 * on a bound device; at setup, off is simply the default).  Said together
 * with --io-mode, the two must agree.
 */
static void resolve_direct_io(struct options *o)
{
	if (o->direct_io < 0)
		return;
#ifdef HAVE_FBLK_PARAMS
	if (o->params.mask & FBLK_PARAM_IO_MODE) {
		bool direct = o->params.io_mode == FBLK_IO_DIRECT;

		if (direct != (o->direct_io == 1))
			usage_error("--direct-io=%s and --io-mode %s contradict each other",
				    o->direct_io ? "on" : "off",
				    io_mode_names[o->params.io_mode]);
		if (o->direct_io && o->action == A_CREATE) {
			/* The flag says it already; the driver wants one. */
			o->params.mask &= ~FBLK_PARAM_IO_MODE;
		}
	} else if (o->action == A_SET_PARAMS) {
		o->params.mask |= FBLK_PARAM_IO_MODE;
		o->params.io_mode = o->direct_io ? FBLK_IO_DIRECT :
						   FBLK_IO_BUFFERED;
	}
#endif
	if (o->direct_io && o->action == A_CREATE)
		o->flags |= FBLK_FL_DIRECT_IO;
}

/* For getopt's errors: was the option at fault a --long one? */
static bool is_long_option(const char *arg)
{
	return arg && !strncmp(arg, "--", 2) && arg[2];
}

/*
 * getopt_long takes any unique prefix of a long option; one that several
 * options start with is refused with optopt 0, as an unknown one is.  Say
 * which it was, as losetup does: "option '--de' is ambiguous; possibilities:
 * '--detach' '--detach-all' '--depth'".
 */
static void check_ambiguous(const char *arg)
{
	const char *name = arg + 2;
	size_t len = strcspn(name, "="), n = 0, i;
	char list[512] = "";
	size_t used = 0;

	for (i = 0; longopts[i].name; i++) {
		if (strncmp(longopts[i].name, name, len))
			continue;
		if (strlen(longopts[i].name) == len)
			return;		/* an exact match is never ambiguous */
		n++;
		if (used < sizeof(list))
			used += snprintf(list + used, sizeof(list) - used,
					 " '--%s'", longopts[i].name);
	}
	if (n > 1)
		usage_error("option '--%.*s' is ambiguous; possibilities:%s",
			    (int)len, name, list);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	bool json = false, raw = false, output_all = false;
	bool setup_only = false, settings = false;
	int c;

	list_default_columns(&o->lo);
	/* Errors of our own, with the usage hint, instead of getopt's. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ab:c:d:Dfhj:JlLnO:o:PrvV",
				longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			set_action(o, A_SHOW, 'a');
			break;
		case 'b': {
			uint64_t bs = size_or_usage(optarg, "sector size");

			if (bs < FBLK_MIN_BLOCK_SIZE || bs > FBLK_MAX_BLOCK_SIZE ||
			    (bs & (bs - 1)))
				usage_error("invalid sector size '%s': expected 512, 1024, 2048 or 4096",
					    optarg);
			o->block_size = bs;
			break;
		}
		case 'c':
			set_action(o, A_SET_CAPACITY, 'c');
			o->device = optarg;
			break;
		case 'd':
			set_action(o, A_DELETE, 'd');
			o->detach = realloc(o->detach, (o->ndetach + 1) * sizeof(*o->detach));
			if (!o->detach) {
				perror("fblksetup");
				exit(EXIT_FAIL);
			}
			o->detach[o->ndetach++] = optarg;
			break;
		case 'D':
			set_action(o, A_DELETE_ALL, 'D');
			break;
		case 'f':
			set_action(o, A_FIND_FREE, 'f');
			o->find = true;
			break;
		case 'h':
			usage();
		case 'j':
			set_action(o, A_SHOW, 'j');
			o->file = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'l':
			o->list = true;
			break;
		case 'L':
			o->nooverlap = true;
			setup_only = true;
			break;
		case 'n':
			o->lo.noheadings = true;
			break;
		case 'o':
			o->offset = size_or_usage(optarg, "offset");
			o->has_offset = true;
			break;
		case 'O':
			if (list_parse_columns(&o->lo, optarg))
				usage_error("invalid --output list '%s'", optarg);
			o->columns_set = true;
			break;
		case OPT_OUTPUT_ALL:
			output_all = true;
			break;
		case OPT_SIZELIMIT:
			o->sizelimit = size_or_usage(optarg, "size limit");
			o->has_sizelimit = true;
			setup_only = true;
			break;
		case 'P':
			o->flags |= FBLK_FL_PARTSCAN;
			setup_only = true;
			break;
		case 'r':
			o->flags |= FBLK_FL_READ_ONLY;
			setup_only = true;
			break;
		case OPT_DIRECT_IO:
			if (!optarg || !strcmp(optarg, "on"))
				o->direct_io = 1;
			else if (!strcmp(optarg, "off"))
				o->direct_io = 0;
			else
				usage_error("invalid --direct-io argument '%s': expected on or off",
					    optarg);
			settings = true;
			break;
#ifdef HAVE_FBLK_PARAMS
		case OPT_IO_MODE:
			o->params.io_mode = name_or_usage(optarg, "--io-mode",
							  io_mode_names,
							  ARRAY_SIZE(io_mode_names));
			o->params.mask |= FBLK_PARAM_IO_MODE;
			settings = true;
			break;
		case OPT_SUBMIT:
			o->params.submit = name_or_usage(optarg, "--submit",
							 submit_names,
							 ARRAY_SIZE(submit_names));
			o->params.mask |= FBLK_PARAM_SUBMIT;
			settings = true;
			break;
		case OPT_POOL_SIZE:
			o->params.pool_size = uint_or_usage(optarg, "pool size", 1,
							    FBLK_MAX_POOL_SIZE);
			o->params.mask |= FBLK_PARAM_POOL_SIZE;
			settings = true;
			break;
#endif
#ifdef HAVE_FBLK_RA_PARAMS
		case OPT_RA_POLICY:
			o->params.ra_policy = name_or_usage(optarg, "--ra-policy",
							    fblk_ra_policy_names,
							    ARRAY_SIZE(fblk_ra_policy_names));
			o->params.mask |= FBLK_PARAM_RA_POLICY;
			settings = true;
			break;
		case OPT_RA_KB:
			o->params.ra_kb = uint_or_usage(optarg, "--ra-kb", 0,
							FBLK_MAX_RA_KB);
			o->params.mask |= FBLK_PARAM_RA_KB;
			settings = true;
			break;
		case OPT_INLINE_DEPTH:
			o->params.inline_depth = uint_or_usage(optarg, "--inline-depth",
							       0, FBLK_MAX_QUEUE_DEPTH);
			o->params.mask |= FBLK_PARAM_INLINE_DEPTH;
			settings = true;
			break;
#endif
		case OPT_RAW:
			raw = true;
			break;
		case OPT_SHOW:
			o->show = true;
			break;
		case OPT_REMOVE:
			o->remove = true;
			break;
		case OPT_QUEUES:
			o->queues = uint_or_usage(optarg, "number of queues", 1,
						  FBLK_MAX_HW_QUEUES);
			break;
		case OPT_DEPTH:
			o->depth = uint_or_usage(optarg, "queue depth", 1,
						 FBLK_MAX_QUEUE_DEPTH);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'V':
			printf("fblksetup from fblk %s\n", FBLKSETUP_VERSION);
			exit_flushed(EXIT_OK);
		case ':':
			if (!is_long_option(argv[optind - 1]))
				usage_error("option requires an argument -- '%c'", optopt);
			usage_error("option '%s' requires an argument", argv[optind - 1]);
		default:
			if (!is_long_option(argv[optind - 1]))
				usage_error("invalid option -- '%c'", optopt);
			if (optopt)	/* a known long option given an argument */
				usage_error("option '%.*s' doesn't allow an argument",
					    (int)strcspn(argv[optind - 1], "="),
					    argv[optind - 1]);
			check_ambiguous(argv[optind - 1]);
			usage_error("unrecognized option '%s'", argv[optind - 1]);
		}
	}

	/* Like losetup: no argument at all lists every device. */
	if (argc == 1) {
		o->action = A_SHOW;
		o->list = true;
	}
	if (json || raw || output_all || o->columns_set)
		o->list = true;
	o->lo.format = json ? LIST_JSON : raw ? LIST_RAW : LIST_TABLE;
	if (output_all)
		list_all_columns(&o->lo);
	if (o->list && (o->action == A_DELETE || o->action == A_DELETE_ALL ||
			o->action == A_SET_CAPACITY || o->action == A_FIND_FREE))
		usage_error("the list options (-l, -J, -O, --raw) and -%c are mutually exclusive",
			    o->action_opt);

	if (o->action == A_FIND_FREE && optind < argc) {
		/* fblksetup -f FILE */
		o->action = A_CREATE;
		o->file = argv[optind++];
	}
	if (o->list && o->action == A_NONE && optind == argc)
		o->action = A_SHOW;
	/* fblksetup --remove DEV...: -d --remove, as in losetup 2.42 */
	if (o->remove && o->action == A_NONE) {
		if (optind == argc)
			usage_error("no fblk device specified");
		if (o->list)
			usage_error("the list options (-l, -J, -O, --raw) and --remove are mutually exclusive");
		set_action(o, A_DELETE, 'd');
	}
	if (o->action == A_NONE && optind + 1 == argc) {
		/* fblksetup [-l] DEV, or fblksetup --direct-io=on DEV */
		o->action = A_SHOW_ONE;
		o->device = argv[optind++];
#ifdef HAVE_FBLK_PARAMS
		if (settings && !o->list)
			o->action = A_SET_PARAMS;
#endif
	}
	if (o->action == A_NONE) {
		/* fblksetup DEV FILE */
		if (optind >= argc)
			usage_error("no fblk device specified");
		o->action = A_CREATE;
		o->device = argv[optind++];
		o->file = argv[optind++];
	}
	if (o->action == A_DELETE) {
		/* -d DEV DEV...: the rest are devices too */
		while (optind < argc) {
			o->detach = realloc(o->detach, (o->ndetach + 1) * sizeof(*o->detach));
			if (!o->detach) {
				perror("fblksetup");
				exit(EXIT_FAIL);
			}
			o->detach[o->ndetach++] = argv[optind++];
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (o->remove && o->action != A_DELETE && o->action != A_DELETE_ALL)
		usage_error("the option --remove is allowed with --detach, --detach-all or devices only");

	/*
	 * -b N DEV: losetup changes an attached device's sector size
	 * (LOOP_SET_BLOCK_SIZE).  Said alone with a device, it is that request.
	 */
	if (o->block_size && o->action == A_SHOW_ONE && !o->list && !setup_only &&
	    !settings)
		o->action = A_SET_BLOCK_SIZE;
	else if (o->block_size)
		setup_only = true;

	/* Options that only mean something while attaching. */
	if (setup_only && o->action != A_CREATE)
		usage_error("the options --sizelimit, --sector-size, --read-only, --partscan and --nooverlap are allowed during setup only");
#if defined(HAVE_FBLK_RA_PARAMS)
	if (settings && o->action != A_CREATE && o->action != A_SET_PARAMS)
		usage_error("the options --direct-io, --io-mode, --submit, --pool-size, --ra-policy, --ra-kb and --inline-depth are allowed during setup or with one device only");
#elif defined(HAVE_FBLK_PARAMS)
	if (settings && o->action != A_CREATE && o->action != A_SET_PARAMS)
		usage_error("the options --direct-io, --io-mode, --submit and --pool-size are allowed during setup or with one device only");
#else
	if (settings && o->action != A_CREATE)
		usage_error("the option --direct-io is allowed during setup only");
#endif
	resolve_direct_io(o);
	if (o->show && o->action != A_CREATE && o->action != A_FIND_FREE)
		usage_error("the option --show is allowed during setup or with --find only");
	if (o->has_offset && o->action != A_CREATE &&
	    !(o->action == A_SHOW && o->file))
		usage_error("the option --offset is allowed during setup or with --associated only");
	if ((o->queues || o->depth) && o->action != A_CREATE &&
	    o->action != A_FIND_FREE)
		usage_error("the options --queues and --depth are allowed during setup or with --find only");
	if (o->nooverlap && !o->find)
		usage_error("the option --nooverlap makes sense with --find only");

	/* What the driver would refuse with EINVAL, said in plain words. */
	if (o->action == A_CREATE && o->offset % 512)
		usage_error("invalid offset '%" PRIu64 "': not a multiple of 512 bytes",
			    o->offset);
	if (o->action == A_CREATE && o->sizelimit % 512)
		usage_error("invalid size limit '%" PRIu64 "': not a multiple of 512 bytes",
			    o->sizelimit);
}

/* ---- errors of the driver, explained ---- */

/*
 * A few errnos of the ABI mean something strerror() cannot guess; see the
 * ABI's semantics in include/uapi/linux/fblk.h and Documentation/fblk.rst.
 */
/* The io_mode asked for, by --direct-io or --io-mode; -1 if none. */
static int io_mode_asked(const struct options *o)
{
#ifdef HAVE_FBLK_PARAMS
	if (o->params.mask & FBLK_PARAM_IO_MODE)
		return o->params.io_mode;
#endif
	if (o->direct_io >= 0)
		return o->direct_io ? FBLK_IO_DIRECT : FBLK_IO_BUFFERED;
	return -1;
}

static const char *configure_hint(int err, const struct options *o,
				  const struct stat *st)
{
	switch (err) {
	case ELOOP:
		return "the file is on this device";
	case EOPNOTSUPP:
		if (io_mode_asked(o) == FBLK_IO_DIRECT)
			return "backing file does not support direct I/O";
#ifdef HAVE_FBLK_PARAMS
		if (io_mode_asked(o) == FBLK_IO_DONTCACHE)
			return "uncached buffered I/O is not offered by this kernel or backing filesystem";
#endif
		break;
	case EISDIR:
		return "the backing file is a directory";
	case EBADF:
		return "the backing file is not open for reading";
	case EINVAL:
		if (S_ISSOCK(st->st_mode) || S_ISFIFO(st->st_mode) ||
		    S_ISCHR(st->st_mode))
			return "the backing file must be a regular file or a block device";
		if (S_ISREG(st->st_mode) && o->offset &&
		    (uint64_t)st->st_size < o->offset)
			return "the offset is beyond the end of the backing file";
		if (io_mode_asked(o) == FBLK_IO_DIRECT)
			return "sector size or offset below the backing file's direct I/O alignment";
		break;
	case ENOSPC:
		return "no room for another device";
	}
	return NULL;
}

static void report_configure_error(const char *name, int err,
				   const struct options *o,
				   const struct stat *st)
{
	const char *hint = configure_hint(err, o, st);

	if (hint)
		warnx("%s: failed to set up device: %s (%s)", name,
		      strerror(err), hint);
	else
		warnx("%s: failed to set up device: %s", name, strerror(err));
}

static int open_control_or_warn(void)
{
	bool modprobe_failed;
	int fd = fblk_open_control_load(&modprobe_failed);

	if (fd >= 0)
		return fd;
	if (modprobe_failed)
		warnx("%s: cannot open control device: %s (the fblk module is not loaded and 'modprobe fblk' failed)",
		      FBLK_CONTROL_PATH, strerror(-fd));
	else if (fd == -ENOENT || fd == -ENXIO || fd == -ENODEV)
		warnx("%s: cannot open control device: %s (is the fblk module loaded?)",
		      FBLK_CONTROL_PATH, strerror(-fd));
	else
		warnx("%s: cannot open control device: %s", FBLK_CONTROL_PATH,
		      strerror(-fd));
	return fd;
}

/* Why a device node may be missing: said where a device was named. */
static const char *module_hint(int err)
{
	if ((err == ENOENT || err == ENODEV || err == ENXIO) &&
	    !fblk_module_loaded())
		return " (the fblk module is not loaded)";
	return "";
}

static int device_number_or_warn(const char *arg, unsigned int *number)
{
	int ret = fblk_parse_name(arg, number);

	if (ret == -EINVAL)
		warnx("%s: not an fblk device (expected /dev/fblkN)", arg);
	else if (ret)
		warnx("%s: failed to use device: %s", arg, strerror(-ret));
	return ret;
}

/* ---- attach ---- */

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * Open the backing file.  Like losetup: read-write unless -r, falling back
 * to read-only when the file or its filesystem refuses writers; the device
 * is then read-only too.
 */
static int open_backing(struct options *o, struct stat *st)
{
	int flags = o->flags & FBLK_FL_READ_ONLY ? O_RDONLY : O_RDWR;
	int fd;

	fd = open(o->file, flags | O_CLOEXEC);
	if (fd < 0 && flags == O_RDWR &&
	    (errno == EROFS || errno == EACCES || errno == EPERM)) {
		fd = open(o->file, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			o->flags |= FBLK_FL_READ_ONLY;
	}
	if (fd < 0) {
		warnx("%s: failed to open backing file: %s", o->file,
		      strerror(errno));
		return -1;
	}
	if (fstat(fd, st)) {
		warnx("%s: failed to use backing file: %s", o->file,
		      strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* FBLK_CONFIGURE on device @number; 0 or a negative errno. */
static int configure(unsigned int number, int backing_fd,
		     const struct options *o, bool *open_failed)
{
	struct fblk_config cfg;
	int fd, ret;

	fd = fblk_open_device(number, O_RDWR, true);
	if (fd < 0) {
		*open_failed = true;
		return fd;
	}
	*open_failed = false;
	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = backing_fd;
	cfg.block_size = o->block_size;
	cfg.offset = o->offset;
	cfg.sizelimit = o->sizelimit;
	cfg.flags = o->flags;
#ifdef HAVE_FBLK_PARAMS
	cfg.params = o->params;
#endif
	ret = ioctl(fd, FBLK_CONFIGURE, &cfg) ? -errno : 0;
	close(fd);
	return ret;
}

static void report_failure(const char *name, int err, bool open_failed,
			   const struct options *o, const struct stat *st)
{
	if (open_failed)
		warnx("%s: failed to open device: %s", name, strerror(-err));
	else
		report_configure_error(name, -err, o, st);
}

/*
 * -f FILE: race-free against other fblksetup runs because FBLK_CONFIGURE is
 * atomic: of several processes that found the same free device, one binds
 * it and the others get EBUSY and look again.
 */
static int attach_find(const struct options *o, int backing_fd,
		       const struct stat *st, unsigned int *number)
{
	bool fresh = o->queues || o->depth;
	int ctl, attempt, n = -1, ret = -EBUSY;
	bool open_failed = false;

	ctl = open_control_or_warn();
	if (ctl < 0)
		return -1;
	for (attempt = 0; attempt < FIND_ATTEMPTS; attempt++) {
		if (fresh) {
			/* A device of its own, with the geometry asked for. */
			struct fblk_ctl_add add = {
				.id = -1,
				.nr_hw_queues = o->queues,
				.queue_depth = o->depth,
			};

			n = ioctl(ctl, FBLK_CTL_ADD, &add);
			if (n < 0) {
				warnx("failed to add an fblk device: %s",
				      strerror(errno));
				break;
			}
		} else {
			n = ioctl(ctl, FBLK_CTL_GET_FREE);
			if (n < 0) {
				warnx("cannot find an unused fblk device: %s",
				      strerror(errno));
				break;
			}
		}
		ret = configure(n, backing_fd, o, &open_failed);
		if (!ret)
			break;
		/*
		 * EBUSY: another process bound it first.  ENXIO/ENOENT/ENODEV:
		 * it was removed between finding and opening it.  A device we
		 * added and lost this way belongs to the winner now.
		 */
		if (ret != -EBUSY && ret != -ENXIO && ret != -ENOENT &&
		    ret != -ENODEV) {
			char path[FBLK_NAME_SIZE];

			fblk_path(n, path, sizeof(path));
			report_failure(path, ret, open_failed, o, st);
			if (fresh)
				ioctl(ctl, FBLK_CTL_REMOVE, n);
			n = -1;
			break;
		}
		if (o->verbose)
			warnx("device %d was taken (%s), looking again", n,
			      strerror(-ret));
		n = -1;
		/* Spread the losers out so the next round has one winner. */
		sleep_us(1000 + rand() % 4000);
	}
	close(ctl);
	if (n < 0 && ret == -EBUSY && attempt == FIND_ATTEMPTS)
		warnx("cannot find an unused fblk device: %s (gave up after %d attempts)",
		      strerror(EBUSY), FIND_ATTEMPTS);
	if (n < 0)
		return -1;
	*number = n;
	return 0;
}

/* The hardware queues a device asked for @queues gets from blk-mq. */
static unsigned int queues_in_effect(unsigned int queues)
{
	unsigned int cpus = fblk_possible_cpus();

	return cpus && queues > cpus ? cpus : queues;
}

/*
 * Remove free device @number and add it again with @add's geometry.  If the
 * add fails, the old geometry is put back: bad input changes nothing.
 */
static int reshape_device(int ctl, const char *name, unsigned int number,
			  const struct fblk_ctl_add *add, unsigned int queues,
			  unsigned int depth)
{
	struct fblk_ctl_add old = {
		.id = number,
		.nr_hw_queues = queues,
		.queue_depth = depth,
	};
	struct fblk_ctl_add new = *add;
	int err;

	if (ioctl(ctl, FBLK_CTL_REMOVE, number)) {
		err = errno;
		warnx("%s: cannot change queues or depth: %s%s", name,
		      strerror(err), err == EBUSY ? " (device is open)" : "");
		return -1;
	}
	if (ioctl(ctl, FBLK_CTL_ADD, &new) < 0) {
		err = errno;
		ioctl(ctl, FBLK_CTL_ADD, &old);
		warnx("%s: cannot change queues or depth: %s", name,
		      strerror(err));
		return -1;
	}
	return 0;
}

/*
 * Make device @number exist with the geometry asked for (if any): added when
 * missing, removed and added again when it is free but shaped otherwise.
 * *created says whether a failed attach should remove it again.
 */
static int prepare_device(const struct options *o, const char *name,
			  unsigned int number, bool *created)
{
	struct fblk_ctl_add add = {
		.id = number,
		.nr_hw_queues = o->queues,
		.queue_depth = o->depth,
	};
	unsigned int queues = 0, depth = 0;
	bool exists = fblk_exists(number);
	int ctl, ret;

	*created = false;
	if (exists) {
		if (!o->queues && !o->depth)
			return 0;
		ret = fblk_get_geometry(number, &queues, &depth);
		if (ret) {
			warnx("%s: cannot read queues and depth: %s", name,
			      strerror(-ret));
			return -1;
		}
		if ((!o->queues || queues_in_effect(o->queues) == queues) &&
		    (!o->depth || o->depth == depth))
			return 0;
		if (fblk_is_bound(number)) {
			warnx("%s: device is in use; detach it before changing its queues or depth",
			      name);
			return -1;
		}
		/* What was not asked for stays as it is. */
		add.nr_hw_queues = o->queues ?: queues;
		add.queue_depth = o->depth ?: depth;
	}

	ctl = open_control_or_warn();
	if (ctl < 0)
		return -1;
	if (exists) {
		ret = reshape_device(ctl, name, number, &add, queues, depth);
	} else {
		ret = ioctl(ctl, FBLK_CTL_ADD, &add) < 0 ? -1 : 0;
		if (ret)
			warnx("%s: failed to create device: %s", name,
			      strerror(errno));
		else
			*created = true;
	}
	close(ctl);
	return ret;
}

static void remove_device(unsigned int number)
{
	int ctl = fblk_open_control();

	if (ctl >= 0) {
		ioctl(ctl, FBLK_CTL_REMOVE, number);
		close(ctl);
	}
}

/* DEV FILE: device @number, already parsed from o->device. */
static int attach_device(const struct options *o, int backing_fd,
			 const struct stat *st, unsigned int *number)
{
	bool created, open_failed;
	int ret;

	if (prepare_device(o, o->device, *number, &created))
		return -1;
	ret = configure(*number, backing_fd, o, &open_failed);
	if (ret) {
		report_failure(o->device, ret, open_failed, o, st);
		if (created)
			remove_device(*number);
		return -1;
	}
	return 0;
}

/* The end of the device, for --nooverlap: sizelimit, else the file's end. */
static uint64_t range_end(uint64_t offset, uint64_t sizelimit, uint64_t size)
{
	if (sizelimit)
		return offset + sizelimit;
	return size > offset ? size : offset;
}

/*
 * --nooverlap: the same file already attached at the same offset and size
 * limit is reused; one that overlaps otherwise is an error (losetup -L).
 * Returns 1 and sets *number on reuse, 0 to go on, -1 on conflict.
 */
static int find_overlap(const struct options *o, const struct stat *st,
			unsigned int *number)
{
	uint64_t size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : UINT64_MAX;
	uint64_t start = o->offset;
	uint64_t end = range_end(o->offset, o->sizelimit, size);
	unsigned int *numbers;
	size_t count, i;
	int ret = 0;

	if (fblk_list_devices(&numbers, &count))
		return 0;
	for (i = 0; i < count && ret == 0; i++) {
		struct fblkdev dev;
		uint64_t dstart, dend;

		if (fblk_read_device(numbers[i], &dev))
			continue;
		if (fblk_decode_dev(dev.info.backing_dev) != st->st_dev ||
		    dev.info.backing_inode != st->st_ino)
			continue;
		dstart = dev.info.offset;
		dend = range_end(dev.info.offset, dev.info.sizelimit, size);
		if (dstart == start && dev.info.sizelimit == o->sizelimit) {
			*number = numbers[i];
			ret = 1;
		} else if (dstart < end && start < dend) {
			warnx("%s: overlapping fblk device exists for %s",
			      dev.path, o->file);
			ret = -1;
		}
	}
	free(numbers);
	return ret;
}

static void warn_size(const struct options *o, const struct stat *st)
{
	uint64_t size;

	if (!S_ISREG(st->st_mode))
		return;
	size = o->sizelimit;
	if (!size)
		size = (uint64_t)st->st_size > o->offset ? st->st_size - o->offset : 0;
	if (size < 512)
		warnx("%s: Warning: file is smaller than 512 bytes; the fblk device may be useless or invisible for system tools.",
		      o->file);
	else if (size % 512)
		warnx("%s: Warning: file does not fit into a 512-byte sector; the end of the file will be ignored.",
		      o->file);
}

static int do_attach(struct options *o)
{
	unsigned int number = 0;
	struct stat st;
	int fd, ret;

	if (!o->find && device_number_or_warn(o->device, &number))
		return EXIT_FAIL;
	fd = open_backing(o, &st);
	if (fd < 0)
		return EXIT_FAIL;
	if (o->nooverlap) {
		ret = find_overlap(o, &st, &number);
		if (ret) {
			close(fd);
			if (ret < 0)
				return EXIT_FAIL;
			if (o->show) {
				char path[FBLK_NAME_SIZE];

				fblk_path(number, path, sizeof(path));
				printf("%s\n", path);
			}
			return EXIT_OK;
		}
	}
	if (o->find)
		ret = attach_find(o, fd, &st, &number);
	else
		ret = attach_device(o, fd, &st, &number);
	close(fd);
	if (ret)
		return EXIT_FAIL;
	if (o->show) {
		char path[FBLK_NAME_SIZE];

		fblk_path(number, path, sizeof(path));
		printf("%s\n", path);
	}
	warn_size(o, &st);
	return EXIT_OK;
}

/* ---- the other actions ---- */

static int do_find_free(const struct options *o)
{
	char path[FBLK_NAME_SIZE];
	int ctl, n;

	ctl = open_control_or_warn();
	if (ctl < 0)
		return EXIT_FAIL;
	if (o->queues || o->depth) {
		struct fblk_ctl_add add = {
			.id = -1,
			.nr_hw_queues = o->queues,
			.queue_depth = o->depth,
		};

		n = ioctl(ctl, FBLK_CTL_ADD, &add);
	} else {
		n = ioctl(ctl, FBLK_CTL_GET_FREE);
	}
	if (n < 0) {
		warnx("cannot find an unused fblk device: %s", strerror(errno));
		close(ctl);
		return EXIT_FAIL;
	}
	close(ctl);
	fblk_path(n, path, sizeof(path));
	printf("%s\n", path);
	return EXIT_OK;
}

/* How long --remove waits for the last opener (udev's probe) to go. */
#define REMOVE_WAIT_MS		2000
#define REMOVE_WAIT_STEP_MS	10

/*
 * --remove: FBLK_CTL_REMOVE once the device is free.  A detach leaves the
 * device open for a moment (udev probes it after the change event), so
 * EBUSY is retried briefly.
 */
static int remove_one(const char *arg, unsigned int number)
{
	unsigned int waited = 0;
	int ctl, err = 0;

	ctl = open_control_or_warn();
	if (ctl < 0)
		return -1;
	while (ioctl(ctl, FBLK_CTL_REMOVE, number)) {
		err = errno;
		if (err != EBUSY || waited >= REMOVE_WAIT_MS)
			break;
		sleep_us(REMOVE_WAIT_STEP_MS * 1000);
		waited += REMOVE_WAIT_STEP_MS;
		err = 0;
	}
	close(ctl);
	if (err == ENODEV)
		err = 0;	/* someone else removed it: it is gone either way */
	if (err)
		warnx("%s: remove failed: %s%s", arg, strerror(err),
		      err == EBUSY ? " (device is open; it is detached at its last close)" : "");
	return err ? -1 : 0;
}

static int detach_one(const char *arg, bool quiet_unbound, bool remove)
{
	unsigned int number;
	int fd;

	if (device_number_or_warn(arg, &number))
		return -1;
	fd = fblk_open_device(number, O_RDONLY, false);
	if (fd < 0) {
		warnx("%s: detach failed: %s%s", arg, strerror(-fd),
		      module_hint(-fd));
		return -1;
	}
	/*
	 * If someone else holds the device open the driver defers the detach
	 * to the last close and still says 0, like loop's lazy detach.
	 */
	if (ioctl(fd, FBLK_DETACH)) {
		int err = errno;

		close(fd);
		/* Not attached: nothing to detach, but it can be removed. */
		if (err == ENXIO && (quiet_unbound || remove))
			return remove ? remove_one(arg, number) : 0;
		warnx("%s: detach failed: %s", arg, strerror(err));
		return -1;
	}
	close(fd);
	return remove ? remove_one(arg, number) : 0;
}

static int do_detach(const struct options *o)
{
	int ret = EXIT_OK;
	size_t i;

	for (i = 0; i < o->ndetach; i++)
		if (detach_one(o->detach[i], false, o->remove))
			ret = EXIT_FAIL;
	return ret;
}

/* -D: detach every bound device; with --remove, remove every device. */
static int do_detach_all(const struct options *o)
{
	unsigned int *numbers;
	size_t count, i;
	int ret;

	ret = fblk_list_devices(&numbers, &count);
	if (ret) {
		warnx("%s: cannot list devices: %s", FBLK_SYSFS_DIR, strerror(-ret));
		return EXIT_FAIL;
	}
	ret = EXIT_OK;
	for (i = 0; i < count; i++) {
		char path[FBLK_NAME_SIZE];

		if (!o->remove && !fblk_is_bound(numbers[i]))
			continue;
		fblk_path(numbers[i], path, sizeof(path));
		/* One already on its way out (or just detached) is fine. */
		if (detach_one(path, true, o->remove))
			ret = EXIT_FAIL;
	}
	free(numbers);
	return ret;
}

static int do_set_capacity(const struct options *o)
{
	unsigned int number;
	int fd;

	if (device_number_or_warn(o->device, &number))
		return EXIT_FAIL;
	fd = fblk_open_device(number, O_RDONLY, false);
	if (fd < 0) {
		warnx("%s: set capacity failed: %s%s", o->device, strerror(-fd),
		      module_hint(-fd));
		return EXIT_FAIL;
	}
	if (ioctl(fd, FBLK_SET_CAPACITY)) {
		warnx("%s: set capacity failed: %s", o->device, strerror(errno));
		close(fd);
		return EXIT_FAIL;
	}
	close(fd);
	return EXIT_OK;
}

#ifdef HAVE_FBLK_PARAMS
/*
 * fblksetup --direct-io=on DEV (losetup's way), or --io-mode, --submit,
 * --pool-size, --ra-policy, --ra-kb, --inline-depth: change a bound
 * device's settings (only those given).  The driver drains its I/O,
 * switches, and resumes.
 */
static int do_set_params(const struct options *o)
{
	struct stat st = { 0 };
	unsigned int number;
	int fd;

	if (device_number_or_warn(o->device, &number))
		return EXIT_FAIL;
	fd = fblk_open_device(number, O_RDONLY, false);
	if (fd < 0) {
		warnx("%s: failed to change settings: %s%s", o->device,
		      strerror(-fd), module_hint(-fd));
		return EXIT_FAIL;
	}
	if (ioctl(fd, FBLK_SET_PARAMS, &o->params)) {
		int err = errno;
		const char *hint = configure_hint(err, o, &st);

		if (err == ENXIO)
			hint = "device is not set up";
		warnx("%s: failed to change settings: %s%s%s%s", o->device,
		      strerror(err), hint ? " (" : "", hint ?: "",
		      hint ? ")" : "");
		close(fd);
		return EXIT_FAIL;
	}
	close(fd);
	return EXIT_OK;
}
#else
static int do_set_params(const struct options *o)
{
	(void)o;
	return EXIT_FAIL;
}
#endif

/*
 * -b N DEV.  The fblk ABI has no request that changes the logical block
 * size of a bound device (FBLK_SET_PARAMS does not carry it, and its
 * reserved fields must be 0): say so rather than pretend.  Detaching and
 * attaching again with -b is the way until the driver offers one.
 */
static int do_set_block_size(const struct options *o)
{
	unsigned int number;

	if (device_number_or_warn(o->device, &number))
		return EXIT_FAIL;
	if (!fblk_is_bound(number)) {
		int err = fblk_exists(number) ? ENXIO : ENOENT;

		warnx("%s: cannot set the sector size: %s%s", o->device,
		      strerror(err), module_hint(err));
		return EXIT_FAIL;
	}
	warnx("%s: cannot change the sector size of an attached device: the fblk driver offers no request for it (detach, then attach again with -b)",
	      o->device);
	return EXIT_FAIL;
}

/* losetup -a's line: "/dev/loop0: [2049]:12 (/img), offset 1024". */
static void print_status_line(const struct fblkdev *dev)
{
	printf("%s: [%04" PRIu64 "]:%" PRIu64 " (%s)", dev->path,
	       (uint64_t)dev->info.backing_dev,
	       (uint64_t)dev->info.backing_inode, dev->backing_file);
	if (dev->info.offset)
		printf(", offset %" PRIu64, (uint64_t)dev->info.offset);
	if (dev->info.sizelimit)
		printf(", sizelimit %" PRIu64, (uint64_t)dev->info.sizelimit);
	putchar('\n');
}

static bool is_associated(const struct fblkdev *dev, const struct options *o,
			  const struct stat *st)
{
	if (st) {
		/* A block device matches by its number too, from any /dev. */
		bool same_bdev = S_ISBLK(st->st_mode) && dev->info.backing_rdev &&
				 fblk_decode_dev(dev->info.backing_rdev) == st->st_rdev;

		if (!same_bdev &&
		    (fblk_decode_dev(dev->info.backing_dev) != st->st_dev ||
		     dev->info.backing_inode != st->st_ino))
			return false;
	} else if (strcmp(dev->backing_file, o->file)) {
		/* The file is gone: its name is all there is to compare. */
		return false;
	}
	return !o->has_offset || dev->info.offset == o->offset;
}

static int do_show(const struct options *o)
{
	struct fblkdev *devs = NULL;
	unsigned int *numbers;
	struct stat sb, *st = NULL;
	size_t count, ndevs = 0, i;
	int ret;

	if (o->file && !stat(o->file, &sb))
		st = &sb;
	/* Nothing to list; stdout stays what scripts expect, empty. */
	if (!fblk_module_loaded())
		warnx("the fblk module is not loaded: no devices");
	ret = fblk_list_devices(&numbers, &count);
	if (ret == -ENOENT) {
		count = 0;
		numbers = NULL;
	} else if (ret) {
		warnx("%s: cannot list devices: %s", FBLK_SYSFS_DIR, strerror(-ret));
		return EXIT_FAIL;
	}
	if (count) {
		devs = calloc(count, sizeof(*devs));
		if (!devs) {
			perror("fblksetup");
			free(numbers);
			return EXIT_FAIL;
		}
	}
	ret = EXIT_OK;
	for (i = 0; i < count; i++) {
		int err = fblk_read_device(numbers[i], &devs[ndevs]);

		/* Unbound, or gone since the listing: not "used". */
		if (err == -ENXIO || err == -ENODEV || err == -ENOENT)
			continue;
		if (err) {
			warnx("%s: cannot get device information: %s",
			      devs[ndevs].path, strerror(-err));
			ret = EXIT_FAIL;
			continue;
		}
		if (o->file && !is_associated(&devs[ndevs], o, st))
			continue;
		ndevs++;
	}
	if (o->list) {
		list_print(&o->lo, devs, ndevs);
	} else {
		for (i = 0; i < ndevs; i++)
			print_status_line(&devs[i]);
	}
	free(devs);
	free(numbers);
	return ret;
}

static int do_show_one(const struct options *o)
{
	struct fblkdev *dev;
	unsigned int number;
	int ret;

	if (device_number_or_warn(o->device, &number))
		return EXIT_FAIL;
	dev = malloc(sizeof(*dev));
	if (!dev) {
		perror("fblksetup");
		return EXIT_FAIL;
	}
	ret = fblk_read_device(number, dev);
	if (ret) {
		/* losetup says "/dev/loop5: No such device or address". */
		ret = ret == -ENODEV ? -ENOENT : ret;
		warnx("%s: %s%s", o->device, strerror(-ret), module_hint(-ret));
		free(dev);
		return EXIT_FAIL;
	}
	if (o->list)
		list_print(&o->lo, dev, 1);
	else
		print_status_line(dev);
	free(dev);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct options o;
	int ret = EXIT_FAIL;

	memset(&o, 0, sizeof(o));
	o.direct_io = -1;
	parse_options(argc, argv, &o);
	srand(getpid() ^ time(NULL));

	switch (o.action) {
	case A_CREATE:
		ret = do_attach(&o);
		break;
	case A_DELETE:
		ret = do_detach(&o);
		break;
	case A_DELETE_ALL:
		ret = do_detach_all(&o);
		break;
	case A_SHOW:
		ret = do_show(&o);
		break;
	case A_SHOW_ONE:
		ret = do_show_one(&o);
		break;
	case A_FIND_FREE:
		ret = do_find_free(&o);
		break;
	case A_SET_CAPACITY:
		ret = do_set_capacity(&o);
		break;
	case A_SET_BLOCK_SIZE:
		ret = do_set_block_size(&o);
		break;
	case A_SET_PARAMS:
		ret = do_set_params(&o);
		break;
	case A_NONE:
		usage_error("no action given");
	}
	free(o.detach);
	if (fflush(stdout) || ferror(stdout)) {
		warnx("write error: %s", strerror(errno));
		ret = EXIT_FAIL;
	}
	return ret;
}
