/* test-gc: retention and garbage collection (gc.c) on a real ferryd data
 * directory (server_open, no HTTP): a run frees exactly the chunks no
 * retained version uses, spares chunks touched within the grace period and
 * chunks of retained versions (both retention rules, and other accounts'
 * references), waits for an upload holding the gc_lock, and — threads
 * uploading and committing through the chunk handlers while the GC runs in
 * a loop — never frees a chunk a committed version needs; a chunk list the
 * store cannot decode frees nothing; orphans come in hash-ordered pages. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "api.h"
#include "buf.h"
#include "err.h"
#include "frame.h"
#include "gc.h"
#include "journal.h"
#include "server.h"
#include "srvtest.h"

#define DEV_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DEV_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DAY 86400

struct fix {
        char *dir;
        char *uri; /* the PostgreSQL database, or NULL for SQLite (srvtest.h) */
        struct server s;
        int64_t alice, bob;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        f->uri = srvtest_metadata();
        assert_int_equal(server_open_stores(&f->s, f->dir, f->uri, NULL, 0), 0);
        assert_int_equal(f->s.meta->ops->user_add(f->s.meta, "alice", "a@x", "h", 1, &f->alice), 0);
        assert_int_equal(f->s.meta->ops->user_add(f->s.meta, "bob", "b@x", "h", 1, &f->bob), 0);
        f->s.settings.keep_days = 0;
        f->s.settings.keep_versions = 0;
        f->s.settings.gc_grace = 3600;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        server_close(&f->s);
        srvtest_metadata_drop(f->uri);
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

/* Stores the chunk with content c for user, as an upload does. */
static void store(struct fix *f, int64_t user, const char *c)
{
        struct hash h = srvtest_hash(c);

        assert_int_equal(blob_put(f->s.blob, &h, FRAME_ENC_RAW, (const uint8_t *)c, strlen(c)), 0);
        assert_int_equal(f->s.meta->ops->chunk_add(f->s.meta, user, &h, (uint32_t)strlen(c)), 0);
}

static int stored(struct fix *f, const char *c)
{
        struct hash h = srvtest_hash(c);

        return f->s.blob->ops->exists(f->s.blob, &h);
}

static int held(struct fix *f, int64_t user, const char *c)
{
        struct hash h = srvtest_hash(c);

        return f->s.meta->ops->chunk_held(f->s.meta, user, &h, NULL);
}

/* Commits path as the file made of the chunks cs[0..n) at time now (or
 * deletes it when n is 0); returns the new seq. */
static int64_t commit(struct fix *f, int64_t user, const char *path, int64_t base,
                      const char *const *cs, size_t n, int64_t now)
{
        struct journal_change c;
        struct journal_result res;
        int64_t seq;
        size_t i;

        memset(&c, 0, sizeof(c));
        c.op = n ? JOURNAL_PUT : JOURNAL_DELETE;
        c.path = path;
        c.base = base;
        c.kind = KIND_FILE;
        c.mode = 0644;
        c.has_hash = 1;
        c.hash = srvtest_hash(n ? cs[n - 1] : ""); /* each content differs by its last chunk */
        for (i = 0; i < n; i++) {
                struct hash h = srvtest_hash(cs[i]);
                assert_int_equal(manifest_add(&c.manifest, &h, (uint32_t)strlen(cs[i])), 0);
        }
        c.size = c.manifest.size;
        assert_int_equal(journal_commit_at(f->s.meta, user, user == f->alice ? DEV_A : DEV_B, &c, 1,
                                           &res, &seq, now),
                         0);
        manifest_free(&c.manifest);
        assert_int_equal(res.status, JOURNAL_OK);
        seq = res.seq;
        journal_result_clear(&res);
        return seq;
}

