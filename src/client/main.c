/* main: the `ferry` executable: global options, logging set-up, and the
 * dispatch to one command of cli.c's table. Everything else lives in the
 * ferry_core library so that it can be unit-tested. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

int main(int argc, char **argv)
{
        const struct cli_command *c;
        struct cli g;
        int cmd = 0;

        switch (cli_parse_global(argc, argv, &g, &cmd)) {
        case CLI_HELP:
                cli_help(stdout);
                return CLI_OK;
        case CLI_VERSION:
                printf("ferry %s\n", FERRY_VERSION);
                return CLI_OK;
        case CLI_BAD_USAGE:
                fprintf(stderr, "ferry: %s (see 'ferry --help')\n",
                        argc < 2 ? "no command given" : "bad global option or no command");
                return CLI_USAGE;
        case CLI_RUN:
                break;
        }
        c = cli_find(argv[cmd]);
        if (!c) {
                fprintf(stderr, "ferry: unknown command '%s' (see 'ferry --help')\n", argv[cmd]);
                return CLI_USAGE;
        }
        log_init("ferry", g.verbose >= 2   ? LOG_LEVEL_DEBUG
                          : g.verbose == 1 ? LOG_LEVEL_INFO
                                           : LOG_LEVEL_WARN);
        return c->run(&g, argc - cmd, argv + cmd);
}
