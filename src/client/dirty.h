/* dirty: the watch daemon's set of paths with local events not yet synced,
 * and when each may go into a round.
 *
 * A path is ready WATCH_SETTLE_MS after its last event, except while it is
 * being written (modified, or created and not closed yet): then it waits
 * for its close, or for WATCH_WRITE_QUIET_MS of silence. A directory is not
 * ready while a file under it is being written, since scanning it would
 * read that file half-way. Rounds batch: they start when events have been
 * quiet for WATCH_SETTLE_MS, or WATCH_MAX_DELAY_MS after the first ready
 * path, whichever comes first. Times are CLOCK_MONOTONIC nanoseconds.
 */
#ifndef FERRY_DIRTY_H
#define FERRY_DIRTY_H

#include <stddef.h>
#include <stdint.h>

#define DIRTY_NEVER INT64_MAX

struct dirty_set;

int dirty_new(struct dirty_set **out);
void dirty_free(struct dirty_set *d);

/* Records an event (NOTIFY_* bits) on path at now. */
int dirty_mark(struct dirty_set *d, const char *path, unsigned what, int64_t now);

/* When the next round should start for these paths (DIRTY_NEVER if none). */
int64_t dirty_due(const struct dirty_set *d);

/* Moves the paths ready at now into *paths (malloc'd array of malloc'd
 * strings, *n of them; free with dirty_paths_free). */
int dirty_take(struct dirty_set *d, int64_t now, char ***paths, size_t *n);

/* Puts paths back (a failed round), ready at once; takes ownership. */
int dirty_put_back(struct dirty_set *d, char **paths, size_t n, int64_t now);

/* 1 when some file is still being written at now. */
int dirty_writing(const struct dirty_set *d, int64_t now);

size_t dirty_count(const struct dirty_set *d);

void dirty_paths_free(char **paths, size_t n);

#endif
