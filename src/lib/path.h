/* path: the rules every path from the network or the disk must pass before
 * Ferry uses it. A Ferry path is relative to the root of a synced folder,
 * '/'-separated, in UTF-8:
 *   - not empty, not longer than PATH_MAX_BYTES, no component longer than
 *     NAME_MAX_BYTES;
 *   - no leading or trailing '/', no empty component ("a//b"), no "." or
 *     ".." component;
 *   - no NUL, no control characters (0x01-0x1f, 0x7f), no backslash;
 *   - valid UTF-8 (no overlong forms, no surrogates);
 *   - not inside the reserved ".ferry" folder at the root, and no component
 *     that is one of Ferry's temporary file names (see path_is_temp).
 */
#ifndef FERRY_PATH_H
#define FERRY_PATH_H

#include <stddef.h>

#define PATH_MAX_BYTES 4096
#define NAME_MAX_BYTES 255

/* The prefix of the temporary files a download is assembled in, in the same
 * directory as the final file: ".ferry-tmp-<random>". */
#define PATH_TEMP_PREFIX ".ferry-tmp-"
#define PATH_STATE_DIR ".ferry"

/* Returns 0 if p is a valid Ferry path, else -EINVAL with a message naming
 * the rule that failed. */
int path_validate(const char *p);

/* 1 if the last component of p is a Ferry temporary file name. */
int path_is_temp(const char *p);

/* Joins root and a relative path with one '/'. Returns a malloc'd string or
 * NULL on out of memory. */
char *path_join(const char *root, const char *rel);

/* The parent of a Ferry path ("a/b/c" -> "a/b", "c" -> ""), malloc'd. */
char *path_dirname(const char *p);

/* Pointer to the last component inside p. */
const char *path_basename(const char *p);

#endif
