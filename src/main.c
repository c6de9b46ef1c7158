/* main.c - pgwarden's entry point: the daemon (`run`), the offline
 * commands (`check-config`, `force-new-cluster`) and the operator CLI.
 * Only this file exits, and only during startup. Exit status 2 means a
 * usage or configuration error (nothing was started). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "cli/cli.h"
#include "daemon.h"
#include "err.h"
#include "log.h"
#include "wd_fencer.h"

#ifndef PGW_VERSION
#define PGW_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pgwarden COMMAND [ARGS]\n"
		"\n"
		"daemon and offline commands:\n"
		"  pgwarden run -c FILE [--join]     run this node\n"
		"  pgwarden check-config -c FILE     validate the ini file\n"
		"  pgwarden force-new-cluster -c FILE\n"
		"                                    recover from quorum loss "
		"(node stopped)\n"
		"  pgwarden version\n"
		"\n"
		"operator commands (talk to a node's HTTP API):\n");
	cli_usage(f);
}

/* Parse "-c FILE" / "--config FILE" / "--config=FILE" and --join. */
static int parse_local(int argc, char **argv, const char **path, bool *join)
{
	*path = NULL;
	if (join)
		*join = false;
	for (int i = 2; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 ||
		     strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			*path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			*path = argv[i] + 9;
		} else if (join && strcmp(argv[i], "--join") == 0) {
			*join = true;
		} else {
			fprintf(stderr, "pgwarden %s: unexpected argument '%s'\n",
				argv[1], argv[i]);
			return -1;
		}
	}
	if (!*path) {
		fprintf(stderr, "pgwarden %s: -c FILE is required\n", argv[1]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("pgwarden %s\n", PGW_VERSION);
		return 0;
	}
	/* internal: the fencer process `run` starts (wd_fencer.h) */
	if (strcmp(cmd, "fencer") == 0)
		return wd_fencer_main(argc - 1, argv + 1);
	bool is_run = strcmp(cmd, "run") == 0;
	bool is_check = strcmp(cmd, "check-config") == 0;
	bool is_recover = strcmp(cmd, "force-new-cluster") == 0;
	if (!is_run && !is_check && !is_recover)
		return cli_main(argc, argv);

	const char *path;
	bool join = false;
	if (parse_local(argc, argv, &path, is_run ? &join : NULL) != 0)
		return 2;
	struct cfg cfg;
	char err[1024];
	if (cfg_load(path, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	/* host names to addresses, before any loop runs (cfg.h) */
	if (cfg_resolve(&cfg, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		cfg_free(&cfg);
		return 2;
	}
	if (is_check) {
		printf("%s: ok\n", path);
		cfg_free(&cfg);
		return 0;
	}
	log_set_level((enum log_level)cfg.log_level);
	int rc = is_run ? daemon_run(&cfg, join) : daemon_force_new_cluster(&cfg);
	cfg_free(&cfg);
	return rc;
}
