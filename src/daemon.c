/* daemon.c - process lifecycle of `pgwarden run` and the offline
 * force-new-cluster.
 *
 * Startup: mkdir data_dir, take an exclusive flock on data_dir/lock (a
 * second daemon or an offline recovery on the same directory fails at
 * once), create the store, the HTTP client, the API and the HTTP server,
 * start raft. Any failure: one line on stderr, everything created so far
 * closed, exit status 1.
 * Shutdown (signal or removal): store -> client -> server -> api, each
 * started from the previous one's close callback.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "api/api.h"
#include "err.h"
#include "ha/ha_agent.h"
#include "ha/ha_ctl.h"
#include "api/kv.h"
#include "api/http_client.h"
#include "api/http_server.h"
#include "log.h"
#include "mem.h"
#include "rs.h"
#include "wd_lag.h"

#ifndef PGW_VERSION
#define PGW_VERSION "0.1.0"
#endif

struct daemon {
	uv_loop_t loop;
	const struct cfg *cfg;
	struct rs_store *store;
	struct http_client *client;
	struct http_server *server;
	struct api *api;
	struct kv *kv;
	struct ha_ctl *ctl;
	struct ha_agent *agent;
	uv_signal_t sigterm, sigint;
	struct wd_lag lag; /* loop stalls, for the log and GET /status */
	bool stopping;
	int lock_fd;
	int exit_status;
};

static void stop(struct daemon *d, const char *why);

static void api_closed(void *arg)
{
	struct daemon *d = arg;
	api_free(d->api);
	d->api = NULL;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	wd_lag_close(&d->lag, NULL, NULL);
}

static void server_closed(void *arg)
{
	struct daemon *d = arg;
	d->server = NULL;
	if (d->api)
		api_close(d->api, api_closed, d);
	else
		api_closed(d);
}

static void client_closed(void *arg)
{
	struct daemon *d = arg;
	d->client = NULL;
	if (d->server)
		http_server_close(d->server, server_closed, d);
	else
		server_closed(d);
}

static void store_closed(void *arg)
{
	struct daemon *d = arg;
	kv_free(d->kv);
	d->kv = NULL;
	if (d->client)
		http_client_close(d->client, client_closed, d);
	else
		client_closed(d);
}

static void ctl_closed(void *arg)
{
	struct daemon *d = arg;
	ha_ctl_free(d->ctl);
	d->ctl = NULL;
	if (d->store)
		rs_store_close(d->store, store_closed, d);
	else
		store_closed(d);
}

static void agent_stopped(void *arg)
{
	struct daemon *d = arg;
	if (d->api)
		api_set_agent(d->api, NULL, NULL, NULL);
	ha_agent_free(d->agent);
	d->agent = NULL;
	if (d->ctl)
		ha_ctl_close(d->ctl, ctl_closed, d);
	else
		ctl_closed(d);
}

static void stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("pgwarden[%s] stopping reason=%s", d->cfg->node_name, why);
	/* PostgreSQL first (a primary releases its lease only once it is
	 * down), then the controller, then the store. */
	if (d->agent)
		ha_agent_shutdown(d->agent, agent_stopped, d);
	else
		agent_stopped(d);
}

static void agent_status(void *ctx, struct ha_status *out)
{
	ha_agent_status(ctx, out);
}

static int agent_reinit(void *ctx)
{
	return ha_agent_reinit(ctx);
}

static int agent_lsn(void *ctx,
		     void (*cb)(void *arg, const struct ha_lsn_answer *),
		     void *arg)
{
	return ha_agent_probe_lsn(ctx, cb, arg);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_store_change(void *arg, const struct rs_status *st)
{
	struct daemon *d = arg;
	if (st->state == RS_REMOVED)
		stop(d, "removed_from_cluster");
	else if (d->agent && st->leader_id != 0 && !d->stopping)
		ha_agent_poke(d->agent);
}

static int lock_data_dir(const struct cfg *cfg, int *fd_out)
{
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "pgwarden: cannot create %s: %s\n",
			cfg->data_dir, strerror(errno));
		return -1;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/lock", cfg->data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "pgwarden: cannot open %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr,
			"pgwarden: %s is in use by another pgwarden process "
			"(stop it first)\n",
			cfg->data_dir);
		close(fd);
		return -1;
	}
	*fd_out = fd;
	return 0;
}

static char *raft_dir(const struct cfg *cfg)
{
	size_t n = strlen(cfg->data_dir) + 8;
	char *p = mem_malloc(n);
	if (p)
		snprintf(p, n, "%s/raft", cfg->data_dir);
	return p;
}

