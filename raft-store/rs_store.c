/* rs_store.c - libraft wiring: I/O, FSM callbacks, leases, membership.
 *
 * Start:
 *   rs_store_new -> rs_store_start: raft_uv_tcp_init, raft_uv_init(dir),
 *   raft_init, raft_bootstrap (pristine dir and not joining; RAFT_CANTBOOTSTRAP
 *   means "already bootstrapped" and is fine), raft_start.
 *   A "removed" marker file in dir refuses the start: a node that was removed
 *   must be wiped before it may join again.
 *
 * Every loop iteration (uv_check) compares raft's state, leader and term with
 * what was last seen and reports changes. On becoming leader the store issues
 * a raft_barrier and only then counts itself `ready` (libraft 0.15 lacks the
 * leader no-op entry): lease expiry waits for ready.
 *
 * Apply (every node): decode the entry (a malformed one is skipped the same
 * way on every node), apply it to the SQLite FSM at index last_applied + 1,
 * then record lease timing: the local monotonic time a grant or keepalive was
 * applied. The result goes to one slot that the apply callback reads at once
 * (libraft 0.15 calls it synchronously after fsm->apply).
 *
 * Leases (leader, once ready): deadline = last local apply of the lease's
 * grant/keepalive + ttl * (1 + RHO); a lease with no local record (restart,
 * snapshot install) starts at now. One timer fires at the earliest deadline
 * and proposes LEASE_EXPIRE(id, renewals seen); the FSM refuses it if a
 * keepalive was applied in between.
 *
 * Membership (leader): add = raft_add (spare) -> raft_assign(standby) ->
 * MEMBER_SET; promote = raft_assign(voter); remove = raft_remove ->
 * MEMBER_DEL; transfer = raft_transfer, then check who leads.
 * Failure paths: any step failing completes the request with the mapped
 * error; steps already done stay done (the operator repeats or reverses).
 *
 * Close: raft_close -> (raft fails pending requests) -> close_cb: the uv
 * I/O and transport are released, remaining requests complete with
 * ERR_SHUTDOWN, then the check handle and lease timer are closed, then the
 * user's callback.
 */
#include "rs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "timing.h"

#define REMOVED_MARKER "removed"

struct lease_clock {
	uint64_t id;
	uint64_t applied_ms; /* local monotonic ms of the last grant/keepalive
				apply; 0 = none */
	bool expiring;       /* an EXPIRE is in flight */
};

enum req_kind {
	REQ_APPLY,
	REQ_BARRIER,
	REQ_ADD,
	REQ_PROMOTE,
	REQ_REMOVE,
	REQ_TRANSFER,
	REQ_EXPIRE,
	REQ_READY_BARRIER,
	REQ_REGISTER,
};

struct rs_req {
	union {
		struct raft_apply apply;
		struct raft_barrier barrier;
		struct raft_change change;
		struct raft_transfer transfer;
	} u;
	struct rs_store *s;
	enum req_kind kind;
	int step;
	rs_done_cb cb;
	void *arg;
	uint64_t member_id;
	uint64_t lease; /* REQ_EXPIRE */
	char name[RS_MAX_NAME + 1];
	char peer[RS_MAX_ADDR + 1];
	char api[RS_MAX_ADDR + 1];
	struct rs_req *prev, *next; /* in-flight list, for close */
	/* completion, delivered from the store's own timer */
	int done_status;
	bool done_has_res;
	struct rs_result done_res;
	struct rs_req *done_next;
};

struct rs_store {
	uv_loop_t *loop;
	/* options (owned copies) */
	char *dir, *cluster, *name, *address, *api_url;
	char *bind;             /* owned: where the transport listens */
	struct rs_peer *peers;
	size_t npeers;
	bool join;
	unsigned election_ms, heartbeat_ms, snap_threshold, snap_trailing;

	uint64_t id;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct raft_fsm raft_fsm;
	struct raft_tracer tracer;
	struct rs_fsm *fsm;
	bool io_inited, transport_inited, raft_inited, started, closing;

	uv_check_t check;     /* state watch, every iteration */
	uv_timer_t lease_timer;
	int open_handles;     /* uv handles not yet closed */
	void (*close_cb)(void *);
	void *close_arg;

	/* last seen state */
	int seen_state;
	uint64_t seen_leader;
	uint64_t seen_term;
	bool ready;
	bool ready_pending;    /* barrier in flight */
	uint64_t ready_term;   /* term the ready barrier belongs to */
	bool was_member;       /* seen itself in the configuration */
	bool removed;
	bool registering;      /* a MEMBER_SET of our own record in flight */
	bool registry_dirty;   /* re-check our own record */
	uint64_t register_after_ms; /* retry backoff */

	rs_change_cb change_cb;
	void *change_arg;

	struct rs_result last_result; /* of the entry applied last */
	uint64_t snapshot_index;

	struct lease_clock *leases;
	size_t nleases, cap_leases;

	struct rs_req *reqs; /* in flight */
	struct rs_req *done_head, *done_tail; /* completed, not yet reported */
	uv_timer_t done_timer;
	char errmsg[256];
};

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

uint64_t rs_member_id(const char *cluster, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	const char *parts[2] = { cluster, name };
	for (int i = 0; i < 2; i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i];
		     *p; p++) {
			h ^= *p;
			h *= 1099511628211ull;
		}
		h ^= 0xff; /* separator */
		h *= 1099511628211ull;
	}
	h &= 0x7fffffffffffffffull;
	return h ? h : 1;
}

static int map_raft_err(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case RAFT_NOMEM:
		return ERR_NOMEM;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return ERR_NOTLEADER;
	case RAFT_SHUTDOWN:
		return ERR_SHUTDOWN;
	case RAFT_NOTFOUND:
	case RAFT_BADID:
		return ERR_NOTFOUND;
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
		return ERR_EXISTS;
	case RAFT_CANTCHANGE:
		return ERR_UNAVAILABLE;
	case RAFT_BADROLE:
		return ERR_INVAL;
	default:
		return ERR_RAFT;
	}
}

const char *rs_store_errmsg(struct rs_store *s)
{
	return s->errmsg;
}

/* ------------------------------------------------------------------ */
/* Request bookkeeping                                                  */
/* ------------------------------------------------------------------ */

static struct rs_req *req_new(struct rs_store *s, enum req_kind kind,
			      rs_done_cb cb, void *arg)
{
	struct rs_req *r = mem_calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->s = s;
	r->kind = kind;
	r->cb = cb;
	r->arg = arg;
	r->next = s->reqs;
	if (s->reqs)
		s->reqs->prev = r;
	s->reqs = r;
	return r;
}

