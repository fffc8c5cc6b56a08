/* transfers: the transfer records of a space — what each device announced
 * it is uploading (pending, uploading with bytes done, complete, failed with
 * a reason), the download records of each device, and the rules that move a
 * record from one status to the next. The HTTP side is api_transfers.c; the
 * rows live behind the metadata store (meta.h). See docs/api.md,
 * "Transfer records".
 *
 * What moves an upload record:
 *   announce            -> pending (a new record, or the device's open
 *                          record for the path, reused)
 *   progress bytes      -> uploading (from pending or failed)
 *   commit of the file  -> complete (with the commit's seq)
 *   device reports      -> failed (reason given) or deleted (cancelled)
 *   chunk rejected      -> failed "chunk rejected: ..."
 *   request cut off     -> failed "connection lost"
 *   last connection     -> failed "connection closed" (no event stream)
 *   silence             -> failed "device offline: no word since ..."
 *                          (session_timeout, checked every second)
 *   device removed      -> failed "device removed"
 * Every change bumps the user's transfers version, which the event streams
 * announce (events.h).
 *
 * The hooks (transfers_on_*, transfers_tick) are safe from any thread, log
 * their own failures and never fail the request that triggered them. The
 * operations behind the endpoints return 0 or a negative code with a
 * message, and run in one transaction each.
 */
#ifndef FERRY_TRANSFERS_H
#define FERRY_TRANSFERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "meta.h"

struct server;
struct http_request;

/* Complete batches are dropped this long after their last change. */
#define TRANSFERS_KEEP_COMPLETE (7 * 24 * 3600)

/* A put of device's for path landed as seq: its open record (if any) is
 * complete. hash is NULL for anything but a regular file (nothing to do). */
void transfers_on_commit(struct server *s, int64_t user, const char *device, const char *path,
                         const struct hash *hash, int64_t seq);

/* transfers_on_commit for every file put of a commit (meta.h), in one
 * transaction. */
void transfers_on_commits(struct server *s, int64_t user, const char *device,
                          const struct meta_committed *puts, size_t n);

/* An upload of device's was refused (a chunk failed its check, ...): its
 * records still pending or uploading become failed with reason (the whole
 * text, "chunk rejected: ..."). */
void transfers_on_upload_rejected(struct server *s, int64_t user, const char *device,
                                  const char *reason);

/* A request of device's ended before it was handled (the connection was
 * lost in the middle of it): "connection lost". */
void transfers_on_connection_lost(struct server *s, int64_t user, const char *device);

/* The last connection of device closed: unless it holds an event stream,
 * its records pending or uploading fail with "connection closed". */
void transfers_on_connection_closed(struct server *s, int64_t user, const char *device);

/* Called about once a second by the server's housekeeping thread: fails
 * the open records of devices silent for longer than the session timeout,
 * and drops complete batches older than TRANSFERS_KEEP_COMPLETE. */
void transfers_tick(struct server *s, int64_t now);

/* One file of an announce. */
struct transfers_file {
        const char *path;
        int kind;
        uint64_t size;
        int has_hash;
        struct hash hash;
};

/* Announces files (n >= 1) for upload by device d: a new batch, with a
 * pending record per file (the device's open record for the path reused).
 * ids[i] receives the record id of files[i]; *batch the batch. Download
 * records "waiting" are made for the user's other devices of policy
 * wait. */
int transfers_announce(struct server *s, const struct meta_device *d,
                       const struct transfers_file *files, size_t n, int64_t *batch, int64_t *ids);

enum transfers_report { TRANSFERS_BYTES = 0, TRANSFERS_FAILED, TRANSFERS_CANCELLED };

/* One item of a progress report. */
struct transfers_progress {
        int64_t id;
        int report; /* enum transfers_report */
        uint64_t bytes_done;
        const char *reason; /* TRANSFERS_FAILED */
};

/* Applies device d's report on its records. -ENOENT (nothing changed) when
 * an id is not one of d's records. *updated: records changed. */
int transfers_progress(struct server *s, const struct meta_device *d,
                       const struct transfers_progress *items, size_t n, size_t *updated);

/* What to forget: records ids, or every failed record (all_failed), or the
 * failed records of path. */
struct transfers_forget {
        const int64_t *ids;
        size_t n_ids;
        int all_failed;
        const char *path;
};

/* Drops the matching failed upload records of the user (any device) and
 * device d's failed download records of their paths. *forgotten: rows
 * dropped; *skipped: matching records that are not failed (left alone). */
int transfers_forget(struct server *s, const struct meta_device *d,
                     const struct transfers_forget *f, int64_t *forgotten, int64_t *skipped);

/* One item of a download report. */
struct transfers_download {
        const char *path;
        int64_t seq;
        int status; /* META_DL_DONE or META_DL_FAILED */
        const char *reason;
};

/* Device d applied the space up to applied_seq (-1: not said) and reports
 * downloads done or failed. */
int transfers_downloads(struct server *s, const struct meta_device *d, int64_t applied_seq,
                        const struct transfers_download *items, size_t n);

/* Sets device d's download policy (enum meta_policy). */
int transfers_set_policy(struct server *s, const struct meta_device *d, int policy);

/* Removes device victim of its user: revoked token, a "removed" history
 * event with the files it held, its open records failed "device removed",
 * its download records dropped, its event streams ended. *files: the
 * number of files it held. */
int transfers_device_remove(struct server *s, const struct meta_device *victim, int64_t *files);

/* Whether device d is online (an event stream, or a request within
 * SERVER_ONLINE_WINDOW seconds of now). */
int transfers_device_online(struct server *s, const struct meta_device *d, int64_t now);

/* The JSON of an upload record as docs/api.md shows it (NULL on out of
 * memory), with "device" and "device_name" when with_device. */
json_t *transfers_record_json(const struct meta_record *r, int with_device);

/* For GET /api/v1/file of a path without a live entry: when the user has an
 * open upload record for path, *out is the 409 body (error, code
 * "not_ready", transfer) and 1 is returned; 0 when there is none. */
int transfers_not_ready(struct server *s, int64_t user, const char *path, json_t **out);

/* The device as GET /api/v1/devices shows it (NULL on out of memory). self:
 * the request asking, whose device is marked "this" and is being seen now
 * (may be NULL). Not from a listing callback: it asks the store. */
json_t *transfers_device_json(struct server *s, const struct meta_device *d,
                              const struct http_request *self, int64_t now);

/* The names of docs/api.md for enum meta_xfer_status and enum
 * meta_dl_status. */
const char *transfers_status_name(int status);
const char *transfers_dl_status_name(int status);

/* "HH:MM:SS UTC" (with_date: "YYYY-MM-DD HH:MM:SS UTC") of t. */
void transfers_format_time(int64_t t, int with_date, char *out, size_t cap);

#endif
