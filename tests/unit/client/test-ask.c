/* Unit tests for the ask question (ask.c): the answer parser (all, none
 * in its spellings, numbers and ranges with commas and blanks, patterns
 * against the path and the last component, and the refusals: out of
 * range, backwards, malformed, a pattern that matches nothing); and the
 * whole question on an index with held rows, driven through memory
 * streams: the list (only "ask" rows, uploads then downloads, numbered,
 * direction, path, size, type), a bad answer explained and asked again,
 * the overrides of the chosen files only, and the end of input as none. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ask.h"
#include "err.h"
#include "index.h"
#include "manifest.h"
#include "rules.h"
#include "testutil.h"

static const char *const paths[] = {"docs/a.pdf", "docs/b.PDF", "film.mkv", "x/y/c.pdf",
                                    "song.ogg"};
#define N 5

/* chosen as a string of 0/1, for short asserts */
static const char *parse(const char *answer, int *r)
{
        static char out[N + 1];
        unsigned char chosen[N];

        memset(chosen, 7, sizeof(chosen));
        *r = ask_parse(answer, paths, N, chosen);
        for (int i = 0; i < N; i++) {
                assert_true(chosen[i] == 0 || chosen[i] == 1);
                out[i] = (char)('0' + chosen[i]);
        }
        out[N] = '\0';
        return out;
}

static void check(const char *answer, int want_r, const char *want)
{
        int r;
        const char *got = parse(answer, &r);

        if (r != want_r || strcmp(got, want) != 0)
                print_error("answer '%s': got %d %s, want %d %s (%s)\n", answer, r, got, want_r,
                            want, r < 0 ? err_msg(r) : "");
        assert_int_equal(r, want_r);
        assert_string_equal(got, want);
        err_clear();
}

static void test_parse_all_none(void **state)
{
        (void)state;
        check("a", 5, "11111");
        check("  ALL \n", 5, "11111");
        check("A", 5, "11111");
        check("n", 0, "00000");
        check("None", 0, "00000");
        check("", 0, "00000");
        check("   \r\n", 0, "00000");
}

static void test_parse_numbers(void **state)
{
        (void)state;
        check("1", 1, "10000");
        check("1,3-5", 4, "10111");
        check("2 4", 2, "01010");
        check(" 5 , 1 ,\t3 ", 3, "10101");
        check("1-1", 1, "10000");
        check("1 - 2", 2, "11000");
        check("2,2,2-3", 2, "01100"); /* repeats count once */
        check("1-5\n", 5, "11111");
        /* refused: nothing is chosen */
        check("0", -EINVAL, "00000");
        check("6", -EINVAL, "00000");
        check("1,6", -EINVAL, "00000");
        check("4-2", -EINVAL, "00000");
        check("3-", -EINVAL, "00000");
        check("-3", -EINVAL, "00000");
        check("99999999999999999999999", -EINVAL, "00000");
}

static void test_parse_patterns(void **state)
{
        int r;

        (void)state;
        check("*.pdf", 2, "10010");    /* any depth (the last component), case-sensitive */
        check("docs/*", 2, "11000");   /* the path */
        check("film.mkv", 1, "00100"); /* a name */
        check("*.[Pp][Dd][Ff]", 3, "11010");
        check("x/*", 1, "00010"); /* '*' crosses '/' against the path */
        check("*.doc", -ENOENT, "00000");
        parse("*.doc", &r);
        assert_non_null(strstr(err_msg(r), "*.doc"));
        err_clear();
}

struct fixture {
        char root[1024];
        struct index *idx;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        char p[1200];

