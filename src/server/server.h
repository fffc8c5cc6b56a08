/* server: the context of one running ferryd — its metadata store, chunk
 * store, settings and HTTP daemon — passed to every handler, so that
 * nothing but main()'s signal flag is global. Also the operations the
 * command line shares with the API (creating a user).
 */
#ifndef FERRY_SERVER_H
#define FERRY_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "blob.h"
#include "events.h"
#include "http.h"
#include "meta.h"

/* A device's last_seen and address are written at most this often. */
#define SERVER_TOUCH_INTERVAL 5
/* A device is "online" when it made a request within this many seconds. */
#define SERVER_ONLINE_WINDOW 120

/* What `ferryd` takes on its command line beyond where to listen; see
 * server_settings_default() for the defaults and docs/api.md for meanings. */
struct server_settings {
        int64_t keep_days;       /* superseded versions kept this long; 0: forever */
        int64_t keep_versions;   /* and at most this many per path; 0: no limit */
        int64_t gc_interval;     /* seconds between GC runs; 0: never */
        int64_t gc_grace;        /* unreferenced chunks younger than this stay */
        int64_t session_timeout; /* silent this long with open uploads: failed */
};

void server_settings_default(struct server_settings *st);

struct server {
        struct meta *meta;
        struct blob *blob;
        int registration_open;
        struct http *http;
        struct events *events; /* the event streams' hub */
        /* The metadata store is shared with other ferryd instances
         * (meta_is_shared): the hub spans them (events_pg_new) and uploads
         * hold the store-wide GC lock too (see gc_lock). */
        int shared;
        /* Keep-alive interval of event streams in ms; 0 for the default
         * (tests set it between server_open and server_start). */
        unsigned live_keepalive_ms;
        /* Argon2id takes 64 MiB a run: one at a time keeps ferryd's memory
         * bounded however many logins arrive together. */
        pthread_mutex_t pw_lock;
        char dummy_hash[AUTH_PWHASH_LEN + 1]; /* for unknown users, under pw_lock */
        struct server_settings settings;
        /* Uploads hold it shared from storing a chunk until its ownership
         * row exists; the GC holds it exclusive while it deletes blobs, so
         * it never removes a blob an upload just stored or found. With a
         * shared store both also hold the store-wide META_LOCK_GC in the
         * same mode, after this one (server_gc_shared/server_gc_done). */
        pthread_rwlock_t gc_lock;
        /* The housekeeping thread (transfers_tick every second, gc_run every
         * settings.gc_interval), started by server_start. */
        pthread_t housekeeper;
        int housekeeper_started;
        int stopping; /* under stop_lock */
        pthread_mutex_t stop_lock;
        pthread_cond_t stop_cond;
};

/* Opens the stores under data_dir (created 0700 if missing): meta.db and
 * chunks/, with the default settings (change s->settings before
 * server_start). 0 or a negative code with a message. */
int server_open(struct server *s, const char *data_dir, int registration_open);
/* The same with the stores named (meta_open, blob_open): metadata NULL for
 * DATA_DIR/meta.db, blobs NULL for DATA_DIR/chunks. data_dir is created
 * when given; it may be NULL when both stores are named. */
int server_open_stores(struct server *s, const char *data_dir, const char *metadata,
                       const char *blobs, int registration_open);
/* Starts serving on listen ("ADDR:PORT") with threads workers. */
int server_start(struct server *s, const char *listen, unsigned threads);
uint16_t server_port(const struct server *s);
/* Stops serving (if started) and closes the stores. */
void server_close(struct server *s);

/* Validates the fields and creates a user. 0, -EINVAL, -EEXIST, or another
 * negative code, with a message. */
int server_user_add(struct server *s, const char *name, const char *email, const char *password,
                    size_t password_len);

/* Checks a password under pw_lock, spending the same time for an unknown
 * user. 0 with *user filled, or -EACCES. */
int server_check_password(struct server *s, const char *name, const char *password,
                          size_t password_len, struct meta_user *user);

int64_t server_now(void); /* seconds since the epoch */

/* An upload's side of the GC lock: gc_lock shared, and with a shared store
 * the store-wide META_LOCK_GC shared (waits while a collector on another
 * instance deletes). 0 or a negative code (nothing held then). */
int server_gc_shared(struct server *s);
void server_gc_done(struct server *s);

#endif
