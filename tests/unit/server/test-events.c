/* test-events: the in-process event hub. Subscribers are woken by a
 * publish for their user only, see the newest seq and who made it, several
 * publishes coalesce into the newest number, an older number is ignored,
 * unsubscribing stops the wake-ups, per-device stream counts, many
 * subscribers, a smoke test of concurrent publish/subscribe threads,
 * transfers versions (coalesced and ordered like seqs, apart from them),
 * the devices and requests versions beside them, and revoking a removed device's subscriptions.
 *
 * The hub across instances (events_pg.c), when FERRY_TEST_PG names a
 * PostgreSQL database (a conninfo URI; the cases skip otherwise): two hubs
 * on one database stand for two instances. A publish on one wakes the
 * other's subscriber (and prints the fan-out latency), versions and
 * revocations travel too, a device's stream on one counts on the other,
 * and after the listening connections are killed a change committed
 * meanwhile (no NOTIFY for it) still reaches the subscriber. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "meta.h"

struct counter {
        int wakes;
};

static void on_wake(void *cls)
{
        ((struct counter *)cls)->wakes++;
}

static void test_publish_wakes_own_user(void **state)
{
        struct events *ev;
        struct events_sub *a, *b;
        struct counter ca = {0}, cb = {0};
        char dev[META_DEVICE_ID_LEN + 1];

        (void)state;
        assert_int_equal(events_local_new(&ev), 0);
        assert_int_equal(events_subscribe(ev, 1, "dev-a", on_wake, &ca, &a), 0);
        assert_int_equal(events_subscribe(ev, 2, "dev-b", on_wake, &cb, &b), 0);
        assert_int_equal(events_latest(ev, a, dev), 0);

        events_publish(ev, 1, 5, "dev-x");
        assert_int_equal(ca.wakes, 1);
        assert_int_equal(cb.wakes, 0);
        assert_int_equal(events_latest(ev, a, dev), 5);
        assert_string_equal(dev, "dev-x");
        assert_int_equal(events_latest(ev, b, NULL), 0);

        /* A user nobody listens to: nothing happens. */
        events_publish(ev, 3, 9, "dev-y");
        assert_int_equal(ca.wakes + cb.wakes, 1);

        events_unsubscribe(ev, a);
        events_unsubscribe(ev, b);
        events_close(ev);
}

static void test_coalesce_and_order(void **state)
{
        struct events *ev;
        struct events_sub *a;
        struct counter c = {0};
        char dev[META_DEVICE_ID_LEN + 1];

        (void)state;
        assert_int_equal(events_local_new(&ev), 0);
        assert_int_equal(events_subscribe(ev, 7, "me", on_wake, &c, &a), 0);
        events_publish(ev, 7, 10, "d1");
        events_publish(ev, 7, 11, "d2");
        events_publish(ev, 7, 12, "d3");
        /* Only the newest number matters to a reader. */
        assert_int_equal(events_latest(ev, a, dev), 12);
        assert_string_equal(dev, "d3");
        assert_int_equal(c.wakes, 3);
        /* Commits racing each other may publish out of order: an older
         * number neither goes back nor wakes anyone. */
        events_publish(ev, 7, 11, "d2");
        events_publish(ev, 7, 12, "d9");
        assert_int_equal(events_latest(ev, a, dev), 12);
        assert_string_equal(dev, "d3");
        assert_int_equal(c.wakes, 3);
        events_unsubscribe(ev, a);
        events_close(ev);
}

