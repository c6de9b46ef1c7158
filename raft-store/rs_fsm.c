/* rs_fsm.c - the state machine: an in-memory SQLite database per rs_fsm.
 *
 * Schema (see SCHEMA below):
 *   kv(key, value, create_rev, mod_rev, version, lease)  etcd-like keys
 *   lease(id, ttl_ms, renewals)
 *   member(id, name UNIQUE, peer, api)                   member registry
 *   meta(k, v): schema, revision, applied_index, next_lease_id
 *
 * Apply, happy path: SAVEPOINT -> check the command against the state
 * (compare, lease existence, name conflict) -> change rows -> write meta
 * (applied_index always, revision and next_lease_id when changed) ->
 * RELEASE -> update the cached counters.
 * Failure paths:
 *   - the state refuses the command (compare failed, unknown lease, ...):
 *     nothing changes except applied_index; res.code says why; returns 0;
 *   - SQLite fails (ERR_NOMEM, ERR_DB): ROLLBACK TO + RELEASE, or a full
 *     ROLLBACK if that fails too; the cached counters are restored; the
 *     state is exactly as before; returns the error. If even the rollback
 *     fails (memory exhausted), the transaction is left open, marked, and
 *     rolled back before anything else touches the database (fsm_recover);
 *     until then every call fails.
 *
 * Determinism: apply reads no clock, no randomness and no addresses; rows
 * are always read in key/id order; lease ids come from meta.next_lease_id.
 *
 * Memory: SQLite's allocator is routed through mem_malloc/mem_free (see
 * sq_methods) so that mem_fail_after() sweeps reach inside SQLite too, and
 * connections use no lookaside and a small page cache.
 *
 * Snapshots are sqlite3_serialize images; restore deserializes a copy into
 * a fresh connection, validates it, and only then swaps it in (prepared
 * statements are re-prepared on the new connection, the old ones are
 * finalized with the old connection).
 */
#include "rs.h"

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "err.h"
#include "mem.h"

#define SCHEMA_VERSION 1
#define PAGE_SIZE 1024  /* bytes: small pages keep a small store small */
#define CACHE_PAGES 64  /* page cache of a deserialized image, pages */

static const char SCHEMA[] =
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL,"
	" version INTEGER NOT NULL, lease INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX kv_lease ON kv(lease);"
	"CREATE TABLE lease(id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL,"
	" renewals INTEGER NOT NULL);"
	"CREATE TABLE member(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" peer TEXT NOT NULL, api TEXT NOT NULL);"
	"INSERT INTO meta(k, v) VALUES ('schema', 1), ('revision', 0),"
	" ('applied_index', 0), ('next_lease_id', 1);";

/* Prepared statements, kept for the life of the connection. */
enum st_id {
	ST_SP_BEGIN,
	ST_SP_ROLLBACK,
	ST_SP_RELEASE,
	ST_META_GET,
	ST_META_SET,
	ST_KV_GET,
	ST_KV_INSERT,
	ST_KV_UPDATE,
	ST_KV_DEL,
	ST_KV_DEL_RANGE,
	ST_KV_DEL_FROM,
	ST_KV_DEL_LEASE,
	ST_KV_EQ,
	ST_KV_RANGE,
	ST_KV_FROM,
	ST_LEASE_GET,
	ST_LEASE_INSERT,
	ST_LEASE_RENEW,
	ST_LEASE_DEL,
	ST_LEASE_LIST,
	ST_LEASE_NKEYS,
	ST_MEMBER_BY_NAME,
	ST_MEMBER_UPSERT,
	ST_MEMBER_DEL,
	ST_MEMBER_LIST,
	ST_PAGE_COUNT,
	ST_PAGE_SIZE,
	ST_COUNT
};

#define KV_COLS "key, value, create_rev, mod_rev, version, lease"

static const char *const st_sql[ST_COUNT] = {
	[ST_SP_BEGIN] = "SAVEPOINT apply",
	[ST_SP_ROLLBACK] = "ROLLBACK TO apply",
	[ST_SP_RELEASE] = "RELEASE apply",
	[ST_META_GET] = "SELECT v FROM meta WHERE k = ?1",
	[ST_META_SET] = "UPDATE meta SET v = ?2 WHERE k = ?1",
	[ST_KV_GET] = "SELECT mod_rev FROM kv WHERE key = ?1",
	[ST_KV_INSERT] = "INSERT INTO kv(" KV_COLS ")"
			 " VALUES (?1, ?2, ?3, ?3, 1, ?4)",
	[ST_KV_UPDATE] = "UPDATE kv SET value = ?2, mod_rev = ?3,"
			 " version = version + 1, lease = ?4 WHERE key = ?1",
	[ST_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
	[ST_KV_DEL_RANGE] = "DELETE FROM kv WHERE key >= ?1 AND key < ?2",
	[ST_KV_DEL_FROM] = "DELETE FROM kv WHERE key >= ?1",
	[ST_KV_DEL_LEASE] = "DELETE FROM kv WHERE lease = ?1",
	[ST_KV_EQ] = "SELECT " KV_COLS " FROM kv WHERE key = ?1",
	[ST_KV_RANGE] = "SELECT " KV_COLS " FROM kv WHERE key >= ?1"
			" AND key < ?2 ORDER BY key LIMIT ?3",
	[ST_KV_FROM] = "SELECT " KV_COLS " FROM kv WHERE key >= ?1"
		       " ORDER BY key LIMIT ?3",
	[ST_LEASE_GET] = "SELECT ttl_ms, renewals FROM lease WHERE id = ?1",
	[ST_LEASE_INSERT] = "INSERT INTO lease(id, ttl_ms, renewals)"
			    " VALUES (?1, ?2, 0)",
	[ST_LEASE_RENEW] = "UPDATE lease SET renewals = renewals + 1"
			   " WHERE id = ?1",
	[ST_LEASE_DEL] = "DELETE FROM lease WHERE id = ?1",
	[ST_LEASE_LIST] = "SELECT id, ttl_ms, renewals FROM lease ORDER BY id",
	[ST_LEASE_NKEYS] = "SELECT count(*) FROM kv WHERE lease = ?1",
	[ST_MEMBER_BY_NAME] = "SELECT id FROM member WHERE name = ?1",
	[ST_MEMBER_UPSERT] = "INSERT INTO member(id, name, peer, api)"
			     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO"
			     " UPDATE SET name = excluded.name,"
			     " peer = excluded.peer, api = excluded.api",
	[ST_MEMBER_DEL] = "DELETE FROM member WHERE id = ?1",
	[ST_MEMBER_LIST] = "SELECT id, name, peer, api FROM member"
			   " ORDER BY id",
	[ST_PAGE_COUNT] = "PRAGMA page_count",
	[ST_PAGE_SIZE] = "PRAGMA page_size",
};

/* One connection and everything prepared on it. */
struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
};

