/* Unit tests for path: every rule of path.h against hostile inputs
 * (traversal, absolute paths, control characters, huge names, invalid and
 * overlong UTF-8, Ferry's reserved names), valid names that must pass, and
 * the join/dirname/basename helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "path.h"

static void bad(const char *p)
{
        err_clear();
        if (path_validate(p) != -EINVAL)
                fail_msg("accepted invalid path \"%s\"", p);
        /* every refusal says which rule failed */
        assert_non_null(strstr(err_msg(-EINVAL), "invalid path"));
}

static void good(const char *p)
{
        if (path_validate(p) != 0)
                fail_msg("refused valid path \"%s\": %s", p, err_msg(-EINVAL));
}

static void test_traversal_and_shape(void **state)
{
        (void)state;
        bad(NULL);
        bad("");
        bad("/");
        bad("/etc/passwd");
        bad("../x");
        bad("..");
        bad(".");
        bad("a/../b");
        bad("a/./b");
        bad("a/..");
        bad("a/.");
        bad("./a");
        bad("a//b");
        bad("a/");
        bad("//a");
        bad("a\\b");
        bad("..\\x");
}

static void test_control_characters(void **state)
{
        char p[8] = "a?b";

        (void)state;
        for (int c = 1; c < 0x20; c++) {
                p[1] = (char)c;
                bad(p);
        }
        p[1] = 0x7f;
        bad(p);
        bad("x\ty");
        bad("line\nbreak");
}

static void test_lengths(void **state)
{
        char *p = malloc(5001);
        char comp[300];

        (void)state;
        memset(p, 'a', 5000);
        p[5000] = '\0';
        bad(p); /* 5000-byte name */
        memset(comp, 'b', 256);
        comp[256] = '\0';
        bad(comp); /* 256-byte component */
        comp[255] = '\0';
        good(comp); /* 255 is allowed */
        /* exactly PATH_MAX_BYTES made of 199-byte components is fine */
        for (size_t i = 0; i < PATH_MAX_BYTES; i++)
                p[i] = (i % 200 == 199) ? '/' : 'c';
        p[PATH_MAX_BYTES] = '\0';
        good(p);
        p[PATH_MAX_BYTES] = 'c';
        p[PATH_MAX_BYTES + 1] = '\0';
        bad(p);
        free(p);
}

static void test_utf8(void **state)
{
        (void)state;
        good("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt"); /* café/日本.txt */
        good("\xf0\x9f\x98\x80 smile");                   /* U+1F600 */
        good("\xef\xbf\xbd");                             /* U+FFFD */
        good("\xf4\x8f\xbf\xbf");                         /* U+10FFFF */
        bad("\xff");
        bad("a\x80");              /* stray continuation */
        bad("\xc3");               /* truncated */
        bad("\xc3/x");             /* truncated before '/' */
        bad("\xe6\x97");           /* truncated 3-byte */
        bad("\xc0\xaf");           /* overlong '/' */
        bad("\xc1\xbf");           /* overlong */
        bad("\xe0\x80\xaf");       /* overlong 3-byte '/' */
        bad("\xf0\x80\x80\xaf");   /* overlong 4-byte '/' */
        bad("\xc0\xae\xc0\xae/x"); /* overlong "..": must not pass */
        bad("\xed\xa0\x80");       /* surrogate U+D800 */
        bad("\xed\xbf\xbf");       /* surrogate U+DFFF */
        bad("\xf4\x90\x80\x80");   /* past U+10FFFF */
        bad("\xf5\x80\x80\x80");
        bad("\xf8\x88\x80\x80\x80");   /* 5-byte form */
        bad("a\xe6\x97\xa5\xe6\x97x"); /* cut in the middle */
}

static void test_reserved_names(void **state)
{
        (void)state;
        bad(".ferry");
        bad(".ferry/config");
        bad(".ferry/index.db");
        bad(".ferry-tmp-abc");
        bad("dir/.ferry-tmp-123");
        bad(".ferry-tmp-x/y");
        bad(".ferry-tmp-");
        /* only the root .ferry is reserved; similar names are user files */
        good("sub/.ferry");
        good(".ferryrc");
        good(".ferry-notes");
        good("x.ferry-tmp-1");
}

static void test_valid(void **state)
{
        (void)state;
        good("a");
        good("a b/c.txt");
        good(".hidden");
        good("dir/.x");
        good("...");
        good("..a");
        good("a..");
        good("a/b/c/d/e/f");
        good("NAME (conflict from laptop 2026-11-21 215236).txt");
        good("~$lock#1;%20&x");
}

static void test_is_temp(void **state)
{
        (void)state;
        assert_true(path_is_temp(".ferry-tmp-abc"));
        assert_true(path_is_temp("a/b/.ferry-tmp-abc"));
        assert_false(path_is_temp(".ferry-tmp-abc/file"));
        assert_false(path_is_temp("a/file"));
        assert_false(path_is_temp(".ferry"));
}

static void test_join(void **state)
{
        struct {
                const char *root, *rel, *want;
        } cases[] = {
            {"/home/u/Ferry", "a/b", "/home/u/Ferry/a/b"},
            {"/home/u/Ferry/", "a", "/home/u/Ferry/a"},
            {"/home/u/Ferry//", "/a", "/home/u/Ferry/a"},
            {"/", "a", "/a"},
            {"rel", "x", "rel/x"},
            {"", "x", "x"},
            {"/r", "", "/r"},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *j = path_join(cases[i].root, cases[i].rel);

                assert_non_null(j);
                assert_string_equal(j, cases[i].want);
                free(j);
        }
}

static void test_dirname_basename(void **state)
{
        char *d;

        (void)state;
        d = path_dirname("a/b/c");
        assert_string_equal(d, "a/b");
        free(d);
        d = path_dirname("c");
        assert_string_equal(d, "");
        free(d);
        d = path_dirname("a/c.txt");
        assert_string_equal(d, "a");
        free(d);
        assert_string_equal(path_basename("a/b/c"), "c");
        assert_string_equal(path_basename("c"), "c");
        assert_string_equal(path_basename("dir/.hidden"), ".hidden");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_traversal_and_shape),
            cmocka_unit_test(test_control_characters),
            cmocka_unit_test(test_lengths),
            cmocka_unit_test(test_utf8),
            cmocka_unit_test(test_reserved_names),
            cmocka_unit_test(test_valid),
            cmocka_unit_test(test_is_temp),
            cmocka_unit_test(test_join),
            cmocka_unit_test(test_dirname_basename),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
