/* cmd_pull: ferry pull and prune. (Being written: issue 6.) */
#include <stdio.h>

#include "cli.h"

int cmd_pull(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}

int cmd_prune(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}