static void test_frees_exactly_unreferenced(void **state)
{
        struct fix *f = *state;
        static const char *const v1[] = {"chunk A", "chunk B"}, *const v2[] = {"chunk C"};
        static const char *const g[] = {"chunk B"};
        int64_t now = (int64_t)time(NULL), s1;
        struct gc_stats st;

        store(f, f->alice, "chunk A");
        store(f, f->alice, "chunk B");
        store(f, f->alice, "chunk C");
        store(f, f->alice, "chunk D"); /* never used */
        store(f, f->bob, "chunk B");
        store(f, f->bob, "chunk E"); /* never used */
        s1 = commit(f, f->alice, "f", 0, v1, 2, now);
        commit(f, f->alice, "f", s1, v2, 1, now);
        commit(f, f->bob, "g", 0, g, 1, now);
        f->s.settings.keep_versions = 1;

        assert_int_equal(gc_run(&f->s, now + 7200, &st), 0);
        assert_int_equal(st.versions_pruned, 1);
        assert_int_equal(st.refs_dropped, 4); /* alice A, B, D; bob E */
        assert_int_equal(st.chunks_freed, 3); /* A, D, E: bob still uses B */
        assert_int_equal(st.bytes_freed, 21);
        assert_int_equal(stored(f, "chunk A"), 0);
        assert_int_equal(stored(f, "chunk B"), 1);
        assert_int_equal(stored(f, "chunk C"), 1);
        assert_int_equal(stored(f, "chunk D"), 0);
        assert_int_equal(stored(f, "chunk E"), 0);
        assert_int_equal(held(f, f->alice, "chunk B"), 0);
        assert_int_equal(held(f, f->alice, "chunk C"), 1);
        assert_int_equal(held(f, f->bob, "chunk B"), 1);

        /* nothing left to do */
        assert_int_equal(gc_run(&f->s, now + 7200, &st), 0);
        assert_int_equal(st.versions_pruned + st.chunks_freed + st.refs_dropped, 0);

        /* a freed chunk uploaded again is stored again */
        store(f, f->alice, "chunk A");
        assert_int_equal(stored(f, "chunk A"), 1);
        assert_int_equal(held(f, f->alice, "chunk A"), 1);
}

static void test_grace_period(void **state)
{
        struct fix *f = *state;
        int64_t now = (int64_t)time(NULL);
        struct hash x = srvtest_hash("in flight");
        struct gc_stats st;

        store(f, f->alice, "in flight"); /* uploaded, not committed yet */
        assert_int_equal(gc_run(&f->s, now + 10, &st), 0);
        assert_int_equal(st.chunks_freed, 0);
        assert_int_equal(stored(f, "in flight"), 1);
        /* found present by /chunks/missing later: the grace starts again */
        assert_int_equal(f->s.meta->ops->chunk_touch(f->s.meta, f->alice, &x, now + 5000, NULL), 1);
        assert_int_equal(gc_run(&f->s, now + 5000 + 3600, &st), 0);
        assert_int_equal(st.chunks_freed, 0);
        assert_int_equal(held(f, f->alice, "in flight"), 1);
        assert_int_equal(gc_run(&f->s, now + 5000 + 3601, &st), 0);
        assert_int_equal(st.chunks_freed, 1);
        assert_int_equal(st.bytes_freed, 9);
        assert_int_equal(stored(f, "in flight"), 0);
        assert_int_equal(held(f, f->alice, "in flight"), 0);
}

