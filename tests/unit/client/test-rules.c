/* Unit tests for rules: SIZE parsing, rule parsing (every error case),
 * rules_check over a table of rule sets and files (each condition alone and
 * combined, "or", ask, directories, reasons), the text form, editing
 * (set/add/remove leave the rules untouched on an error), the named groups,
 * and rules.json: round trip, mode 0600, defaults when absent, and every
 * kind of junk refused with a message naming the file. */
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

#include "err.h"
#include "fsutil.h"
#include "manifest.h"
#include "rules.h"
#include "testutil.h"

#define MAXW 16

/* Splits a space-separated rule text into words (no quoting: tests with a
 * space in a folder build their word lists by hand). */
static size_t split(char *s, char **w)
{
        size_t n = 0;
        char *save = NULL, *t;

        for (t = strtok_r(s, " ", &save); t && n < MAXW; t = strtok_r(NULL, " ", &save))
                w[n++] = t;
        return n;
}

/* rules_set from a text; returns its result. */
static int set_text(struct rules *r, enum rules_dir dir, const char *text)
{
        char buf[512], *w[MAXW];
        size_t n;

        snprintf(buf, sizeof(buf), "%s", text);
        n = split(buf, w);
        return rules_set(r, dir, w, n);
}

static void test_parse_size(void **state)
{
        static const struct {
                const char *in;
                int ok;
                uint64_t want;
        } cases[] = {
            {"0", 1, 0},
            {"123", 1, 123},
            {"123B", 1, 123},
            {"700K", 1, 700ULL << 10},
            {"700k", 1, 700ULL << 10},
            {"50M", 1, 50ULL << 20},
            {"50MB", 1, 50ULL << 20},
            {"50MiB", 1, 50ULL << 20},
            {"50mib", 1, 50ULL << 20},
            {"1.5G", 1, 3ULL << 29},
            {"1.25K", 1, 1280},
            {"0.5M", 1, 512ULL << 10},
            {"2T", 1, 2ULL << 40},
            {"16777215T", 1, 16777215ULL << 40},
            {"18446744073709551615", 1, UINT64_MAX},
            {"", 0, 0},
            {"M", 0, 0},
            {"-5", 0, 0},
            {"+5", 0, 0},
            {" 5", 0, 0},
            {"5 M", 0, 0},
            {"5X", 0, 0},
            {"5MBB", 0, 0},
            {"5Bi", 0, 0},
            {"1.", 0, 0},
            {".5M", 0, 0},
            {"1.5", 0, 0},       /* a fraction of a byte */
            {"1.2345G", 0, 0},   /* over 3 decimals */
            {"16777216T", 0, 0}, /* 2^64 */
            {"18446744073709551616", 0, 0},
            {"99999999999999999999999", 0, 0},
        };
        size_t i;
        uint64_t v;
        int r;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                v = 12345;
                r = rules_parse_size(cases[i].in, &v);
                if (cases[i].ok) {
                        if (r != 0)
                                fail_msg("size '%s': %s", cases[i].in, err_msg(r));
                        if (v != cases[i].want)
                                fail_msg("size '%s': got %llu, want %llu", cases[i].in,
                                         (unsigned long long)v, (unsigned long long)cases[i].want);
                } else {
                        if (r != -EINVAL)
                                fail_msg("size '%s' accepted (%llu)", cases[i].in,
                                         (unsigned long long)v);
                        assert_int_equal(v, 12345);
                        assert_non_null(strstr(err_msg(r), "size"));
                }
        }
}

