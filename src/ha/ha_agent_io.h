/* ha_agent_io.h - the agent's seam to PostgreSQL control and the store.
 *
 * Every pgctl node operation and every store read or write the agent's
 * flows make goes through one of these pointers. The daemon uses
 * ha_agent_io_default (pgctl's pgc_node_* and the daemon's kv client);
 * a unit test installs a fake that records the calls and completes them
 * with success or failure (tests/unit/agent). Same signatures and rules
 * as the functions they stand for (pgc.h, kv.h, rs.h): the node, store
 * and kv pointers are the agent's, borrowed. Loop thread.
 */
#ifndef PGW_HA_AGENT_IO_H
#define PGW_HA_AGENT_IO_H

#include "api/kv.h"
#include "ha/ha_agent.h"
#include "ha/ha_fsm.h"
#include "pgc.h"
#include "rs.h"

struct ha_agent_io {
	enum pgc_pm_state (*state)(const struct pgc_node *n);
	pid_t (*pid)(const struct pgc_node *n);
	bool (*busy)(const struct pgc_node *n);
	const char *(*errmsg)(const struct pgc_node *n);
	int (*write_conf)(struct pgc_node *n, const struct pgc_conf *c);
	int (*reload)(struct pgc_node *n);
	int (*initdb)(struct pgc_node *n, const struct pgc_initdb_opts *o,
		      pgc_done_cb cb, void *arg);
	int (*start)(struct pgc_node *n, const struct pgc_start_opts *o,
		     pgc_done_cb cb, void *arg);
	int (*stop)(struct pgc_node *n, enum pgc_stop_mode mode,
		    unsigned timeout_ms, pgc_done_cb cb, void *arg);
	int (*promote)(struct pgc_node *n, unsigned timeout_ms,
		       pgc_done_cb cb, void *arg);
	int (*basebackup)(struct pgc_node *n,
			  const struct pgc_basebackup_opts *o, pgc_done_cb cb,
			  void *arg);
	int (*rewind)(struct pgc_node *n, const char *source_conninfo,
		      unsigned timeout_ms, pgc_done_cb cb, void *arg);
	int (*wipe)(struct pgc_node *n, pgc_done_cb cb, void *arg);
	int (*controldata)(struct pgc_node *n, pgc_controldata_cb cb,
			   void *arg);
	int (*probe)(struct pgc_node *n, unsigned timeout_ms,
		     pgc_probe_cb cb, void *arg);
	int (*query)(struct pgc_node *n, const char *sql, int nparams,
		     const char *const *params, unsigned timeout_ms,
		     pgc_query_cb cb, void *arg);
	/* the store: a write through the daemon's kv client, a read of the
	 * local state machine's copy (rs_fsm_range) */
	int (*submit)(struct kv *k, const struct rs_cmd *c,
		      unsigned timeout_ms, kv_cb cb, void *arg);
	int (*range)(struct rs_store *s, const char *key, size_t key_len,
		     bool prefix, size_t limit, struct rs_kv **kvs, size_t *n,
		     uint64_t *revision);
};

extern const struct ha_agent_io ha_agent_io_default;

/* ---- for tests only ---- */
/* Replace the seam (io borrowed for the agent's lifetime). Before
 * ha_agent_start, or on an agent never started. */
void ha_agent_set_io(struct ha_agent *a, const struct ha_agent_io *io);
/* The life-cycle state, and the flow running (HA_FLOW_NONE: none). */
enum ha_fsm_state ha_agent_fsm_state(const struct ha_agent *a);
enum ha_flow ha_agent_flow(const struct ha_agent *a);
enum ha_step ha_agent_step(const struct ha_agent *a);
/* Put the agent in state `from` (as if observed) and run the row
 * (from, to, f) the way converge does once it has chosen that goal,
 * with `leader` as the node it would follow (name, host, port) when
 * to is replica. 0, or ERR_NOTFOUND (no such row), or the error of an
 * entry step that could not start. */
int ha_agent_test_begin(struct ha_agent *a, enum ha_fsm_state from,
			enum ha_fsm_state to, enum ha_flow f,
			const struct ha_member *leader);
/* The same, but entering the flow at its step `at` (a later step of the
 * row's flow, as if the ones before it had succeeded). */
int ha_agent_test_begin_at(struct ha_agent *a, enum ha_fsm_state from,
			   enum ha_fsm_state to, enum ha_flow f,
			   enum ha_step at, const struct ha_member *leader);
/* Make the agent believe it holds the primary lease (id), or not. */
void ha_agent_test_set_leader(struct ha_agent *a, bool leader,
			      uint64_t lease);
/* The data was a crashed primary ("in production"): a rejoin recovers it
 * first (as converge sets it from pg_controldata). */
void ha_agent_test_set_crashed_primary(struct ha_agent *a, bool crashed);
/* One tick: probe, read the store, observe, converge, report. */
void ha_agent_test_tick(struct ha_agent *a);
/* Is a step of the flow bound to a function? (every one must be) */
bool ha_agent_step_bound(enum ha_step s);

#endif
