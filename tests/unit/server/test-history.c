/* test-history: the version history the journal leaves (journal.c over the
 * SQLite store): a version for every put, delete and both ends of a
 * rename, with commit times and device names; restore as a new commit
 * (unchanged, tombstone, unknown version, restore to another path); the
 * trash; the two retention rules; that a commit waiting for missing chunks
 * touches the ones it has (and one that goes through touches none); and
 * the space as of a seq or a time (snapshot_list), which pruning limits;
 * paths compared bytewise. */
#include <time.h>

#include "jfix.h"

/* jfix's accounts, and DEV_A a known device of alice's; DEV_B is not
 * (removed, say). */
static int history_setup(void **state)
{
        struct meta_device d = {0};
        struct hash tok = srvtest_hash("token-a");
        struct fix *f;

        setup(state);
        f = *state;
        snprintf(d.id, sizeof(d.id), "%s", DEV_A);
        d.user_id = f->alice;
        snprintf(d.name, sizeof(d.name), "laptop");
        assert_int_equal(f->m->ops->device_add(f->m, &d, &tok), 0);
        return 0;
}

/* 1 if h is the hash of the string s. */
static int hash_of(const struct hash *h, const char *s)
{
        struct hash x = srvtest_hash(s);

        return hash_equal(h, &x);
}

/* Commits c at time now; it must go through. Returns its seq. */
static int64_t commit_at(struct fix *f, int64_t user, const char *dev, struct journal_change *c,
                         int64_t now)
{
        struct journal_result res;
        int64_t seq, s;

        assert_int_equal(journal_commit_at(f->m, user, dev, c, 1, &res, &seq, now), 0);
        manifest_free(&c->manifest);
        assert_int_equal(res.status, JOURNAL_OK);
        s = res.seq;
        journal_result_clear(&res);
        return s;
}

/* What version_list gave, newest first. */
struct vlist {
        int n;
        int64_t seq[16], time[16];
        int deleted[16], has_chunks[16];
        char device[16][META_DEVICE_ID_LEN + 1];
        char name[16][META_DEVICE_NAME_MAX + 1];
        struct hash hash[16];
};

static int vlist_cb(const struct meta_entry *e, const char *device_name, void *userdata)
{
        struct vlist *v = userdata;

        assert_true(v->n < 16);
        v->seq[v->n] = e->seq;
        v->time[v->n] = e->time;
        v->deleted[v->n] = e->deleted;
        v->has_chunks[v->n] = e->chunks_len > 0;
        v->hash[v->n] = e->hash;
        snprintf(v->device[v->n], sizeof(v->device[0]), "%s", e->device);
        snprintf(v->name[v->n], sizeof(v->name[0]), "%s", device_name);
        v->n++;
        return 0;
}

static struct vlist versions(struct fix *f, int64_t user, const char *path)
{
        struct vlist v;

        memset(&v, 0, sizeof(v));
        assert_int_equal(f->m->ops->version_list(f->m, user, path, 100, vlist_cb, &v), 0);
        return v;
}

