/* test-auth: password hashing and verification (Argon2id), device tokens
 * and their stored hashes, bearer header parsing, and the account field
 * rules of docs/api.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "auth.h"
#include "err.h"
#include "srvtest.h"

static int setup(void **state)
{
        (void)state;
        return auth_init();
}

static void test_password(void **state)
{
        char h1[AUTH_PWHASH_LEN + 1], h2[AUTH_PWHASH_LEN + 1];

        (void)state;
        assert_int_equal(auth_password_hash("correct horse", 13, h1), 0);
        assert_int_equal(auth_password_hash("correct horse", 13, h2), 0);
        assert_true(strncmp(h1, "$argon2id$", 10) == 0);
        assert_string_not_equal(h1, h2); /* salted */
        assert_int_equal(auth_password_verify(h1, "correct horse", 13), 0);
        assert_int_equal(auth_password_verify(h2, "correct horse", 13), 0);
        assert_int_equal(auth_password_verify(h1, "correct horsE", 13), -EACCES);
        assert_int_equal(auth_password_verify(h1, "correct hors", 12), -EACCES);
        assert_int_equal(auth_password_verify("garbage", "correct horse", 13), -EACCES);
}

static void test_tokens(void **state)
{
        char t1[AUTH_TOKEN_HEX_LEN + 1], t2[AUTH_TOKEN_HEX_LEN + 1];
        struct hash a, b, c;
        size_t i;

        (void)state;
        assert_int_equal(auth_token_new(t1), 0);
        assert_int_equal(auth_token_new(t2), 0);
        assert_int_equal(strlen(t1), 64);
        for (i = 0; i < 64; i++)
                assert_non_null(strchr("0123456789abcdef", t1[i]));
        assert_string_not_equal(t1, t2);
        assert_int_equal(auth_token_hash(t1, &a), 0);
        assert_int_equal(auth_token_hash(t1, &b), 0);
        assert_int_equal(auth_token_hash(t2, &c), 0);
        assert_true(auth_hash_equal(&a, &b));
        assert_false(auth_hash_equal(&a, &c));
        /* The stored form is not the token itself. */
        assert_true(memcmp(a.b, t1, HASH_LEN) != 0);
        assert_int_equal(auth_token_hash("abc", &a), -EACCES);
        t1[5] = 'G';
        assert_int_equal(auth_token_hash(t1, &a), -EACCES);
}

static void test_bearer(void **state)
{
        char tok[AUTH_TOKEN_HEX_LEN + 1], hdr[100];
        const char *good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

        (void)state;
        snprintf(hdr, sizeof(hdr), "Bearer %s", good);
        assert_int_equal(auth_parse_bearer(hdr, tok), 0);
        assert_string_equal(tok, good);
        snprintf(hdr, sizeof(hdr), "bearer %s", good);
        assert_int_equal(auth_parse_bearer(hdr, tok), 0);
        assert_int_equal(auth_parse_bearer(NULL, tok), -EACCES);
        assert_int_equal(auth_parse_bearer("Basic dXNlcjpwYXNz", tok), -EACCES);
        assert_int_equal(auth_parse_bearer("Bearer ", tok), -EACCES);
        snprintf(hdr, sizeof(hdr), "Bearer %s0", good);
        assert_int_equal(auth_parse_bearer(hdr, tok), -EACCES);
        snprintf(hdr, sizeof(hdr), "Bearer %.63sZ", good);
        assert_int_equal(auth_parse_bearer(hdr, tok), -EACCES);
}

static void test_field_rules(void **state)
{
        char long_name[70], long_pw[1100], long_mail[300];

        (void)state;
        assert_int_equal(auth_check_user_name("alice"), 0);
        assert_int_equal(auth_check_user_name("A.b_c-9"), 0);
        assert_int_equal(auth_check_user_name(""), -EINVAL);
        assert_int_equal(auth_check_user_name(".alice"), -EINVAL);
        assert_int_equal(auth_check_user_name("-alice"), -EINVAL);
        assert_int_equal(auth_check_user_name("al ice"), -EINVAL);
        assert_int_equal(auth_check_user_name("al/ice"), -EINVAL);
        assert_int_equal(auth_check_user_name("ålice"), -EINVAL);
        memset(long_name, 'a', 64);
        long_name[64] = '\0';
        assert_int_equal(auth_check_user_name(long_name), 0);
        long_name[64] = 'a';
        long_name[65] = '\0';
        assert_int_equal(auth_check_user_name(long_name), -EINVAL);

        assert_int_equal(auth_check_email("a@example.org"), 0);
        assert_int_equal(auth_check_email("example.org"), -EINVAL);
        memset(long_mail, 'm', 255);
        long_mail[3] = '@';
        long_mail[255] = '\0';
        assert_int_equal(auth_check_email(long_mail), -EINVAL);

        assert_int_equal(auth_check_password("12345678", 8), 0);
        assert_int_equal(auth_check_password("1234567", 7), -EINVAL);
        memset(long_pw, 'p', sizeof(long_pw));
        assert_int_equal(auth_check_password(long_pw, 1024), 0);
        assert_int_equal(auth_check_password(long_pw, 1025), -EINVAL);

        assert_int_equal(auth_check_device_name("laptop"), 0);
        assert_int_equal(auth_check_device_name("Élodie's laptop"), 0);
        assert_int_equal(auth_check_device_name(""), -EINVAL);
        assert_int_equal(auth_check_device_name("tab\there"), -EINVAL);
        assert_int_equal(auth_check_device_name("\xff\xfe"), -EINVAL);
        assert_int_equal(auth_check_platform(""), 0);
        assert_int_equal(auth_check_platform("linux"), 0);
        assert_int_equal(auth_check_platform("a\nb"), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_password),
            cmocka_unit_test(test_tokens),
            cmocka_unit_test(test_bearer),
            cmocka_unit_test(test_field_rules),
        };

        return cmocka_run_group_tests(tests, setup, NULL);
}
