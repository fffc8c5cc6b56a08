/* Unit tests for the changes feed's patches on the client (pull_apply.c):
 * an entry whose chunk list came as "patch" against "patch_base" is
 * rebuilt from the index's list when the index holds exactly that version,
 * with no request to the server, and the download is queued with the
 * rebuilt list; when the index holds another version of the path, or none,
 * or the patch does not fit its list, the whole entry is fetched with GET
 * /api/v1/file (a scripted server, fakesrv.c) and applied instead; a
 * server that answers that fetch with a patch again is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "fakesrv.h"
#include "hash.h"
#include "ignore.h"
#include "index.h"
#include "patch.h"
#include "pull_apply.h"
#include "remote.h"
#include "rules.h"
#include "sync.h"
#include "testutil.h"

#define NCH 30
#define CH_SIZE 1000

struct fixture {
        struct config cfg;
        struct sync_ctx s;
        struct sync_options o;
        struct fakesrv *srv;
        struct dl_job *jobs;
        size_t njobs, capjobs;
        const char *file_answer; /* GET /api/v1/file's JSON */
};

static int handler(void *ud, const struct fakesrv_request *req, struct buf *out)
{
        struct fixture *fx = ud;

        if (strncmp(req->path, "/api/v1/file?", 13) != 0 || !fx->file_answer)
                return 404;
        return buf_append(out, fx->file_answer, strlen(fx->file_answer)) < 0 ? 500 : 200;
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        char *db = NULL;

        assert_non_null(fx);
        fx->cfg.root = testutil_mkdtemp_alloc("pullpatch");
        assert_non_null(fx->cfg.root);
        fx->cfg.device_name = strdup("laptop");
        assert_true(asprintf(&db, "%s/.ferry", fx->cfg.root) > 0);
        assert_int_equal(mkdir(db, 0700), 0);
        free(db);
        assert_true(asprintf(&db, "%s/.ferry/index.db", fx->cfg.root) > 0);
        fx->s.cfg = &fx->cfg;
        fx->s.opts = &fx->o;
        assert_int_equal(index_open(db, &fx->s.idx), 0);
        free(db);
        assert_int_equal(rules_load(fx->cfg.root, &fx->s.rules), 0);
        assert_int_equal(ignore_load(fx->cfg.root, &fx->s.ignore), 0);
        assert_int_equal(fakesrv_start(handler, fx, &fx->srv), 0);
        assert_int_equal(remote_new(fakesrv_url(fx->srv), "token", &fx->s.remote), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        for (size_t i = 0; i < fx->njobs; i++)
                dl_job_free(&fx->jobs[i]);
        free(fx->jobs);
        remote_free(fx->s.remote);
        fakesrv_stop(fx->srv);
        index_close(fx->s.idx);
        rules_free(fx->s.rules);
        ignore_free(fx->s.ignore);
        assert_int_equal(testutil_rm_rf(fx->cfg.root), 0);
        free(fx->cfg.root);
        free(fx->cfg.device_name);
        free(fx);
        return 0;
}

/* Chunks "k0".."k<NCH-1>", with chunk at (when >= 0) named "new". */
static void list_of(int at, struct manifest *m)
{
        char name[16];

        for (int i = 0; i < NCH; i++) {
                struct hash h;

                snprintf(name, sizeof(name), i == at ? "new" : "k%d", i);
                hash_buf(name, strlen(name), &h);
                assert_int_equal(manifest_add(m, &h, CH_SIZE), 0);
        }
}

/* The index holds big.bin as the version seq, with list_of(-1). */
static void index_holds(struct fixture *fx, int64_t seq)
{
        struct manifest m = MANIFEST_INIT;
        struct index_entry e = {0};

        list_of(-1, &m);
        e.path = "big.bin";
        e.kind = KIND_FILE;
        e.size = m.size;
        e.mode = 0644;
        e.seq = seq;
        hash_buf("v1", 2, &e.hash);
        assert_int_equal(index_put(fx->s.idx, &e, &m), 0);
        manifest_free(&m);
}

/* big.bin at seq 7 (list_of(12)): with its chunks (whole) or as a patch
 * against base. A new reference. */
static json_t *entry_v2(int whole, int64_t base)
{
        struct manifest v1 = MANIFEST_INIT, v2 = MANIFEST_INIT;
        struct patch_region d;
        char hex[HASH_HEX_LEN + 1];
        json_t *o;

        list_of(-1, &v1);
        list_of(12, &v2);
        hash_buf("v2", 2, &v2.file_hash);
        hash_to_hex(&v2.file_hash, hex);
        o = json_pack("{s:s, s:I, s:b, s:s, s:I, s:I, s:I, s:s}", "path", "big.bin", "seq",
                      (json_int_t)7, "deleted", 0, "kind", "file", "size", (json_int_t)v2.size,
                      "mtime_ns", (json_int_t)1000, "mode", (json_int_t)0644, "hash", hex);
        assert_non_null(o);
        if (whole) {
                json_object_set_new(o, "chunks", manifest_to_json(&v2));
        } else {
                patch_diff(&v1, &v2, &d);
                json_object_set_new(o, "patch_base", json_integer(base));
                json_object_set_new(o, "patch", patch_to_json(&v2, &d));
        }
        manifest_free(&v1);
        manifest_free(&v2);
        return o;
}

static int apply_json(struct fixture *fx, json_t *o)
{
        int r = pull_apply_entry(&fx->s, o, &fx->jobs, &fx->njobs, &fx->capjobs);

        json_decref(o);
        return r;
}

/* The one queued job is big.bin at seq 7 with list_of(12). */
static void assert_job_v2(struct fixture *fx)
{
        struct manifest v2 = MANIFEST_INIT;

        list_of(12, &v2);
        assert_int_equal(fx->njobs, 1);
        assert_string_equal(fx->jobs[0].path, "big.bin");
        assert_int_equal(fx->jobs[0].seq, 7);
        assert_int_equal(fx->jobs[0].m.n, v2.n);
        for (size_t i = 0; i < v2.n; i++)
                assert_true(hash_equal(&fx->jobs[0].m.chunks[i].hash, &v2.chunks[i].hash));
        manifest_free(&v2);
}

static void test_patch_on_held_version(void **state)
{
        struct fixture *fx = *state;

        index_holds(fx, 5);
        assert_int_equal(apply_json(fx, entry_v2(0, 5)), 0);
        assert_job_v2(fx);
        assert_int_equal(fakesrv_count(fx->srv), 0);
}

static void test_patch_on_other_version(void **state)
{
        struct fixture *fx = *state;
        char *whole;
        json_t *w = entry_v2(1, 0);

        whole = json_dumps(w, 0);
        json_decref(w);
        fx->file_answer = whole;
        index_holds(fx, 4); /* not the version the patch is against */
        assert_int_equal(apply_json(fx, entry_v2(0, 5)), 0);
        assert_job_v2(fx);
        assert_int_equal(fakesrv_count_of(fx->srv, "GET", "/api/v1/file"), 1);
        free(whole);
}

static void test_patch_without_index(void **state)
{
        struct fixture *fx = *state;
        char *whole;
        json_t *w = entry_v2(1, 0);

        whole = json_dumps(w, 0);
        json_decref(w);
        fx->file_answer = whole;
        assert_int_equal(apply_json(fx, entry_v2(0, 5)), 0);
        assert_job_v2(fx);
        assert_int_equal(fakesrv_count_of(fx->srv, "GET", "/api/v1/file"), 1);
        free(whole);
}

static void test_patch_that_does_not_fit(void **state)
{
        struct fixture *fx = *state;
        json_t *o = entry_v2(0, 5), *w = entry_v2(1, 0);
        char *whole = json_dumps(w, 0);

        json_decref(w);
        fx->file_answer = whole;
        index_holds(fx, 5);
        /* an edit past the end of the held list */
        assert_int_equal(json_object_set_new(o, "patch", json_loads("[[99, 1, []]]", 0, NULL)), 0);
        assert_int_equal(apply_json(fx, o), 0);
        assert_job_v2(fx);
        assert_int_equal(fakesrv_count_of(fx->srv, "GET", "/api/v1/file"), 1);
        free(whole);
}

static void test_fetch_answered_with_patch(void **state)
{
        struct fixture *fx = *state;
        json_t *w = entry_v2(0, 5);
        char *again = json_dumps(w, 0);

        json_decref(w);
        fx->file_answer = again;
        assert_int_equal(apply_json(fx, entry_v2(0, 5)), -EPROTO);
        assert_int_equal(fx->njobs, 0);
        free(again);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_patch_on_held_version, setup, teardown),
            cmocka_unit_test_setup_teardown(test_patch_on_other_version, setup, teardown),
            cmocka_unit_test_setup_teardown(test_patch_without_index, setup, teardown),
            cmocka_unit_test_setup_teardown(test_patch_that_does_not_fit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_fetch_answered_with_patch, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
