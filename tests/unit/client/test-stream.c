/* Unit tests for the one-pass upload of a large new file (transfer_stream,
 * sender.c), against a scripted server (fakesrv.c) that keeps the chunks it
 * receives: the file is read once into the same chunk list a scan would
 * make, every chunk the server lacks arrives exactly once, each body's
 * chunks are asked about before it is posted, and chunks the server holds
 * already (an earlier, interrupted upload), that the file repeats, or that
 * the index records for a synced file are not sent. A file that changed
 * since the scan is skipped with nothing committed. And the scan leaves
 * such a file unread (scan_options.stream_min), unless it may be a moved
 * synced file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakesrv.h"
#include "frame.h"
#include "fsutil.h"
#include "index.h"
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "remote.h"
#include "scan.h"
#include "testutil.h"
#include "transfer.h"

#define MIB (1024u * 1024u)

/* The server: the chunks it holds (sorted insertion is not needed: tests
 * hold a few thousand at most, looked up linearly) and what it received. */
struct world {
        struct fakesrv *srv;
        pthread_mutex_t mu;
        struct hash *held;
        size_t nheld, capheld;
        size_t received;  /* chunk frames posted */
        size_t duplicate; /* of those, chunks it held already */
        size_t asked;     /* hashes asked about */
        char *root;
        struct index *idx;
        struct remote *rem;
};

static int holds(struct world *w, const struct hash *h)
{
        for (size_t i = 0; i < w->nheld; i++)
                if (hash_equal(&w->held[i], h))
                        return 1;
        return 0;
}

static void hold(struct world *w, const struct hash *h)
{
        if (w->nheld == w->capheld) {
                w->capheld = w->capheld ? 2 * w->capheld : 1024;
                w->held = realloc(w->held, w->capheld * sizeof(*w->held));
                assert_non_null(w->held);
        }
        w->held[w->nheld++] = *h;
}

static int handler(void *ud, const struct fakesrv_request *req, struct buf *out)
{
        struct world *w = ud;

        pthread_mutex_lock(&w->mu);
        if (!strcmp(req->path, "/api/v1/chunks/missing")) {
                json_t *j = json_loads(req->body, 0, NULL), *miss = json_array(), *ans, *v;
                char *text;
                size_t i;

                json_array_foreach(json_object_get(j, "hashes"), i, v)
                {
                        struct hash h;

                        hash_from_hex(json_string_value(v), &h);
                        w->asked++;
                        if (!holds(w, &h))
                                json_array_append(miss, v);
                }
                ans = json_pack("{s:o}", "missing", miss);
                text = json_dumps(ans, JSON_COMPACT);
                buf_append_str(out, text);
                free(text);
                json_decref(ans);
                json_decref(j);
        } else if (!strcmp(req->path, "/api/v1/chunks")) {
                const uint8_t *p = (const uint8_t *)req->body;
                size_t off = 0, used;
                struct frame f;
                struct buf chunk = BUF_INIT;

                while (off < req->len && frame_parse(p + off, req->len - off, &f, &used) == 1) {
                        /* what ferryd checks: the bytes are the hash's */
                        if (frame_decode(&f, &chunk) == 0) {
                                w->received++;
                                if (holds(w, &f.hash))
                                        w->duplicate++;
                                else
                                        hold(w, &f.hash);
                        }
                        off += used;
                }
                buf_free(&chunk);
                buf_append_str(out, "{\"stored\": 1}");
        } else {
                buf_append_str(out, "{}");
        }
        pthread_mutex_unlock(&w->mu);
        return 200;
}

static int setup(void **state)
{
        struct world *w = calloc(1, sizeof(*w));
        char *db;

        if (!w || fakesrv_start(handler, w, &w->srv) < 0)
                return -1;
        pthread_mutex_init(&w->mu, NULL);
        w->root = testutil_mkdtemp_alloc("stream");
        /* under .ferry/, which the scan never looks at */
        db = w->root ? path_join(w->root, ".ferry") : NULL;
        if (!db || mkdir(db, 0700) < 0)
                return -1;
        free(db);
        db = path_join(w->root, ".ferry/index.db");
        if (!db || index_open(db, &w->idx) < 0 ||
            remote_new(fakesrv_url(w->srv), "ab", &w->rem) < 0)
                return -1;
        free(db);
        *state = w;
        return 0;
}

