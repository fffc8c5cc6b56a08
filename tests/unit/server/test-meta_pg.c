/* test-meta_pg: the PostgreSQL metadata store (meta_pg*.c) on a real
 * server (FERRY_TEST_PG, see scripts/pg.sh; skipped without one), each
 * test on a fresh database (the contract every backend keeps is
 * test-meta.c, run here as meta-pg): a failed statement ending its
 * transaction, the schema steps applied once (also by two instances opening a new
 * database at once), a newer schema refused, cluster locks between two
 * instances, a connection lost in a transaction, and the point of it all:
 * four threads on two instances committing to one space get the numbers
 * 1..200, each once, made visible in order. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "meta_pg.h"
#include "schema.h"
#include "srvtest.h"

struct fix {
        char *uri;
        struct meta *m;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->uri = srvtest_metadata();
        assert_non_null(f->uri);
        assert_int_equal(meta_pg_open(f->uri, &f->m), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        meta_close(f->m);
        srvtest_metadata_drop(f->uri);
        free(f);
        return 0;
}

/* In PostgreSQL a failed statement aborts its whole transaction (SQLite
 * undoes the statement only): commit refuses it; a nested begin is
 * refused too. */
static void test_failed_statement(void **state)
{
        struct fix *f = *state;
        int64_t uid, s1, seq = -1;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &uid), 0);
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &s1), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, NULL), -EEXIST);
        assert_int_equal(f->m->ops->commit(f->m), -EIO);
        /* ... nor a nested begin, which is refused */
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->begin(f->m), -EINVAL);
        assert_int_equal(f->m->ops->rollback(f->m), 0);
        assert_int_equal(f->m->ops->commit(f->m), -EINVAL);
        /* nothing of either was kept */
        assert_int_equal(f->m->ops->seq_current(f->m, uid, &seq), 0);
        assert_int_equal(seq, 0);
}

static int count_lines(const char *path, const char *needle)
{
        char line[1024];
        FILE *fp = fopen(path, "r");
        int n = 0;

        if (!fp)
                return -1;
        while (fgets(line, sizeof(line), fp))
                n += strstr(line, needle) != NULL;
        fclose(fp);
        return n;
}

static void *open_thread(void *arg)
{
        struct meta *m = NULL;
        intptr_t r = meta_pg_open(arg, &m);

        meta_close(m);
        return (void *)r;
}

/* The steps run once, logged, the version recorded (also when two
 * instances open a new database at once); a newer schema is refused. */
static void test_schema(void **state)
{
        struct fix *f = *state;
        char *dir = srvtest_tmpdir(), logpath[4200], *fresh;
        pthread_t th[3];
        size_t n, i;
        int64_t v = -1;
        void *rv;

        schema_steps(&n);
        assert_int_equal(
            mpg_query_int(f->m, "t", -1, &v, "SELECT count(*) FROM schema_version", ""), 0);
        assert_int_equal(v, 1);
        assert_int_equal(mpg_query_int(f->m, "t", -1, &v, "SELECT version FROM schema_version", ""),
                         0);
        assert_int_equal(v, schema_version());

        /* A new database opened by three instances at once. */
        fresh = srvtest_metadata();
        snprintf(logpath, sizeof(logpath), "%s/log", dir);
        assert_int_equal(log_open(logpath), 0);
        for (i = 0; i < 3; i++)
                assert_int_equal(pthread_create(&th[i], NULL, open_thread, fresh), 0);
        for (i = 0; i < 3; i++) {
                assert_int_equal(pthread_join(th[i], &rv), 0);
                assert_int_equal((intptr_t)rv, 0);
        }
        assert_int_equal(count_lines(logpath, "schema: applying "), (int)n);
        assert_int_equal(count_lines(logpath, "schema: applying 1 ("), 1);
        /* Reopening runs nothing. */
        assert_null(open_thread(fresh));
        log_close();
        assert_int_equal(count_lines(logpath, "schema: applying "), (int)n);

        /* A database a later ferryd wrote is left alone. */
        assert_int_equal(mpg_exec(f->m, "t", NULL, NULL, "UPDATE schema_version SET version = $1",
                                  "i", (int64_t)schema_version() + 1),
                         0);
        assert_true(open_thread(f->uri) == (void *)(intptr_t)-EIO);
        assert_non_null(strstr(err_msg(-EIO), "newer"));
        assert_int_equal(mpg_query_int(f->m, "t", -1, &v, "SELECT version FROM schema_version", ""),
                         0);
        assert_int_equal(v, schema_version() + 1);
        srvtest_metadata_drop(fresh);
        srvtest_rmtree(dir);
}

/* Store-wide locks between two instances: exclusive against shared, held
 * by the thread across its transactions until unlocked. */
