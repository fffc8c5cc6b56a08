/* Unit tests for what a sync round (sync.c, push.c, pull.c) tells the
 * server about transfers, against a scripted server (fakesrv.c): a round
 * that changes nothing makes exactly one request (the changes listing: the
 * 100,000-file no-op sync is benchmarked); an upload announces its files
 * before any chunk goes, reports progress after the chunk body and before
 * the commit, and reports applied_seq once afterwards, not again; the
 * download policy is sent once per change; under "wait" the round lists the
 * other devices' unfinished uploads into .ferry/waiting.json (its own left
 * out), unless asked not to; an entry refused for an unsafe path is
 * reported as a failed download with the reason; a server without records
 * (404) costs the upload nothing and the next quiet round no request. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fakesrv.h"
#include "fsutil.h"
#include "sync.h"
#include "testutil.h"
#include "waiting.h"

#define SELF "0123456789abcdef0123456789abcdef"
#define OTHER "fedcba9876543210fedcba9876543210"

struct world {
        struct fakesrv *srv;
        char *root;
        struct config cfg;
        int64_t seq;
        json_t *entries; /* what /changes lists */
        int old_server;  /* 404 for transfer records and downloads */
        int interleave;  /* another device commits just before each commit */
        /* > 0: /changes serves entries (kept, seq order) this many at a
         * time after since=, with "more"; fail_since: 500 for that since */
        int page;
        long long fail_since;
};

static void answer(struct buf *out, json_t *j)
{
        char *text = json_dumps(j, JSON_COMPACT);

        buf_append_str(out, text);
        free(text);
        json_decref(j);
}

static void commit(struct world *w, const json_t *req, struct buf *out)
{
        json_t *results = json_array(), *c;
        size_t i;

        if (w->interleave) {
                w->seq++;
                json_array_append_new(w->entries,
                                      json_pack("{s:s, s:I, s:b, s:s, s:s}", "path", "theirs",
                                                "seq", (json_int_t)w->seq, "deleted", 0, "kind",
                                                "dir", "device", OTHER));
        }
        json_array_foreach(json_object_get(req, "changes"), i, c)
        {
                json_t *e = json_deep_copy(c);

                w->seq++;
                json_object_set_new(e, "seq", json_integer(w->seq));
                json_object_set_new(e, "deleted", json_false());
                json_object_set_new(e, "device", json_string(SELF));
                json_object_del(e, "chunks");
                json_object_set_new(e, "chunks_omitted", json_true());
                json_array_append_new(w->entries, e);
                json_array_append_new(
                    results, json_pack("{s:s, s:I}", "status", "ok", "seq", (json_int_t)w->seq));
        }
        answer(out, json_pack("{s:I, s:o}", "seq", (json_int_t)w->seq, "results", results));
}

/* The other device's half-uploaded batch, and one of this device's. */
static json_t *transfers(void)
{
        return json_pack(
            "{s:[{s:s, s:s, s:b, s:i}, {s:s, s:s, s:b, s:i}], s:[{s:i, s:s, s:s, s:[{s:s, s:s, "
            "s:i, s:i}, {s:s, s:s, s:i, s:i, s:s}, {s:s, s:s, s:i, s:i}]}, {s:i, s:s, s:s, "
            "s:[{s:s, s:s, s:i, s:i}]}], s:[]}",
            "devices", "id", OTHER, "name", "laptop", "online", 0, "last_seen", 1763733725, "id",
            SELF, "name", "me", "online", 1, "last_seen", 1763733725, "batches", "id", 2, "device",
            OTHER, "device_name", "laptop", "records", "path", "a", "status", "pending", "size",
            100, "bytes_done", 0, "path", "b", "status", "failed", "size", 50, "bytes_done", 10,
            "reason", "connection lost", "path", "c", "status", "complete", "size", 5, "bytes_done",
            5, "id", 1, "device", SELF, "device_name", "me", "records", "path", "z", "status",
            "uploading", "size", 1, "bytes_done", 0, "downloads");
}

