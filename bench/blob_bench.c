/* blob_bench: chunk store throughput, the local folder (blob_fs) against
 * S3 (blob_s3, when FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY and
 * FERRY_S3_SECRET_KEY are set, e.g. by `eval "$(scripts/ceph.sh start
 * DIR)"`). It PUTs N chunks of 64 KiB random data in batches the way an
 * upload request does (put() each, one flush()), then GETs them back one at
 * a time, then again from T threads at once (ferryd serves many fetches in
 * parallel), and prints MiB/s and chunks/s for each. Random data: neither
 * store can compress it, so the figures are of moving bytes.
 *
 *   blob_bench [-n CHUNKS] [-b BATCH] [-t THREADS] [-d DIR]
 *
 * The chunks are removed afterwards (a fresh folder under DIR or $TMPDIR;
 * a fresh bucket "ferry-bench-PID" on S3).
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"

#define CHUNK (64 * 1024)

struct opts {
        int n, batch, threads;
        const char *dir;
};

struct bench {
        struct blob *b;
        uint8_t *data; /* n chunks */
        struct hash *h;
        int n;
        int next; /* for the threads: the next chunk to fetch */
        int failed;
        pthread_mutex_t mu;
};

static double now_sec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void row(const char *store, const char *op, int n, double sec)
{
        double mib = (double)n * CHUNK / (1024.0 * 1024.0);

        printf("| %-6s | %-14s | %6d | %8.1f | %7.3f | %8.1f | %9.0f |\n", store, op, n, mib, sec,
               mib / sec, n / sec);
        fflush(stdout);
}

static int put_all(struct bench *bn, int batch)
{
        struct blob_batch *bb = NULL;
        int i, r = 0;

        for (i = 0; i < bn->n && r == 0; i++) {
                if (!bb)
                        r = bn->b->ops->batch_new(bn->b, &bb);
                if (r == 0)
                        r = bn->b->ops->put(bn->b, bb, &bn->h[i], FRAME_ENC_RAW,
                                            bn->data + (size_t)i * CHUNK, CHUNK);
                if (r == 0 && ((i + 1) % batch == 0 || i + 1 == bn->n)) {
                        r = bn->b->ops->flush(bn->b, bb);
                        bn->b->ops->batch_free(bn->b, bb);
                        bb = NULL;
                }
        }
        if (bb)
                bn->b->ops->batch_free(bn->b, bb);
        return r;
}

/* Fetches chunk i and checks it. 0 or -errno. */
static int get_one(struct bench *bn, int i, struct buf *out)
{
        uint8_t enc;
        int r = bn->b->ops->get(bn->b, &bn->h[i], out, &enc);

        if (r == 0 && (out->len != CHUNK || memcmp(out->data, bn->data + (size_t)i * CHUNK, CHUNK)))
                r = err_set(-EBADMSG, "chunk %d came back different", i);
        return r;
}

static void *get_worker(void *arg)
{
        struct bench *bn = arg;
        struct buf out = BUF_INIT;
        int i;

        for (;;) {
                pthread_mutex_lock(&bn->mu);
                i = bn->failed ? bn->n : bn->next++;
                pthread_mutex_unlock(&bn->mu);
                if (i >= bn->n)
                        break;
                if (get_one(bn, i, &out) < 0) {
                        fprintf(stderr, "blob_bench: get: %s\n", err_msg(-EIO));
                        pthread_mutex_lock(&bn->mu);
                        bn->failed = 1;
                        pthread_mutex_unlock(&bn->mu);
                }
        }
        buf_free(&out);
        return NULL;
}

