/* test-blob_fs: the local chunk store (blob_fs.c, pack files and an SQLite
 * index) on real files in a temporary directory: round trips of raw and
 * compressed chunks, compression at rest only when it pays, idempotent
 * puts, batches (nothing visible before flush, nothing when dropped),
 * chunks spread over several packs, removal and the compaction that gives
 * the space back while every live chunk stays readable, a second handle
 * (another process) on the same store, chunks of the older one-file-per-
 * chunk layout, crashes (pack bytes without rows, a pack the index forgot),
 * the sweep of stale temp files and the claim that keeps an offline GC
 * from running next to another process on the same store. After each
 * test, every index row must point at a record that names its chunk. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <zstd.h>

#include "blob.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"
#include "srvtest.h"

#define REC_HDR 37 /* hash, length, encoding */

struct fix {
        char *dir;
        char chunks[4200];
        struct blob *b;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        unsetenv("FERRY_BLOB_PACK_MAX");
        f->dir = srvtest_tmpdir();
        snprintf(f->chunks, sizeof(f->chunks), "%s/chunks", f->dir);
        assert_int_equal(blob_fs_open(f->chunks, &f->b), 0);
        *state = f;
        return 0;
}

/* Packs of at most 4 KiB, so that a few chunks fill several. */
static int setup_small(void **state)
{
        struct fix *f;

        setup(state);
        f = *state;
        blob_close(f->b);
        setenv("FERRY_BLOB_PACK_MAX", "4096", 1);
        assert_int_equal(blob_fs_open(f->chunks, &f->b), 0);
        return 0;
}

static sqlite3 *index_db(struct fix *f)
{
        char path[4400];
        sqlite3 *db = NULL;

        snprintf(path, sizeof(path), "%s/index.db", f->chunks);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        return db;
}

/* One integer from sql, or -1 without a row. */
static long long query_int(struct fix *f, const char *sql)
{
        sqlite3 *db = index_db(f);
        sqlite3_stmt *s;
        long long v = -1;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
                v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

/* The stored payload length of h per the index, or -1. */
static long stored_size(struct fix *f, const struct hash *h)
{
        char hex[HASH_HEX_LEN + 1], sql[200];

        hash_to_hex(h, hex);
        snprintf(sql, sizeof(sql), "SELECT len FROM chunks WHERE hash = x'%s'", hex);
        return (long)query_int(f, sql);
}

/* Pack files and their total size. */
static int packs_on_disk(struct fix *f, long long *bytes)
{
        char dir[4400], path[4700];
        struct dirent *de;
        struct stat st;
        int n = 0;
        DIR *d;

        *bytes = 0;
        snprintf(dir, sizeof(dir), "%s/packs", f->chunks);
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d))) {
                if (!strstr(de->d_name, ".pack"))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                assert_int_equal(stat(path, &st), 0);
                *bytes += st.st_size;
                n++;
        }
        closedir(d);
        return n;
}

/* Every row names a pack file holding its record, and every pack's live
 * count is the sum of its rows' records. */
static void check_consistent(struct fix *f)
{
        sqlite3 *db = index_db(f);
        sqlite3_stmt *s;
        char path[4700];
        uint8_t hdr[REC_HDR];
        int rows = 0;

        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT c.hash, p.name, c.off, c.len, c.enc FROM chunks"
                                            " c LEFT JOIN packs p ON p.id = c.pack",
                                            -1, &s, NULL),
                         SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW) {
                int fd;
                uint32_t len = (uint32_t)sqlite3_column_int64(s, 3);

                assert_non_null(sqlite3_column_text(s, 1));
                snprintf(path, sizeof(path), "%s/packs/%s", f->chunks,
                         (const char *)sqlite3_column_text(s, 1));
                fd = open(path, O_RDONLY);
                assert_true(fd >= 0);
                assert_int_equal(pread(fd, hdr, sizeof(hdr), sqlite3_column_int64(s, 2)),
                                 sizeof(hdr));
                assert_memory_equal(hdr, sqlite3_column_blob(s, 0), HASH_LEN);
                assert_int_equal(hdr[32] | hdr[33] << 8 | hdr[34] << 16 | (uint32_t)hdr[35] << 24,
                                 len);
                assert_int_equal(hdr[36], sqlite3_column_int(s, 4));
                close(fd);
                rows++;
        }
        sqlite3_finalize(s);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT count(*) FROM packs p WHERE live != (SELECT"
                                            " coalesce(sum(37 + len), 0) FROM chunks WHERE pack ="
                                            " p.id)",
                                            -1, &s, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(s, 0), 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
}

