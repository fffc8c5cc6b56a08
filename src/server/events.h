/* events: ferryd's event hub, which tells the open event streams
 * (GET /api/v1/events, see docs/api.md "Events") that a user's space moved
 * to a new sequence number, or that one of the user's versions went up:
 * the "transfers version" (transfer records, see transfers.h), the
 * "devices version" (the control list: a device added, removed, renamed,
 * online or offline, its LAN listener changed) or the "requests version"
 * (upload requests, see api_requests.c).
 *
 * A stream subscribes for its user with a wake callback; a commit that
 * landed publishes (user, new seq, committing device) after its transaction
 * is over. The hub keeps, per user, only the newest number and who made it,
 * and wakes every subscriber of that user: a subscriber then reads the
 * newest number with events_latest(). Several commits in quick succession
 * thus coalesce into one number, which is all a client needs (it always
 * pulls "since its last applied seq"). The versions coalesce the same
 * way. A removed device's subscriptions are revoked: their streams end.
 *
 * The hub is a small function table, like the metadata store: the
 * in-process implementation (events_local_new: a mutex and per-user lists,
 * right for one ferryd), and one that spans several ferryd instances on one
 * PostgreSQL store (events_pg_new: its publish also NOTIFYs, a listener
 * thread hands each notification to the local hub, subscribe and latest
 * stay local to the instance, device_streams counts every instance's).
 *
 * Threads: every operation may be called from any thread. wake is called
 * with the hub's lock held, so it must be quick and must not call back into
 * the hub; once events_unsubscribe() has returned it is never called again
 * for that subscriber, which is what lets the caller free what wake uses.
 */
#ifndef FERRY_EVENTS_H
#define FERRY_EVENTS_H

#include <stdint.h>

#include "meta.h"

struct events;
struct events_sub;

typedef void (*events_wake_fn)(void *cls);

/* The per-user versions the hub carries beside the seq. */
enum events_counter {
        EVENTS_TRANSFERS = 0,
        EVENTS_DEVICES, /* requests/registry */
        EVENTS_REQUESTS,
        EVENTS_NCOUNTERS
};

struct events_ops {
        int (*subscribe)(struct events *ev, int64_t user, const char *device, events_wake_fn wake,
                         void *cls, struct events_sub **out);
        void (*unsubscribe)(struct events *ev, struct events_sub *sub);
        void (*publish)(struct events *ev, int64_t user, int64_t seq, const char *device);
        int64_t (*latest)(struct events *ev, const struct events_sub *sub,
                          char device[META_DEVICE_ID_LEN + 1]);
        unsigned (*device_streams)(struct events *ev, int64_t user, const char *device);
        void (*publish_version)(struct events *ev, int64_t user, int counter, int64_t version);
        int64_t (*latest_version)(struct events *ev, const struct events_sub *sub, int counter);
        void (*revoke)(struct events *ev, int64_t user, const char *device);
        int (*revoked)(struct events *ev, const struct events_sub *sub);
        void (*close)(struct events *ev);
};

struct events {
        const struct events_ops *ops;
};

/* The in-process hub. 0 or -ENOMEM. */
int events_local_new(struct events **out);

/* The hub of several ferryd instances on the PostgreSQL store at conninfo
 * (events_pg.c): the local hub, plus LISTEN/NOTIFY between the instances,
 * and device_streams counting the device's streams on every instance.
 * Connects at once: 0, or -EIO with a message, or -ENOMEM. */
int events_pg_new(const char *conninfo, struct events **out);

/* Registers a subscriber for user's space, made by device (its id). wake(cls)
 * is called after each publish for that user. 0 or -ENOMEM. */
static inline int events_subscribe(struct events *ev, int64_t user, const char *device,
                                   events_wake_fn wake, void *cls, struct events_sub **out)
{
        return ev->ops->subscribe(ev, user, device, wake, cls, out);
}

/* Removes and frees sub; NULL is allowed. */
static inline void events_unsubscribe(struct events *ev, struct events_sub *sub)
{
        if (sub)
                ev->ops->unsubscribe(ev, sub);
}

/* Announces that user's space is now at seq, through a commit of device.
 * A seq lower than one already announced is ignored (commits racing each
 * other may publish out of order). */
static inline void events_publish(struct events *ev, int64_t user, int64_t seq, const char *device)
{
        ev->ops->publish(ev, user, seq, device);
}

/* The newest seq announced for sub's user since the hub has held
 * subscribers for it (0 if none), with its device (may be NULL). */
static inline int64_t events_latest(struct events *ev, const struct events_sub *sub,
                                    char device[META_DEVICE_ID_LEN + 1])
{
        return ev->ops->latest(ev, sub, device);
}

/* How many subscribers device (of user) holds now. */
static inline unsigned events_device_streams(struct events *ev, int64_t user, const char *device)
{
        return ev->ops->device_streams(ev, user, device);
}

/* Announces that user's counter (enum events_counter) is now at version
 * (coalesced and ordered like seqs: an older version is ignored). */
static inline void events_publish_version(struct events *ev, int64_t user, int counter,
                                          int64_t version)
{
        ev->ops->publish_version(ev, user, counter, version);
}

/* The newest version of counter announced for sub's user since the hub
 * has held subscribers for it (0 if none). */
static inline int64_t events_latest_version(struct events *ev, const struct events_sub *sub,
                                            int counter)
{
        return ev->ops->latest_version(ev, sub, counter);
}

/* The same for the transfers version. */
static inline void events_publish_transfers(struct events *ev, int64_t user, int64_t version)
{
        events_publish_version(ev, user, EVENTS_TRANSFERS, version);
}

static inline int64_t events_latest_transfers(struct events *ev, const struct events_sub *sub)
{
        return events_latest_version(ev, sub, EVENTS_TRANSFERS);
}

/* Revokes the subscriptions of device (of user), which was removed: each is
 * woken, and events_revoked() tells it to end. */
static inline void events_revoke(struct events *ev, int64_t user, const char *device)
{
        ev->ops->revoke(ev, user, device);
}

static inline int events_revoked(struct events *ev, const struct events_sub *sub)
{
        return ev->ops->revoked(ev, sub);
}

/* Frees the hub; every subscriber must be gone. NULL is allowed. */
static inline void events_close(struct events *ev)
{
        if (ev)
                ev->ops->close(ev);
}

#endif
