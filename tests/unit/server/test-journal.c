/* test-journal: the compare-and-set rules of the space journal (journal.c)
 * on a real SQLite store in a temporary directory: puts, conflicts, no-op
 * retries, deletes and tombstones, edit-vs-delete, renames, missing chunks,
 * seq order, paging, user isolation, all-or-nothing transactions, and
 * puts by patch against the base version's chunk list. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "journal.h"
#include "meta.h"
#include "srvtest.h"

#define DEV_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DEV_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fix {
        char *dir;
        char *uri; /* the PostgreSQL database, or NULL for SQLite (srvtest.h) */
        struct meta *m;
        int64_t alice, bob;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        assert_int_equal(srvtest_meta_open(f->dir, &f->uri, &f->m), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &f->alice), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x", "h", 1, &f->bob), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        meta_close(f->m);
        srvtest_metadata_drop(f->uri);
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

/* A file change of content s (one chunk), held by user unless hold is 0. */
static struct journal_change file_put(struct fix *f, int64_t user, const char *path, int64_t base,
                                      const char *s, int hold)
{
        struct journal_change c;
        struct hash h = srvtest_hash(s);

        memset(&c, 0, sizeof(c));
        c.op = JOURNAL_PUT;
        c.path = path;
        c.base = base;
        c.kind = KIND_FILE;
        c.size = strlen(s);
        c.mtime_ns = 1000;
        c.mode = 0644;
        c.has_hash = 1;
        c.hash = h;
        if (c.size)
                assert_int_equal(manifest_add(&c.manifest, &h, (uint32_t)c.size), 0);
        if (hold && c.size)
                assert_int_equal(f->m->ops->chunk_add(f->m, user, &h, (uint32_t)c.size), 0);
        return c;
}

static struct journal_change simple(int op, const char *path, int64_t base)
{
        struct journal_change c;

        memset(&c, 0, sizeof(c));
        c.op = op;
        c.path = path;
        c.base = base;
        return c;
}

/* Commits one change and returns its result (caller clears it). */
static struct journal_result commit1(struct fix *f, int64_t user, const char *dev,
                                     struct journal_change *c, int64_t *seq)
{
        struct journal_result res;
        int64_t s = -1;

        assert_int_equal(journal_commit(f->m, user, dev, c, 1, &res, &s), 0);
        if (seq)
                *seq = s;
        manifest_free(&c->manifest);
        return res;
}

/* Commits one change; returns its status (the rest of the result is
 * cleared). */
static int status1(struct fix *f, int64_t user, const char *dev, struct journal_change *c,
                   int64_t *seq)
{
        struct journal_result r = commit1(f, user, dev, c, seq);
        int st = r.status;

        journal_result_clear(&r);
        return st;
}

/* Commits one change that must go through; returns its seq. */
static int64_t seq1(struct fix *f, int64_t user, const char *dev, struct journal_change *c,
                    int64_t *seq)
{
        struct journal_result r = commit1(f, user, dev, c, seq);
        int64_t s = r.seq;

        assert_int_equal(r.status, JOURNAL_OK);
        journal_result_clear(&r);
        return s;
}

static int64_t space_seq(struct fix *f, int64_t user)
{
        int64_t s = -1;

        assert_int_equal(f->m->ops->seq_current(f->m, user, &s), 0);
        return s;
}

static void test_new_put(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "docs/a.txt", 0, "hello", 1);
        struct journal_result r;
        struct meta_entry e;
        struct manifest m = MANIFEST_INIT;
        int64_t seq;

        r = commit1(f, f->alice, DEV_A, &c, &seq);
        assert_int_equal(r.status, JOURNAL_OK);
        assert_int_equal(r.seq, 1);
        assert_int_equal(seq, 1);
        journal_result_clear(&r);

        assert_int_equal(journal_get(f->m, f->alice, "docs/a.txt", &e), 0);
        assert_int_equal(e.seq, 1);
        assert_false(e.deleted);
        assert_int_equal(e.kind, KIND_FILE);
        assert_int_equal(e.size, 5);
        assert_int_equal(e.mode, 0644);
        assert_string_equal(e.device, DEV_A);
        assert_int_equal(manifest_from_blob(e.chunks, e.chunks_len, &m), 0);
        assert_int_equal(m.n, 1);
        assert_int_equal(m.chunks[0].size, 5);
        manifest_free(&m);
        meta_entry_clear(&e);
}

