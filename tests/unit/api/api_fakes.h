/* api_fakes.h - what the API's route handlers talk to, replaced at link
 * time for tests/unit/api and tests/fuzz/fuzz_http.c:
 *
 *   - the request (http_server.h's accessors and http_respond) is a
 *     t_req built from method, path, raw query, headers and body; the
 *     answer is recorded in it instead of going to a socket;
 *   - the store (rs.h's rs_store_*) is one fake node in front of the real
 *     state machine (rs_fsm.c): leader or follower as the test says,
 *     commands applied to the fsm at once, completions queued and run by
 *     t_drain() (never before the submitting call returns, as rs.h says);
 *   - the node-to-node HTTP client (http_client.h) records each request
 *     and answers it from t_drain() with what the test set.
 *
 * The api itself (api.c, routes_*.c) is the real code, created with
 * api_new() on a real uv loop that is only run to close it. Single
 * threaded; every allocation of the fakes uses malloc, so that
 * mem_fail_after() hits only the code under test.
 */
#ifndef PGW_TEST_API_FAKES_H
#define PGW_TEST_API_FAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "ha/ha_agent.h"

#define T_TOKEN	      "test-token"
#define T_MAX_HEADERS 16

struct http_req {
	char *method, *path, *query; /* owned */
	char *hname[T_MAX_HEADERS], *hval[T_MAX_HEADERS];
	int nheaders;
	char *body; /* owned, NUL-terminated */
	size_t body_len;
	/* the answer */
	int answers; /* http_respond calls: must end as 1 */
	unsigned status;
	char *resp; /* owned, NUL-terminated */
	size_t resp_len;
	char allow[128]; /* the Allow header, "" none */
};

/* The fake node and what it saw. */
struct t_env {
	uv_loop_t loop;
	struct api *api;
	/* store */
	bool leader;	      /* this node is the Raft leader */
	bool leader_known;    /* (follower) a leader is known */
	char leader_api[128]; /* its API URL ("" unregistered) */
	bool removed;	      /* rs_store_mark_removed was called */
	/* agent (api_set_agent(e->api, NULL, NULL, NULL): a store-only node) */
	struct ha_status st;
	int reinit_rv;
	int reinits;
	/* client: the last request sent and the answer given to all */
	int sent;
	char last_method[16];
	char last_url[512];
	char *last_body;     /* owned */
	bool last_forwarded; /* had X-Pgwarden-Forwarded */
	int answer_err;	     /* 0: answer with status/body below */
	long answer_status;
	char answer_body[256];
};

/* Set up env (a store with an empty state machine, this node "n1" of
 * cluster "c1", leader) and the api on it; t_env_close() frees all. */
void t_env_init(struct t_env *e);
void t_env_close(struct t_env *e);
/* The fake agent on (the default) or off (a store-only node). */
void t_env_set_agent(struct t_env *e, bool on);
/* Empty the state machine again (the fuzz target's inputs accumulate). */
void t_env_reset_store(struct t_env *e);

/* A request; headers: NULL-terminated "Name: value" strings or NULL. */
struct http_req *t_req_new(const char *method, const char *path,
			   const char *query, const char *const *headers,
			   const char *body, size_t body_len);
void t_req_free(struct http_req *r);

/* Hand req to api_handle and run every queued completion (bounded); the
 * request is answered (or not: req->answers tells) when it returns. */
void t_dispatch(struct t_env *e, struct http_req *req);
/* Run queued store, client and agent completions; returns how many. */
int t_drain(void);

/* Put key=value straight into the state machine (a member record, the
 * leader key...). */
void t_fsm_put(const char *key, const char *value);

#endif
