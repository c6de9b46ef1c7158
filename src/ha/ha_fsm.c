/* ha_fsm.c - the agent's life cycle: states, transitions, flows.
 *
 * States (enum ha_fsm_state; the agent's own view of its PostgreSQL):
 *   init      the agent started; nothing looked at yet
 *   no_data   no data directory
 *   stopped   data, PostgreSQL not running
 *   primary   PostgreSQL runs writable
 *   replica   PostgreSQL runs in recovery
 *   refused   terminal until the daemon restarts: the data belongs to
 *             another cluster, a bootstrap failed half-way, or pg_rewind
 *             failed with remove_data_directory_on_rewind_failure off;
 *             nothing is started (its only way out is shutdown)
 *   shutdown  terminal: the daemon stops
 *
 * Goal. Each tick the agent reads the store and derives where this node
 * must go (ha_agent.c, converge): it leads (the leader key names it and
 * it holds the lease) -> primary; another node leads -> replica; a reinit
 * was asked for -> no_data; a switchover request while it leads ->
 * stopped (handed over); the daemon stops -> shutdown. The lease itself
 * (acquire, renew, adopt after a restart, self-fencing at the deadline,
 * giving it up when PostgreSQL does not come back) is not a state of this
 * machine: it decides the goal, and its effect on PostgreSQL (a fenced
 * postmaster exits) is an observed row below.
 *
 * Transitions. A row {from, to, flow, entry, why}: to go from `from`
 * towards `to` the agent runs `flow` starting at step `entry`. One flow
 * runs at a time; when it ends the state moves to the row's goal, or to
 * the state its last step names (another row of the same flow), or stays
 * (a failure: the next tick decides again from what it sees). Rows with
 * flow "-" are observations: PostgreSQL did it (exited, say) or was found
 * so; nothing is run, the agent records what it sees.
 *
 * Flows (each step starts one operation; its completion picks the next
 * step from the step's ok/err columns below; a step whose operation
 * cannot even be started ends the flow failed, or - for the entry step -
 * the flow does not start):
 *   bootstrap      initdb -> hba_start -> roles -> post_bootstrap -> sysid
 *                  -> init_key -> bootstrapped; any failure: abort
 *                  (SIGQUIT, lease revoked) -> refused
 *   start_primary  start as the primary
 *   promote        promote -> promoted
 *   clone          basebackup -> cloned_start
 *   start_replica  start as the leader's replica
 *   repoint        rewrite primary_conninfo and reload (immediate)
 *   rejoin         rejoin_stop -> recover -> recover_stop -> rewind ->
 *                  rewind_start; rewind failed: rewind_failed (data
 *                  untouched: fail) -> wipe_or_refuse (refused) ->
 *                  rejoin_wipe -> rejoin_wiped -> no_data
 *   switchover     sw_stop -> sw_controldata -> sw_wait_target ->
 *                  sw_hand_over -> sw_handed; any failure: sw_abort
 *                  (still leading: started as primary again next tick);
 *                  a handover put without an answer may still commit:
 *                  sw_unknown -> sw_settle (our name put back at the
 *                  revision compared with: committed -> sw_abort; the key
 *                  moved -> sw_moved: to the target -> sw_handed, else
 *                  sw_lost -> stopped, not leading)
 *   reinit         reinit_stop -> reinit_wipe -> reinit_wiped
 *   refuse         refuse (immediate)
 *   shutdown       sd_stop -> sd_release -> sd_revoke_member -> sd_close
 *                  (every step goes on when one fails)
 */
#include "ha/ha_fsm.h"

#include <string.h>

#define S(x) HA_FSM_##x
#define F(x) HA_FLOW_##x
#define P(x) HA_STEP_##x

