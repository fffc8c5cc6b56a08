/* Unit tests for the rules in a sync session (sync.c): the first load
 * reads .ferry/rules.json and .ferryignore (missing: the defaults); later
 * loads read a file again only when it changed, and say so through the
 * generation the watch follows; a rules.json that does not parse fails
 * with its message and the rules in use stay. No server is contacted. */
#include <errno.h>
#include <fcntl.h>
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
#include "ignore.h"
#include "rules.h"
#include "sync.h"
#include "testutil.h"

struct fixture {
        char root[1024];
        struct config cfg;
        struct sync_session *ss;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        char p[1200];

        if (!f || testutil_mkdtemp(f->root, sizeof(f->root), "syncrules") < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry", f->root);
        if (mkdir(p, 0700) < 0)
                return -1;
        f->cfg.root = f->root;
        f->cfg.server = "http://127.0.0.1:9";
        f->cfg.token = "00";
        f->cfg.device_name = "t";
        if (sync_session_open(&f->cfg, &f->ss) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        sync_session_close(f->ss);
        testutil_rm_rf(f->root);
        free(f);
        return 0;
}

static void write_at(struct fixture *f, const char *rel, const char *text)
{
        char p[1200];
        int fd;

        snprintf(p, sizeof(p), "%s/%s", f->root, rel);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void test_load_and_reload(void **state)
{
        struct fixture *f = *state;
        const struct ignore *ig;
        int r;

        assert_null(sync_session_ignore(f->ss));
        assert_int_equal(sync_session_load_rules(f->ss), 0);
        ig = sync_session_ignore(f->ss);
        assert_non_null(ig);
        assert_int_equal(sync_session_rules_gen(f->ss), 0); /* the first load */
        assert_true(ignore_match(ig, "x.swp", 0));          /* the defaults */
        assert_false(ignore_match(ig, "x.log", 0));

        /* unchanged: nothing read again */
        assert_int_equal(sync_session_load_rules(f->ss), 0);
        assert_ptr_equal(sync_session_ignore(f->ss), ig);
        assert_int_equal(sync_session_rules_gen(f->ss), 0);

        write_at(f, ".ferryignore", "*.log\n");
        assert_int_equal(sync_session_load_rules(f->ss), 0);
        assert_int_equal(sync_session_rules_gen(f->ss), 1);
        ig = sync_session_ignore(f->ss);
        assert_true(ignore_match(ig, "x.log", 0));

        /* a rules.json that does not parse: refused, the rules stay */
        write_at(f, ".ferry/rules.json", "{not json");
        r = sync_session_load_rules(f->ss);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err_msg(r), "rules.json"));
        err_clear();
        assert_int_equal(sync_session_rules_gen(f->ss), 1);
        assert_ptr_equal(sync_session_ignore(f->ss), ig);
        /* and is read again once fixed */
        write_at(f, ".ferry/rules.json",
                 "{\"mode\": \"since-last-sync\", \"up\": [[\"type\", \"txt\"]], "
                 "\"down\": [[\"all\"]]}");
        assert_int_equal(sync_session_load_rules(f->ss), 0);
        assert_int_equal(sync_session_rules_gen(f->ss), 2);
        assert_ptr_equal(sync_session_ignore(f->ss), ig); /* .ferryignore did not change */

        /* .ferryignore removed: the defaults again */
        {
                char p[1200];

                snprintf(p, sizeof(p), "%s/.ferryignore", f->root);
                assert_int_equal(unlink(p), 0);
        }
        assert_int_equal(sync_session_load_rules(f->ss), 0);
        assert_int_equal(sync_session_rules_gen(f->ss), 3);
        assert_false(ignore_match(sync_session_ignore(f->ss), "x.log", 0));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_load_and_reload, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
