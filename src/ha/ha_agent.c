/* ha_agent.c - converge this node's PostgreSQL to what the store says.
 *
 * Tick (every loop_wait): probe PostgreSQL when it runs; renew the leases
 * this node holds; read the initialize, leader and candidate keys and the
 * leader's member record from the local state machine; when no flow runs,
 * pick at most one flow to start; report the member record (at most once a
 * second, or at once when role or state changed).
 *
 * Life cycle: src/ha/ha_fsm.c holds the whole of it - the states, the
 * transition table {from, to, flow, entry step, why} and every flow's
 * steps with where each goes on success and on failure (`pgwarden fsm`
 * prints it). Here: converge() picks the goal and the row, fsm_begin()
 * starts its flow, each step function (st_*) starts one pgctl or store
 * operation whose completion calls flow_next(), and agent_move() is the
 * only place the state changes (logged role=X->Y reason=...). PostgreSQL
 * control and the store are reached through ha_agent_io (the unit tests'
 * fake). A failure ends the flow, logs it, and the next tick decides
 * again from scratch, as the table says.
 *
 * Leases:
 *   member lease: granted once, kept alive with every report; the member
 *     record is put with it, so a dead node's record vanishes.
 *   primary lease: taken only by a create-only put of the leader key (the
 *     controller names the candidate). Renewed every loop_wait; each
 *     success moves the self-fencing deadline to
 *       t_send + ttl*(1-rho) - safety_margin
 *     where t_send is the time the renewal was sent. A timer at that
 *     deadline stops PostgreSQL immediately (SIGQUIT) if no newer renewal
 *     succeeded: the store expires the lease only ttl*(1+rho) after it
 *     applied the last renewal, so this node stops writing first.
 */
#include "ha/ha_agent.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "failpoint.h"
#include "ha/ha_agent_io.h"
#include "ha/ha_fencer.h"
#include "ha/ha_fsm.h"
#include "log.h"
#include "mem.h"
#include "pgc.h"
#include "timing.h"
#include "wd.h"

#define REPORT_INTERVAL_MS 1000u
#define PROBE_TIMEOUT_MS 2000u
#define LSN_WAITERS 8 /* GET /internal/lsn requests waiting for a probe */
#define STORE_TIMEOUT_MS 2000u

#ifndef PGW_VERSION
#define PGW_VERSION "0.1.0"
#endif

#define AGENT_ASSERT(c)                                                 \
	do {                                                            \
		if (!(c)) {                                             \
			log_error("ha: assertion failed: %s (%s:%d)",   \
				  #c, __FILE__, __LINE__);              \
			abort();                                        \
		}                                                       \
	} while (0)

struct ha_agent {
	uv_loop_t *loop;
	const struct cfg *cfg;
	struct rs_store *store;
	struct kv *kv;
	struct pgc_node *pg;
	char slot[64];        /* this node's replication slot: pgw_<name> */
	char appname[64];     /* its application_name: <name>, sanitized */
	char passfile[4096];  /* libpq password file for the passwords of
				 [postgresql] (never on a command line) */
	char log_path[4096];  /* PostgreSQL's log */

	/* timing (ms) */
	unsigned ttl, loop_wait, margin;

	uv_timer_t tick;
	uv_timer_t watch;         /* 100 ms: react at once when named */
	uv_timer_t fence_timer;
	int open_handles;
	bool started, closing;
	uint64_t started_ms;

	/* PostgreSQL as observed */
	bool data_present;
	bool probe_ok;            /* last probe succeeded */
	bool probe_inflight;
	struct lsn_waiter {
		ha_lsn_cb cb;
		void *arg;
		uint64_t need_seq; /* answered by the probe of this seq */
	} lsn_wait[LSN_WAITERS];
	size_t nlsn_wait;
	bool in_recovery;
	bool streaming;
	uint32_t timeline;
	uint64_t sysid;
	uint64_t wal_lsn, receive_lsn, replay_lsn;
	bool pending_restart;
	bool crashed;             /* postmaster died unasked */
	uint64_t down_since_ms;   /* leader with PostgreSQL not running since
				     (0: running) */
	bool controldata_inflight;
	bool controldata_known;
	char cd_state[40];        /* pg_controldata cluster state */
	uint64_t cd_sysid;
	char following[HA_NAME_MAX + 1]; /* whose replica we were started as */

	enum ha_role role;
	enum ha_state state;
	char detail[128];

	/* life cycle (ha_fsm.c) and the flow running */
	const struct ha_agent_io *io; /* borrowed: PostgreSQL control, store */
	enum ha_fsm_state st;     /* changed only by agent_move() */
	enum ha_flow flow;        /* HA_FLOW_NONE: none runs */
	enum ha_step step;        /* its step whose operation runs */
	const struct ha_fsm_row *row; /* the row it runs */
	int flow_err;             /* its last failure (0: none) */
	char flow_msg[256];       /* ...and what it said */
	char flow_detail[128];    /* state detail for start_primary/refuse */
	char flow_leader[HA_NAME_MAX + 1];
	char flow_conninfo[1024];
	char flow_rewind_conninfo[1024]; /* superuser: pg_rewind checkpoints
					    the source first */
	bool flow_was_crashed_primary;

	/* member lease and record */
	uint64_t member_lease;
	bool member_inflight;
	uint64_t seq;
	uint64_t last_report_ms;
	enum ha_role reported_role;
	enum ha_state reported_state;

	/* primary lease */
	bool leader;              /* we hold the leader key (as far as we know) */
	uint64_t leader_rev;      /* store revision at which we took it */
	uint64_t leader_lease;
	uint64_t valid_until_ms;  /* self-fencing deadline */
	uint64_t lease_ttl;       /* ms, the held lease's own ttl (store) */
	bool last_leader_inflight; /* a last_leader put is in flight */
	struct cfg_ha ha;         /* the cluster's [ha] in effect (store) */
	uint64_t ha_rev;          /* mod revision of the config key read */
	bool ha_known;            /* ha came from the store */
	bool ha_bad;              /* the store's config fails our checks */
	bool ha_inflight;         /* writing the config key */
	bool ha_wait_logged;
	bool renew_inflight;
	uint64_t renew_sent_ms;
	bool acquire_inflight;
	uint64_t acquire_sent_ms;
	uint64_t slots_checked_ms;
	bool slots_inflight;

	/* store view (refreshed each tick) */
	bool initialized;
	char init_sysid[32];
	bool has_leader;
	char leader_name[HA_NAME_MAX + 1];
	uint64_t leader_key_lease;
	bool has_candidate;
	char candidate[HA_NAME_MAX + 1];
	bool paused;
	struct ha_member leader_rec;
	bool leader_rec_ok;

	/* switchover (this node the primary handing over) */
	char sw_target[HA_NAME_MAX + 1];
	uint64_t sw_final_lsn;
	uint64_t sw_deadline_ms;
	uint64_t sw_key_rev;      /* mod revision of the request handled */
	bool sw_unknown;          /* the handover put's outcome is unknown */
	uint64_t sw_leader_rev;   /* mod revision of our leader key that the
				     handover put compares with */
	struct pgc_conn *sw_conn; /* to the target's PostgreSQL */
	uv_timer_t sw_timer;
	uv_timer_t fp_timer;      /* failpoint handover_commit_late */
	struct rs_cmd fp_cmd;     /* its put (key in fp_key) */
	char fp_key[256];
	bool clean_handover;      /* stopped cleanly and handed over: the next
				     start as a replica needs no pg_rewind */
	char promote_reason[32];  /* for the history entry */
	bool history_pending;
	bool reinit_requested;

	/* synchronous replication (primary side); names are slot names */
#define SYNC_MAX 16
	char sync_applied[SYNC_MAX][64]; /* in synchronous_standby_names */
	size_t nsync_applied;
	unsigned sync_applied_k;
	bool sync_applied_set;    /* ssn chosen (else none yet) */
	bool sync_written;        /* ...and written and reloaded while this
				     node is the primary */
	char sync_pub[SYNC_MAX][64];     /* published in the sync key */
	size_t nsync_pub;
	unsigned sync_pub_k;
	bool sync_pub_set;
	bool sync_inflight;
	uint64_t sync_change_lsn; /* after a shrink: wait until every new
				     standby flushed this far */
	bool sync_waiting;
	uint64_t probe_seq;       /* probes started */
	uint64_t sync_min_seq;    /* the first probe started after the last
				     synchronous_standby_names reload */
	struct {
		char name[64];
		uint64_t flush;
	} repl[SYNC_MAX];         /* pg_stat_replication of the last probe */
	size_t nrepl;

	struct wd wd;             /* the watchdog device (I3) */
	bool wd_warned;
	struct ha_fencer fencer;  /* the fencer process ([watchdog] fencer) */
	bool fencer_on;
	bool pg_node_known, pg_node_inflight; /* the pgnodes/<name> key */
	unsigned kv_pending;      /* store requests waiting for their
				     callback (agent_submit) */

	/* [callbacks]: one script at a time (see run_callback) */
	struct pgc_proc *cb_proc; /* the one running, or NULL */
	char cb_action[16];       /* ...its action */
	bool cb_for_shutdown;     /* ...started once the daemon was stopping */
	char cb_next_action[16];  /* "": none waits for cb_proc to end */
	char cb_next_role[16];
	enum ha_role cb_role;     /* the role the scripts were last told by
				     on_start or on_role_change (UNKNOWN:
				     none yet) */

	void (*shutdown_cb)(void *);
	void *shutdown_arg;
};

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static int agent_submit(struct ha_agent *a, const struct rs_cmd *c,
			unsigned timeout_ms, kv_cb cb, void *arg);
static void tick(struct ha_agent *a);
static void on_tick(uv_timer_t *t);
static void report(struct ha_agent *a, bool force);
static void agent_move(struct ha_agent *a, enum ha_fsm_state to,
		       enum ha_flow f, const char *reason);
static int fsm_begin(struct ha_agent *a, enum ha_fsm_state to,
		     enum ha_flow f);

static void set_state(struct ha_agent *a, enum ha_state st, const char *detail)
{
	if (a->state != st)
		log_info("ha[%s] state=%s->%s%s%s", a->cfg->node_name,
			 ha_state_name(a->state), ha_state_name(st),
			 detail && *detail ? " detail=" : "",
			 detail ? detail : "");
	a->state = st;
	/* cut to the field (a flow's message can be longer) */
	snprintf(a->detail, sizeof a->detail, "%.*s",
		 (int)(sizeof a->detail - 1), detail ? detail : "");
}

/* ------------------------------------------------------------------ */
/* Store reads                                                          */
/* ------------------------------------------------------------------ */

static bool read_key(struct ha_agent *a, const char *leaf, char *val,
		     size_t vlen, uint64_t *lease, uint64_t *mod_rev)
{
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, leaf);
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	bool found = false;
	if (a->io->range(a->store, key, strlen(key), false, 1,
			 &kvs, &n, &rev) == 0 &&
	    n == 1) {
		snprintf(val, vlen, "%s", kvs[0].value);
		if (lease)
			*lease = kvs[0].lease;
		if (mod_rev)
			*mod_rev = kvs[0].mod_rev;
		found = true;
	}
	rs_kvs_free(kvs, n);
	return found;
}

static bool read_member(struct ha_agent *a, const char *name,
			struct ha_member *m)
{
	char key[256];
	ha_member_key(key, sizeof key, a->cfg->cluster_name, name);
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	bool ok = false;
	if (a->io->range(a->store, key, strlen(key), false, 1,
			 &kvs, &n, &rev) == 0 &&
	    n == 1)
		ok = ha_member_decode(kvs[0].value, kvs[0].value_len, m) == 0;
	rs_kvs_free(kvs, n);
	return ok;
}

static void cluster_ha_refresh(struct ha_agent *a);

static void refresh_view(struct ha_agent *a)
{
	char buf[512];
	cluster_ha_refresh(a);
	a->initialized = read_key(a, "initialize", a->init_sysid,
				  sizeof a->init_sysid, NULL, NULL);
	a->has_leader = read_key(a, "leader", a->leader_name,
				 sizeof a->leader_name, &a->leader_key_lease,
				 NULL);
	if (!a->has_leader)
		a->leader_name[0] = '\0';
	a->paused = read_key(a, "pause", buf, sizeof buf, NULL, NULL);
	a->has_candidate = false;
	a->candidate[0] = '\0';
	if (read_key(a, "candidate", buf, sizeof buf, NULL, NULL)) {
		json_t *o = json_loads(buf, 0, NULL);
		const char *n =
			o ? json_string_value(json_object_get(o, "name")) : NULL;
		if (n) {
			a->has_candidate = true;
			snprintf(a->candidate, sizeof a->candidate, "%s", n);
		}
		json_decref(o);
	}
	a->leader_rec_ok = a->has_leader &&
			   read_member(a, a->leader_name, &a->leader_rec);
}

/* ------------------------------------------------------------------ */
/* The cluster-wide [ha]                                                */
/* ------------------------------------------------------------------ */

/* The config key holds the cluster's [ha] (src/config/cfg.h, cfg_ha_*).
 * The first node that finds it missing writes its own ini's (create-only:
 * of nodes starting together one wins), and no node takes or adopts the
 * primary lease before it has read the key: every lease holder counts by
 * the same ttl, loop_wait and safety_margin, whatever its ini says. A
 * stored config this node's own settings refuse (its election_timeout or
 * watchdog make I1/I3 fail) keeps this node from leading, loudly. */
static void on_cluster_ha_written(void *arg, int status,
				  const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->ha_inflight = false;
	int rv = status ? status : res->code;
	if (rv == 0)
		log_info("ha[%s] wrote the cluster's [ha] settings (from %s)",
			 a->cfg->node_name, a->cfg->path ? a->cfg->path : "ini");
	else if (rv != ERR_CONFLICT && !a->closing)
		log_warn("ha[%s] writing the cluster's [ha] settings failed: "
			 "%s (retried next tick)",
			 a->cfg->node_name, err_str(rv));
}

static void cluster_ha_apply(struct ha_agent *a, const struct cfg_ha *h)
{
	struct cfg_ha ini;
	char d[256];
	cfg_ha_of(a->cfg, &ini);
	cfg_ha_diff(&ini, h, d, sizeof d);
	if (d[0])
		log_warn("ha[%s] [ha] %s in %s differ from the cluster's: the "
			 "cluster's values are used (key /service/%s/config)",
			 a->cfg->node_name, d,
			 a->cfg->path ? a->cfg->path : "the ini",
			 a->cfg->cluster_name);
	cfg_ha_diff(&a->ha, h, d, sizeof d);
	if (d[0] && a->ha_known)
		log_info("ha[%s] cluster [ha] changed: %s", a->cfg->node_name,
			 d);
	bool wait_changed = h->loop_wait_ms != a->loop_wait;
	a->ha = *h;
	a->ttl = h->ttl_ms;
	a->loop_wait = h->loop_wait_ms;
	a->margin = h->safety_margin_ms;
	if (wait_changed && uv_is_active((uv_handle_t *)&a->tick))
		uv_timer_set_repeat(&a->tick, a->loop_wait);
	a->ha_known = true;
	a->ha_bad = false;
}

static void cluster_ha_refresh(struct ha_agent *a)
{
	char key[256], err[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, "config");
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	if (a->io->range(a->store, key, strlen(key), false, 1, &kvs, &n,
			 &rev) != 0)
		return;
	if (n == 1 && kvs[0].mod_rev != a->ha_rev) {
		struct cfg_ha h;
		a->ha_rev = kvs[0].mod_rev;
		if (cfg_ha_from_json(a->cfg, kvs[0].value, &h, err,
				     sizeof err) == 0) {
			cluster_ha_apply(a, &h);
		} else {
			a->ha_bad = true;
			log_error("ha[%s] %s: this node will not lead until the "
				  "cluster's [ha] or its own settings change",
				  a->cfg->node_name, err);
		}
	} else if (n == 0 && !a->ha_inflight && !a->closing) {
		char js[1024];
		int len = cfg_ha_to_json(&a->ha, js, sizeof js);
		struct rs_cmd c = {
			.op = RS_OP_PUT,
			.flags = RS_CMD_HAS_PREV,
			.prev_rev = 0,
			.key = { key, (uint32_t)strlen(key) },
			.value = { js, len > 0 ? (uint32_t)len : 0 },
		};
		if (len > 0 && agent_submit(a, &c, STORE_TIMEOUT_MS,
					    on_cluster_ha_written, a) == 0)
			a->ha_inflight = true;
	}
	rs_kvs_free(kvs, n);
}

/* May this node take or adopt the primary lease, as far as the cluster's
 * settings go? */
static bool cluster_ha_ready(struct ha_agent *a)
{
	if (a->ha_known && !a->ha_bad) {
		a->ha_wait_logged = false;
		return true;
	}
	if (!a->ha_wait_logged)
		log_info("ha[%s] not leading: %s", a->cfg->node_name,
			 a->ha_bad ? "the cluster's [ha] settings fail this "
				     "node's checks"
				   : "the cluster's [ha] settings are not "
				     "in the store yet");
	a->ha_wait_logged = true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static bool file_exists(const char *dir, const char *leaf)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, leaf);
	return access(path, F_OK) == 0;
}

static void split_hostport(const char *hp, char *host, size_t hlen, int *port)
{
	uint16_t p = 0;
	if (cfg_split_hostport(hp, host, hlen, &p) != 0) {
		snprintf(host, hlen, "%s", hp);
		p = 0;
	}
	*port = p;
}

/* ------------------------------------------------------------------ */
/* Synchronous replication                                              */
/* ------------------------------------------------------------------ */
/* In synchronous_mode on/strict the primary runs with
 *   synchronous_standby_names = 'ANY k ("a", "b", ...)'
 * and publishes the same set in /service/<cluster>/sync. The controller
 * promotes, after the primary is gone, only a member of the published set,
 * and only once it has heard from n-k+1 of its n members (every
 * acknowledged commit is on at least k of them), choosing the most
 * advanced. To keep the published set never weaker than the one in force:
 *   growing (a superset, same k): publish first, then apply;
 *   shrinking or changing k: apply first, then wait until every member of
 *   the new set has flushed past the LSN at the change, then publish.
 * "on" with no standby left falls back to asynchronous commits and
 * publishes an empty set: no automatic failover until a standby is back.
 * "strict" never does: it lists every known member, so commits wait. */