        if (!f || testutil_mkdtemp(f->root, sizeof(f->root), "ask") < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/index.db", f->root);
        if (index_open(p, &f->idx) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        index_close(f->idx);
        testutil_rm_rf(f->root);
        free(f);
        return 0;
}

static void held(struct fixture *f, int dir, const char *path, int kind, uint64_t size,
                 const char *reason)
{
        struct index_held h = {0};

        h.path = (char *)path;
        h.dir = dir;
        h.kind = kind;
        h.size = size;
        h.seq = dir == RULES_DOWN ? 7 : 0;
        h.reason = (char *)reason;
        assert_int_equal(index_held_put(f->idx, &h), 0);
}

/* Runs the question with input in; out gets what it printed. */
static size_t run(struct fixture *f, const char *in, char *out, size_t outlen)
{
        FILE *fin = in[0] ? fmemopen((void *)in, strlen(in), "r") : fopen("/dev/null", "r");
        FILE *fout = fmemopen(out, outlen, "w");
        size_t chosen = 99;

        assert_non_null(fin);
        assert_non_null(fout);
        assert_int_equal(ask_run(f->idx, fin, fout, &chosen), 0);
        fclose(fin);
        fclose(fout);
        return chosen;
}

static int overridden(struct fixture *f, const char *path)
{
        int r = index_override_has(f->idx, path);

        assert_true(r >= 0);
        return r;
}

static void fill(struct fixture *f)
{
        held(f, RULES_UP, "b/report.pdf", KIND_FILE, 1536, ASK_REASON);
        held(f, RULES_UP, "a/photo.JPG", KIND_FILE, 10, ASK_REASON);
        held(f, RULES_UP, "film.mkv", KIND_FILE, 5, "type .mkv not selected");
        held(f, RULES_DOWN, "music/song.ogg", KIND_FILE, 3 << 20, ASK_REASON);
        held(f, RULES_DOWN, "other.txt", KIND_FILE, 1, "not under Work");
        held(f, RULES_DOWN, "link", KIND_SYMLINK, 0, ASK_REASON);
}

static void test_run_list_and_choose(void **state)
{
        struct fixture *f = *state;
        struct ask_list l;
        char out[4096];
        const char *p1, *p2, *p3, *p4;

        fill(f);
        assert_int_equal(ask_collect(f->idx, &l), 0);
        assert_int_equal(l.n, 4);
        assert_string_equal(l.v[0].path, "a/photo.JPG"); /* uploads first, by path */
        assert_string_equal(l.v[1].path, "b/report.pdf");
        assert_string_equal(l.v[2].path, "link");
        assert_int_equal(l.v[2].dir, RULES_DOWN);
        assert_string_equal(l.v[3].path, "music/song.ogg");
        ask_list_free(&l);

        /* a bad answer is explained and asked again; then 1 and 4 */
        assert_int_equal(run(f, "7\n1,4\n", out, sizeof(out)), 2);
        p1 = strstr(out, "1  up    a/photo.JPG");
        p2 = strstr(out, "2  up    b/report.pdf");
        p3 = strstr(out, "3  down  link");
        p4 = strstr(out, "4  down  music/song.ogg");
        if (!p1 || !p2 || !p3 || !p4)
                print_error("%s", out);
        assert_true(p1 && p2 && p3 && p4 && p1 < p2 && p2 < p3 && p3 < p4);
        assert_non_null(strstr(p1, "10 B  images\n"));
        assert_non_null(strstr(p2, "1.5 KiB  documents\n"));
        assert_non_null(strstr(p3, "-  link\n"));
        assert_non_null(strstr(p4, "3.0 MiB  audio\n"));
        assert_null(strstr(out, "film.mkv")); /* held, but not by ask */
        assert_null(strstr(out, "other.txt"));
        assert_non_null(strstr(out, "numbered 1 to 4"));
        assert_non_null(strstr(out, "2 files now (1 up, 1 down)"));
        assert_true(overridden(f, "a/photo.JPG"));
        assert_true(overridden(f, "music/song.ogg"));
        assert_false(overridden(f, "b/report.pdf"));
        assert_false(overridden(f, "link"));
        assert_false(overridden(f, "film.mkv"));
}

static void test_run_pattern_none_eof(void **state)
{
        struct fixture *f = *state;
        char out[4096];

        fill(f);
        assert_int_equal(run(f, "*.pdf\n", out, sizeof(out)), 1);
        assert_true(overridden(f, "b/report.pdf"));
        assert_false(overridden(f, "a/photo.JPG"));

        assert_int_equal(run(f, "n\n", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "stay held"));
        assert_int_equal(run(f, "", out, sizeof(out)), 0); /* end of input: none */
        assert_int_equal(run(f, "*.zip\n", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "no file matches '*.zip'"));
        assert_false(overridden(f, "link"));
        assert_int_equal(run(f, "a\n", out, sizeof(out)), 4);
        assert_true(overridden(f, "link"));
}

static void test_run_nothing_to_ask(void **state)
{
        struct fixture *f = *state;
        char out[256];

        held(f, RULES_UP, "film.mkv", KIND_FILE, 5, "type .mkv not selected");
        memset(out, 0, sizeof(out));
        assert_int_equal(run(f, "a\n", out, sizeof(out)), 0);
        assert_string_equal(out, ""); /* not a word, and nothing read */
        assert_false(overridden(f, "film.mkv"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_all_none),
            cmocka_unit_test(test_parse_numbers),
            cmocka_unit_test(test_parse_patterns),
            cmocka_unit_test_setup_teardown(test_run_list_and_choose, setup, teardown),
            cmocka_unit_test_setup_teardown(test_run_pattern_none_eof, setup, teardown),
            cmocka_unit_test_setup_teardown(test_run_nothing_to_ask, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
