/* ha_ctl.h - the controller: decisions about who leads PostgreSQL.
 *
 * It runs on the Raft leader only (it moves with leadership), reads the
 * store's current state and writes one decision key,
 * /service/<cluster>/candidate = {"name":..., "reason":...}: which node
 * may take the primary lease next (to bootstrap the cluster, or after the
 * lease of the last primary expired). The candidate's agent then takes
 * the lease itself with a create-only write of the leader key, so a
 * decision can never make two primaries. The decision logic is the pure
 * function ha_decide() (ha_decide.h), tested on its own.
 */
#ifndef PGW_HA_CTL_H
#define PGW_HA_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config/cfg.h"
#include "ha/ha_decide.h"
#include "ha/ha_member.h"
#include "api/http_client.h"
#include "api/kv.h"
#include "rs.h"

struct ha_ctl;

/* The agent writes its member record this often (src/ha/ha_agent.c,
 * REPORT_INTERVAL_MS); the controller's freshness rules build on it. */
#define HA_REPORT_INTERVAL_MS 1000u

/* The controller's time constants, all derived from the cluster's ttl and
 * loop_wait (the store's config key; this node's ini until it has one) (docs/architecture.md, "Controller timing", gives each
 * formula and why). Defaults ttl 2500, loop_wait 400, interval 100 give
 * the values in brackets. */
struct ha_ctl_timing {
	unsigned stale_ms;     /* a record unchanged this long is not a
				  member: max(ttl, 2 * report) [2500] */
	unsigned candidate_timeout_ms; /* a candidate that has not taken
					  the lease by then is replaced:
					  4 * ttl [10000] */
	unsigned lsn_timeout_ms; /* per GET /internal/lsn:
				    max(100, 3 * loop_wait / 4) [300] */
	unsigned poll_reuse_ms; /* the answers stand in for the records
				   this long: report [1000] */
	unsigned pending_ms;   /* after becoming active, wait this long
				  for the last leader to report: report +
				  loop_wait + interval [1500] */
	unsigned move_after_ms; /* move Raft leadership off the primary's
				   node this long after becoming the ready
				   leader: 5 * loop_wait [2000] */
	unsigned move_retry_ms; /* and try again at most this often:
				   2 * ttl [5000] */
	unsigned move_check_ms; /* look for a target at most this often:
				   report [1000] */
	unsigned write_timeout_ms; /* the decision write: 4 * ttl / 5
				      [2000] */
};

/* Fill t from ttl, loop_wait and the controller's interval (all ms).
 * Pure. */
void ha_ctl_timing(unsigned ttl_ms, unsigned loop_wait_ms, unsigned interval_ms,
		   struct ha_ctl_timing *t);

/* A replica's answer to GET /internal/lsn (docs/http-api.md). */
struct ha_lsn_pos {
	uint32_t timeline; /* 0: not given */
	uint64_t received, replayed;
};

/* Parse the answer body[0..len): 0 and *out, or ERR_CORRUPT with the
 * reason in err (not JSON, an LSN missing, not an integer or negative, a
 * timeline out of range, not in recovery) — such an answer is ignored
 * and the member ranked by its record. Pure. */
int ha_ctl_parse_lsn(const char *body, size_t len, struct ha_lsn_pos *out,
		     char *err, size_t errlen);

/* Merge an answer into m's record (positions only grow; a newer timeline
 * replaces). Pure. */
void ha_ctl_apply_lsn(struct ha_member *m, const struct ha_lsn_pos *p);

struct ha_ctl_options {
	const char *cluster;      /* borrowed for the controller's life */
	unsigned interval_ms;     /* how often to look; default 100 */
	/* This node's configuration (borrowed for the controller's life):
	 * its [ha] (ttl, loop_wait, maximum_lag_on_failover,
	 * move_raft_leader) is used until the store holds the cluster's
	 * (key config, src/config/cfg.h cfg_ha_*), which then wins; its
	 * election_timeout and watchdog check the stored values. */
	const struct cfg *cfg;
	/* Before naming a failover candidate, ask every live replica for
	 * its WAL position now (GET <api_url>/internal/lsn with the token):
	 * its member record may be up to a report interval old. NULL
	 * client: use the records only. */
	struct http_client *client;
	const char *token;        /* borrowed for the controller's life */
	/* this node's name; with [ha] move_raft_leader, while this node is
	 * both the Raft leader and the PostgreSQL primary, hand Raft
	 * leadership to a streaming replica's node (docs/architecture.md,
	 * "Where the Raft leader sits") */
	const char *self;         /* borrowed for the controller's life */
};

int ha_ctl_new(uv_loop_t *loop, struct rs_store *store, struct kv *kv,
	       const struct ha_ctl_options *o, struct ha_ctl **out);
/* The constants c runs with, and the [ha] they come from. */
const struct ha_ctl_timing *ha_ctl_timing_of(const struct ha_ctl *c);
const struct cfg_ha *ha_ctl_ha_of(const struct ha_ctl *c);
/* Follow the cluster's [ha] as stored (json as cfg_ha_to_json writes it):
 * 0, or ERR_INVAL with the reason logged and the settings in force kept
 * (a value this node's own election_timeout or watchdog refuse). The
 * controller calls it whenever the config key changes. */
int ha_ctl_follow_config(struct ha_ctl *c, const char *json);
/* Look now (a store change happened); cheap when not the ready leader. */
void ha_ctl_poke(struct ha_ctl *c);
void ha_ctl_close(struct ha_ctl *c, void (*cb)(void *arg), void *arg);
void ha_ctl_free(struct ha_ctl *c);

#endif
