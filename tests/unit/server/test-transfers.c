/* test-transfers: transfer records and download records end to end against
 * a real ferryd in-process (driven with libcurl; each device keeps one
 * kept-alive connection, as the ferry client does, since closing a
 * device's last connection fails its uploads in progress). Checks the shape
 * of GET /transfers and its filters, every transition of an upload record
 * (announce, progress, commit, failure reports, a rejected chunk,
 * re-announce, cancel, forget, session timeout with a measured delay), the
 * "not_ready" 409 of GET /file, the download records of wait devices and
 * the download reports, the version bumps behind the "transfers" event,
 * and the pruning of old complete batches. Devices (removal, history,
 * connections going away) are in test-devices.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "frame.h"
#include "server.h"
#include "srvfix.h"
#include "srvtest.h"
#include "transfers.h"

static int64_t version_of(struct srvfix *f)
{
        int64_t v = -1;

        assert_int_equal(f->s.meta->ops->xfer_version(f->s.meta, 1, &v), 0);
        return v;
}

static void test_announce_and_list(void **state)
{
        struct srvfix *f = *state;
        char hx[HASH_HEX_LEN + 1], hy[HASH_HEX_LEN + 1], body[1024];
        json_t *j, *t, *b, *r, *d;
        int64_t batch;
        size_t i;

        srvfix_hex_of("xxxxxxxxxxxxx", hx);
        srvfix_hex_of("yyyyy", hy);
        /* Refused whole, nothing recorded. */
        assert_int_equal(
            srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers", "{\"files\":[]}"), 400);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers", "{}"), 400);
        snprintf(body, sizeof(body),
                 "{\"files\":[{\"path\":\"ok\",\"kind\":\"file\",\"size\":1,\"hash\":\"%s\"},"
                 "{\"path\":\"../up\",\"kind\":\"file\",\"size\":1,\"hash\":\"%s\"}]}",
                 hx, hx);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers", body), 400);
        snprintf(body, sizeof(body),
                 "{\"files\":[{\"path\":\"d\",\"kind\":\"dir\",\"size\":0,\"hash\":\"%s\"}]}", hx);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers", body), 400);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers",
                                           "{\"files\":[{\"path\":\"x\",\"kind\":\"file\","
                                           "\"size\":1,\"hash\":\"abc\"}]}"),
                         400);
        snprintf(body, sizeof(body),
                 "{\"files\":[{\"path\":\"x\",\"kind\":\"file\",\"size\":-1,\"hash\":\"%s\"}]}",
                 hx);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers", body), 400);
        t = srvfix_transfers(f, &f->a1, "");
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 0);
        json_decref(t);
        assert_int_equal(version_of(f), 0);

        snprintf(body, sizeof(body),
                 "{\"files\":[{\"path\":\"dir/x\",\"kind\":\"file\",\"size\":13,\"hash\":\"%s\"},"
                 "{\"path\":\"y\",\"kind\":\"file\",\"size\":5,\"hash\":\"%s\"}]}",
                 hx, hy);
        assert_int_equal(srvfix_req(f, &f->a1, "POST", "/api/v1/transfers", body, &j), 200);
        srvfix_keys_are(j, "batch,records");
        batch = srvfix_int_of(j, "batch");
        assert_int_equal(json_array_size(json_object_get(j, "records")), 2);
        assert_string_equal(srvfix_str_of(json_array_get(json_object_get(j, "records"), 1), "path"),
                            "y");
        json_decref(j);
        assert_int_equal(version_of(f), 1);

        /* Another device of the account sees it all, exactly so. */
        t = srvfix_transfers(f, &f->a2, "");
        srvfix_keys_are(t, "devices,batches,downloads");
        assert_int_equal(json_array_size(json_object_get(t, "devices")), 3);
        json_array_foreach(json_object_get(t, "devices"), i, d)
        {
                srvfix_keys_are(d, "id,name,online,last_seen,download_incomplete,applied_seq");
                assert_true(json_is_true(json_object_get(d, "online")));
                assert_string_equal(srvfix_str_of(d, "download_incomplete"), "skip");
        }
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 1);
        b = json_array_get(json_object_get(t, "batches"), 0);
        srvfix_keys_are(
            b, "id,device,device_name,created,updated,files,pending,uploading,complete,failed,"
               "bytes_total,bytes_done,records");
        assert_int_equal(srvfix_int_of(b, "id"), batch);
        assert_string_equal(srvfix_str_of(b, "device"), f->a1.id);
        assert_string_equal(srvfix_str_of(b, "device_name"), "laptop");
        assert_int_equal(srvfix_int_of(b, "files"), 2);
        assert_int_equal(srvfix_int_of(b, "pending"), 2);
        assert_int_equal(srvfix_int_of(b, "uploading") + srvfix_int_of(b, "complete") +
                             srvfix_int_of(b, "failed"),
                         0);
        assert_int_equal(srvfix_int_of(b, "bytes_total"), 18);
        assert_int_equal(srvfix_int_of(b, "bytes_done"), 0);
        r = json_array_get(json_object_get(b, "records"), 0);
        srvfix_keys_are(r, "id,path,kind,size,hash,status,bytes_done,started,updated,reason,seq");
        assert_string_equal(srvfix_str_of(r, "path"), "dir/x");
        assert_string_equal(srvfix_str_of(r, "kind"), "file");
        assert_string_equal(srvfix_str_of(r, "hash"), hx);
        assert_int_equal(srvfix_int_of(r, "size"), 13);
        assert_int_equal(srvfix_int_of(r, "seq"), 0);
        assert_string_equal(srvfix_str_of(r, "reason"), "");
        assert_true(srvfix_int_of(r, "started") > 0 &&
                    srvfix_int_of(r, "updated") >= srvfix_int_of(r, "started"));
        assert_string_equal(srvfix_str_of(json_array_get(json_object_get(b, "records"), 1), "path"),
                            "y");
        assert_int_equal(json_array_size(json_object_get(t, "downloads")), 0);
        json_decref(t);

        /* Another account sees nothing. */
        t = srvfix_transfers(f, &f->bob, "");
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 0);
        json_decref(t);

        /* Filters. */
        t = srvfix_transfers(f, &f->a2, "?status=complete");
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 0);
        json_decref(t);
        t = srvfix_transfers(f, &f->a2, "?status=incomplete&device=laptop");
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 1);
        json_decref(t);
        t = srvfix_transfers(f, &f->a2, "?device=phone");
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 0);
        json_decref(t);
        t = srvfix_transfers(f, &f->a2, "?path=y");
        b = json_array_get(json_object_get(t, "batches"), 0);
        assert_int_equal(json_array_size(json_object_get(b, "records")), 1);
        assert_int_equal(srvfix_int_of(b, "files"), 2); /* the counts are the batch's */
        json_decref(t);
        assert_int_equal(srvfix_req_status(f, &f->a2, "GET", "/api/v1/transfers?status=lost", NULL),
                         400);
        assert_int_equal(
            srvfix_req_status(f, &f->a2, "GET", "/api/v1/transfers?device=nosuch", NULL), 404);
        assert_int_equal(srvfix_req_status(f, &f->a2, "GET", "/api/v1/transfers?path=/abs", NULL),
                         400);
}

