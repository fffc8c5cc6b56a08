/* Unit tests for transfer's download side without a server: when every
 * chunk of a version is already on this device (the index says where), the
 * file is assembled from local copies into a temporary file next to the
 * target, verified, given its mode and mtime and renamed into place; a
 * version whose whole-file hash does not match is never put in place; and
 * no temporary file is left behind either way. A large file resumes from
 * the partial file an interrupted download left: the chunks there that
 * verify are kept, only the others are obtained again. */
#include <fcntl.h>
#include <errno.h>
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

#include "fsutil.h"
#include "hash.h"
#include "index.h"
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "remote.h"
#include "transfer.h"
#include "testutil.h"

struct fixture {
        char *root;
        int fail_at; /* before_rename fails for this job index (-1: never) */
        int renames;
        struct index *idx;
        struct manifest m; /* of src.bin */
        int done_calls;
        struct stat done_st;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        char *db = NULL, *src = NULL;
        struct index_entry e = {0};
        uint8_t *data;
        struct stat st;
        int fd;

        assert_non_null(fx);
        fx->root = testutil_mkdtemp_alloc("transfer");
        assert_non_null(fx->root);
        assert_true(asprintf(&db, "%s/index.db", fx->root) > 0);
        assert_int_equal(index_open(db, &fx->idx), 0);
        free(db);

        /* ~1 MiB of varied bytes: several chunks */
        data = malloc(1 << 20);
        assert_non_null(data);
        for (size_t i = 0; i < (1u << 20); i++)
                data[i] = (uint8_t)((i * 2654435761u) >> 13);
        src = path_join(fx->root, "src.bin");
        fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, 1 << 20), 1 << 20);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(manifest_from_fd(fd, &fx->m, NULL, NULL), 0);
        assert_true(fx->m.n > 1);
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        localfs_entry_stat(&e, &st);
        e.path = "src.bin";
        e.hash = fx->m.file_hash;
        e.seq = 1;
        assert_int_equal(index_put(fx->idx, &e, &fx->m), 0);
        free(src);
        free(data);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        index_close(fx->idx);
        manifest_free(&fx->m);
        assert_int_equal(testutil_rm_rf(fx->root), 0);
        free(fx->root);
        free(fx);
        return 0;
}

static int done(void *ud, struct dl_job *j, const struct stat *st)
{
        struct fixture *fx = ud;

        (void)j;
        fx->done_calls++;
        fx->done_st = *st;
        return 0;
}

static int count_temp(const char *dir)
{
        return testutil_count_names(dir, PATH_TEMP_PREFIX, NULL);
}

static void copy_manifest(struct manifest *dst, const struct manifest *src)
{
        for (size_t i = 0; i < src->n; i++)
                assert_int_equal(manifest_add(dst, &src->chunks[i].hash, src->chunks[i].size), 0);
        dst->file_hash = src->file_hash;
}

static void test_assemble_from_local_chunks(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        struct dl_job jobs[2];
        struct stat st;
        char *p, *q, *sub;
        struct hash h;

        memset(jobs, 0, sizeof(jobs));
        sub = path_join(fx->root, "sub");
        assert_int_equal(mkdir(sub, 0755), 0);
        jobs[0].path = strdup("sub/copy.bin");
        copy_manifest(&jobs[0].m, &fx->m);
        jobs[0].mode = 0755;
        jobs[0].mtime_ns = INT64_C(1763761956123456789);
        jobs[1].path = strdup("empty.txt");
        hash_buf("", 0, &jobs[1].m.file_hash);
        jobs[1].mode = 0644;
        jobs[1].mtime_ns = INT64_C(1763761956000000000);

        assert_int_equal(transfer_download(&t, jobs, 2, &hooks), 0);
        assert_int_equal(fx->done_calls, 2);
        assert_int_equal(t.chunks_local, fx->m.n);
        assert_int_equal(t.chunks_fetched, 0);

        p = path_join(fx->root, "sub/copy.bin");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_size, 1 << 20);
        assert_int_equal(st.st_mode & 0777, 0755);
        assert_int_equal(st.st_mtim.tv_sec, 1763761956);
        assert_int_equal(st.st_mtim.tv_nsec, 123456789);
        assert_int_equal(localfs_hash_file(fx->root, "sub/copy.bin", &h), 0);
        assert_true(hash_equal(&h, &fx->m.file_hash));
        q = path_join(fx->root, "empty.txt");
        assert_int_equal(lstat(q, &st), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        assert_int_equal(count_temp(fx->root), 0);
        assert_int_equal(count_temp(sub), 0);
        free(p);
        free(q);
        free(sub);
        dl_job_free(&jobs[0]);
        dl_job_free(&jobs[1]);
}

