/* test-requests: the device registry and upload requests end to end against
 * a real ferryd in-process (api_requests.c): the devices' LAN listener,
 * subnet and first_seen, renames, the account's LAN key (its rotation when
 * a device is removed, never shared with another account), upload requests
 * (creation and its validation, listing and its filters, only the target
 * moving a request, only forward, expiry on read and by the tick, failure
 * when the target is removed), and the "devices" and "requests" events of
 * the event stream. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "server.h"
#include "srvfix.h"
#include "srvtest.h"

/* A request as c (NULL: no token); the answer's JSON in *out. */
static long req(struct srvfix *f, struct srvfix_client *c, const char *method, const char *path,
                const char *body, json_t **out)
{
        struct curl_slist *hdrs = NULL;
        struct buf b = BUF_INIT;
        char url[4200], auth[120];
        long status = 0;
        CURL *h = curl_easy_init();

        assert_non_null(h);
        snprintf(url, sizeof(url), "%s%s", f->base, path);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, srvfix_on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        if (c) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
                hdrs = curl_slist_append(hdrs, auth);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (body)
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        *out = json_loadb((const char *)b.data, b.len, 0, NULL);
        buf_free(&b);
        assert_non_null(*out);
        return status;
}

static long status_of(struct srvfix *f, struct srvfix_client *c, const char *method,
                      const char *path, const char *body)
{
        json_t *j;
        long st = req(f, c, method, path, body, &j);

        json_decref(j);
        return st;
}

static void login(struct srvfix *f, struct srvfix_client *c, const char *user, const char *dev,
                  int reg)
{
        char body[256];
        json_t *j;

        if (reg) {
                snprintf(body, sizeof(body),
                         "{\"user\":\"%s\",\"email\":\"%s@x.org\",\"password\":\"pw-%s-123\"}",
                         user, user, user);
                assert_int_equal(status_of(f, NULL, "POST", "/api/v1/register", body), 201);
        }
        snprintf(body, sizeof(body),
                 "{\"user\":\"%s\",\"password\":\"pw-%s-123\",\"device_name\":\"%s\"}", user, user,
                 dev);
        assert_int_equal(req(f, NULL, "POST", "/api/v1/login", body, &j), 200);
        snprintf(c->token, sizeof(c->token), "%s", json_string_value(json_object_get(j, "token")));
        snprintf(c->id, sizeof(c->id), "%s", json_string_value(json_object_get(j, "device_id")));
        json_decref(j);
}

static int setup(void **state)
{
        struct srvfix *f = calloc(1, sizeof(*f));

        srvfix_start(f, SRVFIX_KEEPALIVE_MS);
        login(f, &f->a1, "alice", "laptop", 1);
        login(f, &f->a2, "alice", "phone", 0);
        login(f, &f->a3, "alice", "desk", 0);
        login(f, &f->bob, "bob", "bobpc", 1);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct srvfix *f = *state;

        srvfix_stop(f);
        free(f);
        return 0;
}

/* Runs sql "behind the server's back" on the test's metadata database
 * (SQLite's meta.db, or the PostgreSQL database of a '-pg' run): the
 * first column of its first row as an integer (-1 when no row). */
