/* watch: the `ferry watch` daemon: keeps a linked folder in sync in real
 * time (docs/cli.md "watch").
 *
 * One thread runs an epoll loop over inotify (notify.c), a signalfd
 * (SIGINT, SIGTERM: stop at a safe point), a timerfd (settle times, retry
 * backoff, the periodic safety rescan) and an eventfd poked by the event
 * stream thread (evstream.c). Local events mark paths dirty; once they
 * settle, a round (sync.c) scans just those paths, uploads, and pulls. A new
 * seq from the server starts a round at once. A full round (whole-folder
 * scan) runs at start-up, after an inotify overflow, after the server comes
 * back, and every WATCH_RESCAN_S as a safety net. The folder lock is held
 * during rounds only.
 *
 * It also runs the device's LAN listener and the upload requests other
 * devices make of it (watch_req.h): a queued request runs as a full round
 * of its own, after overrides of the upload rules for what it asks.
 */
#ifndef FERRY_WATCH_H
#define FERRY_WATCH_H

#include "config.h"
#include "watch_req.h"

/* A round starts this long after the last create/close/delete/move. */
#define WATCH_SETTLE_MS 20
/* ... but no later than this after the first of a burst of events. */
#define WATCH_MAX_DELAY_MS 250
/* A file modified but not closed is uploaded once quiet this long (writers
 * that never close, e.g. through mmap); a closed file goes at once. */
#define WATCH_WRITE_QUIET_MS 2000
/* The periodic full rescan, and its period when some directories could not
 * be watched (fs.inotify.max_user_watches). */
#define WATCH_RESCAN_S 600
#define WATCH_RESCAN_LIMITED_S 10

struct watch_options {
        const char *log_file; /* NULL: stderr */
        struct watch_req_options lan;
};

/* Runs until SIGINT/SIGTERM (returns 0) or a fatal error (negative code
 * with a message). */
int watch_run(const struct config *cfg, const struct watch_options *o);

#endif