struct rs_fsm {
	struct conn c;
	/* Cached copies of meta, authoritative between applies. */
	uint64_t revision;
	uint64_t applied_index;
	uint64_t next_lease_id;
	bool txn_stuck; /* a failed apply could not be rolled back yet */
	char errmsg[256];
};

/* ------------------------------------------------------------------ */
/* SQLite allocator -> mem_malloc (so fault injection reaches SQLite)   */
/* ------------------------------------------------------------------ */

#define SQ_HDR 16 /* bytes before each block: its size; keeps alignment */

static void *sq_malloc(int n)
{
	size_t sz = (size_t)(n > 0 ? n : 0);
	unsigned char *p = mem_malloc(sz + SQ_HDR);
	if (!p)
		return NULL;
	memcpy(p, &sz, sizeof(sz));
	return p + SQ_HDR;
}

static void sq_free(void *p)
{
	if (p)
		mem_free((unsigned char *)p - SQ_HDR);
}

static void *sq_realloc(void *p, int n)
{
	size_t sz = (size_t)(n > 0 ? n : 0);
	unsigned char *q = mem_realloc((unsigned char *)p - SQ_HDR,
				       sz + SQ_HDR);
	if (!q)
		return NULL;
	memcpy(q, &sz, sizeof(sz));
	return q + SQ_HDR;
}

static int sq_size(void *p)
{
	size_t sz;
	if (!p)
		return 0;
	memcpy(&sz, (unsigned char *)p - SQ_HDR, sizeof(sz));
	return (int)sz;
}

static int sq_roundup(int n)
{
	return (n + 7) & ~7;
}

static int sq_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void sq_shutdown(void *arg)
{
	(void)arg;
}

static const sqlite3_mem_methods sq_methods = {
	sq_malloc, sq_free,  sq_realloc,  sq_size,
	sq_roundup, sq_init, sq_shutdown, NULL,
};

/* Must run before SQLite initializes; afterwards SQLite refuses it
 * (SQLITE_MISUSE) and keeps its allocator, which is harmless. The daemon
 * uses SQLite only here, so the first rs_fsm_new() configures it. */
static void sq_configure(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_methods);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static int db_fail(struct rs_fsm *f, sqlite3 *db, int rc, const char *what)
{
	snprintf(f->errmsg, sizeof(f->errmsg), "fsm: %s: %s", what,
		 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return (rc & 0xff) == SQLITE_NOMEM ? ERR_NOMEM : ERR_DB;
}

static int bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
	/* u64 stored as the int64 with the same bits; read back the same */
	return sqlite3_bind_int64(s, i, (sqlite3_int64)v);
}

static uint64_t col_u64(sqlite3_stmt *s, int i)
{
	return (uint64_t)sqlite3_column_int64(s, i);
}

static int bind_text(sqlite3_stmt *s, int i, const char *p, size_t len)
{
	/* SQLITE_STATIC: every statement is stepped and reset before the
	 * caller's buffer can go away */
	return sqlite3_bind_text(s, i, len ? p : "", (int)len,
				 SQLITE_STATIC);
}

static int bind_blob(sqlite3_stmt *s, int i, const char *p, size_t len)
{
	/* a non-NULL pointer: an empty value is a zero-length blob, never
	 * NULL */
	return sqlite3_bind_blob(s, i, len ? p : "", (int)len,
				 SQLITE_STATIC);
}

/* Step s once: 1 for a row, 0 when done (s is then reset), or an error
 * (s reset). */
static int st_step(struct rs_fsm *f, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(f, sqlite3_db_handle(s), rc, what);
}

/* Run a statement that returns no rows of interest. */
static int st_exec(struct rs_fsm *f, sqlite3_stmt *s, const char *what)
{
	int rc;
	while ((rc = st_step(f, s, what)) == 1)
		;
	return rc;
}

static int bind_check(struct rs_fsm *f, sqlite3_stmt *s, int rc)
{
	if (rc == SQLITE_OK)
		return 0;
	return db_fail(f, sqlite3_db_handle(s), rc, "bind");
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	sqlite3_close(c->db);
	c->db = NULL;
}

