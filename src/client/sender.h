/* sender: the posting half of an upload (transfer.c): chunk frames are
 * appended to request bodies of about TRANSFER_BODY_BYTES, and each full
 * body goes to a poster thread that sends it (POST /api/v1/chunks) while
 * the caller reads and hashes the next. Private to the upload code.
 *
 * A chunk added with `ask` set is one the caller does not know the server
 * lacks (a file read and sent in one pass, transfer_stream): the poster
 * first asks (POST /api/v1/chunks/missing, on its own connection, so the
 * reading thread never waits for the answer) and drops from the body the
 * chunks the server already has. That is what keeps an interrupted upload
 * of a new file from sending again what got through before.
 */
#ifndef FERRY_SENDER_H
#define FERRY_SENDER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"
#include "remote.h"
#include "transfer.h"

/* A request body and the files it advances (for transfer.body_sent). */
struct body {
        struct buf b;
        struct transfer_mark *marks;
        size_t n, cap;
        uint64_t seq;      /* its number among the bodies shipped */
        struct hash *asks; /* the chunks to ask about before posting */
        size_t nasks, capasks;
};

#define SENDER_POSTERS 2
#define SENDER_BODIES (SENDER_POSTERS + 1)

struct sender;

/* A thread posting bodies on one connection, one at a time. */
struct poster {
        struct sender *sd;
        struct remote *rem; /* the transfer's remote, or a clone (own_rem) */
        int own_rem;
        pthread_t th;
        int started;
        struct body *job; /* the body to post; NULL when idle */
        int stop;
        int result;    /* of the last failed post */
        char msg[256]; /* its error message (err_set is per thread) */
};

/* The bodies and posters of one upload, under one lock: hand-overs come a
 * few dozen times a second, never contended for long. */
struct sender {
        struct transfer *t;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct poster post[SENDER_POSTERS];
        int nposters; /* 1, or 2 from the second body on */
        struct body body[SENDER_BODIES];
        int fill;          /* index of the body being filled */
        uint64_t shipped;  /* bodies handed to posters */
        uint64_t reported; /* bodies done with (reported or not), in order */
        uint64_t failed;   /* the first body that failed (UINT64_MAX: none) */
        uint64_t dropped;  /* asked-about chunks the server had */
};

void sender_init(struct sender *sd, struct transfer *t);

/* Appends chunk h (data[0..len), zstd when that pays) to the body being
 * filled, marks path as sent up to done (t->body_sent), and ships the body
 * when it is full. ask: see above. Returns 0 or a negative code (a failed
 * post of an earlier body included). */
int sender_add(struct sender *sd, const struct hash *h, const uint8_t *data, size_t len, int ask,
               const char *path, uint64_t done);

/* Ships what the body being filled holds, waits for every body in flight,
 * stops the threads and frees everything. Returns err, else the first
 * failure of a post, else 0. */
int sender_finish(struct sender *sd, int err);

/* Asks rem which of hashes[0..n) the server lacks; add(ud, h) for each.
 * Returns 0 or a negative code. */
int sender_query_missing(struct remote *rem, const struct hash *hashes, size_t n,
                         int (*add)(void *ud, const struct hash *h), void *ud);

#endif