static int teardown(void **state)
{
        struct fix *f = *state;

        check_consistent(f);
        blob_close(f->b);
        unsetenv("FERRY_BLOB_PACK_MAX");
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

static void test_raw_compressible(void **state)
{
        struct fix *f = *state;
        uint8_t data[100000];
        struct buf out = BUF_INIT;
        struct hash h;
        uint8_t enc;

        memset(data, 'z', sizeof(data));
        hash_buf(data, sizeof(data), &h);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 1);
        /* stored compressed */
        assert_true(stored_size(f, &h) > 0);
        assert_true(stored_size(f, &h) < 1000);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_ZSTD);
        buf_reset(&out);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, sizeof(data));
        assert_memory_equal(out.data, data, sizeof(data));
        buf_free(&out);
}

static void test_raw_incompressible(void **state)
{
        struct fix *f = *state;
        uint8_t data[50000];
        struct buf out = BUF_INIT;
        struct hash h;
        long long bytes, again;
        uint8_t enc = 9;

        assert_int_equal(fsutil_random(data, sizeof(data)), 0);
        hash_buf(data, sizeof(data), &h);
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(stored_size(f, &h), (long)sizeof(data));
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_RAW);
        assert_int_equal(out.len, sizeof(data));
        assert_memory_equal(out.data, data, sizeof(data));
        /* One pack: its header, then the record. */
        assert_int_equal(packs_on_disk(f, &bytes), 1);
        assert_int_equal(bytes, 8 + REC_HDR + (long long)sizeof(data));
        /* A second put of the same hash writes nothing. */
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(packs_on_disk(f, &again), 1);
        assert_int_equal(again, bytes);
        buf_free(&out);
}

static void test_zstd_kept_as_sent(void **state)
{
        struct fix *f = *state;
        char text[20000];
        uint8_t z[20000];
        struct buf out = BUF_INIT;
        struct hash h;
        size_t zlen, i;
        uint8_t enc;

        for (i = 0; i < sizeof(text); i++)
                text[i] = "ferry sync "[i % 11];
        hash_buf(text, sizeof(text), &h);
        zlen = ZSTD_compress(z, sizeof(z), text, sizeof(text), 3);
        assert_false(ZSTD_isError(zlen));
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_ZSTD, z, zlen), 0);
        assert_int_equal(stored_size(f, &h), (long)zlen);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_ZSTD);
        assert_int_equal(out.len, zlen);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, sizeof(text));
        assert_memory_equal(out.data, text, sizeof(text));
        buf_free(&out);
}

static void test_small_and_missing(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("tiny"), absent = srvtest_hash("absent");
        struct buf out = BUF_INIT;
        uint8_t enc;

        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"tiny", 4), 0);
        assert_int_equal(stored_size(f, &h), 4);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, 4);
        assert_memory_equal(out.data, "tiny", 4);
        assert_int_equal(f->b->ops->get(f->b, &absent, &out, &enc), -ENOENT);
        assert_int_equal(f->b->ops->exists(f->b, &absent), 0);
        assert_int_equal(f->b->ops->remove(f->b, &absent), -ENOENT);
        buf_free(&out);
}

