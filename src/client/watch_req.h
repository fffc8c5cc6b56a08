/* watch_req: the watch daemon's side of the device registry (docs/cli.md
 * "watch", docs/lan.md): its LAN listener, what it tells the server about
 * itself, the control list and LAN key it keeps fresh, and the upload
 * requests other devices make of it.
 *
 * The watch loop (watch.c) owns one struct watch_req and calls it on its
 * own thread only: on each hello of the event stream (report the listener
 * and the platform with POST /api/v1/device, fetch the control list and the
 * key, list the requests pending for this device), on each "devices" event
 * (control list and key again), on each "requests" event (pending requests
 * again), and when the listener's queue is readable (requests delivered
 * over the LAN). Requests are queued once each (by id) whichever way they
 * came.
 *
 * Running one is split around the watch's sync round: watch_req_begin
 * marks it accepted and running and gives the files asked for overrides
 * of the upload rules (index.h: the held-up files at or under each path,
 * the path itself, and the folders above it that the server lacks; or
 * every held-up file for `all`); the watch runs a full round;
 * watch_req_more adds overrides for files that round found held under the
 * request (created since the last scan), which earns one more round; and
 * watch_req_finish marks it done with the number of files uploaded, or
 * failed with the reason.
 */
#ifndef FERRY_WATCH_REQ_H
#define FERRY_WATCH_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "peers.h"

struct watch_req_options {
        int no_lan;           /* no LAN listener at all */
        const char *lan_addr; /* listen on and announce this address; NULL: the route's */
        int lan_port;         /* 0: a free port chosen by the kernel */
};

/* One upload request to run. */
struct watch_req_job {
        int64_t id;
        char *requester; /* name (or id) of the device that asked, for the log */
        char **paths;
        size_t npaths;
        int all;
        int accepted; /* marked accepted on the server already */
        int lan;      /* delivered over the LAN */
};

struct watch_req;

/* Starts the LAN listener (unless o->no_lan). A listener that cannot start
 * fails (the user asked for that port or address); an address that cannot
 * be found (no route to the server) only leaves the LAN off, with a
 * warning. */
int watch_req_open(const struct config *cfg, const struct watch_req_options *o,
                   struct watch_req **out);

/* Tells the server the listener is gone (best effort), stops it, frees. */
void watch_req_close(struct watch_req *wr);

/* The listener's eventfd (readable while LAN requests are queued), -1
 * without a listener. */
int watch_req_fd(const struct watch_req *wr);

/* The event stream said hello: report, refresh, list. Failures are logged;
 * the next hello or event tries again. */
void watch_req_hello(struct watch_req *wr);

/* A "devices" event: control list and LAN key again. */
void watch_req_devices(struct watch_req *wr);

/* A "requests" event: the pending requests for this device again. */
void watch_req_requests(struct watch_req *wr);

/* Moves the requests the listener queued into the queue. */
void watch_req_take_lan(struct watch_req *wr);

/* 1 when a request waits to run. */
int watch_req_queued(const struct watch_req *wr);

/* Takes the oldest waiting request into *job (free it with
 * watch_req_job_free): 1, or 0 when none waits. */
int watch_req_next(struct watch_req *wr, struct watch_req_job *job);
void watch_req_job_free(struct watch_req_job *job);

/* Marks job accepted and running and adds its overrides. A negative
 * return means: do not run it (logged): the server refused it (taken
 * back, expired, not for this device) or cannot be reached, or it failed
 * here already (marked failed: none of its paths exists, the index). */
int watch_req_begin(struct watch_req *wr, struct watch_req_job *job);

/* After a round: overrides for held-up files of the request that have
 * none yet; *added gets how many. */
int watch_req_more(struct watch_req *wr, const struct watch_req_job *job, size_t *added);

/* Marks job done (result 0) with files uploaded, or failed with reason. */
void watch_req_finish(struct watch_req *wr, const struct watch_req_job *job, int result,
                      int64_t files, const char *reason);

/* The control list as last fetched (n 0 before the first). */
const struct peers *watch_req_peers(const struct watch_req *wr);

/* The LAN key as last fetched: 1 and key/version, or 0 when there is none
 * yet. */
int watch_req_key(const struct watch_req *wr, uint8_t key[LANPROTO_KEY_LEN], int64_t *version);

#endif