static void test_versions_recorded(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "one", 1);
        struct journal_result res;
        struct meta_entry e;
        struct vlist v;
        int64_t s1, s2, s3, s5, seq;

        s1 = commit_at(f, f->alice, DEV_A, &c, 100);
        c = file_put(f, f->alice, "a.txt", s1, "two", 1);
        s2 = commit_at(f, f->alice, DEV_B, &c, 200);
        /* a retried commit is a no-op: no version either */
        c = file_put(f, f->alice, "a.txt", s1, "two", 1);
        assert_int_equal(journal_commit_at(f->m, f->alice, DEV_B, &c, 1, &res, &seq, 250), 0);
        manifest_free(&c.manifest);
        assert_int_equal(res.status, JOURNAL_OK);
        assert_int_equal(res.seq, s2);
        journal_result_clear(&res);
        c = simple(JOURNAL_RENAME, "b.txt", s2);
        c.from = "a.txt";
        s3 = commit_at(f, f->alice, DEV_A, &c, 300);
        c = simple(JOURNAL_DELETE, "b.txt", s3);
        s5 = commit_at(f, f->alice, DEV_A, &c, 400);
        assert_int_equal(s5, s3 + 2); /* the rename's tombstone took s3 + 1 */

        v = versions(f, f->alice, "a.txt");
        assert_int_equal(v.n, 3);
        assert_int_equal(v.seq[0], s3 + 1); /* the rename's old end */
        assert_true(v.deleted[0]);
        assert_int_equal(v.time[0], 300);
        assert_int_equal(v.seq[1], s2);
        assert_int_equal(v.time[1], 200);
        assert_string_equal(v.device[1], DEV_B);
        assert_string_equal(v.name[1], ""); /* unknown device */
        assert_int_equal(v.seq[2], s1);
        assert_int_equal(v.time[2], 100);
        assert_string_equal(v.name[2], "laptop");
        assert_false(v.has_chunks[2]); /* listings leave chunks out */

        v = versions(f, f->alice, "b.txt");
        assert_int_equal(v.n, 2);
        assert_int_equal(v.seq[0], s5);
        assert_true(v.deleted[0]);
        assert_int_equal(v.time[0], 400);
        assert_int_equal(v.seq[1], s3); /* the rename's new end: two's content */
        assert_false(v.deleted[1]);
        assert_true(hash_of(&v.hash[1], "two"));

        /* the entries carry their commit time too */
        assert_int_equal(journal_get(f->m, f->alice, "b.txt", &e), 0);
        assert_int_equal(e.time, 400);
        meta_entry_clear(&e);
        /* a version by seq, with its chunks; a seq of another path is not */
        assert_int_equal(f->m->ops->version_get(f->m, f->alice, "a.txt", s1, &e), 0);
        assert_true(e.chunks_len > 0);
        assert_true(hash_of(&e.hash, "one"));
        meta_entry_clear(&e);
        assert_int_equal(f->m->ops->version_get(f->m, f->alice, "a.txt", s3, &e), -ENOENT);
        /* bob sees none of it */
        assert_int_equal(versions(f, f->bob, "a.txt").n, 0);
}

