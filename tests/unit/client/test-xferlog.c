/* Unit tests for xferlog (the client's side of transfer records) against a
 * scripted server (fakesrv.c): an announce carries exactly the file puts
 * (path, kind, size, hash) and gives each its record id; more than 10,000
 * files go in several announces; progress reports only what advanced, for
 * announced files, and no more often than the gap (what comes sooner goes
 * with the next report); the end of a pass reports cancelled, failed (with the
 * reason) and the still-open records, never a committed one, and never
 * twice; a server that refuses records does not stop the push, one that
 * cannot be reached does; the download report and the policy have the
 * documented shapes. And the upload side: transfer_upload calls body_sent
 * once after each chunk body reached the server (never while one is on
 * the wire), with marks that end at each file's size, also with two
 * connections (in order, on the connection that posted the body). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "fakesrv.h"
#include "fsutil.h"
#include "manifest.h"
#include "testutil.h"
#include "transfer.h"
#include "xferlog.h"

struct world {
        struct fakesrv *srv;
        struct remote *rem;
        int refuse; /* answer 501 to transfer record requests */
        int64_t next_id;
        int fail_post;   /* answer 500 to this chunk body on (1: the first; 0: none) */
        int chunk_posts; /* chunk bodies so far (atomic: two connections) */
};

static int handler(void *ud, const struct fakesrv_request *req, struct buf *out)
{
        struct world *w = ud;
        json_t *j = json_loads(req->body, 0, NULL), *ans = NULL, *v;
        int status = 200;
        size_t i;

        if (w->refuse && (strstr(req->path, "/transfers") || strstr(req->path, "/downloads"))) {
                buf_append_str(out, "{\"error\": \"not implemented\", \"code\": \"internal\"}");
                json_decref(j);
                return 501;
        }
        if (!strcmp(req->path, "/api/v1/transfers")) {
                ans = json_pack("{s:i, s:[]}", "batch", 1, "records");
                json_array_foreach(json_object_get(j, "files"), i, v) json_array_append_new(
                    json_object_get(ans, "records"),
                    json_pack("{s:I, s:O, s:s}", "id", (json_int_t)w->next_id++, "path",
                              json_object_get(v, "path"), "status", "pending"));
        } else if (!strcmp(req->path, "/api/v1/chunks") && w->fail_post &&
                   __atomic_add_fetch(&w->chunk_posts, 1, __ATOMIC_SEQ_CST) >= w->fail_post) {
                buf_append_str(out, "{\"error\": \"disk full\", \"code\": \"internal\"}");
                json_decref(j);
                return 500;
        } else if (!strcmp(req->path, "/api/v1/chunks/missing")) {
                ans = json_pack("{s:O}", "missing", json_object_get(j, "hashes"));
        } else {
                ans = json_pack("{s:b}", "ok", 1);
        }
        char *text = json_dumps(ans, JSON_COMPACT);

        buf_append_str(out, text);
        free(text);
        json_decref(ans);
        json_decref(j);
        return status;
}

static int setup(void **state)
{
        struct world *w = calloc(1, sizeof(*w));

        if (!w || fakesrv_start(handler, w, &w->srv) < 0 ||
            remote_new(fakesrv_url(w->srv), "ab", &w->rem) < 0)
                return -1;
        w->next_id = 100;
        *state = w;
        return 0;
}

static int teardown(void **state)
{
        struct world *w = *state;

        remote_free(w->rem);
        fakesrv_stop(w->srv);
        free(w);
        return 0;
}

/* The JSON body of request i. */
static json_t *body_of(struct world *w, size_t i)
{
        struct fakesrv_request r;
        json_t *j;

        assert_int_equal(fakesrv_get(w->srv, i, &r), 0);
        j = json_loads(r.body, 0, NULL);
        free(r.body);
        assert_non_null(j);
        return j;
}

static void path_of(struct world *w, size_t i, char *out, size_t len)
{
        struct fakesrv_request r;

        assert_int_equal(fakesrv_get(w->srv, i, &r), 0);
        snprintf(out, len, "%s %s", r.method, r.path);
        free(r.body);
}

/* n changes: puts of files f0..f(n-1) (size 10 * i), plus a directory and
 * a delete that must never be announced. */
static struct local_change *changes_of(size_t n, struct local_change ***ptrs)
{
        struct local_change *c = calloc(n + 2, sizeof(*c));