static void test_remove(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("doomed"), other = srvtest_hash("other");
        struct buf out = BUF_INIT;

        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"doomed", 6), 0);
        assert_int_equal(blob_put(f->b, &other, FRAME_ENC_RAW, (const uint8_t *)"other", 5), 0);
        assert_int_equal(f->b->ops->remove(f->b, &h), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(stored_size(f, &h), -1);
        assert_int_equal(blob_get_raw(f->b, &h, &out), -ENOENT);
        assert_int_equal(f->b->ops->remove(f->b, &h), -ENOENT);
        assert_int_equal(f->b->ops->exists(f->b, &other), 1);
        /* stored again after removal */
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"doomed", 6), 0);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_memory_equal(out.data, "doomed", 6);
        buf_free(&out);
}

static void test_claim(void **state)
{
        struct fix *f = *state;
        struct blob *second = NULL, *third = NULL;

        /* two openers share the store (a server and `ferryd user add`) */
        assert_int_equal(blob_fs_open(f->chunks, &second), 0);
        assert_int_equal(f->b->ops->claim(f->b), -EBUSY);
        blob_close(second);
        /* alone: the claim holds, and keeps new openers out */
        assert_int_equal(f->b->ops->claim(f->b), 0);
        assert_int_equal(blob_fs_open(f->chunks, &third), -EBUSY);
        assert_null(third);
        blob_close(f->b);
        f->b = NULL;
        assert_int_equal(blob_fs_open(f->chunks, &f->b), 0);
}

static void test_corrupt_detected(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("this");
        struct buf out = BUF_INIT;

        /* Stored under the wrong name: reading it back as raw notices. */
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"that", 4), 0);
        assert_int_equal(blob_get_raw(f->b, &h, &out), -EBADMSG);
        buf_free(&out);
}

/* A batch's chunks are not visible before flush(); after it they all are
 * (a hash put twice in one batch included), and a chunk already stored is
 * not written again. */
static void test_batch_visible_after_flush(void **state)
{
        struct fix *f = *state;
        struct blob_batch *bb = NULL;
        struct hash h[50], old = srvtest_hash("old");
        char s[50][16];
        struct buf out = BUF_INIT;
        long long before, after;
        int i;

        assert_int_equal(blob_put(f->b, &old, FRAME_ENC_RAW, (const uint8_t *)"old", 3), 0);
        packs_on_disk(f, &before);
        assert_int_equal(f->b->ops->batch_new(f->b, &bb), 0);
        assert_int_equal(f->b->ops->put(f->b, bb, &old, FRAME_ENC_RAW, (const uint8_t *)"old", 3),
                         0);
        packs_on_disk(f, &after);
        assert_int_equal(after, before);
        for (i = 0; i < 50; i++) {
                snprintf(s[i], sizeof(s[i]), "chunk %d", i);
                h[i] = srvtest_hash(s[i]);
                assert_int_equal(f->b->ops->put(f->b, bb, &h[i], FRAME_ENC_RAW,
                                                (const uint8_t *)s[i], strlen(s[i])),
                                 0);
        }
        assert_int_equal(
            f->b->ops->put(f->b, bb, &h[7], FRAME_ENC_RAW, (const uint8_t *)s[7], strlen(s[7])), 0);
        for (i = 0; i < 50; i++)
                assert_int_equal(f->b->ops->exists(f->b, &h[i]), 0);
        assert_int_equal(query_int(f, "SELECT count(*) FROM chunks"), 1);
        assert_int_equal(f->b->ops->flush(f->b, bb), 0);
        for (i = 0; i < 50; i++) {
                assert_int_equal(blob_get_raw(f->b, &h[i], &out), 0);
                assert_int_equal(out.len, strlen(s[i]));
                assert_memory_equal(out.data, s[i], out.len);
        }
        assert_int_equal(blob_get_raw(f->b, &old, &out), 0);
        assert_memory_equal(out.data, "old", 3);
        assert_int_equal(query_int(f, "SELECT count(*) FROM chunks"), 51);
        /* the batch is empty again and reusable */
        assert_int_equal(f->b->ops->flush(f->b, bb), 0);
        f->b->ops->batch_free(f->b, bb);
        buf_free(&out);
}

