/* lan: the LAN listener (see lan.h): an accept thread, one thread per
 * authenticated connection (at most LAN_MAX_CONNS), the control list and
 * key under one mutex, the index handle under another (SQLite handles are
 * not shared between threads without one), and the queue of upload
 * requests signalled through an eventfd.
 */
#include "lan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "chunker.h"
#include "err.h"
#include "frame.h"
#include "index.h"
#include "log.h"
#include "path.h"
#include "transfer.h"

/* How long one answer may take to reach the peer (up to 16 MiB). */
#define LAN_IO_MS 60000

enum { CONN_FREE, CONN_RUNNING, CONN_DONE };

struct conn {
        struct lan *l;
        pthread_t th;
        int state; /* under l->mu */
        int fd;    /* closed and set to -1 under l->mu */
        char peer[LANPROTO_DEVICE_MAX + 1];
        int64_t key_version;
};

struct lan {
        char *device;
        int lfd, stopfd, evfd, rootfd;
        uint16_t port;
        pthread_t th;
        int started; /* th runs */
        struct index *idx;
        pthread_mutex_t idx_mu;

        pthread_mutex_t mu; /* everything below */
        char **peers;
        size_t npeers;
        uint8_t key[LANPROTO_KEY_LEN];
        int have_key;
        int64_t key_version;
        struct conn conns[LAN_MAX_CONNS];
        struct lan_request queue[LAN_QUEUE_MAX];
        size_t qhead, qlen;
        struct lan_stats stats;
};

/* The file the last chunk came from: consecutive chunks of a request
 * usually sit in the same file. */
struct src {
        char *path;
        int fd;
        struct manifest m;
        uint64_t *offs; /* offset of each chunk of m */
};

static int in_peers(const struct lan *l, const char *device)
{
        for (size_t i = 0; i < l->npeers; i++)
                if (!strcmp(l->peers[i], device))
                        return 1;
        return 0;
}

static int authorise(void *ud, const char *device, uint8_t key[LANPROTO_KEY_LEN], int64_t *version)
{
        struct lan *l = ud;
        int r = -EACCES;

        pthread_mutex_lock(&l->mu);
        if (!l->have_key) {
                r = -ENOKEY;
        } else if (in_peers(l, device)) {
                memcpy(key, l->key, LANPROTO_KEY_LEN);
                *version = l->key_version;
                r = 0;
        }
        pthread_mutex_unlock(&l->mu);
        return r;
}

static int still_allowed(struct lan *l, const struct conn *c)
{
        int ok;

        pthread_mutex_lock(&l->mu);
        ok = l->have_key && l->key_version == c->key_version && in_peers(l, c->peer);
        pthread_mutex_unlock(&l->mu);
        return ok;
}

/* Opens root/path for reading, walking it one component at a time with
 * O_NOFOLLOW so that no symlink anywhere on the way is followed; only a
 * regular file is returned. */
static int open_beneath(int rootfd, const char *path)
{
        char *copy = strdup(path), *p = copy, *slash;
        int dfd = rootfd, fd;
        struct stat st;

        if (!copy)
                return -ENOMEM;
        while ((slash = strchr(p, '/')) != NULL) {
                int nd;

                *slash = 0;
                nd = openat(dfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd != rootfd)
                        close(dfd);
                if (nd < 0) {
                        fd = -errno;
                        goto out;
                }
                dfd = nd;
                p = slash + 1;
        }
        fd = openat(dfd, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                fd = -errno;
        if (dfd != rootfd)
                close(dfd);
        if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
                close(fd);
                fd = -EINVAL;
        }
out:
        free(copy);
        return fd;
}

static void src_close(struct src *s)
{
        if (s->fd >= 0)
                close(s->fd);
        free(s->path);
        free(s->offs);
        manifest_free(&s->m);
        memset(s, 0, sizeof(*s));
        s->fd = -1;
}

static int src_open(struct lan *l, struct src *s, const char *path)
{
        uint64_t off = 0;
        int r;

        src_close(s);
        pthread_mutex_lock(&l->idx_mu);
        r = index_get_manifest(l->idx, path, &s->m);
        pthread_mutex_unlock(&l->idx_mu);
        if (r < 0)
                goto out;
        s->offs = malloc((s->m.n ? s->m.n : 1) * sizeof(*s->offs));
        s->path = strdup(path);
        if (!s->offs || !s->path) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < s->m.n; i++) {
                s->offs[i] = off;
                off += s->m.chunks[i].size;
        }
        s->fd = open_beneath(l->rootfd, path);
        r = s->fd < 0 ? s->fd : 0;
