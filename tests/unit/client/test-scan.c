/* Unit tests for scan: new, modified, unchanged (not re-read), racy,
 * touched, deleted, renamed, nested and empty directories, symlinks (not
 * followed), the executable bit, kind changes, skipped names (.ferry, temp
 * files, invalid names, fifos), the missing-root refusal, and the targeted
 * scan of given paths (scan_paths). Each test works
 * in its own temporary folder with a real index in .ferry/. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "scan.h"
#include "testutil.h"

struct fixture {
        char root[1024];
        struct index *idx;
        int64_t seq; /* the "server" seq handed out by commit_all */
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        char p[1200];

        if (f == NULL)
                return -1;
        if (testutil_mkdtemp(f->root, sizeof(f->root), "scan") < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry", f->root);
        if (mkdir(p, 0700) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry/index.db", f->root);
        if (index_open(p, &f->idx) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        index_close(f->idx);
        testutil_rm_rf(f->root);
        free(f);
        return 0;
}

static const char *at(struct fixture *f, const char *rel)
{
        static char p[2048];

        snprintf(p, sizeof(p), "%s/%s", f->root, rel);
        return p;
}

static void put_file(struct fixture *f, const char *rel, const char *content)
{
        int fd = open(at(f, rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
}

/* Moves rel's mtime into the past so that its index entry is not racy. */
static void age(struct fixture *f, const char *rel, int seconds)
{
        struct timespec ts[2];

        clock_gettime(CLOCK_REALTIME, &ts[0]);
        ts[0].tv_sec -= seconds;
        ts[1] = ts[0];
        assert_int_equal(utimensat(AT_FDCWD, at(f, rel), ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void scan(struct fixture *f, struct scan_result *r)
{
        int rc = scan_folder(f->root, f->idx, r);

        if (rc < 0)
                print_error("scan: %s\n", err_msg(rc));
        assert_int_equal(rc, 0);
}

static struct local_change *find(struct scan_result *r, const char *path)
{
        size_t i;

        for (i = 0; i < r->n; i++)
                if (strcmp(r->changes[i].path, path) == 0)
                        return &r->changes[i];
        return NULL;
}

/* Records every change in the index as the sync module does after the
 * server accepted it, then frees r. */
static void commit_all(struct fixture *f, struct scan_result *r)
{
        size_t i;

        assert_int_equal(index_begin(f->idx), 0);
        for (i = 0; i < r->n; i++) {
                struct local_change *c = &r->changes[i];
                struct index_entry e = {0};

                if (c->op == CHANGE_DELETE) {
                        assert_int_equal(index_delete(f->idx, c->path), 0);
                        continue;
                }
                if (c->op == CHANGE_RENAME)
                        assert_int_equal(index_delete(f->idx, c->from), 0);
                e.path = c->path;
                e.kind = c->kind;
                e.size = c->size;
                e.mtime_ns = c->mtime_ns;
                e.ctime_ns = c->ctime_ns;
                e.ino = c->ino;
                e.mode = c->mode;
                e.hash = c->manifest.file_hash;
                e.target = c->target;
                e.seq = ++f->seq;
                e.recorded_ns = r->started_ns;
                assert_int_equal(index_put(f->idx, &e, &c->manifest), 0);
        }
        assert_int_equal(index_commit(f->idx), 0);
        scan_result_free(r);
}

static void test_new_nested_empty(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        struct local_change *c;
        struct hash h;
        size_t i;

        put_file(f, "a.txt", "hello");
        assert_int_equal(mkdir(at(f, "x"), 0755), 0);
        assert_int_equal(mkdir(at(f, "x/y"), 0755), 0);
        assert_int_equal(mkdir(at(f, "empty"), 0755), 0);
        put_file(f, "x/y/deep file ü.txt", "deep");
        put_file(f, "x/.hidden", "");

        scan(f, &r);
        assert_int_equal(r.n, 6);
        assert_int_equal(r.entries_seen, 6);
        assert_int_equal(r.deletes, 0);
        assert_true(r.started_ns > 0);
        for (i = 0; i < r.n; i++) {
                assert_int_equal(r.changes[i].op, CHANGE_PUT);
                assert_int_equal(r.changes[i].base, 0);
                if (i > 0) /* path order: parents first */
                        assert_true(strcmp(r.changes[i - 1].path, r.changes[i].path) < 0);
        }
        assert_string_equal(r.changes[0].path, "a.txt");
        assert_string_equal(r.changes[1].path, "empty");
        assert_string_equal(r.changes[2].path, "x");
        assert_string_equal(r.changes[3].path, "x/.hidden");
        assert_string_equal(r.changes[4].path, "x/y");
        assert_string_equal(r.changes[5].path, "x/y/deep file ü.txt");

        c = &r.changes[0];
        assert_int_equal(c->kind, KIND_FILE);
        assert_int_equal(c->size, 5);
        assert_int_equal(c->mode, 0644);
        assert_int_equal(manifest_file_hash_of("hello", 5, &h), 0);
        assert_true(hash_equal(&c->manifest.file_hash, &h));
        assert_int_equal(c->manifest.n, 1);
        assert_int_equal(c->manifest.size, 5);
        assert_true(c->mtime_ns > 0 && c->ino > 0);
        c = find(&r, "empty");
        assert_int_equal(c->kind, KIND_DIR);
        assert_int_equal(c->mode, 0);
        c = find(&r, "x/.hidden");
        assert_int_equal(c->size, 0);
        assert_int_equal(c->manifest.n, 0);
        commit_all(f, &r);

        /* a second scan finds nothing */
        scan(f, &r);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.entries_seen, 6);
        scan_result_free(&r);
}

static void test_skips(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;

        assert_int_equal(mkdir(at(f, "d"), 0755), 0);
        put_file(f, ".ferry/other", "state");
        put_file(f, ".ferry-tmp-abc123", "partial");
        put_file(f, "d/.ferry-tmp-x", "partial");
        put_file(f, "back\\slash", "invalid name");
        put_file(f, "ctl\x01name", "invalid name");
        assert_int_equal(mkfifo(at(f, "d/fifo"), 0644), 0);
        put_file(f, "ok", "ok");

        scan(f, &r);
        assert_int_equal(r.n, 2);
        assert_string_equal(r.changes[0].path, "d");
        assert_string_equal(r.changes[1].path, "ok");
        assert_int_equal(r.entries_seen, 2);
        scan_result_free(&r);
}

static void test_unchanged_not_read_and_racy(void **state)
{
        struct fixture *f = *state;
        struct index_entry e;
        struct scan_result r;
        struct local_change *c;
        struct stat st;
        int64_t recorded;

        put_file(f, "f.txt", "aaaa");
        age(f, "f.txt", 100);
        scan(f, &r);
        assert_int_equal(r.n, 1);
        commit_all(f, &r);

        /* Same size rewrite; then make the index claim the *new* stat goes
         * with the *old* content, as happens when a rewrite lands in the
         * same clock tick as the recorded stat. */
        put_file(f, "f.txt", "bbbb");
        age(f, "f.txt", 100);
        assert_int_equal(lstat(at(f, "f.txt"), &st), 0);
        assert_int_equal(index_get(f->idx, "f.txt", &e), 0);
        e.size = (uint64_t)st.st_size;
        e.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        e.ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
        e.ino = st.st_ino;

        /* recorded long after the mtime: the stat is trusted, the file is
         * not read, so the (real) change is invisible — proof that
         * unchanged files are not re-hashed */
        recorded = e.mtime_ns + 50LL * 1000000000LL;
        e.recorded_ns = recorded;
        assert_int_equal(index_put(f->idx, &e, NULL), 0);
        scan(f, &r);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);
        index_entry_free(&e);
        assert_int_equal(index_get(f->idx, "f.txt", &e), 0);
        assert_true(e.recorded_ns == recorded); /* not even refreshed */

        /* recorded within a second of the mtime: racy, so it is hashed and
         * the same-size rewrite is found */
        e.recorded_ns = e.mtime_ns + 500000000LL;
        assert_int_equal(index_put(f->idx, &e, NULL), 0);
        scan(f, &r);
        assert_int_equal(r.n, 1);
        c = &r.changes[0];
        assert_int_equal(c->op, CHANGE_PUT);
        assert_int_equal(c->base, e.seq);
        assert_int_equal(c->size, 4);
        struct hash h;
        assert_int_equal(manifest_file_hash_of("bbbb", 4, &h), 0);
        assert_true(hash_equal(&c->manifest.file_hash, &h));
        index_entry_free(&e);
        commit_all(f, &r);
}

static void test_modified_same_second(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        struct hash h;

        /* the plain case, with no stat games: write, sync, rewrite at once */
        put_file(f, "g.txt", "1111");
        scan(f, &r);
        commit_all(f, &r);
        put_file(f, "g.txt", "2222");
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.changes[0].op, CHANGE_PUT);
        assert_int_equal(r.changes[0].base, f->seq);
        assert_int_equal(manifest_file_hash_of("2222", 4, &h), 0);
        assert_true(hash_equal(&r.changes[0].manifest.file_hash, &h));
        commit_all(f, &r);

        /* and a racy but unchanged file is no change */
        scan(f, &r);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);
}

static void test_touch_refreshes_index(void **state)
{
        struct fixture *f = *state;
        struct index_entry before, after;
        struct scan_result r;

        put_file(f, "t.txt", "same");
        age(f, "t.txt", 100);
        scan(f, &r);
        commit_all(f, &r);
        assert_int_equal(index_get(f->idx, "t.txt", &before), 0);

        age(f, "t.txt", 50); /* a touch: new mtime and ctime, same bytes */
        scan(f, &r);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);
        assert_int_equal(index_get(f->idx, "t.txt", &after), 0);
        assert_true(after.mtime_ns != before.mtime_ns);
        assert_int_equal(after.seq, before.seq);
        assert_true(hash_equal(&after.hash, &before.hash));
        index_entry_free(&before);
        index_entry_free(&after);

        /* and the chunk records survived the refresh */
        char *p = NULL;
        uint64_t off = 1;
        struct hash h;
        hash_buf("same", 4, &h); /* a chunk is named by its bytes */
        assert_int_equal(index_find_chunk(f->idx, &h, &p, &off), 0);
        assert_string_equal(p, "t.txt");
        assert_int_equal(off, 0);
        free(p);
}

static void test_delete_order(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        int64_t seq_a;

        assert_int_equal(mkdir(at(f, "d"), 0755), 0);
        assert_int_equal(mkdir(at(f, "d/e"), 0755), 0);
        put_file(f, "d/e/1", "1");
        put_file(f, "d/2", "2");
        put_file(f, "keep", "keep");
        scan(f, &r);
        commit_all(f, &r);
        struct index_entry e;
        assert_int_equal(index_get(f->idx, "d/e/1", &e), 0);
        seq_a = e.seq;
        index_entry_free(&e);

        assert_int_equal(unlink(at(f, "d/e/1")), 0);
        assert_int_equal(unlink(at(f, "d/2")), 0);
        assert_int_equal(rmdir(at(f, "d/e")), 0);
        assert_int_equal(rmdir(at(f, "d")), 0);
        scan(f, &r);
        assert_int_equal(r.n, 4);
        assert_int_equal(r.deletes, 4);
        assert_int_equal(r.entries_seen, 1);
        /* deepest first: children before their parent */
        assert_string_equal(r.changes[0].path, "d/e/1");
        assert_string_equal(r.changes[1].path, "d/e");
        assert_string_equal(r.changes[2].path, "d/2");
        assert_string_equal(r.changes[3].path, "d");
        assert_int_equal(r.changes[0].op, CHANGE_DELETE);
        assert_int_equal(r.changes[0].base, seq_a);
        assert_int_equal(r.changes[3].kind, KIND_DIR);
        commit_all(f, &r);
        scan(f, &r);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);
}

static void test_rename(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        struct local_change *c;
        int64_t seq_a;

        put_file(f, "a.txt", "content A");
        put_file(f, "twin1", "same");
        put_file(f, "twin2", "same");
        scan(f, &r);
        commit_all(f, &r);
        struct index_entry e;
        assert_int_equal(index_get(f->idx, "a.txt", &e), 0);
        seq_a = e.seq;
        index_entry_free(&e);

        assert_int_equal(mkdir(at(f, "sub"), 0755), 0);
        char from[2048];
        snprintf(from, sizeof(from), "%s", at(f, "a.txt"));
        assert_int_equal(rename(from, at(f, "sub/b.txt")), 0);
        /* two identical files renamed: each old path used once */
        snprintf(from, sizeof(from), "%s", at(f, "twin1"));
        assert_int_equal(rename(from, at(f, "twin3")), 0);
        snprintf(from, sizeof(from), "%s", at(f, "twin2"));
        assert_int_equal(rename(from, at(f, "twin4")), 0);

        scan(f, &r);
        assert_int_equal(r.deletes, 0);
        assert_int_equal(r.n, 4);
        assert_string_equal(r.changes[0].path, "sub");
        assert_int_equal(r.changes[0].op, CHANGE_PUT);
        c = find(&r, "sub/b.txt");
        assert_non_null(c);
        assert_int_equal(c->op, CHANGE_RENAME);
        assert_string_equal(c->from, "a.txt");
        assert_int_equal(c->base, seq_a);
        c = find(&r, "twin3");
        assert_int_equal(c->op, CHANGE_RENAME);
        struct local_change *d = find(&r, "twin4");
        assert_int_equal(d->op, CHANGE_RENAME);
        assert_string_not_equal(c->from, d->from);
        commit_all(f, &r);

        /* a copy with another mtime plus a delete is not a rename */
        snprintf(from, sizeof(from), "%s", at(f, "twin3"));
        assert_int_equal(unlink(from), 0);
        put_file(f, "copy", "same");
        age(f, "copy", 10);
        scan(f, &r);
        assert_int_equal(r.n, 2);
        assert_int_equal(find(&r, "copy")->op, CHANGE_PUT);
        assert_int_equal(find(&r, "twin3")->op, CHANGE_DELETE);
        scan_result_free(&r);
}

static void test_symlinks(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        struct local_change *c;

        assert_int_equal(mkdir(at(f, "dir"), 0755), 0);
        put_file(f, "dir/in", "x");
        assert_int_equal(symlink("dir", at(f, "ln-dir")), 0);
        assert_int_equal(symlink("/etc/passwd", at(f, "ln-out")), 0);
        assert_int_equal(symlink("nowhere", at(f, "ln-dangling")), 0);
        scan(f, &r);
        assert_int_equal(r.n, 5); /* dir, dir/in, three links; ln-dir not entered */
        c = find(&r, "ln-dir");
        assert_int_equal(c->kind, KIND_SYMLINK);
        assert_string_equal(c->target, "dir");
        assert_int_equal(c->mode, 0);
        assert_int_equal(c->manifest.n, 0);
        assert_string_equal(find(&r, "ln-out")->target, "/etc/passwd");
        assert_string_equal(find(&r, "ln-dangling")->target, "nowhere");
        assert_null(find(&r, "ln-dir/in"));
        commit_all(f, &r);

        scan(f, &r);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);

        /* retargeted */
        assert_int_equal(unlink(at(f, "ln-dangling")), 0);
        assert_int_equal(symlink("elsewhere", at(f, "ln-dangling")), 0);
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.changes[0].op, CHANGE_PUT);
        assert_string_equal(r.changes[0].target, "elsewhere");
        assert_true(r.changes[0].base > 0);
        scan_result_free(&r);
}