/* The whole life cycle; `pgwarden fsm` prints it. */
const struct ha_fsm_row ha_fsm_rows[] = {
	/* from      to           flow             entry          why */
	{ S(NO_DATA), S(PRIMARY), F(BOOTSTRAP), P(INITDB),
	  "named to bootstrap a new cluster: initdb, roles, initialize key" },
	{ S(NO_DATA), S(REFUSED), F(BOOTSTRAP), P(INITDB),
	  "a bootstrap step failed: PostgreSQL stopped, lease given back" },
	{ S(PRIMARY), S(PRIMARY), F(BOOTSTRAP), P(SYSID),
	  "writable data leads a new cluster: record its system id" },
	{ S(PRIMARY), S(REFUSED), F(BOOTSTRAP), P(SYSID),
	  "recording the new cluster failed" },
	{ S(STOPPED), S(PRIMARY), F(START_PRIMARY), P(START_PRIMARY),
	  "this node leads: start as the primary (also after a crash)" },
	{ S(REPLICA), S(PRIMARY), F(PROMOTE), P(PROMOTE),
	  "this node leads (failover, handover, new cluster): promote" },
	{ S(NO_DATA), S(REPLICA), F(CLONE), P(BASEBACKUP),
	  "another node leads, no data here: pg_basebackup from it" },
	{ S(STOPPED), S(REPLICA), F(START_REPLICA), P(START_REPLICA),
	  "another node leads: start as its replica" },
	{ S(STOPPED), S(REPLICA), F(REJOIN), P(REJOIN_STOP),
	  "another node leads, this data was a primary: pg_rewind first" },
	{ S(PRIMARY), S(REPLICA), F(REJOIN), P(REJOIN_STOP),
	  "writable, but another node leads: stop, pg_rewind, start" },
	{ S(STOPPED), S(NO_DATA), F(REJOIN), P(REJOIN_STOP),
	  "pg_rewind failed: data wiped to clone again" },
	{ S(PRIMARY), S(NO_DATA), F(REJOIN), P(REJOIN_STOP),
	  "pg_rewind failed: data wiped to clone again" },
	{ S(STOPPED), S(REFUSED), F(REJOIN), P(REJOIN_STOP),
	  "pg_rewind failed, remove_data_directory_on_rewind_failure off" },
	{ S(PRIMARY), S(REFUSED), F(REJOIN), P(REJOIN_STOP),
	  "pg_rewind failed, remove_data_directory_on_rewind_failure off" },
	{ S(REPLICA), S(REPLICA), F(REPOINT), P(REPOINT),
	  "replica of another node: re-point primary_conninfo, reload" },
	{ S(PRIMARY), S(STOPPED), F(SWITCHOVER), P(SW_STOP),
	  "switchover request: stop cleanly, hand the leader key over" },
	{ S(ANY), S(NO_DATA), F(REINIT), P(REINIT_STOP),
	  "reinit asked for (not leading): stop, wipe; next tick clones" },
	{ S(ANY), S(REFUSED), F(REFUSE), P(REFUSE),
	  "the data has another system id than the cluster: never start" },
	{ S(ANY), S(SHUTDOWN), F(SHUTDOWN), P(SD_STOP),
	  "the daemon stops: PostgreSQL stopped, leases revoked" },
	{ S(REFUSED), S(SHUTDOWN), F(SHUTDOWN), P(SD_STOP),
	  "the daemon stops" },
	/* observed: nothing run, PostgreSQL was seen so */
	{ S(INIT), S(STOPPED), F(NONE), P(NONE),
	  "first look: data, PostgreSQL not running" },
	{ S(INIT), S(PRIMARY), F(NONE), P(NONE),
	  "first look: a writable PostgreSQL adopted at start" },
	{ S(INIT), S(REPLICA), F(NONE), P(NONE),
	  "first look: a PostgreSQL in recovery adopted at start" },
	{ S(ANY), S(NO_DATA), F(NONE), P(NONE),
	  "no data directory (first look, removed, half-done wipe)" },
	{ S(PRIMARY), S(STOPPED), F(NONE), P(NONE),
	  "postmaster exited: crash, fence (SIGQUIT), or stopped" },
	{ S(REPLICA), S(STOPPED), F(NONE), P(NONE),
	  "postmaster exited: crash, or stopped" },
	{ S(NO_DATA), S(STOPPED), F(NONE), P(NONE),
	  "data left by a clone or bootstrap that failed half-way" },
	{ S(NO_DATA), S(PRIMARY), F(NONE), P(NONE),
	  "a bootstrap that failed half-way left PostgreSQL running" },
	{ S(NO_DATA), S(REPLICA), F(NONE), P(NONE),
	  "a clone whose start reported failure came up after all" },
	{ S(STOPPED), S(PRIMARY), F(NONE), P(NONE),
	  "running writable although its flow failed late" },
	{ S(STOPPED), S(REPLICA), F(NONE), P(NONE),
	  "running in recovery although its flow failed late" },
	{ S(REPLICA), S(PRIMARY), F(NONE), P(NONE),
	  "writable: a promote reported failed but completed" },
	{ S(PRIMARY), S(REPLICA), F(NONE), P(NONE),
	  "in recovery: started as a standby outside pgwarden" },
};
const size_t ha_fsm_nrows = sizeof ha_fsm_rows / sizeof ha_fsm_rows[0];

