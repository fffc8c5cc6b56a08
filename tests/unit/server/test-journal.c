/* test-journal: the compare-and-set rules of the space journal (journal.c)
 * on a real SQLite store in a temporary directory: puts, conflicts, no-op
 * retries, deletes and tombstones, edit-vs-delete, renames, missing chunks,
 * seq order, paging, user isolation. What the journal asks of the store
 * (transactions, chunk lookups) and puts by patch: test-journal-calls.c. */
#include "jfix.h"

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
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
