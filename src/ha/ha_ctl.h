/* ha_ctl.h - the controller: decisions about who leads PostgreSQL.
 *
 * It runs on the Raft leader only (it moves with leadership), reads the
 * store's current state and writes one decision key,
 * /service/<cluster>/candidate = {"name":..., "reason":...}: which node
 * may take the primary lease next (to bootstrap the cluster, or after the
 * lease of the last primary expired). The candidate's agent then takes
 * the lease itself with a create-only write of the leader key, so a
 * decision can never make two primaries. The decision logic is the pure
 * function ha_decide(), tested exhaustively on its own.
 */
#ifndef PGW_HA_CTL_H
#define PGW_HA_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ha/ha_decide.h"
#include "ha/ha_member.h"
#include "api/http_client.h"
#include "api/kv.h"
#include "rs.h"

struct ha_ctl;

struct ha_ctl_options {
	const char *cluster;      /* borrowed for the controller's life */
	unsigned interval_ms;     /* how often to look; default 100 */
	unsigned stale_ms;        /* a member whose record did not change
				     for this long is not a candidate;
				     default 2500 */
	uint64_t maximum_lag;
	unsigned candidate_timeout_ms;
	/* Before naming a failover candidate, ask every live replica for
	 * its WAL position now (GET <api_url>/internal/lsn with the token,
	 * lsn_timeout_ms each, default 300): its member record may be up to
	 * a report interval old. NULL client: use the records only. */
	struct http_client *client;
	const char *token;        /* borrowed for the controller's life */
	unsigned lsn_timeout_ms;
	/* this node's name; with move_raft_leader, while this node is both
	 * the Raft leader and the PostgreSQL primary, hand Raft leadership
	 * to a streaming replica's node (HA-PROTOCOL.md "Where the Raft
	 * leader sits") */
	const char *self;         /* borrowed for the controller's life */
	bool move_raft_leader;
};

int ha_ctl_new(uv_loop_t *loop, struct rs_store *store, struct kv *kv,
	       const struct ha_ctl_options *o, struct ha_ctl **out);
/* Look now (a store change happened); cheap when not the ready leader. */
void ha_ctl_poke(struct ha_ctl *c);
void ha_ctl_close(struct ha_ctl *c, void (*cb)(void *arg), void *arg);
void ha_ctl_free(struct ha_ctl *c);

#endif
