/* ask: the question of the `ask` rule (rules.h; docs/cli.md, "Rules").
 *
 * After a `ferry sync` round on a terminal, the held files whose reason is
 * "ask" (either direction: held up or held down) are listed, numbered, and
 * one answer chooses among them: `a` (all), `n` (none, also an empty line
 * or the end of input), numbers and ranges (`1,3-5`), or a glob pattern
 * (`*.pdf`, matched against the path and against its last component). The
 * chosen files get overrides (index_override_add), so the next round moves
 * them and they sync both ways from then on; the others stay held, listed
 * by `ferry held`. The answer parser is a pure function; the question
 * reads from any FILE, so tests drive it with a pipe or a pty.
 */
#ifndef FERRY_ASK_H
#define FERRY_ASK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "index.h"

/* The reason rules_check gives for a file an ask rule selects. */
#define ASK_REASON "ask"

struct ask_item {
        char *path;
        int dir;  /* RULES_UP or RULES_DOWN */
        int kind; /* enum file_kind */
        uint64_t size;
};

struct ask_list {
        struct ask_item *v;
        size_t n, cap;
};

/* The held rows whose reason is ASK_REASON: uploads first, then
 * downloads, each by path (the numbering of the question). */
int ask_collect(struct index *idx, struct ask_list *out);
void ask_list_free(struct ask_list *l);

/* The numbered list: number, direction, path, size, type (the type group,
 * as images or documents, else the extension). */
void ask_print(FILE *out, const struct ask_list *l);

/* Parses one answer about n files named paths[0..n): sets chosen[i] to 1
 * for each file chosen, 0 for the others, and returns how many were
 * chosen. Leading and trailing blanks do not count. "a" or "all": all;
 * "", "n" or "none": none (either case); only digits, commas, blanks and
 * dashes: numbers and ranges, 1-based ("1,3-5", "2 4"); anything else: a
 * glob pattern (fnmatch, no flags) matched against each path and its last
 * component. -EINVAL with a message for a number out of range, a range
 * backwards or a malformed list; -ENOENT with a message for a pattern that
 * matches nothing. */
int ask_parse(const char *answer, const char *const *paths, size_t n, unsigned char *chosen);

/* The whole question: lists the ask files on out (nothing at all when there
 * are none), reads answers from in until one parses (a bad one is
 * explained and asked again; the end of input means none), adds an
 * override for each chosen file and says what happens next. *chosen gets
 * how many were chosen. */
int ask_run(struct index *idx, FILE *in, FILE *out, size_t *chosen);

#endif
