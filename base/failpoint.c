/* base/failpoint.c - see failpoint.h. */
#include "failpoint.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

#define FIRED_MAX 16

static const char *fired[FIRED_MAX]; /* names already logged */

static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

bool failpoint(const char *name)
{
	const char *list = getenv("PGWARDEN_FAILPOINTS");
	if (!list || !*list || !listed(list, name))
		return false;
	for (size_t i = 0; i < FIRED_MAX; i++) {
		if (fired[i] && strcmp(fired[i], name) == 0)
			return true;
		if (!fired[i]) {
			fired[i] = name;
			break;
		}
	}
	log_warn("failpoint %s fired (PGWARDEN_FAILPOINTS, for tests only)",
		 name);
	return true;
}