/* A file announced before the device read it (a large new file, hashed
 * as it is uploaded): no hash until its commit gives it the committed one. */
static void test_announce_without_hash(void **state)
{
        struct srvfix *f = *state;
        const char *content = "read as it goes up\n";
        char hex[HASH_HEX_LEN + 1];
        json_t *t, *r;

        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers",
                                           "{\"files\":[{\"path\":\"big\",\"kind\":\"file\","
                                           "\"size\":19},{\"path\":\"big2\",\"kind\":"
                                           "\"file\",\"size\":19,\"hash\":null}]}"),
                         200);
        t = srvfix_transfers(f, &f->a2, "");
        r = srvfix_find_rec(t, "big", NULL);
        assert_non_null(r);
        assert_true(json_is_null(json_object_get(r, "hash")));
        assert_string_equal(srvfix_str_of(r, "status"), "pending");
        assert_non_null(srvfix_find_rec(t, "big2", NULL));
        json_decref(t);
        assert_true(srvfix_put_file(f, &f->a1, "big", content, 0) > 0);
        t = srvfix_transfers(f, &f->a2, "");
        r = srvfix_find_rec(t, "big", NULL);
        assert_non_null(r);
        assert_string_equal(srvfix_str_of(r, "status"), "complete");
        srvfix_hex_of(content, hex);
        assert_string_equal(srvfix_str_of(r, "hash"), hex);
        json_decref(t);
}

