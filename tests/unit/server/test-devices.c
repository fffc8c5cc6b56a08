/* test-devices: devices as the transfer records see them, end to end
 * against a real ferryd in-process: removing a device (its token stops
 * working, its uploads fail, the history keeps what it held), the device
 * history, the upgrade of a database of the previous release, and what
 * happens to a device's uploads when it goes away — a request cut off, its
 * last connection closed, an event stream that keeps it present, and a
 * device process killed with SIGKILL, with the time until its records show
 * "failed" measured and printed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "frame.h"
#include "server.h"
#include "srvfix.h"
#include "srvtest.h"

/* The device object of id in GET /api/v1/devices as c sees it. */
static json_t *device_json(struct srvfix *f, struct srvfix_client *c, const char *id)
{
        json_t *j, *d, *out = NULL;
        size_t i;

        assert_int_equal(srvfix_req(f, c, "GET", "/api/v1/devices", NULL, &j), 200);
        json_array_foreach(json_object_get(j, "devices"), i, d)
        {
                if (!strcmp(srvfix_str_of(d, "id"), id))
                        out = json_incref(d);
        }
        json_decref(j);
        return out;
}

/* Waits up to ms for path's record to be failed; the time it took, or -1. */
static int64_t wait_failed(struct srvfix *f, const char *path, int ms, char *reason, size_t cap)
{
        int64_t t0 = srvfix_now_ms();

        while (srvfix_now_ms() - t0 < ms) {
                if (strcmp(srvfix_status_of(f, path, reason, cap), "failed") == 0)
                        return srvfix_now_ms() - t0;
                usleep(5 * 1000);
        }
        return -1;
}

static void test_remove_and_history(void **state)
{
        struct srvfix *f = *state;
        json_t *j, *t, *ev, *fl, *d;
        char body[256], reason[128];
        int64_t seq_b;
        size_t i;

        assert_int_equal(
            srvfix_req(f, &f->a1, "POST", "/api/v1/commit",
                       "{\"changes\":[{\"op\":\"put\",\"path\":\"dd\",\"kind\":\"dir\"}]}", &j),
            200);
        json_decref(j);
        srvfix_put_file(f, &f->a1, "a", "aaa", 0);
        seq_b = srvfix_put_file(f, &f->a1, "b", "bbbb", 0);
        snprintf(body, sizeof(body), "{\"applied_seq\":%lld}", (long long)seq_b);
        assert_int_equal(srvfix_req_status(f, &f->a3, "POST", "/api/v1/downloads", body), 200);
        srvfix_put_file(f, &f->a1, "c", "c", 0);
        assert_int_equal(srvfix_req(f, &f->a1, "POST", "/api/v1/commit",
                                    "{\"changes\":[{\"op\":\"delete\",\"path\":\"a\",\"base\":2}]}",
                                    &j),
                         200);
        json_decref(j);
        srvfix_announce(f, &f->a3, "d", "desk's file", NULL);

        assert_int_equal(
            srvfix_req(f, &f->a1, "POST", "/api/v1/devices/remove", "{\"device\":\"laptop\"}", &j),
            409);
        assert_string_equal(srvfix_str_of(j, "code"), "conflict");
        json_decref(j);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/devices/remove",
                                           "{\"device\":\"nosuch\"}"),
                         404);
        assert_int_equal(srvfix_req_status(f, &f->bob, "POST", "/api/v1/devices/remove",
                                           "{\"device\":\"desk\"}"),
                         404);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/devices/remove", "{}"), 400);
        assert_int_equal(
            srvfix_req(f, &f->a1, "POST", "/api/v1/devices/remove", "{\"device\":\"desk\"}", &j),
            200);
        d = json_object_get(j, "removed");
        assert_string_equal(srvfix_str_of(d, "id"), f->a3.id);
        assert_string_equal(srvfix_str_of(d, "name"), "desk");
        assert_int_equal(srvfix_int_of(d, "applied_seq"), seq_b);
        json_decref(j);

        /* Its token is dead, it is no longer listed, its upload failed. */
        assert_int_equal(srvfix_req_status(f, &f->a3, "GET", "/api/v1/devices", NULL), 401);
        assert_int_equal(srvfix_req_status(f, &f->a3, "GET", "/api/v1/transfers", NULL), 401);
        assert_null(device_json(f, &f->a1, f->a3.id));
        assert_string_equal(srvfix_status_of(f, "d", reason, sizeof(reason)), "failed");
        assert_string_equal(reason, "device removed");
        t = srvfix_transfers(f, &f->a2, "?device=desk"); /* found by name although removed */
        assert_string_equal(
            srvfix_str_of(json_array_get(json_object_get(t, "batches"), 0), "device_name"), "desk");
        assert_int_equal(json_array_size(json_object_get(t, "devices")), 2);
        json_decref(t);
        assert_int_equal(
            srvfix_req_status(f, &f->a1, "POST", "/api/v1/devices/remove", "{\"device\":\"desk\"}"),
            404);

        /* The history: three additions, then the removal with what the
         * desk held as of its applied seq (not "c", still "a"; no dir). */
        assert_int_equal(srvfix_req(f, &f->a2, "GET", "/api/v1/devices/history", NULL, &j), 200);
        assert_int_equal(json_array_size(json_object_get(j, "events")), 4);
        json_array_foreach(json_object_get(j, "events"), i, ev)
        {
                srvfix_keys_are(ev, "device,name,event,time,applied_seq,files");
                assert_string_equal(srvfix_str_of(ev, "event"), i < 3 ? "added" : "removed");
        }
        assert_string_equal(srvfix_str_of(json_array_get(json_object_get(j, "events"), 0), "name"),
                            "laptop");
        ev = json_array_get(json_object_get(j, "events"), 3);
        assert_string_equal(srvfix_str_of(ev, "device"), f->a3.id);
        assert_int_equal(srvfix_int_of(ev, "files"), 2);
        assert_int_equal(srvfix_int_of(ev, "applied_seq"), seq_b);
        json_decref(j);
        assert_int_equal(
            srvfix_req(f, &f->a2, "GET", "/api/v1/devices/history?device=desk&files=1", NULL, &j),
            200);
        assert_int_equal(json_array_size(json_object_get(j, "events")), 2);
        assert_int_equal(json_array_size(json_object_get(
                             json_array_get(json_object_get(j, "events"), 0), "file_list")),
                         0);
        fl = json_object_get(json_array_get(json_object_get(j, "events"), 1), "file_list");
        assert_int_equal(json_array_size(fl), 2);
        srvfix_keys_are(json_array_get(fl, 0), "path,size,seq");
        assert_string_equal(srvfix_str_of(json_array_get(fl, 0), "path"), "a");
        assert_int_equal(srvfix_int_of(json_array_get(fl, 0), "size"), 3);
        assert_int_equal(srvfix_int_of(json_array_get(fl, 0), "seq"), 2);
        assert_string_equal(srvfix_str_of(json_array_get(fl, 1), "path"), "b");
        assert_int_equal(srvfix_int_of(json_array_get(fl, 1), "seq"), seq_b);
        json_decref(j);
        assert_int_equal(
            srvfix_req_status(f, &f->a2, "GET", "/api/v1/devices/history?device=nosuch", NULL),
            404);
        assert_int_equal(srvfix_req(f, &f->bob, "GET", "/api/v1/devices/history", NULL, &j), 200);
        assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
        json_decref(j);
}

