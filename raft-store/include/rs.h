/* rs.h - raft-store: the replicated key-value store every pgwarden node
 * embeds (libraft + an in-memory SQLite state machine).
 *
 * Layers, each usable on its own:
 *   - the command codec (rs_cmd_*): a versioned, length-checked binary
 *     encoding of every state-machine command, padded to 8 bytes (libraft
 *     0.15 corrupts its log on restart otherwise);
 *   - the state machine (rs_fsm_*): a deterministic SQLite database with
 *     etcd-like keys (create/mod revision, version, lease), leases and the
 *     member registry; snapshots are sqlite3_serialize images;
 *   - the store (rs_store_*): libraft with its libuv I/O and TCP transport,
 *     lease timing on the leader, membership changes.
 *
 * Thread: everything here runs on the one libuv loop thread.
 * Errors: 0 or a negative code from base/err.h.
 */
#ifndef RS_H
#define RS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* ------------------------------------------------------------------ */
/* Limits                                                               */
/* ------------------------------------------------------------------ */

#define RS_MAX_KEY 1024             /* bytes */
#define RS_MAX_VALUE (1024 * 1024)  /* bytes */
#define RS_MAX_NAME 63              /* member name, bytes */
#define RS_MAX_ADDR 255             /* peer address or API URL, bytes */
#define RS_CODEC_VERSION 1

/* ------------------------------------------------------------------ */
/* Command codec                                                        */
/* ------------------------------------------------------------------ */

enum rs_op {
	RS_OP_PUT = 1,             /* key, value, lease, [prev_rev]        */
	RS_OP_DELETE = 2,          /* key, [PREFIX], [prev_rev]            */
	RS_OP_LEASE_GRANT = 3,     /* ttl_ms; the id is assigned in apply  */
	RS_OP_LEASE_KEEPALIVE = 4, /* lease                                */
	RS_OP_LEASE_REVOKE = 5,    /* lease                                */
	RS_OP_LEASE_EXPIRE = 6,    /* lease, renewals (proposed by leader) */
	RS_OP_MEMBER_SET = 7,      /* member_id, name, peer, api           */
	RS_OP_MEMBER_DEL = 8,      /* member_id                            */
};

/* Flags of struct rs_cmd. */
#define RS_CMD_PREFIX 0x01u   /* DELETE: every key starting with key */
#define RS_CMD_HAS_PREV 0x02u /* PUT/DELETE: only if the key's mod_rev ==
				 prev_rev (prev_rev 0: key must be absent) */

/* A string slice; not NUL-terminated when it comes from a decoded buffer. */
struct rs_str {
	const char *p; /* borrowed */
	uint32_t len;  /* bytes */
};

/* One command. Strings are borrowed from the caller (encode) or from the
 * decoded buffer (decode). Fields an op does not use are zero. */
struct rs_cmd {
	enum rs_op op;
	uint32_t flags;      /* RS_CMD_* */
	struct rs_str key;   /* PUT, DELETE */
	struct rs_str value; /* PUT */
	uint64_t lease;      /* PUT (0 = none), KEEPALIVE, REVOKE, EXPIRE */
	uint64_t prev_rev;   /* with RS_CMD_HAS_PREV */
	uint64_t ttl_ms;     /* LEASE_GRANT, ms, > 0 */
	uint64_t renewals;   /* LEASE_EXPIRE: renewal count the leader saw */
	uint64_t member_id;  /* MEMBER_SET, MEMBER_DEL */
	struct rs_str name;  /* MEMBER_SET */
	struct rs_str peer;  /* MEMBER_SET: raft address host:port */
	struct rs_str api;   /* MEMBER_SET: API URL (may be empty) */
};

/* Bytes rs_cmd_encode() writes for c: always a multiple of 8. Returns 0 if
 * c is invalid (unknown op, string over its limit). */
size_t rs_cmd_encoded_size(const struct rs_cmd *c);