static void sync_format(struct ha_agent *a, char *buf, size_t len)
{
	if (!a->sync_applied_set || a->nsync_applied == 0 ||
	    a->sync_applied_k == 0) {
		if (a->ha.synchronous_mode == CFG_SYNC_STRICT)
			snprintf(buf, len,
				 "synchronous_standby_names=ANY %u "
				 "(\"pgwarden_no_standby\")",
				 a->ha.synchronous_node_count
					 ? a->ha.synchronous_node_count
					 : 1);
		else
			snprintf(buf, len, "synchronous_standby_names=");
		return;
	}
	size_t o = (size_t)snprintf(buf, len,
				    "synchronous_standby_names=ANY %u (",
				    a->sync_applied_k);
	for (size_t i = 0; i < a->nsync_applied && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s\"%s\"",
				      i ? ", " : "", a->sync_applied[i]);
	if (o < len)
		snprintf(buf + o, len - o, ")");
}

/* The cluster-wide parameters for pgwarden.conf: pgwarden's needs first,
 * then the file's [postgresql.parameters] (later lines win). */
static const char **build_params(struct ha_agent *a)
{
	static const char *const base[] = {
		"wal_level=replica",	 "hot_standby=on",
		"max_wal_senders=10",	 "max_replication_slots=10",
		"wal_keep_size=128MB", "wal_log_hints=on",
		"hot_standby_feedback=on",
		/* a replica re-pointed at a new primary retries its WAL
		 * receiver this often (default 5 s: streaming after a
		 * failover took 11 s here) */
		"wal_retrieve_retry_interval=500ms",
		/* crash recovery fsyncs the data directory first: one syncfs
		 * per file system, not an fsync per file (took 1.15 s once) */
		"recovery_init_sync_method=syncfs",
	};
	size_t nb = sizeof base / sizeof base[0];
	const struct cfg_pg *pg = &a->cfg->pg;
	const char **p = mem_calloc(nb + pg->nparams + 3, sizeof *p);
	if (!p)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < nb; i++)
		p[k++] = mem_strdup(base[i]);
	char cn[128];
	snprintf(cn, sizeof cn, "cluster_name=%s", a->cfg->cluster_name);
	p[k++] = mem_strdup(cn);
	if (a->ha.synchronous_mode != CFG_SYNC_OFF && a->initialized) {
		/* also on replicas: it takes effect the moment one is
		 * promoted. Not while bootstrapping: there is no standby yet
		 * and initdb's roles must commit. */
		char ssn[SYNC_MAX * 70 + 64];
		sync_format(a, ssn, sizeof ssn);
		p[k++] = mem_strdup(ssn);
	}
	for (size_t i = 0; i < pg->nparams; i++) {
		size_t n = strlen(pg->params[i].name) +
			   strlen(pg->params[i].value) + 2;
		char *s = mem_malloc(n);
		/* pgctl quotes every value itself: drop quotes the file may
		 * have put around one */
		const char *v = pg->params[i].value;
		size_t vl = strlen(v);
		if (vl >= 2 && v[0] == '\'' && v[vl - 1] == '\'') {
			v++;
			vl -= 2;
		}
		if (s)
			snprintf(s, n, "%s=%.*s", pg->params[i].name, (int)vl,
				 v);
		p[k++] = s;
	}
	for (size_t i = 0; i < k; i++)
		if (!p[i]) {
			for (size_t j = 0; j < k; j++)
				mem_free((void *)p[j]);
			mem_free(p);
			return NULL;
		}
	return p;
}

static void free_params(const char **p)
{
	if (!p)
		return;
	for (size_t i = 0; p[i]; i++)
		mem_free((void *)p[i]);
	mem_free(p);
}


static int cmp_name(const void *x, const void *y)
{
	return strcmp((const char *)x, (const char *)y);
}

/* The set this node wants: primary_view for the running primary (on:
 * streaming replicas only), else every other member (for a replica's
 * configuration, in force the moment it is promoted). */
static void sync_desired(struct ha_agent *a, bool primary_view,
			 char names[][64], size_t *n, unsigned *k)
{
	*n = 0;
	char prefix[256];
	ha_key(prefix, sizeof prefix, a->cfg->cluster_name, "members/");
	struct rs_kv *kvs = NULL;
	size_t nk = 0;
	uint64_t rev;
	if (a->io->range(a->store, prefix, strlen(prefix), true,
			 0, &kvs, &nk, &rev) == 0) {
		for (size_t i = 0; i < nk && *n < SYNC_MAX; i++) {
			struct ha_member m;
			if (ha_member_decode(kvs[i].value, kvs[i].value_len,
					     &m) != 0 ||
			    strcmp(m.name, a->cfg->node_name) == 0 ||
			    m.tags.nosync)
				continue;
			if (primary_view &&
			    a->ha.synchronous_mode == CFG_SYNC_ON &&
			    !(m.role == HA_ROLE_REPLICA &&
			      m.state == HA_ST_STREAMING))
				continue;
			cfg_pg_name(m.name, names[*n], 64);
			(*n)++;
		}
		rs_kvs_free(kvs, nk);
	}
	if (a->ha.synchronous_mode == CFG_SYNC_STRICT) {
		/* strict lists every member of the cluster, running or not:
		 * a stopped node's record is gone, its membership is not */
		struct rs_member *ms = NULL;
		size_t nm = 0;
		if (rs_store_members(a->store, &ms, &nm) == 0) {
			for (size_t i = 0; i < nm && *n < SYNC_MAX; i++) {
				char sn[64];
				if (!ms[i].name[0] ||
				    strcmp(ms[i].name, a->cfg->node_name) == 0)
					continue;
				cfg_pg_name(ms[i].name, sn, sizeof sn);
				bool have = false;
				for (size_t j = 0; j < *n; j++)
					if (strcmp(names[j], sn) == 0)
						have = true;
				struct ha_member rec;
				bool nosync = read_member(a, ms[i].name, &rec) &&
					      rec.tags.nosync;
				/* a store-only voter (a witness) never runs
				 * PostgreSQL: listing it would make every
				 * failover wait for its answer forever */
				char leaf[HA_NAME_MAX + 16], v[8];
				snprintf(leaf, sizeof leaf, "pgnodes/%s",
					 ms[i].name);
				bool pg = read_key(a, leaf, v, sizeof v, NULL,
						   NULL);
				if (!have && !nosync && pg &&
				    ms[i].role == RS_VOTER)
					memcpy(names[(*n)++], sn, 64);
			}
			mem_free(ms);
		}
	}
	qsort(names, *n, 64, cmp_name);
	unsigned want = a->ha.synchronous_node_count
				? a->ha.synchronous_node_count
				: 1;
	if (a->ha.synchronous_mode == CFG_SYNC_ON)
		*k = *n == 0 ? 0 : (want < *n ? want : (unsigned)*n);
	else
		*k = want;
}

static bool names_equal(char a[][64], size_t na, char b[][64], size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* every name of small is in big */
static bool names_subset(char small[][64], size_t ns, char big[][64],
			 size_t nb)
{
	for (size_t i = 0; i < ns; i++) {
		bool found = false;
		for (size_t j = 0; j < nb; j++)
			if (strcmp(small[i], big[j]) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

static void on_sync_published(void *arg, int status,
			      const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->sync_inflight = false;
	if (status != 0 || res->code != 0)
		a->sync_pub_set = false; /* unknown: publish again */
}

static void sync_publish(struct ha_agent *a, char names[][64], size_t n,
			 unsigned k)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(names[i]));
	json_t *o = json_pack(
		"{s:s,s:s,s:i,s:o}", "leader", a->cfg->node_name, "mode",
		a->ha.synchronous_mode == CFG_SYNC_STRICT ? "strict" : "on",
		"k", (int)k, "standbys", arr);
	char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!js)
		return;
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, "sync");
	struct rs_cmd c = { .op = RS_OP_PUT,
			    .key = { key, (uint32_t)strlen(key) },
			    .value = { js, (uint32_t)strlen(js) } };
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_sync_published, a) == 0) {
		a->sync_inflight = true;
		memcpy(a->sync_pub, names, n * 64);
		a->nsync_pub = n;
		a->sync_pub_k = k;
		a->sync_pub_set = true;
		log_info("ha[%s] synchronous standbys published: %s (k=%u, "
			 "%zu listed)",
			 a->cfg->node_name, js, k, n);
	}
	free(js);
}

static int sync_apply(struct ha_agent *a, char names[][64], size_t n,
		      unsigned k)
{
	memcpy(a->sync_applied, names, n * 64);
	a->nsync_applied = n;
	a->sync_applied_k = k;
	a->sync_applied_set = true;
	const char **params = build_params(a);
	if (!params)
		return ERR_NOMEM;
	struct pgc_conf c = { .parameters = params, .replica = false };
	int rv = a->io->write_conf(a->pg, &c);
	free_params(params);
	if (rv == 0)
		rv = a->io->reload(a->pg);
	a->sync_written = rv == 0;
	char ssn[SYNC_MAX * 70 + 64];
	sync_format(a, ssn, sizeof ssn);
	if (rv == 0)
		log_info("ha[%s] %s", a->cfg->node_name, ssn);
	else
		log_warn("ha[%s] could not apply %s: %s", a->cfg->node_name,
			 ssn, a->io->errmsg(a->pg));
	return rv;
}

/* On a replica: keep the set it would start with if promoted. */
static void sync_follow(struct ha_agent *a)
{
	if (a->ha.synchronous_mode == CFG_SYNC_OFF)
		return;
	char names[SYNC_MAX][64];
	size_t n = 0;
	unsigned k = 0;
	/* "on": a new primary starts asynchronous and lists standbys as they
	 * stream from it (the set the old primary published keeps guarding
	 * failovers meanwhile); "strict": it starts waiting for all others */
	if (a->ha.synchronous_mode == CFG_SYNC_STRICT)
		sync_desired(a, false, names, &n, &k);
	memcpy(a->sync_applied, names, n * 64);
	a->nsync_applied = n;
	a->sync_applied_k = k;
	a->sync_applied_set = true;
	a->sync_written = false;
	a->sync_pub_set = false;
	a->sync_waiting = false;
}

/* Right before a promotion: the replica's configuration gets the set it
 * will commit with, so its first commit already waits for a standby. */
static void sync_before_promote(struct ha_agent *a)
{
	if (a->ha.synchronous_mode == CFG_SYNC_OFF)
		return;
	sync_follow(a);
	const char **params = build_params(a);
	if (!params)
		return;
	struct pgc_conf c = { .parameters = params,
			      .replica = true,
			      .primary_conninfo = a->flow_conninfo[0]
							  ? a->flow_conninfo
							  : NULL,
			      .primary_slot_name = a->cfg->pg.use_slots
							   ? a->slot
							   : NULL };
	if (a->io->write_conf(a->pg, &c) == 0)
		a->io->reload(a->pg);
	free_params(params);
}

/* On the running primary, every tick. */
static void sync_manage(struct ha_agent *a)
{
	if (a->ha.synchronous_mode == CFG_SYNC_OFF || a->sync_inflight)
		return;
	char names[SYNC_MAX][64];
	size_t n;
	unsigned k;
	sync_desired(a, true, names, &n, &k);
	bool same_applied = a->sync_applied_set && a->sync_written &&
			    k == a->sync_applied_k &&
			    names_equal(names, n, a->sync_applied,
					a->nsync_applied);
	bool same_pub = a->sync_pub_set && k == a->sync_pub_k &&
			names_equal(names, n, a->sync_pub, a->nsync_pub);
	if (same_applied && same_pub)
		return;
	bool grow = a->sync_applied_set && a->sync_written &&
		    k == a->sync_applied_k && !a->sync_waiting &&
		    names_subset(a->sync_applied, a->nsync_applied, names, n);
	if (grow) {
		/* publishing the larger set first asks the controller for
		 * more answers: never weaker than what is in force */
		if (!same_pub)
			sync_publish(a, names, n, k);
		else
			sync_apply(a, names, n, k);
		return;
	}
	if (!same_applied) {
		if (sync_apply(a, names, n, k) == 0) {
			a->sync_waiting = true;
			/* from the first probe started after the reload: a
			 * commit acknowledged under the old setting is behind
			 * the position it reads */
			a->sync_change_lsn = 0;
			a->sync_min_seq = a->probe_seq + 1;
		}
		return;
	}
	if (a->sync_waiting) {
		if (a->sync_change_lsn == 0)
			return; /* no probe after the reload yet */
		/* every member of the new set must hold everything that was
		 * acknowledged under the old one */
		for (size_t i = 0; i < n; i++) {
			bool ok = false;
			for (size_t j = 0; j < a->nrepl; j++)
				if (strcmp(a->repl[j].name, names[i]) == 0 &&
				    a->repl[j].flush >= a->sync_change_lsn)
					ok = true;
			if (!ok)
				return;
		}
		a->sync_waiting = false;
	}
	sync_publish(a, names, n, k);
}

/* conninfo to reach member m as the replication user. */
static int replication_conninfo(struct ha_agent *a, const struct ha_member *m,
				char *buf, size_t cap)
{
	char port[16];
	snprintf(port, sizeof port, "%d", m->port);
	const struct cfg_pg *pg = &a->cfg->pg;
	const char *kw[] = { "host",	 "port", "user", "passfile",
			     "application_name", "connect_timeout",
			     "hostaddr", NULL };
	const char *vals[] = { m->host,
			       port,
			       pg->replication_user ? pg->replication_user
						    : "replicator",
			       pg->replication_password ? a->passfile : NULL,
			       a->appname,
			       "3",
			       m->hostaddr, /* resolved by m (cfg_resolve) */
			       NULL };
	return pgc_conninfo_build(buf, cap, kw, vals);
}

/* conninfo to reach member m as the superuser (pg_rewind's source). */
static int superuser_conninfo(struct ha_agent *a, const struct ha_member *m,
			      char *buf, size_t cap)
{
	char port[16];
	snprintf(port, sizeof port, "%d", m->port);
	const struct cfg_pg *pg = &a->cfg->pg;
	const char *kw[] = { "host", "port", "user", "passfile", "dbname",
			     "connect_timeout", "hostaddr", NULL };
	const char *vals[] = { m->host,
			       port,
			       pg->superuser ? pg->superuser : "postgres",
			       pg->superuser_password ? a->passfile : NULL,
			       "postgres",
			       "3",
			       m->hostaddr, /* resolved by m (cfg_resolve) */
			       NULL };
	return pgc_conninfo_build(buf, cap, kw, vals);
}

/* ------------------------------------------------------------------ */
/* Callbacks: [callbacks] on_start, on_stop, on_role_change             */
/* ------------------------------------------------------------------ */
/* Run as Patroni does: SCRIPT ACTION ROLE CLUSTER, in the background
 * (uv_spawn through pgctl), at most 60 s; the result is only logged. One
 * at a time, as Patroni's CallbackExecutor: a call made while a script
 * still runs ends that script (SIGTERM, SIGKILL 2 s later) and starts once
 * it is gone, so a node's scripts see its events in order and the last
 * one wins (a call still waiting is replaced by a newer one). While the
 * daemon stops, a script started then (on_stop) runs 10 s at most, one
 * started before is ended, and the daemon exits once none runs. */
#define CB_TIMEOUT_MS 60000
#define CB_SHUTDOWN_TIMEOUT_MS 10000

static void shutdown_finish(struct ha_agent *a);

static const char *cb_script(struct ha_agent *a, const char *action)
{
	if (strcmp(action, "on_start") == 0)
		return a->cfg->pg.on_start;
	if (strcmp(action, "on_stop") == 0)
		return a->cfg->pg.on_stop;
	if (strcmp(action, "on_role_change") == 0)
		return a->cfg->pg.on_role_change;
	return NULL;
}

/* The agent's shutdown is over once its handles are closed and no
 * callback runs or waits. */
static void maybe_shutdown_finish(struct ha_agent *a)
{
	if (a->closing && a->open_handles == 0 && a->kv_pending == 0 &&
	    !a->cb_proc && !a->cb_next_action[0])
		shutdown_finish(a);
}

/* Every store request of the agent goes through here: the agent is not
 * finished (and freed) while one waits for its callback. */
struct submit_ctx {
	struct ha_agent *a;
	kv_cb cb;
	void *arg;
};

static void on_submitted(void *arg, int status, const struct rs_result *res)
{
	struct submit_ctx *sc = arg;
	struct ha_agent *a = sc->a;
	a->kv_pending--;
	sc->cb(sc->arg, status, res);
	mem_free(sc);
	maybe_shutdown_finish(a);
}

static int agent_submit(struct ha_agent *a, const struct rs_cmd *c,
			unsigned timeout_ms, kv_cb cb, void *arg)
{
	struct submit_ctx *sc = mem_malloc(sizeof *sc);
	if (!sc)
		return ERR_NOMEM;
	*sc = (struct submit_ctx){ .a = a, .cb = cb, .arg = arg };
	int rv = a->io->submit(a->kv, c, timeout_ms, on_submitted, sc);
	if (rv != 0) {
		mem_free(sc);
		return rv;
	}
	a->kv_pending++;
	return 0;
}

static void cb_spawn(struct ha_agent *a, const char *action,
		     const char *role);

static void on_callback_done(void *arg, const struct pgc_proc_result *r)
{
	struct ha_agent *a = arg;
	a->cb_proc = NULL;
	if (r->err == ERR_CANCELED)
		log_info("ha[%s] %s callback ended: %s", a->cfg->node_name,
			 a->cb_action,
			 a->cb_next_action[0] ? "a newer call supersedes it"
					      : "the daemon is stopping");
	else if (r->err != 0)
		log_warn("ha[%s] callback: %s", a->cfg->node_name, r->errmsg);
	if (a->cb_next_action[0]) {
		char action[sizeof a->cb_next_action];
		char role[sizeof a->cb_next_role];
		snprintf(action, sizeof action, "%s", a->cb_next_action);
		snprintf(role, sizeof role, "%s", a->cb_next_role);
		a->cb_next_action[0] = '\0';
		cb_spawn(a, action, role);
	}
	maybe_shutdown_finish(a);
}

