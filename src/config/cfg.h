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
 *   [postgresql] (optional: without it the node runs the store only)
 *             bin_dir, data_dir, listen, connect_address, socket_dir,
 *             superuser, superuser_password, superuser_password_file,
 *             replication_user, replication_password,
 *             replication_password_file, use_slots, use_rewind,
 *             remove_data_directory_on_rewind_failure
 *   [postgresql.parameters]  NAME = VALUE, any PostgreSQL setting
 *   [bootstrap] initdb, pg_hba, post_bootstrap
 *   [bootstrap.user.NAME]    password, password_file, options
 *   [tags]    nofailover, noloadbalance, nosync, clonefrom,
 *             failover_priority
 *   [ha]      ttl, loop_wait, safety_margin, maximum_lag_on_failover,
 *             synchronous_mode, synchronous_node_count,
 *             crash_restart_timeout
 *   [watchdog] mode, device, timeout
 *   [callbacks] on_start, on_stop, on_role_change
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

struct cfg_param {
	char *name;  /* owned; [A-Za-z0-9_.]{1,63} */
	char *value; /* owned; may be empty */
};

struct cfg_user {
	char *name;     /* owned; PostgreSQL role name, name rules */
	char *password; /* owned; from password or password_file; may be
			   NULL (no password) */
	char *options;  /* owned; role options (given separated by spaces or
			   commas; stored separated by one space), each one of
			   SUPERUSER CREATEDB CREATEROLE INHERIT LOGIN
			   REPLICATION BYPASSRLS and their NO... forms
			   (case-insensitive, stored upper-case); "" if none */
};

enum cfg_sync_mode { CFG_SYNC_OFF = 0, CFG_SYNC_ON, CFG_SYNC_STRICT };
enum cfg_wd_mode { CFG_WD_OFF = 0, CFG_WD_AUTOMATIC, CFG_WD_REQUIRED };

/* PostgreSQL, bootstrap, tags, HA timing, watchdog, callbacks: all in one
 * struct embedded in struct cfg (cfg.pg). */
struct cfg_pg {
	bool enabled;          /* a [postgresql] section is present */
	/* [postgresql] */
	char *bin_dir;         /* owned; abs path; default
				  /usr/lib/postgresql/15/bin */
	char *data_dir;        /* owned; abs path; required when enabled */
	char *listen;          /* owned; host:port; default 127.0.0.1:5432;
				  host may be a wildcard (0.0.0.0, *) */
	char *connect_address; /* owned; host:port others use; default
				  listen (error if listen is a wildcard and
				  this is unset) */
	char *socket_dir;      /* owned; abs path, at most 90 bytes (the
				  socket path must stay under 107); default
				  /var/run/postgresql */
	char *superuser;       /* owned; default "postgres" */
	char *superuser_password;   /* owned; NULL = none (local peer/trust) */
	char *replication_user;     /* owned; default "replicator" */
	char *replication_password; /* owned; NULL = none */
	bool use_slots;        /* default true */
	bool use_rewind;       /* default true */
	bool remove_data_on_rewind_failure; /* default true: re-clone when
					       pg_rewind cannot work */
	struct cfg_param *params; /* owned; [postgresql.parameters] in file
				     order */
	size_t nparams;

	/* [bootstrap] */
	char **initdb;         /* owned; initdb arguments (whitespace split,
				  continuation lines allowed, each "--...");
				  default when the key is absent:
				  {"--data-checksums", "--encoding=UTF8"};
				  NULL/0 when given empty */
	size_t ninitdb;
	char **pg_hba;         /* owned; one pg_hba.conf line each, from
				  pg_hba's value and continuation lines */
	size_t npg_hba;
	char *post_bootstrap;  /* owned; abs path of a script, or NULL */
	struct cfg_user *users; /* owned; [bootstrap.user.NAME] sections */
	size_t nusers;

	/* [tags] */
	bool nofailover, noloadbalance, nosync, clonefrom; /* default false */
	int failover_priority; /* 0..1000000, default 1; 0 = never */

