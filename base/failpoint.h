/* base/failpoint.h - named faults that system tests switch on.
 *
 * Some failure paths cannot be reached on time from outside the process:
 * a store write that commits but whose answer is lost, say. A failpoint
 * names such a spot; the code asks failpoint("name") there and, when the
 * name is listed in the environment variable PGWARDEN_FAILPOINTS (names
 * separated by commas), acts as if that fault had happened. Unset (as in
 * every real deployment), failpoint() is false everywhere. The first time
 * a listed failpoint fires it is logged as a warning. The names in use are
 * listed in docs/architecture.md ("Failpoints"). Loop thread only.
 */
#ifndef PGW_FAILPOINT_H
#define PGW_FAILPOINT_H

#include <stdbool.h>

bool failpoint(const char *name);

#endif
