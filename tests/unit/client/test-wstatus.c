/* Unit tests for the watch's status files: a second watch is refused while
 * the first holds watch.lock, status sees watch.json only while the lock is
 * held (a stale file of a dead watch reads as no watch), and the one-line
 * descriptions `ferry status` prints (with the files waited for under the
 * policy "wait"). */
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

#include "wstatus.h"
#include "testutil.h"

static void test_lock_write_read(void **state)
{
        struct wstatus w = {.state = "uploading", .have_detail = 1, .files = 3, .bytes = 1258291};
        char root[1024], p[1100], line[128];
        json_t *j = NULL;
        int fd = -1, fd2 = -1;

        (void)state;
        assert_int_equal(testutil_mkdtemp(root, sizeof(root), "wstatus"), 0);
        snprintf(p, sizeof(p), "%s/.ferry", root);
        assert_int_equal(mkdir(p, 0700), 0);

        /* no watch yet */
        assert_int_equal(wstatus_read(root, &j), 0);
        assert_null(j);
        assert_int_equal(wstatus_lock(root, &fd), 0);
        assert_int_equal(wstatus_lock(root, &fd2), -EBUSY);
        assert_int_equal(wstatus_write(root, &w), 0);
        assert_int_equal(wstatus_read(root, &j), 0);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "pid")), getpid());
        assert_string_equal(json_string_value(json_object_get(j, "state")), "uploading");
        assert_true(json_is_null(json_object_get(j, "offline_since")));
        wstatus_describe(j, line, sizeof(line));
        assert_string_equal(line, "uploading 3 files (1.2 MiB)");
        assert_true(json_is_null(json_object_get(j, "waiting")));
        json_decref(j);

        w.have_waiting = 1;
        w.waiting = 18;
        assert_int_equal(wstatus_write(root, &w), 0);
        assert_int_equal(wstatus_read(root, &j), 0);
        assert_int_equal(json_integer_value(json_object_get(j, "waiting")), 18);
        wstatus_describe(j, line, sizeof(line));
        assert_string_equal(line, "uploading 3 files (1.2 MiB), waiting for 18 files");
        json_decref(j);
        w.have_waiting = 0;

        w.state = "offline";
        w.have_detail = 0;
        w.offline_since = 1763733725;
        snprintf(w.last_error, sizeof(w.last_error), "cannot reach the server");
        assert_int_equal(wstatus_write(root, &w), 0);
        assert_int_equal(wstatus_read(root, &j), 0);
        wstatus_describe(j, line, sizeof(line));
        assert_non_null(strstr(line, "offline since "));
        assert_non_null(strstr(line, "(retrying)"));
        assert_string_equal(json_string_value(json_object_get(j, "last_error")),
                            "cannot reach the server");
        json_decref(j);

        /* the watch is gone but its file stayed: no watch */
        close(fd);
        assert_int_equal(wstatus_read(root, &j), 0);
        assert_null(j);
        assert_int_equal(wstatus_lock(root, &fd), 0);
        wstatus_remove(root);
        assert_int_equal(wstatus_read(root, &j), 0);
        assert_null(j);
        close(fd);
        testutil_rm_rf(root);
}

static void test_describe_plain(void **state)
{
        json_t *j = json_pack("{s:s, s:n}", "state", "idle", "detail");
        char line[64];

        (void)state;
        wstatus_describe(j, line, sizeof(line));
        assert_string_equal(line, "idle");
        json_object_set_new(j, "state", json_string("downloading"));
        json_object_set_new(j, "detail", json_pack("{s:i, s:i}", "files", 1, "bytes", 10));
        wstatus_describe(j, line, sizeof(line));
        assert_string_equal(line, "downloading 1 file (10 B)");
        json_object_set_new(j, "state", json_string("idle"));
        json_object_set_new(j, "waiting", json_integer(1));
        wstatus_describe(j, line, sizeof(line));
        assert_string_equal(line, "idle, waiting for 1 file");
        json_object_set_new(j, "waiting", json_integer(0));
        wstatus_describe(j, line, sizeof(line));
        assert_string_equal(line, "idle");
        json_decref(j);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lock_write_read),
            cmocka_unit_test(test_describe_plain),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
