/* Unit tests for lanproto over socketpairs: messages go through whole and
 * in order (a payload larger than the socket buffer too), every framing
 * violation is refused, deadlines hold, the MAC is HMAC-SHA256 of the
 * documented string and its check is strict, and the handshake succeeds
 * only when both sides hold the same key and the connector is on the
 * control list (wrong key, unknown device, no key yet, missing auth, a
 * listener that cannot prove the key, the wrong listener). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "err.h"
#include "lanproto.h"

#define DEV_L "1111aaaa1111aaaa1111aaaa1111aaaa"
#define DEV_C "2222bbbb2222bbbb2222bbbb2222bbbb"

static const uint8_t key1[LANPROTO_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key2[LANPROTO_KEY_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static void pair(int sv[2])
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void raw_write(int fd, const void *p, size_t n)
{
        assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void test_roundtrip_small(void **state)
{
        struct lanproto_msg m = {0};
        json_t *h = json_pack("{s:s, s:i}", "t", "x", "n", 5);
        int sv[2];

        (void)state;
        pair(sv);
        assert_int_equal(lanproto_send(sv[0], h, "abc", 3, lanproto_deadline(1000)), 0);
        assert_int_equal(lanproto_send(sv[0], h, NULL, 0, lanproto_deadline(1000)), 0);
        assert_int_equal(lanproto_recv(sv[1], 10, lanproto_deadline(1000), &m), 0);
        assert_string_equal(m.type, "x");
        assert_int_equal(json_integer_value(json_object_get(m.hdr, "n")), 5);
        assert_int_equal(m.payload.len, 3);
        assert_memory_equal(m.payload.data, "abc", 3);
        assert_int_equal(lanproto_recv(sv[1], 10, lanproto_deadline(1000), &m), 0);
        assert_int_equal(m.payload.len, 0);
        /* the payload limit is the receiver's */
        assert_int_equal(lanproto_send(sv[0], h, "abc", 3, lanproto_deadline(1000)), 0);
        assert_int_equal(lanproto_recv(sv[1], 2, lanproto_deadline(1000), &m), -EPROTO);
        assert_null(m.hdr);
        lanproto_msg_free(&m);
        json_decref(h);
        close(sv[0]);
        close(sv[1]);
}

struct bigsend {
        int fd;
        uint8_t *data;
        size_t len;
        int r;
};

static void *big_sender(void *ud)
{
        struct bigsend *b = ud;
        json_t *h = json_pack("{s:s}", "t", "big");

        b->r = lanproto_send(b->fd, h, b->data, b->len, lanproto_deadline(10000));
        json_decref(h);
        return NULL;
}

static void test_roundtrip_big(void **state)
{
        struct bigsend b = {.len = 3u << 20};
        struct lanproto_msg m = {0};
        pthread_t th;
        int sv[2];

        (void)state;
        pair(sv);
        b.fd = sv[0];
        b.data = malloc(b.len);
        assert_non_null(b.data);
        for (size_t i = 0; i < b.len; i++)
                b.data[i] = (uint8_t)(i * 131 + (i >> 9));
        assert_int_equal(pthread_create(&th, NULL, big_sender, &b), 0);
        assert_int_equal(lanproto_recv(sv[1], LANPROTO_PAYLOAD_MAX, lanproto_deadline(10000), &m),
                         0);
        pthread_join(th, NULL);
        assert_int_equal(b.r, 0);
        assert_string_equal(m.type, "big");
        assert_int_equal(m.payload.len, b.len);
        assert_memory_equal(m.payload.data, b.data, b.len);
        lanproto_msg_free(&m);
        free(b.data);
        close(sv[0]);
        close(sv[1]);
}

/* Sends a raw prefix and header text, expects lanproto_recv to refuse. */
static void expect_refused(uint32_t hl, uint32_t pl, const char *text, int code)
{
        struct lanproto_msg m = {0};
        uint8_t pre[8] = {hl >> 24, hl >> 16, hl >> 8, hl, pl >> 24, pl >> 16, pl >> 8, pl};
        int sv[2];

        pair(sv);
        raw_write(sv[0], pre, 8);
        if (text)
                raw_write(sv[0], text, strlen(text));
        close(sv[0]);
        assert_int_equal(lanproto_recv(sv[1], LANPROTO_PAYLOAD_MAX, lanproto_deadline(1000), &m),
                         code);
        assert_null(m.hdr);
        close(sv[1]);
}

