/* meta_pg: the PostgreSQL metadata store of ferryd (--metadata
 * postgresql://...), implementing struct meta_ops (meta.h) for several
 * ferryd instances sharing one database. Here: the connection pool,
 * thread-bound transactions and cluster locks, running statements
 * (meta_pg.h), the schema steps (schema.h) and the space's entries; the
 * other meta_pg_*.c files hold the rest by concern, as for SQLite.
 *
 * An operation outside a transaction borrows a pooled connection (opened
 * on demand, up to POOL_MAX), runs in autocommit and gives it back before
 * it returns, so listing callbacks hold none and may call the store. begin
 * or cluster_lock binds a connection to the calling thread (a table keyed
 * by pthread_self()) until commit/rollback and the last cluster_unlock.
 * Statements are prepared once per connection, keyed by the address of
 * their SQL text (a copy of the text tells a reused buffer apart).
 *
 * A lost connection: one found broken when taken from the pool is reset.
 * One lost while bound cannot be replaced under the caller: each further
 * operation of the transaction, and its commit, returns -EHOSTDOWN
 * ("connection lost"; the API answers 503, try again); the transaction is
 * gone (rolled back by PostgreSQL; only a COMMIT whose answer was lost may
 * have gone through). commit/rollback unbind it, the pool resets it on next
 * use, and the caller retries the whole transaction. Cluster locks are
 * lost with it.
 * A failed statement aborts the whole transaction in PostgreSQL (SQLite
 * undoes the statement only): commit() then refuses with -EIO.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "meta_pg.h"
#include "schema.h"

#define POOL_MAX 64              /* connections per struct meta */
#define PARAMS_MAX 32            /* parameters of one statement */
#define STMT_SLOTS 512           /* the prepared-statement table of a connection */
#define STMT_MAX 384             /* ... filled at most this far; then run unprepared */
#define LOCKED_MAX 8             /* spaces a transaction remembers having locked */
#define SCHEMA_LOCK "1717924467" /* advisory lock key of the schema steps: "fers" */

struct stmt {
        const char *sql; /* the caller's pointer: the key */
        char *text;      /* a copy, to tell a reused buffer from the same text */
        unsigned id;     /* prepared as "f<id>" */
};

struct conn {
        PGconn *pg;
        struct stmt *stmts; /* STMT_SLOTS of them, allocated on first use */
        unsigned nstmts;
        struct conn *next; /* in the free list */
};

/* A connection bound to a thread for its transaction and/or cluster locks.
 * Only that thread reads or changes the fields past `used`. */
struct bind {
        int used;
        pthread_t thread;
        struct conn *c;
        int in_tx;
        int locks; /* cluster locks held */
        int64_t locked[LOCKED_MAX];
        int nlocked;
};

struct meta_pg {
        struct meta base; /* first: struct meta * is cast back */
        char *conninfo;
        pthread_mutex_t lock; /* guards free, open and binds[].used/thread */
        pthread_cond_t freed;
        struct conn *free;
        int open;                    /* connections open or being opened */
        struct bind binds[POOL_MAX]; /* at most one per connection */
};

#define mpg_of(m) ((struct meta_pg *)(m))

/* The length of a libpq message without its trailing newline. */
static int msg_len(const char *s)
{
        size_t n = strlen(s);

        while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
                n--;
        return (int)n;
}

/* --- connections ----------------------------------------------------- */

static void conn_forget_stmts(struct conn *c)
{
        unsigned i;

        for (i = 0; c->stmts && i < STMT_SLOTS; i++)
                free(c->stmts[i].text);
        free(c->stmts);
        c->stmts = NULL;
        c->nstmts = 0;
}

static void conn_free(struct conn *c)
{
        conn_forget_stmts(c);
        PQfinish(c->pg);
        free(c);
}

/* Notices ("relation ... already exists, skipping") go to the debug log,
 * not to stderr. */
static void notice(void *arg, const char *msg)
{
        (void)arg;
        log_debug("metadata store: %.*s", msg_len(msg), msg);
}

