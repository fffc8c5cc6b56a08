/* Unit tests for index: entries (put, get, replace, delete, foreach, count),
 * chunk records (manifest round trip, find_chunk, replaced with the entry),
 * state keys, transactions (rollback, nesting), the speed of 10,000 puts
 * in one transaction, the held store and the overrides (put, replace,
 * remove, foreach by direction and prefix, count, a callback that writes),
 * and the schema upgrade of an index.db without those tables. */
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
#include <sqlite3.h>

#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "rules.h"
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

static int put_held(struct index *idx, int dir, const char *path, uint64_t size, int64_t seq,
                    const char *reason)
{
        struct index_held h = {0};

        h.path = (char *)path;
        h.dir = dir;
        h.kind = KIND_FILE;
        h.size = size;
        h.mtime_ns = 1763761956123456789LL;
        h.seq = seq;
        h.reason = (char *)reason;
        return index_held_put(idx, &h);
}

struct held_seen {
        char list[512];
        struct index *idx;
        int remove; /* remove each row from within the callback */
};

static int held_collect(const struct index_held *h, void *ud)
{
        struct held_seen *s = ud;
        char one[128];

        snprintf(one, sizeof(one), "%s:%s:%llu:%lld:%s;", h->dir == RULES_UP ? "up" : "down",
                 h->path, (unsigned long long)h->size, (long long)h->seq, h->reason);
        strcat(s->list, one);
        if (s->remove)
                return index_held_remove(s->idx, h->dir, h->path);
        return strcmp(h->path, "stop") == 0 ? -EINTR : 0;
}

static const char *held_list(struct index *idx, int dir, const char *prefix, struct held_seen *s)
{
        s->list[0] = '\0';
        s->idx = idx;
        assert_int_equal(index_held_foreach(idx, dir, prefix, held_collect, s), 0);
        return s->list;
}