/* Encode c into buf, which has room for rs_cmd_encoded_size(c) bytes.
 * Padding bytes are zero. Returns the bytes written, 0 if c is invalid. */
size_t rs_cmd_encode(const struct rs_cmd *c, void *buf, size_t cap);

/* Decode buf into c. Strings in c point into buf (borrowed: valid while buf
 * is). Checks magic, version, op, every length, limits and that the padding
 * is zero and shorter than 8 bytes. Returns 0 or ERR_CORRUPT; never reads
 * outside buf. */
int rs_cmd_decode(const void *buf, size_t len, struct rs_cmd *c);

/* Short name of an op ("put", "lease_grant", ...) or "unknown". */
const char *rs_op_name(int op);

/* ------------------------------------------------------------------ */
/* State machine                                                        */
/* ------------------------------------------------------------------ */

/* What applying a command produced. Deterministic on every node. */
struct rs_result {
	int code;          /* 0; ERR_CONFLICT when a compare failed
			      (also LEASE_EXPIRE after a keepalive, and
			      MEMBER_SET with a name another id has);
			      ERR_NOTFOUND for an unknown lease (also PUT
			      with one); ERR_INVAL for a command the state
			      refuses (e.g. DELETE with PREFIX|HAS_PREV) */
	uint64_t revision; /* store revision after the command */
	uint64_t lease;    /* LEASE_GRANT: the new id; else the lease */
	uint64_t ttl_ms;   /* LEASE_GRANT, LEASE_KEEPALIVE */
	uint64_t count;    /* DELETE, REVOKE, EXPIRE: keys deleted */
};

struct rs_kv {
	char *key;          /* owned, NUL-terminated */
	char *value;        /* owned, NUL-terminated (value_len bytes + NUL) */
	size_t value_len;   /* bytes */
	uint64_t create_rev;
	uint64_t mod_rev;
	uint64_t version;   /* number of puts since creation */
	uint64_t lease;     /* 0 = none */
};

struct rs_lease_info {
	uint64_t id;
	uint64_t ttl_ms;
	uint64_t renewals; /* keepalives applied since grant */
	uint64_t nkeys;    /* keys attached */
};

struct rs_member_rec {
	uint64_t id;
	char name[RS_MAX_NAME + 1];
	char peer[RS_MAX_ADDR + 1];
	char api[RS_MAX_ADDR + 1];
};

struct rs_fsm;

int rs_fsm_new(struct rs_fsm **out);
void rs_fsm_free(struct rs_fsm *f);

/* Apply c at raft index `index` (recorded as the applied index). The
 * outcome goes to *res; the return value is 0 or an error that leaves the
 * state unchanged (ERR_NOMEM, ERR_DB). */
int rs_fsm_apply(struct rs_fsm *f, const struct rs_cmd *c, uint64_t index,
		 struct rs_result *res);

/* Keys equal to key (prefix false) or starting with key (prefix true), in
 * key order. *kvs is allocated (mem_malloc) and freed with rs_kvs_free();
 * *revision is the store revision of this read. limit 0 = no limit. */
int rs_fsm_range(struct rs_fsm *f, const char *key, size_t key_len,
		 bool prefix, size_t limit, struct rs_kv **kvs, size_t *n,
		 uint64_t *revision);
void rs_kvs_free(struct rs_kv *kvs, size_t n);

/* All leases by id; free with mem_free(). */
int rs_fsm_leases(struct rs_fsm *f, struct rs_lease_info **out, size_t *n);
/* One lease; ERR_NOTFOUND if absent. */
int rs_fsm_lease_get(struct rs_fsm *f, uint64_t id,
		     struct rs_lease_info *out);

/* The member registry (names and API URLs by raft id); free with
 * mem_free(). */
int rs_fsm_members(struct rs_fsm *f, struct rs_member_rec **out, size_t *n);

/* Serialize the whole state into one buffer from alloc (raft_malloc for
 * libraft); the caller owns *buf. */
int rs_fsm_snapshot(struct rs_fsm *f, void *(*alloc)(size_t), void **buf,
		    size_t *len);
