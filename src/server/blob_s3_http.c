/* blob_s3_http: the HTTP engine of the S3 chunk store (blob_s3.c): signed
 * requests through libcurl, reused connections, parallel batches and
 * bounded retries.
 *
 * Signing is libcurl's own (CURLOPT_AWS_SIGV4, "aws:amz:REGION:s3"), not a
 * signer of ours. Two quirks of curl 7.88's signer shape the requests: it
 * does not hash a body it reads through a callback, so every request
 * carries x-amz-content-sha256 with the real SHA-256 of its body (which
 * also lets the server check what it stored); and it signs every header it
 * is given, including a disabling "Expect:" that is then not sent, so
 * bodies go as CURLOPT_POSTFIELDS under a custom "PUT", for which curl
 * sends no "Expect: 100-continue" below 1 MiB (chunks are at most 257 KiB).
 *
 * ferryd calls the store from many worker threads: each request borrows
 * an easy handle from a small pool, and all handles share one connection
 * and DNS cache (CURLSH, locked per data kind), so a request reuses a
 * keep-alive connection another thread opened.
 *
 * Retries: 5xx, 429 and transport failures (refused, reset, timed out) are
 * tried again, s->tries attempts in all, after 50 ms, 100 ms, ... up to
 * 1.6 s; other statuses are final and judged by the caller. Every attempt
 * is bounded by a connect timeout and a total timeout, so a dead endpoint
 * costs a known, short time. A batch runs its requests s->parallel at a
 * time on a curl multi handle, in rounds: after a round, the requests that
 * may be retried run again together after one backoff.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob_s3_int.h"
#include "err.h"
#include "hash.h"
#include "log.h"

#define ERR_BODY_MAX 4096 /* of an error response, enough for its <Code> */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1600

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc, void *ud)
{
        struct s3 *s = ud;

        (void)h;
        (void)acc;
        pthread_mutex_lock(&s->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
        struct s3 *s = ud;

        (void)h;
        pthread_mutex_unlock(&s->share_mu[data]);
}

int s3_http_init(struct s3 *s)
{
        int i;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return err_set(-EIO, "S3: libcurl did not initialise");
        s->curl_inited = 1;
        for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_init(&s->share_mu[i], NULL);
        pthread_mutex_init(&s->pool_mu, NULL);
        s->share = curl_share_init();
        if (!s->share)
                return -ENOMEM;
        if (curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock) ||
            curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
            curl_share_setopt(s->share, CURLSHOPT_USERDATA, s) ||
            curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) ||
            curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS))
                return err_set(-EIO, "S3: libcurl cannot share connections");
        return 0;
}

void s3_http_cleanup(struct s3 *s)
{
        int i;

        if (!s->curl_inited)
                return;
        /* the handles first: they still use the share */
        for (i = 0; i < s->npool; i++)
                curl_easy_cleanup(s->pool[i]);
        s->npool = 0;
        if (s->share)
                curl_share_cleanup(s->share);
        s->share = NULL;
        for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_destroy(&s->share_mu[i]);
        pthread_mutex_destroy(&s->pool_mu);
        curl_global_cleanup();
        s->curl_inited = 0;
}

static CURL *pool_get(struct s3 *s)
{
        CURL *e = NULL;

        pthread_mutex_lock(&s->pool_mu);
        if (s->npool > 0)
                e = s->pool[--s->npool];
        pthread_mutex_unlock(&s->pool_mu);
        return e ? e : curl_easy_init();
}

static void pool_put(struct s3 *s, CURL *e)
{
        if (!e)
                return;
        pthread_mutex_lock(&s->pool_mu);
        if (s->npool < S3_POOL_MAX) {
                s->pool[s->npool++] = e;
                e = NULL;
        }
        pthread_mutex_unlock(&s->pool_mu);
        if (e)
                curl_easy_cleanup(e);
}

/* The store is passed in so that the handle goes back to its pool. */
static void req_release(struct s3 *s, struct s3_req *rq)
{
        pool_put(s, rq->easy);
        rq->easy = NULL;
}

void s3_req_done(struct s3_req *rq)
{
        /* rq->easy went back to the pool when the request ended */
        curl_slist_free_all(rq->hdrs);
        rq->hdrs = NULL;
        buf_free(&rq->resp);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
        struct s3_req *rq = ud;
        size_t len = size * n;
        long status = 0;

        if (rq->resp.len + len > rq->max_resp) {
                curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status >= 200 && status < 300) {
                        rq->too_big = 1;
                        return 0; /* aborts the transfer */
                }
                if (rq->resp.len < ERR_BODY_MAX)
                        buf_append(&rq->resp, p,
                                   ERR_BODY_MAX - rq->resp.len < len ? ERR_BODY_MAX - rq->resp.len
                                                                     : len);
                return len; /* the rest of an error body: dropped */
        }
        return buf_append(&rq->resp, p, len) < 0 ? 0 : len;
}

