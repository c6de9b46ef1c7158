/* cli.h - the operator CLI: every pgwarden subcommand except run,
 * check-config, force-new-cluster and version talks to a node's HTTP API
 * (docs/http-api.md), with etcdctl's habits (docs/cli.md).
 *
 * Blocking: the CLI is its own short-lived process, not the daemon loop,
 * so it uses libcurl's easy interface. Single-threaded.
 */
#ifndef PGW_CLI_H
#define PGW_CLI_H

#include <stdio.h>

/* Run one CLI command. argv[0] is the program, argv[1..] global options
 * and the command words, in any order (options may follow the command, as
 * with etcdctl). Borrows argv. Prints results on stdout and one error line
 * on stderr. Returns the process exit status: 0 ok, 1 request failed,
 * 2 usage error (including a mutating command without a token). */
int cli_main(int argc, char **argv);

/* Print the CLI's command list and client options to f (for --help). */
void cli_usage(FILE *f);

#endif
