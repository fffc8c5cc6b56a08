/* Unit tests for the scan under the device's rules (scan_options): ignored
 * names skipped (never reported new, changed or deleted, an ignored
 * directory not entered, a synced file that became ignored left alone),
 * the top-level .ferry-backup folder never looked at, held files reported
 * without being read (an 8 GiB sparse file scans at once; a held file seen
 * before is recognised by its held-up row), held directories not reported,
 * a synced file moved to a held name found as a held rename (no delete),
 * and since-last-sync (only what changed after the time is looked at, each
 * entry by itself; held files looked at whatever their times; no deletes,
 * no renames). Each test works in its own temporary folder with a real
 * index in .ferry/. */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "ignore.h"
#include "index.h"
#include "rules.h"
#include "scan.h"
#include "testutil.h"

struct fixture {
        char root[1024];
        struct index *idx;
        struct ignore *ig;
        struct scan_options o;
        int64_t seq;
        int asked; /* hold callback calls */
};

/* The rules of these tests: files ending in .mkv and anything under a
 * folder named "held" are held. */
static int hold(void *ud, const char *path, int kind, uint64_t size, char *why, size_t whylen)
{
        struct fixture *f = ud;
        size_t n = strlen(path);

        (void)size;
        f->asked++;
        if (n > 4 && strcmp(path + n - 4, ".mkv") == 0) {
                snprintf(why, whylen, "type .mkv not selected");
                return 1;
        }
        if (strncmp(path, "held", 4) == 0 && (path[4] == '\0' || path[4] == '/')) {
                snprintf(why, whylen, "%s", kind == KIND_DIR ? "dir held" : "not under Work");
                return 1;
        }
        return 0;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        static const char patterns[] = "*.log\nbuild/\n";
        char p[1200];

        if (f == NULL || testutil_mkdtemp(f->root, sizeof(f->root), "scanrules") < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry", f->root);
        if (mkdir(p, 0700) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry/index.db", f->root);
        if (index_open(p, &f->idx) < 0)
                return -1;
        if (ignore_from_text(patterns, strlen(patterns), "test", &f->ig) < 0)
                return -1;
        f->o.ignore = f->ig;
        f->o.hold = hold;
        f->o.ud = f;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        index_close(f->idx);
        ignore_free(f->ig);
        testutil_rm_rf(f->root);
        free(f);
        return 0;
}

static const char *at(struct fixture *f, const char *rel)
{
        static char p[2][2048];
        static int k;

        k ^= 1;
        snprintf(p[k], sizeof(p[k]), "%s/%s", f->root, rel);
        return p[k];
}

static void put_file(struct fixture *f, const char *rel, const char *content)
{
        int fd = open(at(f, rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
}

static void mkdirs(struct fixture *f, const char *rel)
{
        assert_int_equal(fsutil_mkdirs(at(f, rel), 0), 0);
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
        int rc = scan_folder_opts(f->root, f->idx, &f->o, r);

        if (rc < 0)
                print_error("scan: %s\n", err_msg(rc));
        assert_int_equal(rc, 0);
}

static struct local_change *find(struct scan_result *r, const char *path)
{
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->changes[i].path, path) == 0)
                        return &r->changes[i];
        return NULL;
}

/* Records the changes that are not held in the index, as a round does
 * once the server accepted them, then frees r. */
static void commit_all(struct fixture *f, struct scan_result *r)
{
        assert_int_equal(index_begin(f->idx), 0);
        for (size_t i = 0; i < r->n; i++) {
                struct local_change *c = &r->changes[i];
                struct index_entry e = {0};

                if (c->held)
                        continue;
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

/* Syncs everything that is there now (no rules), aged so nothing is racy. */
static void sync_all(struct fixture *f)
{
        struct scan_result r;

        assert_int_equal(scan_folder(f->root, f->idx, &r), 0);
        commit_all(f, &r);
}

static void test_ignored_never_reported(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;

        mkdirs(f, "build/deep");
        mkdirs(f, "src/build");
        put_file(f, "build/deep/out.o", "object");
        put_file(f, "src/build/x.o", "object");
        put_file(f, "src/main.c", "int main;");
        put_file(f, "app.log", "log");
        put_file(f, "src/trace.log", "log");
        put_file(f, "notes.swp", "swap (a default pattern)");
        put_file(f, ".ferryignore", "*.log\nbuild/\n");
        scan(f, &r);
        assert_int_equal(r.n, 3);
        assert_non_null(find(&r, ".ferryignore")); /* never ignored itself */
        assert_non_null(find(&r, "src"));
        assert_non_null(find(&r, "src/main.c"));
        assert_int_equal(r.entries_seen, 3);
        scan_result_free(&r);

        /* an ignored directory is not entered: an unreadable part of it
         * would not even be noticed; and no hold question is asked about
         * ignored names */
        f->asked = 0;
        scan(f, &r);
        assert_int_equal(f->asked, 3);
        scan_result_free(&r);

        /* the same through the targeted scan (src is new: scanned whole) */
        {
                const char *paths[] = {"build/deep/out.o", "src/trace.log", "app.log"};

                assert_int_equal(scan_paths_opts(f->root, f->idx, &f->o, paths, 3, &r), 0);
                assert_int_equal(r.n, 2);
                assert_non_null(find(&r, "src"));
                assert_non_null(find(&r, "src/main.c"));
                scan_result_free(&r);
        }
}

static void test_synced_then_ignored(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;

        mkdirs(f, "build");
        mkdirs(f, "keep");
        put_file(f, "build/a.o", "synced before the pattern");
        put_file(f, "build/b.o", "synced before the pattern");
        put_file(f, "x.log", "synced before the pattern");
        put_file(f, "keep/k.txt", "kept");
        sync_all(f); /* no options: all synced */
        age(f, "x.log", 100);

        /* now ignored: edits and deletes of them stay here */
        put_file(f, "x.log", "edited, a different size");
        assert_int_equal(unlink(at(f, "build/a.o")), 0);
        scan(f, &r);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.deletes, 0);
        scan_result_free(&r);

        /* the whole ignored folder gone, and the ignored file: still no
         * deletes; a deleted file that is not ignored is one */
        assert_int_equal(testutil_rm_rf(at(f, "build")), 0);
        assert_int_equal(unlink(at(f, "x.log")), 0);
        assert_int_equal(unlink(at(f, "keep/k.txt")), 0);
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.deletes, 1);
        assert_int_equal(r.changes[0].op, CHANGE_DELETE);
        assert_string_equal(r.changes[0].path, "keep/k.txt");
        scan_result_free(&r);
}

static void test_backup_folder_skipped(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;

        mkdirs(f, RULES_BACKUP_PREFIX "/phone");
        put_file(f, RULES_BACKUP_PREFIX "/phone/doc.txt", "backed up");
        mkdirs(f, "x/" RULES_BACKUP_PREFIX);
        put_file(f, "x/" RULES_BACKUP_PREFIX "/y.txt", "only the top one is special");
        assert_int_equal(scan_folder(f->root, f->idx, &r), 0); /* even without options */
        assert_int_equal(r.n, 3);
        assert_null(find(&r, RULES_BACKUP_PREFIX));
        assert_non_null(find(&r, "x/" RULES_BACKUP_PREFIX "/y.txt"));
        scan_result_free(&r);
        {
                const char *paths[] = {RULES_BACKUP_PREFIX "/phone/doc.txt"};

                assert_int_equal(scan_paths_opts(f->root, f->idx, &f->o, paths, 1, &r), 0);
                assert_int_equal(r.n, 0);
                scan_result_free(&r);
        }
}

static void test_held_not_read(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        struct local_change *c;
        struct timespec t0, t1;
        int fd;

        mkdirs(f, "held/sub");
        put_file(f, "held/sub/a.txt", "under a held folder");
        put_file(f, "doc.txt", "synced");
        /* 8 GiB of holes: reading it would take many seconds */
        fd = open(at(f, "film.mkv"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 8LL << 30), 0);
        close(fd);

        clock_gettime(CLOCK_MONOTONIC, &t0);
        scan(f, &r);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec < 3);
        /* held folders are not reported, what is under them is, one by one */
        assert_null(find(&r, "held"));
        assert_null(find(&r, "held/sub"));
        c = find(&r, "held/sub/a.txt");
        assert_non_null(c);
        assert_string_equal(c->held, "not under Work");
        c = find(&r, "film.mkv");
        assert_non_null(c);
        assert_int_equal(c->op, CHANGE_PUT);
        assert_int_equal(c->kind, KIND_FILE);
        assert_string_equal(c->held, "type .mkv not selected");
        assert_int_equal(c->size, 8LL << 30);
        assert_true(c->mtime_ns > 0);
        assert_true(hash_is_zero(&c->manifest.file_hash)); /* not read */
        c = find(&r, "doc.txt");
        assert_non_null(c);
        assert_null(c->held);
        assert_false(hash_is_zero(&c->manifest.file_hash));
        commit_all(f, &r);

        /* held files are not in the index: they are held again next time */
        scan(f, &r);
        assert_int_equal(r.n, 2);
        assert_non_null(find(&r, "film.mkv")->held);
        assert_non_null(find(&r, "held/sub/a.txt")->held);
        scan_result_free(&r);
}

/* A synced file whose stat moved but not its content is no change, held
 * or not: it is read once, unless its held-up row says it was seen. */
static void test_held_synced_file_touched(void **state)
{
        struct fixture *f = *state;
        struct index_held h = {0};
        struct index_entry e;
        struct scan_result r;
        struct stat st;

        put_file(f, "old.mkv", "synced before the rule");
        age(f, "old.mkv", 100);
        sync_all(f);
        age(f, "old.mkv", 50); /* touched: same content */
        scan(f, &r);
        assert_int_equal(r.n, 0); /* read: the same content, the stat refreshed */
        scan_result_free(&r);
        assert_int_equal(index_get(f->idx, "old.mkv", &e), 0);
        assert_int_equal(lstat(at(f, "old.mkv"), &st), 0);
        assert_int_equal(e.mtime_ns,
                         (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
        index_entry_free(&e);

        /* edited: held (and read, to tell) */
        put_file(f, "old.mkv", "edited here, held");
        age(f, "old.mkv", 40);
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_non_null(r.changes[0].held);
        assert_int_equal(r.changes[0].base, 1);
        scan_result_free(&r);

        /* touched back to the synced content, but the held-up row says
         * this size and mtime were seen held: not read again, still held */
        put_file(f, "old.mkv", "synced before the rule");
        age(f, "old.mkv", 30);
        assert_int_equal(lstat(at(f, "old.mkv"), &st), 0);
        h.path = "old.mkv";
        h.dir = RULES_UP;
        h.kind = KIND_FILE;
        h.size = (uint64_t)st.st_size;
        h.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        h.reason = "type .mkv not selected";
        assert_int_equal(index_held_put(f->idx, &h), 0);
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_non_null(r.changes[0].held);
        scan_result_free(&r);
        /* without the row it is read, and found unchanged */
        assert_int_equal(index_held_remove(f->idx, RULES_UP, "old.mkv"), 0);
        scan(f, &r);
        assert_int_equal(r.n, 0);
        scan_result_free(&r);
}

static void test_held_rename(void **state)
{
        struct fixture *f = *state;
        struct scan_result r;
        struct local_change *c;

        mkdirs(f, "d");
        put_file(f, "d/clip.txt", "a synced file");
        put_file(f, "other.txt", "another");
        age(f, "d/clip.txt", 100);
        sync_all(f);

        /* moved to a name the rules hold: a held rename, no delete */
        assert_int_equal(rename(at(f, "d/clip.txt"), at(f, "clip.mkv")), 0);
        scan(f, &r);
        assert_int_equal(r.deletes, 0);
        c = find(&r, "clip.mkv");
        assert_non_null(c);
        assert_int_equal(c->op, CHANGE_RENAME);
        assert_string_equal(c->from, "d/clip.txt");
        assert_non_null(c->held);
        assert_int_equal(c->base, 2);
        assert_null(find(&r, "d/clip.txt"));
        scan_result_free(&r);

        /* a held copy that is not a move (other mtime) stays a held put,
         * and the vanished file is a delete */
        assert_int_equal(unlink(at(f, "clip.mkv")), 0);
        put_file(f, "copy.mkv", "a synced file");
        scan(f, &r);
        c = find(&r, "copy.mkv");
        assert_non_null(c);
        assert_int_equal(c->op, CHANGE_PUT);
        assert_non_null(c->held);
        assert_non_null(find(&r, "d/clip.txt"));
        assert_int_equal(r.deletes, 1);
        scan_result_free(&r);
}

static void test_since(void **state)
{
        struct fixture *f = *state;
        struct index_held h = {0};
        struct scan_result r;
        struct local_change *c;

        mkdirs(f, "photos");
        put_file(f, "photos/1.jpg", "one");
        put_file(f, "photos/2.jpg", "two");
        put_file(f, "gone.txt", "to be deleted");
        put_file(f, "old.mkv", "held long ago");
        age(f, "photos/1.jpg", 100);
        age(f, "photos/2.jpg", 100);
        sync_all(f); /* old.mkv too: the next lines drop its entry */
        assert_int_equal(index_delete(f->idx, "old.mkv"), 0);
        assert_int_equal(index_delete(f->idx, "photos/2.jpg"), 0);
        h.path = "old.mkv";
        h.dir = RULES_UP;
        h.kind = KIND_FILE;
        h.size = 3;
        h.reason = "type .mkv not selected";
        assert_int_equal(index_held_put(f->idx, &h), 0);
        sleep(1); /* ctimes must fall before the time */
        f->o.since = 1;
        f->o.since_ns = fsutil_now_ns();
        usleep(20000);

        /* nothing changed since: photos/2.jpg, missing from the index, is
         * not looked at (no whole-index comparison); the held file is */
        f->asked = 0;
        scan(f, &r);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.changes[0].path, "old.mkv");
        assert_non_null(r.changes[0].held);
        assert_int_equal(f->asked, 1);
        scan_result_free(&r);

        /* new and changed files are; deletes and moves are not found */
        put_file(f, "photos/3.jpg", "three");
        put_file(f, "photos/1.jpg", "one, edited");
        assert_int_equal(unlink(at(f, "gone.txt")), 0);
        assert_int_equal(rename(at(f, "photos/2.jpg"), at(f, "photos/2b.jpg")), 0);
        scan(f, &r);
        assert_int_equal(r.deletes, 0);
        assert_null(find(&r, "gone.txt"));
        c = find(&r, "photos/1.jpg");
        assert_non_null(c);
        assert_int_equal(c->base, 4); /* checked against its own entry */
        assert_non_null(find(&r, "photos/3.jpg"));
        c = find(&r, "photos/2b.jpg");
        assert_non_null(c);
        assert_int_equal(c->op, CHANGE_PUT);
        assert_non_null(find(&r, "old.mkv"));
        assert_int_equal(r.n, 4);
        scan_result_free(&r);

        /* without a time (never uploaded): everything is compared with the
         * index, still without deletes */
        f->o.since_ns = 0;
        scan(f, &r);
        assert_non_null(find(&r, "photos/2b.jpg"));
        assert_null(find(&r, "gone.txt"));
        assert_int_equal(r.deletes, 0);
        scan_result_free(&r);

        /* a targeted scan under since-last-sync: no deletes either */
        {
                const char *paths[] = {"gone.txt", "photos"};

                assert_int_equal(scan_paths_opts(f->root, f->idx, &f->o, paths, 2, &r), 0);
                assert_int_equal(r.deletes, 0);
                assert_non_null(find(&r, "photos/3.jpg"));
                scan_result_free(&r);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_ignored_never_reported, setup, teardown),
            cmocka_unit_test_setup_teardown(test_synced_then_ignored, setup, teardown),
            cmocka_unit_test_setup_teardown(test_backup_folder_skipped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_held_not_read, setup, teardown),
            cmocka_unit_test_setup_teardown(test_held_synced_file_touched, setup, teardown),
            cmocka_unit_test_setup_teardown(test_held_rename, setup, teardown),
            cmocka_unit_test_setup_teardown(test_since, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