static void test_framing_violations(void **state)
{
        (void)state;
        expect_refused(0, 0, NULL, -EPROTO);
        expect_refused(LANPROTO_HDR_MAX + 1, 0, NULL, -EPROTO);
        expect_refused(0xffffffffu, 0, NULL, -EPROTO);
        expect_refused(2, LANPROTO_PAYLOAD_MAX + 1, "{}", -EPROTO);
        expect_refused(5, 0, "hello", -EPROTO);                      /* not JSON */
        expect_refused(2, 0, "[]", -EPROTO);                         /* not an object */
        expect_refused(7, 0, "{\"a\":1}", -EPROTO);                  /* no "t" */
        expect_refused(7, 0, "{\"t\":1}", -EPROTO);                  /* "t" not a string */
        expect_refused(17, 0, "{\"t\":\"a\",\"t\":\"b\"}", -EPROTO); /* duplicate keys */
        expect_refused(20, 0, "{\"t\":\"x\"}", -ECONNRESET);         /* truncated header */
        expect_refused(9, 100, "{\"t\":\"x\"}", -ECONNRESET);        /* truncated payload */
}

static void test_deadline(void **state)
{
        struct lanproto_msg m = {0};
        int64_t start = lanproto_deadline(0);
        int sv[2];

        (void)state;
        pair(sv);
        raw_write(sv[0], "\0\0", 2); /* a partial prefix, then silence */
        assert_int_equal(lanproto_recv(sv[1], 0, lanproto_deadline(200), &m), -ETIMEDOUT);
        assert_true(lanproto_deadline(0) - start >= 200);
        assert_true(lanproto_deadline(0) - start < 2000);
        close(sv[0]);
        close(sv[1]);
}

static void test_mac(void **state)
{
        char mac[LANPROTO_MAC_HEX_LEN + 1], want[LANPROTO_MAC_HEX_LEN + 1];
        const char *msg = "ferry-lan-1|00112233445566778899aabbccddeeff|"
                          "ffeeddccbbaa99887766554433221100|" DEV_C;
        uint8_t raw[32];
        unsigned int len = 0;

        (void)state;
        assert_int_equal(lanproto_mac(key1, "00112233445566778899aabbccddeeff",
                                      "ffeeddccbbaa99887766554433221100", DEV_C, mac),
                         0);
        assert_non_null(HMAC(EVP_sha256(), key1, 32, (const uint8_t *)msg, strlen(msg), raw, &len));
        for (int i = 0; i < 32; i++)
                snprintf(want + 2 * i, 3, "%02x", raw[i]);
        assert_string_equal(mac, want);
        assert_true(lanproto_mac_check(key1, "00112233445566778899aabbccddeeff",
                                       "ffeeddccbbaa99887766554433221100", DEV_C, mac));
        /* another key, another order of the nonces, another device */
        assert_false(lanproto_mac_check(key2, "00112233445566778899aabbccddeeff",
                                        "ffeeddccbbaa99887766554433221100", DEV_C, mac));
        assert_false(lanproto_mac_check(key1, "ffeeddccbbaa99887766554433221100",
                                        "00112233445566778899aabbccddeeff", DEV_C, mac));
        assert_false(lanproto_mac_check(key1, "00112233445566778899aabbccddeeff",
                                        "ffeeddccbbaa99887766554433221100", DEV_L, mac));
        assert_false(lanproto_mac_check(key1, "00112233445566778899aabbccddeeff",
                                        "ffeeddccbbaa99887766554433221100", DEV_C, NULL));
        mac[10] = mac[10] == '0' ? '1' : '0';
        assert_false(lanproto_mac_check(key1, "00112233445566778899aabbccddeeff",
                                        "ffeeddccbbaa99887766554433221100", DEV_C, mac));
        mac[63] = 0;
        assert_false(lanproto_mac_check(key1, "00112233445566778899aabbccddeeff",
                                        "ffeeddccbbaa99887766554433221100", DEV_C, mac));
}