/* Prepares rq->easy (borrowed from the pool if need be) for one attempt. */
static int req_setup(struct s3 *s, struct s3_req *rq)
{
        char url[2048];
        CURL *e;
        int n;

        if (!rq->hdrs) {
                struct hash h;
                char line[128];

                hash_buf(rq->body ? (const void *)rq->body : "", rq->body_len, &h);
                hash_to_hex(&h, rq->sha256);
                snprintf(line, sizeof(line), "x-amz-content-sha256: %s", rq->sha256);
                rq->hdrs = curl_slist_append(NULL, line);
                if (rq->hdrs && strcmp(rq->method, "PUT") == 0)
                        rq->hdrs =
                            curl_slist_append(rq->hdrs, "Content-Type: application/octet-stream");
                if (!rq->hdrs)
                        return -ENOMEM;
        }
        if (rq->key[0])
                n = snprintf(url, sizeof(url), "%s/%s/%s", s->endpoint, s->bucket, rq->key);
        else
                n = snprintf(url, sizeof(url), "%s/%s", s->endpoint, s->bucket);
        if (n < 0 || (size_t)n >= sizeof(url))
                return err_set(-ENAMETOOLONG, "S3: URL too long for %s", rq->key);
        if (!rq->easy)
                rq->easy = pool_get(s);
        if (!rq->easy)
                return -ENOMEM;
        e = rq->easy;
        curl_easy_reset(e);
        buf_reset(&rq->resp);
        rq->status = 0;
        rq->too_big = 0;
        rq->err[0] = 0;
        if (rq->max_resp == 0)
                rq->max_resp = ERR_BODY_MAX;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_SHARE, s->share);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_USERPWD, s->userpwd);
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, s->sigv4);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, rq->hdrs);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rq->err);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, rq);
        if (strcmp(rq->method, "HEAD") == 0) {
                curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        } else if (strcmp(rq->method, "PUT") == 0) {
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        } else if (strcmp(rq->method, "GET") != 0) {
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
        }
        return 0;
}

/* Records how an attempt ended. */
static void req_finish(struct s3_req *rq, CURLcode cc)
{
        rq->cc = cc;
        rq->tries++;
        curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &rq->status);
        if (cc != CURLE_OK && !rq->too_big)
                rq->status = 0;
}

static int transient_cc(CURLcode cc)
{
        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
                return 1;
        default:
                return 0;
        }
}

/* 1 if the attempt that just ended may succeed when tried again. */
static int retryable(const struct s3_req *rq)
{
        if (rq->too_big)
                return 0;
        if (rq->cc != CURLE_OK)
                return transient_cc(rq->cc);
        return rq->status >= 500 || rq->status == 429;
}

