/* Unit tests for conflict: the names of conflict copies (extension rules,
 * device name sanitizing, length limits on UTF-8 names), reading them back
 * (conflict_parse: what is and is not a copy, copies of copies) and finding
 * them in a folder (conflict_find). Runs with TZ=UTC so the time stamp in
 * the names is predictable. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conflict.h"
#include "path.h"
#include "testutil.h"

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

/* conflict_parse of conflict_name(path, device) gives path back. */
static void expect_round_trip(const char *path, const char *device, const char *want_device)
{
        struct conflict_info ci;
        char *name = conflict_name(path, device, WHEN);

        assert_non_null(name);
        assert_int_equal(conflict_parse(name, &ci), 1);
        assert_string_equal(ci.original, path);
        assert_string_equal(ci.device, want_device);
        assert_string_equal(ci.stamp, "2026-11-21 14:02:05");
        conflict_info_free(&ci);
        free(name);
}

static void expect_not_copy(const char *path)
{
        struct conflict_info ci;

        assert_int_equal(conflict_parse(path, &ci), 0);
        assert_null(ci.original);
        assert_null(ci.device);
}

static void test_parse_round_trip(void **state)
{
        (void)state;
        expect_round_trip("dir/report.txt", "laptop", "laptop");
        expect_round_trip("report.txt", "laptop", "laptop");
        expect_round_trip("a.b/c", "pc", "pc");
        expect_round_trip(".bashrc", "pc", "pc");
        expect_round_trip("home/.config.old", "pc", "pc");
        expect_round_trip("archive.tar.gz", "pc", "pc");
        expect_round_trip("Makefile", "pc", "pc");
        expect_round_trip("trailing.", "pc", "pc");
        expect_round_trip("x.txt", "my/dev\x01ice", "my_dev_ice");
        expect_round_trip("x.txt", "", "unknown");
        expect_round_trip("d/Zoë's café.md", "Zoë's café", "Zoë's café");
        /* a device name that looks like the end of the pattern */
        expect_round_trip("x.txt", "my (old) pc 2026-01-01 000000)",
                          "my (old) pc 2026-01-01 000000)");
        expect_round_trip("sp ace (conflict from.txt", "pc", "pc");
}

static void test_parse_copy_of_copy(void **state)
{
        struct conflict_info ci;
        char *first = conflict_name("doc.txt", "A", WHEN), *second;

        (void)state;
        assert_non_null(first);
        second = conflict_name(first, "B", WHEN + 3600);
        assert_non_null(second);
        assert_string_equal(second, "doc (conflict from A 2026-11-21 140205) (conflict from B "
                                    "2026-11-21 150205).txt");
        assert_int_equal(conflict_parse(second, &ci), 1);
        assert_string_equal(ci.original, first);
        assert_string_equal(ci.device, "B");
        assert_string_equal(ci.stamp, "2026-11-21 15:02:05");
        conflict_info_free(&ci);
        free(first);
        free(second);
}

static void test_parse_not_copies(void **state)
{
        (void)state;
        expect_not_copy("report.txt");
        expect_not_copy("");
        expect_not_copy("dir/");
        /* renamed by the user after the parenthesis, or before it */
        expect_not_copy("x (conflict from pc 2026-11-21 140205) old.txt");
        expect_not_copy("x (conflict from pc 2026-11-21 140205)-2.txt");
        expect_not_copy("x (conflict with pc 2026-11-21 140205).txt");
        /* not a stamp conflict_name writes */
        expect_not_copy("x (conflict from pc 2026-13-21 140205).txt");
        expect_not_copy("x (conflict from pc 2026-11-21 250205).txt");
        expect_not_copy("x (conflict from pc 2026-11-21 14025).txt");
        expect_not_copy("x (conflict from pc 2026/11/21 140205).txt");
        /* no device name, no stem */
        expect_not_copy("x (conflict from  2026-11-21 140205).txt");
        expect_not_copy(" (conflict from pc 2026-11-21 140205).txt");
        expect_not_copy("d/ (conflict from pc 2026-11-21 140205)");
        /* conflict_name never puts two dots after the parenthesis */
        expect_not_copy("x (conflict from pc 2026-11-21 140205).tar.gz");
        expect_not_copy("x (conflict from pc 2026-11-21 140205).");
        /* the pattern in a directory name only */
        expect_not_copy("x (conflict from pc 2026-11-21 140205)/y.txt");
}