static void test_helpers(void **state)
{
        char n1[LANPROTO_NONCE_HEX_LEN + 1], n2[LANPROTO_NONCE_HEX_LEN + 1];
        uint8_t k[LANPROTO_KEY_LEN];
        struct hash *hs = NULL;
        size_t n = 0;
        json_t *arr;

        (void)state;
        assert_int_equal(lanproto_nonce(n1), 0);
        assert_int_equal(lanproto_nonce(n2), 0);
        assert_int_equal(strlen(n1), LANPROTO_NONCE_HEX_LEN);
        assert_string_not_equal(n1, n2);
        assert_int_equal(lanproto_key_from_hex("0102030405060708090000000000000000000000000000000"
                                               "000000000000000",
                                               k),
                         0);
        assert_memory_equal(k, key1, LANPROTO_KEY_LEN);
        assert_int_equal(lanproto_key_from_hex("0102", k), -EINVAL);
        assert_int_equal(lanproto_key_from_hex(NULL, k), -EINVAL);
        assert_true(lanproto_valid_device(DEV_C));
        assert_false(lanproto_valid_device(""));
        assert_false(lanproto_valid_device("a b"));
        assert_false(lanproto_valid_device("a|b"));
        assert_false(lanproto_valid_device(NULL));

        arr = json_pack("[s]", "00");
        assert_int_equal(lanproto_hashes_from_json(arr, 10, &hs, &n), -EPROTO);
        json_decref(arr);
        arr = lanproto_hashes_to_json((struct hash[]){{{1}}, {{2}}}, 2);
        assert_int_equal(lanproto_hashes_from_json(arr, 1, &hs, &n), -EPROTO);
        assert_int_equal(lanproto_hashes_from_json(arr, 2, &hs, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(hs[1].b[0], 2);
        free(hs);
        json_decref(arr);
}

/* The listener's side on a thread, with a fixed control list. */
struct srv {
        int fd;
        const uint8_t *key; /* NULL: no key yet */
        char peer[LANPROTO_DEVICE_MAX + 1];
        int64_t version;
        int r;
};

static int srv_authorise(void *ud, const char *device, uint8_t key[LANPROTO_KEY_LEN],
                         int64_t *version)
{
        struct srv *s = ud;

        if (!s->key)
                return -ENOKEY;
        if (strcmp(device, DEV_C) != 0)
                return -EACCES;
        memcpy(key, s->key, LANPROTO_KEY_LEN);
        *version = 3;
        return 0;
}

static void *srv_main(void *ud)
{
        struct srv *s = ud;

        s->r = lanproto_serve_handshake(s->fd, DEV_L, srv_authorise, s, lanproto_deadline(3000),
                                        s->peer, &s->version);
        return NULL;
}

/* Runs one handshake: the listener with srv_key, the connector as dev with
 * cli_key expecting expect. Returns the connector's result; *srv_r the
 * listener's. */
static int handshake(const uint8_t *srv_key, const char *dev, const uint8_t *cli_key,
                     const char *expect, int *srv_r, char *peer)
{
        struct srv s = {.key = srv_key};
        pthread_t th;
        int sv[2], r;

        pair(sv);
        s.fd = sv[0];
        assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
        r = lanproto_client_handshake(sv[1], dev, cli_key, expect, lanproto_deadline(3000), peer);
        if (r < 0)
                close(sv[1]); /* a connector that gives up hangs up */
        pthread_join(th, NULL);
        if (r == 0) {
                assert_string_equal(s.peer, dev);
                assert_int_equal(s.version, 3);
                close(sv[1]);
        }
        close(sv[0]);
        *srv_r = s.r;
        return r;
}

static void test_handshake(void **state)
{
        char peer[LANPROTO_DEVICE_MAX + 1] = "";
        int sr;

        (void)state;
        assert_int_equal(handshake(key1, DEV_C, key1, DEV_L, &sr, peer), 0);
        assert_int_equal(sr, 0);
        assert_string_equal(peer, DEV_L);
        assert_int_equal(handshake(key1, DEV_C, key1, NULL, &sr, NULL), 0);

        assert_int_equal(handshake(key1, DEV_C, key2, DEV_L, &sr, NULL), -EACCES);
        assert_int_equal(sr, -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "authentication failed"));

        assert_int_equal(handshake(key1, DEV_L, key1, DEV_L, &sr, NULL), -EACCES);
        assert_int_equal(sr, -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "unknown device"));

        assert_int_equal(handshake(NULL, DEV_C, key1, DEV_L, &sr, NULL), -EACCES);
        assert_int_equal(sr, -ENOKEY);
        assert_non_null(strstr(err_msg(-EACCES), "no LAN key"));

        /* the connector hangs up on a listener that is not the one expected */
        assert_int_equal(handshake(key1, DEV_C, key1, DEV_C, &sr, NULL), -EACCES);
        assert_true(sr < 0);
}