/* Connects c, or reconnects it when it was lost. */
static int conn_connect(struct meta_pg *mp, struct conn *c)
{
        /* dbname last: what the caller's conninfo says overrides these. */
        static const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
        const char *vals[] = {"10", "ferryd", mp->conninfo, NULL};
        /* An idle connection has nothing to read, unless the server closed
         * it (a restart): then it is reset before use, not failed. */
        struct pollfd p = {.fd = c->pg ? PQsocket(c->pg) : -1, .events = POLLIN};
        const char *msg;

        if (c->pg && PQstatus(c->pg) == CONNECTION_OK && poll(&p, 1, 0) == 0)
                return 0;
        conn_forget_stmts(c);
        if (c->pg) {
                log_warn("metadata store: connection lost, reconnecting");
                PQreset(c->pg);
        } else {
                c->pg = PQconnectdbParams(keys, vals, 1);
                if (!c->pg)
                        return err_set(-ENOMEM, "metadata store: out of memory");
                PQsetNoticeProcessor(c->pg, notice, NULL);
        }
        if (PQstatus(c->pg) == CONNECTION_OK)
                return 0;
        msg = PQerrorMessage(c->pg);
        return err_set(-EHOSTDOWN, "metadata store: cannot connect to PostgreSQL: %.*s",
                       msg_len(msg), msg);
}

static void conn_put(struct meta_pg *mp, struct conn *c)
{
        pthread_mutex_lock(&mp->lock);
        c->next = mp->free;
        mp->free = c;
        pthread_cond_signal(&mp->freed);
        pthread_mutex_unlock(&mp->lock);
}

/* The calling thread's binding or NULL; under mp->lock. */
static struct bind *bind_find(struct meta_pg *mp)
{
        pthread_t self = pthread_self();
        int i;

        for (i = 0; i < POOL_MAX; i++)
                if (mp->binds[i].used && pthread_equal(mp->binds[i].thread, self))
                        return &mp->binds[i];
        return NULL;
}

static struct bind *bind_self(struct meta_pg *mp)
{
        struct bind *b;

        pthread_mutex_lock(&mp->lock);
        b = bind_find(mp);
        pthread_mutex_unlock(&mp->lock);
        return b;
}

/* A connection for one operation: the thread's bound one (*pooled = 0), or
 * one from the pool, connected (*pooled = 1; give it back with conn_put). */
static int conn_take(struct meta_pg *mp, struct conn **out, int *pooled)
{
        struct conn *c = NULL;
        struct bind *b;
        int r;

        pthread_mutex_lock(&mp->lock);
        if ((b = bind_find(mp))) {
                pthread_mutex_unlock(&mp->lock);
                if (PQstatus(b->c->pg) != CONNECTION_OK)
                        return err_set(-EHOSTDOWN, "metadata store: connection lost%s",
                                       b->in_tx ? "; the transaction is gone" : "");
                *out = b->c;
                *pooled = 0;
                return 0;
        }
        while (!mp->free && mp->open >= POOL_MAX)
                pthread_cond_wait(&mp->freed, &mp->lock);
        if (mp->free) {
                c = mp->free;
                mp->free = c->next;
        } else if ((c = calloc(1, sizeof(*c)))) {
                mp->open++;
        }
        pthread_mutex_unlock(&mp->lock);
        if (!c)
                return err_set(-ENOMEM, "metadata store: out of memory");
        r = conn_connect(mp, c);
        if (r < 0) {
                conn_put(mp, c);
                return r;
        }
        *out = c;
        *pooled = 1;
        return 0;
}

/* The calling thread's binding, made with a pooled connection if needed. */
static int bind_get(struct meta_pg *mp, struct bind **out)
{
        struct conn *c;
        int r, pooled, i;

        if ((*out = bind_self(mp)))
                return 0;
        r = conn_take(mp, &c, &pooled);
        if (r < 0)
                return r;
        pthread_mutex_lock(&mp->lock);
        for (i = 0; mp->binds[i].used; i++) /* fewer binds than connections */
                ;
        memset(&mp->binds[i], 0, sizeof(mp->binds[i]));
        mp->binds[i].used = 1;
        mp->binds[i].thread = pthread_self();
        mp->binds[i].c = c;
        pthread_mutex_unlock(&mp->lock);
        *out = &mp->binds[i];
        return 0;
}

