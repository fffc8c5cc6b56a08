/* fakesrv: a scripted HTTP/1.1 server for the client's unit tests, on
 * 127.0.0.1 (an ephemeral port) in a thread of its own: every request is
 * recorded (method, path with query, body) and answered by the test's
 * handler, keep-alive. Each connection (up to 4 at once) is served on a thread of
 * its own, so a client's second connection (an upload's second poster) is
 * served at once; the handler then runs on both threads. Tests only. */
#ifndef FERRY_FAKESRV_H
#define FERRY_FAKESRV_H

#include <stddef.h>

#include "buf.h"

#define FAKESRV_MAX_REQUESTS 256

struct fakesrv_request {
        char method[8];
        char path[512];
        char *body; /* NUL-terminated copy (binary bodies are cut at a NUL) */
        size_t len; /* its real length */
};

/* Answers one request: returns the HTTP status and fills out (a JSON body).
 * Runs on the server's thread. */
typedef int (*fakesrv_handler)(void *ud, const struct fakesrv_request *req, struct buf *out);

struct fakesrv;

int fakesrv_start(fakesrv_handler h, void *ud, struct fakesrv **out);
void fakesrv_stop(struct fakesrv *s);

/* "http://127.0.0.1:PORT" */
const char *fakesrv_url(const struct fakesrv *s);

/* Requests recorded so far (the oldest first; at most
 * FAKESRV_MAX_REQUESTS are kept). */
size_t fakesrv_count(struct fakesrv *s);
/* A copy of request i (caller frees body), 0 or -1 when there is none. */
int fakesrv_get(struct fakesrv *s, size_t i, struct fakesrv_request *out);
/* How many requests so far had this method and path (the path up to '?'). */
size_t fakesrv_count_of(struct fakesrv *s, const char *method, const char *path);
void fakesrv_clear(struct fakesrv *s);

#endif
