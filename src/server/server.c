/* server: set-up and tear-down of a ferryd instance, the routing table of
 * API v1, and the hooks the HTTP layer calls around handlers (token
 * authentication before, device last-seen bookkeeping after) and when a
 * device's request is cut off or its connection closes (its transfer
 * records). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "err.h"
#include "fsutil.h"
#include "gc.h"
#include "log.h"
#include "server.h"
#include "transfers.h"

#define MiB (1024u * 1024u)
#define JSON_MAX (64u * MiB)
#define CHUNKS_MAX (16u * MiB)
#define SMALL_MAX (64u * 1024u) /* account requests: a few short fields */

static const struct http_route routes[] = {
    {"GET", "/api/v1/health", api_health, 0, 0},
    {"POST", "/api/v1/register", api_register, SMALL_MAX, 0},
    {"POST", "/api/v1/login", api_login, SMALL_MAX, 0},
    {"GET", "/api/v1/devices", api_devices, 0, 1},
    {"POST", "/api/v1/chunks/missing", api_chunks_missing, JSON_MAX, 1},
    {"POST", "/api/v1/chunks", api_chunks_upload, CHUNKS_MAX, 1},
    {"POST", "/api/v1/chunks/fetch", api_chunks_fetch, JSON_MAX, 1},
    {"POST", "/api/v1/commit", api_commit, JSON_MAX, 1},
    {"GET", "/api/v1/changes", api_changes, 0, 1},
    {"GET", "/api/v1/files", api_files, 0, 1},
    {"GET", "/api/v1/file", api_file, 0, 1},
    {"GET", "/api/v1/events", api_events, 0, 1},
    {"GET", "/api/v1/history", api_history, 0, 1},
    {"GET", "/api/v1/trash", api_trash, 0, 1},
    {"POST", "/api/v1/restore", api_restore, SMALL_MAX, 1},
    {"GET", "/api/v1/snapshot", api_snapshot, 0, 1},
    {"POST", "/api/v1/transfers", api_transfers_announce, JSON_MAX, 1},
    {"GET", "/api/v1/transfers", api_transfers_list, 0, 1},
    {"POST", "/api/v1/transfers/progress", api_transfers_progress, JSON_MAX, 1},
    {"POST", "/api/v1/transfers/forget", api_transfers_forget, JSON_MAX, 1},
    {"POST", "/api/v1/downloads", api_downloads_report, JSON_MAX, 1},
    {"POST", "/api/v1/device", api_device_update, SMALL_MAX, 1},
    {"POST", "/api/v1/devices/remove", api_devices_remove, SMALL_MAX, 1},
    {"GET", "/api/v1/devices/history", api_devices_history, 0, 1},
    {"POST", "/api/v1/devices/rename", api_devices_rename, SMALL_MAX, 1},
    {"GET", "/api/v1/lan-key", api_lan_key, 0, 1},
    {"POST", "/api/v1/requests", api_requests_create, SMALL_MAX, 1},
    {"GET", "/api/v1/requests", api_requests_list, 0, 1},
    {"POST", "/api/v1/requests/update", api_requests_update, SMALL_MAX, 1},
};

int64_t server_now(void)
{
        return (int64_t)time(NULL);
}

void server_settings_default(struct server_settings *st)
{
        st->keep_days = 30;
        st->keep_versions = 0;
        st->gc_interval = 3600;
        st->gc_grace = 3600;
        st->session_timeout = 30;
}

int server_open(struct server *s, const char *data_dir, int registration_open)
{
        return server_open_stores(s, data_dir, NULL, NULL, registration_open);
}