static void test_restore(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a.txt", 0, "one", 1);
        struct journal_restore r;
        struct meta_entry e, v1;
        int64_t s1, s2, s4, space;

        s1 = commit_at(f, f->alice, DEV_A, &c, 100);
        c = file_put(f, f->alice, "a.txt", s1, "two", 1);
        s2 = commit_at(f, f->alice, DEV_A, &c, 200);
        assert_int_equal(f->m->ops->version_get(f->m, f->alice, "a.txt", s1, &v1), 0);

        /* version 1 back as a new version by the calling device */
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "a.txt", s1, NULL, 500, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORED);
        assert_int_equal(r.from, s1);
        assert_int_equal(r.entry.seq, s2 + 1);
        assert_string_equal(r.entry.device, DEV_B);
        assert_int_equal(r.entry.time, 500);
        assert_true(hash_equal(&r.entry.hash, &v1.hash));
        assert_int_equal(r.entry.size, v1.size);
        assert_int_equal(r.entry.mode, v1.mode);
        assert_int_equal(r.entry.mtime_ns, v1.mtime_ns);
        assert_int_equal(r.entry.chunks_len, v1.chunks_len);
        assert_memory_equal(r.entry.chunks, v1.chunks, v1.chunks_len);
        journal_restore_clear(&r);
        assert_int_equal(journal_get(f->m, f->alice, "a.txt", &e), 0);
        assert_int_equal(e.seq, s2 + 1);
        assert_true(hash_equal(&e.hash, &v1.hash));
        meta_entry_clear(&e);
        /* history was not rewritten: version 1 is as it was */
        assert_int_equal(f->m->ops->version_get(f->m, f->alice, "a.txt", s1, &e), 0);
        assert_int_equal(e.time, 100);
        assert_string_equal(e.device, DEV_A);
        meta_entry_clear(&e);
        assert_int_equal(versions(f, f->alice, "a.txt").n, 3);

        /* again: already the current content, nothing committed */
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "a.txt", s1, NULL, 600, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORE_UNCHANGED);
        assert_int_equal(r.entry.seq, s2 + 1);
        journal_restore_clear(&r);
        assert_int_equal(f->m->ops->seq_current(f->m, f->alice, &space), 0);
        assert_int_equal(space, s2 + 1);

        /* unknown versions, other users' paths */
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "a.txt", 99, NULL, 600, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORE_NOT_FOUND);
        journal_restore_clear(&r);
        assert_int_equal(journal_restore(f->m, f->bob, DEV_B, "a.txt", s1, NULL, 600, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORE_NOT_FOUND);
        journal_restore_clear(&r);
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "../x", 0, NULL, 600, &r), -EINVAL);

        /* a delete cannot be restored; the newest live version can */
        c = simple(JOURNAL_DELETE, "a.txt", s2 + 1);
        s4 = commit_at(f, f->alice, DEV_A, &c, 700);
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "a.txt", s4, NULL, 800, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORE_TOMBSTONE);
        journal_restore_clear(&r);
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "a.txt", 0, NULL, 800, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORED);
        assert_int_equal(r.from, s2 + 1); /* the restored copy of one */
        assert_int_equal(r.entry.seq, s4 + 1);
        assert_false(r.entry.deleted);
        assert_true(hash_equal(&r.entry.hash, &v1.hash));
        journal_restore_clear(&r);

        /* to another path: free, then taken */
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "a.txt", s2, "c.txt", 900, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORED);
        assert_string_equal(r.entry.path, "c.txt");
        assert_int_equal(r.entry.seq, s4 + 2);
        assert_true(hash_of(&r.entry.hash, "two"));
        journal_restore_clear(&r);
        assert_int_equal(journal_get(f->m, f->alice, "a.txt", &e), 0);
        assert_int_equal(e.seq, s4 + 1); /* the source path is untouched */
        meta_entry_clear(&e);
        assert_int_equal(journal_restore(f->m, f->alice, DEV_B, "a.txt", s1, "c.txt", 900, &r), 0);
        assert_int_equal(r.status, JOURNAL_RESTORE_TARGET_LIVE);
        assert_int_equal(r.entry.seq, s4 + 2);
        journal_restore_clear(&r);
        meta_entry_clear(&v1);
}

struct trash {
        int n;
        char path[8][32];
        int64_t tomb_seq[8], tomb_time[8], last_seq[8];
        char name[8][META_DEVICE_NAME_MAX + 1];
};

static int trash_cb(const struct meta_entry *tomb, const char *device_name,
                    const struct meta_entry *last, void *userdata)
{
        struct trash *t = userdata;

        assert_true(t->n < 8);
        assert_true(tomb->deleted);
        assert_false(last->deleted);
        assert_string_equal(tomb->path, last->path);
        snprintf(t->path[t->n], sizeof(t->path[0]), "%s", tomb->path);
        snprintf(t->name[t->n], sizeof(t->name[0]), "%s", device_name);
        t->tomb_seq[t->n] = tomb->seq;
        t->tomb_time[t->n] = tomb->time;
        t->last_seq[t->n] = last->seq;
        t->n++;
        return 0;
}

