/* gc: retention and garbage collection (see gc.h). (Being written: issue 5.) */
#include <string.h>

#include "gc.h"
#include "server.h"

int gc_run(struct server *s, int64_t now, struct gc_stats *st)
{
        (void)s;
        (void)now;
        memset(st, 0, sizeof(*st));
        return 0;
}