        *ptrs = calloc(n + 2, sizeof(**ptrs));
        assert_non_null(c);
        assert_non_null(*ptrs);
        for (size_t i = 0; i < n + 2; i++) {
                char p[32];

                snprintf(p, sizeof(p), i == n ? "dir" : i == n + 1 ? "gone" : "f%zu", i);
                c[i].path = strdup(p);
                c[i].op = i == n + 1 ? CHANGE_DELETE : CHANGE_PUT;
                c[i].kind = i == n ? KIND_DIR : KIND_FILE;
                c[i].size = 10 * i;
                c[i].manifest.file_hash.b[0] = (uint8_t)i;
                (*ptrs)[i] = &c[i];
        }
        return c;
}

static void changes_free(struct local_change *c, struct local_change **ptrs, size_t n)
{
        for (size_t i = 0; i < n + 2; i++)
                free(c[i].path);
        free(c);
        free(ptrs);
}

static void test_announce(void **state)
{
        struct world *w = *state;
        struct local_change **ptrs, *c = changes_of(3, &ptrs);
        struct xferlog *xl = NULL;
        char hex[HASH_HEX_LEN + 1], line[600];
        json_t *b, *f;
        int skip[5] = {0, 1, 0, 0, 0};

        assert_int_equal(xferlog_new(&xl), 0);
        assert_int_equal(xferlog_announce(xl, w->rem, ptrs, 5, skip), 0);
        assert_int_equal(fakesrv_count(w->srv), 1);
        path_of(w, 0, line, sizeof(line));
        assert_string_equal(line, "POST /api/v1/transfers");
        b = body_of(w, 0);
        assert_int_equal(json_array_size(json_object_get(b, "files")), 2); /* f1 skipped */
        f = json_array_get(json_object_get(b, "files"), 1);
        assert_string_equal(json_string_value(json_object_get(f, "path")), "f2");
        assert_string_equal(json_string_value(json_object_get(f, "kind")), "file");
        assert_int_equal(json_integer_value(json_object_get(f, "size")), 20);
        hash_to_hex(&c[2].manifest.file_hash, hex);
        assert_string_equal(json_string_value(json_object_get(f, "hash")), hex);
        json_decref(b);
        assert_int_equal(xferlog_count(xl), 2);
        assert_int_equal(xferlog_id(xl, "f0"), 100);
        assert_int_equal(xferlog_id(xl, "f2"), 101);
        assert_int_equal(xferlog_id(xl, "f1"), 0);
        assert_int_equal(xferlog_id(xl, "dir"), 0);
        xferlog_free(xl);
        changes_free(c, ptrs, 3);

        /* nothing to announce: no request */
        fakesrv_clear(w->srv);
        c = changes_of(0, &ptrs);
        assert_int_equal(xferlog_new(&xl), 0);
        assert_int_equal(xferlog_announce(xl, w->rem, ptrs, 2, NULL), 0);
        assert_int_equal(fakesrv_count(w->srv), 0);
        assert_int_equal(xferlog_finish(xl, w->rem, NULL), 0);
        assert_int_equal(fakesrv_count(w->srv), 0);
        xferlog_free(xl);
        changes_free(c, ptrs, 0);
}

static void test_announce_batches(void **state)
{
        struct world *w = *state;
        size_t n = XFERLOG_ANNOUNCE_BATCH + 1;
        struct local_change **ptrs, *c = changes_of(n, &ptrs);
        struct xferlog *xl = NULL;
        json_t *b;

        assert_int_equal(xferlog_new(&xl), 0);
        assert_int_equal(xferlog_announce(xl, w->rem, ptrs, n + 2, NULL), 0);
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/transfers"), 2);
        b = body_of(w, 0);
        assert_int_equal(json_array_size(json_object_get(b, "files")), XFERLOG_ANNOUNCE_BATCH);
        json_decref(b);
        b = body_of(w, 1);
        assert_int_equal(json_array_size(json_object_get(b, "files")), 1);
        json_decref(b);
        assert_int_equal(xferlog_count(xl), n);
        /* ids follow the answers, whatever the sort order inside */
        assert_int_equal(xferlog_id(xl, "f0"), 100);
        assert_int_equal(xferlog_id(xl, "f10000"), 100 + XFERLOG_ANNOUNCE_BATCH);
        xferlog_free(xl);
        changes_free(c, ptrs, n);
}

