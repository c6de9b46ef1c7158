/* ha_agent.h - the agent: runs this node's PostgreSQL as the store says.
 *
 * Every node with a [postgresql] section runs one. Each loop_wait it
 * probes PostgreSQL, reads the store (local copy), and converges:
 *   - no cluster yet: wait, or bootstrap when the controller names this
 *     node (initdb, users, pg_hba, post_bootstrap, then the initialize key
 *     with the system identifier);
 *   - another node leads: clone from it if there is no data, else run as
 *     its streaming replica (re-pointing primary_conninfo; pg_rewind when
 *     this node was a primary of a diverged timeline);
 *   - this node leads: keep the primary lease renewed and PostgreSQL
 *     writable; at the lease's self-fencing deadline stop PostgreSQL at
 *     once, whoever is to blame.
 * It reports a member record (ha_member.h) attached to a lease of its own,
 * so a dead node's record disappears with it.
 */
#ifndef PGW_HA_AGENT_H
#define PGW_HA_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "config/cfg.h"
#include "ha/ha_member.h"
#include "api/http_client.h"
#include "api/kv.h"
#include "rs.h"

struct ha_agent;

/* What the HTTP probes need, answered from memory. */
struct ha_status {
	struct ha_member self;   /* this node's current member record */
	bool holds_lease;        /* leader key is ours and the lease valid */
	int64_t lease_left_ms;   /* until the self-fencing deadline; -1 */
	bool pg_running;         /* postmaster up and the last probe ok */
	bool writable;           /* running, not in recovery */
	bool streaming;          /* replica with a live WAL receiver */
	char leader[HA_NAME_MAX + 1]; /* the leader key's value, "" none */
	bool paused;
};

/* cfg is borrowed for the agent's lifetime. */
int ha_agent_new(uv_loop_t *loop, const struct cfg *cfg,
		 struct rs_store *store, struct kv *kv, struct ha_agent **out);
/* Adopt a running PostgreSQL or leave it stopped, start the loop. */
int ha_agent_start(struct ha_agent *a, char *errmsg, size_t errlen);
void ha_agent_status(struct ha_agent *a, struct ha_status *out);
/* Clean stop: PostgreSQL stopped (fast), the leader lease and the member
 * lease revoked so that another node can take over at once; then cb. */
void ha_agent_shutdown(struct ha_agent *a, void (*cb)(void *arg), void *arg);
/* The store changed (a leader is known now, say): tick at once. */
void ha_agent_poke(struct ha_agent *a);

/* What a probe of PostgreSQL started after a request saw: the controller
 * asks every replica for it when the primary lease expired
 * (GET /internal/lsn), so that it promotes the one holding the most WAL
 * now, not the most at its last report. err: 0, or why not (ERR_PG: the
 * probe failed; ERR_SHUTDOWN). */
struct ha_lsn_answer {
	int err;
	bool in_recovery;
	uint32_t timeline;
	uint64_t received, replayed, current;
};
typedef void (*ha_lsn_cb)(void *arg, const struct ha_lsn_answer *ans);
/* Probe now (or right after the probe in flight) and call cb once with
 * the result. ERR_UNAVAILABLE (PostgreSQL not running, or 8 requests
 * already waiting): cb is not called. */
int ha_agent_probe_lsn(struct ha_agent *a, ha_lsn_cb cb, void *arg);

/* Re-clone this replica from the primary (stop, wipe, pg_basebackup) at
 * the next tick. ERR_CONFLICT on the primary. */
int ha_agent_reinit(struct ha_agent *a);
void ha_agent_free(struct ha_agent *a);

#endif
