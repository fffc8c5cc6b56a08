/* test-meta_sqlite: what the SQLite metadata store (meta_sqlite.c) does
 * beyond the contract every backend keeps (test-meta.c) — chunk ownership
 * over time (touched times, the rows the GC drops and forgets), the schema
 * steps (schema.h: a new database gets them all, logged, once; an upgraded
 * one ends up with the same tables as a new one), the upgrade of a
 * database of schema 1 (no versions, no times), and copying entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "schema.h"
#include "srvtest.h"

struct fix {
        char *dir;
        char path[4200];
        struct meta *m;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        snprintf(f->path, sizeof(f->path), "%s/meta.db", f->dir);
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        meta_close(f->m);
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

/* Drops user's unreferenced rows touched before t, in a transaction. */
static int64_t drop(struct fix *f, int64_t user, int64_t t)
{
        int64_t n = -1;

        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->chunk_refs_drop(f->m, user, t, &n), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        return n;
}

static void test_chunk_touch_and_orphans(void **state)
{
        struct fix *f = *state;
        struct hash x = srvtest_hash("x"), y = srvtest_hash("y"), z = srvtest_hash("z");
        int64_t t = (int64_t)time(NULL) + 1000;
        struct meta_chunk o[4];
        uint32_t size = 0;
        size_t n;

        assert_int_equal(f->m->ops->chunk_add(f->m, 1, &x, 10), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 1, &y, 20), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 2, &y, 20), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 2, &z, 30), 0);
        assert_int_equal(f->m->ops->chunk_touch(f->m, 1, &x, t + 100, &size), 1);
        assert_int_equal(size, 10);
        /* touching is no way to claim a chunk */
        assert_int_equal(f->m->ops->chunk_touch(f->m, 1, &z, t + 100, NULL), 0);
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &z, NULL), 0);

        /* chunk_add touched y now; x was touched at t + 100 */
        assert_int_equal(drop(f, 1, t - 2000), 0);
        assert_int_equal(drop(f, 1, t + 50), 1);
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &y, NULL), 0);
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &x, NULL), 1);
        assert_int_equal(f->m->ops->chunk_held(f->m, 2, &y, NULL), 1);
        /* y is still account 2's: no orphan yet */
        assert_int_equal(f->m->ops->chunk_orphans(f->m, NULL, 4, o, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(drop(f, 2, t + 50), 2);
        assert_int_equal(drop(f, 1, t + 101), 1);
        /* three orphans, in hash order, two at a time */
        assert_int_equal(f->m->ops->chunk_orphans(f->m, NULL, 2, o, &n), 0);
        assert_int_equal(n, 2);
        assert_true(memcmp(o[0].hash.b, o[1].hash.b, HASH_LEN) < 0);
        assert_int_equal(f->m->ops->chunk_orphans(f->m, &o[1].hash, 2, o + 2, &n), 0);
        assert_int_equal(n, 1);
        assert_true(memcmp(o[1].hash.b, o[2].hash.b, HASH_LEN) < 0);
        assert_int_equal(o[0].size + o[1].size + o[2].size, 60);
        /* forgotten once; not while held again */
        assert_int_equal(f->m->ops->chunk_forget(f->m, &x), 1);
        assert_int_equal(f->m->ops->chunk_forget(f->m, &x), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 2, &y, 20), 0);
        assert_int_equal(f->m->ops->chunk_forget(f->m, &y), 0);
        assert_int_equal(f->m->ops->chunk_held(f->m, 2, &y, NULL), 1);
        assert_int_equal(f->m->ops->chunk_orphans(f->m, NULL, 4, o, &n), 0);
        assert_int_equal(n, 1);
        assert_memory_equal(o[0].hash.b, z.b, HASH_LEN);
}

/* A database as the previous release (schema 1) left it: alice with a file
 * (seq 1), a tombstone (seq 2), two chunks of which the file uses one. */