static void test_stale_base_conflict(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "one", 1);
        struct journal_result r;

        status1(f, f->alice, DEV_A, &c, NULL);
        /* B also starts from "nothing" with other content: refused. */
        c = file_put(f, f->alice, "a.txt", 0, "two", 1);
        r = commit1(f, f->alice, DEV_B, &c, NULL);
        assert_int_equal(r.status, JOURNAL_CONFLICT);
        assert_true(r.has_current);
        assert_string_equal(r.current.path, "a.txt");
        assert_int_equal(r.current.seq, 1);
        assert_string_equal(r.current.device, DEV_A);
        journal_result_clear(&r);
        assert_int_equal(space_seq(f, f->alice), 1);

        /* With the right base it goes through. */
        c = file_put(f, f->alice, "a.txt", 1, "two", 1);
        assert_int_equal(seq1(f, f->alice, DEV_B, &c, NULL), 2);
}

static void test_same_content_noop(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "same", 1);
        struct journal_result r;
        int64_t seq;

        status1(f, f->alice, DEV_A, &c, NULL);
        /* A retry of the same commit (base still 0) is a no-op ok. */
        c = file_put(f, f->alice, "a.txt", 0, "same", 1);
        r = commit1(f, f->alice, DEV_A, &c, &seq);
        assert_int_equal(r.status, JOURNAL_OK);
        assert_int_equal(r.seq, 1);
        assert_int_equal(seq, 1);
        journal_result_clear(&r);

        /* Same for a directory put twice. */
        c = simple(JOURNAL_PUT, "photos", 0);
        c.kind = KIND_DIR;
        r = commit1(f, f->alice, DEV_A, &c, NULL);
        assert_int_equal(r.seq, 2);
        journal_result_clear(&r);
        c = simple(JOURNAL_PUT, "photos", 0);
        c.kind = KIND_DIR;
        r = commit1(f, f->alice, DEV_B, &c, &seq);
        assert_int_equal(r.status, JOURNAL_OK);
        assert_int_equal(r.seq, 2);
        assert_int_equal(seq, 2);
        journal_result_clear(&r);
}

static void test_mtime_change_on_current_base(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "x", 1);
        struct meta_entry e;

        status1(f, f->alice, DEV_A, &c, NULL);
        c = file_put(f, f->alice, "a.txt", 1, "x", 1);
        c.mtime_ns = 2000;
        assert_int_equal(seq1(f, f->alice, DEV_A, &c, NULL), 2);
        assert_int_equal(journal_get(f->m, f->alice, "a.txt", &e), 0);
        assert_int_equal(e.mtime_ns, 2000);
        meta_entry_clear(&e);
}

static void test_delete(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "x", 1);
        struct meta_entry e;

        status1(f, f->alice, DEV_A, &c, NULL);
        c = simple(JOURNAL_DELETE, "a.txt", 1);
        assert_int_equal(seq1(f, f->alice, DEV_A, &c, NULL), 2);

        assert_int_equal(journal_get(f->m, f->alice, "a.txt", &e), 0);
        assert_true(e.deleted);
        assert_int_equal(e.seq, 2);
        assert_int_equal(e.kind, KIND_FILE);
        assert_int_equal(e.chunks_len, 0);
        assert_false(e.has_hash);
        meta_entry_clear(&e);

        /* Deleting it again, with any base, is a no-op. */
        c = simple(JOURNAL_DELETE, "a.txt", 1);
        assert_int_equal(seq1(f, f->alice, DEV_B, &c, NULL), 2);
        assert_int_equal(space_seq(f, f->alice), 2);
}

static void test_delete_absent_noop(void **state)
{
        struct fix *f = *state;
        struct journal_change c = simple(JOURNAL_DELETE, "never/was.txt", 7);
        struct meta_entry e;

        assert_int_equal(seq1(f, f->alice, DEV_A, &c, NULL), 0);
        assert_int_equal(space_seq(f, f->alice), 0);
        assert_int_equal(journal_get(f->m, f->alice, "never/was.txt", &e), -ENOENT);
}

static void test_delete_stale_conflict(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "v1", 1);
        struct journal_result r;

        status1(f, f->alice, DEV_A, &c, NULL);
        c = file_put(f, f->alice, "a.txt", 1, "v2", 1); /* B edits */
        status1(f, f->alice, DEV_B, &c, NULL);
        /* A deletes what it last saw (seq 1): the edit wins. */
        c = simple(JOURNAL_DELETE, "a.txt", 1);
        r = commit1(f, f->alice, DEV_A, &c, NULL);
        assert_int_equal(r.status, JOURNAL_CONFLICT);
        assert_true(r.has_current);
        assert_int_equal(r.current.seq, 2);
        assert_false(r.current.deleted);
        journal_result_clear(&r);
}

