/* Unit tests for chunker: size bounds, determinism (also when bytes arrive
 * in pieces), a plausible average, eof handling, and the property that makes
 * content-defined chunking worth it: an insertion or deletion in the middle
 * of a file leaves the chunks before it and almost all after it unchanged.
 * The known-answer test pins the boundaries: they are part of the format
 * (every device and the server must cut identically, forever). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chunker.h"
#include "hash.h"

#define MIB (1024u * 1024u)

struct cuts {
        size_t n;
        size_t off[4096];
        size_t len[4096];
        struct hash h[4096];
};

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
        uint64_t x = seed;

        for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p[i] = (uint8_t)(x >> 24);
        }
}

static void cut_all(const uint8_t *p, size_t len, struct cuts *c)
{
        size_t off = 0;

        c->n = 0;
        while (off < len) {
                size_t k = chunker_cut(p + off, len - off, 1);

                assert_true(k > 0);
                assert_true(c->n < 4096);
                c->off[c->n] = off;
                c->len[c->n] = k;
                hash_buf(p + off, k, &c->h[c->n]);
                c->n++;
                off += k;
        }
        assert_int_equal(off, len);
}

static int has_hash(const struct cuts *c, const struct hash *h)
{
        for (size_t i = 0; i < c->n; i++)
                if (hash_equal(&c->h[i], h))
                        return 1;
        return 0;
}

static void test_bounds(void **state)
{
        size_t len = 4 * MIB;
        uint8_t *p = malloc(len);
        struct cuts *c = malloc(sizeof(*c));

        (void)state;
        fill_random(p, len, 1);
        cut_all(p, len, c);
        for (size_t i = 0; i < c->n; i++) {
                assert_true(c->len[i] <= CHUNK_MAX);
                if (i + 1 < c->n)
                        assert_true(c->len[i] > CHUNK_MIN);
        }
        /* Constant bytes never match the mask the same way random ones do:
         * the max must still cut, and the min still hold. */
        memset(p, 0, len);
        cut_all(p, len, c);
        for (size_t i = 0; i + 1 < c->n; i++) {
                assert_true(c->len[i] <= CHUNK_MAX);
                assert_true(c->len[i] > CHUNK_MIN);
        }
        free(c);
        free(p);
}

static void test_average(void **state)
{
        size_t len = 16 * MIB;
        uint8_t *p = malloc(len);
        struct cuts *c = malloc(sizeof(*c));
        size_t avg;

        (void)state;
        fill_random(p, len, 7);
        cut_all(p, len, c);
        avg = len / c->n;
        /* Normalized chunking around 64 KiB: expected about 70 KiB. */
        assert_true(avg >= 48 * 1024);
        assert_true(avg <= 100 * 1024);
        free(c);
        free(p);
}

static void test_deterministic_and_streaming(void **state)
{
        size_t len = 4 * MIB;
        uint8_t *p = malloc(len);
        struct cuts *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
        size_t off = 0, avail = 0, n = 0;

        (void)state;
        fill_random(p, len, 3);
        cut_all(p, len, a);
        cut_all(p, len, b);
        assert_int_equal(a->n, b->n);
        for (size_t i = 0; i < a->n; i++)
                assert_int_equal(a->len[i], b->len[i]);
        /* Feed the bytes 10 000 at a time, as a reader would: the cuts must
         * be the same as with the whole buffer at hand. */
        while (off < len) {
                size_t k = chunker_cut(p + off, avail - off, avail == len);

                if (k == 0) {
                        avail = avail + 10000 > len ? len : avail + 10000;
                        continue;
                }
                assert_true(n < a->n);
                assert_int_equal(k, a->len[n]);
                n++;
                off += k;
        }
        assert_int_equal(n, a->n);
        free(a);
        free(b);
        free(p);
}

