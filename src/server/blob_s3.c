/* blob_s3: the chunk store of ferryd on an S3-compatible object store
 * (Ceph RADOS Gateway, MinIO, AWS S3), so that several stateless ferryd
 * instances share one bucket. See blob.h for the contract; the HTTP side
 * (signing, connection reuse, parallel batches, retries) is in
 * blob_s3_http.c.
 *
 * The store is named by a URL, parsed strictly (-EINVAL naming the fault):
 *     s3://BUCKET?endpoint=URL&region=R[&prefix=P]
 * BUCKET a DNS-style bucket name; endpoint the service's base URL (http or
 * https, without credentials); region the SigV4 signing region (RGW
 * accepts its zonegroup's name, "default" out of the box); prefix an
 * optional key prefix (a '/' is added) for sharing a bucket. Values may be
 * %-encoded. Requests use path-style URLs, ENDPOINT/BUCKET/KEY, which every
 * S3 implementation serves without DNS tricks. The credentials come only
 * from the environment, FERRY_S3_ACCESS_KEY and FERRY_S3_SECRET_KEY, never
 * from the URL (which ends up in logs and process listings).
 *
 * Layout: chunk h is the object PREFIX + "chunks/ab/<64 hex>", "ab" the
 * hash's first byte, the same content-addressed naming as blob_fs: putting
 * it again (a retry, another instance) rewrites the same bytes, so every
 * PUT is idempotent and needs no existence check (a HEAD would cost the
 * round trip a 64 KiB PUT costs on a LAN). Body: one byte, the frame
 * encoding of what follows (0 raw, 1 zstd), then the payload, as on disk in
 * blob_fs: one GET yields both, where object metadata would need a header
 * parsed on every GET. Chunks are stored as sent (clients compress what
 * pays); the body's SHA-256 goes with each PUT, so the server refuses a
 * body damaged on the way.
 *
 * Batches: put() copies the chunk into the batch; flush() sends all staged
 * chunks in parallel (curl multi, s->parallel at once), which is where S3
 * pays: a commit of many small chunks costs about one round trip per
 * s->parallel chunks instead of one per chunk. A batch staging more than
 * S3_STAGE_MAX bytes sends what it holds early, inside put(), to bound
 * memory. A PUT that S3 acknowledged is durable, so flush() returning 0
 * means every chunk of the batch is stored.
 *
 * The bucket is created at open when missing (a HEAD first, which also
 * proves the credentials: a wrong secret fails the open with 403). On AWS
 * outside us-east-1, create it beforehand (no LocationConstraint is sent).
 *
 * claim(): an S3 bucket cannot be held by one process, so claim() returns
 * 0. Several instances on one bucket rely on the metadata store's cluster
 * lock instead (META_LOCK_GC, see gc.c): a GC batch removes chunks only
 * while no upload can run anywhere, and `ferryd gc` next to running
 * servers takes the same lock.
 *
 * Thread safety: the store holds no per-request state; ferryd's worker
 * threads call it at once (blob_s3_http.c pools the curl handles).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_s3_int.h"
#include "err.h"
#include "frame.h"
#include "hash.h"

#define S3_TRIES 6                         /* 50 ms, 100 ms, ... 800 ms apart */
#define S3_PARALLEL 16                     /* transfers at once per batch */
#define S3_CONNECT_MS 3000L                /* per attempt */
#define S3_TIMEOUT_MS 30000L               /* per attempt, whole request */
#define S3_STAGE_MAX (32u * 1024u * 1024u) /* staged bytes before an early send */
#define S3_BODY_MAX (1u + FRAME_MAX_PAYLOAD)

/* A chunk waiting for flush(): its key and body (encoding byte first). */
struct staged {
        char key[S3_KEY_MAX];
        uint8_t *body;
        size_t len;
};

struct blob_batch {
        struct staged *st;
        size_t n, cap, bytes;
};

static struct s3 *s3_of(struct blob *b)
{
        return (struct s3 *)b;
}

static int chunk_key(struct s3 *s, const struct hash *h, char *out, size_t cap)
{
        char hex[HASH_HEX_LEN + 1];
        int n;

        hash_to_hex(h, hex);
        n = snprintf(out, cap, "%schunks/%.2s/%s", s->prefix, hex, hex);
        if (n < 0 || (size_t)n >= cap)
                return err_set(-ENAMETOOLONG, "S3: key prefix too long");
        return 0;
}