static void test_exec_bit_and_kind_change(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        struct index_entry e;

        put_file(f, "run.sh", "#!/bin/sh\n");
        put_file(f, "becomes-dir", "x");
        scan(f, &r);
        commit_all(f, &r);
        assert_int_equal(index_get(f->idx, "run.sh", &e), 0);

        assert_int_equal(chmod(at(f, "run.sh"), 0700), 0);
        assert_int_equal(unlink(at(f, "becomes-dir")), 0);
        assert_int_equal(mkdir(at(f, "becomes-dir"), 0755), 0);
        scan(f, &r);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.deletes, 0);
        struct local_change *c = find(&r, "run.sh");
        assert_int_equal(c->op, CHANGE_PUT);
        assert_int_equal(c->mode, 0755);
        assert_int_equal(c->base, e.seq);
        assert_true(hash_equal(&c->manifest.file_hash, &e.hash));
        c = find(&r, "becomes-dir");
        assert_int_equal(c->op, CHANGE_PUT);
        assert_int_equal(c->kind, KIND_DIR);
        assert_true(c->base > 0); /* replaces the file's entry */
        index_entry_free(&e);
        commit_all(f, &r);

        assert_int_equal(chmod(at(f, "run.sh"), 0644), 0);
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.changes[0].mode, 0644);
        scan_result_free(&r);
}

