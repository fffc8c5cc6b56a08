/* lanclient: the connecting side of the LAN peer protocol (docs/lan.md):
 * deciding whether two devices share a LAN, connecting to another device's
 * listener (connect and mutual handshake within a time limit), delivering an
 * upload request, and fetching chunks, which is also offered as the
 * peer_fetch hook of struct transfer so that downloads take chunks from a
 * LAN peer before the server.
 *
 * A struct lanclient is one authenticated connection, used by one thread at
 * a time. After any failure (timeout, refusal, a malformed answer) it is
 * broken and every later call returns -EPIPE: close it and fall back to the
 * server.
 */
#ifndef FERRY_LANCLIENT_H
#define FERRY_LANCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"
#include "lanproto.h"

/* Connect + handshake, as the brief for "same LAN" delivery says. */
#define LANCLIENT_CONNECT_MS 2000
/* One request and its whole answer (up to 16 MiB of chunks). */
#define LANCLIENT_REQUEST_MS 60000

struct lanclient;

/* 1 when the two devices' LAN entries (address literal and prefix length,
 * as in the device JSON's "lan") put them on the same network: both
 * addresses of one family, the same prefix, and equal network parts under
 * it; 0 otherwise (also for an unparsable address or a prefix out of range). */
int lanclient_same_lan(const char *addr_a, int prefix_a, const char *addr_b, int prefix_b);

/* Connects to addr (IPv4 or IPv6 literal) port, and runs the handshake as
 * my_device with key; target (may be NULL) is the device id the listener
 * must announce. The whole takes at most timeout_ms (LANCLIENT_CONNECT_MS is
 * the usual). Returns 0 and *out, or a negative code with a message:
 * -ECONNREFUSED / -ETIMEDOUT / -EHOSTUNREACH (not reachable), -EACCES
 * (refused, with the listener's reason; or the listener failed to prove the
 * key), -EPROTO. */
int lanclient_connect(const char *addr, uint16_t port, const char *my_device,
                      const uint8_t key[LANPROTO_KEY_LEN], const char *target, int timeout_ms,
                      struct lanclient **out);

/* Sends {"t":"bye"} (best effort) and closes. NULL is fine. */
void lanclient_close(struct lanclient *c);

/* Delivers upload request id (the server's record, made first) for
 * paths[0..n) or all: 0 once the target answered accepted; -EBUSY when its
 * queue is full; -EACCES / -EPROTO (with the reason) when it refused. */
int lanclient_upload(struct lanclient *c, int64_t id, const char *const *paths, size_t n, int all);

/* Asks for chunks hashes[0..n) (n <= LANPROTO_MAX_HASHES) and appends to
 * frames (frame.h format; not reset) the ones the peer has, each checked
 * here against its hash; *got (may be NULL) gets how many. A peer that
 * sends a chunk it was not asked for, or one that does not verify, breaks
 * the connection (-EBADMSG / -EPROTO) and nothing is appended. */
int lanclient_chunks(struct lanclient *c, const struct hash *hashes, size_t n, struct buf *frames,
                     size_t *got);

/* struct transfer's peer_fetch hook: ud is a struct lanclient. Splits
 * requests over LANPROTO_MAX_HASHES. */
int lanclient_fetch(void *ud, const struct hash *hashes, size_t n, struct buf *frames);

/* The listener's device id (as it announced and proved it). */
const char *lanclient_peer(const struct lanclient *c);

#endif