static int store_create(struct daemon *d, bool join, char *err,
			size_t errlen)
{
	const struct cfg *cfg = d->cfg;
	struct rs_peer *peers = mem_calloc(cfg->npeers ? cfg->npeers : 1,
					   sizeof *peers);
	char *dir = raft_dir(cfg);
	if (!peers || !dir) {
		mem_free(peers);
		mem_free(dir);
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	for (size_t i = 0; i < cfg->npeers; i++) {
		peers[i].name = cfg->peers[i].name;
		peers[i].address = cfg->peers[i].addr; /* resolved */
	}
	struct rs_options o = {
		.dir = dir,
		.cluster = cfg->cluster_name,
		.name = cfg->node_name,
		.address = cfg->raft_advertise_addr, /* resolved */
		.bind_address = cfg->raft_listen_addr,
		.api_url = cfg->api_url,
		.peers = peers,
		.npeers = cfg->npeers,
		.join = join,
		.election_timeout_ms = cfg->election_timeout_ms,
		.heartbeat_timeout_ms = cfg->heartbeat_ms,
		.snapshot_threshold = cfg->snapshot_threshold,
		.snapshot_trailing = cfg->snapshot_trailing,
	};
	int rv = rs_store_new(&d->loop, &o, &d->store, err, errlen);
	mem_free(peers);
	mem_free(dir);
	return rv;
}

static void drain(struct daemon *d)
{
	/* Close whatever is still open and let the loop finish. */
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (d->store) {
		rs_store_free(d->store);
		d->store = NULL;
	}
	int rv = uv_loop_close(&d->loop);
	if (rv != 0)
		log_warn("pgwarden loop close: %s", uv_strerror(rv));
}

int daemon_run(const struct cfg *cfg, bool join)
{
	struct daemon d;
	memset(&d, 0, sizeof d);
	d.cfg = cfg;
	d.lock_fd = -1;
	char err[512] = "";
	signal(SIGPIPE, SIG_IGN); /* libraft followers die of it otherwise */
	if (lock_data_dir(cfg, &d.lock_fd) != 0)
		return 1;
	uv_loop_init(&d.loop);
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	(void)wd_lag_init(&d.lag, &d.loop, cfg->node_name,
			  WD_LAG_THRESHOLD_MS);

	int rv = store_create(&d, join || cfg->join, err, sizeof err);
	if (rv == 0)
		rv = http_client_new(&d.loop, &d.client);
	char host[256];
	uint16_t port = 0;
	if (rv == 0 && cfg_split_hostport(cfg->api_listen_addr, host,
					  sizeof host, &port) != 0) {
		snprintf(err, sizeof err, "bad api listen address %s",
			 cfg->api_listen_addr ? cfg->api_listen_addr
					      : cfg->api_listen);
		rv = ERR_INVAL;
	}
	if (rv == 0) {
		struct api_options ao = {
			.cluster = cfg->cluster_name,
			.name = cfg->node_name,
			.token = cfg->token,
			.api_url = cfg->api_url,
			.peer_url = cfg->raft_advertise_addr,
			.version = PGW_VERSION,
			.lag = &d.lag,
		};
		rv = api_new(&d.loop, d.store, d.client, &ao, &d.api);
		if (rv != 0)
			snprintf(err, sizeof err, "api: %s", err_str(rv));
	}
	if (rv == 0)
		rv = http_server_new(&d.loop, host, port, api_handle, d.api,
				     &d.server, err, sizeof err);
	if (rv == 0)
		rv = kv_new(&d.loop, d.store, d.client, cfg->token, &d.kv);
	if (rv == 0) {
		struct ha_ctl_options co = {
			.cluster = cfg->cluster_name,
			.interval_ms = 100,
			.cfg = cfg,
			.client = d.client,
			.token = cfg->token,
			.self = cfg->node_name,
		};
		rv = ha_ctl_new(&d.loop, d.store, d.kv, &co, &d.ctl);
	}
	if (rv == 0 && cfg->pg.enabled) {
		rv = ha_agent_new(&d.loop, cfg, d.store, d.kv, &d.agent);
		if (rv != 0)
			snprintf(err, sizeof err, "postgresql: %s",
				 err_str(rv));
		else {
			api_set_agent(d.api, agent_status, agent_reinit,
				      d.agent);
			api_set_agent_lsn(d.api, agent_lsn);
		}
	}
	if (rv == 0) {
		rs_store_on_change(d.store, on_store_change, &d);
		rv = rs_store_start(d.store, err, sizeof err);
	}
	if (rv == 0 && d.agent)
		rv = ha_agent_start(d.agent, err, sizeof err);
	if (rv != 0) {
		fprintf(stderr, "pgwarden: %s\n",
			err[0] ? err : err_str(rv));
		d.stopping = false;
		stop(&d, "startup_failed");
		drain(&d);
		close(d.lock_fd);
		return 1;
	}
	log_info("pgwarden[%s] running cluster=%s api=%s raft=%s version=%s",
		 cfg->node_name, cfg->cluster_name, cfg->api_url,
		 cfg->raft_advertise_addr, PGW_VERSION);
	/* from here on a log line never waits for stderr (log.h); before,
	 * startup errors are written synchronously */
	int lrv = log_sink_start();
	if (lrv != 0)
		log_warn("pgwarden[%s] log sink: %s; logging stays synchronous",
			 cfg->node_name, err_str(lrv));
	uv_run(&d.loop, UV_RUN_DEFAULT);
	drain(&d);
	log_sink_stop(); /* everything buffered is written out */
	log_info("pgwarden[%s] stopped", cfg->node_name);
	close(d.lock_fd);
	return 0;
}

static void recover_closed(void *arg)
{
	(void)arg;
}

int daemon_force_new_cluster(const struct cfg *cfg)
{
	struct daemon d;
	memset(&d, 0, sizeof d);
	d.cfg = cfg;
	char err[512] = "";
	if (lock_data_dir(cfg, &d.lock_fd) != 0)
		return 1;
	uv_loop_init(&d.loop);
	int rv = store_create(&d, true, err, sizeof err);
	if (rv == 0)
		rv = rs_store_force_new_cluster(d.store, err, sizeof err);
	if (d.store)
		rs_store_close(d.store, recover_closed, NULL);
	drain(&d);
	close(d.lock_fd);
	if (rv != 0) {
		fprintf(stderr, "pgwarden: force-new-cluster: %s\n",
			err[0] ? err : err_str(rv));
		return 1;
	}
	printf("%s is now a single-member cluster with all its data.\n"
	       "Start it with `pgwarden run -c %s`; then, for every other "
	       "node: `pgwarden member add NAME --peer-url HOST:PORT`, wipe "
	       "its data_dir, and start it with initial_cluster_state = "
	       "existing (or `pgwarden run --join`).\n",
	       cfg->node_name, cfg->path);
	return 0;
}