static void test_put_on_tombstone_accepted(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "v1", 1);
        struct meta_entry e;

        status1(f, f->alice, DEV_A, &c, NULL);
        c = simple(JOURNAL_DELETE, "a.txt", 1); /* A deletes */
        status1(f, f->alice, DEV_A, &c, NULL);
        /* B edited the version it saw (seq 1): the edit wins over the delete. */
        c = file_put(f, f->alice, "a.txt", 1, "edited", 1);
        assert_int_equal(seq1(f, f->alice, DEV_B, &c, NULL), 3);
        assert_int_equal(journal_get(f->m, f->alice, "a.txt", &e), 0);
        assert_false(e.deleted);
        assert_int_equal(e.size, 6);
        meta_entry_clear(&e);
}

static void test_rename(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "b.txt", 0, "content", 1);
        struct meta_entry src, dst;

        status1(f, f->alice, DEV_A, &c, NULL);
        c = simple(JOURNAL_RENAME, "dir/c.txt", 1);
        c.from = "b.txt";
        assert_int_equal(seq1(f, f->alice, DEV_B, &c, NULL), 2);
        assert_int_equal(space_seq(f, f->alice), 3);

        assert_int_equal(journal_get(f->m, f->alice, "b.txt", &src), 0);
        assert_true(src.deleted);
        assert_int_equal(src.seq, 3);
        assert_int_equal(journal_get(f->m, f->alice, "dir/c.txt", &dst), 0);
        assert_false(dst.deleted);
        assert_int_equal(dst.seq, 2);
        assert_int_equal(dst.size, 7);
        assert_true(dst.has_hash);
        assert_memory_equal(dst.hash.b, srvtest_hash("content").b, HASH_LEN);
        assert_string_equal(dst.device, DEV_B);
        assert_int_equal(dst.chunks_len, 36);
        meta_entry_clear(&src);
        meta_entry_clear(&dst);
}

static void test_rename_conflicts(void **state)
{
        struct fix *f = *state;
        struct journal_change cs[2];
        struct journal_result rs[2], r;
        int64_t seq;

        cs[0] = file_put(f, f->alice, "a", 0, "A", 1);
        cs[1] = file_put(f, f->alice, "b", 0, "B", 1);
        assert_int_equal(journal_commit(f->m, f->alice, DEV_A, cs, 2, rs, &seq), 0);
        assert_int_equal(seq, 2);
        manifest_free(&cs[0].manifest);
        manifest_free(&cs[1].manifest);
        journal_result_clear(&rs[0]);
        journal_result_clear(&rs[1]);

        /* Target occupied. */
        cs[0] = simple(JOURNAL_RENAME, "b", 1);
        cs[0].from = "a";
        r = commit1(f, f->alice, DEV_A, &cs[0], NULL);
        assert_int_equal(r.status, JOURNAL_CONFLICT);
        assert_string_equal(r.current.path, "b");
        journal_result_clear(&r);
        /* Stale base on the source. */
        cs[0] = simple(JOURNAL_RENAME, "c", 5);
        cs[0].from = "a";
        r = commit1(f, f->alice, DEV_A, &cs[0], NULL);
        assert_int_equal(r.status, JOURNAL_CONFLICT);
        assert_string_equal(r.current.path, "a");
        journal_result_clear(&r);
        /* Absent source. */
        cs[0] = simple(JOURNAL_RENAME, "c", 0);
        cs[0].from = "zzz";
        r = commit1(f, f->alice, DEV_A, &cs[0], NULL);
        assert_int_equal(r.status, JOURNAL_CONFLICT);
        assert_false(r.has_current);
        journal_result_clear(&r);
        /* Same path. */
        cs[0] = simple(JOURNAL_RENAME, "a", 1);
        cs[0].from = "a";
        assert_int_equal(status1(f, f->alice, DEV_A, &cs[0], NULL), JOURNAL_INVALID);
        assert_int_equal(space_seq(f, f->alice), 2);
}

