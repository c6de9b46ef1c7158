/* base/mem.h - the project allocator.
 *
 * All project allocations go through mem_malloc/mem_free so that tests can
 * inject failures: mem_fail_after(n) makes the (n+1)-th allocation from now
 * on fail (n < 0 disables). Loop thread only.
 */
#ifndef PGW_MEM_H
#define PGW_MEM_H

#include <stddef.h>

void *mem_malloc(size_t n);
void *mem_calloc(size_t nmemb, size_t n);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);
/* Copy of s (NULL when s is NULL or on allocation failure). */
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);

/* Test hook: fail allocations after n more succeed; n < 0 turns it off. */
void mem_fail_after(long n);

#endif