/* Unbinds b when it holds neither a transaction nor a lock. */
static void bind_release(struct meta_pg *mp, struct bind *b)
{
        struct conn *c = b->c;

        if (b->in_tx || b->locks > 0)
                return;
        pthread_mutex_lock(&mp->lock);
        b->used = 0;
        pthread_mutex_unlock(&mp->lock);
        conn_put(mp, c);
}

/* --- running statements ----------------------------------------------- */

/* Runs sql on c, prepared once per connection when the table has room. */
static PGresult *run(struct conn *c, const char *sql, int np, const char *const *vals,
                     const int *lens, const int *fmts)
{
        uintptr_t k = (uintptr_t)sql >> 3;
        unsigned i = (unsigned)((k * 2654435761u) % STMT_SLOTS);
        struct stmt *s;
        PGresult *pr;
        char name[16];

        if (!c->stmts && !(c->stmts = calloc(STMT_SLOTS, sizeof(*c->stmts))))
                goto unprepared;
        for (s = &c->stmts[i]; s->sql && s->sql != sql; s = &c->stmts[i])
                i = (i + 1) % STMT_SLOTS;
        if (s->sql && strcmp(s->text, sql) != 0)
                goto unprepared; /* a buffer reused for other text */
        if (!s->sql) {
                if (c->nstmts >= STMT_MAX || !(s->text = strdup(sql)))
                        goto unprepared;
                s->id = c->nstmts;
                snprintf(name, sizeof(name), "f%u", s->id);
                pr = PQprepare(c->pg, name, sql, np, NULL);
                if (!pr || PQresultStatus(pr) != PGRES_COMMAND_OK) {
                        free(s->text);
                        s->text = NULL;
                        return pr; /* the error, reported as the statement's */
                }
                PQclear(pr);
                s->sql = sql;
                c->nstmts++;
        }
        snprintf(name, sizeof(name), "f%u", s->id);
        return PQexecPrepared(c->pg, name, np, vals, lens, fmts, 0);
unprepared:
        return PQexecParams(c->pg, sql, np, NULL, vals, lens, fmts, 0);
}

/* 0 and *n for a good result, else the error mapped as meta_pg.h says. */
static int result_check(struct conn *c, PGresult *pr, const char *what, int64_t *n)
{
        ExecStatusType st = pr ? PQresultStatus(pr) : PGRES_FATAL_ERROR;
        const char *state = pr ? PQresultErrorField(pr, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = pr ? PQresultErrorMessage(pr) : PQerrorMessage(c->pg);

        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
                if (n)
                        *n = st == PGRES_TUPLES_OK ? PQntuples(pr)
                                                   : strtoll(PQcmdTuples(pr), NULL, 10);
                return 0;
        }
        if (PQstatus(c->pg) != CONNECTION_OK)
                return err_set(-EHOSTDOWN, "metadata store: %s: connection lost: %.*s", what,
                               msg_len(msg), msg);
        if (state && strcmp(state, "23505") == 0)
                return err_set(-EEXIST, "%s: already exists", what);
        if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
                return err_set(-EAGAIN, "metadata store: %s: %.*s", what, msg_len(msg), msg);
        return err_set(-EIO, "metadata store: %s: %.*s", what, msg_len(msg), msg);
}