static void test_trash(void **state)
{
        struct fix *f = *state;
        struct journal_change c;
        struct trash t;
        int64_t sa, sb, sd, tb;

        c = file_put(f, f->alice, "docs/a", 0, "a1", 1);
        sa = commit_at(f, f->alice, DEV_A, &c, 100);
        c = file_put(f, f->alice, "docs/a", sa, "a2", 1);
        sa = commit_at(f, f->alice, DEV_A, &c, 110);
        c = file_put(f, f->alice, "b", 0, "b1", 1);
        sb = commit_at(f, f->alice, DEV_A, &c, 120);
        c = simple(JOURNAL_PUT, "d", 0);
        c.kind = KIND_DIR;
        sd = commit_at(f, f->alice, DEV_A, &c, 130);
        c = file_put(f, f->alice, "kept", 0, "k", 1);
        commit_at(f, f->alice, DEV_A, &c, 140);
        c = simple(JOURNAL_DELETE, "docs/a", sa);
        commit_at(f, f->alice, DEV_A, &c, 300);
        c = simple(JOURNAL_DELETE, "b", sb);
        tb = commit_at(f, f->alice, DEV_B, &c, 500);
        c = simple(JOURNAL_DELETE, "d", sd);
        commit_at(f, f->alice, DEV_A, &c, 400);

        memset(&t, 0, sizeof(t));
        assert_int_equal(f->m->ops->trash_list(f->m, f->alice, NULL, trash_cb, &t), 0);
        assert_int_equal(t.n, 3);            /* "kept" is live: not in the trash */
        assert_string_equal(t.path[0], "b"); /* newest delete first */
        assert_int_equal(t.tomb_seq[0], tb);
        assert_int_equal(t.tomb_time[0], 500);
        assert_string_equal(t.name[0], "");
        assert_int_equal(t.last_seq[0], sb);
        assert_string_equal(t.path[1], "d");
        assert_string_equal(t.path[2], "docs/a");
        assert_int_equal(t.last_seq[2], sa); /* the newest live version */
        assert_string_equal(t.name[2], "laptop");

        memset(&t, 0, sizeof(t));
        assert_int_equal(f->m->ops->trash_list(f->m, f->alice, "docs", trash_cb, &t), 0);
        assert_int_equal(t.n, 1);
        assert_string_equal(t.path[0], "docs/a");

        /* pruned away entirely: no longer in the trash */
        int64_t pruned;
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 1000, 0, &pruned), 0);
        memset(&t, 0, sizeof(t));
        assert_int_equal(f->m->ops->trash_list(f->m, f->alice, NULL, trash_cb, &t), 0);
        assert_int_equal(t.n, 0);
        memset(&t, 0, sizeof(t));
        assert_int_equal(f->m->ops->trash_list(f->m, f->bob, NULL, trash_cb, &t), 0);
        assert_int_equal(t.n, 0);
}

static void test_retention_keep_days(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a", 0, "v1", 1);
        struct meta_entry e;
        struct vlist v;
        int64_t s1, s2, s3, pruned;

        s1 = commit_at(f, f->alice, DEV_A, &c, 1000);
        c = file_put(f, f->alice, "a", s1, "v2", 1);
        s2 = commit_at(f, f->alice, DEV_A, &c, 2000); /* supersedes v1 at 2000 */
        c = file_put(f, f->alice, "a", s2, "v3", 1);
        s3 = commit_at(f, f->alice, DEV_A, &c, 3000); /* supersedes v2 at 3000 */

        /* superseded exactly at the limit: kept ("more than" the limit ago) */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 2000, 0, &pruned), 0);
        assert_int_equal(pruned, 0);
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 2001, 0, &pruned), 0);
        assert_int_equal(pruned, 1);
        v = versions(f, f->alice, "a");
        assert_int_equal(v.n, 2);
        assert_int_equal(v.seq[0], s3);
        assert_int_equal(v.seq[1], s2);
        /* the current version stays whatever the limit */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, INT64_MAX, 0, &pruned), 0);
        assert_int_equal(pruned, 1);
        v = versions(f, f->alice, "a");
        assert_int_equal(v.n, 1);
        assert_int_equal(v.seq[0], s3);
        /* and so does a current tombstone */
        c = simple(JOURNAL_DELETE, "a", s3);
        commit_at(f, f->alice, DEV_A, &c, 4000);
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, INT64_MAX, 0, &pruned), 0);
        assert_int_equal(pruned, 1);
        v = versions(f, f->alice, "a");
        assert_int_equal(v.n, 1);
        assert_true(v.deleted[0]);
        assert_int_equal(journal_get(f->m, f->alice, "a", &e), 0);
        assert_true(e.deleted);
        meta_entry_clear(&e);
}

