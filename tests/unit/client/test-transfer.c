/* Unit tests for transfer's download side without a server: when every
 * chunk of a version is already on this device (the index says where), the
 * file is assembled from local copies into a temporary file next to the
 * target, verified, given its mode and mtime and renamed into place; a
 * version whose whole-file hash does not match is never put in place; and
 * no temporary file is left behind either way. */
#include <dirent.h>
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
#include "index.h"
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "transfer.h"

struct fixture {
        char *root;
        struct index *idx;
        struct manifest m; /* of src.bin */
        int done_calls;
        struct stat done_st;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        const char *t = getenv("TMPDIR");
        char *db = NULL, *src = NULL;
        struct index_entry e = {0};
        uint8_t *data;
        struct stat st;
        int fd;

        assert_non_null(fx);
        assert_true(asprintf(&fx->root, "%s/ferry-transfer-XXXXXX", t && *t ? t : "/tmp") > 0);
        assert_non_null(mkdtemp(fx->root));
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
        char *cmd = NULL;

        index_close(fx->idx);
        manifest_free(&fx->m);
        assert_true(asprintf(&cmd, "rm -rf '%s'", fx->root) > 0);
        assert_int_equal(system(cmd), 0);
        free(cmd);
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
        struct dirent *de;
        DIR *d = opendir(dir);
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)) != NULL)
                if (!strncmp(de->d_name, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)))
                        n++;
        closedir(d);
        return n;
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

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_assemble_from_local_chunks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hash_mismatch_is_not_put_in_place, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_replaces_existing_file_atomically, setup,
                                            teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
