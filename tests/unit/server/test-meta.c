/* test-meta: the metadata store's contract (meta.h), the same cases on
 * every backend: on SQLite as `meta`, and on PostgreSQL as `meta-pg` (a
 * fresh database on FERRY_TEST_PG, see srvtest.h) — users (a space comes
 * with each), devices and tokens (listed by created, then insertion),
 * chunk ownership and touching, entries with every field, the space
 * counter, rolled-back transactions, everything surviving a reopen, and
 * listings in bytewise path order, "under P" exactly, changes by seq,
 * paged, with tombstones on request, and transfer records completed by
 * a commit. What only one backend does is in
 * test-meta_sqlite.c and test-meta_pg.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "manifest.h"
#include "meta.h"
#include "srvtest.h"

struct fix {
        char *dir;
        char *uri; /* the PostgreSQL database, or NULL for SQLite */
        struct meta *m;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        assert_int_equal(srvtest_meta_open(f->dir, &f->uri, &f->m), 0);
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

static void test_users(void **state)
{
        struct fix *f = *state;
        struct meta_user u;
        int64_t id1, id2, seq = -1;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x.org", "HASH1", 100, &id1), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x.org", "HASH2", 101, &id2), 0);
        assert_true(id1 != id2);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "c@x.org", "H", 102, NULL), -EEXIST);
        assert_string_equal(err_msg(-EEXIST), "user name 'alice' is taken");
        assert_int_equal(f->m->ops->user_get(f->m, "alice", &u), 0);
        assert_int_equal(u.id, id1);
        assert_string_equal(u.email, "a@x.org");
        assert_string_equal(u.pwhash, "HASH1");
        assert_int_equal(u.created, 100);
        assert_int_equal(f->m->ops->user_get(f->m, "carol", &u), -ENOENT);
        assert_int_equal(f->m->ops->user_get(f->m, "Alice", &u), -ENOENT);
        /* the user's space came with it; a failed add left none behind */
        assert_int_equal(f->m->ops->seq_current(f->m, id2, &seq), 0);
        assert_int_equal(seq, 0);
        assert_int_equal(f->m->ops->seq_current(f->m, id2 + 1, &seq), -ENOENT);
}

struct devlist {
        char ids[8][META_DEVICE_ID_LEN + 1];
        int n;
};

static int dev_cb(const struct meta_device *d, void *userdata)
{
        struct devlist *dl = userdata;

        snprintf(dl->ids[dl->n++], sizeof(dl->ids[0]), "%s", d->id);
        return 0;
}

static void test_devices(void **state)
{
        struct fix *f = *state;
        struct meta_device d, got;
        struct hash t[4] = {srvtest_hash("token1"), srvtest_hash("token2"), srvtest_hash("token3"),
                            srvtest_hash("token4")};
        struct devlist dl = {0};
        int64_t alice, bob;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &alice), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x", "h", 1, &bob), 0);
        memset(&d, 0, sizeof(d));
        /* ids that sort against insertion order: the listing is by created,
         * then by insertion (SQLite's rowid) */
        snprintf(d.id, sizeof(d.id), "%032d", 9);
        d.user_id = alice;
        snprintf(d.name, sizeof(d.name), "laptop");
        snprintf(d.platform, sizeof(d.platform), "linux");
        snprintf(d.address, sizeof(d.address), "10.0.0.1");
        d.created = d.last_seen = 50;
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t[0]), 0);
        snprintf(d.id, sizeof(d.id), "%032d", 2);
        d.created = d.last_seen = 60;
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t[1]), 0);
        snprintf(d.id, sizeof(d.id), "%032d", 1);
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t[2]), 0); /* same second */
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t[3]), -EEXIST);
        snprintf(d.id, sizeof(d.id), "%032d", 3);
        d.user_id = bob;
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t[0]), -EEXIST); /* token */
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t[3]), 0);

        assert_int_equal(f->m->ops->device_by_token(f->m, &t[1], &got), 0);
        assert_int_equal(got.user_id, alice);
        assert_int_equal(got.created, 60);
        assert_string_equal(got.name, "laptop");
        assert_string_equal(got.platform, "linux");
        assert_int_equal(got.download_incomplete, META_POLICY_SKIP);
        assert_string_equal(got.lan_addr, "");
        assert_int_equal(f->m->ops->device_by_token(f->m, &(struct hash){{0}}, &got), -ENOENT);

        assert_int_equal(f->m->ops->device_touch(f->m, got.id, 99, "192.168.1.7"), 0);
        assert_int_equal(f->m->ops->device_by_token(f->m, &t[1], &got), 0);
        assert_int_equal(got.last_seen, 99);
        assert_string_equal(got.address, "192.168.1.7");

        assert_int_equal(f->m->ops->device_list(f->m, alice, dev_cb, &dl), 0);
        assert_int_equal(dl.n, 3);
        assert_string_equal(dl.ids[0], "00000000000000000000000000000009");
        assert_string_equal(dl.ids[1], "00000000000000000000000000000002");
        assert_string_equal(dl.ids[2], "00000000000000000000000000000001");
}

