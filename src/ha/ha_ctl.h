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

#include "ha/ha_member.h"
#include "api/http_client.h"
#include "api/kv.h"
#include "rs.h"

/* What the controller sees. */
struct ha_view {
	bool paused;             /* maintenance mode: decide nothing */
	bool initialized;        /* the initialize key exists */
	char sysid[32];          /* its value */
	bool has_leader;         /* the leader key exists */
	char leader[HA_NAME_MAX + 1];
	bool has_candidate;
	char candidate[HA_NAME_MAX + 1];
	uint64_t candidate_age_ms; /* how long the decision has stood */
	char last_leader[HA_NAME_MAX + 1]; /* who led last, "" if never */
	bool last_leader_recent; /* its record changed after the leader key
				    was seen gone: it is alive, not a
				    dead node's last word */
	bool last_leader_pending; /* its record is in the store and this
				     controller became active too recently
				     to tell whether it is alive */
	uint64_t last_primary_lsn; /* the last LSN a primary reported */
	const struct ha_member *members; /* live member records */
	size_t nmembers;
	uint64_t maximum_lag;    /* bytes */
	uint64_t candidate_timeout_ms; /* a candidate that did not take the
					  lease within this is replaced */
	/* synchronous mode: the set the last primary published; only its
	 * members may be promoted, once n-k+1 of them report */
	bool sync_active;
	char sync_standbys[16][64]; /* slot names (see ha_slot_name) */
	size_t nsync;
	unsigned sync_k;
	bool has_failover;       /* an operator's manual failover request */
	char failover_to[HA_NAME_MAX + 1];
};

enum ha_action_kind {
	HA_ACT_NONE = 0,
	HA_ACT_SET_CANDIDATE,
	HA_ACT_CLEAR_CANDIDATE,
	HA_ACT_DROP_FAILOVER,    /* the manual failover request cannot be
				    carried out: delete it (why says why) */
};

struct ha_action {
	enum ha_action_kind kind;
	char name[HA_NAME_MAX + 1]; /* SET_CANDIDATE */
	const char *reason;         /* "bootstrap", "existing_data",
				       "failover", "manual" (static) */
	char why[256];              /* human explanation, for the log */
};

/* A member's replication slot / application name: lower case, [a-z0-9_]. */
void ha_slot_name(const char *name, char *out, size_t len);

/* The decision for view v. Pure: same input, same output. */
void ha_decide(const struct ha_view *v, struct ha_action *out);

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
