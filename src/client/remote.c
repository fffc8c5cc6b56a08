/* remote: HTTP requests to ferryd (docs/api.md) over one libcurl easy
 * handle, so that a sync round reuses one kept-alive connection.
 *
 * Every request goes through do_request(), which sets the per-request
 * options, collects the answer in a struct buf and turns failures into the
 * project's error codes: a transport failure is -ECONNREFUSED ("cannot reach
 * the server at URL: ..."), an HTTP status >= 400 maps as remote.h says, with
 * the server's JSON "error" text and the status in the message.
 *
 * There are no total timeouts, because a 2 GiB sync may rightly take long;
 * instead a connection attempt is bounded and a transfer that stalls (less
 * than REMOTE_LOW_SPEED bytes/s for REMOTE_LOW_SPEED_TIME seconds) is
 * abandoned.
 *
 * The byte counters come from libcurl's debug callback (CURLOPT_VERBOSE with
 * our own CURLOPT_DEBUGFUNCTION, so nothing is printed): it sees the header
 * and body bytes exactly as written to and read from the connection, also
 * the part of a small body libcurl sends in one write with the headers,
 * which CURLINFO_SIZE_UPLOAD_T and CURLINFO_REQUEST_SIZE would count twice
 * or not at all. It runs as the bytes move, so the counters are live for
 * the progress line. They are atomics because a transfer's poster thread
 * may run a request while the main thread reads them.
 *
 * A clone (remote_clone) is a second connection for a second upload thread:
 * it counts its bytes in its parent's counters and reports progress through
 * its parent's function, the calls of both serialised by the parent's
 * lock, so callers see one remote whatever the number of connections.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "remote.h"

#define REMOTE_CONNECT_TIMEOUT 10L
#define REMOTE_LOW_SPEED 1L
#define REMOTE_LOW_SPEED_TIME 120L
/* Largest answer accepted: a chunk fetch is at most 16 MiB of chunks plus
 * frame headers, a JSON answer at most 64 MiB; anything past this is not a
 * ferryd speaking. */
#define REMOTE_MAX_RESPONSE (128u * 1024u * 1024u)
/* libcurl's default receive buffer */
#define REMOTE_READ_BUFFER 16384L

