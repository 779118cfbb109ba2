/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static void help(void) {
        printf("Usage: webpoold [-c FILE] [-t] [-h] [-V]\n"
               "Serve static files over HTTP/1.1.\n\n"
               "  -c FILE  configuration file (default /etc/webpoold.conf)\n"
               "  -t       check the configuration and exit\n"
               "  -h       show this help\n"
               "  -V       show the version\n");
}

int main(int argc, char *argv[]) {
        int opt;
        while ((opt = getopt(argc, argv, "c:thV")) >= 0)
                switch (opt) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case 'V':
                        printf("webpoold %s\n", WEBPOOLD_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return 64; /* EX_USAGE */
                }
        log_error("Not implemented yet.");
        return EXIT_FAILURE;
}