out:
        if (r < 0)
                src_close(s);
        return r;
}

/* The size of the chunk h at off in s's file, by the index's chunk list;
 * 0 when that list has no such chunk there. */
static uint32_t src_chunk_size(const struct src *s, const struct hash *h, uint64_t off)
{
        size_t lo = 0, hi = s->m.n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (s->offs[mid] < off)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < s->m.n && s->offs[lo] == off && hash_equal(&s->m.chunks[lo].hash, h))
                return s->m.chunks[lo].size;
        return 0;
}

/* Reads chunk h into data if this device holds it and it verifies; its
 * size, or 0 when it cannot be offered. */
static uint32_t read_chunk(struct lan *l, struct src *s, const struct hash *h, uint8_t *data)
{
        char *path = NULL;
        uint64_t off = 0;
        uint32_t size = 0;
        struct hash got;
        int r;

        pthread_mutex_lock(&l->idx_mu);
        r = index_find_chunk(l->idx, h, &path, &off);
        pthread_mutex_unlock(&l->idx_mu);
        if (r < 0 || path_validate(path) < 0)
                goto out;
        if ((!s->path || strcmp(s->path, path) != 0) && src_open(l, s, path) < 0)
                goto out;
        size = src_chunk_size(s, h, off);
        if (size == 0 || size > CHUNK_MAX || transfer_pread_full(s->fd, data, size, off) < 0) {
                size = 0;
                goto out;
        }
        hash_buf(data, size, &got);
        if (!hash_equal(&got, h))
                size = 0; /* the file changed since it was indexed */
out:
        free(path);
        return size;
}

static int serve_chunks(struct lan *l, struct conn *c, const json_t *hdr, struct src *s)
{
        struct hash *hs = NULL;
        size_t n = 0;
        struct buf payload = BUF_INIT;
        uint8_t *data = malloc(CHUNK_MAX);
        json_t *have = json_array(), *ans = NULL;
        char hex[HASH_HEX_LEN + 1];
        uint64_t chunks = 0;
        int r;

        if (!data || !have) {
                r = -ENOMEM;
                goto out;
        }
        r = lanproto_hashes_from_json(json_object_get(hdr, "hashes"), LANPROTO_MAX_HASHES, &hs, &n);
        if (r < 0) {
                (void)lanproto_send_error(c->fd, "bad chunks request", lanproto_deadline(1000));
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                uint32_t size = read_chunk(l, s, &hs[i], data);

                if (size == 0)
                        continue;
                /* what does not fit in one answer, the peer gets elsewhere */
                if (payload.len + FRAME_HDR_LEN + size > LANPROTO_PAYLOAD_MAX)
                        break;
                hash_to_hex(&hs[i], hex);
                r = frame_append(&payload, &hs[i], data, size, 0);
                if (r == 0 && json_array_append_new(have, json_string(hex)) < 0)
                        r = -ENOMEM;
                if (r < 0)
                        goto out;
                chunks++;
        }
        ans = json_pack("{s:s, s:O}", "t", "chunks", "have", have);
        if (!ans) {
                r = -ENOMEM;
                goto out;
        }
        /* counted before the answer goes, so that its receiver sees them */
        pthread_mutex_lock(&l->mu);
        l->stats.chunks += chunks;
        l->stats.bytes += payload.len;
        pthread_mutex_unlock(&l->mu);
        r = lanproto_send(c->fd, ans, payload.data, payload.len, lanproto_deadline(LAN_IO_MS));
out:
        json_decref(ans);
        json_decref(have);
        buf_free(&payload);
        free(data);
        free(hs);
        return r;
}

void lan_request_free(struct lan_request *q)
{
        for (size_t i = 0; i < q->npaths; i++)
                free(q->paths[i]);
        free(q->paths);
        memset(q, 0, sizeof(*q));
}