struct remote {
        CURL *curl;
        char *base; /* without trailing '/' */
        char *auth; /* "Authorization: Bearer <token>" or NULL */
        char errbuf[CURL_ERROR_SIZE];
        int too_large;
        /* remote_stats; atomics (__atomic builtins) */
        int64_t bytes_up, bytes_down, requests;
        remote_progress_fn progress;
        void *progress_ud;
        pthread_mutex_t progress_mu; /* one progress call at a time */
        struct remote *parent;       /* a clone's: counters and progress */
        int64_t limit_up, limit_down;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
        global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int set_auth(struct remote *r, const char *token)
{
        size_t n;

        free(r->auth);
        r->auth = NULL;
        if (token == NULL)
                return 0;
        n = strlen(token) + sizeof("Authorization: Bearer ");
        r->auth = malloc(n);
        if (r->auth == NULL)
                return -ENOMEM;
        snprintf(r->auth, n, "Authorization: Bearer %s", token);
        return 0;
}

static void count(int64_t *c, size_t n)
{
        __atomic_fetch_add(c, (int64_t)n, __ATOMIC_RELAXED);
}

/* libcurl's debug callback: only the byte counts are wanted. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
        struct remote *r = ud;

        (void)h;
        (void)data;
        if (r->parent)
                r = r->parent;
        if (type == CURLINFO_HEADER_OUT || type == CURLINFO_DATA_OUT)
                count(&r->bytes_up, size);
        else if (type == CURLINFO_HEADER_IN || type == CURLINFO_DATA_IN)
                count(&r->bytes_down, size);
        return 0;
}

int remote_new(const char *server_url, const char *token, struct remote **out)
{
        struct remote *r = calloc(1, sizeof(*r));
        size_t n;
        int rc = 0;

        if (r == NULL)
                return -ENOMEM;
        pthread_mutex_init(&r->progress_mu, NULL);
        pthread_once(&global_once, global_init);
        if (global_rc != CURLE_OK) {
                rc = err_set(-EIO, "cannot initialise libcurl: %s", curl_easy_strerror(global_rc));
                goto out;
        }
        r->base = strdup(server_url);
        r->curl = curl_easy_init();
        if (r->base == NULL || r->curl == NULL || set_auth(r, token) < 0) {
                rc = -ENOMEM;
                goto out;
        }
        n = strlen(r->base);
        while (n > 0 && r->base[n - 1] == '/')
                r->base[--n] = '\0';
        if (n == 0) {
                rc = err_set(-EINVAL, "the server URL is empty");
                goto out;
        }
        curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, REMOTE_CONNECT_TIMEOUT);
        curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, REMOTE_LOW_SPEED);
        curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, REMOTE_LOW_SPEED_TIME);
        curl_easy_setopt(r->curl, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->errbuf);
        curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "ferry/" FERRY_VERSION);
        /* only http(s): a server URL must never make us read local files */
        curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(r->curl, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(r->curl, CURLOPT_DEBUGDATA, r);
        curl_easy_setopt(r->curl, CURLOPT_VERBOSE, 1L);
        *out = r;
        r = NULL;
out:
        remote_free(r);
        return rc;
}

/* Lets a client that just logged in use its new token on the same
 * connection. token may be NULL to drop it. */
int remote_set_token(struct remote *r, const char *token)
{
        return set_auth(r, token);
}

void remote_stats(struct remote *r, struct remote_stats *out)
{
        out->bytes_up = __atomic_load_n(&r->bytes_up, __ATOMIC_RELAXED);
        out->bytes_down = __atomic_load_n(&r->bytes_down, __ATOMIC_RELAXED);
        out->requests = __atomic_load_n(&r->requests, __ATOMIC_RELAXED);
}

void remote_set_limits(struct remote *r, int64_t up, int64_t down)
{
        /* libcurl reads up to 100 buffers in a row while the socket has
         * data before it checks the limit: with its default 16 KiB buffer,
         * bursts of 1.6 MiB, and each request starts a new burst. Reads of
         * a thousandth of the rate keep a burst near a tenth of a second
         * (libcurl's minimum buffer, 1 KiB, allows more below 1 MiB/s). */
        long bufsize = REMOTE_READ_BUFFER;

        r->limit_up = up;
        r->limit_down = down;
        if (down > 0 && down / 1000 < bufsize)
                bufsize = down / 1000 < 1024 ? 1024 : (long)(down / 1000);
        curl_easy_setopt(r->curl, CURLOPT_BUFFERSIZE, bufsize);
        curl_easy_setopt(r->curl, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)(up > 0 ? up : 0));
        curl_easy_setopt(r->curl, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)(down > 0 ? down : 0));
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        struct remote *r = ud;
        struct remote_stats now;

        (void)dltotal;
        (void)dlnow;
        (void)ultotal;
        (void)ulnow;
        if (r->parent)
                r = r->parent;
        pthread_mutex_lock(&r->progress_mu);
        if (r->progress) {
                remote_stats(r, &now);
                r->progress(r->progress_ud, &now);
        }
        pthread_mutex_unlock(&r->progress_mu);
        return 0;
}

void remote_set_progress(struct remote *r, remote_progress_fn fn, void *ud)
{
        pthread_mutex_lock(&r->progress_mu);
        r->progress = fn;
        r->progress_ud = ud;
        pthread_mutex_unlock(&r->progress_mu);
        curl_easy_setopt(r->curl, CURLOPT_XFERINFOFUNCTION, fn ? on_xferinfo : NULL);
        curl_easy_setopt(r->curl, CURLOPT_XFERINFODATA, fn ? r : NULL);
        curl_easy_setopt(r->curl, CURLOPT_NOPROGRESS, fn ? 0L : 1L);
}