int mpg_vexec(struct meta *m, const char *what, PGresult **res, int64_t *n, const char *sql,
              const char *fmt, va_list ap)
{
        struct meta_pg *mp = mpg_of(m);
        const char *vals[PARAMS_MAX];
        int lens[PARAMS_MAX], fmts[PARAMS_MAX], np, pooled, r;
        char nums[PARAMS_MAX][24];
        const struct hash *h;
        const uint8_t *p;
        struct conn *c;
        PGresult *pr;
        size_t len;

        if (res)
                *res = NULL;
        for (np = 0; *fmt; fmt++, np++) {
                if (np == PARAMS_MAX)
                        return err_set(-EINVAL, "metadata store: %s: too many parameters", what);
                vals[np] = NULL;
                lens[np] = fmts[np] = 0;
                if (*fmt == 'i') {
                        snprintf(nums[np], sizeof(nums[np]), "%lld",
                                 (long long)va_arg(ap, int64_t));
                        vals[np] = nums[np];
                } else if (*fmt == 't') {
                        vals[np] = va_arg(ap, const char *);
                } else if (*fmt == 'h') {
                        if ((h = va_arg(ap, const struct hash *))) {
                                vals[np] = (const char *)h->b;
                                lens[np] = HASH_LEN;
                                fmts[np] = 1;
                        }
                } else if (*fmt == 'b') {
                        p = va_arg(ap, const uint8_t *);
                        len = va_arg(ap, size_t);
                        if (len > INT_MAX)
                                return err_set(-E2BIG, "metadata store: %s: value too long", what);
                        if (p && len) {
                                vals[np] = (const char *)p;
                                lens[np] = (int)len;
                                fmts[np] = 1;
                        }
                } else {
                        return err_set(-EINVAL, "metadata store: %s: bad parameter '%c'", what,
                                       *fmt);
                }
        }
        r = conn_take(mp, &c, &pooled);
        if (r < 0)
                return r;
        pr = run(c, sql, np, vals, lens, fmts);
        r = result_check(c, pr, what, n);
        if (pooled)
                conn_put(mp, c);
        if (r == 0 && res)
                *res = pr;
        else
                PQclear(pr);
        return r;
}

int mpg_exec(struct meta *m, const char *what, PGresult **res, int64_t *n, const char *sql,
             const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = mpg_vexec(m, what, res, n, sql, fmt, ap);
        va_end(ap);
        return r;
}

/* --- transactions, space locks, cluster locks ------------------------- */

static int pg_begin(struct meta *m)
{
        struct meta_pg *mp = mpg_of(m);
        struct bind *b;
        int r;

        r = bind_get(mp, &b);
        if (r < 0)
                return r;
        if (b->in_tx)
                return err_set(-EINVAL, "metadata store: a transaction is open on this thread");
        b->in_tx = 1;
        b->nlocked = 0;
        r = mpg_exec(m, "begin", NULL, NULL, "BEGIN", "");
        if (r < 0) {
                b->in_tx = 0;
                bind_release(mp, b);
        }
        return r;
}

static int tx_end(struct meta *m, int commit)
{
        struct meta_pg *mp = mpg_of(m);
        struct bind *b = bind_self(mp);
        PGresult *res = NULL;
        int r;

        if (!b || !b->in_tx)
                return err_set(-EINVAL, "metadata store: no transaction open on this thread");
        if (commit && PQtransactionStatus(b->c->pg) == PQTRANS_INERROR) {
                /* COMMIT would answer "ROLLBACK": say so rather than succeed. */
                r = err_set(-EIO, "metadata store: commit: the transaction failed earlier");
                mpg_exec(m, "rollback", NULL, NULL, "ROLLBACK", "");
        } else if (commit) {
                r = mpg_exec(m, "commit", &res, NULL, "COMMIT", "");
                if (r == 0 && strcmp(PQcmdStatus(res), "COMMIT") != 0)
                        r = err_set(-EIO, "metadata store: commit: rolled back");
                if (r < 0 && PQtransactionStatus(b->c->pg) != PQTRANS_IDLE)
                        mpg_exec(m, "rollback", NULL, NULL, "ROLLBACK", "");
        } else {
                r = mpg_exec(m, "rollback", NULL, NULL, "ROLLBACK", "");
        }
        PQclear(res);
        b->in_tx = 0;
        bind_release(mp, b);
        return r;
}

static int pg_commit(struct meta *m)
{
        return tx_end(m, 1);
}

static int pg_rollback(struct meta *m)
{
        return tx_end(m, 0);
}

int mpg_lock_space(struct meta *m, int64_t user)
{
        struct bind *b = bind_self(mpg_of(m));
        int i, r;

        if (!b || !b->in_tx)
                return 0;
        for (i = 0; i < b->nlocked; i++)
                if (b->locked[i] == user)
                        return 0;
        r = mpg_exec(m, "space lock", NULL, NULL,
                     "SELECT 1 FROM spaces WHERE user_id = $1 FOR UPDATE", "i", user);
        if (r == 0 && b->nlocked < LOCKED_MAX)
                b->locked[b->nlocked++] = user;
        return r;
}