static void test_progress_and_reannounce(void **state)
{
        struct srvfix *f = *state;
        char body[512], path[64], reason[128];
        int64_t id, b1, b2, other;
        json_t *j, *t, *r, *b;

        id = srvfix_announce(f, &f->a1, "x", "thirteen byte", &b1);
        other = srvfix_announce(f, &f->a2, "z", "zz", NULL);
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"bytes_done\":5}]}",
                 (long long)id);
        assert_int_equal(srvfix_req(f, &f->a1, "POST", "/api/v1/transfers/progress", body, &j),
                         200);
        assert_int_equal(srvfix_int_of(j, "updated"), 1);
        json_decref(j);
        assert_string_equal(srvfix_status_of(f, "x", NULL, 0), "uploading");

        /* Refused whole: a failure without reason, a record of another
         * device (404), an unknown id among good ones. */
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"status\":\"failed\"}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         400);
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"status\":\"done\"}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         400);
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"bytes_done\":7}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a2, "POST", "/api/v1/transfers/progress", body),
                         404);
        assert_int_equal(srvfix_req_status(f, &f->bob, "POST", "/api/v1/transfers/progress", body),
                         404);
        snprintf(body, sizeof(body),
                 "{\"records\":[{\"id\":%lld,\"bytes_done\":7},{\"id\":%lld,\"bytes_done\":1}]}",
                 (long long)id, (long long)other);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         404);
        t = srvfix_transfers(f, &f->a2, "");
        assert_int_equal(srvfix_int_of(srvfix_find_rec(t, "x", NULL), "bytes_done"), 5);
        assert_string_equal(srvfix_str_of(srvfix_find_rec(t, "z", NULL), "status"), "pending");
        json_decref(t);

        /* Failed by the device, then resumed by a report of bytes. */
        snprintf(body, sizeof(body),
                 "{\"records\":[{\"id\":%lld,\"status\":\"failed\",\"reason\":\"disk error\"}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         200);
        assert_string_equal(srvfix_status_of(f, "x", reason, sizeof(reason)), "failed");
        assert_string_equal(reason, "disk error");
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"bytes_done\":9}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         200);
        assert_string_equal(srvfix_status_of(f, "x", reason, sizeof(reason)), "uploading");
        assert_string_equal(reason, "");

        /* Announced again with the same content: the same record, in the
         * new batch, pending, its bytes kept; the old batch is gone. */
        snprintf(body, sizeof(body),
                 "{\"records\":[{\"id\":%lld,\"status\":\"failed\",\"reason\":\"later\"}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         200);
        assert_int_equal(srvfix_announce(f, &f->a1, "x", "thirteen byte", &b2), id);
        assert_true(b2 > b1);
        t = srvfix_transfers(f, &f->a2, "?device=laptop");
        r = srvfix_find_rec(t, "x", &b);
        assert_int_equal(srvfix_int_of(b, "id"), b2);
        assert_string_equal(srvfix_str_of(r, "status"), "pending");
        assert_string_equal(srvfix_str_of(r, "reason"), "");
        assert_int_equal(srvfix_int_of(r, "bytes_done"), 9);
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 1);
        json_decref(t);
        /* Other content: bytes start over. */
        assert_int_equal(srvfix_announce(f, &f->a1, "x", "fourteen bytes", NULL), id);
        t = srvfix_transfers(f, &f->a2, "");
        assert_int_equal(srvfix_int_of(srvfix_find_rec(t, "x", NULL), "bytes_done"), 0);
        assert_int_equal(srvfix_int_of(srvfix_find_rec(t, "x", NULL), "size"), 14);
        json_decref(t);
        /* Bytes beyond the size are the size. */
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"bytes_done\":99}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         200);
        t = srvfix_transfers(f, &f->a2, "");
        assert_int_equal(srvfix_int_of(srvfix_find_rec(t, "x", NULL), "bytes_done"), 14);
        json_decref(t);

        /* A chunk the server refuses fails the device's uploads. */
        {
                struct hash h = srvtest_hash("other");
                struct buf fr = BUF_INIT;
                assert_int_equal(frame_append(&fr, &h, (const uint8_t *)"data", 4, 0), 0);
                assert_int_equal(
                    srvfix_call(f, &f->a1, "POST", "/api/v1/chunks", fr.data, fr.len, &j), 400);
                json_decref(j);
                buf_free(&fr);
        }
        assert_string_equal(srvfix_status_of(f, "x", reason, sizeof(reason)), "failed");
        assert_true(strncmp(reason, "chunk rejected: ", 16) == 0);
        assert_string_equal(srvfix_status_of(f, "z", NULL, 0), "pending"); /* a2's */

        /* Cancelled: gone. */
        snprintf(body, sizeof(body), "{\"records\":[{\"id\":%lld,\"status\":\"cancelled\"}]}",
                 (long long)id);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         200);
        assert_string_equal(srvfix_status_of(f, "x", NULL, 0), "");
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         404);
        snprintf(path, sizeof(path), "?device=%s", f->a1.id);
        t = srvfix_transfers(f, &f->a2, path);
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 0);
        json_decref(t);
}