static void test_progress_and_finish(void **state)
{
        struct world *w = *state;
        struct local_change **ptrs, *c = changes_of(5, &ptrs);
        /* f1 is 10 bytes, f2 20 (changes_of) */
        struct transfer_mark m[3] = {{"f1", 5}, {"unknown", 5}, {"f2", 15}};
        struct xferlog *xl = NULL;
        json_t *b, *recs, *it;
        size_t i;

        assert_int_equal(xferlog_new(&xl), 0);
        assert_int_equal(xferlog_announce(xl, w->rem, ptrs, 7, NULL), 0);
        fakesrv_clear(w->srv);

        xferlog_progress(xl, w->rem, m, 3);
        assert_int_equal(fakesrv_count(w->srv), 1);
        b = body_of(w, 0);
        recs = json_object_get(b, "records");
        assert_int_equal(json_array_size(recs), 2);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(recs, 0), "id")),
                         xferlog_id(xl, "f1"));
        assert_int_equal(json_integer_value(json_object_get(json_array_get(recs, 1), "bytes_done")),
                         15);
        json_decref(b);
        /* nothing advanced: no request */
        xferlog_set_progress_gap(xl, 0);
        xferlog_progress(xl, w->rem, m, 3);
        assert_int_equal(fakesrv_count(w->srv), 1);
        /* sooner than the gap: kept for the next report, which has both */
        xferlog_set_progress_gap(xl, 60000);
        m[0].done = 6;
        xferlog_progress(xl, w->rem, m, 1);
        m[2].done = 16;
        xferlog_progress(xl, w->rem, m + 2, 1);
        assert_int_equal(fakesrv_count(w->srv), 1);
        xferlog_set_progress_gap(xl, 0);
        m[2].done = 17;
        xferlog_progress(xl, w->rem, m + 2, 1);
        assert_int_equal(fakesrv_count(w->srv), 2);
        b = body_of(w, 1);
        recs = json_object_get(b, "records");
        assert_int_equal(json_array_size(recs), 2);
        json_array_foreach(recs, i, it)
        {
                int64_t id = json_integer_value(json_object_get(it, "id"));

                assert_int_equal(json_integer_value(json_object_get(it, "bytes_done")),
                                 id == xferlog_id(xl, "f1") ? 6 : 17);
        }
        json_decref(b);
        /* all of f2 sent: left to its commit, no report */
        m[2].done = 20;
        xferlog_progress(xl, w->rem, m + 2, 1);
        assert_int_equal(fakesrv_count(w->srv), 2);

        xferlog_committed(xl, "f0");
        xferlog_drop(xl, "f1", NULL);
        xferlog_drop(xl, "f2", "refused by the server: bad");
        xferlog_drop(xl, "f0", "too late: committed"); /* ignored */
        fakesrv_clear(w->srv);
        assert_int_equal(xferlog_finish(xl, w->rem, "interrupted"), 0);
        assert_int_equal(fakesrv_count(w->srv), 1);
        b = body_of(w, 0);
        recs = json_object_get(b, "records");
        assert_int_equal(json_array_size(recs), 4); /* f1 f2 f3 f4 */
        json_array_foreach(recs, i, it)
        {
                int64_t id = json_integer_value(json_object_get(it, "id"));
                const char *st = json_string_value(json_object_get(it, "status"));
                const char *why = json_string_value(json_object_get(it, "reason"));

                assert_int_not_equal(id, xferlog_id(xl, "f0"));
                if (id == xferlog_id(xl, "f1")) {
                        assert_string_equal(st, "cancelled");
                        assert_null(why);
                } else if (id == xferlog_id(xl, "f2")) {
                        assert_string_equal(st, "failed");
                        assert_string_equal(why, "refused by the server: bad");
                } else {
                        assert_string_equal(st, "failed");
                        assert_string_equal(why, "interrupted");
                }
        }
        json_decref(b);
        /* reported once */
        assert_int_equal(xferlog_finish(xl, w->rem, NULL), 0);
        assert_int_equal(fakesrv_count(w->srv), 1);
        xferlog_free(xl);
        changes_free(c, ptrs, 5);
}