static int64_t store_sql(struct srvfix *f, const char *sql)
{
        char path[4200];
        sqlite3_stmt *st;
        sqlite3 *db;
        PGresult *res;
        PGconn *c;
        int64_t v = -1;

        if (f->metadata) {
                c = PQconnectdb(f->metadata);
                res = PQexec(c, sql);
                assert_true(PQresultStatus(res) == PGRES_COMMAND_OK ||
                            PQresultStatus(res) == PGRES_TUPLES_OK);
                if (PQntuples(res) > 0)
                        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                PQclear(res);
                PQfinish(c);
                return v;
        }
        snprintf(path, sizeof(path), "%s/meta.db", f->dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        assert_int_equal(sqlite3_reset(st), SQLITE_OK);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static int64_t version(struct srvfix *f, int counter)
{
        int64_t v = -1;

        assert_int_equal(f->s.meta->ops->registry_version(f->s.meta, 1, counter, &v), 0);
        return v;
}

/* The device id in alice's GET /api/v1/devices (a new reference). */
static json_t *device(struct srvfix *f, const char *id)
{
        json_t *j, *d, *out = NULL;
        size_t i;

        assert_int_equal(req(f, &f->a1, "GET", "/api/v1/devices", NULL, &j), 200);
        json_array_foreach(json_object_get(j, "devices"), i, d)
        {
                if (strcmp(json_string_value(json_object_get(d, "id")), id) == 0)
                        out = json_incref(d);
        }
        json_decref(j);
        assert_non_null(out);
        return out;
}

static const char *str(json_t *o, const char *key)
{
        assert_true(json_is_string(json_object_get(o, key)));
        return json_string_value(json_object_get(o, key));
}

static int64_t num(json_t *o, const char *key)
{
        assert_true(json_is_integer(json_object_get(o, key)));
        return json_integer_value(json_object_get(o, key));
}

static void test_device_lan_and_subnet(void **state)
{
        struct srvfix *f = *state;
        json_t *d, *j, *lan;
        int64_t v;

        d = device(f, f->a2.id);
        assert_true(json_is_null(json_object_get(d, "lan")));
        assert_string_equal(str(d, "subnet"), "127.0.0.0/24"); /* from the address */
        assert_int_equal(num(d, "first_seen"), num(d, "created"));
        json_decref(d);

        v = version(f, META_COUNTER_DEVICES);
        assert_int_equal(req(f, &f->a2, "POST", "/api/v1/device",
                             "{\"lan\":{\"addr\":\"10.77.1.2\",\"port\":8701,\"prefix\":24},"
                             "\"platform\":\"linux-arm\"}",
                             &j),
                         200);
        lan = json_object_get(j, "lan");
        assert_string_equal(str(lan, "addr"), "10.77.1.2");
        assert_int_equal(num(lan, "port"), 8701);
        assert_int_equal(num(lan, "prefix"), 24);
        assert_string_equal(str(j, "subnet"), "10.77.1.0/24");
        assert_string_equal(str(j, "platform"), "linux-arm");
        assert_string_equal(str(j, "download_incomplete"), "skip"); /* untouched */
        json_decref(j);
        assert_int_equal(version(f, META_COUNTER_DEVICES), v + 1);
        /* Reporting the same again is no change of the control list. */
        assert_int_equal(
            status_of(f, &f->a2, "POST", "/api/v1/device",
                      "{\"lan\":{\"addr\":\"10.77.1.2\",\"port\":8701,\"prefix\":24}}"),
            200);
        assert_int_equal(version(f, META_COUNTER_DEVICES), v + 1);
        d = device(f, f->a2.id);
        assert_string_equal(str(json_object_get(d, "lan"), "addr"), "10.77.1.2");
        json_decref(d);

        /* IPv6, canonicalised; the policy alone still works. */
        assert_int_equal(req(f, &f->a3, "POST", "/api/v1/device",
                             "{\"lan\":{\"addr\":\"FD00:0::5\",\"port\":1,\"prefix\":64},"
                             "\"download_incomplete\":\"wait\"}",
                             &j),
                         200);
        assert_string_equal(str(json_object_get(j, "lan"), "addr"), "fd00::5");
        assert_string_equal(str(j, "subnet"), "fd00::/64");
        assert_string_equal(str(j, "download_incomplete"), "wait");
        json_decref(j);

        const char *bad[] = {
            "{}",
            "{\"lan\":5}",
            "{\"lan\":{\"addr\":\"host.lan\",\"port\":8701,\"prefix\":24}}",
            "{\"lan\":{\"addr\":\"10.0.0.1\",\"port\":0,\"prefix\":24}}",
            "{\"lan\":{\"addr\":\"10.0.0.1\",\"port\":65536,\"prefix\":24}}",
            "{\"lan\":{\"addr\":\"10.0.0.1\",\"port\":80,\"prefix\":33}}",
            "{\"lan\":{\"addr\":\"fd00::1\",\"port\":80,\"prefix\":129}}",
            "{\"lan\":{\"addr\":\"10.0.0.1\",\"port\":\"80\",\"prefix\":24}}",
            "{\"platform\":7}",
            "{\"download_incomplete\":\"never\",\"lan\":null}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(status_of(f, &f->a2, "POST", "/api/v1/device", bad[i]), 400);
        d = device(f, f->a2.id); /* a 400 changed nothing */
        assert_string_equal(str(json_object_get(d, "lan"), "addr"), "10.77.1.2");
        json_decref(d);

        /* null: no listener any more; the subnet falls back. */
        assert_int_equal(req(f, &f->a2, "POST", "/api/v1/device", "{\"lan\":null}", &j), 200);
        assert_true(json_is_null(json_object_get(j, "lan")));
        assert_string_equal(str(j, "subnet"), "127.0.0.0/24");
        json_decref(j);
}

static void test_rename(void **state)
{
        struct srvfix *f = *state;
        char body[256];
        json_t *j;
        int64_t v = version(f, META_COUNTER_DEVICES);

        assert_int_equal(req(f, &f->a1, "POST", "/api/v1/devices/rename",
                             "{\"device\":\"phone\",\"name\":\"tablet\"}", &j),
                         200);
        assert_string_equal(str(json_object_get(j, "device"), "name"), "tablet");
        assert_string_equal(str(json_object_get(j, "device"), "id"), f->a2.id);
        json_decref(j);
        assert_int_equal(version(f, META_COUNTER_DEVICES), v + 1);
        /* By id, to its own name: fine, no change. */
        snprintf(body, sizeof(body), "{\"device\":\"%s\",\"name\":\"tablet\"}", f->a2.id);
        assert_int_equal(status_of(f, &f->a3, "POST", "/api/v1/devices/rename", body), 200);
        assert_int_equal(version(f, META_COUNTER_DEVICES), v + 1);
        /* Taken by another active device. */
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/devices/rename",
                                   "{\"device\":\"tablet\",\"name\":\"desk\"}"),
                         409);
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/devices/rename",
                                   "{\"device\":\"tablet\",\"name\":\"\"}"),
                         400);
        assert_int_equal(
            status_of(f, &f->a1, "POST", "/api/v1/devices/rename", "{\"device\":\"tablet\"}"), 400);
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/devices/rename",
                                   "{\"device\":\"phone\",\"name\":\"x\"}"),
                         404);
        /* Another account's device is unknown here. */
        snprintf(body, sizeof(body), "{\"device\":\"%s\",\"name\":\"mine\"}", f->bob.id);
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/devices/rename", body), 404);
        j = device(f, f->a2.id);
        assert_string_equal(str(j, "name"), "tablet");
        json_decref(j);
}

