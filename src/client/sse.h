/* sse: a parser for a Server-Sent Events stream (the text/event-stream
 * format of the HTML standard), as GET /api/v1/events sends it.
 *
 * Bytes go in as they arrive, split anywhere (a chunk may end in the middle
 * of a line, or between the CR and LF of a CRLF); each complete event comes
 * out through a callback with its event name ("message" when none was
 * given), its data (the data: lines joined by "\n") and the last event id.
 * Lines end with LF, CRLF or CR; lines starting with ':' are comments
 * (keepalives) and are counted, not reported. Lines and data are bounded:
 * a peer that sends more is not a ferryd and the parser fails.
 */
#ifndef FERRY_SSE_H
#define FERRY_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Longest line, and most data in one event, accepted. */
#define SSE_MAX_LINE 65536
#define SSE_MAX_DATA (1024 * 1024)

typedef int (*sse_event_cb)(void *ud, const char *event, const char *data, const char *id);

struct sse_parser {
        struct buf line;  /* the line being read */
        struct buf data;  /* the event's data so far */
        struct buf event; /* the event's name so far */
        struct buf id;    /* the last event id (persists across events) */
        int have_data;    /* a data: field was seen in this event */
        int after_cr;     /* the last byte was a CR: a following LF is not a new line */
        int64_t comments; /* comment lines seen (keepalives) */
};

void sse_init(struct sse_parser *p);
void sse_free(struct sse_parser *p);

/* Feeds n bytes. cb is called for each event completed by them; a negative
 * return from cb stops and is returned. Returns 0, -E2BIG for an over-long
 * line or data, -ENOMEM. */
int sse_feed(struct sse_parser *p, const char *bytes, size_t n, sse_event_cb cb, void *ud);

#endif
