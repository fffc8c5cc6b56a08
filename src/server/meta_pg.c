/* meta_pg: (being written) the PostgreSQL metadata store: pool, transactions,
 * schema, query helpers, entries. */
#include <errno.h>

#include "err.h"
#include "meta_pg.h"

int meta_pg_open(const char *conninfo, struct meta **out)
{
        (void)conninfo;
        (void)out;
        return err_set(-ENOSYS, "PostgreSQL backend not written yet");
}
