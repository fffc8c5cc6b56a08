/* manifest_update: the manifest of a file whose earlier chunk list is known,
 * without running the chunker over the parts that did not change (see
 * manifest_update_from_fd() in manifest.h). A 1-byte edit to a 1 GiB file
 * then costs the SHA-256 of the file on both cores and the gear hash of a
 * chunk or two, instead of the gear hash of the whole file on one core.
 *
 * Two modes walk the new file from offset 0, always standing on a true
 * boundary p (one manifest_from_fd() would cut at):
 *   - verify: the old chunks from old chunk i on are expected at p, shifted
 *     by d = p - (old offset of chunk i). A window of them (up to a buffer)
 *     is read, hashed (the first part on the hash_bg thread, the rest here,
 *     while the next window is read ahead) and accepted in order while the
 *     hashes match.
 *   - chunk: from the first chunk that does not match, chunker_cut() runs
 *     as in manifest_from_fd(). After each cut q, if q - d for the current
 *     shift or for newsize - oldsize is an old chunk start, or the chunk
 *     just cut equals an old chunk (hash and size), verify mode resumes at
 *     the old chunk that follows.
 *
 * Why the result is exactly manifest_from_fd()'s: chunker_cut() restarts
 * its rolling hash at every chunk start, so where a chunk ends depends only
 * on the bytes from its start, plus whether the file ends before a cut was
 * found. An old chunk that was not the last one was cut by a gear match or
 * by CHUNK_MAX within its own bytes; the same bytes at a true boundary of
 * the new file therefore give the same cut there, whatever follows them
 * (at EOF too: a gear match is still found, and CHUNK_MAX still cuts). The
 * old last chunk may have been cut by EOF only, so it is accepted only when
 * it also ends at the new EOF. Equal SHA-256 stands for equal bytes. By
 * induction every accepted chunk ends on a true boundary, and chunk mode
 * cuts as manifest_from_fd() does from a true boundary. A guessed shift
 * only chooses which old chunk to check next: a wrong guess costs a hash,
 * never a wrong chunk. (An old chunk larger than CHUNK_MAX, or a non-last
 * one of CHUNK_MIN bytes or fewer, cannot come from chunker_cut() and is
 * never accepted: a cheap guard against a foreign chunk list.)
 *
 * The file is read with pread() into two fixed buffers, each byte once
 * where possible (a window read ahead is reused by chunk mode); no mmap, as
 * a file truncated under a mapping raises SIGBUS.
 */
#include "manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunker.h"
#include "err.h"

/* Each of the two read buffers; a verify window fits in one. At least
 * CHUNK_MAX. */
#define UPD_BUF (4u * 1024u * 1024u)
/* Most old chunks checked in one window (bounds the hash array). */
#define WIN_CHUNKS 256
/* Share of a window's bytes hashed on the helper thread, in percent: this
 * thread also reads the next window and computes the fingerprints. Per GiB
 * here: SHA-256 0.75 s, pread 0.13 s, XXH3 0.075 s; 64% evens the two. */
#define BG_SHARE 64
/* Chunks cut by chunk mode, from its start, that are hashed here at once
 * and looked up among the old chunks (to find the shift again after
 * several edits); past that the content looks new and SHA-256 moves to the
 * helper thread as in manifest_from_fd(). */
#define CHUNK_LOOKUP_RUN 32
/* As in manifest.c: past this backlog this thread hashes a chunk itself. */
#define BG_BACKLOG_MAX 48

/* File bytes [off, off + len) held at p. */
struct span {
        uint8_t *p;
        uint64_t off;
        size_t len;
};

struct upd {
        int fd;
        const struct manifest *old;
        uint64_t *ooff;   /* old->n + 1 chunk offsets */
        uint32_t *slots;  /* old chunk index + 1 by hash, 0 = empty */
        size_t nslots;    /* power of two, or 0 until built */
        uint64_t newsize; /* fstat size at the start */
        struct span s[2]; /* s[cur]: current bytes, s[cur ^ 1]: read ahead */
        int cur;
        uint64_t eof_at; /* where a read met EOF, or UINT64_MAX */
        struct hash_bg *bg;
        struct manifest t; /* the result being built */
        uint64_t p;        /* the next chunk starts here in the new file */
        int64_t d;         /* new offset - old offset of the content at p */
        size_t oi;         /* old chunk expected at p (verify mode) */
};

