/* ha_decide.c - the controller's decision: who may take the primary lease.
 *
 * Pure: ha_decide() reads only the view it is given (store keys, live member
 * records, the controller's clock ages) and writes one action. It is the
 * part of the HA logic a reviewer must be able to trust, so it lives apart
 * from the runtime (ha_ctl.c) that gathers the view and carries the action
 * out, and it is unit-tested on its own (tests/unit/ha). The rules it
 * implements are the numbered list in docs/architecture.md ("Choosing the
 * new primary"); the comments below cite its rule numbers.
 */
#include "ha/ha_decide.h"
#include "config/cfg.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Decision                                                             */
/* ------------------------------------------------------------------ */

static const struct ha_member *find(const struct ha_view *v, const char *n)
{
	for (size_t i = 0; i < v->nmembers; i++)
		if (strcmp(v->members[i].name, n) == 0)
			return &v->members[i];
	return NULL;
}

/* Compare the WAL positions of a and b: the timeline first (WAL on an
 * older timeline is a history the cluster left, whatever its LSN), then
 * the best LSN. <0, 0, >0 like strcmp. */
static int pos_cmp(const struct ha_member *a, const struct ha_member *b)
{
	if (a->timeline != b->timeline)
		return a->timeline > b->timeline ? 1 : -1;
	uint64_t la = ha_member_lsn(a), lb = ha_member_lsn(b);
	return la > lb ? 1 : la < lb ? -1 : 0;
}

/* a better than b as the next primary? Position, then failover_priority,
 * then the last leader, then the smaller name (docs/architecture.md,
 * "Choosing the new primary", rule 6). */
static bool better(const struct ha_member *a, const struct ha_member *b,
		   const char *last_leader)
{
	int c = pos_cmp(a, b);
	if (c != 0)
		return c > 0;
	if (a->tags.failover_priority != b->tags.failover_priority)
		return a->tags.failover_priority > b->tags.failover_priority;
	/* equal data: the former primary keeps its role (no timeline
	 * switch) */
	bool al = strcmp(a->name, last_leader) == 0;
	bool bl = strcmp(b->name, last_leader) == 0;
	if (al != bl)
		return al;
	return strcmp(a->name, b->name) < 0;
}

static bool has_data(const struct ha_member *m)
{
	return (m->role == HA_ROLE_PRIMARY || m->role == HA_ROLE_REPLICA) &&
	       m->sysid[0] != '\0';
}

/* A node whose watchdog is required but could not be opened never takes
 * the lease: naming it would only cost a candidate timeout. */
static bool watchdog_blocks(const struct ha_member *m)
{
	return strcmp(m->watchdog.mode, "required") == 0 &&
	       strcmp(m->watchdog.state, "failed") == 0;
}

static bool busy(const struct ha_member *m)
{
	return m->state == HA_ST_CLONING || m->state == HA_ST_INITIALIZING ||
	       m->state == HA_ST_REWINDING || m->state == HA_ST_REFUSED ||
	       m->state == HA_ST_CRASHED || watchdog_blocks(m);
}

void ha_slot_name(const char *name, char *out, size_t len)
{
	cfg_pg_name(name, out, len);
}

static bool in_sync_set(const struct ha_view *v, const struct ha_member *m)
{
	char s[64];
	ha_slot_name(m->name, s, sizeof s);
	for (size_t i = 0; i < v->nsync; i++)
		if (strcmp(v->sync_standbys[i], s) == 0)
			return true;
	return false;
}

/* Data of this cluster (a primary's or a replica's, same system id). */
static bool ours(const struct ha_view *v, const struct ha_member *m)
{
	return has_data(m) && strcmp(m->sysid, v->sysid) == 0;
}

/* The node may be promoted at all: able to run now, not excluded by its
 * tags. */
static bool may_lead(const struct ha_member *m)
{
	return !busy(m) && !m->tags.nofailover &&
	       m->tags.failover_priority > 0;
}

/* The most advanced member of this cluster among those accepted by
 * keep (NULL: all), by position only; NULL if none. */
static const struct ha_member *
most_advanced(const struct ha_view *v,
	      bool (*keep)(const struct ha_view *, const struct ha_member *))
{
	const struct ha_member *top = NULL;
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct ha_member *m = &v->members[i];
		if (!ours(v, m) || (keep && !keep(v, m)))
			continue;
		if (!top || pos_cmp(m, top) > 0)
			top = m;
	}
	return top;
}