/* Checks an upload request; fills q. -EPROTO when malformed. */
static int parse_upload(const json_t *hdr, struct lan_request *q)
{
        const json_t *id = json_object_get(hdr, "id"), *paths = json_object_get(hdr, "paths");
        const json_t *all = json_object_get(hdr, "all");
        size_t n = json_array_size(paths);

        if (!json_is_integer(id) || json_integer_value(id) <= 0 ||
            (paths && !json_is_array(paths)) || n > LANPROTO_MAX_PATHS ||
            (all && !json_is_boolean(all)) || (!json_is_true(all) && n == 0))
                return err_set(-EPROTO, "bad upload request");
        q->id = json_integer_value(id);
        q->all = json_is_true(all);
        q->paths = calloc(n ? n : 1, sizeof(*q->paths));
        if (!q->paths)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *p = json_string_value(json_array_get(paths, i));

                if (!p || path_validate(p) < 0)
                        return err_set(-EPROTO, "bad upload request");
                q->paths[i] = strdup(p);
                if (!q->paths[i])
                        return -ENOMEM;
                q->npaths++;
        }
        return 0;
}

static int serve_upload(struct lan *l, struct conn *c, const json_t *hdr)
{
        struct lan_request q = {0};
        json_t *ans = NULL;
        uint64_t one = 1;
        int r, busy = 0;

        r = parse_upload(hdr, &q);
        if (r < 0) {
                (void)lanproto_send_error(c->fd, "bad upload request", lanproto_deadline(1000));
                goto out;
        }
        snprintf(q.requester, sizeof(q.requester), "%s", c->peer);
        pthread_mutex_lock(&l->mu);
        if (l->qlen == LAN_QUEUE_MAX) {
                busy = 1;
        } else {
                l->queue[(l->qhead + l->qlen++) % LAN_QUEUE_MAX] = q;
                memset(&q, 0, sizeof(q));
                l->stats.requests++;
                if (write(l->evfd, &one, sizeof(one)) < 0)
                        log_warn("LAN listener: cannot signal a request: %s", strerror(errno));
        }
        pthread_mutex_unlock(&l->mu);
        /* busy is not a violation: the connection stays usable */
        if (busy) {
                r = lanproto_send_error(c->fd, "busy", lanproto_deadline(LAN_IO_MS));
                goto out;
        }
        ans = json_pack("{s:s}", "t", "accepted");
        r = ans ? lanproto_send(c->fd, ans, NULL, 0, lanproto_deadline(LAN_IO_MS)) : -ENOMEM;
out:
        json_decref(ans);
        lan_request_free(&q);
        return r;
}

static void *conn_main(void *arg)
{
        struct conn *c = arg;
        struct lan *l = c->l;
        struct lanproto_msg m = {0};
        struct src s = {.fd = -1};
        int r;

        r = lanproto_serve_handshake(c->fd, l->device, authorise, l,
                                     lanproto_deadline(LANPROTO_HANDSHAKE_MS), c->peer,
                                     &c->key_version);
        pthread_mutex_lock(&l->mu);
        if (r < 0)
                l->stats.refused++;
        else
                l->stats.accepted++;
        pthread_mutex_unlock(&l->mu);
        if (r < 0) {
                log_info("LAN listener: refused a connection: %s", err_msg(r));
                goto out;
        }
        log_debug("LAN listener: device %s connected", c->peer);
        for (;;) {
                r = lanproto_recv(c->fd, 0, lanproto_deadline(LAN_IDLE_MS), &m);
                if (r < 0)
                        break;
                if (!still_allowed(l, c)) {
                        (void)lanproto_send_error(c->fd, "no longer authorised",
                                                  lanproto_deadline(1000));
                        break;
                }
                if (!strcmp(m.type, "bye"))
                        break;
                if (!strcmp(m.type, "chunks")) {
                        r = serve_chunks(l, c, m.hdr, &s);
                } else if (!strcmp(m.type, "upload")) {
                        r = serve_upload(l, c, m.hdr);
                } else {
                        (void)lanproto_send_error(c->fd, "unknown request",
                                                  lanproto_deadline(1000));
                        r = -EPROTO;
                }
                if (r < 0)
                        break;
        }
out:
        lanproto_msg_free(&m);
        src_close(&s);
        pthread_mutex_lock(&l->mu);
        close(c->fd);
        c->fd = -1;
        c->state = CONN_DONE;
        pthread_mutex_unlock(&l->mu);
        return NULL;
}