/* The schema of the previous release (1), as it created databases. */
static const char v1_sql[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  email TEXT NOT NULL, pwhash TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE spaces (user_id INTEGER PRIMARY KEY REFERENCES users(id),"
    "  seq INTEGER NOT NULL);"
    "CREATE TABLE devices (id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
    "  name TEXT NOT NULL, platform TEXT NOT NULL, address TEXT NOT NULL,"
    "  created INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    "  token_hash BLOB NOT NULL UNIQUE);"
    "CREATE INDEX devices_user ON devices(user_id, created);"
    "CREATE TABLE chunks (hash BLOB PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE user_chunks (user_id INTEGER NOT NULL, hash BLOB NOT NULL,"
    "  PRIMARY KEY (user_id, hash)) WITHOUT ROWID;"
    "CREATE TABLE entries (user_id INTEGER NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL, kind INTEGER NOT NULL, size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL, mode INTEGER NOT NULL, hash BLOB, target TEXT,"
    "  device TEXT NOT NULL, chunks BLOB, UNIQUE (user_id, path));"
    "CREATE INDEX entries_seq ON entries(user_id, seq);"
    "INSERT INTO schema_version VALUES (1);"
    "INSERT INTO users VALUES (1, 'carol', 'c@x.org', 'x', 1000);"
    "INSERT INTO spaces VALUES (1, 1);"
    "INSERT INTO entries VALUES (1, 'old', 1, 0, 0, 3, 0, 420, NULL, NULL,"
    "  '0123456789abcdef0123456789abcdef', NULL);";

static void test_migration_from_v1(void **state)
{
        struct srvfix *f = *state;
        char *dir = srvtest_tmpdir(), path[4200], sql[512], hex[HASH_HEX_LEN + 1];
        struct srvfix_client c = {curl_easy_init(), "", "0123456789abcdef0123456789abcdef"};
        struct server s2;
        struct hash th;
        sqlite3 *db;
        json_t *j, *d;
        int round;

        memset(c.token, 'a', 64);
        c.token[64] = '\0';
        assert_int_equal(auth_token_hash(c.token, &th), 0);
        hash_to_hex(&th, hex);
        snprintf(path, sizeof(path), "%s/meta.db", dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, v1_sql, NULL, NULL, NULL), SQLITE_OK);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO devices VALUES ('%s', 1, 'old-laptop', 'linux', '', 1500, 1600,"
                 " X'%s')",
                 c.id, hex);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

        /* Upgraded at the first open; opened again as it is. */
        for (round = 0; round < 2; round++) {
                assert_int_equal(server_open(&s2, dir, 0), 0);
                assert_int_equal(server_start(&s2, "127.0.0.1:0", 2), 0);
                snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", server_port(&s2));
                assert_int_equal(srvfix_req(f, &c, "GET", "/api/v1/devices", NULL, &j), 200);
                d = json_array_get(json_object_get(j, "devices"), 0);
                assert_string_equal(srvfix_str_of(d, "download_incomplete"), "skip");
                assert_int_equal(srvfix_int_of(d, "applied_seq"), 0);
                assert_int_equal(srvfix_int_of(d, "uploading"), round); /* announced below */
                json_decref(j);
                assert_int_equal(srvfix_req(f, &c, "GET", "/api/v1/devices/history", NULL, &j),
                                 200);
                assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
                d = json_array_get(json_object_get(j, "events"), 0);
                assert_string_equal(srvfix_str_of(d, "event"), "added");
                assert_string_equal(srvfix_str_of(d, "name"), "old-laptop");
                assert_int_equal(srvfix_int_of(d, "time"), 1500);
                json_decref(j);
                if (round == 0)
                        srvfix_announce(f, &c, "new", "n", NULL);
                j = srvfix_transfers(f, &c, "");
                d = json_array_get(json_object_get(j, "batches"), 0);
                assert_string_equal(srvfix_str_of(d, "device_name"), "old-laptop");
                json_decref(j);
                curl_easy_cleanup(c.c);
                c.c = curl_easy_init();
                server_close(&s2);
        }
        curl_easy_cleanup(c.c);
        srvtest_rmtree(dir);
}