	/* [ha] cluster-wide bootstrap defaults (live in the store later) */
	unsigned ttl_ms;           /* primary lease; default 2500 */
	unsigned loop_wait_ms;     /* renew interval; default 400 */
	unsigned safety_margin_ms; /* default 300 */
	uint64_t maximum_lag_on_failover; /* bytes; default 1048576; sizes
					    accept kB/MB/GB suffixes */
	enum cfg_sync_mode synchronous_mode; /* off|on|strict, default off */
	unsigned synchronous_node_count;     /* 1..16, default 1 */
	unsigned crash_restart_timeout_ms;   /* default 5000: a crashed
						postmaster restarted in place
						must be back within this or
						the node gives up the lease */
	bool move_raft_leader;               /* default true: the Raft leader
						hands leadership to a replica's
						node when it is the primary's */

	/* [watchdog] */
	enum cfg_wd_mode wd_mode;  /* off|automatic|required; default
				      automatic */
	char *wd_device;           /* owned; default /dev/watchdog */
	unsigned wd_timeout_ms;    /* default 1000; whole seconds on a real
				      device (rounded up), 1 s minimum */
	bool fencer;               /* default true: run the independent
				      fencer process (watchdog/wd_fencer.h) */

	/* [callbacks] abs paths or NULL */
	char *on_start, *on_stop, *on_role_change; /* owned */
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

	struct cfg_pg pg;     /* PostgreSQL and HA (optional section) */
};

/* Validation across sections, done by cfg_load after the whole file is read
 * (each error names the line of the later key involved, or a section
 * header when only defaults are involved):
 *  - I1 of the HA protocol: ttl*(1-0.001) - safety_margin >
 *    3.5*election_timeout + loop_wait (a Raft election on another node
 *    must never make the primary demote itself);
 *  - loop_wait <= ttl/3;
 *  - with the watchdog not off: ttl*(1-0.001) - wd_timeout - safety_margin
 *    > loop_wait (so the watchdog can be petted after each renewal, I3),
 *    with wd_timeout rounded up to whole seconds as a device will;
 *  - these three only when the node runs PostgreSQL or the file has an
 *    [ha] or [watchdog] section (a store-only node keeps no lease);
 *  - [postgresql] data_dir must not be, contain or be inside [node]
 *    data_dir (compared lexically); its listen must differ from [raft] and
 *    [api] listen; a [bootstrap.user.NAME] must not name the superuser or
 *    the replication user;
 *  - superuser_password and superuser_password_file are exclusive (same
 *    for replication_ and a user's password/password_file); password files
 *    are read at load like token_file (trimmed, <= 4096 bytes, one line).
 *    post_bootstrap and the callbacks must exist and be executable at load.
 * The defaults of cfg_pg are set whether or not [postgresql] is present.
 */

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

/* The cluster-wide [ha] settings. The first node that runs PostgreSQL
 * writes its ini's [ha] into the store (key /service/CLUSTER/config, as
 * cfg_ha_to_json() writes it) before any node may take the primary lease;
 * from then on every node uses the store's values and its own ini's [ha]
 * only where the store has none (docs/configuration.md, "[ha]"). */
struct cfg_ha {
	unsigned ttl_ms;
	unsigned loop_wait_ms;
	unsigned safety_margin_ms;
	uint64_t maximum_lag_on_failover; /* bytes */
	enum cfg_sync_mode synchronous_mode;
	unsigned synchronous_node_count;
	unsigned crash_restart_timeout_ms;
	bool move_raft_leader;
};

/* The [ha] values of a loaded file (its defaults where it has none). */
void cfg_ha_of(const struct cfg *c, struct cfg_ha *out);

/* {"ha":{"ttl":"2500ms",...}}: every key, written as the ini would write
 * it. Returns the length, or ERR_INVAL if it does not fit in len. */
int cfg_ha_to_json(const struct cfg_ha *h, char *buf, size_t len);

/* Parse a stored config, checking each value by the ini's own rules
 * (types, ranges) and the whole by the ini's timing checks (I1, I3) with
 * this node's own election_timeout and watchdog from c. A key missing
 * from the store keeps c's value; an unknown key is an error. On failure
 * returns ERR_INVAL with "cluster config: [ha] KEY: reason" in err and
 * leaves *out unchanged. */
int cfg_ha_from_json(const struct cfg *c, const char *json,
		     struct cfg_ha *out, char *err, size_t errlen);

/* Names of the keys whose values differ in a and b, separated by ", "
 * (empty when equal); for logs. */
void cfg_ha_diff(const struct cfg_ha *a, const struct cfg_ha *b, char *out,
		 size_t len);

#endif