static void test_missing_chunks(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "big", 0, "xx", 0);
        struct hash h = srvtest_hash("xx"), h2 = srvtest_hash("yy");
        struct journal_result r;
        struct meta_entry e;

        /* The same missing chunk twice, then another: listed once each. */
        assert_int_equal(manifest_add(&c.manifest, &h, 2), 0);
        assert_int_equal(manifest_add(&c.manifest, &h2, 2), 0);
        c.size = 6;
        r = commit1(f, f->alice, DEV_A, &c, NULL);
        assert_int_equal(r.status, JOURNAL_MISSING_CHUNKS);
        assert_int_equal(r.n_missing, 2);
        assert_memory_equal(r.missing[0].b, h.b, HASH_LEN);
        assert_memory_equal(r.missing[1].b, h2.b, HASH_LEN);
        journal_result_clear(&r);
        assert_int_equal(journal_get(f->m, f->alice, "big", &e), -ENOENT);
        assert_int_equal(space_seq(f, f->alice), 0);

        /* Held by bob only: still missing for alice. */
        assert_int_equal(f->m->ops->chunk_add(f->m, f->bob, &h, 2), 0);
        c = file_put(f, f->alice, "big", 0, "xx", 0);
        assert_int_equal(status1(f, f->alice, DEV_A, &c, NULL), JOURNAL_MISSING_CHUNKS);

        assert_int_equal(f->m->ops->chunk_add(f->m, f->alice, &h, 2), 0);
        /* Held, but the change lies about its size: invalid. */
        c = file_put(f, f->alice, "big", 0, "xx", 0);
        c.manifest.chunks[0].size = 3;
        c.manifest.size = 3;
        c.size = 3;
        r = commit1(f, f->alice, DEV_A, &c, NULL);
        assert_int_equal(r.status, JOURNAL_INVALID);
        assert_int_equal(r.n_missing, 0);
        journal_result_clear(&r);

        c = file_put(f, f->alice, "big", 0, "xx", 0);
        assert_int_equal(status1(f, f->alice, DEV_A, &c, NULL), JOURNAL_OK);
}

static void test_invalid_changes(void **state)
{
        struct fix *f = *state;
        struct journal_change cs[5];
        struct journal_result rs[5];
        int64_t seq;
        int i;

        cs[0] = file_put(f, f->alice, "a", 0, "abc", 1);
        cs[0].size = 4; /* sizes do not add up */
        cs[1] = file_put(f, f->alice, "../escape", 0, "abc", 1);
        cs[2] = simple(JOURNAL_PUT, "ln", 0);
        cs[2].kind = KIND_SYMLINK; /* no target */
        cs[3] = simple(JOURNAL_PUT, ".ferry/x", 0);
        cs[3].kind = KIND_DIR;
        cs[4] = simple(JOURNAL_PUT, "ok", 0);
        cs[4].kind = KIND_SYMLINK;
        cs[4].target = "a";
        assert_int_equal(journal_commit(f->m, f->alice, DEV_A, cs, 5, rs, &seq), 0);
        for (i = 0; i < 4; i++) {
                assert_int_equal(rs[i].status, JOURNAL_INVALID);
                assert_true(strlen(rs[i].error) > 0);
        }
        assert_int_equal(rs[4].status, JOURNAL_OK);
        assert_int_equal(seq, 1);
        for (i = 0; i < 5; i++) {
                manifest_free(&cs[i].manifest);
                journal_result_clear(&rs[i]);
        }
}

static void test_seq_strictly_increasing(void **state)
{
        struct fix *f = *state;
        struct journal_change cs[3];
        struct journal_result rs[3];
        int64_t seq, last = 0;
        int round, i;

        for (round = 0; round < 3; round++) {
                static const char *const content[] = {"a", "b", "c"};
                cs[0] = file_put(f, f->alice, "x", round ? rs[0].seq : 0, content[round], 1);
                cs[1] = simple(JOURNAL_PUT, "d", 0);
                cs[1].kind = KIND_DIR;
                cs[2] = file_put(f, f->alice,
                                 round == 1   ? "y1"
                                 : round == 2 ? "y2"
                                              : "y0",
                                 0, "c", 1);
                if (round)
                        for (i = 0; i < 3; i++)
                                journal_result_clear(&rs[i]);
                assert_int_equal(journal_commit(f->m, f->alice, DEV_A, cs, 3, rs, &seq), 0);
                for (i = 0; i < 3; i++) {
                        assert_int_equal(rs[i].status, JOURNAL_OK);
                        manifest_free(&cs[i].manifest);
                }
                /* New changes take numbers past everything before. */
                assert_true(rs[0].seq > last);
                assert_true(rs[2].seq > rs[0].seq);
                assert_int_equal(seq, rs[2].seq);
                last = seq;
        }
        for (i = 0; i < 3; i++)
                journal_result_clear(&rs[i]);
}

