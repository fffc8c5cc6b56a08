/* events_pg: the event hub of ferryd instances that share one PostgreSQL
 * store (see events.h), so that a commit on one instance reaches the event
 * streams another instance holds.
 *
 * It wraps the in-process hub (events_local_new), which keeps this
 * instance's subscribers, their newest numbers and the coalescing. What
 * changes is where announcements go: publish, publish_version and revoke
 * hand the announcement to the local hub at once and queue it for a
 * NOTIFY on the channel "ferry_events"; every instance LISTENs there and
 * hands what the others announce to its own local hub (an instance skips
 * its own announcements by a random origin id in the payload). A payload
 * is an origin line, then one line per announcement:
 *     S USER SEQ DEVICE        a space moved to SEQ ("-" for no device)
 *     V USER COUNTER VERSION   a version (enum events_counter) moved
 *     R USER DEVICE            device was removed: revoke its streams
 * Announcements queued together go out as one NOTIFY (up to ~7 KB).
 *
 * One thread owns the listening connection: it sends the queued
 * NOTIFYs, LISTENs, and hands over the notifications. When the connection
 * drops it reconnects with backoff (0.1 s doubling to 5 s) and then reads
 * the current seq and versions of every user with subscribers here
 * straight from the store's tables (spaces, xfer_versions,
 * registry_versions; LISTEN first, then the read, so that nothing
 * committed meanwhile is missed) and hands them to the local hub: a stream
 * whose device missed a change while the connection was down announces it
 * then. Queued NOTIFYs survive a reconnect (they coalesce: sending one
 * twice is harmless).
 *
 * Streams across instances: "does the device hold an event stream" must
 * be answered for the whole cluster (transfers.c fails the uploads of a
 * device without one whose last connection closed). The listening
 * connection holds a shared advisory lock per device with a stream here
 * (two int4 keys from a hash of the device id, class bit 30 set); such
 * locks go away by themselves when an instance dies. device_streams
 * counts the local streams, and when there are none asks pg_locks on a
 * second connection whether another session holds the device's lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "log.h"

#define CHANNEL "ferry_events"
#define PAYLOAD_MAX 7000        /* NOTIFY allows 8000 bytes */
#define OUTGOING_MAX (4u << 20) /* queued bytes kept while disconnected */
#define ORIGIN_HEX 16
#define N_BUCKETS 1024
#define RESYNC_BATCH 1000
#define LOCK_BATCH 500
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define QUERY_RETRY_S 1 /* the query connection is retried at most this often */

/* A device with streams here, and whether the listening connection holds
 * its lock. */
struct dev_rec {
        int64_t user;
        char device[META_DEVICE_ID_LEN + 1];
        unsigned count;
        int held;
        int32_t k1, k2;
        struct dev_rec *next;
};

/* What subscribe hands out: the local subscription and its device. */
struct pg_sub {
        struct events_sub *local;
        int64_t user;
        char device[META_DEVICE_ID_LEN + 1];
};

struct pgh {
        struct events ev;
        struct events *local;
        char *conninfo;
        char origin[ORIGIN_HEX + 1];
        pthread_t thread;
        int wakefd; /* eventfd: the thread has work */
        /* Under lock: */
        pthread_mutex_t lock;
        struct buf queue; /* announcement lines not yet taken by the thread */
        struct dev_rec *devs[N_BUCKETS];
        int locks_dirty; /* some dev_rec's held differs from count > 0 */
        int stopping;
        int listener_pid; /* backend pid of the listening connection, 0: none */
        /* The query connection (device_streams), under qlock. */
        pthread_mutex_t qlock;
        PGconn *qconn;
        time_t qfailed;
        /* Thread-only: */
        PGconn *conn;
        struct buf outgoing; /* taken from queue, not yet sent */
};

/* PostgreSQL's notices (a terminated connection says FATAL on stderr) are
 * not ours to print: the errors they come with are logged. */
static void quiet(void *arg, const char *msg)
{
        (void)arg;
        (void)msg;
}

/* libpq's last error on c, on one line. */
static const char *pq_msg(PGconn *c, char *out, size_t cap)
{
        char *p;

        snprintf(out, cap, "%s", c ? PQerrorMessage(c) : "out of memory");
        for (p = out; *p; p++)
                if (*p == '\n' || *p == '\t')
                        *p = ' ';
        while (p > out && p[-1] == ' ')
                *--p = '\0';
        return out;
}

