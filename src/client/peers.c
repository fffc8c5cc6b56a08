/* peers: the control list and the same-LAN decision (see peers.h).
 *
 * The subnet math works on the raw address bytes (4 or 16) from
 * inet_pton, so that IPv4 and IPv6 take the same path: compare the whole
 * bytes of the prefix, then the leading bits of the next one.
 */
#include "peers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"

/* An address's family and bytes; the prefix must fit the family. */
struct raw_addr {
        int family;
        size_t len; /* 4 or 16 */
        uint8_t b[16];
};

static int parse_addr(const char *s, int prefix, struct raw_addr *a)
{
        memset(a, 0, sizeof(*a));
        if (s && inet_pton(AF_INET, s, a->b) == 1) {
                a->family = AF_INET;
                a->len = 4;
        } else if (s && inet_pton(AF_INET6, s, a->b) == 1) {
                a->family = AF_INET6;
                a->len = 16;
        } else {
                return err_set(-EINVAL, "not an IP address: %.60s", s ? s : "(none)");
        }
        if (prefix < 0 || (size_t)prefix > a->len * 8)
                return err_set(-EINVAL, "prefix /%d is out of range for %s", prefix, s);
        return 0;
}

/* Clears the host part of a (the bits past prefix). */
static void mask(struct raw_addr *a, int prefix)
{
        size_t full = (size_t)prefix / 8;
        int rest = prefix % 8;

        if (full < a->len && rest)
                a->b[full++] &= (uint8_t)(0xff << (8 - rest));
        for (size_t i = full; i < a->len; i++)
                a->b[i] = 0;
}

int peers_same_lan(const char *a, int pa, const char *b, int pb)
{
        struct raw_addr x, y;
        int r;

        if ((r = parse_addr(a, pa, &x)) < 0 || (r = parse_addr(b, pb, &y)) < 0)
                return r;
        if (x.family != y.family || pa != pb)
                return 0;
        mask(&x, pa);
        mask(&y, pb);
        return memcmp(x.b, y.b, x.len) == 0;
}

int peers_subnet(const char *addr, int prefix, char *out, size_t len)
{
        struct raw_addr a;
        char text[PEERS_ADDR_MAX];
        int r, n;

        if ((r = parse_addr(addr, prefix, &a)) < 0)
                return r;
        mask(&a, prefix);
        if (!inet_ntop(a.family, a.b, text, sizeof(text)))
                return err_set(-EINVAL, "cannot format %s", addr);
        n = snprintf(out, len, "%s/%d", text, prefix);
        if (n < 0 || (size_t)n >= len)
                return -ENOSPC;
        return 0;
}

int peers_on_same_lan(const struct peer *a, const struct peer *b)
{
        if (!a || !b || !a->has_lan || !b->has_lan)
                return 0;
        return peers_same_lan(a->lan_addr, a->lan_prefix, b->lan_addr, b->lan_prefix) == 1;
}

/* The "lan" member of a device: {"addr", "port", "prefix"} or null. */
static void parse_lan(const json_t *lan, struct peer *p)
{
        const char *addr = json_string_value(json_object_get(lan, "addr"));
        json_int_t port = json_integer_value(json_object_get(lan, "port"));
        json_int_t prefix = json_integer_value(json_object_get(lan, "prefix"));
        struct raw_addr a;

        if (!json_is_object(lan) || !json_is_integer(json_object_get(lan, "prefix")))
                return;
        if (port < 1 || port > 65535 || prefix < 0 || prefix > 128)
                return;
        if (parse_addr(addr, (int)prefix, &a) < 0) {
                err_clear();
                return;
        }
        snprintf(p->lan_addr, sizeof(p->lan_addr), "%s", addr);
        p->lan_port = (int)port;
        p->lan_prefix = (int)prefix;
        p->has_lan = 1;
}

int peers_parse(const json_t *resp, struct peers *out)
{
        const json_t *list = json_object_get(resp, "devices"), *d;
        size_t i;
        int r = 0;

        memset(out, 0, sizeof(*out));
        if (!json_is_array(list))
                return err_set(-EPROTO, "the server's device list has no \"devices\" array");
        out->v = calloc(json_array_size(list) + 1, sizeof(*out->v));
        if (!out->v)
                return -ENOMEM;
        json_array_foreach(list, i, d)
        {
                const char *id = json_string_value(json_object_get(d, "id"));
                const char *name = json_string_value(json_object_get(d, "name"));
                struct peer *p = &out->v[out->n];

                if (!id)
                        continue;
                p->id = strdup(id);
                p->name = strdup(name ? name : id);
                out->n++;
                if (!p->id || !p->name) {
                        r = -ENOMEM;
                        goto out;
                }
                p->online = json_is_true(json_object_get(d, "online"));
                p->this = json_is_true(json_object_get(d, "this"));
                parse_lan(json_object_get(d, "lan"), p);
        }
out:
        if (r < 0)
                peers_free(out);
        return r;
}

int peers_fetch(struct remote *rem, struct peers *out)
{
        json_t *resp = NULL;
        int r;

        memset(out, 0, sizeof(*out));
        r = remote_get_json(rem, "/api/v1/devices", &resp);
        if (r == 0)
                r = peers_parse(resp, out);
        json_decref(resp);
        return r;
}

int peers_me(const struct peers *p, const char *my_id, const char *server_url, struct peer *me)
{
        const struct peer *self = peers_self(p);
        int r;

        memset(me, 0, sizeof(*me));
        me->id = (char *)my_id;
        me->name = (char *)my_id;
        me->this = 1;
        me->online = 1;
        if (self && self->has_lan) {
                snprintf(me->lan_addr, sizeof(me->lan_addr), "%s", self->lan_addr);
                me->lan_prefix = self->lan_prefix;
                me->lan_port = self->lan_port;
                me->has_lan = 1;
                return 0;
        }
        r = peers_local_addr(server_url, me->lan_addr, sizeof(me->lan_addr), &me->lan_prefix);
        me->has_lan = r == 0;
        return r;
}

