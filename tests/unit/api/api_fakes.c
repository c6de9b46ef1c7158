/* api_fakes.c - the fakes of api_fakes.h. */
#include "api_fakes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "mem.h"
#include "rs.h"

static struct t_env *env; /* the one env of the process */

/* ------------------------------------------------------------------ */
/* Completions queued until t_drain()                                   */

enum t_kind { T_STORE, T_CLIENT, T_LSN };

struct t_done {
	enum t_kind kind;
	rs_done_cb store_cb;
	http_client_cb client_cb;
	void (*lsn_cb)(void *, const struct ha_lsn_answer *);
	void *arg;
	int status;
	struct rs_result res;
	struct t_done *next;
};

static struct t_done *q_head, *q_tail;

static void q_push(struct t_done *d)
{
	d->next = NULL;
	if (q_tail)
		q_tail->next = d;
	else
		q_head = d;
	q_tail = d;
}

static int q_store(rs_done_cb cb, void *arg, int status,
		   const struct rs_result *res)
{
	struct t_done *d = calloc(1, sizeof *d);
	if (!d)
		abort();
	d->kind = T_STORE;
	d->store_cb = cb;
	d->arg = arg;
	d->status = status;
	if (res)
		d->res = *res;
	q_push(d);
	return 0;
}

int t_drain(void)
{
	int n = 0;
	/* bounded: a completion may queue another, never endlessly */
	while (q_head && n < 10000) {
		struct t_done *d = q_head;
		q_head = d->next;
		if (!q_head)
			q_tail = NULL;
		n++;
		switch (d->kind) {
		case T_STORE:
			d->store_cb(d->arg, d->status,
				    d->status == 0 ? &d->res : NULL);
			break;
		case T_CLIENT:
			d->client_cb(
				d->arg, env->answer_err,
				env->answer_err ? 0 : env->answer_status,
				env->answer_err ? "" : env->answer_body,
				env->answer_err ? 0 : strlen(env->answer_body));
			break;
		case T_LSN: {
			struct ha_lsn_answer ans = { 0 };
			ans.in_recovery = true;
			ans.timeline = 3;
			ans.received = 100;
			ans.replayed = 90;
			d->lsn_cb(d->arg, &ans);
			break;
		}
		}
		free(d);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* The request                                                          */

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		abort();
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

struct http_req *t_req_new(const char *method, const char *path,
			   const char *query, const char *const *headers,
			   const char *body, size_t body_len)
{
	struct http_req *r = calloc(1, sizeof *r);
	if (!r)
		abort();
	r->method = dup_n(method, strlen(method));
	r->path = dup_n(path, strlen(path));
	r->query = dup_n(query ? query : "", query ? strlen(query) : 0);
	for (size_t i = 0; headers && headers[i] && r->nheaders < T_MAX_HEADERS;
	     i++) {
		const char *c = strchr(headers[i], ':');
		if (!c)
			continue;
		const char *v = c + 1;
		while (*v == ' ')
			v++;
		r->hname[r->nheaders] =
			dup_n(headers[i], (size_t)(c - headers[i]));
		r->hval[r->nheaders] = dup_n(v, strlen(v));
		r->nheaders++;
	}
	r->body = dup_n(body ? body : "", body ? body_len : 0);
	r->body_len = body ? body_len : 0;
	return r;
}

void t_req_free(struct http_req *r)
{
	if (!r)
		return;
	free(r->method);
	free(r->path);
	free(r->query);
	for (int i = 0; i < r->nheaders; i++) {
		free(r->hname[i]);
		free(r->hval[i]);
	}
	free(r->body);
	free(r->resp);
	free(r);
}

const char *http_req_method(struct http_req *r)
{
	return r->method;
}

const char *http_req_path(struct http_req *r)
{
	return r->path;
}

const char *http_req_query_string(struct http_req *r)
{
	return r->query;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode one %XX-and-'+' encoded piece into out (as MHD does). */
static void url_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n &&
			   hexval((unsigned char)s[i + 1]) >= 0 &&
			   hexval((unsigned char)s[i + 2]) >= 0) {
			out[o++] = (char)(hexval((unsigned char)s[i + 1]) * 16 +
					  hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
}

/* The i-th query parameter: name and value decoded into the buffers,
 * has_value false for "name" without '='. false when there is none. */
static bool query_nth(const char *q, int idx, char *name, size_t nlen,
		      char *val, size_t vlen, bool *has_value)
{
	int i = 0;
	while (*q) {
		size_t len = strcspn(q, "&");
		if (len > 0) {
			if (i == idx) {
				const char *eq = memchr(q, '=', len);
				size_t kl = eq ? (size_t)(eq - q) : len;
				url_decode(q, kl, name, nlen);
				*has_value = eq != NULL;
				if (eq)
					url_decode(eq + 1, len - kl - 1, val,
						   vlen);
				else
					val[0] = '\0';
				return true;
			}
			i++;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return false;
}

/* Values returned by http_req_query live until the request is freed. */
#define T_QBUF 8192
static char qname[T_QBUF], qval[32][T_QBUF];
static int qslot;

const char *http_req_query(struct http_req *r, const char *name)
{
	char v[T_QBUF];
	bool hv;
	for (int i = 0;
	     query_nth(r->query, i, qname, sizeof qname, v, sizeof v, &hv);
	     i++) {
		if (strcmp(qname, name) != 0)
			continue;
		char *slot = qval[qslot++ % 32];
		snprintf(slot, T_QBUF, "%s", v);
		return slot;
	}
	return NULL;
}

const char *http_req_unknown_query(struct http_req *r,
				   const char *const *allowed)
{
	char v[T_QBUF];
	bool hv;
	for (int i = 0;
	     query_nth(r->query, i, qname, sizeof qname, v, sizeof v, &hv);
	     i++) {
		bool known = false;
		for (size_t k = 0; allowed[k]; k++)
			if (strcmp(allowed[k], qname) == 0)
				known = true;
		if (!known)
			return qname;
	}
	return NULL;
}

const char *http_req_header(struct http_req *r, const char *name)
{
	for (int i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->hname[i], name) == 0)
			return r->hval[i];
	return NULL;
}

const char *http_req_body(struct http_req *r, size_t *len)
{
	*len = r->body_len;
	return r->body;
}

void http_respond(struct http_req *r, unsigned status, const char *ctype,
		  const char *body, size_t len, const char *hname,
		  const char *hvalue)
{
	(void)ctype;
	r->answers++;
	free(r->resp);
	r->resp = dup_n(body, len);
	r->resp_len = len;
	r->status = status;
	r->allow[0] = '\0';
	if (hname && strcasecmp(hname, "Allow") == 0)
		snprintf(r->allow, sizeof r->allow, "%s", hvalue);
}

/* ------------------------------------------------------------------ */
/* The node-to-node client                                              */

int http_client_request(struct http_client *c, const char *method,
			const char *url, const char *const *headers,
			const char *body, size_t len, unsigned timeout_ms,
			http_client_cb cb, void *arg)
{
	(void)c;
	(void)timeout_ms;
	env->sent++;
	snprintf(env->last_method, sizeof env->last_method, "%s", method);
	snprintf(env->last_url, sizeof env->last_url, "%s", url);
	free(env->last_body);
	env->last_body = body ? dup_n(body, len) : NULL;
	env->last_forwarded = false;
	for (size_t i = 0; headers && headers[i]; i++)
		if (strncasecmp(headers[i], "X-Pgwarden-Forwarded:", 21) == 0)
			env->last_forwarded = true;
	struct t_done *d = calloc(1, sizeof *d);
	if (!d)
		abort();
	d->kind = T_CLIENT;
	d->client_cb = cb;
	d->arg = arg;
	q_push(d);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The store: one node in front of the real state machine               */

static struct rs_fsm *fsm;
static uint64_t raft_index;

#define T_MAX_MEMBERS 8
static struct rs_member members[T_MAX_MEMBERS];
static size_t nmembers;
static char store_err[256];

uint64_t rs_member_id(const char *cluster, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = cluster; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h &= 0x7fffffffffffffffull;
	return h ? h : 1;
}

static void members_init(void)
{
	static const char *names[] = { "n1", "n2", "n3" };
	nmembers = 3;
	memset(members, 0, sizeof members);
	for (size_t i = 0; i < nmembers; i++) {
		members[i].id = rs_member_id("c1", names[i]);
		members[i].role = RS_VOTER;
		snprintf(members[i].name, sizeof members[i].name, "%s",
			 names[i]);
		snprintf(members[i].peer, sizeof members[i].peer,
			 "127.0.0.1:%zu", 7001 + i);
		snprintf(members[i].api, sizeof members[i].api,
			 "http://127.0.0.1:%zu", 8101 + i);
	}
}

void t_env_reset_store(struct t_env *e)
{
	(void)e;
	rs_fsm_free(fsm);
	fsm = NULL;
	if (rs_fsm_new(&fsm) != 0)
		abort();
	raft_index = 1;
	members_init();
}

void t_fsm_put(const char *key, const char *value)
{
	struct rs_cmd c;
	memset(&c, 0, sizeof c);
	c.op = RS_OP_PUT;
	c.key.p = key;
	c.key.len = (uint32_t)strlen(key);
	c.value.p = value;
	c.value.len = (uint32_t)strlen(value);
	struct rs_result res;
	if (rs_fsm_apply(fsm, &c, ++raft_index, &res) != 0 || res.code != 0)
		abort();
}

struct rs_fsm *rs_store_fsm(struct rs_store *s)
{
	(void)s;
	return fsm;
}

bool rs_store_is_leader(struct rs_store *s)
{
	(void)s;
	return env->leader;
}

const char *rs_store_errmsg(struct rs_store *s)
{
	(void)s;
	return store_err;
}

void rs_store_status(struct rs_store *s, struct rs_status *out)
{
	(void)s;
	memset(out, 0, sizeof *out);
	out->id = rs_member_id("c1", "n1");
	out->state = env->removed  ? RS_REMOVED
		     : env->leader ? RS_LEADER
				   : RS_FOLLOWER;
	out->ready = env->leader;
	out->is_member = true;
	out->role = RS_VOTER;
	out->leader_id = env->leader	     ? out->id
			 : env->leader_known ? rs_member_id("c1", "n2")
					     : 0;
	out->term = 4;
	out->last_index = raft_index;
	out->commit_index = raft_index;
	out->applied_index = raft_index;
	out->revision = rs_fsm_revision(fsm);
}

void rs_store_status_full(struct rs_store *s, struct rs_status *out)
{
	rs_store_status(s, out);
	out->fsm_hash = rs_fsm_hash(fsm);
	out->db_size = rs_fsm_db_size(fsm);
}

int rs_store_leader(struct rs_store *s, struct rs_member *out)
{
	(void)s;
	if (env->leader) {
		*out = members[0];
		return 0;
	}
	if (!env->leader_known)
		return ERR_NOTFOUND;
	*out = members[1];
	snprintf(out->api, sizeof out->api, "%s", env->leader_api);
	return 0;
}

int rs_store_members(struct rs_store *s, struct rs_member **out, size_t *n)
{
	(void)s;
	/* the caller frees with mem_free: allocate with mem_malloc */
	struct rs_member *m = mem_malloc(sizeof members);
	if (!m)
		return ERR_NOMEM;
	memcpy(m, members, sizeof members);
	*out = m;
	*n = nmembers;
	return 0;
}

int rs_store_submit(struct rs_store *s, const struct rs_cmd *c, rs_done_cb cb,
		    void *arg)
{
	(void)s;
	if (!env->leader)
		return ERR_NOTLEADER;
	if (c->op == RS_OP_LEASE_EXPIRE || c->op == RS_OP_MEMBER_SET ||
	    c->op == RS_OP_MEMBER_DEL)
		return ERR_INVAL;
	struct rs_result res;
	memset(&res, 0, sizeof res);
	int rv = rs_fsm_apply(fsm, c, ++raft_index, &res);
	return q_store(cb, arg, rv, &res);
}

int rs_store_barrier(struct rs_store *s, rs_done_cb cb, void *arg)
{
	(void)s;
	if (!env->leader)
		return ERR_NOTLEADER;
	struct rs_result res = { .revision = rs_fsm_revision(fsm) };
	return q_store(cb, arg, 0, &res);
}

static struct rs_member *member_find(const char *name)
{
	for (size_t i = 0; i < nmembers; i++)
		if (strcmp(members[i].name, name) == 0)
			return &members[i];
	return NULL;
}

int rs_store_member_add(struct rs_store *s, const char *name, const char *peer,
			const char *api, rs_done_cb cb, void *arg)
{
	(void)s;
	if (!env->leader)
		return ERR_NOTLEADER;
	if (member_find(name)) {
		snprintf(store_err, sizeof store_err, "%s is a member already",
			 name);
		return ERR_EXISTS;
	}
	if (nmembers == T_MAX_MEMBERS)
		return ERR_INVAL;
	struct rs_member *m = &members[nmembers++];
	memset(m, 0, sizeof *m);
	m->id = rs_member_id("c1", name);
	m->role = RS_LEARNER;
	snprintf(m->name, sizeof m->name, "%s", name);
	snprintf(m->peer, sizeof m->peer, "%s", peer);
	snprintf(m->api, sizeof m->api, "%s", api ? api : "");
	return q_store(cb, arg, 0, &(struct rs_result){ 0 });
}

int rs_store_member_promote(struct rs_store *s, const char *name, rs_done_cb cb,
			    void *arg)
{
	(void)s;
	if (!env->leader)
		return ERR_NOTLEADER;
	struct rs_member *m = member_find(name);
	if (!m) {
		snprintf(store_err, sizeof store_err, "no member %s", name);
		return ERR_NOTFOUND;
	}
	m->role = RS_VOTER;
	return q_store(cb, arg, 0, &(struct rs_result){ 0 });
}

int rs_store_member_remove(struct rs_store *s, const char *name, rs_done_cb cb,
			   void *arg)
{
	(void)s;
	if (!env->leader)
		return ERR_NOTLEADER;
	struct rs_member *m = member_find(name);
	if (!m) {
		snprintf(store_err, sizeof store_err, "no member %s", name);
		return ERR_NOTFOUND;
	}
	*m = members[--nmembers];
	return q_store(cb, arg, 0, &(struct rs_result){ 0 });
}

int rs_store_transfer(struct rs_store *s, const char *name, rs_done_cb cb,
		      void *arg)
{
	(void)s;
	if (!env->leader)
		return ERR_NOTLEADER;
	if (name && !member_find(name)) {
		snprintf(store_err, sizeof store_err, "no member %s", name);
		return ERR_NOTFOUND;
	}
	return q_store(cb, arg, 0, &(struct rs_result){ 0 });
}

int rs_store_register_member(struct rs_store *s, uint64_t id, const char *name,
			     const char *peer, const char *api, rs_done_cb cb,
			     void *arg)
{
	(void)s;
	(void)peer;
	(void)api;
	if (!env->leader)
		return ERR_NOTLEADER;
	if (id != rs_member_id("c1", name)) {
		snprintf(store_err, sizeof store_err, "id is not %s's", name);
		return ERR_INVAL;
	}
	return q_store(cb, arg, 0,
		       &(struct rs_result){ .revision = rs_fsm_revision(fsm) });
}

void rs_store_mark_removed(struct rs_store *s)
{
	(void)s;
	env->removed = true;
}

int64_t rs_store_lease_remaining(struct rs_store *s, uint64_t id)
{
	(void)s;
	(void)id;
	return env->leader ? 1234 : -1;
}

/* ------------------------------------------------------------------ */
/* The agent                                                            */

static void agent_status(void *ctx, struct ha_status *out)
{
	struct t_env *e = ctx;
	*out = e->st;
}

static int agent_reinit(void *ctx)
{
	struct t_env *e = ctx;
	e->reinits++;
	return e->reinit_rv;
}

static int agent_lsn(void *ctx,
		     void (*cb)(void *arg, const struct ha_lsn_answer *),
		     void *arg)
{
	(void)ctx;
	struct t_done *d = calloc(1, sizeof *d);
	if (!d)
		abort();
	d->kind = T_LSN;
	d->lsn_cb = cb;
	d->arg = arg;
	q_push(d);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The environment                                                      */

void t_env_init(struct t_env *e)
{
	memset(e, 0, sizeof e[0]);
	env = e;
	e->leader = true;
	e->answer_err = ERR_IO;
	t_env_reset_store(e);
	store_err[0] = '\0';
	if (uv_loop_init(&e->loop) != 0)
		abort();
	struct api_options o = {
		.cluster = "c1",
		.name = "n1",
		.token = T_TOKEN,
		.api_url = "http://127.0.0.1:8101",
		.peer_url = "127.0.0.1:7001",
		.version = "test",
	};
	/* the store and client pointers are never dereferenced: the fakes
	 * above stand for them */
	if (api_new(&e->loop, (struct rs_store *)e, (struct http_client *)e, &o,
		    &e->api) != 0)
		abort();
	memset(&e->st, 0, sizeof e->st);
	t_env_set_agent(e, true);
}

void t_env_set_agent(struct t_env *e, bool on)
{
	if (!on) {
		api_set_agent(e->api, NULL, NULL, NULL);
		return;
	}
	api_set_agent(e->api, agent_status, agent_reinit, e);
	api_set_agent_lsn(e->api, agent_lsn);
}

static void on_api_closed(void *arg)
{
	(void)arg;
}

void t_env_close(struct t_env *e)
{
	t_drain();
	api_close(e->api, on_api_closed, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	api_free(e->api);
	if (uv_loop_close(&e->loop) != 0)
		abort();
	rs_fsm_free(fsm);
	fsm = NULL;
	free(e->last_body);
	e->last_body = NULL;
	env = NULL;
}

void t_dispatch(struct t_env *e, struct http_req *req)
{
	api_handle(e->api, req);
	t_drain();
}
