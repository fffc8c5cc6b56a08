/* cmd_transfers: ferry transfers, retry, forget and config. (Being written: issue 5.) */
#include <stdio.h>

#include "cli.h"

int cmd_transfers(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}

int cmd_retry(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}

int cmd_forget(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}

int cmd_config(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}
