/* Unit tests for index: entries (put, get, replace, delete, foreach, count),
 * chunk records (manifest round trip, find_chunk, replaced with the entry),
 * state keys, transactions (rollback, nesting), and the speed of 10,000 puts
 * in one transaction. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "testutil.h"

struct fixture {
        char dir[1024];
        char db[1100];
        struct index *idx;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        if (f == NULL)
                return -1;
        if (testutil_mkdtemp(f->dir, sizeof(f->dir), "index") < 0)
                return -1;
        snprintf(f->db, sizeof(f->db), "%s/index.db", f->dir);
        if (index_open(f->db, &f->idx) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        index_close(f->idx);
        testutil_rm_rf(f->dir);
        free(f);
        return 0;
}

static struct hash hash_of(const char *s)
{
        struct hash h;

        hash_buf(s, strlen(s), &h);
        return h;
}

static struct index_entry file_entry(char *path, const char *content, int64_t seq)
{
        struct index_entry e = {0};

        e.path = path;
        e.kind = KIND_FILE;
        e.size = strlen(content);
        e.mtime_ns = 1763761956123456789LL;
        e.ctime_ns = 1763761956223456789LL;
        e.ino = 0xfedcba9876543210ULL; /* above INT64_MAX: must survive */
        e.mode = 0755;
        e.hash = hash_of(content);
        e.seq = seq;
        e.recorded_ns = 1763761999000000000LL;
        return e;
}

static void test_put_get_delete(void **state)
{
        struct fixture *f = *state;
        struct index_entry e = file_entry("dir/a b.txt", "hello", 42), g, l = {0};
        int64_t n = -1;

        assert_int_equal(index_get(f->idx, "dir/a b.txt", &g), -ENOENT);
        assert_int_equal(index_put(f->idx, &e, NULL), 0);
        assert_int_equal(index_get(f->idx, "dir/a b.txt", &g), 0);
        assert_string_equal(g.path, "dir/a b.txt");
        assert_int_equal(g.kind, KIND_FILE);
        assert_int_equal(g.size, 5);
        assert_true(g.mtime_ns == e.mtime_ns);
        assert_true(g.ctime_ns == e.ctime_ns);
        assert_true(g.ino == e.ino);
        assert_int_equal(g.mode, 0755);
        assert_true(hash_equal(&g.hash, &e.hash));
        assert_null(g.target);
        assert_int_equal(g.seq, 42);
        assert_true(g.recorded_ns == e.recorded_ns);
        index_entry_free(&g);

        /* replace */
        e.seq = 43;
        e.size = 6;
        assert_int_equal(index_put(f->idx, &e, NULL), 0);
        assert_int_equal(index_get(f->idx, "dir/a b.txt", &g), 0);
        assert_int_equal(g.seq, 43);
        assert_int_equal(g.size, 6);
        index_entry_free(&g);

        /* a symlink and a directory */
        l.path = "ln";
        l.kind = KIND_SYMLINK;
        l.target = "dir/a b.txt";
        l.seq = 44;
        assert_int_equal(index_put(f->idx, &l, NULL), 0);
        l.path = "dir";
        l.kind = KIND_DIR;
        l.target = NULL;
        l.seq = 45;
        assert_int_equal(index_put(f->idx, &l, NULL), 0);
        assert_int_equal(index_get(f->idx, "ln", &g), 0);
        assert_int_equal(g.kind, KIND_SYMLINK);
        assert_string_equal(g.target, "dir/a b.txt");
        assert_true(hash_is_zero(&g.hash));
        index_entry_free(&g);
        assert_int_equal(index_count(f->idx, &n), 0);
        assert_int_equal(n, 3);

        assert_int_equal(index_delete(f->idx, "dir/a b.txt"), 0);
        assert_int_equal(index_get(f->idx, "dir/a b.txt", &g), -ENOENT);
        assert_int_equal(index_delete(f->idx, "never-there"), 0);
        assert_int_equal(index_count(f->idx, &n), 0);
        assert_int_equal(n, 2);
}

static int collect(const struct index_entry *e, void *ud)
{
        char *out = ud;

        strcat(out, e->path);
        strcat(out, ";");
        return strcmp(e->path, "stop") == 0 ? -EINTR : 0;
}

static void test_foreach_order(void **state)
{
        struct fixture *f = *state;
        const char *paths[] = {"b", "a/z", "a", "a.txt", "c/d/e", "Z"};
        char seen[256] = "";
        size_t i;

        for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                struct index_entry e = file_entry((char *)paths[i], paths[i], (int64_t)i + 1);
                assert_int_equal(index_put(f->idx, &e, NULL), 0);
        }
        assert_int_equal(index_foreach(f->idx, collect, seen), 0);
        /* byte order: parents before their children */
        assert_string_equal(seen, "Z;a;a.txt;a/z;b;c/d/e;");

        struct index_entry s = file_entry("stop", "x", 9);
        assert_int_equal(index_put(f->idx, &s, NULL), 0);
        seen[0] = '\0';
        assert_int_equal(index_foreach(f->idx, collect, seen), -EINTR);
        assert_string_equal(seen, "Z;a;a.txt;a/z;b;c/d/e;stop;");
}

