/* buf: a growable byte buffer, the way Ferry builds request bodies, frames
 * and paths without fixed-size arrays. Always NUL-terminated past len so
 * that text can be used as a C string. */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
        uint8_t *data; /* NULL until the first append */
        size_t len;
        size_t cap;
};

#define BUF_INIT                                                                                   \
        {                                                                                          \
                NULL, 0, 0                                                                         \
        }

/* Makes room for at least extra more bytes. Returns 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len), keeping the rest. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b); /* len = 0, keeps the memory */
void buf_free(struct buf *b);

/* For arrays of any element type: makes room in *arr (capacity *cap
 * elements of elem bytes) for at least need elements, doubling from 16.
 * 0, or -ENOMEM with *arr and *cap unchanged. */
int buf_grow_array(void *arr, size_t *cap, size_t need, size_t elem);
/* Hands the data to the caller (who frees it) and resets b. */
uint8_t *buf_steal(struct buf *b, size_t *len);

#endif
