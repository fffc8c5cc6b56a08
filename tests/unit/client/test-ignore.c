/* Unit tests for ignore: a table of .ferryignore texts and paths covering
 * the defaults, name patterns at any depth, anchoring, directory-only
 * patterns, "**" in every position, character classes, escapes, trailing
 * spaces, CRLF and a BOM, negation (and git's rule that a file under an
 * excluded directory cannot be re-included), invalid lines skipped, and
 * ignore_load from a folder (absent file, present file, unreadable). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "fsutil.h"
#include "ignore.h"
#include "testutil.h"

struct case_ {
        const char *text; /* .ferryignore */
        const char *path;
        int is_dir;
        int want;
};

static const struct case_ cases[] = {
    /* the defaults */
    {"", "a.swp", 0, 1},
    {"", "d/e/.b.swo", 0, 1},
    {"", "notes.txt~", 0, 1},
    {"", ".#notes.txt", 0, 1},
    {"", "#notes.txt#", 0, 1},
    {"", "x/.DS_Store", 0, 1},
    {"", "Thumbs.db", 0, 1},
    {"", "desktop.ini", 0, 1},
    {"", ".directory", 0, 1},
    {"", "build/out.tmp", 0, 1},
    {"", ".~lock.report.odt#", 0, 1},
    {"", "a.txt", 0, 0},
    {"", "swp", 0, 0},
    {"", "a.swp.txt", 0, 0},
    {"", "thumbs.db", 0, 0},   /* case-sensitive */
    {"", "x.tmp/a.txt", 0, 1}, /* an ignored name hides what is under it */
    {"", ".ferryignore", 0, 0},
    /* a name pattern matches at any depth, files and directories */
    {"*.log", "a.log", 0, 1},
    {"*.log", "d/e/a.log", 0, 1},
    {"*.log", "a.log.txt", 0, 0},
    {"*.log", "logs", 1, 0},
    {"*.log", "x.log", 1, 1},
    {"*.log", "x.log/inner.txt", 0, 1},
    {"*.LOG", "a.log", 0, 0},
    {"node_modules", "a/node_modules/b/c.js", 0, 1},
    {"*", ".hidden", 0, 1},
    {"*", ".ferryignore", 0, 0},
    {"?.c", "a.c", 0, 1},
    {"?.c", "ab.c", 0, 0},
    {"[a-c]*.dat", "b1.dat", 0, 1},
    {"[a-c]*.dat", "d1.dat", 0, 0},
    {"[!a-c]*.dat", "d1.dat", 0, 1},
    {"a**b", "axxb", 0, 1},
    /* anchoring: a leading or a middle slash */
    {"/build", "build", 1, 1},
    {"/build", "build/x.o", 0, 1},
    {"/build", "src/build", 1, 0},
    {"doc/*.txt", "doc/a.txt", 0, 1},
    {"doc/*.txt", "doc/sub/a.txt", 0, 0},
    {"doc/*.txt", "x/doc/a.txt", 0, 0},
    {"/a/b/", "a/b", 1, 1},
    {"/a/b/", "a/b", 0, 0},
    /* directory only */
    {"build/", "build", 1, 1},
    {"build/", "build", 0, 0},
    {"build/", "a/build/x", 0, 1},
    {"build/", "a/build", 0, 0},
    /* ** in every position */
    {"**/foo", "foo", 0, 1},
    {"**/foo", "a/b/foo", 0, 1},
    {"**/foo", "a/foo/x", 0, 1},
    {"**/foo/bar", "x/y/foo/bar", 0, 1},
    {"**/foo/bar", "foo/bar", 0, 1},
    {"**/foo/bar", "foo/x/bar", 0, 0},
    {"abc/**", "abc", 1, 0},
    {"abc/**", "abc/x", 0, 1},
    {"abc/**", "abc/x/y", 0, 1},
    {"abc/**", "x/abc/y", 0, 0},
    {"a/**/b", "a/b", 0, 1},
    {"a/**/b", "a/x/b", 0, 1},
    {"a/**/b", "a/x/y/b", 0, 1},
    {"a/**/b", "a/xb", 0, 0},
    {"a/**/b", "x/a/b", 0, 0},
    {"a/**/**/b", "a/b", 0, 1},
    {"a/**/*.o", "a/x/y/z.o", 0, 1},
    {"**", "anything/at/all", 0, 1},
    /* comments, escapes, spaces, line ends */
    {"#notes", "#notes", 0, 0},
    {"\\#notes", "#notes", 0, 1},
    {"\\!important", "!important", 0, 1},
    {"foo   ", "foo", 0, 1},
    {"bar\\ ", "bar ", 0, 1},
    {"bar\\ ", "bar", 0, 0},
    {"x.bak\r\n", "x.bak", 0, 1},
    {"\xef\xbb\xbf*.x\n", "a.x", 0, 1},
    {"a\n\n   \n# c\nb", "b", 0, 1},
    /* negation: the last match wins; defaults can be undone */
    {"*.log\n!keep.log", "a.log", 0, 1},
    {"*.log\n!keep.log", "keep.log", 0, 0},
    {"!keep.log\n*.log", "keep.log", 0, 1},
    {"!*.tmp", "a.tmp", 0, 0},
    {"!*.tmp", "a.swp", 0, 1},
    /* git's rule: no re-including under an excluded directory */
    {"logs/\n!logs/keep.log", "logs/keep.log", 0, 1},
    {"logs\n!logs/keep.log", "logs/keep.log", 0, 1},
    {"logs/*\n!logs/keep.log", "logs/keep.log", 0, 0},
    {"logs/*\n!logs/keep.log", "logs/other", 0, 1},
    {"logs/\n!logs/", "logs/a", 0, 0},
    /* invalid lines are skipped, the rest still works */
    {"/\n!\nfoo\\\na/../b\na//b\nreal", "real", 0, 1},
    {"/\n!\nfoo\\\na/../b\na//b\nreal", "foo", 0, 0},
    {"/\n!\nfoo\\\na/../b\na//b\nreal", "b", 0, 0},
};