/* A batch freed without flush() leaves nothing visible, not even to
 * another handle, and the pack it wrote to takes the next batch's chunks. */
static void test_batch_dropped(void **state)
{
        struct fix *f = *state;
        struct blob_batch *bb = NULL;
        struct hash h = srvtest_hash("dropped"), k = srvtest_hash("kept");
        struct blob *b2 = NULL;
        long long bytes;

        assert_int_equal(f->b->ops->batch_new(f->b, &bb), 0);
        assert_int_equal(f->b->ops->put(f->b, bb, &h, FRAME_ENC_RAW, (const uint8_t *)"x", 1), 0);
        f->b->ops->batch_free(f->b, bb);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(blob_fs_open(f->chunks, &b2), 0);
        assert_int_equal(b2->ops->exists(b2, &h), 0);
        blob_close(b2);
        assert_int_equal(query_int(f, "SELECT count(*) FROM chunks"), 0);
        assert_int_equal(blob_put(f->b, &k, FRAME_ENC_RAW, (const uint8_t *)"kept", 4), 0);
        assert_int_equal(packs_on_disk(f, &bytes), 1);
        assert_int_equal(bytes, 8 + REC_HDR + 1 + REC_HDR + 4);
}

/* Puts n random chunks of size bytes in batches of per, names in h. */
static void put_random(struct fix *f, struct blob *b, struct hash *h, uint8_t *data, int n,
                       size_t size, int per)
{
        struct blob_batch *bb = NULL;

        assert_int_equal(fsutil_random(data, (size_t)n * size), 0);
        for (int i = 0; i < n; i++) {
                hash_buf(data + (size_t)i * size, size, &h[i]);
                if (!bb)
                        assert_int_equal(b->ops->batch_new(b, &bb), 0);
                assert_int_equal(
                    b->ops->put(b, bb, &h[i], FRAME_ENC_RAW, data + (size_t)i * size, size), 0);
                if ((i + 1) % per == 0 || i + 1 == n) {
                        assert_int_equal(b->ops->flush(b, bb), 0);
                        b->ops->batch_free(b, bb);
                        bb = NULL;
                }
        }
        (void)f;
}

static void check_chunk(struct blob *b, const struct hash *h, const uint8_t *data, size_t size)
{
        struct buf out = BUF_INIT;

        assert_int_equal(blob_get_raw(b, h, &out), 0);
        assert_int_equal(out.len, size);
        assert_memory_equal(out.data, data, size);
        buf_free(&out);
}

#define NCH 60
#define CSZ 400 /* under COMPRESS_MIN: stored raw */

/* Chunks spread over several packs, none past the limit (4 KiB), and a
 * chunk larger than the limit gets a pack of its own. */
static void test_many_packs(void **state)
{
        struct fix *f = *state;
        static uint8_t data[NCH * CSZ], big[10000];
        struct hash h[NCH], hb;
        long long bytes;
        int i, n;

        put_random(f, f->b, h, data, NCH, CSZ, 7);
        n = packs_on_disk(f, &bytes);
        assert_true(n >= 6);
        assert_true(bytes <= (long long)n * 4096);
        assert_true(query_int(f, "SELECT count(DISTINCT pack) FROM chunks") >= 6);
        for (i = 0; i < NCH; i++)
                check_chunk(f->b, &h[i], data + i * CSZ, CSZ);
        assert_int_equal(fsutil_random(big, sizeof(big)), 0);
        hash_buf(big, sizeof(big), &hb);
        assert_int_equal(blob_put(f->b, &hb, FRAME_ENC_RAW, big, sizeof(big)), 0);
        check_chunk(f->b, &hb, big, sizeof(big));
}

/* Removing most chunks and compacting gives their space back; every live
 * chunk stays readable, through the handle that had its pack open too. */
