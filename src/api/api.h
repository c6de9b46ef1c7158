/* api.h - the node's HTTP API (docs/http-api.md): routes, authentication,
 * JSON, and forwarding to the Raft leader.
 *
 * A request that needs the leader is served locally on the leader and
 * relayed otherwise: the receiving node sends the same method, path, query
 * and body to the leader's API URL (from the store's member registry) with
 * the cluster token and X-Pgwarden-Forwarded: 1, and returns the leader's
 * answer unchanged. A forwarded request that reaches a non-leader gets 503
 * (no second hop). Loop thread only.
 */
#ifndef PGW_API_H
#define PGW_API_H

#include <uv.h>

#include "api/http_client.h"
#include "api/http_server.h"
#include "rs.h"

struct api;

struct wd_lag;
struct api_options {
	const char *cluster;  /* borrowed for the api's lifetime */
	const char *name;
	const char *token;
	const char *api_url;
	const char *peer_url;
	const char *version;
	const struct wd_lag *lag; /* loop stalls for GET /status; borrowed,
				     may be NULL */
};

int api_new(uv_loop_t *loop, struct rs_store *store,
	    struct http_client *client, const struct api_options *opts,
	    struct api **out);

/* The http_server handler; arg is the struct api. */
void api_handle(void *arg, struct http_req *req);

/* Stop the registration timer; cb fires when the api may be freed with
 * api_free(). In-flight requests are answered by the store's and the
 * client's own shutdown (close those first). */
void api_close(struct api *a, void (*cb)(void *arg), void *arg);
void api_free(struct api *a);

struct ha_status;
/* How the API learns the node's PostgreSQL status for the load-balancer
 * probes: fn(ctx, out) fills *out from memory, never blocking. NULL (the
 * default): a store-only node, whose probes answer 503. */
typedef void (*api_status_fn)(void *ctx, struct ha_status *out);
/* reinit(ctx) schedules a re-clone of this node (0, or ERR_CONFLICT on the
 * primary). */
void api_set_agent(struct api *a, api_status_fn fn, int (*reinit)(void *),
		   void *ctx);
/* GET /internal/lsn: lsn(ctx, cb, arg) probes PostgreSQL and calls cb once
 * (ha_agent_probe_lsn), or returns an error and does not. */
struct ha_lsn_answer;
typedef int (*api_lsn_fn)(void *ctx,
			  void (*cb)(void *arg, const struct ha_lsn_answer *),
			  void *arg);
void api_set_agent_lsn(struct api *a, api_lsn_fn fn);

#endif