static int s3_batch_new(struct blob *b, struct blob_batch **out)
{
        (void)b;
        *out = calloc(1, sizeof(**out));
        return *out ? 0 : -ENOMEM;
}

static void batch_drop(struct blob_batch *bb)
{
        for (size_t i = 0; i < bb->n; i++)
                free(bb->st[i].body);
        bb->n = 0;
        bb->bytes = 0;
}

static void s3_batch_free(struct blob *b, struct blob_batch *bb)
{
        (void)b;
        if (!bb)
                return;
        batch_drop(bb);
        free(bb->st);
        free(bb);
}

/* Sends every staged chunk (in parallel) and empties the batch. */
static int send_staged(struct s3 *s, struct blob_batch *bb)
{
        struct s3_req *rq = NULL, **rqs = NULL;
        size_t i;
        int r = 0;

        if (bb->n == 0)
                return 0;
        rq = calloc(bb->n, sizeof(*rq));
        rqs = calloc(bb->n, sizeof(*rqs));
        if (!rq || !rqs) {
                r = -ENOMEM;
                goto out;
        }
        for (i = 0; i < bb->n; i++) {
                rq[i].method = "PUT";
                memcpy(rq[i].key, bb->st[i].key, sizeof(rq[i].key));
                rq[i].body = bb->st[i].body;
                rq[i].body_len = bb->st[i].len;
                rqs[i] = &rq[i];
        }
        r = s3_request_many(s, rqs, bb->n);
        for (i = 0; i < bb->n && r == 0; i++)
                if (rq[i].status != 200)
                        r = s3_status_error(s, &rq[i], "storing the chunk");
out:
        for (i = 0; rq && i < bb->n; i++)
                s3_req_done(&rq[i]);
        free(rq);
        free(rqs);
        batch_drop(bb);
        return r;
}

static int s3_put(struct blob *b, struct blob_batch *bb, const struct hash *h, uint8_t enc,
                  const uint8_t *payload, size_t len)
{
        struct s3 *s = s3_of(b);
        struct staged *st;
        int r;

        if (enc > FRAME_ENC_ZSTD || len > FRAME_MAX_PAYLOAD)
                return err_set(-EINVAL, "S3: bad chunk (encoding %u, %zu bytes)", enc, len);
        if (bb->n == bb->cap) {
                size_t ncap = bb->cap ? bb->cap * 2 : 64;
                struct staged *np = realloc(bb->st, ncap * sizeof(*np));

                if (!np)
                        return -ENOMEM;
                bb->st = np;
                bb->cap = ncap;
        }
        st = &bb->st[bb->n];
        r = chunk_key(s, h, st->key, sizeof(st->key));
        if (r < 0)
                return r;
        st->body = malloc(len + 1);
        if (!st->body)
                return -ENOMEM;
        st->body[0] = enc;
        if (len)
                memcpy(st->body + 1, payload, len);
        st->len = len + 1;
        bb->n++;
        bb->bytes += len + 1;
        if (bb->bytes >= S3_STAGE_MAX)
                return send_staged(s, bb);
        return 0;
}

static int s3_flush(struct blob *b, struct blob_batch *bb)
{
        return send_staged(s3_of(b), bb);
}

/* A request without a body on chunk h (key in rq). 0 or -errno. */
static int chunk_request(struct s3 *s, const char *method, const struct hash *h, struct s3_req *rq)
{
        int r;

        memset(rq, 0, sizeof(*rq));
        rq->method = method;
        r = chunk_key(s, h, rq->key, sizeof(rq->key));
        if (r < 0)
                return r;
        return s3_request(s, rq);
}