static void test_keeps_retained_versions(void **state)
{
        struct fix *f = *state;
        static const char *const a[] = {"A"}, *const b[] = {"B"}, *const c[] = {"C"};
        int64_t t0 = (int64_t)time(NULL), s;
        struct meta_entry e;
        struct gc_stats st;

        store(f, f->alice, "A");
        store(f, f->alice, "B");
        store(f, f->alice, "C");
        s = commit(f, f->alice, "f", 0, a, 1, t0);
        s = commit(f, f->alice, "f", s, b, 1, t0 + 100); /* A superseded at t0 + 100 */
        s = commit(f, f->alice, "f", s, c, 1, t0 + 200); /* B superseded at t0 + 200 */
        f->s.settings.keep_days = 1;
        f->s.settings.gc_grace = 0;

        /* exactly keep_days after A was superseded: still kept */
        assert_int_equal(gc_run(&f->s, t0 + 100 + DAY, &st), 0);
        assert_int_equal(st.versions_pruned, 0);
        assert_int_equal(st.chunks_freed, 0);
        assert_int_equal(gc_run(&f->s, t0 + 101 + DAY, &st), 0);
        assert_int_equal(st.versions_pruned, 1);
        assert_int_equal(st.chunks_freed, 1);
        assert_int_equal(stored(f, "A"), 0);
        assert_int_equal(stored(f, "B"), 1); /* its version is retained */
        assert_int_equal(stored(f, "C"), 1); /* current */

        /* deleted: the tombstone stays, C's version is kept for a day */
        commit(f, f->alice, "f", s, NULL, 0, t0 + 300);
        assert_int_equal(gc_run(&f->s, t0 + 300 + DAY, &st), 0);
        assert_int_equal(st.versions_pruned, 1); /* B */
        assert_int_equal(stored(f, "B"), 0);
        assert_int_equal(stored(f, "C"), 1);
        assert_int_equal(gc_run(&f->s, t0 + 301 + DAY, &st), 0);
        assert_int_equal(st.versions_pruned, 1);
        assert_int_equal(stored(f, "C"), 0);
        assert_int_equal(journal_get(f->s.meta, f->alice, "f", &e), 0);
        assert_true(e.deleted);
        meta_entry_clear(&e);

        /* keep_versions alone: the 2 newest of each path stay */
        f->s.settings.keep_days = 0;
        f->s.settings.keep_versions = 2;
        store(f, f->alice, "A");
        store(f, f->alice, "B");
        store(f, f->alice, "C");
        s = commit(f, f->alice, "g", 0, a, 1, t0);
        s = commit(f, f->alice, "g", s, b, 1, t0);
        commit(f, f->alice, "g", s, c, 1, t0);
        assert_int_equal(gc_run(&f->s, t0 + 10 * DAY, &st), 0);
        assert_int_equal(st.versions_pruned, 1); /* g's A */
        assert_int_equal(st.chunks_freed, 1);
        assert_int_equal(stored(f, "A"), 0);
        assert_int_equal(stored(f, "B"), 1);
        assert_int_equal(stored(f, "C"), 1);
}

struct gc_thread {
        struct fix *f;
        int64_t now;
        struct gc_stats st;
        int r;
        atomic_int done;
};

static void *gc_thread(void *arg)
{
        struct gc_thread *g = arg;

        g->r = gc_run(&g->f->s, g->now, &g->st);
        g->done = 1;
        return NULL;
}

/* An upload stores its blob and then writes its row, holding the gc_lock
 * shared: a GC that found the chunk an orphan (another account dropped it)
 * waits, and then sees it held. */
static void test_waits_for_upload_in_flight(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("shared");
        struct gc_thread g = {f, (int64_t)time(NULL) + 7200, {0}, 0, 0};
        pthread_t t;

        store(f, f->bob, "shared"); /* bob's, unreferenced: the GC drops it */
        pthread_rwlock_rdlock(&f->s.gc_lock);
        /* alice's upload: the blob (already there) ... */
        assert_int_equal(blob_put(f->s.blob, &h, FRAME_ENC_RAW, (const uint8_t *)"shared", 6), 0);
        assert_int_equal(pthread_create(&t, NULL, gc_thread, &g), 0);
        usleep(300 * 1000);
        assert_false(g.done); /* blocked on the lock */
        /* ... then its row */
        assert_int_equal(f->s.meta->ops->chunk_add(f->s.meta, f->alice, &h, 6), 0);
        pthread_rwlock_unlock(&f->s.gc_lock);
        pthread_join(t, NULL);
        assert_int_equal(g.r, 0);
        assert_int_equal(g.st.refs_dropped, 1); /* bob's row */
        assert_int_equal(g.st.chunks_freed, 0);
        assert_int_equal(stored(f, "shared"), 1);
        assert_int_equal(held(f, f->alice, "shared"), 1);
}

/* --- concurrent uploads, commits and GC runs ---------------------------- */

#define WORKERS 4
#define ROUNDS 40
#define PARTS 3

struct worker {
        struct fix *f;
        int id;
        int64_t retries, done;
        char failure[200];
};

/* Calls a chunk handler as the HTTP layer would, for alice's DEV_A. */
static json_t *call(struct fix *f, http_handler h, const void *body, size_t len)
{
        struct http_request req;
        struct http_reply rep;

        memset(&req, 0, sizeof(req));
        memset(&rep, 0, sizeof(rep));
        req.body = body;
        req.body_len = len;
        req.device.user_id = f->alice;
        snprintf(req.device.id, sizeof(req.device.id), "%s", DEV_A);
        h(&f->s, &req, &rep);
        if (rep.status != 200) {
                json_decref(rep.json);
                return NULL;
        }
        return rep.json;
}

