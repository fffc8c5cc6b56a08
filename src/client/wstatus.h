/* wstatus: what a running `ferry watch` tells `ferry status`, through two
 * files in DIR/.ferry/:
 *   watch.lock  held (flock, exclusive) by the watch for its whole life: one
 *               watch per folder, and a live watch is one whose lock is held;
 *   watch.json  its current state, rewritten (atomically, by rename) when
 *               the state changes: {"pid", "state", "detail", "since",
 *               "offline_since", "last_error", "last_round_ns",
 *               "last_round_ms", "waiting"} (docs/cli.md).
 */
#ifndef FERRY_WSTATUS_H
#define FERRY_WSTATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define WSTATUS_FILE "watch.json"
#define WSTATUS_LOCK "watch.lock"

struct wstatus {
        const char *state; /* starting, scanning, uploading, downloading, idle, offline */
        int have_detail;   /* files and bytes of the current transfer are known */
        int64_t files, bytes;
        int64_t since;         /* when this state began (seconds since the epoch) */
        int64_t offline_since; /* when the server was lost (seconds), 0 when online */
        char last_error[512];  /* "" when none */
        int64_t last_round_ns; /* when the last round ended (ns since the epoch), 0 if none */
        int64_t last_round_ms; /* how long it took */
        /* files other devices have yet to upload (policy "wait"; the list
         * is in waiting.json); have_waiting 0: not listed (policy "skip") */
        int have_waiting;
        int64_t waiting;
};

/* Takes root/.ferry/watch.lock for the life of the process (*fd). -EBUSY
 * with a message when another watch holds it. */
int wstatus_lock(const char *root, int *fd);

/* Writes root/.ferry/watch.json (pid = this process). */
int wstatus_write(const char *root, const struct wstatus *w);

/* Removes root/.ferry/watch.json (the watch is stopping). */
void wstatus_remove(const char *root);

/* *out gets the watch.json object of a live watch (its lock is held and its
 * pid exists), or NULL when no watch runs. */
int wstatus_read(const char *root, json_t **out);

/* One line for `ferry status`: "idle", "uploading 3 files (1.2 MiB)",
 * "offline since 14:02:05 (retrying)", "idle, waiting for 18 files", ... */
void wstatus_describe(const json_t *w, char *out, size_t len);

#endif