static void make_schema_1(const char *path, const struct hash *used, const struct hash *unused)
{
        static const char sql[] =
            "CREATE TABLE schema_version (version INTEGER NOT NULL);"
            "INSERT INTO schema_version VALUES (1);"
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
            "  email TEXT NOT NULL, pwhash TEXT NOT NULL, created INTEGER NOT NULL);"
            "CREATE TABLE spaces (user_id INTEGER PRIMARY KEY REFERENCES users(id),"
            "  seq INTEGER NOT NULL);"
            "CREATE TABLE devices (id TEXT PRIMARY KEY,"
            "  user_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL,"
            "  platform TEXT NOT NULL, address TEXT NOT NULL, created INTEGER NOT NULL,"
            "  last_seen INTEGER NOT NULL, token_hash BLOB NOT NULL UNIQUE);"
            "CREATE INDEX devices_user ON devices(user_id, created);"
            "CREATE TABLE chunks (hash BLOB PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE user_chunks (user_id INTEGER NOT NULL, hash BLOB NOT NULL,"
            "  PRIMARY KEY (user_id, hash)) WITHOUT ROWID;"
            "CREATE TABLE entries (user_id INTEGER NOT NULL, path TEXT NOT NULL,"
            "  seq INTEGER NOT NULL, deleted INTEGER NOT NULL, kind INTEGER NOT NULL,"
            "  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, mode INTEGER NOT NULL,"
            "  hash BLOB, target TEXT, device TEXT NOT NULL, chunks BLOB,"
            "  UNIQUE (user_id, path));"
            "CREATE INDEX entries_seq ON entries(user_id, seq);"
            "INSERT INTO users VALUES (1, 'alice', 'a@x', 'h', 1);"
            "INSERT INTO spaces VALUES (1, 2);"
            "INSERT INTO devices VALUES ('dddddddddddddddddddddddddddddddd', 1, 'old laptop',"
            "  'linux', '', 1, 1, x'00');"
            "INSERT INTO entries VALUES (1, 'gone', 2, 1, 0, 0, 0, 0, NULL, NULL,"
            "  'dddddddddddddddddddddddddddddddd', NULL);";
        uint8_t blob[36] = {0};
        sqlite3_stmt *st;
        sqlite3 *db;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        memcpy(blob, used->b, HASH_LEN);
        blob[35] = 5;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO entries VALUES (1, 'f', 1, 0, 0, 5, 7,"
                                            " 420, ?1, NULL, 'dddddddddddddddddddddddddddddddd',"
                                            " ?2)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_blob(st, 1, used->b, HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, blob, 36, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        for (int i = 0; i < 2; i++) {
                const struct hash *h = i ? unused : used;
                assert_int_equal(
                    sqlite3_prepare_v2(db, "INSERT INTO chunks VALUES (?1, 5)", -1, &st, NULL),
                    SQLITE_OK);
                sqlite3_bind_blob(st, 1, h->b, HASH_LEN, SQLITE_STATIC);
                assert_int_equal(sqlite3_step(st), SQLITE_DONE);
                sqlite3_finalize(st);
                assert_int_equal(
                    sqlite3_prepare_v2(db, "INSERT INTO user_chunks VALUES (1, ?1)", -1, &st, NULL),
                    SQLITE_OK);
                sqlite3_bind_blob(st, 1, h->b, HASH_LEN, SQLITE_STATIC);
                assert_int_equal(sqlite3_step(st), SQLITE_DONE);
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
}

struct seen {
        int n;
        int64_t seq[4], time[4];
        char name[4][META_DEVICE_NAME_MAX + 1];
};

static int seen_cb(const struct meta_entry *e, const char *device_name, void *userdata)
{
        struct seen *sn = userdata;

        sn->seq[sn->n] = e->seq;
        sn->time[sn->n] = e->time;
        snprintf(sn->name[sn->n], sizeof(sn->name[0]), "%s", device_name);
        sn->n++;
        return 0;
}

static int recorded_version(const char *path)
{
        sqlite3_stmt *st;
        sqlite3 *db;
        int v = -1;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static void test_migration_from_schema_1(void **state)
{
        struct fix *f = *state;
        struct hash used = srvtest_hash("used"), unused = srvtest_hash("unused");
        int64_t now = (int64_t)time(NULL), pruned;
        struct meta_entry e = {0};
        struct seen sn = {0};

        meta_close(f->m);
        unlink(f->path);
        make_schema_1(f->path, &used, &unused);
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        assert_int_equal(recorded_version(f->path), schema_version()); /* the current one */

        /* the current entries are the first versions, of unknown time */
        assert_int_equal(f->m->ops->entry_get(f->m, 1, "f", &e), 0);
        assert_int_equal(e.time, 0);
        assert_int_equal(e.chunks_len, 36);
        meta_entry_clear(&e);
        assert_int_equal(f->m->ops->version_list(f->m, 1, "f", 10, seen_cb, &sn), 0);
        assert_int_equal(sn.n, 1);
        assert_int_equal(sn.seq[0], 1);
        assert_string_equal(sn.name[0], "old laptop");
        assert_int_equal(f->m->ops->version_get(f->m, 1, "gone", 2, &e), 0);
        assert_true(e.deleted);
        meta_entry_clear(&e);
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &used, NULL), 1);
        /* current versions are never pruned */
        assert_int_equal(f->m->ops->version_prune(f->m, 1, INT64_MAX, 1, &pruned), 0);
        assert_int_equal(pruned, 0);
        /* ownership rows count as touched at the upgrade; past the grace,
         * the unused one goes and the used one stays */
        assert_int_equal(drop(f, 1, now - 60), 0);
        assert_int_equal(drop(f, 1, now + 60), 1);
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &used, NULL), 1);
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &unused, NULL), 0);

        /* a new version after the upgrade supersedes the migrated one */
        e.path = "f";
        e.seq = 3;
        e.kind = KIND_FILE;
        e.time = now;
        snprintf(e.device, sizeof(e.device), "dddddddddddddddddddddddddddddddd");
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->entry_put(f->m, 1, &e), 0);
        assert_int_equal(f->m->ops->version_add(f->m, 1, &e), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(f->m->ops->version_prune(f->m, 1, now + 1, 0, &pruned), 0);
        assert_int_equal(pruned, 1);

        /* reopening does not migrate again */
        meta_close(f->m);
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        memset(&sn, 0, sizeof(sn));
        assert_int_equal(f->m->ops->version_list(f->m, 1, "f", 10, seen_cb, &sn), 0);
        assert_int_equal(sn.n, 1);
        assert_int_equal(sn.seq[0], 3);
        assert_int_equal(sn.time[0], now);
}

