/* testutil: what many unit tests need and none should write again: a fresh
 * temporary folder under $TMPDIR (or /tmp), its removal, and counting the
 * names left in a folder. Tests only; not part of libferry. */
#ifndef FERRY_TESTUTIL_H
#define FERRY_TESTUTIL_H

#include <stddef.h>

/* Creates "<TMPDIR>/ferry-<name>-XXXXXX" (mkdtemp) into out (cap bytes).
 * Returns 0 or -errno. */
int testutil_mkdtemp(char *out, size_t cap, const char *name);

/* The same, malloc'd; NULL on failure. */
char *testutil_mkdtemp_alloc(const char *name);

/* rm -rf path, never following symlinks. Returns 0 or -errno. */
int testutil_rm_rf(const char *path);

/* How many entries of dir have a name starting with prefix, leaving out
 * those skip (may be NULL) returns non-zero for. -errno when dir cannot be
 * read. */
int testutil_count_names(const char *dir, const char *prefix, int (*skip)(const char *name));

#endif