/* The last leader reports again (its record changed since the lease was
 * seen gone), with this cluster's data, and may lead; NULL otherwise. */
static const struct ha_member *live_last_leader(const struct ha_view *v)
{
	if (!v->last_leader[0] || !v->last_leader_recent)
		return NULL;
	const struct ha_member *l = find(v, v->last_leader);
	return l && ours(v, l) && may_lead(l) ? l : NULL;
}

static void set_none(struct ha_action *out, const char *why)
{
	out->kind = HA_ACT_NONE;
	snprintf(out->why, sizeof out->why, "%s", why);
}

/* The manual failover request cannot be carried out: drop it, saying why. */
static void refuse_failover(const struct ha_view *v, struct ha_action *out,
			    const char *why)
{
	out->kind = HA_ACT_DROP_FAILOVER;
	snprintf(out->why, sizeof out->why, "manual failover to %s refused: %s",
		 v->failover_to, why);
}

/* The last primary leads again (keeping its timeline). */
static void name_last_leader(const struct ha_member *l, struct ha_action *out)
{
	out->kind = HA_ACT_SET_CANDIDATE;
	out->reason = "failover";
	snprintf(out->name, sizeof out->name, "%s", l->name);
	snprintf(out->why, sizeof out->why,
		 "no leader; %s led last and holds the most WAL (lsn %" PRIu64
		 ")",
		 l->name, ha_member_lsn(l));
}

static bool sync_heard(const struct ha_view *v, const struct ha_member *m)
{
	return in_sync_set(v, m) && !busy(m);
}

/* Synchronous mode (the sync key is active): rule 9. */
static void decide_sync(const struct ha_view *v, struct ha_action *out)
{
	/* Every acknowledged commit is on at least k of the n published
	 * standbys. Hearing from n-k+1 of them, the most advanced holds all
	 * of them; with fewer, promoting could lose one. */
	size_t heard = 0;
	for (size_t i = 0; i < v->nmembers; i++)
		if (ours(v, &v->members[i]) && sync_heard(v, &v->members[i]))
			heard++;
	const struct ha_member *top = most_advanced(v, sync_heard);
	size_t need = v->nsync + 1 > v->sync_k ? v->nsync + 1 - v->sync_k : 1;
	if (v->has_failover && (v->nsync == 0 || v->sync_k == 0)) {
		/* 9.1: the primary ran without a synchronous standby
		 * (none was streaming): no automatic failover can be safe,
		 * but an operator may accept the risk and name a node. */
		const struct ha_member *m = find(v, v->failover_to);
		if (m && ours(v, m) && may_lead(m)) {
			out->kind = HA_ACT_SET_CANDIDATE;
			out->reason = "manual";
			snprintf(out->name, sizeof out->name, "%s", m->name);
			snprintf(out->why, sizeof out->why,
				 "manual failover to %s while no standby was "
				 "synchronous: commits the old primary "
				 "acknowledged alone may be lost",
				 m->name);
			return;
		}
	}
	if (v->nsync == 0 || v->sync_k == 0 || heard < need || !top) {
		/* 9.1, 9.2 */
		char why[160];
		snprintf(why, sizeof why,
			 "synchronous mode: heard from %zu of %zu synchronous "
			 "standbys, need %zu before any promotion",
			 heard, v->nsync, need);
		if (v->has_failover) {
			refuse_failover(v, out, why);
			return;
		}
		set_none(out, why);
		return;
	}
	/* 9.3: only a standby at the most advanced position may lead:
	 * anyone behind it could miss an acknowledged commit */
	if (v->has_failover) {
		const struct ha_member *m = find(v, v->failover_to);
		const char *no = NULL;
		if (!m || !ours(v, m) || !sync_heard(v, m) ||
		    pos_cmp(m, top) < 0)
			no = "synchronous mode and it may lack acknowledged "
			     "commits";
		else if (!may_lead(m))
			no = "it is tagged nofailover";
		if (no) {
			refuse_failover(v, out, no);
			return;
		}
		out->kind = HA_ACT_SET_CANDIDATE;
		out->reason = "manual";
		snprintf(out->name, sizeof out->name, "%s", m->name);
		snprintf(out->why, sizeof out->why,
			 "manual failover to synchronous standby %s (lsn %"
			 PRIu64 ", %zu of %zu standbys heard)",
			 m->name, ha_member_lsn(m), heard, v->nsync);
		return;
	}
	/* 9.4: the last leader only when it is itself a published standby
	 * at the top: a last_leader key left stale (its writer's put failed)
	 * names a node that may lack what the real last primary
	 * acknowledged. */
	const struct ha_member *ll = live_last_leader(v);
	if (ll && sync_heard(v, ll) && pos_cmp(ll, top) == 0) {
		name_last_leader(ll, out);
		return;
	}
	const struct ha_member *pick = NULL; /* 9.5 */
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct ha_member *m = &v->members[i];
		if (!ours(v, m) || !sync_heard(v, m) || !may_lead(m) ||
		    pos_cmp(m, top) < 0)
			continue;
		if (!pick || better(m, pick, v->last_leader))
			pick = m;
	}
	if (!pick) {
		char why[256];
		snprintf(why, sizeof why,
			 "synchronous mode: the most advanced standby %s may "
			 "not lead (nofailover)",
			 top->name);
		set_none(out, why);
		return;
	}
	out->kind = HA_ACT_SET_CANDIDATE;
	out->reason = "failover";
	snprintf(out->name, sizeof out->name, "%s", pick->name);
	snprintf(out->why, sizeof out->why,
		 "synchronous standby %s is the most advanced (lsn %" PRIu64
		 ", %zu of %zu standbys heard)",
		 pick->name, ha_member_lsn(pick), heard, v->nsync);
}