#define GO(x) { HA_NEXT_STEP, P(x), S(INIT) }
#define GOAL { HA_NEXT_GOAL, P(NONE), S(INIT) }
#define AT(x) { HA_NEXT_AT, P(NONE), S(x) }
#define FAIL { HA_NEXT_FAIL, P(NONE), S(INIT) }
#define FAIL_AT(x) { HA_NEXT_FAIL_AT, P(NONE), S(x) }

static const struct ha_step_def bootstrap_steps[] = {
	{ P(INITDB), "initdb", "initdb with the [bootstrap] options",
	  GO(HBA_START), GO(BOOTSTRAP_ABORT) },
	{ P(HBA_START), "hba_start", "write pg_hba.conf, start as primary",
	  GO(ROLES), GO(BOOTSTRAP_ABORT) },
	{ P(ROLES), "roles", "create users and passwords (one DO block)",
	  GO(POST_BOOTSTRAP), GO(BOOTSTRAP_ABORT) },
	{ P(POST_BOOTSTRAP), "post_bootstrap",
	  "run post_bootstrap (skipped when unset)", GO(SYSID),
	  GO(BOOTSTRAP_ABORT) },
	{ P(SYSID), "sysid", "pg_controldata: the system identifier",
	  GO(INIT_KEY), GO(BOOTSTRAP_ABORT) },
	{ P(INIT_KEY), "init_key",
	  "create-only put of the initialize key (system id)",
	  GO(BOOTSTRAPPED), GO(BOOTSTRAP_ABORT) },
	{ P(BOOTSTRAPPED), "bootstrapped", "the cluster exists", GOAL, FAIL },
	{ P(BOOTSTRAP_ABORT), "bootstrap_abort",
	  "SIGQUIT PostgreSQL, revoke the primary lease", FAIL_AT(REFUSED),
	  FAIL_AT(REFUSED) },
};

static const struct ha_step_def start_primary_steps[] = {
	{ P(START_PRIMARY), "start_primary",
	  "start with the primary configuration", GOAL, FAIL },
};

static const struct ha_step_def promote_steps[] = {
	{ P(PROMOTE), "promote",
	  "write the synchronous set, pg_ctl promote, wait writable",
	  GO(PROMOTED), FAIL },
	{ P(PROMOTED), "promoted", "history entry due (when leading)", GOAL,
	  FAIL },
};

static const struct ha_step_def clone_steps[] = {
	{ P(BASEBACKUP), "basebackup", "pg_basebackup from the leader",
	  GO(CLONED_START), FAIL },
	{ P(CLONED_START), "cloned_start", "start as the leader's replica",
	  GOAL, FAIL },
};

static const struct ha_step_def start_replica_steps[] = {
	{ P(START_REPLICA), "start_replica",
	  "start with standby.signal and primary_conninfo", GOAL, FAIL },
};

static const struct ha_step_def repoint_steps[] = {
	{ P(REPOINT), "repoint",
	  "rewrite primary_conninfo, reload (no restart)", GOAL, FAIL },
};

