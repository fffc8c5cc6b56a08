/* test-journal-calls: what the space journal (journal.c) asks of the
 * metadata store, on a real store: a commit is all or nothing (a store that
 * fails mid-way leaves no trace), a new version looks up only the chunks its
 * current version lacks and touches chunks only when some are missing, and
 * puts by patch against the base version's chunk list. */
#include "jfix.h"

#include "patch.h"

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

/* Makes fm the store of f passed through the f_* functions above, its
 * entry_put failing on call number 2 - puts. */
static void wrap_store(struct fix *f, struct failing *fm, int puts)
{
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
        fm->base.ops = &failing_ops;
        fm->real = f->m;
        fm->puts = puts;
}

static void test_all_or_nothing(void **state)
{
        struct fix *f = *state;
        struct failing fm;
        struct journal_change cs[2];
        struct journal_result rs[2];
        struct meta_entry e;
        int64_t seq = -1;

        wrap_store(f, &fm, 0);

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

        wrap_store(f, &fm, -1000); /* entry_put never fails here */
        failing_ops.chunk_held = c_chunk_held;
        failing_ops.chunk_touch = c_chunk_touch;
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
            cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_commit_looks_up_new_chunks_only, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