static void test_chunks(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("chunk"), other = srvtest_hash("other");
        uint32_t size = 0;

        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &h, &size), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 1, &h, 5), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 1, &h, 5), 0); /* idempotent */
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &h, &size), 1);
        assert_int_equal(size, 5);
        assert_int_equal(f->m->ops->chunk_held(f->m, 2, &h, NULL), 0);
        size = 0;
        assert_int_equal(f->m->ops->chunk_touch(f->m, 1, &h, 4000000000LL, &size), 1);
        assert_int_equal(size, 5);
        /* touching is no way to claim a chunk */
        assert_int_equal(f->m->ops->chunk_touch(f->m, 2, &h, 4000000000LL, NULL), 0);
        assert_int_equal(f->m->ops->chunk_touch(f->m, 1, &other, 4000000000LL, NULL), 0);
        assert_int_equal(f->m->ops->chunk_held(f->m, 2, &h, NULL), 0);
}

static void test_entries_and_seq(void **state)
{
        struct fix *f = *state;
        struct meta_entry e = {0}, got;
        struct manifest m = MANIFEST_INIT;
        struct hash h = srvtest_hash("x");
        int64_t uid, s1, s2;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &uid), 0);
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &s1), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &s2), 0);
        assert_int_equal(s1, 1);
        assert_int_equal(s2, 2);
        e.path = "dir/ünïcode file.txt";
        e.seq = s2;
        e.kind = KIND_FILE;
        e.size = 3;
        e.mtime_ns = 1763761956123456789LL;
        e.mode = 0755;
        e.time = 1763761956;
        e.has_hash = 1;
        e.hash = h;
        snprintf(e.device, sizeof(e.device), "dev");
        assert_int_equal(manifest_add(&m, &h, 3), 0);
        assert_int_equal(manifest_to_blob(&m, &e.chunks, &e.chunks_len), 0);
        assert_int_equal(f->m->ops->entry_put(f->m, uid, &e), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        free(e.chunks);
        manifest_free(&m);

        /* A rolled-back transaction leaves nothing behind. */
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, uid, &s1), 0);
        assert_int_equal(f->m->ops->rollback(f->m), 0);

        /* Everything survives a reopen. */
        meta_close(f->m);
        assert_int_equal(meta_open(f->uri, f->dir, &f->m), 0);
        assert_int_equal(f->m->ops->seq_current(f->m, uid, &s1), 0);
        assert_int_equal(s1, 2);
        assert_int_equal(f->m->ops->entry_get(f->m, uid, "dir/ünïcode file.txt", &got), 0);
        assert_string_equal(got.path, "dir/ünïcode file.txt");
        assert_int_equal(got.seq, 2);
        assert_int_equal(got.kind, KIND_FILE);
        assert_int_equal(got.size, 3);
        assert_int_equal(got.mtime_ns, 1763761956123456789LL);
        assert_int_equal(got.mode, 0755);
        assert_int_equal(got.time, 1763761956);
        assert_true(got.has_hash);
        assert_memory_equal(got.hash.b, h.b, HASH_LEN);
        assert_int_equal(got.chunks_len, 36);
        assert_memory_equal(got.chunks, h.b, HASH_LEN);
        assert_string_equal(got.device, "dev");
        assert_null(got.target);
        meta_entry_clear(&got);
        assert_int_equal(f->m->ops->entry_get(f->m, uid + 1, "dir/ünïcode file.txt", &got),
                         -ENOENT);
}

