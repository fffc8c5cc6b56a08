/* Unit tests for cli: the global options before the command (-C DIR,
 * -C<DIR>, -v/-vv, --help, --version), what counts as a usage error, and the
 * command table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_global_options(void **state)
{
        char *a1[] = {"ferry", "-C", "/tmp/x", "sync", "--allow-mass-delete"};
        char *a2[] = {"ferry", "-vv", "-C/d", "status", "--json"};
        char *a3[] = {"ferry", "ls", "-C", "x"};
        struct cli g;
        int cmd = -1;

        (void)state;
        assert_int_equal(cli_parse_global(ARGC(a1), a1, &g, &cmd), CLI_RUN);
        assert_int_equal(cmd, 3);
        assert_string_equal(g.dir, "/tmp/x");
        assert_int_equal(g.verbose, 0);

        assert_int_equal(cli_parse_global(ARGC(a2), a2, &g, &cmd), CLI_RUN);
        assert_int_equal(cmd, 3);
        assert_string_equal(g.dir, "/d");
        assert_int_equal(g.verbose, 2);

        /* options after the command belong to the command */
        assert_int_equal(cli_parse_global(ARGC(a3), a3, &g, &cmd), CLI_RUN);
        assert_int_equal(cmd, 1);
        assert_null(g.dir);
}

static void test_help_version_usage(void **state)
{
        char *h[] = {"ferry", "--help"};
        char *v[] = {"ferry", "-v", "--version"};
        char *none[] = {"ferry"};
        char *dangling[] = {"ferry", "-C"};
        char *unknown[] = {"ferry", "--password", "x", "sync"};
        char *only_opts[] = {"ferry", "-v"};
        struct cli g;
        int cmd;

        (void)state;
        assert_int_equal(cli_parse_global(ARGC(h), h, &g, &cmd), CLI_HELP);
        assert_int_equal(cli_parse_global(ARGC(v), v, &g, &cmd), CLI_VERSION);
        assert_int_equal(cli_parse_global(ARGC(none), none, &g, &cmd), CLI_BAD_USAGE);
        assert_int_equal(cli_parse_global(ARGC(dangling), dangling, &g, &cmd), CLI_BAD_USAGE);
        assert_int_equal(cli_parse_global(ARGC(unknown), unknown, &g, &cmd), CLI_BAD_USAGE);
        assert_int_equal(cli_parse_global(ARGC(only_opts), only_opts, &g, &cmd), CLI_BAD_USAGE);
}

static void test_command_table(void **state)
{
        static const char *const names[] = {"register", "init", "sync", "status", "ls", "devices"};

        (void)state;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const struct cli_command *c = cli_find(names[i]);

                assert_non_null(c);
                assert_string_equal(c->name, names[i]);
                assert_non_null(c->run);
        }
        assert_null(cli_find("push"));
        assert_null(cli_find(""));
}

static void test_usage_exit_codes(void **state)
{
        char *bad[] = {"sync", "--bogus"};
        char *extra[] = {"status", "extra"};
        char *help[] = {"devices", "--help"};
        struct cli g = {0};

        (void)state;
        assert_int_equal(cmd_sync(&g, ARGC(bad), bad), CLI_USAGE);
        assert_int_equal(cmd_status(&g, ARGC(extra), extra), CLI_USAGE);
        assert_int_equal(cmd_devices(&g, ARGC(help), help), CLI_OK);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_global_options),
            cmocka_unit_test(test_help_version_usage),
            cmocka_unit_test(test_command_table),
            cmocka_unit_test(test_usage_exit_codes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
