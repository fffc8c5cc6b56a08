/* Unit tests for push: the mass-delete guard's decision, a pure function of
 * the scan's delete count, the number of synced entries and the configured
 * thresholds (trips only past both the count and the percentage); and the
 * common-prefix / common-suffix diff (patch_diff) that a commit's patch
 * is made of: for overwrite, insert, append, truncate, delete-all, from an
 * empty base, two edited regions, and repeated chunks, the diff is the
 * expected region and applying it to the base gives the new list. And the
 * upload groups: a group holds at least one change and stops once its
 * files reach the target, and the next target is about PUSH_GROUP_SECONDS
 * at the last group's rate, within bounds.
 *
 * And the upload rules (push_rules.c), on a real folder and index: the
 * scan under the rules reports held files (a type rule, an override lets
 * one through), push_rules_apply writes their held-up rows and takes them
 * out of the round, drops the rows of files that vanished or sync now
 * (within the scanned scope only), sends a held rename when the moved file
 * has an override and keeps the delete of the folder it came from
 * otherwise; overrides follow renames and go with deletes; and under
 * since-last-sync only files changed after the last upload are seen. */
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
#include "ignore.h"
#include "index.h"
#include "patch.h"
#include "push.h"
#include "rules.h"
#include "scan.h"
#include "testutil.h"
#include "transfer.h"

static void test_defaults(void **state)
{
        (void)state;
        /* default: more than 50 files AND more than 25% */
        assert_false(push_mass_delete_tripped(0, 0, 50, 25));
        assert_false(push_mass_delete_tripped(50, 50, 50, 25));    /* not more than 50 */
        assert_true(push_mass_delete_tripped(51, 51, 50, 25));     /* everything */
        assert_true(push_mass_delete_tripped(51, 200, 50, 25));    /* 25.5% */
        assert_false(push_mass_delete_tripped(50, 200, 50, 25));   /* 25% exactly, 50 */
        assert_false(push_mass_delete_tripped(51, 204, 50, 25));   /* exactly 25% */
        assert_false(push_mass_delete_tripped(100, 1000, 50, 25)); /* 10% of a big folder */
        assert_true(push_mass_delete_tripped(1000, 1000, 50, 25));
}

static void test_configured(void **state)
{
        (void)state;
        assert_true(push_mass_delete_tripped(1, 1, 0, 0));
        assert_false(push_mass_delete_tripped(0, 10, 0, 0));
        assert_false(push_mass_delete_tripped(10, 10, 10, 0));
        assert_false(push_mass_delete_tripped(11, 20, 10, 100)); /* never more than 100% */
        assert_true(push_mass_delete_tripped(11, 20, 10, 50));
        /* big numbers do not overflow */
        assert_true(push_mass_delete_tripped(INT64_C(1) << 40, INT64_C(1) << 41, 50, 25));
        assert_false(push_mass_delete_tripped(INT64_C(1) << 40, INT64_C(1) << 43, 50, 25));
}

/* A manifest of chunks named by letters: "abcd" is 4 chunks, where equal
 * letters are equal chunks (hash and size). */
static void letters(const char *s, struct manifest *m)
{
        memset(m, 0, sizeof(*m));
        for (; *s; s++) {
                struct hash h;

                memset(&h, 0, sizeof(h));
                h.b[0] = (uint8_t)*s;
                assert_int_equal(manifest_add(m, &h, 100 + (uint32_t)*s), 0);
        }
}

static void check_diff(const char *base, const char *cur, size_t start, size_t del, size_t ins)
{
        struct manifest b, c, out = MANIFEST_INIT;
        struct patch_region d;
        size_t i;

        letters(base, &b);
        letters(cur, &c);
        patch_diff(&b, &c, &d);
        assert_int_equal(d.start, start);
        assert_int_equal(d.del, del);
        assert_int_equal(d.ins, ins);
        /* base[0, start) + cur[start, start + ins) + base[start + del, n) */
        for (i = 0; i < d.start; i++)
                assert_int_equal(manifest_add(&out, &b.chunks[i].hash, b.chunks[i].size), 0);
        for (i = d.start; i < d.start + d.ins; i++)
                assert_int_equal(manifest_add(&out, &c.chunks[i].hash, c.chunks[i].size), 0);
        for (i = d.start + d.del; i < b.n; i++)
                assert_int_equal(manifest_add(&out, &b.chunks[i].hash, b.chunks[i].size), 0);
        assert_int_equal(out.n, c.n);
        assert_int_equal(out.size, c.size);
        for (i = 0; i < c.n; i++)
                assert_true(hash_equal(&out.chunks[i].hash, &c.chunks[i].hash));
        manifest_free(&b);
        manifest_free(&c);
        manifest_free(&out);
}