static void req_unlink(struct rs_req *r)
{
	struct rs_store *s = r->s;
	if (r->prev)
		r->prev->next = r->next;
	else
		s->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* libraft refused to start request r (rv): keep its message, drop r,
 * and return the project's code for rv. */
static int req_refused(struct rs_store *s, struct rs_req *r, int rv)
{
	snprintf(s->errmsg, sizeof s->errmsg, "%s", raft_errmsg(&s->raft));
	req_unlink(r);
	mem_free(r);
	return map_raft_err(rv);
}

/* Completions are reported from a 0 ms timer, never from inside a libraft
 * callback: a caller that starts another request from its callback (the
 * agent revoking a lease, say) would otherwise re-enter libraft while it
 * tears a leader down, and 0.15 then reads freed progress state (SIGSEGV,
 * seen on SIGTERM of all nodes at once). */
static void deliver_done(struct rs_store *s)
{
	struct rs_req *r;
	while ((r = s->done_head)) {
		s->done_head = r->done_next;
		if (!s->done_head)
			s->done_tail = NULL;
		if (r->cb)
			r->cb(r->arg, r->done_status,
			      r->done_status == 0 && r->done_has_res
				      ? &r->done_res
				      : NULL);
		mem_free(r);
	}
}

static void on_done_timer(uv_timer_t *t)
{
	deliver_done(t->data);
}

static void req_finish(struct rs_req *r, int status,
		       const struct rs_result *res)
{
	struct rs_store *s = r->s;
	req_unlink(r);
	r->done_status = status;
	r->done_has_res = status == 0 && res;
	if (r->done_has_res)
		r->done_res = *res;
	r->done_next = NULL;
	if (s->done_tail)
		s->done_tail->done_next = r;
	else
		s->done_head = r;
	s->done_tail = r;
	if (s->open_handles > 0 && !uv_is_closing((uv_handle_t *)&s->done_timer))
		uv_timer_start(&s->done_timer, on_done_timer, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Lease clocks                                                         */
/* ------------------------------------------------------------------ */

static struct lease_clock *lease_find(struct rs_store *s, uint64_t id)
{
	for (size_t i = 0; i < s->nleases; i++)
		if (s->leases[i].id == id)
			return &s->leases[i];
	return NULL;
}

static void lease_touch(struct rs_store *s, uint64_t id)
{
	struct lease_clock *l = lease_find(s, id);
	if (!l) {
		if (s->nleases == s->cap_leases) {
			size_t cap = s->cap_leases ? s->cap_leases * 2 : 8;
			struct lease_clock *n =
				mem_realloc(s->leases, cap * sizeof *n);
			if (!n) {
				/* Without a record the lease restarts at
				 * "now" when it is looked at: later, never
				 * earlier, so still safe. */
				log_warn("rs[%s] lease %016" PRIx64
					 " clock not recorded: out of memory",
					 s->name, id);
				return;
			}
			s->leases = n;
			s->cap_leases = cap;
		}
		l = &s->leases[s->nleases++];
		memset(l, 0, sizeof *l);
		l->id = id;
	}
	l->applied_ms = now_ms();
	l->expiring = false;
}

static void lease_forget(struct rs_store *s, uint64_t id)
{
	for (size_t i = 0; i < s->nleases; i++) {
		if (s->leases[i].id == id) {
			s->leases[i] = s->leases[--s->nleases];
			return;
		}
	}
}

/* Every lease in the FSM gets a record; records of leases no longer in the
 * FSM are dropped. Missing records start now. */
static void lease_sync_with_fsm(struct rs_store *s, bool restart_all)
{
	struct rs_lease_info *ls = NULL;
	size_t n = 0;
	if (rs_fsm_leases(s->fsm, &ls, &n) != 0) {
		log_warn("rs[%s] cannot list leases", s->name);
		return;
	}
	for (size_t i = 0; i < s->nleases;) {
		bool found = false;
		for (size_t j = 0; j < n; j++)
			if (ls[j].id == s->leases[i].id)
				found = true;
		if (!found)
			s->leases[i] = s->leases[--s->nleases];
		else
			i++;
	}
	for (size_t j = 0; j < n; j++) {
		struct lease_clock *l = lease_find(s, ls[j].id);
		if (!l || restart_all || l->applied_ms == 0)
			lease_touch(s, ls[j].id);
	}
	mem_free(ls);
}

static uint64_t lease_deadline(uint64_t applied_ms, uint64_t ttl_ms)
{
	return applied_ms + timing_stretch(ttl_ms);
}

int64_t rs_store_lease_remaining(struct rs_store *s, uint64_t id)
{
	if (!s->ready)
		return -1;
	struct lease_clock *l = lease_find(s, id);
	struct rs_lease_info info;
	if (!l || rs_fsm_lease_get(s->fsm, id, &info) != 0)
		return -1;
	uint64_t d = lease_deadline(l->applied_ms, info.ttl_ms);
	uint64_t now = now_ms();
	return d > now ? (int64_t)(d - now) : 0;
}

static void lease_schedule(struct rs_store *s);

static void expire_done(struct rs_req *r, int status,
			const struct rs_result *res)
{
	struct rs_store *s = r->s;
	struct lease_clock *l = lease_find(s, r->lease);
	if (l)
		l->expiring = false;
	if (status == 0 && res && res->code == 0)
		log_info("rs[%s] lease %016" PRIx64
			 " expired keys_deleted=%" PRIu64,
			 s->name, r->lease, res->count);
	else if (status != 0)
		log_debug("rs[%s] lease %016" PRIx64 " expiry not applied: %s",
			  s->name, r->lease, err_str(status));
}

static int propose(struct rs_store *s, struct rs_req *r,
		   const struct rs_cmd *c);

static void lease_check(struct rs_store *s)
{
	if (!s->ready || s->closing)
		return;
	uint64_t now = now_ms();
	for (size_t i = 0; i < s->nleases; i++) {
		struct lease_clock *l = &s->leases[i];
		struct rs_lease_info info;
		if (l->expiring)
			continue;
		if (rs_fsm_lease_get(s->fsm, l->id, &info) != 0)
			continue;
		if (lease_deadline(l->applied_ms, info.ttl_ms) > now)
			continue;
		struct rs_req *r = req_new(s, REQ_EXPIRE, NULL, NULL);
		if (!r)
			return;
		r->lease = l->id;
		struct rs_cmd c = { .op = RS_OP_LEASE_EXPIRE,
				    .lease = l->id,
				    .renewals = info.renewals };
		l->expiring = true;
		int rv = propose(s, r, &c);
		if (rv != 0) {
			l->expiring = false;
			log_warn("rs[%s] lease %016" PRIx64
				 " expiry not proposed: %s",
				 s->name, l->id, err_str(rv));
			req_unlink(r);
			mem_free(r);
		}
	}
}

static void on_lease_timer(uv_timer_t *t)
{
	struct rs_store *s = t->data;
	lease_check(s);
	lease_schedule(s);
}

static void lease_schedule(struct rs_store *s)
{
	if (s->closing)
		return;
	uv_timer_stop(&s->lease_timer);
	if (!s->ready)
		return;
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < s->nleases; i++) {
		struct rs_lease_info info;
		if (s->leases[i].expiring ||
		    rs_fsm_lease_get(s->fsm, s->leases[i].id, &info) != 0)
			continue;
		uint64_t d = lease_deadline(s->leases[i].applied_ms,
					    info.ttl_ms);
		if (d < next)
			next = d;
	}
	if (next == UINT64_MAX)
		return;
	uint64_t now = now_ms();
	uint64_t wait = next > now ? next - now : 0;
	/* +1: the timer must fire at or after the deadline, never before. */
	uv_timer_start(&s->lease_timer, on_lease_timer, wait + 1, 0);
}

/* ------------------------------------------------------------------ */
/* FSM callbacks                                                        */
/* ------------------------------------------------------------------ */

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf,
		     void **result)
{
	struct rs_store *s = rf->data;
	uint64_t index = s->raft.last_applied + 1;
	struct rs_cmd c;
	memset(&s->last_result, 0, sizeof s->last_result);
	*result = &s->last_result;

	if (rs_cmd_decode(buf->base, buf->len, &c) != 0) {
		/* Every node skips the same bytes the same way. */
		log_error("rs[%s] entry %" PRIu64 " is malformed (%zu bytes):"
			  " skipped",
			  s->name, index, buf->len);
		s->last_result.code = ERR_CORRUPT;
		s->last_result.revision = rs_fsm_revision(s->fsm);
		return 0;
	}
	int rv = rs_fsm_apply(s->fsm, &c, index, &s->last_result);
	if (rv != 0) {
		/* Returning an error would make libraft retry the entry
		 * forever; the FSM left its state unchanged. The hash in
		 * `endpoints` makes a divergence visible. */
		log_error("rs[%s] apply of entry %" PRIu64 " (%s) failed: %s",
			  s->name, index, rs_op_name(c.op), err_str(rv));
		s->last_result.code = rv;
		return 0;
	}
	if (s->last_result.code != 0)
		return 0;
	switch (c.op) {
	case RS_OP_LEASE_GRANT:
		lease_touch(s, s->last_result.lease);
		lease_schedule(s);
		break;
	case RS_OP_LEASE_KEEPALIVE:
		lease_touch(s, c.lease);
		lease_schedule(s);
		break;
	case RS_OP_LEASE_REVOKE:
	case RS_OP_LEASE_EXPIRE:
		lease_forget(s, c.lease);
		break;
	case RS_OP_MEMBER_SET:
	case RS_OP_MEMBER_DEL:
		s->registry_dirty = true;
		break;
	case RS_OP_PUT:
	case RS_OP_DELETE:
		break;
	}
	return 0;
}

static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
			unsigned *n)
{
	struct rs_store *s = rf->data;
	void *data = NULL;
	size_t len = 0;
	int rv = rs_fsm_snapshot(s->fsm, raft_malloc, &data, &len);
	if (rv != 0) {
		log_error("rs[%s] snapshot failed: %s", s->name, err_str(rv));
		return RAFT_NOMEM;
	}
	*bufs = raft_malloc(sizeof **bufs);
	if (!*bufs) {
		raft_free(data);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = data;
	(*bufs)[0].len = len;
	*n = 1;
	s->snapshot_index = s->raft.last_applied;
	log_info("rs[%s] snapshot taken index=%" PRIu64 " bytes=%zu", s->name,
		 s->snapshot_index, len);
	return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct rs_store *s = rf->data;
	int rv = rs_fsm_restore(s->fsm, buf->base, buf->len);
	if (rv != 0) {
		log_error("rs[%s] snapshot restore failed: %s", s->name,
			  err_str(rv));
		return RAFT_CORRUPT;
	}
	raft_free(buf->base);
	s->snapshot_index = rs_fsm_applied_index(s->fsm);
	log_info("rs[%s] snapshot restored applied_index=%" PRIu64
		 " revision=%" PRIu64,
		 s->name, s->snapshot_index, rs_fsm_revision(s->fsm));
	/* The keepalives inside the snapshot were never applied here one by
	 * one: every lease starts its clock now. */
	lease_sync_with_fsm(s, true);
	lease_schedule(s);
	s->registry_dirty = true;
	return 0;
}

static void tracer_emit(struct raft_tracer *t, const char *file, int line,
			const char *message)
{
	struct rs_store *s = t->impl;
	log_debug("raft[%s] %s:%d %s", s->name, file, line, message);
}

/* ------------------------------------------------------------------ */
/* Proposals                                                            */
/* ------------------------------------------------------------------ */

static void on_apply(struct raft_apply *a, int status, void *result)
{
	struct rs_req *r = a->data;
	const struct rs_result *res = result;
	int st = map_raft_err(status);
	if (r->kind == REQ_EXPIRE) {
		expire_done(r, st, res);
		req_finish(r, st, res);
		return;
	}
	if (r->kind == REQ_REGISTER) {
		r->s->registering = false;
		if (st != 0 || (res && res->code != 0)) {
			log_warn("rs[%s] registration not applied: %s",
				 r->s->name,
				 st ? err_str(st) : err_str(res->code));
			r->s->register_after_ms = now_ms() + 1000;
			r->s->registry_dirty = true;
		}
		req_finish(r, st, res);
		return;
	}
	if (r->kind == REQ_ADD && st == 0) {
		/* member registered: the add is complete */
		req_finish(r, res->code, res);
		return;
	}
	if (r->kind == REQ_REMOVE && st == 0) {
		req_finish(r, 0, res);
		return;
	}
	req_finish(r, st, res);
}

/* Encode c into a raft buffer and raft_apply it for request r. */
static int propose(struct rs_store *s, struct rs_req *r,
		   const struct rs_cmd *c)
{
	size_t len = rs_cmd_encoded_size(c);
	if (len == 0)
		return ERR_INVAL;
	void *base = raft_malloc(len);
	if (!base)
		return ERR_NOMEM;
	if (rs_cmd_encode(c, base, len) != len) {
		raft_free(base);
		return ERR_INVAL;
	}
	struct raft_buffer buf = { .base = base, .len = len };
	r->u.apply.data = r;
	int rv = raft_apply(&s->raft, &r->u.apply, &buf, 1, on_apply);
	if (rv != 0) {
		raft_free(base);
		snprintf(s->errmsg, sizeof s->errmsg, "raft_apply: %s",
			 raft_errmsg(&s->raft));
		return map_raft_err(rv);
	}
	return 0;
}

int rs_store_submit(struct rs_store *s, const struct rs_cmd *c,
		    rs_done_cb cb, void *arg)
{
	if (s->closing || s->removed)
		return ERR_SHUTDOWN;
	if (c->op == RS_OP_LEASE_EXPIRE || c->op == RS_OP_MEMBER_SET ||
	    c->op == RS_OP_MEMBER_DEL)
		return ERR_INVAL;
	if (raft_state(&s->raft) != RAFT_LEADER)
		return ERR_NOTLEADER;
	if (rs_cmd_encoded_size(c) == 0)
		return ERR_INVAL;
	struct rs_req *r = req_new(s, REQ_APPLY, cb, arg);
	if (!r)
		return ERR_NOMEM;
	int rv = propose(s, r, c);
	if (rv != 0) {
		req_unlink(r);
		mem_free(r);
	}
	return rv;
}

static void on_barrier(struct raft_barrier *b, int status)
{
	struct rs_req *r = b->data;
	struct rs_store *s = r->s;
	int st = map_raft_err(status);
	if (r->kind == REQ_READY_BARRIER) {
		s->ready_pending = false;
		if (st == 0 && raft_state(&s->raft) == RAFT_LEADER &&
		    s->raft.current_term == r->member_id) {
			s->ready = true;
			log_info("rs[%s] leader ready term=%" PRIu64
				 " applied_index=%" PRIu64,
				 s->name, (uint64_t)s->raft.current_term,
				 (uint64_t)s->raft.last_applied);
			lease_sync_with_fsm(s, false);
			lease_schedule(s);
			s->registry_dirty = true;
			/* report readiness through the change callback */
			s->seen_state = -1;
		} else {
			log_warn("rs[%s] leader barrier failed: %s", s->name,
				 err_str(st));
		}
		req_finish(r, st, NULL);
		return;
	}
	struct rs_result res = { .revision = rs_fsm_revision(s->fsm) };
	req_finish(r, st, &res);
}

int rs_store_barrier(struct rs_store *s, rs_done_cb cb, void *arg)
{
	if (s->closing || s->removed)
		return ERR_SHUTDOWN;
	if (raft_state(&s->raft) != RAFT_LEADER)
		return ERR_NOTLEADER;
	struct rs_req *r = req_new(s, REQ_BARRIER, cb, arg);
	if (!r)
		return ERR_NOMEM;
	r->u.barrier.data = r;
	int rv = raft_barrier(&s->raft, &r->u.barrier, on_barrier);
	if (rv != 0) {
		req_unlink(r);
		mem_free(r);
		return map_raft_err(rv);
	}
	return 0;
}

static void start_ready_barrier(struct rs_store *s)
{
	struct rs_req *r = req_new(s, REQ_READY_BARRIER, NULL, NULL);
	if (!r)
		return;
	r->member_id = s->raft.current_term; /* the term it belongs to */
	r->u.barrier.data = r;
	int rv = raft_barrier(&s->raft, &r->u.barrier, on_barrier);
	if (rv != 0) {
		log_warn("rs[%s] leader barrier not started: %s", s->name,
			 raft_errmsg(&s->raft));
		req_unlink(r);
		mem_free(r);
		return;
	}
	s->ready_pending = true;
	s->ready_term = s->raft.current_term;
}

/* ------------------------------------------------------------------ */
/* Membership                                                           */
/* ------------------------------------------------------------------ */

static const struct raft_server *config_find(struct rs_store *s, uint64_t id)
{
	for (unsigned i = 0; i < s->raft.configuration.n; i++)
		if (s->raft.configuration.servers[i].id == id)
			return &s->raft.configuration.servers[i];
	return NULL;
}

static enum rs_role map_role(int role)
{
	switch (role) {
	case RAFT_VOTER:
		return RS_VOTER;
	case RAFT_STANDBY:
		return RS_LEARNER;
	default:
		return RS_SPARE;
	}
}

/* Registry record for id, or NULL; *rec is filled when found. */
static bool registry_get(struct rs_store *s, uint64_t id,
			 struct rs_member_rec *rec)
{
	struct rs_member_rec *recs = NULL;
	size_t n = 0;
	bool found = false;
	if (rs_fsm_members(s->fsm, &recs, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].id == id) {
			*rec = recs[i];
			found = true;
		}
	}
	mem_free(recs);
	return found;
}

