/* Unit tests for waiting (what a device under the policy "wait" waits for):
 * the summary of a GET /api/v1/transfers answer counts other devices'
 * pending, uploading and failed files (never complete ones, never this
 * device's own), per device, with its name, presence and the first
 * failure's reason; the one-line description says it all; the file
 * round-trips and goes away. */
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

#include "testutil.h"
#include "waiting.h"

static json_t *answer(void)
{
        json_t *j = json_loads(
            "{\"devices\": ["
            " {\"id\": \"L\", \"name\": \"laptop\", \"online\": false, \"last_seen\": 1763733725},"
            " {\"id\": \"D\", \"name\": \"desktop\", \"online\": true, \"last_seen\": 1763733999},"
            " {\"id\": \"ME\", \"name\": \"me\", \"online\": true, \"last_seen\": 1}],"
            "\"batches\": ["
            " {\"id\": 9, \"device\": \"D\", \"device_name\": \"desktop\", \"records\": ["
            "  {\"path\": \"d1\", \"status\": \"uploading\", \"size\": 10, \"bytes_done\": 4}]},"
            " {\"id\": 8, \"device\": \"ME\", \"device_name\": \"me\", \"records\": ["
            "  {\"path\": \"m1\", \"status\": \"failed\", \"size\": 1, \"bytes_done\": 0,"
            "   \"reason\": \"mine\"}]},"
            " {\"id\": 7, \"device\": \"L\", \"device_name\": \"laptop\", \"records\": ["
            "  {\"path\": \"a\", \"status\": \"complete\", \"size\": 5, \"bytes_done\": 5},"
            "  {\"path\": \"b\", \"status\": \"pending\", \"size\": 100, \"bytes_done\": 0},"
            "  {\"path\": \"c\", \"status\": \"failed\", \"size\": 50, \"bytes_done\": 20,"
            "   \"reason\": \"connection lost\"},"
            "  {\"path\": \"e\", \"status\": \"failed\", \"size\": 50, \"bytes_done\": 0,"
            "   \"reason\": \"later\"}]},"
            " {\"id\": 6, \"device\": \"L\", \"device_name\": \"laptop\", \"records\": ["
            "  {\"path\": \"f\", \"status\": \"pending\", \"size\": 1, \"bytes_done\": 0}]}],"
            "\"downloads\": []}",
            0, NULL);

        assert_non_null(j);
        return j;
}

static void test_summary(void **state)
{
        json_t *a = answer(), *w = NULL, *d;
        char line[512];

        (void)state;
        assert_int_equal(waiting_from_transfers(a, "ME", 1234, &w), 0);
        assert_int_equal(json_integer_value(json_object_get(w, "time")), 1234);
        assert_int_equal(json_array_size(json_object_get(w, "devices")), 2);
        assert_int_equal(waiting_files(w), 5);
        d = json_array_get(json_object_get(w, "devices"), 0);
        assert_string_equal(json_string_value(json_object_get(d, "name")), "desktop");
        assert_true(json_is_true(json_object_get(d, "online")));
        assert_int_equal(json_integer_value(json_object_get(d, "uploading")), 1);
        waiting_describe(d, line, sizeof(line));
        assert_string_equal(line, "1 file from desktop (1 uploading; online)");
        d = json_array_get(json_object_get(w, "devices"), 1);
        assert_string_equal(json_string_value(json_object_get(d, "device")), "L");
        assert_int_equal(json_integer_value(json_object_get(d, "files")), 4);
        assert_int_equal(json_integer_value(json_object_get(d, "pending")), 2);
        assert_int_equal(json_integer_value(json_object_get(d, "failed")), 2);
        assert_int_equal(json_integer_value(json_object_get(d, "bytes_total")), 201);
        assert_int_equal(json_integer_value(json_object_get(d, "bytes_done")), 20);
        assert_string_equal(json_string_value(json_object_get(d, "reason")), "connection lost");
        waiting_describe(d, line, sizeof(line));
        assert_non_null(strstr(line, "4 files from laptop (2 pending, 2 failed: connection lost; "
                                     "offline since "));
        json_decref(w);

        /* without self, its own records count too */
        assert_int_equal(waiting_from_transfers(a, NULL, 1, &w), 0);
        assert_int_equal(waiting_files(w), 6);
        json_decref(w);
        json_decref(a);

        /* nothing incomplete: an empty list */
        a = json_loads("{\"devices\": [], \"batches\": []}", 0, NULL);
        assert_int_equal(waiting_from_transfers(a, "ME", 1, &w), 0);
        assert_int_equal(json_array_size(json_object_get(w, "devices")), 0);
        assert_int_equal(waiting_files(w), 0);
        json_decref(w);
        json_decref(a);
}

static void test_file(void **state)
{
        char *root = testutil_mkdtemp_alloc("waiting"), p[1200];
        json_t *a = answer(), *w = NULL, *back = NULL;

        (void)state;
        assert_non_null(root);
        snprintf(p, sizeof(p), "%s/.ferry", root);
        assert_int_equal(mkdir(p, 0700), 0);
        assert_int_equal(waiting_load(root, &back), 0);
        assert_null(back);
        assert_int_equal(waiting_from_transfers(a, "ME", 1, &w), 0);
        assert_int_equal(waiting_save(root, w), 0);
        assert_int_equal(waiting_load(root, &back), 0);
        assert_true(json_equal(w, back));
        json_decref(back);
        assert_int_equal(waiting_save(root, NULL), 0);
        assert_int_equal(waiting_load(root, &back), 0);
        assert_null(back);
        assert_int_equal(waiting_save(root, NULL), 0); /* already gone: fine */
        json_decref(w);
        json_decref(a);
        testutil_rm_rf(root);
        free(root);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_summary),
            cmocka_unit_test(test_file),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