static void cb_spawn(struct ha_agent *a, const char *action, const char *role)
{
	const char *script = cb_script(a, action);
	const char *argv[] = { script, action, role, a->cfg->cluster_name,
			       NULL };
	struct pgc_proc_opts o = { .file = script,
				   .argv = argv,
				   .name = action,
				   .timeout_ms = a->closing
							 ? CB_SHUTDOWN_TIMEOUT_MS
							 : CB_TIMEOUT_MS };
	char err[256];
	if (pgc_proc_run(a->loop, &o, on_callback_done, a, &a->cb_proc, err,
			 sizeof err) != 0) {
		a->cb_proc = NULL;
		log_warn("ha[%s] %s callback not run: %s", a->cfg->node_name,
			 action, err);
		return;
	}
	snprintf(a->cb_action, sizeof a->cb_action, "%s", action);
	a->cb_for_shutdown = a->closing;
	log_info("ha[%s] callback %s %s %s", a->cfg->node_name, action, role,
		 a->cfg->cluster_name);
}

static void run_callback(struct ha_agent *a, const char *action,
			 const char *role)
{
	if (strcmp(action, "on_stop") != 0)
		a->cb_role = strcmp(role, "primary") == 0 ? HA_ROLE_PRIMARY
							  : HA_ROLE_REPLICA;
	if (!cb_script(a, action))
		return;
	if (a->cb_proc) {
		log_info("ha[%s] %s callback still running: ending it for %s "
			 "%s",
			 a->cfg->node_name, a->cb_action, action, role);
		snprintf(a->cb_next_action, sizeof a->cb_next_action, "%s",
			 action);
		snprintf(a->cb_next_role, sizeof a->cb_next_role, "%s", role);
		pgc_proc_kill(a->cb_proc);
		return;
	}
	cb_spawn(a, action, role);
}

/* PostgreSQL runs as ROLE after a start: on_start, or on_role_change when
 * the scripts were last told the other role (a demoted primary started
 * again as a replica, after a switchover or a fence), as Patroni's
 * follow() does. */
static void announce_start(struct ha_agent *a, enum ha_role role)
{
	bool change = a->cb_role != HA_ROLE_UNKNOWN && a->cb_role != role;
	run_callback(a, change ? "on_role_change" : "on_start",
		     role == HA_ROLE_PRIMARY ? "primary" : "replica");
}

/* ------------------------------------------------------------------ */
/* Flows                                                                */
/* ------------------------------------------------------------------ */

static void flow_next(struct ha_agent *a, int err, const char *msg);
static void on_revoked(void *arg, int status, const struct rs_result *res);
static void on_sw_controldata(void *arg, int err, const char *errmsg,
			      const struct pgc_controldata *cd);
static void on_handed_over(void *arg, int status, const struct rs_result *res);
static void on_sw_timer(uv_timer_t *t);
static void sw_handed(struct ha_agent *a);
static void sw_cleanup(struct ha_agent *a);
static void delete_request(struct ha_agent *a, const char *leaf, uint64_t rev);
static void close_handles(struct ha_agent *a);

/* A flow's operation completed. Once the daemon stops, the shutdown flow
 * has taken over (with completions of its own): ignore it. */
static void flow_cb(struct ha_agent *a, int err, const char *msg)
{
	if (a->closing)
		return;
	flow_next(a, err, msg);
}

static void on_op_done(void *arg, int err, const char *errmsg)
{
	flow_cb(arg, err, errmsg);
}

static int start_pg(struct ha_agent *a, bool replica, const char *conninfo)
{
	const char **params = build_params(a);
	if (!params)
		return ERR_NOMEM;
	struct pgc_start_opts o = {
		.conf = { .parameters = params,
			  .replica = replica,
			  .primary_conninfo = replica ? conninfo : NULL,
			  .primary_slot_name =
				  replica && a->cfg->pg.use_slots ? a->slot
								  : NULL },
		.timeout_ms = 60000,
	};
	int rv = a->io->start(a->pg, &o, on_op_done, a);
	free_params(params);
	if (rv == 0)
		snprintf(a->following, sizeof a->following, "%s",
			 replica ? a->flow_leader : "");
	return rv;
}

static void on_sql_done(void *arg, int err, const char *errmsg,
			const struct pgc_rows *rows)
{
	(void)rows;
	flow_cb(arg, err, errmsg);
}

static void on_script_done(void *arg, const struct pgc_proc_result *r)
{
	flow_cb(arg, r->err, r->errmsg);
}

static void on_init_written(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	int err = status ? status : (res->code == ERR_CONFLICT ? 0 : res->code);
	flow_cb(a, err, err ? "initialize key" : "");
}

static void on_sysid_controldata(void *arg, int err, const char *errmsg,
				 const struct pgc_controldata *cd)
{
	struct ha_agent *a = arg;
	if (err == 0)
		a->sysid = cd->system_id;
	flow_cb(a, err, errmsg);
}

/* src as the body of a SQL string literal (quotes doubled) into dst;
 * -1 if it does not fit or could end the DO block's $pgw$ quoting. */
static int sql_literal(char *dst, size_t cap, const char *src)
{
	if (strstr(src, "$pgw$"))
		return -1;
	size_t k = 0;
	for (const char *p = src; *p; p++) {
		if (k + 3 > cap)
			return -1;
		if (*p == '\'')
			dst[k++] = '\'';
		dst[k++] = *p;
	}
	dst[k] = '\0';
	return 0;
}

/* Roles and passwords created after initdb, in one transaction each. */
static int bootstrap_sql(struct ha_agent *a, char **out)
{
	const struct cfg_pg *pg = &a->cfg->pg;
	size_t cap = 4096 + 2 * 8400 * (2 + pg->nusers);
	char *sql = mem_malloc(cap);
	if (!sql)
		return ERR_NOMEM;
	size_t len = 0;
	const char *ru = pg->replication_user ? pg->replication_user
					      : "replicator";
	/* Identifiers are checked names (cfg); passwords are quoted as SQL
	 * literals with quotes doubled. */
#define APPEND(...)                                                        \
	do {                                                               \
		int n_ = snprintf(sql + len, cap - len, __VA_ARGS__);      \
		if (n_ < 0 || (size_t)n_ >= cap - len) {                   \
			mem_free(sql);                                     \
			return ERR_TOOBIG;                                 \
		}                                                          \
		len += (size_t)n_;                                         \
	} while (0)
	char q[8200]; /* a password (<= 4096 bytes) with quotes doubled */
	APPEND("DO $pgw$ BEGIN ");
	APPEND("IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') "
	       "THEN CREATE ROLE \"%s\" WITH LOGIN REPLICATION; END IF; ",
	       ru, ru);
	if (pg->replication_password) {
		if (sql_literal(q, sizeof q, pg->replication_password) != 0)
			goto bad_password;
		APPEND("ALTER ROLE \"%s\" WITH PASSWORD '%s'; ", ru, q);
	}
	if (pg->superuser_password) {
		if (sql_literal(q, sizeof q, pg->superuser_password) != 0)
			goto bad_password;
		APPEND("ALTER ROLE \"%s\" WITH PASSWORD '%s'; ",
		       pg->superuser ? pg->superuser : "postgres", q);
	}
	for (size_t i = 0; i < pg->nusers; i++) {
		const struct cfg_user *u = &pg->users[i];
		APPEND("IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
		       "'%s') THEN CREATE ROLE \"%s\" WITH LOGIN; END IF; ",
		       u->name, u->name);
		if (u->options && *u->options)
			APPEND("ALTER ROLE \"%s\" WITH %s; ", u->name,
			       u->options);
		if (u->password) {
			if (sql_literal(q, sizeof q, u->password) != 0)
				goto bad_password;
			APPEND("ALTER ROLE \"%s\" WITH PASSWORD '%s'; ",
			       u->name, q);
		}
	}
	APPEND("END $pgw$;");
#undef APPEND
	*out = sql;
	return 0;
bad_password:
	log_error("ha[%s] a password is too long or contains \"$pgw$\"",
		  a->cfg->node_name);
	mem_free(sql);
	return ERR_INVAL;
}

static int write_hba(struct ha_agent *a)
{
	const struct cfg_pg *pg = &a->cfg->pg;
	const char *ru = pg->replication_user ? pg->replication_user
					      : "replicator";
	const char *su = pg->superuser ? pg->superuser : "postgres";
	char l1[256], l2[256], l3[256];
	snprintf(l1, sizeof l1, "local   all             %-15s peer", su);
	snprintf(l2, sizeof l2,
		 "local   replication     %-15s peer", su);
	const char **lines = mem_calloc(pg->npg_hba + 6, sizeof *lines);
	if (!lines)
		return ERR_NOMEM;
	size_t k = 0;
	lines[k++] = l1;
	lines[k++] = l2;
	if (pg->npg_hba == 0) {
		snprintf(l3, sizeof l3,
			 "host    replication     %-15s all  scram-sha-256",
			 ru);
		lines[k++] = l3;
		lines[k++] = "host    all             all             all  "
			     "scram-sha-256";
	}
	for (size_t i = 0; i < pg->npg_hba; i++)
		lines[k++] = pg->pg_hba[i];
	lines[k] = NULL;
	char err[256];
	int rv = pgc_hba_write_on(a->loop, pg->data_dir, lines, err,
				  sizeof err);
	mem_free(lines);
	if (rv != 0)
		log_error("ha[%s] pg_hba: %s", a->cfg->node_name, err);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Leases                                                               */
/* ------------------------------------------------------------------ */

/* How long after sending a grant or keepalive the lease may be counted
 * ours. Computed from the ttl the store holds for that lease (as it
 * answered the grant or keepalive), never from this node's ini: the
 * store expires the lease by its own ttl, so a lease granted by another
 * ttl (an adopted lease, a handed-over one, an ini edited since) must be
 * fenced by that ttl too. */
static uint64_t lease_valid_span(struct ha_agent *a)
{
	return timing_valid_span(a->lease_ttl, a->margin);
}

/* Record the ttl the store answered for the held lease (0: an old store
 * that does not say; then the ttl asked for at grant, else our own). */
static void lease_ttl_from(struct ha_agent *a, const struct rs_result *res)
{
	uint64_t ttl = res->ttl_ms ? res->ttl_ms : a->ttl;
	if (a->lease_ttl && ttl != a->lease_ttl)
		log_warn("ha[%s] lease %016" PRIx64 " ttl=%" PRIu64
			 "ms->%" PRIu64 "ms",
			 a->cfg->node_name, res->lease, a->lease_ttl, ttl);
	a->lease_ttl = ttl;
}

static void fence(struct ha_agent *a, const char *why);

/* Tell the fencer process what to fence and when: while this node leads,
 * its postmaster at the self-fencing deadline plus half the margin (the
 * agent's own fence comes first when the agent runs). A node that no
 * longer leads keeps the deadline it had until its postmaster is gone or
 * known to be in recovery. */
static void fencer_sync(struct ha_agent *a)
{
	if (!a->fencer_on || a->closing)
		return;
	pid_t pid = a->io->pid(a->pg);
	if (pid <= 0) {
		ha_fencer_disarm(&a->fencer);
	} else if (a->leader) {
		ha_fencer_arm(&a->fencer, pid,
			      a->valid_until_ms + a->margin / 2);
	} else if (ha_fencer_armed(&a->fencer) &&
		   (pid != a->fencer.want_pid ||
		    (a->probe_ok && a->in_recovery))) {
		ha_fencer_disarm(&a->fencer);
	}
}

static void on_fence_timer(uv_timer_t *t)
{
	struct ha_agent *a = t->data;
	if (!a->leader)
		return;
	if (now_ms() < a->valid_until_ms) {
		uv_timer_start(&a->fence_timer, on_fence_timer,
			       a->valid_until_ms - now_ms(), 0);
		return;
	}
	fence(a, "primary lease not renewed in time");
}

static void arm_fence_timer(struct ha_agent *a)
{
	uint64_t now = now_ms();
	uint64_t wait = a->valid_until_ms > now ? a->valid_until_ms - now : 0;
	uv_timer_start(&a->fence_timer, on_fence_timer, wait, 0);
	fencer_sync(a);
}

/* Stop writing now: the lease is lost or about to be. */
static void fence(struct ha_agent *a, const char *why)
{
	log_warn("ha[%s] fencing: %s", a->cfg->node_name, why);
	a->leader = false;
	a->leader_lease = 0;
	uv_timer_stop(&a->fence_timer);
	pid_t pid = a->io->pid(a->pg);
	if (pid <= 0)
		wd_disarm(&a->wd);
	if (pid > 0 && (!a->probe_ok || !a->in_recovery)) {
		/* SIGQUIT: immediate shutdown, no new commit after it is
		 * handled; the exit callback records the stop. */
		if (kill(pid, SIGQUIT) != 0)
			log_error("ha[%s] fence: kill %d: %s",
				  a->cfg->node_name, (int)pid,
				  strerror(errno));
		set_state(a, HA_ST_DEMOTING, why);
	}
	report(a, true);
}

static void on_renewed(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->renew_inflight = false;
	if (!a->leader || a->closing)
		return;
	if (status == 0 && res->code == 0) {
		lease_ttl_from(a, res);
		uint64_t until = a->renew_sent_ms + lease_valid_span(a);
		if (until > a->valid_until_ms)
			a->valid_until_ms = until;
		arm_fence_timer(a);
		/* pet only for a renewal sent recently enough (I3) */
		int rv = wd_arm_for(&a->wd, a->renew_sent_ms,
				    lease_valid_span(a));
		if (rv == ERR_TIMEOUT)
			log_warn("ha[%s] renewal too slow to pet the watchdog",
				 a->cfg->node_name);
		return;
	}
	if (status == 0 && res->code == ERR_NOTFOUND) {
		fence(a, "the primary lease is gone");
		return;
	}
	log_warn("ha[%s] lease renewal failed: %s", a->cfg->node_name,
		 err_str(status ? status : res->code));
}

static void renew(struct ha_agent *a)
{
	if (!a->leader || a->renew_inflight)
		return;
	struct rs_cmd c = { .op = RS_OP_LEASE_KEEPALIVE,
			    .lease = a->leader_lease };
	uint64_t t = now_ms();
	if (agent_submit(a, &c, a->loop_wait, on_renewed, a) == 0) {
		a->renew_inflight = true;
		a->renew_sent_ms = t;
	}
}

/* Acquire: grant a lease, then create the leader key with it. */
static void on_leader_put(void *arg, int status, const struct rs_result *res);

static void on_acquire_grant(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	if (status != 0 || res->code != 0 || a->closing) {
		a->acquire_inflight = false;
		wd_disarm(&a->wd);
		return;
	}
	a->leader_lease = res->lease;
	a->lease_ttl = 0;
	lease_ttl_from(a, res);
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, "leader");
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.flags = RS_CMD_HAS_PREV,
		.prev_rev = 0,
		.key = { key, (uint32_t)strlen(key) },
		.value = { a->cfg->node_name,
			   (uint32_t)strlen(a->cfg->node_name) },
		.lease = res->lease,
	};
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_leader_put, a) != 0)
		a->acquire_inflight = false;
}

static void on_revoked(void *arg, int status, const struct rs_result *res)
{
	(void)arg;
	(void)status;
	(void)res;
}

/* last_leader names the node that holds the primary lease; the controller
 * reads it when that lease is gone. While this node leads, every tick
 * compares the key with our name and writes it again until it says so:
 * a write lost to a Raft leader change, a timeout, or an older primary's
 * put that committed late is repaired within a loop_wait (the controller
 * does not trust the key blindly either: ha_decide.c). */
static void on_last_leader(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->last_leader_inflight = false;
	int rv = status ? status : res->code;
	if (rv != 0 && !a->closing)
		log_warn("ha[%s] writing last_leader failed: %s (retried next "
			 "tick)",
			 a->cfg->node_name, err_str(rv));
}

static void last_leader_sync(struct ha_agent *a)
{
	if (!a->leader || a->last_leader_inflight || a->closing)
		return;
	char last[HA_NAME_MAX + 1] = "";
	if (read_key(a, "last_leader", last, sizeof last, NULL, NULL) &&
	    strcmp(last, a->cfg->node_name) == 0)
		return;
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, "last_leader");
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.key = { key, (uint32_t)strlen(key) },
		.value = { a->cfg->node_name,
			   (uint32_t)strlen(a->cfg->node_name) },
	};
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_last_leader, a) == 0)
		a->last_leader_inflight = true;
}

static void on_leader_put(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->acquire_inflight = false;
	if (status == 0 && res->code == 0 &&
	    wd_arm_for(&a->wd, a->acquire_sent_ms, lease_valid_span(a)) != 0 &&
	    (!wd_may_lead(&a->wd) || wd_armed(&a->wd))) {
		/* too slow to pet safely, or the watchdog is gone: do not
		 * lead on this lease */
		log_warn("ha[%s] watchdog not petted in time (%s): giving the "
			 "lease back",
			 a->cfg->node_name, wd_errmsg(&a->wd));
		status = ERR_TIMEOUT;
	}
	if (status != 0 || res->code != 0) {
		wd_disarm(&a->wd);
		/* someone else holds it, or the store failed: give the lease
		 * back */
		struct rs_cmd c = { .op = RS_OP_LEASE_REVOKE,
				    .lease = a->leader_lease };
		agent_submit(a, &c, STORE_TIMEOUT_MS, on_revoked, a);
		a->leader_lease = 0;
		return;
	}
	a->leader = true;
	a->leader_rev = res->revision;
	snprintf(a->promote_reason, sizeof a->promote_reason, "%s",
		 a->initialized ? "failover" : "bootstrap");
	a->valid_until_ms = a->acquire_sent_ms + lease_valid_span(a);
	arm_fence_timer(a);
	log_info("ha[%s] took the primary lease %016" PRIx64,
		 a->cfg->node_name, a->leader_lease);
	last_leader_sync(a);
	tick(a);
}

