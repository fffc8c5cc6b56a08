/* gc: retention and garbage collection of ferryd's stores. A run prunes
 * the versions the retention settings no longer keep (never a path's
 * current version), then frees the chunks no retained version uses and that
 * no upload in flight may still need (see gc.c for why that is safe). */
#ifndef FERRY_GC_H
#define FERRY_GC_H

#include <stdint.h>

struct server;

struct gc_stats {
        int64_t versions_pruned;
        int64_t chunks_freed; /* chunk blobs removed from the store */
        int64_t bytes_freed;  /* their uncompressed sizes */
        int64_t refs_dropped; /* per-account chunk ownership rows dropped */
};

/* One run over every account. 0 or a negative code with a message. */
int gc_run(struct server *s, int64_t now, struct gc_stats *st);

#endif