static void test_hash_mismatch_is_not_put_in_place(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        struct dl_job job;
        char *p;

        memset(&job, 0, sizeof(job));
        job.path = strdup("bad.bin");
        copy_manifest(&job.m, &fx->m);
        job.m.file_hash.b[0] ^= 1; /* a lying manifest */
        job.mode = 0644;
        assert_int_equal(transfer_download(&t, &job, 1, &hooks), -EBADMSG);
        assert_int_equal(fx->done_calls, 0);
        p = path_join(fx->root, "bad.bin");
        assert_int_equal(access(p, F_OK), -1);
        assert_int_equal(count_temp(fx->root), 0);
        free(p);
        dl_job_free(&job);
}

static void test_replaces_existing_file_atomically(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        struct dl_job job;
        struct stat st;
        char *p;
        FILE *f;

        memset(&job, 0, sizeof(job));
        p = path_join(fx->root, "old.bin");
        f = fopen(p, "w");
        assert_non_null(f);
        fputs("old content", f);
        fclose(f);
        job.path = strdup("old.bin");
        copy_manifest(&job.m, &fx->m);
        job.mode = 0644;
        assert_int_equal(transfer_download(&t, &job, 1, &hooks), 0);
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_size, 1 << 20);
        assert_int_equal(fx->done_st.st_ino, st.st_ino);
        free(p);
        dl_job_free(&job);
}

/* Jobs for n small files: even ones empty, odd ones the first chunk of
 * src.bin, each under its own name. */
static struct dl_job *small_jobs(struct fixture *fx, size_t n)
{
        struct dl_job *jobs = calloc(n, sizeof(*jobs));
        const struct chunk_ref *c0 = &fx->m.chunks[0];
        uint8_t *buf = malloc(c0->size);
        struct hash h;
        char *src = path_join(fx->root, "src.bin");
        int fd = open(src, O_RDONLY);

        assert_non_null(jobs);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, buf, c0->size, 0), (ssize_t)c0->size);
        close(fd);
        assert_int_equal(manifest_file_hash_of(buf, c0->size, &h), 0);
        for (size_t i = 0; i < n; i++) {
                assert_true(asprintf(&jobs[i].path, "f%03zu.bin", i) > 0);
                jobs[i].mode = 0644;
                jobs[i].mtime_ns = 1000000000LL * 1600000000 + (int64_t)i;
                if (i % 2) {
                        assert_int_equal(manifest_add(&jobs[i].m, &c0->hash, c0->size), 0);
                        jobs[i].m.file_hash = h;
                } else {
                        hash_buf(NULL, 0, &jobs[i].m.file_hash);
                }
        }
        free(buf);
        free(src);
        return jobs;
}

static int count_renamed(void *ud, struct dl_job *j)
{
        struct fixture *fx = ud;
        int k = atoi(j->path + 1);

        if (k == fx->fail_at)
                return -EINTR;
        fx->renames++;
        return 0;
}

/* More files than are made durable together: every one is verified, put in
 * place with its content and mtime, and reported once. */
static void test_many_small_files(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.before_rename = count_renamed, .done = done, .ud = fx};
        const size_t n = 301;
        struct dl_job *jobs = small_jobs(fx, n);
        struct stat st;

        fx->fail_at = -1;
        assert_int_equal(transfer_download(&t, jobs, n, &hooks), 0);
        assert_int_equal(fx->done_calls, (int)n);
        assert_int_equal(fx->renames, (int)n);
        for (size_t i = 0; i < n; i++) {
                char *p = path_join(fx->root, jobs[i].path);

                assert_int_equal(lstat(p, &st), 0);
                assert_int_equal((uint64_t)st.st_size, jobs[i].m.size);
                assert_int_equal(st.st_mtim.tv_nsec, (long)i);
                free(p);
                dl_job_free(&jobs[i]);
        }
        assert_int_equal(count_temp(fx->root), 0);
        free(jobs);
}

/* A hook refusing one file stops the download there: the files before it
 * are in place and reported, the ones after are not touched, and no
 * temporary file is left. */
static void test_refused_rename_stops_cleanly(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.before_rename = count_renamed, .done = done, .ud = fx};
        const size_t n = 200;
        struct dl_job *jobs = small_jobs(fx, n);
        struct stat st;

        fx->fail_at = 150;
        assert_int_equal(transfer_download(&t, jobs, n, &hooks), -EINTR);
        assert_int_equal(fx->done_calls, 150);
        for (size_t i = 0; i < n; i++) {
                char *p = path_join(fx->root, jobs[i].path);

                assert_int_equal(lstat(p, &st) == 0, i < 150);
                free(p);
                dl_job_free(&jobs[i]);
        }
        assert_int_equal(count_temp(fx->root), 0);
        free(jobs);
}