static void test_eof_and_short_input(void **state)
{
        uint8_t *p = malloc(CHUNK_MAX * 2);
        size_t c;

        (void)state;
        fill_random(p, CHUNK_MAX * 2, 11);
        assert_int_equal(chunker_cut(p, 0, 0), 0);
        assert_int_equal(chunker_cut(p, 0, 1), 0);
        /* Smaller than the minimum: more bytes wanted, or one chunk at eof */
        assert_int_equal(chunker_cut(p, 1, 0), 0);
        assert_int_equal(chunker_cut(p, 1, 1), 1);
        assert_int_equal(chunker_cut(p, CHUNK_MIN, 0), 0);
        assert_int_equal(chunker_cut(p, CHUNK_MIN, 1), CHUNK_MIN);
        /* At eof the rest is a chunk, but never more than the maximum */
        assert_int_equal(chunker_cut(p, CHUNK_MAX * 2, 1) <= CHUNK_MAX, 1);
        /* Just before the first boundary there is none: ask for more */
        c = chunker_cut(p, CHUNK_MAX * 2, 0);
        assert_true(c > CHUNK_MIN && c <= CHUNK_MAX);
        assert_int_equal(chunker_cut(p, c - 1, 0), 0);
        assert_int_equal(chunker_cut(p, c - 1, 1), c - 1);
        assert_int_equal(chunker_cut(p, c, 0), c);
        /* A full CHUNK_MAX without a boundary always cuts, eof or not */
        memset(p, 0, CHUNK_MAX);
        c = chunker_cut(p, CHUNK_MAX, 0);
        assert_true(c > CHUNK_MIN && c <= CHUNK_MAX);
        free(p);
}

static void check_edit(size_t len, size_t at, const uint8_t *orig, const uint8_t *edited,
                       size_t edited_len)
{
        struct cuts *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
        size_t before = 0, after = 0, kept_after = 0;

        cut_all(orig, len, a);
        cut_all(edited, edited_len, b);
        for (size_t i = 0; i < a->n; i++) {
                if (a->off[i] + a->len[i] <= at) {
                        /* wholly before the edit: same position, same hash */
                        before++;
                        assert_true(i < b->n);
                        assert_true(hash_equal(&a->h[i], &b->h[i]));
                } else if (a->off[i] > at + CHUNK_MAX) {
                        after++;
                        kept_after += (size_t)has_hash(b, &a->h[i]);
                }
        }
        assert_true(before >= 10);
        assert_true(after >= 10);
        /* all but a couple of chunks after the edit are found again */
        assert_true(kept_after + 2 >= after);
        free(a);
        free(b);
}

static void test_stable_under_insertion(void **state)
{
        size_t len = 4 * MIB, at = 2 * MIB + 12345, ins = 100;
        uint8_t *p = malloc(len), *q = malloc(len + ins);

        (void)state;
        fill_random(p, len, 5);
        memcpy(q, p, at);
        fill_random(q + at, ins, 99);
        memcpy(q + at + ins, p + at, len - at);
        check_edit(len, at, p, q, len + ins);
        free(q);
        free(p);
}

static void test_stable_under_deletion(void **state)
{
        size_t len = 4 * MIB, at = MIB + 777, del = 5000;
        uint8_t *p = malloc(len), *q = malloc(len);

        (void)state;
        fill_random(p, len, 6);
        memcpy(q, p, at);
        memcpy(q + at, p + at + del, len - at - del);
        check_edit(len, at, p, q, len - del);
        free(q);
        free(p);
}

static void test_known_boundaries(void **state)
{
        /* Pinned: changing the gear table or masks breaks this on purpose. */
        static const size_t expect[] = {181102, 112841, 68247, 72372, 67209};
        size_t len = 2 * MIB;
        uint8_t *p = malloc(len);
        struct cuts *c = malloc(sizeof(*c));

        (void)state;
        fill_random(p, len, 42);
        cut_all(p, len, c);
        assert_true(c->n >= 5);
        for (size_t i = 0; i < 5; i++)
                assert_int_equal(c->len[i], expect[i]);
        free(c);
        free(p);
}

/* The plain one-lane loop chunker.c had before it rolled two lanes at once,
 * with the format's gear table (splitmix64 from the seed "FerryCD"): the
 * cuts must be the same, byte for byte, on any data and any length. */
static uint64_t ref_gear[256];

static void ref_gear_fill(void)
{
        uint64_t state = 0x46657272794344ull;

        for (int i = 0; i < 256; i++) {
                uint64_t z = (state += 0x9e3779b97f4a7c15ull);

                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                ref_gear[i] = z ^ (z >> 31);
        }
}