static void test_missing_root(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        char gone[1100];
        int rc;

        put_file(f, "a", "a");
        scan(f, &r);
        commit_all(f, &r);

        snprintf(gone, sizeof(gone), "%s/not-there", f->root);
        rc = scan_folder(gone, f->idx, &r);
        assert_int_equal(rc, -ENOENT);
        assert_int_equal(r.n, 0);
        assert_null(r.changes);
        assert_non_null(strstr(err_msg(rc), "refusing to sync so nothing is deleted"));
        assert_non_null(strstr(err_msg(rc), "not-there"));

        /* a file where the folder should be */
        rc = scan_folder(at(f, "a"), f->idx, &r);
        assert_int_equal(rc, -ENOENT);
        assert_int_equal(r.n, 0);
}

static void scan_some(struct fixture *f, struct scan_result *r, const char *const *paths, size_t n)
{
        int rc = scan_paths(f->root, f->idx, paths, n, r);

        if (rc < 0)
                print_error("scan_paths: %s\n", err_msg(rc));
        assert_int_equal(rc, 0);
}

/* scan_paths looks only at the paths given: other changes wait. */
static void test_paths_only_those(void **state)
{
        struct fixture *f = *state;
        const char *const one[] = {"a.txt"}, *const none[] = {"x"};
        struct scan_result r;

        assert_int_equal(mkdir(at(f, "d"), 0755), 0);
        put_file(f, "a.txt", "a");
        put_file(f, "d/b.txt", "b");
        scan(f, &r);
        commit_all(f, &r);
        put_file(f, "a.txt", "a, changed");
        put_file(f, "d/b.txt", "b, changed");
        scan_some(f, &r, one, 1);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.changes[0].path, "a.txt");
        assert_int_equal(r.changes[0].op, CHANGE_PUT);
        assert_true(r.changes[0].base > 0);
        commit_all(f, &r);
        /* nothing there, nothing known: no change */
        scan_some(f, &r, none, 1);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);
        /* the whole folder still sees d/b.txt */
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.changes[0].path, "d/b.txt");
        scan_result_free(&r);
}