static int s3_get(struct blob *b, const struct hash *h, struct buf *out, uint8_t *enc)
{
        struct s3 *s = s3_of(b);
        struct s3_req rq;
        int r;

        memset(&rq, 0, sizeof(rq));
        rq.method = "GET";
        rq.max_resp = S3_BODY_MAX;
        r = chunk_key(s, h, rq.key, sizeof(rq.key));
        if (r == 0)
                r = s3_request(s, &rq);
        if (r < 0)
                goto out;
        if (rq.status == 404) {
                r = -ENOENT;
                goto out;
        }
        if (rq.status != 200) {
                r = s3_status_error(s, &rq, "fetching the chunk");
                goto out;
        }
        if (rq.resp.len < 1 || rq.resp.data[0] > FRAME_ENC_ZSTD) {
                r = err_set(-EBADMSG, "S3: chunk %s/%s: bad header", s->bucket, rq.key);
                goto out;
        }
        *enc = rq.resp.data[0];
        buf_reset(out);
        r = buf_append(out, rq.resp.data + 1, rq.resp.len - 1);
out:
        s3_req_done(&rq);
        return r;
}

static int s3_exists(struct blob *b, const struct hash *h)
{
        struct s3 *s = s3_of(b);
        struct s3_req rq;
        int r;

        r = chunk_request(s, "HEAD", h, &rq);
        if (r == 0) {
                if (rq.status == 200)
                        r = 1;
                else if (rq.status != 404)
                        r = s3_status_error(s, &rq, "looking up the chunk");
        }
        s3_req_done(&rq);
        return r;
}

/* S3 answers a DELETE of an absent key with 204 like any other, so a HEAD
 * first tells -ENOENT apart (the GC counts what it freed); a chunk that
 * vanishes in between is removed all the same. */
static int s3_remove(struct blob *b, const struct hash *h)
{
        struct s3 *s = s3_of(b);
        struct s3_req rq;
        int r;

        r = s3_exists(b, h);
        if (r <= 0)
                return r == 0 ? -ENOENT : r;
        r = chunk_request(s, "DELETE", h, &rq);
        if (r == 0) {
                if (rq.status == 404)
                        r = -ENOENT;
                else if (rq.status != 204 && rq.status != 200)
                        r = s3_status_error(s, &rq, "removing the chunk");
        }
        s3_req_done(&rq);
        return r;
}

static int s3_claim(struct blob *b)
{
        (void)b; /* see the top: the metadata store's cluster lock serves */
        return 0;
}

static void s3_close(struct blob *b)
{
        struct s3 *s = s3_of(b);

        if (!s)
                return;
        s3_http_cleanup(s);
        free(s->endpoint);
        free(s->bucket);
        free(s->region);
        free(s->prefix);
        if (s->userpwd)
                memset(s->userpwd, 0, strlen(s->userpwd));
        free(s->userpwd);
        free(s->sigv4);
        free(s);
}

static const struct blob_ops s3_ops = {
    .batch_new = s3_batch_new,
    .put = s3_put,
    .flush = s3_flush,
    .batch_free = s3_batch_free,
    .get = s3_get,
    .exists = s3_exists,
    .remove = s3_remove,
    .claim = s3_claim,
    .close = s3_close,
};

/* ---- the URL ---- */

static int valid_bucket(const char *b)
{
        size_t n = strlen(b), i;

        if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
                return 0;
        for (i = 0; i < n; i++)
                if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-' ||
                      b[i] == '.'))
                        return 0;
        return strstr(b, "..") == NULL;
}

static int valid_region(const char *r)
{
        size_t n = strlen(r);

        if (n == 0 || n > 63)
                return 0;
        for (; *r; r++)
                if (!isalnum((unsigned char)*r) && *r != '-' && *r != '_')
                        return 0;
        return 1;
}

/* Printable ASCII, no userinfo, query or fragment, non-empty host. */
static int valid_endpoint(const char *e)
{
        const char *host;

        if (strncmp(e, "http://", 7) == 0)
                host = e + 7;
        else if (strncmp(e, "https://", 8) == 0)
                host = e + 8;
        else
                return 0;
        if (!*host || *host == '/' || *host == ':')
                return 0;
        for (; *e; e++)
                if (*e <= ' ' || *e >= 127 || strchr("@?#\\\"", *e))
                        return 0;
        return 1;
}

