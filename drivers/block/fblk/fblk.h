/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fblk: files exported as block devices through asynchronous kiocb I/O.
 *
 * A request's life, file by file:
 *   main.c   module parameters, the control device, module load and unload
 *   dev.c    a device's life: add, configure (attach), detach, remove, ioctls
 *   mq.c     blk-mq: the tag set, ->queue_rq, the queues' issuers, completion
 *   io.c     the I/O engine: kiocbs on the backing file, direct I/O,
 *            buffered writes
 *   read.c   buffered reads that wait for a folio: the wakeup and retries
 *   pool.c   the pool: what must block (flush, discard, write-zeroes...)
 *   ra.c     readahead of buffered reads on the backing file
 *   sysfs.c  /sys/block/fblkN/fblk/
 */
#ifndef _FBLK_H
#define _FBLK_H

#include <linux/blk-mq.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/llist.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <uapi/linux/fblk.h>

#include "compat.h"

/* Partitions per device: minors are split as loop splits them. */
#define FBLK_PART_SHIFT		4
#define FBLK_MAX_DEVICES	(1 << (MINORBITS - FBLK_PART_SHIFT))

/*
 * A request spanning several bios needs its bvecs gathered in one array for
 * the iov_iter; this many fit in the pdu, more (rare) are allocated.
 */
#define FBLK_INLINE_BVECS	8

/* Wakeups a buffered read may take before it is read blocking instead. */
#define FBLK_MAX_RETRIES	16

/*
 * The inline_depth parameter: kept in the ABI, with no effect since
 * ->queue_rq leaves every request to the queue's issuer.
 */
#define FBLK_DEFAULT_INLINE_DEPTH	1

/* Consecutive reads on a queue that make a stream for ra_policy auto. */
#define FBLK_RA_STREAM_MIN	2

/* Internal states beyond the ABI's: a device being removed takes no opens. */
#define FBLK_STATE_DELETING	(FBLK_STATE_RUNDOWN + 1)

/* Event counters of a device: sysfs fblk/stats, in this order. */
enum fblk_stat {
#define FBLK_STAT(id, name) FBLK_STAT_##id,
#include "stats.h"
#undef FBLK_STAT
	FBLK_NR_STATS
};

struct fblk_pcpu_stats {
	u64 v[FBLK_NR_STATS];
};

/* What the backing file lets us do, found at attach. */
struct fblk_caps {
	bool direct;		/* direct kiocbs work: probed at attach */
	bool nowait;		/* IOCB_NOWAIT honoured by the file */
	bool nowait_direct;	/* ... and by the block device under it */
	bool buf_rasync;	/* buffered reads can wait on a waitq */
	bool buf_wasync;	/* buffered writes honour IOCB_NOWAIT */
	bool dontcache;		/* uncached buffered I/O (RWF_DONTCACHE) */
	bool blkdev;		/* the backing file is a block device */
	bool punch;		/* holes can be punched */
};

/* Pages of the backing file to read ahead: the rest of a split read. */
struct fblk_ra_range {
	pgoff_t			index;
	unsigned long		nr;
};

/*
 * The readahead helper's ring: as deep as a queue's requests usually are
 * (one range each at most); when it is full, the issuer reads the rest.
 */
#define FBLK_RA_RING		64

/*
 * One hardware queue: its own backing file and its own contexts.  Every
 * call into the backing file is made from one of them (or the device's
 * pool), never from ->queue_rq: see io.c.
 */