/* Joins the connection threads that ended. */
static void reap(struct lan *l)
{
        for (size_t i = 0; i < LAN_MAX_CONNS; i++) {
                struct conn *c = &l->conns[i];
                int done;

                pthread_mutex_lock(&l->mu);
                done = c->state == CONN_DONE;
                pthread_mutex_unlock(&l->mu);
                if (!done)
                        continue;
                pthread_join(c->th, NULL);
                pthread_mutex_lock(&l->mu);
                c->state = CONN_FREE;
                pthread_mutex_unlock(&l->mu);
        }
}

static void take(struct lan *l, int fd)
{
        struct conn *c = NULL;
        int one = 1;

        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_mutex_lock(&l->mu);
        for (size_t i = 0; i < LAN_MAX_CONNS && !c; i++)
                if (l->conns[i].state == CONN_FREE)
                        c = &l->conns[i];
        if (c) {
                *c = (struct conn){.l = l, .fd = fd, .state = CONN_RUNNING};
                if (pthread_create(&c->th, NULL, conn_main, c) != 0)
                        c->state = CONN_FREE;
        }
        if (!c || c->state == CONN_FREE) {
                l->stats.refused++;
                close(fd);
        }
        pthread_mutex_unlock(&l->mu);
}

static void *accept_main(void *arg)
{
        struct lan *l = arg;
        struct pollfd p[2] = {{.fd = l->lfd, .events = POLLIN},
                              {.fd = l->stopfd, .events = POLLIN}};

        for (;;) {
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("LAN listener: poll: %s", strerror(errno));
                        break;
                }
                if (p[1].revents)
                        break;
                reap(l);
                if (!(p[0].revents & POLLIN))
                        continue;
                fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) {
                        take(l, fd);
                } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                           errno == ENOMEM) {
                        usleep(100000); /* the backlog waits; do not spin */
                }
        }
        return NULL;
}

static int listen_on(struct lan *l, const char *addr, uint16_t port)
{
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        socklen_t len = 0;
        int one = 1, zero = 0;

        if (!addr || !*addr) {
                a6->sin6_family = AF_INET6;
                a6->sin6_addr = in6addr_any;
                a6->sin6_port = htons(port);
                len = sizeof(*a6);
                l->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (l->lfd < 0) { /* no IPv6 here: IPv4 only */
                        memset(&ss, 0, sizeof(ss));
                        addr = "0.0.0.0";
                } else {
                        (void)setsockopt(l->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                }
        }
        if (addr && *addr) {
                if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
                        a4->sin_family = AF_INET;
                        a4->sin_port = htons(port);
                        len = sizeof(*a4);
                } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
                        a6->sin6_family = AF_INET6;
                        a6->sin6_port = htons(port);
                        len = sizeof(*a6);
                } else {
                        return err_set(-EINVAL, "bad LAN listen address %s", addr);
                }
                l->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        }
        if (l->lfd < 0)
                return err_set(-errno, "LAN listener: socket: %s", strerror(errno));
        (void)setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(l->lfd, (struct sockaddr *)&ss, len) < 0 || listen(l->lfd, 16) < 0)
                return err_set(-errno, "LAN listener: cannot listen on port %u: %s", port,
                               strerror(errno));
        len = sizeof(ss);
        if (getsockname(l->lfd, (struct sockaddr *)&ss, &len) < 0)
                return err_set(-errno, "LAN listener: getsockname: %s", strerror(errno));
        l->port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
        return 0;
}

int lan_start(const struct lan_config *c, struct lan **out)
{
        struct lan *l = calloc(1, sizeof(*l));
        int r;

        *out = NULL;
        if (!l)
                return -ENOMEM;
        l->lfd = l->stopfd = l->evfd = l->rootfd = -1;
        pthread_mutex_init(&l->mu, NULL);
        pthread_mutex_init(&l->idx_mu, NULL);
        if (!lanproto_valid_device(c->device_id)) {
                r = err_set(-EINVAL, "bad device id for the LAN listener");
                goto out;
        }
        l->device = strdup(c->device_id);
        if (!l->device) {
                r = -ENOMEM;
                goto out;
        }
        l->rootfd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->rootfd < 0) {
                r = err_set(-errno, "cannot open %s: %s", c->root, strerror(errno));
                goto out;
        }
        r = index_open(c->index_path, &l->idx);
        if (r < 0)
                goto out;
        l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->stopfd < 0 || l->evfd < 0) {
                r = err_set(-errno, "eventfd: %s", strerror(errno));
                goto out;
        }
        r = listen_on(l, c->addr, c->port);
        if (r < 0)
                goto out;
        if (pthread_create(&l->th, NULL, accept_main, l) != 0) {
                r = err_set(-EAGAIN, "cannot start the LAN listener thread");
                goto out;
        }
        l->started = 1;
        log_info("LAN listener on port %u", l->port);
        *out = l;
        l = NULL;
