/* srvfix: the shared in-process ferryd fixture of the server unit tests
 * (see srvfix.h): starting and stopping the server, logging devices in, and
 * the HTTP and JSON helpers, each asserting with cmocka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "frame.h"
#include "srvfix.h"
#include "srvtest.h"

void srvfix_start(struct srvfix *f, int keepalive_ms)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        f->dir = srvtest_tmpdir();
        f->metadata = srvtest_metadata();
        assert_int_equal(server_open_stores(&f->s, f->dir, f->metadata, NULL, 1), 0);
        /* Parked event streams are checked for a gone peer every fifth of
         * this (5 s with the default of 25 s). */
        if (keepalive_ms > 0)
                f->s.live_keepalive_ms = keepalive_ms;
        assert_int_equal(server_start(&f->s, "127.0.0.1:0", 2), 0);
        snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", server_port(&f->s));
}

void srvfix_stop(struct srvfix *f)
{
        server_close(&f->s);
        curl_easy_cleanup(f->a1.c);
        curl_easy_cleanup(f->a2.c);
        curl_easy_cleanup(f->a3.c);
        curl_easy_cleanup(f->bob.c);
        srvtest_metadata_drop(f->metadata);
        srvtest_rmtree(f->dir);
        curl_global_cleanup();
}

static int setup_with(void **state, int keepalive_ms)
{
        struct srvfix *f = calloc(1, sizeof(*f));

        srvfix_start(f, keepalive_ms);
        srvfix_login(f, &f->a1, "alice", "laptop", 1);
        srvfix_login(f, &f->a2, "alice", "phone", 0);
        srvfix_login(f, &f->a3, "alice", "desk", 0);
        srvfix_login(f, &f->bob, "bob", "bobpc", 1);
        *state = f;
        return 0;
}

int srvfix_setup(void **state)
{
        return setup_with(state, 0);
}

int srvfix_setup_keepalive(void **state)
{
        return setup_with(state, SRVFIX_KEEPALIVE_MS);
}

int srvfix_teardown(void **state)
{
        struct srvfix *f = *state;

        srvfix_stop(f);
        free(f);
        return 0;
}

int64_t srvfix_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t srvfix_on_data(char *p, size_t sz, size_t n, void *ud)
{
        buf_append(ud, p, sz * n);
        return sz * n;
}

