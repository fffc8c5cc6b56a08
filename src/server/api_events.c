/* api_events: GET /api/v1/events, the event stream of a device (docs/api.md,
 * "Events"). A Server-Sent Events stream: a "hello" with the space's seq at
 * once, then a "seq" event each time a commit moves the space (commits in
 * quick succession coalesce into the newest number), a "transfers" event
 * each time the account's transfer records change (coalesced the same way,
 * by the transfers version), "devices" and "requests" events when the
 * account's control list or upload requests change (their versions, the
 * same way), and a keep-alive comment when idle (sent by the HTTP layer).
 * The stream of a device that gets removed ends. A device's first stream
 * opening and its last one closing change whether it is online, so they
 * bump the devices version.
 *
 * The stream subscribes to the event hub (events.h) with the HTTP layer's
 * wake-up as its callback, and only then reads the space's seq and the
 * versions: a change landing in between is then announced rather
 * than lost. Its reader runs on
 * the connection's worker thread; when it has nothing to send it returns 0
 * and the HTTP layer parks the connection until the next wake-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "err.h"
#include "events.h"
#include "journal.h"
#include "server.h"

#define EVENT_MAX 256 /* one event: a few short fields */
#define KEEPALIVE ": keepalive\n\n"

struct stream {
        struct server *s;
        struct events_sub *sub;
        int64_t user;
        char device[META_DEVICE_ID_LEN + 1];
        int64_t sent;                     /* the newest seq this stream announced */
        int64_t sent_v[EVENTS_NCOUNTERS]; /* and versions */
        /* Bytes formatted but not yet handed out. */
        char out[4 * EVENT_MAX];
        size_t len, pos;
};

/* A non-negative decimal integer (no sign, no spaces); -1 otherwise. */
static int64_t parse_seq(const char *v)
{
        int64_t n = 0;

        if (!v || !*v || strlen(v) > 18)
                return -1;
        for (; *v; v++) {
                if (*v < '0' || *v > '9')
                        return -1;
                n = n * 10 + (*v - '0');
        }
        return n;
}

static void append_event(struct stream *st, const char *name, int64_t seq, const char *device)
{
        size_t cap = sizeof(st->out) - st->len;
        int n;

        if (!device) /* a version: transfers, devices, requests */
                n = snprintf(st->out + st->len, cap, "event: %s\ndata: {\"version\":%lld}\n\n",
                             name, (long long)seq);
        else if (strcmp(name, "hello") == 0)
                n = snprintf(st->out + st->len, cap,
                             "event: hello\ndata: {\"seq\":%lld,\"device\":\"%s\"}\n\n",
                             (long long)seq, device);
        else
                n = snprintf(st->out + st->len, cap,
                             "event: seq\nid: %lld\ndata: {\"seq\":%lld,\"device\":\"%s\"}\n\n",
                             (long long)seq, (long long)seq, device);
        if (n > 0 && (size_t)n < cap)
                st->len += (size_t)n;
}

static const char *const counter_event[EVENTS_NCOUNTERS] = {
    [EVENTS_TRANSFERS] = "transfers",
    [EVENTS_DEVICES] = "devices",
    [EVENTS_REQUESTS] = "requests",
};

static ssize_t stream_read(void *cls, uint64_t at, char *buf, size_t max)
{
        struct stream *st = cls;
        char device[META_DEVICE_ID_LEN + 1];
        int64_t seq, v[EVENTS_NCOUNTERS];
        int i, news;
        size_t n;

        (void)at;
        if (st->pos == st->len) {
                st->pos = st->len = 0;
                if (events_revoked(st->s->events, st->sub))
                        return HTTP_STREAM_END; /* the device was removed */
                seq = events_latest(st->s->events, st->sub, device);
                news = seq > st->sent;
                for (i = 0; i < EVENTS_NCOUNTERS; i++) {
                        v[i] = events_latest_version(st->s->events, st->sub, i);
                        news |= v[i] > st->sent_v[i];
                }
                if (!news)
                        return 0; /* nothing new: the HTTP layer parks us */
                if (seq > st->sent) {
                        st->sent = seq;
                        append_event(st, "seq", seq, device);
                }
                for (i = 0; i < EVENTS_NCOUNTERS; i++) {
                        if (v[i] > st->sent_v[i]) {
                                st->sent_v[i] = v[i];
                                append_event(st, counter_event[i], v[i], NULL);
                        }
                }
        }
        n = st->len - st->pos;
        if (n > max)
                n = max;
        memcpy(buf, st->out + st->pos, n);
        st->pos += n;
        return (ssize_t)n;
}