static void test_lan_key(void **state)
{
        struct srvfix *f = *state;
        char key[65], body[128];
        json_t *j;
        int64_t v;

        assert_int_equal(req(f, &f->a1, "GET", "/api/v1/lan-key", NULL, &j), 200);
        assert_int_equal(strlen(str(j, "key")), 64);
        assert_int_equal(strspn(str(j, "key"), "0123456789abcdef"), 64);
        assert_int_equal(num(j, "version"), 1);
        snprintf(key, sizeof(key), "%s", str(j, "key"));
        json_decref(j);
        /* The same for every device of the account, another for bob. */
        assert_int_equal(req(f, &f->a2, "GET", "/api/v1/lan-key", NULL, &j), 200);
        assert_string_equal(str(j, "key"), key);
        json_decref(j);
        assert_int_equal(req(f, &f->bob, "GET", "/api/v1/lan-key", NULL, &j), 200);
        assert_string_not_equal(str(j, "key"), key);
        json_decref(j);
        assert_int_equal(status_of(f, NULL, "GET", "/api/v1/lan-key", NULL), 401);

        /* Removing a device replaces the key; the removed one gets none. */
        v = version(f, META_COUNTER_DEVICES);
        snprintf(body, sizeof(body), "{\"device\":\"%s\"}", f->a3.id);
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/devices/remove", body), 200);
        assert_true(version(f, META_COUNTER_DEVICES) > v);
        assert_int_equal(req(f, &f->a2, "GET", "/api/v1/lan-key", NULL, &j), 200);
        assert_int_equal(num(j, "version"), 2);
        assert_string_not_equal(str(j, "key"), key);
        json_decref(j);
        assert_int_equal(status_of(f, &f->a3, "GET", "/api/v1/lan-key", NULL), 401);
}