/* Open an empty in-memory connection with this module's settings. */
static int conn_open(struct rs_fsm *f, struct conn *c)
{
	memset(c, 0, sizeof(*c));
	sq_configure();
	int rc = sqlite3_open_v2(":memory:", &c->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					 SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(f, c->db, rc, "open");
		conn_close(c);
		return rc;
	}
	/* Lookaside would cost ~120 KiB per connection for little gain. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
	/* Images come from peers: refuse schema tricks. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_extended_result_codes(c->db, 1);
	return 0;
}

static int conn_pragmas(struct rs_fsm *f, struct conn *c)
{
	char sql[128];
	snprintf(sql, sizeof(sql),
		 "PRAGMA cache_size = %d; PRAGMA temp_store = MEMORY;",
		 CACHE_PAGES);
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_fail(f, c->db, rc, "pragma");
	return 0;
}

static int conn_prepare(struct rs_fsm *f, struct conn *c)
{
	for (int i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(c->db, st_sql[i], -1,
					    SQLITE_PREPARE_PERSISTENT,
					    &c->st[i], NULL);
		if (rc != SQLITE_OK)
			return db_fail(f, c->db, rc, "prepare");
	}
	return 0;
}

static int meta_get(struct rs_fsm *f, struct conn *c, const char *k,
		    uint64_t *v)
{
	sqlite3_stmt *s = c->st[ST_META_GET];
	int rc = bind_check(f, s, bind_text(s, 1, k, strlen(k)));
	if (rc)
		return rc;
	rc = st_step(f, s, "meta");
	if (rc < 0)
		return rc;
	if (rc == 0) {
		snprintf(f->errmsg, sizeof(f->errmsg), "fsm: meta %s missing",
			 k);
		return ERR_CORRUPT;
	}
	*v = col_u64(s, 0);
	sqlite3_reset(s);
	return 0;
}

static int meta_set(struct rs_fsm *f, const char *k, uint64_t v)
{
	sqlite3_stmt *s = f->c.st[ST_META_SET];
	int rc = bind_check(f, s, bind_text(s, 1, k, strlen(k)));
	if (!rc)
		rc = bind_check(f, s, bind_u64(s, 2, v));
	if (!rc)
		rc = st_exec(f, s, "meta");
	if (!rc && sqlite3_changes(f->c.db) != 1) {
		snprintf(f->errmsg, sizeof(f->errmsg), "fsm: meta %s missing",
			 k);
		rc = ERR_CORRUPT;
	}
	return rc;
}

/* Read the counters of connection c into the out parameters. */
static int meta_load(struct rs_fsm *f, struct conn *c, uint64_t *rev,
		     uint64_t *applied, uint64_t *next_lease)
{
	uint64_t schema = 0;
	int rc = meta_get(f, c, "schema", &schema);
	if (!rc && schema != SCHEMA_VERSION) {
		snprintf(f->errmsg, sizeof(f->errmsg),
			 "fsm: schema version %llu, want %d",
			 (unsigned long long)schema, SCHEMA_VERSION);
		return ERR_CORRUPT;
	}
	if (!rc)
		rc = meta_get(f, c, "revision", rev);
	if (!rc)
		rc = meta_get(f, c, "applied_index", applied);
	if (!rc)
		rc = meta_get(f, c, "next_lease_id", next_lease);
	if (!rc && *next_lease == 0) {
		snprintf(f->errmsg, sizeof(f->errmsg),
			 "fsm: next_lease_id 0");
		return ERR_CORRUPT;
	}
	return rc;
}

/* Roll back a transaction a failed apply left open. 0 when none is open
 * any more. */
static int fsm_recover(struct rs_fsm *f)
{
	if (!f->txn_stuck)
		return 0;
	if (!sqlite3_get_autocommit(f->c.db)) {
		int rc = sqlite3_exec(f->c.db, "ROLLBACK", NULL, NULL, NULL);
		if (rc != SQLITE_OK && !sqlite3_get_autocommit(f->c.db))
			return db_fail(f, f->c.db, rc, "rollback");
	}
	f->txn_stuck = false;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */
/* ------------------------------------------------------------------ */

int rs_fsm_new(struct rs_fsm **out)
{
	*out = NULL;
	struct rs_fsm *f = mem_calloc(1, sizeof(*f));
	if (!f)
		return ERR_NOMEM;
	int rc = conn_open(f, &f->c);
	if (rc) {
		mem_free(f);
		return rc;
	}
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA page_size = %d;", PAGE_SIZE);
	int src = sqlite3_exec(f->c.db, sql, NULL, NULL, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_exec(f->c.db, SCHEMA, NULL, NULL, NULL);
	if (src != SQLITE_OK)
		rc = db_fail(f, f->c.db, src, "schema");
	if (!rc)
		rc = conn_pragmas(f, &f->c);
	if (!rc)
		rc = conn_prepare(f, &f->c);
	if (rc) {
		conn_close(&f->c);
		mem_free(f);
		return rc;
	}
	f->revision = 0;
	f->applied_index = 0;
	f->next_lease_id = 1;
	*out = f;
	return 0;
}

void rs_fsm_free(struct rs_fsm *f)
{
	if (!f)
		return;
	conn_close(&f->c);
	mem_free(f);
}

/* ------------------------------------------------------------------ */
/* Apply                                                                */
/* ------------------------------------------------------------------ */

/* A key's mod_rev; *found false if absent. */
static int kv_mod_rev(struct rs_fsm *f, const struct rs_str *key,
		      bool *found, uint64_t *mod_rev)
{
	sqlite3_stmt *s = f->c.st[ST_KV_GET];
	int rc = bind_check(f, s, bind_text(s, 1, key->p, key->len));
	if (rc)
		return rc;
	rc = st_step(f, s, "kv get");
	if (rc < 0)
		return rc;
	*found = rc == 1;
	*mod_rev = rc == 1 ? col_u64(s, 0) : 0;
	sqlite3_reset(s);
	return 0;
}

static int lease_lookup(struct rs_fsm *f, uint64_t id, bool *found,
			uint64_t *ttl_ms, uint64_t *renewals)
{
	sqlite3_stmt *s = f->c.st[ST_LEASE_GET];
	int rc = bind_check(f, s, bind_u64(s, 1, id));
	if (rc)
		return rc;
	rc = st_step(f, s, "lease get");
	if (rc < 0)
		return rc;
	*found = rc == 1;
	*ttl_ms = rc == 1 ? col_u64(s, 0) : 0;
	*renewals = rc == 1 ? col_u64(s, 1) : 0;
	sqlite3_reset(s);
	return 0;
}

/* The compare of RS_CMD_HAS_PREV on one key: true if it holds. */
static int kv_compare(struct rs_fsm *f, const struct rs_cmd *c, bool *ok)
{
	bool found;
	uint64_t mod_rev;
	int rc = kv_mod_rev(f, &c->key, &found, &mod_rev);
	if (rc)
		return rc;
	if (c->prev_rev == 0)
		*ok = !found;
	else
		*ok = found && mod_rev == c->prev_rev;
	return 0;
}

static int apply_put(struct rs_fsm *f, const struct rs_cmd *c,
		     struct rs_result *res)
{
	int rc;
	if (c->lease != 0) {
		bool found;
		uint64_t ttl, ren;
		rc = lease_lookup(f, c->lease, &found, &ttl, &ren);
		if (rc)
			return rc;
		if (!found) {
			res->code = ERR_NOTFOUND;
			return 0;
		}
	}
	bool found;
	uint64_t mod_rev;
	rc = kv_mod_rev(f, &c->key, &found, &mod_rev);
	if (rc)
		return rc;
	if (c->flags & RS_CMD_HAS_PREV) {
		bool ok = c->prev_rev == 0 ? !found
					   : found && mod_rev == c->prev_rev;
		if (!ok) {
			res->code = ERR_CONFLICT;
			return 0;
		}
	}
	uint64_t rev = f->revision + 1;
	sqlite3_stmt *s = f->c.st[found ? ST_KV_UPDATE : ST_KV_INSERT];
	rc = bind_check(f, s, bind_text(s, 1, c->key.p, c->key.len));
	if (!rc)
		rc = bind_check(f, s, bind_blob(s, 2, c->value.p,
						c->value.len));
	if (!rc)
		rc = bind_check(f, s, bind_u64(s, 3, rev));
	if (!rc)
		rc = bind_check(f, s, bind_u64(s, 4, c->lease));
	if (!rc)
		rc = st_exec(f, s, "kv put");
	if (rc)
		return rc;
	f->revision = rev;
	return 0;
}

/* The smallest string greater than every string starting with p: p with
 * trailing 0xff bytes dropped and the last byte incremented. Returns its
 * length; 0 when p is all 0xff (no upper bound). */
static size_t prefix_end(const char *p, size_t len, char *out)
{
	while (len > 0 && (unsigned char)p[len - 1] == 0xff)
		len--;
	if (len == 0)
		return 0;
	memcpy(out, p, len);
	out[len - 1] = (char)((unsigned char)out[len - 1] + 1);
	return len;
}

static int apply_delete(struct rs_fsm *f, const struct rs_cmd *c,
			struct rs_result *res)
{
	int rc;
	sqlite3_stmt *s;
	char end[RS_MAX_KEY]; /* bound SQLITE_STATIC: lives until the step */
	if (c->flags & RS_CMD_PREFIX) {
		if (c->flags & RS_CMD_HAS_PREV) {
			res->code = ERR_INVAL;
			return 0;
		}
		/* A byte range, not LIKE/GLOB: '%' and '_' are plain bytes
		 * in keys. */
		size_t elen = prefix_end(c->key.p, c->key.len, end);
		s = f->c.st[elen ? ST_KV_DEL_RANGE : ST_KV_DEL_FROM];
		rc = bind_check(f, s, bind_text(s, 1, c->key.p, c->key.len));
		if (!rc && elen)
			rc = bind_check(f, s, bind_text(s, 2, end, elen));
	} else {
		if (c->flags & RS_CMD_HAS_PREV) {
			bool ok;
			rc = kv_compare(f, c, &ok);
			if (rc)
				return rc;
			if (!ok) {
				res->code = ERR_CONFLICT;
				return 0;
			}
		}
		s = f->c.st[ST_KV_DEL];
		rc = bind_check(f, s, bind_text(s, 1, c->key.p, c->key.len));
	}
	if (!rc)
		rc = st_exec(f, s, "kv delete");
	if (rc)
		return rc;
	res->count = (uint64_t)sqlite3_changes(f->c.db);
	if (res->count > 0)
		f->revision++;
	return 0;
}

/* Delete a lease and its keys (REVOKE, EXPIRE). */
static int lease_drop(struct rs_fsm *f, uint64_t id, struct rs_result *res)
{
	sqlite3_stmt *s = f->c.st[ST_KV_DEL_LEASE];
	int rc = bind_check(f, s, bind_u64(s, 1, id));
	if (!rc)
		rc = st_exec(f, s, "lease keys delete");
	if (rc)
		return rc;
	res->count = (uint64_t)sqlite3_changes(f->c.db);
	s = f->c.st[ST_LEASE_DEL];
	rc = bind_check(f, s, bind_u64(s, 1, id));
	if (!rc)
		rc = st_exec(f, s, "lease delete");
	if (rc)
		return rc;
	if (res->count > 0)
		f->revision++;
	return 0;
}

static int apply_lease(struct rs_fsm *f, const struct rs_cmd *c,
		       struct rs_result *res)
{
	int rc;
	sqlite3_stmt *s;
	if (c->op == RS_OP_LEASE_GRANT) {
		uint64_t id = f->next_lease_id;
		s = f->c.st[ST_LEASE_INSERT];
		rc = bind_check(f, s, bind_u64(s, 1, id));
		if (!rc)
			rc = bind_check(f, s, bind_u64(s, 2, c->ttl_ms));
		if (!rc)
			rc = st_exec(f, s, "lease grant");
		if (rc)
			return rc;
		f->next_lease_id = id + 1;
		res->lease = id;
		res->ttl_ms = c->ttl_ms;
		return 0;
	}

	bool found;
	uint64_t ttl, renewals;
	res->lease = c->lease;
	rc = lease_lookup(f, c->lease, &found, &ttl, &renewals);
	if (rc)
		return rc;
	if (!found) {
		res->code = ERR_NOTFOUND;
		return 0;
	}
	res->ttl_ms = ttl;
	switch (c->op) {
	case RS_OP_LEASE_KEEPALIVE:
		s = f->c.st[ST_LEASE_RENEW];
		rc = bind_check(f, s, bind_u64(s, 1, c->lease));
		if (!rc)
			rc = st_exec(f, s, "lease keepalive");
		return rc;
	case RS_OP_LEASE_EXPIRE:
		/* The leader saw `renewals`; a keepalive committed since
		 * then wins over this expiry. */
		if (renewals != c->renewals) {
			res->code = ERR_CONFLICT;
			return 0;
		}
		return lease_drop(f, c->lease, res);
	case RS_OP_LEASE_REVOKE:
		return lease_drop(f, c->lease, res);
	case RS_OP_PUT:
	case RS_OP_DELETE:
	case RS_OP_LEASE_GRANT:
	case RS_OP_MEMBER_SET:
	case RS_OP_MEMBER_DEL:
	default:
		res->code = ERR_INVAL;
		return 0;
	}
}

static int apply_member(struct rs_fsm *f, const struct rs_cmd *c,
			struct rs_result *res)
{
	int rc;
	sqlite3_stmt *s;
	if (c->op == RS_OP_MEMBER_DEL) {
		s = f->c.st[ST_MEMBER_DEL];
		rc = bind_check(f, s, bind_u64(s, 1, c->member_id));
		if (!rc)
			rc = st_exec(f, s, "member delete");
		if (!rc)
			res->count = (uint64_t)sqlite3_changes(f->c.db);
		return rc;
	}
	s = f->c.st[ST_MEMBER_BY_NAME];
	rc = bind_check(f, s, bind_text(s, 1, c->name.p, c->name.len));
	if (rc)
		return rc;
	rc = st_step(f, s, "member get");
	if (rc < 0)
		return rc;
	if (rc == 1) {
		uint64_t other = col_u64(s, 0);
		sqlite3_reset(s);
		if (other != c->member_id) {
			res->code = ERR_CONFLICT;
			return 0;
		}
	}
	s = f->c.st[ST_MEMBER_UPSERT];
	rc = bind_check(f, s, bind_u64(s, 1, c->member_id));
	if (!rc)
		rc = bind_check(f, s, bind_text(s, 2, c->name.p, c->name.len));
	if (!rc)
		rc = bind_check(f, s, bind_text(s, 3, c->peer.p, c->peer.len));
	if (!rc)
		rc = bind_check(f, s, bind_text(s, 4, c->api.p, c->api.len));
	if (!rc)
		rc = st_exec(f, s, "member set");
	return rc;
}

static int apply_op(struct rs_fsm *f, const struct rs_cmd *c,
		    struct rs_result *res)
{
	/* The codec's validation, for commands that did not come through
	 * rs_cmd_decode(). */
	if (rs_cmd_encoded_size(c) == 0) {
		res->code = ERR_INVAL;
		return 0;
	}
	switch (c->op) {
	case RS_OP_PUT:
		return apply_put(f, c, res);
	case RS_OP_DELETE:
		return apply_delete(f, c, res);
	case RS_OP_LEASE_GRANT:
	case RS_OP_LEASE_KEEPALIVE:
	case RS_OP_LEASE_REVOKE:
	case RS_OP_LEASE_EXPIRE:
		return apply_lease(f, c, res);
	case RS_OP_MEMBER_SET:
	case RS_OP_MEMBER_DEL:
		return apply_member(f, c, res);
	default:
		res->code = ERR_INVAL;
		return 0;
	}
}

int rs_fsm_apply(struct rs_fsm *f, const struct rs_cmd *c, uint64_t index,
		 struct rs_result *res)
{
	memset(res, 0, sizeof(*res));
	int rc = fsm_recover(f);
	if (rc)
		return rc;

	uint64_t rev0 = f->revision, next0 = f->next_lease_id;
	rc = st_exec(f, f->c.st[ST_SP_BEGIN], "savepoint");
	if (rc)
		return rc;
	rc = apply_op(f, c, res);
	if (!rc)
		rc = meta_set(f, "applied_index", index);
	if (!rc && f->revision != rev0)
		rc = meta_set(f, "revision", f->revision);
	if (!rc && f->next_lease_id != next0)
		rc = meta_set(f, "next_lease_id", f->next_lease_id);
	if (!rc)
		rc = st_exec(f, f->c.st[ST_SP_RELEASE], "release");
	if (rc) {
		/* Keep the first error's message; undo everything. */
		char msg[sizeof(f->errmsg)];
		memcpy(msg, f->errmsg, sizeof(msg));
		f->revision = rev0;
		f->next_lease_id = next0;
		if (!sqlite3_get_autocommit(f->c.db)) {
			/* SQLite may have rolled back already (OOM) */
			if (st_exec(f, f->c.st[ST_SP_ROLLBACK], "rollback") ||
			    st_exec(f, f->c.st[ST_SP_RELEASE], "release"))
				(void)sqlite3_exec(f->c.db, "ROLLBACK", NULL,
						   NULL, NULL);
			f->txn_stuck = !sqlite3_get_autocommit(f->c.db);
		}
		memcpy(f->errmsg, msg, sizeof(msg));
		memset(res, 0, sizeof(*res));
		return rc;
	}
	f->applied_index = index;
	res->revision = f->revision;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */
/* ------------------------------------------------------------------ */

void rs_kvs_free(struct rs_kv *kvs, size_t n)
{
	if (!kvs)
		return;
	for (size_t i = 0; i < n; i++) {
		mem_free(kvs[i].key);
		mem_free(kvs[i].value);
	}
	mem_free(kvs);
}

/* How a list read turns the rows of a statement into array elements. */
struct row_list {
	const char *what; /* names the read in errmsg */
	size_t size;      /* bytes per element */
	size_t cap0;      /* elements in the first allocation */
	/* fill the element at elem from the current row: 0 or ERR_NOMEM */
	int (*fill)(sqlite3_stmt *s, void *elem);
	/* free arr holding n filled elements; NULL: mem_free(arr) */
	void (*drop)(void *arr, size_t n);
};

/* Step s to its end, one element a row, into an array (mem_realloc) that
 * doubles from l->cap0 elements as needed. Returns 0 with the array in
 * *out (NULL when there are no rows) and its length in *n, or an error
 * with errmsg set and nothing returned. s is reset either way. */
static int st_list(struct rs_fsm *f, sqlite3_stmt *s,
		   const struct row_list *l, void **out, size_t *n)
{
	char *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc;
	while ((rc = st_step(f, s, l->what)) == 1) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : l->cap0;
			char *na = mem_realloc(arr, ncap * l->size);
			if (!na) {
				rc = ERR_NOMEM;
				break;
			}
			arr = na;
			cap = ncap;
		}
		rc = l->fill(s, arr + cnt * l->size);
		if (rc)
			break;
		cnt++;
	}
	sqlite3_reset(s);
	if (rc < 0) {
		if (rc == ERR_NOMEM)
			snprintf(f->errmsg, sizeof(f->errmsg),
				 "fsm: %s: out of memory", l->what);
		if (l->drop)
			l->drop(arr, cnt);
		else
			mem_free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

/* Copy the current row of a KV_COLS statement into the rs_kv at elem. */
static int kv_from_row(sqlite3_stmt *s, void *elem)
{
	struct rs_kv *kv = elem;
	memset(kv, 0, sizeof(*kv));
	const unsigned char *k = sqlite3_column_text(s, 0);
	size_t klen = (size_t)sqlite3_column_bytes(s, 0);
	const void *v = sqlite3_column_blob(s, 1);
	size_t vlen = (size_t)sqlite3_column_bytes(s, 1);
	if ((!k && klen) || (!v && vlen))
		return ERR_NOMEM; /* SQLite could not convert (OOM) */
	kv->key = mem_malloc(klen + 1);
	kv->value = mem_malloc(vlen + 1);
	if (!kv->key || !kv->value) {
		mem_free(kv->key);
		mem_free(kv->value);
		kv->key = kv->value = NULL;
		return ERR_NOMEM;
	}
	if (klen)
		memcpy(kv->key, k, klen);
	kv->key[klen] = '\0';
	if (vlen)
		memcpy(kv->value, v, vlen);
	kv->value[vlen] = '\0';
	kv->value_len = vlen;
	kv->create_rev = col_u64(s, 2);
	kv->mod_rev = col_u64(s, 3);
	kv->version = col_u64(s, 4);
	kv->lease = col_u64(s, 5);
	return 0;
}

/* Bind a range statement for key/prefix; *none when nothing can match. */
static int range_stmt(struct rs_fsm *f, const char *key, size_t key_len,
		      bool prefix, size_t limit, char *end,
		      sqlite3_stmt **out)
{
	sqlite3_stmt *s;
	int rc;
	sqlite3_int64 lim = limit == 0 || limit > (size_t)INT64_MAX
				    ? -1
				    : (sqlite3_int64)limit;
	if (!prefix) {
		s = f->c.st[ST_KV_EQ];
		rc = bind_check(f, s, bind_text(s, 1, key, key_len));
	} else {
		size_t elen = prefix_end(key, key_len, end);
		s = f->c.st[elen ? ST_KV_RANGE : ST_KV_FROM];
		rc = bind_check(f, s, bind_text(s, 1, key, key_len));
		if (!rc && elen)
			rc = bind_check(f, s, bind_text(s, 2, end, elen));
		if (!rc)
			rc = bind_check(f, s, sqlite3_bind_int64(s, 3, lim));
	}
	*out = s;
	return rc;
}

static void kvs_drop(void *arr, size_t n)
{
	rs_kvs_free(arr, n);
}

int rs_fsm_range(struct rs_fsm *f, const char *key, size_t key_len,
		 bool prefix, size_t limit, struct rs_kv **kvs, size_t *n,
		 uint64_t *revision)
{
	*kvs = NULL;
	*n = 0;
	if (revision)
		*revision = f->revision;
	int rc = fsm_recover(f);
	if (rc)
		return rc;
	/* No stored key is longer than RS_MAX_KEY or empty, so such a key
	 * (or prefix) matches nothing; the bound also sizes `end`. */
	if (key_len > RS_MAX_KEY || (!prefix && key_len == 0) ||
	    (key_len && !key))
		return 0;

	char end[RS_MAX_KEY];
	sqlite3_stmt *s;
	rc = range_stmt(f, key, key_len, prefix, limit, end, &s);
	if (rc) {
		sqlite3_reset(s);
		return rc;
	}
	static const struct row_list rows = {"range", sizeof(struct rs_kv), 8,
					     kv_from_row, kvs_drop};
	void *arr;
	size_t cnt;
	rc = st_list(f, s, &rows, &arr, &cnt);
	if (rc)
		return rc;
	*kvs = arr;
	*n = cnt;
	return 0;
}

static int lease_nkeys(struct rs_fsm *f, uint64_t id, uint64_t *nkeys)
{
	sqlite3_stmt *s = f->c.st[ST_LEASE_NKEYS];
	int rc = bind_check(f, s, bind_u64(s, 1, id));
	if (rc)
		return rc;
	rc = st_step(f, s, "lease keys");
	if (rc < 0)
		return rc;
	*nkeys = rc == 1 ? col_u64(s, 0) : 0;
	sqlite3_reset(s);
	return 0;
}

static int lease_from_row(sqlite3_stmt *s, void *elem)
{
	struct rs_lease_info *l = elem;
	l->id = col_u64(s, 0);
	l->ttl_ms = col_u64(s, 1);
	l->renewals = col_u64(s, 2);
	l->nkeys = 0; /* counted once the list is read */
	return 0;
}

int rs_fsm_leases(struct rs_fsm *f, struct rs_lease_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int rc = fsm_recover(f);
	if (rc)
		return rc;
	static const struct row_list rows = {"leases",
					     sizeof(struct rs_lease_info), 8,
					     lease_from_row, NULL};
	void *v;
	size_t cnt;
	rc = st_list(f, f->c.st[ST_LEASE_LIST], &rows, &v, &cnt);
	if (rc)
		return rc;
	struct rs_lease_info *arr = v;
	for (size_t i = 0; rc == 0 && i < cnt; i++)
		rc = lease_nkeys(f, arr[i].id, &arr[i].nkeys);
	if (rc < 0) {
		mem_free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

int rs_fsm_lease_get(struct rs_fsm *f, uint64_t id,
		     struct rs_lease_info *out)
{
	memset(out, 0, sizeof(*out));
	int rc = fsm_recover(f);
	if (rc)
		return rc;
	bool found;
	rc = lease_lookup(f, id, &found, &out->ttl_ms, &out->renewals);
	if (rc)
		return rc;
	if (!found)
		return ERR_NOTFOUND;
	out->id = id;
	return lease_nkeys(f, id, &out->nkeys);
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *s, int i)
{
	const unsigned char *p = sqlite3_column_text(s, i);
	size_t len = (size_t)sqlite3_column_bytes(s, i);
	if (!p)
		len = 0;
	if (len >= cap)
		len = cap - 1; /* only a foreign image holds longer ones */
	if (len)
		memcpy(dst, p, len);
	dst[len] = '\0';
}

static int member_from_row(sqlite3_stmt *s, void *elem)
{
	struct rs_member_rec *m = elem;
	m->id = col_u64(s, 0);
	copy_col(m->name, sizeof(m->name), s, 1);
	copy_col(m->peer, sizeof(m->peer), s, 2);
	copy_col(m->api, sizeof(m->api), s, 3);
	return 0;
}

int rs_fsm_members(struct rs_fsm *f, struct rs_member_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int rc = fsm_recover(f);
	if (rc)
		return rc;
	static const struct row_list rows = {"members",
					     sizeof(struct rs_member_rec), 4,
					     member_from_row, NULL};
	void *arr;
	size_t cnt;
	rc = st_list(f, f->c.st[ST_MEMBER_LIST], &rows, &arr, &cnt);
	if (rc)
		return rc;
	*out = arr;
	*n = cnt;
	return 0;
}

const char *rs_fsm_errmsg(struct rs_fsm *f)
{
	return f->errmsg;
}

uint64_t rs_fsm_revision(struct rs_fsm *f)
{
	return f->revision;
}

uint64_t rs_fsm_applied_index(struct rs_fsm *f)
{
	return f->applied_index;
}

static int pragma_int(struct rs_fsm *f, enum st_id id, uint64_t *v)
{
	sqlite3_stmt *s = f->c.st[id];
	int rc = st_step(f, s, "pragma");
	if (rc < 0)
		return rc;
	*v = rc == 1 ? col_u64(s, 0) : 0;
	sqlite3_reset(s);
	return 0;
}

size_t rs_fsm_db_size(struct rs_fsm *f)
{
	uint64_t pages = 0, psize = 0;
	if (fsm_recover(f) || pragma_int(f, ST_PAGE_COUNT, &pages) ||
	    pragma_int(f, ST_PAGE_SIZE, &psize))
		return 0;
	return (size_t)(pages * psize);
}

/* ------------------------------------------------------------------ */
/* Hash                                                                 */
/* ------------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= FNV_PRIME;
	}
}

static void fnv_u64(uint64_t *h, uint64_t v)
{
	unsigned char b[8];
	for (unsigned i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	fnv(h, b, 8);
}

/* Length-prefixed, so that ("ab","c") and ("a","bc") differ. */
static void fnv_col(uint64_t *h, sqlite3_stmt *s, int i)
{
	const void *p = sqlite3_column_type(s, i) == SQLITE_BLOB
				? sqlite3_column_blob(s, i)
				: (const void *)sqlite3_column_text(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);
	fnv_u64(h, p ? n : 0);
	if (p)
		fnv(h, p, n);
}

uint64_t rs_fsm_hash(struct rs_fsm *f)
{
	uint64_t h = FNV_OFFSET;
	int rc = fsm_recover(f);
	if (rc)
		return 0;

	/* Canonical dump: every kv row in key order, every lease and member
	 * in id order, then the counters. Not applied_index (nodes differ in
	 * how many non-FSM entries they count), not the page layout. */
	sqlite3_stmt *s = f->c.st[ST_KV_FROM];
	rc = bind_check(f, s, bind_text(s, 1, "", 0));
	if (!rc)
		rc = bind_check(f, s, sqlite3_bind_int64(s, 3, -1));
	fnv(&h, "kv", 2);
	while (rc == 0 && (rc = st_step(f, s, "hash kv")) == 1) {
		fnv_col(&h, s, 0);
		fnv_col(&h, s, 1);
		for (int i = 2; i < 6; i++)
			fnv_u64(&h, col_u64(s, i));
		rc = 0; /* next row */
	}
	sqlite3_reset(s);

	s = f->c.st[ST_LEASE_LIST];
	fnv(&h, "lease", 5);
	while (rc == 0 && (rc = st_step(f, s, "hash lease")) == 1) {
		for (int i = 0; i < 3; i++)
			fnv_u64(&h, col_u64(s, i));
		rc = 0;
	}
	sqlite3_reset(s);

	s = f->c.st[ST_MEMBER_LIST];
	fnv(&h, "member", 6);
	while (rc == 0 && (rc = st_step(f, s, "hash member")) == 1) {
		fnv_u64(&h, col_u64(s, 0));
		for (int i = 1; i < 4; i++)
			fnv_col(&h, s, i);
		rc = 0;
	}
	sqlite3_reset(s);

	fnv(&h, "meta", 4);
	fnv_u64(&h, f->revision);
	fnv_u64(&h, f->next_lease_id);
	/* 0 tells "could not hash" (see errmsg); a real hash of 0 is
	 * nudged so the two never mix. */
	if (rc < 0)
		return 0;
	return h ? h : 1;
}

/* ------------------------------------------------------------------ */
/* Snapshot / restore                                                   */
/* ------------------------------------------------------------------ */

int rs_fsm_snapshot(struct rs_fsm *f, void *(*alloc)(size_t), void **buf,
		    size_t *len)
{
	*buf = NULL;
	*len = 0;
	int rc = fsm_recover(f);
	if (rc)
		return rc;
	sqlite3_int64 sz = 0;
	unsigned char *img = sqlite3_serialize(f->c.db, "main", &sz, 0);
	if (!img || sz <= 0) {
		snprintf(f->errmsg, sizeof(f->errmsg),
			 "fsm: serialize: out of memory");
		sqlite3_free(img);
		return ERR_NOMEM;
	}
	void *out = alloc((size_t)sz);
	if (!out) {
		sqlite3_free(img);
		snprintf(f->errmsg, sizeof(f->errmsg),
			 "fsm: snapshot: out of memory");
		return ERR_NOMEM;
	}
	memcpy(out, img, (size_t)sz);
	sqlite3_free(img);
	*buf = out;
	*len = (size_t)sz;
	return 0;
}

/* The image must hold exactly our kind of database: a clean integrity
 * check, no triggers or views (they would run inside apply), every
 * statement prepares, every meta row present. */
static int image_check(struct rs_fsm *f, struct conn *c, uint64_t *rev,
		       uint64_t *applied, uint64_t *next_lease)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(
		c->db,
		"SELECT (SELECT group_concat(quick_check) FROM"
		" pragma_quick_check), (SELECT count(*) FROM sqlite_schema"
		" WHERE type IN ('trigger', 'view'))",
		-1, &s, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(f, c->db, rc, "restore");
		sqlite3_finalize(s);
		return rc == ERR_NOMEM ? rc : ERR_CORRUPT;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = db_fail(f, c->db, rc, "restore");
		sqlite3_finalize(s);
		return rc == ERR_NOMEM ? rc : ERR_CORRUPT;
	}
	const unsigned char *qc = sqlite3_column_text(s, 0);
	bool ok = qc && strcmp((const char *)qc, "ok") == 0 &&
		  sqlite3_column_int64(s, 1) == 0;
	if (!ok)
		snprintf(f->errmsg, sizeof(f->errmsg),
			 "fsm: restore: image refused: %.80s, %lld triggers"
			 " or views",
			 qc ? (const char *)qc : "?",
			 (long long)sqlite3_column_int64(s, 1));
	sqlite3_finalize(s);
	if (!ok)
		return ERR_CORRUPT;

	rc = conn_pragmas(f, c);
	if (!rc) {
		rc = conn_prepare(f, c);
		if (rc == ERR_DB)
			rc = ERR_CORRUPT; /* a table or column is missing */
	}
	if (!rc)
		rc = meta_load(f, c, rev, applied, next_lease);
	if (rc == ERR_DB)
		rc = ERR_CORRUPT;
	return rc;
}

int rs_fsm_restore(struct rs_fsm *f, const void *buf, size_t len)
{
	int rc = fsm_recover(f);
	if (rc)
		return rc;
	if (!buf || len == 0 || len > (size_t)INT64_MAX) {
		snprintf(f->errmsg, sizeof(f->errmsg),
			 "fsm: restore: empty image");
		return ERR_CORRUPT;
	}
	struct conn c;
	rc = conn_open(f, &c);
	if (rc)
		return rc;
	unsigned char *copy = sqlite3_malloc64((sqlite3_uint64)len);
	if (!copy) {
		conn_close(&c);
		snprintf(f->errmsg, sizeof(f->errmsg),
			 "fsm: restore: out of memory");
		return ERR_NOMEM;
	}
	memcpy(copy, buf, len);
	/* SQLite owns copy from here, also when this fails. */
	int src = sqlite3_deserialize(c.db, "main", copy, (sqlite3_int64)len,
				      (sqlite3_int64)len,
				      SQLITE_DESERIALIZE_FREEONCLOSE |
					      SQLITE_DESERIALIZE_RESIZEABLE);
	if (src != SQLITE_OK) {
		rc = db_fail(f, c.db, src, "deserialize");
		conn_close(&c);
		return rc;
	}
	uint64_t rev = 0, applied = 0, next_lease = 0;
	rc = image_check(f, &c, &rev, &applied, &next_lease);
	if (rc) {
		char msg[sizeof(f->errmsg)];
		snprintf(msg, sizeof(msg), "%s", f->errmsg);
		snprintf(f->errmsg, sizeof(f->errmsg), "restore: %.200s", msg);
		conn_close(&c);
		return rc;
	}
	/* Swap: the old statements die with the old connection. */
	conn_close(&f->c);
	f->c = c;
	f->revision = rev;
	f->applied_index = applied;
	f->next_lease_id = next_lease;
	f->txn_stuck = false;
	return 0;
}