static const struct ha_step_def rejoin_steps[] = {
	{ P(REJOIN_STOP), "rejoin_stop", "stop (fast) if running",
	  GO(RECOVER), FAIL },
	{ P(RECOVER), "recover",
	  "crashed primary: crash recovery as a standby of no one",
	  GO(RECOVER_STOP), FAIL },
	{ P(RECOVER_STOP), "recover_stop",
	  "stop it again: pg_rewind needs a clean shutdown", GO(REWIND),
	  FAIL },
	{ P(REWIND), "rewind", "pg_rewind from the leader (superuser)",
	  GO(REWIND_START), GO(REWIND_FAILED) },
	{ P(REWIND_START), "rewind_start", "start as the leader's replica",
	  GOAL, FAIL },
	{ P(REWIND_FAILED), "rewind_failed",
	  "no rewind marker: data untouched, try again later",
	  GO(WIPE_OR_REFUSE), FAIL },
	{ P(WIPE_OR_REFUSE), "wipe_or_refuse",
	  "remove_data_directory_on_rewind_failure off: refuse",
	  GO(REJOIN_WIPE), FAIL_AT(REFUSED) },
	{ P(REJOIN_WIPE), "rejoin_wipe", "wipe the data directory",
	  GO(REJOIN_WIPED), FAIL },
	{ P(REJOIN_WIPED), "rejoin_wiped", "no data: the next tick clones",
	  AT(NO_DATA), FAIL },
};

static const struct ha_step_def switchover_steps[] = {
	{ P(SW_STOP), "sw_stop", "stop cleanly: the checkpoint is streamed",
	  GO(SW_CONTROLDATA), GO(SW_ABORT) },
	{ P(SW_CONTROLDATA), "sw_controldata",
	  "pg_controldata: shut down, checkpoint = final LSN",
	  GO(SW_WAIT_TARGET), GO(SW_ABORT) },
	{ P(SW_WAIT_TARGET), "sw_wait_target",
	  "target received past the final LSN (20 ms polls, 5 s)",
	  GO(SW_HAND_OVER), GO(SW_ABORT) },
	{ P(SW_HAND_OVER), "sw_hand_over",
	  "CAS the leader key, with our lease, to the target",
	  GO(SW_HANDED), GO(SW_UNKNOWN) },
	{ P(SW_UNKNOWN), "sw_unknown",
	  "no answer: it may still commit; refused: it did not",
	  GO(SW_SETTLE), GO(SW_ABORT) },
	{ P(SW_SETTLE), "sw_settle",
	  "CAS our name back at that revision (asked until answered)",
	  GO(SW_ABORT), GO(SW_MOVED) },
	{ P(SW_MOVED), "sw_moved",
	  "the key moved: to the target, handed; elsewhere, lost",
	  GO(SW_HANDED), GO(SW_LOST) },
	{ P(SW_LOST), "sw_lost",
	  "not leading; stays stopped, rejoins by the usual path",
	  FAIL_AT(STOPPED), FAIL_AT(STOPPED) },
	{ P(SW_HANDED), "sw_handed",
	  "not leading: watchdog closed, request deleted", GOAL, FAIL },
	{ P(SW_ABORT), "sw_abort",
	  "drop the request; still leading: restart as primary", FAIL,
	  FAIL },
};

static const struct ha_step_def reinit_steps[] = {
	{ P(REINIT_STOP), "reinit_stop", "stop (fast) if running",
	  GO(REINIT_WIPE), FAIL },
	{ P(REINIT_WIPE), "reinit_wipe", "wipe the data directory",
	  GO(REINIT_WIPED), FAIL },
	{ P(REINIT_WIPED), "reinit_wiped",
	  "forget data and system id: the next tick clones", GOAL, FAIL },
};

static const struct ha_step_def refuse_steps[] = {
	{ P(REFUSE), "refuse", "report refused (cluster ID mismatch)", GOAL,
	  FAIL },
};