static void test_refused_and_unreachable(void **state)
{
        struct world *w = *state;
        struct local_change **ptrs, *c = changes_of(2, &ptrs);
        struct transfer_mark m = {"f1", 10};
        struct remote *dead = NULL;
        struct xferlog *xl = NULL;

        w->refuse = 1;
        assert_int_equal(xferlog_new(&xl), 0);
        assert_int_equal(xferlog_announce(xl, w->rem, ptrs, 4, NULL), 0);
        assert_int_equal(xferlog_count(xl), 0);
        fakesrv_clear(w->srv);
        xferlog_progress(xl, w->rem, &m, 1);
        assert_int_equal(xferlog_finish(xl, w->rem, NULL), 0);
        assert_int_equal(fakesrv_count(w->srv), 0); /* no records, nothing reported */
        assert_int_equal(xferlog_report_downloads(w->rem, 5, NULL, NULL), -EIO);
        xferlog_free(xl);
        w->refuse = 0;

        /* a closed port: the push must fail like its upload would */
        assert_int_equal(remote_new("http://127.0.0.1:1", "ab", &dead), 0);
        assert_int_equal(xferlog_new(&xl), 0);
        assert_int_equal(xferlog_announce(xl, dead, ptrs, 4, NULL), -ECONNREFUSED);
        err_clear();
        xferlog_free(xl);
        remote_free(dead);
        changes_free(c, ptrs, 2);
}

static void test_downloads_and_policy(void **state)
{
        struct world *w = *state;
        json_t *failed = json_pack("[{s:s, s:i, s:s}]", "path", "a/b", "seq", 7, "reason", "x");
        json_t *b, *empty = json_array();
        char line[600];

        assert_int_equal(xferlog_report_downloads(w->rem, 42, failed, empty), 0);
        json_decref(empty);
        path_of(w, 0, line, sizeof(line));
        assert_string_equal(line, "POST /api/v1/downloads");
        b = body_of(w, 0);
        assert_int_equal(json_integer_value(json_object_get(b, "applied_seq")), 42);
        assert_true(json_equal(json_object_get(b, "failed"), failed));
        assert_null(json_object_get(b, "done")); /* empty lists are left out */
        json_decref(b);
        assert_int_equal(xferlog_report_downloads(w->rem, -1, NULL, failed), 0);
        b = body_of(w, 1);
        assert_null(json_object_get(b, "applied_seq"));
        assert_true(json_equal(json_object_get(b, "done"), failed));
        json_decref(b);
        json_decref(failed);

        assert_int_equal(xferlog_send_policy(w->rem, CONFIG_DL_WAIT), 0);
        path_of(w, 2, line, sizeof(line));
        assert_string_equal(line, "POST /api/v1/device");
        b = body_of(w, 2);
        assert_string_equal(json_string_value(json_object_get(b, "download_incomplete")), "wait");
        json_decref(b);
}

/* ---- body_sent from the upload ---- */

struct seen {
        struct world *w;
        int calls;
        int early; /* a call came before its body reached the server */
        struct remote *rems[8];
        char paths[64][32];
        uint64_t done[64];
        size_t n;
};

static void on_body(void *ud, struct remote *rem, const struct transfer_mark *m, size_t n)
{
        struct seen *s = ud;

        if (s->calls < 8)
                s->rems[s->calls] = rem;
        s->calls++;
        if (fakesrv_count_of(s->w->srv, "POST", "/api/v1/chunks") < (size_t)s->calls)
                s->early = 1;
        for (size_t i = 0; i < n && s->n < 64; i++, s->n++) {
                snprintf(s->paths[s->n], sizeof(s->paths[s->n]), "%s", m[i].path);
                s->done[s->n] = m[i].done;
        }
}

/* Uploads three files (9 MiB: three bodies) on `connections` connections
 * and checks the reports: one per body, in order, only forward, each file
 * ending at its size. With w->fail_post set, checks only that the upload
 * fails. */