static int pg_cluster_lock(struct meta *m, int64_t key, int shared, int try_only)
{
        static const char *const sql[2][2] = {{"SELECT 1 FROM pg_advisory_lock($1::bigint)",
                                               "SELECT pg_try_advisory_lock($1::bigint)"},
                                              {"SELECT 1 FROM pg_advisory_lock_shared($1::bigint)",
                                               "SELECT pg_try_advisory_lock_shared($1::bigint)"}};
        struct meta_pg *mp = mpg_of(m);
        struct bind *b;
        int64_t v = 0;
        int r;

        r = bind_get(mp, &b);
        if (r < 0)
                return r;
        b->locks++;
        r = mpg_query_int(m, "cluster lock", 0, &v, sql[!!shared][!!try_only], "i", key);
        if (r < 0 || !v) {
                b->locks--;
                bind_release(mp, b);
        }
        return r < 0 ? r : v != 0;
}

static void pg_cluster_unlock(struct meta *m, int64_t key, int shared)
{
        struct meta_pg *mp = mpg_of(m);
        struct bind *b = bind_self(mp);
        int64_t v = 0;
        int r = 0;

        if (b && b->locks > 0)
                r = mpg_query_int(m, "cluster unlock", 0, &v,
                                  shared ? "SELECT pg_advisory_unlock_shared($1::bigint)"
                                         : "SELECT pg_advisory_unlock($1::bigint)",
                                  "i", key);
        if (r < 0 || !v)
                log_warn("metadata store: cluster unlock of %llx: %s", (long long)key,
                         r < 0 ? err_msg(r) : "not held by this thread");
        if (b && b->locks > 0) {
                b->locks--;
                bind_release(mp, b);
        }
}

/* --- the space's entries ---------------------------------------------- */

static int pg_entry_get(struct meta *m, int64_t user, const char *path, struct meta_entry *out)
{
        PGresult *res;
        int64_t n;
        int r;

        r = mpg_lock_space(m, user);
        if (r == 0)
                r = mpg_exec(m, "entry lookup", &res, &n,
                             "SELECT " MPG_ENTRY_COLS " FROM entries WHERE user_id = $1"
                             " AND path = $2",
                             "it", user, path);
        if (r < 0)
                return r;
        r = n > 0 ? mpg_read_entry(res, 0, 0, out) : -ENOENT;
        PQclear(res);
        return r;
}

static int pg_entry_put(struct meta *m, int64_t user, const struct meta_entry *e)
{
        int r = mpg_lock_space(m, user);

        return r < 0 ? r
                     : mpg_exec(m, "entry", NULL, NULL,
                                "INSERT INTO entries (user_id, " MPG_ENTRY_COLS ")"
                                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                                " ON CONFLICT (user_id, path) DO UPDATE SET seq = excluded.seq,"
                                " deleted = excluded.deleted, kind = excluded.kind,"
                                " size = excluded.size, mtime_ns = excluded.mtime_ns,"
                                " mode = excluded.mode, hash = excluded.hash,"
                                " target = excluded.target, device = excluded.device,"
                                " chunks = excluded.chunks, time = excluded.time",
                                "i" MPG_ENTRY_FMT, user, MPG_ENTRY_ARGS(e));
}

/* The space row's lock makes the UPDATE of concurrent committers wait for
 * each other's commit: numbers are taken and made visible in one order,
 * with no gap, on any number of instances. */
static int seq_query(struct meta *m, const char *sql, int64_t user, int64_t *seq)
{
        PGresult *res;
        int64_t n;
        int r;

        r = mpg_lock_space(m, user);
        if (r == 0)
                r = mpg_exec(m, "space sequence", &res, &n, sql, "i", user);
        if (r < 0)
                return r;
        if (n > 0)
                *seq = mpg_int(res, 0, 0);
        else
                r = err_set(-ENOENT, "no space for user %lld", (long long)user);
        PQclear(res);
        return r;
}

static int pg_seq_next(struct meta *m, int64_t user, int64_t *seq)
{
        return seq_query(m, "UPDATE spaces SET seq = seq + 1 WHERE user_id = $1 RETURNING seq",
                         user, seq);
}