/* Creates a request as c; its id, and the whole answer in *out (may be
 * NULL). */
static int64_t create(struct srvfix *f, struct srvfix_client *c, const char *body, json_t **out)
{
        json_t *j, *r;
        int64_t id;

        assert_int_equal(req(f, c, "POST", "/api/v1/requests", body, &j), 201);
        r = json_object_get(j, "request");
        id = num(r, "id");
        if (out)
                *out = json_incref(r);
        json_decref(j);
        return id;
}

static long update(struct srvfix *f, struct srvfix_client *c, int64_t id, const char *rest)
{
        char body[512];

        snprintf(body, sizeof(body), "{\"id\":%lld%s}", (long long)id, rest);
        return status_of(f, c, "POST", "/api/v1/requests/update", body);
}

/* GET /api/v1/requests?query as c: the list (a new reference). */
static json_t *list(struct srvfix *f, struct srvfix_client *c, const char *query)
{
        char path[256];
        json_t *j, *l;

        snprintf(path, sizeof(path), "/api/v1/requests%s", query);
        assert_int_equal(req(f, c, "GET", path, NULL, &j), 200);
        l = json_incref(json_object_get(j, "requests"));
        json_decref(j);
        assert_true(json_is_array(l));
        return l;
}

static void test_request_lifecycle(void **state)
{
        struct srvfix *f = *state;
        json_t *r, *l;
        char q[64];
        int64_t id, id2, v, t0 = time(NULL);

        v = version(f, META_COUNTER_REQUESTS);
        id = create(f, &f->a1,
                    "{\"target\":\"phone\",\"paths\":[\"a.txt\",\"b/c.pdf\"],\"via\":\"lan\"}", &r);
        assert_int_equal(version(f, META_COUNTER_REQUESTS), v + 1);
        assert_string_equal(str(r, "requester"), f->a1.id);
        assert_string_equal(str(r, "requester_name"), "laptop");
        assert_string_equal(str(r, "target"), f->a2.id);
        assert_string_equal(str(r, "target_name"), "phone");
        assert_int_equal(json_array_size(json_object_get(r, "paths")), 2);
        assert_string_equal(json_string_value(json_array_get(json_object_get(r, "paths"), 1)),
                            "b/c.pdf");
        assert_false(json_is_true(json_object_get(r, "all")));
        assert_string_equal(str(r, "via"), "lan");
        assert_string_equal(str(r, "status"), "pending");
        assert_int_equal(num(r, "files"), 0);
        assert_string_equal(str(r, "reason"), "");
        assert_true(num(r, "created") >= t0 && num(r, "updated") == num(r, "created"));
        assert_int_equal(num(r, "expires"), num(r, "created") + 86400);
        json_decref(r);
        id2 = create(f, &f->a2,
                     "{\"target\":\"desk\",\"all\":true,\"paths\":[\"ignored\"],\"expires_in\":60}",
                     &r);
        assert_true(json_is_true(json_object_get(r, "all")));
        assert_int_equal(json_array_size(json_object_get(r, "paths")), 0);
        assert_string_equal(str(r, "via"), "relay");
        assert_int_equal(num(r, "expires"), num(r, "created") + 60);
        json_decref(r);

        /* Any device lists; newest first; target=me is the caller. */
        l = list(f, &f->a3, "");
        assert_int_equal(json_array_size(l), 2);
        assert_int_equal(num(json_array_get(l, 0), "id"), id2);
        json_decref(l);
        l = list(f, &f->a2, "?target=me&status=pending");
        assert_int_equal(json_array_size(l), 1);
        assert_int_equal(num(json_array_get(l, 0), "id"), id);
        json_decref(l);
        l = list(f, &f->a1, "?target=desk");
        assert_int_equal(json_array_size(l), 1);
        assert_int_equal(num(json_array_get(l, 0), "id"), id2);
        json_decref(l);

        /* Only the target moves it. */
        assert_int_equal(update(f, &f->a1, id, ",\"status\":\"accepted\""), 403);
        assert_int_equal(update(f, &f->a3, id, ",\"status\":\"accepted\""), 403);
        assert_int_equal(update(f, &f->bob, id, ",\"status\":\"accepted\""), 404);
        v = version(f, META_COUNTER_REQUESTS);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"accepted\""), 200);
        assert_int_equal(version(f, META_COUNTER_REQUESTS), v + 1);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"accepted\""), 409);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"running\""), 200);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"pending\""), 400);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"done\",\"files\":-1"), 400);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"done\",\"files\":2"), 200);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"failed\",\"reason\":\"x\""), 409);
        assert_int_equal(update(f, &f->a2, 999, ",\"status\":\"done\""), 404);
        l = list(f, &f->a1, "?status=done");
        assert_int_equal(json_array_size(l), 1);
        r = json_array_get(l, 0);
        assert_int_equal(num(r, "files"), 2);
        assert_true(num(r, "updated") >= num(r, "created"));
        json_decref(l);

        /* Failed, straight from pending, with the reason kept. */
        assert_int_equal(update(f, &f->a3, id2, ",\"status\":\"failed\",\"reason\":\"disk full\""),
                         200);
        snprintf(q, sizeof(q), "?id=%lld", (long long)id2);
        l = list(f, &f->a1, q);
        assert_string_equal(str(json_array_get(l, 0), "status"), "failed");
        assert_string_equal(str(json_array_get(l, 0), "reason"), "disk full");
        json_decref(l);
        assert_int_equal(update(f, &f->a3, id2, ",\"status\":\"done\""), 409);

        /* Bob sees none of it. */
        l = list(f, &f->bob, "");
        assert_int_equal(json_array_size(l), 0);
        json_decref(l);
}

