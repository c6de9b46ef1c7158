/* cli.h - the operator CLI: every pgwarden subcommand except run,
 * check-config and force-new-cluster talks to a node's HTTP API.
 * Blocking (it is its own short-lived process, not the daemon loop). */
#ifndef PGW_CLI_H
#define PGW_CLI_H

/* argv[0] is the program, argv[1..] global options then the command.
 * Returns the process exit status: 0 ok, 1 request failed, 2 usage. */
int cli_main(int argc, char **argv);

/* Print the CLI's usage lines to f. */
#include <stdio.h>
void cli_usage(FILE *f);

#endif
