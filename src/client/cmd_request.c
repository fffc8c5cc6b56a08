/* cmd_request: ferry request-upload. (Being written: issue 7.) */
#include <stdio.h>

#include "cli.h"

int cmd_request_upload(const struct cli *g, int argc, char **argv)
{
        (void)g, (void)argc, (void)argv;
        fputs("ferry: not implemented yet\n", stderr);
        return CLI_FAIL;
}
