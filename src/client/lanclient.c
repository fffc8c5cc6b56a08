/* lanclient: the connector's side of the LAN peer protocol (see
 * lanclient.h): a non-blocking connect bounded by the caller's deadline,
 * lanproto's handshake, and the two requests. Every chunk received is
 * decoded and hashed before it is handed on, whatever the caller does with
 * it later: a LAN peer is trusted with nothing but bytes that verify.
 */
#include "lanclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "log.h"

struct lanclient {
        int fd;
        int broken;
        char peer[LANPROTO_DEVICE_MAX + 1];
        struct lanproto_msg m;
        struct buf chunk; /* decode scratch */
};

static int parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

        memset(ss, 0, sizeof(*ss));
        if (addr && inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons(port);
                *len = sizeof(*a4);
                return 0;
        }
        if (addr && inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons(port);
                *len = sizeof(*a6);
                return 0;
        }
        return err_set(-EINVAL, "bad LAN address %s", addr ? addr : "(none)");
}

int lanclient_same_lan(const char *addr_a, int prefix_a, const char *addr_b, int prefix_b)
{
        uint8_t a[16], b[16];
        int len = 0, bits;

        if (!addr_a || !addr_b || prefix_a != prefix_b)
                return 0;
        if (inet_pton(AF_INET, addr_a, a) == 1) {
                if (inet_pton(AF_INET, addr_b, b) != 1)
                        return 0;
                len = 4;
        } else if (inet_pton(AF_INET6, addr_a, a) == 1) {
                if (inet_pton(AF_INET6, addr_b, b) != 1)
                        return 0;
                len = 16;
        } else {
                return 0;
        }
        bits = prefix_a;
        if (bits < 0 || bits > len * 8)
                return 0;
        for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
                uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

                if ((a[i] & mask) != (b[i] & mask))
                        return 0;
        }
        return 1;
}

static int connect_within(int fd, const struct sockaddr_storage *ss, socklen_t len,
                          int64_t deadline)
{
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        struct timespec ts;
        socklen_t elen = sizeof(int);
        int e = 0;

        if (connect(fd, (const struct sockaddr *)ss, len) == 0)
                return 0;
        if (errno != EINPROGRESS)
                return -errno;
        for (;;) {
                int64_t left;
                int r;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                left = deadline - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int)left);
                if (r > 0)
                        break;
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
                return -errno;
        return -e;
}

int lanclient_connect(const char *addr, uint16_t port, const char *my_device,
                      const uint8_t key[LANPROTO_KEY_LEN], const char *target, int timeout_ms,
                      struct lanclient **out)
{
        int64_t deadline = lanproto_deadline(timeout_ms);
        struct lanclient *c = NULL;
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int one = 1, r;

        *out = NULL;
        r = parse_addr(addr, port, &ss, &len);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
                r = err_set(-errno, "socket: %s", strerror(errno));
                goto out;
        }
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        r = connect_within(c->fd, &ss, len, deadline);
        if (r < 0) {
                r = err_set(r, "cannot reach the LAN peer at %s port %u: %s", addr, port,
                            strerror(-r));
                goto out;
        }
        r = lanproto_client_handshake(c->fd, my_device, key, target, deadline, c->peer);
        if (r == -ETIMEDOUT)
                r = err_set(r, "the LAN peer at %s port %u did not answer in time", addr, port);
        if (r < 0)
                goto out;
        *out = c;
        c = NULL;
out:
        if (c) {
                if (c->fd >= 0)
                        close(c->fd);
                free(c);
        }
        return r;
}

void lanclient_close(struct lanclient *c)
{
        json_t *bye;

        if (!c)
                return;
        bye = json_pack("{s:s}", "t", "bye");
        if (!c->broken && bye)
                (void)lanproto_send(c->fd, bye, NULL, 0, lanproto_deadline(200));
        json_decref(bye);
        close(c->fd);
        lanproto_msg_free(&c->m);
        buf_free(&c->chunk);
        free(c);
}

const char *lanclient_peer(const struct lanclient *c)
{
        return c->peer;
}

/* Sends hdr and waits for the answer in c->m; an {"t":"error"} answer
 * becomes -EACCES with the peer's reason (-EBUSY for "busy"). */
