/* events: the in-process event hub of ferryd (see events.h).
 *
 * One mutex guards everything: a hash table of the users that have
 * subscribers, each holding its newest announced seq and versions (enum
 * events_counter) and a doubly linked list of subscribers. Publishing is a bucket lookup and a walk
 * over that user's subscribers, calling each wake callback; a user's record goes away with its last
 * subscriber, since a new stream starts from the seq it reads from the metadata store anyway.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "events.h"

#define N_BUCKETS 256

struct user_rec {
        int64_t id;
        int64_t latest;
        int64_t versions[EVENTS_NCOUNTERS]; /* the newest of each */
        char device[META_DEVICE_ID_LEN + 1];
        struct events_sub *subs;
        struct user_rec *next; /* in the bucket */
};

struct events_sub {
        struct user_rec *user;
        char device[META_DEVICE_ID_LEN + 1];
        events_wake_fn wake;
        void *cls;
        int revoked;
        struct events_sub *prev, *next;
};

struct local {
        struct events ev;
        pthread_mutex_t lock;
        struct user_rec *buckets[N_BUCKETS];
};

static struct user_rec **bucket(struct local *l, int64_t user)
{
        return &l->buckets[(uint64_t)user % N_BUCKETS];
}

static struct user_rec *find_user(struct local *l, int64_t user)
{
        struct user_rec *u;

        for (u = *bucket(l, user); u; u = u->next)
                if (u->id == user)
                        return u;
        return NULL;
}

static int local_subscribe(struct events *ev, int64_t user, const char *device, events_wake_fn wake,
                           void *cls, struct events_sub **out)
{
        struct local *l = (struct local *)ev;
        struct events_sub *s = calloc(1, sizeof(*s));
        struct user_rec *u;
        int r = 0;

        if (!s)
                return err_set(-ENOMEM, "out of memory");
        snprintf(s->device, sizeof(s->device), "%s", device ? device : "");
        s->wake = wake;
        s->cls = cls;
        pthread_mutex_lock(&l->lock);
        u = find_user(l, user);
        if (!u) {
                u = calloc(1, sizeof(*u));
                if (!u) {
                        r = err_set(-ENOMEM, "out of memory");
                        goto out;
                }
                u->id = user;
                u->next = *bucket(l, user);
                *bucket(l, user) = u;
        }
        s->user = u;
        s->next = u->subs;
        if (u->subs)
                u->subs->prev = s;
        u->subs = s;
        *out = s;
        s = NULL;
out:
        pthread_mutex_unlock(&l->lock);
        free(s);
        return r;
}

static void local_unsubscribe(struct events *ev, struct events_sub *s)
{
        struct local *l = (struct local *)ev;
        struct user_rec *u, **pp;

        pthread_mutex_lock(&l->lock);
        u = s->user;
        if (s->prev)
                s->prev->next = s->next;
        else
                u->subs = s->next;
        if (s->next)
                s->next->prev = s->prev;
        if (!u->subs) {
                for (pp = bucket(l, u->id); *pp != u; pp = &(*pp)->next)
                        ;
                *pp = u->next;
                free(u);
        }
        pthread_mutex_unlock(&l->lock);
        free(s);
}

static void local_publish(struct events *ev, int64_t user, int64_t seq, const char *device)
{
        struct local *l = (struct local *)ev;
        struct events_sub *s;
        struct user_rec *u;

        pthread_mutex_lock(&l->lock);
        u = find_user(l, user);
        if (u && seq > u->latest) {
                u->latest = seq;
                snprintf(u->device, sizeof(u->device), "%s", device ? device : "");
                for (s = u->subs; s; s = s->next)
                        s->wake(s->cls);
        }
        pthread_mutex_unlock(&l->lock);
}

static int64_t local_latest(struct events *ev, const struct events_sub *s,
                            char device[META_DEVICE_ID_LEN + 1])
{
        struct local *l = (struct local *)ev;
        int64_t seq;

        pthread_mutex_lock(&l->lock);
        seq = s->user->latest;
        if (device)
                memcpy(device, s->user->device, sizeof(s->user->device));
        pthread_mutex_unlock(&l->lock);
        return seq;
}

static unsigned local_device_streams(struct events *ev, int64_t user, const char *device)
{
        struct local *l = (struct local *)ev;
        struct events_sub *s;
        struct user_rec *u;
        unsigned n = 0;

        pthread_mutex_lock(&l->lock);
        u = find_user(l, user);
        for (s = u ? u->subs : NULL; s; s = s->next)
                if (!s->revoked && strcmp(s->device, device) == 0)
                        n++;
        pthread_mutex_unlock(&l->lock);
        return n;
}

static void local_publish_version(struct events *ev, int64_t user, int counter, int64_t version)
{
        struct local *l = (struct local *)ev;
        struct events_sub *s;
        struct user_rec *u;

        if (counter < 0 || counter >= EVENTS_NCOUNTERS)
                return;
        pthread_mutex_lock(&l->lock);
        u = find_user(l, user);
        if (u && version > u->versions[counter]) {
                u->versions[counter] = version;
                for (s = u->subs; s; s = s->next)
                        s->wake(s->cls);
        }
        pthread_mutex_unlock(&l->lock);
}

static int64_t local_latest_version(struct events *ev, const struct events_sub *s, int counter)
{
        struct local *l = (struct local *)ev;
        int64_t v;

        if (counter < 0 || counter >= EVENTS_NCOUNTERS)
                return 0;
        pthread_mutex_lock(&l->lock);
        v = s->user->versions[counter];
        pthread_mutex_unlock(&l->lock);
        return v;
}

static void local_revoke(struct events *ev, int64_t user, const char *device)
{
        struct local *l = (struct local *)ev;
        struct events_sub *s;
        struct user_rec *u;

        pthread_mutex_lock(&l->lock);
        u = find_user(l, user);
        for (s = u ? u->subs : NULL; s; s = s->next) {
                if (!s->revoked && strcmp(s->device, device) == 0) {
                        s->revoked = 1;
                        s->wake(s->cls);
                }
        }
        pthread_mutex_unlock(&l->lock);
}

static int local_revoked(struct events *ev, const struct events_sub *s)
{
        struct local *l = (struct local *)ev;
        int r;

        pthread_mutex_lock(&l->lock);
        r = s->revoked;
        pthread_mutex_unlock(&l->lock);
        return r;
}

static void local_close(struct events *ev)
{
        struct local *l = (struct local *)ev;
        struct user_rec *u, *next;
        size_t i;

        /* Subscribers should all be gone; free what a caller left over
         * rather than leak it. */
        for (i = 0; i < N_BUCKETS; i++) {
                for (u = l->buckets[i]; u; u = next) {
                        next = u->next;
                        while (u->subs) {
                                struct events_sub *s = u->subs;
                                u->subs = s->next;
                                free(s);
                        }
                        free(u);
                }
        }
        pthread_mutex_destroy(&l->lock);
        free(l);
}

static const struct events_ops local_ops = {
    .subscribe = local_subscribe,
    .unsubscribe = local_unsubscribe,
    .publish = local_publish,
    .latest = local_latest,
    .device_streams = local_device_streams,
    .publish_version = local_publish_version,
    .latest_version = local_latest_version,
    .revoke = local_revoke,
    .revoked = local_revoked,
    .close = local_close,
};

int events_local_new(struct events **out)
{
        struct local *l = calloc(1, sizeof(*l));

        if (!l)
                return err_set(-ENOMEM, "out of memory");
        l->ev.ops = &local_ops;
        pthread_mutex_init(&l->lock, NULL);
        *out = &l->ev;
        return 0;
}
