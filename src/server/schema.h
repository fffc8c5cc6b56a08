/* schema: the one versioned source of ferryd's metadata schema, for both
 * database backends. Each step takes a database from version - 1 to
 * version; a backend runs, in one transaction, every step above the
 * version its schema_version table records, then records the new version.
 * `ferryd migrate` runs them on demand; every backend runs them at open, so
 * an upgrade never needs hand-written SQL.
 *
 * A step carries its SQL for each dialect side by side, so that a change
 * to a table is made once, in one place, for SQLite and PostgreSQL alike.
 * Data migrations that SQL can say (filling a new table from an old one)
 * are part of the step's text; one that needs C would be a hook the
 * backend's loop calls after the step's SQL (none does today; see
 * meta_sqlite.c). Every step has text for both dialects.
 *
 * A backend applying steps logs each with schema_log_step(), so that the
 * log of an upgrade (and `ferryd migrate`) says what changed.
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
/* The steps a database at version current (0: an empty one) still needs,
 * in order: *first and *n (NULL and 0 when it is up to date). 0, or -EIO
 * with a message when current is newer than schema_version() (a later
 * release wrote the database: this ferryd must not touch it), -EINVAL when
 * it is negative. */
int schema_pending(int current, const struct schema_step **first, size_t *n);
/* Logs (info) "schema: applying N (what)" for a step about to run. */
void schema_log_step(const struct schema_step *step);

#endif
