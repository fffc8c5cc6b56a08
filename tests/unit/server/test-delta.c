/* test-delta: the chunk-list shortcuts of the protocol, on a real store
 * (SQLite, or PostgreSQL with FERRY_TEST_METADATA=pg, see srvtest.h):
 *   - patch.c's wire codec: a patch made by patch_diff/patch_to_json and
 *     read back by patch_from_json rebuilds the new list; malformed
 *     patches are refused with a message; edits out of order are refused;
 *   - the changes feed's patches (delta.c): an entry whose version at since
 *     is a retained live file goes as "patch_base" + "patch" that rebuild
 *     its list; it goes whole when there is no version at since, when that
 *     version is a tombstone, when it was pruned, when the path changed
 *     more often since than the walk looks back, and when nothing is gained;
 *   - a commit put by "same_as" (journal.c): copies the named version's
 *     chunks; answers missing_chunks with an empty list when that version
 *     is unknown, another user's, a tombstone, or of another hash or size;
 *     invalid for a seq of 0. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api.h"
#include "delta.h"
#include "err.h"
#include "journal.h"
#include "meta.h"
#include "patch.h"
#include "srvtest.h"

#define DEV_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NCH 40 /* chunks of the big file: above DELTA_MIN_CHUNKS */

struct fix {
        char *dir;
        char *uri;
        struct meta *m;
        int64_t alice, bob;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        assert_int_equal(srvtest_meta_open(f->dir, &f->uri, &f->m), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &f->alice), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x", "h", 1, &f->bob), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        meta_close(f->m);
        srvtest_metadata_drop(f->uri);
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

/* The list of chunks "k0".."k<n-1>", except chunk at (when >= 0) named
 * "edit<tag>"; each 1,000 bytes. */
static void big_list(int n, int at, int tag, struct manifest *m)
{
        char name[32];

        for (int i = 0; i < n; i++) {
                struct hash h;

                if (i == at)
                        snprintf(name, sizeof(name), "edit%d", tag);
                else
                        snprintf(name, sizeof(name), "k%d", i);
                h = srvtest_hash(name);
                assert_int_equal(manifest_add(m, &h, 1000), 0);
        }
}

/* Commits path (on base) as big_list(n, at, tag) with those chunks held by
 * user; returns the new seq. */
static int64_t put_big(struct fix *f, int64_t user, const char *path, int64_t base, int n, int at,
                       int tag)
{
        struct journal_change c = {.op = JOURNAL_PUT,
                                   .path = path,
                                   .base = base,
                                   .kind = KIND_FILE,
                                   .mode = 0644,
                                   .has_hash = 1};
        struct journal_result res;
        char label[64];
        int64_t seq;

        big_list(n, at, tag, &c.manifest);
        for (size_t i = 0; i < c.manifest.n; i++)
                assert_int_equal(f->m->ops->chunk_add(f->m, user, &c.manifest.chunks[i].hash,
                                                      c.manifest.chunks[i].size),
                                 0);
        c.size = c.manifest.size;
        snprintf(label, sizeof(label), "file %d %d %d", n, at, tag);
        c.hash = srvtest_hash(label);
        assert_int_equal(journal_commit(f->m, user, DEV_A, &c, 1, &res, &seq), 0);
        assert_int_equal(res.status, JOURNAL_OK);
        seq = res.seq;
        journal_result_clear(&res);
        manifest_free(&c.manifest);
        return seq;
}

static int64_t delete_path(struct fix *f, const char *path, int64_t base)
{
        struct journal_change c = {.op = JOURNAL_DELETE, .path = path, .base = base};
        struct journal_result res;
        int64_t seq;

        assert_int_equal(journal_commit(f->m, f->alice, DEV_A, &c, 1, &res, &seq), 0);
        assert_int_equal(res.status, JOURNAL_OK);
        seq = res.seq;
        journal_result_clear(&res);
        return seq;
}

static int page_cb(const struct meta_entry *e, void *ud)
{
        json_t *o = api_entry_json(e, 1);

        assert_non_null(o);
        assert_int_equal(json_array_append_new(ud, o), 0);
        return 0;
}

/* Alice's changes since, every live file passed to delta_page; returns the
 * entry of path (a new reference). */
static json_t *feed_entry(struct fix *f, int64_t since, const char *path)
{
        json_t *arr = json_array(), *o, *found = NULL;
        size_t idx[64], n = 0, i;
        int more;

        assert_int_equal(journal_changes_since(f->m, f->alice, since, 100, page_cb, arr, &more), 0);
        json_array_foreach(arr, i, o)
        {
                if (!json_is_true(json_object_get(o, "deleted")) && n < 64)
                        idx[n++] = i;
        }
        assert_int_equal(delta_page(f->m, f->alice, since, arr, idx, n), 0);
        json_array_foreach(arr, i, o)
        {
                if (!strcmp(json_string_value(json_object_get(o, "path")), path))
                        found = json_incref(o);
        }
        json_decref(arr);
        assert_non_null(found);
        return found;
}

/* The list of o rebuilt from its patch against base (or read whole). */
static void rebuild(const json_t *o, const struct manifest *base, struct manifest *out)
{
        struct patch_edit *ed = NULL;
        size_t n = 0;

        if (!json_object_get(o, "patch")) {
                assert_int_equal(manifest_from_json(json_object_get(o, "chunks"), out), 0);
                return;
        }
        assert_null(json_object_get(o, "chunks"));
        assert_int_equal(patch_from_json(json_object_get(o, "patch"), &ed, &n), 0);
        assert_int_equal(patch_apply(base, ed, n, out), 0);
        patch_free(ed, n);
}

static void assert_same_list(const struct manifest *a, const struct manifest *b)
{
        assert_int_equal(a->n, b->n);
        for (size_t i = 0; i < a->n; i++) {
                assert_true(hash_equal(&a->chunks[i].hash, &b->chunks[i].hash));
                assert_int_equal(a->chunks[i].size, b->chunks[i].size);
        }
}

static void test_patch_codec(void **state)
{
        struct manifest base = MANIFEST_INIT, cur = MANIFEST_INIT, out = MANIFEST_INIT;
        struct patch_edit *ed = NULL, bad[2] = {{0}};
        struct patch_region d;
        size_t n = 0;
        json_t *p;
        const char *malformed[] = {"{}",
                                   "[1]",
                                   "[[0, 1]]",
                                   "[[-1, 0, []]]",
                                   "[[0, \"x\", []]]",
                                   "[[0, 0, [[\"zz\", 10]]]]",
                                   "[[0, 0, [[\"" /* short hash */
                                   "abcd\", 10]]]]"};

        (void)state;
        big_list(NCH, -1, 0, &base);
        big_list(NCH + 1, 7, 1, &cur); /* an edit and an append */
        patch_diff(&base, &cur, &d);
        assert_true(patch_worth(&cur, &d));
        p = patch_to_json(&cur, &d);
        assert_non_null(p);
        assert_int_equal(patch_from_json(p, &ed, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(patch_apply(&base, ed, n, &out), 0);
        assert_same_list(&out, &cur);
        patch_free(ed, n);
        json_decref(p);
        /* nothing gained: a list of a few chunks, or everything changed */
        manifest_free(&out);
        big_list(NCH, -1, 0, &out);
        patch_diff(&cur, &out, &d);
        assert_true(patch_worth(&out, &d));
        manifest_free(&cur);
        big_list(3, 1, 9, &cur);
        patch_diff(&base, &cur, &d);
        assert_false(patch_worth(&cur, &d));
        for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
                p = json_loads(malformed[i], 0, NULL);
                assert_non_null(p);
                ed = NULL;
                n = 0;
                err_clear();
                assert_int_equal(patch_from_json(p, &ed, &n), -EINVAL);
                assert_non_null(strstr(err_msg(-EINVAL), "patch"));
                assert_null(ed);
                json_decref(p);
        }
        /* out of order */
        bad[0].start = 5;
        bad[1].start = 4;
        manifest_free(&out);
        assert_int_equal(patch_apply(&base, bad, 2, &out), -EINVAL);
        manifest_free(&out);
        manifest_free(&base);
        manifest_free(&cur);
}

static void test_feed_patch(void **state)
{
        struct fix *f = *state;
        struct manifest v1 = MANIFEST_INIT, v2 = MANIFEST_INIT, got = MANIFEST_INIT;
        int64_t s1, s2, s3, small, since;
        json_t *o;

        s1 = put_big(f, f->alice, "big", 0, NCH, -1, 0);
        small = put_big(f, f->alice, "small", 0, 3, -1, 0);
        since = small; /* a device that applied through here holds v1 */
        s2 = put_big(f, f->alice, "big", s1, NCH, 20, 1);
        put_big(f, f->alice, "small", small, 3, 2, 1);
        big_list(NCH, -1, 0, &v1);
        big_list(NCH, 20, 1, &v2);

        o = feed_entry(f, since, "big");
        assert_int_equal(json_integer_value(json_object_get(o, "patch_base")), s1);
        assert_int_equal(json_integer_value(json_object_get(o, "seq")), s2);
        rebuild(o, &v1, &got);
        assert_same_list(&got, &v2);
        manifest_free(&got);
        json_decref(o);
        /* three chunks: nothing worth patching */
        o = feed_entry(f, since, "small");
        assert_null(json_object_get(o, "patch"));
        assert_non_null(json_object_get(o, "chunks"));
        json_decref(o);
        /* nothing at 0: a first sync gets lists */
        o = feed_entry(f, 0, "big");
        assert_null(json_object_get(o, "patch"));
        json_decref(o);

        /* deleted at since, then put again: the device holds no file */
        s3 = delete_path(f, "big", s2);
        since = s3;
        s3 = put_big(f, f->alice, "big", 0, NCH, 20, 2);
        o = feed_entry(f, since, "big");
        assert_null(json_object_get(o, "patch"));
        assert_non_null(json_object_get(o, "chunks"));
        json_decref(o);

        /* changed more often since than the walk looks back */
        since = s3;
        for (int i = 0; i < 20; i++)
                s3 = put_big(f, f->alice, "big", s3, NCH, 20, 10 + i);
        o = feed_entry(f, since, "big");
        assert_null(json_object_get(o, "patch"));
        json_decref(o);
        manifest_free(&v1);
        manifest_free(&v2);
}

static void test_feed_pruned(void **state)
{
        struct fix *f = *state;
        int64_t s1, s2, pruned = 0;
        json_t *o;

        s1 = put_big(f, f->alice, "big", 0, NCH, -1, 0);
        s2 = put_big(f, f->alice, "big", s1, NCH, 3, 1);
        o = feed_entry(f, s1, "big");
        assert_int_equal(json_integer_value(json_object_get(o, "patch_base")), s1);
        json_decref(o);
        /* keep one version a path: s1 goes, and with it the patch */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 0, 1, &pruned), 0);
        assert_int_equal(pruned, 1);
        o = feed_entry(f, s1, "big");
        assert_null(json_object_get(o, "patch"));
        assert_int_equal(json_array_size(json_object_get(o, "chunks")), NCH);
        assert_int_equal(json_integer_value(json_object_get(o, "seq")), s2);
        json_decref(o);
}

