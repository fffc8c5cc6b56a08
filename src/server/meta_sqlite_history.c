/* meta_sqlite_history: the version history of each space, the trash,
 * retention and the rows the garbage collector works on, for the SQLite
 * metadata backend. (Being written: issue 5.) */
#include "meta_sqlite.h"

int msq_history_schema(struct meta_sqlite *ms, int old_version)
{
        (void)ms;
        (void)old_version;
        return 0;
}