/* Makes sp hold [off, off + want) (less at EOF): keeps what it holds
 * already, copies what other holds, reads the rest. Returns the bytes held
 * from off (want unless EOF), or -errno. The caller makes sure no hash is
 * pending on sp's buffer. */
static ssize_t span_fill(int fd, struct span *sp, const struct span *other, uint64_t off,
                         size_t want)
{
        size_t have = 0;

        if (off >= sp->off && off < sp->off + sp->len) {
                have = (size_t)(sp->off + sp->len - off);
                if (off != sp->off)
                        memmove(sp->p, sp->p + (off - sp->off), have);
        }
        sp->off = off;
        sp->len = have;
        while (sp->len < want) {
                uint64_t at = off + sp->len;
                ssize_t got;

                if (other && at >= other->off && at < other->off + other->len) {
                        size_t n = (size_t)(other->off + other->len - at);

                        if (n > want - sp->len)
                                n = want - sp->len;
                        memcpy(sp->p + sp->len, other->p + (at - other->off), n);
                        sp->len += n;
                        continue;
                }
                got = pread(fd, sp->p + sp->len, want - sp->len, (off_t)at);
                if (got < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_set(-errno, "read failed: %s", strerror(errno));
                }
                if (got == 0)
                        break;
                sp->len += (size_t)got;
        }
        return (ssize_t)(sp->len < want ? sp->len : want);
}

/* The old chunks from i that a window at new offset p may hold: *k is one
 * past the last, returns their bytes. Stops before a chunk that cannot be
 * accepted there (past the new EOF, see the top for the rest). */
static size_t window(const struct upd *u, size_t i, uint64_t p, size_t *k)
{
        const struct manifest *old = u->old;
        size_t len = 0;

        for (*k = i; *k < old->n && *k - i < WIN_CHUNKS; (*k)++) {
                uint32_t s = old->chunks[*k].size;
                uint64_t end = p + len + s;

                if (s > CHUNK_MAX || len + s > UPD_BUF || end > u->newsize)
                        break;
                if (*k == old->n - 1 ? end != u->newsize : s <= CHUNK_MIN)
                        break;
                len += s;
        }
        return len;
}

/* Verify mode from u->p (old chunk u->oi): accepts old chunks while they
 * match. Returns 0 when the file is done or a chunk does not match (u->p
 * then stands on it), or -errno. On return no hash is pending. */
