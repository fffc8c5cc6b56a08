/* remote: the client's side of the HTTP API (docs/api.md), on libcurl.
 *
 * One struct remote holds one curl easy handle, so connections are kept
 * alive across requests. Any answer with status >= 400 becomes a negative
 * code with the server's JSON "error" text as the message; a server that
 * cannot be reached becomes -ECONNREFUSED with "cannot reach the server at
 * URL: ...".
 *
 * Status mapping: 400 -EINVAL, 401 -EACCES, 403 -EPERM, 404 -ENOENT,
 * 409 -EEXIST, 413 -E2BIG, other 4xx -EPROTO, 5xx -EIO.
 *
 * A remote also counts what crosses the wire (remote_stats), can be held to
 * a bandwidth limit (remote_set_limits) and can report progress while a
 * request runs (remote_set_progress), for `ferry sync --json`, --limit-up /
 * --limit-down and the progress line.
 */
#ifndef FERRY_REMOTE_H
#define FERRY_REMOTE_H

#include <stdint.h>

#include <jansson.h>

#include "buf.h"

struct remote;

/* token may be NULL (register, login). */
int remote_new(const char *server_url, const char *token, struct remote **out);
void remote_free(struct remote *r);

/* Replaces the token (NULL drops it), e.g. right after login, keeping the
 * connection. Returns 0 or -ENOMEM. */
int remote_set_token(struct remote *r, const char *token);

/* GET server_url + path_query; *out gets the parsed JSON body. */
int remote_get_json(struct remote *r, const char *path_query, json_t **out);

/* POST a JSON body (not stolen); *out gets the parsed JSON answer (may be
 * NULL when the caller does not need it). */
int remote_post_json(struct remote *r, const char *path, json_t *body, json_t **out);

/* POST a binary frames body (application/x-ferry-chunks), JSON answer. */
int remote_post_frames(struct remote *r, const char *path, const struct buf *body, json_t **out);

/* POST a JSON body and receive a binary answer into out (replaced). */
int remote_post_json_binary(struct remote *r, const char *path, json_t *body, struct buf *out);

/* What a remote has moved since remote_new. bytes_up/bytes_down are the
 * HTTP bytes written to / read from the connection: request and status
 * lines, headers and bodies exactly as transferred (what a counting TCP
 * proxy would see, without TLS framing); requests counts every request
 * tried, failed ones included. */
struct remote_stats {
        int64_t bytes_up;
        int64_t bytes_down;
        int64_t requests;
};

/* Safe to call from any thread, also while a request runs on another (the
 * counters then include the part of that request moved so far). */
void remote_stats(struct remote *r, struct remote_stats *out);

/* Bandwidth limits in bytes/s for the requests of r (0: unlimited),
 * applied by libcurl to every later request. */
void remote_set_limits(struct remote *r, int64_t up, int64_t down);

/* fn (NULL: none) is called with ud and the counters so far, on the thread
 * running a request, several times a second while a request moves bytes
 * and at least once a second while it waits. It must be quick and must
 * not use r. */
typedef void (*remote_progress_fn)(void *ud, const struct remote_stats *now);
void remote_set_progress(struct remote *r, remote_progress_fn fn, void *ud);

/* A second connection to r's server with r's token and limits, for a
 * second thread: its requests count in r's remote_stats and report
 * progress through r's progress function (never two calls at once). Free
 * it (remote_free) before r. Returns 0 or a negative code. */
int remote_clone(struct remote *r, struct remote **out);

/* 1 when r has a bandwidth limit (remote_set_limits): a clone would get the
 * same limit again, so callers that care keep to one connection. */
int remote_limited(const struct remote *r);

/* URL-encodes s for a query string; malloc'd, NULL on out of memory. */
char *remote_escape(const char *s);

#endif