static void test_unsubscribe_and_device_streams(void **state)
{
        struct events *ev;
        struct events_sub *s1, *s2, *s3;
        struct counter c1 = {0}, c2 = {0}, c3 = {0};

        (void)state;
        assert_int_equal(events_local_new(&ev), 0);
        assert_int_equal(events_subscribe(ev, 1, "phone", on_wake, &c1, &s1), 0);
        assert_int_equal(events_subscribe(ev, 1, "phone", on_wake, &c2, &s2), 0);
        assert_int_equal(events_subscribe(ev, 1, "laptop", on_wake, &c3, &s3), 0);
        assert_int_equal(events_device_streams(ev, 1, "phone"), 2);
        assert_int_equal(events_device_streams(ev, 1, "laptop"), 1);
        assert_int_equal(events_device_streams(ev, 1, "tablet"), 0);
        assert_int_equal(events_device_streams(ev, 2, "phone"), 0);

        events_unsubscribe(ev, s2); /* from the middle of the list */
        events_publish(ev, 1, 3, "laptop");
        assert_int_equal(c1.wakes, 1);
        assert_int_equal(c2.wakes, 0);
        assert_int_equal(c3.wakes, 1);
        assert_int_equal(events_device_streams(ev, 1, "phone"), 1);

        events_unsubscribe(ev, s1);
        events_unsubscribe(ev, s3);
        assert_int_equal(events_device_streams(ev, 1, "laptop"), 0);
        events_unsubscribe(ev, NULL);
        /* The user's record went with its last subscriber; a new one
         * starts from nothing (it reads the store's seq itself). */
        assert_int_equal(events_subscribe(ev, 1, "phone", on_wake, &c1, &s1), 0);
        assert_int_equal(events_latest(ev, s1, NULL), 0);
        events_unsubscribe(ev, s1);
        events_close(ev);
}

static void test_many_subscribers(void **state)
{
        enum { N = 2000 };
        struct events *ev;
        struct events_sub **subs = calloc(N, sizeof(*subs));
        struct counter *cs = calloc(N, sizeof(*cs));
        int i, total = 0;

        (void)state;
        assert_non_null(subs);
        assert_non_null(cs);
        assert_int_equal(events_local_new(&ev), 0);
        for (i = 0; i < N; i++)
                assert_int_equal(
                    events_subscribe(ev, i % 2 ? 42 : 1000 + i, "d", on_wake, &cs[i], &subs[i]), 0);
        events_publish(ev, 42, 1, "d");
        for (i = 0; i < N; i++) {
                assert_int_equal(cs[i].wakes, i % 2 ? 1 : 0);
                total += cs[i].wakes;
        }
        assert_int_equal(total, N / 2);
        assert_int_equal(events_device_streams(ev, 42, "d"), N / 2);
        for (i = 0; i < N; i += 2)
                events_unsubscribe(ev, subs[i]);
        for (i = 1; i < N; i += 2)
                events_unsubscribe(ev, subs[i]);
        assert_int_equal(events_device_streams(ev, 42, "d"), 0);
        events_close(ev);
        free(subs);
        free(cs);
}

struct race {
        struct events *ev;
        int id;
        int64_t max_seq;
        long wakes; /* atomically bumped by on_atomic_wake */
};

static void on_atomic_wake(void *cls)
{
        __atomic_add_fetch(&((struct race *)cls)->wakes, 1, __ATOMIC_RELAXED);
}

static void *publisher(void *arg)
{
        struct race *r = arg;
        int64_t s;

        for (s = 1; s <= 5000; s++)
                events_publish(r->ev, 1, s * 4 + r->id, "p");
        return NULL;
}

static void *churner(void *arg)
{
        struct race *r = arg;
        struct events_sub *sub;
        int i;

        for (i = 0; i < 2000; i++) {
                assert_int_equal(events_subscribe(r->ev, 1, "c", on_atomic_wake, r, &sub), 0);
                (void)events_latest(r->ev, sub, NULL);
                events_unsubscribe(r->ev, sub);
        }
        return NULL;
}

