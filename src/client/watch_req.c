/* watch_req: the LAN listener, the control list and the upload requests of
 * a watch (see watch_req.h).
 *
 * Everything here runs on the watch's thread, between rounds; the HTTP
 * requests use a connection of their own, so that they never hold up or
 * get mixed into a round's. Nothing fails the watch except a listener
 * that cannot start: the registry is a convenience on top of syncing, so
 * a refused report or list is logged and tried again on the next event.
 *
 * A request is queued once: the ids already queued or run are remembered
 * (the newest WATCH_REQ_SEEN of them), since one delivered over the LAN is
 * also listed as pending by the server until it is marked accepted, and
 * an event may list a request again while it runs. Of the server's list
 * only the requests via "relay" are taken: one via "lan" is its
 * requester's to deliver. The server refuses to
 * move a request backwards, which settles any race left (a second watch
 * of the same device cannot exist: the folder's watch lock).
 */
#include "watch_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "err.h"
#include "index.h"
#include "lan.h"
#include "log.h"
#include "path.h"
#include "remote.h"
#include "rules.h"

/* Request ids remembered as queued or run. */
#define WATCH_REQ_SEEN 256
/* Requests waiting at most (more wait on the server for the next listing). */
#define WATCH_REQ_QUEUE_MAX 64

struct watch_req {
        const struct config *cfg;
        struct remote *rem;
        struct lan *lan;
        /* what is announced: the listener's address, prefix and port */
        char addr[PEERS_ADDR_MAX];
        int prefix, port;
        struct peers peers;
        uint8_t key[LANPROTO_KEY_LEN];
        int64_t key_version;
        int have_key;
        struct watch_req_job *queue;
        size_t nqueue;
        int64_t seen[WATCH_REQ_SEEN];
        size_t nseen, seen_next;
};

static int seen(const struct watch_req *wr, int64_t id)
{
        for (size_t i = 0; i < wr->nseen; i++)
                if (wr->seen[i] == id)
                        return 1;
        return 0;
}

static void remember(struct watch_req *wr, int64_t id)
{
        wr->seen[wr->seen_next] = id;
        wr->seen_next = (wr->seen_next + 1) % WATCH_REQ_SEEN;
        if (wr->nseen < WATCH_REQ_SEEN)
                wr->nseen++;
}

/* A request that could not start for want of the server is listed again
 * by a later listing (a relayed one; a LAN one is not listed). */
static void forget(struct watch_req *wr, int64_t id)
{
        for (size_t i = 0; i < wr->nseen; i++)
                if (wr->seen[i] == id)
                        wr->seen[i] = 0;
}

void watch_req_job_free(struct watch_req_job *job)
{
        for (size_t i = 0; i < job->npaths; i++)
                free(job->paths[i]);
        free(job->paths);
        free(job->requester);
        memset(job, 0, sizeof(*job));
}

/* Appends a job (taking its contents) unless its id is known. */
static int enqueue(struct watch_req *wr, struct watch_req_job *job)
{
        struct watch_req_job *q;

        if (seen(wr, job->id)) {
                watch_req_job_free(job);
                return 0;
        }
        if (wr->nqueue >= WATCH_REQ_QUEUE_MAX) {
                log_warn("upload request %lld from %s: too many requests waiting; it waits on "
                         "the server",
                         (long long)job->id, job->requester);
                watch_req_job_free(job);
                return 0;
        }
        q = realloc(wr->queue, (wr->nqueue + 1) * sizeof(*q));
        if (!q) {
                watch_req_job_free(job);
                return -ENOMEM;
        }
        wr->queue = q;
        remember(wr, job->id);
        log_info("upload request %lld from %s (%s): %s", (long long)job->id, job->requester,
                 job->lan ? "over the LAN" : "through the server",
                 job->all ? "everything the server lacks" : "the given paths");
        wr->queue[wr->nqueue++] = *job;
        memset(job, 0, sizeof(*job));
        return 0;
}

