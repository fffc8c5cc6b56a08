/* Unit tests for dlfile, the file-system half of downloads: many small
 * files written on several threads land in temporary files beside their
 * targets with the right content, mode and mtime; a file whose content
 * does not match its hash, or that cannot be created, fails the whole call
 * with its message and leaves no temporary file behind; and through
 * transfer_download(), a batch of small files in several folders (the same
 * path twice among them) ends with each file in place, the later version
 * of the doubled path winning. */
#include <dirent.h>
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

#include "dlfile.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "index.h"
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "testutil.h"
#include "transfer.h"

#define NFILES 300
#define NDIRS 7
#define FILE_BYTES 300

struct fixture {
        char *root;
        uint8_t *data;                /* NFILES * FILE_BYTES bytes */
        struct manifest want[NFILES]; /* one chunk each */
        char *paths[NFILES];
        struct dlfile_task tasks[NFILES];
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        fx->root = testutil_mkdtemp_alloc("dlfile");
        assert_non_null(fx->root);
        fx->data = malloc(NFILES * FILE_BYTES);
        assert_non_null(fx->data);
        for (size_t i = 0; i < NFILES * FILE_BYTES; i++)
                fx->data[i] = (uint8_t)((i * 2654435761u) >> 11);
        for (int d = 0; d < NDIRS; d++) {
                char *p = NULL;

                assert_true(asprintf(&p, "%s/d%d", fx->root, d) > 0);
                assert_int_equal(mkdir(p, 0755), 0);
                free(p);
        }
        for (size_t i = 0; i < NFILES; i++) {
                assert_true(asprintf(&fx->paths[i], "d%zu/f%03zu", i * NDIRS / NFILES, i) > 0);
                struct hash h;

                hash_buf(fx->data + i * FILE_BYTES, FILE_BYTES, &h);
                fx->want[i] = (struct manifest)MANIFEST_INIT;
                assert_int_equal(manifest_add(&fx->want[i], &h, FILE_BYTES), 0);
                manifest_file_hash(&fx->want[i], &fx->want[i].file_hash);
                fx->tasks[i] = (struct dlfile_task){.root = fx->root,
                                                    .path = fx->paths[i],
                                                    .data = fx->data + i * FILE_BYTES,
                                                    .len = FILE_BYTES,
                                                    .m = &fx->want[i],
                                                    .mode = i % 3 ? 0644 : 0755,
                                                    .mtime_ns = 1600000000123456789LL + (int64_t)i,
                                                    .tag = i};
        }
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        assert_int_equal(testutil_rm_rf(fx->root), 0);
        for (size_t i = 0; i < NFILES; i++)
                free(fx->paths[i]);
        for (size_t i = 0; i < NFILES; i++)
                manifest_free(&fx->want[i]);
        free(fx->data);
        free(fx->root);
        free(fx);
        return 0;
}

/* Entries of the folder's subfolders whose name starts with prefix. */
static int count_named(const char *root, const char *prefix)
{
        int n = 0;

        for (int d = 0; d < NDIRS; d++) {
                char *p = NULL;
                struct dirent *de;
                DIR *dir;

                assert_true(asprintf(&p, "%s/d%d", root, d) > 0);
                dir = opendir(p);
                assert_non_null(dir);
                while ((de = readdir(dir)) != NULL)
                        if (!strncmp(de->d_name, prefix, strlen(prefix)))
                                n++;
                closedir(dir);
                free(p);
        }
        return n;
}

static void check_written(struct fixture *fx, size_t n)
{
        uint8_t buf[FILE_BYTES + 1];
        struct stat st;
        int fd;

        for (size_t i = 0; i < n; i++) {
                struct dlfile_task *t = &fx->tasks[i];
                char *want_final = path_join(fx->root, fx->paths[i]);
                const char *slash = strrchr(t->tmp, '/');

                assert_string_equal(t->final, want_final);
                assert_int_equal(strncmp(t->tmp, want_final, (size_t)(slash - t->tmp)), 0);
                assert_int_equal(strncmp(slash + 1, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)), 0);
                assert_true(t->fd >= 0);
                fd = open(t->tmp, O_RDONLY);
                assert_true(fd >= 0);
                assert_int_equal(read(fd, buf, sizeof(buf)), FILE_BYTES);
                assert_memory_equal(buf, t->data, FILE_BYTES);
                close(fd);
                assert_int_equal(lstat(t->tmp, &st), 0);
                assert_int_equal(st.st_ino, t->st.st_ino);
                assert_int_equal(st.st_size, FILE_BYTES);
                assert_int_equal(st.st_mode & 0777, i % 3 ? 0644 : 0755);
                assert_int_equal(st.st_mtim.tv_sec, 1600000000);
                assert_int_equal(st.st_mtim.tv_nsec, 123456789 + (long)i);
                assert_int_equal(t->tag, i);
                close(t->fd);
                unlink(t->tmp);
                free(t->tmp);
                free(t->final);
                free(want_final);
        }
}

