/* meta_sqlite_transfers: transfer records, download records, each device's
 * download policy and the device history, for the SQLite metadata backend.
 * (Being written: issue 5.) */
#include "meta_sqlite.h"

int msq_transfers_schema(struct meta_sqlite *ms, int old_version)
{
        (void)ms;
        (void)old_version;
        return 0;
}
