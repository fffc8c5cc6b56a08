/* Unit tests for pull_apply_entry, without a server: how one entry from the
 * server meets the local folder. Directories and symlinks are created; a
 * deleted file that was synced goes to the trash, one edited here is kept
 * (the edit wins); unsynced local data in the way of a new version becomes
 * a conflict copy before the download is queued; paths that fail
 * path_validate() or lead through a symlink are refused and nothing is
 * written. */
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
#include "err.h"
#include "hash.h"
#include "index.h"
#include "localfs.h"
#include "path.h"
#include "pull.h"
#include "sync.h"
#include "testutil.h"

struct fixture {
        struct config cfg;
        struct sync_ctx s;
        struct sync_options o;
        char *other; /* a folder outside the synced one */
        struct dl_job *jobs;
        size_t njobs, capjobs;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        char *db = NULL;

        assert_non_null(fx);
        fx->cfg.root = testutil_mkdtemp_alloc("pull");
        assert_non_null(fx->cfg.root);
        fx->other = testutil_mkdtemp_alloc("pull-out");
        assert_non_null(fx->other);
        fx->cfg.device_name = strdup("laptop");
        assert_true(asprintf(&db, "%s/.ferry", fx->cfg.root) > 0);
        assert_int_equal(mkdir(db, 0700), 0);
        free(db);
        assert_true(asprintf(&db, "%s/.ferry/index.db", fx->cfg.root) > 0);
        fx->s.cfg = &fx->cfg;
        fx->s.opts = &fx->o;
        assert_int_equal(index_open(db, &fx->s.idx), 0);
        free(db);
        snprintf(fx->s.stamp, sizeof(fx->s.stamp), "20261121-140205");
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        for (size_t i = 0; i < fx->njobs; i++)
                dl_job_free(&fx->jobs[i]);
        free(fx->jobs);
        for (size_t i = 0; i < fx->s.nmoved; i++) {
                free(fx->s.moved_from[i]);
                free(fx->s.moved_to[i]);
        }
        free(fx->s.moved_from);
        free(fx->s.moved_to);
        index_close(fx->s.idx);
        assert_int_equal(testutil_rm_rf(fx->cfg.root), 0);
        assert_int_equal(testutil_rm_rf(fx->other), 0);
        free(fx->other);
        free(fx->cfg.root);
        free(fx->cfg.device_name);
        free(fx);
        return 0;
}

static int apply(struct fixture *fx, const char *json)
{
        json_error_t e;
        json_t *j = json_loads(json, 0, &e);
        int r;

        assert_non_null(j);
        r = pull_apply_entry(&fx->s, j, &fx->jobs, &fx->njobs, &fx->capjobs);
        json_decref(j);
        return r;
}

static int exists(const char *root, const char *rel)
{
        char *p = path_join(root, rel);
        struct stat st;
        int r = lstat(p, &st) == 0;

        free(p);
        return r;
}

static void put_file(const char *root, const char *rel, const char *text)
{
        char *p = path_join(root, rel);
        FILE *f = fopen(p, "w");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        free(p);
}

/* Records root/rel in the index as synced at seq, as a finished sync would. */
static void index_as_synced(struct fixture *fx, const char *rel, int64_t seq)
{
        struct index_entry e = {0};
        char *p = path_join(fx->cfg.root, rel);
        struct stat st;

        assert_int_equal(lstat(p, &st), 0);
        localfs_entry_stat(&e, &st);
        e.path = (char *)rel;
        e.seq = seq;
        if (e.kind == KIND_FILE)
                assert_int_equal(localfs_hash_file(fx->cfg.root, rel, &e.hash), 0);
        assert_int_equal(index_put(fx->s.idx, &e, NULL), 0);
        free(p);
}

static void test_dir_and_symlink(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};
        char buf[64], *p;
        ssize_t n;

        assert_int_equal(apply(fx, "{\"path\":\"a/b\",\"seq\":3,\"deleted\":false,\"kind\":\"dir\","
                                   "\"mode\":0}"),
                         0);
        assert_true(exists(fx->cfg.root, "a/b"));
        assert_int_equal(index_get(fx->s.idx, "a/b", &e), 0);
        assert_int_equal(e.seq, 3);
        assert_int_equal(e.kind, KIND_DIR);
        index_entry_free(&e);

        assert_int_equal(apply(fx, "{\"path\":\"a/ln\",\"seq\":4,\"deleted\":false,"
                                   "\"kind\":\"symlink\",\"target\":\"../../etc/passwd\"}"),
                         0);
        p = path_join(fx->cfg.root, "a/ln");
        n = readlink(p, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_string_equal(buf, "../../etc/passwd"); /* stored as a link, never followed */
        free(p);
        assert_int_equal(fx->s.stats.downloaded, 2);
        /* the same entry again is skipped */
        assert_int_equal(
            apply(fx, "{\"path\":\"a/b\",\"seq\":3,\"deleted\":false,\"kind\":\"dir\"}"), 0);
        assert_int_equal(fx->s.stats.downloaded, 2);
}