static int run(const char *name, struct blob *b, uint8_t *data, struct hash *h,
               const struct opts *o)
{
        struct bench bn = {.b = b, .data = data, .h = h, .n = o->n};
        struct buf out = BUF_INIT;
        pthread_t *t = NULL;
        char label[32];
        double t0;
        int i, r;

        pthread_mutex_init(&bn.mu, NULL);
        t0 = now_sec();
        r = put_all(&bn, o->batch);
        if (r < 0) {
                fprintf(stderr, "blob_bench: %s: put: %s\n", name, err_msg(r));
                goto out;
        }
        snprintf(label, sizeof(label), "PUT (batch %d)", o->batch);
        row(name, label, o->n, now_sec() - t0);

        t0 = now_sec();
        for (i = 0; i < o->n && r == 0; i++)
                r = get_one(&bn, i, &out);
        if (r < 0) {
                fprintf(stderr, "blob_bench: %s: get: %s\n", name, err_msg(r));
                goto out;
        }
        row(name, "GET", o->n, now_sec() - t0);

        t = calloc((size_t)o->threads, sizeof(*t));
        if (!t) {
                r = -ENOMEM;
                goto out;
        }
        t0 = now_sec();
        for (i = 0; i < o->threads; i++)
                pthread_create(&t[i], NULL, get_worker, &bn);
        for (i = 0; i < o->threads; i++)
                pthread_join(t[i], NULL);
        if (bn.failed) {
                r = -EIO;
                goto out;
        }
        snprintf(label, sizeof(label), "GET x%d threads", o->threads);
        row(name, label, o->n, now_sec() - t0);
out:
        for (i = 0; i < o->n; i++)
                b->ops->remove(b, &h[i]);
        free(t);
        buf_free(&out);
        pthread_mutex_destroy(&bn.mu);
        return r;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
        (void)st;
        (void)flag;
        (void)f;
        return remove(p);
}

static int usage(void)
{
        fprintf(stderr, "usage: blob_bench [-n CHUNKS] [-b BATCH] [-t THREADS] [-d DIR]\n");
        return 2;
}

int main(int argc, char **argv)
{
        struct opts o = {.n = 1024, .batch = 64, .threads = 8, .dir = NULL};
        char tmpl[4096], url[1024];
        const char *ep = getenv("FERRY_S3_ENDPOINT"), *region = getenv("FERRY_S3_REGION");
        struct hash *h = NULL;
        uint8_t *data = NULL;
        struct blob *b = NULL;
        int c, i, r = 0;

        while ((c = getopt(argc, argv, "n:b:t:d:")) != -1) {
                if (c == 'n')
                        o.n = atoi(optarg);
                else if (c == 'b')
                        o.batch = atoi(optarg);
                else if (c == 't')
                        o.threads = atoi(optarg);
                else if (c == 'd')
                        o.dir = optarg;
                else
                        return usage();
        }
        if (o.n < 1 || o.batch < 1 || o.threads < 1)
                return usage();
        data = malloc((size_t)o.n * CHUNK);
        h = calloc((size_t)o.n, sizeof(*h));
        if (!data || !h || fsutil_random(data, (size_t)o.n * CHUNK) < 0) {
                fprintf(stderr, "blob_bench: out of memory\n");
                return 1;
        }
        for (i = 0; i < o.n; i++)
                hash_buf(data + (size_t)i * CHUNK, CHUNK, &h[i]);

        printf("%d chunks of 64 KiB random data (%.0f MiB), puts in batches of %d\n\n", o.n,
               (double)o.n * CHUNK / 1048576.0, o.batch);
        printf(
            "| store  | operation      | chunks |      MiB |       s |    MiB/s |  chunks/s |\n");
        printf(
            "|--------|----------------|--------|----------|---------|----------|-----------|\n");

        snprintf(tmpl, sizeof(tmpl), "%s/ferry-blob-bench-XXXXXX",
                 o.dir ? o.dir : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp"));
        if (!mkdtemp(tmpl)) {
                perror("blob_bench: mkdtemp");
                return 1;
        }
        r = blob_fs_open(tmpl, &b);
        if (r == 0)
                r = run("folder", b, data, h, &o);
        else
                fprintf(stderr, "blob_bench: %s: %s\n", tmpl, err_msg(r));
        blob_close(b);
        b = NULL;
        nftw(tmpl, rm_one, 16, FTW_DEPTH | FTW_PHYS);

        if (r == 0 && ep && *ep) {
                snprintf(url, sizeof(url), "s3://ferry-bench-%d?endpoint=%s&region=%s",
                         (int)getpid(), ep, region && *region ? region : "default");
                r = blob_s3_open(url, &b);
                if (r == 0)
                        r = run("S3", b, data, h, &o);
                else
                        fprintf(stderr, "blob_bench: %s: %s\n", url, err_msg(r));
                blob_close(b);
        } else if (r == 0) {
                printf("\n(S3 skipped: FERRY_S3_ENDPOINT is not set)\n");
        }
        free(data);
        free(h);
        return r < 0 ? 1 : 0;
}
