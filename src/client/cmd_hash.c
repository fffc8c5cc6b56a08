/* cmd_hash: `ferry hash FILE...`, the file hash (manifest.h) of local
 * files as the server lists it (`ferry ls --json`), so that a user can tell
 * whether a local file is the version the server holds without syncing. It
 * needs no linked folder and no server: the hash is computed here, by the
 * same code the scan uses. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "manifest.h"

enum { OPT_HELP = 1 };

int cmd_hash(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        int c, rc = CLI_OK;

        (void)g;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry hash FILE...\n"
                             "\n"
                             "Prints each FILE's hash as the server lists it (`ferry ls --json`),\n"
                             "then its size and name: the SHA-256 of its chunks' SHA-256 hashes,\n"
                             "not `sha256sum`'s (see docs/api.md).");
                        return CLI_OK;
                default:
                        return cli_bad_option("hash", argc, argv, c);
                }
        }
        if (optind == argc)
                return cli_usage("hash", "name at least one FILE");
        for (int i = optind; i < argc; i++) {
                struct manifest m = MANIFEST_INIT;
                char hex[HASH_HEX_LEN + 1];
                int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
                int r;

                if (fd < 0) {
                        r = err_set(-errno, "cannot open %s: %s", argv[i], strerror(errno));
                } else {
                        r = manifest_from_fd(fd, &m, NULL, NULL);
                        close(fd);
                }
                if (r < 0) {
                        rc = cli_fail("hash", r);
                        continue;
                }
                hash_to_hex(&m.file_hash, hex);
                printf("%s  %llu  %s\n", hex, (unsigned long long)m.size, argv[i]);
                manifest_free(&m);
        }
        return rc;
}
