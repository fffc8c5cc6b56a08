/* test-events: the in-process event hub. Subscribers are woken by a
 * publish for their user only, see the newest seq and who made it, several
 * publishes coalesce into the newest number, an older number is ignored,
 * unsubscribing stops the wake-ups, per-device stream counts, many
 * subscribers, a smoke test of concurrent publish/subscribe threads,
 * transfers versions (coalesced and ordered like seqs, apart from them),
 * the devices and requests versions beside them, and revoking a removed device's subscriptions. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"

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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
