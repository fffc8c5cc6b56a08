/* conflict: names for the copies Ferry keeps when two devices changed the
 * same file. "dir/report.txt" edited on "laptop" at 2026-11-21 14:02:05
 * becomes "dir/report (conflict from laptop 2026-11-21 140205).txt". The
 * extension is the part after the last dot of the file name, unless the dot
 * is the first character (".bashrc" has none). The name is cut so the result
 * stays within NAME_MAX_BYTES, without splitting a UTF-8 sequence. */
#ifndef FERRY_CONFLICT_H
#define FERRY_CONFLICT_H

#include <time.h>

/* malloc'd, NULL on out of memory. Local time. */
char *conflict_name(const char *path, const char *device_name, time_t when);

#endif