static void test_retention_keep_versions(void **state)
{
        struct fix *f = *state;
        struct journal_change c;
        char content[16];
        struct vlist v;
        int64_t s[5], base = 0, pruned;
        int i;

        for (i = 0; i < 5; i++) {
                snprintf(content, sizeof(content), "v%d", i);
                c = file_put(f, f->alice, "a", base, content, 1);
                base = s[i] = commit_at(f, f->alice, DEV_A, &c, 100 + i);
        }
        c = file_put(f, f->alice, "b", 0, "b0", 1);
        base = commit_at(f, f->alice, DEV_A, &c, 200);
        c = file_put(f, f->alice, "b", base, "b1", 1);
        commit_at(f, f->alice, DEV_A, &c, 201);
        c = file_put(f, f->bob, "a", 0, "bob0", 1);
        base = commit_at(f, f->bob, DEV_B, &c, 200);
        c = file_put(f, f->bob, "a", base, "bob1", 1);
        commit_at(f, f->bob, DEV_B, &c, 201);
        c = file_put(f, f->bob, "a", base + 1, "bob2", 1);
        commit_at(f, f->bob, DEV_B, &c, 202);

        /* at least 2 newer versions: a's first three go, b's none */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 0, 2, &pruned), 0);
        assert_int_equal(pruned, 3);
        v = versions(f, f->alice, "a");
        assert_int_equal(v.n, 2);
        assert_int_equal(v.seq[0], s[4]);
        assert_int_equal(v.seq[1], s[3]);
        assert_int_equal(versions(f, f->alice, "b").n, 2);
        assert_int_equal(versions(f, f->bob, "a").n, 3); /* another account */
        /* 1: only the current version of each path */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 0, 1, &pruned), 0);
        assert_int_equal(pruned, 2);
        assert_int_equal(versions(f, f->alice, "a").seq[0], s[4]);
        assert_int_equal(versions(f, f->alice, "b").n, 1);
        /* both rules off: nothing */
        assert_int_equal(f->m->ops->version_prune(f->m, f->bob, 0, 0, &pruned), 0);
        assert_int_equal(pruned, 0);
}

/* A commit that waits for missing chunks touches the ones it already has,
 * so that they outlive the grace while the client uploads the rest, even
 * with nothing referring to them; a commit that goes through touches
 * nothing: its version refers to its chunks, which keeps them by itself. */
static void test_commit_touches_chunks(void **state)
{
        struct fix *f = *state;
        int64_t t = (int64_t)time(NULL) + 100000, s1, dropped;
        struct journal_change c = file_put(f, f->alice, "a", 0, "have", 1);
        struct hash have = srvtest_hash("have"), lack = srvtest_hash("lack");
        struct journal_result res;
        int64_t seq;

        /* "have" is held; "lack" is not: the commit waits for it */
        assert_int_equal(manifest_add(&c.manifest, &lack, 4), 0);
        c.size += 4;
        assert_int_equal(journal_commit_at(f->m, f->alice, DEV_A, &c, 1, &res, &seq, t), 0);
        assert_int_equal(res.status, JOURNAL_MISSING_CHUNKS);
        assert_int_equal(res.n_missing, 1);
        assert_true(hash_equal(&res.missing[0], &lack));
        journal_result_clear(&res);
        manifest_free(&c.manifest);
        /* "have" was touched at t: a GC with the cutoff at t keeps it */
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->chunk_refs_drop(f->m, f->alice, t, &dropped), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(dropped, 0);
        assert_int_equal(f->m->ops->chunk_held(f->m, f->alice, &have, NULL), 1);
        /* a commit that goes through at t + 10 touches nothing... */
        c = file_put(f, f->alice, "b", 0, "used", 1);
        s1 = commit_at(f, f->alice, DEV_A, &c, t + 10);
        assert_true(s1 > 0);
        /* ...and needs not: "used" is referenced, kept whatever the
         * cutoff, while the unreferenced "have" goes once past t */
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->chunk_refs_drop(f->m, f->alice, t + 100, &dropped), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(dropped, 1);
        assert_int_equal(f->m->ops->chunk_held(f->m, f->alice, &have, NULL), 0);
        assert_int_equal(f->m->ops->chunk_held(f->m, f->alice, &(struct hash){{0}}, NULL), 0);
        {
                struct hash used = srvtest_hash("used");

                assert_int_equal(f->m->ops->chunk_held(f->m, f->alice, &used, NULL), 1);
        }
}