/* A resumable source: BIG_SIZE bytes of pseudo-random data in big.bin,
 * whose chunks the index records (all, or the first `indexed` of them), so
 * that a download takes them locally and chunks_local counts what it had
 * to obtain. */
#define BIG_SIZE (9u * 1024u * 1024u)

static uint8_t *make_big(struct fixture *fx, struct manifest *m, size_t indexed)
{
        uint8_t *data = malloc(BIG_SIZE);
        struct index_entry e = {0};
        struct manifest part = {0};
        uint64_t x = 88172645463325252ull;
        char *p = path_join(fx->root, "big.bin");
        struct stat st;
        int fd;

        assert_non_null(data);
        for (size_t i = 0; i < BIG_SIZE; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data[i] = (uint8_t)x;
        }
        fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, BIG_SIZE), (ssize_t)BIG_SIZE);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(manifest_from_fd(fd, m, NULL, NULL), 0);
        assert_true(m->n > 20);
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        localfs_entry_stat(&e, &st);
        e.path = "big.bin";
        e.hash = m->file_hash;
        e.seq = 2;
        for (size_t i = 0; i < indexed && i < m->n; i++)
                assert_int_equal(manifest_add(&part, &m->chunks[i].hash, m->chunks[i].size), 0);
        assert_int_equal(index_put(fx->idx, &e, &part), 0);
        manifest_free(&part);
        free(p);
        return data;
}

static uint64_t chunk_off(const struct manifest *m, size_t k)
{
        uint64_t off = 0;

        for (size_t i = 0; i < k; i++)
                off += m->chunks[i].size;
        return off;
}

/* Writes the resume file of path: len bytes of data, then tail bytes of
 * garbage. */
static void put_partial(struct fixture *fx, const char *path, const uint8_t *data, size_t len,
                        size_t tail)
{
        char name[LOCALFS_RESUME_NAME_LEN + 1];
        char *p;
        int fd;

        localfs_resume_name(path, name);
        assert_true(localfs_is_resume_name(name));
        p = path_join(fx->root, name);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        for (size_t i = 0; i < tail; i++)
                assert_int_equal(write(fd, "\xa5", 1), 1);
        close(fd);
        free(p);
}

static off_t partial_size(struct fixture *fx, const char *path)
{
        char name[LOCALFS_RESUME_NAME_LEN + 1];
        struct stat st;
        char *p;
        int r;

        localfs_resume_name(path, name);
        p = path_join(fx->root, name);
        r = lstat(p, &st);
        free(p);
        return r == 0 ? st.st_size : -1;
}

static void big_job(struct dl_job *j, const char *path, const struct manifest *m)
{
        memset(j, 0, sizeof(*j));
        j->path = strdup(path);
        copy_manifest(&j->m, m);
        j->m.size = m->size;
        j->mode = 0644;
        j->mtime_ns = INT64_C(1600000000000000000);
}

static void assert_big_in_place(struct fixture *fx, const char *path, const struct manifest *m)
{
        struct hash h;

        assert_int_equal(localfs_hash_file(fx->root, path, &h), 0);
        assert_true(hash_equal(&h, &m->file_hash));
        assert_int_equal(count_temp(fx->root), 0);
}

/* K verified chunks and a garbage tail: only the chunks after K are
 * obtained, and the result verifies. */
static void test_resume_keeps_verified_prefix(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        struct manifest m = {0};
        uint8_t *data = make_big(fx, &m, SIZE_MAX);
        size_t k = m.n / 2;
        struct dl_job job;

        put_partial(fx, "dst.bin", data, chunk_off(&m, k), 100000);
        big_job(&job, "dst.bin", &m);
        assert_int_equal(transfer_download(&t, &job, 1, &hooks), 0);
        assert_int_equal(fx->done_calls, 1);
        assert_int_equal(t.chunks_local, m.n - k);
        assert_int_equal(t.chunks_fetched, 0);
        assert_big_in_place(fx, "dst.bin", &m);
        dl_job_free(&job);
        manifest_free(&m);
        free(data);
}

/* A corrupted chunk in the middle: that chunk and all after it are
 * obtained again, the ones before it are kept. A complete and correct
 * partial file needs nothing at all. */
