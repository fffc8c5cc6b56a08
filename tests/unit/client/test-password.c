/* Unit tests for password: which source is used (environment, then
 * --password-stdin, then a terminal prompt, else none) and how one line is
 * read (newline and CR stripped, empty and over-long lines refused). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "password.h"

static void test_pick(void **state)
{
        (void)state;
        assert_int_equal(password_pick("pw", 1, 1), PASSWORD_FROM_ENV);
        assert_int_equal(password_pick("pw", 0, 0), PASSWORD_FROM_ENV);
        assert_int_equal(password_pick(NULL, 1, 1), PASSWORD_FROM_STDIN);
        assert_int_equal(password_pick(NULL, 1, 0), PASSWORD_FROM_STDIN);
        assert_int_equal(password_pick(NULL, 0, 1), PASSWORD_FROM_PROMPT);
        assert_int_equal(password_pick(NULL, 0, 0), PASSWORD_FROM_NOWHERE);
}

static int read_from(const char *text, char **out)
{
        FILE *f = fmemopen((void *)text, strlen(text), "r");
        int r;

        assert_non_null(f);
        r = password_read_line(f, out);
        fclose(f);
        return r;
}

static void test_read_line(void **state)
{
        char *pw = NULL, *big;

        (void)state;
        assert_int_equal(read_from("secret123\nsecond line\n", &pw), 0);
        assert_string_equal(pw, "secret123");
        free(pw);
        assert_int_equal(read_from("with space\r\n", &pw), 0);
        assert_string_equal(pw, "with space");
        free(pw);
        assert_int_equal(read_from("no-newline", &pw), 0);
        assert_string_equal(pw, "no-newline");
        free(pw);
        assert_int_equal(read_from("\n", &pw), -EINVAL);
        assert_int_equal(read_from("", &pw), -EINVAL);

        big = malloc(PASSWORD_MAX + 3);
        assert_non_null(big);
        memset(big, 'a', PASSWORD_MAX);
        big[PASSWORD_MAX] = '\n';
        big[PASSWORD_MAX + 1] = '\0';
        assert_int_equal(read_from(big, &pw), 0); /* exactly the limit */
        assert_int_equal(strlen(pw), PASSWORD_MAX);
        free(pw);
        memset(big, 'a', PASSWORD_MAX + 1);
        big[PASSWORD_MAX + 1] = '\n';
        big[PASSWORD_MAX + 2] = '\0';
        assert_int_equal(read_from(big, &pw), -EINVAL);
        free(big);
}

static void test_env_wins(void **state)
{
        char *pw = NULL;

        (void)state;
        setenv("FERRY_PASSWORD", "from-env", 1);
        assert_int_equal(password_get(1, &pw), 0);
        assert_string_equal(pw, "from-env");
        free(pw);
        setenv("FERRY_PASSWORD", "", 1);
        assert_int_equal(password_get(1, &pw), -EINVAL);
        unsetenv("FERRY_PASSWORD");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pick),
            cmocka_unit_test(test_read_line),
            cmocka_unit_test(test_env_wins),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