struct collect {
        int64_t seqs[64];
        char paths[64][32];
        int n;
};

static int collect_cb(const struct meta_entry *e, void *userdata)
{
        struct collect *c = userdata;

        c->seqs[c->n] = e->seq;
        snprintf(c->paths[c->n], sizeof(c->paths[0]), "%s", e->path);
        c->n++;
        return 0;
}

static void test_changes_since_paging(void **state)
{
        struct fix *f = *state;
        struct journal_change c;
        struct collect col;
        char name[16];
        int64_t since = 0;
        int i, more, pages = 0, total = 0;

        for (i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "f%d", i);
                c = file_put(f, f->alice, name, 0, name, 1);
                status1(f, f->alice, DEV_A, &c, NULL);
        }
        /* f0 edited again: only its latest version shows, at seq 6. */
        c = file_put(f, f->alice, "f0", 1, "new", 1);
        status1(f, f->alice, DEV_A, &c, NULL);

        do {
                memset(&col, 0, sizeof(col));
                assert_int_equal(
                    journal_changes_since(f->m, f->alice, since, 2, collect_cb, &col, &more), 0);
                assert_true(col.n <= 2);
                for (i = 0; i < col.n; i++) {
                        assert_true(col.seqs[i] > since);
                        since = col.seqs[i];
                }
                total += col.n;
                pages++;
        } while (more);
        assert_int_equal(total, 5);
        assert_int_equal(pages, 3);
        assert_int_equal(since, 6);

        memset(&col, 0, sizeof(col));
        assert_int_equal(journal_changes_since(f->m, f->alice, 4, 100, collect_cb, &col, &more), 0);
        assert_int_equal(col.n, 2);
        assert_string_equal(col.paths[0], "f4");
        assert_string_equal(col.paths[1], "f0");
        assert_false(more);
}

static void test_list_prefix(void **state)
{
        struct fix *f = *state;
        const char *paths[] = {"a", "a/b", "a/b/c", "ab", "a0", "b"};
        struct journal_change c;
        struct collect col;
        size_t i;

        for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                c = file_put(f, f->alice, paths[i], 0, paths[i], 1);
                status1(f, f->alice, DEV_A, &c, NULL);
        }
        c = simple(JOURNAL_DELETE, "a/b/c", 3);
        assert_int_equal(status1(f, f->alice, DEV_A, &c, NULL), JOURNAL_OK);

        memset(&col, 0, sizeof(col));
        assert_int_equal(journal_list(f->m, f->alice, "a", 0, collect_cb, &col), 0);
        assert_int_equal(col.n, 2);
        assert_string_equal(col.paths[0], "a");
        assert_string_equal(col.paths[1], "a/b");
        memset(&col, 0, sizeof(col));
        assert_int_equal(journal_list(f->m, f->alice, "a", 1, collect_cb, &col), 0);
        assert_int_equal(col.n, 3);
        memset(&col, 0, sizeof(col));
        assert_int_equal(journal_list(f->m, f->alice, NULL, 0, collect_cb, &col), 0);
        assert_int_equal(col.n, 5);
        assert_string_equal(col.paths[0], "a");
        assert_string_equal(col.paths[4], "b");
        assert_int_equal(journal_list(f->m, f->alice, "../a", 0, collect_cb, &col), -EINVAL);
}

static void test_user_isolation(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "secret.txt", 0, "alice's", 1);
        struct collect col;
        struct meta_entry e;
        int more;

        status1(f, f->alice, DEV_A, &c, NULL);

        memset(&col, 0, sizeof(col));
        assert_int_equal(journal_changes_since(f->m, f->bob, 0, 100, collect_cb, &col, &more), 0);
        assert_int_equal(col.n, 0);
        assert_int_equal(journal_get(f->m, f->bob, "secret.txt", &e), -ENOENT);
        assert_int_equal(space_seq(f, f->bob), 0);

        /* Bob's delete of that path is a no-op in his own space. */
        c = simple(JOURNAL_DELETE, "secret.txt", 1);
        assert_int_equal(seq1(f, f->bob, DEV_B, &c, NULL), 0);
        assert_int_equal(journal_get(f->m, f->alice, "secret.txt", &e), 0);
        assert_false(e.deleted);
        meta_entry_clear(&e);

        /* Bob's own file of the same name lives separately, from seq 1. */
        c = file_put(f, f->bob, "secret.txt", 0, "bob's", 1);
        assert_int_equal(seq1(f, f->bob, DEV_B, &c, NULL), 1);
}

