/* schema: the one versioned source of ferryd's metadata schema, for both
 * database backends. Each step takes a database from version - 1 to
 * version; a backend runs, in one transaction, every step above the
 * version its schema_version table records, then records the new version.
 * `ferryd migrate` runs them on demand; every backend runs them at open, so
 * an upgrade never needs hand-written SQL.
 *
 * A step carries its SQL for each dialect side by side, so that a change
 * to a table is made once, in one place, for SQLite and PostgreSQL alike.
 * The SQLite text of a step may be NULL when the SQLite backend does that
 * step in C (a data migration); see meta_sqlite.c.
 */
#ifndef FERRY_SCHEMA_H
#define FERRY_SCHEMA_H

#include <stddef.h>

enum schema_dialect { SCHEMA_SQLITE = 0, SCHEMA_PG };

struct schema_step {
        int version;        /* 1, 2, ...: the version this step leads to */
        const char *what;   /* one line for the log and `ferryd migrate` */
        const char *sql[2]; /* indexed by enum schema_dialect */
};

/* The steps, in version order; *n their number. The last one's version is
 * the current schema version. */
const struct schema_step *schema_steps(size_t *n);
/* The current schema version (the last step's). */
int schema_version(void);

#endif