static void test_threads_smoke(void **state)
{
        struct events *ev;
        struct events_sub *keep;
        struct race rs[6], watcher = {0};
        pthread_t th[6];
        char dev[META_DEVICE_ID_LEN + 1];
        int i;

        (void)state;
        assert_int_equal(events_local_new(&ev), 0);
        watcher.ev = ev;
        assert_int_equal(events_subscribe(ev, 1, "w", on_atomic_wake, &watcher, &keep), 0);
        for (i = 0; i < 6; i++) {
                rs[i] = (struct race){ev, i, 0, 0};
                assert_int_equal(pthread_create(&th[i], NULL, i < 4 ? publisher : churner, &rs[i]),
                                 0);
        }
        for (i = 0; i < 6; i++)
                pthread_join(th[i], NULL);
        /* Whatever the interleaving, the newest number wins, and the
         * watcher was woken once per rise: never for an ignored number. */
        assert_int_equal(events_latest(ev, keep, dev), 5000 * 4 + 3);
        assert_string_equal(dev, "p");
        assert_true(watcher.wakes > 0 && watcher.wakes <= 4 * 5000);
        events_unsubscribe(ev, keep);
        events_close(ev);
}

static void test_transfers_versions(void **state)
{
        struct events *ev;
        struct events_sub *a, *b;
        struct counter ca = {0}, cb = {0};

        (void)state;
        assert_int_equal(events_local_new(&ev), 0);
        assert_int_equal(events_subscribe(ev, 1, "laptop", on_wake, &ca, &a), 0);
        assert_int_equal(events_subscribe(ev, 2, "other", on_wake, &cb, &b), 0);
        assert_int_equal(events_latest_transfers(ev, a), 0);
        events_publish_transfers(ev, 1, 4);
        events_publish_transfers(ev, 1, 5);
        /* Coalesced: the newest version is what a reader sees. */
        assert_int_equal(events_latest_transfers(ev, a), 5);
        assert_int_equal(ca.wakes, 2);
        assert_int_equal(cb.wakes, 0);
        assert_int_equal(events_latest_transfers(ev, b), 0);
        /* Older or equal versions (racing transactions) change nothing. */
        events_publish_transfers(ev, 1, 3);
        events_publish_transfers(ev, 1, 5);
        assert_int_equal(events_latest_transfers(ev, a), 5);
        assert_int_equal(ca.wakes, 2);
        /* Independent of the seq. */
        assert_int_equal(events_latest(ev, a, NULL), 0);
        events_publish(ev, 1, 9, "laptop");
        assert_int_equal(events_latest_transfers(ev, a), 5);
        assert_int_equal(events_latest(ev, a, NULL), 9);
        events_unsubscribe(ev, a);
        events_unsubscribe(ev, b);
        events_close(ev);
}

/* The devices and requests versions (requests/registry): each its own
 * coalesced counter beside the transfers version. */
static void test_registry_versions(void **state)
{
        struct events *ev;
        struct events_sub *a, *b;
        struct counter ca = {0}, cb = {0};

        (void)state;
        assert_int_equal(events_local_new(&ev), 0);
        assert_int_equal(events_subscribe(ev, 1, "laptop", on_wake, &ca, &a), 0);
        assert_int_equal(events_subscribe(ev, 2, "other", on_wake, &cb, &b), 0);
        events_publish_version(ev, 1, EVENTS_DEVICES, 3);
        events_publish_version(ev, 1, EVENTS_REQUESTS, 7);
        events_publish_version(ev, 1, EVENTS_DEVICES, 2); /* older: ignored */
        assert_int_equal(events_latest_version(ev, a, EVENTS_DEVICES), 3);
        assert_int_equal(events_latest_version(ev, a, EVENTS_REQUESTS), 7);
        assert_int_equal(events_latest_transfers(ev, a), 0);
        assert_int_equal(ca.wakes, 2);
        assert_int_equal(cb.wakes, 0);
        assert_int_equal(events_latest_version(ev, b, EVENTS_DEVICES), 0);
        /* The transfers version is the same kind of counter. */
        events_publish_transfers(ev, 1, 1);
        assert_int_equal(events_latest_version(ev, a, EVENTS_TRANSFERS), 1);
        assert_int_equal(events_latest_version(ev, a, EVENTS_DEVICES), 3);
        /* An unknown counter is nobody's business. */
        events_publish_version(ev, 1, EVENTS_NCOUNTERS, 99);
        events_publish_version(ev, 1, -1, 99);
        assert_int_equal(events_latest_version(ev, a, EVENTS_NCOUNTERS), 0);
        assert_int_equal(ca.wakes, 3);
        events_unsubscribe(ev, a);
        events_unsubscribe(ev, b);
        events_close(ev);
}

