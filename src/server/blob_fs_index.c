/* blob_fs_index: the index of the folder chunk store (blob_fs.c), an SQLite
 * database DIR/index.db that maps a chunk's hash to its record in a pack
 * file, and lists the packs with the bytes of theirs still pointed at:
 *
 *   packs(id, name, live)            live: sum of its rows' record sizes
 *   chunks(hash, pack, off, len, enc)
 *
 * Several processes open it at once (ferryd, `ferryd user add`, several
 * ferryd on one shared folder): WAL, so that readers never block the
 * writer, and a busy timeout for writers meeting. Each store handle has two
 * connections, one for lookups and one for writes, each behind a mutex,
 * so that a get() never waits for a flush()'s commit to reach the disk.
 *
 * Durability: the writing connection runs at synchronous=NORMAL (a commit
 * reaches the WAL but is not fsynced) and switches to FULL around the two
 * transactions that must survive a power cut: flush()'s rows and
 * compaction's moves. A removal (the GC) is thus not durable on its own: a
 * crash may bring its row back, and with it a chunk whose bytes are still
 * there, since packs are deleted only after a FULL commit, which carries
 * every earlier commit of the WAL with it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_fs_int.h"
#include "err.h"
#include "log.h"

#define BUSY_MS 10000
/* A checkpoint (the WAL copied into the database, two fsyncs) runs in the
 * commit that crosses this many WAL pages: 32 MiB, rather than SQLite's 4,
 * since a flush of random hashes touches a page per row and every
 * checkpoint delays a flush. */
#define CKPT_PAGES "8192"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS packs (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL UNIQUE, live INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS chunks (hash BLOB PRIMARY KEY, pack INTEGER NOT NULL,"
    " off INTEGER NOT NULL, len INTEGER NOT NULL, enc INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS chunks_pack ON chunks (pack);";

static int db_err(sqlite3 *db, const char *what)
{
        int rc = sqlite3_errcode(db);

        return err_set(rc == SQLITE_BUSY ? -EBUSY : -EIO, "chunk index: %s: %s", what,
                       sqlite3_errmsg(db));
}

static int conn_open(const char *path, sqlite3 **out)
{
        sqlite3 *db = NULL;
        int r;

        if (sqlite3_open_v2(path, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
                r = err_set(-EIO, "cannot open %s: %s", path,
                            db ? sqlite3_errmsg(db) : "out of memory");
                sqlite3_close(db);
                return r;
        }
        sqlite3_busy_timeout(db, BUSY_MS);
        if (sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         " PRAGMA wal_autocheckpoint=" CKPT_PAGES ";",
                         NULL, NULL, NULL) != SQLITE_OK) {
                r = db_err(db, path);
                sqlite3_close(db);
                return r;
        }
        *out = db;
        return 0;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
        if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
                return db_err(db, sql);
        return 0;
}

static int reader_open(const char *path, struct bfs_reader *rd)
{
        int r = conn_open(path, &rd->db);

        if (r == 0)
                r = prep(rd->db,
                         "SELECT c.pack, p.name, c.off, c.len, c.enc FROM chunks c"
                         " JOIN packs p ON p.id = c.pack WHERE c.hash = ?",
                         &rd->lookup);
        if (r == 0)
                r = prep(rd->db, "SELECT live FROM packs WHERE id = ?", &rd->live);
        return r;
}

/* A reader, locked: a free one if any, else one to wait for. */
static struct bfs_reader *reader_get(struct bfs_index *ix)
{
        unsigned start = __atomic_fetch_add(&ix->next_rd, 1, __ATOMIC_RELAXED);

        for (unsigned i = 0; i < BFS_READERS; i++) {
                struct bfs_reader *rd = &ix->rd[(start + i) % BFS_READERS];

                if (pthread_mutex_trylock(&rd->mu) == 0)
                        return rd;
        }
        pthread_mutex_lock(&ix->rd[start % BFS_READERS].mu);
        return &ix->rd[start % BFS_READERS];
}

