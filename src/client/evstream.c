/* evstream: the event-stream thread (see evstream.h).
 *
 * The easy handle runs inside a curl multi handle only so that
 * curl_multi_poll() can wait on it and curl_multi_wakeup() can interrupt
 * the wait from evstream_stop(): the thread stops at once, whether it is
 * streaming or sleeping between attempts. Everything the main thread reads
 * sits in struct evstream_state under one mutex.
 */
#include "evstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "sse.h"

#define ERRBODY_MAX 4096

struct evstream {
        char *base, *auth;
        int notify_fd;
        pthread_t thread;
        int started;
        CURLM *multi;
        CURL *easy;
        atomic_int stop;
        pthread_mutex_t mu;
        struct evstream_state st; /* under mu */
        int64_t since;            /* under mu */
        /* the current attempt (thread only) */
        struct sse_parser parser;
        long status;
        int hello;
        struct buf errbody;
};

int64_t evstream_backoff_ms(unsigned attempt, double r)
{
        double d = EVSTREAM_BACKOFF_MIN_MS;

        for (unsigned i = 0; i < attempt && d < EVSTREAM_BACKOFF_MAX_MS; i++)
                d *= 2;
        if (d > EVSTREAM_BACKOFF_MAX_MS)
                d = EVSTREAM_BACKOFF_MAX_MS;
        d *= 0.75 + 0.5 * r;
        if (d > EVSTREAM_BACKOFF_MAX_MS)
                d = EVSTREAM_BACKOFF_MAX_MS;
        return (int64_t)d;
}

static int parse_member(const char *data, const char *key, int64_t *out)
{
        json_t *j = json_loads(data, 0, NULL), *s = json_object_get(j, key);
        int r = 0;

        if (!json_is_integer(s) || json_integer_value(s) < 0)
                r = err_set(-EPROTO, "event stream: an event without a valid %s: %.80s", key, data);
        else
                *out = json_integer_value(s);
        json_decref(j);
        return r;
}

int evstream_parse_seq(const char *data, int64_t *seq)
{
        return parse_member(data, "seq", seq);
}

int evstream_parse_version(const char *data, int64_t *version)
{
        return parse_member(data, "version", version);
}

static void poke(struct evstream *es)
{
        uint64_t one = 1;

        if (write(es->notify_fd, &one, sizeof(one)) < 0) {
                /* the counter cannot overflow in practice; nothing to do */
        }
}

static int on_event(void *ud, const char *event, const char *data, const char *id)
{
        struct evstream *es = ud;
        int64_t seq;

        (void)id;
        if (!strcmp(event, "transfers") || !strcmp(event, "devices") ||
            !strcmp(event, "requests")) {
                if (evstream_parse_version(data, &seq) < 0) {
                        log_warn("%s", err_msg(-EPROTO));
                        return 0;
                }
                /* counted, not compared: a restarted server counts anew */
                pthread_mutex_lock(&es->mu);
                if (event[0] == 't')
                        es->st.transfer_events++;
                else if (event[0] == 'd')
                        es->st.device_events++;
                else
                        es->st.request_events++;
                pthread_mutex_unlock(&es->mu);
                poke(es);
                return 0;
        }
        if (strcmp(event, "hello") != 0 && strcmp(event, "seq") != 0)
                return 0;
        if (evstream_parse_seq(data, &seq) < 0) {
                log_warn("%s", err_msg(-EPROTO));
                return 0;
        }
        pthread_mutex_lock(&es->mu);
        if (seq > es->st.seq)
                es->st.seq = seq;
        if (!strcmp(event, "hello")) {
                es->st.online = 1;
                es->st.connects++;
                es->st.last_error[0] = '\0';
        }
        pthread_mutex_unlock(&es->mu);
        if (!strcmp(event, "hello")) {
                if (!es->hello)
                        log_debug("event stream: connected at seq %lld", (long long)seq);
                es->hello = 1;
        }
        poke(es);
        return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
        struct evstream *es = ud;
        size_t n = size * nmemb;

        if (es->status == 0)
                curl_easy_getinfo(es->easy, CURLINFO_RESPONSE_CODE, &es->status);
        if (es->status != 200) {
                /* an error answer: keep (the start of) its JSON for the log */
                if (es->errbody.len < ERRBODY_MAX &&
                    buf_append(&es->errbody, p, n < ERRBODY_MAX ? n : ERRBODY_MAX) < 0)
                        return 0;
                return n;
        }
        if (sse_feed(&es->parser, p, n, on_event, es) < 0) {
                log_warn("%s", err_msg(-EPROTO));
                return 0; /* aborts this stream; the next attempt starts clean */
        }
        return n;
}