static void *srv_then_close(void *ud)
{
        srv_main(ud);
        close(((struct srv *)ud)->fd);
        return NULL;
}

/* Something other than auth after hello: refused with a message. */
static void test_missing_auth(void **state)
{
        struct srv s = {.key = key1};
        struct lanproto_msg m = {0};
        json_t *h = json_pack("{s:s, s:[]}", "t", "chunks", "hashes");
        pthread_t th;
        int sv[2];

        (void)state;
        pair(sv);
        s.fd = sv[0];
        assert_int_equal(pthread_create(&th, NULL, srv_then_close, &s), 0);
        assert_int_equal(lanproto_recv(sv[1], 0, lanproto_deadline(3000), &m), 0);
        assert_string_equal(m.type, "hello");
        assert_int_equal(lanproto_send(sv[1], h, NULL, 0, lanproto_deadline(3000)), 0);
        assert_int_equal(lanproto_recv(sv[1], 0, lanproto_deadline(3000), &m), 0);
        assert_string_equal(m.type, "error");
        assert_string_equal(json_string_value(json_object_get(m.hdr, "error")),
                            "authentication required");
        assert_int_equal(lanproto_recv(sv[1], 0, lanproto_deadline(3000), &m), -ECONNRESET);
        pthread_join(th, NULL);
        assert_int_equal(s.r, -EPROTO);
        lanproto_msg_free(&m);
        json_decref(h);
        close(sv[1]);
}

/* A fake listener that answers ok without knowing the key: the connector
 * must not accept it (the handshake is mutual). */
static void *fake_listener(void *ud)
{
        int fd = *(int *)ud;
        struct lanproto_msg m = {0};
        json_t *h = json_pack("{s:s, s:i, s:s, s:s}", "t", "hello", "proto", 1, "device", DEV_L,
                              "nonce", "00112233445566778899aabbccddeeff");

        lanproto_send(fd, h, NULL, 0, lanproto_deadline(3000));
        json_decref(h);
        lanproto_recv(fd, 0, lanproto_deadline(3000), &m);
        h = json_pack("{s:s, s:s}", "t", "ok", "mac",
                      json_string_value(json_object_get(m.hdr, "mac")));
        lanproto_send(fd, h, NULL, 0, lanproto_deadline(3000));
        json_decref(h);
        lanproto_msg_free(&m);
        return NULL;
}

static void test_listener_must_prove_key(void **state)
{
        pthread_t th;
        int sv[2];

        (void)state;
        pair(sv);
        assert_int_equal(pthread_create(&th, NULL, fake_listener, &sv[0]), 0);
        assert_int_equal(
            lanproto_client_handshake(sv[1], DEV_C, key1, DEV_L, lanproto_deadline(3000), NULL),
            -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "prove"));
        pthread_join(th, NULL);
        close(sv[0]);
        close(sv[1]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_roundtrip_small),
            cmocka_unit_test(test_roundtrip_big),
            cmocka_unit_test(test_framing_violations),
            cmocka_unit_test(test_deadline),
            cmocka_unit_test(test_mac),
            cmocka_unit_test(test_helpers),
            cmocka_unit_test(test_handshake),
            cmocka_unit_test(test_missing_auth),
            cmocka_unit_test(test_listener_must_prove_key),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