/* Find a member id by name: registry first, then the id derived from the
 * name if that id is in the configuration. 0 if unknown. */
static uint64_t member_lookup(struct rs_store *s, const char *name)
{
	struct rs_member_rec *recs = NULL;
	size_t n = 0;
	uint64_t id = 0;
	if (rs_fsm_members(s->fsm, &recs, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(recs[i].name, name) == 0)
				id = recs[i].id;
		mem_free(recs);
	}
	if (id == 0) {
		uint64_t guess = rs_member_id(s->cluster, name);
		if (config_find(s, guess))
			id = guess;
	}
	return id;
}

int rs_store_members(struct rs_store *s, struct rs_member **out, size_t *n)
{
	const struct raft_configuration *c = &s->raft.configuration;
	struct rs_member *m = mem_calloc(c->n ? c->n : 1, sizeof *m);
	if (!m)
		return ERR_NOMEM;
	for (unsigned i = 0; i < c->n; i++) {
		struct rs_member_rec rec;
		m[i].id = c->servers[i].id;
		m[i].role = map_role(c->servers[i].role);
		snprintf(m[i].peer, sizeof m[i].peer, "%s",
			 c->servers[i].address);
		if (registry_get(s, m[i].id, &rec)) {
			snprintf(m[i].name, sizeof m[i].name, "%s", rec.name);
			snprintf(m[i].api, sizeof m[i].api, "%s", rec.api);
		}
	}
	*out = m;
	*n = c->n;
	return 0;
}