static void test_parse_errors(void **state)
{
        static const struct {
                const char *text;
                const char *msg; /* a part of the message */
        } cases[] = {
            {"bogus", "unknown word \"bogus\""},
            {"All", "unknown word"},
            {"folder", "needs a value"},
            {"type pdf max-size", "needs a value"},
            {"folder ../x", "folder \"../x\""},
            {"folder a/../b", "folder"},
            {"folder /abs", "folder"},
            {"folder ./a", "folder"},
            {"folder .ferry", "folder"},
            {"folder a//b", "folder"},
            {"type pdf,,doc", "empty extension"},
            {"type ,pdf", "empty extension"},
            {"type pdf,", "empty extension"},
            {"type a/b", "not an extension"},
            {"type .", "not an extension"},
            {"type ..pdf", "not an extension"},
            {"type pdf.", "not an extension"},
            {"type tar..gz", "not an extension"},
            {"type *", "not an extension"},
            {"type abcdefghijklmnopqrstuvwxyzabcdefg", "not an extension"},
            {"max-size big", "bad size"},
            {"max-size -1", "bad size"},
            {"all type pdf", "stands alone"},
            {"type pdf all", "stands alone"},
            {"type pdf type doc", "twice"},
            {"folder a folder b", "twice"},
            {"max-size 1K max-size 2K", "twice"},
            {"ask ask", "twice"},
            {"all all", "twice"},
            {"or", "empty rule"},
            {"type pdf or", "empty rule"},
            {"or type pdf", "empty rule"},
            {"type pdf or or all", "empty rule"},
            {"type pdf or bogus", "unknown word"},
            {"none type pdf", "\"none\" stands alone"},
            {"type pdf or none", "\"none\" stands alone"},
        };
        struct rules *r = NULL;
        char *t;
        size_t i;
        int res;

        (void)state;
        assert_int_equal(rules_default(&r), 0);
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                err_clear();
                res = set_text(r, RULES_UP, cases[i].text);
                if (res != -EINVAL)
                        fail_msg("'%s' accepted", cases[i].text);
                if (strstr(err_msg(res), cases[i].msg) == NULL)
                        fail_msg("'%s': message '%s' lacks '%s'", cases[i].text, err_msg(res),
                                 cases[i].msg);
                /* a failed set changes nothing */
                assert_int_equal(rules_count(r, RULES_UP), 1);
                t = rules_text(r, RULES_UP, 0);
                assert_string_equal(t, "all");
                free(t);
        }
        /* no words at all is an error too; "none" is only for set */
        assert_int_equal(rules_set(r, RULES_UP, NULL, 0), -EINVAL);
        char *none = "none";
        assert_int_equal(rules_add(r, RULES_UP, &none, 1), -EINVAL);
        assert_int_equal(rules_count(r, RULES_UP), 1);
        rules_free(r);
}

struct check_case {
        const char *rules; /* for set_text */
        enum rules_dir dir;
        const char *path;
        int kind;
        uint64_t size;
        enum rules_verdict want;
        const char *why; /* a part of the reason ("" for SYNC) */
};