int bfs_index_open(struct blob_fs *bf)
{
        struct bfs_index *ix = &bf->ix;
        char path[PATH_MAX];
        int r, i;

        for (i = 0; i < BFS_READERS; i++)
                pthread_mutex_init(&ix->rd[i].mu, NULL);
        pthread_mutex_init(&ix->wr_mu, NULL);
        if (snprintf(path, sizeof(path), "%s/index.db", bf->dir) >= (int)sizeof(path))
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        r = conn_open(path, &ix->wr);
        if (r < 0)
                return r;
        if (sqlite3_exec(ix->wr, schema, NULL, NULL, NULL) != SQLITE_OK)
                return db_err(ix->wr, "creating the schema");
        for (i = 0; i < BFS_READERS && r == 0; i++)
                r = reader_open(path, &ix->rd[i]);
        if (r == 0)
                r = prep(ix->wr,
                         "INSERT OR IGNORE INTO chunks (hash, pack, off, len, enc)"
                         " VALUES (?, ?, ?, ?, ?)",
                         &ix->insert);
        if (r == 0)
                r = prep(ix->wr, "UPDATE packs SET live = live + ? WHERE id = ?", &ix->add_live);
        if (r == 0)
                r = prep(ix->wr, "DELETE FROM chunks WHERE hash = ? RETURNING pack, len", &ix->del);
        if (r == 0)
                r = prep(ix->wr, "INSERT INTO packs (name) VALUES (?)", &ix->pack_new);
        if (r == 0)
                r = prep(ix->wr, "UPDATE chunks SET pack = ?, off = ? WHERE hash = ? AND pack = ?",
                         &ix->move);
        if (r == 0)
                r = prep(ix->wr, "DELETE FROM packs WHERE id = ?", &ix->pack_del);
        if (r == 0)
                r = prep(ix->wr, "SELECT 1 FROM chunks WHERE pack = ? LIMIT 1", &ix->pack_left);
        if (r == 0)
                r = prep(ix->wr, "PRAGMA synchronous=FULL", &ix->full);
        if (r == 0)
                r = prep(ix->wr, "PRAGMA synchronous=NORMAL", &ix->normal);
        if (r == 0)
                r = prep(ix->wr, "BEGIN IMMEDIATE", &ix->begin);
        if (r == 0)
                r = prep(ix->wr, "COMMIT", &ix->commit);
        if (r == 0)
                r = prep(ix->wr, "ROLLBACK", &ix->rollback);
        return r;
}

void bfs_index_close(struct blob_fs *bf)
{
        struct bfs_index *ix = &bf->ix;
        sqlite3_stmt **all[] = {&ix->insert, &ix->add_live, &ix->del,       &ix->pack_new,
                                &ix->move,   &ix->pack_del, &ix->pack_left, &ix->full,
                                &ix->normal, &ix->begin,    &ix->commit,    &ix->rollback};
        size_t i;

        for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                sqlite3_finalize(*all[i]);
                *all[i] = NULL;
        }
        for (i = 0; i < BFS_READERS; i++) {
                struct bfs_reader *rd = &ix->rd[i];

                sqlite3_finalize(rd->lookup);
                sqlite3_finalize(rd->live);
                sqlite3_close(rd->db);
                rd->lookup = rd->live = NULL;
                rd->db = NULL;
                pthread_mutex_destroy(&rd->mu);
        }
        sqlite3_close(ix->wr);
        ix->wr = NULL;
        pthread_mutex_destroy(&ix->wr_mu);
}

/* Runs a statement without rows to the end and resets it. */
static int run(sqlite3 *db, sqlite3_stmt *s)
{
        int rc = sqlite3_step(s), r = 0;

        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                r = db_err(db, sqlite3_sql(s));
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return r;
}

static void copy_name(char *dst, const unsigned char *src)
{
        snprintf(dst, BFS_NAME_LEN, "%s", src ? (const char *)src : "");
}