/* What snapshot_list gave, in order. */
struct slist {
        int n;
        char path[16][32];
        int64_t seq[16];
        int has_chunks[16];
        struct hash hash[16];
};

static int slist_cb(const struct meta_entry *e, void *userdata)
{
        struct slist *l = userdata;

        assert_true(l->n < 16);
        assert_false(e->deleted);
        snprintf(l->path[l->n], sizeof(l->path[0]), "%s", e->path);
        l->seq[l->n] = e->seq;
        l->has_chunks[l->n] = e->chunks_len > 0;
        l->hash[l->n] = e->hash;
        l->n++;
        return 0;
}

/* snapshot_list of user as of seq at (time < 0) or time; r its result. */
static struct slist snap(struct fix *f, int64_t user, int64_t at, int64_t time, const char *prefix,
                         const char *after, int64_t limit, int *r, int64_t *resolved)
{
        struct meta_snapshot q = {
            .at = at, .time = time, .prefix = prefix, .after = after, .limit = limit};
        struct slist l;

        memset(&l, 0, sizeof(l));
        *r = f->m->ops->snapshot_list(f->m, user, &q, slist_cb, &l);
        if (resolved)
                *resolved = q.at;
        return l;
}

/* The space as of a seq or a time: the newest version of each path up to
 * there, without the deleted ones, in path order, with chunks; a prefix
 * takes the path and what is under it only; pages by after and limit. */