static void upload_three(struct world *w, int connections, struct seen *seen)
{
        int r;
        struct transfer t = {
            .remote = w->rem, .body_sent = on_body, .ud = seen, .connections = connections};
        struct local_change c[3] = {{0}}, *ptrs[3];
        uint64_t sizes[3] = {3u << 20, 6u << 20, 1000};
        int skip[3] = {0, 0, 0};
        char *root = testutil_mkdtemp_alloc("xferlog");
        uint8_t *data = malloc(6u << 20);

        assert_non_null(root);
        assert_non_null(data);
        t.root = root;
        for (int i = 0; i < 3; i++) {
                char p[1200];
                int fd;

                assert_int_equal(fsutil_random(data, sizes[i]), 0);
                snprintf(p, sizeof(p), "%s/f%d", root, i);
                assert_int_equal(fsutil_write_atomic(p, data, sizes[i], 0644), 0);
                fd = open(p, O_RDONLY);
                assert_true(fd >= 0);
                assert_int_equal(manifest_from_fd(fd, &c[i].manifest, NULL, NULL), 0);
                close(fd);
                c[i].op = CHANGE_PUT;
                c[i].kind = KIND_FILE;
                c[i].size = sizes[i];
                c[i].path = strdup(p + strlen(root) + 1);
                ptrs[i] = &c[i];
        }
        r = transfer_upload(&t, ptrs, 3, skip);
        if (w->fail_post) {
                assert_int_equal(r, -EIO);
                for (int i = 0; i < 3; i++) {
                        manifest_free(&c[i].manifest);
                        free(c[i].path);
                }
                goto out;
        }
        assert_int_equal(r, 0);
        /* 9 MiB in bodies of about 4 MiB: three bodies, one call each */
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/chunks"), 3);
        assert_int_equal(seen->calls, 3);
        assert_false(seen->early);
        assert_int_equal(t.bytes_sent > (9u << 20), 1);
        for (int i = 0; i < 3; i++) {
                uint64_t last = 0, prev = 0;

                for (size_t k = 0; k < seen->n; k++) {
                        if (strcmp(seen->paths[k], c[i].path) != 0)
                                continue;
                        assert_true(seen->done[k] > prev); /* only forward */
                        prev = last = seen->done[k];
                }
                assert_int_equal(last, sizes[i]);
                manifest_free(&c[i].manifest);
                free(c[i].path);
        }
out:
        free(data);
        testutil_rm_rf(root);
        free(root);
}

static void test_upload_reports_after_each_body(void **state)
{
        struct world *w = *state;
        struct seen seen = {.w = w};

        upload_three(w, 1, &seen);
        for (int i = 0; i < 3; i++) /* one connection: the transfer's */
                assert_ptr_equal(seen.rems[i], w->rem);
}

/* Two connections: bodies alternate between the transfer's remote and a
 * clone, and the reports still come in order, each on the connection that
 * posted its body. */
static void test_upload_two_connections(void **state)
{
        struct world *w = *state;
        struct seen seen = {.w = w};
        struct remote_stats st;

        upload_three(w, 2, &seen);
        assert_ptr_equal(seen.rems[0], w->rem);
        assert_ptr_not_equal(seen.rems[1], w->rem);
        assert_ptr_equal(seen.rems[2], w->rem);
        /* the clone's requests count in the transfer's remote */
        remote_stats(w->rem, &st);
        assert_true(st.bytes_up > (9 << 20));
        assert_int_equal(st.requests, (int64_t)fakesrv_count(w->srv));
}

/* Every body after the first to reach the server fails: the upload
 * returns the server's error and nothing at or after a failed body is
 * reported. The first body (on the transfer's remote) almost always
 * arrives first and is reported; should the clone's body overtake it, the
 * first fails and nothing is reported. */
static void test_upload_two_connections_failure(void **state)
{
        struct world *w = *state;
        struct seen seen = {.w = w};

        w->fail_post = 2;
        upload_three(w, 2, &seen);
        assert_true(seen.calls <= 1);
        if (seen.calls == 1)
                assert_ptr_equal(seen.rems[0], w->rem);
        for (size_t k = 0; k < seen.n; k++) /* f0 (3 MiB) and the start of f1 */
                assert_true(seen.done[k] <= (4u << 20));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_announce, setup, teardown),
            cmocka_unit_test_setup_teardown(test_announce_batches, setup, teardown),
            cmocka_unit_test_setup_teardown(test_progress_and_finish, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refused_and_unreachable, setup, teardown),
            cmocka_unit_test_setup_teardown(test_downloads_and_policy, setup, teardown),
            cmocka_unit_test_setup_teardown(test_upload_reports_after_each_body, setup, teardown),
            cmocka_unit_test_setup_teardown(test_upload_two_connections, setup, teardown),
            cmocka_unit_test_setup_teardown(test_upload_two_connections_failure, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
