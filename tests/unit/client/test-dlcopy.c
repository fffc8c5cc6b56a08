/* Unit tests for the trusted local sources of a download (dlcopy.h): a
 * large file rebuilt from a local file whose stat is the one indexed comes
 * out byte for byte right, copied by the kernel (copy_file_range) or, with
 * FERRY_DL_NO_COPY_RANGE=1, through memory; a chunk the device lacks in
 * the middle (given here by a fake LAN peer) splits the copy into runs in
 * manifest order; a source modified after it was indexed is not trusted
 * (its chunks are hashed, a corrupted one is obtained elsewhere or the
 * download fails, never a wrong file in place); a source modified while
 * the download runs makes the file be read back and verified before it is
 * accepted; and a resumed download copies only what the partial file
 * lacks. */
#include <errno.h>
#include <fcntl.h>
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

#include "buf.h"
#include "frame.h"
#include "hash.h"
#include "index.h"
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "remote.h"
#include "testutil.h"
#include "transfer.h"

#define BIG_SIZE (9u * 1024u * 1024u)
#define NEW_LEN 1000 /* the replacement chunk */

struct fixture {
        char *root;
        struct index *idx;
        uint8_t *data;     /* big.bin as indexed */
        struct manifest m; /* of big.bin */
        uint8_t newc[NEW_LEN];
        struct hash newh;
        /* the fake peer: what it does to big.bin when first asked */
        int mutate;       /* 0 nothing, 1 rewrite a byte as it is, 2 flip it */
        uint64_t mut_off; /* where */
        int peer_calls;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        struct index_entry e = {0};
        uint64_t x = 88172645463325252ull;
        char *db = NULL, *p;
        struct stat st;
        int fd;

        assert_non_null(fx);
        unsetenv("FERRY_DL_NO_COPY_RANGE");
        fx->root = testutil_mkdtemp_alloc("dlcopy");
        assert_non_null(fx->root);
        assert_true(asprintf(&db, "%s/index.db", fx->root) > 0);
        assert_int_equal(index_open(db, &fx->idx), 0);
        free(db);
        fx->data = malloc(BIG_SIZE);
        assert_non_null(fx->data);
        for (size_t i = 0; i < BIG_SIZE; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                fx->data[i] = (uint8_t)x;
        }
        memset(fx->newc, 0x5a, sizeof(fx->newc));
        hash_buf(fx->newc, sizeof(fx->newc), &fx->newh);
        p = path_join(fx->root, "big.bin");
        fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, fx->data, BIG_SIZE), (ssize_t)BIG_SIZE);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(manifest_from_fd(fd, &fx->m, NULL, NULL), 0);
        assert_true(fx->m.n > 20);
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        /* as a scan that saw it 2 s after it was written: not racy */
        localfs_entry_stat(&e, &st);
        e.path = "big.bin";
        e.hash = fx->m.file_hash;
        e.seq = 1;
        e.recorded_ns = e.mtime_ns + INT64_C(2000000000);
        assert_int_equal(index_put(fx->idx, &e, &fx->m), 0);
        free(p);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        unsetenv("FERRY_DL_NO_COPY_RANGE");
        index_close(fx->idx);
        manifest_free(&fx->m);
        assert_int_equal(testutil_rm_rf(fx->root), 0);
        free(fx->root);
        free(fx->data);
        free(fx);
        return 0;
}

static uint64_t chunk_off(const struct manifest *m, size_t k)
{
        uint64_t off = 0;

        for (size_t i = 0; i < k; i++)
                off += m->chunks[i].size;
        return off;
}

static void big_write(struct fixture *fx, uint64_t off, uint8_t xor)
{
        char *p = path_join(fx->root, "big.bin");
        int fd = open(p, O_WRONLY);
        uint8_t c = fx->data[off] ^ xor;

        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
        close(fd);
        free(p);
}

/* A LAN peer holding every chunk of big.bin as indexed and the
 * replacement chunk; on its first call it changes big.bin as told. */
static int fake_peer(void *ud, const struct hash *hashes, size_t n, struct buf *frames)
{
        struct fixture *fx = ud;

        if (fx->peer_calls++ == 0 && fx->mutate)
                big_write(fx, fx->mut_off, fx->mutate == 2 ? 0x01 : 0);
        for (size_t i = 0; i < n; i++) {
                if (hash_equal(&hashes[i], &fx->newh)) {
                        assert_int_equal(frame_append(frames, &fx->newh, fx->newc, NEW_LEN, 0), 0);
                        continue;
                }
                for (size_t k = 0; k < fx->m.n; k++)
                        if (hash_equal(&hashes[i], &fx->m.chunks[k].hash)) {
                                assert_int_equal(frame_append(frames, &hashes[i],
                                                              fx->data + chunk_off(&fx->m, k),
                                                              fx->m.chunks[k].size, 0),
                                                 0);
                                break;
                        }
        }
        return 0;
}