/* A raw connection to the server with request sent (a stream, or a request
 * to cut off). */
static int raw_open(struct srvfix *f, const char *request, size_t len)
{
        struct sockaddr_in sa = {0};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(server_port(&f->s));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(send(fd, request, len, MSG_NOSIGNAL), (ssize_t)len);
        return fd;
}

/* Reads from fd until text arrived (1) or ms passed (0). */
static int raw_wait(int fd, const char *text, int ms)
{
        struct buf in = BUF_INIT;
        int64_t end = srvfix_now_ms() + ms;
        char tmp[4096];
        ssize_t n;
        int found = 0;

        while (!found && srvfix_now_ms() < end) {
                struct pollfd p = {fd, POLLIN, 0};
                if (poll(&p, 1, (int)(end - srvfix_now_ms())) <= 0)
                        break;
                if ((n = recv(fd, tmp, sizeof(tmp), 0)) <= 0)
                        break;
                buf_append(&in, tmp, (size_t)n);
                found = memmem(in.data, in.len, text, strlen(text)) != NULL;
        }
        buf_free(&in);
        return found;
}

static int stream_open(struct srvfix *f, struct srvfix_client *c)
{
        char rq[512];
        int n, fd;

        n = snprintf(rq, sizeof(rq),
                     "GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n",
                     c->token);
        fd = raw_open(f, rq, (size_t)n);
        assert_int_equal(raw_wait(fd, "event: hello", 2000), 1);
        return fd;
}

/* Closes c's kept-alive connection, as a client process that exits. */
static void client_reset(struct srvfix_client *c)
{
        curl_easy_cleanup(c->c);
        c->c = curl_easy_init();
        assert_non_null(c->c);
}

static void test_connection_lost_and_closed(void **state)
{
        struct srvfix *f = *state;
        char rq[512], reason[128], body[128];
        int64_t id, took;
        int fd, n;

        id = srvfix_announce(f, &f->a1, "u1", "content", NULL);
        /* An upload cut off mid-body, on a second connection. */
        n = snprintf(rq, sizeof(rq),
                     "POST /api/v1/chunks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                     "Content-Length: 100000\r\n\r\n0123456789",
                     f->a1.token);
        fd = raw_open(f, rq, (size_t)n);
        usleep(100 * 1000);
        close(fd);
        took = wait_failed(f, "u1", 2000, reason, sizeof(reason));
        print_message("request cut off: failed after %lld ms\n", (long long)took);
        assert_true(took >= 0);
        assert_string_equal(reason, "connection lost");

        /* The device resumes, then its last connection closes. */
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"bytes_done\":3}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         200);
        assert_string_equal(srvfix_status_of(f, "u1", NULL, 0), "uploading");
        client_reset(&f->a1);
        took = wait_failed(f, "u1", 2000, reason, sizeof(reason));
        print_message("last connection closed: failed after %lld ms\n", (long long)took);
        assert_true(took >= 0 && took < 1000);
        assert_string_equal(reason, "connection closed");

        /* A refused request is no cut-off (and a device of another account
         * closing changes nothing here). */
        srvfix_announce(f, &f->a2, "u2", "other", NULL);
        assert_int_equal(srvfix_req_status(f, &f->a2, "POST", "/api/v1/transfers", "{\"files\":1}"),
                         400);
        client_reset(&f->bob);
        usleep(300 * 1000);
        assert_string_equal(srvfix_status_of(f, "u2", NULL, 0), "pending");
}