int rs_store_leader(struct rs_store *s, struct rs_member *out)
{
	raft_id id = 0;
	const char *addr = NULL;
	raft_leader(&s->raft, &id, &addr);
	if (id == 0)
		return ERR_NOTFOUND;
	memset(out, 0, sizeof *out);
	out->id = id;
	const struct raft_server *srv = config_find(s, id);
	out->role = srv ? map_role(srv->role) : RS_VOTER;
	if (addr)
		snprintf(out->peer, sizeof out->peer, "%s", addr);
	struct rs_member_rec rec;
	if (registry_get(s, id, &rec)) {
		snprintf(out->name, sizeof out->name, "%s", rec.name);
		snprintf(out->api, sizeof out->api, "%s", rec.api);
	}
	return 0;
}

static void on_change(struct raft_change *ch, int status);

static int member_register(struct rs_store *s, struct rs_req *r)
{
	struct rs_cmd c = {
		.op = RS_OP_MEMBER_SET,
		.member_id = r->member_id,
		.name = { r->name, (uint32_t)strlen(r->name) },
		.peer = { r->peer, (uint32_t)strlen(r->peer) },
		.api = { r->api, (uint32_t)strlen(r->api) },
	};
	return propose(s, r, &c);
}

static void on_change(struct raft_change *ch, int status)
{
	struct rs_req *r = ch->data;
	struct rs_store *s = r->s;
	int st = map_raft_err(status);
	if (st != 0) {
		snprintf(s->errmsg, sizeof s->errmsg, "%s",
			 raft_errmsg(&s->raft));
		req_finish(r, st, NULL);
		return;
	}
	int rv = 0;
	switch (r->kind) {
	case REQ_ADD:
		if (r->step == 0) {
			r->step = 1;
			r->u.change.data = r;
			rv = raft_assign(&s->raft, &r->u.change, r->member_id,
					 RAFT_STANDBY, on_change);
			rv = map_raft_err(rv);
		} else {
			r->step = 2;
			rv = member_register(s, r);
		}
		break;
	case REQ_REMOVE: {
		struct rs_cmd c = { .op = RS_OP_MEMBER_DEL,
				    .member_id = r->member_id };
		r->step = 1;
		rv = propose(s, r, &c);
		break;
	}
	case REQ_PROMOTE: {
		struct rs_result res = { .revision = rs_fsm_revision(s->fsm) };
		req_finish(r, 0, &res);
		return;
	}
	case REQ_APPLY:
	case REQ_BARRIER:
	case REQ_TRANSFER:
	case REQ_EXPIRE:
	case REQ_READY_BARRIER:
	case REQ_REGISTER:
		break;
	}
	if (rv != 0)
		req_finish(r, rv, NULL);
}