static void test_snapshot(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a", 0, "a1", 1);
        int64_t s_a1, s_bx, s_by, s_dash, s_bang, s_a2, s_del, s_c, got;
        struct slist l;
        int r;

        s_a1 = commit_at(f, f->alice, DEV_A, &c, 1000);
        c = file_put(f, f->alice, "b/x", 0, "bx", 1);
        s_bx = commit_at(f, f->alice, DEV_A, &c, 1000);
        c = file_put(f, f->alice, "b-x", 0, "dash", 1); /* '-' sorts before '/' */
        s_dash = commit_at(f, f->alice, DEV_A, &c, 1500);
        c = file_put(f, f->alice, "b!", 0, "bang", 1);
        s_bang = commit_at(f, f->alice, DEV_A, &c, 1500);
        c = file_put(f, f->alice, "b/y", 0, "by", 1);
        s_by = commit_at(f, f->alice, DEV_A, &c, 2000);
        c = file_put(f, f->alice, "a", s_a1, "a2", 1);
        s_a2 = commit_at(f, f->alice, DEV_A, &c, 3000);
        c = simple(JOURNAL_DELETE, "b/x", s_bx);
        s_del = commit_at(f, f->alice, DEV_A, &c, 4000);
        c = simple(JOURNAL_RENAME, "c", s_by);
        c.from = "b/y";
        s_c = commit_at(f, f->alice, DEV_A, &c, 5000);
        c = file_put(f, f->bob, "a", 0, "bob", 1);
        commit_at(f, f->bob, DEV_B, &c, 1000);

        l = snap(f, f->alice, s_by, -1, NULL, NULL, 100, &r, &got);
        assert_int_equal(r, 0);
        assert_int_equal(got, s_by);
        assert_int_equal(l.n, 5);
        assert_string_equal(l.path[0], "a");
        assert_int_equal(l.seq[0], s_a1);
        assert_true(hash_of(&l.hash[0], "a1"));
        assert_true(l.has_chunks[0]);
        assert_string_equal(l.path[1], "b!");
        assert_int_equal(l.seq[1], s_bang);
        assert_string_equal(l.path[2], "b-x");
        assert_int_equal(l.seq[2], s_dash);
        assert_string_equal(l.path[3], "b/x");
        assert_string_equal(l.path[4], "b/y");
        /* after the edit and the delete: a's new version, no b/x */
        l = snap(f, f->alice, s_del, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(l.n, 4);
        assert_int_equal(l.seq[0], s_a2);
        assert_true(hash_of(&l.hash[0], "a2"));
        assert_string_equal(l.path[3], "b/y");
        /* now (a seq past the end is now): the rename moved b/y to c */
        l = snap(f, f->alice, INT64_MAX, -1, NULL, NULL, 100, &r, &got);
        assert_int_equal(r, 0);
        assert_int_equal(got, s_c + 1);
        assert_int_equal(l.n, 4);
        assert_string_equal(l.path[3], "c");
        assert_int_equal(l.seq[3], s_c);
        assert_true(hash_of(&l.hash[3], "by"));
        /* a prefix is the folder and what is under it, not b! or b-x */
        l = snap(f, f->alice, s_by, -1, "b", NULL, 100, &r, NULL);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.path[0], "b/x");
        assert_string_equal(l.path[1], "b/y");
        l = snap(f, f->alice, s_by, -1, "b/y", NULL, 100, &r, NULL);
        assert_int_equal(l.n, 1);
        /* pages: after the last path of the previous one */
        l = snap(f, f->alice, s_by, -1, NULL, NULL, 2, &r, NULL);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.path[1], "b!");
        l = snap(f, f->alice, s_by, -1, NULL, "b!", 2, &r, NULL);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.path[0], "b-x");
        assert_string_equal(l.path[1], "b/x");
        l = snap(f, f->alice, s_by, -1, "b", "b/x", 2, &r, NULL);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.path[0], "b/y");
        /* by time: the newest seq committed at or before it */
        l = snap(f, f->alice, 0, 1999, NULL, NULL, 100, &r, &got);
        assert_int_equal(got, s_bang);
        assert_int_equal(l.n, 4);
        l = snap(f, f->alice, 0, 4000, NULL, NULL, 100, &r, &got);
        assert_int_equal(got, s_del);
        l = snap(f, f->alice, 0, 999, NULL, NULL, 100, &r, &got);
        assert_int_equal(r, 0);
        assert_int_equal(got, 0);
        assert_int_equal(l.n, 0);
        /* another account's space */
        l = snap(f, f->bob, INT64_MAX, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(l.n, 1);
        assert_true(hash_of(&l.hash[0], "bob"));
}

/* Once versions are pruned, a snapshot from before the newest version that
 * superseded one of them could miss files: refused. Later ones still work. */
