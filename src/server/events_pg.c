/* events_pg: (being written) the event hub across instances (LISTEN/NOTIFY). */
#include "events.h"

int events_pg_placeholder(void);
int events_pg_placeholder(void)
{
        return 0;
}