/* A job for path: big.bin's chunks, chunk k (if k < m.n) replaced by the
 * replacement chunk. *want gets the expected content (*len bytes). */
static void make_job(struct fixture *fx, struct dl_job *j, const char *path, size_t k,
                     uint8_t **want, size_t *len)
{
        uint8_t *w = malloc(BIG_SIZE + NEW_LEN);
        size_t pos = 0;

        assert_non_null(w);
        memset(j, 0, sizeof(*j));
        j->path = strdup(path);
        j->mode = 0644;
        j->mtime_ns = INT64_C(1600000000000000000);
        for (size_t i = 0; i < fx->m.n; i++) {
                const struct chunk_ref *c = &fx->m.chunks[i];

                if (i == k) {
                        assert_int_equal(manifest_add(&j->m, &fx->newh, NEW_LEN), 0);
                        memcpy(w + pos, fx->newc, NEW_LEN);
                        pos += NEW_LEN;
                } else {
                        assert_int_equal(manifest_add(&j->m, &c->hash, c->size), 0);
                        memcpy(w + pos, fx->data + chunk_off(&fx->m, i), c->size);
                        pos += c->size;
                }
        }
        manifest_file_hash(&j->m, &j->m.file_hash);
        *want = w;
        *len = pos;
}

static int count_temp(const char *dir)
{
        return testutil_count_names(dir, PATH_TEMP_PREFIX, NULL);
}

static void assert_content(struct fixture *fx, const char *path, const uint8_t *want, size_t len)
{
        char *p = path_join(fx->root, path);
        uint8_t *got = malloc(len + 1);
        int fd = open(p, O_RDONLY);

        assert_true(fd >= 0);
        assert_non_null(got);
        assert_int_equal(read(fd, got, len + 1), (ssize_t)len);
        assert_memory_equal(got, want, len);
        close(fd);
        free(got);
        free(p);
}

static int exists(struct fixture *fx, const char *path)
{
        char *p = path_join(fx->root, path);
        int r = access(p, F_OK) == 0;

        free(p);
        return r;
}

/* Every chunk from the trusted big.bin: the whole file is copied by the
 * kernel, or through memory when that is switched off. */
static void test_whole_file_from_trusted_source(void **state)
{
        struct fixture *fx = *state;

        for (int nocopy = 0; nocopy < 2; nocopy++) {
                struct transfer t = {.root = fx->root, .idx = fx->idx};
                struct dl_job job;
                uint8_t *want;
                size_t len;

                if (nocopy)
                        setenv("FERRY_DL_NO_COPY_RANGE", "1", 1);
                make_job(fx, &job, nocopy ? "b.bin" : "a.bin", SIZE_MAX, &want, &len);
                assert_int_equal(transfer_download(&t, &job, 1, NULL), 0);
                assert_int_equal(t.chunks_local, fx->m.n);
                assert_int_equal(t.bytes_copied, nocopy ? 0 : BIG_SIZE);
                assert_content(fx, job.path, want, len);
                assert_int_equal(count_temp(fx->root), 0);
                dl_job_free(&job);
                free(want);
        }
}

/* One chunk in the middle comes from the peer: the chunks before and
 * after it are copied in two runs, in order. */
static void test_missing_chunk_between_runs(void **state)
{
        struct fixture *fx = *state;
        size_t k = fx->m.n / 2;

        for (int nocopy = 0; nocopy < 2; nocopy++) {
                struct transfer t = {
                    .root = fx->root, .idx = fx->idx, .peer_fetch = fake_peer, .peer_ud = fx};
                struct dl_job job;
                uint8_t *want;
                size_t len;

                if (nocopy)
                        setenv("FERRY_DL_NO_COPY_RANGE", "1", 1);
                make_job(fx, &job, "new.bin", k, &want, &len);
                assert_int_equal(transfer_download(&t, &job, 1, NULL), 0);
                assert_int_equal(t.chunks_lan, 1);
                assert_int_equal(t.chunks_local, fx->m.n - 1);
                if (!nocopy) /* the chunks after k in the window are read */
                        assert_true(t.bytes_copied >= chunk_off(&fx->m, k) &&
                                    t.bytes_copied < BIG_SIZE - fx->m.chunks[k].size);
                else
                        assert_int_equal(t.bytes_copied, 0);
                assert_content(fx, "new.bin", want, len);
                assert_int_equal(count_temp(fx->root), 0);
                dl_job_free(&job);
                free(want);
        }
}

/* big.bin modified after it was indexed: its chunks are hashed, the
 * modified one does not verify. Without anyone to ask, the download fails
 * and nothing is in place; with the peer, that chunk comes from it. */