static int verify(struct upd *u)
{
        struct hash wh[WIN_CHUNKS];
        uint64_t wfp[WIN_CHUNKS];

        for (;;) {
                struct span *a = &u->s[u->cur], *b = &u->s[u->cur ^ 1];
                size_t k, nk, len, nlen, done, nc, j;
                ssize_t got;

                if (u->p == u->newsize)
                        return 0;
                len = window(u, u->oi, u->p, &k);
                if (len == 0)
                        return 0;
                got = span_fill(u->fd, a, b, u->p, len);
                if (got < 0)
                        return (int)got;
                if ((size_t)got < len) {
                        /* shrunk since the fstat: check what is there */
                        for (len = 0, k = u->oi; len + u->old->chunks[k].size <= (size_t)got; k++)
                                len += u->old->chunks[k].size;
                        if (len == 0)
                                return 0;
                }
                nc = k - u->oi;
                /* the first part to the helper thread */
                for (j = 0, done = 0; j < nc && done * 100 < (uint64_t)len * BG_SHARE; j++) {
                        uint32_t s = u->old->chunks[u->oi + j].size;

                        hash_bg_oneshot(u->bg, a->p + done, s, &wh[j]);
                        done += s;
                }
                /* meanwhile: read the next window ahead, hash the rest */
                nlen = window(u, k, u->p + len, &nk);
                if (nlen > 0) {
                        got = span_fill(u->fd, b, NULL, u->p + len, nlen);
                        if (got < 0) {
                                hash_bg_wait(u->bg);
                                return (int)got;
                        }
                }
                for (size_t i = j, at = done; i < nc; i++) {
                        uint32_t s = u->old->chunks[u->oi + i].size;

                        hash_buf(a->p + at, s, &wh[i]);
                        at += s;
                }
                for (size_t i = 0, at = 0; i < nc; i++) {
                        uint32_t s = u->old->chunks[u->oi + i].size;

                        wfp[i] = manifest_fp(a->p + at, s);
                        at += s;
                }
                hash_bg_wait(u->bg);
                for (j = 0; j < nc; j++) {
                        const struct chunk_ref *o = &u->old->chunks[u->oi + j];
                        struct chunk_ref *c;
                        int r;

                        if (!hash_equal(&wh[j], &o->hash))
                                break;
                        r = manifest_add(&u->t, &wh[j], o->size);
                        if (r < 0)
                                return r;
                        c = &u->t.chunks[u->t.n - 1];
                        c->fp = wfp[j];
                        c->has_fp = 1;
                        u->p += o->size;
                }
                u->oi += j;
                if (j < nc)
                        return 0;
                u->cur ^= 1;
        }
}

static uint64_t slot_of(const struct hash *h, size_t nslots)
{
        uint64_t x;

        memcpy(&x, h->b, sizeof(x));
        return x & (nslots - 1);
}

/* Indexes the old chunks by hash (open addressing). 0 or -ENOMEM. */
static int slots_build(struct upd *u)
{
        size_t n = 16;

        while (n < 2 * u->old->n)
                n *= 2;
        u->slots = calloc(n, sizeof(*u->slots));
        if (!u->slots)
                return -ENOMEM;
        u->nslots = n;
        for (size_t i = 0; i < u->old->n; i++) {
                uint64_t at = slot_of(&u->old->chunks[i].hash, n);

                while (u->slots[at])
                        at = (at + 1) & (n - 1);
                u->slots[at] = (uint32_t)(i + 1);
        }
        return 0;
}

/* An old chunk equal to c (hash and size) that is not the last, or -1. */
static int64_t slots_find(const struct upd *u, const struct chunk_ref *c)
{
        for (uint64_t at = slot_of(&c->hash, u->nslots); u->slots[at];
             at = (at + 1) & (u->nslots - 1)) {
                size_t i = u->slots[at] - 1;

                if (i + 1 < u->old->n && u->old->chunks[i].size == c->size &&
                    hash_equal(&u->old->chunks[i].hash, &c->hash))
                        return (int64_t)i;
        }
        return -1;
}

/* The old chunk starting at old offset o, or -1. */
static int64_t old_at(const struct upd *u, int64_t o)
{
        size_t lo = 0, hi = u->old->n;

        if (o < 0)
                return -1;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (u->ooff[mid] < (uint64_t)o)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < u->old->n && u->ooff[lo] == (uint64_t)o ? (int64_t)lo : -1;
}

/* Chunk mode from u->p: cuts until EOF (returns 0 with u->p at the end, and
 * u->oi == old->n) or until the cuts meet old chunks again (returns 0 with
 * u->oi, u->d set for verify()). -errno on failure. On return no hash is
 * pending. */
