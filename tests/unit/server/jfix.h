/* jfix: the fixture test-journal, test-journal-calls and test-history share: a real
 * metadata store (SQLite in a temporary directory, or PostgreSQL for the -pg
 * variants, srvtest.h) with the accounts alice and bob, and helpers that
 * build and commit changes. Tests only. */
#ifndef FERRY_JFIX_H
#define FERRY_JFIX_H

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

static inline int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        assert_int_equal(srvtest_meta_open(f->dir, &f->uri, &f->m), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "alice", "a@x", "h", 1, &f->alice), 0);
        assert_int_equal(f->m->ops->user_add(f->m, "bob", "b@x", "h", 1, &f->bob), 0);
        *state = f;
        return 0;
}

static inline int teardown(void **state)
{
        struct fix *f = *state;

        meta_close(f->m);
        srvtest_metadata_drop(f->uri);
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

/* A file change of content s (one chunk), held by user unless hold is 0. */
static inline struct journal_change file_put(struct fix *f, int64_t user, const char *path,
                                             int64_t base, const char *s, int hold)
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

static inline struct journal_change simple(int op, const char *path, int64_t base)
{
        struct journal_change c;

        memset(&c, 0, sizeof(c));
        c.op = op;
        c.path = path;
        c.base = base;
        return c;
}

/* Commits one change and returns its result (caller clears it). */
static inline struct journal_result commit1(struct fix *f, int64_t user, const char *dev,
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
static inline int status1(struct fix *f, int64_t user, const char *dev, struct journal_change *c,
                          int64_t *seq)
{
        struct journal_result r = commit1(f, user, dev, c, seq);
        int st = r.status;

        journal_result_clear(&r);
        return st;
}

/* Commits one change that must go through; returns its seq. */
static inline int64_t seq1(struct fix *f, int64_t user, const char *dev, struct journal_change *c,
                           int64_t *seq)
{
        struct journal_result r = commit1(f, user, dev, c, seq);
        int64_t s = r.seq;

        assert_int_equal(r.status, JOURNAL_OK);
        journal_result_clear(&r);
        return s;
}

static inline int64_t space_seq(struct fix *f, int64_t user)
{
        int64_t s = -1;

        assert_int_equal(f->m->ops->seq_current(f->m, user, &s), 0);
        return s;
}

#endif
