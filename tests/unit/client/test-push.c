/* Unit tests for push: the mass-delete guard's decision, a pure function of
 * the scan's delete count, the number of synced entries and the configured
 * thresholds (trips only past both the count and the percentage); and the
 * common-prefix / common-suffix diff (transfer_diff) that a commit's patch
 * is made of: for overwrite, insert, append, truncate, delete-all, from an
 * empty base, two edited regions, and repeated chunks, the diff is the
 * expected region and applying it to the base gives the new list. And the
 * upload groups: a group holds at least one change and stops once its
 * files reach the target, and the next target is about PUSH_GROUP_SECONDS
 * at the last group's rate, within bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "push.h"
#include "transfer.h"

static void test_defaults(void **state)
{
        (void)state;
        /* default: more than 50 files AND more than 25% */
        assert_false(push_mass_delete_tripped(0, 0, 50, 25));
        assert_false(push_mass_delete_tripped(50, 50, 50, 25));    /* not more than 50 */
        assert_true(push_mass_delete_tripped(51, 51, 50, 25));     /* everything */
        assert_true(push_mass_delete_tripped(51, 200, 50, 25));    /* 25.5% */
        assert_false(push_mass_delete_tripped(50, 200, 50, 25));   /* 25% exactly, 50 */
        assert_false(push_mass_delete_tripped(51, 204, 50, 25));   /* exactly 25% */
        assert_false(push_mass_delete_tripped(100, 1000, 50, 25)); /* 10% of a big folder */
        assert_true(push_mass_delete_tripped(1000, 1000, 50, 25));
}

static void test_configured(void **state)
{
        (void)state;
        assert_true(push_mass_delete_tripped(1, 1, 0, 0));
        assert_false(push_mass_delete_tripped(0, 10, 0, 0));
        assert_false(push_mass_delete_tripped(10, 10, 10, 0));
        assert_false(push_mass_delete_tripped(11, 20, 10, 100)); /* never more than 100% */
        assert_true(push_mass_delete_tripped(11, 20, 10, 50));
        /* big numbers do not overflow */
        assert_true(push_mass_delete_tripped(INT64_C(1) << 40, INT64_C(1) << 41, 50, 25));
        assert_false(push_mass_delete_tripped(INT64_C(1) << 40, INT64_C(1) << 43, 50, 25));
}

/* A manifest of chunks named by letters: "abcd" is 4 chunks, where equal
 * letters are equal chunks (hash and size). */
static void letters(const char *s, struct manifest *m)
{
        memset(m, 0, sizeof(*m));
        for (; *s; s++) {
                struct hash h;

                memset(&h, 0, sizeof(h));
                h.b[0] = (uint8_t)*s;
                assert_int_equal(manifest_add(m, &h, 100 + (uint32_t)*s), 0);
        }
}

static void check_diff(const char *base, const char *cur, size_t start, size_t del, size_t ins)
{
        struct manifest b, c, out = MANIFEST_INIT;
        struct transfer_diff d;
        size_t i;

        letters(base, &b);
        letters(cur, &c);
        transfer_diff(&b, &c, &d);
        assert_int_equal(d.start, start);
        assert_int_equal(d.del, del);
        assert_int_equal(d.ins, ins);
        /* base[0, start) + cur[start, start + ins) + base[start + del, n) */
        for (i = 0; i < d.start; i++)
                assert_int_equal(manifest_add(&out, &b.chunks[i].hash, b.chunks[i].size), 0);
        for (i = d.start; i < d.start + d.ins; i++)
                assert_int_equal(manifest_add(&out, &c.chunks[i].hash, c.chunks[i].size), 0);
        for (i = d.start + d.del; i < b.n; i++)
                assert_int_equal(manifest_add(&out, &b.chunks[i].hash, b.chunks[i].size), 0);
        assert_int_equal(out.n, c.n);
        assert_int_equal(out.size, c.size);
        for (i = 0; i < c.n; i++)
                assert_true(hash_equal(&out.chunks[i].hash, &c.chunks[i].hash));
        manifest_free(&b);
        manifest_free(&c);
        manifest_free(&out);
}

static void test_diff(void **state)
{
        (void)state;
        check_diff("abcdef", "abcdef", 6, 0, 0);  /* nothing changed */
        check_diff("abcdef", "abXdef", 2, 1, 1);  /* overwrite in one chunk */
        check_diff("abcdef", "abXYdef", 2, 1, 2); /* insert: a chunk cut in two */
        check_diff("abcdef", "abcXdef", 3, 0, 1); /* pure insert on a boundary */
        check_diff("abcdef", "abcdeXY", 5, 1, 2); /* append: the last chunk grows */
        check_diff("abcdef", "abcdefXY", 6, 0, 2);
        check_diff("abcdef", "abcX", 3, 3, 1); /* truncate */
        check_diff("abcdef", "abc", 3, 3, 0);
        check_diff("abcdef", "", 0, 6, 0); /* delete all */
        check_diff("", "abc", 0, 0, 3);    /* from an empty base */
        check_diff("abcdef", "Xbcdef", 0, 1, 1);
        check_diff("abcdef", "aXcdYf", 1, 4, 4); /* two regions: one span */
        check_diff("aaaa", "aaaaa", 4, 0, 1);    /* repeats: prefix and suffix do not overlap */
        check_diff("aaaaa", "aaaa", 4, 1, 0);
        check_diff("abab", "ab", 2, 2, 0);
}

static void test_groups(void **state)
{
        struct local_change c[6] = {{0}}, *p[6];
        uint64_t sizes[6] = {100, 0, 300, 50, 1000, 10};

        (void)state;
        for (int i = 0; i < 6; i++) {
                c[i].op = CHANGE_PUT;
                c[i].kind = i == 1 ? KIND_DIR : KIND_FILE;
                c[i].size = sizes[i];
                p[i] = &c[i];
        }
        c[3].op = CHANGE_DELETE;                           /* its size does not count */
        assert_int_equal(push_group_end(p, 6, 0, 350), 3); /* 100 + 0 + 300 */
        assert_int_equal(push_group_end(p, 6, 0, 100), 1); /* reached at once */
        assert_int_equal(push_group_end(p, 6, 3, 1), 5);   /* the delete, then 1000 */
        assert_int_equal(push_group_end(p, 6, 4, 1), 5);   /* at least one change */
        assert_int_equal(push_group_end(p, 6, 0, 1u << 30), 6);
        assert_int_equal(push_group_end(p, 6, 5, 1u << 30), 6);

        /* 8 MiB in 1 s: 16 MiB for 2 s */
        assert_int_equal(push_group_target(8u << 20, 1000000000), 16u << 20);
        assert_int_equal(push_group_target(1, 1000000000), PUSH_GROUP_MIN);
        assert_int_equal(push_group_target(1ull << 40, 1), PUSH_GROUP_MAX);
        assert_int_equal(push_group_target(5, 0), PUSH_GROUP_MAX);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_groups),
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_configured),
            cmocka_unit_test(test_diff),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
