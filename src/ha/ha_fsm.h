/* ha_fsm.h - the agent's life cycle as data: its states, the transition
 * table and each flow's steps (ha_fsm.c), printed by `pgwarden fsm`.
 *
 * Pure data and lookups: nothing here runs PostgreSQL or reads the store.
 * The agent (ha_agent.c) binds every step to the function that performs
 * it, decides each tick which goal to pursue, and changes its state only
 * through ha_fsm_find()/ha_fsm_observed() rows (agent_move()). Any thread;
 * the table is constant.
 */
#ifndef PGW_HA_FSM_H
#define PGW_HA_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* What the node's PostgreSQL is, as far as the agent's life cycle goes
 * (the member record's role/state are reported separately). */
enum ha_fsm_state {
	HA_FSM_INIT = 0, /* the agent started; nothing looked at yet */
	HA_FSM_NO_DATA,  /* no data directory (no PG_VERSION) */
	HA_FSM_STOPPED,  /* data, PostgreSQL not running */
	HA_FSM_PRIMARY,  /* PostgreSQL runs writable */
	HA_FSM_REPLICA,  /* PostgreSQL runs in recovery */
	HA_FSM_REFUSED,  /* terminal: data unusable (until a restart) */
	HA_FSM_SHUTDOWN, /* terminal: the daemon stops */
	HA_FSM__N,
	HA_FSM_ANY = HA_FSM__N, /* in a row: from any state / to any
				   observable state */
};

/* A flow is a named sequence of steps; HA_FLOW_NONE marks a row that
 * records an observation (nothing is run to make it happen). */
enum ha_flow {
	HA_FLOW_NONE = 0,
	HA_FLOW_BOOTSTRAP,
	HA_FLOW_START_PRIMARY,
	HA_FLOW_PROMOTE,
	HA_FLOW_CLONE,
	HA_FLOW_START_REPLICA,
	HA_FLOW_REPOINT,
	HA_FLOW_REJOIN,
	HA_FLOW_SWITCHOVER,
	HA_FLOW_REINIT,
	HA_FLOW_REFUSE,
	HA_FLOW_SHUTDOWN,
	HA_FLOW__N,
};

/* Every step of every flow; ha_agent.c has one function for each. */
enum ha_step {
	HA_STEP_NONE = 0,
	/* bootstrap */
	HA_STEP_INITDB,
	HA_STEP_HBA_START,
	HA_STEP_ROLES,
	HA_STEP_POST_BOOTSTRAP,
	HA_STEP_SYSID,
	HA_STEP_INIT_KEY,
	HA_STEP_BOOTSTRAPPED,
	HA_STEP_BOOTSTRAP_ABORT,
	/* start_primary, start_replica */
	HA_STEP_START_PRIMARY,
	HA_STEP_START_REPLICA,
	/* promote */
	HA_STEP_PROMOTE,
	HA_STEP_PROMOTED,
	/* clone */
	HA_STEP_BASEBACKUP,
	HA_STEP_CLONED_START,
	/* repoint */
	HA_STEP_REPOINT,
	/* rejoin */
	HA_STEP_REJOIN_STOP,
	HA_STEP_RECOVER,
	HA_STEP_RECOVER_STOP,
	HA_STEP_REWIND,
	HA_STEP_REWIND_START,
	HA_STEP_REWIND_FAILED,
	HA_STEP_WIPE_OR_REFUSE,
	HA_STEP_REJOIN_WIPE,
	HA_STEP_REJOIN_WIPED,
	/* switchover */
	HA_STEP_SW_STOP,
	HA_STEP_SW_CONTROLDATA,
	HA_STEP_SW_WAIT_TARGET,
	HA_STEP_SW_HAND_OVER,
	HA_STEP_SW_UNKNOWN,
	HA_STEP_SW_SETTLE,
	HA_STEP_SW_MOVED,
	HA_STEP_SW_LOST,
	HA_STEP_SW_HANDED,
	HA_STEP_SW_ABORT,
	/* reinit */
	HA_STEP_REINIT_STOP,
	HA_STEP_REINIT_WIPE,
	HA_STEP_REINIT_WIPED,
	/* refuse */
	HA_STEP_REFUSE,
	/* shutdown */
	HA_STEP_SD_STOP,
	HA_STEP_SD_RELEASE,
	HA_STEP_SD_REVOKE_MEMBER,
	HA_STEP_SD_CLOSE,
	HA_STEP__N,
};

/* Where a step goes next: a step, or the end of the flow. */
enum ha_next_kind {
	HA_NEXT_STEP = 0, /* .step runs next */
	HA_NEXT_GOAL,     /* done: the row's goal state */
	HA_NEXT_AT,       /* done, in .state (another row of the same flow) */
	HA_NEXT_FAIL,     /* failed: the state stays the row's from; the next
			     tick decides again */
	HA_NEXT_FAIL_AT,  /* failed, in .state (another row of the flow) */
};
struct ha_next {
	enum ha_next_kind kind;
	enum ha_step step;       /* HA_NEXT_STEP */
	enum ha_fsm_state state; /* HA_NEXT_AT */
};

struct ha_step_def {
	enum ha_step id;
	const char *name;
	const char *does;   /* one line */
	struct ha_next ok;  /* after success */
	struct ha_next err; /* after its operation failed */
};

struct ha_flow_def {
	enum ha_flow id;
	const char *name;
	bool immediate; /* runs to its end within the call (no operation in
			   flight, no flow state) */
	const struct ha_step_def *steps; /* in order of the happy path */
	size_t nsteps;
};

struct ha_fsm_row {
	enum ha_fsm_state from; /* HA_FSM_ANY: any state */
	enum ha_fsm_state to;
	enum ha_flow flow;      /* HA_FLOW_NONE: observed */
	enum ha_step entry;     /* the flow's first step from this row */
	const char *why;        /* one line */
};

extern const struct ha_fsm_row ha_fsm_rows[];
extern const size_t ha_fsm_nrows;

const char *ha_fsm_state_name(enum ha_fsm_state s);
const char *ha_flow_name(enum ha_flow f);
const char *ha_step_name(enum ha_step s);
/* The flow's definition (f < HA_FLOW__N), its step s (NULL: not in f). */
const struct ha_flow_def *ha_flow_get(enum ha_flow f);
const struct ha_step_def *ha_flow_step(enum ha_flow f, enum ha_step s);

/* NO_DATA, STOPPED, PRIMARY, REPLICA: what observation can show. */
bool ha_fsm_observable(enum ha_fsm_state s);
/* Does row r start at from / end at to (wildcards expanded)? */
bool ha_fsm_row_from(const struct ha_fsm_row *r, enum ha_fsm_state from);
bool ha_fsm_row_to(const struct ha_fsm_row *r, enum ha_fsm_state to);
/* The row that runs flow f from `from` towards `to`, or NULL. */
const struct ha_fsm_row *ha_fsm_find(enum ha_fsm_state from,
				     enum ha_fsm_state to, enum ha_flow f);
/* The observed row for from -> to, or NULL. */
const struct ha_fsm_row *ha_fsm_observed(enum ha_fsm_state from,
					 enum ha_fsm_state to);

/* The table and the flows as text (dot false) or a Graphviz digraph. */
void ha_fsm_print(FILE *f, bool dot);

#endif