struct fblk_queue {
	struct fblk_device	*dev;
	/*
	 * A clone of the backing file (same path and flags) so that each
	 * queue has its own readahead state, as QEMU's fd pool does.
	 */
	struct file		*file;
	/* Requests whose awaited folio was unlocked, retried in one batch. */
	struct llist_head	retries;
	struct work_struct	retry_work;
	/*
	 * Requests the submitter left to the queue's issuer (a worker on
	 * another CPU) because the queue was already busy.
	 */
	struct llist_head	issues;
	struct work_struct	issue_work;
	/*
	 * Direct kiocbs to issue again without NOWAIT (it refused them, or
	 * they were cut short), one after another by the queue's reissuer.
	 */
	struct llist_head	reissues;
	struct work_struct	reissue_work;
	/*
	 * FBLK_ISSUER_BUSY, FBLK_REISSUER_BUSY: set by whoever queues the
	 * work item, cleared when it finds its list empty (fblk_drained()).
	 */
	unsigned long		busy;
	atomic_t		inflight;
	/* ra_policy auto: where the last read ended, and how many in a row. */
	loff_t			ra_next;
	unsigned int		ra_streak;
	/*
	 * The readahead helper: a worker that reads ahead the rest of the
	 * reads the issuer split, beside it.  Ranges, not requests: a read
	 * may finish before its rest is read ahead (its own attempts read
	 * what is missing), and it must not be touched then.
	 */
	spinlock_t		ra_lock;
	unsigned int		ra_head;	/* next slot to fill */
	unsigned int		ra_tail;	/* next slot to read ahead */
	struct fblk_ra_range	ra_ring[FBLK_RA_RING];
	struct work_struct	ra_work;
};

struct fblk_device {
	int			number;
	/* Serialises configure, detach, open-vs-remove; guards the fields below. */
	struct mutex		lock;
	int			state;
	struct file		*backing;
	loff_t			offset;
	loff_t			sizelimit;
	unsigned int		block_size;
	unsigned int		flags;		/* FBLK_FL_* in effect */
	struct fblk_caps	caps;
	/*
	 * A partition scan found a partition open (EBUSY): the partitions it
	 * should have replaced are still there.  Under the disk's open_mutex.
	 */
	bool			partitions_stale;
	/*
	 * Run-time settings.  The I/O path reads them without the lock: they
	 * only change with the queue frozen.
	 */
	unsigned int		io_mode_asked;	/* enum fblk_io_mode */
	unsigned int		io_mode;	/* in effect: never AUTO */
	unsigned int		submit;		/* enum fblk_submit */
	unsigned int		pool_size;
	/* Requests in flight per queue up to which the submitter issues. */
	unsigned int		inline_depth;
	unsigned int		ra_policy;	/* enum fblk_ra_policy */
	unsigned int		ra_kb;		/* 0: the backing's own */

	struct blk_mq_tag_set	tag_set;
	struct gendisk		*disk;
	struct fblk_queue	*queues;
	/* Which of the contexts' workqueues this device's work goes to. */
	unsigned int		stack_level;
	/*
	 * The device's share of the pool (its level's fblk_pool_wq, shared
	 * with every device at that level): at most pool_size of its jobs run
	 * at once, the rest wait in line and are run by the workers finishing
	 * theirs.  Reads have a line of their own, served first (pool.c).
	 */
	spinlock_t		pool_lock;
	struct list_head	pool_waiting;
	struct list_head	pool_reads;
	unsigned int		pool_running;
	unsigned int		pool_reads_passed;	/* since a write ran */
	atomic_t		pool_depth;	/* waiting or running */
	atomic_t		pool_depth_max;
	atomic_t		retries_max;
	struct fblk_pcpu_stats __percpu *stats;
	/*
	 * Sectors read by the device and by the block device under the
	 * backing file when it was attached: the stats show what they read
	 * since, the lower device for every reader it has.
	 */
	u64			read_base;
	u64			lower_read_base;
};

/* The blk-mq pdu: everything one request needs, preallocated per tag. */
struct fblk_cmd {
	struct fblk_device	*dev;
	struct fblk_queue	*queue;
	struct kiocb		iocb;
	/* Our entry on a folio's wait queue while a buffered read waits. */
	struct wait_page_queue	wpq;
	/*
	 * A read finished from its wakeup: copies from the folio in wpq (a
	 * reference held) in softirq context on the submitting CPU.
	 */
	struct fblk_bh		wake_bh;
	/* On one list at a time: the issuer's, the retries' or the reissuer's. */
	struct llist_node	node;
	struct work_struct	work;		/* pool job */
	struct list_head	pool_entry;	/* waiting for a pool worker */
	/*
	 * The task making the first attempt (the queue's issuer): finishing
	 * in it, not in an interrupt it took, is an inline completion.
	 * Cleared when the request goes to another context.
	 */
	struct task_struct	*submitter;
	/* Bytes of the request already transferred by earlier partial I/O. */
	unsigned int		done;
	unsigned int		retries;	/* wakeups without completion */
	/*
	 * The context calling into the file and the one completing the call
	 * (->ki_complete, or the wakeup of a parked read): whichever lets go
	 * last goes on with the request, so that it never completes while
	 * the lower file is still being called on its behalf.
	 */
	atomic_t		ref;
	long			ret;
	bool			nowait;		/* the kiocb in flight had NOWAIT */
	bool			ra_done;	/* readahead started for it */
	bool			ra_stream;	/* read ahead as a stream */
	/*
	 * Set by the issuer when others wait behind the request in its batch:
	 * it reads ahead only the first lower request's worth of a large read
	 * and leaves the rest to the queue's readahead helper.
	 */
	bool			ra_split;
	blk_status_t		status;
	struct bio_vec		*bvec;		/* gathered bvecs, or NULL */
	unsigned int		nr_bvec;
	struct bio_vec		inline_bvec[FBLK_INLINE_BVECS];
};

