/* lan: the LAN listener of `ferry watch` (docs/lan.md): a thread that owns a
 * listening TCP socket and lets the account's other devices on the same
 * network ask this one for chunks it holds and tell it to upload now.
 *
 * Connections are served on a thread each, at most LAN_MAX_CONNS at once
 * (more are closed at once); each must finish the handshake (lanproto.h)
 * within LANPROTO_HANDSHAKE_MS and send its next request within
 * LAN_IDLE_MS. Who may connect is decided by the control list and the
 * account's LAN key, both set by the owner (the watch loop, from GET
 * /api/v1/devices and GET /api/v1/lan-key) and replaceable at any time from
 * any thread; until a key is set every connector is refused. A connection
 * whose device leaves the control list, or whose key is replaced, is closed
 * at its next request.
 *
 * Chunks are served from the folder through a read-only use of its index
 * (a handle of its own): the file the index names is opened beneath the
 * folder without following any symlink, and each chunk is hashed before it
 * is sent; a chunk that does not verify is simply not offered. Upload
 * requests are only queued here: the owner takes them with
 * lan_next_request() when lan_event_fd() becomes readable, and runs them
 * (the server's request record carries status and result).
 */
#ifndef FERRY_LAN_H
#define FERRY_LAN_H

#include <stddef.h>
#include <stdint.h>

#include "lanproto.h"

#define LAN_MAX_CONNS 8
#define LAN_IDLE_MS 30000
/* Upload requests waiting for the owner; more are refused ("busy"). */
#define LAN_QUEUE_MAX 64

struct lan;

struct lan_config {
        const char *root;       /* the synced folder, served read-only */
        const char *index_path; /* its index: ROOT/.ferry/index.db */
        const char *device_id;  /* this device's id, sent in hello */
        /* the address to listen on (an IPv4 or IPv6 literal); NULL or "" for
         * every address (IPv6 and IPv4 where possible) */
        const char *addr;
        uint16_t port; /* 0: a free port chosen by the kernel (lan_port) */
};

/* An upload request a peer delivered over the LAN (docs/lan.md). */
struct lan_request {
        int64_t id;                              /* the server's request id */
        char requester[LANPROTO_DEVICE_MAX + 1]; /* the authenticated device */
        char **paths;                            /* validated Ferry paths */
        size_t npaths;
        int all;
};

struct lan_stats {
        uint64_t accepted; /* connections that passed the handshake */
        uint64_t refused;  /* handshakes that failed, and connections over the limit */
        uint64_t requests; /* upload requests queued */
        uint64_t chunks;   /* chunks served (sent, or being sent) */
        uint64_t bytes;    /* payload bytes of those chunks */
};

/* Binds, listens and starts the listener thread. Returns 0 or a negative
 * code with a message (-EADDRINUSE, -EINVAL for a bad address, ...). */
int lan_start(const struct lan_config *c, struct lan **out);

/* Closes every connection, stops the thread and frees l (NULL is fine). */
void lan_stop(struct lan *l);

/* The port actually listened on. */
uint16_t lan_port(const struct lan *l);

/* Replaces the control list: the ids of the account's active devices.
 * Returns 0 or -ENOMEM (the old list is kept then). */
int lan_set_peers(struct lan *l, const char *const *ids, size_t n);

/* Replaces the account's LAN key (32 bytes; lanproto_key_from_hex for the
 * server's hex form) and its version. A different version closes the
 * connections authenticated under the old key at their next request. */
void lan_set_key(struct lan *l, const uint8_t key[LANPROTO_KEY_LEN], int64_t version);

/* An eventfd that is readable while upload requests are queued; poll it
 * and call lan_next_request() until it returns 0. */
int lan_event_fd(const struct lan *l);

/* Takes the oldest queued request into *out (free it with
 * lan_request_free): 1, or 0 when none is queued. */
int lan_next_request(struct lan *l, struct lan_request *out);
void lan_request_free(struct lan_request *r);

void lan_stats(struct lan *l, struct lan_stats *out);

#endif
