/* Unit tests for hash: SHA-256 known answers, incremental hashing equal to
 * one-shot, context reuse, the background hasher (inline and on its
 * thread, equal to one-shot, with one-shot pieces in between), and the
 * strict hex codec. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hash.h"

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_known_answers(void **state)
{
        struct hash h;
        char hex[HASH_HEX_LEN + 1];

        (void)state;
        hash_buf("", 0, &h);
        hash_to_hex(&h, hex);
        assert_string_equal(hex, SHA_EMPTY);
        hash_buf("abc", 3, &h);
        hash_to_hex(&h, hex);
        assert_string_equal(hex, SHA_ABC);
}

static void test_incremental_matches_oneshot(void **state)
{
        static uint8_t data[100000];
        struct hash one, inc, again;
        struct hash_ctx *c = hash_ctx_new();

        (void)state;
        assert_non_null(c);
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 31 + (i >> 8));
        hash_buf(data, sizeof(data), &one);
        for (size_t off = 0; off < sizeof(data); off += 777) {
                size_t n = sizeof(data) - off < 777 ? sizeof(data) - off : 777;
                hash_ctx_update(c, data + off, n);
        }
        hash_ctx_final(c, &inc);
        assert_true(hash_equal(&one, &inc));
        /* final resets: the context hashes a fresh message next */
        hash_ctx_update(c, "abc", 3);
        hash_ctx_final(c, &again);
        hash_buf("abc", 3, &one);
        assert_true(hash_equal(&one, &again));
        hash_ctx_free(c);
        hash_ctx_free(NULL);
}

/* One-shot pieces, inline (before the thread starts) and on the thread,
 * more than the queue holds: each equals hash_buf. */
static void test_background_oneshots(void **state)
{
        size_t piece = 65536, nshots = 600; /* ~39 MiB: past HASH_BG_INLINE */
        uint8_t *data = malloc(nshots * piece);
        struct hash *shots = calloc(nshots, sizeof(*shots)), one;
        struct hash_bg *b = hash_bg_new();

        (void)state;
        assert_non_null(data);
        assert_non_null(shots);
        assert_non_null(b);
        for (size_t i = 0; i < nshots * piece; i++)
                data[i] = (uint8_t)(i * 7 + (i >> 9));
        hash_bg_oneshot(b, data, 1000, &shots[0]); /* no thread yet: done at once */
        hash_buf(data, 1000, &one);
        assert_true(hash_equal(&one, &shots[0]));
        assert_int_equal(hash_bg_backlog(b), 0);
        for (size_t k = 1; k < nshots; k++)
                hash_bg_oneshot(b, data + k * piece, piece, &shots[k]);
        hash_bg_wait(b);
        assert_int_equal(hash_bg_backlog(b), 0);
        for (size_t k = 1; k < nshots; k++) {
                hash_buf(data + k * piece, piece, &one);
                assert_true(hash_equal(&one, &shots[k]));
        }
        hash_bg_free(b);
        hash_bg_free(NULL);
        free(shots);
        free(data);
}

/* A mark covers the pieces handed over before it, whatever came after:
 * once hash_bg_wait_mark() returns their results are written and their
 * bytes may be reused, as manifest_from_fd does with its two buffers. */
static void test_background_marks(void **state)
{
        size_t piece = 256 * 1024, n = 64;
        uint8_t *a = malloc(n * piece), *b2 = malloc(n * piece);
        struct hash ra[64], rb[64], one;
        struct hash_bg *b = hash_bg_new();
        uint64_t mark;

        (void)state;
        assert_non_null(a);
        assert_non_null(b2);
        assert_non_null(b);
        for (size_t i = 0; i < n * piece; i++) {
                a[i] = (uint8_t)(i * 13 + (i >> 7));
                b2[i] = (uint8_t)(i * 29 + (i >> 5));
        }
        for (size_t k = 0; k < n; k++)
                hash_bg_oneshot(b, a + k * piece, piece, &ra[k]);
        mark = hash_bg_mark(b);
        for (size_t k = 0; k < n; k++)
                hash_bg_oneshot(b, b2 + k * piece, piece, &rb[k]);
        hash_bg_wait_mark(b, mark);
        for (size_t k = 0; k < n; k++) {
                hash_buf(a + k * piece, piece, &one);
                assert_true(hash_equal(&one, &ra[k]));
        }
        memset(a, 0, n * piece); /* reuse: must not change what is pending */
        hash_bg_wait(b);
        for (size_t k = 0; k < n; k++) {
                hash_buf(b2 + k * piece, piece, &one);
                assert_true(hash_equal(&one, &rb[k]));
        }
        hash_bg_free(b);
        free(a);
        free(b2);
}

