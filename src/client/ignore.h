/* ignore: the patterns of files that never leave this device, in gitignore
 * syntax: DIR/.ferryignore (one pattern a line; blank lines and lines
 * starting with # are skipped; a leading ! negates; a trailing / matches
 * directories only; a leading / or a / inside anchors the pattern at the
 * folder's root, otherwise it matches the name at any depth; * and ? do not
 * cross /, ** does; the last matching pattern wins) plus built-in defaults
 * (editor swap and backup files, .DS_Store, Thumbs.db, desktop.ini, ...;
 * docs/cli.md lists them) that a negation in .ferryignore can undo. An
 * ignored directory hides everything under it. The .ferryignore file itself
 * is synced like any file, so every device shares the patterns (it is never
 * ignored, whatever the patterns say). Details (ignore.c): "**" works in
 * all positions ("**" + "/x", "a/" + "**", "a/" + "**" + "/b"), [a-z]
 * classes, \# and \! escape a leading # or !, trailing spaces are dropped
 * unless escaped, matching is case-sensitive; a negation cannot re-include
 * a file whose parent directory is excluded (git's rule). */
#ifndef FERRY_IGNORE_H
#define FERRY_IGNORE_H

#include <stddef.h>

#define IGNORE_FILE ".ferryignore"

struct ignore;

/* Loads root/.ferryignore (absent: defaults only). Lines that are not
 * valid patterns are skipped with a warning in the log. */
int ignore_load(const char *root, struct ignore **out);
/* The same from the text of a .ferryignore (len bytes, need not end in a
 * NUL); name is the file name the warnings give. */
int ignore_from_text(const char *text, size_t len, const char *name, struct ignore **out);
void ignore_free(struct ignore *ig);

/* 1 if the Ferry path (relative, '/'-separated) is ignored, else 0.
 * is_dir: the path names a directory. Checks the path's parents too. */
int ignore_match(const struct ignore *ig, const char *path, int is_dir);

/* The built-in default patterns (for docs and `ferry rules show`). */
const char *const *ignore_defaults(size_t *n);

#endif