static int teardown(void **state)
{
        struct world *w = *state;

        fakesrv_stop(w->srv);
        remote_free(w->rem);
        index_close(w->idx);
        testutil_rm_rf(w->root);
        free(w->root);
        free(w->held);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return 0;
}

/* Writes name: `size` bytes of random data, or of one random `block`
 * repeated when block > 0. Returns the bytes (caller frees). */
static uint8_t *make_file(struct world *w, const char *name, size_t size, size_t block)
{
        uint8_t *p = malloc(size);
        char *full = path_join(w->root, name);

        assert_non_null(p);
        assert_int_equal(fsutil_random(p, block ? block : size), 0);
        for (size_t off = block; block && off < size; off += block)
                memcpy(p + off, p, size - off < block ? size - off : block);
        assert_int_equal(fsutil_write_atomic(full, p, size, 0644), 0);
        free(full);
        return p;
}

/* The put a scan with stream_min would report for name: stat, no content. */
static void unread_change(struct world *w, const char *name, struct local_change *c)
{
        char *full = path_join(w->root, name);
        struct stat st;

        assert_int_equal(stat(full, &st), 0);
        free(full);
        memset(c, 0, sizeof(*c));
        c->op = CHANGE_PUT;
        c->kind = KIND_FILE;
        c->path = strdup(name);
        c->size = (uint64_t)st.st_size;
        c->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        c->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
        c->ino = (uint64_t)st.st_ino;
        c->mode = 0644;
        c->stream = 1;
}

static struct transfer xfer(struct world *w)
{
        return (struct transfer){
            .remote = w->rem, .root = w->root, .idx = w->idx, .connections = 2};
}

/* The list a scan would have made of the same bytes. */
static void expect_manifest(const struct manifest *got, const uint8_t *p, size_t n)
{
        struct manifest want = MANIFEST_INIT;
        char path[] = "/tmp/ferry-stream-XXXXXX";
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        unlink(path);
        assert_int_equal(write(fd, p, n), (ssize_t)n);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(manifest_from_fd(fd, &want, NULL, NULL), 0);
        close(fd);
        assert_int_equal(got->n, want.n);
        assert_int_equal(got->size, n);
        assert_true(hash_equal(&got->file_hash, &want.file_hash));
        for (size_t i = 0; i < want.n; i++)
                assert_true(hash_equal(&got->chunks[i].hash, &want.chunks[i].hash));
        manifest_free(&want);
}

static void test_new_file_sent_once_in_one_pass(void **state)
{
        struct world *w = *state;
        size_t size = 12 * MIB + 12345;
        uint8_t *p = make_file(w, "big.bin", size, 0);
        struct transfer t = xfer(w);
        struct local_change c;
        int skip = 0;

        unread_change(w, "big.bin", &c);
        assert_int_equal(transfer_stream(&t, &c, &skip), 0);
        assert_int_equal(skip, 0);
        assert_int_equal(c.sent, 1);
        assert_int_equal(c.stream, 0);
        expect_manifest(&c.manifest, p, size);
        /* every chunk asked about, then sent once */
        assert_int_equal(w->asked, c.manifest.n);
        assert_int_equal(w->received, c.manifest.n);
        assert_int_equal(w->duplicate, 0);
        assert_int_equal(t.chunks_sent, c.manifest.n);
        assert_true(t.bytes_sent >= size && t.bytes_sent < size + size / 50);
        /* several bodies, each asked about before it went */
        assert_true(fakesrv_count_of(w->srv, "POST", "/api/v1/chunks") >= 3);
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/chunks/missing"),
                         fakesrv_count_of(w->srv, "POST", "/api/v1/chunks"));
        scan_change_free(&c);
        free(p);
}