static void backoff(int attempt)
{
        long ms = BACKOFF_MIN_MS << (attempt < 6 ? attempt : 6);
        struct timespec ts;

        if (ms > BACKOFF_MAX_MS)
                ms = BACKOFF_MAX_MS;
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000L;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* The error for a request that ended without a usable answer (after its
 * last try), or 0. */
static int req_error(struct s3 *s, const struct s3_req *rq)
{
        if (rq->too_big)
                return err_set(-EIO, "S3 %s %s/%s: response larger than %zu bytes", rq->method,
                               s->bucket, rq->key, rq->max_resp);
        if (rq->cc != CURLE_OK)
                return err_set(-EHOSTDOWN, "S3 %s %s/%s at %s: %s%s%s (after %d tries)", rq->method,
                               s->bucket, rq->key, s->endpoint, curl_easy_strerror(rq->cc),
                               rq->err[0] ? ": " : "", rq->err, rq->tries);
        if (retryable(rq)) {
                /* 5xx or 429 after every try: the bucket is there but
                 * unwell; the request can be tried again later. (The
                 * message is copied out: err_set() writes where err_msg()
                 * points.) */
                char msg[512];

                s3_status_error(s, rq, "still failing");
                snprintf(msg, sizeof(msg), "%s", err_msg(-EIO));
                return err_set(-EHOSTDOWN, "%s", msg);
        }
        return 0;
}

int s3_request(struct s3 *s, struct s3_req *rq)
{
        int r = 0, i;

        for (i = 0; i < s->tries; i++) {
                if (i > 0) {
                        log_debug("S3 %s %s/%s: retrying (HTTP %ld, %s)", rq->method, s->bucket,
                                  rq->key, rq->status, curl_easy_strerror(rq->cc));
                        backoff(i - 1);
                }
                r = req_setup(s, rq);
                if (r < 0)
                        goto out;
                req_finish(rq, curl_easy_perform(rq->easy));
                if (!retryable(rq))
                        break;
        }
        r = req_error(s, rq);
out:
        req_release(s, rq);
        return r;
}

/* One round: runs the n requests rqs[] on a multi handle, s->parallel at
 * a time. 0 or -errno (setup failures only: a failed transfer is recorded
 * in its request). */
static int run_round(struct s3 *s, struct s3_req **rqs, size_t n)
{
        CURLM *m = curl_multi_init();
        size_t next = 0, active = 0;
        int r = 0, running, left, done;
        CURLMsg *msg;

        if (!m)
                return -ENOMEM;
        while (next < n || active > 0) {
                while (r == 0 && next < n && active < (size_t)s->parallel) {
                        r = req_setup(s, rqs[next]);
                        if (r == 0 && curl_multi_add_handle(m, rqs[next]->easy) != CURLM_OK)
                                r = -ENOMEM;
                        if (r == 0) {
                                curl_easy_setopt(rqs[next]->easy, CURLOPT_PRIVATE, rqs[next]);
                                active++;
                                next++;
                        }
                }
                if (r < 0)
                        next = n; /* start nothing more; finish what runs */
                if (active == 0)
                        break;
                if (curl_multi_perform(m, &running) != CURLM_OK) {
                        r = err_set(-EIO, "S3: libcurl multi interface failed");
                        break;
                }
                done = 0;
                while ((msg = curl_multi_info_read(m, &left))) {
                        struct s3_req *rq = NULL;

                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
                        req_finish(rq, msg->data.result);
                        curl_multi_remove_handle(m, rq->easy);
                        active--;
                        done++;
                }
                /* wait for the network only when nothing ended: a free
                 * slot is filled at once */
                if (done == 0 && running > 0 &&
                    curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) {
                        r = err_set(-EIO, "S3: libcurl multi interface failed");
                        break;
                }
        }
        /* after a failure: handles still attached are detached, unfinished */
        for (size_t i = 0; i < n; i++)
                if (rqs[i]->easy)
                        curl_multi_remove_handle(m, rqs[i]->easy);
        curl_multi_cleanup(m);
        return r;
}

int s3_request_many(struct s3 *s, struct s3_req **rqs, size_t n)
{
        struct s3_req **todo = NULL;
        size_t ntodo = n, i, k;
        int r = 0, attempt;

        if (n == 0)
                return 0;
        todo = malloc(n * sizeof(*todo));
        if (!todo)
                return -ENOMEM;
        memcpy(todo, rqs, n * sizeof(*todo));
        for (attempt = 0; attempt < s->tries && ntodo > 0; attempt++) {
                if (attempt > 0) {
                        log_debug("S3: retrying %zu of %zu requests", ntodo, n);
                        backoff(attempt - 1);
                }
                r = run_round(s, todo, ntodo);
                if (r < 0)
                        goto out;
                for (i = k = 0; i < ntodo; i++)
                        if (retryable(todo[i]))
                                todo[k++] = todo[i];
                ntodo = k;
        }
        for (i = 0; i < n && r == 0; i++)
                r = req_error(s, rqs[i]);
out:
        for (i = 0; i < n; i++)
                req_release(s, rqs[i]);
        free(todo);
        return r;
}

/* Copies the text of the first <Code> element of an S3 error body. */
static void error_code(const struct buf *body, char *out, size_t cap)
{
        const char *p, *q;

        out[0] = 0;
        if (!body->data)
                return;
        p = strstr((const char *)body->data, "<Code>");
        if (!p)
                return;
        p += 6;
        q = strstr(p, "</Code>");
        if (q && (size_t)(q - p) < cap)
                snprintf(out, cap, "%.*s", (int)(q - p), p);
}

int s3_status_error(struct s3 *s, const struct s3_req *rq, const char *what)
{
        char code[128];
        const char *hint = "";

        error_code(&rq->resp, code, sizeof(code));
        if (rq->status == 403)
                hint = " (check FERRY_S3_ACCESS_KEY and FERRY_S3_SECRET_KEY, and the region)";
        err_set(rq->status == 403 ? -EACCES : -EIO, "S3 %s %s/%s at %s: %s: HTTP %ld%s%s%s",
                rq->method, s->bucket, rq->key, s->endpoint, what, rq->status, code[0] ? " " : "",
                code, hint);
        return rq->status == 403 ? -EACCES : -EIO;
}