static int leader_check(struct rs_store *s)
{
	if (s->closing || s->removed)
		return ERR_SHUTDOWN;
	if (raft_state(&s->raft) != RAFT_LEADER)
		return ERR_NOTLEADER;
	if (!s->ready)
		return ERR_UNAVAILABLE;
	return 0;
}

int rs_store_member_add(struct rs_store *s, const char *name,
			const char *peer, const char *api, rs_done_cb cb,
			void *arg)
{
	int rv = leader_check(s);
	if (rv != 0)
		return rv;
	if (!name || !*name || strlen(name) > RS_MAX_NAME || !peer ||
	    !*peer || strlen(peer) > RS_MAX_ADDR ||
	    (api && strlen(api) > RS_MAX_ADDR))
		return ERR_INVAL;
	/* Only a member of the current configuration counts: registry
	 * entries of servers no longer in it (after force-new-cluster, or a
	 * remove whose registry delete was lost) are overwritten. */
	uint64_t existing = member_lookup(s, name);
	if (existing != 0 && config_find(s, existing)) {
		snprintf(s->errmsg, sizeof s->errmsg,
			 "a member named %s exists", name);
		return ERR_EXISTS;
	}
	for (unsigned i = 0; i < s->raft.configuration.n; i++) {
		if (strcmp(s->raft.configuration.servers[i].address, peer) ==
		    0) {
			snprintf(s->errmsg, sizeof s->errmsg,
				 "peer address %s is in use", peer);
			return ERR_EXISTS;
		}
	}
	struct rs_req *r = req_new(s, REQ_ADD, cb, arg);
	if (!r)
		return ERR_NOMEM;
	r->member_id = rs_member_id(s->cluster, name);
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->peer, sizeof r->peer, "%s", peer);
	snprintf(r->api, sizeof r->api, "%s", api ? api : "");
	r->u.change.data = r;
	rv = raft_add(&s->raft, &r->u.change, r->member_id, peer, on_change);
	if (rv != 0)
		return req_refused(s, r, rv);
	log_info("rs[%s] member add name=%s id=%016" PRIx64 " peer=%s",
		 s->name, name, r->member_id, peer);
	return 0;
}

int rs_store_member_promote(struct rs_store *s, const char *name,
			    rs_done_cb cb, void *arg)
{
	int rv = leader_check(s);
	if (rv != 0)
		return rv;
	uint64_t id = member_lookup(s, name);
	const struct raft_server *srv = id ? config_find(s, id) : NULL;
	if (!srv) {
		snprintf(s->errmsg, sizeof s->errmsg, "no member named %s",
			 name);
		return ERR_NOTFOUND;
	}
	if (srv->role == RAFT_VOTER) {
		snprintf(s->errmsg, sizeof s->errmsg, "%s is already a voter",
			 name);
		return ERR_INVAL;
	}
	struct rs_req *r = req_new(s, REQ_PROMOTE, cb, arg);
	if (!r)
		return ERR_NOMEM;
	r->member_id = id;
	r->u.change.data = r;
	rv = raft_assign(&s->raft, &r->u.change, id, RAFT_VOTER, on_change);
	if (rv != 0)
		return req_refused(s, r, rv);
	log_info("rs[%s] member promote name=%s", s->name, name);
	return 0;
}

int rs_store_member_remove(struct rs_store *s, const char *name,
			   rs_done_cb cb, void *arg)
{
	int rv = leader_check(s);
	if (rv != 0)
		return rv;
	uint64_t id = member_lookup(s, name);
	if (!id || !config_find(s, id)) {
		snprintf(s->errmsg, sizeof s->errmsg, "no member named %s",
			 name);
		return ERR_NOTFOUND;
	}
	if (id == s->id) {
		snprintf(s->errmsg, sizeof s->errmsg,
			 "%s is the raft leader: transfer leadership first",
			 name);
		return ERR_INVAL;
	}
	struct rs_req *r = req_new(s, REQ_REMOVE, cb, arg);
	if (!r)
		return ERR_NOMEM;
	r->member_id = id;
	r->u.change.data = r;
	rv = raft_remove(&s->raft, &r->u.change, id, on_change);
	if (rv != 0)
		return req_refused(s, r, rv);
	log_info("rs[%s] member remove name=%s id=%016" PRIx64, s->name, name,
		 id);
	return 0;
}

static void on_transfer(struct raft_transfer *t)
{
	struct rs_req *r = t->data;
	struct rs_store *s = r->s;
	/* The callback also fires when the transfer timed out: success means
	 * this node no longer leads. */
	int st = raft_state(&s->raft) == RAFT_LEADER ? ERR_TIMEOUT : 0;
	struct rs_result res = { .revision = rs_fsm_revision(s->fsm) };
	req_finish(r, st, &res);
}

int rs_store_transfer(struct rs_store *s, const char *name, rs_done_cb cb,
		      void *arg)
{
	int rv = leader_check(s);
	if (rv != 0)
		return rv;
	uint64_t id = 0;
	if (name && *name) {
		id = member_lookup(s, name);
		const struct raft_server *srv = id ? config_find(s, id) : NULL;
		if (!srv || srv->role != RAFT_VOTER) {
			snprintf(s->errmsg, sizeof s->errmsg,
				 "no voting member named %s", name);
			return ERR_NOTFOUND;
		}
		if (id == s->id) {
			snprintf(s->errmsg, sizeof s->errmsg,
				 "%s is already the leader", name);
			return ERR_INVAL;
		}
	}
	struct rs_req *r = req_new(s, REQ_TRANSFER, cb, arg);
	if (!r)
		return ERR_NOMEM;
	r->member_id = id;
	r->u.transfer.data = r;
	rv = raft_transfer(&s->raft, &r->u.transfer, id, on_transfer);
	if (rv != 0)
		return req_refused(s, r, rv);
	log_info("rs[%s] leadership transfer to=%s", s->name,
		 name && *name ? name : "(any)");
	return 0;
}