static void test_compaction(void **state)
{
        struct fix *f = *state;
        static uint8_t data[NCH * CSZ];
        struct hash h[NCH];
        struct blob *b2 = NULL;
        long long before, after, live;
        uint64_t freed = 0;
        int i;

        put_random(f, f->b, h, data, NCH, CSZ, 10);
        for (i = 0; i < NCH; i++)
                check_chunk(f->b, &h[i], data + i * CSZ, CSZ); /* fds cached */
        packs_on_disk(f, &before);
        /* three chunks in four go */
        for (i = 0; i < NCH; i++)
                if (i % 4)
                        assert_int_equal(f->b->ops->remove(f->b, &h[i]), 0);
        /* nothing is freed at remove() */
        packs_on_disk(f, &after);
        assert_int_equal(after, before);
        /* another handle compacts: it cannot take the pack f->b still
         * appends to, but every closed one */
        assert_int_equal(blob_fs_open(f->chunks, &b2), 0);
        assert_non_null(b2->ops->compact);
        assert_int_equal(b2->ops->compact(b2, &freed), 0);
        assert_true(freed > 0);
        packs_on_disk(f, &after);
        assert_int_equal(before - after, (long long)freed);
        check_consistent(f);
        for (i = 0; i < NCH; i += 4) {
                check_chunk(f->b, &h[i], data + i * CSZ, CSZ);
                check_chunk(b2, &h[i], data + i * CSZ, CSZ);
        }
        blob_close(b2);
        /* the owner's compaction takes its idle pack too: all that is left
         * is about the live chunks */
        assert_int_equal(f->b->ops->compact(f->b, &freed), 0);
        packs_on_disk(f, &after);
        live = query_int(f, "SELECT sum(live) FROM packs");
        assert_int_equal(live, (NCH / 4) * (REC_HDR + CSZ));
        assert_true(after <= 2 * live);
        for (i = 0; i < NCH; i++) {
                if (i % 4 == 0)
                        check_chunk(f->b, &h[i], data + i * CSZ, CSZ);
                else
                        assert_int_equal(f->b->ops->exists(f->b, &h[i]), 0);
        }
        /* compacting again finds nothing to do */
        assert_int_equal(f->b->ops->compact(f->b, &freed), 0);
        assert_int_equal(freed, 0);
        /* and new chunks still go in */
        put_random(f, f->b, h, data, 5, CSZ, 5);
        for (i = 0; i < 5; i++)
                check_chunk(f->b, &h[i], data + i * CSZ, CSZ);
}

/* A second handle on the same directory (another process) sees what the
 * first flushed, and the other way round, while both write. */
static void test_second_handle(void **state)
{
        struct fix *f = *state;
        static uint8_t d1[20 * 1000], d2[20 * 1000];
        struct hash h1[20], h2[20];
        struct blob *b2 = NULL;
        int i;

        assert_int_equal(blob_fs_open(f->chunks, &b2), 0);
        put_random(f, f->b, h1, d1, 20, 1000, 6);
        put_random(f, b2, h2, d2, 20, 1000, 6);
        for (i = 0; i < 20; i++) {
                check_chunk(b2, &h1[i], d1 + i * 1000, 1000);
                check_chunk(f->b, &h2[i], d2 + i * 1000, 1000);
        }
        /* each appended to packs of its own */
        assert_true(query_int(f, "SELECT count(*) FROM packs") >= 2);
        assert_int_equal(b2->ops->remove(b2, &h1[3]), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h1[3]), 0);
        blob_close(b2);
}

struct racer {
        struct blob *b;
        const struct hash *h;
        const uint8_t *data;
        volatile int stop;
        int reads, failures;
};

/* Reads the chunks with an index divisible by 4 (never removed) in a loop. */
static void *race_reader(void *arg)
{
        struct racer *rc = arg;
        struct buf out = BUF_INIT;

        while (!rc->stop) {
                for (int i = 0; i < NCH; i += 4) {
                        if (blob_get_raw(rc->b, &rc->h[i], &out) < 0 || out.len != CSZ ||
                            memcmp(out.data, rc->data + i * CSZ, CSZ))
                                rc->failures++;
                        rc->reads++;
                }
        }
        buf_free(&out);
        return NULL;
}

