/* cfg_name.c - what a node name becomes inside PostgreSQL (see cfg.h).
 *
 * Kept apart from cfg.c (no inih, no files) so that the pure decision code
 * and its tests can link it alone.
 */
#include "config/cfg.h"

#include <string.h>

void cfg_pg_name(const char *name, char *out, size_t len)
{
	size_t i = 0;
	if (len == 0)
		return;
	/* ASCII only, independent of the locale: every node must compute
	 * the same name for every other node */
	for (; name[i] && i < CFG_PG_NAME_MAX && i + 1 < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c >= 'A' && c <= 'Z')
			out[i] = (char)(c - 'A' + 'a');
		else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			out[i] = (char)c;
		else
			out[i] = '_';
	}
	out[i] = '\0';
}

void cfg_pg_slot_name(const char *name, char *out, size_t len)
{
	char pg[CFG_PG_NAME_LEN];
	if (len == 0)
		return;
	cfg_pg_name(name, pg, sizeof pg);
	size_t n = strlen(CFG_PG_SLOT_PREFIX);
	if (n >= len) {
		out[0] = '\0';
		return;
	}
	memcpy(out, CFG_PG_SLOT_PREFIX, n);
	size_t m = strlen(pg);
	if (m > len - n - 1)
		m = len - n - 1;
	memcpy(out + n, pg, m);
	out[n + m] = '\0';
}

bool cfg_pg_name_clash(const char *a, const char *b)
{
	char pa[CFG_PG_NAME_LEN], pb[CFG_PG_NAME_LEN];
	if (strcmp(a, b) == 0)
		return false;
	cfg_pg_name(a, pa, sizeof pa);
	cfg_pg_name(b, pb, sizeof pb);
	return strcmp(pa, pb) == 0;
}