static size_t ref_cut(const struct chunker_params *cp, const uint8_t *buf, size_t len, int eof)
{
        size_t n = len < cp->max ? len : cp->max, normal = n < cp->avg ? n : cp->avg, i;
        uint64_t fp = 0;

        if (len == 0)
                return 0;
        for (i = cp->min; i < normal; i++) {
                fp = (fp << 1) + ref_gear[buf[i]];
                if (!(fp & cp->mask_s))
                        return i + 1;
        }
        for (; i < n; i++) {
                fp = (fp << 1) + ref_gear[buf[i]];
                if (!(fp & cp->mask_l))
                        return i + 1;
        }
        return n == cp->max || eof ? n : 0;
}

static void test_same_cuts_as_one_lane(void **state)
{
        size_t len = 4 * MIB;
        uint8_t *p = malloc(len);
        uint64_t x = 7;

        (void)state;
        assert_non_null(p);
        ref_gear_fill();
        for (int kind = 0; kind < 4; kind++) {
                /* random; zeros; text-like (few symbols: hits cluster);
                 * a short pattern repeated */
                fill_random(p, len, 100 + (uint64_t)kind);
                for (size_t i = 0; kind > 0 && i < len; i++)
                        p[i] = kind == 1   ? 0
                               : kind == 2 ? (uint8_t)('a' + p[i] % 5)
                                           : (uint8_t)(i % 3);
                for (uint32_t avg = 16u << 10; avg <= (64u << 10); avg *= 4) {
                        struct chunker_params cp;

                        assert_int_equal(chunker_params_for(avg, &cp), 0);
                        for (int t = 0; t < 300; t++) {
                                size_t off, n;
                                int eof;

                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                off = (size_t)(x % (len / 2));
                                /* lengths around every boundary that matters */
                                n = t < 40 ? (size_t)t * 997 % (cp.min + 2000)
                                           : (size_t)((x >> 20) % (cp.max + 4096));
                                eof = (int)(x >> 60) & 1;
                                assert_int_equal(chunker_cut_params(&cp, p + off, n, eof),
                                                 ref_cut(&cp, p + off, n, eof));
                                if (avg == CHUNK_AVG)
                                        assert_int_equal(chunker_cut(p + off, n, eof),
                                                         ref_cut(&cp, p + off, n, eof));
                        }
                }
        }
        free(p);
}

/* The measuring parameters: CHUNK_AVG gives the format's own cuts; the
 * others keep their bounds and average near what was asked; bad averages
 * are refused. */
static void test_params(void **state)
{
        static const uint32_t avgs[] = {16u << 10, 64u << 10, 256u << 10};
        size_t len = 24u << 20;
        uint8_t *p = malloc(len);
        struct chunker_params cp;

        (void)state;
        assert_non_null(p);
        fill_random(p, len, 11);
        assert_int_equal(chunker_params_for(1000, &cp), -EINVAL);
        assert_int_equal(chunker_params_for(512, &cp), -EINVAL);
        assert_int_equal(chunker_params_for(32u << 20, &cp), -EINVAL);
        for (size_t a = 0; a < 3; a++) {
                size_t off = 0, n = 0;

                assert_int_equal(chunker_params_for(avgs[a], &cp), 0);
                assert_int_equal(cp.min, avgs[a] / 4);
                assert_int_equal(cp.max, (size_t)avgs[a] * 4);
                while (off < len) {
                        size_t k = chunker_cut_params(&cp, p + off, len - off, 1);

                        if (avgs[a] == CHUNK_AVG)
                                assert_int_equal(k, chunker_cut(p + off, len - off, 1));
                        assert_true(k >= 1 && k <= cp.max);
                        if (off + k < len)
                                assert_true(k >= cp.min);
                        off += k;
                        n++;
                }
                /* normalized chunking keeps the mean within ~25% */
                assert_true(len / n > avgs[a] * 3 / 4 && len / n < avgs[a] * 5 / 4);
        }
        free(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_bounds),
            cmocka_unit_test(test_average),
            cmocka_unit_test(test_deterministic_and_streaming),
            cmocka_unit_test(test_eof_and_short_input),
            cmocka_unit_test(test_stable_under_insertion),
            cmocka_unit_test(test_stable_under_deletion),
            cmocka_unit_test(test_known_boundaries),
            cmocka_unit_test(test_same_cuts_as_one_lane),
            cmocka_unit_test(test_params),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