/* An upload cut off half-way: the server holds the first half of the
 * chunks; the second pass sends only the rest. */
static void test_resume_sends_only_what_is_missing(void **state)
{
        struct world *w = *state;
        size_t size = 10 * MIB;
        uint8_t *p = make_file(w, "big.bin", size, 0);
        struct transfer t = xfer(w);
        struct local_change c;
        size_t half;
        int skip = 0;

        unread_change(w, "big.bin", &c);
        assert_int_equal(transfer_stream(&t, &c, &skip), 0);
        half = c.manifest.n / 2;
        /* the server forgets the second half */
        w->nheld = half;
        w->received = 0;
        scan_change_free(&c);

        t = xfer(w);
        unread_change(w, "big.bin", &c);
        assert_int_equal(transfer_stream(&t, &c, &skip), 0);
        assert_int_equal(skip, 0);
        expect_manifest(&c.manifest, p, size);
        assert_int_equal(w->received, c.manifest.n - half);
        assert_int_equal(w->duplicate, 0);
        assert_int_equal(t.chunks_sent, c.manifest.n - half);
        assert_true(t.bytes_sent < size / 2 + size / 10);
        scan_change_free(&c);
        free(p);
}

/* Repeated content: each distinct chunk goes once; and chunks the index
 * records for a synced file are neither asked about nor sent. */
static void test_repeats_and_synced_chunks_stay_home(void **state)
{
        struct world *w = *state;
        size_t size = 9 * MIB;
        uint8_t *p = make_file(w, "rep.bin", size, 3 * MIB);
        struct transfer t = xfer(w);
        struct local_change c, d;
        struct index_entry e = {0};
        struct stat st;
        char *full;
        int skip = 0;
        size_t distinct;

        unread_change(w, "rep.bin", &c);
        assert_int_equal(transfer_stream(&t, &c, &skip), 0);
        expect_manifest(&c.manifest, p, size);
        distinct = w->received;
        assert_true(distinct < c.manifest.n); /* the repeats were not sent */
        assert_int_equal(w->duplicate, 0);
        assert_int_equal(w->nheld, distinct);

        /* rep.bin synced: a copy of it is read but nothing is asked or sent */
        full = path_join(w->root, "rep.bin");
        assert_int_equal(stat(full, &st), 0);
        free(full);
        localfs_entry_stat(&e, &st);
        e.path = "rep.bin";
        e.kind = KIND_FILE;
        e.hash = c.manifest.file_hash;
        e.seq = 1;
        assert_int_equal(index_put(w->idx, &e, &c.manifest), 0);
        full = path_join(w->root, "copy.bin");
        assert_int_equal(fsutil_write_atomic(full, p, size, 0644), 0);
        free(full);
        w->asked = w->received = 0;
        fakesrv_clear(w->srv);
        t = xfer(w);
        unread_change(w, "copy.bin", &d);
        assert_int_equal(transfer_stream(&t, &d, &skip), 0);
        assert_int_equal(skip, 0);
        assert_true(hash_equal(&d.manifest.file_hash, &c.manifest.file_hash));
        assert_int_equal(w->asked, 0);
        assert_int_equal(w->received, 0);
        assert_int_equal(fakesrv_count(w->srv), 0);
        scan_change_free(&c);
        scan_change_free(&d);
        free(p);
}

/* The file is not what the scan saw (other size, another file of the same
 * size and mtime moved in, or gone): skipped, no chunk list, nothing
 * sent. */
