/* daemon.h - `pgwarden run`: one libuv loop that owns the raft store, the
 * HTTP API and (later) the PostgreSQL agent.
 *
 * Startup: lock data_dir (one daemon per data dir), start the store, the
 * HTTP client and server. SIGTERM/SIGINT: clean shutdown — the store closes
 * first (its pending requests are answered), then the HTTP client, the
 * server and the API; the loop then has nothing left and returns.
 * A node told it was removed from the cluster shuts down the same way.
 */
#ifndef PGW_DAEMON_H
#define PGW_DAEMON_H

#include <stdbool.h>

#include "config/cfg.h"

/* Run until shutdown. Returns the process exit status (0 clean, 1 failed
 * start). Startup failures print one line to stderr. */
int daemon_run(const struct cfg *cfg, bool join);

/* Offline: rewrite the raft configuration in cfg's data_dir to this node
 * alone (quorum loss recovery). Exit status. */
int daemon_force_new_cluster(const struct cfg *cfg);

#endif