/* A store whose entry_put fails on its second call: the first change of the
 * commit must be rolled back with it. */
struct failing {
        struct meta base;
        struct meta *real;
        int puts;
};
static struct meta_ops failing_ops;

static struct meta *real_of(struct meta *m)
{
        return ((struct failing *)m)->real;
}

static int f_begin(struct meta *m)
{
        return real_of(m)->ops->begin(real_of(m));
}
static int f_commit(struct meta *m)
{
        return real_of(m)->ops->commit(real_of(m));
}
static int f_rollback(struct meta *m)
{
        return real_of(m)->ops->rollback(real_of(m));
}
static int f_entry_get(struct meta *m, int64_t u, const char *p, struct meta_entry *o)
{
        return real_of(m)->ops->entry_get(real_of(m), u, p, o);
}
static int f_entry_put(struct meta *m, int64_t u, const struct meta_entry *e)
{
        if (++((struct failing *)m)->puts == 2)
                return err_set(-EIO, "injected failure");
        return real_of(m)->ops->entry_put(real_of(m), u, e);
}
static int f_seq_next(struct meta *m, int64_t u, int64_t *s)
{
        return real_of(m)->ops->seq_next(real_of(m), u, s);
}
static int f_seq_current(struct meta *m, int64_t u, int64_t *s)
{
        return real_of(m)->ops->seq_current(real_of(m), u, s);
}
static int f_chunk_touch(struct meta *m, int64_t u, const struct hash *h, int64_t t, uint32_t *s)
{
        return real_of(m)->ops->chunk_touch(real_of(m), u, h, t, s);
}
static int f_chunk_held(struct meta *m, int64_t u, const struct hash *h, uint32_t *s)
{
        return real_of(m)->ops->chunk_held(real_of(m), u, h, s);
}
static int f_version_add(struct meta *m, int64_t u, const struct meta_entry *e)
{
        return real_of(m)->ops->version_add(real_of(m), u, e);
}

static void test_all_or_nothing(void **state)
{
        struct fix *f = *state;
        struct failing fm;
        struct journal_change cs[2];
        struct journal_result rs[2];
        struct meta_entry e;
        int64_t seq = -1;

        failing_ops = *f->m->ops;
        failing_ops.begin = f_begin;
        failing_ops.commit = f_commit;
        failing_ops.rollback = f_rollback;
        failing_ops.entry_get = f_entry_get;
        failing_ops.entry_put = f_entry_put;
        failing_ops.seq_next = f_seq_next;
        failing_ops.seq_current = f_seq_current;
        failing_ops.chunk_touch = f_chunk_touch;
        failing_ops.chunk_held = f_chunk_held;
        failing_ops.version_add = f_version_add;
        fm.base.ops = &failing_ops;
        fm.real = f->m;
        fm.puts = 0;

        cs[0] = file_put(f, f->alice, "one", 0, "1", 1);
        cs[1] = file_put(f, f->alice, "two", 0, "2", 1);
        assert_int_equal(journal_commit(&fm.base, f->alice, DEV_A, cs, 2, rs, &seq), -EIO);
        manifest_free(&cs[0].manifest);
        manifest_free(&cs[1].manifest);
        assert_int_equal(journal_get(f->m, f->alice, "one", &e), -ENOENT);
        assert_int_equal(f->m->ops->version_get(f->m, f->alice, "one", 1, &e), -ENOENT);
        assert_int_equal(space_seq(f, f->alice), 0);
}

/* Counts the store's chunk lookups of a commit. */
static int held_calls, touch_calls;
static int c_chunk_held(struct meta *m, int64_t u, const struct hash *h, uint32_t *s)
{
        held_calls++;
        return real_of(m)->ops->chunk_held(real_of(m), u, h, s);
}
static int c_chunk_touch(struct meta *m, int64_t u, const struct hash *h, int64_t t, uint32_t *s)
{
        touch_calls++;
        return real_of(m)->ops->chunk_touch(real_of(m), u, h, t, s);
}