static void test_resume_refetches_from_corrupt_chunk(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        struct manifest m = {0};
        uint8_t *data = make_big(fx, &m, SIZE_MAX);
        size_t bad = m.n / 3;
        struct dl_job job;

        data[chunk_off(&m, bad) + m.chunks[bad].size / 2] ^= 0x40;
        put_partial(fx, "dst.bin", data, BIG_SIZE, 0);
        data[chunk_off(&m, bad) + m.chunks[bad].size / 2] ^= 0x40;
        big_job(&job, "dst.bin", &m);
        assert_int_equal(transfer_download(&t, &job, 1, &hooks), 0);
        assert_int_equal(t.chunks_local, m.n - bad);
        assert_big_in_place(fx, "dst.bin", &m);
        dl_job_free(&job);

        put_partial(fx, "again.bin", data, BIG_SIZE, 0);
        big_job(&job, "again.bin", &m);
        t.chunks_local = 0;
        assert_int_equal(transfer_download(&t, &job, 1, &hooks), 0);
        assert_int_equal(t.chunks_local, 0);
        assert_big_in_place(fx, "again.bin", &m);
        dl_job_free(&job);
        manifest_free(&m);
        free(data);
}

/* A download cut off by the network keeps what it wrote, in the file the
 * next download of that path resumes; that one obtains only the rest. */
static void test_interrupted_download_resumes(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        struct manifest m = {0};
        uint8_t *data = make_big(fx, &m, 0);
        struct remote *dead = NULL;
        struct index_entry e = {0};
        struct dl_job job;
        off_t kept;
        size_t k = 0;
        struct stat st;
        char *p;

        /* only the first ~half can be found locally; the rest needs a
         * server that is not there */
        while (chunk_off(&m, k + 1) <= BIG_SIZE / 2)
                k++;
        {
                struct manifest half = {0};

                for (size_t i = 0; i < k; i++)
                        assert_int_equal(manifest_add(&half, &m.chunks[i].hash, m.chunks[i].size),
                                         0);
                p = path_join(fx->root, "big.bin");
                assert_int_equal(lstat(p, &st), 0);
                localfs_entry_stat(&e, &st);
                e.path = "big.bin";
                e.hash = m.file_hash;
                assert_int_equal(index_put(fx->idx, &e, &half), 0);
                manifest_free(&half);
        }
        assert_int_equal(remote_new("http://127.0.0.1:1", "token", &dead), 0);
        t.remote = dead;
        big_job(&job, "dst.bin", &m);
        assert_true(transfer_download(&t, &job, 1, &hooks) < 0);
        assert_int_equal(fx->done_calls, 0);
        kept = partial_size(fx, "dst.bin");
        assert_true(kept > 0);
        assert_true((uint64_t)kept <= chunk_off(&m, k));
        {
                char *dst = path_join(fx->root, "dst.bin");

                assert_int_equal(access(dst, F_OK), -1);
                free(dst);
        }

        /* now every chunk is at hand: the rerun takes only what is missing */
        assert_int_equal(index_put(fx->idx, &e, &m), 0);
        t.chunks_local = 0;
        assert_int_equal(transfer_download(&t, &job, 1, &hooks), 0);
        {
                size_t have = 0;

                while (have < m.n && chunk_off(&m, have + 1) <= (uint64_t)kept)
                        have++;
                assert_int_equal(chunk_off(&m, have), (uint64_t)kept);
                assert_int_equal(t.chunks_local, m.n - have);
        }
        assert_big_in_place(fx, "dst.bin", &m);
        remote_free(dead);
        dl_job_free(&job);
        manifest_free(&m);
        free(p);
        free(data);
}

/* A resume name that is a hard link to some other file is not written
 * through: the other file keeps its content. */
static void test_resume_never_writes_through_a_link(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.root = fx->root, .idx = fx->idx};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        struct manifest m = {0};
        uint8_t *data = make_big(fx, &m, SIZE_MAX);
        char name[LOCALFS_RESUME_NAME_LEN + 1];
        char *victim = path_join(fx->root, "victim.txt"), *link_at;
        struct dl_job job;
        struct stat st;
        FILE *f = fopen(victim, "w");

        assert_non_null(f);
        fputs("keep me", f);
        fclose(f);
        localfs_resume_name("dst.bin", name);
        link_at = path_join(fx->root, name);
        assert_int_equal(link(victim, link_at), 0);
        big_job(&job, "dst.bin", &m);
        assert_int_equal(transfer_download(&t, &job, 1, &hooks), 0);
        assert_int_equal(lstat(victim, &st), 0);
        assert_int_equal(st.st_size, 7);
        assert_big_in_place(fx, "dst.bin", &m);
        free(victim);
        free(link_at);
        dl_job_free(&job);
        manifest_free(&m);
        free(data);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_assemble_from_local_chunks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hash_mismatch_is_not_put_in_place, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_replaces_existing_file_atomically, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_many_small_files, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refused_rename_stops_cleanly, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resume_keeps_verified_prefix, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resume_refetches_from_corrupt_chunk, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_interrupted_download_resumes, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resume_never_writes_through_a_link, setup,
                                            teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