static void report(struct watch_req *wr)
{
        struct config cur = {0};
        struct utsname u;
        char platform[160] = "linux";
        json_t *body = NULL, *lan;
        int r;

        if (uname(&u) == 0)
                snprintf(platform, sizeof(platform), "%s %s", u.sysname, u.machine);
        lan = wr->lan ? json_pack("{s:s, s:i, s:i}", "addr", wr->addr, "port", wr->port, "prefix",
                                  wr->prefix)
                      : json_null();
        /* the endpoint also sets the download policy: send the one
         * config.json says now, which is what the rounds send anyway */
        r = config_load(wr->cfg->root, &cur);
        if (r == 0 && lan)
                body = json_pack("{s:o, s:s, s:s}", "lan", lan, "platform", platform,
                                 "download_incomplete", config_dl_policy_name(cur.dl_policy));
        else
                json_decref(lan);
        config_free(&cur);
        r = r < 0 ? r : body ? remote_post_json(wr->rem, "/api/v1/device", body, NULL) : -ENOMEM;
        if (r < 0)
                log_warn("could not tell the server about the LAN listener: %s", err_msg(r));
        err_clear();
        json_decref(body);
}

void watch_req_devices(struct watch_req *wr)
{
        struct peers p = {0};
        const char **ids = NULL;
        int r;

        r = peers_fetch(wr->rem, &p);
        if (r < 0) {
                log_warn("could not list the account's devices: %s", err_msg(r));
                goto out;
        }
        peers_free(&wr->peers);
        wr->peers = p;
        memset(&p, 0, sizeof(p));
        if (!wr->lan)
                goto out;
        ids = calloc(wr->peers.n + 1, sizeof(*ids));
        if (!ids) {
                log_warn("out of memory");
                goto out;
        }
        for (size_t i = 0; i < wr->peers.n; i++)
                ids[i] = wr->peers.v[i].id;
        if (lan_set_peers(wr->lan, ids, wr->peers.n) < 0)
                log_warn("out of memory");
        r = peers_fetch_key(wr->rem, wr->key, &wr->key_version);
        if (r < 0) {
                log_warn("could not get the account's LAN key: %s", err_msg(r));
                goto out;
        }
        wr->have_key = 1;
        lan_set_key(wr->lan, wr->key, wr->key_version);
out:
        err_clear();
        free(ids);
        peers_free(&p);
}

/* A JSON list of paths into job (each validated). */
static int take_paths(struct watch_req_job *job, const json_t *paths)
{
        const json_t *v;
        size_t i;

        job->paths = calloc(json_array_size(paths) + 1, sizeof(*job->paths));
        if (!job->paths)
                return -ENOMEM;
        json_array_foreach(paths, i, v)
        {
                const char *p = json_string_value(v);

                if (!p || path_validate(p) < 0)
                        return err_set(-EPROTO, "the request names an invalid path");
                if (!(job->paths[job->npaths] = strdup(p)))
                        return -ENOMEM;
                job->npaths++;
        }
        return 0;
}

void watch_req_requests(struct watch_req *wr)
{
        json_t *resp = NULL, *rq;
        size_t i;
        int r;

        r = remote_get_json(wr->rem, "/api/v1/requests?target=me&status=pending", &resp);
        if (r < 0) {
                log_warn("could not list the upload requests for this device: %s", err_msg(r));
                goto out;
        }
        /* newest first: queue from the end so that the oldest runs first */
        for (i = json_array_size(json_object_get(resp, "requests")); i-- > 0;) {
                struct watch_req_job job = {0};
                const char *who, *via;

                rq = json_array_get(json_object_get(resp, "requests"), i);
                job.id = json_integer_value(json_object_get(rq, "id"));
                /* via lan: its requester delivers it over the LAN itself
                 * (or not at all); only relayed ones are ours to take */
                via = json_string_value(json_object_get(rq, "via"));
                if (job.id <= 0 || seen(wr, job.id) || !via || strcmp(via, "relay") != 0)
                        continue;
                who = json_string_value(json_object_get(rq, "requester_name"));
                job.requester = strdup(who ? who : "another device");
                job.all = json_is_true(json_object_get(rq, "all"));
                r = job.requester ? take_paths(&job, json_object_get(rq, "paths")) : -ENOMEM;
                if (r == 0)
                        r = enqueue(wr, &job);
                if (r < 0) {
                        log_warn("upload request %lld: %s", (long long)job.id, err_msg(r));
                        err_clear();
                        watch_req_job_free(&job);
                }
        }
out:
        err_clear();
        json_decref(resp);
}