/* A new version of a file asks the store only about the chunks its current
 * version does not have (those are held: the GC keeps a current entry's
 * chunks), and touches none when nothing is missing. */
static void test_commit_looks_up_new_chunks_only(void **state)
{
        struct fix *f = *state;
        struct failing fm;
        struct journal_change c = {
            .op = JOURNAL_PUT, .path = "big", .kind = KIND_FILE, .has_hash = 1, .mode = 0644};
        struct journal_result r;
        int64_t seq;
        char name[16];

        failing_ops = *f->m->ops;
        failing_ops.begin = f_begin;
        failing_ops.commit = f_commit;
        failing_ops.rollback = f_rollback;
        failing_ops.entry_get = f_entry_get;
        failing_ops.seq_next = f_seq_next;
        failing_ops.seq_current = f_seq_current;
        failing_ops.version_add = f_version_add;
        failing_ops.chunk_held = c_chunk_held;
        failing_ops.chunk_touch = c_chunk_touch;
        fm.base.ops = &failing_ops;
        fm.real = f->m;
        fm.puts = -1000; /* f_entry_put never fails here */
        failing_ops.entry_put = f_entry_put;
        for (int i = 0; i < 50; i++) {
                struct hash h;

                snprintf(name, sizeof(name), "c%d", i);
                h = srvtest_hash(name);
                assert_int_equal(manifest_add(&c.manifest, &h, 10), 0);
                assert_int_equal(f->m->ops->chunk_add(f->m, f->alice, &h, 10), 0);
        }
        c.size = 500;
        c.hash = srvtest_hash("v1");
        held_calls = touch_calls = 0;
        assert_int_equal(journal_commit(&fm.base, f->alice, DEV_A, &c, 1, &r, &seq), 0);
        assert_int_equal(r.status, JOURNAL_OK);
        assert_int_equal(held_calls, 50); /* a new path: every chunk */
        assert_int_equal(touch_calls, 0);
        c.base = r.seq;
        journal_result_clear(&r);
        /* one chunk replaced by one the account holds, one by one it lacks */
        c.manifest.chunks[10].hash = srvtest_hash("new");
        assert_int_equal(f->m->ops->chunk_add(f->m, f->alice, &c.manifest.chunks[10].hash, 10), 0);
        c.manifest.chunks[20].hash = srvtest_hash("lacking");
        c.hash = srvtest_hash("v2");
        held_calls = touch_calls = 0;
        assert_int_equal(journal_commit(&fm.base, f->alice, DEV_A, &c, 1, &r, &seq), 0);
        assert_int_equal(r.status, JOURNAL_MISSING_CHUNKS);
        assert_int_equal(r.n_missing, 1);
        assert_int_equal(held_calls, 2);
        /* waiting for the missing one: the 49 held are touched */
        assert_int_equal(touch_calls, 49);
        journal_result_clear(&r);
        manifest_free(&c.manifest);
}

/* Chunks named by letters ("ab": two chunks of 10 bytes); held by alice
 * unless the letter is upper-case. */
static void letters(struct fix *f, const char *s, struct manifest *m)
{
        for (char one[2] = {0, 0}; (one[0] = *s); s++) {
                struct hash h = srvtest_hash(one);

                assert_int_equal(manifest_add(m, &h, 10), 0);
                if (*s >= 'a' && *s <= 'z')
                        assert_int_equal(f->m->ops->chunk_add(f->m, f->alice, &h, 10), 0);
        }
}

/* Puts "p" (on base) by the patch "start,del,letters;..." (no patch for
 * base -1: a full put) with the size of want; when OK, checks that the
 * stored chunks are want. Returns the status. */
