/* chunk_bench: why the chunk parameters are what they are (README
 * "Chunking"). Cuts the same data with several average chunk sizes (the
 * format's 64 KiB and others from chunker_params_for(): minimum avg/4,
 * maximum 4*avg) and prints, for each:
 *   - the gear hash's speed and the number of chunks (each costs a 36-byte
 *     manifest entry, a hash lookup, on the server a stored object);
 *   - the bytes of new chunks after small edits of a large random file
 *     (1 byte overwritten, 1 byte inserted, 4 KiB inserted, in the middle):
 *     what an upload sends, and a download fetches, for the edit;
 *   - the same on text (the C headers of this machine, concatenated, as a
 *     stand-in for a folder of documents), after 100 scattered small edits.
 * Only the chunker runs here (no network, no server): the figures are of the
 * parameters alone.
 *
 *   chunk_bench [-m MIB]   (random data size, default 256)
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chunker.h"
#include "hash.h"

struct data {
        uint8_t *p;
        size_t len, cap;
};

/* The chunks of one version: hashes kept sorted for lookups. */
struct cutlist {
        struct hash *h;
        uint32_t *size;
        size_t n;
};

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static int cmp_hash(const void *a, const void *b)
{
        return memcmp(a, b, HASH_LEN);
}

/* Cuts d with p; the time of the gear hash alone goes to *cut_s. */
static int cut_all(const struct chunker_params *p, const struct data *d, struct cutlist *out,
                   double *cut_s)
{
        size_t cap = d->len / (p->min ? p->min : 1) + 2, off = 0;
        double t0, spent = 0;

        out->h = malloc(cap * sizeof(*out->h));
        out->size = malloc(cap * sizeof(*out->size));
        out->n = 0;
        if (!out->h || !out->size)
                return -1;
        while (off < d->len) {
                size_t k;

                t0 = now_s();
                k = chunker_cut_params(p, d->p + off, d->len - off, 1);
                spent += now_s() - t0;
                hash_buf(d->p + off, k, &out->h[out->n]);
                out->size[out->n++] = (uint32_t)k;
                off += k;
        }
        if (cut_s)
                *cut_s = spent;
        return 0;
}

static void cutlist_free(struct cutlist *c)
{
        free(c->h);
        free(c->size);
}

/* Bytes of the chunks of b that a holds none of. */
static uint64_t new_bytes(const struct cutlist *a, const struct cutlist *b)
{
        struct hash *sorted = malloc(a->n * sizeof(*sorted) + 1);
        uint64_t sum = 0;

        if (!sorted)
                return UINT64_MAX;
        memcpy(sorted, a->h, a->n * sizeof(*sorted));
        qsort(sorted, a->n, sizeof(*sorted), cmp_hash);
        for (size_t i = 0; i < b->n; i++)
                if (!bsearch(&b->h[i], sorted, a->n, sizeof(*sorted), cmp_hash))
                        sum += b->size[i];
        free(sorted);
        return sum;
}

/* A copy of a with n bytes at off replaced (ins 0) or inserted (ins 1). */
static int edited(const struct data *a, size_t off, size_t n, int ins, uint64_t *seed,
                  struct data *out)
{
        out->len = a->len + (ins ? n : 0);
        out->p = malloc(out->len);
        if (!out->p)
                return -1;
        memcpy(out->p, a->p, off);
        for (size_t i = 0; i < n; i++)
                out->p[off + i] =
                    (uint8_t)(a->p[off < a->len ? off : 0] + 1 + rng_next(seed) % 255);
        memcpy(out->p + off + n, a->p + off + (ins ? 0 : n), a->len - off - (ins ? 0 : n));
        return 0;
}

static struct data *text_acc;

static int add_header(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        FILE *f;
        size_t want;

        (void)ftw;
        if (flag != FTW_F || !strstr(path, ".h") || text_acc->len >= text_acc->cap)
                return 0;
        want = (size_t)st->st_size;
        if (want > text_acc->cap - text_acc->len)
                want = text_acc->cap - text_acc->len;
        f = fopen(path, "rb");
        if (!f)
                return 0;
        text_acc->len += fread(text_acc->p + text_acc->len, 1, want, f);
        fclose(f);
        return 0;
}