/* Segments of [A-Za-z0-9._-], joined by single '/', no "." or "..". */
static int valid_prefix(const char *p)
{
        const char *seg = p;

        if (!*p || *p == '/' || strlen(p) > 200)
                return 0;
        for (;; p++) {
                if (*p == '/' || !*p) {
                        size_t n = (size_t)(p - seg);
                        if ((n == 0 && *p) || (n == 1 && seg[0] == '.') ||
                            (n == 2 && seg[0] == '.' && seg[1] == '.'))
                                return 0;
                        if (!*p)
                                return 1;
                        seg = p + 1;
                } else if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) {
                        return 0;
                }
        }
}

/* Decodes %XX in s[0..n) into a new string. NULL (with a message) when bad. */
static char *url_decode(const char *s, size_t n, int *r)
{
        char *out = malloc(n + 1), *o = out;
        size_t i;

        if (!out) {
                *r = -ENOMEM;
                return NULL;
        }
        for (i = 0; i < n; i++) {
                if (s[i] != '%') {
                        *o++ = s[i];
                        continue;
                }
                if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                    !isxdigit((unsigned char)s[i + 2])) {
                        free(out);
                        *r = err_set(-EINVAL, "S3 URL: bad %%-escape in '%.*s'", (int)n, s);
                        return NULL;
                }
                {
                        char hx[3] = {s[i + 1], s[i + 2], 0};
                        *o++ = (char)strtol(hx, NULL, 16);
                }
                i += 2;
        }
        *o = 0;
        if (strlen(out) != (size_t)(o - out)) {
                free(out);
                *r = err_set(-EINVAL, "S3 URL: NUL byte in a parameter");
                return NULL;
        }
        return out;
}

#define URL_FORM "s3://BUCKET?endpoint=http://HOST:PORT&region=REGION[&prefix=P]"

/* Splits url into s's bucket, endpoint, region and prefix. */
static int parse_url(struct s3 *s, const char *url)
{
        const char *p, *q, *amp, *eq;
        char **slot;
        int r = 0;

        if (strncmp(url, "s3://", 5) != 0)
                return err_set(-EINVAL, "S3 URL '%s' must start with s3:// (" URL_FORM ")", url);
        p = url + 5;
        q = strchr(p, '?');
        s->bucket = strndup(p, q ? (size_t)(q - p) : strlen(p));
        if (!s->bucket)
                return -ENOMEM;
        if (!valid_bucket(s->bucket))
                return err_set(-EINVAL,
                               "S3 URL: bad bucket name '%s' (3-63 of a-z 0-9 . -, starting and "
                               "ending with a letter or digit)",
                               s->bucket);
        for (p = q ? q + 1 : NULL; p && *p; p = amp ? amp + 1 : NULL) {
                amp = strchr(p, '&');
                eq = memchr(p, '=', amp ? (size_t)(amp - p) : strlen(p));
                if (!eq || eq == p)
                        return err_set(-EINVAL, "S3 URL: parameter '%.*s' is not NAME=VALUE",
                                       (int)(amp ? amp - p : (long)strlen(p)), p);
                if ((size_t)(eq - p) == 8 && strncmp(p, "endpoint", 8) == 0)
                        slot = &s->endpoint;
                else if ((size_t)(eq - p) == 6 && strncmp(p, "region", 6) == 0)
                        slot = &s->region;
                else if ((size_t)(eq - p) == 6 && strncmp(p, "prefix", 6) == 0)
                        slot = &s->prefix;
                else
                        return err_set(-EINVAL,
                                       "S3 URL: unknown parameter '%.*s' (known: endpoint, "
                                       "region, prefix; credentials go in FERRY_S3_ACCESS_KEY "
                                       "and FERRY_S3_SECRET_KEY)",
                                       (int)(eq - p), p);
                if (*slot)
                        return err_set(-EINVAL, "S3 URL: parameter '%.*s' given twice",
                                       (int)(eq - p), p);
                *slot = url_decode(eq + 1, amp ? (size_t)(amp - eq - 1) : strlen(eq + 1), &r);
                if (!*slot)
                        return r;
                if (!**slot)
                        return err_set(-EINVAL, "S3 URL: parameter '%.*s' is empty", (int)(eq - p),
                                       p);
        }
        if (!s->endpoint)
                return err_set(-EINVAL, "S3 URL '%s' lacks endpoint= (" URL_FORM ")", url);
        if (!s->region)
                return err_set(-EINVAL, "S3 URL '%s' lacks region= (" URL_FORM ")", url);
        while (strlen(s->endpoint) > 8 && s->endpoint[strlen(s->endpoint) - 1] == '/')
                s->endpoint[strlen(s->endpoint) - 1] = 0;
        if (!valid_endpoint(s->endpoint))
                return err_set(-EINVAL,
                               "S3 URL: bad endpoint '%s' (http:// or https:// then host[:port], "
                               "no credentials, query or fragment)",
                               s->endpoint);
        if (!valid_region(s->region))
                return err_set(-EINVAL, "S3 URL: bad region '%s' (letters, digits, - and _)",
                               s->region);
        if (s->prefix) {
                size_t n = strlen(s->prefix);
                char *np;

                if (s->prefix[n - 1] == '/')
                        s->prefix[--n] = 0;
                if (!valid_prefix(s->prefix))
                        return err_set(-EINVAL,
                                       "S3 URL: bad prefix '%s' (segments of A-Z a-z 0-9 . _ - "
                                       "joined by '/')",
                                       s->prefix);
                np = realloc(s->prefix, n + 2);
                if (!np)
                        return -ENOMEM;
                s->prefix = np;
                memcpy(s->prefix + n, "/", 2);
        } else {
                s->prefix = strdup("");
                if (!s->prefix)
                        return -ENOMEM;
        }
        return 0;
}