int remote_clone(struct remote *r, struct remote **out)
{
        struct remote *c = NULL;
        int rc;

        rc = remote_new(r->base, NULL, &c);
        if (rc < 0)
                goto out;
        if (r->auth && (c->auth = strdup(r->auth)) == NULL) {
                rc = -ENOMEM;
                goto out;
        }
        c->parent = r->parent ? r->parent : r;
        remote_set_limits(c, r->limit_up, r->limit_down);
        /* always on: the parent's function may be set later */
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
        *out = c;
        c = NULL;
out:
        remote_free(c);
        return rc;
}

int remote_limited(const struct remote *r)
{
        return r->limit_up > 0 || r->limit_down > 0;
}

void remote_free(struct remote *r)
{
        if (r == NULL)
                return;
        if (r->curl)
                curl_easy_cleanup(r->curl);
        pthread_mutex_destroy(&r->progress_mu);
        free(r->base);
        free(r->auth);
        free(r);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
        struct remote *r = ((void **)ud)[0];
        struct buf *b = ((void **)ud)[1];
        size_t n = size * nmemb;

        if (b->len + n > REMOTE_MAX_RESPONSE) {
                r->too_large = 1;
                return 0; /* aborts the transfer */
        }
        if (buf_append(b, p, n) < 0)
                return 0;
        return n;
}

static int status_code(long status)
{
        switch (status) {
        case 400:
                return -EINVAL;
        case 401:
                return -EACCES;
        case 403:
                return -EPERM;
        case 404:
                return -ENOENT;
        case 409:
                return -EEXIST;
        case 413:
                return -E2BIG;
        default:
                return status >= 500 ? -EIO : -EPROTO;
        }
}

/* Sets the message for an error answer from the JSON body, if there is
 * one. */
static int http_error(long status, const struct buf *body)
{
        json_t *j = NULL, *e;
        int code = status_code(status);

        if (body->len > 0)
                j = json_loadb((const char *)body->data, body->len, 0, NULL);
        e = j ? json_object_get(j, "error") : NULL;
        if (json_is_string(e))
                err_set(code, "server: %s (HTTP %ld)", json_string_value(e), status);
        else
                err_set(code, "server: HTTP %ld with no error text", status);
        json_decref(j);
        return code;
}

static int add_header(struct curl_slist **l, const char *h)
{
        struct curl_slist *t = curl_slist_append(*l, h);

        if (t == NULL)
                return -ENOMEM;
        *l = t;
        return 0;
}

/* One request. method is "GET" or "POST"; for POST, body/len/ctype give the
 * body. The answer lands in resp (reset first); returns 0 for 2xx. */
static int do_request(struct remote *r, const char *method, const char *path, const char *ctype,
                      const void *body, size_t len, struct buf *resp)
{
        struct curl_slist *hdrs = NULL;
        char *url = NULL, ctbuf[96];
        void *wctx[2] = {r, resp};
        long status = 0;
        size_t n;
        CURLcode cc;
        int rc = 0;

        buf_reset(resp);
        r->too_large = 0;
        r->errbuf[0] = '\0';
        n = strlen(r->base) + strlen(path) + 2;
        url = malloc(n);
        if (url == NULL)
                return -ENOMEM;
        snprintf(url, n, "%s%s%s", r->base, path[0] == '/' ? "" : "/", path);

        /* no "Expect: 100-continue": it costs a round trip on every large
         * upload */
        if (ctype)
                snprintf(ctbuf, sizeof(ctbuf), "Content-Type: %s", ctype);
        if ((rc = add_header(&hdrs, "Expect:")) < 0 ||
            (r->auth && (rc = add_header(&hdrs, r->auth)) < 0) ||
            (ctype && (rc = add_header(&hdrs, ctbuf)) < 0))
                goto out;

        curl_easy_setopt(r->curl, CURLOPT_URL, url);
        curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, wctx);
        if (strcmp(method, "POST") == 0) {
                curl_easy_setopt(r->curl, CURLOPT_POST, 1L);
                curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
                curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, len ? body : "");
        } else {
                curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
        }

        count(r->parent ? &r->parent->requests : &r->requests, 1);
        cc = curl_easy_perform(r->curl);
        if (cc != CURLE_OK) {
                if (r->too_large)
                        rc = err_set(-E2BIG, "the server at %s sent an answer over %u bytes",
                                     r->base, REMOTE_MAX_RESPONSE);
                else if (cc == CURLE_WRITE_ERROR || cc == CURLE_OUT_OF_MEMORY)
                        rc = -ENOMEM;
                else
                        rc = err_set(-ECONNREFUSED, "cannot reach the server at %s: %s", r->base,
                                     r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
                goto out;
        }
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 400)
                rc = http_error(status, resp);
        else if (status < 200 || status >= 300)
                rc =
                    err_set(-EPROTO, "server: unexpected HTTP %ld for %s %s", status, method, path);
