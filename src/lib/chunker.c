/* chunker: FastCDC content-defined chunking with normalized chunking (Xia
 * et al., "FastCDC", USENIX ATC 2016).
 *
 * A 64-bit gear hash rolls over the bytes: fp = (fp << 1) + gear[byte]. Bit
 * k of fp depends only on the last k+1 bytes, so with mask bits in the top
 * 40 bits a boundary depends on at most the 64 bytes before it: an insertion
 * moves only the boundaries near it, and the rest realign.
 *
 * Normalized chunking: between CHUNK_MIN and CHUNK_AVG the mask has more bits
 * (18, harder to match), after CHUNK_AVG fewer bits (14, easier), which
 * narrows the size distribution around the average. The first CHUNK_MIN
 * bytes are skipped (never a cut there) and CHUNK_MAX always cuts.
 *
 * The gear table comes from splitmix64 with a fixed seed, so it is the same
 * on every machine and every run: chunk boundaries, hence chunk hashes,
 * must agree between all devices and the server forever. Changing the seed
 * or the masks changes every boundary (and defeats deduplication with data
 * stored before), so they are part of the format.
 */
#include "chunker.h"

#include <errno.h>
#include <pthread.h>

#define GEAR_SEED 0x46657272794344ull /* "FerryCD" */

/* 18 bits set (harder) and 14 bits set (easier, a subset), spread over the
 * high bits so each depends on a window of 25..64 bytes. */
#define MASK_S 0xb2cb2c9249000000ull
#define MASK_L 0x9249249249000000ull

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static uint64_t splitmix64(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static void gear_fill(void)
{
        uint64_t state = GEAR_SEED;

        for (int i = 0; i < 256; i++)
                gear[i] = splitmix64(&state);
}

/* Below this many bytes a region is rolled in one lane: the second lane's
 * warm-up (64 bytes) would not pay. */
#define TWO_LANES_MIN 1024

/* Finds the first i in [a, b) where the rolled fp & mask is 0: returns 1
 * with *hit = i, or 0 with *fp the state after b - 1. *fp holds the state
 * after a - 1, rolled from the chunk's first examined byte (CHUNK_MIN in),
 * which is never after a.
 *
 * One lane is bound by the latency of fp = (fp << 1) + gear[byte], one step
 * after another. Two lanes run at once over the two halves of [a, b), on
 * two registers, so the CPU overlaps them. The second lane's state is
 * exact: bit k of fp depends only on the last k + 1 bytes, so a lane
 * started from 0 at m - 64 (not before the chunk's first examined byte,
 * since the halves are at least 512 bytes) has, from m on, the value the
 * first lane would have there. A hit in the first half wins; one in the
 * second half stands once the first half is known to have none. */
static inline __attribute__((always_inline)) int roll(const uint8_t *buf, size_t a, size_t b,
                                                      uint64_t *fp, uint64_t mask, size_t *hit)
{
        uint64_t f1 = *fp, f2 = 0;
        size_t half, m, k;

        if (b - a < TWO_LANES_MIN) {
                for (k = a; k < b; k++) {
                        f1 = (f1 << 1) + gear[buf[k]];
                        if (!(f1 & mask)) {
                                *hit = k;
                                return 1;
                        }
                }
                *fp = f1;
                return 0;
        }
        half = (b - a) / 2;
        m = a + half;
        for (k = m - 64; k < m; k++)
                f2 = (f2 << 1) + gear[buf[k]];
        for (k = 0; k < half; k++) {
                f1 = (f1 << 1) + gear[buf[a + k]];
                f2 = (f2 << 1) + gear[buf[m + k]];
                if (!(f1 & mask)) {
                        *hit = a + k;
                        return 1;
                }
                if (!(f2 & mask)) {
                        /* the first half may still hold an earlier one */
                        *hit = m + k;
                        for (k++; k < half; k++) {
                                f1 = (f1 << 1) + gear[buf[a + k]];
                                if (!(f1 & mask)) {
                                        *hit = a + k;
                                        break;
                                }
                        }
                        return 1;
                }
        }
        for (k = m + half; k < b; k++) {
                f2 = (f2 << 1) + gear[buf[k]];
                if (!(f2 & mask)) {
                        *hit = k;
                        return 1;
                }
        }
        *fp = f2;
        return 0;
}

/* The cut loop for any parameters; inlined into chunker_cut() with the
 * format's constants, so the default path runs with immediate masks. */
static inline __attribute__((always_inline)) size_t cut(const uint8_t *buf, size_t len, int eof,
                                                        size_t min, size_t avg, size_t max,
                                                        uint64_t mask_s, uint64_t mask_l)
{
        size_t n, normal, i;
        uint64_t fp = 0;

        if (len == 0)
                return 0;
        pthread_once(&gear_once, gear_fill);
        n = len < max ? len : max;
        normal = n < avg ? n : avg;
        if (min < normal && roll(buf, min, normal, &fp, mask_s, &i))
                return i + 1;
        i = min > normal ? min : normal;
        if (i < n && roll(buf, i, n, &fp, mask_l, &i))
                return i + 1;
        if (n == max || eof)
                return n;
        return 0;
}

size_t chunker_cut(const uint8_t *buf, size_t len, int eof)
{
        return cut(buf, len, eof, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX, MASK_S, MASK_L);
}

/* n bits spread evenly over bits 24..63 (a boundary then depends on a
 * window of up to 64 bytes, as with the format's masks). */
static uint64_t spread_mask(int n)
{
        uint64_t m = 0;

        for (int i = 0; i < n; i++)
                m |= 1ull << (63 - (i * 40) / n);
        return m;
}

int chunker_params_for(uint32_t avg, struct chunker_params *out)
{
        int bits = 0;

        if (avg < 1024 || avg > 16u * 1024 * 1024 || (avg & (avg - 1)))
                return -EINVAL;
        while ((1u << bits) < avg)
                bits++;
        if (avg == CHUNK_AVG) {
                *out = (struct chunker_params){CHUNK_MIN, CHUNK_AVG, CHUNK_MAX, MASK_S, MASK_L};
                return 0;
        }
        *out = (struct chunker_params){avg / 4, avg, avg * 4, spread_mask(bits + 2),
                                       spread_mask(bits - 2)};
        return 0;
}

size_t chunker_cut_params(const struct chunker_params *p, const uint8_t *buf, size_t len, int eof)
{
        return cut(buf, len, eof, p->min, p->avg, p->max, p->mask_s, p->mask_l);
}
