/* Unit tests for err and log: messages set and cleared, the strerror
 * fallback, per-thread isolation; log level parsing, filtering and the
 * line format written to a log file. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "testutil.h"

static void test_set_and_clear(void **state)
{
        char big[2000];

        (void)state;
        err_clear();
        assert_string_equal(err_msg(-ENOENT), strerror(ENOENT));
        assert_int_equal(err_set(-EINVAL, "bad path %s", "x"), -EINVAL);
        assert_string_equal(err_msg(-EINVAL), "bad path x");
        /* the message wins over the code's text until cleared */
        assert_string_equal(err_msg(-ENOENT), "bad path x");
        err_clear();
        assert_string_equal(err_msg(-EACCES), strerror(EACCES));
        assert_string_equal(err_msg(EACCES), strerror(EACCES));
        /* long messages are truncated, not overflowed */
        memset(big, 'm', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        err_set(-EIO, "%s", big);
        assert_true(strlen(err_msg(-EIO)) < sizeof(big) - 1);
        assert_true(strlen(err_msg(-EIO)) > 100);
        err_clear();
        assert_non_null(err_msg(-99999));
}

static void *other_thread(void *arg)
{
        (void)arg;
        /* a fresh thread sees no message from the main one */
        if (strcmp(err_msg(-ENOENT), strerror(ENOENT)) != 0)
                return (void *)1;
        err_set(-EIO, "from the thread");
        return NULL;
}

static void test_thread_local(void **state)
{
        pthread_t t;
        void *res = (void *)2;

        (void)state;
        err_set(-EINVAL, "main thread");
        assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
        assert_int_equal(pthread_join(t, &res), 0);
        assert_null(res);
        assert_string_equal(err_msg(-EINVAL), "main thread");
        err_clear();
}

static void test_level_parse(void **state)
{
        enum log_level l = LOG_LEVEL_ERROR;

        (void)state;
        assert_int_equal(log_level_parse("debug", &l), 0);
        assert_int_equal(l, LOG_LEVEL_DEBUG);
        assert_int_equal(log_level_parse("info", &l), 0);
        assert_int_equal(l, LOG_LEVEL_INFO);
        assert_int_equal(log_level_parse("warn", &l), 0);
        assert_int_equal(l, LOG_LEVEL_WARN);
        assert_int_equal(log_level_parse("error", &l), 0);
        assert_int_equal(l, LOG_LEVEL_ERROR);
        assert_int_equal(log_level_parse("verbose", &l), -EINVAL);
        assert_int_equal(log_level_parse("", &l), -EINVAL);
        assert_int_equal(l, LOG_LEVEL_ERROR);
}

static void test_log_file_format(void **state)
{
        char dir[512], path[600];
        char *text = NULL;
        regex_t re;
        char pattern[200];

        (void)state;
        assert_int_equal(testutil_mkdtemp(dir, sizeof(dir), "log"), 0);
        snprintf(path, sizeof(path), "%s/ferry.log", dir);
        log_init("tester", LOG_LEVEL_INFO);
        assert_int_equal(log_open(path), 0);
        log_debug("hidden %d", 1);
        log_info("hello %s", "world");
        log_error("boom");
        log_close();
        assert_int_equal(fsutil_read_all(path, 4096, &text, NULL), 0);
        snprintf(pattern, sizeof(pattern),
                 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                 "tester\\[%ld\\] info: hello world\n"
                 "[0-9T:.-]+Z tester\\[%ld\\] error: boom\n$",
                 (long)getpid(), (long)getpid());
        assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
        if (regexec(&re, text, 0, NULL, 0) != 0)
                fail_msg("unexpected log text: %s", text);
        regfree(&re);
        free(text);
        assert_true(log_open("/nonexistent-dir/x.log") < 0);
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_set_and_clear),
            cmocka_unit_test(test_thread_local),
            cmocka_unit_test(test_level_parse),
            cmocka_unit_test(test_log_file_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
