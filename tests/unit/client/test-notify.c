/* Unit tests for the inotify tree on a temporary folder: nested
 * directories created quickly are watched (files made in them afterwards are
 * seen, and the new top directory is reported so that its earlier content
 * gets scanned), a directory moved inside the folder reports both names and
 * is watched under its new name, one moved out is no longer watched, writes
 * are told apart from closes, and .ferry/ and temporary names are never
 * reported. Under ignore patterns: ignored names raise nothing, ignored
 * directories (and the top-level .ferry-backup) get no watch, new patterns
 * move the watches; a write of .ferry/rules.json is reported as
 * NOTIFY_RULES. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "ignore.h"
#include "notify.h"
#include "testutil.h"

struct fixture {
        char base[1024]; /* holds root/ and outside/ */
        char root[1100];
        struct notify *n;
        char log[16384]; /* "path:what;" */
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        char p[1200];

        if (!f)
                return -1;
        if (testutil_mkdtemp(f->base, sizeof(f->base), "notify") < 0)
                return -1;
        snprintf(f->root, sizeof(f->root), "%s/root", f->base);
        snprintf(p, sizeof(p), "%s/root/.ferry", f->base);
        if (mkdir(f->root, 0755) < 0 || mkdir(p, 0700) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/outside", f->base);
        if (mkdir(p, 0755) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/root/pre", f->base);
        if (mkdir(p, 0755) < 0)
                return -1;
        if (notify_open(f->root, NULL, &f->n) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        notify_close(f->n);
        testutil_rm_rf(f->base);
        free(f);
        return 0;
}

static const char *at(struct fixture *f, const char *rel)
{
        static char p[2][2048];
        static int k;

        k ^= 1;
        snprintf(p[k], sizeof(p[k]), "%s/%s", f->root, rel);
        return p[k];
}

static void on_event(void *ud, const char *path, unsigned what)
{
        struct fixture *f = ud;
        size_t len = strlen(f->log);

        snprintf(f->log + len, sizeof(f->log) - len, "%s:%u;", path, what);
}

/* Reads what is queued now (the events of finished syscalls are queued
 * when they return). */
static void drain(struct fixture *f)
{
        struct pollfd p = {.fd = notify_fd(f->n), .events = POLLIN};

        f->log[0] = '\0';
        while (poll(&p, 1, 50) > 0)
                assert_int_equal(notify_read(f->n, on_event, f), 0);
}

static int has(struct fixture *f, const char *path, unsigned bit)
{
        char key[512];
        const char *p = f->log;

        snprintf(key, sizeof(key), "%s:", path);
        while ((p = strstr(p, key)) != NULL) {
                if ((p == f->log || p[-1] == ';') && (unsigned)atoi(p + strlen(key)) & bit)
                        return 1;
                p++;
        }
        return 0;
}

static void write_file(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
        close(fd);
}

static void test_initial_tree_and_writes(void **state)
{
        struct fixture *f = *state;
        int fd;

        assert_int_equal(notify_count(f->n), 2); /* root and pre, not .ferry */
        fd = open(at(f, "pre/file"), O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x", 1), 1);
        drain(f);
        assert_true(has(f, "pre/file", NOTIFY_WRITING));
        assert_false(has(f, "pre/file", NOTIFY_CLOSED));
        close(fd);
        drain(f);
        assert_true(has(f, "pre/file", NOTIFY_CLOSED));
        assert_int_equal(unlink(at(f, "pre/file")), 0);
        drain(f);
        assert_true(has(f, "pre/file", NOTIFY_GONE));
        assert_int_equal(symlink("target", at(f, "link")), 0);
        drain(f);
        assert_true(has(f, "link", NOTIFY_CHANGED));
        assert_false(has(f, "link", NOTIFY_WRITING));
}

static void test_nested_dirs_created_quickly(void **state)
{
        struct fixture *f = *state;

        assert_int_equal(mkdir(at(f, "a"), 0755), 0);
        assert_int_equal(mkdir(at(f, "a/b"), 0755), 0);
        assert_int_equal(mkdir(at(f, "a/b/c"), 0755), 0);
        write_file(at(f, "a/b/c/early"), "1");
        drain(f);
        /* the top new directory is reported: its scan finds "early" */
        assert_true(has(f, "a", NOTIFY_CHANGED));
        assert_int_equal(notify_count(f->n), 5);
        /* and every level is watched now */
        write_file(at(f, "a/b/c/late"), "2");
        write_file(at(f, "a/b/mid"), "3");
        drain(f);
        assert_true(has(f, "a/b/c/late", NOTIFY_CLOSED));
        assert_true(has(f, "a/b/mid", NOTIFY_CLOSED));
}

static void test_moves(void **state)
{
        struct fixture *f = *state;
        char out[1200];

        assert_int_equal(mkdir(at(f, "d"), 0755), 0);
        assert_int_equal(mkdir(at(f, "d/sub"), 0755), 0);
        drain(f);
        assert_int_equal(rename(at(f, "d"), at(f, "pre/moved")), 0);
        drain(f);
        assert_true(has(f, "d", NOTIFY_GONE));
        assert_true(has(f, "pre/moved", NOTIFY_CHANGED));
        write_file(at(f, "pre/moved/sub/x"), "x");
        drain(f);
        assert_true(has(f, "pre/moved/sub/x", NOTIFY_CLOSED));
        assert_false(has(f, "d/sub/x", ~0u));
        /* out of the folder: reported gone, then no longer watched */
        snprintf(out, sizeof(out), "%s/outside/moved", f->base);
        assert_int_equal(rename(at(f, "pre/moved"), out), 0);
        drain(f);
        assert_true(has(f, "pre/moved", NOTIFY_GONE));
        assert_int_equal(notify_count(f->n), 2);
        snprintf(out, sizeof(out), "%s/outside/moved/sub/y", f->base);
        write_file(out, "y");
        drain(f);
        assert_string_equal(f->log, "");
        /* a file moved in, and a file renamed inside */
        assert_int_equal(rename(out, at(f, "in")), 0);
        drain(f);
        assert_true(has(f, "in", NOTIFY_CHANGED));
        assert_int_equal(rename(at(f, "in"), at(f, "pre/in2")), 0);
        drain(f);
        assert_true(has(f, "in", NOTIFY_GONE));
        assert_true(has(f, "pre/in2", NOTIFY_CHANGED));
}

static void test_ignored_names(void **state)
{
        struct fixture *f = *state;

        write_file(at(f, ".ferry/index.db"), "x");
        write_file(at(f, ".ferry-tmp-abc"), "x");
        write_file(at(f, "pre/.ferry-tmp-def"), "x");
        assert_int_equal(rename(at(f, "pre/.ferry-tmp-def"), at(f, "pre/real")), 0);
        assert_int_equal(mkdir(at(f, "pre/.ferry"), 0755), 0); /* only the root's is special */
        drain(f);
        assert_null(strstr(f->log, "ferry-tmp"));
        assert_null(strstr(f->log, "index.db"));
        assert_true(has(f, "pre/real", NOTIFY_CHANGED));
        assert_true(has(f, "pre/.ferry", NOTIFY_CHANGED));
}

static void test_ignore_patterns(void **state)
{
        struct fixture *f = *state;
        static const char text[] = "build/\n*.log\n";
        struct ignore *ig = NULL, *ig2 = NULL, *ig3 = NULL;

        assert_int_equal(mkdir(at(f, "build"), 0755), 0);
        assert_int_equal(mkdir(at(f, "build/sub"), 0755), 0);
        assert_int_equal(mkdir(at(f, ".ferry-backup"), 0755), 0);
        assert_int_equal(ignore_from_text(text, strlen(text), "t", &ig), 0);
        notify_close(f->n);
        assert_int_equal(notify_open(f->root, ig, &f->n), 0);
        assert_int_equal(notify_count(f->n), 2); /* root and pre */

        write_file(at(f, "build/sub/x.o"), "x");
        write_file(at(f, "pre/a.log"), "x");
        write_file(at(f, ".ferry-backup/doc"), "x");
        assert_int_equal(mkdir(at(f, "pre/build"), 0755), 0);
        assert_int_equal(mkdir(at(f, ".ferry-backup/set"), 0755), 0);
        write_file(at(f, "pre/ok"), "x");
        drain(f);
        assert_false(has(f, "build/sub/x.o", ~0u));
        assert_false(has(f, "pre/a.log", ~0u));
        assert_false(has(f, "pre/build", ~0u));
        assert_null(strstr(f->log, ".ferry-backup"));
        assert_true(has(f, "pre/ok", NOTIFY_CLOSED));
        assert_int_equal(notify_count(f->n), 2);
        /* renamed to a name not ignored: it appears */
        assert_int_equal(rename(at(f, "pre/a.log"), at(f, "pre/a.txt")), 0);
        drain(f);
        assert_false(has(f, "pre/a.log", ~0u));
        assert_true(has(f, "pre/a.txt", NOTIFY_CHANGED));

        /* build/ no longer ignored: its directories are watched */
        assert_int_equal(ignore_from_text("*.log\n", 6, "t", &ig2), 0);
        assert_int_equal(notify_set_ignore(f->n, ig2), 0);
        assert_int_equal(notify_count(f->n), 5); /* + build, build/sub, pre/build */
        write_file(at(f, "build/sub/y.o"), "y");
        drain(f);
        assert_true(has(f, "build/sub/y.o", NOTIFY_CLOSED));
        /* pre/ ignored now: its watches go */
        assert_int_equal(ignore_from_text("pre/\n", 5, "t", &ig3), 0);
        assert_int_equal(notify_set_ignore(f->n, ig3), 0);
        assert_int_equal(notify_count(f->n), 3);
        write_file(at(f, "pre/later"), "x");
        drain(f);
        assert_string_equal(f->log, "");
        notify_close(f->n);
        f->n = NULL;
        ignore_free(ig);
        ignore_free(ig2);
        ignore_free(ig3);
        assert_int_equal(notify_open(f->root, NULL, &f->n), 0);
}

static void test_rules_file(void **state)
{
        struct fixture *f = *state;

        write_file(at(f, ".ferry/other.json"), "{}");
        drain(f);
        assert_string_equal(f->log, "");
        write_file(at(f, ".ferry/rules.json"), "{}"); /* in place */
        drain(f);
        assert_true(has(f, "", NOTIFY_RULES));
        write_file(at(f, ".ferry/rules.json.tmp"), "{}"); /* atomically */
        drain(f);
        assert_false(has(f, "", NOTIFY_RULES));
        assert_int_equal(rename(at(f, ".ferry/rules.json.tmp"), at(f, ".ferry/rules.json")), 0);
        drain(f);
        assert_true(has(f, "", NOTIFY_RULES));
}

static void test_root_gone(void **state)
{
        struct fixture *f = *state;
        char p[1200];

        snprintf(p, sizeof(p), "%s/renamed", f->base);
        assert_int_equal(rename(f->root, p), 0);
        drain(f);
        assert_true(has(f, "", NOTIFY_ROOT_GONE));
        assert_int_equal(rename(p, f->root), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_initial_tree_and_writes, setup, teardown),
            cmocka_unit_test_setup_teardown(test_nested_dirs_created_quickly, setup, teardown),
            cmocka_unit_test_setup_teardown(test_moves, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ignored_names, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ignore_patterns, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rules_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_root_gone, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