struct paths {
        char p[16][32];
        int64_t seq[16];
        int n, stop_at;
};

static int path_cb(const struct meta_entry *e, void *userdata)
{
        struct paths *ps = userdata;

        snprintf(ps->p[ps->n], sizeof(ps->p[0]), "%s", e->path);
        ps->seq[ps->n++] = e->seq;
        return ps->n == ps->stop_at;
}

static void put(struct fix *f, int64_t user, const char *path, int deleted, const char *target)
{
        struct meta_entry e = {0};

        e.path = (char *)path;
        e.deleted = deleted;
        e.kind = target ? KIND_SYMLINK : KIND_FILE;
        e.target = (char *)target;
        snprintf(e.device, sizeof(e.device), "dev");
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->seq_next(f->m, user, &e.seq), 0);
        assert_int_equal(f->m->ops->entry_put(f->m, user, &e), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
}

/* Listings: by path, bytewise (COLLATE "C"), "under P" exactly; changes by
 * seq, paged; tombstones on request; a callback may stop early. */
static void test_listings(void **state)
{
        static const char *const order[] = {"a",  "a b", "a.x", "a/b", "a/b/c",
                                            "a0", "ab",  "b",   "Z",   "é"};
        struct fix *f = *state;
        struct paths ps = {0};
        struct meta_entry got;
        int64_t uid;
        size_t i;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &uid), 0);
        for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
                put(f, uid, order[i], strcmp(order[i], "a.x") == 0, NULL);
        put(f, uid, "a/b", 0, "target"); /* a new version of a/b: seq 11 */
        assert_int_equal(f->m->ops->entry_get(f->m, uid, "a/b", &got), 0);
        assert_int_equal(got.seq, 11);
        assert_int_equal(got.kind, KIND_SYMLINK);
        assert_string_equal(got.target, "target");
        assert_false(got.has_hash);
        assert_null(got.chunks);
        meta_entry_clear(&got);

        assert_int_equal(f->m->ops->entry_list(f->m, uid, NULL, 1, path_cb, &ps), 0);
        assert_int_equal(ps.n, 10);
        assert_string_equal(ps.p[0], "Z"); /* bytewise: upper case first */
        assert_string_equal(ps.p[1], "a");
        assert_string_equal(ps.p[2], "a b");
        assert_string_equal(ps.p[3], "a.x");
        assert_string_equal(ps.p[4], "a/b");
        assert_string_equal(ps.p[9], "é");
        memset(&ps, 0, sizeof(ps));
        assert_int_equal(f->m->ops->entry_list(f->m, uid, NULL, 0, path_cb, &ps), 0);
        assert_int_equal(ps.n, 9); /* without the tombstone */
        memset(&ps, 0, sizeof(ps));
        assert_int_equal(f->m->ops->entry_list(f->m, uid, "a", 1, path_cb, &ps), 0);
        assert_int_equal(ps.n, 3);
        assert_string_equal(ps.p[0], "a");
        assert_string_equal(ps.p[1], "a/b");
        assert_string_equal(ps.p[2], "a/b/c");
        memset(&ps, 0, sizeof(ps));
        assert_int_equal(f->m->ops->entry_list(f->m, uid + 1, NULL, 1, path_cb, &ps), 0);
        assert_int_equal(ps.n, 0);

        memset(&ps, 0, sizeof(ps));
        assert_int_equal(f->m->ops->entry_changes(f->m, uid, 3, 4, path_cb, &ps), 0);
        assert_int_equal(ps.n, 4);
        assert_string_equal(ps.p[0], "a/b/c"); /* seq 5: a/b (4) moved on to 11 */
        assert_int_equal(ps.seq[0], 5);
        assert_int_equal(ps.seq[3], 8);
        memset(&ps, 0, sizeof(ps));
        ps.stop_at = 2;
        assert_int_equal(f->m->ops->entry_changes(f->m, uid, 0, 100, path_cb, &ps), 0);
        assert_int_equal(ps.n, 2);
        memset(&ps, 0, sizeof(ps));
        assert_int_equal(f->m->ops->entry_changes(f->m, uid, 9, -1, path_cb, &ps), 0);
        assert_int_equal(ps.n, 2);
        assert_int_equal(ps.seq[1], 11);
}