static void test_write_many_threads(void **state)
{
        struct fixture *fx = *state;

        assert_int_equal(dlfile_write(fx->tasks, NFILES, 3), 0);
        check_written(fx, NFILES);
        assert_int_equal(count_named(fx->root, PATH_TEMP_PREFIX), 0);
}

/* One thread, or fewer tasks or folders than threads. */
static void test_write_one_thread(void **state)
{
        struct fixture *fx = *state;

        assert_int_equal(dlfile_write(fx->tasks, 20, 1), 0);
        check_written(fx, 20);
        /* fewer tasks than are worth threads */
        assert_int_equal(dlfile_write(fx->tasks, 3, 4), 0);
        check_written(fx, 3);
        /* all in one folder: one thread */
        assert_int_equal(dlfile_write(fx->tasks, 40, 2), 0);
        check_written(fx, 40);
}

/* One file of the call does not match its hash: nothing of the call stays,
 * not even the files that verified, and the message names the file. */
static void test_bad_hash_leaves_nothing(void **state)
{
        struct fixture *fx = *state;
        /* a byte of the content differs from what the chunk hash says */
        fx->data[200 * FILE_BYTES + 17] ^= 1;
        err_clear();
        assert_int_equal(dlfile_write(fx->tasks, NFILES, 2), -EBADMSG);
        assert_non_null(strstr(err_msg(-EBADMSG), "d4/f200"));
        assert_non_null(strstr(err_msg(-EBADMSG), "does not match its hash"));
        assert_int_equal(count_named(fx->root, PATH_TEMP_PREFIX), 0);
        for (size_t i = 0; i < NFILES; i++) {
                assert_int_equal(fx->tasks[i].fd, -1);
                assert_null(fx->tasks[i].tmp);
                assert_null(fx->tasks[i].final);
        }
}

/* The first failure in task order is the one reported. */
static void test_create_failure_reported_in_order(void **state)
{
        struct fixture *fx = *state;
        /* the chunk list does not give the file hash */
        fx->want[250].file_hash.b[3] ^= 0x80;
        fx->tasks[100].path = "nodir/f100"; /* its folder does not exist */
        err_clear();
        assert_int_equal(dlfile_write(fx->tasks, NFILES, 2), -ENOENT);
        assert_non_null(strstr(err_msg(-ENOENT), "cannot create"));
        assert_non_null(strstr(err_msg(-ENOENT), "nodir/"));
        assert_int_equal(count_named(fx->root, PATH_TEMP_PREFIX), 0);
}

