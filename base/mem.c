#include "mem.h"

#include <stdlib.h>
#include <string.h>

static long fail_countdown = -1;

static int should_fail(void)
{
	if (fail_countdown < 0)
		return 0;
	if (fail_countdown == 0)
		return 1;
	fail_countdown--;
	return 0;
}

void mem_fail_after(long n)
{
	fail_countdown = n;
}

void *mem_malloc(size_t n)
{
	return should_fail() ? NULL : malloc(n ? n : 1);
}

void *mem_calloc(size_t nmemb, size_t n)
{
	return should_fail() ? NULL : calloc(nmemb ? nmemb : 1, n ? n : 1);
}

void *mem_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void mem_free(void *p)
{
	free(p);
}

char *mem_strndup(const char *s, size_t n)
{
	if (!s)
		return NULL;
	size_t len = strnlen(s, n);
	char *d = mem_malloc(len + 1);
	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *mem_strdup(const char *s)
{
	return s ? mem_strndup(s, strlen(s)) : NULL;
}