static int handler(void *ud, const struct fakesrv_request *req, struct buf *out)
{
        struct world *w = ud;
        json_t *j = json_loads(req->body, 0, NULL);

        if (w->old_server && (!strncmp(req->path, "/api/v1/transfers", 17) ||
                              !strcmp(req->path, "/api/v1/downloads"))) {
                json_decref(j);
                buf_append_str(out, "{\"error\": \"no such endpoint\", \"code\": \"not_found\"}");
                return 404;
        }
        if (!strncmp(req->path, "/api/v1/changes", 15) && w->page > 0) {
                const char *q = strstr(req->path, "since=");
                long long since = q ? atoll(q + 6) : 0;
                json_t *pg = json_array(), *e;
                size_t i, left = 0;

                json_decref(j);
                if (since == w->fail_since) {
                        json_decref(pg);
                        buf_append_str(out, "{\"error\": \"boom\", \"code\": \"internal\"}");
                        return 500;
                }
                json_array_foreach(w->entries, i, e)
                {
                        if (json_integer_value(json_object_get(e, "seq")) <= since)
                                continue;
                        if (json_array_size(pg) < (size_t)w->page)
                                json_array_append(pg, e);
                        else
                                left++;
                }
                answer(out, json_pack("{s:I, s:o, s:b}", "seq", (json_int_t)w->seq, "entries", pg,
                                      "more", left > 0));
                return 200;
        }
        if (!strncmp(req->path, "/api/v1/changes", 15)) {
                answer(out, json_pack("{s:I, s:O, s:b}", "seq", (json_int_t)w->seq, "entries",
                                      w->entries, "more", 0));
                json_array_clear(w->entries); /* each entry once */
        } else if (!strcmp(req->method, "GET") && !strncmp(req->path, "/api/v1/transfers", 17)) {
                answer(out, transfers());
        } else if (!strcmp(req->path, "/api/v1/transfers")) {
                json_t *recs = json_array(), *f;
                size_t i;

                json_array_foreach(json_object_get(j, "files"), i, f) json_array_append_new(
                    recs, json_pack("{s:i, s:O, s:s}", "id", 7 + (int)i, "path",
                                    json_object_get(f, "path"), "status", "pending"));
                answer(out, json_pack("{s:i, s:o}", "batch", 1, "records", recs));
        } else if (!strcmp(req->path, "/api/v1/chunks/missing")) {
                answer(out, json_pack("{s:O}", "missing", json_object_get(j, "hashes")));
        } else if (!strcmp(req->path, "/api/v1/commit")) {
                commit(w, j, out);
        } else {
                answer(out, json_pack("{s:b}", "ok", 1));
        }
        json_decref(j);
        return 200;
}

static int setup(void **state)
{
        struct world *w = calloc(1, sizeof(*w));

        if (!w || fakesrv_start(handler, w, &w->srv) < 0)
                return -1;
        w->root = testutil_mkdtemp_alloc("records");
        w->entries = json_array();
        w->cfg.root = strdup(w->root);
        w->cfg.server = strdup(fakesrv_url(w->srv));
        w->cfg.user = strdup("alice");
        w->cfg.device_id = strdup(SELF);
        w->cfg.device_name = strdup("me");
        w->cfg.token = strdup("ab");
        w->cfg.mass_delete_count = 50;
        w->cfg.mass_delete_percent = 25;
        if (!w->root || config_save(&w->cfg) < 0)
                return -1;
        *state = w;
        return 0;
}

static int teardown(void **state)
{
        struct world *w = *state;

        fakesrv_stop(w->srv);
        testutil_rm_rf(w->root);
        free(w->root);
        config_free(&w->cfg);
        json_decref(w->entries);
        free(w);
        return 0;
}

static void round_ok(struct world *w, const struct sync_options *o)
{
        struct sync_options none = {0};
        struct sync_stats st;

        assert_int_equal(sync_run(&w->cfg, o ? o : &none, &st), 0);
}