static void test_finish_fd_defaults(void **state)
{
        struct fixture *fx = *state;
        char *p = path_join(fx->root, "x");
        struct stat st;
        int fd;

        assert_non_null(p);
        fd = open(p, O_RDWR | O_CREAT, 0600);
        assert_true(fd >= 0);
        /* mode 0 means 0644; a negative mtime before 1970 */
        assert_int_equal(dlfile_finish_fd(fd, 0, -1500000000LL), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        assert_int_equal(st.st_mtim.tv_sec, -2);
        assert_int_equal(st.st_mtim.tv_nsec, 500000000);
        close(fd);
        free(p);
}

static void test_dirs_once_each(void **state)
{
        struct fixture *fx = *state;
        struct dlfile_dirs ds = {0};
        char *a = NULL, *b = NULL;

        assert_true(asprintf(&a, "%s/d1/f1", fx->root) > 0);
        assert_true(asprintf(&b, "%s/d1/f2", fx->root) > 0);
        assert_int_equal(dlfile_dirs_add(&ds, a), 0);
        assert_int_equal(dlfile_dirs_add(&ds, b), 0);
        free(a);
        free(b);
        assert_true(asprintf(&a, "%s/d10/f1", fx->root) > 0); /* d1 is a prefix of d10 */
        assert_int_equal(dlfile_dirs_add(&ds, a), 0);
        free(a);
        assert_int_equal(ds.n, 1 + 0 + 1);
        assert_int_equal(dlfile_dirs_sync(&ds), -ENOENT); /* d10 does not exist */
        dlfile_dirs_free(&ds);
        assert_int_equal(ds.n, 0);
}

/* ---- through transfer_download, chunks taken from a local file ---- */

static int done_count(void *ud, struct dl_job *j, const struct stat *st)
{
        int *n = ud;

        (void)j;
        (void)st;
        (*n)++;
        return 0;
}

/* src.bin holds all of fx->data, indexed as one chunk per FILE_BYTES, so
 * that every job below is assembled from local chunks. Job i writes
 * paths[i] with chunk i, except the last, which writes paths[0] again
 * with another chunk: the later version must win. */
static void download_batch(struct fixture *fx)
{
        struct index_entry e = {0};
        struct manifest m = MANIFEST_INIT;
        struct dl_job jobs[NFILES + 1];
        struct transfer t = {.root = fx->root};
        struct dl_hooks hooks;
        uint8_t buf[FILE_BYTES + 1];
        char *db = NULL, *src = path_join(fx->root, "src.bin");
        int ndone = 0, fd;

        assert_true(asprintf(&db, "%s/index.db", fx->root) > 0);
        assert_int_equal(index_open(db, &t.idx), 0);
        fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, fx->data, NFILES * FILE_BYTES), NFILES * FILE_BYTES);
        close(fd);
        for (size_t i = 0; i < NFILES; i++)
                assert_int_equal(manifest_add(&m, &fx->want[i].chunks[0].hash, FILE_BYTES), 0);
        manifest_file_hash(&m, &m.file_hash);
        e.path = "src.bin";
        e.kind = KIND_FILE;
        e.size = NFILES * FILE_BYTES;
        e.hash = m.file_hash;
        e.seq = 1;
        assert_int_equal(index_put(t.idx, &e, &m), 0);
        memset(jobs, 0, sizeof(jobs));
        for (size_t i = 0; i <= NFILES; i++) {
                size_t c = i < NFILES ? i : NFILES - 1;

                jobs[i].path = strdup(fx->paths[i < NFILES ? i : 0]);
                assert_int_equal(manifest_add(&jobs[i].m, &fx->want[c].chunks[0].hash, FILE_BYTES),
                                 0);
                jobs[i].m.file_hash = fx->want[c].file_hash;
                jobs[i].mode = 0644;
                jobs[i].mtime_ns = 1600000000000000000LL;
                jobs[i].seq = (int64_t)i + 2;
        }
        hooks = (struct dl_hooks){.done = done_count, .ud = &ndone};
        assert_int_equal(transfer_download(&t, jobs, NFILES + 1, &hooks), 0);
        assert_int_equal(ndone, NFILES + 1);
        assert_int_equal(t.chunks_local, NFILES + 1);
        for (size_t i = 0; i < NFILES; i++) {
                char *p = path_join(fx->root, fx->paths[i]);
                size_t c = i == 0 ? NFILES - 1 : i;

                fd = open(p, O_RDONLY);
                assert_true(fd >= 0);
                assert_int_equal(read(fd, buf, sizeof(buf)), FILE_BYTES);
                assert_memory_equal(buf, fx->data + c * FILE_BYTES, FILE_BYTES);
                close(fd);
                free(p);
        }
        assert_int_equal(count_named(fx->root, PATH_TEMP_PREFIX), 0);
        for (size_t i = 0; i <= NFILES; i++)
                dl_job_free(&jobs[i]);
        manifest_free(&m);
        index_close(t.idx);
        free(db);
        free(src);
}

static void test_download_small_files(void **state)
{
        download_batch(*state);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_write_many_threads, setup, teardown),
            cmocka_unit_test_setup_teardown(test_write_one_thread, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_hash_leaves_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_create_failure_reported_in_order, setup, teardown),
            cmocka_unit_test_setup_teardown(test_finish_fd_defaults, setup, teardown),
            cmocka_unit_test_setup_teardown(test_dirs_once_each, setup, teardown),
            cmocka_unit_test_setup_teardown(test_download_small_files, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
