/* chunkfix: a file's worth of distinct chunks (pseudo-random bytes, no
 * repeats) and the answer of a fake POST /api/v1/chunks/fetch that serves
 * them, shared by the download tests against fakesrv.c
 * (test-transfer-peer, test-transfer-prefetch). Tests only. */
#ifndef FERRY_CHUNKFIX_H
#define FERRY_CHUNKFIX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"
#include "manifest.h"

struct chunkfix {
        uint8_t *data;
        size_t len;
        struct manifest m; /* of data */
        uint64_t *offs;    /* where chunk k starts in data */
        /* chunks served by chunkfix_fetch, and of those the even ones */
        size_t asked, asked_even;
};

/* len bytes from seed, cut and hashed through a scratch file in dir (then
 * removed). Fails the test on any error. */
void chunkfix_init(struct chunkfix *cf, size_t len, uint64_t seed, const char *dir);

/* The index of the chunk with hash h, or SIZE_MAX. */
size_t chunkfix_find(const struct chunkfix *cf, const struct hash *h);

/* Appends frame of chunk k under hash h (zstd when compress says so and it
 * pays). Fails the test on error. */
void chunkfix_frame(const struct chunkfix *cf, struct buf *out, const struct hash *h, size_t k,
                    int compress);

/* Answers the fetch request body: frames of the chunks it names, in order,
 * those whose index is a multiple of compress_every (0: none) compressed.
 * Returns 200, or 404 for an unreadable body or an unknown hash. */
int chunkfix_fetch(struct chunkfix *cf, const char *body, struct buf *out, size_t compress_every);

void chunkfix_free(struct chunkfix *cf);

#endif