/* The index of the first request with this method and path, or -1. */
static ssize_t first(struct world *w, const char *method, const char *path)
{
        for (size_t i = 0; i < fakesrv_count(w->srv); i++) {
                struct fakesrv_request r;
                int same;

                fakesrv_get(w->srv, i, &r);
                same = !strcmp(r.method, method) && !strncmp(r.path, path, strlen(path)) &&
                       (r.path[strlen(path)] == '\0' || r.path[strlen(path)] == '?');
                free(r.body);
                if (same)
                        return (ssize_t)i;
        }
        return -1;
}

static json_t *body_at(struct world *w, ssize_t i)
{
        struct fakesrv_request r;
        json_t *j;

        assert_true(i >= 0);
        assert_int_equal(fakesrv_get(w->srv, (size_t)i, &r), 0);
        j = json_loads(r.body, 0, NULL);
        free(r.body);
        assert_non_null(j);
        return j;
}

static void test_noop_round_is_one_request(void **state)
{
        struct world *w = *state;

        round_ok(w, NULL);
        round_ok(w, NULL);
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        assert_int_equal(fakesrv_count(w->srv), 1);
        assert_int_equal(fakesrv_count_of(w->srv, "GET", "/api/v1/changes"), 1);
}

/* A file of more than one chunk body: announced, its chunks asked about
 * and sent, its progress reported once part of it is up (not when all of
 * it is: the commit says complete), committed, and the pull reported. */
static void test_upload_announces_reports_and_completes(void **state)
{
        struct world *w = *state;
        size_t size = TRANSFER_BODY_BYTES + TRANSFER_BODY_BYTES / 2;
        uint8_t *data = malloc(size);
        char p[1200];
        ssize_t ann, miss, chunks, prog, com, dl;
        json_int_t done;
        json_t *b;

        assert_non_null(data);
        round_ok(w, NULL);
        fakesrv_clear(w->srv);
        assert_int_equal(fsutil_random(data, size), 0);
        snprintf(p, sizeof(p), "%s/doc.bin", w->root);
        assert_int_equal(fsutil_write_atomic(p, data, size, 0644), 0);
        free(data);
        round_ok(w, NULL);
        ann = first(w, "POST", "/api/v1/transfers");
        miss = first(w, "POST", "/api/v1/chunks/missing");
        chunks = first(w, "POST", "/api/v1/chunks");
        prog = first(w, "POST", "/api/v1/transfers/progress");
        com = first(w, "POST", "/api/v1/commit");
        dl = first(w, "POST", "/api/v1/downloads");
        assert_true(ann >= 0 && ann < miss && miss < chunks && chunks < prog && prog < com &&
                    com < dl);
        b = body_at(w, prog);
        done = json_integer_value(
            json_object_get(json_array_get(json_object_get(b, "records"), 0), "bytes_done"));
        assert_true(done >= (json_int_t)TRANSFER_BODY_BYTES / 2 && done < (json_int_t)size);
        assert_int_equal(json_integer_value(json_object_get(
                             json_array_get(json_object_get(b, "records"), 0), "id")),
                         7);
        json_decref(b);
        b = body_at(w, dl);
        assert_int_equal(json_integer_value(json_object_get(b, "applied_seq")), w->seq);
        json_decref(b);
        /* committed: nothing cancelled or failed */
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/transfers/progress"), 1);
        /* and the next round is quiet again */
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        assert_int_equal(fakesrv_count(w->srv), 1);
}

/* A server without transfer records: the upload goes on, and the refused
 * download report is not repeated by rounds that change nothing. */
static void test_old_server(void **state)
{
        struct world *w = *state;
        char p[1200];

        w->old_server = 1;
        round_ok(w, NULL);
        snprintf(p, sizeof(p), "%s/a.txt", w->root);
        assert_int_equal(fsutil_write_atomic(p, "hello\n", 6, 0644), 0);
        round_ok(w, NULL);
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/commit"), 1);
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        assert_int_equal(fakesrv_count(w->srv), 1);
}