static const struct ha_step_def shutdown_steps[] = {
	{ P(SD_STOP), "sd_stop", "stop PostgreSQL (fast; busy: SIGINT)",
	  GO(SD_RELEASE), GO(SD_RELEASE) },
	{ P(SD_RELEASE), "sd_release",
	  "on_stop; revoke the primary lease (now another may lead)",
	  GO(SD_REVOKE_MEMBER), GO(SD_REVOKE_MEMBER) },
	{ P(SD_REVOKE_MEMBER), "sd_revoke_member",
	  "watchdog magic close; revoke the member lease", GO(SD_CLOSE),
	  GO(SD_CLOSE) },
	{ P(SD_CLOSE), "sd_close", "close timers and fencer, then done",
	  GOAL, GOAL },
};

#define FLOW(id, name, imm, steps) \
	[F(id)] = { F(id), name, imm, steps,                               \
		    sizeof steps / sizeof steps[0] }

static const struct ha_flow_def flows[HA_FLOW__N] = {
	[F(NONE)] = { F(NONE), "-", true, NULL, 0 },
	FLOW(BOOTSTRAP, "bootstrap", false, bootstrap_steps),
	FLOW(START_PRIMARY, "start_primary", false, start_primary_steps),
	FLOW(PROMOTE, "promote", false, promote_steps),
	FLOW(CLONE, "clone", false, clone_steps),
	FLOW(START_REPLICA, "start_replica", false, start_replica_steps),
	FLOW(REPOINT, "repoint", true, repoint_steps),
	FLOW(REJOIN, "rejoin", false, rejoin_steps),
	FLOW(SWITCHOVER, "switchover", false, switchover_steps),
	FLOW(REINIT, "reinit", false, reinit_steps),
	FLOW(REFUSE, "refuse", true, refuse_steps),
	FLOW(SHUTDOWN, "shutdown", false, shutdown_steps),
};

const char *ha_fsm_state_name(enum ha_fsm_state s)
{
	static const char *const names[] = { "init",	"no_data",
					     "stopped", "primary",
					     "replica", "refused",
					     "shutdown", "*" };
	return (unsigned)s <= HA_FSM__N ? names[s] : "?";
}

const char *ha_flow_name(enum ha_flow f)
{
	return (unsigned)f < HA_FLOW__N ? flows[f].name : "?";
}

const struct ha_flow_def *ha_flow_get(enum ha_flow f)
{
	return (unsigned)f < HA_FLOW__N ? &flows[f] : NULL;
}

const struct ha_step_def *ha_flow_step(enum ha_flow f, enum ha_step s)
{
	const struct ha_flow_def *d = ha_flow_get(f);
	for (size_t i = 0; d && i < d->nsteps; i++)
		if (d->steps[i].id == s)
			return &d->steps[i];
	return NULL;
}

const char *ha_step_name(enum ha_step s)
{
	for (int f = 0; f < HA_FLOW__N; f++) {
		const struct ha_step_def *d = ha_flow_step((enum ha_flow)f, s);
		if (d)
			return d->name;
	}
	return "-";
}

bool ha_fsm_observable(enum ha_fsm_state s)
{
	return s == S(NO_DATA) || s == S(STOPPED) || s == S(PRIMARY) ||
	       s == S(REPLICA);
}

/* ANY stands for every state but the terminal ones (refused and shutdown
 * have their own rows). */
bool ha_fsm_row_from(const struct ha_fsm_row *r, enum ha_fsm_state from)
{
	if (r->from == S(ANY))
		return from != S(REFUSED) && from != S(SHUTDOWN) &&
		       from != S(ANY);
	return r->from == from;
}

bool ha_fsm_row_to(const struct ha_fsm_row *r, enum ha_fsm_state to)
{
	return r->to == to;
}

const struct ha_fsm_row *ha_fsm_find(enum ha_fsm_state from,
				     enum ha_fsm_state to, enum ha_flow f)
{
	/* a specific row wins over a wildcard one */
	const struct ha_fsm_row *any = NULL;
	for (size_t i = 0; i < ha_fsm_nrows; i++) {
		const struct ha_fsm_row *r = &ha_fsm_rows[i];
		if (r->flow != f || !ha_fsm_row_to(r, to) ||
		    !ha_fsm_row_from(r, from))
			continue;
		if (r->from == from)
			return r;
		if (!any)
			any = r;
	}
	return any;
}