void watch_req_hello(struct watch_req *wr)
{
        report(wr);
        watch_req_devices(wr);
        watch_req_requests(wr);
}

void watch_req_take_lan(struct watch_req *wr)
{
        struct lan_request lr;

        while (wr->lan && lan_next_request(wr->lan, &lr) == 1) {
                const struct peer *p = peers_find(&wr->peers, lr.requester);
                struct watch_req_job job = {.id = lr.id, .all = lr.all, .lan = 1};
                int r = 0;

                job.requester = strdup(p ? p->name : lr.requester);
                job.paths = calloc(lr.npaths + 1, sizeof(*job.paths));
                if (!job.requester || !job.paths)
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < lr.npaths; i++, job.npaths++)
                        if (!(job.paths[i] = strdup(lr.paths[i])))
                                r = -ENOMEM;
                if (r == 0)
                        r = enqueue(wr, &job);
                if (r < 0) {
                        log_warn("upload request %lld: %s", (long long)lr.id, err_msg(r));
                        watch_req_job_free(&job);
                }
                lan_request_free(&lr);
        }
}

int watch_req_queued(const struct watch_req *wr)
{
        return wr->nqueue > 0;
}

int watch_req_next(struct watch_req *wr, struct watch_req_job *job)
{
        if (wr->nqueue == 0)
                return 0;
        *job = wr->queue[0];
        memmove(wr->queue, wr->queue + 1, (wr->nqueue - 1) * sizeof(*wr->queue));
        wr->nqueue--;
        return 1;
}

/* POST /api/v1/requests/update. */
static int update(struct watch_req *wr, int64_t id, const char *status, int64_t files,
                  const char *reason)
{
        json_t *body = json_pack("{s:I, s:s}", "id", (json_int_t)id, "status", status);
        int r = body ? 0 : -ENOMEM;

        if (r == 0 && files >= 0)
                r = json_object_set_new(body, "files", json_integer(files));
        if (r == 0 && reason)
                r = json_object_set_new(body, "reason", json_string(reason));
        if (r == 0)
                r = remote_post_json(wr->rem, "/api/v1/requests/update", body, NULL);
        json_decref(body);
        return r;
}

struct held_pick {
        const struct watch_req_job *job;
        struct index *idx;
        size_t added;
};

/* 1 when path is p or under p/. */
static int at_or_under(const char *path, const char *p)
{
        size_t n = strlen(p);

        return !strncmp(path, p, n) && (path[n] == '\0' || path[n] == '/');
}

/* Overrides for the folders above path the index does not have, so that a
 * file goes up with the folders it is in (as `ferry push` does). */
static int override_parents(struct index *idx, const char *path)
{
        struct index_entry e = {0};
        char *q = strdup(path), *slash;
        int r = 0;

        if (!q)
                return -ENOMEM;
        for (slash = strchr(q, '/'); slash && r == 0; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (index_get(idx, q, &e) == 0) {
                        index_entry_free(&e);
                } else {
                        err_clear();
                        r = index_override_has(idx, q);
                        if (r == 0)
                                r = index_override_add(idx, q);
                        r = r < 0 ? r : 0;
                }
                *slash = '/';
        }
        free(q);
        return r;
}