/* The credentials from the environment, into s->userpwd. */
static int load_credentials(struct s3 *s)
{
        const char *ak = getenv("FERRY_S3_ACCESS_KEY"), *sk = getenv("FERRY_S3_SECRET_KEY");
        size_t n;

        if (!ak || !*ak || !sk || !*sk)
                return err_set(-EINVAL, "S3 chunk store: set FERRY_S3_ACCESS_KEY and "
                                        "FERRY_S3_SECRET_KEY in the environment (credentials "
                                        "are never taken from the URL)");
        if (strchr(ak, ':'))
                return err_set(-EINVAL, "S3 chunk store: FERRY_S3_ACCESS_KEY contains ':'");
        n = strlen(ak) + strlen(sk) + 2;
        s->userpwd = malloc(n);
        if (!s->userpwd)
                return -ENOMEM;
        snprintf(s->userpwd, n, "%s:%s", ak, sk);
        n = strlen(s->region) + 16;
        s->sigv4 = malloc(n);
        if (!s->sigv4)
                return -ENOMEM;
        snprintf(s->sigv4, n, "aws:amz:%s:s3", s->region);
        return 0;
}

/* HEAD the bucket; PUT it when missing. */
static int ensure_bucket(struct s3 *s)
{
        struct s3_req rq;
        int r;

        memset(&rq, 0, sizeof(rq));
        rq.method = "HEAD";
        r = s3_request(s, &rq);
        if (r < 0 || rq.status == 200)
                goto out;
        if (rq.status != 404) {
                r = s3_status_error(s, &rq, "opening the bucket");
                goto out;
        }
        s3_req_done(&rq);
        memset(&rq, 0, sizeof(rq));
        rq.method = "PUT";
        r = s3_request(s, &rq);
        if (r < 0)
                goto out;
        if (rq.status == 200)
                goto out;
        if (rq.status == 409 && rq.resp.data &&
            strstr((char *)rq.resp.data, "BucketAlreadyOwnedByYou"))
                goto out;
        r = s3_status_error(s, &rq, "creating the bucket");
out:
        s3_req_done(&rq);
        return r;
}

int blob_s3_open(const char *url, struct blob **out)
{
        struct s3 *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->base.ops = &s3_ops;
        s->tries = S3_TRIES;
        s->parallel = S3_PARALLEL;
        s->connect_ms = S3_CONNECT_MS;
        s->timeout_ms = S3_TIMEOUT_MS;
        r = parse_url(s, url);
        if (r == 0)
                r = load_credentials(s);
        if (r == 0)
                r = s3_http_init(s);
        if (r == 0)
                r = ensure_bucket(s);
        if (r < 0) {
                s3_close(&s->base);
                return r;
        }
        *out = &s->base;
        return 0;
}