static PGconn *pg_connect(const char *conninfo, const char *app)
{
        const char *const keys[] = {
            "dbname",          "application_name",    "connect_timeout",  "keepalives",
            "keepalives_idle", "keepalives_interval", "keepalives_count", NULL};
        const char *const vals[] = {conninfo, app, "5", "1", "10", "5", "3", NULL};
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        char msg[512];

        if (c && PQstatus(c) == CONNECTION_OK) {
                PQsetNoticeProcessor(c, quiet, NULL);
                return c;
        }
        err_set(-EIO, "events: cannot connect to PostgreSQL: %s", pq_msg(c, msg, sizeof(msg)));
        PQfinish(c);
        return NULL;
}

/* Runs sql (no parameters, or the one text parameter p1). 0 or -EIO. */
static int run(PGconn *c, const char *what, const char *sql, const char *p1, PGresult **out)
{
        PGresult *res = PQexecParams(c, sql, p1 ? 1 : 0, NULL, p1 ? &p1 : NULL, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        char msg[512];

        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                err_set(-EIO, "events: %s: %s", what, pq_msg(c, msg, sizeof(msg)));
                PQclear(res);
                return -EIO;
        }
        if (out)
                *out = res;
        else
                PQclear(res);
        return 0;
}

static void wake_thread(struct pgh *h)
{
        uint64_t one = 1;

        if (write(h->wakefd, &one, sizeof(one)) < 0) {
                /* The counter is non-zero already: the thread will look. */
        }
}

static uint64_t fnv1a(const char *s)
{
        uint64_t x = 1469598103934665603ULL;

        for (; *s; s++)
                x = (x ^ (uint8_t)*s) * 1099511628211ULL;
        return x;
}

static struct dev_rec **dev_bucket(struct pgh *h, const char *device)
{
        return &h->devs[fnv1a(device) % N_BUCKETS];
}

/* Under lock: the record of (user, device), created when create. */
static struct dev_rec *dev_find(struct pgh *h, int64_t user, const char *device, int create)
{
        struct dev_rec *d;
        uint64_t x;

        for (d = *dev_bucket(h, device); d; d = d->next)
                if (d->user == user && strcmp(d->device, device) == 0)
                        return d;
        if (!create || !(d = calloc(1, sizeof(*d))))
                return NULL;
        d->user = user;
        snprintf(d->device, sizeof(d->device), "%s", device);
        x = fnv1a(device);
        d->k1 = (int32_t)((x >> 32) & 0x7fffffff) | 0x40000000;
        d->k2 = (int32_t)(x & 0x7fffffff);
        d->next = *dev_bucket(h, device);
        *dev_bucket(h, device) = d;
        return d;
}