const struct ha_fsm_row *ha_fsm_observed(enum ha_fsm_state from,
					 enum ha_fsm_state to)
{
	return ha_fsm_find(from, to, F(NONE));
}

/* ------------------------------------------------------------------ */
/* Printing                                                             */
/* ------------------------------------------------------------------ */

static void next_text(char *buf, size_t len, const struct ha_next *n)
{
	switch (n->kind) {
	case HA_NEXT_STEP:
		snprintf(buf, len, "%s", ha_step_name(n->step));
		break;
	case HA_NEXT_GOAL:
		snprintf(buf, len, "=> goal");
		break;
	case HA_NEXT_AT:
		snprintf(buf, len, "=> %s", ha_fsm_state_name(n->state));
		break;
	case HA_NEXT_FAIL:
		snprintf(buf, len, "=> failed");
		break;
	case HA_NEXT_FAIL_AT:
		snprintf(buf, len, "=> failed, %s",
			 ha_fsm_state_name(n->state));
		break;
	}
}

static void print_text(FILE *f)
{
	fprintf(f, "pgwarden agent life cycle (src/ha/ha_fsm.c)\n\n");
	fprintf(f, "%-9s %-9s %-14s %-15s %s\n", "FROM", "TO", "FLOW",
		"ENTRY", "WHY");
	for (size_t i = 0; i < ha_fsm_nrows; i++) {
		const struct ha_fsm_row *r = &ha_fsm_rows[i];
		fprintf(f, "%-9s %-9s %-14s %-15s %s\n",
			ha_fsm_state_name(r->from), ha_fsm_state_name(r->to),
			ha_flow_name(r->flow),
			r->flow == F(NONE) ? "(observed)"
					   : ha_step_name(r->entry),
			r->why);
	}
	fprintf(f, "\n* = any state but refused and shutdown; goal = the "
		   "row's TO; failed = the state stays FROM\n");
	for (int k = 1; k < HA_FLOW__N; k++) {
		const struct ha_flow_def *d = &flows[k];
		fprintf(f, "\nflow %s%s\n", d->name,
			d->immediate ? " (immediate)" : "");
		fprintf(f, "  %-17s %-19s %-19s %s\n", "STEP", "ON SUCCESS",
			"ON FAILURE", "DOES");
		for (size_t i = 0; i < d->nsteps; i++) {
			char ok[64], err[64];
			next_text(ok, sizeof ok, &d->steps[i].ok);
			next_text(err, sizeof err, &d->steps[i].err);
			fprintf(f, "  %-17s %-19s %-19s %s\n",
				d->steps[i].name, ok, err, d->steps[i].does);
		}
	}
}

static void print_dot(FILE *f)
{
	fprintf(f, "digraph pgwarden_agent {\n"
		   "\trankdir=LR;\n"
		   "\tnode [shape=box, style=rounded];\n");
	for (int s = 0; s < HA_FSM__N; s++)
		fprintf(f, "\t%s%s;\n", ha_fsm_state_name((enum ha_fsm_state)s),
			s == S(REFUSED) || s == S(SHUTDOWN)
				? " [peripheries=2]"
				: "");
	fprintf(f, "\tany [label=\"* (any but refused, shutdown)\", "
		   "shape=plaintext];\n");
	for (size_t i = 0; i < ha_fsm_nrows; i++) {
		const struct ha_fsm_row *r = &ha_fsm_rows[i];
		bool obs = r->flow == F(NONE);
		fprintf(f, "\t%s -> %s [label=\"%s\"%s];\n",
			r->from == S(ANY) ? "any" : ha_fsm_state_name(r->from),
			ha_fsm_state_name(r->to),
			obs ? "observed" : ha_flow_name(r->flow),
			obs ? ", style=dashed" : "");
	}
	fprintf(f, "}\n");
}

void ha_fsm_print(FILE *f, bool dot)
{
	if (dot)
		print_dot(f);
	else
		print_text(f);
}