static void stream_free(void *cls)
{
        struct stream *st = cls;
        int revoked = events_revoked(st->s->events, st->sub), stopping;

        events_unsubscribe(st->s->events, st->sub);
        pthread_mutex_lock(&st->s->stop_lock);
        stopping = st->s->stopping;
        pthread_mutex_unlock(&st->s->stop_lock);
        /* Its device's last stream: it went offline (a removed device's
         * removal has told the others already; when the server stops,
         * every stream ends and nobody is left to tell). */
        if (!revoked && !stopping &&
            events_device_streams(st->s->events, st->user, st->device) == 0)
                api_registry_changed(st->s, st->user, META_COUNTER_DEVICES);
        free(st);
}

struct first_ctx {
        int64_t seq;
        char device[META_DEVICE_ID_LEN + 1];
};

static int first_cb(const struct meta_entry *e, void *userdata)
{
        struct first_ctx *fc = userdata;

        fc->seq = e->seq;
        snprintf(fc->device, sizeof(fc->device), "%s", e->device);
        return 1;
}

/* The device that made change seq of user's space ("" when unknown). */
static void device_of(struct server *s, int64_t user, int64_t seq, char *out, size_t cap)
{
        struct first_ctx fc = {0, ""};
        int more = 0;

        snprintf(out, cap, "%s", "");
        if (seq <= 0 || journal_changes_since(s->meta, user, seq - 1, 1, first_cb, &fc, &more) < 0)
                return;
        if (fc.seq == seq)
                snprintf(out, cap, "%s", fc.device);
}

void api_events(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *sv = http_query(req, "since");
        const char *lv_id = http_header(req, "Last-Event-ID");
        char device[META_DEVICE_ID_LEN + 1];
        struct http_live *lv = NULL;
        struct stream *st = NULL;
        int64_t since = -1, v, seq;
        int r;

        if (sv && (since = parse_seq(sv)) < 0) {
                http_reply_error(rep, 400, "since must be a non-negative integer");
                return;
        }
        /* A browser's EventSource reconnects to the same URL with the id
         * of the last event it saw, which is newer than the URL's since. */
        if (lv_id && *lv_id) {
                if ((v = parse_seq(lv_id)) < 0) {
                        http_reply_error(rep, 400, "Last-Event-ID must be a sequence number");
                        return;
                }
                if (v > since)
                        since = v;
        }
        lv = http_live_new(req, KEEPALIVE);
        if (!lv) {
                http_reply_error(rep, 503, "the server is shutting down");
                return;
        }
        st = calloc(1, sizeof(*st));
        if (!st) {
                r = -ENOMEM;
                goto fail;
        }
        st->s = s;
        st->user = req->device.user_id;
        snprintf(st->device, sizeof(st->device), "%s", req->device.id);
        r = events_subscribe(s->events, req->device.user_id, req->device.id, http_live_wake, lv,
                             &st->sub);
        if (r < 0)
                goto fail;
        /* Its device's first stream: it came online. Before the versions
         * are read, so that the stream does not announce it to itself. */
        if (events_device_streams(s->events, st->user, st->device) == 1)
                api_registry_changed(s, st->user, META_COUNTER_DEVICES);
        r = s->meta->ops->seq_current(s->meta, req->device.user_id, &seq);
        if (r == 0)
                r = s->meta->ops->xfer_version(s->meta, req->device.user_id,
                                               &st->sent_v[EVENTS_TRANSFERS]);
        if (r == 0)
                r = s->meta->ops->registry_version(s->meta, st->user, META_COUNTER_DEVICES,
                                                   &st->sent_v[EVENTS_DEVICES]);
        if (r == 0)
                r = s->meta->ops->registry_version(s->meta, st->user, META_COUNTER_REQUESTS,
                                                   &st->sent_v[EVENTS_REQUESTS]);
        if (r < 0)
                goto fail;
        st->sent = seq;
        append_event(st, "hello", seq, req->device.id);
        if (since >= 0 && seq > since) {
                device_of(s, req->device.user_id, seq, device, sizeof(device));
                append_event(st, "seq", seq, device);
        }
        rep->status = 200;
        rep->content_type = "text/event-stream";
        rep->stream = stream_read;
        rep->stream_cls = st;
        rep->stream_free = stream_free;
        rep->live = lv;
        return;
fail:
        if (st)
                events_unsubscribe(s->events, st->sub);
        free(st);
        http_live_free(lv);
        api_internal(rep, "events", r);
}