static void test_chunks(void **state)
{
        struct fixture *f = *state;
        struct manifest m = MANIFEST_INIT, g = MANIFEST_INIT;
        struct index_entry e = file_entry("big.bin", "whatever", 7);
        struct hash h1 = hash_of("c1"), h2 = hash_of("c2"), h3 = hash_of("c3"), other;
        char *path = NULL;
        uint64_t off = 99;

        assert_int_equal(manifest_add(&m, &h1, 1000), 0);
        assert_int_equal(manifest_add(&m, &h2, 2000), 0);
        assert_int_equal(manifest_add(&m, &h3, 3000), 0);
        assert_int_equal(index_put(f->idx, &e, &m), 0);

        assert_int_equal(index_find_chunk(f->idx, &h3, &path, &off), 0);
        assert_string_equal(path, "big.bin");
        assert_int_equal(off, 3000);
        free(path);
        path = NULL;
        assert_int_equal(index_find_chunk(f->idx, &h1, &path, &off), 0);
        assert_int_equal(off, 0);
        free(path);
        path = NULL;
        other = hash_of("nope");
        assert_int_equal(index_find_chunk(f->idx, &other, &path, &off), -ENOENT);

        assert_int_equal(index_get_manifest(f->idx, "big.bin", &g), 0);
        assert_int_equal(g.n, 3);
        assert_int_equal(g.size, 6000);
        assert_true(hash_equal(&g.chunks[0].hash, &h1));
        assert_true(hash_equal(&g.chunks[2].hash, &h3));
        assert_int_equal(g.chunks[1].size, 2000);
        assert_true(hash_equal(&g.file_hash, &e.hash));
        manifest_free(&g);

        /* replacing the entry replaces its chunks */
        manifest_free(&m);
        memset(&m, 0, sizeof(m));
        assert_int_equal(manifest_add(&m, &h2, 500), 0);
        assert_int_equal(index_put(f->idx, &e, &m), 0);
        assert_int_equal(index_find_chunk(f->idx, &h1, &path, &off), -ENOENT);
        assert_int_equal(index_find_chunk(f->idx, &h2, &path, &off), 0);
        assert_int_equal(off, 0);
        free(path);
        path = NULL;

        /* deleting the entry drops them */
        assert_int_equal(index_delete(f->idx, "big.bin"), 0);
        assert_int_equal(index_find_chunk(f->idx, &h2, &path, &off), -ENOENT);
        assert_int_equal(index_get_manifest(f->idx, "big.bin", &g), -ENOENT);
        manifest_free(&m);
}

static void test_state(void **state)
{
        struct fixture *f = *state;
        int64_t v = 0;

        assert_int_equal(index_state_get(f->idx, "last_seq", &v), -ENOENT);
        assert_int_equal(index_state_set(f->idx, "last_seq", 17), 0);
        assert_int_equal(index_state_get(f->idx, "last_seq", &v), 0);
        assert_int_equal(v, 17);
        assert_int_equal(index_state_set(f->idx, "last_seq", INT64_MAX), 0);
        assert_int_equal(index_state_get(f->idx, "last_seq", &v), 0);
        assert_true(v == INT64_MAX);

        /* survives reopening */
        index_close(f->idx);
        assert_int_equal(index_open(f->db, &f->idx), 0);
        assert_int_equal(index_state_get(f->idx, "last_seq", &v), 0);
        assert_true(v == INT64_MAX);
}

static void test_transactions(void **state)
{
        struct fixture *f = *state;
        struct index_entry e = file_entry("t1", "x", 1), g;

        assert_int_equal(index_begin(f->idx), 0);
        assert_int_equal(index_put(f->idx, &e, NULL), 0);
        assert_int_equal(index_state_set(f->idx, "k", 1), 0);
        assert_int_equal(index_rollback(f->idx), 0);
        assert_int_equal(index_get(f->idx, "t1", &g), -ENOENT);

        /* nested: only the outer commit commits */
        assert_int_equal(index_begin(f->idx), 0);
        assert_int_equal(index_begin(f->idx), 0);
        assert_int_equal(index_put(f->idx, &e, NULL), 0);
        assert_int_equal(index_commit(f->idx), 0);
        assert_int_equal(index_commit(f->idx), 0);
        assert_int_equal(index_commit(f->idx), -EINVAL);
        assert_int_equal(index_get(f->idx, "t1", &g), 0);
        index_entry_free(&g);
}

static void test_10k_puts_fast(void **state)
{
        struct fixture *f = *state;
        struct manifest m = MANIFEST_INIT;
        struct timespec t0, t1;
        char path[64];
        int64_t n = 0;
        double secs;
        int i;

        struct hash h = hash_of("chunk");
        assert_int_equal(manifest_add(&m, &h, 4096), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(index_begin(f->idx), 0);
        for (i = 0; i < 10000; i++) {
                snprintf(path, sizeof(path), "dir%d/file%05d.txt", i % 100, i);
                struct index_entry e = file_entry(path, path, i + 1);
                assert_int_equal(index_put(f->idx, &e, &m), 0);
        }
        assert_int_equal(index_commit(f->idx), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        print_message("10000 puts: %.3f s\n", secs);
        assert_true(secs < 1.0);
        assert_int_equal(index_count(f->idx, &n), 0);
        assert_int_equal(n, 10000);
        manifest_free(&m);
}

static void test_open_bad_path(void **state)
{
        struct index *idx = NULL;

        (void)state;
        assert_true(index_open("/nonexistent-dir-for-ferry/x/index.db", &idx) < 0);
        assert_null(idx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
            cmocka_unit_test_setup_teardown(test_foreach_order, setup, teardown),
            cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_state, setup, teardown),
            cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_10k_puts_fast, setup, teardown),
            cmocka_unit_test(test_open_bad_path),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