static void test_policy_wait_lists_waiting(void **state)
{
        struct world *w = *state;
        struct sync_options quiet = {.no_waiting = 1};
        struct sync_session *ss = NULL;
        struct sync_stats st;
        json_t *wj = NULL, *d;

        w->cfg.dl_policy = CONFIG_DL_WAIT;
        assert_int_equal(config_save(&w->cfg), 0);
        round_ok(w, NULL);
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/device"), 1);
        assert_int_equal(fakesrv_count_of(w->srv, "GET", "/api/v1/transfers"), 1);
        assert_int_equal(waiting_load(w->root, &wj), 0);
        assert_non_null(wj);
        assert_int_equal(json_array_size(json_object_get(wj, "devices")), 1);
        d = json_array_get(json_object_get(wj, "devices"), 0);
        assert_string_equal(json_string_value(json_object_get(d, "name")), "laptop");
        assert_int_equal(json_integer_value(json_object_get(d, "files")), 2);
        assert_int_equal(json_integer_value(json_object_get(d, "failed")), 1);
        assert_int_equal(waiting_files(wj), 2);
        json_decref(wj);

        /* sent once; in a session, a round asked not to list does not
         * (the session's first round lists anyway) */
        assert_int_equal(sync_session_open(&w->cfg, &ss), 0);
        assert_int_equal(sync_session_round(ss, &quiet, &st), 0);
        assert_int_equal(sync_session_waiting(ss), 2);
        fakesrv_clear(w->srv);
        assert_int_equal(sync_session_round(ss, &quiet, &st), 0);
        assert_int_equal(fakesrv_count(w->srv), 1);
        sync_session_close(ss);

        /* back to skip: told once, the list goes */
        w->cfg.dl_policy = CONFIG_DL_SKIP;
        assert_int_equal(config_save(&w->cfg), 0);
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/device"), 1);
        assert_int_equal(fakesrv_count_of(w->srv, "GET", "/api/v1/transfers"), 0);
        assert_int_equal(waiting_load(w->root, &wj), 0);
        assert_null(wj);
}

static void test_refused_entry_reported_failed(void **state)
{
        struct world *w = *state;
        char p[1200];
        ssize_t dl;
        json_t *b, *f;

        round_ok(w, NULL);
        snprintf(p, sizeof(p), "%s/link", w->root);
        assert_int_equal(symlink("/tmp", p), 0);
        /* the link is uploaded by this round's push, then the server lists a
         * file under it */
        round_ok(w, NULL);
        w->seq++;
        json_array_append_new(
            w->entries, json_pack("{s:s, s:I, s:b, s:s, s:i, s:I, s:i, s:s, s:[]}", "path",
                                  "link/x", "seq", (json_int_t)w->seq, "deleted", 0, "kind", "file",
                                  "size", 0, "mtime_ns", (json_int_t)1, "mode", 420, "hash",
                                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                                  "7852b855",
                                  "chunks"));
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        dl = first(w, "POST", "/api/v1/downloads");
        b = body_at(w, dl);
        f = json_array_get(json_object_get(b, "failed"), 0);
        assert_string_equal(json_string_value(json_object_get(f, "path")), "link/x");
        assert_int_equal(json_integer_value(json_object_get(f, "seq")), w->seq);
        assert_non_null(strstr(json_string_value(json_object_get(f, "reason")), "not applied"));
        assert_int_equal(json_integer_value(json_object_get(b, "applied_seq")), w->seq);
        json_decref(b);
}

/* The since= of the first GET /changes, or -1. */
static long long changes_since(struct world *w)
{
        for (size_t i = 0; i < fakesrv_count(w->srv); i++) {
                struct fakesrv_request r;
                const char *q;
                long long since = -1;

                fakesrv_get(w->srv, i, &r);
                q = strstr(r.path, "since=");
                if (!strncmp(r.path, "/api/v1/changes", 15) && q)
                        since = atoll(q + 6);
                free(r.body);
                if (since >= 0)
                        return since;
        }
        return -1;
}

/* After its commits the device does not read its own entries back when
 * they are all that happened since its last pull; when another device
 * committed in between, it reads from its last pull on, and gets that. */