static void part(char *out, size_t cap, int w, int round, int k)
{
        /* one part shared by every worker's files, so that uploads of one
         * find chunks present that another's old version gave up */
        if (k == 0)
                snprintf(out, cap, "shared part %d", round % 3);
        else
                snprintf(out, cap, "worker %d round %d part %d", w, round, k);
}

/* 1 if every chunk of m is stored and decodes to its hash. */
static int all_stored(struct fix *f, const struct manifest *m)
{
        struct buf b = BUF_INIT;
        struct hash h;
        size_t i;
        int ok = 1;

        for (i = 0; ok && i < m->n; i++) {
                ok = blob_get_raw(f->s.blob, &m->chunks[i].hash, &b) == 0;
                if (ok) {
                        hash_buf(b.data, b.len, &h);
                        ok = hash_equal(&h, &m->chunks[i].hash);
                }
        }
        buf_free(&b);
        return ok;
}

/* One round: ask what is missing, upload it, commit; again on
 * missing_chunks. 0 or -1 with w->failure set. */
static int worker_round(struct worker *w, const char *path, int64_t *base, int round)
{
        char data[PARTS][64], body_hashes[PARTS * 70 + 32];
        struct journal_change c;
        struct journal_result res;
        struct buf up = BUF_INIT;
        json_t *j, *v;
        size_t i, k;
        int64_t seq;
        int attempt, r = -1;

        memset(&c, 0, sizeof(c));
        c.op = JOURNAL_PUT;
        c.path = path;
        c.kind = KIND_FILE;
        c.mode = 0644;
        c.has_hash = 1;
        for (k = 0; k < PARTS; k++) {
                struct hash h;
                part(data[k], sizeof(data[k]), w->id, round, (int)k);
                h = srvtest_hash(data[k]);
                manifest_add(&c.manifest, &h, (uint32_t)strlen(data[k]));
        }
        c.hash = srvtest_hash(data[PARTS - 1]); /* unique to the round: never a no-op */
        c.size = c.manifest.size;
        for (attempt = 0; attempt < 1000; attempt++) {
                char hex[HASH_HEX_LEN + 1];
                size_t off = 0;

                off += (size_t)snprintf(body_hashes + off, sizeof(body_hashes) - off,
                                        "{\"hashes\": [");
                for (k = 0; k < PARTS; k++) {
                        hash_to_hex(&c.manifest.chunks[k].hash, hex);
                        off += (size_t)snprintf(body_hashes + off, sizeof(body_hashes) - off,
                                                "%s\"%s\"", k ? ", " : "", hex);
                }
                snprintf(body_hashes + off, sizeof(body_hashes) - off, "]}");
                j = call(w->f, api_chunks_missing, body_hashes, strlen(body_hashes));
                if (!j) {
                        snprintf(w->failure, sizeof(w->failure), "chunks/missing failed");
                        goto out;
                }
                buf_reset(&up);
                json_array_foreach(json_object_get(j, "missing"), i, v)
                {
                        for (k = 0; k < PARTS; k++) {
                                hash_to_hex(&c.manifest.chunks[k].hash, hex);
                                if (strcmp(hex, json_string_value(v)) == 0)
                                        frame_append(&up, &c.manifest.chunks[k].hash,
                                                     (const uint8_t *)data[k], strlen(data[k]), 0);
                        }
                }
                json_decref(j);
                if (up.len) {
                        j = call(w->f, api_chunks_upload, up.data, up.len);
                        if (!j) {
                                snprintf(w->failure, sizeof(w->failure), "upload failed");
                                goto out;
                        }
                        json_decref(j);
                }
                c.base = *base;
                if (journal_commit(w->f->s.meta, w->f->alice, DEV_A, &c, 1, &res, &seq) < 0) {
                        snprintf(w->failure, sizeof(w->failure), "commit: %s", err_msg(-EIO));
                        goto out;
                }
                if (res.status == JOURNAL_OK) {
                        if (res.seq <= *base) {
                                snprintf(w->failure, sizeof(w->failure), "%s: no new version",
                                         path);
                                journal_result_clear(&res);
                                goto out;
                        }
                        *base = res.seq;
                        journal_result_clear(&res);
                        /* current now: the GC must leave all of it */
                        if (!all_stored(w->f, &c.manifest)) {
                                snprintf(w->failure, sizeof(w->failure),
                                         "%s round %d: committed, but a chunk is gone", path,
                                         round);
                                goto out;
                        }
                        r = 0;
                        goto out;
                }
                if (res.status != JOURNAL_MISSING_CHUNKS) {
                        snprintf(w->failure, sizeof(w->failure), "commit status %d", res.status);
                        journal_result_clear(&res);
                        goto out;
                }
                journal_result_clear(&res);
                w->retries++;
        }
        snprintf(w->failure, sizeof(w->failure), "%s: no progress in 1000 attempts", path);
out:
        buf_free(&up);
        manifest_free(&c.manifest);
        return r;
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        char path[32];
        int64_t base = 0;
        int round;

        snprintf(path, sizeof(path), "w%d.bin", w->id);
        for (round = 0; round < ROUNDS; round++) {
                if (worker_round(w, path, &base, round) < 0)
                        break;
                w->done++;
        }
        return NULL;
}

