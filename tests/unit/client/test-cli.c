/* Unit tests for cli: the global options before the command (-C DIR,
 * -C<DIR>, -v/-vv, --help, --version), what counts as a usage error, and the
 * command table, and the RATE of --limit-up / --limit-down. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "err.h"

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
        assert_non_null(cli_find("push"));
        assert_null(cli_find("frobnicate"));
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
        {
                char *rate_sync[] = {"sync", "--limit-up", "fast"};
                char *rate_watch[] = {"watch", "--limit-down", "-1"};
                char *rate_missing[] = {"sync", "--limit-down"};

                assert_int_equal(cmd_sync(&g, ARGC(rate_sync), rate_sync), CLI_USAGE);
                assert_int_equal(cmd_watch(&g, ARGC(rate_watch), rate_watch), CLI_USAGE);
                assert_int_equal(cmd_sync(&g, ARGC(rate_missing), rate_missing), CLI_USAGE);
        }
}

static void test_parse_rate(void **state)
{
        static const struct {
                const char *in;
                int64_t want;
        } good[] = {
            {"0", 0},
            {"1", 1},
            {"500K", 500 * 1024},
            {"500k", 500 * 1024},
            {"10M", 10 * 1024 * 1024},
            {"1.5M", 1536 * 1024},
            {"0.5K", 512},
            {"2G", 2LL * 1024 * 1024 * 1024},
            {"1024", 1024},
            {".5M", 512 * 1024},
            {"1.", 1},
            {"1024G", 1LL << 40},
        };
        static const char *const bad[] = {"",
                                          "K",
                                          ".",
                                          "-1",
                                          "+5",
                                          "10X",
                                          "10KB",
                                          "1.5.5",
                                          " 10",
                                          "10 ",
                                          "0.4",
                                          "1025G",
                                          "99999999999999999999",
                                          "1e6"};
        int64_t v;

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                v = -1;
                if (cli_parse_rate(good[i].in, &v) != 0 || v != good[i].want)
                        fail_msg("'%s' -> %lld, want %lld", good[i].in, (long long)v,
                                 (long long)good[i].want);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                v = 42;
                if (cli_parse_rate(bad[i], &v) != -EINVAL || v != 42)
                        fail_msg("'%s' accepted", bad[i]);
                assert_non_null(strstr(err_msg(-EINVAL), "bad rate"));
        }
        assert_int_equal(cli_limit_option("sync", "--limit-up", "1M", &v), CLI_OK);
        assert_int_equal(v, 1024 * 1024);
        assert_int_equal(cli_limit_option("sync", "--limit-up", "fast", &v), CLI_USAGE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_global_options), cmocka_unit_test(test_help_version_usage),
            cmocka_unit_test(test_command_table),  cmocka_unit_test(test_usage_exit_codes),
            cmocka_unit_test(test_parse_rate),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
