/* SPDX-License-Identifier: GPL-2.0 */
/*
 * list.h - the --list output: losetup's columns (and names, and JSON keys)
 * plus fblk's own, as a table, raw lines or JSON.
 */
#ifndef FBLKSETUP_LIST_H
#define FBLKSETUP_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "fblkdev.h"

enum list_format {
	LIST_TABLE,
	LIST_RAW,
	LIST_JSON,
};

struct list_options {
	enum list_format format;
	bool noheadings;
	int columns[32];
	size_t ncolumns;
};

/* Default columns (like losetup -l, then fblk's QUEUES DEPTH MODE STATE). */
void list_default_columns(struct list_options *lo);
void list_all_columns(struct list_options *lo);
/*
 * Parse -O's comma list; a leading '+' appends to the defaults.  Prints the
 * error and returns -1 on an unknown column.
 */
int list_parse_columns(struct list_options *lo, const char *arg);
/* The "Available output columns" part of --help. */
void list_print_column_help(FILE *out);

void list_print(const struct list_options *lo, const struct fblkdev *devs,
		size_t ndevs);

#endif /* FBLKSETUP_LIST_H */
