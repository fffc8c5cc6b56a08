/* cmd_backup: ferry backup. (Being written: issue 6.) */
#include <stdio.h>

#include "cli.h"

int cmd_backup(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}