static void test_request_validation(void **state)
{
        struct srvfix *f = *state;
        char body[64 * 1024], *p;
        size_t i;
        const char *bad[] = {
            "{\"paths\":[\"a\"]}",
            "{\"target\":\"phone\"}",
            "{\"target\":\"phone\",\"paths\":[]}",
            "{\"target\":\"phone\",\"all\":false}",
            "{\"target\":\"phone\",\"all\":\"yes\"}",
            "{\"target\":\"phone\",\"paths\":[\"../x\"]}",
            "{\"target\":\"phone\",\"paths\":[\".ferry/state\"]}",
            "{\"target\":\"phone\",\"paths\":[3]}",
            "{\"target\":\"phone\",\"all\":true,\"via\":\"pigeon\"}",
            "{\"target\":\"phone\",\"all\":true,\"expires_in\":59}",
            "{\"target\":\"phone\",\"all\":true,\"expires_in\":604801}",
        };

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/requests", bad[i]), 400);
        /* 1001 paths: too many; 1000 are fine. */
        p = body + sprintf(body, "{\"target\":\"phone\",\"paths\":[");
        for (i = 0; i < 1001; i++)
                p += sprintf(p, "%s\"f%zu\"", i ? "," : "", i);
        sprintf(p, "]}");
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/requests", body), 400);
        p = strstr(body, ",\"f1000\"");
        sprintf(p, "]}");
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/requests", body), 201);

        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/requests",
                                   "{\"target\":\"laptop\",\"all\":true}"),
                         409);
        assert_int_equal(
            status_of(f, &f->a1, "POST", "/api/v1/requests", "{\"target\":\"tv\",\"all\":true}"),
            404);
        snprintf(body, sizeof(body), "{\"target\":\"%s\",\"all\":true}", f->bob.id);
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/requests", body), 404);
        assert_int_equal(status_of(f, NULL, "POST", "/api/v1/requests", body), 401);

        assert_int_equal(status_of(f, &f->a1, "GET", "/api/v1/requests?status=lost", NULL), 400);
        assert_int_equal(status_of(f, &f->a1, "GET", "/api/v1/requests?id=x", NULL), 400);
        assert_int_equal(status_of(f, &f->a1, "GET", "/api/v1/requests?target=tv", NULL), 404);
        assert_int_equal(update(f, &f->a2, 1, ""), 400);
        assert_int_equal(
            status_of(f, &f->a2, "POST", "/api/v1/requests/update", "{\"status\":\"done\"}"), 400);
        assert_int_equal(update(f, &f->a2, 1, ",\"status\":\"failed\",\"reason\":7"), 400);
}