static void test_hostile_paths_refused(void **state)
{
        struct fixture *fx = *state;
        char *link = path_join(fx->cfg.root, "evil");

        assert_int_equal(symlink(fx->other, link), 0);
        assert_int_equal(apply(fx, "{\"path\":\"../x\",\"seq\":1,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply(fx, "{\"path\":\"/etc/x\",\"seq\":2,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply(fx, "{\"path\":\".ferry/config.json\",\"seq\":3,\"kind\":\"dir\"}"),
                         0);
        assert_int_equal(apply(fx, "{\"path\":\"evil/x\",\"seq\":4,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply(fx, "{\"path\":\"evil/sub/f\",\"seq\":5,\"kind\":\"file\","
                                   "\"size\":0,\"mode\":420,\"hash\":"
                                   "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                                   "7852b855\",\"chunks\":[]}"),
                         0);
        assert_int_equal(fx->s.stats.refused, 5);
        assert_int_equal(fx->njobs, 0);
        assert_false(exists(fx->other, "x"));
        assert_false(exists(fx->other, "sub"));
        free(link);
}

static void test_delete_trashes_synced_keeps_edited(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};

        put_file(fx->cfg.root, "synced.txt", "old");
        put_file(fx->cfg.root, "edited.txt", "old");
        index_as_synced(fx, "synced.txt", 5);
        index_as_synced(fx, "edited.txt", 6);
        put_file(fx->cfg.root, "edited.txt", "changed here, longer");

        assert_int_equal(apply(fx, "{\"path\":\"synced.txt\",\"seq\":9,\"deleted\":true}"), 0);
        assert_false(exists(fx->cfg.root, "synced.txt"));
        assert_true(exists(fx->cfg.root, ".ferry/trash/20261121-140205/synced.txt"));
        assert_int_equal(fx->s.nmoved, 1);

        assert_int_equal(apply(fx, "{\"path\":\"edited.txt\",\"seq\":10,\"deleted\":true}"), 0);
        assert_true(exists(fx->cfg.root, "edited.txt"));
        assert_int_equal(index_get(fx->s.idx, "edited.txt", &e), -ENOENT);
        assert_true(fx->s.again); /* the edit is uploaded by another pass */
        assert_int_equal(fx->s.stats.deleted, 1);
}

static void test_unsynced_local_file_becomes_conflict_copy(void **state)
{
        struct fixture *fx = *state;
        const char *entry = "{\"path\":\"r.txt\",\"seq\":7,\"deleted\":false,\"kind\":\"file\","
                            "\"size\":5,\"mtime_ns\":1763761956000000000,\"mode\":420,\"hash\":"
                            "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
                            "\"chunks\":[[\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e730"
                            "43362938b9824\",5]]}";

        put_file(fx->cfg.root, "r.txt", "mine, not synced");
        assert_int_equal(apply(fx, entry), 0);
        assert_false(exists(fx->cfg.root, "r.txt"));
        assert_int_equal(fx->s.stats.conflicts, 1);
        assert_int_equal(fx->njobs, 1);
        assert_string_equal(fx->jobs[0].path, "r.txt");
        assert_int_equal(fx->jobs[0].m.size, 5);
        assert_int_equal(fx->jobs[0].seq, 7);
}

static void test_identical_local_file_is_adopted(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};
        /* "hello" */
        const char *entry = "{\"path\":\"same.txt\",\"seq\":8,\"deleted\":false,\"kind\":\"file\","
                            "\"size\":5,\"mtime_ns\":1763761956000000000,\"mode\":420,\"hash\":"
                            "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
                            "\"chunks\":[[\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e730"
                            "43362938b9824\",5]]}";

        put_file(fx->cfg.root, "same.txt", "hello");
        assert_int_equal(apply(fx, entry), 0);
        assert_int_equal(fx->njobs, 0);
        assert_int_equal(fx->s.stats.conflicts, 0);
        assert_int_equal(index_get(fx->s.idx, "same.txt", &e), 0);
        assert_int_equal(e.seq, 8);
        assert_int_equal(e.mtime_ns, INT64_C(1763761956000000000));
        index_entry_free(&e);
}

/* This device's own version, sent without its chunk list
 * ("chunks_omitted"), that the index lacks (a crash before the index was
 * updated): the identical local file is adopted, with a chunk list cut from
 * the file itself (later deltas are computed against it), and nothing is
 * asked of the server (there is none here). */
static void test_own_entry_without_chunks_is_adopted(void **state)
{
        struct fixture *fx = *state;
        struct manifest m = MANIFEST_INIT;
        struct index_entry e = {0};
        struct hash h;
        const char *entry = "{\"path\":\"own.txt\",\"seq\":9,\"deleted\":false,\"kind\":\"file\","
                            "\"size\":5,\"mtime_ns\":1763761956000000000,\"mode\":420,\"hash\":"
                            "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
                            "\"chunks_omitted\":true}";

        put_file(fx->cfg.root, "own.txt", "hello");
        assert_int_equal(apply(fx, entry), 0);
        assert_int_equal(fx->njobs, 0);
        assert_int_equal(fx->s.stats.conflicts, 0);
        assert_int_equal(index_get(fx->s.idx, "own.txt", &e), 0);
        assert_int_equal(e.seq, 9);
        assert_int_equal(e.mtime_ns, INT64_C(1763761956000000000));
        index_entry_free(&e);
        assert_int_equal(index_get_manifest(fx->s.idx, "own.txt", &m), 0);
        assert_int_equal(m.n, 1);
        assert_int_equal(m.chunks[0].size, 5);
        assert_int_equal(
            hash_from_hex("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", &h),
            0);
        assert_true(hash_equal(&m.chunks[0].hash, &h));
        manifest_free(&m);
        /* the same entry again: the index has it at this seq, nothing to do */
        assert_int_equal(apply(fx, entry), 0);
        assert_int_equal(fx->njobs, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_dir_and_symlink, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hostile_paths_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delete_trashes_synced_keeps_edited, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_unsynced_local_file_becomes_conflict_copy, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_identical_local_file_is_adopted, setup, teardown),
            cmocka_unit_test_setup_teardown(test_own_entry_without_chunks_is_adopted, setup,
                                            teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