static int chunk(struct upd *u)
{
        int64_t dsize = (int64_t)u->newsize - (int64_t)u->old->size;
        struct span *a = &u->s[u->cur];
        size_t run = 0;
        int r = 0;

        for (;;) {
                size_t avail = 0, cut;
                struct chunk_ref *c;
                const uint8_t *at;
                int64_t i = -1;
                int eof;

                if (u->p >= a->off && u->p <= a->off + a->len)
                        avail = (size_t)(a->off + a->len - u->p);
                eof = avail > 0 && a->off + a->len >= u->eof_at;
                if (avail < CHUNK_MAX && !eof) {
                        ssize_t got;

                        hash_bg_wait(u->bg);
                        got = span_fill(u->fd, a, &u->s[u->cur ^ 1], u->p, UPD_BUF);
                        if (got < 0) {
                                r = (int)got;
                                goto out;
                        }
                        if ((size_t)got < UPD_BUF)
                                u->eof_at = u->p + (uint64_t)got;
                        eof = a->off + a->len >= u->eof_at;
                        avail = (size_t)got;
                }
                if (avail == 0)
                        break;
                at = a->p + (u->p - a->off);
                cut = chunker_cut(at, avail, eof);
                /* manifest_add may move the chunk list that queued hashes
                 * are written into */
                if (u->t.n == u->t.cap)
                        hash_bg_wait(u->bg);
                r = manifest_add(&u->t, &(struct hash){{0}}, (uint32_t)cut);
                if (r < 0)
                        goto out;
                c = &u->t.chunks[u->t.n - 1];
                c->fp = manifest_fp(at, cut);
                c->has_fp = 1;
                u->p += cut;
                if (run < CHUNK_LOOKUP_RUN || hash_bg_backlog(u->bg) >= BG_BACKLOG_MAX)
                        hash_buf(at, cut, &c->hash);
                else
                        hash_bg_oneshot(u->bg, at, cut, &c->hash);
                if (u->p >= u->newsize)
                        continue;
                i = old_at(u, (int64_t)u->p - u->d);
                if (i < 0 && dsize != u->d && (i = old_at(u, (int64_t)u->p - dsize)) >= 0)
                        u->d = dsize;
                if (i < 0 && run < CHUNK_LOOKUP_RUN) {
                        if (!u->nslots && (r = slots_build(u)) < 0)
                                goto out;
                        i = slots_find(u, c);
                        if (i >= 0) {
                                i++;
                                u->d = (int64_t)u->p - (int64_t)u->ooff[i];
                        }
                }
                run++;
                if (i >= 0) {
                        u->oi = (size_t)i;
                        goto out;
                }
        }
        u->oi = u->old->n;
out:
        hash_bg_wait(u->bg);
        return r;
}

int manifest_update_from_fd(int fd, const struct manifest *old, struct manifest *m)
{
        struct upd u = {.fd = fd, .old = old, .eof_at = UINT64_MAX, .t = MANIFEST_INIT};
        struct stat st;
        int r = 0;

        if (fstat(fd, &st) < 0) {
                r = -errno;
                err_set(r, "stat failed: %s", strerror(errno));
                goto out;
        }
        u.newsize = (uint64_t)st.st_size;
        u.ooff = malloc((old->n + 1) * sizeof(*u.ooff));
        u.s[0].p = malloc(UPD_BUF);
        u.s[1].p = malloc(UPD_BUF);
        u.bg = hash_bg_new();
        if (!u.ooff || !u.s[0].p || !u.s[1].p || !u.bg) {
                r = -ENOMEM;
                goto out;
        }
        u.ooff[0] = 0;
        for (size_t i = 0; i < old->n; i++)
                u.ooff[i + 1] = u.ooff[i] + old->chunks[i].size;
        /* the old size from its chunks: old->size may not be set */
        u.old = &(struct manifest){.chunks = old->chunks, .n = old->n, .size = u.ooff[old->n]};
        for (;;) {
                r = verify(&u);
                if (r < 0)
                        goto out;
                if (u.p == u.newsize)
                        break;
                r = chunk(&u);
                if (r < 0)
                        goto out;
                if (u.oi >= old->n)
                        break;
        }
        manifest_file_hash(&u.t, &u.t.file_hash);
        *m = u.t;
        u.t = (struct manifest)MANIFEST_INIT;
out:
        /* first: the thread may still be writing into u.t's hashes */
        hash_bg_free(u.bg);
        manifest_free(&u.t);
        free(u.ooff);
        free(u.slots);
        free(u.s[0].p);
        free(u.s[1].p);
        return r;
}