static int roundtrip(struct lanclient *c, json_t *hdr, size_t max_payload)
{
        int64_t deadline = lanproto_deadline(LANCLIENT_REQUEST_MS);
        const char *why;
        int r;

        if (c->broken)
                return err_set(-EPIPE, "the LAN connection to %s is broken", c->peer);
        if (!hdr)
                return -ENOMEM;
        r = lanproto_send(c->fd, hdr, NULL, 0, deadline);
        if (r == 0)
                r = lanproto_recv(c->fd, max_payload, deadline, &c->m);
        if (r < 0)
                return r;
        if (strcmp(c->m.type, "error") != 0)
                return 0;
        why = json_string_value(json_object_get(c->m.hdr, "error"));
        if (why && !strcmp(why, "busy"))
                return err_set(-EBUSY, "the LAN peer %s is busy", c->peer);
        return err_set(-EACCES, "the LAN peer %s refused: %s", c->peer, why ? why : "?");
}

int lanclient_upload(struct lanclient *c, int64_t id, const char *const *paths, size_t n, int all)
{
        json_t *hdr = json_pack("{s:s, s:I, s:[], s:b}", "t", "upload", "id", (json_int_t)id,
                                "paths", "all", all);
        json_t *arr = json_object_get(hdr, "paths");
        int r = 0;

        for (size_t i = 0; hdr && i < n; i++)
                if (json_array_append_new(arr, json_string(paths[i])) < 0)
                        r = -ENOMEM;
        if (r == 0)
                r = roundtrip(c, hdr, 0);
        if (r == 0 && strcmp(c->m.type, "accepted") != 0)
                r = err_set(-EPROTO, "the LAN peer %s answered %s to an upload request", c->peer,
                            c->m.type);
        if (r < 0 && r != -EBUSY)
                c->broken = 1;
        json_decref(hdr);
        return r;
}

static int asked(const struct hash *hashes, size_t n, const struct hash *h)
{
        for (size_t i = 0; i < n; i++)
                if (hash_equal(&hashes[i], h))
                        return 1;
        return 0;
}

int lanclient_chunks(struct lanclient *c, const struct hash *hashes, size_t n, struct buf *frames,
                     size_t *got)
{
        json_t *hdr = json_object(), *arr = lanproto_hashes_to_json(hashes, n);
        struct hash *have = NULL;
        size_t nhave = 0, pos = 0;
        int r;

        if (got)
                *got = 0;
        if (n > LANPROTO_MAX_HASHES) {
                r = err_set(-E2BIG, "too many hashes for one LAN request");
                goto out;
        }
        if (!hdr || !arr || json_object_set_new(hdr, "t", json_string("chunks")) < 0 ||
            json_object_set(hdr, "hashes", arr) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = roundtrip(c, hdr, LANPROTO_PAYLOAD_MAX);
        if (r < 0)
                goto out;
        r = lanproto_hashes_from_json(json_object_get(c->m.hdr, "have"), n, &have, &nhave);
        if (r < 0 || strcmp(c->m.type, "chunks") != 0) {
                r = err_set(-EPROTO, "the LAN peer %s sent a bad chunks answer", c->peer);
                goto out;
        }
        /* every frame: asked for, in the order of "have", and verifying */
        for (size_t i = 0; i < nhave; i++) {
                struct frame f;
                size_t used;

                r = frame_parse(c->m.payload.data + pos, c->m.payload.len - pos, &f, &used);
                if (r <= 0 || !hash_equal(&f.hash, &have[i]) || !asked(hashes, n, &f.hash)) {
                        r = err_set(-EPROTO, "the LAN peer %s sent chunks it was not asked for",
                                    c->peer);
                        goto out;
                }
                r = frame_decode(&f, &c->chunk);
                if (r < 0) {
                        r = err_set(-EBADMSG, "the LAN peer %s sent a chunk that does not verify",
                                    c->peer);
                        goto out;
                }
                pos += used;
        }
        if (pos != c->m.payload.len) {
                r = err_set(-EPROTO, "the LAN peer %s sent more than it listed", c->peer);
                goto out;
        }
        r = buf_append(frames, c->m.payload.data, c->m.payload.len);
        if (r == 0 && got)
                *got = nhave;
out:
        if (r < 0 && r != -ENOMEM)
                c->broken = 1;
        free(have);
        json_decref(arr);
        json_decref(hdr);
        return r;
}

int lanclient_fetch(void *ud, const struct hash *hashes, size_t n, struct buf *frames)
{
        struct lanclient *c = ud;
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i += LANPROTO_MAX_HASHES) {
                size_t k = n - i < LANPROTO_MAX_HASHES ? n - i : LANPROTO_MAX_HASHES;

                r = lanclient_chunks(c, hashes + i, k, frames, NULL);
        }
        if (r < 0)
                log_info("LAN: fetching chunks from %s failed: %s", c->peer, err_msg(r));
        return r;
}
