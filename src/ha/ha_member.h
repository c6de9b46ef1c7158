/* ha_member.h - what a node reports about its PostgreSQL, as stored in
 * /service/<cluster>/members/<name> (JSON), and the store's key names.
 *
 * Encoded and decoded here only, so the agent (writer), the controller
 * and the API/CLI (readers) agree. Unknown JSON fields are ignored (newer
 * writers), missing ones take their zero value.
 */
#ifndef PGW_HA_MEMBER_H
#define PGW_HA_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HA_NAME_MAX 63

enum ha_role {
	HA_ROLE_UNKNOWN = 0,
	HA_ROLE_PRIMARY,
	HA_ROLE_REPLICA,
	HA_ROLE_UNINITIALIZED, /* no data directory yet */
};

enum ha_state {
	HA_ST_STOPPED = 0,
	HA_ST_STARTING,
	HA_ST_RUNNING,      /* primary accepting writes, or replica up */
	HA_ST_STREAMING,    /* replica with a live WAL receiver */
	HA_ST_INITIALIZING, /* initdb / bootstrap in progress */
	HA_ST_CLONING,      /* pg_basebackup in progress */
	HA_ST_REWINDING,
	HA_ST_PROMOTING,
	HA_ST_DEMOTING,
	HA_ST_CRASHED,      /* postmaster died, restart pending */
	HA_ST_REFUSED,      /* data belongs to another cluster, or unusable */
	HA_ST_WAITING,      /* waiting for the cluster (no leader yet) */
};

struct ha_tags {
	bool nofailover, noloadbalance, nosync;
	int failover_priority;
};

struct ha_member {
	char name[HA_NAME_MAX + 1];
	char api_url[256];
	char host[256];           /* PostgreSQL connect host, as configured
				     ([postgresql] connect_address: a name
				     or a numeric address) */
	char hostaddr[64];        /* its numeric address, resolved by the
				     member at startup (cfg_resolve); ""
				     unknown. Others connect with libpq
				     host=host hostaddr=hostaddr, so they
				     never resolve the name on their loop */
	int port;                 /* PostgreSQL connect port */
	enum ha_role role;
	enum ha_state state;
	uint32_t timeline;
	char sysid[32];           /* decimal system identifier, "" unknown */
	uint64_t lsn_current;     /* primary: pg_current_wal_lsn */
	uint64_t lsn_received;    /* replica */
	uint64_t lsn_replayed;    /* replica */
	int64_t lag_bytes;        /* replica behind the primary; -1 unknown */
	bool pending_restart;
	struct ha_tags tags;
	char detail[128];         /* why REFUSED / last error, "" if none */
	struct {
		char mode[12];    /* off | automatic | required */
		char state[12];   /* off | closed | armed | absent | failed */
		bool armed;
		unsigned timeout_ms;
		int64_t last_keepalive_age_ms; /* -1 never */
	} watchdog;
	uint64_t seq;             /* increases with every report */
};

const char *ha_role_name(enum ha_role r);
const char *ha_state_name(enum ha_state s);

/* JSON text of m (mem_malloc'd, NUL-terminated), or NULL on NOMEM. */
char *ha_member_encode(const struct ha_member *m);
/* Parse; 0 or ERR_CORRUPT (not JSON, not an object, bad types). */
int ha_member_decode(const char *json, size_t len, struct ha_member *m);

/* The best LSN a member is known to hold (current on a primary, received
 * or replayed on a replica, whichever is higher). */
uint64_t ha_member_lsn(const struct ha_member *m);

/* Store keys: "/service/<cluster>/<leaf>" into buf. */
void ha_key(char *buf, size_t len, const char *cluster, const char *leaf);
void ha_member_key(char *buf, size_t len, const char *cluster,
		   const char *name);

#endif