static void test_expiry_and_removal(void **state)
{
        struct srvfix *f = *state;
        char body[128];
        json_t *l;
        int64_t id, id2, v;

        id = create(f, &f->a1, "{\"target\":\"phone\",\"all\":true}", NULL);
        id2 = create(f, &f->a1, "{\"target\":\"desk\",\"paths\":[\"x\"]}", NULL);
        /* Make the first one due, behind the server's back. */
        store_sql(f, "UPDATE requests SET expires = expires - 100000 WHERE id = 1");
        /* Expired on read at once, and it cannot be accepted any more. */
        l = list(f, &f->a2, "?target=me&status=pending");
        assert_int_equal(json_array_size(l), 0);
        json_decref(l);
        l = list(f, &f->a2, "?status=expired");
        assert_int_equal(json_array_size(l), 1);
        assert_int_equal(num(json_array_get(l, 0), "id"), id);
        json_decref(l);
        assert_int_equal(update(f, &f->a2, id, ",\"status\":\"accepted\""), 409);
        /* The tick makes it stick (the housekeeping thread may have run
         * it already) and tells the streams once. */
        api_requests_tick(&f->s, time(NULL));
        v = version(f, META_COUNTER_REQUESTS);
        api_requests_tick(&f->s, time(NULL));
        assert_int_equal(version(f, META_COUNTER_REQUESTS), v);
        assert_int_equal(store_sql(f, "SELECT status FROM requests WHERE id = 1"),
                         META_REQ_EXPIRED);
        l = list(f, &f->a1, "?status=expired");
        assert_int_equal(json_array_size(l), 1);
        json_decref(l);

        /* The target removed: its open request fails. */
        snprintf(body, sizeof(body), "{\"device\":\"%s\"}", f->a3.id);
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/devices/remove", body), 200);
        l = list(f, &f->a1, "?target=desk");
        assert_int_equal(json_array_size(l), 1);
        assert_int_equal(num(json_array_get(l, 0), "id"), id2);
        assert_string_equal(str(json_array_get(l, 0), "status"), "failed");
        assert_string_equal(str(json_array_get(l, 0), "reason"), "device removed");
        assert_string_equal(str(json_array_get(l, 0), "target_name"), "desk");
        json_decref(l);
        /* A removed device is not a target any more. */
        assert_int_equal(
            status_of(f, &f->a1, "POST", "/api/v1/requests", "{\"target\":\"desk\",\"all\":true}"),
            404);
}

struct sse {
        int fd;
        struct buf in;
};