static void acquire(struct ha_agent *a)
{
	if (a->acquire_inflight || a->leader || !cluster_ha_ready(a))
		return;
	/* The watchdog is armed before the lease is asked for (I3); a node
	 * whose required watchdog cannot be opened never leads. */
	wd_arm(&a->wd);
	if (!wd_may_lead(&a->wd)) {
		if (!a->wd_warned)
			log_error("ha[%s] not taking the primary lease: the "
				  "watchdog is required but unavailable: %s",
				  a->cfg->node_name, wd_errmsg(&a->wd));
		a->wd_warned = true;
		wd_disarm(&a->wd);
		/* tell the controller now, so it names someone else */
		report(a, true);
		return;
	}
	a->wd_warned = false;
	struct rs_cmd c = { .op = RS_OP_LEASE_GRANT, .ttl_ms = a->ttl };
	a->acquire_sent_ms = now_ms();
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_acquire_grant, a) == 0)
		a->acquire_inflight = true;
}

/* After a restart of pgwarden: the leader key still names us; keep its
 * lease alive and, once that worked, we lead again. */
static void on_adopt_renewed(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->acquire_inflight = false;
	if (status != 0 || res->code != 0 || a->closing)
		return;
	/* the lease keeps the ttl it was granted with, whoever granted it */
	a->lease_ttl = 0;
	lease_ttl_from(a, res);
	if (a->lease_ttl != a->ttl)
		log_info("ha[%s] adopted lease %016" PRIx64 " has ttl=%" PRIu64
			 "ms (this node's ttl is %ums): fencing by the lease's",
			 a->cfg->node_name, res->lease, a->lease_ttl, a->ttl);
	if (wd_arm_for(&a->wd, a->acquire_sent_ms, lease_valid_span(a)) != 0 &&
	    !wd_may_lead(&a->wd)) {
		log_error("ha[%s] the watchdog is required but unavailable: "
			  "not leading (%s)",
			  a->cfg->node_name, wd_errmsg(&a->wd));
		wd_disarm(&a->wd);
		return;
	}
	a->leader = true;
	a->leader_lease = res->lease;
	a->leader_rev = rs_fsm_revision(rs_store_fsm(a->store));
	{
		char last[HA_NAME_MAX + 1] = "";
		read_key(a, "last_leader", last, sizeof last, NULL, NULL);
		bool handed = last[0] && strcmp(last, a->cfg->node_name) != 0;
		snprintf(a->promote_reason, sizeof a->promote_reason, "%s",
			 handed ? "switchover" : "restart");
	}
	a->valid_until_ms = a->acquire_sent_ms + lease_valid_span(a);
	arm_fence_timer(a);
	log_info("ha[%s] holds the primary lease %016" PRIx64 " again",
		 a->cfg->node_name, a->leader_lease);
	tick(a);
}

static void adopt_lease(struct ha_agent *a)
{
	if (a->acquire_inflight || !cluster_ha_ready(a))
		return;
	struct rs_cmd c = { .op = RS_OP_LEASE_KEEPALIVE,
			    .lease = a->leader_key_lease };
	a->acquire_sent_ms = now_ms();
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_adopt_renewed, a) == 0)
		a->acquire_inflight = true;
}

/* ------------------------------------------------------------------ */
/* Member record                                                        */
/* ------------------------------------------------------------------ */

static void fill_member(struct ha_agent *a, struct ha_member *m)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", a->cfg->node_name);
	snprintf(m->api_url, sizeof m->api_url, "%s", a->cfg->api_url);
	split_hostport(a->cfg->pg.connect_address ? a->cfg->pg.connect_address
						  : a->cfg->pg.listen,
		       m->host, sizeof m->host, &m->port);
	if (a->cfg->pg.connect_hostaddr) /* cfg_resolve */
		snprintf(m->hostaddr, sizeof m->hostaddr, "%s",
			 a->cfg->pg.connect_hostaddr);
	m->role = a->role;
	m->state = a->state;
	m->timeline = a->timeline;
	uint64_t sysid = a->sysid ? a->sysid : a->cd_sysid;
	if (sysid)
		snprintf(m->sysid, sizeof m->sysid, "%" PRIu64, sysid);
	m->lsn_current = a->wal_lsn;
	m->lsn_received = a->receive_lsn;
	m->lsn_replayed = a->replay_lsn;
	m->lag_bytes = -1;
	if (a->role == HA_ROLE_PRIMARY)
		m->lag_bytes = 0;
	else if (a->role == HA_ROLE_REPLICA && a->leader_rec_ok &&
		 a->leader_rec.lsn_current > 0) {
		uint64_t mine = a->replay_lsn > a->receive_lsn ? a->replay_lsn
							       : a->receive_lsn;
		m->lag_bytes = a->leader_rec.lsn_current > mine
				       ? (int64_t)(a->leader_rec.lsn_current -
						   mine)
				       : 0;
	}
	m->pending_restart = a->pending_restart;
	m->tags.nofailover = a->cfg->pg.nofailover;
	m->tags.noloadbalance = a->cfg->pg.noloadbalance;
	m->tags.nosync = a->cfg->pg.nosync;
	m->tags.failover_priority = a->cfg->pg.failover_priority;
	snprintf(m->detail, sizeof m->detail, "%s", a->detail);
	m->seq = a->seq;
	struct wd_status ws;
	wd_status_get(&a->wd, &ws);
	snprintf(m->watchdog.mode, sizeof m->watchdog.mode, "%s", ws.mode);
	snprintf(m->watchdog.state, sizeof m->watchdog.state, "%s", ws.state);
	m->watchdog.armed = ws.armed;
	m->watchdog.timeout_ms = ws.timeout_ms;
	m->watchdog.last_keepalive_age_ms = ws.last_keepalive_age_ms;
}

static void on_member_put(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->member_inflight = false;
	if (status == 0 && res->code == ERR_NOTFOUND) {
		/* our member lease expired (we were cut off): take a new
		 * one */
		a->member_lease = 0;
	}
}

static void put_member(struct ha_agent *a)
{
	struct ha_member m;
	a->seq++;
	fill_member(a, &m);
	char *js = ha_member_encode(&m);
	if (!js)
		return;
	char key[256];
	ha_member_key(key, sizeof key, a->cfg->cluster_name, a->cfg->node_name);
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.key = { key, (uint32_t)strlen(key) },
		.value = { js, (uint32_t)strlen(js) },
		.lease = a->member_lease,
	};
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_member_put, a) == 0) {
		a->member_inflight = true;
		a->last_report_ms = now_ms();
		a->reported_role = a->role;
		a->reported_state = a->state;
	}
	mem_free(js);
}

static void on_member_keepalive(void *arg, int status,
				const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->member_inflight = false;
	if (status == 0 && res->code == ERR_NOTFOUND) {
		a->member_lease = 0;
		return;
	}
	if (status == 0 && res->code == 0)
		put_member(a);
}

static void on_member_grant(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	a->member_inflight = false;
	if (status == 0 && res->code == 0) {
		a->member_lease = res->lease;
		put_member(a);
	}
}

static void report(struct ha_agent *a, bool force)
{
	if (a->member_inflight || a->closing)
		return;
	uint64_t now = now_ms();
	bool changed = a->reported_role != a->role ||
		       a->reported_state != a->state;
	/* every 200 ms for the first 3 s: the controller trusts a record
	 * only once it has changed, so a restarted node counts sooner */
	unsigned every = now - a->started_ms < 3000 ? 200 : REPORT_INTERVAL_MS;
	if (!force && !changed && now - a->last_report_ms < every)
		return;
	struct rs_cmd c;
	memset(&c, 0, sizeof c);
	if (a->member_lease == 0) {
		unsigned ttl = a->ttl * 2 > 5000 ? a->ttl * 2 : 5000;
		c.op = RS_OP_LEASE_GRANT;
		c.ttl_ms = ttl;
		if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_member_grant, a) ==
		    0)
			a->member_inflight = true;
		return;
	}
	c.op = RS_OP_LEASE_KEEPALIVE;
	c.lease = a->member_lease;
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_member_keepalive, a) == 0)
		a->member_inflight = true;
}

/* ------------------------------------------------------------------ */
/* Observation                                                          */
/* ------------------------------------------------------------------ */

/* Answer the LSN waiters a probe that completed as seq covers (all of
 * them if err != 0). */
static void answer_lsn_waiters(struct ha_agent *a, uint64_t seq, int err)
{
	struct ha_lsn_answer ans = {
		.err = err,
		.in_recovery = a->in_recovery,
		.timeline = a->timeline,
		.received = a->receive_lsn,
		.replayed = a->replay_lsn,
		.current = a->wal_lsn,
	};
	size_t kept = 0;
	/* callbacks may not re-enter (they answer an HTTP request) */
	for (size_t i = 0; i < a->nlsn_wait; i++) {
		struct lsn_waiter w = a->lsn_wait[i];
		if (err == 0 && w.need_seq > seq) {
			a->lsn_wait[kept++] = w;
			continue;
		}
		w.cb(w.arg, &ans);
	}
	a->nlsn_wait = kept;
}

static void on_probe(void *arg, int err, const char *errmsg,
		     const struct pgc_probe *p)
{
	struct ha_agent *a = arg;
	a->probe_inflight = false;
	uint64_t seq = a->probe_seq; /* one probe at a time: this one */
	if (err != 0) {
		if (a->probe_ok)
			log_warn("ha[%s] probe failed: %s", a->cfg->node_name,
				 errmsg);
		a->probe_ok = false;
		answer_lsn_waiters(a, seq, ERR_PG);
		return;
	}
	a->probe_ok = true;
	a->in_recovery = p->in_recovery;
	a->streaming = p->streaming;
	a->timeline = p->timeline;
	a->sysid = p->system_id;
	a->wal_lsn = p->wal_lsn;
	a->receive_lsn = p->receive_lsn;
	a->replay_lsn = p->replay_lsn;
	a->pending_restart = p->pending_restart;
	if (a->sync_waiting && a->sync_change_lsn == 0 && a->leader &&
	    !p->in_recovery && a->probe_seq >= a->sync_min_seq)
		a->sync_change_lsn = p->wal_lsn;
	if (a->sync_waiting && a->sync_change_lsn == 0 && a->leader &&
	    !a->closing &&
	    a->io->probe(a->pg, PROBE_TIMEOUT_MS, on_probe, a) == 0) {
		a->probe_inflight = true;
		a->probe_seq++;
	}
	a->nrepl = 0;
	for (size_t i = 0; i < p->nrepl && a->nrepl < SYNC_MAX; i++) {
		snprintf(a->repl[a->nrepl].name, sizeof a->repl[0].name, "%s",
			 p->repl[i].application_name);
		a->repl[a->nrepl].flush = p->repl[i].flush_lsn;
		a->nrepl++;
	}
	answer_lsn_waiters(a, seq, 0);
	/* a waiter that came while this probe ran needs a newer one */
	if (a->nlsn_wait > 0 && !a->probe_inflight && !a->closing &&
	    a->io->probe(a->pg, PROBE_TIMEOUT_MS, on_probe, a) == 0) {
		a->probe_inflight = true;
		a->probe_seq++;
	}
}

int ha_agent_probe_lsn(struct ha_agent *a, ha_lsn_cb cb, void *arg)
{
	if (a->closing || a->io->state(a->pg) != PGC_PM_RUNNING)
		return ERR_UNAVAILABLE;
	if (a->nlsn_wait == LSN_WAITERS)
		return ERR_UNAVAILABLE;
	uint64_t need;
	if (a->probe_inflight) {
		/* it started before this request: the next one counts */
		need = a->probe_seq + 1;
	} else {
		if (a->io->probe(a->pg, PROBE_TIMEOUT_MS, on_probe, a) != 0)
			return ERR_UNAVAILABLE;
		a->probe_inflight = true;
		need = ++a->probe_seq;
	}
	a->lsn_wait[a->nlsn_wait++] =
		(struct lsn_waiter){ .cb = cb, .arg = arg, .need_seq = need };
	return 0;
}

static void on_controldata(void *arg, int err, const char *errmsg,
			   const struct pgc_controldata *cd)
{
	struct ha_agent *a = arg;
	a->controldata_inflight = false;
	if (err != 0) {
		log_warn("ha[%s] pg_controldata: %s", a->cfg->node_name, errmsg);
		return;
	}
	a->controldata_known = true;
	a->cd_sysid = cd->system_id;
	a->timeline = a->probe_ok ? a->timeline : cd->timeline;
	snprintf(a->cd_state, sizeof a->cd_state, "%s", cd->state);
}

static void on_pg_exit(void *arg, int64_t status, int sig)
{
	struct ha_agent *a = arg;
	a->probe_ok = false;
	a->controldata_known = false;
	/* nothing left to fence: tell the fencer before anything restarts
	 * PostgreSQL under a new pid */
	fencer_sync(a);
	if (a->closing)
		return;
	if (a->state == HA_ST_DEMOTING) {
		log_info("ha[%s] PostgreSQL stopped (fenced)", a->cfg->node_name);
		set_state(a, HA_ST_STOPPED, "fenced");
		run_callback(a, "on_stop", "primary");
		if (!a->leader)
			wd_disarm(&a->wd); /* nothing left to protect */
		return;
	}
	log_warn("ha[%s] PostgreSQL exited unexpectedly status=%" PRId64
		 " signal=%d",
		 a->cfg->node_name, status, sig);
	a->crashed = true;
	set_state(a, HA_ST_CRASHED, "postmaster exited");
	report(a, true);
	/* restart in place now, not at the next tick */
	uv_timer_start(&a->tick, on_tick, 0, a->loop_wait);
}

/* The life-cycle state PostgreSQL is seen in, recorded when it differs
 * (a row with no flow: it exited, say). Starting, stopping, or running
 * but not probed since the last flow: not settled, nothing recorded. */
static void observe_fsm(struct ha_agent *a, enum pgc_pm_state pm)
{
	if (a->st == HA_FSM_REFUSED || a->st == HA_FSM_SHUTDOWN)
		return;
	enum ha_fsm_state seen = a->st;
	if (!a->data_present)
		seen = HA_FSM_NO_DATA;
	else if (pm == PGC_PM_STOPPED)
		seen = HA_FSM_STOPPED;
	else if (pm == PGC_PM_RUNNING && a->probe_ok)
		seen = a->in_recovery ? HA_FSM_REPLICA : HA_FSM_PRIMARY;
	if (seen == a->st)
		return;
	const struct ha_fsm_row *r = ha_fsm_observed(a->st, seen);
	agent_move(a, seen, HA_FLOW_NONE, r ? r->why : "observed");
}

/* role and state from what we see */
static void observe(struct ha_agent *a)
{
	a->data_present = file_exists(a->cfg->pg.data_dir, "PG_VERSION");
	enum pgc_pm_state pm = a->io->state(a->pg);
	if (!a->data_present) {
		a->role = HA_ROLE_UNINITIALIZED;
	} else if (pm == PGC_PM_RUNNING && a->probe_ok) {
		a->role = a->in_recovery ? HA_ROLE_REPLICA : HA_ROLE_PRIMARY;
	} else if (a->controldata_known) {
		a->role = strstr(a->cd_state, "recovery") ? HA_ROLE_REPLICA
			  : strcmp(a->cd_state, "shut down") == 0 ||
					  strcmp(a->cd_state, "in production") ==
						  0
				  ? HA_ROLE_PRIMARY
				  : HA_ROLE_REPLICA;
	} else if (a->role == HA_ROLE_UNINITIALIZED) {
		a->role = HA_ROLE_UNKNOWN;
	}
	if (a->flow != HA_FLOW_NONE || a->state == HA_ST_REFUSED)
		return;
	observe_fsm(a, pm);
	if (pm == PGC_PM_RUNNING && a->probe_ok)
		set_state(a,
			  a->in_recovery && a->streaming ? HA_ST_STREAMING
							 : HA_ST_RUNNING,
			  NULL);
	else if (pm == PGC_PM_STARTING)
		set_state(a, HA_ST_STARTING, NULL);
	else if (pm == PGC_PM_STOPPED && a->state != HA_ST_CRASHED &&
		 a->state != HA_ST_WAITING)
		set_state(a, HA_ST_STOPPED, a->detail);
}

/* ------------------------------------------------------------------ */
/* Decisions                                                            */
/* ------------------------------------------------------------------ */

static void ensure_slots_done(void *arg, int err, const char *errmsg,
			      const struct pgc_rows *rows)
{
	struct ha_agent *a = arg;
	(void)rows;
	a->slots_inflight = false;
	if (err != 0)
		log_warn("ha[%s] replication slots: %s", a->cfg->node_name,
			 errmsg);
}

/* On the primary: a physical slot pgw_<name> for every other member of the
 * cluster (its Raft membership, so a replica that is down keeps its slot),
 * and pgwarden's slots of members that left dropped (inactive ones only;
 * slots not named pgw_* are the operator's and never touched). */
