/* progress: the one-line progress display of `ferry sync` on a terminal
 * (docs/cli.md "sync"): what the round is moving (files and bytes, when
 * sync has said), the bytes sent and received so far, the rate and an ETA,
 * redrawn in place on stderr.
 *
 * cmd_sync feeds it the plan of each phase (sync_options.progress) and the
 * connection's byte counters (sync_options.transfer, from libcurl's progress
 * callback); this module decides when to draw: not before the transfers
 * have run for PROGRESS_DELAY_NS, then at most every PROGRESS_INTERVAL_NS,
 * so a quick sync prints nothing and a long one costs next to nothing. The
 * caller only creates one when stderr is a terminal. Times are passed in,
 * so that the tests drive the clock. Thread-safe: the counters arrive on
 * whichever thread runs a request.
 */
#ifndef FERRY_PROGRESS_H
#define FERRY_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_DELAY_NS 1000000000LL
#define PROGRESS_INTERVAL_NS 100000000LL

enum progress_dir { PROGRESS_UP, PROGRESS_DOWN };

struct progress;

/* Draws on out, a terminal of width columns (0: ask the terminal, else
 * 80). Returns 0 or -ENOMEM. */
int progress_new(FILE *out, int width, struct progress **pp);

/* Erases the line if one was drawn, then frees p (NULL is fine). */
void progress_free(struct progress *p);

/* A phase is about to move files of bytes in direction dir; consecutive
 * plans of one direction add up (the pull announces a batch at a time). */
void progress_plan(struct progress *p, enum progress_dir dir, int64_t files, int64_t bytes);

/* The counters (bytes sent and received so far) at now_ns (a monotonic
 * clock). Redraws when due; returns 1 when it drew, else 0. */
int progress_update(struct progress *p, int64_t now_ns, int64_t up, int64_t down);

/* What the line shows, for progress_format. rate in bytes/s; total 0 and
 * files 0 when not known. */
struct progress_view {
        int have_dir;
        enum progress_dir dir;
        int64_t files, total; /* planned for this phase */
        int64_t moved;        /* of total, so far */
        int64_t up, down;     /* since the start */
        double rate;
};

/* The line, cut to width - 1 columns (so that it never wraps). */
void progress_format(const struct progress_view *v, int width, char *out, size_t len);

/* 1023 -> "1023 B", 1536 -> "1.5 KiB", 10485760 -> "10.0 MiB" (binary
 * units up to TiB, one decimal). */
void progress_human(int64_t bytes, char *out, size_t len);

/* Seconds as "0:07", "12:34", "1:02:03". */
void progress_eta(int64_t secs, char *out, size_t len);

#endif