static void test_parse_shortened_name(void **state)
{
        struct conflict_info ci;
        char name[300], *got;

        (void)state;
        memset(name, 'a', 251);
        strcpy(name + 251, ".txt");
        got = conflict_name(name, "laptop", WHEN);
        assert_non_null(got);
        assert_int_equal(conflict_parse(got, &ci), 1);
        /* the stem was cut to fit: the original is what the name still says */
        assert_true(strlen(ci.original) < strlen(name));
        assert_memory_equal(ci.original, name, strlen(ci.original) - 4);
        assert_string_equal(ci.original + strlen(ci.original) - 4, ".txt");
        conflict_info_free(&ci);
        free(got);
}

static void touch(const char *root, const char *rel)
{
        char p[4200];
        int fd;

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        close(fd);
}

static void mkdir_in(const char *root, const char *rel)
{
        char p[4200];

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static const char *field(json_t *list, size_t i, const char *key)
{
        return json_string_value(json_object_get(json_array_get(list, i), key));
}

static void test_find(void **state)
{
        char *root = testutil_mkdtemp_alloc("conflict"), p[4200];
        const char *c1 = "doc (conflict from B 2026-11-21 140205).txt";
        json_t *list = NULL, *st;
        FILE *f;

        (void)state;
        assert_non_null(root);
        touch(root, "doc.txt");
        touch(root, c1);
        mkdir_in(root, "sub");
        touch(root, "sub/notes (conflict from pc 2026-11-21 140205)");
        touch(root, "sub/notes (conflict from pc 2026-11-21 140205) kept.txt");
        /* a directory that is itself a copy is listed and walked into */
        mkdir_in(root, "dir (conflict from A 2026-11-21 140205)");
        touch(root, "dir (conflict from A 2026-11-21 140205)/in (conflict from A 2026-11-21 "
                    "140205).c");
        /* never .ferry/, never through a symlink, never an invalid path */
        mkdir_in(root, ".ferry");
        touch(root, ".ferry/x (conflict from B 2026-11-21 140205).txt");
        snprintf(p, sizeof(p), "%s/link", root);
        assert_int_equal(symlink("sub", p), 0);
        touch(root, "bad\\name (conflict from B 2026-11-21 140205).txt");

        assert_int_equal(conflict_find(root, &list), 0);
        assert_int_equal(json_array_size(list), 4);
        assert_string_equal(field(list, 0, "path"), "dir (conflict from A 2026-11-21 140205)");
        assert_string_equal(field(list, 0, "original"), "dir");
        assert_string_equal(field(list, 1, "path"),
                            "dir (conflict from A 2026-11-21 140205)/in (conflict from A "
                            "2026-11-21 140205).c");
        assert_string_equal(field(list, 1, "original"),
                            "dir (conflict from A 2026-11-21 140205)/in.c");
        assert_string_equal(field(list, 2, "path"), c1);
        assert_string_equal(field(list, 2, "original"), "doc.txt");
        assert_string_equal(field(list, 2, "device"), "B");
        assert_string_equal(field(list, 2, "stamp"), "2026-11-21 14:02:05");
        assert_string_equal(field(list, 3, "path"),
                            "sub/notes (conflict from pc 2026-11-21 140205)");
        json_decref(list);

        /* resolved by deleting or renaming: gone from the list */
        snprintf(p, sizeof(p), "%s/%s", root, c1);
        assert_int_equal(unlink(p), 0);
        st = json_object();
        assert_int_equal(conflict_status_json(root, st), 0);
        assert_int_equal(json_array_size(json_object_get(st, "conflicts")), 3);
        json_decref(st);

        f = tmpfile();
        assert_non_null(f);
        assert_int_equal(conflict_status_print(root, f), 0);
        rewind(f);
        assert_non_null(fgets(p, sizeof(p), f));
        assert_string_equal(p, "conflicts: 3 (delete or rename a copy once resolved)\n");
        fclose(f);

        snprintf(p, sizeof(p), "%s/nope", root);
        assert_true(conflict_find(p, &list) < 0);
        assert_null(list);
        assert_int_equal(testutil_rm_rf(root), 0);
        free(root);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_extension),
            cmocka_unit_test(test_dotfile_and_double_extension),
            cmocka_unit_test(test_device_sanitized),
            cmocka_unit_test(test_long_utf8_name_truncated),
            cmocka_unit_test(test_long_extension),
            cmocka_unit_test(test_parse_round_trip),
            cmocka_unit_test(test_parse_copy_of_copy),
            cmocka_unit_test(test_parse_not_copies),
            cmocka_unit_test(test_parse_shortened_name),
            cmocka_unit_test(test_find),
        };

        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