static void test_held(void **state)
{
        struct fixture *f = *state;
        struct held_seen s = {0};
        int64_t n = -1;

        assert_int_equal(index_held_count(f->idx, -1, &n), 0);
        assert_int_equal(n, 0);
        assert_string_equal(held_list(f->idx, -1, NULL, &s), "");

        assert_int_equal(
            put_held(f->idx, RULES_UP, "Films/a.mkv", 7000000000ULL, 0, "type .mkv not selected"),
            0);
        assert_int_equal(put_held(f->idx, RULES_DOWN, "Films/b.mkv", 5, 41, "ask"), 0);
        assert_int_equal(put_held(f->idx, RULES_DOWN, "Films", 0, 40, "not under Work"), 0);
        assert_int_equal(put_held(f->idx, RULES_DOWN, "Films2/c", 1, 42, "x"), 0);
        assert_int_equal(put_held(f->idx, RULES_DOWN, "Films.txt", 1, 43, "y"), 0);
        /* the same path in both directions is two rows */
        assert_int_equal(put_held(f->idx, RULES_UP, "Films/b.mkv", 6, 0, "ask"), 0);

        assert_int_equal(index_held_count(f->idx, -1, &n), 0);
        assert_int_equal(n, 6);
        assert_int_equal(index_held_count(f->idx, RULES_UP, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(index_held_count(f->idx, RULES_DOWN, &n), 0);
        assert_int_equal(n, 4);

        /* by path, every direction */
        assert_string_equal(held_list(f->idx, -1, NULL, &s),
                            "down:Films:0:40:not under Work;down:Films.txt:1:43:y;"
                            "up:Films/a.mkv:7000000000:0:type .mkv not selected;"
                            "up:Films/b.mkv:6:0:ask;down:Films/b.mkv:5:41:ask;"
                            "down:Films2/c:1:42:x;");
        assert_string_equal(held_list(f->idx, -1, "", &s), s.list);
        /* a prefix is the path and what is under it, not "Films2" */
        assert_string_equal(held_list(f->idx, RULES_DOWN, "Films", &s),
                            "down:Films:0:40:not under Work;down:Films/b.mkv:5:41:ask;");
        assert_string_equal(held_list(f->idx, RULES_UP, "Films/a.mkv", &s),
                            "up:Films/a.mkv:7000000000:0:type .mkv not selected;");
        assert_string_equal(held_list(f->idx, RULES_UP, "Film", &s), "");

        /* replace keeps one row */
        assert_int_equal(put_held(f->idx, RULES_DOWN, "Films/b.mkv", 9, 50, "over 1M"), 0);
        assert_string_equal(held_list(f->idx, RULES_DOWN, "Films/b.mkv", &s),
                            "down:Films/b.mkv:9:50:over 1M;");

        /* remove: one direction only; absent is not an error */
        assert_int_equal(index_held_remove(f->idx, RULES_DOWN, "Films/b.mkv"), 0);
        assert_int_equal(index_held_remove(f->idx, RULES_DOWN, "Films/b.mkv"), 0);
        assert_string_equal(held_list(f->idx, -1, "Films/b.mkv", &s), "up:Films/b.mkv:6:0:ask;");

        /* a callback may remove the rows it is given */
        s.remove = 1;
        held_list(f->idx, RULES_DOWN, "Films", &s);
        s.remove = 0;
        assert_int_equal(index_held_count(f->idx, RULES_DOWN, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(held_list(f->idx, RULES_DOWN, NULL, &s),
                            "down:Films.txt:1:43:y;down:Films2/c:1:42:x;");

        /* a negative return stops and is returned */
        assert_int_equal(put_held(f->idx, RULES_UP, "stop", 1, 0, "z"), 0);
        s.list[0] = '\0';
        assert_int_equal(index_held_foreach(f->idx, -1, NULL, held_collect, &s), -EINTR);

        /* rolled back with the transaction it was written in */
        assert_int_equal(index_begin(f->idx), 0);
        assert_int_equal(put_held(f->idx, RULES_UP, "tx", 1, 0, "z"), 0);
        assert_int_equal(index_rollback(f->idx), 0);
        assert_string_equal(held_list(f->idx, RULES_UP, "tx", &s), "");
}

static void test_overrides(void **state)
{
        struct fixture *f = *state;

        assert_int_equal(index_override_has(f->idx, "a/b.mkv"), 0);
        assert_int_equal(index_override_add(f->idx, "a/b.mkv"), 0);
        assert_int_equal(index_override_add(f->idx, "a/b.mkv"), 0);
        assert_int_equal(index_override_has(f->idx, "a/b.mkv"), 1);
        /* exact paths: not the parent, not a prefix */
        assert_int_equal(index_override_has(f->idx, "a"), 0);
        assert_int_equal(index_override_has(f->idx, "a/b.mk"), 0);

        index_close(f->idx);
        assert_int_equal(index_open(f->db, &f->idx), 0);
        assert_int_equal(index_override_has(f->idx, "a/b.mkv"), 1);
        assert_int_equal(index_override_remove(f->idx, "a/b.mkv"), 0);
        assert_int_equal(index_override_remove(f->idx, "a/b.mkv"), 0);
        assert_int_equal(index_override_has(f->idx, "a/b.mkv"), 0);
}

static void exec_sql(const char *db, const char *sql)
{
        sqlite3 *h = NULL;

        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h);
}

/* An index.db from before the held store (no held, no overrides, no
 * user_version) keeps its rows and gains the new tables. */
static void test_schema_upgrade(void **state)
{
        char dir[1024], db[1100];
        struct index *idx = NULL;
        struct index_entry g;
        int64_t v = 0;

        (void)state;
        assert_int_equal(testutil_mkdtemp(dir, sizeof(dir), "index-old"), 0);
        snprintf(db, sizeof(db), "%s/index.db", dir);
        exec_sql(db, "CREATE TABLE entries (path TEXT PRIMARY KEY NOT NULL, kind INTEGER NOT "
                     "NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER "
                     "NOT NULL, ino INTEGER NOT NULL, mode INTEGER NOT NULL, hash BLOB, target "
                     "TEXT, seq INTEGER NOT NULL, recorded_ns INTEGER NOT NULL);"
                     "CREATE TABLE chunks (hash BLOB NOT NULL, path TEXT NOT NULL, offset "
                     "INTEGER NOT NULL, size INTEGER NOT NULL);"
                     "CREATE TABLE state (key TEXT PRIMARY KEY NOT NULL, value INTEGER);"
                     "INSERT INTO entries VALUES ('old.txt', 0, 3, 1, 2, 3, 420, NULL, NULL, 7, "
                     "4);"
                     "INSERT INTO state VALUES ('last_seq', 7);");
        assert_int_equal(index_open(db, &idx), 0);
        assert_int_equal(index_get(idx, "old.txt", &g), 0);
        assert_int_equal(g.seq, 7);
        index_entry_free(&g);
        assert_int_equal(index_state_get(idx, "last_seq", &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(put_held(idx, RULES_UP, "new.mkv", 1, 0, "ask"), 0);
        assert_int_equal(index_override_add(idx, "o"), 0);
        index_close(idx);

        /* again: opening an up-to-date file changes nothing */
        assert_int_equal(index_open(db, &idx), 0);
        assert_int_equal(index_held_count(idx, RULES_UP, &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(index_override_has(idx, "o"), 1);
        index_close(idx);

        /* a file from a newer ferry is refused, not half understood */
        exec_sql(db, "PRAGMA user_version = 99");
        idx = NULL;
        assert_int_equal(index_open(db, &idx), -EINVAL);
        assert_null(idx);
        assert_non_null(strstr(err_msg(-EINVAL), "newer ferry"));
        testutil_rm_rf(dir);
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
            cmocka_unit_test_setup_teardown(test_held, setup, teardown),
            cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
            cmocka_unit_test(test_schema_upgrade),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