static int add_slot_name(char *list, size_t cap, size_t *len, const char *name)
{
	char s[64], slot[64];
	cfg_pg_name(name, s, sizeof s);
	snprintf(slot, sizeof slot, "pgw_%.58s", s);
	/* already listed? tokens are separated by '{', ',' and '}' */
	size_t sl = strlen(slot);
	for (const char *p = strstr(list, slot); p; p = strstr(p + 1, slot))
		if ((p[-1] == '{' || p[-1] == ',') &&
		    (p[sl] == ',' || p[sl] == '}' || p[sl] == '\0'))
			return 0;
	int n = snprintf(list + *len, cap - *len, "%s%s", *len > 1 ? "," : "",
			 slot);
	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

static void ensure_slots(struct ha_agent *a)
{
	if (!a->cfg->pg.use_slots || a->slots_inflight)
		return;
	uint64_t now = now_ms();
	if (now - a->slots_checked_ms < 2000)
		return;
	a->slots_checked_ms = now;
	struct rs_member *ms = NULL;
	size_t nm = 0;
	if (rs_store_members(a->store, &ms, &nm) != 0)
		return;
	char prefix[256];
	ha_key(prefix, sizeof prefix, a->cfg->cluster_name, "members/");
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	if (a->io->range(a->store, prefix, strlen(prefix), true,
			 0, &kvs, &n, &rev) != 0) {
		mem_free(ms);
		return;
	}
	size_t cap = 64 + (n + nm) * 72;
	char *list = mem_malloc(cap);
	if (!list) {
		rs_kvs_free(kvs, n);
		mem_free(ms);
		return;
	}
	size_t len = (size_t)snprintf(list, cap, "{");
	for (size_t i = 0; i < nm; i++)
		if (ms[i].name[0] && strcmp(ms[i].name, a->cfg->node_name) != 0)
			add_slot_name(list, cap, &len, ms[i].name);
	for (size_t i = 0; i < n; i++) {
		const char *name = kvs[i].key + strlen(prefix);
		if (strcmp(name, a->cfg->node_name) != 0)
			add_slot_name(list, cap, &len, name);
	}
	snprintf(list + len, cap - len, "}");
	rs_kvs_free(kvs, n);
	mem_free(ms);
	const char *sql =
		"WITH want AS (SELECT unnest($1::text[]) AS s), "
		"made AS (SELECT pg_create_physical_replication_slot(s, true) "
		"FROM want WHERE s NOT IN (SELECT slot_name FROM "
		"pg_replication_slots)), "
		"gone AS (SELECT pg_drop_replication_slot(slot_name) FROM "
		"pg_replication_slots WHERE slot_type = 'physical' AND NOT "
		"active AND slot_name LIKE 'pgw\\_%' AND slot_name NOT IN "
		"(SELECT s FROM want)) "
		"SELECT (SELECT count(*) FROM made), (SELECT count(*) FROM gone)";
	const char *params[] = { list };
	if (a->io->query(a->pg, sql, 1, params, 5000, ensure_slots_done, a) ==
	    0)
		a->slots_inflight = true;
	mem_free(list);
}

/* ------------------------------------------------------------------ */
/* Switchover: this node, the primary, hands over to a replica           */
/* ------------------------------------------------------------------ */
/* 1. stop PostgreSQL cleanly (fast): the shutdown checkpoint is streamed
 * 2. pg_controldata: its location is the final LSN
 * 3. poll the target's pg_last_wal_receive_lsn() until it is past that
 *    (every 20 ms, at most 5 s)
 * 4. one store write moves the leader key, with our lease, to the target
 *    (compare-and-swap on the key's revision); the target then keeps that
 *    lease alive and promotes
 * Any failure before 4: the request is dropped and, as we still hold the
 * lease, the next tick starts PostgreSQL as the primary again. */

static void on_request_deleted(void *arg, int status,
			       const struct rs_result *res)
{
	(void)arg;
	(void)status;
	(void)res;
}

static void delete_request(struct ha_agent *a, const char *leaf, uint64_t rev)
{
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, leaf);
	struct rs_cmd c = { .op = RS_OP_DELETE,
			    .flags = RS_CMD_HAS_PREV,
			    .prev_rev = rev,
			    .key = { key, (uint32_t)strlen(key) } };
	agent_submit(a, &c, STORE_TIMEOUT_MS, on_request_deleted, a);
}

static void sw_cleanup(struct ha_agent *a)
{
	uv_timer_stop(&a->sw_timer);
	pgc_conn_free(a->sw_conn);
	a->sw_conn = NULL;
}

/* A switchover step failed: sw_abort is its next step. */
static void sw_fail(struct ha_agent *a, const char *why)
{
	flow_next(a, ERR_CANCELED, why);
}

/* The leader key names the target now, with our lease: not leading. */
static void sw_handed(struct ha_agent *a)
{
	a->leader = false;
	a->leader_lease = 0;
	uv_timer_stop(&a->fence_timer);
	wd_disarm(&a->wd); /* PostgreSQL is stopped cleanly */
	a->clean_handover = true;
	log_info("ha[%s] handed the primary lease over to %s at lsn %" PRIu64,
		 a->cfg->node_name, a->sw_target, a->sw_final_lsn);
	sw_cleanup(a);
	delete_request(a, "switchover", a->sw_key_rev);
	delete_request(a, "failover", a->sw_key_rev);
}

/* Resuming as primary after a handover put whose outcome is unknown (a
 * timeout, a Raft leader change: it may still commit) would let the
 * target promote beside us. So the outcome is settled first, through the
 * Raft log (step sw_settle): put our own name with the revision the
 * handover compared with. If that commits, the handover did not, and
 * never can (the revision moved on): resume (sw_abort). If the compare
 * fails, the key moved (sw_moved): the handover committed, or the lease
 * went; never resume. Unknown again: ask again, PostgreSQL stays stopped
 * meanwhile. */
static void sw_settle(struct ha_agent *a);
static void on_sw_settle_timer(uv_timer_t *t);

static void on_sw_settled(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	if (a->flow != HA_FLOW_SWITCHOVER || a->closing)
		return;
	if (status == 0 && res->code == 0) {
		a->leader_rev = res->revision;
		snprintf(a->flow_msg, sizeof a->flow_msg,
			 "the handover did not commit (the leader key was "
			 "claimed back)");
		flow_next(a, 0, NULL); /* -> sw_abort: resume */
		return;
	}
	if ((status == 0 && res->code != 0) || !a->leader) {
		/* ERR_CONFLICT: the key moved; ERR_NOTFOUND: the lease is
		 * gone; !leader: fenced meanwhile */
		flow_next(a, status ? status : res->code,
			  "the leader key moved"); /* -> sw_moved */
		return;
	}
	/* not at once: a store without a leader answers "unavailable" on
	 * the next loop turn, and asking again from here would spin the loop
	 * (a 0 ms timer started in a timer callback runs in the same pass) */
	log_warn("ha[%s] settling the handover: %s; asking again in 200 ms",
		 a->cfg->node_name, err_str(status));
	uv_timer_start(&a->sw_timer, on_sw_settle_timer, 200, 0);
}

static void on_sw_settle_timer(uv_timer_t *t)
{
	struct ha_agent *a = t->data;
	if (a->flow == HA_FLOW_SWITCHOVER && !a->closing)
		sw_settle(a);
}

static void sw_settle(struct ha_agent *a)
{
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, "leader");
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.flags = RS_CMD_HAS_PREV,
		.prev_rev = a->sw_leader_rev,
		.key = { key, (uint32_t)strlen(key) },
		.value = { a->cfg->node_name,
			   (uint32_t)strlen(a->cfg->node_name) },
		.lease = a->leader_lease,
	};
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_sw_settled, a) != 0) {
		/* not even submitted: nothing can commit from this attempt,
		 * but the handover's own put still may: try again */
		uv_timer_start(&a->sw_timer, on_sw_settle_timer, 200, 0);
	}
}

static void on_handed_over(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	/* tests: the put committed, its answer is lost on the way */
	if (status == 0 && res->code == 0 && failpoint("handover_reply_lost"))
		status = ERR_TIMEOUT;
	bool ok = status == 0 && res->code == 0;
	if (a->flow != HA_FLOW_SWITCHOVER || a->closing) {
		/* the daemon stops meanwhile: the key moved all the same */
		if (ok)
			sw_handed(a);
		return;
	}
	if (ok) {
		flow_next(a, 0, NULL); /* -> sw_handed */
		return;
	}
	/* applied and refused (the compare failed): it did not commit;
	 * no answer: it may still commit (-> sw_unknown) */
	a->sw_unknown = status != 0;
	if (status != 0)
		log_warn("ha[%s] handover to %s: %s, its outcome is unknown: "
			 "settling it before anything else",
			 a->cfg->node_name, a->sw_target, err_str(status));
	flow_next(a, status ? status : ERR_CANCELED,
		  "the leader key could not be moved");
}

static void on_fp_late_put(uv_timer_t *t)
{
	struct ha_agent *a = t->data;
	if (!a->closing)
		agent_submit(a, &a->fp_cmd, STORE_TIMEOUT_MS, on_revoked, a);
}

static void on_fp_handover_timeout(uv_timer_t *t)
{
	struct ha_agent *a = t->data;
	struct rs_result res = { 0 };
	if (a->flow == HA_FLOW_SWITCHOVER && !a->closing)
		on_handed_over(a, ERR_TIMEOUT, &res);
}

static void on_sw_timer(uv_timer_t *t);

static void on_target_lsn(void *arg, int err, const char *errmsg,
			  const struct pgc_rows *rows)
{
	struct ha_agent *a = arg;
	if (a->flow != HA_FLOW_SWITCHOVER || a->closing)
		return;
	uint64_t lsn = 0;
	const char *v = err == 0 ? pgc_rows_value(rows, 0, 0) : NULL;
	if (v && pgc_lsn_parse(v, &lsn) == 0 && lsn > a->sw_final_lsn) {
		flow_next(a, 0, NULL); /* -> sw_hand_over */
		return;
	}
	if (now_ms() > a->sw_deadline_ms) {
		char why[256];
		snprintf(why, sizeof why,
			 "%s did not receive the final lsn within 5 s (%s)",
			 a->sw_target, err ? errmsg : (v ? v : "no lsn"));
		sw_fail(a, why);
		return;
	}
	uv_timer_start(&a->sw_timer, on_sw_timer, 20, 0);
}

static void on_sw_timer(uv_timer_t *t)
{
	struct ha_agent *a = t->data;
	if (a->flow != HA_FLOW_SWITCHOVER || !a->sw_conn)
		return;
	if (pgc_conn_query(a->sw_conn, "SELECT pg_last_wal_receive_lsn()::text",
			   0, NULL, 1000, on_target_lsn, a) != 0)
		uv_timer_start(&a->sw_timer, on_sw_timer, 20, 0);
}

static void on_sw_controldata(void *arg, int err, const char *errmsg,
			      const struct pgc_controldata *cd)
{
	struct ha_agent *a = arg;
	if (a->flow != HA_FLOW_SWITCHOVER || a->closing)
		return;
	if (err != 0) {
		sw_fail(a, errmsg);
		return;
	}
	if (strcmp(cd->state, "shut down") != 0) {
		sw_fail(a, "PostgreSQL did not shut down cleanly");
		return;
	}
	a->sw_final_lsn = cd->checkpoint_lsn;
	flow_next(a, 0, NULL); /* -> sw_wait_target */
}

/* Is m a replica that may take over now? why says why not. */
static bool sw_eligible(struct ha_agent *a, const struct ha_member *m,
			char *why, size_t len)
{
	if (strcmp(m->name, a->cfg->node_name) == 0) {
		snprintf(why, len, "%s is the primary already", m->name);
		return false;
	}
	if (m->tags.nofailover || m->tags.failover_priority <= 0) {
		snprintf(why, len, "%s is tagged nofailover", m->name);
		return false;
	}
	if (m->role != HA_ROLE_REPLICA || m->state != HA_ST_STREAMING) {
		snprintf(why, len, "%s is not a streaming replica (%s, %s)",
			 m->name, ha_role_name(m->role),
			 ha_state_name(m->state));
		return false;
	}
	char s[32];
	snprintf(s, sizeof s, "%" PRIu64, a->sysid);
	if (strcmp(m->sysid, s) != 0) {
		snprintf(why, len, "%s belongs to another cluster", m->name);
		return false;
	}
	return true;
}

/* The primary looks for a switchover (or a manual failover while it is
 * healthy) addressed to it; true when one started. */
static bool maybe_switchover(struct ha_agent *a)
{
	const char *leaves[] = { "switchover", "failover" };
	char buf[512];
	uint64_t rev = 0;
	const char *leaf = NULL;
	for (int i = 0; i < 2 && !leaf; i++)
		if (read_key(a, leaves[i], buf, sizeof buf, NULL, &rev))
			leaf = leaves[i];
	if (!leaf)
		return false;
	json_t *o = json_loads(buf, 0, NULL);
	const char *from = o ? json_string_value(json_object_get(o, "from"))
			     : NULL;
	const char *to = o ? json_string_value(json_object_get(o, "to")) : NULL;
	json_int_t at = o ? json_integer_value(json_object_get(o, "at")) : 0;
	char target[HA_NAME_MAX + 1] = "";
	snprintf(target, sizeof target, "%s", to ? to : "");
	bool for_me = !from || !*from || strcmp(from, a->cfg->node_name) == 0;
	json_decref(o);
	if (!for_me) {
		log_warn("ha[%s] dropping a %s request for leader %s", 
			 a->cfg->node_name, leaf, from);
		delete_request(a, leaf, rev);
		return false;
	}
	if (at > 0 && (int64_t)time(NULL) < (int64_t)at)
		return false; /* scheduled later */
	char why[256] = "";
	struct ha_member m;
	if (target[0]) {
		if (!read_member(a, target, &m)) {
			snprintf(why, sizeof why, "%s does not report", target);
		} else if (!sw_eligible(a, &m, why, sizeof why)) {
			/* why is set */
		}
	} else {
		/* the most advanced eligible replica */
		char prefix[256];
		ha_key(prefix, sizeof prefix, a->cfg->cluster_name, "members/");
		struct rs_kv *kvs = NULL;
		size_t n = 0;
		uint64_t r;
		uint64_t best = 0;
		if (a->io->range(a->store, prefix,
				 strlen(prefix), true, 0, &kvs, &n, &r) == 0) {
			for (size_t i = 0; i < n; i++) {
				char w[128];
				if (ha_member_decode(kvs[i].value,
						     kvs[i].value_len, &m) != 0 ||
				    !sw_eligible(a, &m, w, sizeof w))
					continue;
				if (!target[0] || ha_member_lsn(&m) > best) {
					best = ha_member_lsn(&m);
					snprintf(target, sizeof target, "%s",
						 m.name);
				}
			}
			rs_kvs_free(kvs, n);
		}
		if (!target[0])
			snprintf(why, sizeof why,
				 "no streaming replica may take over");
	}
	if (why[0]) {
		log_warn("ha[%s] %s refused: %s", a->cfg->node_name, leaf, why);
		delete_request(a, leaf, rev);
		return false;
	}
	snprintf(a->sw_target, sizeof a->sw_target, "%s", target);
	a->sw_key_rev = rev;
	log_info("ha[%s] %s to %s: stopping PostgreSQL cleanly",
		 a->cfg->node_name, leaf, target);
	if (fsm_begin(a, HA_FSM_STOPPED, HA_FLOW_SWITCHOVER) != 0)
		delete_request(a, leaf, rev);
	return true;
}

/* ------------------------------------------------------------------ */
/* History                                                              */
/* ------------------------------------------------------------------ */

static void on_history_written(void *arg, int status,
			       const struct rs_result *res)
{
	struct ha_agent *a = arg;
	if (status == 0 && res->code == ERR_CONFLICT)
		a->history_pending = true; /* raced: try again */
}

/* Append {timeline, lsn, reason, leader, from, time} to the history key
 * (read, append, compare-and-swap). */
static void write_history(struct ha_agent *a)
{
	a->history_pending = false;
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, "history");
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev, prev = 0;
	json_t *arr = NULL;
	if (a->io->range(a->store, key, strlen(key), false, 1,
			 &kvs, &n, &rev) == 0 &&
	    n == 1) {
		arr = json_loads(kvs[0].value, 0, NULL);
		prev = kvs[0].mod_rev;
	}
	rs_kvs_free(kvs, n);
	if (!json_is_array(arr)) {
		json_decref(arr);
		arr = json_array();
	}
	/* keep the last 100 entries */
	while (json_array_size(arr) >= 100)
		json_array_remove(arr, 0);
	char last[HA_NAME_MAX + 1] = "";
	read_key(a, "last_leader", last, sizeof last, NULL, NULL);
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_array_append_new(
		arr, json_pack("{s:i,s:I,s:s,s:s,s:s}", "timeline",
			       (int)a->timeline, "lsn", (json_int_t)a->wal_lsn,
			       "reason", a->promote_reason, "leader",
			       a->cfg->node_name, "time", ts));
	char *js = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!js)
		return;
	struct rs_cmd c = { .op = RS_OP_PUT,
			    .flags = RS_CMD_HAS_PREV,
			    .prev_rev = prev,
			    .key = { key, (uint32_t)strlen(key) },
			    .value = { js, (uint32_t)strlen(js) } };
	agent_submit(a, &c, STORE_TIMEOUT_MS, on_history_written, a);
	free(js);
}

/* ------------------------------------------------------------------ */
/* Life cycle: the rows of ha_fsm.c, run                                */
/* ------------------------------------------------------------------ */
/* A step function starts its step's one operation and returns
 * STEP_STARTED (its completion calls flow_cb -> flow_next), or finishes
 * at once: STEP_NEXT (go on as after success) or STEP_FAILED (go on as
 * after failure; the step set flow_err/flow_msg). A negative ERR_* means
 * the operation could not be started: the flow ends failed with pgctl's
 * message or, for the entry step, does not start at all. */
#define STEP_STARTED 0
#define STEP_NEXT 1
#define STEP_FAILED 2

typedef int (*step_fn)(struct ha_agent *a);
static const step_fn step_fns[HA_STEP__N];

/* The one place the life-cycle state changes: the move must be a row of
 * the table (for flow f, or an observation when f is HA_FLOW_NONE). An
 * observation not in the table is still recorded - it is what PostgreSQL
 * did - but logged as an error: the table is incomplete. */
static void agent_move(struct ha_agent *a, enum ha_fsm_state to,
		       enum ha_flow f, const char *reason)
{
	const struct ha_fsm_row *r = ha_fsm_find(a->st, to, f);
	if (!r) {
		log_error("ha[%s] role=%s->%s reason=%s: not in the "
			  "transition table (flow %s)",
			  a->cfg->node_name, ha_fsm_state_name(a->st),
			  ha_fsm_state_name(to), reason, ha_flow_name(f));
		if (f != HA_FLOW_NONE)
			return;
	} else {
		log_info("ha[%s] role=%s->%s reason=%s", a->cfg->node_name,
			 ha_fsm_state_name(a->st), ha_fsm_state_name(to),
			 reason);
	}
	a->st = to;
}

