/* hash_bench: does this build hash with the CPU's SHA extensions? Issue 4
 * asks that hashing go through OpenSSL to get them; OpenSSL picks its SHA-NI
 * code at run time, so the check is what it does, not how it was built:
 * the CPU's flag (cpuid, as the compiler exposes it) and the throughput of
 * hash_buf() over 64 KiB chunks (the chunk average) in one thread, next to
 * what portable C code reaches (~0.4-0.5 GB/s on current x86 cores; the
 * SHA-NI path ~1.4-2 GB/s). Also the gear hash and XXH3, the other two
 * passes over file bytes, for the record.
 *
 *   hash_bench [-m MIB]   (data size, default 512)
 *
 * Exit status 1 when the CPU has the extensions and SHA-256 still runs at
 * less than 0.9 GB/s: a build or a library that does not use them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chunker.h"
#include "hash.h"
#include "manifest.h"

#define CHUNK (64u * 1024u)

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        size_t mib = 512, len, off;
        uint64_t x = 0x9e3779b97f4a7c15ull, sink = 0;
        uint8_t *p;
        struct hash h;
        double t0, sha, gear, xxh;
        int c, has_sha;

        while ((c = getopt(argc, argv, "m:")) != -1) {
                if (c != 'm' || atoi(optarg) < 16) {
                        fprintf(stderr, "usage: hash_bench [-m MIB (>= 16)]\n");
                        return 2;
                }
                mib = (size_t)atoi(optarg);
        }
        len = mib << 20;
        p = malloc(len);
        if (!p)
                return 1;
        for (size_t i = 0; i < len; i += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(p + i, &x, 8);
        }
        __builtin_cpu_init();
        has_sha = __builtin_cpu_supports("sha");

        t0 = now_s();
        for (off = 0; off < len; off += CHUNK) {
                hash_buf(p + off, CHUNK, &h);
                sink += h.b[0];
        }
        sha = (double)len / (now_s() - t0) / 1e9;
        t0 = now_s();
        for (off = 0; off < len;)
                off += chunker_cut(p + off, len - off, 1);
        gear = (double)len / (now_s() - t0) / 1e9;
        t0 = now_s();
        for (off = 0; off < len; off += CHUNK)
                sink += manifest_fp(p + off, CHUNK);
        xxh = (double)len / (now_s() - t0) / 1e9;

        printf("hash_bench: %zu MiB in 64 KiB pieces, one thread\n", mib);
        printf("CPU SHA extensions (cpuid): %s\n", has_sha ? "yes" : "no");
        printf("SHA-256 (OpenSSL EVP, hash_buf): %.2f GB/s%s\n", sha,
               has_sha ? (sha >= 0.9 ? " -> the SHA-NI path" : " -> NOT the SHA-NI path") : "");
        printf("gear hash (chunker_cut): %.2f GB/s\n", gear);
        printf("XXH3-64 (manifest_fp): %.2f GB/s\n", xxh);
        free(p);
        return (has_sha && sha < 0.9) || sink == 42 ? 1 : 0;
}