static void test_stream_keeps_device_present(void **state)
{
        struct srvfix *f = *state;
        char reason[128];
        int64_t took;
        int fd;

        fd = stream_open(f, &f->a3);
        srvfix_announce(f, &f->a3, "s1", "streamed", NULL);
        /* Its request connection goes; the stream still says it is there. */
        client_reset(&f->a3);
        usleep(500 * 1000);
        assert_string_equal(srvfix_status_of(f, "s1", NULL, 0), "pending");
        close(fd);
        took = wait_failed(f, "s1", 3000, reason, sizeof(reason));
        print_message("event stream closed (checked every %d ms): failed after %lld ms\n",
                      SRVFIX_KEEPALIVE_MS / 5, (long long)took);
        assert_true(took >= 0 && took < 2000);
        assert_string_equal(reason, "connection closed");
}

/* A child process that announces path as c (over a raw connection, with
 * an event stream too when with_stream) and then hangs until killed. */
static pid_t device_process(struct srvfix *f, struct srvfix_client *c, const char *path,
                            int with_stream)
{
        char rq[1024], body[512], hex[HASH_HEX_LEN + 1], srq[256];
        int n, sn = 0;
        pid_t pid;

        srvfix_hex_of("killed", hex);
        snprintf(body, sizeof(body),
                 "{\"files\":[{\"path\":\"%s\",\"kind\":\"file\",\"size\":6,\"hash\":\"%s\"}]}",
                 path, hex);
        n = snprintf(rq, sizeof(rq),
                     "POST /api/v1/transfers HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     c->token, strlen(body), body);
        if (with_stream)
                sn = snprintf(srq, sizeof(srq),
                              "GET /api/v1/events HTTP/1.1\r\nHost: t\r\n"
                              "Authorization: Bearer %s\r\n\r\n",
                              c->token);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Only system calls from here on: the parent has threads. */
                struct sockaddr_in sa = {0};
                int fd = socket(AF_INET, SOCK_STREAM, 0), sfd = socket(AF_INET, SOCK_STREAM, 0);
                sa.sin_family = AF_INET;
                sa.sin_port = htons(server_port(&f->s));
                sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                if (with_stream && (connect(sfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
                                    send(sfd, srq, (size_t)sn, 0) != sn))
                        _exit(1);
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
                    send(fd, rq, (size_t)n, 0) != n)
                        _exit(1);
                for (;;)
                        pause();
        }
        return pid;
}

/* Kills the device process once its record is there; the time (ms) until
 * the record showed failed. */
static int64_t kill_device(struct srvfix *f, pid_t pid, const char *path, char *reason, size_t cap)
{
        int64_t t0 = srvfix_now_ms(), took;

        while (strcmp(srvfix_status_of(f, path, NULL, 0), "pending") != 0) {
                assert_true(srvfix_now_ms() - t0 < 3000);
                usleep(20 * 1000);
        }
        assert_int_equal(kill(pid, SIGKILL), 0);
        took = wait_failed(f, path, 3000, reason, cap);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        return took;
}

static void test_killed_device(void **state)
{
        struct srvfix *f = *state;
        char reason[128];
        int64_t took;

        took = kill_device(f, device_process(f, &f->a1, "k1", 0), "k1", reason, sizeof(reason));
        print_message("device killed (SIGKILL), no event stream: failed after %lld ms\n",
                      (long long)took);
        assert_true(took >= 0 && took < 1000);
        assert_string_equal(reason, "connection closed");

        took = kill_device(f, device_process(f, &f->a3, "k2", 1), "k2", reason, sizeof(reason));
        print_message("device killed (SIGKILL) with an event stream (checked every %d ms): "
                      "failed after %lld ms\n",
                      SRVFIX_KEEPALIVE_MS / 5, (long long)took);
        assert_true(took >= 0 && took < 2000);
        assert_string_equal(reason, "connection closed");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_remove_and_history, srvfix_setup_keepalive,
                                            srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_migration_from_v1, srvfix_setup_keepalive,
                                            srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_connection_lost_and_closed, srvfix_setup_keepalive,
                                            srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_stream_keeps_device_present,
                                            srvfix_setup_keepalive, srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_killed_device, srvfix_setup_keepalive,
                                            srvfix_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