static int add_override(struct index *idx, const char *path, size_t *added)
{
        int r = index_override_has(idx, path);

        if (r != 0)
                return r < 0 ? r : 0;
        r = index_override_add(idx, path);
        if (r == 0)
                r = override_parents(idx, path);
        if (r == 0)
                (*added)++;
        return r;
}

static int pick_held(const struct index_held *h, void *ud)
{
        struct held_pick *hp = ud;
        int take = hp->job->all;

        for (size_t i = 0; !take && i < hp->job->npaths; i++)
                take = at_or_under(h->path, hp->job->paths[i]);
        return take ? add_override(hp->idx, h->path, &hp->added) : 0;
}

/* Overrides for the held-up files of job without one (and, on the first
 * call, for the request's own paths that exist but are neither synced nor
 * held yet: a file no scan has seen). -ENOENT when not one of the paths
 * exists here. */
static int overrides(struct watch_req *wr, const struct watch_req_job *job, int first,
                     size_t *added)
{
        struct held_pick hp = {.job = job};
        char *db = config_state_path(wr->cfg, INDEX_FILE);
        size_t missing = 0;
        struct stat st;
        int r;

        *added = 0;
        r = db ? index_open(db, &hp.idx) : -ENOMEM;
        if (r < 0)
                goto out;
        r = index_begin(hp.idx);
        if (r < 0)
                goto out;
        r = index_held_foreach(hp.idx, RULES_UP, NULL, pick_held, &hp);
        for (size_t i = 0; r == 0 && first && i < job->npaths; i++) {
                struct index_entry e = {0};
                char *full;

                if (index_get(hp.idx, job->paths[i], &e) == 0) {
                        index_entry_free(&e); /* synced already */
                        continue;
                }
                err_clear();
                full = path_join(wr->cfg->root, job->paths[i]);
                if (!full) {
                        r = -ENOMEM;
                } else if (lstat(full, &st) < 0) {
                        missing++; /* no override for a name that may come later */
                } else {
                        r = add_override(hp.idx, job->paths[i], &hp.added);
                }
                free(full);
        }
        if (r == 0 && first && job->npaths > 0 && missing == job->npaths)
                r = err_set(-ENOENT, "%s%s does not exist on %s",
                            job->npaths > 1 ? "none of the paths exists; the first, " : "",
                            job->paths[0],
                            wr->cfg->device_name ? wr->cfg->device_name : wr->cfg->device_id);
        if (r < 0)
                index_rollback(hp.idx);
        else
                r = index_commit(hp.idx);
        *added = hp.added;
out:
        if (hp.idx)
                index_close(hp.idx);
        free(db);
        return r;
}

int watch_req_begin(struct watch_req *wr, struct watch_req_job *job)
{
        size_t added = 0;
        int r;

        r = update(wr, job->id, "accepted", -1, NULL);
        if (r == 0)
                r = update(wr, job->id, "running", -1, NULL);
        if (r == -ECONNREFUSED || r == -EIO) {
                log_warn("upload request %lld from %s: cannot reach the server (%s); it runs "
                         "once the server is back",
                         (long long)job->id, job->requester, err_msg(r));
                forget(wr, job->id);
                err_clear();
                return r;
        }
        if (r < 0) {
                log_warn("upload request %lld from %s: the server refused it (%s); not running "
                         "it",
                         (long long)job->id, job->requester, err_msg(r));
                err_clear();
                return r;
        }
        job->accepted = 1;
        r = overrides(wr, job, 1, &added);
        if (r < 0) {
                watch_req_finish(wr, job, r, 0, err_msg(r));
                return r;
        }
        log_info("upload request %lld from %s: running (%zu override%s of the upload rules)",
                 (long long)job->id, job->requester, added, added == 1 ? "" : "s");
        return 0;
}

int watch_req_more(struct watch_req *wr, const struct watch_req_job *job, size_t *added)
{
        return overrides(wr, job, 0, added);
}