static inline struct request *fblk_cmd_rq(struct fblk_cmd *cmd)
{
	return blk_mq_rq_from_pdu(cmd);
}

/*
 * A queue's issuer and reissuer each drain a list that other contexts add
 * to, and stay until it is empty: queueing a work item that is running
 * would queue it again, and an unbound workqueue wakes an idle worker for
 * it that only finds it running and leaves it to the worker running it,
 * two context switches for nothing.  So whoever adds to the list queues
 * the work item only if it claims the busy bit, and the work item lets go
 * of the bit only once the list is empty.
 */
enum { FBLK_ISSUER_BUSY, FBLK_REISSUER_BUSY };

static inline bool fblk_claim(struct fblk_queue *fq, int bit)
{
	return !test_and_set_bit(bit, &fq->busy);
}

/*
 * The list was found empty: let go of it, unless something was added
 * meanwhile by one who found the bit still set (the caller drains again).
 */
static inline bool fblk_drained(struct fblk_queue *fq, int bit,
				struct llist_head *list)
{
	clear_bit(bit, &fq->busy);
	/* Pairs with test_and_set_bit() after the adder's llist_add(). */
	smp_mb__after_atomic();
	return llist_empty(list) || !fblk_claim(fq, bit);
}

static inline int fblk_buffered_flags(struct fblk_cmd *cmd)
{
	return cmd->dev->io_mode == FBLK_IO_DONTCACHE ? FBLK_IOCB_DONTCACHE : 0;
}

static inline bool fblk_cmd_is_write(struct fblk_cmd *cmd)
{
	return req_op(fblk_cmd_rq(cmd)) == REQ_OP_WRITE;
}

static inline void fblk_atomic_max(atomic_t *max, int value)
{
	int old = atomic_read(max);

	while (value > old && !atomic_try_cmpxchg(max, &old, value))
		;
}

/*
 * fblk's contexts run on workqueues of one level of a stack of fblk devices
 * each (0: a device over anything else; N: over a level N-1 device,
 * directly or through a filesystem on it).  Work of an upper device can
 * wait for the lower device's work: an upper pool job for the lower
 * device's writes to drain the dirty pages it throttles on, an upper issuer
 * for a tag of the lower device.  When memory is short or a new worker slow
 * to come, a workqueue's rescuer takes every item waiting on it and runs
 * them one after the other: an upper item blocking there would hold up,
 * for good, the lower items it took along.  Levels past the last share it.
 */
#define FBLK_STACK_LEVELS	4
/* Unbound, high priority: the queues' issuers, reissuers, readahead helpers. */
extern struct workqueue_struct *fblk_issue_wq[FBLK_STACK_LEVELS];
/* Per CPU: a retry runs where its request was submitted. */
extern struct workqueue_struct *fblk_retry_wq;
/* The pool's workers. */
extern struct workqueue_struct *fblk_pool_wq[FBLK_STACK_LEVELS];

/*
 * What every fblk context runs with while it may call into the backing
 * file: reclaim must not wait on I/O queued behind us, and a context that
 * cleans dirty pages must not be throttled on them (loop and zloop do the
 * same).  Set once per work item; returns the flags to restore.
 */
#define FBLK_LOWER_CTX_FLAGS	(PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO)

static inline unsigned int fblk_lower_ctx_enter(void)
{
	unsigned int old = current->flags;

	current->flags |= FBLK_LOWER_CTX_FLAGS;
	return old;
}