static void step_fail(struct ha_agent *a, int err, const char *why)
{
	a->flow_err = err ? err : ERR_PG;
	snprintf(a->flow_msg, sizeof a->flow_msg, "%s",
		 why && *why ? why : err_str(a->flow_err));
}

static void flow_end(struct ha_agent *a, int err, const char *msg)
{
	enum ha_flow f = a->flow;
	a->flow = HA_FLOW_NONE;
	a->step = HA_STEP_NONE;
	a->row = NULL;
	/* What the last probe said is from before the flow: decide nothing
	 * on it (e.g. promote twice) until the next probe answers. */
	a->probe_ok = false;
	if (err != 0) {
		log_warn("ha[%s] %s failed: %s", a->cfg->node_name,
			 ha_flow_name(f), msg && *msg ? msg : err_str(err));
		/* a long message is cut to the field */
		if (snprintf(a->detail, sizeof a->detail, "%s: %s",
			     ha_flow_name(f),
			     msg && *msg ? msg : err_str(err)) < 0)
			a->detail[0] = '\0';
	} else {
		log_info("ha[%s] %s done", a->cfg->node_name, ha_flow_name(f));
		a->detail[0] = '\0';
		switch (f) {
		case HA_FLOW_BOOTSTRAP:
		case HA_FLOW_START_PRIMARY:
			announce_start(a, HA_ROLE_PRIMARY);
			break;
		case HA_FLOW_CLONE:
		case HA_FLOW_START_REPLICA:
			announce_start(a, HA_ROLE_REPLICA);
			break;
		case HA_FLOW_PROMOTE:
			run_callback(a, "on_role_change", "primary");
			break;
		case HA_FLOW_REJOIN:
			/* a primary's data now runs as a replica; after a
			 * failed pg_rewind the data is wiped instead, and the
			 * clone that follows announces the replica */
			if (a->st == HA_FSM_NO_DATA)
				break;
			if (a->cb_role == HA_ROLE_REPLICA)
				run_callback(a, "on_start", "replica");
			else
				run_callback(a, "on_role_change", "replica");
			break;
		case HA_FLOW_SWITCHOVER:
			run_callback(a, "on_stop", "primary");
			break;
		case HA_FLOW_NONE:
		case HA_FLOW_REPOINT:
		case HA_FLOW_REINIT:
		case HA_FLOW_REFUSE:
		case HA_FLOW_SHUTDOWN:
		case HA_FLOW__N:
			break;
		}
	}
	if (f == HA_FLOW_SHUTDOWN)
		return;
	report(a, true);
	/* look again soon: a replica that just started streams within tens
	 * of ms, and the next step of a failover should not wait a tick */
	if (!a->closing)
		uv_timer_start(&a->tick, on_tick, 50, a->loop_wait);
}

/* The flow reached an end of its step table. */
static void flow_finish(struct ha_agent *a, const struct ha_next *n)
{
	const struct ha_fsm_row *r = a->row;
	enum ha_flow f = r->flow;
	bool failed = n->kind == HA_NEXT_FAIL || n->kind == HA_NEXT_FAIL_AT;
	enum ha_fsm_state to = n->kind == HA_NEXT_GOAL ? r->to
			       : n->kind == HA_NEXT_FAIL ? a->st
							 : n->state;
	char reason[300];
	if (failed)
		snprintf(reason, sizeof reason, "%s failed: %s",
			 ha_flow_name(f), a->flow_msg);
	else
		snprintf(reason, sizeof reason, "%s done", ha_flow_name(f));
	bool immediate = ha_flow_get(f)->immediate;
	if (n->kind != HA_NEXT_FAIL)
		agent_move(a, to, f, reason);
	else if (immediate) /* tried again next tick: no line per tick */
		log_debug("ha[%s] role=%s goal=%s reason=%s",
			  a->cfg->node_name, ha_fsm_state_name(a->st),
			  ha_fsm_state_name(r->to), reason);
	else
		log_info("ha[%s] role=%s goal=%s reason=%s", a->cfg->node_name,
			 ha_fsm_state_name(a->st), ha_fsm_state_name(r->to),
			 reason);
	if (immediate) {
		a->row = NULL;
		return;
	}
	flow_end(a, failed ? a->flow_err : 0, a->flow_msg);
}

/* Run step s and the ones that follow at once, until one waits for an
 * operation or the flow ends. Returns the entry step's error when the
 * flow could not start (then it is not running), else 0. */
static int flow_run(struct ha_agent *a, enum ha_step s, bool entry)
{
	for (;;) {
		const struct ha_step_def *sd = ha_flow_step(a->row->flow, s);
		AGENT_ASSERT(sd && step_fns[s]);
		a->step = s;
		int rv = step_fns[s](a);
		if (rv == STEP_STARTED)
			return 0;
		if (rv < 0) {
			const char *em = a->io->errmsg(a->pg);
			if (entry) {
				log_warn("ha[%s] %s could not start: %s",
					 a->cfg->node_name,
					 ha_flow_name(a->row->flow),
					 em[0] ? em : err_str(rv));
				a->flow = HA_FLOW_NONE;
				a->step = HA_STEP_NONE;
				a->row = NULL;
				return rv;
			}
			step_fail(a, rv, em);
			struct ha_next fail = { .kind = HA_NEXT_FAIL };
			flow_finish(a, &fail);
			return 0;
		}
		const struct ha_next *n = rv == STEP_NEXT ? &sd->ok : &sd->err;
		if (n->kind != HA_NEXT_STEP) {
			flow_finish(a, n);
			return 0;
		}
		s = n->step;
		entry = false;
	}
}

/* The operation of the running step completed (err 0: success). */
static void flow_next(struct ha_agent *a, int err, const char *msg)
{
	if (a->flow == HA_FLOW_NONE || !a->row)
		return;
	const struct ha_step_def *sd = ha_flow_step(a->flow, a->step);
	AGENT_ASSERT(sd);
	if (err != 0)
		step_fail(a, err, msg);
	const struct ha_next *n = err ? &sd->err : &sd->ok;
	if (n->kind != HA_NEXT_STEP) {
		flow_finish(a, n);
		return;
	}
	flow_run(a, n->step, false);
}

/* Go towards `to` by flow f from the current state: the row must exist.
 * 0 when it runs (or, immediate, ran), else why it could not start. */
static int fsm_begin(struct ha_agent *a, enum ha_fsm_state to, enum ha_flow f)
{
	const struct ha_fsm_row *r = ha_fsm_find(a->st, to, f);
	if (!r) {
		log_error("ha[%s] flow=%s role=%s goal=%s: not in the "
			  "transition table",
			  a->cfg->node_name, ha_flow_name(f),
			  ha_fsm_state_name(a->st), ha_fsm_state_name(to));
		return ERR_INVAL;
	}
	a->row = r;
	a->flow_err = 0;
	a->flow_msg[0] = '\0';
	if (!ha_flow_get(f)->immediate) {
		a->flow = f;
		log_info("ha[%s] flow=%s role=%s goal=%s", a->cfg->node_name,
			 ha_flow_name(f), ha_fsm_state_name(a->st),
			 ha_fsm_state_name(to));
	}
	return flow_run(a, r->entry, true);
}

/* ---- bootstrap ---- */

static int st_initdb(struct ha_agent *a)
{
	set_state(a, HA_ST_INITIALIZING, NULL);
	char **opts = a->cfg->pg.initdb;
	const char **o = mem_calloc(a->cfg->pg.ninitdb + 1, sizeof *o);
	if (!o)
		return ERR_NOMEM;
	for (size_t i = 0; i < a->cfg->pg.ninitdb; i++)
		o[i] = opts[i];
	struct pgc_initdb_opts io = {
		.options = o,
		/* the [bootstrap] initdb list decides (its default has
		 * --data-checksums) */
		.no_checksums = true,
		.auth_local = "peer",
		.auth_host = "scram-sha-256",
	};
	int rv = a->io->initdb(a->pg, &io, on_op_done, a);
	mem_free(o);
	return rv;
}

static int st_hba_start(struct ha_agent *a)
{
	a->data_present = true;
	int rv = write_hba(a);
	if (rv == 0)
		rv = start_pg(a, false, NULL);
	return rv;
}

static int st_roles(struct ha_agent *a)
{
	char *sql = NULL;
	int rv = bootstrap_sql(a, &sql);
	if (rv == 0) {
		rv = a->io->query(a->pg, sql, 0, NULL, 10000, on_sql_done, a);
		mem_free(sql);
	}
	return rv;
}

static int st_post_bootstrap(struct ha_agent *a)
{
	if (!a->cfg->pg.post_bootstrap)
		return STEP_NEXT;
	char port[16], sock[4096];
	uint16_t p = 0;
	char host[256];
	cfg_split_hostport(a->cfg->pg.listen, host, sizeof host, &p);
	snprintf(port, sizeof port, "PGPORT=%u", p);
	snprintf(sock, sizeof sock, "PGHOST=%s", a->cfg->pg.socket_dir);
	char user[128];
	snprintf(user, sizeof user, "PGUSER=%s",
		 a->cfg->pg.superuser ? a->cfg->pg.superuser : "postgres");
	const char *argv[] = { a->cfg->pg.post_bootstrap, NULL };
	const char *env[] = { port, sock, user, "PGDATABASE=postgres", NULL };
	struct pgc_proc_opts o = {
		.file = a->cfg->pg.post_bootstrap,
		.argv = argv,
		.env_add = env,
		.name = "post_bootstrap",
		.timeout_ms = 120000,
	};
	char emsg[256];
	int rv = pgc_proc_run(a->loop, &o, on_script_done, a, NULL, emsg,
			      sizeof emsg);
	if (rv != 0)
		log_error("ha[%s] post_bootstrap: %s", a->cfg->node_name,
			  emsg);
	return rv;
}

static int st_sysid(struct ha_agent *a)
{
	/* pg_controldata, not a probe: the tick's own probe may be running,
	 * and probes are one at a time */
	return a->io->controldata(a->pg, on_sysid_controldata, a);
}

static int st_init_key(struct ha_agent *a)
{
	char key[256], val[32];
	ha_key(key, sizeof key, a->cfg->cluster_name, "initialize");
	snprintf(val, sizeof val, "%" PRIu64, a->sysid);
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.flags = RS_CMD_HAS_PREV,
		.prev_rev = 0,
		.key = { key, (uint32_t)strlen(key) },
		.value = { val, (uint32_t)strlen(val) },
	};
	return agent_submit(a, &c, STORE_TIMEOUT_MS, on_init_written, a);
}

static int st_bootstrapped(struct ha_agent *a)
{
	log_info("ha[%s] bootstrapped the cluster system_id=%" PRIu64,
		 a->cfg->node_name, a->sysid);
	return STEP_NEXT;
}

static int st_bootstrap_abort(struct ha_agent *a)
{
	set_state(a, HA_ST_REFUSED, a->flow_msg);
	/* a half-bootstrapped PostgreSQL must not keep taking writes once
	 * the lease is given back */
	pid_t pid = a->io->pid(a->pg);
	if (pid > 0 && kill(pid, SIGQUIT) != 0)
		log_error("ha[%s] stopping PostgreSQL: %s", a->cfg->node_name,
			  strerror(errno));
	if (a->leader) {
		/* let the controller pick another node */
		struct rs_cmd c = { .op = RS_OP_LEASE_REVOKE,
				    .lease = a->leader_lease };
		a->leader = false;
		uv_timer_stop(&a->fence_timer);
		agent_submit(a, &c, STORE_TIMEOUT_MS, on_revoked, a);
	}
	return STEP_NEXT;
}

/* ---- start, promote, clone, repoint ---- */

static int st_start_primary(struct ha_agent *a)
{
	set_state(a, HA_ST_STARTING,
		  a->flow_detail[0] ? a->flow_detail : NULL);
	return start_pg(a, false, NULL);
}

static int st_start_replica(struct ha_agent *a)
{
	set_state(a, HA_ST_STARTING, NULL);
	return start_pg(a, true, a->flow_conninfo);
}

static int st_promote(struct ha_agent *a)
{
	set_state(a, HA_ST_PROMOTING, NULL);
	sync_before_promote(a);
	return a->io->promote(a->pg, 0, on_op_done, a);
}

static int st_promoted(struct ha_agent *a)
{
	if (a->leader)
		a->history_pending = true;
	return STEP_NEXT;
}

static int st_basebackup(struct ha_agent *a)
{
	set_state(a, HA_ST_CLONING, NULL);
	struct pgc_basebackup_opts bo = { .conninfo = a->flow_conninfo };
	return a->io->basebackup(a->pg, &bo, on_op_done, a);
}

static int st_cloned_start(struct ha_agent *a)
{
	a->data_present = true;
	a->controldata_known = false;
	return start_pg(a, true, a->flow_conninfo);
}

/* replica of someone else (or unknown after adoption): re-point;
 * primary_conninfo reloads without a restart */
static int st_repoint(struct ha_agent *a)
{
	const char **params = build_params(a);
	if (!params) {
		step_fail(a, ERR_NOMEM, NULL);
		return STEP_FAILED;
	}
	struct pgc_conf c = { .parameters = params,
			      .replica = true,
			      .primary_conninfo = a->flow_conninfo,
			      .primary_slot_name =
				      a->cfg->pg.use_slots ? a->slot : NULL };
	int rv = a->io->write_conf(a->pg, &c);
	free_params(params);
	if (rv == 0)
		rv = a->io->reload(a->pg);
	if (rv != 0) {
		step_fail(a, rv, a->io->errmsg(a->pg));
		return STEP_FAILED;
	}
	log_info("ha[%s] following %s", a->cfg->node_name, a->flow_leader);
	snprintf(a->following, sizeof a->following, "%s", a->flow_leader);
	return STEP_NEXT;
}

/* ---- rejoin ---- */

static int st_rejoin_stop(struct ha_agent *a)
{
	if (a->io->state(a->pg) == PGC_PM_STOPPED)
		return STEP_NEXT;
	/* a writable PostgreSQL on a node that does not lead */
	set_state(a, HA_ST_DEMOTING, NULL);
	return a->io->stop(a->pg, PGC_STOP_FAST, 30000, on_op_done, a);
}

static int st_recover(struct ha_agent *a)
{
	if (!a->flow_was_crashed_primary)
		return STEP_NEXT;
	/* pg_rewind needs a clean shutdown: let it recover as a standby
	 * that follows no one */
	return start_pg(a, true, NULL);
}

static int st_recover_stop(struct ha_agent *a)
{
	if (!a->flow_was_crashed_primary ||
	    a->io->state(a->pg) == PGC_PM_STOPPED)
		return STEP_NEXT;
	a->flow_was_crashed_primary = false;
	return a->io->stop(a->pg, PGC_STOP_FAST, 30000, on_op_done, a);
}

static int st_rewind(struct ha_agent *a)
{
	set_state(a, HA_ST_REWINDING, NULL);
	return a->io->rewind(a->pg, a->flow_rewind_conninfo, 0, on_op_done, a);
}

static int st_rewind_start(struct ha_agent *a)
{
	return start_pg(a, true, a->flow_conninfo);
}

static int st_rewind_failed(struct ha_agent *a)
{
	/* no marker: it failed before touching the data (the source was
	 * unreachable or still starting): intact, try again later */
	if (!file_exists(a->cfg->pg.data_dir, PGC_REWIND_FAILED_FILE))
		return STEP_FAILED;
	log_warn("ha[%s] pg_rewind failed: %s", a->cfg->node_name,
		 a->flow_msg);
	return STEP_NEXT;
}

static int st_wipe_or_refuse(struct ha_agent *a)
{
	if (!a->cfg->pg.remove_data_on_rewind_failure) {
		set_state(a, HA_ST_REFUSED, "pg_rewind failed");
		return STEP_FAILED;
	}
	log_warn("ha[%s] wiping the data directory to clone again",
		 a->cfg->node_name);
	return STEP_NEXT;
}

static int st_wipe(struct ha_agent *a)
{
	return a->io->wipe(a->pg, on_op_done, a);
}

static int st_rejoin_wiped(struct ha_agent *a)
{
	/* the next tick clones */
	a->data_present = false;
	a->controldata_known = false;
	return STEP_NEXT;
}

/* ---- switchover (see "Switchover" above) ---- */

static int st_sw_stop(struct ha_agent *a)
{
	set_state(a, HA_ST_DEMOTING, "switchover");
	return a->io->stop(a->pg, PGC_STOP_FAST, 10000, on_op_done, a);
}

static int st_sw_controldata(struct ha_agent *a)
{
	/* stopped cleanly */
	set_state(a, HA_ST_STOPPED, "switchover");
	if (a->io->controldata(a->pg, on_sw_controldata, a) != 0) {
		step_fail(a, ERR_CANCELED, "pg_controldata did not run");
		return STEP_FAILED;
	}
	return STEP_STARTED;
}

static int st_sw_wait_target(struct ha_agent *a)
{
	struct ha_member m;
	char conninfo[1024];
	if (!read_member(a, a->sw_target, &m) ||
	    superuser_conninfo(a, &m, conninfo, sizeof conninfo) != 0 ||
	    pgc_conn_new_conninfo(a->loop, conninfo, "switchover",
				  &a->sw_conn) != 0) {
		step_fail(a, ERR_CANCELED,
			  "cannot reach the target's PostgreSQL");
		return STEP_FAILED;
	}
	a->sw_deadline_ms = now_ms() + 5000;
	on_sw_timer(&a->sw_timer);
	return STEP_STARTED;
}