struct reclist {
        char path[8][16];
        int status[8];
        uint64_t size[8], done[8];
        int64_t seq[8], batch[8], ord[8];
        int has_hash[8];
        struct hash hash[8];
        int n;
};

static int rec_cb(const struct meta_record *r, void *userdata)
{
        struct reclist *l = userdata;

        snprintf(l->path[l->n], sizeof(l->path[0]), "%s", r->path);
        l->status[l->n] = r->status;
        l->size[l->n] = r->size;
        l->done[l->n] = r->bytes_done;
        l->seq[l->n] = r->seq;
        l->batch[l->n] = r->batch;
        l->ord[l->n] = r->ord;
        l->has_hash[l->n] = r->has_hash;
        l->hash[l->n] = r->hash;
        l->n++;
        return 0;
}

/* Adds a device (id digit d) of user. */
static void add_device(struct fix *f, int64_t user, int d)
{
        struct meta_device dev = {0};
        struct hash t;
        char tok[16];

        snprintf(dev.id, sizeof(dev.id), "%032d", d);
        dev.user_id = user;
        snprintf(dev.name, sizeof(dev.name), "dev%d", d);
        snprintf(tok, sizeof(tok), "token%d", d);
        t = srvtest_hash(tok);
        assert_int_equal(f->m->ops->device_add(f->m, &dev, &t), 0);
}

static void put_record(struct fix *f, int64_t user, const char *device, int64_t batch, int64_t ord,
                       const char *path, int status)
{
        struct meta_record r = {0};

        r.batch = batch;
        r.ord = ord;
        snprintf(r.device, sizeof(r.device), "%s", device);
        r.path = path;
        r.kind = 0;
        r.size = 100;
        r.has_hash = 1;
        r.hash = srvtest_hash("old");
        r.status = status;
        r.bytes_done = 10;
        r.started = r.updated = 5;
        r.reason = status == META_XFER_FAILED ? "connection lost" : "";
        assert_int_equal(f->m->ops->xfer_record_put(f->m, user, &r), 0);
}

/* xfer_records_complete: 0, 1 and many files; only the device's open
 * record of each path changes (a complete one, another device's, another
 * user's stay), with batch and place kept; paths without a record are
 * fine. */