out:
        lan_stop(l);
        return r;
}

void lan_stop(struct lan *l)
{
        uint64_t one = 1;
        int fds[4];

        if (!l)
                return;
        if (l->started) {
                if (write(l->stopfd, &one, sizeof(one)) < 0)
                        log_warn("LAN listener: cannot stop: %s", strerror(errno));
                pthread_join(l->th, NULL);
        }
        /* wake every connection thread: its next read or write fails */
        pthread_mutex_lock(&l->mu);
        for (size_t i = 0; i < LAN_MAX_CONNS; i++)
                if (l->conns[i].state == CONN_RUNNING && l->conns[i].fd >= 0)
                        shutdown(l->conns[i].fd, SHUT_RDWR);
        pthread_mutex_unlock(&l->mu);
        for (size_t i = 0; i < LAN_MAX_CONNS; i++) {
                int used;

                pthread_mutex_lock(&l->mu);
                used = l->conns[i].state != CONN_FREE;
                pthread_mutex_unlock(&l->mu);
                if (used)
                        pthread_join(l->conns[i].th, NULL);
        }
        for (size_t i = 0; i < l->qlen; i++)
                lan_request_free(&l->queue[(l->qhead + i) % LAN_QUEUE_MAX]);
        for (size_t i = 0; i < l->npeers; i++)
                free(l->peers[i]);
        free(l->peers);
        OPENSSL_cleanse(l->key, sizeof(l->key));
        index_close(l->idx);
        fds[0] = l->lfd;
        fds[1] = l->stopfd;
        fds[2] = l->evfd;
        fds[3] = l->rootfd;
        for (size_t i = 0; i < 4; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        pthread_mutex_destroy(&l->mu);
        pthread_mutex_destroy(&l->idx_mu);
        free(l->device);
        free(l);
}

uint16_t lan_port(const struct lan *l)
{
        return l->port;
}

int lan_set_peers(struct lan *l, const char *const *ids, size_t n)
{
        char **list = calloc(n ? n : 1, sizeof(*list)), **old;
        size_t nold;

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                list[i] = strdup(ids[i]);
                if (!list[i]) {
                        while (i > 0)
                                free(list[--i]);
                        free(list);
                        return -ENOMEM;
                }
        }
        pthread_mutex_lock(&l->mu);
        old = l->peers;
        nold = l->npeers;
        l->peers = list;
        l->npeers = n;
        pthread_mutex_unlock(&l->mu);
        for (size_t i = 0; i < nold; i++)
                free(old[i]);
        free(old);
        return 0;
}

void lan_set_key(struct lan *l, const uint8_t key[LANPROTO_KEY_LEN], int64_t version)
{
        pthread_mutex_lock(&l->mu);
        memcpy(l->key, key, LANPROTO_KEY_LEN);
        l->key_version = version;
        l->have_key = 1;
        pthread_mutex_unlock(&l->mu);
}

int lan_event_fd(const struct lan *l)
{
        return l->evfd;
}

int lan_next_request(struct lan *l, struct lan_request *out)
{
        uint64_t v;
        int got = 0;

        pthread_mutex_lock(&l->mu);
        if (l->qlen > 0) {
                *out = l->queue[l->qhead];
                l->qhead = (l->qhead + 1) % LAN_QUEUE_MAX;
                l->qlen--;
                got = 1;
        }
        /* readable exactly while something is queued */
        if (l->qlen == 0 && read(l->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_warn("LAN listener: eventfd: %s", strerror(errno));
        pthread_mutex_unlock(&l->mu);
        return got;
}

void lan_stats(struct lan *l, struct lan_stats *out)
{
        pthread_mutex_lock(&l->mu);
        *out = l->stats;
        pthread_mutex_unlock(&l->mu);
}