static int st_sw_hand_over(struct ha_agent *a)
{
	char key[256], cur[HA_NAME_MAX + 1];
	uint64_t lease = 0, rev = 0;
	a->sw_unknown = false;
	if (!read_key(a, "leader", cur, sizeof cur, &lease, &rev) ||
	    strcmp(cur, a->cfg->node_name) != 0 || lease != a->leader_lease) {
		step_fail(a, ERR_CANCELED, "the leader key changed meanwhile");
		return STEP_FAILED;
	}
	a->sw_leader_rev = rev;
	ha_key(key, sizeof key, a->cfg->cluster_name, "leader");
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.flags = RS_CMD_HAS_PREV,
		.prev_rev = rev,
		.key = { key, (uint32_t)strlen(key) },
		.value = { a->sw_target, (uint32_t)strlen(a->sw_target) },
		.lease = a->leader_lease,
	};
	if (failpoint("handover_commit_late")) {
		/* tests: the put is held back (as in a Raft leader that stops
		 * before it answers) and commits after the primary's wait for
		 * it timed out */
		a->fp_cmd = c;
		snprintf(a->fp_key, sizeof a->fp_key, "%s", key);
		a->fp_cmd.key.p = a->fp_key;
		uv_timer_start(&a->fp_timer, on_fp_late_put,
			       STORE_TIMEOUT_MS + 2500, 0);
		uv_timer_start(&a->sw_timer, on_fp_handover_timeout,
			       STORE_TIMEOUT_MS, 0);
		return STEP_STARTED;
	}
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_handed_over, a) != 0) {
		step_fail(a, ERR_CANCELED, "the store refused the handover");
		return STEP_FAILED;
	}
	return STEP_STARTED;
}

/* The handover put failed: no answer means it may still commit. */
static int st_sw_unknown(struct ha_agent *a)
{
	return a->sw_unknown ? STEP_NEXT : STEP_FAILED;
}

static int st_sw_settle(struct ha_agent *a)
{
	sw_settle(a);
	return STEP_STARTED;
}

static int st_sw_moved(struct ha_agent *a)
{
	char cur[HA_NAME_MAX + 1] = "";
	read_key(a, "leader", cur, sizeof cur, NULL, NULL);
	log_warn("ha[%s] the handover's outcome: the leader key moved "
		 "(now '%s'): not resuming as primary",
		 a->cfg->node_name, cur);
	return strcmp(cur, a->sw_target) == 0 ? STEP_NEXT : STEP_FAILED;
}

/* gone or someone else's: not ours in any case; rejoin by the usual path
 * (pg_rewind if needed) */
static int st_sw_lost(struct ha_agent *a)
{
	a->leader = false;
	a->leader_lease = 0;
	uv_timer_stop(&a->fence_timer);
	wd_disarm(&a->wd);
	sw_cleanup(a);
	step_fail(a, ERR_CANCELED, "the leader key moved during the handover");
	return STEP_NEXT;
}

static int st_sw_handed(struct ha_agent *a)
{
	sw_handed(a);
	return STEP_NEXT;
}

static int st_sw_abort(struct ha_agent *a)
{
	log_warn("ha[%s] switchover to %s abandoned: %s; resuming as primary",
		 a->cfg->node_name, a->sw_target, a->flow_msg);
	sw_cleanup(a);
	delete_request(a, "switchover", a->sw_key_rev);
	delete_request(a, "failover", a->sw_key_rev);
	a->flow_err = ERR_CANCELED;
	return STEP_NEXT;
}

/* ---- reinit, refuse ---- */

static int st_reinit_stop(struct ha_agent *a)
{
	set_state(a, HA_ST_CLONING, "reinit");
	if (a->io->state(a->pg) == PGC_PM_STOPPED)
		return STEP_NEXT;
	return a->io->stop(a->pg, PGC_STOP_FAST, 30000, on_op_done, a);
}

static int st_reinit_wiped(struct ha_agent *a)
{
	a->data_present = false;
	a->controldata_known = false;
	a->sysid = 0;
	a->cd_sysid = 0;
	return STEP_NEXT;
}

static int st_refuse(struct ha_agent *a)
{
	set_state(a, HA_ST_REFUSED, a->flow_detail);
	report(a, true);
	return STEP_NEXT;
}

/* ---- shutdown (ha_agent_shutdown): its own completions, so that an
 * operation of the flow it preempted cannot advance it ---- */

static void on_sd_stopped(void *arg, int err, const char *errmsg)
{
	flow_next(arg, err, errmsg);
}

static void on_sd_released(void *arg, int status, const struct rs_result *res)
{
	struct ha_agent *a = arg;
	(void)res;
	if (status == 0)
		log_info("ha[%s] primary lease released", a->cfg->node_name);
	flow_next(a, status, NULL);
}

static void on_sd_member_revoked(void *arg, int status,
				 const struct rs_result *res)
{
	(void)status;
	(void)res;
	flow_next(arg, 0, NULL);
}

static int st_sd_stop(struct ha_agent *a)
{
	int rv = a->io->stop(a->pg, PGC_STOP_FAST, 30000, on_sd_stopped, a);
	if (rv == 0)
		return STEP_STARTED;
	if (rv == ERR_UNAVAILABLE) {
		/* an operation runs: stop the postmaster by signal; the
		 * operation fails on its own */
		pid_t pid = a->io->pid(a->pg);
		if (pid > 0)
			kill(pid, SIGINT);
		step_fail(a, rv, "busy: fast shutdown signalled");
	} else {
		step_fail(a, rv, a->io->errmsg(a->pg));
	}
	return STEP_FAILED;
}

static int st_sd_release(struct ha_agent *a)
{
	if (a->flow_err != 0)
		log_warn("ha[%s] stopping PostgreSQL: %s", a->cfg->node_name,
			 a->flow_msg);
	else
		log_info("ha[%s] PostgreSQL stopped", a->cfg->node_name);
	run_callback(a, "on_stop", a->leader ? "primary" : "replica");
	/* Only now, with PostgreSQL down, may another node take over. */
	if (!a->leader)
		return STEP_FAILED;
	struct rs_cmd c = { .op = RS_OP_LEASE_REVOKE,
			    .lease = a->leader_lease };
	uv_timer_stop(&a->fence_timer);
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_sd_released, a) == 0)
		return STEP_STARTED;
	return STEP_FAILED;
}

static int st_sd_revoke_member(struct ha_agent *a)
{
	a->leader = false;
	/* PostgreSQL is down: the magic close, or the machine resets */
	wd_disarm(&a->wd);
	struct rs_cmd c = { .op = RS_OP_LEASE_REVOKE,
			    .lease = a->member_lease };
	if (a->member_lease != 0 &&
	    agent_submit(a, &c, STORE_TIMEOUT_MS, on_sd_member_revoked, a) ==
		    0)
		return STEP_STARTED;
	return STEP_NEXT;
}

static int st_sd_close(struct ha_agent *a)
{
	close_handles(a);
	return STEP_NEXT;
}

static const step_fn step_fns[HA_STEP__N] = {
	[HA_STEP_INITDB] = st_initdb,
	[HA_STEP_HBA_START] = st_hba_start,
	[HA_STEP_ROLES] = st_roles,
	[HA_STEP_POST_BOOTSTRAP] = st_post_bootstrap,
	[HA_STEP_SYSID] = st_sysid,
	[HA_STEP_INIT_KEY] = st_init_key,
	[HA_STEP_BOOTSTRAPPED] = st_bootstrapped,
	[HA_STEP_BOOTSTRAP_ABORT] = st_bootstrap_abort,
	[HA_STEP_START_PRIMARY] = st_start_primary,
	[HA_STEP_START_REPLICA] = st_start_replica,
	[HA_STEP_PROMOTE] = st_promote,
	[HA_STEP_PROMOTED] = st_promoted,
	[HA_STEP_BASEBACKUP] = st_basebackup,
	[HA_STEP_CLONED_START] = st_cloned_start,
	[HA_STEP_REPOINT] = st_repoint,
	[HA_STEP_REJOIN_STOP] = st_rejoin_stop,
	[HA_STEP_RECOVER] = st_recover,
	[HA_STEP_RECOVER_STOP] = st_recover_stop,
	[HA_STEP_REWIND] = st_rewind,
	[HA_STEP_REWIND_START] = st_rewind_start,
	[HA_STEP_REWIND_FAILED] = st_rewind_failed,
	[HA_STEP_WIPE_OR_REFUSE] = st_wipe_or_refuse,
	[HA_STEP_REJOIN_WIPE] = st_wipe,
	[HA_STEP_REJOIN_WIPED] = st_rejoin_wiped,
	[HA_STEP_SW_STOP] = st_sw_stop,
	[HA_STEP_SW_CONTROLDATA] = st_sw_controldata,
	[HA_STEP_SW_WAIT_TARGET] = st_sw_wait_target,
	[HA_STEP_SW_HAND_OVER] = st_sw_hand_over,
	[HA_STEP_SW_UNKNOWN] = st_sw_unknown,
	[HA_STEP_SW_SETTLE] = st_sw_settle,
	[HA_STEP_SW_MOVED] = st_sw_moved,
	[HA_STEP_SW_LOST] = st_sw_lost,
	[HA_STEP_SW_HANDED] = st_sw_handed,
	[HA_STEP_SW_ABORT] = st_sw_abort,
	[HA_STEP_REINIT_STOP] = st_reinit_stop,
	[HA_STEP_REINIT_WIPE] = st_wipe,
	[HA_STEP_REINIT_WIPED] = st_reinit_wiped,
	[HA_STEP_REFUSE] = st_refuse,
	[HA_STEP_SD_STOP] = st_sd_stop,
	[HA_STEP_SD_RELEASE] = st_sd_release,
	[HA_STEP_SD_REVOKE_MEMBER] = st_sd_revoke_member,
	[HA_STEP_SD_CLOSE] = st_sd_close,
};

bool ha_agent_step_bound(enum ha_step s)
{
	return (unsigned)s < HA_STEP__N && step_fns[s] != NULL;
}

/* No cluster yet: wait, take the lease when named, then bootstrap (or
 * record existing data as the new cluster). */
static void converge_new_cluster(struct ha_agent *a, enum pgc_pm_state pm)
{
	const char *me = a->cfg->node_name;
	if (a->data_present && a->controldata_known == false &&
	    !a->controldata_inflight && pm == PGC_PM_STOPPED) {
		if (a->io->controldata(a->pg, on_controldata, a) == 0)
			a->controldata_inflight = true;
		return;
	}
	bool chosen = a->has_candidate && strcmp(a->candidate, me) == 0;
	if (!a->has_leader && chosen) {
		acquire(a);
		return;
	}
	if (a->leader && !a->data_present) {
		fsm_begin(a, HA_FSM_PRIMARY, HA_FLOW_BOOTSTRAP); /* initdb */
		return;
	}
	if (a->leader && a->data_present) {
		/* existing data: run it as the primary, then record the
		 * cluster */
		if (pm == PGC_PM_RUNNING && a->probe_ok && !a->in_recovery) {
			/* -> sysid, initialize key */
			fsm_begin(a, HA_FSM_PRIMARY, HA_FLOW_BOOTSTRAP);
			return;
		}
		if (pm == PGC_PM_RUNNING && a->probe_ok) {
			fsm_begin(a, HA_FSM_PRIMARY, HA_FLOW_PROMOTE);
			return;
		}
		if (pm == PGC_PM_STOPPED) {
			a->flow_detail[0] = '\0';
			fsm_begin(a, HA_FSM_PRIMARY, HA_FLOW_START_PRIMARY);
		}
		return;
	}
	if (a->state != HA_ST_INITIALIZING)
		set_state(a, HA_ST_WAITING, "no cluster yet");
}

/* We lead: PostgreSQL must run writable. If it cannot be brought back
 * within crash_restart_timeout, give the lease up so that a replica takes
 * over. */
static void converge_lead(struct ha_agent *a, enum pgc_pm_state pm)
{
	const char *me = a->cfg->node_name;
	bool up = pm == PGC_PM_RUNNING && a->probe_ok;
	uint64_t now = now_ms();
	if (up)
		a->down_since_ms = 0;
	else if (a->down_since_ms == 0)
		a->down_since_ms = now;
	unsigned limit = a->ha.crash_restart_timeout_ms;
	if (!up && a->down_since_ms && now - a->down_since_ms > limit &&
	    a->initialized) {
		log_error("ha[%s] PostgreSQL did not come back within %u "
			  "ms: giving up the primary lease",
			  me, limit);
		if (pm != PGC_PM_STOPPED) {
			pid_t pid = a->io->pid(a->pg);
			if (pid > 0)
				kill(pid, SIGQUIT);
		}
		struct rs_cmd c = { .op = RS_OP_LEASE_REVOKE,
				    .lease = a->leader_lease };
		a->leader = false;
		a->leader_lease = 0;
		a->down_since_ms = 0;
		uv_timer_stop(&a->fence_timer);
		if (pm == PGC_PM_STOPPED)
			wd_disarm(&a->wd);
		set_state(a, HA_ST_CRASHED, "did not restart in time");
		agent_submit(a, &c, STORE_TIMEOUT_MS, on_revoked, a);
		report(a, true);
		return;
	}
	if (!a->data_present)
		return; /* cannot happen: controller picks data */
	if (pm == PGC_PM_STOPPED) {
		snprintf(a->flow_detail, sizeof a->flow_detail, "%s",
			 a->crashed ? "crash recovery" : "");
		a->crashed = false;
		fsm_begin(a, HA_FSM_PRIMARY, HA_FLOW_START_PRIMARY);
		return;
	}
	if (pm == PGC_PM_RUNNING && a->probe_ok && a->in_recovery) {
		fsm_begin(a, HA_FSM_PRIMARY, HA_FLOW_PROMOTE);
		return;
	}
	if (pm == PGC_PM_RUNNING && a->probe_ok) {
		if (a->history_pending)
			write_history(a);
		if (maybe_switchover(a))
			return;
		ensure_slots(a);
		sync_manage(a);
	}
}

/* Someone else leads: follow it. */
static void converge_follow(struct ha_agent *a, enum pgc_pm_state pm)
{
	if (!a->leader_rec_ok || a->leader_rec.port == 0)
		return; /* its record (address) is not there yet */
	char conninfo[1024];
	if (replication_conninfo(a, &a->leader_rec, conninfo, sizeof conninfo) !=
	    0)
		return;
	snprintf(a->flow_leader, sizeof a->flow_leader, "%s", a->leader_name);
	snprintf(a->flow_conninfo, sizeof a->flow_conninfo, "%s", conninfo);
	if (superuser_conninfo(a, &a->leader_rec, a->flow_rewind_conninfo,
			       sizeof a->flow_rewind_conninfo) != 0)
		return;
	if (!a->data_present) {
		if (pm != PGC_PM_STOPPED)
			return;
		fsm_begin(a, HA_FSM_REPLICA, HA_FLOW_CLONE);
		return;
	}
	if (pm == PGC_PM_RUNNING && a->probe_ok && !a->in_recovery) {
		/* a writable PostgreSQL on a node that does not lead:
		 * stopped first, no crash recovery needed */
		a->flow_was_crashed_primary = false;
		fsm_begin(a, HA_FSM_REPLICA, HA_FLOW_REJOIN);
		return;
	}
	if (pm == PGC_PM_STOPPED) {
		if (!a->controldata_known) {
			if (!a->controldata_inflight &&
			    a->io->controldata(a->pg, on_controldata, a) == 0)
				a->controldata_inflight = true;
			return;
		}
		bool was_primary = strcmp(a->cd_state, "shut down") == 0 ||
				   strcmp(a->cd_state, "in production") == 0;
		if (was_primary && a->cfg->pg.use_rewind &&
		    !a->clean_handover) {
			a->flow_was_crashed_primary =
				strcmp(a->cd_state, "in production") == 0;
			a->controldata_known = false;
			fsm_begin(a, HA_FSM_REPLICA, HA_FLOW_REJOIN);
			return;
		}
		a->crashed = false;
		a->controldata_known = false;
		a->clean_handover = false;
		fsm_begin(a, HA_FSM_REPLICA, HA_FLOW_START_REPLICA);
		return;
	}
	if (pm == PGC_PM_RUNNING && a->probe_ok && a->in_recovery &&
	    strcmp(a->following, a->leader_name) != 0)
		fsm_begin(a, HA_FSM_REPLICA, HA_FLOW_REPOINT);
}

/* Pick this tick's goal from the store and what PostgreSQL is, and start
 * the row of ha_fsm.c that leads there (at most one flow at a time). */
static void converge(struct ha_agent *a)
{
	const char *me = a->cfg->node_name;
	enum pgc_pm_state pm = a->io->state(a->pg);
	if (a->flow != HA_FLOW_NONE || a->io->busy(a->pg) ||
	    a->state == HA_ST_REFUSED || a->st == HA_FSM_REFUSED || a->paused)
		return;

	if (a->reinit_requested) {
		a->reinit_requested = false;
		if (a->leader) {
			log_warn("ha[%s] reinit refused: this node is the "
				 "primary", me);
		} else if (a->data_present) {
			log_info("ha[%s] reinit: wiping the data directory to "
				 "clone again",
				 me);
			fsm_begin(a, HA_FSM_NO_DATA, HA_FLOW_REINIT);
			return;
		}
	}

	/* The leader key says someone else, but we think we lead (only once
	 * our copy of the store has caught up with our own acquisition). */
	if (a->leader && (!a->has_leader || strcmp(a->leader_name, me) != 0) &&
	    rs_fsm_revision(rs_store_fsm(a->store)) >= a->leader_rev) {
		fence(a, "the leader key is not ours");
		return;
	}
	bool leader_is_me = a->has_leader && strcmp(a->leader_name, me) == 0;
	if (leader_is_me && !a->leader) {
		adopt_lease(a);
		return;
	}

	if (!a->initialized) {
		converge_new_cluster(a, pm);
		return;
	}

	/* Initialized. Data of another cluster is never started. */
	if (a->data_present) {
		uint64_t sysid = a->probe_ok ? a->sysid : a->cd_sysid;
		if (!sysid && !a->controldata_inflight && pm == PGC_PM_STOPPED) {
			if (a->io->controldata(a->pg, on_controldata, a) == 0)
				a->controldata_inflight = true;
			return;
		}
		char s[32];
		snprintf(s, sizeof s, "%" PRIu64, sysid);
		if (sysid && strcmp(s, a->init_sysid) != 0) {
			snprintf(a->flow_detail, sizeof a->flow_detail,
				 "cluster ID mismatch: data has system id %s, "
				 "the cluster %s",
				 s, a->init_sysid);
			log_error("ha[%s] %s; not starting PostgreSQL", me,
				  a->flow_detail);
			fsm_begin(a, HA_FSM_REFUSED, HA_FLOW_REFUSE);
			return;
		}
	}

	if (!a->has_leader) {
		if (a->has_candidate && strcmp(a->candidate, me) == 0 &&
		    a->data_present)
			acquire(a);
		return;
	}
	if (a->leader)
		converge_lead(a, pm);
	else
		converge_follow(a, pm);
}

