/* fsutil: the file-system moves both sides make to never lose data:
 * write to a temporary file, fsync, rename into place, fsync the directory.
 */
#ifndef FERRY_FSUTIL_H
#define FERRY_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

/* mkdir -p with mode 0755 (0700 if private is set). Returns 0 or -errno. */
int fsutil_mkdirs(const char *path, int private_);

/* Writes all of p[0..len) to fd, retrying short writes and EINTR. 0 or
 * -errno. */
int fsutil_write_full(int fd, const uint8_t *p, size_t len);
/* Writes data to "<path>.<random>.tmp" in the same directory, fsyncs it,
 * renames it over path and fsyncs the directory. Returns 0 or -errno. */
int fsutil_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a whole (small) file into a malloc'd NUL-terminated buffer; refuses
 * files over max bytes with -E2BIG. Returns 0 or -errno. */
int fsutil_read_all(const char *path, size_t max, char **out, size_t *len);

/* fsync()s the directory that holds path. Returns 0 or -errno. */
int fsutil_fsync_parent(const char *path);

/* Fills out with n random bytes from getrandom(2). Returns 0 or -errno. */
int fsutil_random(void *out, size_t n);

/* A random lower-case hex string of 2*nbytes characters into out (which must
 * hold 2*nbytes+1). Returns 0 or -errno. */
int fsutil_random_hex(char *out, size_t nbytes);

/* Nanoseconds since the epoch (CLOCK_REALTIME). */
int64_t fsutil_now_ns(void);

/* Nanoseconds of CLOCK_MONOTONIC, for measuring intervals. */
int64_t fsutil_mono_ns(void);

/* t (a stat time, say) in nanoseconds since the epoch. */
int64_t fsutil_ts_ns(const struct timespec *t);

#endif