/* The download record of device for path in a GET /transfers answer. */
static json_t *find_dl(json_t *t, const char *device, const char *path)
{
        json_t *d;
        size_t i;

        json_array_foreach(json_object_get(t, "downloads"), i, d)
        {
                if (!strcmp(srvfix_str_of(d, "device"), device) &&
                    !strcmp(srvfix_str_of(d, "path"), path))
                        return d;
        }
        return NULL;
}

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

static void test_commit_and_wait_downloads(void **state)
{
        struct srvfix *f = *state;
        const char *content = "hello, ferry\n";
        json_t *j, *t, *r, *d;
        int64_t seq, v;
        char want[256];

        /* The phone waits for incomplete files; the desk skips them. */
        assert_int_equal(srvfix_req_status(f, &f->a2, "POST", "/api/v1/device",
                                           "{\"download_incomplete\":\"maybe\"}"),
                         400);
        assert_int_equal(srvfix_req(f, &f->a2, "POST", "/api/v1/device",
                                    "{\"download_incomplete\":\"wait\"}", &j),
                         200);
        assert_string_equal(srvfix_str_of(j, "id"), f->a2.id);
        assert_string_equal(srvfix_str_of(j, "download_incomplete"), "wait");
        assert_true(json_is_true(json_object_get(j, "this")));
        json_decref(j);

        srvfix_announce(f, &f->a1, "f.txt", content, NULL);
        d = device_json(f, &f->a3, f->a1.id);
        assert_int_equal(srvfix_int_of(d, "uploading"), 1);
        assert_string_equal(srvfix_str_of(d, "download_incomplete"), "skip");
        json_decref(d);
        t = srvfix_transfers(f, &f->a3, "");
        assert_int_equal(json_array_size(json_object_get(t, "downloads")), 1);
        d = find_dl(t, f->a2.id, "f.txt");
        assert_non_null(d);
        srvfix_keys_are(d, "device,device_name,path,seq,status,reason,updated");
        assert_string_equal(srvfix_str_of(d, "device_name"), "phone");
        assert_string_equal(srvfix_str_of(d, "status"), "pending");
        assert_string_equal(srvfix_str_of(d, "reason"), "waiting for the upload from laptop");
        assert_int_equal(srvfix_int_of(d, "seq"), 0);
        json_decref(t);

        /* A download asked for too early: where the upload stands. */
        assert_int_equal(srvfix_req(f, &f->a2, "GET", "/api/v1/file?path=f.txt", NULL, &j), 409);
        assert_string_equal(srvfix_str_of(j, "code"), "not_ready");
        snprintf(want, sizeof(want),
                 "not yet uploaded: f.txt is pending (0 of %zu bytes) from laptop (online); it "
                 "downloads when the upload completes",
                 strlen(content));
        assert_string_equal(srvfix_str_of(j, "error"), want);
        r = json_object_get(j, "transfer");
        assert_string_equal(srvfix_str_of(r, "device_name"), "laptop");
        assert_string_equal(srvfix_str_of(r, "device"), f->a1.id);
        assert_string_equal(srvfix_str_of(r, "status"), "pending");
        json_decref(j);
        assert_int_equal(srvfix_req_status(f, &f->a2, "GET", "/api/v1/file?path=other", NULL), 404);

        v = version_of(f);
        seq = srvfix_put_file(f, &f->a1, "f.txt", content, 0);
        assert_true(version_of(f) > v);
        t = srvfix_transfers(f, &f->a3, "");
        r = srvfix_find_rec(t, "f.txt", NULL);
        assert_string_equal(srvfix_str_of(r, "status"), "complete");
        assert_int_equal(srvfix_int_of(r, "seq"), seq);
        assert_int_equal(srvfix_int_of(r, "bytes_done"), strlen(content));
        d = find_dl(t, f->a2.id, "f.txt");
        assert_string_equal(srvfix_str_of(d, "status"), "pending");
        assert_string_equal(srvfix_str_of(d, "reason"), "ready to download");
        assert_int_equal(srvfix_int_of(d, "seq"), seq);
        json_decref(t);
        assert_int_equal(srvfix_req_status(f, &f->a2, "GET", "/api/v1/file?path=f.txt", NULL), 200);
        d = device_json(f, &f->a3, f->a1.id);
        assert_int_equal(srvfix_int_of(d, "uploading"), 0);
        json_decref(d);

        /* Applied below the seq: still pending; at it: done. */
        assert_int_equal(
            srvfix_req_status(f, &f->a2, "POST", "/api/v1/downloads", "{\"applied_seq\":-1}"), 400);
        snprintf(want, sizeof(want), "{\"applied_seq\":%lld}", (long long)seq - 1);
        assert_int_equal(srvfix_req_status(f, &f->a2, "POST", "/api/v1/downloads", want), 200);
        t = srvfix_transfers(f, &f->a3, "?status=complete");
        assert_int_equal(json_array_size(json_object_get(t, "downloads")), 0);
        json_decref(t);
        snprintf(want, sizeof(want), "{\"applied_seq\":%lld}", (long long)seq);
        assert_int_equal(srvfix_req(f, &f->a2, "POST", "/api/v1/downloads", want, &j), 200);
        assert_true(json_is_true(json_object_get(j, "ok")));
        json_decref(j);
        t = srvfix_transfers(f, &f->a3, "?status=complete");
        assert_string_equal(srvfix_str_of(find_dl(t, f->a2.id, "f.txt"), "status"), "done");
        json_decref(t);
        /* applied_seq never goes down. */
        assert_int_equal(
            srvfix_req_status(f, &f->a2, "POST", "/api/v1/downloads", "{\"applied_seq\":0}"), 200);
        d = device_json(f, &f->a3, f->a2.id);
        assert_int_equal(srvfix_int_of(d, "applied_seq"), seq);
        assert_string_equal(srvfix_str_of(d, "download_incomplete"), "wait");
        json_decref(d);

        /* Failed and done reports make records of their own. */
        assert_int_equal(srvfix_req_status(f, &f->a3, "POST", "/api/v1/downloads",
                                           "{\"failed\":[{\"seq\":1,\"reason\":\"x\"}]}"),
                         400);
        assert_int_equal(
            srvfix_req_status(f, &f->a3, "POST", "/api/v1/downloads",
                              "{\"failed\":[{\"path\":\"g\",\"seq\":3,\"reason\":\"disk "
                              "full\"}],\"done\":[{\"path\":\"h\",\"seq\":4}]}"),
            200);
        t = srvfix_transfers(f, &f->a1, "?device=desk");
        assert_int_equal(json_array_size(json_object_get(t, "downloads")), 2);
        d = find_dl(t, f->a3.id, "g");
        assert_string_equal(srvfix_str_of(d, "status"), "failed");
        assert_string_equal(srvfix_str_of(d, "reason"), "disk full");
        assert_int_equal(srvfix_int_of(d, "seq"), 3);
        assert_string_equal(srvfix_str_of(find_dl(t, f->a3.id, "h"), "status"), "done");
        json_decref(t);
        t = srvfix_transfers(f, &f->a1, "?status=failed");
        assert_int_equal(json_array_size(json_object_get(t, "downloads")), 1);
        json_decref(t);
}

