/* Unit tests for push: the mass-delete guard's decision, a pure function of
 * the scan's delete count, the number of synced entries and the configured
 * thresholds (trips only past both the count and the percentage). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "push.h"

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

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_configured),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