static void test_table(void **state)
{
        struct ignore *ig = NULL;
        size_t i;
        int got;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ig = NULL;
                assert_int_equal(ignore_from_text(cases[i].text, strlen(cases[i].text), "t", &ig),
                                 0);
                got = ignore_match(ig, cases[i].path, cases[i].is_dir);
                if (got != cases[i].want)
                        fail_msg("case %zu: '%s' on %s%s: %d, want %d", i, cases[i].text,
                                 cases[i].path, cases[i].is_dir ? "/" : "", got, cases[i].want);
                ignore_free(ig);
        }
}

static void test_defaults_list(void **state)
{
        const char *const *d;
        size_t n, i;
        struct ignore *ig = NULL;

        (void)state;
        d = ignore_defaults(&n);
        assert_int_equal(n, 11);
        assert_int_equal(ignore_from_text("", 0, "t", &ig), 0);
        /* each default, used as a literal name, is ignored */
        for (i = 0; i < n; i++)
                if (strchr(d[i], '*') == NULL)
                        assert_int_equal(ignore_match(ig, d[i], 0), 1);
        assert_int_equal(ignore_match(NULL, "a.swp", 0), 0);
        assert_int_equal(ignore_match(ig, "", 1), 0);
        ignore_free(ig);
        ignore_free(NULL);
}

static void test_text_not_terminated(void **state)
{
        const char text[] = "a.x\nb.xGARBAGE";
        struct ignore *ig = NULL;

        (void)state;
        /* only len bytes are read: "b.x" is the last line */
        assert_int_equal(ignore_from_text(text, 7, "t", &ig), 0);
        assert_int_equal(ignore_match(ig, "b.x", 0), 1);
        assert_int_equal(ignore_match(ig, "b.xGARBAGE", 0), 0);
        ignore_free(ig);
}

static void test_load(void **state)
{
        char root[1024], file[1100];
        struct ignore *ig = NULL;
        int r;

        (void)state;
        assert_int_equal(testutil_mkdtemp(root, sizeof(root), "ignore"), 0);
        snprintf(file, sizeof(file), "%s/.ferryignore", root);

        /* absent: the defaults only */
        assert_int_equal(ignore_load(root, &ig), 0);
        assert_int_equal(ignore_match(ig, "a.swp", 0), 1);
        assert_int_equal(ignore_match(ig, "secret.key", 0), 0);
        ignore_free(ig);

        assert_int_equal(fsutil_write_atomic(file, "*.key\n!*.swp\n", 13, 0644), 0);
        assert_int_equal(ignore_load(root, &ig), 0);
        assert_int_equal(ignore_match(ig, "d/secret.key", 0), 1);
        assert_int_equal(ignore_match(ig, "a.swp", 0), 0);
        assert_int_equal(ignore_match(ig, ".ferryignore", 0), 0);
        ignore_free(ig);

        /* unreadable (a directory): an error, not "nothing ignored" */
        assert_int_equal(unlink(file), 0);
        assert_int_equal(mkdir(file, 0700), 0);
        ig = NULL;
        r = ignore_load(root, &ig);
        assert_true(r < 0);
        assert_null(ig);
        assert_non_null(strstr(err_msg(r), ".ferryignore"));
        testutil_rm_rf(root);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_table),
            cmocka_unit_test(test_defaults_list),
            cmocka_unit_test(test_text_not_terminated),
            cmocka_unit_test(test_load),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