static void test_revoke(void **state)
{
        struct events *ev;
        struct events_sub *s1, *s2, *s3;
        struct counter c1 = {0}, c2 = {0}, c3 = {0};

        (void)state;
        assert_int_equal(events_local_new(&ev), 0);
        assert_int_equal(events_subscribe(ev, 1, "phone", on_wake, &c1, &s1), 0);
        assert_int_equal(events_subscribe(ev, 1, "phone", on_wake, &c2, &s2), 0);
        assert_int_equal(events_subscribe(ev, 1, "laptop", on_wake, &c3, &s3), 0);
        events_revoke(ev, 2, "phone"); /* another user's device of that id: none */
        assert_int_equal(c1.wakes + c2.wakes + c3.wakes, 0);
        events_revoke(ev, 1, "phone");
        /* Each of the phone's subscribers is woken once and told to end. */
        assert_int_equal(c1.wakes, 1);
        assert_int_equal(c2.wakes, 1);
        assert_int_equal(c3.wakes, 0);
        assert_true(events_revoked(ev, s1) && events_revoked(ev, s2));
        assert_false(events_revoked(ev, s3));
        assert_int_equal(events_device_streams(ev, 1, "phone"), 0);
        assert_int_equal(events_device_streams(ev, 1, "laptop"), 1);
        events_revoke(ev, 1, "phone");
        assert_int_equal(c1.wakes, 1);
        events_unsubscribe(ev, s1);
        events_unsubscribe(ev, s2);
        events_unsubscribe(ev, s3);
        events_close(ev);
}

/* --- across instances (events_pg.c) --------------------------------------- */

/* A subscriber woken from another thread (the listener). */
struct waiter {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int wakes;
};

static void waiter_init(struct waiter *w)
{
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->wakes = 0;
}

static void waiter_destroy(struct waiter *w)
{
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
}