static void on_pg_node_written(void *arg, int status,
			       const struct rs_result *res)
{
	struct ha_agent *a = arg;
	(void)status;
	(void)res;
	a->pg_node_inflight = false;
}

/* /service/<cluster>/pgnodes/<name>, written once and kept (no lease):
 * this Raft member runs PostgreSQL, even while it is down. Strict
 * synchronous mode lists only such members. */
static void mark_pg_node(struct ha_agent *a)
{
	if (a->pg_node_known || a->pg_node_inflight)
		return;
	char leaf[HA_NAME_MAX + 16], v[8];
	snprintf(leaf, sizeof leaf, "pgnodes/%s", a->cfg->node_name);
	if (read_key(a, leaf, v, sizeof v, NULL, NULL)) {
		a->pg_node_known = true;
		return;
	}
	char key[256];
	ha_key(key, sizeof key, a->cfg->cluster_name, leaf);
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.flags = RS_CMD_HAS_PREV,
		.prev_rev = 0, /* create only */
		.key = { key, (uint32_t)strlen(key) },
		.value = { "1", 1 },
	};
	if (agent_submit(a, &c, STORE_TIMEOUT_MS, on_pg_node_written, a) ==
	    0)
		a->pg_node_inflight = true;
}

static void tick(struct ha_agent *a)
{
	if (a->closing)
		return;
	mark_pg_node(a);
	refresh_view(a);
	observe(a);
	renew(a);
	last_leader_sync(a);
	if (a->io->state(a->pg) == PGC_PM_RUNNING && !a->probe_inflight) {
		if (a->io->probe(a->pg, PROBE_TIMEOUT_MS, on_probe, a) == 0) {
			a->probe_inflight = true;
			a->probe_seq++;
		}
	}
	if (!a->leader)
		sync_follow(a);
	converge(a);
	report(a, false);
}

static void on_tick(uv_timer_t *t)
{
	tick(t->data);
}

/* Between ticks: when the controller names this node and no leader key
 * exists, act now rather than at the next tick (a failover waits for
 * nothing else). Two local reads. */
static void on_watch(uv_timer_t *t)
{
	struct ha_agent *a = t->data;
	fencer_sync(a);
	if (a->closing || a->leader || a->acquire_inflight ||
	    a->flow != HA_FLOW_NONE)
		return;
	char buf[512], leader[HA_NAME_MAX + 1];
	if (read_key(a, "leader", leader, sizeof leader, NULL, NULL)) {
		/* a switchover handed us the key */
		if (strcmp(leader, a->cfg->node_name) == 0)
			tick(a);
		return;
	}
	if (!read_key(a, "candidate", buf, sizeof buf, NULL, NULL))
		return;
	json_t *o = json_loads(buf, 0, NULL);
	const char *n = o ? json_string_value(json_object_get(o, "name")) : NULL;
	bool me = n && strcmp(n, a->cfg->node_name) == 0;
	json_decref(o);
	if (me)
		tick(a);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

static int store_range(struct rs_store *s, const char *key, size_t key_len,
		       bool prefix, size_t limit, struct rs_kv **kvs,
		       size_t *n, uint64_t *revision)
{
	return rs_fsm_range(rs_store_fsm(s), key, key_len, prefix, limit, kvs,
			    n, revision);
}

const struct ha_agent_io ha_agent_io_default = {
	.state = pgc_node_state,
	.pid = pgc_node_pid,
	.busy = pgc_node_busy,
	.errmsg = pgc_node_errmsg,
	.write_conf = pgc_node_write_conf,
	.reload = pgc_node_reload,
	.initdb = pgc_node_initdb,
	.start = pgc_node_start,
	.stop = pgc_node_stop,
	.promote = pgc_node_promote,
	.basebackup = pgc_node_basebackup,
	.rewind = pgc_node_rewind,
	.wipe = pgc_node_wipe,
	.controldata = pgc_node_controldata,
	.probe = pgc_node_probe,
	.query = pgc_node_query,
	.submit = kv_submit,
	.range = store_range,
};

void ha_agent_set_io(struct ha_agent *a, const struct ha_agent_io *io)
{
	a->io = io;
}

enum ha_fsm_state ha_agent_fsm_state(const struct ha_agent *a)
{
	return a->st;
}

enum ha_flow ha_agent_flow(const struct ha_agent *a)
{
	return a->flow;
}

enum ha_step ha_agent_step(const struct ha_agent *a)
{
	return a->step;
}

void ha_agent_test_set_leader(struct ha_agent *a, bool leader,
			      uint64_t lease)
{
	a->leader = leader;
	a->leader_lease = leader ? lease : 0;
}

int ha_agent_test_begin_at(struct ha_agent *a, enum ha_fsm_state from,
			   enum ha_fsm_state to, enum ha_flow f,
			   enum ha_step at, const struct ha_member *leader)
{
	const struct ha_fsm_row *r = ha_fsm_find(from, to, f);
	if (!r || !ha_flow_step(f, at) || ha_flow_get(f)->immediate)
		return ERR_NOTFOUND;
	a->st = from;
	a->data_present = from != HA_FSM_NO_DATA;
	if (leader) {
		snprintf(a->flow_leader, sizeof a->flow_leader, "%s",
			 leader->name);
		snprintf(a->sw_target, sizeof a->sw_target, "%s",
			 leader->name);
	}
	a->row = r;
	a->flow = f;
	a->flow_err = 0;
	a->flow_msg[0] = '\0';
	return flow_run(a, at, false);
}

void ha_agent_test_tick(struct ha_agent *a)
{
	tick(a);
}

void ha_agent_test_set_crashed_primary(struct ha_agent *a, bool crashed)
{
	a->flow_was_crashed_primary = crashed;
}

int ha_agent_test_begin(struct ha_agent *a, enum ha_fsm_state from,
			enum ha_fsm_state to, enum ha_flow f,
			const struct ha_member *leader)
{
	if (!ha_fsm_find(from, to, f))
		return ERR_NOTFOUND;
	a->st = from;
	a->data_present = from != HA_FSM_NO_DATA;
	if (leader) {
		snprintf(a->flow_leader, sizeof a->flow_leader, "%s",
			 leader->name);
		if (replication_conninfo(a, leader, a->flow_conninfo,
					 sizeof a->flow_conninfo) != 0 ||
		    superuser_conninfo(a, leader, a->flow_rewind_conninfo,
				       sizeof a->flow_rewind_conninfo) != 0)
			return ERR_INVAL;
	}
	if (f == HA_FLOW_SWITCHOVER && leader)
		snprintf(a->sw_target, sizeof a->sw_target, "%s",
			 leader->name);
	if (f == HA_FLOW_SHUTDOWN) {
		a->started = true; /* as after ha_agent_start */
		ha_agent_shutdown(a, NULL, NULL);
		return 0;
	}
	return fsm_begin(a, to, f);
}

int ha_agent_new(uv_loop_t *loop, const struct cfg *cfg,
		 struct rs_store *store, struct kv *kv, struct ha_agent **out)
{
	struct ha_agent *a = mem_calloc(1, sizeof *a);
	if (!a)
		return ERR_NOMEM;
	a->loop = loop;
	a->cfg = cfg;
	a->store = store;
	a->kv = kv;
	/* the ini's [ha] until the store's is read (cluster_ha_refresh) */
	cfg_ha_of(cfg, &a->ha);
	a->ttl = a->ha.ttl_ms;
	a->loop_wait = a->ha.loop_wait_ms;
	a->margin = a->ha.safety_margin_ms; /* as checked at load (I1, I3) */
	cfg_pg_name(cfg->node_name, a->appname, sizeof a->appname);
	snprintf(a->slot, sizeof a->slot, "pgw_%.58s", a->appname);
	snprintf(a->log_path, sizeof a->log_path, "%s/postgresql.log",
		 cfg->data_dir);
	snprintf(a->passfile, sizeof a->passfile, "%s/pgpass", cfg->data_dir);
	a->io = &ha_agent_io_default;
	a->st = HA_FSM_INIT;
	a->role = HA_ROLE_UNKNOWN;
	a->state = HA_ST_STOPPED;
	wd_init(&a->wd, cfg->pg.wd_device ? cfg->pg.wd_device : "/dev/watchdog",
		cfg->pg.wd_timeout_ms ? cfg->pg.wd_timeout_ms : 1000,
		(enum wd_mode)cfg->pg.wd_mode);
	a->reported_state = (enum ha_state)-1;

	char host[256];
	uint16_t port = 0;
	if (cfg_split_hostport(cfg->pg.listen, host, sizeof host, &port) != 0) {
		mem_free(a);
		return ERR_INVAL;
	}
	struct pgc_node_config nc = {
		.name = cfg->node_name,
		.bin_dir = cfg->pg.bin_dir ? cfg->pg.bin_dir
					   : "/usr/lib/postgresql/15/bin",
		.data_dir = cfg->pg.data_dir,
		.sock_dir = cfg->pg.socket_dir ? cfg->pg.socket_dir
					       : "/var/run/postgresql",
		.listen_addresses = host,
		.port = port,
		.superuser = cfg->pg.superuser,
		.password = cfg->pg.superuser_password,
		.log_path = a->log_path,
		.on_exit = on_pg_exit,
		.on_exit_arg = a,
	};
	int rv = pgc_node_new(loop, &nc, &a->pg);
	if (rv != 0) {
		mem_free(a);
		return rv;
	}
	uv_timer_init(loop, &a->tick);
	a->tick.data = a;
	uv_timer_init(loop, &a->fence_timer);
	a->fence_timer.data = a;
	uv_timer_init(loop, &a->watch);
	a->watch.data = a;
	uv_timer_init(loop, &a->sw_timer);
	a->sw_timer.data = a;
	uv_timer_init(loop, &a->fp_timer);
	a->fp_timer.data = a;
	a->open_handles = 5;
	*out = a;
	return 0;
}

/* One line per password: *:*:*:USER:PASSWORD, ':' and '\\' escaped. */
static int write_passfile(struct ha_agent *a, char *errmsg, size_t errlen)
{
	const struct cfg_pg *pg = &a->cfg->pg;
	struct {
		const char *user, *pw;
	} ent[2] = {
		{ pg->replication_user ? pg->replication_user : "replicator",
		  pg->replication_password },
		{ pg->superuser ? pg->superuser : "postgres",
		  pg->superuser_password },
	};
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", a->passfile);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(errmsg, errlen, "%s: %s", tmp, strerror(errno));
		return ERR_IO;
	}
	bool ok = true;
	for (int i = 0; i < 2 && ok; i++) {
		if (!ent[i].pw)
			continue;
		char line[9000];
		size_t o = (size_t)snprintf(line, sizeof line, "*:*:*:");
		const char *parts[2] = { ent[i].user, ent[i].pw };
		for (int p = 0; p < 2; p++) {
			for (const char *c = parts[p]; *c && o + 3 < sizeof line;
			     c++) {
				if (*c == ':' || *c == '\\')
					line[o++] = '\\';
				line[o++] = *c;
			}
			line[o++] = p == 0 ? ':' : '\n';
		}
		ok = write(fd, line, o) == (ssize_t)o;
	}
	if (!ok || rename(tmp, a->passfile) != 0) {
		snprintf(errmsg, errlen, "%s: %s", a->passfile, strerror(errno));
		close(fd);
		unlink(tmp);
		return ERR_IO;
	}
	/* in place now; the flush runs on the thread pool (pgc.h) */
	(void)pgc_file_sync_async(a->loop, fd, a->passfile);
	return 0;
}

int ha_agent_start(struct ha_agent *a, char *errmsg, size_t errlen)
{
	int prv = write_passfile(a, errmsg, errlen);
	if (prv != 0)
		return prv;
	int rv = pgc_node_adopt(a->pg);
	if (rv == 0)
		log_info("ha[%s] adopted the running PostgreSQL pid=%d",
			 a->cfg->node_name, (int)a->io->pid(a->pg));
	else if (rv != ERR_NOTFOUND) {
		snprintf(errmsg, errlen, "PostgreSQL in %s: %s",
			 a->cfg->pg.data_dir, a->io->errmsg(a->pg));
		return rv;
	}
	a->started = true;
	a->started_ms = now_ms();
	if (a->cfg->pg.fencer) {
		/* a fencer that cannot start is retried every second; the
		 * node runs meanwhile (the watchdog may cover it) */
		ha_fencer_init(&a->fencer, a->loop, a->cfg->pg.data_dir,
			       a->cfg->node_name);
		a->fencer_on = true;
		a->open_handles++;
	}
	uv_timer_start(&a->tick, on_tick, 0, a->loop_wait);
	uv_timer_start(&a->watch, on_watch, 100, 100);
	return 0;
}

void ha_agent_status(struct ha_agent *a, struct ha_status *st)
{
	memset(st, 0, sizeof *st);
	fill_member(a, &st->self);
	uint64_t now = now_ms();
	st->holds_lease = a->leader && now < a->valid_until_ms &&
			  a->has_leader &&
			  strcmp(a->leader_name, a->cfg->node_name) == 0;
	/* 100 ms steps: the API reuses its reply while the status is
	 * unchanged, and a probe needs no finer figure */
	st->lease_left_ms = a->leader && a->valid_until_ms > now
				    ? (int64_t)((a->valid_until_ms - now) /
						100 * 100)
				    : -1;
	st->pg_running = a->io->state(a->pg) == PGC_PM_RUNNING && a->probe_ok;
	st->writable = st->pg_running && !a->in_recovery;
	st->streaming = st->pg_running && a->in_recovery && a->streaming;
	snprintf(st->leader, sizeof st->leader, "%s", a->leader_name);
	st->paused = a->paused;
}

static void shutdown_finish(struct ha_agent *a)
{
	void (*cb)(void *) = a->shutdown_cb;
	void *arg = a->shutdown_arg;
	a->shutdown_cb = NULL;
	if (cb)
		cb(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct ha_agent *a = h->data;
	--a->open_handles;
	maybe_shutdown_finish(a);
}

static void on_fencer_closed(void *arg)
{
	struct ha_agent *a = arg;
	--a->open_handles;
	maybe_shutdown_finish(a);
}

static void close_handles(struct ha_agent *a)
{
	if (a->fencer_on) {
		/* disarmed if PostgreSQL is down; armed, it fences at the
		 * deadline after we are gone */
		if (a->io->pid(a->pg) <= 0)
			ha_fencer_disarm(&a->fencer);
		a->fencer_on = false;
		ha_fencer_close(&a->fencer, on_fencer_closed, a);
	}
	/* a script started before the stop (not on_stop) is not waited
	 * for: it is ended, as a newer call would end it */
	if (a->cb_proc && !a->cb_for_shutdown) {
		log_info("ha[%s] %s callback still running: ending it, the "
			 "daemon is stopping",
			 a->cfg->node_name, a->cb_action);
		pgc_proc_kill(a->cb_proc);
	}
	uv_timer_stop(&a->tick);
	uv_timer_stop(&a->watch);
	uv_timer_stop(&a->fence_timer);
	uv_close((uv_handle_t *)&a->watch, on_handle_closed);
	uv_timer_stop(&a->sw_timer);
	uv_close((uv_handle_t *)&a->sw_timer, on_handle_closed);
	uv_timer_stop(&a->fp_timer);
	uv_close((uv_handle_t *)&a->fp_timer, on_handle_closed);
	pgc_conn_free(a->sw_conn);
	a->sw_conn = NULL;
	uv_close((uv_handle_t *)&a->tick, on_handle_closed);
	uv_close((uv_handle_t *)&a->fence_timer, on_handle_closed);
}

void ha_agent_shutdown(struct ha_agent *a, void (*cb)(void *arg), void *arg)
{
	a->closing = true;
	answer_lsn_waiters(a, 0, ERR_SHUTDOWN);
	a->shutdown_cb = cb;
	a->shutdown_arg = arg;
	uv_timer_stop(&a->tick);
	uv_timer_stop(&a->watch);
	if (!a->started) {
		agent_move(a, HA_FSM_SHUTDOWN, HA_FLOW_SHUTDOWN, "never started");
		close_handles(a);
		return;
	}
	/* the shutdown preempts a flow that runs: its completions are
	 * ignored from now on (flow_cb) */
	if (a->flow != HA_FLOW_NONE)
		log_info("ha[%s] %s abandoned: the daemon stops",
			 a->cfg->node_name, ha_flow_name(a->flow));
	a->flow = HA_FLOW_NONE;
	fsm_begin(a, HA_FSM_SHUTDOWN, HA_FLOW_SHUTDOWN);
}

void ha_agent_poke(struct ha_agent *a)
{
	if (a->started && !a->closing)
		uv_timer_start(&a->tick, on_tick, 0, a->loop_wait);
}

int ha_agent_reinit(struct ha_agent *a)
{
	if (a->leader)
		return ERR_CONFLICT;
	a->reinit_requested = true;
	return 0;
}

void ha_agent_free(struct ha_agent *a)
{
	if (!a)
		return;
	/* its callback must never fire into freed memory (the shutdown
	 * waits for the scripts, so this is only a stop that never ran) */
	if (a->cb_proc)
		pgc_proc_abandon(a->cb_proc, SIGKILL);
	pgc_node_free(a->pg, NULL, NULL);
	mem_free(a);
}
