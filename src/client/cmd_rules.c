/* cmd_rules: ferry rules and held. (Being written: issue 6.) */
#include <stdio.h>

#include "cli.h"

int cmd_rules(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}

int cmd_held(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}