void watch_req_finish(struct watch_req *wr, const struct watch_req_job *job, int result,
                      int64_t files, const char *reason)
{
        int r;

        if (result == 0) {
                log_info("upload request %lld from %s: done, %lld files uploaded",
                         (long long)job->id, job->requester, (long long)files);
                r = update(wr, job->id, "done", files, NULL);
        } else {
                log_warn("upload request %lld from %s: failed: %s", (long long)job->id,
                         job->requester, reason);
                r = update(wr, job->id, "failed", -1, reason);
        }
        if (r < 0)
                log_warn("upload request %lld: could not record the result: %s", (long long)job->id,
                         err_msg(r));
        err_clear();
}

const struct peers *watch_req_peers(const struct watch_req *wr)
{
        return &wr->peers;
}

int watch_req_key(const struct watch_req *wr, uint8_t key[LANPROTO_KEY_LEN], int64_t *version)
{
        if (!wr->have_key)
                return 0;
        memcpy(key, wr->key, LANPROTO_KEY_LEN);
        *version = wr->key_version;
        return 1;
}

int watch_req_fd(const struct watch_req *wr)
{
        return wr->lan ? lan_event_fd(wr->lan) : -1;
}

/* The address to announce: --lan-addr, else the route's to the server. */
static int find_addr(struct watch_req *wr, const struct watch_req_options *o)
{
        int r;

        if (o->lan_addr) {
                snprintf(wr->addr, sizeof(wr->addr), "%s", o->lan_addr);
                r = peers_iface_prefix(wr->addr, &wr->prefix);
                if (r == -ENOENT) {
                        err_clear();
                        wr->prefix = strchr(wr->addr, ':') ? 64 : 24;
                        log_warn("no interface holds %s; announcing it as /%d", wr->addr,
                                 wr->prefix);
                        r = 0;
                }
                return r;
        }
        return peers_local_addr(wr->cfg->server, wr->addr, sizeof(wr->addr), &wr->prefix);
}

int watch_req_open(const struct config *cfg, const struct watch_req_options *o,
                   struct watch_req **out)
{
        struct watch_req *wr = calloc(1, sizeof(*wr));
        struct lan_config lc = {0};
        char *db = NULL;
        int r;

        if (!wr)
                return -ENOMEM;
        wr->cfg = cfg;
        r = remote_new(cfg->server, cfg->token, &wr->rem);
        if (r < 0 || o->no_lan)
                goto out;
        r = find_addr(wr, o);
        if (r < 0) {
                if (o->lan_addr)
                        goto out;
                log_warn("no LAN listener: cannot tell this machine's address (%s)", err_msg(r));
                err_clear();
                r = 0;
                goto out;
        }
        db = config_state_path(cfg, INDEX_FILE);
        if (!db) {
                r = -ENOMEM;
                goto out;
        }
        lc.root = cfg->root;
        lc.index_path = db;
        lc.device_id = cfg->device_id;
        lc.addr = o->lan_addr;
        lc.port = (uint16_t)o->lan_port;
        r = lan_start(&lc, &wr->lan);
        if (r < 0)
                goto out;
        wr->port = lan_port(wr->lan);
        log_info("announcing the LAN listener as %s port %d (/%d)", wr->addr, wr->port, wr->prefix);
out:
        free(db);
        if (r < 0) {
                watch_req_close(wr);
                return r;
        }
        *out = wr;
        return 0;
}

void watch_req_close(struct watch_req *wr)
{
        if (!wr)
                return;
        /* the lan entry stays on the server: others only use the
         * listeners of devices online */
        lan_stop(wr->lan);
        for (size_t i = 0; i < wr->nqueue; i++)
                watch_req_job_free(&wr->queue[i]);
        free(wr->queue);
        peers_free(&wr->peers);
        remote_free(wr->rem);
        memset(wr->key, 0, sizeof(wr->key));
        free(wr);
}