/* Replace the whole state with a snapshot image (copied; buf stays the
 * caller's). On failure the old state is kept. */
int rs_fsm_restore(struct rs_fsm *f, const void *buf, size_t len);

/* Why the last failing rs_fsm_* call failed ("" if none); owned by f. */
const char *rs_fsm_errmsg(struct rs_fsm *f);

uint64_t rs_fsm_revision(struct rs_fsm *f);
uint64_t rs_fsm_applied_index(struct rs_fsm *f);
/* 64-bit FNV-1a over the logical content (keys, leases, members, revision,
 * lease counter) in a canonical order: equal on nodes that applied the same
 * commands, whatever their history of snapshots. */
uint64_t rs_fsm_hash(struct rs_fsm *f);
/* Bytes the SQLite image takes. */
size_t rs_fsm_db_size(struct rs_fsm *f);

/* ------------------------------------------------------------------ */
/* Store                                                                */
/* ------------------------------------------------------------------ */

/* Raft id of a member: a stable 63-bit hash of cluster and node name, so
 * every node derives every peer's id from the names alone. Never 0. */
uint64_t rs_member_id(const char *cluster, const char *name);

struct rs_peer {
	const char *name;    /* borrowed during rs_store_new */
	const char *address; /* raft host:port, borrowed */
};

struct rs_options {
	const char *dir;        /* raft log, snapshots, node state */
	const char *cluster;    /* cluster name */
	const char *name;       /* this node */
	const char *address;    /* raft address to advertise (IPv4
				   "a.b.c.d:port": libraft parses no names) */
	const char *bind_address; /* raft address to listen on (may be
				     0.0.0.0:port); NULL: address */
	const char *api_url;    /* this node's API URL, put in the registry */
	const struct rs_peer *peers; /* initial voters (bootstrap) */
	size_t npeers;
	bool join;              /* empty dir: wait to be added, never
				   bootstrap */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned snapshot_threshold; /* entries */
	unsigned snapshot_trailing;  /* entries */
};

enum rs_role { RS_VOTER = 0, RS_LEARNER = 1, RS_SPARE = 2 };
enum rs_state {
	RS_UNAVAILABLE = 0,
	RS_FOLLOWER,
	RS_CANDIDATE,
	RS_LEADER,
	RS_REMOVED, /* this node was removed from the cluster */
};

struct rs_status {
	uint64_t id;
	enum rs_state state;
	bool ready;            /* leader and its first barrier completed */
	bool is_member;        /* in the current configuration */
	enum rs_role role;     /* when is_member */
	uint64_t leader_id;    /* 0 = unknown */
	uint64_t term;
	uint64_t last_index;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t revision;
	uint64_t fsm_hash;
	size_t db_size;        /* bytes */
	uint64_t snapshot_index; /* last snapshot taken or installed */
};

/* A member as the store sees it: the raft configuration joined with the
 * registry. */
struct rs_member {
	uint64_t id;
	enum rs_role role;
	char name[RS_MAX_NAME + 1]; /* "" if not registered yet */
	char peer[RS_MAX_ADDR + 1];
	char api[RS_MAX_ADDR + 1];  /* "" if not registered yet */
};

struct rs_store;

/* Completion of an asynchronous store request. status is 0 or an error
 * (ERR_NOTLEADER if leadership was lost before commit, ERR_SHUTDOWN on
 * close). res is NULL unless status is 0. Never called before the
 * submitting function returns. */
typedef void (*rs_done_cb)(void *arg, int status,
			   const struct rs_result *res);

/* Create a store on loop; opts is copied. Writes a one-line reason to
 * errmsg on failure. Nothing runs until rs_store_start(). */
int rs_store_new(uv_loop_t *loop, const struct rs_options *opts,
		 struct rs_store **out, char *errmsg, size_t errlen);

/* Open the raft directory, bootstrap it if pristine (unless opts.join) and
 * start raft. */
int rs_store_start(struct rs_store *s, char *errmsg, size_t errlen);