int server_open_stores(struct server *s, const char *data_dir, const char *metadata,
                       const char *blobs, int registration_open)
{
        pthread_rwlockattr_t rwa;
        int r;

        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->pw_lock, NULL);
        /* Writer first: a steady stream of uploads must not starve the GC. */
        pthread_rwlockattr_init(&rwa);
        pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&s->gc_lock, &rwa);
        pthread_rwlockattr_destroy(&rwa);
        pthread_mutex_init(&s->stop_lock, NULL);
        pthread_cond_init(&s->stop_cond, NULL);
        server_settings_default(&s->settings);
        s->registration_open = registration_open;
        r = auth_init();
        if (r < 0)
                return r;
        if (!data_dir && (!metadata || !blobs))
                return err_set(-EINVAL, "a data directory is needed for the default stores");
        if (data_dir) {
                r = fsutil_mkdirs(data_dir, 1);
                if (r < 0)
                        return err_set(r, "cannot create %s: %s", data_dir, strerror(-r));
        }
        r = meta_open(metadata, data_dir, &s->meta);
        if (r < 0)
                return r;
        s->shared = meta_is_shared(metadata);
        r = blob_open(blobs, data_dir, &s->blob);
        /* Commits on other instances must reach the streams held here. */
        if (r == 0)
                r = s->shared ? events_pg_new(metadata, &s->events) : events_local_new(&s->events);
        if (r < 0) {
                blob_close(s->blob);
                s->blob = NULL;
                meta_close(s->meta);
                s->meta = NULL;
        }
        return r;
}

int server_gc_shared(struct server *s)
{
        int r;

        pthread_rwlock_rdlock(&s->gc_lock);
        if (!s->shared)
                return 0;
        /* One round trip each way, and only when another instance could be
         * collecting: the SQLite store has no other instance. */
        r = s->meta->ops->cluster_lock(s->meta, META_LOCK_GC, 1, 0);
        if (r < 0) {
                pthread_rwlock_unlock(&s->gc_lock);
                return r;
        }
        return 0;
}

void server_gc_done(struct server *s)
{
        if (s->shared)
                s->meta->ops->cluster_unlock(s->meta, META_LOCK_GC, 1);
        pthread_rwlock_unlock(&s->gc_lock);
}

/* The http layer's authenticate hook: bearer token -> device. */
static int authenticate(void *ctx, const char *authorization, struct http_request *req)
{
        struct server *s = ctx;
        char token[AUTH_TOKEN_HEX_LEN + 1];
        struct hash th;
        int r;

        r = auth_parse_bearer(authorization, token);
        if (r < 0)
                return r;
        r = auth_token_hash(token, &th);
        if (r < 0)
                return r;
        return s->meta->ops->device_by_token(s->meta, &th, &req->device);
}

/* The http layer's after hook: remember when and from where a device was
 * last seen, for requests that succeeded (a refused request changes
 * nothing), at most every SERVER_TOUCH_INTERVAL seconds. */
static void after(void *ctx, const struct http_request *req, int status)
{
        struct server *s = ctx;
        int64_t now = server_now();
        int r;

        if (status >= 400)
                return;
        if (now - req->device.last_seen < SERVER_TOUCH_INTERVAL &&
            strcmp(req->device.address, req->remote_addr) == 0)
                return;
        r = s->meta->ops->device_touch(s->meta, req->device.id, now, req->remote_addr);
        if (r < 0)
                log_warn("device %s: cannot record last seen: %s", req->device.id, err_msg(r));
}

/* The http layer's aborted hook: a request of the device was cut off
 * before its handler ran (an upload interrupted mid-body). */
static void aborted(void *ctx, const struct http_request *req)
{
        transfers_on_connection_lost(ctx, req->device.user_id, req->device.id);
}

/* The http layer's closed hook: when the device's last connection is
 * gone, its uploads in progress are over. */
static void closed(void *ctx, int64_t user, const char *device, unsigned remaining)
{
        if (remaining == 0)
                transfers_on_connection_closed(ctx, user, device);
}

/* Runs what has to happen with nobody asking: records of silent devices
 * fail after the session timeout (checked every second, so within a second
 * of it), and the GC runs every gc_interval seconds, the first time one
 * interval after the start. */