static int pg_seq_current(struct meta *m, int64_t user, int64_t *seq)
{
        return seq_query(m, "SELECT seq FROM spaces WHERE user_id = $1", user, seq);
}

static int pg_entry_changes(struct meta *m, int64_t user, int64_t since, int64_t limit,
                            meta_entry_cb cb, void *userdata)
{
        PGresult *res;
        int r;

        r = mpg_lock_space(m, user);
        if (r == 0)
                r = mpg_exec(m, "entry listing", &res, NULL,
                             "SELECT " MPG_ENTRY_COLS " FROM entries WHERE user_id = $1"
                             " AND seq > $2 ORDER BY seq LIMIT $3",
                             "iii", user, since, limit < 0 ? INT64_MAX : limit);
        if (r < 0)
                return r;
        r = mpg_each_entry(res, cb, userdata);
        PQclear(res);
        return r;
}

static int pg_entry_list(struct meta *m, int64_t user, const char *prefix, int with_deleted,
                         meta_entry_cb cb, void *userdata)
{
        PGresult *res;
        int r;

        r = mpg_lock_space(m, user);
        if (r == 0 && !prefix)
                r = mpg_exec(m, "entry listing", &res, NULL,
                             "SELECT " MPG_ENTRY_COLS " FROM entries WHERE user_id = $1"
                             " AND (deleted = 0 OR $2::bigint <> 0) ORDER BY path",
                             "ii", user, (int64_t)with_deleted);
        else if (r == 0) /* '/' + 1 == '0': the range holds exactly the paths under "P/". */
                r = mpg_exec(m, "entry listing", &res, NULL,
                             "SELECT " MPG_ENTRY_COLS " FROM entries WHERE user_id = $1"
                             " AND (deleted = 0 OR $2::bigint <> 0) AND (path = $3 OR"
                             " (path > ($3 || '/') COLLATE \"C\" AND path < ($3 || '0') COLLATE"
                             " \"C\")) ORDER BY path",
                             "iit", user, (int64_t)with_deleted, prefix);
        if (r < 0)
                return r;
        r = mpg_each_entry(res, cb, userdata);
        PQclear(res);
        return r;
}

/* --- schema, open, close ---------------------------------------------- */

/* Runs the schema steps above the recorded version in one transaction,
 * under an advisory lock so that instances starting together take turns
 * (the second finds the work done). */
static int schema_apply(struct meta_pg *mp)
{
        struct meta *m = &mp->base;
        const struct schema_step *steps = NULL;
        struct bind *b;
        PGresult *pr;
        int64_t have = 0;
        size_t n = 0, i;
        int r;

        if ((r = pg_begin(m)) < 0)
                return r;
        b = bind_self(mp);
        /* Several statements each: the simple query protocol. */
        pr = PQexec(b->c->pg,
                    "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ");"
                    " CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)");
        r = result_check(b->c, pr, "schema lock", NULL);
        PQclear(pr);
        if (r == 0)
                r = mpg_query_int(m, "schema version", 0, &have,
                                  "SELECT max(version) FROM schema_version", "");
        if (r == 0) /* -EIO for a database of a later ferryd's: left alone */
                r = schema_pending((int)have, &steps, &n);
        for (i = 0; r == 0 && i < n; i++) {
                schema_log_step(&steps[i]);
                pr = PQexec(b->c->pg, steps[i].sql[SCHEMA_PG]);
                r = result_check(b->c, pr, "schema step", NULL);
                PQclear(pr);
        }
        if (r == 0 && n > 0)
                r = mpg_exec(m, "schema version", NULL, NULL,
                             "WITH d AS (DELETE FROM schema_version)"
                             " INSERT INTO schema_version (version) VALUES ($1)",
                             "i", (int64_t)steps[n - 1].version);
        if (r < 0) {
                pg_rollback(m);
                return r;
        }
        return pg_commit(m);
}

static void pg_close(struct meta *m)
{
        struct meta_pg *mp = mpg_of(m);
        struct conn *c;
        int i;

        while ((c = mp->free)) {
                mp->free = c->next;
                conn_free(c);
        }
        for (i = 0; i < POOL_MAX; i++)
                if (mp->binds[i].used) {
                        log_warn("metadata store: closed with a transaction or lock held");
                        conn_free(mp->binds[i].c);
                }
        pthread_cond_destroy(&mp->freed);
        pthread_mutex_destroy(&mp->lock);
        free(mp->conninfo);
        free(mp);
}