/* ------------------------------------------------------------------ */
/* State watch                                                          */
/* ------------------------------------------------------------------ */

static const char *state_name(int st)
{
	switch (st) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	default:
		return "unavailable";
	}
}

/* The marker's fsync on the thread pool: the loop must not wait for the
 * disk. The request owns the fd; nothing of the store, which may be freed
 * first (a pending request keeps the loop alive, so the daemon's drain
 * waits for it). */
struct marker_sync {
	uv_work_t work;
	int fd;  /* owned */
	int err; /* errno of fsync, 0 if it worked */
};

static void marker_sync_work(uv_work_t *w)
{
	struct marker_sync *m = w->data;
	m->err = fsync(m->fd) < 0 ? errno : 0;
}

static void marker_sync_done(uv_work_t *w, int status)
{
	struct marker_sync *m = w->data;
	(void)status;
	if (m->err)
		log_error("rs removed marker fsync: %s", strerror(m->err));
	close(m->fd);
	mem_free(m);
}

static void write_removed_marker(struct rs_store *s)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", s->dir, REMOVED_MARKER);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("rs[%s] cannot write %s: %s", s->name, path,
			  strerror(errno));
		return;
	}
	static const char msg[] =
		"this node was removed from the cluster; wipe the data "
		"directory before adding it again\n";
	if (write(fd, msg, sizeof msg - 1) < 0)
		log_error("rs[%s] cannot write %s: %s", s->name, path,
			  strerror(errno));
	struct marker_sync *m = mem_calloc(1, sizeof *m);
	if (m) {
		m->fd = fd;
		m->work.data = m;
		if (uv_queue_work(s->loop, &m->work, marker_sync_work,
				  marker_sync_done) == 0)
			return;
		mem_free(m);
	}
	fsync(fd); /* could not queue it: once, here */
	close(fd);
}

void rs_store_mark_removed(struct rs_store *s)
{
	if (s->removed)
		return;
	s->removed = true;
	s->ready = false;
	log_warn("rs[%s] the leader reports this node removed from the "
		 "cluster", s->name);
	write_removed_marker(s);
	if (s->change_cb) {
		struct rs_status st;
		rs_store_status(s, &st);
		s->change_cb(s->change_arg, &st);
	}
}

void rs_store_status(struct rs_store *s, struct rs_status *st)
{
	memset(st, 0, sizeof *st);
	st->id = s->id;
	int rst = s->raft_inited ? raft_state(&s->raft) : RAFT_UNAVAILABLE;
	switch (rst) {
	case RAFT_FOLLOWER:
		st->state = RS_FOLLOWER;
		break;
	case RAFT_CANDIDATE:
		st->state = RS_CANDIDATE;
		break;
	case RAFT_LEADER:
		st->state = RS_LEADER;
		break;
	default:
		st->state = RS_UNAVAILABLE;
		break;
	}
	if (s->removed)
		st->state = RS_REMOVED;
	st->ready = s->ready && rst == RAFT_LEADER;
	if (s->raft_inited) {
		const struct raft_server *srv = config_find(s, s->id);
		st->is_member = srv != NULL;
		st->role = srv ? map_role(srv->role) : RS_SPARE;
		raft_id lid = 0;
		const char *addr = NULL;
		raft_leader(&s->raft, &lid, &addr);
		st->leader_id = lid;
		st->term = s->raft.current_term;
		st->last_index = raft_last_index(&s->raft);
		st->commit_index = s->raft.commit_index;
		st->applied_index = raft_last_applied(&s->raft);
	}
	st->revision = rs_fsm_revision(s->fsm);
	st->snapshot_index = s->snapshot_index;
}

void rs_store_status_full(struct rs_store *s, struct rs_status *st)
{
	rs_store_status(s, st);
	/* both read the whole database: only for operators' status calls */
	st->fsm_hash = rs_fsm_hash(s->fsm);
	st->db_size = rs_fsm_db_size(s->fsm);
}

bool rs_store_is_leader(struct rs_store *s)
{
	return s->raft_inited && !s->removed &&
	       raft_state(&s->raft) == RAFT_LEADER;
}

struct rs_fsm *rs_store_fsm(struct rs_store *s)
{
	return s->fsm;
}

void rs_store_on_change(struct rs_store *s, rs_change_cb cb, void *arg)
{
	s->change_cb = cb;
	s->change_arg = arg;
}

/* Our own registry record is missing or stale: propose it (leader) so
 * peers learn our API URL through the store. Followers' records are
 * written by the leader on their behalf when they are added, and by the
 * followers through the API layer otherwise (see api.c). */
static void maybe_register_self(struct rs_store *s)
{
	if (!s->ready || s->registering || s->removed || s->closing ||
	    !s->registry_dirty)
		return;
	if (now_ms() < s->register_after_ms)
		return;
	s->registry_dirty = false;
	struct rs_member_rec rec;
	if (registry_get(s, s->id, &rec) && strcmp(rec.name, s->name) == 0 &&
	    strcmp(rec.api, s->api_url) == 0 &&
	    strcmp(rec.peer, s->address) == 0)
		return;
	struct rs_req *r = req_new(s, REQ_REGISTER, NULL, NULL);
	if (!r)
		return;
	r->member_id = s->id;
	snprintf(r->name, sizeof r->name, "%s", s->name);
	snprintf(r->peer, sizeof r->peer, "%s", s->address);
	snprintf(r->api, sizeof r->api, "%s", s->api_url);
	if (member_register(s, r) != 0) {
		req_unlink(r);
		mem_free(r);
		s->register_after_ms = now_ms() + 1000;
		s->registry_dirty = true;
		return;
	}
	s->registering = true;
}

int rs_store_register_member(struct rs_store *s, uint64_t id,
			     const char *name, const char *peer,
			     const char *api, rs_done_cb cb, void *arg)
{
	int rv = leader_check(s);
	if (rv != 0)
		return rv;
	if (!config_find(s, id))
		return ERR_NOTFOUND;
	if (!name || strlen(name) > RS_MAX_NAME || !peer ||
	    strlen(peer) > RS_MAX_ADDR || !api || strlen(api) > RS_MAX_ADDR)
		return ERR_INVAL;
	if (rs_member_id(s->cluster, name) != id)
		return ERR_INVAL;
	struct rs_req *r = req_new(s, REQ_APPLY, cb, arg);
	if (!r)
		return ERR_NOMEM;
	r->member_id = id;
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->peer, sizeof r->peer, "%s", peer);
	snprintf(r->api, sizeof r->api, "%s", api);
	rv = member_register(s, r);
	if (rv != 0) {
		req_unlink(r);
		mem_free(r);
	}
	return rv;
}