struct gc_loop {
        struct fix *f;
        atomic_int stop;
        int64_t runs, freed, pruned;
        int r;
};

static void *gc_loop_main(void *arg)
{
        struct gc_loop *g = arg;
        struct gc_stats st;

        while (!g->stop && g->r == 0) {
                /* Far enough ahead that every unreferenced row is past its
                 * grace: the harshest GC there can be. */
                g->r = gc_run(&g->f->s, (int64_t)time(NULL) + 10, &st);
                g->runs++;
                g->freed += st.chunks_freed;
                g->pruned += st.versions_pruned;
                usleep(200);
        }
        return NULL;
}

/* Every version of every path the store keeps has all its chunks. */
static int check_cb(const struct meta_entry *e, void *userdata)
{
        struct fix *f = userdata;
        struct manifest m = MANIFEST_INIT;
        int ok;

        assert_int_equal(manifest_from_blob(e->chunks, e->chunks_len, &m), 0);
        ok = all_stored(f, &m);
        manifest_free(&m);
        assert_true(ok);
        return 0;
}

static void test_concurrent_uploads_and_gc(void **state)
{
        struct fix *f = *state;
        struct worker w[WORKERS];
        struct gc_loop g = {f, 0, 0, 0, 0, 0};
        pthread_t wt[WORKERS], gt;
        struct gc_stats st;
        int64_t retries = 0;
        int i;

        f->s.settings.keep_versions = 1;
        f->s.settings.gc_grace = 0;
        assert_int_equal(pthread_create(&gt, NULL, gc_loop_main, &g), 0);
        for (i = 0; i < WORKERS; i++) {
                memset(&w[i], 0, sizeof(w[i]));
                w[i].f = f;
                w[i].id = i;
                assert_int_equal(pthread_create(&wt[i], NULL, worker_main, &w[i]), 0);
        }
        for (i = 0; i < WORKERS; i++)
                pthread_join(wt[i], NULL);
        g.stop = 1;
        pthread_join(gt, NULL);
        assert_int_equal(g.r, 0);
        for (i = 0; i < WORKERS; i++) {
                if (w[i].failure[0])
                        fail_msg("worker %d: %s", i, w[i].failure);
                assert_int_equal(w[i].done, ROUNDS);
                retries += w[i].retries;
        }
        /* the GC did work while the uploads ran: old versions and their
         * own chunks went */
        assert_true(g.runs > 0);
        assert_true(g.pruned > 0);
        assert_true(g.freed > 0);
        /* and after one more run, every kept version is whole */
        assert_int_equal(gc_run(&f->s, (int64_t)time(NULL) + 10, &st), 0);
        assert_int_equal(journal_list(f->s.meta, f->alice, NULL, 0, check_cb, f), 0);
        print_message("gc: %lld runs, %lld chunks freed, %lld commit retries\n", (long long)g.runs,
                      (long long)g.freed, (long long)retries);
}

