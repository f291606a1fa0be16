/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The event counters of a device, in the order of sysfs fblk/stats.  No
 * include guard: fblk.h and sysfs.c include this with FBLK_STAT(ID, name)
 * defined, to make the enum and the names from this one table.
 */

/* finished in the submitting context */
FBLK_STAT(INLINE_COMPLETED, inline_completed)

/* issued by the queue's issuer */
FBLK_STAT(HANDED_OFF, handed_off)

/* direct kiocbs queued (-EIOCBQUEUED) */
FBLK_STAT(QUEUED_ASYNC, queued_async)

/* IOCB_NOWAIT attempts that would block */
FBLK_STAT(NOWAIT_EAGAIN, nowait_eagain)

/* buffered reads parked on a folio */
FBLK_STAT(WAITQ_ARMED, waitq_armed)

/* ... woken for their folio */
FBLK_STAT(WAKEUPS, wakeups)

/* wakeups for other folios, ignored */
FBLK_STAT(WAKEUPS_FILTERED, wakeups_filtered)

/* attempts after a wakeup */
FBLK_STAT(RETRIES, retries)

/* partial transfers continued */
FBLK_STAT(PARTIAL, partial)

/* requests handed to the pool */
FBLK_STAT(PUNTS, punts)

/* buffered reads read blocking */
FBLK_STAT(BLOCKING_FALLBACKS, blocking_fallbacks)

/* requests failed */
FBLK_STAT(ERRORS, errors)

/* readahead started for a request */
FBLK_STAT(RA_CALLS, ra_calls)

/* ... of them as part of a stream */
FBLK_STAT(RA_STREAM, ra_stream)

/* pages the requests asked to read */
FBLK_STAT(RA_PAGES, ra_pages)

/* batches the issuers took */
FBLK_STAT(ISSUER_RUNS, issuer_runs)

/* direct kiocbs issued again without NOWAIT */
FBLK_STAT(REISSUED, reissued)

/* buffered reads finished from their wakeup */
FBLK_STAT(WAKEUP_COMPLETED, wakeup_completed)