static void on_wake_cond(void *cls)
{
        struct waiter *w = cls;

        pthread_mutex_lock(&w->lock);
        w->wakes++;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits up to ms for the seq seen through sub to reach want. */
static int64_t wait_seq(struct events *ev, struct events_sub *sub, struct waiter *w, int64_t want,
                        int ms)
{
        double until = now_ms() + ms;
        int64_t seq;
        struct timespec ts;

        /* events_latest() takes the hub's lock, under which the hub calls
         * on_wake_cond(), which takes w->lock: so never call it holding
         * w->lock (that order is a deadlock). A wake between the two is
         * caught by the 5 ms bound of the wait. */
        while ((seq = events_latest(ev, sub, NULL)) < want && now_ms() < until) {
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 5 * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                pthread_mutex_lock(&w->lock);
                pthread_cond_timedwait(&w->cond, &w->lock, &ts);
                pthread_mutex_unlock(&w->lock);
        }
        return seq;
}

/* Polls cond(ev...) for up to ms. */
static unsigned wait_streams(struct events *ev, int64_t user, const char *dev, unsigned want,
                             int ms)
{
        double until = now_ms() + ms;
        unsigned n;

        while ((n = events_device_streams(ev, user, dev)) != want && now_ms() < until)
                usleep(5000);
        return n;
}

static const char *pg_conninfo(void)
{
        const char *c = getenv("FERRY_TEST_PG");

        return c && *c ? c : NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static void test_pg_fanout(void **state)
{
        const char *ci = pg_conninfo();
        struct events *a, *b;
        struct events_sub *sa, *sb, *sr;
        struct waiter wa, wb, wr;
        char dev[META_DEVICE_ID_LEN + 1];
        double lat[200];
        int64_t user = 900000 + (getpid() % 10000) * 10, i;
        int n;

        (void)state;
        if (!ci)
                skip();
        waiter_init(&wa);
        waiter_init(&wb);
        waiter_init(&wr);
        assert_int_equal(events_pg_new(ci, &a), 0);
        assert_int_equal(events_pg_new(ci, &b), 0);
        assert_int_equal(events_subscribe(a, user, "dev-a", on_wake_cond, &wa, &sa), 0);
        assert_int_equal(events_subscribe(b, user, "dev-b", on_wake_cond, &wb, &sb), 0);
        assert_int_equal(events_subscribe(b, user, "dev-r", on_wake_cond, &wr, &sr), 0);

        /* A commit announced on a reaches b's subscriber, with its device. */
        events_publish(a, user, 7, "dev-x");
        assert_int_equal(wait_seq(b, sb, &wb, 7, 3000), 7);
        assert_int_equal(events_latest(b, sb, dev), 7);
        assert_string_equal(dev, "dev-x");
        /* a's own subscriber was woken once, locally (its own NOTIFY is
         * skipped when it comes back). */
        assert_int_equal(events_latest(a, sa, NULL), 7);
        usleep(200000);
        assert_int_equal(wa.wakes, 1);
        /* And the other way round; an older seq is ignored. */
        events_publish(b, user, 9, NULL);
        assert_int_equal(wait_seq(a, sa, &wa, 9, 3000), 9);
        events_publish(a, user, 8, "dev-x");
        usleep(200000);
        assert_int_equal(events_latest(b, sb, NULL), 9);

        /* Versions and revocations travel too. */
        events_publish_version(a, user, EVENTS_REQUESTS, 4);
        for (n = 0; n < 300 && events_latest_version(b, sb, EVENTS_REQUESTS) < 4; n++)
                usleep(10000);
        assert_int_equal(events_latest_version(b, sb, EVENTS_REQUESTS), 4);
        assert_int_equal(events_latest_version(b, sb, EVENTS_TRANSFERS), 0);
        events_revoke(a, user, "dev-r");
        for (n = 0; n < 300 && !events_revoked(b, sr); n++)
                usleep(10000);
        assert_true(events_revoked(b, sr));
        assert_false(events_revoked(b, sb));

        /* Fan-out latency: publish on a, woken on b, one at a time. */
        for (i = 0; i < 200; i++) {
                double t0 = now_ms();
                events_publish(a, user, 100 + i, "dev-x");
                assert_int_equal(wait_seq(b, sb, &wb, 100 + i, 3000), 100 + i);
                lat[i] = now_ms() - t0;
        }
        qsort(lat, 200, sizeof(lat[0]), cmp_double);
        printf("events_pg fan-out latency over 200 publishes: median %.3f ms, p99 %.3f ms, "
               "max %.3f ms\n",
               lat[100], lat[197], lat[199]);

        events_unsubscribe(a, sa);
        events_unsubscribe(b, sb);
        events_unsubscribe(b, sr);
        events_close(a);
        events_close(b);
        waiter_destroy(&wa);
        waiter_destroy(&wb);
        waiter_destroy(&wr);
}

static void test_pg_streams_elsewhere(void **state)
{
        const char *ci = pg_conninfo();
        struct events *a, *b;
        struct events_sub *s1, *s2;
        struct counter c = {0};
        int64_t user = 910000 + (getpid() % 10000) * 10;

        (void)state;
        if (!ci)
                skip();
        assert_int_equal(events_pg_new(ci, &a), 0);
        assert_int_equal(events_pg_new(ci, &b), 0);
        assert_int_equal(events_device_streams(a, user, "phone"), 0);
        assert_int_equal(events_subscribe(b, user, "phone", on_wake, &c, &s1), 0);
        assert_int_equal(events_subscribe(b, user, "phone", on_wake, &c, &s2), 0);
        /* Two here; one "elsewhere" as a sees it. */
        assert_int_equal(events_device_streams(b, user, "phone"), 2);
        assert_int_equal(wait_streams(a, user, "phone", 1, 3000), 1);
        assert_int_equal(events_device_streams(a, user, "laptop"), 0);
        events_unsubscribe(b, s1);
        usleep(100000);
        assert_int_equal(events_device_streams(a, user, "phone"), 1);
        events_unsubscribe(b, s2);
        assert_int_equal(wait_streams(a, user, "phone", 0, 3000), 0);
        assert_int_equal(events_device_streams(b, user, "phone"), 0);
        /* An instance that goes away takes its streams' locks with it. */
        assert_int_equal(events_subscribe(b, user, "tablet", on_wake, &c, &s1), 0);
        assert_int_equal(wait_streams(a, user, "tablet", 1, 3000), 1);
        events_unsubscribe(b, s1);
        events_close(b);
        assert_int_equal(wait_streams(a, user, "tablet", 0, 3000), 0);
        events_close(a);
}

static int run_sql(const char *ci, const char *sql)
{
        PGconn *c = PQconnectdb(ci);
        PGresult *res;
        int ok;

        if (PQstatus(c) != CONNECTION_OK) {
                PQfinish(c);
                return -1;
        }
        res = PQexec(c, sql);
        ok = PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        PQfinish(c);
        return ok ? 0 : -1;
}

static void test_pg_reconnect(void **state)
{
        const char *ci = pg_conninfo();
        struct events *a, *b;
        struct events_sub *sb;
        struct waiter wb;
        struct meta *m;
        char name[64];
        int64_t user, seq = 0, v = 0;
        double t0;

        (void)state;
        if (!ci)
                skip();
        /* A real user and space in the store, which the resync reads. */
        assert_int_equal(meta_pg_open(ci, &m), 0);
        snprintf(name, sizeof(name), "evt%ld%ld", (long)getpid(), (long)time(NULL) % 100000);
        assert_int_equal(m->ops->user_add(m, name, "e@example.org", "x", 1, &user), 0);
        waiter_init(&wb);
        assert_int_equal(events_pg_new(ci, &a), 0);
        assert_int_equal(events_pg_new(ci, &b), 0);
        assert_int_equal(events_subscribe(b, user, "dev-b", on_wake_cond, &wb, &sb), 0);
        usleep(100000);

        /* A commit lands that the hubs never hear of (no NOTIFY: the store
         * moves behind their back, as when a NOTIFY is lost), then both
         * listening connections are cut. (In that order: cut first, a hub
         * may reconnect and resync before the commit, and then never learn
         * of it, which is not what is tested here.) */
        assert_int_equal(m->ops->begin(m), 0);
        assert_int_equal(m->ops->seq_next(m, user, &seq), 0);
        assert_int_equal(m->ops->xfer_version_bump(m, user, &v), 0);
        assert_int_equal(m->ops->commit(m), 0);
        assert_true(seq > 0);
        assert_int_equal(events_latest(b, sb, NULL), 0);
        assert_int_equal(run_sql(ci, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                     " WHERE application_name = 'ferryd-events'"),
                         0);
        t0 = now_ms();
        /* b notices, reconnects, and reads the numbers from the store. */
        assert_int_equal(wait_seq(b, sb, &wb, seq, 10000), seq);
        printf("events_pg: a change missed while disconnected arrived after %.0f ms\n",
               now_ms() - t0);
        for (int n = 0; n < 500 && events_latest_transfers(b, sb) < v; n++)
                usleep(10000);
        assert_int_equal(events_latest_transfers(b, sb), v);
        /* And announcements flow again, both ways. */
        events_publish(a, user, seq + 5, "dev-x");
        assert_int_equal(wait_seq(b, sb, &wb, seq + 5, 10000), seq + 5);

        events_unsubscribe(b, sb);
        events_close(a);
        events_close(b);
        meta_close(m);
        waiter_destroy(&wb);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_publish_wakes_own_user),
            cmocka_unit_test(test_coalesce_and_order),
            cmocka_unit_test(test_unsubscribe_and_device_streams),
            cmocka_unit_test(test_many_subscribers),
            cmocka_unit_test(test_threads_smoke),
            cmocka_unit_test(test_transfers_versions),
            cmocka_unit_test(test_registry_versions),
            cmocka_unit_test(test_revoke),
            cmocka_unit_test(test_pg_fanout),
            cmocka_unit_test(test_pg_streams_elsewhere),
            cmocka_unit_test(test_pg_reconnect),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
