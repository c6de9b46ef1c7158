/* api_int.h - what the API's source files share (not a public header):
 * the api object, the asynchronous store operation, the request/response
 * helpers of api.c and the route handlers of routes_*.c. Loop thread only.
 *
 * Helpers that answer a request on failure (api_check_auth, api_get_*,
 * api_only_fields, api_body_object) return nonzero/NULL once they have
 * answered; the caller then must not touch req again.
 */
#ifndef PGW_API_INT_H
#define PGW_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/api.h"
#include "ha/ha_agent.h"

struct wd_lag;

struct api {
	uv_loop_t *loop;
	struct rs_store *store;
	struct http_client *client;
	char *cluster, *name, *token, *api_url, *peer_url, *version;
	const struct wd_lag *lag; /* loop stalls; borrowed, may be NULL */
	uv_timer_t reg_timer;
	bool reg_inflight;
	api_status_fn agent_status; /* NULL on a store-only node */
	/* the last probe body, reused while the status is byte-identical
	 * (building it costs most of a probe: HAProxy asks often) */
	struct ha_status probe_st;
	char *probe_body; /* owned */
	size_t probe_len;
	int (*agent_reinit)(void *ctx);
	api_lsn_fn agent_lsn;
	void *agent_ctx;
	bool closing;
	void (*close_cb)(void *);
	void *close_arg;
};

/* One asynchronous operation waiting for the store or a peer. */
struct op {
	struct api *a;
	struct http_req *req;
	int kind;
	char name[RS_MAX_NAME + 1];
	char api[RS_MAX_ADDR + 1];
	uint64_t id;
	bool prefix;
	size_t limit;
	char *key;     /* owned */
	char msg[256]; /* OP_ACTION: the success message */
};

enum op_kind {
	OP_PUT,
	OP_DELETE,
	OP_GRANT,
	OP_KEEPALIVE,
	OP_REVOKE,
	OP_GET,
	OP_ADD,
	OP_PROMOTE,
	OP_REMOVE,
	OP_TRANSFER,
	OP_REGISTER,
	OP_APPLY,
	OP_ACTION, /* an HA request written as a key: answered with msg */
};

/* ---- api.c: responses ---- */
void api_respond_json(struct http_req *req, unsigned status, json_t *obj);
void api_respond_error(struct http_req *req, unsigned status, int code,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
unsigned api_status_of(int err);
void api_respond_err(struct http_req *req, int err, const char *what);
json_t *api_json_hex(uint64_t v);
json_t *api_json_ttl(uint64_t ttl_ms);

/* ---- api.c: request parsing ---- */
/* s[0..n) is well-formed UTF-8 (what a JSON string may hold). */
bool api_utf8_valid(const char *s, size_t n);
bool api_is_mutating(const char *method);
int api_check_auth(struct api *a, struct http_req *req);
json_t *api_body_object(struct http_req *req);
int api_only_fields(struct http_req *req, json_t *o,
		    const char *const *allowed);
int api_get_str(struct http_req *req, json_t *o, const char *field,
		bool required, size_t maxlen, const char **out, size_t *outlen);
int api_get_u64(struct http_req *req, json_t *o, const char *field,
		bool *present, uint64_t *out);
bool api_parse_hex_id(const char *s, uint64_t *out);
int api_get_id(struct http_req *req, json_t *o, const char *field,
	       bool required, uint64_t *out);
bool api_valid_name(const char *s);
int api_query_bool(struct http_req *req, const char *name);

/* ---- api.c: forwarding and store operations ---- */
void api_forward(struct api *a, struct http_req *req);
struct op *api_op_new(struct api *a, struct http_req *req, int kind);
void api_op_free(struct op *o);
json_t *api_member_json(const struct rs_member *m, uint64_t leader);
bool api_find_member(struct api *a, const char *name, struct rs_member *out);
/* "a.b.c.d:port": an address libraft 0.15's transport can use (IPv4
 * literals only; the loop does not resolve names). */
bool api_raft_address(const char *s);
/* Refuse (409) a member name whose PostgreSQL name (cfg_pg_name) another
 * member has already; true if it did (the request is answered). */
bool api_refuse_pg_name(struct api *a, struct http_req *req,
			const char *name, const char *what);
void api_on_store_done(void *arg, int status, const struct rs_result *res);
void api_started(struct op *o, int rv, const char *what);
void api_submit(struct api *a, struct http_req *req, int kind,
		const struct rs_cmd *c, const char *what);
struct ha_member;
json_t *api_member_obj(const struct ha_member *m);

/* ---- the route handlers, one per row of api.c's route table ----
 * Each answers req, now or later. b is the request body parsed as a JSON
 * object for routes that read one (borrowed: freed after the handler
 * returns), NULL otherwise. */
typedef void api_route_fn(struct api *a, struct http_req *req, json_t *b);
/* routes_kv.c */
api_route_fn api_route_kv_get;
api_route_fn api_route_kv_put;
api_route_fn api_route_kv_delete;
api_route_fn api_route_lease_grant;
api_route_fn api_route_lease_keepalive;
api_route_fn api_route_lease_revoke;
api_route_fn api_route_lease_list;
/* routes_cluster.c */
api_route_fn api_route_members;
api_route_fn api_route_member_add;
api_route_fn api_route_member_promote;
api_route_fn api_route_member_remove;
api_route_fn api_route_transfer_leader;
api_route_fn api_route_cluster;
api_route_fn api_route_switchover;
api_route_fn api_route_switchover_cancel;
api_route_fn api_route_failover;
api_route_fn api_route_pause;
api_route_fn api_route_resume;
api_route_fn api_route_history;
api_route_fn api_route_reinit;
/* routes_probe.c */
/* The ?lag= of /replica: 0 and the byte count, or -1. */
int api_parse_lag(const char *s, uint64_t *out);
api_route_fn api_route_liveness;
api_route_fn api_route_status;
api_route_fn api_route_primary;
api_route_fn api_route_replica;
api_route_fn api_route_read_only;
api_route_fn api_route_health;
api_route_fn api_route_readiness;
api_route_fn api_route_root;
/* routes_internal.c */
api_route_fn api_route_register;
api_route_fn api_route_removed;
api_route_fn api_route_apply;
api_route_fn api_route_lsn;

#endif