/* A directory path covers its subtree: deletes deepest first; a file whose
 * parent is gone is a delete too. */
static void test_paths_deletes(void **state)
{
        struct fixture *f = *state;
        const char *const dir[] = {"d"}, *const deep[] = {"p/q/r"};
        struct scan_result r;

        assert_int_equal(mkdir(at(f, "d"), 0755), 0);
        assert_int_equal(mkdir(at(f, "d/e"), 0755), 0);
        assert_int_equal(mkdir(at(f, "p"), 0755), 0);
        assert_int_equal(mkdir(at(f, "p/q"), 0755), 0);
        put_file(f, "d/e/1", "1");
        put_file(f, "d/2", "2");
        put_file(f, "p/q/r", "r");
        scan(f, &r);
        commit_all(f, &r);
        assert_int_equal(unlink(at(f, "d/e/1")), 0);
        assert_int_equal(unlink(at(f, "d/2")), 0);
        assert_int_equal(rmdir(at(f, "d/e")), 0);
        assert_int_equal(rmdir(at(f, "d")), 0);
        scan_some(f, &r, dir, 1);
        assert_int_equal(r.n, 4);
        assert_int_equal(r.deletes, 4);
        assert_string_equal(r.changes[0].path, "d/e/1");
        assert_string_equal(r.changes[3].path, "d");
        commit_all(f, &r);

        assert_int_equal(unlink(at(f, "p/q/r")), 0);
        assert_int_equal(rmdir(at(f, "p/q")), 0);
        scan_some(f, &r, deep, 1);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.changes[0].path, "p/q/r");
        assert_int_equal(r.changes[0].op, CHANGE_DELETE);
        scan_result_free(&r);
}