/* Appends each row's columns to the buffer b (a struct dump). */
struct dump {
        char b[16384];
        size_t len;
};

static int dump_row(void *userdata, int n, char **cols, char **names)
{
        struct dump *d = userdata;
        int i;

        (void)names;
        for (i = 0; i < n; i++)
                d->len += (size_t)snprintf(d->b + d->len, sizeof(d->b) - d->len, "%s%s",
                                           cols[i] ? cols[i] : "NULL", i + 1 < n ? "|" : "\n");
        assert_true(d->len < sizeof(d->b) - 1);
        return 0;
}

/* Every table's columns (name, type, not null, default, key), every
 * index's definition and the indexes SQLite made for constraints: what two
 * databases of the same schema share, whatever the text of their CREATEs. */
static void dump_schema(const char *path, struct dump *d)
{
        sqlite3 *db;

        memset(d, 0, sizeof(*d));
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db,
                         "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk"
                         " FROM sqlite_master m, pragma_table_info(m.name) p"
                         " WHERE m.type = 'table' ORDER BY m.name, p.cid;"
                         "SELECT m.name, i.name, i.\"unique\", i.origin, i.partial"
                         " FROM sqlite_master m, pragma_index_list(m.name) i"
                         " WHERE m.type = 'table' ORDER BY m.name, i.name;"
                         "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
                         " ORDER BY name;",
                         dump_row, d, NULL),
            SQLITE_OK);
        sqlite3_close(db);
}