static void test_modified_source_not_trusted(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct remote *dead = NULL;
        size_t k = fx->m.n / 3;
        struct dl_job job;
        uint8_t *want;
        size_t len;

        big_write(fx, chunk_off(&fx->m, k) + 7, 0x80);
        make_job(fx, &job, "dst.bin", SIZE_MAX, &want, &len);
        assert_int_equal(remote_new("http://127.0.0.1:1", "token", &dead), 0);
        t.remote = dead;
        assert_true(transfer_download(&t, &job, 1, NULL) < 0);
        assert_false(exists(fx, "dst.bin"));
        assert_int_equal(t.bytes_copied, 0);

        memset(&t, 0, sizeof(t));
        t.root = fx->root;
        t.idx = fx->idx;
        t.peer_fetch = fake_peer;
        t.peer_ud = fx;
        assert_int_equal(transfer_download(&t, &job, 1, NULL), 0);
        assert_int_equal(t.chunks_lan, 1);
        assert_int_equal(t.bytes_copied, 0);
        assert_content(fx, "dst.bin", want, len);
        assert_int_equal(count_temp(fx->root), 0);
        remote_free(dead);
        dl_job_free(&job);
        free(want);
}

/* big.bin changes while the download runs (when the peer is asked, after
 * the first run was copied). The same bytes: the file is read back,
 * verifies and is put in place. A flipped byte in a chunk copied later:
 * the download fails and nothing is in place; the next one hashes
 * big.bin's chunks and gets the bad one from the peer. */
static void test_source_changed_during_download(void **state)
{
        struct fixture *fx = *state;
        size_t k = fx->m.n / 4, j = fx->m.n - 2;
        struct transfer t = {
            .root = fx->root, .idx = fx->idx, .peer_fetch = fake_peer, .peer_ud = fx};
        struct dl_job job;
        uint8_t *want;
        size_t len;

        fx->mutate = 1;
        fx->mut_off = chunk_off(&fx->m, j) + 3;
        make_job(fx, &job, "same.bin", k, &want, &len);
        assert_int_equal(transfer_download(&t, &job, 1, NULL), 0);
        assert_int_equal(fx->peer_calls, 1);
        assert_content(fx, "same.bin", want, len);
        dl_job_free(&job);
        free(want);

        /* index big.bin's new stat again, then flip a byte mid-download */
        {
                struct index_entry e = {0};
                char *p = path_join(fx->root, "big.bin");
                struct stat st;

                assert_int_equal(lstat(p, &st), 0);
                localfs_entry_stat(&e, &st);
                e.path = "big.bin";
                e.hash = fx->m.file_hash;
                e.recorded_ns = e.mtime_ns + INT64_C(2000000000);
                assert_int_equal(index_put(fx->idx, &e, &fx->m), 0);
                free(p);
        }
        fx->peer_calls = 0;
        fx->mutate = 2;
        memset(&t, 0, sizeof(t));
        t.root = fx->root;
        t.idx = fx->idx;
        t.peer_fetch = fake_peer;
        t.peer_ud = fx;
        make_job(fx, &job, "flip.bin", k, &want, &len);
        assert_int_equal(transfer_download(&t, &job, 1, NULL), -EBADMSG);
        assert_false(exists(fx, "flip.bin"));
        assert_int_equal(count_temp(fx->root), 0);

        fx->mutate = 0;
        t.chunks_lan = 0;
        t.bytes_copied = 0;
        assert_int_equal(transfer_download(&t, &job, 1, NULL), 0);
        assert_int_equal(t.chunks_lan, 2);
        assert_int_equal(t.bytes_copied, 0);
        assert_content(fx, "flip.bin", want, len);
        assert_int_equal(count_temp(fx->root), 0);
        dl_job_free(&job);
        free(want);
}

/* A partial file of K verified chunks: only the rest is copied. */
static void test_resume_copies_only_the_rest(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        char name[LOCALFS_RESUME_NAME_LEN + 1];
        size_t k = fx->m.n / 2;
        uint64_t have = chunk_off(&fx->m, k);
        struct dl_job job;
        uint8_t *want;
        size_t len;
        char *p;
        int fd;

        localfs_resume_name("res.bin", name);
        p = path_join(fx->root, name);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, fx->data, have), (ssize_t)have);
        assert_int_equal(write(fd, "garbage", 7), 7);
        close(fd);
        free(p);
        make_job(fx, &job, "res.bin", SIZE_MAX, &want, &len);
        assert_int_equal(transfer_download(&t, &job, 1, NULL), 0);
        assert_int_equal(t.chunks_local, fx->m.n - k);
        assert_int_equal(t.bytes_copied, BIG_SIZE - have);
        assert_content(fx, "res.bin", want, len);
        assert_int_equal(count_temp(fx->root), 0);
        dl_job_free(&job);
        free(want);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_whole_file_from_trusted_source, setup, teardown),
            cmocka_unit_test_setup_teardown(test_missing_chunk_between_runs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_modified_source_not_trusted, setup, teardown),
            cmocka_unit_test_setup_teardown(test_source_changed_during_download, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resume_copies_only_the_rest, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
