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
 */
#ifndef FERRY_REMOTE_H
#define FERRY_REMOTE_H

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

/* URL-encodes s for a query string; malloc'd, NULL on out of memory. */
char *remote_escape(const char *s);

#endif
