/* Unit tests for the control list: the subnet math behind "same LAN"
 * (IPv4 and IPv6, prefixes on and off byte boundaries, /0 and full-length
 * prefixes, mismatched prefixes and families, bad input), the subnet text,
 * reading a device list (lan entries good and bad), choosing a same-LAN
 * online peer, and the local address of the route to a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "peers.h"

static void test_same_lan_v4(void **state)
{
        (void)state;
        assert_int_equal(peers_same_lan("10.77.1.2", 24, "10.77.1.200", 24), 1);
        assert_int_equal(peers_same_lan("10.77.1.2", 24, "10.77.2.2", 24), 0);
        /* off a byte boundary: .0-.127 and .128-.255 under /25 */
        assert_int_equal(peers_same_lan("192.168.5.10", 25, "192.168.5.127", 25), 1);
        assert_int_equal(peers_same_lan("192.168.5.10", 25, "192.168.5.128", 25), 0);
        assert_int_equal(peers_same_lan("172.16.0.1", 12, "172.31.255.254", 12), 1);
        assert_int_equal(peers_same_lan("172.16.0.1", 12, "172.32.0.1", 12), 0);
        /* the extremes */
        assert_int_equal(peers_same_lan("1.2.3.4", 0, "200.1.1.1", 0), 1);
        assert_int_equal(peers_same_lan("1.2.3.4", 32, "1.2.3.4", 32), 1);
        assert_int_equal(peers_same_lan("1.2.3.4", 32, "1.2.3.5", 32), 0);
        /* both must say the same prefix */
        assert_int_equal(peers_same_lan("10.0.0.1", 24, "10.0.0.2", 16), 0);
        assert_int_equal(peers_same_lan("127.0.0.1", 8, "127.0.0.1", 8), 1);
}

static void test_same_lan_v6(void **state)
{
        (void)state;
        assert_int_equal(peers_same_lan("fd00:77::1", 64, "fd00:77::abcd:1", 64), 1);
        assert_int_equal(peers_same_lan("fd00:77::1", 64, "fd00:77:0:1::1", 64), 0);
        assert_int_equal(peers_same_lan("fd00:77::1", 63, "fd00:77:0:1::1", 63), 1);
        assert_int_equal(peers_same_lan("2001:db8::1", 128, "2001:db8::1", 128), 1);
        assert_int_equal(peers_same_lan("2001:db8::1", 128, "2001:db8::2", 128), 0);
        /* families never match, whatever the prefix */
        assert_int_equal(peers_same_lan("10.0.0.1", 0, "::ffff:10.0.0.1", 0), 0);
}

static void test_same_lan_bad(void **state)
{
        (void)state;
        assert_int_equal(peers_same_lan("10.0.0", 24, "10.0.0.1", 24), -EINVAL);
        assert_int_equal(peers_same_lan("10.0.0.1", 33, "10.0.0.1", 33), -EINVAL);
        assert_int_equal(peers_same_lan("10.0.0.1", -1, "10.0.0.1", -1), -EINVAL);
        assert_int_equal(peers_same_lan("::1", 129, "::1", 129), -EINVAL);
        assert_int_equal(peers_same_lan(NULL, 24, "10.0.0.1", 24), -EINVAL);
        assert_int_equal(peers_same_lan("host.lan", 24, "10.0.0.1", 24), -EINVAL);
        err_clear();
}

static void test_subnet(void **state)
{
        char s[64];

        (void)state;
        assert_int_equal(peers_subnet("10.77.1.2", 24, s, sizeof(s)), 0);
        assert_string_equal(s, "10.77.1.0/24");
        assert_int_equal(peers_subnet("192.168.5.200", 25, s, sizeof(s)), 0);
        assert_string_equal(s, "192.168.5.128/25");
        assert_int_equal(peers_subnet("10.1.2.3", 0, s, sizeof(s)), 0);
        assert_string_equal(s, "0.0.0.0/0");
        assert_int_equal(peers_subnet("fd00:77::abcd:1", 64, s, sizeof(s)), 0);
        assert_string_equal(s, "fd00:77::/64");
        assert_int_equal(peers_subnet("fd00:77:0:ffff::1", 52, s, sizeof(s)), 0);
        assert_string_equal(s, "fd00:77:0:f000::/52");
        assert_int_equal(peers_subnet("10.77.1.2", 24, s, 8), -ENOSPC);
        assert_int_equal(peers_subnet("nope", 24, s, sizeof(s)), -EINVAL);
        err_clear();
}

