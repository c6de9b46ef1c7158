/* base/timing.h - the one source of the lease protocol's constants.
 *
 * docs/architecture.md ("Lease and fencing") states the inequalities; the
 * configuration checks (src/config/cfg.c), the agent's self-fencing
 * deadline (src/ha/), the store's lease expiry (raft-store/) and the
 * watchdog's pet rule all compute with these functions, so a check can
 * never pass with a value the run time does not use.
 *
 *   rho   TIMING_RHO_PERMILLE: bound on the clock-rate error between
 *         machines, in thousandths (1 = 0.1 %).
 *   E     worst Raft election: TIMING_ELECTION_TENTHS / 10 times the
 *         election timeout (libraft 0.15 was measured at 2-3.5 x).
 */
#ifndef PGW_TIMING_H
#define PGW_TIMING_H

#include <stdint.h>

#define TIMING_RHO_PERMILLE 1u
#define TIMING_ELECTION_TENTHS 35u

/* d * (1 - rho), rounded down: a duration measured on another machine's
 * clock, at its shortest on ours. */
static inline uint64_t timing_shrink(uint64_t d)
{
	return d - (d * TIMING_RHO_PERMILLE + 999u) / 1000u;
}

/* d * (1 + rho), rounded up: at its longest. */
static inline uint64_t timing_stretch(uint64_t d)
{
	return d + (d * TIMING_RHO_PERMILLE + 999u) / 1000u;
}

/* How long after sending a renewal the primary may count its lease valid:
 * ttl * (1 - rho) - margin (0 when the margin eats it all). */
static inline uint64_t timing_valid_span(uint64_t ttl, uint64_t margin)
{
	uint64_t s = timing_shrink(ttl);
	return s > margin ? s - margin : 0;
}

/* The worst Raft election for an election timeout et. */
static inline uint64_t timing_election(uint64_t et)
{
	return (et * TIMING_ELECTION_TENTHS + 9u) / 10u;
}

#endif
