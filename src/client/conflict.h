/* conflict: the copies Ferry keeps when two devices changed the same file.
 * "dir/report.txt" edited on "laptop" at 2026-11-21 14:02:05 becomes
 * "dir/report (conflict from laptop 2026-11-21 140205).txt". The extension
 * is the part after the last dot of the file name, unless the dot is the
 * first character (".bashrc" has none). The name is cut so the result stays
 * within NAME_MAX_BYTES, without splitting a UTF-8 sequence.
 *
 * The name is the only record of a conflict: no list is kept anywhere. So
 * this module also recognises those names again and finds the copies in a
 * folder, for `ferry status` and `ferry ls --conflicts`, which list them
 * until the user deletes or renames them. */
#ifndef FERRY_CONFLICT_H
#define FERRY_CONFLICT_H

#include <stdio.h>
#include <time.h>

#include <jansson.h>

/* malloc'd, NULL on out of memory. Local time. */
char *conflict_name(const char *path, const char *device_name, time_t when);

/* What the name of a conflict copy says. */
struct conflict_info {
        char *original; /* the path the copy was made from (its stem may have
                         * been shortened to fit, see above) */
        char *device;   /* the device named in the copy (sanitized) */
        char stamp[20]; /* "YYYY-MM-DD HH:MM:SS", that device's local time */
};

/* 1 when path's last component is a conflict copy name as conflict_name
 * makes them (*out filled; free with conflict_info_free), 0 when it is not
 * (*out zeroed), -ENOMEM. A copy of a copy gives the copy it was made from.
 * A name the user changed after the closing parenthesis ("x (conflict from
 * pc 2026-11-21 140205) old.txt") is no longer a conflict copy. */
int conflict_parse(const char *path, struct conflict_info *out);
void conflict_info_free(struct conflict_info *ci);

/* The conflict copies in the folder at root (not under .ferry/, not through
 * symlinks, only valid Ferry paths), sorted by path: *out gets a JSON array
 * of {"path", "original", "device", "stamp"}. A directory that cannot be
 * read is skipped (the folder's root must be readable). */
int conflict_find(const char *root, json_t **out);

/* For `ferry status`: adds "conflicts" (conflict_find of root) to the
 * status JSON object, or prints its text lines on f: "conflicts: none", or
 * a count and one indented line per copy (at most 20), or "conflicts:
 * unknown (why)" when the folder could not be read. */
int conflict_status_json(const char *root, json_t *status);
int conflict_status_print(const char *root, FILE *f);

#endif