static const char *list_json =
    "{\"devices\": ["
    " {\"id\": \"a1\", \"name\": \"office\", \"online\": true, \"this\": true,"
    "  \"lan\": {\"addr\": \"10.77.1.2\", \"port\": 8701, \"prefix\": 24}},"
    " {\"id\": \"b2\", \"name\": \"home\", \"online\": false,"
    "  \"lan\": {\"addr\": \"10.77.1.3\", \"port\": 8702, \"prefix\": 24}},"
    " {\"id\": \"c3\", \"name\": \"phone\", \"online\": true,"
    "  \"lan\": {\"addr\": \"10.77.2.3\", \"port\": 8703, \"prefix\": 24}},"
    " {\"id\": \"d4\", \"name\": \"desk\", \"online\": true, \"lan\": null},"
    " {\"id\": \"e5\", \"name\": \"bad\", \"online\": true,"
    "  \"lan\": {\"addr\": \"10.77.1.9\", \"port\": 0, \"prefix\": 24}},"
    " {\"id\": \"f6\", \"name\": \"bad2\", \"online\": true,"
    "  \"lan\": {\"addr\": \"10.77.1.9\", \"port\": 9, \"prefix\": 40}},"
    " {\"name\": \"no id\"},"
    " {\"id\": \"g7\", \"name\": \"laptop\", \"online\": true,"
    "  \"lan\": {\"addr\": \"10.77.1.77\", \"port\": 8704, \"prefix\": 24}},"
    " {\"id\": \"laptop\", \"name\": \"tricky\", \"online\": false, \"lan\": null}"
    "]}";

static void test_parse_and_choose(void **state)
{
        json_t *j = json_loads(list_json, 0, NULL);
        struct peers p = {0};
        const struct peer *self, *q;

        (void)state;
        assert_non_null(j);
        assert_int_equal(peers_parse(j, &p), 0);
        assert_int_equal(p.n, 8); /* the one without an id is skipped */
        self = peers_self(&p);
        assert_non_null(self);
        assert_string_equal(self->id, "a1");
        assert_true(self->has_lan);
        assert_string_equal(self->lan_addr, "10.77.1.2");
        assert_int_equal(self->lan_port, 8701);
        assert_int_equal(self->lan_prefix, 24);
        assert_false(peers_find(&p, "desk")->has_lan);
        assert_false(peers_find(&p, "bad")->has_lan);  /* port 0 */
        assert_false(peers_find(&p, "bad2")->has_lan); /* prefix 40 for IPv4 */
        /* an id wins over a name */
        assert_string_equal(peers_find(&p, "laptop")->name, "tricky");
        assert_string_equal(peers_find(&p, "g7")->name, "laptop");
        assert_null(peers_find(&p, "nobody"));
        /* home is offline, phone on another subnet, desk and bad have no
         * listener: laptop it is */
        q = peers_lan_peer(&p, self);
        assert_non_null(q);
        assert_string_equal(q->id, "g7");
        assert_true(peers_on_same_lan(self, peers_find(&p, "home")));
        assert_false(peers_on_same_lan(self, peers_find(&p, "phone")));
        assert_false(peers_on_same_lan(self, peers_find(&p, "desk")));
        /* from the phone: nobody online on its subnet */
        assert_null(peers_lan_peer(&p, peers_find(&p, "phone")));
        assert_null(peers_lan_peer(&p, NULL));
        peers_free(&p);
        json_decref(j);

        j = json_loads("{\"nothing\": 1}", 0, NULL);
        assert_int_equal(peers_parse(j, &p), -EPROTO);
        json_decref(j);
        err_clear();
}

static void test_local_addr(void **state)
{
        char addr[PEERS_ADDR_MAX];
        int prefix = -1;

        (void)state;
        assert_int_equal(peers_local_addr("http://127.0.0.1:8700", addr, sizeof(addr), &prefix), 0);
        assert_string_equal(addr, "127.0.0.1");
        assert_int_equal(prefix, 8); /* lo holds 127.0.0.1/8 */
        assert_int_equal(peers_local_addr("http://127.0.0.1/", addr, sizeof(addr), &prefix), 0);
        assert_string_equal(addr, "127.0.0.1");
        assert_int_equal(peers_iface_prefix("127.0.0.1", &prefix), 0);
        assert_int_equal(prefix, 8);
        /* an address no interface holds */
        assert_int_equal(peers_iface_prefix("192.0.2.123", &prefix), -ENOENT);
        assert_int_equal(peers_local_addr("http://:80", addr, sizeof(addr), &prefix), -EINVAL);
        assert_int_equal(peers_local_addr("http://[::1", addr, sizeof(addr), &prefix), -EINVAL);
        err_clear();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_same_lan_v4),      cmocka_unit_test(test_same_lan_v6),
            cmocka_unit_test(test_same_lan_bad),     cmocka_unit_test(test_subnet),
            cmocka_unit_test(test_parse_and_choose), cmocka_unit_test(test_local_addr),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