/* A chunk list the store cannot decode (not a multiple of 36 bytes) stops
 * the run for its account: not knowing what it refers to, nothing of the
 * account's is freed. */
static void test_corrupt_chunk_list(void **state)
{
        static const uint8_t bad[5] = {1, 2, 3, 4, 5};
        struct fix *f = *state;
        struct meta *m = f->s.meta;
        struct meta_entry e = {0};
        int64_t now = (int64_t)time(NULL), seq;
        struct gc_stats st;

        store(f, f->alice, "chunk A");
        e.path = "broken";
        e.kind = KIND_FILE;
        e.size = 5;
        snprintf(e.device, sizeof(e.device), "%s", DEV_A);
        e.chunks = (uint8_t *)bad;
        e.chunks_len = sizeof(bad);
        e.time = now;
        assert_int_equal(m->ops->begin(m), 0);
        assert_int_equal(m->ops->seq_next(m, f->alice, &seq), 0);
        e.seq = seq;
        assert_int_equal(m->ops->entry_put(m, f->alice, &e), 0);
        assert_int_equal(m->ops->version_add(m, f->alice, &e), 0);
        assert_int_equal(m->ops->commit(m), 0);

        assert_int_equal(gc_run(&f->s, now + 7200, &st), -EIO);
        assert_non_null(strstr(err_msg(-EIO), "corrupt chunk list (5 bytes)"));
        assert_int_equal(held(f, f->alice, "chunk A"), 1);
        assert_int_equal(stored(f, "chunk A"), 1);
}

/* The store's side of stage 2, page by page: orphans in hash order after a
 * given hash, forgotten once, and not while an account holds them again. */
static void test_orphans_in_pages(void **state)
{
        struct fix *f = *state;
        struct meta *m = f->s.meta;
        struct hash x = srvtest_hash("chunk X"), y = srvtest_hash("chunk Y");
        struct hash z = srvtest_hash("chunk Z");
        struct meta_chunk o[4];
        int64_t now = (int64_t)time(NULL), dropped;
        size_t n;

        store(f, f->bob, "chunk X");
        store(f, f->bob, "chunk Y");
        store(f, f->bob, "chunk Z");
        assert_int_equal(m->ops->begin(m), 0);
        assert_int_equal(m->ops->chunk_refs_drop(m, f->bob, now - 10, &dropped), 0);
        assert_int_equal(dropped, 0); /* all touched since */
        assert_int_equal(m->ops->chunk_refs_drop(m, f->bob, now + 10, &dropped), 0);
        assert_int_equal(dropped, 3);
        assert_int_equal(m->ops->commit(m), 0);

        assert_int_equal(m->ops->chunk_orphans(m, NULL, 2, o, &n), 0);
        assert_int_equal(n, 2);
        assert_true(memcmp(o[0].hash.b, o[1].hash.b, HASH_LEN) < 0);
        assert_int_equal(m->ops->chunk_orphans(m, &o[1].hash, 2, o + 2, &n), 0);
        assert_int_equal(n, 1);
        assert_true(memcmp(o[1].hash.b, o[2].hash.b, HASH_LEN) < 0);
        assert_int_equal(o[0].size + o[1].size + o[2].size, 21);
        assert_int_equal(m->ops->chunk_orphans(m, &o[2].hash, 2, o + 3, &n), 0);
        assert_int_equal(n, 0);

        assert_int_equal(m->ops->chunk_forget(m, &y), 1);
        assert_int_equal(m->ops->chunk_forget(m, &y), 0);
        assert_int_equal(m->ops->chunk_add(m, f->alice, &x, 7), 0);
        assert_int_equal(m->ops->chunk_forget(m, &x), 0);
        assert_int_equal(held(f, f->alice, "chunk X"), 1);
        assert_int_equal(m->ops->chunk_orphans(m, NULL, 4, o, &n), 0);
        assert_int_equal(n, 1);
        assert_true(hash_equal(&o[0].hash, &z));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_frees_exactly_unreferenced, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grace_period, setup, teardown),
            cmocka_unit_test_setup_teardown(test_keeps_retained_versions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_waits_for_upload_in_flight, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_uploads_and_gc, setup, teardown),
            cmocka_unit_test_setup_teardown(test_corrupt_chunk_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_orphans_in_pages, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
