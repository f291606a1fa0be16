// SPDX-License-Identifier: GPL-2.0
/*
 * list.c - the --list output.
 *
 * Column names, their order in --help, alignment and the JSON types copy
 * losetup(8), so that scripts written against `losetup -l` (and its --raw
 * and --json forms) read fblksetup's output the same way.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sysmacros.h>

#include "list.h"

enum json_type {
	JSON_STRING,
	JSON_NUMBER,
	JSON_BOOLEAN,
	JSON_OBJECT,		/* the cell is JSON text already */
};

enum column_id {
	COL_NAME,
	COL_AUTOCLEAR,
	COL_BACK_FILE,
	COL_BACK_INO,
	COL_BACK_MAJMIN,
	COL_MAJMIN,
	COL_OFFSET,
	COL_PARTSCAN,
	COL_RO,
	COL_SIZELIMIT,
	COL_DIO,
	COL_LOGSEC,
	/* fblk's own, after losetup's */
	COL_SIZE,
	COL_QUEUES,
	COL_DEPTH,
	COL_MODE,
	COL_STATE,
#ifdef FBLK_SET_PARAMS
	COL_IO_MODE,
	COL_SUBMIT,
	COL_POOL,
#endif
#ifdef HAVE_FBLK_RA_PARAMS
	COL_RA_POLICY,
	COL_RA_KB,
	COL_INLINE_DEPTH,
#endif
	COL_STATS,		/* last: its text is the longest */
	NR_COLUMNS
};

struct column {
	const char *name;
	bool right;		/* right-aligned in the table */
	enum json_type type;
	const char *help;
};

static const struct column columns[NR_COLUMNS] = {
	[COL_NAME]	  = { "NAME", false, JSON_STRING, "fblk device name" },
	[COL_AUTOCLEAR]	  = { "AUTOCLEAR", true, JSON_BOOLEAN, "autoclear flag set" },
	[COL_BACK_FILE]	  = { "BACK-FILE", false, JSON_STRING, "device backing file" },
	[COL_BACK_INO]	  = { "BACK-INO", true, JSON_NUMBER, "backing file inode number" },
	[COL_BACK_MAJMIN] = { "BACK-MAJ:MIN", false, JSON_STRING, "backing file major:minor device number" },
	[COL_MAJMIN]	  = { "MAJ:MIN", false, JSON_STRING, "fblk device major:minor number" },
	[COL_OFFSET]	  = { "OFFSET", true, JSON_NUMBER, "offset from the beginning" },
	[COL_PARTSCAN]	  = { "PARTSCAN", true, JSON_BOOLEAN, "partscan flag set" },
	[COL_RO]	  = { "RO", true, JSON_BOOLEAN, "read-only device" },
	[COL_SIZELIMIT]	  = { "SIZELIMIT", true, JSON_NUMBER, "size limit of the file in bytes" },
	[COL_DIO]	  = { "DIO", true, JSON_BOOLEAN, "access backing file with direct-io" },
	[COL_LOGSEC]	  = { "LOG-SEC", true, JSON_NUMBER, "logical sector size in bytes" },
	[COL_SIZE]	  = { "SIZE", true, JSON_NUMBER, "device size in bytes" },
	[COL_QUEUES]	  = { "QUEUES", true, JSON_NUMBER, "number of hardware queues" },
	[COL_DEPTH]	  = { "DEPTH", true, JSON_NUMBER, "tags per hardware queue" },
	[COL_MODE]	  = { "MODE", false, JSON_STRING, "I/O mode in effect: buffered, direct or dontcache" },
	[COL_STATE]	  = { "STATE", false, JSON_STRING, "device state: bound or rundown" },
#ifdef FBLK_SET_PARAMS
	[COL_IO_MODE]	  = { "IO-MODE", false, JSON_STRING, "I/O mode asked for (auto: MODE says what it chose)" },
	[COL_SUBMIT]	  = { "SUBMIT", false, JSON_STRING, "who issues the I/O: async or threads" },
	[COL_POOL]	  = { "POOL", true, JSON_NUMBER, "workers of the device's pool" },
#endif
#ifdef HAVE_FBLK_RA_PARAMS
	[COL_RA_POLICY]	  = { "RA-POLICY", false, JSON_STRING, "readahead policy: auto, sequential, random or off" },
	[COL_RA_KB]	  = { "RA-KB", true, JSON_NUMBER, "readahead window in KiB (0: the backing device's)" },
	[COL_INLINE_DEPTH] = { "INLINE-DEPTH", true, JSON_NUMBER, "requests in flight per queue issued by the submitter" },
#endif
	[COL_STATS]	  = { "STATS", false, JSON_OBJECT, "engine counters (JSON: all, as an object; else the non-zero ones)" },
};