/* get() while compaction moves the chunks it reads, in the same process:
 * it finds every chunk, in the old pack or after a second lookup. */
static void test_get_races_compaction(void **state)
{
        struct fix *f = *state;
        static uint8_t data[NCH * CSZ];
        struct hash h[NCH];
        struct racer rc = {.b = NULL};
        pthread_t t;
        uint64_t freed, total = 0;
        int i, round, errs = 0;

        put_random(f, f->b, h, data, NCH, CSZ, 10);
        rc.b = f->b;
        rc.h = h;
        rc.data = data;
        assert_int_equal(pthread_create(&t, NULL, race_reader, &rc), 0);
        /* a quarter of each pack goes per round: compacted from the second
         * (asserts only once the reader stopped: it uses the store) */
        for (round = 1; round < 4; round++) {
                for (i = round; i < NCH; i += 4)
                        errs += f->b->ops->remove(f->b, &h[i]) != 0;
                errs += f->b->ops->compact(f->b, &freed) != 0;
                total += freed;
        }
        rc.stop = 1;
        pthread_join(t, NULL);
        assert_int_equal(errs, 0);
        assert_true(total > 0);
        assert_int_equal(rc.failures, 0);
        assert_true(rc.reads > 0);
        for (i = 0; i < NCH; i += 4)
                check_chunk(f->b, &h[i], data + i * CSZ, CSZ);
}

/* Writes a chunk file of the per-file layout. */
static void legacy_file(struct fix *f, const struct hash *h, uint8_t enc, const char *payload)
{
        char hex[HASH_HEX_LEN + 1], path[4400];
        FILE *fp;

        hash_to_hex(h, hex);
        snprintf(path, sizeof(path), "%s/%.2s", f->chunks, hex);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/%.2s/%s", f->chunks, hex, hex);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputc(enc, fp);
        fputs(payload, fp);
        fclose(fp);
}

/* Chunks of a store written before packs stay readable and removable;
 * new ones go to packs, and one already stored as a file is not copied. */
static void test_legacy(void **state)
{
        struct fix *f = *state;
        struct hash a = srvtest_hash("legacy a"), b = srvtest_hash("legacy b");
        struct hash c = srvtest_hash("new c");
        struct buf out = BUF_INIT;

        legacy_file(f, &a, FRAME_ENC_RAW, "legacy a");
        legacy_file(f, &b, FRAME_ENC_RAW, "legacy b");
        blob_close(f->b);
        assert_int_equal(blob_fs_open(f->chunks, &f->b), 0);
        assert_int_equal(f->b->ops->exists(f->b, &a), 1);
        assert_int_equal(blob_get_raw(f->b, &a, &out), 0);
        assert_int_equal(out.len, 8);
        assert_memory_equal(out.data, "legacy a", 8);
        assert_int_equal(blob_put(f->b, &b, FRAME_ENC_RAW, (const uint8_t *)"legacy b", 8), 0);
        assert_int_equal(stored_size(f, &b), -1);
        assert_int_equal(blob_put(f->b, &c, FRAME_ENC_RAW, (const uint8_t *)"new c", 5), 0);
        assert_int_equal(stored_size(f, &c), 5);
        assert_int_equal(f->b->ops->remove(f->b, &a), 0);
        assert_int_equal(f->b->ops->exists(f->b, &a), 0);
        assert_int_equal(blob_get_raw(f->b, &a, &out), -ENOENT);
        assert_int_equal(f->b->ops->remove(f->b, &a), -ENOENT);
        assert_int_equal(blob_get_raw(f->b, &b, &out), 0);
        assert_memory_equal(out.data, "legacy b", 8);
        assert_int_equal(blob_get_raw(f->b, &c, &out), 0);
        assert_memory_equal(out.data, "new c", 5);
        buf_free(&out);
}

/* A writer that dies after appending, before its rows are committed: the
 * chunk stays invisible, the store consistent, and compaction drops the
 * dead pack once its writer is gone. A pack file the index does not know
 * (a crash between a compaction's commit and its unlink) goes too, once
 * old enough. */