/* Queues one announcement line for the other instances. */
static void enqueue(struct pgh *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void enqueue(struct pgh *h, const char *fmt, ...)
{
        char line[128];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (n <= 0 || (size_t)n >= sizeof(line))
                return;
        pthread_mutex_lock(&h->lock);
        if (buf_append(&h->queue, line, (size_t)n) < 0)
                log_warn("events: out of memory: an announcement is not sent");
        pthread_mutex_unlock(&h->lock);
        wake_thread(h);
}

/* A device id as it travels in a line: no spaces, "-" when empty. */
static const char *dev_word(const char *device)
{
        return device && *device && !strpbrk(device, " \n") ? device : "-";
}

/* --- the listening thread ------------------------------------------------ */

/* Hands one received line to the local hub. */
static void apply_line(struct pgh *h, const char *line)
{
        char dev[META_DEVICE_ID_LEN + 2];
        long long user, a, b;

        if (sscanf(line, "S %lld %lld %33s", &user, &a, dev) == 3)
                h->local->ops->publish(h->local, user, a, strcmp(dev, "-") ? dev : "");
        else if (sscanf(line, "V %lld %lld %lld", &user, &a, &b) == 3)
                h->local->ops->publish_version(h->local, user, (int)a, b);
        else if (sscanf(line, "R %lld %33s", &user, dev) == 2)
                h->local->ops->revoke(h->local, user, dev);
}

static void apply_payload(struct pgh *h, const char *payload)
{
        const char *p = strchr(payload, '\n'), *e;
        char line[128];

        /* The first line is the origin: our own announcements are applied
         * locally already. */
        if (!p || (size_t)(p - payload) != ORIGIN_HEX ||
            memcmp(payload, h->origin, ORIGIN_HEX) == 0)
                return;
        for (p++; *p; p = *e ? e + 1 : e) {
                e = strchr(p, '\n');
                if (!e)
                        e = p + strlen(p);
                if ((size_t)(e - p) < sizeof(line)) {
                        memcpy(line, p, (size_t)(e - p));
                        line[e - p] = '\0';
                        apply_line(h, line);
                }
        }
}

/* Reads what the socket has and applies every notification. 0 or -EIO. */
static int drain(struct pgh *h)
{
        char msg[512];
        PGnotify *n;

        if (!PQconsumeInput(h->conn))
                return err_set(-EIO, "events: connection lost: %s",
                               pq_msg(h->conn, msg, sizeof(msg)));
        while ((n = PQnotifies(h->conn))) {
                apply_payload(h, n->extra);
                PQfreemem(n);
        }
        return 0;
}

/* Sends what is queued, up to PAYLOAD_MAX bytes per NOTIFY. 0 or -EIO (the
 * unsent part stays in outgoing). */
static int send_outgoing(struct pgh *h)
{
        struct buf *o = &h->outgoing;
        char payload[PAYLOAD_MAX + ORIGIN_HEX + 2];
        size_t take, off;
        int r;

        pthread_mutex_lock(&h->lock);
        if (h->queue.len && buf_append(o, h->queue.data, h->queue.len) == 0)
                buf_reset(&h->queue);
        pthread_mutex_unlock(&h->lock);
        while (o->len) {
                /* Whole lines only. */
                take = o->len;
                if (take > PAYLOAD_MAX) {
                        for (take = PAYLOAD_MAX; take > 0 && o->data[take - 1] != '\n'; take--)
                                ;
                        if (take == 0)
                                take = PAYLOAD_MAX;
                }
                off = (size_t)snprintf(payload, sizeof(payload), "%s\n", h->origin);
                memcpy(payload + off, o->data, take);
                payload[off + take] = '\0';
                r = run(h->conn, "NOTIFY", "SELECT pg_notify('" CHANNEL "', $1)", payload, NULL);
                if (r < 0 && PQstatus(h->conn) == CONNECTION_OK) {
                        log_warn("%s: dropped", err_msg(r)); /* the payload, not the link */
                        r = 0;
                }
                if (r < 0)
                        return r;
                buf_consume(o, take);
        }
        return 0;
}

/* Takes or releases the advisory locks whose state differs from the
 * devices' stream counts, and forgets devices with neither. 0 or -EIO. */
static int sync_locks(struct pgh *h)
{
        struct buf sql = BUF_INIT;
        struct dev_rec *d, **pp;
        size_t i, n = 0;
        int r = 0;

        pthread_mutex_lock(&h->lock);
        if (!h->locks_dirty) {
                pthread_mutex_unlock(&h->lock);
                return 0;
        }
        h->locks_dirty = 0;
        for (i = 0; i < N_BUCKETS; i++) {
                for (pp = &h->devs[i]; (d = *pp);) {
                        int want = d->count > 0;
                        if (want != d->held) {
                                buf_printf(&sql, "%spg_advisory_%slock_shared(%d, %d)",
                                           n++ ? ", " : "SELECT ", want ? "" : "un", d->k1, d->k2);
                                d->held = want;
                        }
                        if (!d->count && !d->held) {
                                *pp = d->next;
                                free(d);
                        } else {
                                pp = &d->next;
                        }
                        if (n == LOCK_BATCH)
                                break;
                }
                if (n == LOCK_BATCH) {
                        h->locks_dirty = 1; /* the rest next round */
                        break;
                }
        }
        pthread_mutex_unlock(&h->lock);
        if (n && sql.data)
                r = run(h->conn, "stream locks", (const char *)sql.data, NULL, NULL);
        buf_free(&sql);
        if (h->locks_dirty)
                wake_thread(h);
        return r;
}

/* After a (re)connect: the current numbers of every user with subscribers
 * here, from the store, into the local hub. 0 or -EIO. */
static int resync(struct pgh *h)
{
        struct buf ids = BUF_INIT;
        PGresult *res = NULL;
        struct dev_rec *d;
        int64_t last = -1;
        size_t i, n = 0;
        int r = 0, row;

        pthread_mutex_lock(&h->lock);
        for (i = 0; i < N_BUCKETS; i++)
                for (d = h->devs[i]; d; d = d->next)
                        if (d->count && d->user != last) {
                                buf_printf(&ids, "%s%lld", n++ ? "," : "", (long long)d->user);
                                last = d->user;
                        }
        pthread_mutex_unlock(&h->lock);
        if (!n)
                goto out;
        /* Users repeat (one record per device); the query does not mind. */
        {
                char *arr = malloc(ids.len + 3);
                if (!arr) {
                        r = -ENOMEM;
                        goto out;
                }
                snprintf(arr, ids.len + 3, "{%s}", (const char *)ids.data);
                r = run(h->conn, "resync",
                        "SELECT u.id,"
                        " COALESCE((SELECT seq FROM spaces WHERE user_id = u.id), 0),"
                        " COALESCE((SELECT version FROM xfer_versions WHERE user_id = u.id), 0),"
                        " COALESCE((SELECT version FROM registry_versions"
                        "   WHERE user_id = u.id AND counter = 0), 0),"
                        " COALESCE((SELECT version FROM registry_versions"
                        "   WHERE user_id = u.id AND counter = 1), 0)"
                        " FROM (SELECT DISTINCT unnest($1::bigint[]) AS id) u",
                        arr, &res);
                free(arr);
        }
        if (r < 0)
                goto out;
        for (row = 0; row < PQntuples(res); row++) {
                int64_t user = strtoll(PQgetvalue(res, row, 0), NULL, 10);
                h->local->ops->publish(h->local, user, strtoll(PQgetvalue(res, row, 1), NULL, 10),
                                       "");
                h->local->ops->publish_version(h->local, user, EVENTS_TRANSFERS,
                                               strtoll(PQgetvalue(res, row, 2), NULL, 10));
                h->local->ops->publish_version(h->local, user, EVENTS_DEVICES,
                                               strtoll(PQgetvalue(res, row, 3), NULL, 10));
                h->local->ops->publish_version(h->local, user, EVENTS_REQUESTS,
                                               strtoll(PQgetvalue(res, row, 4), NULL, 10));
        }
        log_debug("events: resynced %d users", PQntuples(res));
out:
        PQclear(res);
        buf_free(&ids);
        return r;
}

/* Connects, LISTENs, takes the stream locks again and resyncs. 0 or -EIO. */
static int establish(struct pgh *h)
{
        struct dev_rec *d;
        size_t i;
        int r;

        h->conn = pg_connect(h->conninfo, "ferryd-events");
        if (!h->conn)
                return -EIO;
        r = run(h->conn, "LISTEN", "LISTEN " CHANNEL, NULL, NULL);
        if (r < 0)
                return r;
        pthread_mutex_lock(&h->lock);
        h->listener_pid = PQbackendPID(h->conn);
        for (i = 0; i < N_BUCKETS; i++)
                for (d = h->devs[i]; d; d = d->next)
                        d->held = 0; /* the old session's locks went with it */
        h->locks_dirty = 1;
        pthread_mutex_unlock(&h->lock);
        r = sync_locks(h);
        if (r == 0)
                r = resync(h);
        return r;
}

static void drop_conn(struct pgh *h)
{
        PQfinish(h->conn);
        h->conn = NULL;
        pthread_mutex_lock(&h->lock);
        h->listener_pid = 0;
        pthread_mutex_unlock(&h->lock);
}

static int stopping(struct pgh *h)
{
        int s;

        pthread_mutex_lock(&h->lock);
        s = h->stopping;
        pthread_mutex_unlock(&h->lock);
        return s;
}

static void *listener(void *arg)
{
        struct pgh *h = arg;
        unsigned backoff = BACKOFF_MIN_MS;
        struct pollfd p[2];
        uint64_t cnt;
        int r, lost = 0;

        while (!stopping(h)) {
                if (!h->conn) {
                        r = establish(h);
                        if (r < 0) {
                                if (!lost++)
                                        log_warn("%s; retrying", err_msg(r));
                                drop_conn(h);
                                p[0].fd = h->wakefd;
                                p[0].events = POLLIN;
                                poll(p, 1, (int)backoff); /* close() wakes us */
                                backoff =
                                    backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                                continue;
                        }
                        if (lost)
                                log_info("events: reconnected to PostgreSQL");
                        lost = 0;
                        backoff = BACKOFF_MIN_MS;
                }
                /* Trim what piled up while disconnected: the oldest first. */
                if (h->outgoing.len > OUTGOING_MAX)
                        buf_consume(&h->outgoing, h->outgoing.len - OUTGOING_MAX);
                r = sync_locks(h);
                if (r == 0)
                        r = send_outgoing(h);
                if (r == 0)
                        r = drain(h);
                if (r == 0) {
                        p[0].fd = PQsocket(h->conn);
                        p[0].events = POLLIN;
                        p[1].fd = h->wakefd;
                        p[1].events = POLLIN;
                        if (poll(p, 2, 1000) > 0) {
                                if (p[1].revents & POLLIN && read(h->wakefd, &cnt, sizeof(cnt)) < 0)
                                        cnt = 0;
                                if (p[0].revents)
                                        r = drain(h);
                        }
                }
                if (r < 0) {
                        log_warn("%s; reconnecting", err_msg(r));
                        lost = 1;
                        drop_conn(h);
                }
        }
        return NULL;
}

/* --- the ops --------------------------------------------------------------- */

static int pg_subscribe(struct events *ev, int64_t user, const char *device, events_wake_fn wake,
                        void *cls, struct events_sub **out)
{
        struct pgh *h = (struct pgh *)ev;
        struct pg_sub *s = calloc(1, sizeof(*s));
        struct dev_rec *d;
        int r;

        if (!s)
                return err_set(-ENOMEM, "out of memory");
        s->user = user;
        snprintf(s->device, sizeof(s->device), "%s", device ? device : "");
        r = h->local->ops->subscribe(h->local, user, device, wake, cls, &s->local);
        if (r < 0) {
                free(s);
                return r;
        }
        pthread_mutex_lock(&h->lock);
        d = dev_find(h, user, s->device, 1);
        if (d && d->count++ == 0)
                h->locks_dirty = 1;
        pthread_mutex_unlock(&h->lock);
        if (!d)
                log_warn("events: out of memory: device %s's stream is not locked", s->device);
        wake_thread(h);
        *out = (struct events_sub *)s;
        return 0;
}

static void pg_unsubscribe(struct events *ev, struct events_sub *sub)
{
        struct pgh *h = (struct pgh *)ev;
        struct pg_sub *s = (struct pg_sub *)sub;
        struct dev_rec *d;

        h->local->ops->unsubscribe(h->local, s->local);
        pthread_mutex_lock(&h->lock);
        d = dev_find(h, s->user, s->device, 0);
        if (d && d->count && --d->count == 0)
                h->locks_dirty = 1;
        pthread_mutex_unlock(&h->lock);
        wake_thread(h);
        free(s);
}

static void pg_publish(struct events *ev, int64_t user, int64_t seq, const char *device)
{
        struct pgh *h = (struct pgh *)ev;

        h->local->ops->publish(h->local, user, seq, device);
        enqueue(h, "S %lld %lld %s\n", (long long)user, (long long)seq, dev_word(device));
}

static int64_t pg_latest(struct events *ev, const struct events_sub *sub,
                         char device[META_DEVICE_ID_LEN + 1])
{
        struct pgh *h = (struct pgh *)ev;

        return h->local->ops->latest(h->local, ((const struct pg_sub *)sub)->local, device);
}

/* Whether a session other than our listener holds device's stream lock,
 * asked on the query connection. 0 when that cannot be told. */
static int held_elsewhere(struct pgh *h, int64_t user, const char *device)
{
        char k1[16], k2[16], pid[16], msg[512];
        const char *vals[3] = {k1, k2, pid};
        PGresult *res;
        uint64_t x = fnv1a(device);
        int held = 0;

        (void)user;
        snprintf(k1, sizeof(k1), "%u", (unsigned)(((x >> 32) & 0x7fffffff) | 0x40000000));
        snprintf(k2, sizeof(k2), "%u", (unsigned)(x & 0x7fffffff));
        pthread_mutex_lock(&h->lock);
        snprintf(pid, sizeof(pid), "%d", h->listener_pid);
        pthread_mutex_unlock(&h->lock);
        pthread_mutex_lock(&h->qlock);
        if (h->qconn && PQstatus(h->qconn) != CONNECTION_OK) {
                PQfinish(h->qconn);
                h->qconn = NULL;
        }
        if (!h->qconn && time(NULL) - h->qfailed >= QUERY_RETRY_S) {
                h->qconn = pg_connect(h->conninfo, "ferryd-events-query");
                if (!h->qconn) {
                        h->qfailed = time(NULL);
                        log_warn("%s", err_msg(-EIO));
                }
        }
        if (h->qconn) {
                res = PQexecParams(h->qconn,
                                   "SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                                   " AND classid = $1::oid AND objid = $2::oid AND objsubid = 2"
                                   " AND granted AND pid <> $3::int LIMIT 1",
                                   3, NULL, vals, NULL, NULL, 0);
                if (PQresultStatus(res) == PGRES_TUPLES_OK)
                        held = PQntuples(res) > 0;
                else
                        log_warn("events: stream lookup: %s", pq_msg(h->qconn, msg, sizeof(msg)));
                PQclear(res);
        }
        pthread_mutex_unlock(&h->qlock);
        return held;
}

static unsigned pg_device_streams(struct events *ev, int64_t user, const char *device)
{
        struct pgh *h = (struct pgh *)ev;
        unsigned n = h->local->ops->device_streams(h->local, user, device);

        if (n)
                return n;
        return held_elsewhere(h, user, device) ? 1 : 0;
}

static void pg_publish_version(struct events *ev, int64_t user, int counter, int64_t version)
{
        struct pgh *h = (struct pgh *)ev;

        h->local->ops->publish_version(h->local, user, counter, version);
        enqueue(h, "V %lld %d %lld\n", (long long)user, counter, (long long)version);
}

static int64_t pg_latest_version(struct events *ev, const struct events_sub *sub, int counter)
{
        struct pgh *h = (struct pgh *)ev;

        return h->local->ops->latest_version(h->local, ((const struct pg_sub *)sub)->local,
                                             counter);
}

static void pg_revoke(struct events *ev, int64_t user, const char *device)
{
        struct pgh *h = (struct pgh *)ev;

        h->local->ops->revoke(h->local, user, device);
        if (strcmp(dev_word(device), "-") != 0)
                enqueue(h, "R %lld %s\n", (long long)user, device);
}

static int pg_revoked(struct events *ev, const struct events_sub *sub)
{
        struct pgh *h = (struct pgh *)ev;

        return h->local->ops->revoked(h->local, ((const struct pg_sub *)sub)->local);
}

static void pg_close(struct events *ev)
{
        struct pgh *h = (struct pgh *)ev;
        struct dev_rec *d, *next;
        size_t i;

        pthread_mutex_lock(&h->lock);
        h->stopping = 1;
        pthread_mutex_unlock(&h->lock);
        wake_thread(h);
        pthread_join(h->thread, NULL);
        /* Announcements of the last moments still go out. */
        if (h->conn && send_outgoing(h) < 0)
                log_warn("%s", err_msg(-EIO));
        PQfinish(h->conn);
        PQfinish(h->qconn);
        for (i = 0; i < N_BUCKETS; i++) {
                for (d = h->devs[i]; d; d = next) {
                        next = d->next;
                        free(d);
                }
        }
        events_close(h->local);
        buf_free(&h->queue);
        buf_free(&h->outgoing);
        close(h->wakefd);
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->qlock);
        free(h->conninfo);
        free(h);
}