static void test_diff(void **state)
{
        (void)state;
        check_diff("abcdef", "abcdef", 6, 0, 0);  /* nothing changed */
        check_diff("abcdef", "abXdef", 2, 1, 1);  /* overwrite in one chunk */
        check_diff("abcdef", "abXYdef", 2, 1, 2); /* insert: a chunk cut in two */
        check_diff("abcdef", "abcXdef", 3, 0, 1); /* pure insert on a boundary */
        check_diff("abcdef", "abcdeXY", 5, 1, 2); /* append: the last chunk grows */
        check_diff("abcdef", "abcdefXY", 6, 0, 2);
        check_diff("abcdef", "abcX", 3, 3, 1); /* truncate */
        check_diff("abcdef", "abc", 3, 3, 0);
        check_diff("abcdef", "", 0, 6, 0); /* delete all */
        check_diff("", "abc", 0, 0, 3);    /* from an empty base */
        check_diff("abcdef", "Xbcdef", 0, 1, 1);
        check_diff("abcdef", "aXcdYf", 1, 4, 4); /* two regions: one span */
        check_diff("aaaa", "aaaaa", 4, 0, 1);    /* repeats: prefix and suffix do not overlap */
        check_diff("aaaaa", "aaaa", 4, 1, 0);
        check_diff("abab", "ab", 2, 2, 0);
}

static void test_groups(void **state)
{
        struct local_change c[6] = {{0}}, *p[6];
        uint64_t sizes[6] = {100, 0, 300, 50, 1000, 10};

        (void)state;
        for (int i = 0; i < 6; i++) {
                c[i].op = CHANGE_PUT;
                c[i].kind = i == 1 ? KIND_DIR : KIND_FILE;
                c[i].size = sizes[i];
                p[i] = &c[i];
        }
        c[3].op = CHANGE_DELETE;                           /* its size does not count */
        assert_int_equal(push_group_end(p, 6, 0, 350), 3); /* 100 + 0 + 300 */
        assert_int_equal(push_group_end(p, 6, 0, 100), 1); /* reached at once */
        assert_int_equal(push_group_end(p, 6, 3, 1), 5);   /* the delete, then 1000 */
        assert_int_equal(push_group_end(p, 6, 4, 1), 5);   /* at least one change */
        assert_int_equal(push_group_end(p, 6, 0, 1u << 30), 6);
        assert_int_equal(push_group_end(p, 6, 5, 1u << 30), 6);

        /* 8 MiB in 1 s: 16 MiB for 2 s */
        assert_int_equal(push_group_target(8u << 20, 1000000000), 16u << 20);
        assert_int_equal(push_group_target(1, 1000000000), PUSH_GROUP_MIN);
        assert_int_equal(push_group_target(1ull << 40, 1), PUSH_GROUP_MAX);
        assert_int_equal(push_group_target(5, 0), PUSH_GROUP_MAX);
}

/* ---- the upload rules ---- */

struct fixture {
        char root[1024];
        struct index *idx;
        struct rules *rules;
        struct ignore *ig;
        int64_t seq;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        char *up[] = {"type", "txt"};
        char p[1200];