static void test_records_complete(void **state)
{
        struct fix *f = *state;
        char dev[2][META_DEVICE_ID_LEN + 1];
        struct hash h = srvtest_hash("new");
        struct meta_committed c[40];
        char paths[40][16];
        struct meta_record_filter all = {0};
        struct reclist l;
        int64_t alice, bob, b1, b2, b3, n = -1;
        int i;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &alice), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x", "h", 1, &bob), 0);
        add_device(f, alice, 1);
        add_device(f, alice, 2);
        add_device(f, bob, 3);
        snprintf(dev[0], sizeof(dev[0]), "%032d", 1);
        snprintf(dev[1], sizeof(dev[1]), "%032d", 2);
        assert_int_equal(f->m->ops->xfer_batch_add(f->m, alice, dev[0], 5, &b1), 0);
        assert_int_equal(f->m->ops->xfer_batch_add(f->m, alice, dev[1], 5, &b2), 0);
        assert_int_equal(
            f->m->ops->xfer_batch_add(f->m, bob, "00000000000000000000000000000003", 5, &b3), 0);
        put_record(f, alice, dev[0], b1, 0, "a", META_XFER_PENDING);
        put_record(f, alice, dev[0], b1, 1, "b", META_XFER_FAILED);
        put_record(f, alice, dev[0], b1, 2, "c", META_XFER_COMPLETE);
        put_record(f, alice, dev[1], b2, 0, "a", META_XFER_UPLOADING);
        put_record(f, bob, "00000000000000000000000000000003", b3, 0, "a", META_XFER_PENDING);

        /* none */
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->xfer_records_complete(f->m, alice, dev[0], c, 0, 9, &n), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(n, 0);

        /* one: "a" of device 1 only */
        c[0] = (struct meta_committed){"a", 4096, &h, 7};
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->xfer_records_complete(f->m, alice, dev[0], c, 1, 9, &n), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(n, 1);
        memset(&l, 0, sizeof(l));
        assert_int_equal(f->m->ops->xfer_records(f->m, alice, &all, rec_cb, &l), 0);
        assert_int_equal(l.n, 4); /* newest batch first */
        assert_string_equal(l.path[0], "a");
        assert_int_equal(l.status[0], META_XFER_UPLOADING); /* device 2's */
        assert_string_equal(l.path[1], "a");
        assert_int_equal(l.status[1], META_XFER_COMPLETE);
        assert_int_equal(l.size[1], 4096);
        assert_int_equal(l.done[1], 4096);
        assert_int_equal(l.seq[1], 7);
        assert_int_equal(l.batch[1], b1);
        assert_int_equal(l.ord[1], 0);
        assert_true(l.has_hash[1] && hash_equal(&l.hash[1], &h));
        assert_int_equal(l.status[2], META_XFER_FAILED);
        assert_int_equal(l.status[3], META_XFER_COMPLETE);
        assert_int_equal(l.seq[3], 0);

        /* many: "a" again (now complete: unchanged), "b" (failed), "c"
         * (complete), and paths without records; "b" without a hash */
        for (i = 0; i < 40; i++) {
                snprintf(paths[i], sizeof(paths[i]), "x%02d", i);
                c[i] = (struct meta_committed){paths[i], 1, &h, 100 + i};
        }
        c[3] = (struct meta_committed){"a", 5, &h, 20};
        c[17] = (struct meta_committed){"b", 6, NULL, 21};
        c[39] = (struct meta_committed){"c", 7, &h, 22};
        assert_int_equal(f->m->ops->begin(f->m), 0);
        assert_int_equal(f->m->ops->xfer_records_complete(f->m, alice, dev[0], c, 40, 9, &n), 0);
        assert_int_equal(f->m->ops->commit(f->m), 0);
        assert_int_equal(n, 1);
        memset(&l, 0, sizeof(l));
        assert_int_equal(f->m->ops->xfer_records(f->m, alice, &all, rec_cb, &l), 0);
        assert_int_equal(l.n, 4);
        assert_int_equal(l.status[0], META_XFER_UPLOADING);
        assert_int_equal(l.seq[1], 7);
        assert_string_equal(l.path[2], "b");
        assert_int_equal(l.status[2], META_XFER_COMPLETE);
        assert_int_equal(l.size[2], 6);
        assert_int_equal(l.done[2], 6);
        assert_int_equal(l.seq[2], 21);
        assert_false(l.has_hash[2]);
        assert_int_equal(l.ord[2], 1);
        assert_int_equal(l.seq[3], 0);
        /* bob's record is his */
        memset(&l, 0, sizeof(l));
        assert_int_equal(f->m->ops->xfer_records(f->m, bob, &all, rec_cb, &l), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.status[0], META_XFER_PENDING);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_users, setup, teardown),
            cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
            cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_entries_and_seq, setup, teardown),
            cmocka_unit_test_setup_teardown(test_listings, setup, teardown),
            cmocka_unit_test_setup_teardown(test_records_complete, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