static void test_cluster_locks(void **state)
{
        struct fix *f = *state;
        struct meta *m2;
        int64_t seq, uid;

        assert_int_equal(meta_pg_open(f->uri, &m2), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &uid), 0);
        assert_int_equal(f->m->ops->cluster_lock(f->m, META_LOCK_GC, 0, 0), 1);
        assert_int_equal(m2->ops->cluster_lock(m2, META_LOCK_GC, 1, 1), 0);
        assert_int_equal(m2->ops->cluster_lock(m2, META_LOCK_GC, 0, 1), 0);
        /* a transaction on the locking thread keeps the lock */
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &seq), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(m2->ops->cluster_lock(m2, META_LOCK_GC, 1, 1), 0);
        f->m->ops->cluster_unlock(f->m, META_LOCK_GC, 0);

        /* shared twice on one instance, once on the other */
        assert_int_equal(m2->ops->cluster_lock(m2, META_LOCK_GC, 1, 1), 1);
        assert_int_equal(m2->ops->cluster_lock(m2, META_LOCK_GC, 1, 0), 1);
        assert_int_equal(f->m->ops->cluster_lock(f->m, META_LOCK_GC, 1, 1), 1);
        assert_int_equal(f->m->ops->cluster_lock(f->m, META_LOCK_GC, 0, 1), 0); /* m2 shares */
        f->m->ops->cluster_unlock(f->m, META_LOCK_GC, 1);
        m2->ops->cluster_unlock(m2, META_LOCK_GC, 1);
        assert_int_equal(f->m->ops->cluster_lock(f->m, META_LOCK_GC, 0, 1), 0); /* one left */
        m2->ops->cluster_unlock(m2, META_LOCK_GC, 1);
        assert_int_equal(f->m->ops->cluster_lock(f->m, META_LOCK_GC, 0, 1), 1);
        f->m->ops->cluster_unlock(f->m, META_LOCK_GC, 0);
        /* closing an instance releases what it held */
        assert_int_equal(m2->ops->cluster_lock(m2, META_LOCK_GC, 0, 0), 1);
        meta_close(m2);
        assert_int_equal(f->m->ops->cluster_lock(f->m, META_LOCK_GC, 0, 0), 1);
        f->m->ops->cluster_unlock(f->m, META_LOCK_GC, 0);
}

/* A connection lost in a transaction: -EHOSTDOWN to the end of it, nothing of
 * it committed, and the next operation runs on a new connection. */
static void test_connection_lost(void **state)
{
        struct fix *f = *state;
        struct meta *m2;
        int64_t pid = 0, uid, seq, ok = 0;
        int i;

        assert_int_equal(meta_pg_open(f->uri, &m2), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &uid), 0);
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &seq), 0);
        assert_int_equal(mpg_query_int(f->m, "t", 0, &pid, "SELECT pg_backend_pid()", ""), 0);
        assert_int_equal(
            mpg_query_int(m2, "t", 0, &ok, "SELECT pg_terminate_backend($1::int)", "i", pid), 0);
        assert_int_equal(ok, 1);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &seq), -EHOSTDOWN);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &seq), -EHOSTDOWN);
        assert_int_equal(f->m->ops->commit(f->m), -EHOSTDOWN);
        /* the pool reconnects; the space row was unlocked by the abort */
        assert_int_equal(m2->ops->seq_current(m2, uid, &seq), 0);
        assert_int_equal(seq, 0);
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &seq), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(seq, 1);

        /* Idle pooled connections the server dropped (as in a restart) are
         * replaced before use: no error at all. */
        assert_int_equal(mpg_query_int(m2, "t", 0, &ok,
                                       "SELECT count(pg_terminate_backend(pid)) FROM"
                                       " pg_stat_activity WHERE datname = current_database()"
                                       " AND pid <> pg_backend_pid()",
                                       ""),
                         0);
        assert_true(ok >= 1);
        for (i = 0; i < 200 && ok > 0; i++) {
                usleep(10000);
                assert_int_equal(mpg_query_int(m2, "t", 0, &ok,
                                               "SELECT count(*) FROM pg_stat_activity WHERE"
                                               " datname = current_database()"
                                               " AND pid <> pg_backend_pid()",
                                               ""),
                                 0);
        }
        assert_int_equal(ok, 0);
        assert_int_equal(f->m->ops->seq_current(f->m, uid, &seq), 0);
        assert_int_equal(seq, 1);
        meta_close(m2);
}

/* --- concurrent commits to one space from two instances --------------- */

#define THREADS 4
#define COMMITS 50

struct race {
        struct meta *m[2];
        int64_t user;
        pthread_mutex_t lock;
        int64_t taken[THREADS * COMMITS];
        int ntaken, failed, done, reader_bad, reader_runs;
};

