/* Unit tests for conflict: the names of conflict copies (extension rules,
 * device name sanitizing, length limits on UTF-8 names). Runs with TZ=UTC so
 * the time stamp in the names is predictable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "conflict.h"
#include "path.h"

/* 2026-11-21 14:02:05 UTC */
#define WHEN ((time_t)1795269725)

static void expect_name(const char *path, const char *device, const char *want)
{
        char *got = conflict_name(path, device, WHEN);

        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(path_validate(got), 0);
        free(got);
}

static void test_extension(void **state)
{
        (void)state;
        expect_name("dir/report.txt", "laptop",
                    "dir/report (conflict from laptop 2026-11-21 140205).txt");
        expect_name("report.txt", "laptop", "report (conflict from laptop 2026-11-21 140205).txt");
        expect_name("a.b/c", "laptop", "a.b/c (conflict from laptop 2026-11-21 140205)");
}

static void test_dotfile_and_double_extension(void **state)
{
        (void)state;
        expect_name(".bashrc", "laptop", ".bashrc (conflict from laptop 2026-11-21 140205)");
        expect_name("home/.config.old", "pc",
                    "home/.config (conflict from pc 2026-11-21 140205).old");
        expect_name("archive.tar.gz", "laptop",
                    "archive.tar (conflict from laptop 2026-11-21 140205).gz");
        expect_name("Makefile", "laptop", "Makefile (conflict from laptop 2026-11-21 140205)");
        expect_name("trailing.", "laptop", "trailing. (conflict from laptop 2026-11-21 140205)");
}

static void test_device_sanitized(void **state)
{
        (void)state;
        expect_name("x.txt", "my/dev\x01ice", "x (conflict from my_dev_ice 2026-11-21 140205).txt");
        expect_name("x.txt", "back\\slash\x7f",
                    "x (conflict from back_slash_ 2026-11-21 140205).txt");
        expect_name("x.txt", "bad\xff\xc3utf", "x (conflict from bad__utf 2026-11-21 140205).txt");
        expect_name("x.txt", "", "x (conflict from unknown 2026-11-21 140205).txt");
        expect_name("x.txt", "Zoë's café", "x (conflict from Zoë's café 2026-11-21 140205).txt");
}

static void test_long_utf8_name_truncated(void **state)
{
        char name[600], *got;
        const char *base, *suffix = " (conflict from laptop 2026-11-21 140205).txt";
        size_t i, blen;

        (void)state;
        /* 250 two-byte characters: 500 bytes of stem, cut on a character
         * boundary so the result stays valid UTF-8 */
        strcpy(name, "d/");
        for (i = 0; i < 250; i++)
                strcat(name, "\xc3\xa9");
        strcat(name, ".txt");
        got = conflict_name(name, "laptop", WHEN);
        assert_non_null(got);
        assert_int_equal(path_validate(got), 0);
        base = path_basename(got);
        blen = strlen(base);
        assert_true(blen <= NAME_MAX_BYTES);
        assert_true(blen >= NAME_MAX_BYTES - 1); /* uses the room it has */
        assert_true(blen > strlen(suffix));
        assert_string_equal(base + blen - strlen(suffix), suffix);
        assert_memory_equal(got, "d/\xc3\xa9\xc3\xa9", 6);
        free(got);

        /* a 255-byte ASCII name: exactly NAME_MAX_BYTES after the cut */
        memset(name, 'a', 251);
        strcpy(name + 251, ".txt");
        got = conflict_name(name, "laptop", WHEN);
        assert_non_null(got);
        assert_int_equal(strlen(got), NAME_MAX_BYTES);
        assert_int_equal(path_validate(got), 0);
        free(got);
}

static void test_long_extension(void **state)
{
        char name[300], *got;

        (void)state;
        /* an extension too long to keep: the whole name is the stem */
        name[0] = 'x';
        name[1] = '.';
        memset(name + 2, 'e', 240);
        name[242] = '\0';
        got = conflict_name(name, "laptop", WHEN);
        assert_non_null(got);
        assert_true(strlen(got) <= NAME_MAX_BYTES);
        assert_int_equal(path_validate(got), 0);
        assert_non_null(strstr(got, "(conflict from laptop 2026-11-21 140205)"));
        assert_int_equal(strncmp(got, "x.eee", 5), 0);
        free(got);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_extension),
            cmocka_unit_test(test_dotfile_and_double_extension),
            cmocka_unit_test(test_device_sanitized),
            cmocka_unit_test(test_long_utf8_name_truncated),
            cmocka_unit_test(test_long_extension),
        };

        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