static const struct events_ops pg_ops = {
    .subscribe = pg_subscribe,
    .unsubscribe = pg_unsubscribe,
    .publish = pg_publish,
    .latest = pg_latest,
    .device_streams = pg_device_streams,
    .publish_version = pg_publish_version,
    .latest_version = pg_latest_version,
    .revoke = pg_revoke,
    .revoked = pg_revoked,
    .close = pg_close,
};

int events_pg_new(const char *conninfo, struct events **out)
{
        struct pgh *h = calloc(1, sizeof(*h));
        int r;

        if (!h)
                return err_set(-ENOMEM, "out of memory");
        h->ev.ops = &pg_ops;
        h->wakefd = -1;
        pthread_mutex_init(&h->lock, NULL);
        pthread_mutex_init(&h->qlock, NULL);
        h->conninfo = strdup(conninfo);
        if (!h->conninfo) {
                r = err_set(-ENOMEM, "out of memory");
                goto fail;
        }
        r = fsutil_random_hex(h->origin, ORIGIN_HEX / 2);
        if (r < 0)
                goto fail;
        r = events_local_new(&h->local);
        if (r < 0)
                goto fail;
        h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (h->wakefd < 0) {
                r = err_set(-errno, "events: eventfd: %s", strerror(errno));
                goto fail;
        }
        /* The first connection here, so that a wrong conninfo is an error
         * at start rather than a warning in a loop. */
        r = establish(h);
        if (r < 0)
                goto fail;
        r = pthread_create(&h->thread, NULL, listener, h);
        if (r != 0) {
                r = err_set(-r, "events: cannot start the listener: %s", strerror(r));
                goto fail;
        }
        *out = &h->ev;
        return 0;
fail:
        PQfinish(h->conn);
        events_close(h->local);
        if (h->wakefd >= 0)
                close(h->wakefd);
        buf_free(&h->queue);
        buf_free(&h->outgoing);
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->qlock);
        free(h->conninfo);
        free(h);
        return r;
}