static void test_own_commits_not_fetched_back(void **state)
{
        struct world *w = *state;
        char p[1200];
        int64_t before;

        round_ok(w, NULL);
        before = w->seq;
        for (int i = 0; i < 3; i++) {
                snprintf(p, sizeof(p), "%s/own%d.txt", w->root, i);
                assert_int_equal(fsutil_write_atomic(p, "mine\n", 5, 0644), 0);
        }
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        assert_int_equal(w->seq, before + 3);
        assert_int_equal(changes_since(w), w->seq); /* past its own three */
        /* another device's commit lands between: read back from before */
        w->interleave = 1;
        before = w->seq;
        snprintf(p, sizeof(p), "%s/own9.txt", w->root);
        assert_int_equal(fsutil_write_atomic(p, "mine too\n", 9, 0644), 0);
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        assert_int_equal(w->seq, before + 2);
        assert_int_equal(changes_since(w), before);
        snprintf(p, sizeof(p), "%s/theirs", w->root);
        assert_true(access(p, F_OK) == 0); /* the other device's entry came */
}

/* The since= of every GET /changes, in request order, into out (at most
 * cap); how many. */
static size_t all_since(struct world *w, long long *out, size_t cap)
{
        size_t n = 0;

        for (size_t i = 0; i < fakesrv_count(w->srv) && n < cap; i++) {
                struct fakesrv_request r;
                const char *q;

                fakesrv_get(w->srv, i, &r);
                if (!strncmp(r.path, "/api/v1/changes", 15) && (q = strstr(r.path, "since=")))
                        out[n++] = atoll(q + 6);
                free(r.body);
        }
        return n;
}

/* Many pages: each asked for once, in order (the next while the current is
 * applied, on another connection), all applied; a page that fails stops
 * the round with the error, after what came before was applied, and the
 * next round goes on from there. */
static void test_pages_asked_ahead_in_order(void **state)
{
        struct world *w = *state;
        long long since[16];
        char p[1200];
        struct stat st;
        size_t n;

        round_ok(w, NULL);
        w->page = 2;
        w->fail_since = 4;
        for (int i = 1; i <= 7; i++) {
                char name[16];

                snprintf(name, sizeof(name), "dir%d", i);
                w->seq++;
                json_array_append_new(w->entries,
                                      json_pack("{s:s, s:I, s:b, s:s, s:s}", "path", name, "seq",
                                                (json_int_t)w->seq, "deleted", 0, "kind", "dir",
                                                "device", OTHER));
        }
        fakesrv_clear(w->srv);
        {
                struct sync_options none = {0};
                struct sync_stats stats;

                assert_true(sync_run(&w->cfg, &none, &stats) < 0);
        }
        /* pages since 0 and 2 applied; the one since 4 failed */
        for (int i = 1; i <= 7; i++) {
                snprintf(p, sizeof(p), "%s/dir%d", w->root, i);
                assert_int_equal(stat(p, &st) == 0, i <= 4);
        }
        n = all_since(w, since, 16);
        assert_true(n >= 3);
        assert_int_equal(since[0], 0);
        assert_int_equal(since[1], 2);
        assert_int_equal(since[2], 4);

        w->fail_since = -1;
        fakesrv_clear(w->srv);
        round_ok(w, NULL);
        for (int i = 1; i <= 7; i++) {
                snprintf(p, sizeof(p), "%s/dir%d", w->root, i);
                assert_int_equal(stat(p, &st), 0);
        }
        /* from where it stopped, each page once: 4, 6 */
        n = all_since(w, since, 16);
        assert_int_equal(n, 2);
        assert_int_equal(since[0], 4);
        assert_int_equal(since[1], 6);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_noop_round_is_one_request, setup, teardown),
            cmocka_unit_test_setup_teardown(test_own_commits_not_fetched_back, setup, teardown),
            cmocka_unit_test_setup_teardown(test_upload_announces_reports_and_completes, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_policy_wait_lists_waiting, setup, teardown),
            cmocka_unit_test_setup_teardown(test_old_server, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refused_entry_reported_failed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pages_asked_ahead_in_order, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