static void test_changed_since_scan_is_skipped(void **state)
{
        struct world *w = *state;
        struct transfer t = xfer(w);
        struct local_change c;
        char *full;
        int skip = 0;

        free(make_file(w, "big.bin", 2 * MIB, 0));
        unread_change(w, "big.bin", &c);
        full = path_join(w->root, "big.bin");
        free(make_file(w, "big.bin", 2 * MIB + 1, 0));
        assert_int_equal(transfer_stream(&t, &c, &skip), 0);
        assert_int_equal(skip, 1);
        assert_int_equal(c.sent, 0);
        assert_int_equal(c.manifest.n, 0);
        assert_int_equal(fakesrv_count(w->srv), 0);

        /* another file of the same size and mtime moved in its place */
        scan_change_free(&c);
        free(make_file(w, "big.bin", 2 * MIB, 0));
        unread_change(w, "big.bin", &c);
        {
                char *other = path_join(w->root, "other.bin");
                struct timespec ts[2] = {
                    {.tv_sec = c.mtime_ns / 1000000000LL, .tv_nsec = c.mtime_ns % 1000000000LL},
                    {.tv_sec = c.mtime_ns / 1000000000LL, .tv_nsec = c.mtime_ns % 1000000000LL}};

                free(make_file(w, "other.bin", 2 * MIB, 0));
                assert_int_equal(utimensat(AT_FDCWD, other, ts, 0), 0);
                assert_int_equal(rename(other, full), 0);
                free(other);
        }
        skip = 0;
        assert_int_equal(transfer_stream(&t, &c, &skip), 0);
        assert_int_equal(skip, 1);
        assert_int_equal(c.manifest.n, 0);
        assert_int_equal(fakesrv_count(w->srv), 0);

        skip = 0;
        assert_int_equal(unlink(full), 0);
        assert_int_equal(transfer_stream(&t, &c, &skip), 0);
        assert_int_equal(skip, 1);
        assert_int_equal(fakesrv_count(w->srv), 0);
        free(full);
        scan_change_free(&c);
}

/* The scan: a new file of stream_min bytes or more is reported unread; a
 * smaller one is read; one that may be a moved synced file (same size,
 * mtime and mode as a vanished one) is read and becomes a rename. */
static void test_scan_leaves_large_new_files_unread(void **state)
{
        struct world *w = *state;
        struct scan_options o = {.stream_min = 2 * MIB};
        struct scan_result r = {0};
        struct index_entry e = {0};
        struct manifest m = MANIFEST_INIT;
        struct stat st;
        char *from;
        int fd;

        free(make_file(w, "a-big.bin", 3 * MIB, 0));
        free(make_file(w, "b-small.bin", MIB, 0));
        free(make_file(w, "c-moved.bin", 3 * MIB, 0));
        /* c-moved.bin was synced as old.bin, then moved (mv keeps the stat) */
        from = path_join(w->root, "c-moved.bin");
        fd = open(from, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(manifest_from_fd(fd, &m, NULL, NULL), 0);
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        localfs_entry_stat(&e, &st);
        e.path = "old.bin";
        e.kind = KIND_FILE;
        e.mode = 0644;
        e.hash = m.file_hash;
        e.seq = 4;
        assert_int_equal(index_put(w->idx, &e, &m), 0);

        assert_int_equal(scan_folder_opts(w->root, w->idx, &o, &r), 0);
        for (size_t i = 0; i < r.n; i++) {
                struct local_change *c = &r.changes[i];

                if (!strcmp(c->path, "a-big.bin")) {
                        assert_int_equal(c->op, CHANGE_PUT);
                        assert_int_equal(c->stream, 1);
                        assert_int_equal(c->manifest.n, 0);
                        assert_int_equal(c->size, 3 * MIB);
                } else if (!strcmp(c->path, "b-small.bin")) {
                        assert_int_equal(c->stream, 0);
                        assert_true(c->manifest.n > 0);
                } else if (!strcmp(c->path, "c-moved.bin")) {
                        assert_int_equal(c->op, CHANGE_RENAME);
                        assert_string_equal(c->from, "old.bin");
                        assert_int_equal(c->stream, 0);
                        assert_true(hash_equal(&c->manifest.file_hash, &m.file_hash));
                } else {
                        fail_msg("unexpected change %s", c->path);
                }
        }
        assert_int_equal(r.n, 3);
        scan_result_free(&r);
        manifest_free(&m);
        free(from);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_new_file_sent_once_in_one_pass, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resume_sends_only_what_is_missing, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_repeats_and_synced_chunks_stay_home, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_changed_since_scan_is_skipped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_scan_leaves_large_new_files_unread, setup,
                                            teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