int bfs_index_lookup(struct blob_fs *bf, const struct hash *h, struct bfs_loc *loc)
{
        struct bfs_reader *rd = reader_get(&bf->ix);
        sqlite3_stmt *s = rd->lookup;
        int rc, r = 0;

        sqlite3_bind_blob(s, 1, h->b, HASH_LEN, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                loc->pack = sqlite3_column_int64(s, 0);
                copy_name(loc->name, sqlite3_column_text(s, 1));
                loc->off = (uint64_t)sqlite3_column_int64(s, 2);
                loc->len = (uint32_t)sqlite3_column_int64(s, 3);
                loc->enc = (uint8_t)sqlite3_column_int(s, 4);
                r = 1;
        } else if (rc != SQLITE_DONE) {
                r = db_err(rd->db, "lookup");
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        pthread_mutex_unlock(&rd->mu);
        return r;
}

int bfs_index_pack_live(struct blob_fs *bf, int64_t id, uint64_t *live)
{
        struct bfs_reader *rd = reader_get(&bf->ix);
        int rc, r = -ENOENT;

        sqlite3_bind_int64(rd->live, 1, id);
        rc = sqlite3_step(rd->live);
        if (rc == SQLITE_ROW) {
                *live = (uint64_t)sqlite3_column_int64(rd->live, 0);
                r = 0;
        } else if (rc != SQLITE_DONE) {
                r = db_err(rd->db, "pack lookup");
        }
        sqlite3_reset(rd->live);
        pthread_mutex_unlock(&rd->mu);
        return r;
}

int bfs_index_pack_new(struct blob_fs *bf, const char *name, int64_t *id)
{
        struct bfs_index *ix = &bf->ix;
        int r;

        pthread_mutex_lock(&ix->wr_mu);
        sqlite3_bind_text(ix->pack_new, 1, name, -1, SQLITE_STATIC);
        r = run(ix->wr, ix->pack_new);
        if (r == 0)
                *id = sqlite3_last_insert_rowid(ix->wr);
        pthread_mutex_unlock(&ix->wr_mu);
        return r;
}

/* BEGIN, optionally durable: with FULL, COMMIT fsyncs the WAL. */
static int tx_begin(struct bfs_index *ix, int durable)
{
        int r = 0;

        if (durable)
                r = run(ix->wr, ix->full);
        if (r == 0)
                r = run(ix->wr, ix->begin);
        return r;
}

static int tx_end(struct bfs_index *ix, int r, int durable)
{
        if (r == 0)
                r = run(ix->wr, ix->commit);
        if (r < 0 && !sqlite3_get_autocommit(ix->wr))
                (void)run(ix->wr, ix->rollback);
        if (durable)
                (void)run(ix->wr, ix->normal);
        return r;
}

/* The live bytes a batch of rows adds to their packs. Rows come grouped by
 * pack, so one UPDATE per run of a pack (live_flush when the pack changes
 * and at the end). */
struct live_run {
        int64_t pack, bytes;
};

static int live_flush(struct bfs_index *ix, struct live_run *lr)
{
        int r = 0;

        if (lr->bytes) {
                sqlite3_bind_int64(ix->add_live, 1, lr->bytes);
                sqlite3_bind_int64(ix->add_live, 2, lr->pack);
                r = run(ix->wr, ix->add_live);
        }
        lr->bytes = 0;
        return r;
}

/* Counts row's record as live (its row went in). */
static int live_add(struct bfs_index *ix, struct live_run *lr, const struct bfs_row *row)
{
        int r = 0;

        if (row->pack != lr->pack)
                r = live_flush(ix, lr);
        lr->pack = row->pack;
        lr->bytes += BFS_REC_HDR + (int64_t)row->len;
        return r;
}

int bfs_index_commit(struct blob_fs *bf, const struct bfs_row *rows, size_t n)
{
        struct bfs_index *ix = &bf->ix;
        struct live_run lr = {0};
        size_t i;
        int r;

        if (n == 0)
                return 0;
        pthread_mutex_lock(&ix->wr_mu);
        r = tx_begin(ix, 1);
        for (i = 0; r == 0 && i < n; i++) {
                sqlite3_bind_blob(ix->insert, 1, rows[i].h.b, HASH_LEN, SQLITE_STATIC);
                sqlite3_bind_int64(ix->insert, 2, rows[i].pack);
                sqlite3_bind_int64(ix->insert, 3, (int64_t)rows[i].off);
                sqlite3_bind_int64(ix->insert, 4, rows[i].len);
                sqlite3_bind_int(ix->insert, 5, rows[i].enc);
                r = run(ix->wr, ix->insert);
                if (r < 0 || sqlite3_changes(ix->wr) == 0)
                        continue; /* stored meanwhile: this copy is dead bytes */
                r = live_add(ix, &lr, &rows[i]);
        }
        if (r == 0)
                r = live_flush(ix, &lr);
        r = tx_end(ix, r, 1);
        pthread_mutex_unlock(&ix->wr_mu);
        return r;
}

int bfs_index_remove(struct blob_fs *bf, const struct hash *h)
{
        struct bfs_index *ix = &bf->ix;
        int64_t pack = 0, len = 0;
        int r, rc, found = 0;

        pthread_mutex_lock(&ix->wr_mu);
        r = tx_begin(ix, 0);
        if (r == 0) {
                sqlite3_bind_blob(ix->del, 1, h->b, HASH_LEN, SQLITE_STATIC);
                rc = sqlite3_step(ix->del);
                if (rc == SQLITE_ROW) {
                        found = 1;
                        pack = sqlite3_column_int64(ix->del, 0);
                        len = sqlite3_column_int64(ix->del, 1);
                        rc = sqlite3_step(ix->del);
                }
                if (rc != SQLITE_DONE)
                        r = db_err(ix->wr, "removing a chunk");
                sqlite3_reset(ix->del);
                sqlite3_clear_bindings(ix->del);
        }
        if (r == 0 && found) {
                struct live_run lr = {pack, -(BFS_REC_HDR + len)};

                r = live_flush(ix, &lr);
        }
        r = tx_end(ix, r, 0);
        pthread_mutex_unlock(&ix->wr_mu);
        return r < 0 ? r : found ? 0 : -ENOENT;
}

/* Fills the row at slot from s's current row; 0 to skip the row (a
 * malformed one), 1 to keep it. */
typedef int (*row_reader)(sqlite3_stmt *s, void *slot, int64_t id);

/* Runs sql (with ?1 = id when bind is set) on a reader connection and
 * collects its rows, of elem bytes each, into *out (malloc'd; *n rows).
 * 0, or a negative code with *out NULL and *n 0. */
static int list_rows(struct blob_fs *bf, const char *sql, int bind, int64_t id, size_t elem,
                     row_reader read, const char *what, void **out, size_t *n)
{
        struct bfs_reader *rd = reader_get(&bf->ix);
        uint8_t *v = NULL;
        size_t cap = 0;
        sqlite3_stmt *s = NULL;
        int rc = SQLITE_DONE, r;

        *n = 0;
        r = prep(rd->db, sql, &s);
        if (r == 0 && bind)
                sqlite3_bind_int64(s, 1, id);
        while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = buf_grow_array(&v, &cap, *n + 1, elem);
                if (r < 0)
                        break;
                *n += (size_t)read(s, v + *n * elem, id);
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = db_err(rd->db, what);
        sqlite3_finalize(s);
        pthread_mutex_unlock(&rd->mu);
        if (r < 0) {
                free(v);
                v = NULL;
                *n = 0;
        }
        *out = v;
        return r;
}

static int read_packrow(sqlite3_stmt *s, void *slot, int64_t id)
{
        struct bfs_packrow *p = slot;

        (void)id;
        p->id = sqlite3_column_int64(s, 0);
        copy_name(p->name, sqlite3_column_text(s, 1));
        p->live = (uint64_t)sqlite3_column_int64(s, 2);
        return 1;
}

int bfs_index_packs(struct blob_fs *bf, struct bfs_packrow **out, size_t *n)
{
        return list_rows(bf, "SELECT id, name, live FROM packs ORDER BY id", 0, 0, sizeof(**out),
                         read_packrow, "listing packs", (void **)out, n);
}

static int read_row(sqlite3_stmt *s, void *slot, int64_t id)
{
        struct bfs_row *w = slot;

        if (sqlite3_column_bytes(s, 0) != HASH_LEN)
                return 0;
        memcpy(w->h.b, sqlite3_column_blob(s, 0), HASH_LEN);
        w->pack = id;
        w->off = (uint64_t)sqlite3_column_int64(s, 1);
        w->len = (uint32_t)sqlite3_column_int64(s, 2);
        w->enc = (uint8_t)sqlite3_column_int(s, 3);
        return 1;
}

int bfs_index_pack_rows(struct blob_fs *bf, int64_t id, struct bfs_row **out, size_t *n)
{
        return list_rows(bf, "SELECT hash, off, len, enc FROM chunks WHERE pack = ? ORDER BY off",
                         1, id, sizeof(**out), read_row, "listing a pack's chunks", (void **)out,
                         n);
}

int bfs_index_move(struct blob_fs *bf, int64_t old, const struct bfs_row *rows, size_t n)
{
        struct bfs_index *ix = &bf->ix;
        struct live_run lr = {0};
        size_t i;
        int r;

        pthread_mutex_lock(&ix->wr_mu);
        r = tx_begin(ix, 1);
        for (i = 0; r == 0 && i < n; i++) {
                sqlite3_bind_int64(ix->move, 1, rows[i].pack);
                sqlite3_bind_int64(ix->move, 2, (int64_t)rows[i].off);
                sqlite3_bind_blob(ix->move, 3, rows[i].h.b, HASH_LEN, SQLITE_STATIC);
                sqlite3_bind_int64(ix->move, 4, old);
                r = run(ix->wr, ix->move);
                if (r < 0 || sqlite3_changes(ix->wr) == 0)
                        continue; /* removed meanwhile: its copy is dead bytes */
                r = live_add(ix, &lr, &rows[i]);
        }
        if (r == 0)
                r = live_flush(ix, &lr);
        if (r == 0) {
                sqlite3_bind_int64(ix->pack_left, 1, old);
                if (sqlite3_step(ix->pack_left) == SQLITE_ROW)
                        r = -EAGAIN;
                sqlite3_reset(ix->pack_left);
        }
        if (r == 0) {
                sqlite3_bind_int64(ix->pack_del, 1, old);
                r = run(ix->wr, ix->pack_del);
        }
        r = tx_end(ix, r, 1);
        pthread_mutex_unlock(&ix->wr_mu);
        return r;
}

int bfs_index_has_pack(struct blob_fs *bf, const char *name)
{
        struct bfs_reader *rd;
        sqlite3_stmt *s = NULL;
        int rc, r;

        rd = reader_get(&bf->ix);
        r = prep(rd->db, "SELECT 1 FROM packs WHERE name = ?", &s);
        if (r == 0) {
                sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
                rc = sqlite3_step(s);
                r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_err(rd->db, "pack lookup");
        }
        sqlite3_finalize(s);
        pthread_mutex_unlock(&rd->mu);
        return r;
}