/* Offline recovery from quorum loss: rewrite the configuration in dir to
 * this node alone, keeping the log and snapshots. The store must not be
 * started. */
int rs_store_force_new_cluster(struct rs_store *s, char *errmsg,
			       size_t errlen);

/* Stop raft and close every handle; cb(arg) fires when done, after which
 * rs_store_free() may be called. Pending requests complete with
 * ERR_SHUTDOWN first. */
void rs_store_close(struct rs_store *s, void (*cb)(void *arg), void *arg);
void rs_store_free(struct rs_store *s);

/* Called on every state change of this node (role, leader, term,
 * readiness, removal); from the loop, never re-entrantly. */
typedef void (*rs_change_cb)(void *arg, const struct rs_status *st);
void rs_store_on_change(struct rs_store *s, rs_change_cb cb, void *arg);

/* Cheap (called often): everything but fsm_hash and db_size (left 0). */
void rs_store_status(struct rs_store *s, struct rs_status *out);
/* With fsm_hash and db_size, which read the whole state machine: for
 * operators' status requests only, never on a timer. */
void rs_store_status_full(struct rs_store *s, struct rs_status *out);
bool rs_store_is_leader(struct rs_store *s);

/* The state machine, for local (possibly stale) reads. Borrowed. */
struct rs_fsm *rs_store_fsm(struct rs_store *s);

/* Submit a command through raft. Leader only: elsewhere ERR_NOTLEADER at
 * once (the API layer forwards to the leader). The command is encoded and
 * copied. LEASE_EXPIRE and MEMBER_* are refused (ERR_INVAL): the store
 * proposes those itself. */
int rs_store_submit(struct rs_store *s, const struct rs_cmd *c,
		    rs_done_cb cb, void *arg);

/* Linearizable read point: on the leader, cb fires once a barrier has
 * committed, so the local FSM holds every write acknowledged before the
 * call. Leader only (ERR_NOTLEADER). res carries the revision. */
int rs_store_barrier(struct rs_store *s, rs_done_cb cb, void *arg);

/* Members (configuration joined with the registry); free with mem_free. */
int rs_store_members(struct rs_store *s, struct rs_member **out, size_t *n);
/* Registry entry of the current leader, or ERR_NOTFOUND. */
int rs_store_leader(struct rs_store *s, struct rs_member *out);

/* Membership, leader only. add: a new member as a learner (non-voter) at
 * peer, registered under name (api may be NULL). promote: learner to
 * voter (catches it up first). remove: out of the configuration and the
 * registry. transfer: hand leadership to name (NULL: any up-to-date
 * voter). */
int rs_store_member_add(struct rs_store *s, const char *name,
			const char *peer, const char *api, rs_done_cb cb,
			void *arg);
int rs_store_member_promote(struct rs_store *s, const char *name,
			    rs_done_cb cb, void *arg);
int rs_store_member_remove(struct rs_store *s, const char *name,
			   rs_done_cb cb, void *arg);
int rs_store_transfer(struct rs_store *s, const char *name, rs_done_cb cb,
		      void *arg);

/* Leader only: record (or refresh) the registry entry of member id (a
 * follower sends its own through the API layer). ERR_NOTFOUND if id is not
 * in the configuration, ERR_INVAL if id is not the id of name. */
int rs_store_register_member(struct rs_store *s, uint64_t id,
			     const char *name, const char *peer,
			     const char *api, rs_done_cb cb, void *arg);

/* The leader says this node was removed (it may never receive the
 * configuration entry that removed it): write the marker that refuses
 * later starts and report RS_REMOVED through the change callback. */
void rs_store_mark_removed(struct rs_store *s);

/* Lease time left on the leader's clock, ms; -1 if unknown (not leader,
 * or no such lease). */
int64_t rs_store_lease_remaining(struct rs_store *s, uint64_t id);

/* Last error message of the store ("" if none). */
const char *rs_store_errmsg(struct rs_store *s);

#endif