static const struct meta_ops pg_ops = {
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .user_add = mpg_user_add,
    .user_get = mpg_user_get,
    .device_add = mpg_device_add,
    .device_by_token = mpg_device_by_token,
    .device_touch = mpg_device_touch,
    .device_list = mpg_device_list,
    .chunk_add = mpg_chunk_add,
    .chunk_held = mpg_chunk_held,
    .entry_get = pg_entry_get,
    .entry_put = pg_entry_put,
    .seq_next = pg_seq_next,
    .seq_current = pg_seq_current,
    .entry_changes = pg_entry_changes,
    .entry_list = pg_entry_list,
    /* history, trash, retention, GC */
    .version_add = mpg_version_add,
    .version_get = mpg_version_get,
    .version_last_live = mpg_version_last_live,
    .version_list = mpg_version_list,
    .trash_list = mpg_trash_list,
    .snapshot_list = mpg_snapshot_list,
    .chunk_touch = mpg_chunk_touch,
    .user_ids = mpg_user_ids,
    .version_prune = mpg_version_prune,
    .chunk_refs_drop = mpg_chunk_refs_drop,
    .chunk_orphans = mpg_chunk_orphans,
    .chunk_forget = mpg_chunk_forget,
    /* transfer records, download records, device policy and history */
    .xfer_version = mpg_xfer_version,
    .xfer_version_bump = mpg_xfer_version_bump,
    .xfer_batch_add = mpg_xfer_batch_add,
    .xfer_records = mpg_xfer_records,
    .xfer_record_put = mpg_xfer_record_put,
    .xfer_records_complete = mpg_xfer_records_complete,
    .xfer_record_delete = mpg_xfer_record_delete,
    .xfer_records_fail = mpg_xfer_records_fail,
    .xfer_batches = mpg_xfer_batches,
    .xfer_prune = mpg_xfer_prune,
    .xfer_active_devices = mpg_xfer_active_devices,
    .dl_put = mpg_dl_put,
    .dl_list = mpg_dl_list,
    .dl_ready = mpg_dl_ready,
    .dl_applied = mpg_dl_applied,
    .dl_delete = mpg_dl_delete,
    .device_find = mpg_device_find,
    .device_set_policy = mpg_device_set_policy,
    .device_set_applied = mpg_device_set_applied,
    .device_remove = mpg_device_remove,
    .device_open_records = mpg_device_open_records,
    .device_event_add = mpg_device_event_add,
    .device_events = mpg_device_events,
    .device_event_files = mpg_device_event_files,
    /* requests/registry */
    .registry_version = mpg_registry_version,
    .registry_version_bump = mpg_registry_version_bump,
    .device_set_info = mpg_device_set_info,
    .device_rename = mpg_device_rename,
    .lan_key_get = mpg_lan_key_get,
    .lan_key_rotate = mpg_lan_key_rotate,
    .request_add = mpg_request_add,
    .requests_list = mpg_requests_list,
    .request_set = mpg_request_set,
    .requests_expire = mpg_requests_expire,
    .requests_fail_target = mpg_requests_fail_target,
    .cluster_lock = pg_cluster_lock,
    .cluster_unlock = pg_cluster_unlock,
    .close = pg_close,
};

int meta_pg_open(const char *conninfo, struct meta **out)
{
        struct meta_pg *mp;
        int r;

        mp = calloc(1, sizeof(*mp));
        if (!mp)
                return -ENOMEM;
        mp->base.ops = &pg_ops;
        pthread_mutex_init(&mp->lock, NULL);
        pthread_cond_init(&mp->freed, NULL);
        mp->conninfo = strdup(conninfo);
        if (!mp->conninfo) {
                pg_close(&mp->base);
                return -ENOMEM;
        }
        r = schema_apply(mp);
        if (r < 0) {
                pg_close(&mp->base);
                return r;
        }
        *out = &mp->base;
        return 0;
}