/* Commits a put of to (new) by same_as {path, seq} for user, with the hash
 * of big_list(NCH, at, tag) and size; returns the result. */
static struct journal_result put_same(struct fix *f, int64_t user, const char *to, const char *path,
                                      int64_t seq, int at, int tag, uint64_t size)
{
        struct journal_change c = {.op = JOURNAL_PUT,
                                   .path = to,
                                   .kind = KIND_FILE,
                                   .mode = 0644,
                                   .has_hash = 1,
                                   .size = size,
                                   .same_path = path,
                                   .same_seq = seq};
        struct journal_result res;
        char label[64];
        int64_t s;

        snprintf(label, sizeof(label), "file %d %d %d", NCH, at, tag);
        c.hash = srvtest_hash(label);
        assert_int_equal(journal_commit(f->m, user, DEV_A, &c, 1, &res, &s), 0);
        return res;
}

static int same_status(struct fix *f, int64_t user, const char *path, int64_t seq, int at, int tag,
                       uint64_t size)
{
        struct journal_result res = put_same(f, user, "copy", path, seq, at, tag, size);
        int st = res.status;

        if (st == JOURNAL_MISSING_CHUNKS)
                assert_int_equal(res.n_missing, 0);
        journal_result_clear(&res);
        return st;
}

static void test_same_as(void **state)
{
        struct fix *f = *state;
        struct meta_entry big = {0}, copy = {0};
        struct journal_result res;
        uint64_t size = NCH * 1000;
        int64_t s1, s2, tomb;

        s1 = put_big(f, f->alice, "big", 0, NCH, -1, 0);
        s2 = put_big(f, f->alice, "big", s1, NCH, 5, 1);
        /* unknown seq, another hash, another size, another user's space */
        assert_int_equal(same_status(f, f->alice, "big", s2 + 50, 5, 1, size),
                         JOURNAL_MISSING_CHUNKS);
        assert_int_equal(same_status(f, f->alice, "big", s2, -1, 0, size), JOURNAL_MISSING_CHUNKS);
        assert_int_equal(same_status(f, f->alice, "big", s2, 5, 1, size + 1),
                         JOURNAL_MISSING_CHUNKS);
        assert_int_equal(same_status(f, f->bob, "big", s2, 5, 1, size), JOURNAL_MISSING_CHUNKS);
        assert_int_equal(same_status(f, f->alice, "big", 0, 5, 1, size), JOURNAL_INVALID);
        assert_int_equal(journal_get(f->m, f->alice, "copy", &copy), -ENOENT);

        /* an older version that is still retained will do */
        res = put_same(f, f->alice, "copy", "big", s1, -1, 0, size);
        assert_int_equal(res.status, JOURNAL_OK);
        journal_result_clear(&res);
        assert_int_equal(f->m->ops->version_get(f->m, f->alice, "big", s1, &big), 0);
        assert_int_equal(journal_get(f->m, f->alice, "copy", &copy), 0);
        assert_int_equal(copy.chunks_len, big.chunks_len);
        assert_memory_equal(copy.chunks, big.chunks, big.chunks_len);
        meta_entry_clear(&copy);
        meta_entry_clear(&big);

        /* a tombstone is no content; the version before it still is */
        tomb = delete_path(f, "big", s2);
        assert_int_equal(same_status(f, f->alice, "big", tomb, 5, 1, size), JOURNAL_MISSING_CHUNKS);
        res = put_same(f, f->alice, "copy2", "big", s2, 5, 1, size);
        assert_int_equal(res.status, JOURNAL_OK);
        journal_result_clear(&res);
        assert_int_equal(f->m->ops->version_get(f->m, f->alice, "big", s2, &big), 0);
        assert_int_equal(journal_get(f->m, f->alice, "copy2", &copy), 0);
        assert_int_equal(copy.chunks_len, big.chunks_len);
        assert_memory_equal(copy.chunks, big.chunks, big.chunks_len);
        assert_int_equal(copy.size, size);
        assert_false(copy.deleted);
        meta_entry_clear(&copy);
        meta_entry_clear(&big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_patch_codec),
            cmocka_unit_test_setup_teardown(test_feed_patch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_feed_pruned, setup, teardown),
            cmocka_unit_test_setup_teardown(test_same_as, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