out:
        /* the handle outlives this call: drop pointers to our locals */
        curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, NULL);
        curl_slist_free_all(hdrs);
        free(url);
        return rc;
}

/* Parses a JSON answer into *out (when out is not NULL). */
static int parse_json(const struct buf *b, const char *path, json_t **out)
{
        json_error_t jerr;
        json_t *j;

        if (out == NULL)
                return 0;
        j = json_loadb((const char *)(b->data ? b->data : (const uint8_t *)""), b->len, 0, &jerr);
        if (j == NULL)
                return err_set(-EPROTO, "server: malformed JSON answer to %s: %s", path, jerr.text);
        *out = j;
        return 0;
}

/* Serialises body and POSTs it as JSON; the answer lands in resp. */
static int post_json(struct remote *r, const char *path, json_t *body, struct buf *resp)
{
        char *text = json_dumps(body, JSON_COMPACT);
        int rc;

        if (text == NULL)
                return err_set(-ENOMEM, "cannot encode the request to %s", path);
        rc = do_request(r, "POST", path, "application/json", text, strlen(text), resp);
        free(text);
        return rc;
}

int remote_get_json(struct remote *r, const char *path_query, json_t **out)
{
        struct buf resp = BUF_INIT;
        int rc;

        rc = do_request(r, "GET", path_query, NULL, NULL, 0, &resp);
        if (rc == 0)
                rc = parse_json(&resp, path_query, out);
        buf_free(&resp);
        return rc;
}

int remote_post_json(struct remote *r, const char *path, json_t *body, json_t **out)
{
        struct buf resp = BUF_INIT;
        int rc;

        rc = post_json(r, path, body, &resp);
        if (rc == 0)
                rc = parse_json(&resp, path, out);
        buf_free(&resp);
        return rc;
}

int remote_post_frames(struct remote *r, const char *path, const struct buf *body, json_t **out)
{
        struct buf resp = BUF_INIT;
        int rc;

        rc =
            do_request(r, "POST", path, "application/x-ferry-chunks", body->data, body->len, &resp);
        if (rc == 0)
                rc = parse_json(&resp, path, out);
        buf_free(&resp);
        return rc;
}

int remote_post_json_binary(struct remote *r, const char *path, json_t *body, struct buf *out)
{
        struct buf resp = BUF_INIT;
        int rc;

        rc = post_json(r, path, body, &resp);
        if (rc == 0) {
                buf_free(out);
                *out = resp;
                memset(&resp, 0, sizeof(resp));
        }
        buf_free(&resp);
        return rc;
}

char *remote_escape(const char *s)
{
        char *e, *copy;

        /* the handle argument is ignored since libcurl 7.82 */
        e = curl_easy_escape(NULL, s, (int)strlen(s));
        if (e == NULL)
                return NULL;
        copy = strdup(e);
        curl_free(e);
        return copy;
}