        if (!f || testutil_mkdtemp(f->root, sizeof(f->root), "pushrules") < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry", f->root);
        if (mkdir(p, 0700) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry/index.db", f->root);
        if (index_open(p, &f->idx) < 0 || rules_default(&f->rules) < 0 ||
            rules_set(f->rules, RULES_UP, up, 2) < 0 || ignore_from_text("", 0, "t", &f->ig) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        index_close(f->idx);
        rules_free(f->rules);
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
        char dir[2048], *slash;
        int fd;

        snprintf(dir, sizeof(dir), "%s", at(f, rel));
        slash = strrchr(dir, '/');
        *slash = '\0';
        assert_int_equal(fsutil_mkdirs(dir, 0), 0);
        fd = open(at(f, rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
}

static struct local_change *find(struct scan_result *r, const char *path)
{
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->changes[i].path, path) == 0)
                        return &r->changes[i];
        return NULL;
}

/* A round's push without the server: the scan under the rules, then the
 * rules applied (whole folder, or the targeted scope). */
static void round_scan(struct fixture *f, const char *const *scope, size_t n,
                       struct scan_result *sr)
{
        int r = push_scan(f->idx, f->root, f->rules, f->ig, scope != NULL, scope, n, sr);

        if (r == 0)
                r = push_rules_apply(f->idx, sr, scope == NULL, scope, n);
        if (r < 0)
                print_error("%s\n", err_msg(r));
        assert_int_equal(r, 0);
}

/* Records the changes as accepted by the server, then frees sr. */
static void accept_all(struct fixture *f, struct scan_result *sr)
{
        for (size_t i = 0; i < sr->n; i++) {
                struct local_change *c = &sr->changes[i];
                struct index_entry e = {0};

                assert_null(c->held);
                assert_int_equal(push_rules_moved(f->idx, c), 0);
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
                e.seq = ++f->seq;
                e.recorded_ns = sr->started_ns;
                assert_int_equal(index_put(f->idx, &e, &c->manifest), 0);
        }
        scan_result_free(sr);
}

struct rows {
        char text[4096]; /* "path=reason(size);" in path order */
        int n;
};

static int row_cb(const struct index_held *h, void *ud)
{
        struct rows *rs = ud;
        size_t len = strlen(rs->text);

        assert_int_equal(h->dir, RULES_UP);
        snprintf(rs->text + len, sizeof(rs->text) - len, "%s=%s(%llu);", h->path, h->reason,
                 (unsigned long long)h->size);
        rs->n++;
        return 0;
}

static const char *rows(struct fixture *f)
{
        static struct rows rs;

        memset(&rs, 0, sizeof(rs));
        assert_int_equal(index_held_foreach(f->idx, RULES_UP, NULL, row_cb, &rs), 0);
        return rs.text;
}

static void test_rules_held_rows(void **state)
{
        struct fixture *f = *state;
        struct scan_result sr;

        put_file(f, "a.txt", "synced");
        put_file(f, "film.mkv", "held film");
        put_file(f, "d/clip.mov", "held clip");
        put_file(f, "d/e/x.mkv", "held deeper");
        round_scan(f, NULL, 0, &sr);
        /* what goes up: the text file and the folders (a type rule selects
         * every folder); the held files are out of the round */
        assert_int_equal(sr.n, 3);
        assert_non_null(find(&sr, "a.txt"));
        assert_non_null(find(&sr, "d"));
        assert_non_null(find(&sr, "d/e"));
        assert_null(find(&sr, "film.mkv"));
        accept_all(f, &sr);
        assert_string_equal(rows(f), "d/clip.mov=type .mov not selected(9);"
                                     "d/e/x.mkv=type .mkv not selected(11);"
                                     "film.mkv=type .mkv not selected(9);");

        /* a held file deleted loses its row; one edited keeps it, renewed;
         * one with an override goes up and loses its row */
        assert_int_equal(unlink(at(f, "film.mkv")), 0);
        put_file(f, "d/e/x.mkv", "held deeper, edited");
        assert_int_equal(index_override_add(f->idx, "d/clip.mov"), 0);
        round_scan(f, NULL, 0, &sr);
        assert_int_equal(sr.n, 1);
        assert_string_equal(sr.changes[0].path, "d/clip.mov");
        assert_int_equal(sr.deletes, 0);
        accept_all(f, &sr);
        assert_string_equal(rows(f), "d/e/x.mkv=type .mkv not selected(19);");

        /* a pushed file syncs from then on: edits go up */
        put_file(f, "d/clip.mov", "edited after the push");
        round_scan(f, NULL, 0, &sr);
        assert_int_equal(sr.n, 1);
        assert_int_equal(sr.changes[0].op, CHANGE_PUT);
        assert_true(sr.changes[0].base > 0);
        accept_all(f, &sr);

        /* its delete goes up too, and takes the override along */
        assert_int_equal(unlink(at(f, "d/clip.mov")), 0);
        round_scan(f, NULL, 0, &sr);
        assert_int_equal(sr.n, 1);
        assert_int_equal(sr.deletes, 1);
        accept_all(f, &sr);
        assert_int_equal(index_override_has(f->idx, "d/clip.mov"), 0);
}

static void test_rules_targeted_scope(void **state)
{
        struct fixture *f = *state;
        const char *scope[] = {"y"};
        struct scan_result sr;

        put_file(f, "x.mkv", "held");
        put_file(f, "y/z.mkv", "held");
        put_file(f, "y/k.mkv", "held, stays");
        round_scan(f, NULL, 0, &sr);
        accept_all(f, &sr);
        assert_string_equal(rows(f), "x.mkv=type .mkv not selected(4);"
                                     "y/k.mkv=type .mkv not selected(11);"
                                     "y/z.mkv=type .mkv not selected(4);");
        assert_int_equal(unlink(at(f, "x.mkv")), 0);
        assert_int_equal(unlink(at(f, "y/z.mkv")), 0);
        /* a targeted round looked at y only: x.mkv's row waits */
        round_scan(f, scope, 1, &sr);
        assert_int_equal(sr.n, 0);
        scan_result_free(&sr);
        assert_string_equal(rows(f), "x.mkv=type .mkv not selected(4);"
                                     "y/k.mkv=type .mkv not selected(11);");
        round_scan(f, NULL, 0, &sr);
        scan_result_free(&sr);
        assert_string_equal(rows(f), "y/k.mkv=type .mkv not selected(11);");
}

static void test_rules_held_rename(void **state)
{
        struct fixture *f = *state;
        struct scan_result sr;
        struct local_change *c;
        struct timespec ts[2];

        put_file(f, "d/note.txt", "a synced note");
        put_file(f, "e/other.txt", "another");
        clock_gettime(CLOCK_REALTIME, &ts[0]);
        ts[0].tv_sec -= 100;
        ts[1] = ts[0];
        assert_int_equal(utimensat(AT_FDCWD, at(f, "d/note.txt"), ts, 0), 0);
        round_scan(f, NULL, 0, &sr);
        accept_all(f, &sr);

        /* moved out of d to a held name, d removed: neither the delete of
         * the note nor that of its folder goes up; the index keeps them */
        assert_int_equal(rename(at(f, "d/note.txt"), at(f, "note.mkv")), 0);
        assert_int_equal(rmdir(at(f, "d")), 0);
        round_scan(f, NULL, 0, &sr);
        assert_int_equal(sr.n, 0);
        assert_int_equal(sr.deletes, 0);
        scan_result_free(&sr);
        assert_string_equal(rows(f), "note.mkv=type .mkv not selected(13);");

        /* a pushed file moved to a held name: the rename goes up and the
         * override follows it */
        assert_int_equal(rename(at(f, "note.mkv"), at(f, "d2.txt")), 0);
        round_scan(f, NULL, 0, &sr);
        c = find(&sr, "d2.txt");
        assert_non_null(c);
        assert_int_equal(c->op, CHANGE_RENAME);
        assert_string_equal(c->from, "d/note.txt");
        accept_all(f, &sr);
        assert_string_equal(rows(f), "");
        assert_int_equal(index_override_add(f->idx, "d2.txt"), 0);
        assert_int_equal(rename(at(f, "d2.txt"), at(f, "movie.mkv")), 0);
        round_scan(f, NULL, 0, &sr);
        c = find(&sr, "movie.mkv");
        assert_non_null(c);
        assert_int_equal(c->op, CHANGE_RENAME);
        assert_null(c->held);
        accept_all(f, &sr);
        assert_int_equal(index_override_has(f->idx, "d2.txt"), 0);
        assert_int_equal(index_override_has(f->idx, "movie.mkv"), 1);
        assert_string_equal(rows(f), "");
}

static void test_rules_since(void **state)
{
        struct fixture *f = *state;
        struct scan_result sr;

        rules_set_mode(f->rules, RULES_MODE_SINCE);
        put_file(f, "old.txt", "before");
        put_file(f, "gone.txt", "deleted later");
        round_scan(f, NULL, 0, &sr); /* never uploaded: everything */
        assert_int_equal(sr.n, 2);
        accept_all(f, &sr);
        sleep(1);
        assert_int_equal(index_state_set(f->idx, PUSH_LAST_UPLOAD_KEY, fsutil_now_ns()), 0);
        usleep(20000);
        put_file(f, "new.txt", "after");
        put_file(f, "new.mkv", "after, held");
        assert_int_equal(unlink(at(f, "gone.txt")), 0);
        /* forget old.txt: since-last-sync does not compare it */
        assert_int_equal(index_delete(f->idx, "old.txt"), 0);
        round_scan(f, NULL, 0, &sr);
        assert_int_equal(sr.n, 1);
        assert_string_equal(sr.changes[0].path, "new.txt");
        assert_int_equal(sr.deletes, 0);
        scan_result_free(&sr);
        assert_string_equal(rows(f), "new.mkv=type .mkv not selected(11);");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_groups),
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_configured),
            cmocka_unit_test(test_diff),
            cmocka_unit_test_setup_teardown(test_rules_held_rows, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rules_targeted_scope, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rules_held_rename, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rules_since, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
