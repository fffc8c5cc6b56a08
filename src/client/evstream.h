/* evstream: the watch daemon's connection to the server's event stream
 * (GET /api/v1/events, Server-Sent Events, docs/api.md "Events").
 *
 * A thread of its own holds the stream with libcurl and reconnects, with a
 * capped, jittered exponential backoff, whenever it breaks (server
 * restarted, network gone, a silence longer than two keepalives). Each
 * "hello" and "seq" event records the space's newest seq and pokes the main
 * thread through an eventfd; the main thread reads the shared state with
 * evstream_get() and decides whether to pull. A "transfers" event (the
 * account's transfer records changed) is counted and pokes the same way.
 * The thread never touches the folder or the index.
 */
#ifndef FERRY_EVSTREAM_H
#define FERRY_EVSTREAM_H

#include <stdint.h>

/* Reconnect delays: from EVSTREAM_BACKOFF_MIN_MS, doubling per failed
 * attempt, never over EVSTREAM_BACKOFF_MAX_MS, each +/- 25 % at random. */
#define EVSTREAM_BACKOFF_MIN_MS 200
#define EVSTREAM_BACKOFF_MAX_MS 30000
/* The server sends a keepalive every 25 s: a stream silent this long is
 * dead even if TCP has not noticed. */
#define EVSTREAM_SILENCE_S 60L

struct evstream_state {
        int online;               /* the stream is up (a hello was received) */
        int64_t offline_since_ns; /* when it went down (or the thread started) */
        int64_t seq;              /* the newest seq announced, -1 before any */
        uint64_t transfer_events; /* "transfers" events received (the records changed) */
        uint64_t device_events;   /* "devices" events received (the control list changed) */
        uint64_t request_events;  /* "requests" events received (upload requests changed) */
        uint64_t connects;        /* streams opened so far (hello received) */
        char last_error[256];     /* why the last attempt failed, "" if none */
};

struct evstream;

/* Starts the thread. server is the base URL, token the device token;
 * notify_fd an eventfd written (1) on each event and state change. */
int evstream_start(const char *server, const char *token, int notify_fd, struct evstream **out);

/* The stream resumes from this seq on its next (re)connect. */
void evstream_set_since(struct evstream *es, int64_t since);

void evstream_get(struct evstream *es, struct evstream_state *out);

/* Stops the thread (interrupting a wait or a stream at once) and frees es. */
void evstream_stop(struct evstream *es);

/* The delay before reconnect attempt `attempt` (0 for the first retry), r
 * a random number in [0, 1). Exposed for the unit tests. */
int64_t evstream_backoff_ms(unsigned attempt, double r);

/* Parses one event's data ({"seq":N,...}); *seq gets N. -EPROTO if none. */
int evstream_parse_seq(const char *data, int64_t *seq);

/* The same for a "transfers", "devices" or "requests" event
 * ({"version":N}). */
int evstream_parse_version(const char *data, int64_t *version);

#endif