static inline void fblk_lower_ctx_exit(unsigned int old)
{
	current->flags = (current->flags & ~FBLK_LOWER_CTX_FLAGS) |
			 (old & FBLK_LOWER_CTX_FLAGS);
}

static inline void fblk_stat_inc(struct fblk_device *dev, enum fblk_stat stat)
{
	this_cpu_inc(dev->stats->v[stat]);
}

static inline void fblk_stat_add(struct fblk_device *dev, enum fblk_stat stat,
				 u64 n)
{
	this_cpu_add(dev->stats->v[stat], n);
}

extern unsigned int fblk_default_hw_queues;
extern unsigned int fblk_default_queue_depth;
extern unsigned int fblk_default_pool_size;

/* dev.c */
int fblk_dev_add(int id, unsigned int nr_hw_queues, unsigned int queue_depth);
int fblk_dev_remove(int id);
int fblk_dev_get_free(void);
void fblk_dev_remove_all(void);
int fblk_dev_init(void);
void fblk_dev_exit(void);
int fblk_set_params(struct fblk_device *dev, const struct fblk_params *p);
void fblk_get_params(struct fblk_device *dev, struct fblk_params *p);
const char *fblk_io_mode_name(unsigned int mode);
int fblk_io_mode_parse(const char *buf);

struct block_device *fblk_file_bdev(struct file *file);
u64 fblk_bdev_sectors_read(struct block_device *bdev);

/* mq.c */
int fblk_init_tag_set(struct fblk_device *dev, unsigned int nr_hw_queues,
		      unsigned int queue_depth);
void fblk_queue_init(struct fblk_queue *fq, struct fblk_device *dev);
void fblk_queue_drain(struct fblk_queue *fq);

/* io.c */
void fblk_cmd_init(struct fblk_cmd *cmd, struct fblk_device *dev);
void fblk_cmd_exit(struct fblk_cmd *cmd);
int fblk_cmd_gather_bvecs(struct fblk_cmd *cmd, gfp_t gfp);
void fblk_cmd_iter(struct fblk_cmd *cmd, struct iov_iter *iter,
		   unsigned int dir);
loff_t fblk_cmd_pos(struct fblk_cmd *cmd);
size_t fblk_cmd_rest(struct fblk_cmd *cmd);
void fblk_cmd_finish(struct fblk_cmd *cmd, blk_status_t status);
bool fblk_rw_progress(struct fblk_cmd *cmd, ssize_t ret);
bool fblk_would_block(long ret);
bool fblk_start_write(struct kiocb *iocb, bool nowait);
void fblk_end_write(struct kiocb *iocb);
int fblk_file_iocb_flags(struct file *file);
ssize_t fblk_issue(struct fblk_cmd *cmd, int flags, bool async);
void fblk_direct_issue(struct fblk_cmd *cmd, bool nowait);
void fblk_reissue_work(struct work_struct *work);
void fblk_buffered_write(struct fblk_cmd *cmd);
int fblk_io_init(void);
void fblk_io_exit(void);

/* read.c */
void fblk_buffered_read(struct fblk_cmd *cmd);
void fblk_read_finish(struct fblk_bh *bh);
void fblk_retry_work(struct work_struct *work);

/* pool.c */
void fblk_pool_init(struct fblk_device *dev);
void fblk_punt(struct fblk_cmd *cmd);
void fblk_pool_work(struct work_struct *work);
void fblk_pool_drain(struct fblk_device *dev);

/* ra.c */
void fblk_ra_apply(struct fblk_device *dev);
void fblk_ra_note(struct fblk_cmd *cmd);
void fblk_ra_start(struct fblk_cmd *cmd, loff_t pos, size_t len);
size_t fblk_ra_first_part(struct fblk_cmd *cmd, loff_t pos, size_t len);
bool fblk_ra_defer(struct fblk_queue *fq, loff_t pos, size_t len);
void fblk_ra_helper_init(struct fblk_queue *fq);
void fblk_ra_helper_stop(struct fblk_queue *fq);
const char *fblk_ra_policy_name(unsigned int policy);
int fblk_ra_policy_parse(const char *buf);

/* sysfs.c */
extern const struct attribute_group *fblk_disk_groups[];

#endif /* _FBLK_H */