int peers_fetch_key(struct remote *rem, uint8_t key[LANPROTO_KEY_LEN], int64_t *version)
{
        const char *hex;
        json_t *resp = NULL;
        int r;

        r = remote_get_json(rem, "/api/v1/lan-key", &resp);
        hex = json_string_value(json_object_get(resp, "key"));
        if (r == 0 && (!hex || lanproto_key_from_hex(hex, key) < 0))
                r = err_set(-EPROTO, "the server's LAN key is not 64 hex digits");
        if (r == 0)
                *version = json_integer_value(json_object_get(resp, "version"));
        json_decref(resp);
        return r;
}

void peers_free(struct peers *p)
{
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].id);
                free(p->v[i].name);
        }
        free(p->v);
        p->v = NULL;
        p->n = 0;
}

const struct peer *peers_find(const struct peers *p, const char *id_or_name)
{
        for (size_t i = 0; i < p->n; i++)
                if (!strcmp(p->v[i].id, id_or_name))
                        return &p->v[i];
        for (size_t i = 0; i < p->n; i++)
                if (!strcmp(p->v[i].name, id_or_name))
                        return &p->v[i];
        return NULL;
}

const struct peer *peers_self(const struct peers *p)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->v[i].this)
                        return &p->v[i];
        return NULL;
}

const struct peer *peers_lan_peer(const struct peers *p, const struct peer *self)
{
        for (size_t i = 0; self && i < p->n; i++) {
                const struct peer *q = &p->v[i];

                if (q != self && strcmp(q->id, self->id) != 0 && q->online &&
                    peers_on_same_lan(self, q))
                        return q;
        }
        return NULL;
}

int peers_iface_prefix(const char *addr, int *prefix)
{
        struct ifaddrs *ifs = NULL, *i;
        struct raw_addr want;
        int r = -ENOENT;

        if ((r = parse_addr(addr, 0, &want)) < 0)
                return r;
        if (getifaddrs(&ifs) < 0)
                return err_set(-errno, "getifaddrs: %s", strerror(errno));
        r = -ENOENT;
        for (i = ifs; i && r == -ENOENT; i = i->ifa_next) {
                const uint8_t *a, *m;
                int bits = 0;

                if (!i->ifa_addr || !i->ifa_netmask || i->ifa_addr->sa_family != want.family)
                        continue;
                if (want.family == AF_INET) {
                        a = (const uint8_t *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr;
                        m = (const uint8_t *)&((struct sockaddr_in *)i->ifa_netmask)->sin_addr;
                } else {
                        a = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr.s6_addr;
                        m = ((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr.s6_addr;
                }
                if (memcmp(a, want.b, want.len) != 0)
                        continue;
                for (size_t k = 0; k < want.len; k++)
                        bits += __builtin_popcount(m[k]);
                *prefix = bits;
                r = 0;
        }
        freeifaddrs(ifs);
        if (r == -ENOENT)
                err_set(r, "no interface holds the address %s", addr);
        return r;
}

/* The host and port of an http(s) URL, into host (brackets of an IPv6
 * literal removed) and port ("80"/"443" when the URL has none). */
static int url_host(const char *url, char *host, size_t hlen, char *port, size_t plen)
{
        const char *p = strstr(url, "://"), *end, *colon = NULL;
        int tls = !strncmp(url, "https", 5);
        size_t n;

        p = p ? p + 3 : url;
        if (*p == '[') {
                end = strchr(++p, ']');
                if (!end)
                        return err_set(-EINVAL, "bad server URL %s", url);
                colon = end[1] == ':' ? end + 1 : NULL;
        } else {
                end = p + strcspn(p, ":/");
                colon = *end == ':' ? end : NULL;
        }
        n = (size_t)(end - p);
        if (n == 0 || n >= hlen)
                return err_set(-EINVAL, "bad server URL %s", url);
        memcpy(host, p, n);
        host[n] = '\0';
        if (colon) {
                n = strcspn(colon + 1, "/");
                if (n == 0 || n >= plen)
                        return err_set(-EINVAL, "bad server URL %s", url);
                memcpy(port, colon + 1, n);
                port[n] = '\0';
        } else {
                snprintf(port, plen, "%s", tls ? "443" : "80");
        }
        return 0;
}

int peers_local_addr(const char *server_url, char *addr, size_t len, int *prefix)
{
        struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai = NULL;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[256], port[16];
        const void *raw;
        int fd = -1, r;

        r = url_host(server_url, host, sizeof(host), port, sizeof(port));
        if (r < 0)
                return r;
        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0) {
                r = err_set(-ENOENT, "cannot resolve %s: %s", host, gai_strerror(r));
                goto out;
        }
        fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
                r = err_set(-errno, "no route to %s: %s", host, strerror(errno));
                goto out;
        }
        raw = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                      : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (!inet_ntop(ss.ss_family, raw, addr, (socklen_t)len)) {
                r = err_set(-EINVAL, "cannot format the local address");
                goto out;
        }
        r = peers_iface_prefix(addr, prefix);
        if (r == -ENOENT) {
                err_clear();
                *prefix = ss.ss_family == AF_INET ? 24 : 64;
                r = 0;
        }
out:
        if (fd >= 0)
                close(fd);
        if (ai)
                freeaddrinfo(ai);
        return r;
}
