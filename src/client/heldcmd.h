/* heldcmd: what `ferry push` and `ferry pull` (and `ferry prune`) share
 * to act on the files the rules hold: taking the PATH operands, opening
 * the folder's index, matching a path against an operand, and running the
 * sync round after, waiting (bounded) for a running sync or watch round to
 * let go of the folder's lock. */
#ifndef FERRY_HELDCMD_H
#define FERRY_HELDCMD_H

#include "config.h"
#include "index.h"
#include "sync.h"

/* How long push, pull and prune wait for a running sync or watch round to
 * let go of the folder's lock. */
#define HELDCMD_LOCK_WAIT_MS 15000

/* The PATH operands: trailing '/' dropped, each a valid Ferry path. CLI_OK
 * with *out (argc entries and a NULL, malloc'd; free with
 * heldcmd_free_paths, also on failure), or the exit code after reporting
 * as cmd. */
int heldcmd_take_paths(const char *cmd, int argc, char **argv, char ***out);
void heldcmd_free_paths(char **p);

int heldcmd_open_index(const struct config *cfg, struct index **idx);

/* 1 when path is p or under p/. */
int heldcmd_at_or_under(const char *path, const char *p);

/* One sync round, waiting (bounded) for a running sync or watch round. */
int heldcmd_round_waiting(const struct config *cfg, struct sync_stats *st);

#endif