/* A move names both ends: a rename, not an upload; a new directory is
 * widened to its unknown top so it is put with its content. */
static void test_paths_rename_and_new_tree(void **state)
{
        struct fixture *f = *state;
        const char *const both[] = {"z.txt", "a.txt"}, *const inner[] = {"n/m/f"};
        struct scan_result r;
        char from[2048];

        put_file(f, "a.txt", "moving");
        scan(f, &r);
        commit_all(f, &r);
        snprintf(from, sizeof(from), "%s", at(f, "a.txt"));
        assert_int_equal(rename(from, at(f, "z.txt")), 0);
        scan_some(f, &r, both, 2);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.changes[0].op, CHANGE_RENAME);
        assert_string_equal(r.changes[0].path, "z.txt");
        assert_string_equal(r.changes[0].from, "a.txt");
        commit_all(f, &r);

        assert_int_equal(mkdir(at(f, "n"), 0755), 0);
        assert_int_equal(mkdir(at(f, "n/m"), 0755), 0);
        put_file(f, "n/m/f", "f");
        put_file(f, "n/g", "g");
        scan_some(f, &r, inner, 1);
        assert_int_equal(r.n, 4);
        assert_string_equal(r.changes[0].path, "n");
        assert_string_equal(r.changes[1].path, "n/g");
        assert_string_equal(r.changes[2].path, "n/m");
        assert_string_equal(r.changes[3].path, "n/m/f");
        commit_all(f, &r);
}