static void test_crash(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("lost"), k = srvtest_hash("kept");
        struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
        char orphan[4400];
        long long bytes;
        uint64_t freed = 0;
        int status;
        pid_t pid;
        FILE *fp;

        assert_int_equal(blob_put(f->b, &k, FRAME_ENC_RAW, (const uint8_t *)"kept", 4), 0);
        /* closed first: SQLite connections must not cross a fork */
        blob_close(f->b);
        f->b = NULL;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct blob *b = NULL;
                struct blob_batch *bb = NULL;

                if (blob_fs_open(f->chunks, &b) < 0 || b->ops->batch_new(b, &bb) < 0 ||
                    b->ops->put(b, bb, &h, FRAME_ENC_RAW, (const uint8_t *)"lost", 4) < 0)
                        _exit(1);
                _exit(0); /* no flush, no close: a crash */
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(packs_on_disk(f, &bytes), 2);
        check_consistent(f);
        snprintf(orphan, sizeof(orphan), "%s/packs/0123456789abcdef.pack", f->chunks);
        fp = fopen(orphan, "w");
        assert_non_null(fp);
        fputs("FERRYPK1", fp);
        fclose(fp);
        assert_int_equal(utimensat(AT_FDCWD, orphan, ts, 0), 0);
        /* reopen, as after a restart */
        assert_int_equal(blob_fs_open(f->chunks, &f->b), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(f->b->ops->compact(f->b, &freed), 0);
        assert_true(freed >= (uint64_t)(8 + REC_HDR + 4 + 8));
        assert_int_equal(access(orphan, F_OK), -1);
        assert_int_equal(packs_on_disk(f, &bytes), 1);
        assert_int_equal(query_int(f, "SELECT count(*) FROM packs"), 1);
        check_chunk(f->b, &k, (const uint8_t *)"kept", 4);
        /* the chunk that was lost can be stored again */
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"lost", 4), 0);
        check_chunk(f->b, &h, (const uint8_t *)"lost", 4);
}

/* Opening the store removes temp files a crash of the per-file layout's
 * writers left long ago, and only those. */
static void test_stale_temps_swept(void **state)
{
        struct fix *f = *state;
        char tmpdir[4400], oldf[4500], young[4500];
        struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
        struct blob *b2 = NULL;
        FILE *fp;

        snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", f->chunks);
        assert_int_equal(mkdir(tmpdir, 0700), 0);
        snprintf(oldf, sizeof(oldf), "%s/0123456789abcdef", tmpdir);
        snprintf(young, sizeof(young), "%s/fedcba9876543210", tmpdir);
        fp = fopen(oldf, "w");
        assert_non_null(fp);
        fclose(fp);
        fp = fopen(young, "w");
        assert_non_null(fp);
        fclose(fp);
        assert_int_equal(utimensat(AT_FDCWD, oldf, ts, 0), 0);
        assert_int_equal(blob_fs_open(f->chunks, &b2), 0);
        assert_int_equal(access(oldf, F_OK), -1);
        assert_int_equal(access(young, F_OK), 0);
        blob_close(b2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_raw_compressible, setup, teardown),
            cmocka_unit_test_setup_teardown(test_raw_incompressible, setup, teardown),
            cmocka_unit_test_setup_teardown(test_zstd_kept_as_sent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_small_and_missing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_corrupt_detected, setup, teardown),
            cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
            cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
            cmocka_unit_test_setup_teardown(test_batch_visible_after_flush, setup, teardown),
            cmocka_unit_test_setup_teardown(test_batch_dropped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_many_packs, setup_small, teardown),
            cmocka_unit_test_setup_teardown(test_compaction, setup_small, teardown),
            cmocka_unit_test_setup_teardown(test_second_handle, setup_small, teardown),
            cmocka_unit_test_setup_teardown(test_get_races_compaction, setup_small, teardown),
            cmocka_unit_test_setup_teardown(test_legacy, setup, teardown),
            cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stale_temps_swept, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