/* A request on c's kept-alive connection; the answer's JSON in *out. */
long srvfix_call(struct srvfix *f, struct srvfix_client *c, const char *method, const char *path,
                 const void *body, size_t len, json_t **out)
{
        struct curl_slist *hdrs = NULL;
        struct buf b = BUF_INIT;
        char url[4200], auth[120];
        long status = 0;

        snprintf(url, sizeof(url), "%s%s", f->base, path);
        curl_easy_setopt(c->c, CURLOPT_URL, url);
        curl_easy_setopt(c->c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c->c, CURLOPT_WRITEFUNCTION, srvfix_on_data);
        curl_easy_setopt(c->c, CURLOPT_WRITEDATA, &b);
        if (c->token[0]) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
                hdrs = curl_slist_append(hdrs, auth);
        }
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(c->c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c->c, CURLOPT_HTTPGET, body ? 0L : 1L);
        curl_easy_setopt(c->c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(c->c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        assert_int_equal(curl_easy_perform(c->c), CURLE_OK);
        curl_easy_getinfo(c->c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdrs);
        *out = json_loadb((const char *)b.data, b.len, 0, NULL);
        buf_free(&b);
        assert_non_null(*out);
        return status;
}

long srvfix_req(struct srvfix *f, struct srvfix_client *c, const char *method, const char *path,
                const char *body, json_t **out)
{
        return srvfix_call(f, c, method, path, body, body ? strlen(body) : 0, out);
}

/* Like req, for a status only. */
long srvfix_req_status(struct srvfix *f, struct srvfix_client *c, const char *method,
                       const char *path, const char *body)
{
        json_t *j;
        long st = srvfix_req(f, c, method, path, body, &j);

        json_decref(j);
        return st;
}

void srvfix_login(struct srvfix *f, struct srvfix_client *c, const char *user, const char *dev,
                  int reg)
{
        char body[256];
        json_t *j;

        c->c = curl_easy_init();
        assert_non_null(c->c);
        c->token[0] = '\0';
        if (reg) {
                snprintf(body, sizeof(body),
                         "{\"user\":\"%s\",\"email\":\"%s@x.org\",\"password\":\"pw-%s-123\"}",
                         user, user, user);
                assert_int_equal(srvfix_req_status(f, c, "POST", "/api/v1/register", body), 201);
        }
        snprintf(body, sizeof(body),
                 "{\"user\":\"%s\",\"password\":\"pw-%s-123\",\"device_name\":\"%s\"}", user, user,
                 dev);
        assert_int_equal(srvfix_req(f, c, "POST", "/api/v1/login", body, &j), 200);
        snprintf(c->token, sizeof(c->token), "%s", json_string_value(json_object_get(j, "token")));
        snprintf(c->id, sizeof(c->id), "%s", json_string_value(json_object_get(j, "device_id")));
        json_decref(j);
}

void srvfix_hex_of(const char *content, char *hex)
{
        struct hash h = srvtest_hash(content);

        hash_to_hex(&h, hex);
}

/* Announces path with content's size and hash; returns the record id. */
int64_t srvfix_announce(struct srvfix *f, struct srvfix_client *c, const char *path,
                        const char *content, int64_t *batch)
{
        char body[512], hex[HASH_HEX_LEN + 1];
        json_t *j, *r;
        int64_t id;

        srvfix_hex_of(content, hex);
        snprintf(body, sizeof(body),
                 "{\"files\":[{\"path\":\"%s\",\"kind\":\"file\",\"size\":%zu,\"hash\":\"%s\"}]}",
                 path, strlen(content), hex);
        assert_int_equal(srvfix_req(f, c, "POST", "/api/v1/transfers", body, &j), 200);
        r = json_array_get(json_object_get(j, "records"), 0);
        assert_string_equal(json_string_value(json_object_get(r, "status")), "pending");
        assert_string_equal(json_string_value(json_object_get(r, "path")), path);
        id = json_integer_value(json_object_get(r, "id"));
        if (batch)
                *batch = json_integer_value(json_object_get(j, "batch"));
        json_decref(j);
        return id;
}

/* Uploads content as one chunk and commits it at path on base; its seq. */
int64_t srvfix_put_file(struct srvfix *f, struct srvfix_client *c, const char *path,
                        const char *content, int64_t base)
{
        struct hash h = srvtest_hash(content);
        struct buf fr = BUF_INIT;
        char body[1024], hex[HASH_HEX_LEN + 1];
        json_t *j;
        int64_t seq;

        assert_int_equal(frame_append(&fr, &h, (const uint8_t *)content, strlen(content), 0), 0);
        assert_int_equal(srvfix_call(f, c, "POST", "/api/v1/chunks", fr.data, fr.len, &j), 200);
        json_decref(j);
        buf_free(&fr);
        hash_to_hex(&h, hex);
        snprintf(body, sizeof(body),
                 "{\"changes\":[{\"op\":\"put\",\"path\":\"%s\",\"base\":%lld,\"kind\":\"file\","
                 "\"size\":%zu,\"hash\":\"%s\",\"chunks\":[[\"%s\",%zu]]}]}",
                 path, (long long)base, strlen(content), hex, hex, strlen(content));
        assert_int_equal(srvfix_req(f, c, "POST", "/api/v1/commit", body, &j), 200);
        seq = json_integer_value(
            json_object_get(json_array_get(json_object_get(j, "results"), 0), "seq"));
        assert_true(seq > 0);
        json_decref(j);
        return seq;
}

/* GET /api/v1/transfers with query (e.g. "?status=failed") as c. */
json_t *srvfix_transfers(struct srvfix *f, struct srvfix_client *c, const char *query)
{
        char path[512];
        json_t *j;

        snprintf(path, sizeof(path), "/api/v1/transfers%s", query);
        assert_int_equal(srvfix_req(f, c, "GET", path, NULL, &j), 200);
        return j;
}

/* The record of path in a GET /transfers answer (borrowed), with its
 * batch, or NULL. */
json_t *srvfix_find_rec(json_t *t, const char *path, json_t **batch)
{
        json_t *b, *r;
        size_t i, k;

        json_array_foreach(json_object_get(t, "batches"), i, b)
        {
                json_array_foreach(json_object_get(b, "records"), k, r)
                {
                        if (strcmp(json_string_value(json_object_get(r, "path")), path) == 0) {
                                if (batch)
                                        *batch = b;
                                return r;
                        }
                }
        }
        return NULL;
}

/* The status of path's record as alice's phone sees it ("" when none),
 * with its reason in reason (when not NULL). */
const char *srvfix_status_of(struct srvfix *f, const char *path, char *reason, size_t cap)
{
        static char st[32];
        json_t *t = srvfix_transfers(f, &f->a2, ""), *r = srvfix_find_rec(t, path, NULL);

        snprintf(st, sizeof(st), "%s", r ? json_string_value(json_object_get(r, "status")) : "");
        if (reason)
                snprintf(reason, cap, "%s",
                         r ? json_string_value(json_object_get(r, "reason")) : "");
        json_decref(t);
        return st;
}

int64_t srvfix_int_of(json_t *o, const char *key)
{
        assert_true(json_is_integer(json_object_get(o, key)));
        return json_integer_value(json_object_get(o, key));
}

const char *srvfix_str_of(json_t *o, const char *key)
{
        assert_true(json_is_string(json_object_get(o, key)));
        return json_string_value(json_object_get(o, key));
}

/* Asserts that o has exactly the keys of the comma-separated list. */
void srvfix_keys_are(json_t *o, const char *list)
{
        char buf[512], *save = NULL, *k;
        size_t n = 0;

        snprintf(buf, sizeof(buf), "%s", list);
        for (k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save), n++)
                if (!json_object_get(o, k))
                        fail_msg("missing key %s", k);
        assert_int_equal(json_object_size(o), n);
}