/* 100 edits of 1..64 bytes inserted at random places of t. */
static int scattered(const struct data *t, uint64_t *seed, struct data *out)
{
        struct data cur = {malloc(t->len), t->len, 0}, next;

        if (!cur.p)
                return -1;
        memcpy(cur.p, t->p, t->len);
        for (int e = 0; e < 100; e++) {
                size_t off = rng_next(seed) % cur.len, n = 1 + rng_next(seed) % 64;

                if (edited(&cur, off, n, 1, seed, &next) < 0)
                        return -1;
                free(cur.p);
                cur = next;
        }
        *out = cur;
        return 0;
}

static void kib(char *out, size_t cap, uint64_t b)
{
        snprintf(out, cap, "%.1f KiB", (double)b / 1024.0);
}

int main(int argc, char **argv)
{
        static const uint32_t avgs[] = {16u << 10, 64u << 10, 256u << 10, 1u << 20};
        size_t mib = 256;
        uint64_t seed = 42;
        struct data rnd, text = {0}, text2, ed[3];
        static const char *const edit_names[3] = {"1 B overwritten", "1 B inserted",
                                                  "4 KiB inserted"};
        int c;

        while ((c = getopt(argc, argv, "m:")) != -1) {
                if (c != 'm' || atoi(optarg) < 8) {
                        fprintf(stderr, "usage: chunk_bench [-m MIB (>= 8)]\n");
                        return 2;
                }
                mib = (size_t)atoi(optarg);
        }
        rnd.len = mib << 20;
        rnd.p = malloc(rnd.len);
        text.cap = 64u << 20;
        text.p = malloc(text.cap);
        if (!rnd.p || !text.p)
                return 1;
        for (size_t i = 0; i + 8 <= rnd.len; i += 8) {
                uint64_t v = rng_next(&seed);

                memcpy(rnd.p + i, &v, 8);
        }
        text_acc = &text;
        nftw("/usr/include", add_header, 32, FTW_PHYS);
        if (edited(&rnd, rnd.len / 2, 1, 0, &seed, &ed[0]) < 0 ||
            edited(&rnd, rnd.len / 2, 1, 1, &seed, &ed[1]) < 0 ||
            edited(&rnd, rnd.len / 2, 4096, 1, &seed, &ed[2]) < 0 ||
            scattered(&text, &seed, &text2) < 0)
                return 1;
        printf("chunk_bench: %zu MiB random data, %.1f MiB of /usr/include headers as text\n", mib,
               (double)text.len / (1 << 20));
        printf("%-9s %-12s %-9s %-12s %-13s %-15s %-15s %-15s %-15s\n", "average", "gear MiB/s",
               "chunks", "manifest", "mean chunk", edit_names[0], edit_names[1], edit_names[2],
               "text, 100 edits");
        for (size_t a = 0; a < sizeof(avgs) / sizeof(avgs[0]); a++) {
                struct chunker_params p;
                struct cutlist base, tb, e;
                char col[4][32], man[32], mean[32];
                double cut_s;

                if (chunker_params_for(avgs[a], &p) < 0 || cut_all(&p, &rnd, &base, &cut_s) < 0)
                        return 1;
                for (int k = 0; k < 3; k++) {
                        if (cut_all(&p, &ed[k], &e, NULL) < 0)
                                return 1;
                        kib(col[k], sizeof(col[k]), new_bytes(&base, &e));
                        cutlist_free(&e);
                }
                if (cut_all(&p, &text, &tb, NULL) < 0 || cut_all(&p, &text2, &e, NULL) < 0)
                        return 1;
                kib(col[3], sizeof(col[3]), new_bytes(&tb, &e));
                kib(man, sizeof(man), (uint64_t)base.n * 36);
                kib(mean, sizeof(mean), rnd.len / base.n);
                printf("%-9s %-12.0f %-9zu %-12s %-13s %-15s %-15s %-15s %-15s\n",
                       avgs[a] >= (1u << 20)    ? "1 MiB"
                       : avgs[a] == (16u << 10) ? "16 KiB"
                       : avgs[a] == (64u << 10) ? "64 KiB*"
                                                : "256 KiB",
                       (double)rnd.len / (1 << 20) / cut_s, base.n, man, mean, col[0], col[1],
                       col[2], col[3]);
                cutlist_free(&base);
                cutlist_free(&tb);
                cutlist_free(&e);
        }
        printf("* the format's setting (src/lib/chunker.h). Edits are in the middle of the "
               "random data; 'text' inserts 1-64 bytes at 100 random places.\n");
        for (int k = 0; k < 3; k++)
                free(ed[k].p);
        free(rnd.p);
        free(text.p);
        free(text2.p);
        return 0;
}