static void test_forget(void **state)
{
        struct srvfix *f = *state;
        int64_t p1, p2, p3;
        char body[512];
        json_t *j, *t;

        p1 = srvfix_announce(f, &f->a1, "p1", "1", NULL);
        p2 = srvfix_announce(f, &f->a1, "p2", "2", NULL);
        p3 = srvfix_announce(f, &f->a1, "p3", "3", NULL);
        snprintf(body, sizeof(body),
                 "{\"records\":[{\"id\":%lld,\"status\":\"failed\",\"reason\":\"a\"},"
                 "{\"id\":%lld,\"status\":\"failed\",\"reason\":\"b\"},"
                 "{\"id\":%lld,\"bytes_done\":0}]}",
                 (long long)p1, (long long)p2, (long long)p3);
        assert_int_equal(srvfix_req(f, &f->a1, "POST", "/api/v1/transfers/progress", body, &j),
                         200);
        assert_int_equal(srvfix_int_of(j, "updated"), 3);
        json_decref(j);

        assert_int_equal(srvfix_req_status(f, &f->a2, "POST", "/api/v1/transfers/forget", "{}"),
                         400);
        assert_int_equal(srvfix_req_status(f, &f->a2, "POST", "/api/v1/transfers/forget",
                                           "{\"failed\":true,\"path\":\"p1\"}"),
                         400);
        assert_int_equal(
            srvfix_req_status(f, &f->a2, "POST", "/api/v1/transfers/forget", "{\"failed\":false}"),
            400);
        /* Another account cannot touch them. */
        snprintf(body, sizeof(body), "{\"ids\":[%lld,%lld]}", (long long)p1, (long long)p2);
        assert_int_equal(srvfix_req(f, &f->bob, "POST", "/api/v1/transfers/forget", body, &j), 200);
        assert_int_equal(srvfix_int_of(j, "forgotten"), 0);
        json_decref(j);
        /* Any device of the account can; only failed ones go. */
        snprintf(body, sizeof(body), "{\"ids\":[%lld,%lld]}", (long long)p1, (long long)p3);
        assert_int_equal(srvfix_req(f, &f->a2, "POST", "/api/v1/transfers/forget", body, &j), 200);
        assert_int_equal(srvfix_int_of(j, "forgotten"), 1);
        assert_int_equal(srvfix_int_of(j, "skipped"), 1);
        json_decref(j);
        assert_string_equal(srvfix_status_of(f, "p1", NULL, 0), "");
        assert_string_equal(srvfix_status_of(f, "p3", NULL, 0), "uploading");

        /* By path, with the asking device's failed download of it. */
        assert_int_equal(
            srvfix_req_status(f, &f->a2, "POST", "/api/v1/downloads",
                              "{\"failed\":[{\"path\":\"p2\",\"seq\":0,\"reason\":\"r\"}]}"),
            200);
        assert_int_equal(
            srvfix_req(f, &f->a2, "POST", "/api/v1/transfers/forget", "{\"path\":\"p2\"}", &j),
            200);
        assert_int_equal(srvfix_int_of(j, "forgotten"), 2);
        json_decref(j);
        t = srvfix_transfers(f, &f->a2, "");
        assert_null(srvfix_find_rec(t, "p2", NULL));
        assert_int_equal(json_array_size(json_object_get(t, "downloads")), 0);
        json_decref(t);

        /* Every failed one. */
        snprintf(body, sizeof(body),
                 "{\"records\":[{\"id\":%lld,\"status\":\"failed\",\"reason\":\"c\"}]}",
                 (long long)p3);
        assert_int_equal(srvfix_req_status(f, &f->a1, "POST", "/api/v1/transfers/progress", body),
                         200);
        assert_int_equal(
            srvfix_req(f, &f->a3, "POST", "/api/v1/transfers/forget", "{\"failed\":true}", &j),
            200);
        assert_int_equal(srvfix_int_of(j, "forgotten"), 1);
        json_decref(j);
        /* Batches whose records were all forgotten are gone. */
        t = srvfix_transfers(f, &f->a2, "");
        assert_int_equal(json_array_size(json_object_get(t, "batches")), 0);
        json_decref(t);
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

static void test_session_timeout_and_prune(void **state)
{
        struct srvfix *f = *state;
        char reason[128];
        int64_t took, t0;
        json_t *t;

        /* A completed batch, for the pruning below. */
        srvfix_announce(f, &f->a2, "done", "ok", NULL);
        srvfix_put_file(f, &f->a2, "done", "ok", 0);
        /* The laptop goes silent with its connection open (a network
         * that dropped, a lid shut): the session timeout fails it. */
        f->s.settings.session_timeout = 2;
        srvfix_announce(f, &f->a1, "slow", "content", NULL);
        t0 = srvfix_now_ms();
        took = wait_failed(f, "slow", 6000, reason, sizeof(reason));
        print_message("silent device: records failed %lld ms after its last request "
                      "(session timeout 2 s)\n",
                      (long long)took);
        /* More than 2 s of silence (whole seconds), seen within a tick. */
        assert_true(took >= 1900 && took < 5500);
        assert_true(strncmp(reason, "device offline: no word since ", 30) == 0);
        assert_int_equal(strlen(reason), 30 + strlen("HH:MM:SS UTC"));
        assert_string_equal(reason + strlen(reason) - 4, " UTC");

        /* A device that keeps talking is not silent. */
        srvfix_announce(f, &f->a3, "busy", "busy", NULL);
        for (t0 = srvfix_now_ms(); srvfix_now_ms() - t0 < 3500; usleep(500 * 1000))
                assert_int_equal(srvfix_req_status(f, &f->a3, "GET", "/api/v1/devices", NULL), 200);
        assert_string_equal(srvfix_status_of(f, "busy", NULL, 0), "pending");

        /* Complete batches go after 7 days; the rest stays. */
        f->s.settings.session_timeout = 0;
        transfers_tick(&f->s, server_now() + TRANSFERS_KEEP_COMPLETE - 3600);
        assert_string_equal(srvfix_status_of(f, "done", NULL, 0), "complete");
        transfers_tick(&f->s, server_now() + TRANSFERS_KEEP_COMPLETE + 3600);
        t = srvfix_transfers(f, &f->a2, "");
        assert_null(srvfix_find_rec(t, "done", NULL));
        assert_non_null(srvfix_find_rec(t, "slow", NULL));
        assert_non_null(srvfix_find_rec(t, "busy", NULL));
        json_decref(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_announce_and_list, srvfix_setup, srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_announce_without_hash, srvfix_setup,
                                            srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_progress_and_reannounce, srvfix_setup,
                                            srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_commit_and_wait_downloads, srvfix_setup,
                                            srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_forget, srvfix_setup, srvfix_teardown),
            cmocka_unit_test_setup_teardown(test_session_timeout_and_prune, srvfix_setup,
                                            srvfix_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