/* SQLite's schema cookie: it changes with every change of the schema. */
static int schema_cookie(const char *path)
{
        sqlite3_stmt *st;
        sqlite3 *db;
        int v = -1;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA schema_version", -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

/* How many lines of the file at path contain s. */
static int count_lines(const char *path, const char *s)
{
        char line[1024];
        FILE *fp = fopen(path, "r");
        int n = 0;

        assert_non_null(fp);
        while (fgets(line, sizeof(line), fp))
                n += strstr(line, s) != NULL;
        fclose(fp);
        return n;
}

static void test_schema_steps(void **state)
{
        struct fix *f = *state;
        const struct schema_step *all, *first;
        char logpath[4200];
        size_t n, k;
        int cookie;

        /* schema_pending: every step for an empty database, the ones above
         * a version, none for the current one, an error for a newer one */
        all = schema_steps(&n);
        assert_true(n >= 3);
        assert_int_equal(all[n - 1].version, schema_version());
        for (k = 0; k < n; k++) {
                assert_int_equal(all[k].version, (int)k + 1);
                assert_non_null(all[k].sql[SCHEMA_SQLITE]);
                assert_non_null(all[k].sql[SCHEMA_PG]);
        }
        assert_int_equal(schema_pending(0, &first, &k), 0);
        assert_ptr_equal(first, all);
        assert_int_equal(k, n);
        assert_int_equal(schema_pending(1, &first, &k), 0);
        assert_int_equal(first->version, 2);
        assert_int_equal(k, n - 1);
        assert_int_equal(schema_pending(schema_version(), &first, &k), 0);
        assert_null(first);
        assert_int_equal(k, 0);
        assert_int_equal(schema_pending(schema_version() + 1, &first, &k), -EIO);
        assert_int_equal(schema_pending(-1, &first, &k), -EINVAL);

        /* a new database: every step applied and logged, the current
         * version recorded */
        meta_close(f->m);
        f->m = NULL;
        unlink(f->path);
        snprintf(logpath, sizeof(logpath), "%s/log", f->dir);
        assert_int_equal(log_open(logpath), 0);
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        assert_int_equal(recorded_version(f->path), schema_version());
        assert_int_equal(count_lines(logpath, "schema: applying "), (int)n);
        assert_int_equal(count_lines(logpath, "schema: applying 1 (accounts"), 1);

        /* reopening runs nothing: no step logged, the schema untouched */
        cookie = schema_cookie(f->path);
        meta_close(f->m);
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        log_close();
        assert_int_equal(count_lines(logpath, "schema: applying "), (int)n);
        assert_int_equal(schema_cookie(f->path), cookie);
        assert_int_equal(recorded_version(f->path), schema_version());
}

/* A database of schema 1, upgraded, has the tables, columns and indexes of
 * a new one; a database of a newer schema is refused and left alone. */
static void test_upgrade_matches_new(void **state)
{
        struct fix *f = *state;
        struct hash used = srvtest_hash("used"), unused = srvtest_hash("unused");
        char old[4200];
        struct dump *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
        sqlite3 *db;

        snprintf(old, sizeof(old), "%s/old.db", f->dir);
        make_schema_1(old, &used, &unused);
        meta_close(f->m);
        assert_int_equal(meta_sqlite_open(old, &f->m), 0);
        dump_schema(f->path, a);
        dump_schema(old, b);
        assert_true(a->len > 1000);
        assert_string_equal(a->b, b->b);

        meta_close(f->m);
        f->m = NULL;
        assert_int_equal(sqlite3_open(old, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(meta_sqlite_open(old, &f->m), -EIO);
        assert_int_equal(recorded_version(old), 99);
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        free(a);
        free(b);
}

static void test_entry_copy(void **state)
{
        struct meta_entry a = {0}, b;
        uint8_t blob[36] = {1, 2, 3};

        (void)state;
        a.path = strdup("p");
        a.target = strdup("t");
        a.chunks = malloc(36);
        memcpy(a.chunks, blob, 36);
        a.chunks_len = 36;
        a.seq = 9;
        assert_int_equal(meta_entry_copy(&b, &a), 0);
        assert_ptr_not_equal(a.path, b.path);
        assert_string_equal(b.path, "p");
        assert_string_equal(b.target, "t");
        assert_memory_equal(b.chunks, blob, 36);
        assert_int_equal(b.seq, 9);
        meta_entry_clear(&a);
        meta_entry_clear(&b);
        assert_null(a.path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_chunk_touch_and_orphans, setup, teardown),
            cmocka_unit_test_setup_teardown(test_migration_from_schema_1, setup, teardown),
            cmocka_unit_test_setup_teardown(test_schema_steps, setup, teardown),
            cmocka_unit_test_setup_teardown(test_upgrade_matches_new, setup, teardown),
            cmocka_unit_test(test_entry_copy),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