static const struct check_case check_cases[] = {
    /* the default */
    {"all", RULES_UP, "a/b/c.mkv", KIND_FILE, 1ULL << 40, RULES_SYNC, ""},
    {"all", RULES_DOWN, "x", KIND_DIR, 0, RULES_SYNC, ""},
    /* folder */
    {"folder Work", RULES_DOWN, "Work/a.txt", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder Work", RULES_DOWN, "Work/deep/er/a", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder Work", RULES_DOWN, "Work", KIND_DIR, 0, RULES_SYNC, ""},
    {"folder Work", RULES_DOWN, "Work", KIND_FILE, 3, RULES_SYNC, ""},
    {"folder Work", RULES_DOWN, "Workshop/a.txt", KIND_FILE, 1, RULES_HOLD, "not under Work"},
    {"folder Work", RULES_DOWN, "Workshop", KIND_DIR, 0, RULES_HOLD, "not under Work"},
    {"folder Work", RULES_DOWN, "a/Work/x", KIND_FILE, 1, RULES_HOLD, "not under Work"},
    {"folder Work", RULES_DOWN, "work/x", KIND_FILE, 1, RULES_HOLD, "not under Work"},
    {"folder Work", RULES_DOWN, "Other", KIND_DIR, 0, RULES_HOLD, "not under Work"},
    {"folder Work/", RULES_DOWN, "Work/a", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder Work//", RULES_DOWN, "Workx", KIND_FILE, 1, RULES_HOLD, "not under Work"},
    /* directories above a folder are selected (the way down to it) */
    {"folder A/B/C", RULES_DOWN, "A", KIND_DIR, 0, RULES_SYNC, ""},
    {"folder A/B/C", RULES_DOWN, "A/B", KIND_DIR, 0, RULES_SYNC, ""},
    {"folder A/B/C", RULES_DOWN, "A/B/C/D", KIND_DIR, 0, RULES_SYNC, ""},
    {"folder A/B/C", RULES_DOWN, "A/B", KIND_FILE, 1, RULES_HOLD, "not under A/B/C"},
    {"folder A/B/C", RULES_DOWN, "A/Bx", KIND_DIR, 0, RULES_HOLD, "not under A/B/C"},
    {"folder A/B/C", RULES_DOWN, "A/B/x.txt", KIND_FILE, 1, RULES_HOLD, "not under"},
    /* type */
    {"type documents", RULES_UP, "a.PDF", KIND_FILE, 1, RULES_SYNC, ""},
    {"type documents", RULES_UP, "d/b.docx", KIND_FILE, 1, RULES_SYNC, ""},
    {"type documents", RULES_UP, "c.mkv", KIND_FILE, 1, RULES_HOLD, "type .mkv not selected"},
    {"type documents", RULES_UP, "c.MKV", KIND_FILE, 1, RULES_HOLD, "type .MKV not selected"},
    {"type documents", RULES_UP, "Makefile", KIND_FILE, 1, RULES_HOLD, "no file extension"},
    {"type documents", RULES_UP, ".bashrc", KIND_FILE, 1, RULES_HOLD, "no file extension"},
    {"type documents", RULES_UP, "trailing.", KIND_FILE, 1, RULES_HOLD, "no file extension"},
    {"type documents", RULES_UP, "pdf", KIND_FILE, 1, RULES_HOLD, "no file extension"},
    {"type documents", RULES_UP, "a.pdf/x", KIND_FILE, 1, RULES_HOLD, "no file extension"},
    {"type documents", RULES_UP, "Films", KIND_DIR, 0, RULES_SYNC, ""},
    {"type documents", RULES_UP, "link.pdf", KIND_SYMLINK, 8, RULES_SYNC, ""},
    {"type doc,docx", RULES_UP, "r.DocX", KIND_FILE, 1, RULES_SYNC, ""},
    {"type doc,docx", RULES_UP, "r.docm", KIND_FILE, 1, RULES_HOLD, "type .docm"},
    {"type .PDF", RULES_UP, "a.pdf", KIND_FILE, 1, RULES_SYNC, ""},
    {"type Images", RULES_UP, "p.HEIC", KIND_FILE, 1, RULES_SYNC, ""},
    {"type images", RULES_UP, "p.jpg.txt", KIND_FILE, 1, RULES_HOLD, "type .txt"},
    {"type video", RULES_UP, "f.mkv", KIND_FILE, 1, RULES_SYNC, ""},
    {"type audio", RULES_UP, "s.flac", KIND_FILE, 1, RULES_SYNC, ""},
    {"type archives", RULES_UP, "x.tar.gz", KIND_FILE, 1, RULES_SYNC, ""},
    {"type gz", RULES_UP, "x.tar.gz", KIND_FILE, 1, RULES_SYNC, ""},
    {"type tar", RULES_UP, "x.tar.gz", KIND_FILE, 1, RULES_HOLD, "type .gz"},
    {"type tar.gz", RULES_UP, "x.TAR.GZ", KIND_FILE, 1, RULES_SYNC, ""},
    {"type tar.gz", RULES_UP, "x.gz", KIND_FILE, 1, RULES_HOLD, "type .gz"},
    {"type tar.gz", RULES_UP, "xtar.gz", KIND_FILE, 1, RULES_HOLD, "type .gz"},
    {"type tar.gz", RULES_UP, ".tar.gz", KIND_FILE, 1, RULES_HOLD, "type .gz"},
    {"type pdf,images", RULES_UP, "a.png", KIND_FILE, 1, RULES_SYNC, ""},
    /* max-size */
    {"max-size 1K", RULES_DOWN, "a", KIND_FILE, 1024, RULES_SYNC, ""},
    {"max-size 1K", RULES_DOWN, "a", KIND_FILE, 1025, RULES_HOLD, "over 1K"},
    {"max-size 0", RULES_DOWN, "a", KIND_FILE, 0, RULES_SYNC, ""},
    {"max-size 50M", RULES_DOWN, "big", KIND_DIR, 0, RULES_SYNC, ""},
    /* conditions combine with AND */
    {"folder Work type documents", RULES_DOWN, "Work/a.pdf", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder Work type documents", RULES_DOWN, "Work/a.mkv", KIND_FILE, 1, RULES_HOLD, "type .mkv"},
    {"folder Work type documents", RULES_DOWN, "b.pdf", KIND_FILE, 1, RULES_HOLD, "not under"},
    {"folder Work type documents", RULES_DOWN, "Work/sub", KIND_DIR, 0, RULES_SYNC, ""},
    {"type video max-size 1M", RULES_DOWN, "f.mp4", KIND_FILE, 2 << 20, RULES_HOLD, "over 1M"},
    {"type video max-size 1M", RULES_DOWN, "f.mp4", KIND_FILE, 1 << 20, RULES_SYNC, ""},
    /* rules combine with OR; every distinct reason is given */
    {"folder Work or type images", RULES_DOWN, "x.jpg", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder Work or type images", RULES_DOWN, "Work/x.mkv", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder Work or type images", RULES_DOWN, "x.mkv", KIND_FILE, 1, RULES_HOLD,
     "not under Work; type .mkv not selected"},
    {"folder A or folder B", RULES_DOWN, "C/x", KIND_FILE, 1, RULES_HOLD,
     "not under A; not under B"},
    {"folder A or folder A type pdf", RULES_DOWN, "C/x", KIND_FILE, 1, RULES_HOLD, "not under A"},
    /* "or" as a value is a value */
    {"folder or", RULES_DOWN, "or/x", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder folder or folder or", RULES_DOWN, "or/x", KIND_FILE, 1, RULES_SYNC, ""},
    {"folder folder or folder or", RULES_DOWN, "folder/x", KIND_FILE, 1, RULES_SYNC, ""},
    /* ask */
    {"ask", RULES_UP, "any.thing", KIND_FILE, 5, RULES_ASK, "ask"},
    {"ask", RULES_UP, "dir", KIND_DIR, 0, RULES_SYNC, ""},
    {"type video ask", RULES_DOWN, "f.mkv", KIND_FILE, 5, RULES_ASK, "ask"},
    {"type video ask", RULES_DOWN, "f.txt", KIND_FILE, 5, RULES_HOLD, "type .txt"},
    {"ask type video", RULES_DOWN, "f.mkv", KIND_FILE, 5, RULES_ASK, "ask"},
    {"type video ask or folder Films", RULES_DOWN, "Films/f.mkv", KIND_FILE, 5, RULES_SYNC, ""},
    {"folder Films or type video ask", RULES_DOWN, "Films/f.mkv", KIND_FILE, 5, RULES_SYNC, ""},
    {"folder Films or type video ask", RULES_DOWN, "x/f.mkv", KIND_FILE, 5, RULES_ASK, "ask"},
    {"type documents or max-size 1M ask", RULES_UP, "a.bin", KIND_FILE, 10, RULES_ASK, "ask"},
    {"type documents or max-size 1M ask", RULES_UP, "a.bin", KIND_FILE, 2 << 20, RULES_HOLD,
     "over 1M"},
    /* the empty set */
    {"none", RULES_UP, "a.txt", KIND_FILE, 1, RULES_HOLD, "no up rules"},
    {"none", RULES_DOWN, "a", KIND_DIR, 0, RULES_HOLD, "no down rules"},
};

static void test_check_table(void **state)
{
        const struct check_case *c;
        struct rules *r = NULL;
        enum rules_verdict v;
        char why[256];
        size_t i;
        int res;

        (void)state;
        for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
                c = &check_cases[i];
                assert_int_equal(rules_default(&r), 0);
                res = set_text(r, c->dir, c->rules);
                if (res != 0)
                        fail_msg("rules '%s': %s", c->rules, err_msg(res));
                memset(why, 'x', sizeof(why));
                why[sizeof(why) - 1] = '\0';
                v = rules_check(r, c->dir, c->path, c->kind, c->size, why, sizeof(why));
                if (v != c->want)
                        fail_msg("'%s' on %s %s: verdict %d, want %d (%s)", c->rules,
                                 c->dir == RULES_UP ? "up" : "down", c->path, v, c->want, why);
                if (c->want == RULES_SYNC ? why[0] != '\0' : strstr(why, c->why) == NULL)
                        fail_msg("'%s' on %s: reason '%s', want '%s'", c->rules, c->path, why,
                                 c->why);
                /* the other direction keeps its default */
                v = rules_check(r, c->dir == RULES_UP ? RULES_DOWN : RULES_UP, c->path, c->kind,
                                c->size, NULL, 0);
                assert_int_equal(v, RULES_SYNC);
                rules_free(r);
                r = NULL;
        }
}

static void test_check_misc(void **state)
{
        struct rules *r = NULL;
        char *w[] = {"folder", "My Work", "type", "pdf"};
        char why[8];

        (void)state;
        /* no rules loaded reads as the defaults */
        assert_int_equal(rules_check(NULL, RULES_UP, "a", KIND_FILE, 1, why, sizeof(why)),
                         RULES_SYNC);
        assert_int_equal(rules_mode(NULL), RULES_MODE_INDEX);

        assert_int_equal(rules_default(&r), 0);
        assert_int_equal(rules_set(r, RULES_DOWN, w, 4), 0);
        assert_int_equal(rules_check(r, RULES_DOWN, "My Work/a.pdf", KIND_FILE, 1, NULL, 0),
                         RULES_SYNC);
        assert_int_equal(rules_check(r, RULES_DOWN, "My/a.pdf", KIND_FILE, 1, NULL, 0), RULES_HOLD);
        /* a short buffer gets a truncated, terminated reason */
        assert_int_equal(rules_check(r, RULES_DOWN, "x.pdf", KIND_FILE, 1, why, sizeof(why)),
                         RULES_HOLD);
        assert_string_equal(why, "not und");
        rules_free(r);
}

static void expect_texts(const struct rules *r, enum rules_dir dir, const char *const *want,
                         size_t n)
{
        size_t i;
        char *t;

        assert_int_equal(rules_count(r, dir), n);
        for (i = 0; i < n; i++) {
                t = rules_text(r, dir, i);
                assert_non_null(t);
                assert_string_equal(t, want[i]);
                free(t);
        }
}

static void test_edit_and_text(void **state)
{
        struct rules *r = NULL;
        char *spaced[] = {"folder", "My \"Work\"/", "max-size", "1.5g"};
        char *bad[] = {"type", "pdf", "bogus"};
        static const char *const a1[] = {"all"};
        static const char *const a3[] = {"folder Work type documents", "type images",
                                         "folder \"My \\\"Work\\\"\" max-size 1.5g"};
        static const char *const a2[] = {"folder Work type documents",
                                         "folder \"My \\\"Work\\\"\" max-size 1.5g"};
        static const char *const a1b[] = {"folder \"My \\\"Work\\\"\" max-size 1.5g"};

        (void)state;
        assert_int_equal(rules_default(&r), 0);
        expect_texts(r, RULES_UP, a1, 1);
        expect_texts(r, RULES_DOWN, a1, 1);
        assert_int_equal(set_text(r, RULES_DOWN, "folder Work/ type documents or type images"), 0);
        assert_int_equal(rules_add(r, RULES_DOWN, spaced, 4), 0);
        expect_texts(r, RULES_DOWN, a3, 3);
        /* the stored words are normalized (no trailing slash) */
        char *const *words;
        assert_int_equal(rules_words(r, RULES_DOWN, 2, &words), 4);
        assert_string_equal(words[0], "folder");
        assert_string_equal(words[1], "My \"Work\"");
        assert_string_equal(words[3], "1.5g");
        assert_int_equal(rules_words(r, RULES_DOWN, 0, &words), 4);
        assert_string_equal(words[1], "Work");
        /* a failed add changes nothing */
        assert_int_equal(rules_add(r, RULES_DOWN, bad, 3), -EINVAL);
        expect_texts(r, RULES_DOWN, a3, 3);

        assert_int_equal(rules_remove(r, RULES_DOWN, 0), -ENOENT);
        assert_int_equal(rules_remove(r, RULES_DOWN, 4), -ENOENT);
        assert_non_null(strstr(err_msg(-ENOENT), "no down rule 4 (there are 3)"));
        assert_int_equal(rules_remove(r, RULES_DOWN, 2), 0);
        expect_texts(r, RULES_DOWN, a2, 2);
        assert_int_equal(rules_remove(r, RULES_DOWN, 1), 0);
        expect_texts(r, RULES_DOWN, a1b, 1);
        assert_int_equal(rules_remove(r, RULES_DOWN, 1), 0);
        assert_int_equal(rules_count(r, RULES_DOWN), 0);
        assert_int_equal(rules_check(r, RULES_DOWN, "a", KIND_FILE, 1, NULL, 0), RULES_HOLD);
        expect_texts(r, RULES_UP, a1, 1);

        /* modes */
        assert_int_equal(rules_mode(r), RULES_MODE_INDEX);
        rules_set_mode(r, RULES_MODE_SINCE);
        assert_int_equal(rules_mode(r), RULES_MODE_SINCE);
        assert_string_equal(rules_mode_name(RULES_MODE_SINCE), "since-last-sync");
        assert_string_equal(rules_mode_name(RULES_MODE_INDEX), "index");
        assert_int_equal(rules_mode_parse("index"), RULES_MODE_INDEX);
        assert_int_equal(rules_mode_parse("since-last-sync"), RULES_MODE_SINCE);
        assert_int_equal(rules_mode_parse("since"), -EINVAL);
        assert_non_null(strstr(err_msg(-EINVAL), "since-last-sync"));
        rules_free(r);
}

static void test_groups(void **state)
{
        static const struct {
                const char *path, *group;
        } cases[] = {
            {"a.JPG", "images"},      {"d/x.heic", "images"}, {"b.txt", "documents"},
            {"b.epub", "documents"},  {"c.mkv", "video"},     {"s.opus", "audio"},
            {"z.tar.gz", "archives"}, {"z.7z", "archives"},   {"noext", NULL},
            {"a.xyz", NULL},          {".jpg", NULL},         {"a.jp", NULL},
        };
        size_t i;
        const char *g;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                g = rules_group_of(cases[i].path);
                if (cases[i].group == NULL ? g != NULL
                                           : g == NULL || strcmp(g, cases[i].group) != 0)
                        fail_msg("%s: group %s, want %s", cases[i].path, g ? g : "NULL",
                                 cases[i].group ? cases[i].group : "NULL");
        }
}

struct dir_fixture {
        char root[1024];
        char file[1100];
};

static int dir_setup(void **state)
{
        struct dir_fixture *f = calloc(1, sizeof(*f));
        char sub[1100];

        if (f == NULL || testutil_mkdtemp(f->root, sizeof(f->root), "rules") < 0)
                return -1;
        snprintf(sub, sizeof(sub), "%s/.ferry", f->root);
        if (mkdir(sub, 0700) < 0)
                return -1;
        snprintf(f->file, sizeof(f->file), "%s/.ferry/rules.json", f->root);
        *state = f;
        return 0;
}

static int dir_teardown(void **state)
{
        struct dir_fixture *f = *state;

        testutil_rm_rf(f->root);
        free(f);
        return 0;
}

static void test_save_load(void **state)
{
        struct dir_fixture *f = *state;
        struct rules *r = NULL, *g = NULL;
        char *spaced[] = {"folder", "My Work", "ask"}, *path, *text = NULL;
        static const char *const up[] = {"type doc,docx", "max-size 50M"};
        static const char *const down[] = {"folder \"My Work\" ask"};
        struct stat st;

        /* absent: the defaults */
        assert_int_equal(rules_load(f->root, &r), 0);
        assert_int_equal(rules_count(r, RULES_UP), 1);
        assert_int_equal(rules_mode(r), RULES_MODE_INDEX);
        assert_int_equal(stat(f->file, &st), -1);

        assert_int_equal(set_text(r, RULES_UP, "type doc,docx or max-size 50M"), 0);
        assert_int_equal(rules_set(r, RULES_DOWN, spaced, 3), 0);
        rules_set_mode(r, RULES_MODE_SINCE);
        assert_int_equal(rules_save(r, f->root), 0);
        assert_int_equal(stat(f->file, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        assert_int_equal(rules_load(f->root, &g), 0);
        expect_texts(g, RULES_UP, up, 2);
        expect_texts(g, RULES_DOWN, down, 1);
        assert_int_equal(rules_mode(g), RULES_MODE_SINCE);
        assert_int_equal(rules_check(g, RULES_DOWN, "My Work/a", KIND_FILE, 1, NULL, 0), RULES_ASK);
        rules_free(g);

        /* the file is the documented JSON: a rule is an array of words */
        assert_int_equal(fsutil_read_all(f->file, 1 << 20, &text, NULL), 0);
        assert_non_null(strstr(text, "\"since-last-sync\""));
        assert_non_null(strstr(text, "\"My Work\""));
        free(text);

        /* an empty set survives a round trip as empty */
        assert_int_equal(set_text(r, RULES_UP, "none"), 0);
        assert_int_equal(rules_save(r, f->root), 0);
        assert_int_equal(rules_load(f->root, &g), 0);
        assert_int_equal(rules_count(g, RULES_UP), 0);
        assert_int_equal(rules_count(g, RULES_DOWN), 1);
        rules_free(g);
        rules_free(r);

        path = rules_path(f->root);
        assert_string_equal(path, f->file);
        free(path);
}

static void test_load_junk(void **state)
{
        static const struct {
                const char *json, *msg;
        } cases[] = {
            {"", "not a JSON object"},
            {"not json", "not a JSON object"},
            {"[]", "not a JSON object"},
            {"{\"up\": \"all\"}", "\"up\" must be an array"},
            {"{\"down\": {}}", "\"down\" must be an array"},
            {"{\"up\": [[]]}", "up rule 1 must be an array of words"},
            {"{\"up\": [\"all\"]}", "up rule 1 must be an array of words"},
            {"{\"up\": [[\"all\"], [1]]}", "up rule 2: a word is not a string"},
            {"{\"down\": [[\"bogus\"]]}", "down rule 1: unknown word"},
            {"{\"down\": [[\"folder\", \"../x\"]]}", "down rule 1: folder"},
            {"{\"down\": [[\"max-size\", \"9Q\"]]}", "down rule 1: bad size"},
            {"{\"up\": [[\"type\", \"pdf\", \"or\", \"all\"]]}", "up rule 1"},
            {"{\"up\": [[\"none\"]]}", "up rule 1: \"none\" stands alone"},
            {"{\"mode\": \"fast\"}", "\"mode\" must be"},
            {"{\"mode\": 1}", "\"mode\" must be"},
            {"{\"dwon\": []}", "unknown key \"dwon\""},
        };
        struct dir_fixture *f = *state;
        struct rules *r = NULL;
        const char *text;
        size_t i;
        int res;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(
                    fsutil_write_atomic(f->file, cases[i].json, strlen(cases[i].json), 0600), 0);
                r = NULL;
                res = rules_load(f->root, &r);
                if (res != -EINVAL)
                        fail_msg("'%s' loaded (%d)", cases[i].json, res);
                assert_null(r);
                if (!strstr(err_msg(res), "rules.json") || !strstr(err_msg(res), cases[i].msg))
                        fail_msg("'%s': message '%s' lacks '%s'", cases[i].json, err_msg(res),
                                 cases[i].msg);
        }
        /* a valid file with only some keys: the rest stay default */
        text = "{\"down\": [[\"type\", \"images\"]]}";
        assert_int_equal(fsutil_write_atomic(f->file, text, strlen(text), 0600), 0);
        assert_int_equal(rules_load(f->root, &r), 0);
        assert_int_equal(rules_count(r, RULES_UP), 1);
        assert_int_equal(rules_check(r, RULES_DOWN, "a.png", KIND_FILE, 1, NULL, 0), RULES_SYNC);
        assert_int_equal(rules_check(r, RULES_DOWN, "a.txt", KIND_FILE, 1, NULL, 0), RULES_HOLD);
        rules_free(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_size),
            cmocka_unit_test(test_parse_errors),
            cmocka_unit_test(test_check_table),
            cmocka_unit_test(test_check_misc),
            cmocka_unit_test(test_edit_and_text),
            cmocka_unit_test(test_groups),
            cmocka_unit_test_setup_teardown(test_save_load, dir_setup, dir_teardown),
            cmocka_unit_test_setup_teardown(test_load_junk, dir_setup, dir_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