static int patch_put(struct fix *f, int64_t base, const char *edits, const char *want)
{
        struct patch_edit ed[4] = {0};
        struct journal_change c = {.op = JOURNAL_PUT,
                                   .path = "p",
                                   .base = base < 0 ? 0 : base,
                                   .kind = KIND_FILE,
                                   .has_hash = 1,
                                   .hash = srvtest_hash(want),
                                   .has_patch = base >= 0,
                                   .patch = ed};
        struct journal_result r;
        struct manifest w = MANIFEST_INIT;
        struct meta_entry e;
        uint8_t *wb = NULL;
        size_t wl = 0;
        char ins[16];
        int status;

        for (; *edits && c.n_patch < 4; c.n_patch++) {
                ins[0] = '\0';
                sscanf(edits, "%" SCNu64 ",%" SCNu64 ",%15[a-zA-Z]", &ed[c.n_patch].start,
                       &ed[c.n_patch].del, ins);
                letters(f, ins, &ed[c.n_patch].ins);
                edits = strchr(edits, ';') ? strchr(edits, ';') + 1 : "";
        }
        letters(f, want, &w);
        if (base < 0)
                letters(f, want, &c.manifest);
        c.size = w.size;
        r = commit1(f, f->alice, DEV_A, &c, NULL);
        if ((status = r.status) == JOURNAL_OK) {
                assert_int_equal(journal_get(f->m, f->alice, "p", &e), 0);
                assert_int_equal(manifest_to_blob(&w, &wb, &wl), 0);
                assert_true(e.chunks_len == wl && (!wl || !memcmp(e.chunks, wb, wl)));
                meta_entry_clear(&e);
        }
        journal_result_clear(&r);
        for (size_t i = 0; i < c.n_patch; i++)
                manifest_free(&ed[i].ins);
        manifest_free(&w);
        free(wb);
        return status;
}

static void test_patch(void **state)
{
        struct fix *f = *state;
        int64_t seq = 1;

        assert_int_equal(patch_put(f, 0, "0,0,ab", "ab"), JOURNAL_CONFLICT); /* no base */
        assert_int_equal(patch_put(f, -1, "", "abcdef"), JOURNAL_OK);
        assert_int_equal(patch_put(f, seq, "2,1,x", "abxdef"), JOURNAL_OK);      /* overwrite */
        assert_int_equal(patch_put(f, ++seq, "3,0,yz", "abxyzdef"), JOURNAL_OK); /* insert */
        assert_int_equal(patch_put(f, ++seq, "8,0,g", "abxyzdefg"), JOURNAL_OK); /* append */
        assert_int_equal(patch_put(f, ++seq, "4,5,", "abxy"), JOURNAL_OK);       /* truncate */
        /* indices into the base list as it was: ascending, not overlapping */
        assert_int_equal(patch_put(f, ++seq, "0,1,q;3,1,", "qbx"), JOURNAL_OK);
        assert_int_equal(patch_put(f, ++seq, "1,0,r;1,0,s", "qrsbx"), JOURNAL_OK);
        assert_int_equal(patch_put(f, ++seq, "0,5,", ""), JOURNAL_OK); /* delete all */
        assert_int_equal(patch_put(f, ++seq, "0,0,abc", "abc"), JOURNAL_OK);
        seq++;
        assert_int_equal(patch_put(f, seq, "4,0,d", "abcd"), JOURNAL_INVALID); /* start > n */
        assert_int_equal(patch_put(f, seq, "2,2,", "ab"), JOURNAL_INVALID);    /* past the end */
        assert_int_equal(patch_put(f, seq, "2,0,d;1,0,e", "aebdc"), JOURNAL_INVALID); /* order */
        assert_int_equal(patch_put(f, seq, "0,2,;1,1,", "c"), JOURNAL_INVALID);       /* overlap */
        assert_int_equal(patch_put(f, seq, "1,1,xy", "abc"), JOURNAL_INVALID);        /* size */
        assert_int_equal(patch_put(f, seq - 1, "0,1,x", "xbc"), JOURNAL_CONFLICT);    /* stale */
        assert_int_equal(patch_put(f, seq, "1,1,X", "aXc"), JOURNAL_MISSING_CHUNKS);
        assert_int_equal(space_seq(f, f->alice), seq);
        assert_int_equal(patch_put(f, seq, "1,1,x", "axc"), JOURNAL_OK);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_new_put, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stale_base_conflict, setup, teardown),
            cmocka_unit_test_setup_teardown(test_same_content_noop, setup, teardown),
            cmocka_unit_test_setup_teardown(test_mtime_change_on_current_base, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delete_absent_noop, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delete_stale_conflict, setup, teardown),
            cmocka_unit_test_setup_teardown(test_put_on_tombstone_accepted, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rename_conflicts, setup, teardown),
            cmocka_unit_test_setup_teardown(test_missing_chunks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_invalid_changes, setup, teardown),
            cmocka_unit_test_setup_teardown(test_seq_strictly_increasing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_changes_since_paging, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_prefix, setup, teardown),
            cmocka_unit_test_setup_teardown(test_user_isolation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_commit_looks_up_new_chunks_only, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
