/* ha_decide.h - the controller's pure decision function.
 *
 * ha_decide(view) -> action: which node may take the primary lease next.
 * No I/O, no clock, no allocation: same view, same action. The runtime that
 * builds the view and carries the action out is ha_ctl.h.
 */
#ifndef PGW_HA_DECIDE_H
#define PGW_HA_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ha/ha_member.h"

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

/* A member's application_name (its slot is "pgw_" + it): cfg_pg_name(). */
void ha_slot_name(const char *name, char *out, size_t len);

/* The decision for view v. Pure: same input, same output. */
void ha_decide(const struct ha_view *v, struct ha_action *out);

#endif
