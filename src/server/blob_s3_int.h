/* blob_s3_int: what the two halves of the S3 chunk store share: the store
 * itself (blob_s3.c: URL, keys, the blob_ops) and its HTTP engine
 * (blob_s3_http.c: signed requests through libcurl, connection reuse,
 * parallel batches, retries). Nothing outside these two files includes it.
 */
#ifndef FERRY_BLOB_S3_INT_H
#define FERRY_BLOB_S3_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "buf.h"

#define S3_KEY_MAX 512
#define S3_POOL_MAX 32 /* idle easy handles kept for reuse */

struct s3 {
        struct blob base; /* first: struct blob * is cast back */
        char *endpoint;   /* "http://host:port[/path]", no trailing '/' */
        char *bucket;
        char *region;
        char *prefix;  /* "" or ending in '/' */
        char *userpwd; /* "ACCESS:SECRET" for libcurl, from the environment */
        char *sigv4;   /* "aws:amz:REGION:s3" */
        long connect_ms, timeout_ms;
        int tries;    /* attempts per request, >= 1 */
        int parallel; /* transfers at once in a batch */
        int curl_inited;
        CURLSH *share; /* connections and DNS, shared by every handle */
        pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
        pthread_mutex_t pool_mu;
        CURL *pool[S3_POOL_MAX];
        int npool;
};

/* One request. The caller fills the first block; s3_request*() the rest. */
struct s3_req {
        const char *method;   /* "GET", "PUT", "HEAD", "DELETE" */
        char key[S3_KEY_MAX]; /* the object key, "" for the bucket itself */
        const uint8_t *body;  /* PUT only */
        size_t body_len;
        size_t max_resp; /* a larger 2xx body fails the request */

        long status;     /* HTTP status, 0 when none came */
        struct buf resp; /* the response body (error bodies truncated) */
        CURLcode cc;     /* the last transport result */
        int too_big;     /* the 2xx body passed max_resp */
        int tries;       /* attempts made */
        char err[CURL_ERROR_SIZE];

        /* private to blob_s3_http.c */
        CURL *easy;
        struct curl_slist *hdrs;
        size_t body_off;
        char sha256[65];
};

/* Sets up the shared connection cache and the handle pool. 0 or -errno. */
int s3_http_init(struct s3 *s);
void s3_http_cleanup(struct s3 *s);

/* Runs rq, retried with backoff (5xx, 429, transport errors): 0 once a
 * final HTTP status is in rq->status (whatever it is: the caller judges),
 * or -EIO with a message when no answer came after every try. Frees
 * nothing: call s3_req_done(). */
int s3_request(struct s3 *s, struct s3_req *rq);
/* Runs the n requests rqs[] in parallel (s->parallel at once), each
 * retried as s3_request does; 0 when each has a final status, else the
 * first failure. */
int s3_request_many(struct s3 *s, struct s3_req **rqs, size_t n);
void s3_req_done(struct s3_req *rq);

/* Records and returns the error for a request that ended with an
 * unexpected status: -EACCES for 403, -EIO otherwise, with a message
 * naming what was done, the bucket and key, the status and S3's code. */
int s3_status_error(struct s3 *s, const struct s3_req *rq, const char *what);

#endif
