/* lanproto: framing, MACs and the two halves of the handshake of the LAN
 * peer protocol (see lanproto.h and docs/lan.md).
 *
 * Socket I/O uses MSG_DONTWAIT and poll() so that a deadline holds whether
 * or not the descriptor is in non-blocking mode, and MSG_NOSIGNAL so that a
 * peer that went away yields -EPIPE instead of killing the process.
 */
#include "lanproto.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "err.h"

#define MAC_LABEL "ferry-lan-1"

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lanproto_deadline(int ms)
{
        return now_ms() + ms;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
        struct pollfd p = {.fd = fd, .events = events};

        for (;;) {
                int64_t left = deadline - now_ms();
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
                if (r > 0)
                        return 0; /* readable, writable, or an error the call reports */
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

static int io_full(int fd, void *p, size_t n, int writing, int64_t deadline)
{
        uint8_t *c = p;

        while (n > 0) {
                ssize_t k = writing ? send(fd, c, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                                    : recv(fd, c, n, MSG_DONTWAIT);
                int r;

                if (k > 0) {
                        c += k;
                        n -= (size_t)k;
                        continue;
                }
                if (k == 0)
                        return -ECONNRESET; /* the peer closed */
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                r = wait_fd(fd, writing ? POLLOUT : POLLIN, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int lanproto_send(int fd, json_t *hdr, const void *payload, size_t len, int64_t deadline)
{
        char *text = json_dumps(hdr, JSON_COMPACT);
        struct buf b = BUF_INIT;
        uint8_t pre[8];
        size_t hl;
        int r;

        if (!text)
                return -ENOMEM;
        hl = strlen(text);
        if (hl == 0 || hl > LANPROTO_HDR_MAX || len > LANPROTO_PAYLOAD_MAX) {
                r = err_set(-E2BIG, "LAN message over the size limits");
                goto out;
        }
        put_u32(pre, (uint32_t)hl);
        put_u32(pre + 4, (uint32_t)len);
        r = buf_append(&b, pre, sizeof(pre));
        if (r == 0)
                r = buf_append(&b, text, hl);
        /* small payloads go in the same send: fewer packets on the LAN */
        if (r == 0 && len > 0 && len <= 65536) {
                r = buf_append(&b, payload, len);
                len = 0;
        }
        if (r < 0)
                goto out;
        r = io_full(fd, b.data, b.len, 1, deadline);
        if (r == 0 && len > 0)
                r = io_full(fd, (void *)payload, len, 1, deadline);
out:
        buf_free(&b);
        free(text);
        return r;
}

int lanproto_send_error(int fd, const char *msg, int64_t deadline)
{
        json_t *h = json_pack("{s:s, s:s}", "t", "error", "error", msg);
        int r;

        if (!h)
                return -ENOMEM;
        r = lanproto_send(fd, h, NULL, 0, deadline);
        json_decref(h);
        return r;
}

void lanproto_msg_free(struct lanproto_msg *m)
{
        json_decref(m->hdr);
        m->hdr = NULL;
        m->type = NULL;
        buf_free(&m->payload);
}

int lanproto_recv(int fd, size_t max_payload, int64_t deadline, struct lanproto_msg *m)
{
        uint8_t pre[8];
        uint32_t hl, pl;
        char *text = NULL;
        json_t *t;
        int r;

        lanproto_msg_free(m);
        r = io_full(fd, pre, sizeof(pre), 0, deadline);
        if (r < 0)
                goto out;
        hl = get_u32(pre);
        pl = get_u32(pre + 4);
        if (hl == 0 || hl > LANPROTO_HDR_MAX) {
                r = err_set(-EPROTO, "LAN message: bad header length %u", hl);
                goto out;
        }
        if (pl > max_payload || pl > LANPROTO_PAYLOAD_MAX) {
                r = err_set(-EPROTO, "LAN message: payload of %u bytes over the limit", pl);
                goto out;
        }
        text = malloc(hl);
        if (!text || buf_reserve(&m->payload, pl) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = io_full(fd, text, hl, 0, deadline);
        if (r < 0)
                goto out;
        m->hdr = json_loadb(text, hl, JSON_REJECT_DUPLICATES, NULL);
        t = json_object_get(m->hdr, "t");
        if (!json_is_object(m->hdr) || !json_is_string(t)) {
                r = err_set(-EPROTO, "LAN message: the header is not a typed JSON object");
                goto out;
        }
        m->type = json_string_value(t);
        r = io_full(fd, m->payload.data, pl, 0, deadline);
        if (r < 0)
                goto out;
        m->payload.len = pl;
        m->payload.data[pl] = 0; /* buf keeps one byte past len */
out:
        free(text);
        if (r < 0)
                lanproto_msg_free(m);
        return r;
}

static void to_hex(const uint8_t *p, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = 0;
}

static int from_hex(const char *hex, uint8_t *out, size_t n)
{
        if (!hex || strlen(hex) != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < 2 * n; i++) {
                char c = hex[i];
                int v = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;

                if (v < 0)
                        return -EINVAL;
                if (i % 2 == 0)
                        out[i / 2] = (uint8_t)(v << 4);
                else
                        out[i / 2] |= (uint8_t)v;
        }
        return 0;
}

int lanproto_nonce(char *out)
{
        uint8_t b[LANPROTO_NONCE_HEX_LEN / 2];
        size_t got = 0;

        while (got < sizeof(b)) {
                ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_set(-errno, "getrandom: %s", strerror(errno));
                }
                got += (size_t)n;
        }
        to_hex(b, sizeof(b), out);
        return 0;
}

static int valid_nonce(const char *s)
{
        uint8_t b[LANPROTO_NONCE_HEX_LEN / 2];

        return s && from_hex(s, b, sizeof(b)) == 0;
}

static int mac_raw(const uint8_t *key, const char *n1, const char *n2, const char *device,
                   uint8_t out[32])
{
        struct buf msg = BUF_INIT;
        unsigned int len = 0;
        int r;

        r = buf_printf(&msg, MAC_LABEL "|%s|%s|%s", n1, n2, device);
        if (r < 0)
                goto out;
        if (!HMAC(EVP_sha256(), key, LANPROTO_KEY_LEN, msg.data, msg.len, out, &len) || len != 32)
                r = err_set(-EIO, "HMAC-SHA256 failed");
out:
        buf_free(&msg);
        return r;
}

int lanproto_mac(const uint8_t key[LANPROTO_KEY_LEN], const char *n1, const char *n2,
                 const char *device, char *out)
{
        uint8_t m[32];
        int r = mac_raw(key, n1, n2, device, m);

        if (r == 0)
                to_hex(m, sizeof(m), out);
        return r;
}

int lanproto_mac_check(const uint8_t key[LANPROTO_KEY_LEN], const char *n1, const char *n2,
                       const char *device, const char *mac)
{
        uint8_t want[32], got[32];

        if (from_hex(mac, got, sizeof(got)) < 0 || mac_raw(key, n1, n2, device, want) < 0)
                return 0;
        return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

int lanproto_key_from_hex(const char *hex, uint8_t key[LANPROTO_KEY_LEN])
{
        if (from_hex(hex, key, LANPROTO_KEY_LEN) < 0)
                return err_set(-EINVAL, "the LAN key is not %d hex digits", LANPROTO_KEY_HEX_LEN);
        return 0;
}

int lanproto_valid_device(const char *id)
{
        size_t n = id ? strlen(id) : 0;

        if (n == 0 || n > LANPROTO_DEVICE_MAX)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char c = id[i];

                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == '_' || c == '-'))
                        return 0;
        }
        return 1;
}

static const char *get_str(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

/* Sends the refusal (best effort: the peer may be gone) and returns code. */
static int refuse(int fd, int64_t deadline, int code, const char *why)
{
        (void)lanproto_send_error(fd, why, deadline);
        return err_set(code, "LAN peer refused: %s", why);
}

int lanproto_serve_handshake(int fd, const char *my_device, lanproto_authorise_fn authorise,
                             void *ud, int64_t deadline, char *peer, int64_t *key_version)
{
        struct lanproto_msg m = {0};
        char nonce[LANPROTO_NONCE_HEX_LEN + 1], mac[LANPROTO_MAC_HEX_LEN + 1];
        uint8_t key[LANPROTO_KEY_LEN];
        const char *dev, *their, *their_mac;
        json_t *h;
        int r;

        r = lanproto_nonce(nonce);
        if (r < 0)
                goto out;
        h = json_pack("{s:s, s:i, s:s, s:s}", "t", "hello", "proto", LANPROTO_VERSION, "device",
                      my_device, "nonce", nonce);
        r = h ? lanproto_send(fd, h, NULL, 0, deadline) : -ENOMEM;
        json_decref(h);
        if (r < 0)
                goto out;
        r = lanproto_recv(fd, 0, deadline, &m);
        if (r < 0)
                goto out;
        dev = get_str(m.hdr, "device");
        their = get_str(m.hdr, "nonce");
        their_mac = get_str(m.hdr, "mac");
        if (strcmp(m.type, "auth") != 0 || !lanproto_valid_device(dev) || !valid_nonce(their) ||
            !their_mac) {
                r = refuse(fd, deadline, -EPROTO, "authentication required");
                goto out;
        }
        /* a connector echoing our nonce could be reflecting our own MACs */
        if (strcmp(their, nonce) == 0) {
                r = refuse(fd, deadline, -EACCES, "authentication failed");
                goto out;
        }
        r = authorise(ud, dev, key, key_version);
        if (r == -ENOKEY) {
                r = refuse(fd, deadline, r, "no LAN key yet");
                goto out;
        }
        if (r < 0) {
                r = refuse(fd, deadline, -EACCES, "unknown device");
                goto out;
        }
        if (!lanproto_mac_check(key, nonce, their, dev, their_mac)) {
                r = refuse(fd, deadline, -EACCES, "authentication failed");
                goto out;
        }
        r = lanproto_mac(key, their, nonce, my_device, mac);
        if (r < 0)
                goto out;
        h = json_pack("{s:s, s:s}", "t", "ok", "mac", mac);
        r = h ? lanproto_send(fd, h, NULL, 0, deadline) : -ENOMEM;
        json_decref(h);
        if (r < 0)
                goto out;
        snprintf(peer, LANPROTO_DEVICE_MAX + 1, "%s", dev);
out:
        OPENSSL_cleanse(key, sizeof(key));
        lanproto_msg_free(&m);
        return r;
}

int lanproto_client_handshake(int fd, const char *my_device, const uint8_t key[LANPROTO_KEY_LEN],
                              const char *expect, int64_t deadline, char *peer)
{
        struct lanproto_msg m = {0};
        char nonce[LANPROTO_NONCE_HEX_LEN + 1], mac[LANPROTO_MAC_HEX_LEN + 1];
        char target[LANPROTO_DEVICE_MAX + 1], their[LANPROTO_NONCE_HEX_LEN + 1];
        json_t *h;
        int r;

        r = lanproto_recv(fd, 0, deadline, &m);
        if (r < 0)
                goto out;
        if (strcmp(m.type, "hello") != 0 ||
            json_integer_value(json_object_get(m.hdr, "proto")) != LANPROTO_VERSION ||
            !lanproto_valid_device(get_str(m.hdr, "device")) ||
            !valid_nonce(get_str(m.hdr, "nonce"))) {
                r = err_set(-EPROTO, "the LAN peer does not speak protocol %d", LANPROTO_VERSION);
                goto out;
        }
        snprintf(target, sizeof(target), "%s", get_str(m.hdr, "device"));
        snprintf(their, sizeof(their), "%s", get_str(m.hdr, "nonce"));
        if (expect && strcmp(expect, target) != 0) {
                r = err_set(-EACCES, "the LAN peer is device %s, not %s", target, expect);
                goto out;
        }
        r = lanproto_nonce(nonce);
        if (r == 0)
                r = lanproto_mac(key, their, nonce, my_device, mac);
        if (r < 0)
                goto out;
        h = json_pack("{s:s, s:s, s:s, s:s}", "t", "auth", "device", my_device, "nonce", nonce,
                      "mac", mac);
        r = h ? lanproto_send(fd, h, NULL, 0, deadline) : -ENOMEM;
        json_decref(h);
        if (r < 0)
                goto out;
        r = lanproto_recv(fd, 0, deadline, &m);
        if (r < 0)
                goto out;
        if (strcmp(m.type, "error") == 0) {
                const char *why = get_str(m.hdr, "error");

                r = err_set(-EACCES, "the LAN peer refused: %s", why ? why : "no reason given");
                goto out;
        }
        if (strcmp(m.type, "ok") != 0 ||
            !lanproto_mac_check(key, nonce, their, target, get_str(m.hdr, "mac"))) {
                r = err_set(-EACCES, "the LAN peer could not prove it holds the account's key");
                goto out;
        }
        if (peer)
                snprintf(peer, LANPROTO_DEVICE_MAX + 1, "%s", target);
out:
        lanproto_msg_free(&m);
        return r;
}

int lanproto_hashes_from_json(const json_t *arr, size_t max, struct hash **out, size_t *n)
{
        struct hash *h = NULL;
        size_t cnt = json_array_size(arr);
        int r = 0;

        *out = NULL;
        *n = 0;
        if (!json_is_array(arr) || cnt > max)
                return err_set(-EPROTO, "LAN message: bad hash list");
        if (cnt == 0)
                return 0;
        h = calloc(cnt, sizeof(*h));
        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < cnt; i++)
                if (hash_from_hex(json_string_value(json_array_get(arr, i)), &h[i]) < 0) {
                        r = err_set(-EPROTO, "LAN message: bad hash list");
                        goto out;
                }
        *out = h;
        *n = cnt;
        h = NULL;
out:
        free(h);
        return r;
}

json_t *lanproto_hashes_to_json(const struct hash *h, size_t n)
{
        json_t *arr = json_array();
        char hex[HASH_HEX_LEN + 1];

        for (size_t i = 0; arr && i < n; i++) {
                hash_to_hex(&h[i], hex);
                if (json_array_append_new(arr, json_string(hex)) < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}