static void on_check(uv_check_t *h)
{
	struct rs_store *s = h->data;
	if (!s->started || s->closing)
		return;
	int st = raft_state(&s->raft);
	raft_id leader = 0;
	const char *addr = NULL;
	raft_leader(&s->raft, &leader, &addr);
	uint64_t term = s->raft.current_term;

	/* Membership of this node. */
	bool member = config_find(s, s->id) != NULL;
	if (member)
		s->was_member = true;
	if (!member && s->was_member && s->raft.configuration.n > 0 &&
	    !s->removed) {
		s->removed = true;
		log_warn("rs[%s] this node was removed from the cluster",
			 s->name);
		write_removed_marker(s);
		s->seen_state = -1;
	}

	if (st != RAFT_LEADER || term != s->ready_term) {
		if (s->ready)
			log_info("rs[%s] leader not ready any more", s->name);
		s->ready = false;
		if (st != RAFT_LEADER)
			uv_timer_stop(&s->lease_timer);
	}
	if (st == RAFT_LEADER && !s->ready && !s->ready_pending &&
	    !s->removed)
		start_ready_barrier(s);
	maybe_register_self(s);

	if (st == s->seen_state && leader == s->seen_leader &&
	    term == s->seen_term)
		return;
	if (st != s->seen_state && s->seen_state >= 0)
		log_info("rs[%s] state=%s->%s term=%" PRIu64
			 " leader=%016" PRIx64,
			 s->name, state_name(s->seen_state), state_name(st),
			 term, (uint64_t)leader);
	else if (leader != s->seen_leader)
		log_info("rs[%s] leader=%016" PRIx64 " term=%" PRIu64,
			 s->name, (uint64_t)leader, term);
	s->seen_state = st;
	s->seen_leader = leader;
	s->seen_term = term;
	if (s->change_cb) {
		struct rs_status status;
		rs_store_status(s, &status);
		s->change_cb(s->change_arg, &status);
	}
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

int rs_store_new(uv_loop_t *loop, const struct rs_options *o,
		 struct rs_store **out, char *errmsg, size_t errlen)
{
	struct rs_store *s = mem_calloc(1, sizeof *s);
	if (!s) {
		snprintf(errmsg, errlen, "out of memory");
		return ERR_NOMEM;
	}
	s->loop = loop;
	s->dir = mem_strdup(o->dir);
	s->cluster = mem_strdup(o->cluster);
	s->name = mem_strdup(o->name);
	s->address = mem_strdup(o->address);
	s->bind = mem_strdup(o->bind_address ? o->bind_address : o->address);
	s->api_url = mem_strdup(o->api_url ? o->api_url : "");
	s->join = o->join;
	s->election_ms = o->election_timeout_ms ? o->election_timeout_ms : 400;
	s->heartbeat_ms = o->heartbeat_timeout_ms ? o->heartbeat_timeout_ms
						  : 80;
	s->snap_threshold = o->snapshot_threshold ? o->snapshot_threshold
						  : 1024;
	s->snap_trailing = o->snapshot_trailing;
	s->seen_state = -1;
	if (o->npeers) {
		s->peers = mem_calloc(o->npeers, sizeof *s->peers);
		if (s->peers) {
			s->npeers = o->npeers;
			for (size_t i = 0; i < o->npeers; i++) {
				s->peers[i].name = mem_strdup(o->peers[i].name);
				s->peers[i].address =
					mem_strdup(o->peers[i].address);
			}
		}
	}
	bool ok = s->dir && s->cluster && s->name && s->address && s->bind &&
		  s->api_url && (o->npeers == 0 || s->peers);
	for (size_t i = 0; ok && i < s->npeers; i++)
		ok = s->peers[i].name && s->peers[i].address;
	if (!ok || rs_fsm_new(&s->fsm) != 0) {
		snprintf(errmsg, errlen, "out of memory");
		rs_store_free(s);
		return ERR_NOMEM;
	}
	s->id = rs_member_id(s->cluster, s->name);
	*out = s;
	return 0;
}

static int dir_is_pristine(const char *dir, bool *pristine, char *errmsg,
			   size_t errlen)
{
	struct stat st;
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT) {
			if (mkdir(dir, 0700) != 0) {
				snprintf(errmsg, errlen, "mkdir %s: %s", dir,
					 strerror(errno));
				return ERR_IO;
			}
			*pristine = true;
			return 0;
		}
		snprintf(errmsg, errlen, "%s: %s", dir, strerror(errno));
		return ERR_IO;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(errmsg, errlen, "%s is not a directory", dir);
		return ERR_INVAL;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/metadata1", dir);
	bool m1 = access(path, F_OK) == 0;
	snprintf(path, sizeof path, "%s/metadata2", dir);
	bool m2 = access(path, F_OK) == 0;
	*pristine = !m1 && !m2;
	return 0;
}

static int raft_setup(struct rs_store *s, char *errmsg, size_t errlen)
{
	int rv = raft_uv_tcp_init(&s->transport, s->loop);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft tcp transport: %s",
			 raft_strerror(rv));
		return ERR_RAFT;
	}
	s->transport_inited = true;
	/* Bind where the node listens; advertise its address. */
	rv = raft_uv_tcp_set_bind_address(&s->transport, s->bind);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft bind address %s: %s",
			 s->bind, raft_strerror(rv));
		return ERR_RAFT;
	}
	rv = raft_uv_init(&s->io, s->loop, s->dir, &s->transport);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft i/o in %s: %s", s->dir,
			 s->io.errmsg);
		return ERR_RAFT;
	}
	s->io_inited = true;
	/* Our snapshots are small SQLite images: skip lz4. */
	raft_uv_set_snapshot_compression(&s->io, false);
	raft_uv_set_connect_retry_delay(&s->io, 100);
	raft_uv_set_segment_size(&s->io, 1024 * 1024);

	s->raft_fsm.version = 1;
	s->raft_fsm.data = s;
	s->raft_fsm.apply = fsm_apply;
	s->raft_fsm.snapshot = fsm_snapshot;
	s->raft_fsm.restore = fsm_restore;
	rv = raft_init(&s->raft, &s->io, &s->raft_fsm, s->id, s->address);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft init: %s",
			 raft_errmsg(&s->raft));
		return ERR_RAFT;
	}
	s->raft_inited = true;
	s->raft.data = s;
	if (getenv("PGWARDEN_RAFT_TRACE")) {
		s->tracer.impl = s;
		s->tracer.enabled = true;
		s->tracer.emit = tracer_emit;
		s->raft.tracer = &s->tracer;
		raft_uv_set_tracer(&s->io, &s->tracer);
	}
	raft_set_election_timeout(&s->raft, s->election_ms);
	raft_set_heartbeat_timeout(&s->raft, s->heartbeat_ms);
	raft_set_snapshot_threshold(&s->raft, s->snap_threshold);
	raft_set_snapshot_trailing(&s->raft, s->snap_trailing);
	raft_set_pre_vote(&s->raft, true);
	return 0;
}