/* .ferry/ and temporary names are ignored; "" is the whole folder; nested
 * and repeated paths are scanned once. */
static void test_paths_ignored_and_dedup(void **state)
{
        struct fixture *f = *state;
        const char *const junk[] = {".ferry/index.db", ".ferry", "x/.ferry-tmp-1"};
        const char *const all[] = {"", "a"};
        const char *const dup[] = {"d/x", "d", "d", "d/x"};
        struct scan_result r;

        put_file(f, ".ferry-tmp-1", "t");
        put_file(f, "a", "a");
        assert_int_equal(mkdir(at(f, "d"), 0755), 0);
        put_file(f, "d/x", "x");
        scan_some(f, &r, junk, 3);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);
        scan_some(f, &r, dup, 4);
        assert_int_equal(r.n, 2);
        assert_string_equal(r.changes[0].path, "d");
        assert_string_equal(r.changes[1].path, "d/x");
        scan_result_free(&r);
        scan_some(f, &r, all, 2);
        assert_int_equal(r.n, 3);
        scan_result_free(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_new_nested_empty, setup, teardown),
            cmocka_unit_test_setup_teardown(test_skips, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unchanged_not_read_and_racy, setup, teardown),
            cmocka_unit_test_setup_teardown(test_modified_same_second, setup, teardown),
            cmocka_unit_test_setup_teardown(test_touch_refreshes_index, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delete_order, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
            cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_exec_bit_and_kind_change, setup, teardown),
            cmocka_unit_test_setup_teardown(test_missing_root, setup, teardown),
            cmocka_unit_test_setup_teardown(test_paths_only_those, setup, teardown),
            cmocka_unit_test_setup_teardown(test_paths_deletes, setup, teardown),
            cmocka_unit_test_setup_teardown(test_paths_rename_and_new_tree, setup, teardown),
            cmocka_unit_test_setup_teardown(test_paths_ignored_and_dedup, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
