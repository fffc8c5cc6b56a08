/* test-meta_sqlite: the SQLite metadata store (meta_sqlite.c) row by row —
 * users, devices and tokens, chunk ownership, entries, the space counter,
 * transactions, and that everything survives closing and reopening. */
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
        char path[4200];
        struct meta *m;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        snprintf(f->path, sizeof(f->path), "%s/meta.db", f->dir);
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        meta_close(f->m);
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

static void test_users(void **state)
{
        struct fix *f = *state;
        struct meta_user u;
        int64_t id1, id2;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x.org", "HASH1", 100, &id1), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x.org", "HASH2", 101, &id2), 0);
        assert_true(id1 != id2);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "c@x.org", "H", 102, NULL), -EEXIST);
        assert_int_equal(f->m->ops->user_get(f->m, "alice", &u), 0);
        assert_int_equal(u.id, id1);
        assert_string_equal(u.email, "a@x.org");
        assert_string_equal(u.pwhash, "HASH1");
        assert_int_equal(u.created, 100);
        assert_int_equal(f->m->ops->user_get(f->m, "carol", &u), -ENOENT);
        assert_int_equal(f->m->ops->user_get(f->m, "Alice", &u), -ENOENT);
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
        struct hash t1 = srvtest_hash("token1"), t2 = srvtest_hash("token2");
        struct hash t3 = srvtest_hash("token3");
        struct devlist dl = {0};
        int64_t alice, bob;

        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &alice), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x", "h", 1, &bob), 0);
        memset(&d, 0, sizeof(d));
        snprintf(d.id, sizeof(d.id), "%032d", 1);
        d.user_id = alice;
        snprintf(d.name, sizeof(d.name), "laptop");
        snprintf(d.platform, sizeof(d.platform), "linux");
        snprintf(d.address, sizeof(d.address), "10.0.0.1");
        d.created = d.last_seen = 50;
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t1), 0);
        snprintf(d.id, sizeof(d.id), "%032d", 2);
        d.created = d.last_seen = 60;
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t2), 0);
        snprintf(d.id, sizeof(d.id), "%032d", 3);
        d.user_id = bob;
        assert_int_equal(f->m->ops->device_add(f->m, &d, &t3), 0);

        assert_int_equal(f->m->ops->device_by_token(f->m, &t2, &got), 0);
        assert_int_equal(got.user_id, alice);
        assert_int_equal(got.created, 60);
        assert_string_equal(got.name, "laptop");
        assert_int_equal(f->m->ops->device_by_token(f->m, &(struct hash){{0}}, &got), -ENOENT);

        assert_int_equal(f->m->ops->device_touch(f->m, got.id, 99, "192.168.1.7"), 0);
        assert_int_equal(f->m->ops->device_by_token(f->m, &t2, &got), 0);
        assert_int_equal(got.last_seen, 99);
        assert_string_equal(got.address, "192.168.1.7");

        assert_int_equal(f->m->ops->device_list(f->m, alice, dev_cb, &dl), 0);
        assert_int_equal(dl.n, 2);
        assert_string_equal(dl.ids[0], "00000000000000000000000000000001");
        assert_string_equal(dl.ids[1], "00000000000000000000000000000002");
}

static void test_chunks(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("chunk");
        uint32_t size = 0;

        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &h, &size), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 1, &h, 5), 0);
        assert_int_equal(f->m->ops->chunk_add(f->m, 1, &h, 5), 0); /* idempotent */
        assert_int_equal(f->m->ops->chunk_held(f->m, 1, &h, &size), 1);
        assert_int_equal(size, 5);
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
        assert_int_equal(meta_sqlite_open(f->path, &f->m), 0);
        assert_int_equal(f->m->ops->seq_current(f->m, uid, &s1), 0);
        assert_int_equal(s1, 2);
        assert_int_equal(f->m->ops->entry_get(f->m, uid, "dir/ünïcode file.txt", &got), 0);
        assert_int_equal(got.seq, 2);
        assert_int_equal(got.mtime_ns, 1763761956123456789LL);
        assert_int_equal(got.mode, 0755);
        assert_true(got.has_hash);
        assert_memory_equal(got.hash.b, h.b, HASH_LEN);
        assert_int_equal(got.chunks_len, 36);
        assert_null(got.target);
        meta_entry_clear(&got);
        assert_int_equal(f->m->ops->entry_get(f->m, uid + 1, "dir/ünïcode file.txt", &got),
                         -ENOENT);
}

static void test_entry_copy(void **state)
{
        struct meta_entry a = {0}, b;
        uint8_t blob[36] = {1, 2, 3};

        (void)state;
        a.path = strdup("p");
        a.target = strdup("t");
        a.chunks = malloc(36);
        memcpy(a.chunks, blob, 36);
        a.chunks_len = 36;
        a.seq = 9;
        assert_int_equal(meta_entry_copy(&b, &a), 0);
        assert_ptr_not_equal(a.path, b.path);
        assert_string_equal(b.path, "p");
        assert_string_equal(b.target, "t");
        assert_memory_equal(b.chunks, blob, 36);
        assert_int_equal(b.seq, 9);
        meta_entry_clear(&a);
        meta_entry_clear(&b);
        assert_null(a.path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_users, setup, teardown),
            cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
            cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_entries_and_seq, setup, teardown),
            cmocka_unit_test(test_entry_copy),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
