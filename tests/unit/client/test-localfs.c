/* Unit tests for localfs: the folder lock, the sweep of temporary files a
 * killed run left behind (sparing the partial downloads a round can
 * resume), the safe-parent check that keeps writes from the
 * network out of symlinks, the trash and conflict-copy moves. Each test
 * works in its own mkdtemp folder under $TMPDIR, removed at the end. */
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

#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "testutil.h"

static char *make_root(void)
{
        char *root = testutil_mkdtemp_alloc("localfs");

        assert_non_null(root);
        return root;
}

static void remove_root(char *root)
{
        assert_int_equal(testutil_rm_rf(root), 0);
        free(root);
}

static void put_file(const char *root, const char *rel, const char *text)
{
        char *p = path_join(root, rel);
        FILE *f;

        assert_non_null(p);
        f = fopen(p, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        free(p);
}

static void mkdir_in(const char *root, const char *rel)
{
        char *p = path_join(root, rel);

        assert_int_equal(mkdir(p, 0755), 0);
        free(p);
}

static int exists(const char *root, const char *rel)
{
        char *p = path_join(root, rel);
        struct stat st;
        int r = lstat(p, &st) == 0;

        free(p);
        return r;
}

static void test_lock_is_exclusive(void **state)
{
        char *root = make_root();
        int a = -1, b = -1;

        (void)state;
        mkdir_in(root, ".ferry");
        assert_int_equal(localfs_lock(root, &a), 0);
        assert_int_equal(localfs_lock(root, &b), -EBUSY);
        localfs_unlock(a);
        assert_int_equal(localfs_lock(root, &b), 0);
        localfs_unlock(b);
        remove_root(root);
}

static void test_sweep_removes_only_temp_files(void **state)
{
        char *root = make_root(), *other = make_root(), *link = NULL;
        int64_t n = -1;

        (void)state;
        mkdir_in(root, ".ferry");
        mkdir_in(root, "a");
        mkdir_in(root, "a/b");
        put_file(root, ".ferry-tmp-0123", "x");
        put_file(root, "a/b/.ferry-tmp-abcd", "x");
        put_file(root, "a/keep.txt", "x");
        put_file(root, "a/ferry-tmp-no-dot", "x");
        put_file(root, ".ferry/.ferry-tmp-state", "x"); /* .ferry/ is not ours to sweep */
        put_file(other, ".ferry-tmp-outside", "x");
        link = path_join(root, "a/out");
        assert_int_equal(symlink(other, link), 0);

        assert_int_equal(localfs_sweep_temp(root, 1, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_false(exists(root, ".ferry-tmp-0123"));
        assert_false(exists(root, "a/b/.ferry-tmp-abcd"));
        assert_true(exists(root, "a/keep.txt"));
        assert_true(exists(root, "a/ferry-tmp-no-dot"));
        assert_true(exists(root, ".ferry/.ferry-tmp-state"));
        assert_true(exists(other, ".ferry-tmp-outside")); /* never through a link */
        free(link);
        remove_root(other);
        remove_root(root);
}

/* The resume name is a function of the path alone, has its own form, and
 * the sweep spares a fresh partial download with that name (a later round
 * resumes it) while removing look-alikes and anything linked elsewhere. */
static void test_sweep_keeps_resumable_downloads(void **state)
{
        char *root = make_root();
        char name[LOCALFS_RESUME_NAME_LEN + 1], other[LOCALFS_RESUME_NAME_LEN + 1];
        char *keep = NULL, *linked = NULL, *dir = NULL, *hard = NULL, *target = NULL;
        int64_t n = -1, kept = -1;

        (void)state;
        localfs_resume_name("a/big.bin", name);
        localfs_resume_name("a/big.bin", other);
        assert_string_equal(name, other);
        assert_int_equal(strlen(name), LOCALFS_RESUME_NAME_LEN);
        assert_true(localfs_is_resume_name(name));
        localfs_resume_name("a/big2.bin", other);
        assert_string_not_equal(name, other);
        assert_false(localfs_is_resume_name(".ferry-tmp-0123456789abcdef"));
        assert_false(localfs_is_resume_name(".ferry-tmp-r0123456789ABCDEF"));
        assert_false(localfs_is_resume_name(".ferry-tmp-r0123456789abcde"));
        assert_false(localfs_is_resume_name("x.ferry-tmp-r0123456789abcdef"));

        mkdir_in(root, "a");
        assert_true(asprintf(&keep, "a/%s", name) > 0);
        put_file(root, keep, "partial");
        /* the same form with a second link: not ours to keep writing */
        assert_true(asprintf(&linked, "a/%s", other) > 0);
        put_file(root, "a/victim.txt", "v");
        target = path_join(root, "a/victim.txt");
        hard = path_join(root, linked);
        assert_int_equal(link(target, hard), 0);
        /* a directory with the name is walked into, not kept as a file */
        localfs_resume_name("d", other);
        dir = strdup(other);
        mkdir_in(root, dir);
        put_file(root, ".ferry-tmp-r0123456789ABCDEF", "x");

        assert_int_equal(localfs_sweep_temp(root, 1, &n, &kept), 0);
        assert_int_equal(n, 2);
        assert_int_equal(kept, 1);
        assert_true(exists(root, keep));
        assert_false(exists(root, linked));
        assert_true(exists(root, "a/victim.txt"));
        assert_true(exists(root, dir));
        assert_false(exists(root, ".ferry-tmp-r0123456789ABCDEF"));
        /* after a round whose downloads all finished, the partial goes too */
        assert_int_equal(localfs_sweep_temp(root, 0, &n, &kept), 0);
        assert_int_equal(n, 1);
        assert_int_equal(kept, 0);
        assert_false(exists(root, keep));
        assert_true(exists(root, "a/victim.txt"));
        free(keep);
        free(linked);
        free(dir);
        free(hard);
        free(target);
        remove_root(root);
}

static void test_safe_parents(void **state)
{
        char *root = make_root(), *other = make_root(), *link = NULL;

        (void)state;
        mkdir_in(root, "d");
        put_file(root, "file", "x");
        link = path_join(root, "evil");
        assert_int_equal(symlink(other, link), 0);

        assert_int_equal(localfs_safe_parents(root, "top.txt", 0), 0);
        assert_int_equal(localfs_safe_parents(root, "d/x.txt", 0), 0);
        assert_int_equal(localfs_safe_parents(root, "evil/x.txt", 1), -ELOOP);
        assert_int_equal(localfs_safe_parents(root, "evil/sub/x.txt", 1), -ELOOP);
        assert_false(exists(other, "sub"));
        assert_int_equal(localfs_safe_parents(root, "file/x.txt", 1), -ENOTDIR);
        assert_int_equal(localfs_safe_parents(root, "new/deeper/x.txt", 0), -ENOENT);
        assert_false(exists(root, "new"));
        assert_int_equal(localfs_safe_parents(root, "new/deeper/x.txt", 1), 0);
        assert_true(exists(root, "new/deeper"));
        assert_false(exists(root, "new/deeper/x.txt"));
        free(link);
        remove_root(other);
        remove_root(root);
}

static void test_trash_keeps_both_copies(void **state)
{
        char *root = make_root(), *dest = NULL;

        (void)state;
        mkdir_in(root, ".ferry");
        mkdir_in(root, "d");
        put_file(root, "d/x.txt", "one");
        assert_int_equal(localfs_trash(root, "20261121-140205", "d/x.txt", &dest), 0);
        assert_false(exists(root, "d/x.txt"));
        assert_true(exists(root, ".ferry/trash/20261121-140205/d/x.txt"));
        assert_non_null(strstr(dest, "/.ferry/trash/20261121-140205/d/x.txt"));
        free(dest);
        put_file(root, "d/x.txt", "two");
        assert_int_equal(localfs_trash(root, "20261121-140205", "d/x.txt", NULL), 0);
        assert_true(exists(root, ".ferry/trash/20261121-140205/d/x.txt"));
        assert_true(exists(root, ".ferry/trash/20261121-140205/d/x.txt.1"));
        assert_int_equal(localfs_trash(root, "20261121-140205", "d/gone.txt", NULL), -ENOENT);
        remove_root(root);
}

static void test_conflict_move_never_overwrites(void **state)
{
        char *root = make_root(), *name1 = NULL, *name2 = NULL;
        time_t when = 1795269725;

        (void)state;
        put_file(root, "r.txt", "mine");
        assert_int_equal(localfs_conflict_move(root, "r.txt", "laptop", when, &name1), 0);
        assert_false(exists(root, "r.txt"));
        assert_true(exists(root, name1));
        assert_non_null(strstr(name1, "(conflict from laptop "));
        put_file(root, "r.txt", "mine again");
        assert_int_equal(localfs_conflict_move(root, "r.txt", "laptop", when, &name2), 0);
        assert_string_not_equal(name1, name2);
        assert_true(exists(root, name1));
        assert_true(exists(root, name2));
        free(name1);
        free(name2);
        remove_root(root);
}

static void test_modes_and_stat(void **state)
{
        struct index_entry e = {0};
        struct stat st;
        char *root = make_root(), *p;

        (void)state;
        assert_int_equal(localfs_wire_mode(KIND_FILE, 0100644), 0644);
        assert_int_equal(localfs_wire_mode(KIND_FILE, 0100700), 0755);
        assert_int_equal(localfs_wire_mode(KIND_FILE, 0100600), 0644);
        assert_int_equal(localfs_wire_mode(KIND_DIR, 040755), 0);
        assert_int_equal(localfs_wire_mode(KIND_SYMLINK, 0120777), 0);

        put_file(root, "f", "abc");
        p = path_join(root, "f");
        assert_int_equal(lstat(p, &st), 0);
        localfs_entry_stat(&e, &st);
        assert_int_equal(e.kind, KIND_FILE);
        assert_int_equal(e.size, 3);
        assert_true(localfs_stat_matches(&e, &st));
        e.mtime_ns++;
        assert_false(localfs_stat_matches(&e, &st));
        free(p);
        remove_root(root);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lock_is_exclusive),
            cmocka_unit_test(test_sweep_removes_only_temp_files),
            cmocka_unit_test(test_sweep_keeps_resumable_downloads),
            cmocka_unit_test(test_safe_parents),
            cmocka_unit_test(test_trash_keeps_both_copies),
            cmocka_unit_test(test_conflict_move_never_overwrites),
            cmocka_unit_test(test_modes_and_stat),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