void ha_decide(const struct ha_view *v, struct ha_action *out)
{
	memset(out, 0, sizeof *out);
	if (v->paused) {
		set_none(out, "paused");
		return;
	}
	if (v->has_leader) {
		if (v->has_failover && strcmp(v->leader, v->failover_to) == 0 &&
		    !v->has_candidate) {
			out->kind = HA_ACT_DROP_FAILOVER;
			snprintf(out->why, sizeof out->why,
				 "manual failover to %s done", v->leader);
			return;
		}
		if (v->has_candidate) {
			out->kind = HA_ACT_CLEAR_CANDIDATE;
			snprintf(out->why, sizeof out->why,
				 "%s holds the leader key", v->leader);
			return;
		}
		set_none(out, "leader present");
		return;
	}
	if (v->has_candidate) {
		const struct ha_member *c = find(v, v->candidate);
		if (!c) {
			out->kind = HA_ACT_CLEAR_CANDIDATE;
			snprintf(out->why, sizeof out->why,
				 "candidate %s stopped reporting", v->candidate);
			return;
		}
		if (c->state == HA_ST_REFUSED || watchdog_blocks(c)) {
			out->kind = HA_ACT_CLEAR_CANDIDATE;
			snprintf(out->why, sizeof out->why,
				 "candidate %s refused (%s)", v->candidate,
				 c->detail);
			return;
		}
		if (v->candidate_age_ms > v->candidate_timeout_ms) {
			out->kind = HA_ACT_CLEAR_CANDIDATE;
			snprintf(out->why, sizeof out->why,
				 "candidate %s did not take the lease within "
				 "%" PRIu64 " ms",
				 v->candidate, v->candidate_timeout_ms);
			return;
		}
		set_none(out, "waiting for the candidate");
		return;
	}

	const struct ha_member *best = NULL;
	if (!v->initialized) {
		/* Data that exists wins over a fresh initdb (the store was
		 * rebuilt under a running cluster); else any empty node. */
		for (size_t i = 0; i < v->nmembers; i++) {
			const struct ha_member *m = &v->members[i];
			if (!has_data(m) || busy(m) || m->tags.nofailover)
				continue;
			if (!best || better(m, best, v->last_leader))
				best = m;
		}
		if (best) {
			out->kind = HA_ACT_SET_CANDIDATE;
			out->reason = "existing_data";
			snprintf(out->name, sizeof out->name, "%s", best->name);
			snprintf(out->why, sizeof out->why,
				 "not initialized; %s has data (lsn %" PRIu64
				 ")",
				 best->name, ha_member_lsn(best));
			return;
		}
		for (size_t i = 0; i < v->nmembers; i++) {
			const struct ha_member *m = &v->members[i];
			if (m->role != HA_ROLE_UNINITIALIZED ||
			    m->tags.nofailover || busy(m))
				continue;
			if (!best || strcmp(m->name, best->name) < 0)
				best = m;
		}
		if (!best) {
			set_none(out, "not initialized; no member can "
				      "bootstrap yet");
			return;
		}
		out->kind = HA_ACT_SET_CANDIDATE;
		out->reason = "bootstrap";
		snprintf(out->name, sizeof out->name, "%s", best->name);
		snprintf(out->why, sizeof out->why, "%s bootstraps the cluster",
			 best->name);
		return;
	}

	/* 7: just after a Raft leader change (a whole-cluster restart, say) the
	 * last primary may simply not have reported twice yet: give it that
	 * chance before anyone else is promoted. */
	if (!v->has_failover && v->last_leader_pending &&
	    !v->last_leader_recent) {
		set_none(out, "waiting for the last leader to report");
		return;
	}
	if (v->sync_active) {
		decide_sync(v, out);
		return;
	}

	/* 8: asynchronous mode. The reference: the most advanced member of this
	 * cluster; WAL on an older timeline does not count, and the last LSN
	 * a primary reported bounds the lag too. */
	const struct ha_member *top = most_advanced(v, NULL);
	uint64_t ref = v->last_primary_lsn;
	if (top && ha_member_lsn(top) > ref)
		ref = ha_member_lsn(top);

	/* 8.1: an operator named the next primary (no primary is running,
	 * or it would have handed over itself): honour it if that node can
	 * lead, whatever its lag — but never a nofailover node, never
	 * another cluster's data, never a node on a timeline the cluster
	 * left. */
	if (v->has_failover) {
		const struct ha_member *m = find(v, v->failover_to);
		const char *no = NULL;
		if (!m)
			no = "it does not report";
		else if (!ours(v, m))
			no = "it has no data of this cluster";
		else if (busy(m))
			no = "it is busy (cloning, rewinding or refused)";
		else if (m->tags.nofailover || m->tags.failover_priority <= 0)
			no = "it is tagged nofailover";
		else if (m->timeline < top->timeline)
			no = "it is on an older timeline";
		if (no) {
			refuse_failover(v, out, no);
			return;
		}
		out->kind = HA_ACT_SET_CANDIDATE;
		out->reason = "manual";
		snprintf(out->name, sizeof out->name, "%s", m->name);
		snprintf(out->why, sizeof out->why,
			 "manual failover to %s (lsn %" PRIu64 ")", m->name,
			 ha_member_lsn(m));
		return;
	}

	/* 8.2: the last primary, if it reports again with its data and nobody
	 * holds more WAL, leads again, keeping the timeline — the
	 * whole-cluster stop and start case. Only then: a last_leader key
	 * left stale (the put after taking the lease failed) names the
	 * previous primary, now perhaps a lagging replica. */
	const struct ha_member *ll = live_last_leader(v);
	if (ll && pos_cmp(ll, top) == 0) {
		name_last_leader(ll, out);
		return;
	}
	size_t excluded = 0; /* 8.3 */
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct ha_member *m = &v->members[i];
		if (!ours(v, m) || busy(m))
			continue;
		if (m->tags.nofailover || m->tags.failover_priority <= 0 ||
		    m->timeline < top->timeline ||
		    ref - ha_member_lsn(m) > v->maximum_lag) {
			excluded++;
			continue;
		}
		if (!best || better(m, best, v->last_leader))
			best = m;
	}
	if (!best) {
		char why[256];
		snprintf(why, sizeof why,
			 "no eligible member to lead (%zu excluded by "
			 "nofailover, timeline or lag)",
			 excluded);
		set_none(out, why);
		return;
	}
	out->kind = HA_ACT_SET_CANDIDATE;
	out->reason = "failover";
	snprintf(out->name, sizeof out->name, "%s", best->name);
	snprintf(out->why, sizeof out->why,
		 "no leader; %s is the most advanced (lsn %" PRIu64 ")",
		 best->name, ha_member_lsn(best));
}
