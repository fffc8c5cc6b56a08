/* waiting: what a device under the download policy "wait" is waiting for:
 * the files other devices of the account announced and have not finished
 * uploading (pending, uploading or failed records, GET
 * /api/v1/transfers?status=incomplete), summed up per uploading device.
 *
 * A round (or the watch, when the server's records change) writes the
 * summary to DIR/.ferry/waiting.json, so that `ferry sync` can print it and
 * `ferry status` can show it without asking the server:
 *
 *   {"time": T, "devices": [{"device": ID, "name": NAME, "online": BOOL,
 *    "last_seen": T, "files": N, "pending": N, "uploading": N, "failed": N,
 *    "bytes_total": B, "bytes_done": B, "reason": "..." | null}]}
 *
 * (reason: the last failure reported for one of those files).
 */
#ifndef FERRY_WAITING_H
#define FERRY_WAITING_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "remote.h"

#define WAITING_FILE "waiting.json"

/* The summary of a GET /api/v1/transfers answer, leaving out the records
 * of the device self_id (its own uploads are not waited for); devices in
 * the order of their first incomplete batch, newest first. */
int waiting_from_transfers(const json_t *transfers, const char *self_id, int64_t now, json_t **out);

/* Asks the server and sums up. */
int waiting_fetch(struct remote *rem, const char *self_id, json_t **out);

/* The number of files of a summary. */
int64_t waiting_files(const json_t *w);

/* Writes root/.ferry/waiting.json (w NULL: removes it). Not fsynced: it is
 * a cache of the server's state. */
int waiting_save(const char *root, const json_t *w);

/* Reads it back; *out is NULL when there is none (or it is unreadable). */
int waiting_load(const char *root, json_t **out);

/* One device of a summary in words: "18 files from laptop (3 pending, 15
 * failed: connection lost; offline since 2026-11-21 14:02:05)". */
void waiting_describe(const json_t *dev, char *out, size_t len);

#endif
