/* api: the handlers of HTTP API v1 (docs/api.md), one per endpoint, grouped
 * by concern: api_account.c (health, register, login, devices),
 * api_chunks.c (missing, upload, fetch), api_files.c (commit, changes,
 * files, file), api_events.c (the event stream), api_history.c (history,
 * trash, restore), api_transfers.c (transfer records); api.c holds what
 * they share (JSON body parsing, entries as JSON). Each handler gets the
 * struct server as ctx.
 */
#ifndef FERRY_API_H
#define FERRY_API_H

#include <jansson.h>

#include "http.h"
#include "meta.h"

#define API_MAX_ITEMS 10000 /* commit changes, chunks/missing hashes */
#define API_MAX_FETCH 1024  /* chunks/fetch hashes */
#define API_CHANGES_DEFAULT 1000
#define API_CHANGES_MAX 10000

void api_health(void *ctx, struct http_request *req, struct http_reply *rep);
void api_register(void *ctx, struct http_request *req, struct http_reply *rep);
void api_login(void *ctx, struct http_request *req, struct http_reply *rep);
void api_devices(void *ctx, struct http_request *req, struct http_reply *rep);
void api_chunks_missing(void *ctx, struct http_request *req, struct http_reply *rep);
void api_chunks_upload(void *ctx, struct http_request *req, struct http_reply *rep);
void api_chunks_fetch(void *ctx, struct http_request *req, struct http_reply *rep);
void api_commit(void *ctx, struct http_request *req, struct http_reply *rep);
void api_changes(void *ctx, struct http_request *req, struct http_reply *rep);
void api_files(void *ctx, struct http_request *req, struct http_reply *rep);
void api_file(void *ctx, struct http_request *req, struct http_reply *rep);
void api_events(void *ctx, struct http_request *req, struct http_reply *rep);
/* api_history.c */
void api_history(void *ctx, struct http_request *req, struct http_reply *rep);
void api_trash(void *ctx, struct http_request *req, struct http_reply *rep);
void api_restore(void *ctx, struct http_request *req, struct http_reply *rep);
void api_snapshot(void *ctx, struct http_request *req, struct http_reply *rep);
/* api_requests.c */
void api_requests_create(void *ctx, struct http_request *req, struct http_reply *rep);
void api_requests_list(void *ctx, struct http_request *req, struct http_reply *rep);
void api_requests_update(void *ctx, struct http_request *req, struct http_reply *rep);
void api_lan_key(void *ctx, struct http_request *req, struct http_reply *rep);
void api_devices_rename(void *ctx, struct http_request *req, struct http_reply *rep);
/* The device registry's rules the other handlers share (api_requests.c). */
struct server;
/* Bumps user's counter (enum meta_counter) and announces it to the event
 * streams; logs a failure (the change it stands for is done). */
void api_registry_changed(struct server *s, int64_t user, int counter);
/* The device as GET /api/v1/devices shows it: transfers_device_json with
 * "lan", "subnet" and "first_seen". NULL on out of memory. */
json_t *api_device_json(struct server *s, const struct meta_device *d,
                        const struct http_request *self, int64_t now);
/* Adds "lan", "subnet" and "first_seen" of d to o. 0 or -ENOMEM. */
int api_device_registry_fields(json_t *o, const struct meta_device *d,
                               const struct http_request *self);
/* Parses v ({"addr", "port", "prefix"} or null) into d's lan fields. 0, or
 * -1 with a 400 reply. */
int api_parse_lan(json_t *v, struct meta_device *d, struct http_reply *rep);
/* Stores d's platform and LAN listener; a change bumps the devices
 * version. */
int api_device_set_info(struct server *s, const struct meta_device *d);
/* After a device's removal: the account's LAN key is replaced, requests
 * for the device fail ("device removed"), the devices version moves. */
void api_registry_device_removed(struct server *s, const struct meta_device *victim);
/* The housekeeping tick: pending requests past their expiry expire. */
void api_requests_tick(struct server *s, int64_t now);
/* api_transfers.c */
void api_transfers_announce(void *ctx, struct http_request *req, struct http_reply *rep);
void api_transfers_list(void *ctx, struct http_request *req, struct http_reply *rep);
void api_transfers_progress(void *ctx, struct http_request *req, struct http_reply *rep);
void api_transfers_forget(void *ctx, struct http_request *req, struct http_reply *rep);
void api_downloads_report(void *ctx, struct http_request *req, struct http_reply *rep);
void api_device_update(void *ctx, struct http_request *req, struct http_reply *rep);
void api_devices_remove(void *ctx, struct http_request *req, struct http_reply *rep);
void api_devices_history(void *ctx, struct http_request *req, struct http_reply *rep);

/* Parses the body as a JSON object. On failure sets a 400 reply and returns
 * NULL. */
json_t *api_body_object(struct http_request *req, struct http_reply *rep);

/* An entry as docs/api.md shows it (with its commit "time"); chunks only
 * with with_chunks. NULL on out of memory or a corrupt stored manifest. */
json_t *api_entry_json(const struct meta_entry *e, int with_chunks);

/* Parses {"hashes": [...]} of at most max items. Returns the count with
 * *out malloc'd, or -1 with a 400/413 reply set. */
int api_parse_hashes(json_t *body, size_t max, struct hash **out, struct http_reply *rep);

/* Sets a 500 reply after logging code's message. */
void api_internal(struct http_reply *rep, const char *what, int code);

#endif