/* Freed with pieces still pending: the thread finishes them and stops. */
static void test_background_free_while_busy(void **state)
{
        size_t len = 4 * HASH_BG_INLINE, piece = 65536;
        uint8_t *data = calloc(1, len);
        struct hash *out = calloc(len / piece, sizeof(*out));
        struct hash_bg *b = hash_bg_new();

        (void)state;
        assert_non_null(data);
        assert_non_null(out);
        assert_non_null(b);
        for (size_t k = 0; k < len / piece; k++)
                hash_bg_oneshot(b, data + k * piece, piece, &out[k]);
        hash_bg_free(b);
        free(out);
        free(data);
}

static void test_hex_roundtrip(void **state)
{
        struct hash h, back;
        char hex[HASH_HEX_LEN + 1];

        (void)state;
        hash_buf("ferry", 5, &h);
        hash_to_hex(&h, hex);
        assert_int_equal(strlen(hex), HASH_HEX_LEN);
        assert_int_equal(hash_from_hex(hex, &back), 0);
        assert_true(hash_equal(&h, &back));
}

static void test_hex_accepts_upper_case(void **state)
{
        struct hash a, b;
        char up[] = SHA_ABC;

        (void)state;
        for (char *p = up; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
        assert_int_equal(hash_from_hex(SHA_ABC, &a), 0);
        assert_int_equal(hash_from_hex(up, &b), 0);
        assert_true(hash_equal(&a, &b));
}

static void test_hex_rejects_bad_input(void **state)
{
        struct hash h;
        char bad[HASH_HEX_LEN + 2];

        (void)state;
        memset(&h, 0x55, sizeof(h));
        assert_int_equal(hash_from_hex("", &h), -EINVAL);
        assert_int_equal(hash_from_hex(NULL, &h), -EINVAL);
        /* 63 digits */
        assert_int_equal(hash_from_hex(SHA_ABC + 1, &h), -EINVAL);
        /* 65 digits */
        snprintf(bad, sizeof(bad), "%s0", SHA_ABC);
        assert_int_equal(hash_from_hex(bad, &h), -EINVAL);
        /* a non-hex digit */
        snprintf(bad, sizeof(bad), "%s", SHA_ABC);
        bad[10] = 'g';
        assert_int_equal(hash_from_hex(bad, &h), -EINVAL);
        bad[10] = ' ';
        assert_int_equal(hash_from_hex(bad, &h), -EINVAL);
        /* failures leave the output alone */
        for (int i = 0; i < HASH_LEN; i++)
                assert_int_equal(h.b[i], 0x55);
}

static void test_equal_and_zero(void **state)
{
        struct hash a, b, z;

        (void)state;
        memset(&z, 0, sizeof(z));
        hash_buf("a", 1, &a);
        hash_buf("b", 1, &b);
        assert_false(hash_equal(&a, &b));
        assert_true(hash_equal(&a, &a));
        assert_true(hash_is_zero(&z));
        assert_false(hash_is_zero(&a));
        z.b[HASH_LEN - 1] = 1;
        assert_false(hash_is_zero(&z));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_known_answers),
            cmocka_unit_test(test_incremental_matches_oneshot),
            cmocka_unit_test(test_background_marks),
            cmocka_unit_test(test_background_free_while_busy),
            cmocka_unit_test(test_background_oneshots),
            cmocka_unit_test(test_hex_roundtrip),
            cmocka_unit_test(test_hex_accepts_upper_case),
            cmocka_unit_test(test_hex_rejects_bad_input),
            cmocka_unit_test(test_equal_and_zero),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
