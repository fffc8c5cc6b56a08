/* chunker: content-defined chunking (FastCDC-style gear hash with normalized
 * chunking). Boundaries depend only on the bytes near them, so inserting or
 * deleting bytes in the middle of a file changes only the chunks around the
 * edit; the rest keep their hashes and are not transferred again.
 *
 * Parameters (see README "Chunking"): minimum 16 KiB, average 64 KiB,
 * maximum 256 KiB. A file smaller than the minimum is one chunk.
 */
#ifndef FERRY_CHUNKER_H
#define FERRY_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN (16u * 1024u)
#define CHUNK_AVG (64u * 1024u)
#define CHUNK_MAX (256u * 1024u)

/* Given buf holding the bytes of a file starting at a chunk boundary,
 * returns the length of the chunk that starts there (1 .. min(len,
 * CHUNK_MAX)). If no boundary is found within len bytes and len < CHUNK_MAX
 * and eof is 0, returns 0: the caller must supply more bytes. With eof set,
 * the rest of the buffer (up to CHUNK_MAX) is a chunk. len == 0 returns 0. */
size_t chunker_cut(const uint8_t *buf, size_t len, int eof);

/* Other settings, for measuring them (bench/chunk_bench.c) and nothing
 * else: data cut with them shares no chunk with data cut by chunker_cut(). */
struct chunker_params {
        size_t min, avg, max;
        uint64_t mask_s, mask_l; /* before and after avg, as in chunker.c */
};
/* Minimum avg/4, maximum 4*avg, masks of log2(avg)+2 and log2(avg)-2 bits;
 * avg = CHUNK_AVG gives the format's own parameters. avg must be a power of
 * two from 1 KiB to 16 MiB: 0 or -EINVAL. */
int chunker_params_for(uint32_t avg, struct chunker_params *out);
size_t chunker_cut_params(const struct chunker_params *p, const uint8_t *buf, size_t len, int eof);

#endif
