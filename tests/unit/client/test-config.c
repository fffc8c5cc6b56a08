/* Unit tests for config: save and load round trip (0600 file in a 0700
 * folder), defaults for missing settings (download_incomplete: skip), bad
 * files (an unknown policy), and finding the linked folder from a
 * subdirectory the way git finds .git. */
#include <errno.h>
#include <limits.h>
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

#include "config.h"
#include "fsutil.h"
#include "testutil.h"

struct fixture {
        char dir[1024];
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        if (f == NULL)
                return -1;
        if (testutil_mkdtemp(f->dir, sizeof(f->dir), "config") < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        testutil_rm_rf(f->dir);
        free(f);
        return 0;
}

static void fill(struct config *c, const char *root)
{
        memset(c, 0, sizeof(*c));
        c->root = strdup(root);
        c->server = strdup("http://127.0.0.1:8700");
        c->user = strdup("alice");
        c->device_id = strdup("0123456789abcdef0123456789abcdef");
        c->device_name = strdup("laptop ü");
        c->token = strdup("ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12");
        c->mass_delete_count = 7;
        c->mass_delete_percent = 33;
        c->dl_policy = CONFIG_DL_WAIT;
}

static void test_save_load(void **state)
{
        struct fixture *f = *state;
        struct config c, l = {0};
        char path[PATH_MAX], *real;
        struct stat st;

        fill(&c, f->dir);
        assert_int_equal(config_save(&c), 0);

        snprintf(path, sizeof(path), "%s/.ferry/config.json", f->dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        snprintf(path, sizeof(path), "%s/.ferry", f->dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);

        assert_int_equal(config_load(f->dir, &l), 0);
        real = realpath(f->dir, NULL);
        assert_non_null(real);
        assert_string_equal(l.root, real);
        assert_string_equal(l.server, c.server);
        assert_string_equal(l.user, c.user);
        assert_string_equal(l.device_id, c.device_id);
        assert_string_equal(l.device_name, c.device_name);
        assert_string_equal(l.token, c.token);
        assert_int_equal(l.mass_delete_count, 7);
        assert_int_equal(l.mass_delete_percent, 33);
        assert_int_equal(l.dl_policy, CONFIG_DL_WAIT);

        /* saving again replaces the file */
        free(c.user);
        c.user = strdup("bob");
        assert_int_equal(config_save(&c), 0);
        config_free(&l);
        assert_int_equal(config_load(f->dir, &l), 0);
        assert_string_equal(l.user, "bob");

        char *sp = config_state_path(&l, "index.db");
        snprintf(path, sizeof(path), "%s/.ferry/index.db", real);
        assert_string_equal(sp, path);
        free(sp);
        free(real);
        config_free(&l);
        config_free(&c);
}

static void test_defaults_and_errors(void **state)
{
        struct fixture *f = *state;
        struct config l = {0};
        char path[PATH_MAX];
        const char *min = "{\"server\": \"http://h:1\"}";
        const char *bad_type = "{\"server\": 5}";
        const char *bad_pct = "{\"mass_delete_percent\": 150}";
        const char *bad_policy = "{\"download_incomplete\": \"sometimes\"}";

        /* no config at all */
        assert_int_equal(config_load(f->dir, &l), -ENOENT);

        snprintf(path, sizeof(path), "%s/.ferry", f->dir);
        assert_int_equal(fsutil_mkdirs(path, 1), 0);
        snprintf(path, sizeof(path), "%s/.ferry/config.json", f->dir);

        assert_int_equal(fsutil_write_atomic(path, min, strlen(min), 0600), 0);
        assert_int_equal(config_load(f->dir, &l), 0);
        assert_string_equal(l.server, "http://h:1");
        assert_null(l.token);
        assert_int_equal(l.mass_delete_count, CONFIG_DEFAULT_MASS_DELETE_COUNT);
        assert_int_equal(l.mass_delete_percent, CONFIG_DEFAULT_MASS_DELETE_PERCENT);
        assert_int_equal(l.dl_policy, CONFIG_DL_SKIP);
        config_free(&l);

        assert_int_equal(fsutil_write_atomic(path, bad_policy, strlen(bad_policy), 0600), 0);
        assert_int_equal(config_load(f->dir, &l), -EINVAL);
        assert_null(l.root);
        assert_int_equal(config_dl_policy_parse("wait"), CONFIG_DL_WAIT);
        assert_int_equal(config_dl_policy_parse("skip"), CONFIG_DL_SKIP);
        assert_int_equal(config_dl_policy_parse("Wait"), -EINVAL);
        assert_string_equal(config_dl_policy_name(CONFIG_DL_WAIT), "wait");

        assert_int_equal(fsutil_write_atomic(path, bad_type, strlen(bad_type), 0600), 0);
        assert_int_equal(config_load(f->dir, &l), -EINVAL);
        assert_null(l.root);
        assert_int_equal(fsutil_write_atomic(path, bad_pct, strlen(bad_pct), 0600), 0);
        assert_int_equal(config_load(f->dir, &l), -EINVAL);
        assert_int_equal(fsutil_write_atomic(path, "{not json", 9, 0600), 0);
        assert_int_equal(config_load(f->dir, &l), -EINVAL);
        assert_int_equal(fsutil_write_atomic(path, "[1]", 3, 0600), 0);
        assert_int_equal(config_load(f->dir, &l), -EINVAL);
}

static void test_find_root(void **state)
{
        struct fixture *f = *state;
        char sub[PATH_MAX], linked[PATH_MAX], *real, other[PATH_MAX];
        struct config c;
        char *root = NULL;

        snprintf(linked, sizeof(linked), "%s/linked", f->dir);
        snprintf(sub, sizeof(sub), "%s/linked/a/b c/d", f->dir);
        snprintf(other, sizeof(other), "%s/other", f->dir);
        assert_int_equal(fsutil_mkdirs(sub, 0), 0);
        assert_int_equal(fsutil_mkdirs(other, 0), 0);

        /* nothing linked yet */
        assert_int_equal(config_find_root(sub, &root), -ENOENT);
        assert_null(root);

        fill(&c, linked);
        assert_int_equal(config_save(&c), 0);
        config_free(&c);
        real = realpath(linked, NULL);
        assert_non_null(real);

        assert_int_equal(config_find_root(sub, &root), 0);
        assert_string_equal(root, real);
        free(root);
        root = NULL;
        assert_int_equal(config_find_root(linked, &root), 0);
        assert_string_equal(root, real);
        free(root);
        root = NULL;

        /* a sibling is not inside the linked folder */
        assert_int_equal(config_find_root(other, &root), -ENOENT);
        assert_null(root);
        /* a start that does not exist */
        snprintf(other, sizeof(other), "%s/nope", f->dir);
        assert_int_equal(config_find_root(other, &root), -ENOENT);
        free(real);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
            cmocka_unit_test_setup_teardown(test_defaults_and_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_find_root, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