static const int default_columns[] = {
	COL_NAME, COL_SIZELIMIT, COL_OFFSET, COL_AUTOCLEAR, COL_RO,
	COL_BACK_FILE, COL_DIO, COL_LOGSEC,
	COL_QUEUES, COL_DEPTH, COL_MODE, COL_STATE,
};

void list_default_columns(struct list_options *lo)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(default_columns); i++)
		lo->columns[i] = default_columns[i];
	lo->ncolumns = i;
}

void list_all_columns(struct list_options *lo)
{
	int i;

	for (i = 0; i < NR_COLUMNS; i++)
		lo->columns[i] = i;
	lo->ncolumns = NR_COLUMNS;
}

static int column_by_name(const char *name, size_t len)
{
	int i;

	for (i = 0; i < NR_COLUMNS; i++)
		if (strlen(columns[i].name) == len &&
		    !strncasecmp(columns[i].name, name, len))
			return i;
	return -1;
}

int list_parse_columns(struct list_options *lo, const char *arg)
{
	const char *p = arg;

	if (*p == '+') {
		list_default_columns(lo);
		p++;
	} else {
		lo->ncolumns = 0;
	}
	for (;;) {
		size_t len = strcspn(p, ",");
		int id = column_by_name(p, len);

		if (id < 0) {
			fprintf(stderr, "fblksetup: unknown column: %.*s\n",
				(int)len, p);
			return -1;
		}
		if (lo->ncolumns == ARRAY_SIZE(lo->columns)) {
			fprintf(stderr, "fblksetup: too many columns: %s\n", arg);
			return -1;
		}
		lo->columns[lo->ncolumns++] = id;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

void list_print_column_help(FILE *out)
{
	int i;

	for (i = 0; i < NR_COLUMNS; i++)
		fprintf(out, " %12s  %s\n", columns[i].name, columns[i].help);
}

static const char *io_mode_name(unsigned int mode)
{
	static const char *const names[] = {
		[FBLK_IO_BUFFERED] = "buffered",
		[FBLK_IO_DIRECT] = "direct",
#ifdef FBLK_SET_PARAMS
		[FBLK_IO_DONTCACHE] = "dontcache",
		[FBLK_IO_AUTO] = "auto",
#endif
	};

	return mode < ARRAY_SIZE(names) && names[mode] ? names[mode] : "?";
}

static void json_string(FILE *out, const char *s);

/* Is @s a number as JSON writes it: -?(0|[1-9][0-9]*)? */
static bool json_integer(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		return !s[1];
	if (*s < '1' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9')
		s++;
	return !*s;
}

/*
 * The STATS cell, from /sys/block/fblkN/fblk/stats ("name value" a line;
 * the names are the module's, whatever they are).  JSON: an object of every
 * counter, numbers as numbers.  Otherwise "name=value,..." of the counters
 * that are not 0, "" when all are.  NULL on allocation failure; "" (null in
 * JSON) when the module has no stats.
 */
static char *stats_text(const struct fblkdev *dev, enum list_format format)
{
	bool json = format == LIST_JSON;
	char buf[8192], *line, *next, *s = NULL;
	size_t len = 0, count = 0;
	FILE *out;

	if (fblk_read_stats(dev->number, buf, sizeof(buf)))
		return strdup("");
	out = open_memstream(&s, &len);
	if (!out)
		return NULL;
	if (json)
		fputc('{', out);
	for (line = buf; line && *line; line = next) {
		char *value;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		value = strchr(line, ' ');
		if (!value || value == line)
			continue;	/* not "name value" */
		*value++ = '\0';
		value += strspn(value, " ");
		if (json) {
			fputs(count ? ",\n" : "\n", out);
			fputs("            ", out);
			json_string(out, line);
			fputs(": ", out);
			if (json_integer(value))
				fputs(value, out);
			else
				json_string(out, value);
		} else if (strcmp(value, "0")) {
			fprintf(out, "%s%s=%s", count ? "," : "", line, value);
		} else {
			continue;
		}
		count++;
	}
	if (json)
		fputs(count ? "\n         }" : "}", out);
	if (fclose(out)) {
		free(s);
		return NULL;
	}
	return s;
}

/* The text of one cell; "" means no value (null in JSON). */
static char *cell_text(const struct fblkdev *dev, int id,
		       enum list_format format)
{
	const struct fblk_info *info = &dev->info;
	char *s = NULL;
	int ret = 0;

	switch (id) {
	case COL_NAME:
		return strdup(dev->path);
	case COL_BACK_FILE:
		return strdup(dev->backing_file);
	case COL_AUTOCLEAR:
		return strdup(info->flags & FBLK_FL_AUTOCLEAR ? "1" : "0");
	case COL_PARTSCAN:
		return strdup(info->flags & FBLK_FL_PARTSCAN ? "1" : "0");
	case COL_RO:
		return strdup(info->flags & FBLK_FL_READ_ONLY ? "1" : "0");
	case COL_DIO:
		return strdup(info->flags & FBLK_FL_DIRECT_IO ? "1" : "0");
	case COL_BACK_INO:
		ret = asprintf(&s, "%llu", (unsigned long long)info->backing_inode);
		break;
	case COL_BACK_MAJMIN: {
		dev_t d = fblk_decode_dev(info->backing_dev);

		ret = asprintf(&s, "%u:%u", major(d), minor(d));
		break;
	}
	case COL_MAJMIN:
		if (!dev->devt)
			return strdup("");
		ret = asprintf(&s, "%u:%u", major(dev->devt), minor(dev->devt));
		break;
	case COL_OFFSET:
		ret = asprintf(&s, "%llu", (unsigned long long)info->offset);
		break;
	case COL_SIZELIMIT:
		ret = asprintf(&s, "%llu", (unsigned long long)info->sizelimit);
		break;
	case COL_LOGSEC:
		ret = asprintf(&s, "%u", info->block_size);
		break;
	case COL_SIZE:
		ret = asprintf(&s, "%llu", (unsigned long long)info->size);
		break;
	case COL_QUEUES:
		ret = asprintf(&s, "%u", info->nr_hw_queues);
		break;
	case COL_DEPTH:
		ret = asprintf(&s, "%u", info->queue_depth);
		break;
	case COL_MODE:
		return strdup(io_mode_name(info->io_mode));
#ifdef FBLK_SET_PARAMS
	case COL_IO_MODE:
		if (!(info->params.mask & FBLK_PARAM_IO_MODE))
			return strdup("");
		return strdup(io_mode_name(info->params.io_mode));
	case COL_SUBMIT:
		if (!(info->params.mask & FBLK_PARAM_SUBMIT))
			return strdup("");
		return strdup(info->params.submit == FBLK_SUBMIT_THREADS ? "threads" : "async");
	case COL_POOL:
		if (!(info->params.mask & FBLK_PARAM_POOL_SIZE))
			return strdup("");
		ret = asprintf(&s, "%u", info->params.pool_size);
		break;
#endif
#ifdef HAVE_FBLK_RA_PARAMS
	case COL_RA_POLICY:
		if (!(info->params.mask & FBLK_PARAM_RA_POLICY))
			return strdup("");
		return strdup(fblk_ra_policy_name(info->params.ra_policy));
	case COL_RA_KB:
		if (!(info->params.mask & FBLK_PARAM_RA_KB))
			return strdup("");
		ret = asprintf(&s, "%u", info->params.ra_kb);
		break;
	case COL_INLINE_DEPTH:
		if (!(info->params.mask & FBLK_PARAM_INLINE_DEPTH))
			return strdup("");
		ret = asprintf(&s, "%u", info->params.inline_depth);
		break;
#endif
	case COL_STATS:
		return stats_text(dev, format);
	case COL_STATE:
		return strdup(info->state == FBLK_STATE_RUNDOWN ? "rundown" :
			      info->state == FBLK_STATE_BOUND ? "bound" : "unbound");
	}
	return ret < 0 ? NULL : s;
}

/*
 * Make a value safe for one line of output, as libsmartcols does: bytes that
 * are not printable become \xHH; in raw output, so do blanks and
 * backslashes, so that splitting on spaces always works.
 */
static char *encode_cell(const char *s, bool raw)
{
	char *out = malloc(strlen(s) * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = *s;

		if (c < 0x20 || c == 0x7f ||
		    (raw && (c == ' ' || c == '\\')))
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = c;
	}
	*o = '\0';
	return out;
}

static void json_string(FILE *out, const char *s)
{
	putc('"', out);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			putc(c, out);
	}
	putc('"', out);
}

/* losetup's JSON keys are the column names in lower case. */
static void json_key(FILE *out, const char *name)
{
	putc('"', out);
	for (; *name; name++)
		putc(tolower((unsigned char)*name), out);
	fputs("\": ", out);
}

static void print_json(const struct list_options *lo, char ***cells,
		       size_t ndevs)
{
	size_t r, c;

	fputs("{\n   \"fblkdevices\": [", stdout);
	for (r = 0; r < ndevs; r++) {
		fputs(r ? ",\n      {\n" : "\n      {\n", stdout);
		for (c = 0; c < lo->ncolumns; c++) {
			const struct column *col = &columns[lo->columns[c]];
			const char *v = cells[r][c];

			fputs("         ", stdout);
			json_key(stdout, col->name);
			if (col->type == JSON_BOOLEAN)
				fputs(strcmp(v, "1") ? "false" : "true", stdout);
			else if (!*v)
				fputs("null", stdout);
			else if (col->type == JSON_NUMBER ||
				 col->type == JSON_OBJECT)
				fputs(v, stdout);
			else
				json_string(stdout, v);
			fputs(c + 1 < lo->ncolumns ? ",\n" : "\n", stdout);
		}
		fputs("      }", stdout);
	}
	fputs("\n   ]\n}\n", stdout);
}

static void print_row(const struct list_options *lo, const char **row,
		      const size_t *width)
{
	size_t c;

	for (c = 0; c < lo->ncolumns; c++) {
		const struct column *col = &columns[lo->columns[c]];
		bool last = c + 1 == lo->ncolumns;
		int pad = width ? (int)(width[c] - strlen(row[c])) : 0;

		if (c)
			putchar(' ');
		if (col->right)
			printf("%*s%s", pad, "", row[c]);
		else
			printf("%s%*s", row[c], last ? 0 : pad, "");
	}
	putchar('\n');
}

static void print_lines(const struct list_options *lo, char ***cells,
			size_t ndevs)
{
	bool raw = lo->format == LIST_RAW;
	const char *head[ARRAY_SIZE(lo->columns)];
	size_t width[ARRAY_SIZE(lo->columns)];
	size_t r, c;

	/* Like losetup: no devices, no output, not even the headings. */
	if (!ndevs)
		return;
	for (c = 0; c < lo->ncolumns; c++) {
		head[c] = columns[lo->columns[c]].name;
		width[c] = lo->noheadings ? 0 : strlen(head[c]);
		for (r = 0; r < ndevs; r++) {
			char *safe = encode_cell(cells[r][c], raw);

			if (safe) {
				free(cells[r][c]);
				cells[r][c] = safe;
			}
			if (strlen(cells[r][c]) > width[c])
				width[c] = strlen(cells[r][c]);
		}
	}
	if (!lo->noheadings)
		print_row(lo, head, raw ? NULL : width);
	for (r = 0; r < ndevs; r++)
		print_row(lo, (const char **)cells[r], raw ? NULL : width);
}

void list_print(const struct list_options *lo, const struct fblkdev *devs,
		size_t ndevs)
{
	char ***cells = calloc(ndevs ? ndevs : 1, sizeof(*cells));
	size_t r, c;

	if (!cells) {
		perror("fblksetup");
		exit(1);
	}
	for (r = 0; r < ndevs; r++) {
		cells[r] = calloc(lo->ncolumns ? lo->ncolumns : 1, sizeof(**cells));
		if (!cells[r]) {
			perror("fblksetup");
			exit(1);
		}
		for (c = 0; c < lo->ncolumns; c++) {
			cells[r][c] = cell_text(&devs[r], lo->columns[c],
						lo->format);
			if (!cells[r][c]) {
				perror("fblksetup");
				exit(1);
			}
		}
	}

	if (lo->format == LIST_JSON)
		print_json(lo, cells, ndevs);
	else
		print_lines(lo, cells, ndevs);

	for (r = 0; r < ndevs; r++) {
		for (c = 0; c < lo->ncolumns; c++)
			free(cells[r][c]);
		free(cells[r]);
	}
	free(cells);
}