static void test_snapshot_pruned(void **state)
{
        struct fix *f = *state;
        struct journal_change c = file_put(f, f->alice, "a", 0, "a1", 1);
        int64_t s_a1, s_b, s_a2, s_a3, pruned, got;
        struct slist l;
        int r;

        s_a1 = commit_at(f, f->alice, DEV_A, &c, 1000);
        c = file_put(f, f->alice, "b", 0, "b1", 1);
        s_b = commit_at(f, f->alice, DEV_A, &c, 1100);
        c = file_put(f, f->alice, "a", s_a1, "a2", 1);
        s_a2 = commit_at(f, f->alice, DEV_A, &c, 1200);
        c = file_put(f, f->alice, "a", s_a2, "a3", 1);
        s_a3 = commit_at(f, f->alice, DEV_A, &c, 1300);
        l = snap(f, f->alice, s_b, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 2);

        /* a1 goes (superseded at 1200 by a2) */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 1201, 0, &pruned), 0);
        assert_int_equal(pruned, 1);
        snap(f, f->alice, s_b, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, -ESTALE);
        snap(f, f->alice, 0, 1100, NULL, NULL, 100, &r, &got);
        assert_int_equal(r, -ESTALE);
        l = snap(f, f->alice, s_a2, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 2);
        assert_true(hash_of(&l.hash[0], "a2"));
        /* a2 goes too: the horizon moves to a3 */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 0, 1, &pruned), 0);
        assert_int_equal(pruned, 1);
        snap(f, f->alice, s_a2, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, -ESTALE);
        l = snap(f, f->alice, s_a3, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 2);
        /* a prune that deletes nothing leaves the horizon where it was */
        assert_int_equal(f->m->ops->version_prune(f->m, f->alice, 0, 1, &pruned), 0);
        assert_int_equal(pruned, 0);
        l = snap(f, f->alice, s_a3, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        /* bob's space has its own horizon */
        c = file_put(f, f->bob, "x", 0, "x", 1);
        commit_at(f, f->bob, DEV_B, &c, 1000);
        l = snap(f, f->bob, 1, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 1);
}

/* Paths compare bytewise in every backend (PostgreSQL: COLLATE "C"): a
 * prefix holds the folder's paths only, not its siblings "docs!", "docs-x",
 * "docs0" or "docs\xc3\xa9", which sort around "docs/"; listings order upper
 * case before lower case before non-ASCII. */
static void test_bytewise_paths(void **state)
{
        static const char *const paths[] = {"docs!", "docs-x",       "docs/x", "docs/\xc3\xa9",
                                            "docs0", "docs\xc3\xa9", "B",      "a"};
        struct fix *f = *state;
        struct journal_change c;
        struct trash t;
        struct slist l;
        int64_t seq[8], top = 0;
        size_t i;
        int r;

        for (i = 0; i < 8; i++) {
                c = file_put(f, f->alice, paths[i], 0, paths[i], 1);
                seq[i] = commit_at(f, f->alice, DEV_A, &c, 100 + (int64_t)i);
        }
        for (i = 0; i < 6; i++) {
                c = simple(JOURNAL_DELETE, paths[i], seq[i]);
                top = commit_at(f, f->alice, DEV_A, &c, 200 + (int64_t)i);
        }
        memset(&t, 0, sizeof(t));
        assert_int_equal(f->m->ops->trash_list(f->m, f->alice, "docs", trash_cb, &t), 0);
        assert_int_equal(t.n, 2);
        assert_string_equal(t.path[0], "docs/\xc3\xa9"); /* newest delete first */
        assert_string_equal(t.path[1], "docs/x");

        /* as of before the deletes: by path, bytewise */
        l = snap(f, f->alice, seq[7], -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 8);
        assert_string_equal(l.path[0], "B");
        assert_string_equal(l.path[1], "a");
        assert_string_equal(l.path[2], "docs!");
        assert_string_equal(l.path[3], "docs-x");
        assert_string_equal(l.path[4], "docs/x");
        assert_string_equal(l.path[5], "docs/\xc3\xa9");
        assert_string_equal(l.path[6], "docs0");
        assert_string_equal(l.path[7], "docs\xc3\xa9");
        l = snap(f, f->alice, seq[7], -1, "docs", NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.path[0], "docs/x");
        assert_string_equal(l.path[1], "docs/\xc3\xa9");
        l = snap(f, f->alice, seq[7], -1, NULL, "docs/x", 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.path[0], "docs/\xc3\xa9");
        /* now: the deleted ones are gone */
        l = snap(f, f->alice, top, -1, NULL, NULL, 100, &r, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.path[0], "B");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_versions_recorded, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_restore, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_trash, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_retention_keep_days, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_retention_keep_versions, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_commit_touches_chunks, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_snapshot, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_snapshot_pruned, history_setup, teardown),
            cmocka_unit_test_setup_teardown(test_bytewise_paths, history_setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
