/* Unit tests for the command lines of issue 7 that are decided before any
 * folder or server is touched: `ferry request-upload` (DEVICE, PATH or
 * --all but not both, --via, --timeout, invalid paths), `ferry devices
 * rename` (both operands) and the LAN options of `ferry watch`. Every case
 * here must end with exit 2 (usage) or 0 (--help) without a linked folder:
 * a command that got past its usage checks would fail with 1 instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "err.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A -C folder that is not linked: past usage, a command fails (exit 1). */
static struct cli g = {.dir = "/nonexistent-ferry-test-dir"};

static void test_request_usage(void **state)
{
        char *help[] = {"request-upload", "--help"};
        char *none[] = {"request-upload"};
        char *no_what[] = {"request-upload", "home"};
        char *both[] = {"request-upload", "home", "a.txt", "--all"};
        char *bad_via[] = {"request-upload", "home", "a.txt", "--via", "pigeon"};
        char *bad_path[] = {"request-upload", "home", "../etc/passwd"};
        char *abs_path[] = {"request-upload", "home", "/etc/passwd"};
        char *bad_timeout[] = {"request-upload", "home", "--all", "--timeout", "0"};
        char *junk_timeout[] = {"request-upload", "home", "--all", "--timeout", "5s"};
        char *bad_opt[] = {"request-upload", "home", "--all", "--frobnicate"};
        char *empty[] = {"request-upload", "", "--all"};
        char *ok_paths[] = {"request-upload", "home", "docs/", "a.txt", "--via=lan", "--wait"};
        char *ok_all[] = {"request-upload", "--all", "home", "--via", "relay", "--timeout", "5"};

        (void)state;
        assert_int_equal(cmd_request_upload(&g, ARGC(help), help), CLI_OK);
        assert_int_equal(cmd_request_upload(&g, ARGC(none), none), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(no_what), no_what), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(both), both), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(bad_via), bad_via), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(bad_path), bad_path), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(abs_path), abs_path), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(bad_timeout), bad_timeout), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(junk_timeout), junk_timeout), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(bad_opt), bad_opt), CLI_USAGE);
        assert_int_equal(cmd_request_upload(&g, ARGC(empty), empty), CLI_USAGE);
        /* well-formed: past the usage checks, the missing folder fails */
        assert_int_equal(cmd_request_upload(&g, ARGC(ok_paths), ok_paths), CLI_FAIL);
        assert_int_equal(cmd_request_upload(&g, ARGC(ok_all), ok_all), CLI_FAIL);
        err_clear();
}

static void test_devices_rename_usage(void **state)
{
        char *one[] = {"devices", "rename", "home"};
        char *three[] = {"devices", "rename", "home", "a", "b"};
        char *empty[] = {"devices", "rename", "home", ""};
        char *ok[] = {"devices", "rename", "home", "office"};

        (void)state;
        assert_int_equal(cmd_devices(&g, ARGC(one), one), CLI_USAGE);
        assert_int_equal(cmd_devices(&g, ARGC(three), three), CLI_USAGE);
        assert_int_equal(cmd_devices(&g, ARGC(empty), empty), CLI_USAGE);
        assert_int_equal(cmd_devices(&g, ARGC(ok), ok), CLI_FAIL);
        err_clear();
}

static void test_watch_lan_usage(void **state)
{
        char *port[] = {"watch", "--lan-port", "65536"};
        char *port_junk[] = {"watch", "--lan-port", "80x"};
        char *addr[] = {"watch", "--lan-addr", "my-host"};
        char *ok[] = {"watch", "--lan-port", "0", "--lan-addr", "fd00::1", "--no-lan"};

        (void)state;
        assert_int_equal(cmd_watch(&g, ARGC(port), port), CLI_USAGE);
        assert_int_equal(cmd_watch(&g, ARGC(port_junk), port_junk), CLI_USAGE);
        assert_int_equal(cmd_watch(&g, ARGC(addr), addr), CLI_USAGE);
        assert_int_equal(cmd_watch(&g, ARGC(ok), ok), CLI_FAIL);
        err_clear();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_request_usage),
            cmocka_unit_test(test_devices_rename_usage),
            cmocka_unit_test(test_watch_lan_usage),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