static void *housekeeping(void *arg)
{
        struct server *s = arg;
        int64_t next_gc = server_now() + s->settings.gc_interval;
        struct timespec until;

        pthread_mutex_lock(&s->stop_lock);
        while (!s->stopping) {
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 1;
                pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &until);
                if (s->stopping)
                        break;
                pthread_mutex_unlock(&s->stop_lock);
                int64_t now = server_now();
                transfers_tick(s, now);
                api_requests_tick(s, now); /* upload requests expire */
                if (s->settings.gc_interval > 0 && now >= next_gc) {
                        struct gc_stats st;
                        int r = gc_run(s, now, &st);
                        /* -EBUSY: another instance is collecting; its run
                         * does this one's work. */
                        if (r == -EBUSY)
                                log_debug("gc: %s", err_msg(r));
                        else if (r < 0)
                                log_warn("gc: %s", err_msg(r));
                        next_gc = now + s->settings.gc_interval;
                }
                pthread_mutex_lock(&s->stop_lock);
        }
        pthread_mutex_unlock(&s->stop_lock);
        return NULL;
}

int server_start(struct server *s, const char *listen, unsigned threads)
{
        struct http_config cfg = {
            .listen = listen,
            .routes = routes,
            .n_routes = sizeof(routes) / sizeof(routes[0]),
            .threads = threads,
            .ctx = s,
            .authenticate = authenticate,
            .after = after,
            .aborted = aborted,
            .closed = closed,
            .live_keepalive_ms = s->live_keepalive_ms,
        };
        int r;

        r = http_start(&cfg, &s->http);
        if (r < 0)
                return r;
        r = pthread_create(&s->housekeeper, NULL, housekeeping, s);
        if (r != 0) {
                http_stop(s->http);
                s->http = NULL;
                return err_set(-r, "cannot start the housekeeping thread: %s", strerror(r));
        }
        s->housekeeper_started = 1;
        return 0;
}

uint16_t server_port(const struct server *s)
{
        return s->http ? http_port(s->http) : 0;
}

void server_close(struct server *s)
{
        if (s->housekeeper_started) {
                pthread_mutex_lock(&s->stop_lock);
                s->stopping = 1;
                pthread_cond_signal(&s->stop_cond);
                pthread_mutex_unlock(&s->stop_lock);
                pthread_join(s->housekeeper, NULL);
                s->housekeeper_started = 0;
        }
        /* The streams go with the HTTP daemon, and their subscriptions
         * with them, before the hub. */
        http_stop(s->http);
        s->http = NULL;
        events_close(s->events);
        s->events = NULL;
        blob_close(s->blob);
        s->blob = NULL;
        meta_close(s->meta);
        s->meta = NULL;
        pthread_mutex_destroy(&s->pw_lock);
        pthread_rwlock_destroy(&s->gc_lock);
        pthread_mutex_destroy(&s->stop_lock);
        pthread_cond_destroy(&s->stop_cond);
}

int server_user_add(struct server *s, const char *name, const char *email, const char *password,
                    size_t password_len)
{
        char hash[AUTH_PWHASH_LEN + 1];
        int r;

        r = auth_check_user_name(name);
        if (r == 0)
                r = auth_check_email(email);
        if (r == 0)
                r = auth_check_password(password, password_len);
        if (r < 0)
                return r;
        pthread_mutex_lock(&s->pw_lock);
        r = auth_password_hash(password, password_len, hash);
        pthread_mutex_unlock(&s->pw_lock);
        if (r < 0)
                return r;
        return s->meta->ops->user_add(s->meta, name, email, hash, server_now(), NULL);
}

int server_check_password(struct server *s, const char *name, const char *password,
                          size_t password_len, struct meta_user *user)
{
        int r, found;

        r = s->meta->ops->user_get(s->meta, name, user);
        if (r < 0 && r != -ENOENT)
                return r;
        found = r == 0;
        pthread_mutex_lock(&s->pw_lock);
        if (found) {
                r = auth_password_verify(user->pwhash, password, password_len);
        } else {
                /* Same work for an unknown name, so timing does not tell
                 * which names exist. */
                if (!s->dummy_hash[0])
                        auth_password_hash("ferry-dummy-password", 20, s->dummy_hash);
                if (s->dummy_hash[0])
                        auth_password_verify(s->dummy_hash, password, password_len);
                r = -EACCES;
        }
        pthread_mutex_unlock(&s->pw_lock);
        if (r == -EACCES)
                return err_set(-EACCES, "unknown user or wrong password");
        return r;
}