struct worker {
        struct race *rc;
        int id;
};

static void *commit_thread(void *arg)
{
        struct worker *w = arg;
        struct race *rc = w->rc;
        struct meta *m = rc->m[w->id % 2]; /* interleaved across the instances */
        struct meta_entry e = {0};
        char path[64];
        int i, r;

        for (i = 0; i < COMMITS; i++) {
                snprintf(path, sizeof(path), "t%d/%03d", w->id, i);
                e.path = path;
                e.kind = KIND_FILE;
                e.size = (uint64_t)i;
                snprintf(e.device, sizeof(e.device), "dev%d", w->id);
                r = m->ops->begin(m);
                if (r == 0)
                        r = m->ops->seq_next(m, rc->user, &e.seq);
                if (r == 0)
                        r = m->ops->entry_put(m, rc->user, &e);
                if (r == 0)
                        r = m->ops->commit(m);
                else
                        m->ops->rollback(m);
                pthread_mutex_lock(&rc->lock);
                if (r == 0)
                        rc->taken[rc->ntaken++] = e.seq;
                else
                        rc->failed++;
                pthread_mutex_unlock(&rc->lock);
        }
        return NULL;
}

static int prefix_cb(const struct meta_entry *e, void *userdata)
{
        int64_t *next = userdata;

        if (e->seq != *next)
                return -EPROTO;
        (*next)++;
        return 0;
}

/* Meanwhile, readers on either instance must only ever see 1..N: a
 * commit is visible only once every smaller number is. */
static void *reader_thread(void *arg)
{
        struct race *rc = arg;
        int done = 0, k = 0;
        struct meta *m;
        int64_t next;

        while (!done) {
                pthread_mutex_lock(&rc->lock);
                done = rc->done;
                pthread_mutex_unlock(&rc->lock);
                next = 1;
                m = rc->m[k++ % 2];
                if (m->ops->entry_changes(m, rc->user, 0, -1, prefix_cb, &next) < 0) {
                        pthread_mutex_lock(&rc->lock);
                        rc->reader_bad++;
                        pthread_mutex_unlock(&rc->lock);
                }
                rc->reader_runs++;
        }
        return NULL;
}

static int cmp64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

static void test_concurrent_commits(void **state)
{
        struct fix *f = *state;
        struct race *rc = calloc(1, sizeof(*rc));
        struct worker w[THREADS];
        pthread_t th[THREADS], reader;
        int64_t next = 1, seq = 0;
        int i;

        pthread_mutex_init(&rc->lock, NULL);
        rc->m[0] = f->m;
        assert_int_equal(meta_pg_open(f->uri, &rc->m[1]), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &rc->user), 0);
        assert_int_equal(pthread_create(&reader, NULL, reader_thread, rc), 0);
        for (i = 0; i < THREADS; i++) {
                w[i].rc = rc;
                w[i].id = i;
                assert_int_equal(pthread_create(&th[i], NULL, commit_thread, &w[i]), 0);
        }
        for (i = 0; i < THREADS; i++)
                pthread_join(th[i], NULL);
        pthread_mutex_lock(&rc->lock);
        rc->done = 1;
        pthread_mutex_unlock(&rc->lock);
        pthread_join(reader, NULL);

        assert_int_equal(rc->failed, 0);
        assert_int_equal(rc->ntaken, THREADS * COMMITS);
        qsort(rc->taken, (size_t)rc->ntaken, sizeof(rc->taken[0]), cmp64);
        for (i = 0; i < rc->ntaken; i++)
                assert_int_equal(rc->taken[i], i + 1); /* no duplicate, no gap */
        assert_int_equal(rc->reader_bad, 0);
        assert_true(rc->reader_runs > 0);
        assert_int_equal(rc->m[1]->ops->seq_current(rc->m[1], rc->user, &seq), 0);
        assert_int_equal(seq, THREADS * COMMITS);
        assert_int_equal(f->m->ops->entry_changes(f->m, rc->user, 0, -1, prefix_cb, &next), 0);
        assert_int_equal(next, THREADS * COMMITS + 1);
        meta_close(rc->m[1]);
        pthread_mutex_destroy(&rc->lock);
        free(rc);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_failed_statement, setup, teardown),
            cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cluster_locks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_connection_lost, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_commits, setup, teardown),
        };

        /* This test is about PostgreSQL only: srvtest_metadata() skips
         * (exit 77) without a server. */
        setenv("FERRY_TEST_METADATA", "pg", 1);
        if (!getenv("FERRY_TEST_PG") || !*getenv("FERRY_TEST_PG")) {
                fprintf(stderr, "SKIP: test-meta_pg: FERRY_TEST_PG is unset: no PostgreSQL to"
                                " test on (start one with scripts/pg.sh)\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
