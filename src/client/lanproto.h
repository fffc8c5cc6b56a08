/* lanproto: the LAN peer protocol's wire format and handshake (docs/lan.md),
 * shared by the listener (lan.c) and the connecting side (lanclient.c).
 *
 * A message is: a u32 big-endian header length H (1..LANPROTO_HDR_MAX), a
 * u32 big-endian payload length P (0..LANPROTO_PAYLOAD_MAX), H bytes of a
 * JSON object whose "t" names the type, then P bytes of payload. The
 * handshake proves to each side that the other holds the account's LAN key
 * (HMAC-SHA256 over fresh nonces of both sides and the prover's device id).
 *
 * Everything here works over any connected stream socket (TCP, or a
 * socketpair in the tests), blocking or not: every read and write waits with
 * poll() against an absolute deadline (lanproto_deadline) and never blocks
 * past it. Nothing here keeps state between calls.
 */
#ifndef FERRY_LANPROTO_H
#define FERRY_LANPROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "hash.h"

#define LANPROTO_VERSION 1
#define LANPROTO_HDR_MAX 65536u
#define LANPROTO_PAYLOAD_MAX (16u * 1024u * 1024u)
#define LANPROTO_KEY_LEN 32
#define LANPROTO_KEY_HEX_LEN 64
#define LANPROTO_NONCE_HEX_LEN 32
#define LANPROTO_MAC_HEX_LEN 64
/* Device ids are 32 hex digits today; anything up to this many of
 * [0-9A-Za-z_-] is accepted so that the protocol does not depend on it. */
#define LANPROTO_DEVICE_MAX 64
/* The most hashes one "chunks" request may name. */
#define LANPROTO_MAX_HASHES 1024
/* The most paths one "upload" request may carry. */
#define LANPROTO_MAX_PATHS 1000
/* The listener's limit for the whole handshake. */
#define LANPROTO_HANDSHAKE_MS 5000

/* A received message. type points into hdr. */
struct lanproto_msg {
        json_t *hdr;
        const char *type;
        struct buf payload;
};

/* A CLOCK_MONOTONIC time in milliseconds ms from now, for the deadline
 * arguments below. */
int64_t lanproto_deadline(int ms);

/* Sends one message: hdr (an object; its "t" is the caller's business) and
 * payload[0..len) (len <= LANPROTO_PAYLOAD_MAX; payload may be NULL when len
 * is 0). Returns 0, -ETIMEDOUT past the deadline, or another negative code
 * (-EPIPE, -ECONNRESET, ...). */
int lanproto_send(int fd, json_t *hdr, const void *payload, size_t len, int64_t deadline);

/* Sends {"t":"error","error":msg}. Same returns. */
int lanproto_send_error(int fd, const char *msg, int64_t deadline);

/* Receives one whole message into m (whose earlier contents are freed;
 * zero-initialise it before the first use). Refuses (-EPROTO, with a
 * message) a header length of 0 or over LANPROTO_HDR_MAX, a payload over
 * max_payload, a header that is not a JSON object with a string "t".
 * -ECONNRESET when the peer closed, -ETIMEDOUT past the deadline. */
int lanproto_recv(int fd, size_t max_payload, int64_t deadline, struct lanproto_msg *m);
void lanproto_msg_free(struct lanproto_msg *m);

/* A fresh random nonce: LANPROTO_NONCE_HEX_LEN lower-case hex digits from
 * getrandom(). out holds LANPROTO_NONCE_HEX_LEN + 1 bytes. */
int lanproto_nonce(char *out);

/* hex(HMAC-SHA256(key, "ferry-lan-1|" + n1 + "|" + n2 + "|" + device))
 * into out (LANPROTO_MAC_HEX_LEN + 1 bytes). Returns 0 or -EIO. */
int lanproto_mac(const uint8_t key[LANPROTO_KEY_LEN], const char *n1, const char *n2,
                 const char *device, char *out);

/* 1 when mac (any string) is the MAC above, compared in constant time; 0
 * otherwise. */
int lanproto_mac_check(const uint8_t key[LANPROTO_KEY_LEN], const char *n1, const char *n2,
                       const char *device, const char *mac);

/* The key as GET /api/v1/lan-key gives it (64 hex digits). 0 or -EINVAL. */
int lanproto_key_from_hex(const char *hex, uint8_t key[LANPROTO_KEY_LEN]);

/* 1 when id has the shape of a device id (see LANPROTO_DEVICE_MAX). */
int lanproto_valid_device(const char *id);

/* The listener's decision about a connector that claims to be device: 0 and
 * the current key copied into key when device is an active device of the
 * account and a key is set; -EACCES (not in the control list) or -ENOKEY
 * (no key yet) otherwise. *version gets the key's version (to notice a new
 * key later). Called once per handshake, on the connection's thread. */
typedef int (*lanproto_authorise_fn)(void *ud, const char *device, uint8_t key[LANPROTO_KEY_LEN],
                                     int64_t *version);

/* The listener's half of the handshake: hello, then the connector's auth
 * checked through authorise and the MAC, then ok (or an error message sent
 * to the peer, and a negative return: -EACCES for a refused device or MAC,
 * -ENOKEY, -EPROTO for anything malformed, -ETIMEDOUT). On success peer
 * gets the connector's device id (LANPROTO_DEVICE_MAX + 1 bytes) and
 * *key_version the version of the key it proved. */
int lanproto_serve_handshake(int fd, const char *my_device, lanproto_authorise_fn authorise,
                             void *ud, int64_t deadline, char *peer, int64_t *key_version);

/* The connector's half: reads hello (refusing another protocol version, or
 * a device other than expect when expect is not NULL), sends auth, and
 * checks the listener's MAC in its ok. Returns 0; -EACCES with the peer's
 * reason when refused, or when the listener's MAC is wrong (it does not
 * hold the key); -EPROTO, -ETIMEDOUT, -ECONNRESET otherwise. peer (may be
 * NULL) gets the listener's device id. */
int lanproto_client_handshake(int fd, const char *my_device, const uint8_t key[LANPROTO_KEY_LEN],
                              const char *expect, int64_t deadline, char *peer);

/* A JSON array of at most max hex hashes into *out (malloc'd; NULL when
 * empty) and *n. -EPROTO on anything else. */
int lanproto_hashes_from_json(const json_t *arr, size_t max, struct hash **out, size_t *n);

/* A new JSON array of the hashes' hex forms, or NULL on out of memory. */
json_t *lanproto_hashes_to_json(const struct hash *h, size_t n);

#endif