/* Why an attempt failed, in words, into out. */
static void describe(struct evstream *es, CURLcode cc, const char *errbuf, char *out, size_t len)
{
        json_t *j = NULL;
        const char *e = NULL;

        if (es->status != 0 && es->status != 200) {
                if (es->errbody.len)
                        j = json_loadb((const char *)es->errbody.data, es->errbody.len, 0, NULL);
                e = json_string_value(json_object_get(j, "error"));
                snprintf(out, len, "HTTP %ld%s%s", es->status, e ? ": " : "", e ? e : "");
                json_decref(j);
        } else if (cc != CURLE_OK) {
                snprintf(out, len, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        } else {
                snprintf(out, len, "the server closed the stream");
        }
}

/* One connection: streams until it breaks or stop is set. Returns the
 * curl result. */
static CURLcode stream_once(struct evstream *es, struct curl_slist *hdrs, char *errbuf)
{
        CURLcode cc = CURLE_OK;
        CURLMsg *m;
        char url[4200];
        int64_t since;
        int running = 1, left;

        pthread_mutex_lock(&es->mu);
        since = es->since;
        pthread_mutex_unlock(&es->mu);
        snprintf(url, sizeof(url), "%s/api/v1/events?since=%lld", es->base, (long long)since);
        sse_free(&es->parser);
        sse_init(&es->parser);
        buf_reset(&es->errbody);
        es->status = 0;
        es->hello = 0;
        errbuf[0] = '\0';
        curl_easy_setopt(es->easy, CURLOPT_URL, url);
        curl_easy_setopt(es->easy, CURLOPT_HTTPHEADER, hdrs);
        curl_multi_add_handle(es->multi, es->easy);
        while (running && !atomic_load(&es->stop)) {
                if (curl_multi_perform(es->multi, &running) != CURLM_OK)
                        break;
                if (!running)
                        break;
                curl_multi_poll(es->multi, NULL, 0, 1000, NULL);
        }
        while ((m = curl_multi_info_read(es->multi, &left)) != NULL)
                if (m->msg == CURLMSG_DONE)
                        cc = m->data.result;
        curl_multi_remove_handle(es->multi, es->easy);
        return cc;
}

static void *run(void *ud)
{
        struct evstream *es = ud;
        struct curl_slist *hdrs = NULL, *t;
        char errbuf[CURL_ERROR_SIZE], why[256];
        unsigned attempt = 0, rnd;
        int was_online = 0;
        CURLcode cc;

        t = curl_slist_append(NULL, es->auth);
        hdrs = t ? curl_slist_append(t, "Accept: text/event-stream") : NULL;
        if (!hdrs) {
                curl_slist_free_all(t);
                log_error("event stream: out of memory");
                return NULL;
        }
        curl_easy_setopt(es->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(es->easy, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(es->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(es->easy, CURLOPT_LOW_SPEED_TIME, EVSTREAM_SILENCE_S);
        curl_easy_setopt(es->easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(es->easy, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(es->easy, CURLOPT_USERAGENT, "ferry/" FERRY_VERSION);
        curl_easy_setopt(es->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(es->easy, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(es->easy, CURLOPT_WRITEDATA, es);

        while (!atomic_load(&es->stop)) {
                cc = stream_once(es, hdrs, errbuf);
                if (atomic_load(&es->stop))
                        break;
                describe(es, cc, errbuf, why, sizeof(why));
                if (es->hello)
                        attempt = 0; /* it was up: start the backoff over */
                pthread_mutex_lock(&es->mu);
                was_online = es->st.online;
                if (was_online)
                        es->st.offline_since_ns = fsutil_now_ns();
                es->st.online = 0;
                snprintf(es->st.last_error, sizeof(es->st.last_error), "%s", why);
                pthread_mutex_unlock(&es->mu);
                if (was_online)
                        log_warn("event stream: lost the server at %s (%s); reconnecting", es->base,
                                 why);
                else if (es->status == 401 || es->status == 403)
                        log_error("event stream: the server refused this device (%s); link the "
                                  "folder again with 'ferry init'",
                                  why);
                else
                        log_debug("event stream: cannot connect to %s: %s", es->base, why);
                poke(es);
                if (fsutil_random(&rnd, sizeof(rnd)) < 0)
                        rnd = (unsigned)getpid() * 2654435761u;
                curl_multi_poll(es->multi, NULL, 0,
                                (int)evstream_backoff_ms(attempt, rnd / 4294967296.0), NULL);
                if (attempt < 32)
                        attempt++;
        }
        curl_easy_setopt(es->easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(es->easy, CURLOPT_ERRORBUFFER, NULL);
        curl_slist_free_all(hdrs);
        return NULL;
}

int evstream_start(const char *server, const char *token, int notify_fd, struct evstream **out)
{
        struct evstream *es = calloc(1, sizeof(*es));
        size_t n;
        int r = -ENOMEM;

        if (!es)
                return -ENOMEM;
        pthread_mutex_init(&es->mu, NULL);
        sse_init(&es->parser);
        es->notify_fd = notify_fd;
        es->st.seq = -1;
        es->st.offline_since_ns = fsutil_now_ns();
        es->base = strdup(server);
        n = strlen(token) + sizeof("Authorization: Bearer ");
        es->auth = malloc(n);
        if (!es->base || !es->auth)
                goto out;
        snprintf(es->auth, n, "Authorization: Bearer %s", token);
        n = strlen(es->base);
        while (n > 0 && es->base[n - 1] == '/')
                es->base[--n] = '\0';
        /* curl_global_init has run: the caller opened a remote first */
        es->multi = curl_multi_init();
        es->easy = curl_easy_init();
        if (!es->multi || !es->easy)
                goto out;
        if (pthread_create(&es->thread, NULL, run, es) != 0) {
                r = err_set(-EAGAIN, "cannot start the event stream thread");
                goto out;
        }
        es->started = 1;
        *out = es;
        return 0;
out:
        evstream_stop(es);
        return r;
}

void evstream_set_since(struct evstream *es, int64_t since)
{
        pthread_mutex_lock(&es->mu);
        es->since = since;
        pthread_mutex_unlock(&es->mu);
}

void evstream_get(struct evstream *es, struct evstream_state *out)
{
        pthread_mutex_lock(&es->mu);
        *out = es->st;
        pthread_mutex_unlock(&es->mu);
}

void evstream_stop(struct evstream *es)
{
        if (!es)
                return;
        atomic_store(&es->stop, 1);
        if (es->started) {
                curl_multi_wakeup(es->multi);
                pthread_join(es->thread, NULL);
        }
        if (es->easy)
                curl_easy_cleanup(es->easy);
        if (es->multi)
                curl_multi_cleanup(es->multi);
        sse_free(&es->parser);
        buf_free(&es->errbody);
        pthread_mutex_destroy(&es->mu);
        free(es->base);
        free(es->auth);
        free(es);
}