int rs_store_start(struct rs_store *s, char *errmsg, size_t errlen)
{
	char marker[4096];
	snprintf(marker, sizeof marker, "%s/%s", s->dir, REMOVED_MARKER);
	if (access(marker, F_OK) == 0) {
		snprintf(errmsg, errlen,
			 "this node was removed from the cluster (%s exists):"
			 " wipe %s and add it again with `pgwarden member add`",
			 marker, s->dir);
		return ERR_INVAL;
	}
	bool pristine = false;
	int rv = dir_is_pristine(s->dir, &pristine, errmsg, errlen);
	if (rv != 0)
		return rv;
	rv = raft_setup(s, errmsg, errlen);
	if (rv != 0)
		return rv;

	if (pristine && !s->join) {
		struct raft_configuration conf;
		raft_configuration_init(&conf);
		for (size_t i = 0; i < s->npeers; i++) {
			uint64_t id = rs_member_id(s->cluster, s->peers[i].name);
			int r = raft_configuration_add(&conf, id,
						       s->peers[i].address,
						       RAFT_VOTER);
			if (r != 0) {
				raft_configuration_close(&conf);
				snprintf(errmsg, errlen,
					 "bootstrap configuration: %s",
					 raft_strerror(r));
				return ERR_RAFT;
			}
		}
		int r = raft_bootstrap(&s->raft, &conf);
		raft_configuration_close(&conf);
		if (r != 0 && r != RAFT_CANTBOOTSTRAP) {
			snprintf(errmsg, errlen, "bootstrap: %s",
				 raft_errmsg(&s->raft));
			return ERR_RAFT;
		}
		log_info("rs[%s] bootstrapped voters=%zu", s->name, s->npeers);
	} else if (pristine) {
		log_info("rs[%s] joining: waiting to be added by the leader",
			 s->name);
	}

	uv_check_init(s->loop, &s->check);
	s->check.data = s;
	s->open_handles++;
	uv_check_start(&s->check, on_check);
	uv_timer_init(s->loop, &s->lease_timer);
	s->lease_timer.data = s;
	s->open_handles++;
	uv_timer_init(s->loop, &s->done_timer);
	s->done_timer.data = s;
	s->open_handles++;
	/* Neither handle may keep the loop alive on its own. */
	uv_unref((uv_handle_t *)&s->check);

	rv = raft_start(&s->raft);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft start: %s",
			 raft_errmsg(&s->raft));
		return ERR_RAFT;
	}
	s->started = true;
	/* Whoever is in the restored configuration was a member. */
	if (config_find(s, s->id))
		s->was_member = true;
	log_info("rs[%s] started id=%016" PRIx64 " address=%s term=%" PRIu64
		 " last_index=%" PRIu64 " applied=%" PRIu64,
		 s->name, s->id, s->address, (uint64_t)s->raft.current_term,
		 (uint64_t)raft_last_index(&s->raft),
		 (uint64_t)raft_last_applied(&s->raft));
	return 0;
}

int rs_store_force_new_cluster(struct rs_store *s, char *errmsg,
			       size_t errlen)
{
	bool pristine = false;
	int rv = dir_is_pristine(s->dir, &pristine, errmsg, errlen);
	if (rv != 0)
		return rv;
	if (pristine) {
		snprintf(errmsg, errlen,
			 "%s holds no raft state: nothing to recover", s->dir);
		return ERR_NOTFOUND;
	}
	rv = raft_setup(s, errmsg, errlen);
	if (rv != 0)
		return rv;
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	int r = raft_configuration_add(&conf, s->id, s->address, RAFT_VOTER);
	if (r == 0)
		r = raft_recover(&s->raft, &conf);
	raft_configuration_close(&conf);
	if (r != 0) {
		snprintf(errmsg, errlen, "raft recover: %s",
			 raft_errmsg(&s->raft));
		return ERR_RAFT;
	}
	char marker[4096];
	snprintf(marker, sizeof marker, "%s/%s", s->dir, REMOVED_MARKER);
	unlink(marker);
	log_info("rs[%s] forced a new single-member configuration", s->name);
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct rs_store *s = h->data;
	if (--s->open_handles == 0 && s->close_cb)
		s->close_cb(s->close_arg);
}

static void finish_close(struct rs_store *s)
{
	/* raft is closed: report everything now, in order */
	while (s->reqs)
		req_finish(s->reqs, ERR_SHUTDOWN, NULL);
	deliver_done(s);
	if (s->open_handles == 0) {
		if (s->close_cb)
			s->close_cb(s->close_arg);
		return;
	}
	uv_timer_stop(&s->lease_timer);
	uv_timer_stop(&s->done_timer);
	uv_close((uv_handle_t *)&s->check, on_handle_closed);
	uv_close((uv_handle_t *)&s->lease_timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->done_timer, on_handle_closed);
}

static void on_raft_closed(struct raft *r)
{
	struct rs_store *s = r->data;
	if (s->io_inited)
		raft_uv_close(&s->io);
	if (s->transport_inited)
		raft_uv_tcp_close(&s->transport);
	s->io_inited = s->transport_inited = false;
	finish_close(s);
}

void rs_store_close(struct rs_store *s, void (*cb)(void *arg), void *arg)
{
	s->closing = true;
	s->ready = false;
	s->close_cb = cb;
	s->close_arg = arg;
	if (s->raft_inited) {
		s->raft_inited = false;
		raft_close(&s->raft, on_raft_closed);
		return;
	}
	if (s->io_inited)
		raft_uv_close(&s->io);
	if (s->transport_inited)
		raft_uv_tcp_close(&s->transport);
	s->io_inited = s->transport_inited = false;
	finish_close(s);
}

void rs_store_free(struct rs_store *s)
{
	if (!s)
		return;
	rs_fsm_free(s->fsm);
	for (size_t i = 0; i < s->npeers; i++) {
		mem_free((void *)s->peers[i].name);
		mem_free((void *)s->peers[i].address);
	}
	mem_free(s->peers);
	mem_free(s->leases);
	mem_free(s->dir);
	mem_free(s->cluster);
	mem_free(s->name);
	mem_free(s->address);
	mem_free(s->bind);
	mem_free(s->api_url);
	mem_free(s);
}
