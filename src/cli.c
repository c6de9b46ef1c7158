#include "cli.h"

int cli_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "pgwarden: the CLI is not built yet\n");
	return 2;
}

void cli_usage(FILE *f)
{
	fprintf(f, "  (CLI commands)\n");
}