static void sse_open(struct srvfix *f, struct sse *e, struct srvfix_client *c)
{
        struct sockaddr_in sa = {0};
        char rq[512];
        int n;

        e->fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(e->fd >= 0);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(server_port(&f->s));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        n = snprintf(rq, sizeof(rq),
                     "GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n",
                     c->token);
        assert_int_equal(send(e->fd, rq, (size_t)n, MSG_NOSIGNAL), n);
        e->in = (struct buf)BUF_INIT;
}

/* Reads until the input holds text, for at most ms: 1, or 0 on timeout. */
static int sse_wait(struct sse *e, const char *text, int ms)
{
        int64_t end = srvfix_now_ms() + ms;
        char tmp[4096];
        ssize_t n;

        for (;;) {
                if (e->in.len && memmem(e->in.data, e->in.len, text, strlen(text)))
                        return 1;
                int64_t left = end - srvfix_now_ms();
                struct pollfd p = {e->fd, POLLIN, 0};
                if (left <= 0 || poll(&p, 1, (int)left) <= 0)
                        return 0;
                n = recv(e->fd, tmp, sizeof(tmp), 0);
                if (n <= 0)
                        return 0;
                assert_int_equal(buf_append(&e->in, tmp, (size_t)n), 0);
        }
}

static void sse_close(struct sse *e)
{
        close(e->fd);
        buf_free(&e->in);
}

static void test_events(void **state)
{
        struct srvfix *f = *state;
        struct sse e1, e2, eb;
        char want[128];
        int64_t t0;

        sse_open(f, &e1, &f->a1);
        assert_int_equal(sse_wait(&e1, "event: hello", 2000), 1);
        sse_open(f, &eb, &f->bob);
        assert_int_equal(sse_wait(&eb, "event: hello", 2000), 1);
        /* Its own stream coming up is not announced to itself. */
        assert_int_equal(sse_wait(&e1, "event: devices", 200), 0);

        /* The phone comes online: the laptop hears of it. */
        sse_open(f, &e2, &f->a2);
        assert_int_equal(sse_wait(&e2, "event: hello", 2000), 1);
        snprintf(want, sizeof(want), "event: devices\ndata: {\"version\":%lld}",
                 (long long)version(f, META_COUNTER_DEVICES));
        assert_int_equal(sse_wait(&e1, want, 2000), 1);

        /* A request: both alice streams hear it, bob's does not. */
        t0 = srvfix_now_ms();
        create(f, &f->a1, "{\"target\":\"phone\",\"paths\":[\"r.txt\"]}", NULL);
        snprintf(want, sizeof(want), "event: requests\ndata: {\"version\":%lld}",
                 (long long)version(f, META_COUNTER_REQUESTS));
        assert_int_equal(sse_wait(&e2, want, 2000), 1);
        assert_int_equal(sse_wait(&e1, want, 2000), 1);
        assert_true(srvfix_now_ms() - t0 < 2000);

        /* A rename, then the phone going offline. */
        assert_int_equal(status_of(f, &f->a1, "POST", "/api/v1/devices/rename",
                                   "{\"device\":\"desk\",\"name\":\"office\"}"),
                         200);
        snprintf(want, sizeof(want), "event: devices\ndata: {\"version\":%lld}",
                 (long long)version(f, META_COUNTER_DEVICES));
        assert_int_equal(sse_wait(&e2, want, 2000), 1);
        sse_close(&e2);
        t0 = srvfix_now_ms();
        snprintf(want, sizeof(want), "event: devices\ndata: {\"version\":%lld}",
                 (long long)version(f, META_COUNTER_DEVICES) + 1);
        /* The server notices a gone peer within a keep-alive fifth. */
        assert_int_equal(sse_wait(&e1, want, 5000), 1);

        assert_int_equal(sse_wait(&eb, "event: devices", 100), 0);
        assert_int_equal(sse_wait(&eb, "event: requests", 0), 0);
        sse_close(&e1);
        sse_close(&eb);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_device_lan_and_subnet, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lan_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_request_lifecycle, setup, teardown),
            cmocka_unit_test_setup_teardown(test_request_validation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_expiry_and_removal, setup, teardown),
            cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
