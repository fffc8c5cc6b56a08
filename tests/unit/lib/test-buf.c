/* Unit tests for buf: growth, the NUL kept past len, printf, consume and
 * steal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void test_append_grows_and_terminates(void **state)
{
        struct buf b = BUF_INIT;

        (void)state;
        assert_null(b.data);
        assert_int_equal(buf_append_str(&b, "hello"), 0);
        assert_int_equal(b.len, 5);
        assert_string_equal((char *)b.data, "hello");
        for (int i = 0; i < 10000; i++)
                assert_int_equal(buf_append(&b, "x", 1), 0);
        assert_int_equal(b.len, 10005);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], 0);
        assert_memory_equal(b.data, "hellox", 6);
        buf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
}

static void test_append_empty(void **state)
{
        struct buf b = BUF_INIT;

        (void)state;
        assert_int_equal(buf_append(&b, NULL, 0), 0);
        assert_non_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.data[0], 0);
        buf_free(&b);
}

static void test_printf(void **state)
{
        struct buf b = BUF_INIT;
        char big[3000];

        (void)state;
        assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
        assert_string_equal((char *)b.data, "42-x");
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(buf_printf(&b, "[%s]", big), 0);
        assert_int_equal(b.len, 4 + 2 + sizeof(big) - 1);
        assert_int_equal(b.data[4], '[');
        assert_int_equal(b.data[b.len - 1], ']');
        assert_int_equal(b.data[b.len], 0);
        buf_free(&b);
}

static void test_consume_and_reset(void **state)
{
        struct buf b = BUF_INIT;
        size_t cap;

        (void)state;
        assert_int_equal(buf_append_str(&b, "abcdef"), 0);
        buf_consume(&b, 2);
        assert_int_equal(b.len, 4);
        assert_string_equal((char *)b.data, "cdef");
        buf_consume(&b, 4);
        assert_int_equal(b.len, 0);
        assert_string_equal((char *)b.data, "");
        assert_int_equal(buf_append_str(&b, "xyz"), 0);
        cap = b.cap;
        buf_reset(&b);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, cap);
        assert_string_equal((char *)b.data, "");
        buf_free(&b);
}

static void test_steal(void **state)
{
        struct buf b = BUF_INIT;
        uint8_t *p;
        size_t len = 0;

        (void)state;
        assert_int_equal(buf_append_str(&b, "mine"), 0);
        p = buf_steal(&b, &len);
        assert_non_null(p);
        assert_int_equal(len, 4);
        assert_string_equal((char *)p, "mine");
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
        free(p);
        buf_free(&b); /* harmless after steal */
}

static void test_reserve(void **state)
{
        struct buf b = BUF_INIT;

        (void)state;
        assert_int_equal(buf_reserve(&b, 1000), 0);
        assert_true(b.cap >= 1001);
        assert_int_equal(b.len, 0);
        assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
        buf_free(&b);
}

/* An array grows by doubling from 16, keeps what it held, and an
 * impossible size is refused with the array untouched. */
static void test_grow_array(void **state)
{
        uint64_t *v = NULL;
        size_t cap = 0;

        (void)state;
        assert_int_equal(buf_grow_array(&v, &cap, 1, sizeof(*v)), 0);
        assert_int_equal(cap, 16);
        for (size_t i = 0; i < 1000; i++) {
                assert_int_equal(buf_grow_array(&v, &cap, i + 1, sizeof(*v)), 0);
                assert_true(cap >= i + 1);
                v[i] = i * 7;
        }
        assert_int_equal(cap, 1024);
        for (size_t i = 0; i < 1000; i++)
                assert_true(v[i] == i * 7);
        assert_int_equal(buf_grow_array(&v, &cap, 10, sizeof(*v)), 0); /* no shrink */
        assert_int_equal(cap, 1024);
        assert_int_equal(buf_grow_array(&v, &cap, SIZE_MAX / 4, sizeof(*v)), -ENOMEM);
        assert_int_equal(cap, 1024);
        assert_true(v[999] == 999 * 7);
        free(v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_append_grows_and_terminates),
            cmocka_unit_test(test_append_empty),
            cmocka_unit_test(test_printf),
            cmocka_unit_test(test_consume_and_reset),
            cmocka_unit_test(test_steal),
            cmocka_unit_test(test_reserve),
            cmocka_unit_test(test_grow_array),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
