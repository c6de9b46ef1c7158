/* cfg.h - the node's ini file (read with inih).
 *
 * cfg_load() reads and validates the whole file before anything starts.
 * Every problem is reported as "FILE:LINE: reason" (for a missing key: the
 * line of its section header, or the file's last line when the section is
 * missing); unknown sections and keys, duplicates, bad values and missing
 * required keys are all errors. Nothing is started or written by loading.
 *
 * Sections and keys (see docs/configuration.md):
 *   [cluster] name
 *   [node]    name, data_dir, log_level
 *   [raft]    listen, advertise, peers, initial_cluster_state,
 *             election_timeout, heartbeat_interval, snapshot_threshold,
 *             snapshot_trailing
 *   [api]     listen, url, token_file
 */
#ifndef PGW_CFG_H
#define PGW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg_peer {
	char *name;    /* owned */
	char *address; /* owned, host:port */
};

struct cfg {
	char *path;           /* owned: the file as given */

	/* [cluster] */
	char *cluster_name;   /* owned; required; [A-Za-z0-9_.-]{1,63} */

	/* [node] */
	char *node_name;      /* owned; required; [A-Za-z0-9_.-]{1,63} */
	char *data_dir;       /* owned; required; absolute path */
	int log_level;        /* enum log_level; default LOG_INFO */

	/* [raft] */
	char *raft_listen;    /* owned; required; host:port */
	char *raft_advertise; /* owned; default raft_listen */
	struct cfg_peer *peers; /* owned; required; initial voters */
	size_t npeers;
	bool join;            /* initial_cluster_state = existing */
	unsigned election_timeout_ms;  /* default CFG_DEFAULT_ELECTION_MS */
	unsigned heartbeat_ms;         /* default CFG_DEFAULT_HEARTBEAT_MS */
	unsigned snapshot_threshold;   /* entries; default 1024 */
	unsigned snapshot_trailing;    /* entries; default 2048 */

	/* [api] */
	char *api_listen;     /* owned; required; host:port */
	char *api_url;        /* owned; default "http://" + api_listen */
	char *token_file;     /* owned; required */
	char *token;          /* owned; the file's content, trimmed */
};

#define CFG_DEFAULT_ELECTION_MS 400u
#define CFG_DEFAULT_HEARTBEAT_MS 80u

/* Load and validate path into *out (zeroed first). On failure returns
 * ERR_INVAL (or ERR_NOMEM), leaves *out empty, and writes
 * "FILE:LINE: reason" into err. */
int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen);

/* Free everything cfg owns; cfg_free of a zeroed struct is a no-op. */
void cfg_free(struct cfg *c);

/* Split "host:port" ("[v6]:port" too) into host (without brackets) and
 * port. Returns 0 or ERR_INVAL. */
int cfg_split_hostport(const char *s, char *host, size_t hostlen,
		       uint16_t *port);

#endif
