/* test_fsm.c - unit tests of the state machine (rs_fsm_*): etcd-like key
 * semantics, compare-and-swap, prefix deletes, leases with the expiry
 * guard, the member registry, snapshots, the content hash, applied index
 * tracking and an allocation-failure sweep over every operation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "err.h"
#include "mem.h"
#include "rs.h"

/* ---- helpers ---- */

struct t {
	struct rs_fsm *f;
	uint64_t index; /* raft index of the next apply */
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(rs_fsm_new(&t->f), 0);
	t->index = 1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	mem_fail_after(-1);
	rs_fsm_free(t->f);
	free(t);
	return 0;
}

static struct rs_str S(const char *s)
{
	struct rs_str r = {.p = s, .len = (uint32_t)strlen(s)};
	return r;
}

static struct rs_result apply_at(struct rs_fsm *f, uint64_t *index,
				 const struct rs_cmd *c)
{
	struct rs_result res;
	int rc = rs_fsm_apply(f, c, (*index)++, &res);
	if (rc)
		fail_msg("apply %s: %s (%s)", rs_op_name((int)c->op),
			 err_str(rc), rs_fsm_errmsg(f));
	assert_true(rs_fsm_applied_index(f) == *index - 1);
	return res;
}

static struct rs_result apply(struct t *t, const struct rs_cmd *c)
{
	return apply_at(t->f, &t->index, c);
}

static struct rs_result put(struct t *t, const char *k, const char *v,
			    uint64_t lease)
{
	struct rs_cmd c = {.op = RS_OP_PUT, .key = S(k), .value = S(v),
			   .lease = lease};
	return apply(t, &c);
}

static struct rs_result put_cas(struct t *t, const char *k, const char *v,
				uint64_t prev)
{
	struct rs_cmd c = {.op = RS_OP_PUT, .key = S(k), .value = S(v),
			   .flags = RS_CMD_HAS_PREV, .prev_rev = prev};
	return apply(t, &c);
}

static struct rs_result del(struct t *t, const char *k, uint32_t flags,
			    uint64_t prev)
{
	struct rs_cmd c = {.op = RS_OP_DELETE, .key = S(k), .flags = flags,
			   .prev_rev = prev};
	return apply(t, &c);
}

static struct rs_result lease_op(struct t *t, enum rs_op op, uint64_t id,
				 uint64_t arg)
{
	struct rs_cmd c = {.op = op, .lease = id};
	if (op == RS_OP_LEASE_GRANT)
		c.ttl_ms = arg;
	else
		c.renewals = arg;
	return apply(t, &c);
}

static struct rs_result member_set(struct t *t, uint64_t id, const char *n,
				   const char *peer, const char *api)
{
	struct rs_cmd c = {.op = RS_OP_MEMBER_SET, .member_id = id,
			   .name = S(n), .peer = S(peer), .api = S(api)};
	return apply(t, &c);
}

/* One key: true if present, copied into *out (free with rs_kvs_free). */
static bool get(struct rs_fsm *f, const char *k, struct rs_kv **out)
{
	size_t n;
	uint64_t rev;
	assert_int_equal(rs_fsm_range(f, k, strlen(k), false, 0, out, &n,
				      &rev),
			 0);
	assert_true(rev == rs_fsm_revision(f));
	assert_true(n <= 1);
	if (n == 0) {
		rs_kvs_free(*out, 0);
		*out = NULL;
	}
	return n == 1;
}

static void assert_kv(struct rs_fsm *f, const char *k, const char *v,
		      uint64_t create, uint64_t mod, uint64_t version,
		      uint64_t lease)
{
	struct rs_kv *kv;
	if (!get(f, k, &kv))
		fail_msg("key %s missing", k);
	assert_string_equal(kv->key, k);
	assert_int_equal(kv->value_len, strlen(v));
	assert_string_equal(kv->value, v);
	assert_true(kv->create_rev == create);
	assert_true(kv->mod_rev == mod);
	assert_true(kv->version == version);
	assert_true(kv->lease == lease);
	rs_kvs_free(kv, 1);
}

static void assert_absent(struct rs_fsm *f, const char *k)
{
	struct rs_kv *kv;
	if (get(f, k, &kv)) {
		rs_kvs_free(kv, 1);
		fail_msg("key %s present", k);
	}
}

/* Keys under prefix p joined by ',' into buf. */
static const char *keys_under(struct rs_fsm *f, const char *p, size_t plen,
			      size_t limit, char *buf, size_t cap)
{
	struct rs_kv *kvs;
	size_t n;
	assert_int_equal(rs_fsm_range(f, p, plen, true, limit, &kvs, &n,
				      NULL),
			 0);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strncat(buf, ",", cap - strlen(buf) - 1);
		strncat(buf, kvs[i].key, cap - strlen(buf) - 1);
	}
	rs_kvs_free(kvs, n);
	return buf;
}

/* ---- tests ---- */

static void test_put_revisions(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;
	assert_true(rs_fsm_revision(f) == 0);
	assert_true(rs_fsm_applied_index(f) == 0);

	struct rs_result r = put(t, "a", "1", 0);
	assert_int_equal(r.code, 0);
	assert_true(r.revision == 1);
	assert_kv(f, "a", "1", 1, 1, 1, 0);

	r = put(t, "b", "x", 0);
	assert_true(r.revision == 2);
	r = put(t, "a", "22", 0);
	assert_true(r.revision == 3);
	assert_kv(f, "a", "22", 1, 3, 2, 0);
	assert_kv(f, "b", "x", 2, 2, 1, 0);
	r = put(t, "a", "", 0); /* empty value is a value */
	assert_true(r.revision == 4);
	assert_kv(f, "a", "", 1, 4, 3, 0);

	/* binary value with NUL bytes, NUL-terminated copy */
	struct rs_cmd c = {.op = RS_OP_PUT, .key = S("bin"),
			   .value = {.p = "x\0y\xff", .len = 4}};
	r = apply(t, &c);
	assert_true(r.revision == 5);
	struct rs_kv *kv;
	assert_true(get(f, "bin", &kv));
	assert_int_equal(kv->value_len, 4);
	assert_memory_equal(kv->value, "x\0y\xff", 5);
	rs_kvs_free(kv, 1);

	/* keys are bytes: non-UTF-8 */
	r = put(t, "\xc3\x28\xff", "v", 0);
	assert_true(r.revision == 6);
	assert_kv(f, "\xc3\x28\xff", "v", 6, 6, 1, 0);

	/* delete and re-create: a new life */
	r = del(t, "a", 0, 0);
	assert_true(r.count == 1);
	assert_true(r.revision == 7);
	assert_absent(f, "a");
	r = put(t, "a", "again", 0);
	assert_true(r.revision == 8);
	assert_kv(f, "a", "again", 8, 8, 1, 0);

	/* deleting nothing changes nothing */
	r = del(t, "nope", 0, 0);
	assert_true(r.count == 0);
	assert_true(r.revision == 8);
	assert_true(rs_fsm_revision(f) == 8);

	/* reads of keys that cannot exist */
	struct rs_kv *kvs;
	size_t n = 9;
	assert_int_equal(rs_fsm_range(f, "", 0, false, 0, &kvs, &n, NULL), 0);
	assert_int_equal(n, 0);
	rs_kvs_free(kvs, n);
	static char longkey[RS_MAX_KEY + 2];
	memset(longkey, 'a', sizeof(longkey) - 1);
	assert_int_equal(rs_fsm_range(f, longkey, RS_MAX_KEY + 1, true, 0,
				      &kvs, &n, NULL),
			 0);
	assert_int_equal(n, 0);
	rs_kvs_free(kvs, n);
	assert_true(rs_fsm_db_size(f) > 0);
}

static void test_cas(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;

	/* create-if-absent */
	struct rs_result r = put_cas(t, "leader", "n1", 0);
	assert_int_equal(r.code, 0);
	assert_true(r.revision == 1);
	uint64_t h = rs_fsm_hash(f);
	r = put_cas(t, "leader", "n2", 0);
	assert_int_equal(r.code, ERR_CONFLICT);
	assert_true(r.revision == 1);
	assert_true(rs_fsm_hash(f) == h);
	assert_kv(f, "leader", "n1", 1, 1, 1, 0);

	/* swap on mod_rev */
	r = put_cas(t, "leader", "n2", 7);
	assert_int_equal(r.code, ERR_CONFLICT);
	r = put_cas(t, "leader", "n2", 1);
	assert_int_equal(r.code, 0);
	assert_true(r.revision == 2);
	assert_kv(f, "leader", "n2", 1, 2, 2, 0);
	r = put_cas(t, "leader", "n3", 1); /* stale */
	assert_int_equal(r.code, ERR_CONFLICT);
	r = put_cas(t, "absent", "x", 5);
	assert_int_equal(r.code, ERR_CONFLICT);
	assert_absent(f, "absent");

	/* delete with compare */
	r = del(t, "leader", RS_CMD_HAS_PREV, 1);
	assert_int_equal(r.code, ERR_CONFLICT);
	assert_true(r.count == 0);
	r = del(t, "leader", RS_CMD_HAS_PREV, 0); /* must be absent */
	assert_int_equal(r.code, ERR_CONFLICT);
	r = del(t, "absent", RS_CMD_HAS_PREV, 0); /* is absent: ok, no-op */
	assert_int_equal(r.code, 0);
	assert_true(r.count == 0);
	assert_true(r.revision == 2);
	r = del(t, "absent", RS_CMD_HAS_PREV, 2);
	assert_int_equal(r.code, ERR_CONFLICT);
	r = del(t, "leader", RS_CMD_HAS_PREV, 2);
	assert_int_equal(r.code, 0);
	assert_true(r.count == 1);
	assert_true(r.revision == 3);
	assert_absent(f, "leader");

	/* prefix + compare is refused by the state machine */
	put(t, "p/1", "x", 0);
	h = rs_fsm_hash(f);
	r = del(t, "p/", RS_CMD_PREFIX | RS_CMD_HAS_PREV, 0);
	assert_int_equal(r.code, ERR_INVAL);
	assert_true(rs_fsm_hash(f) == h);
}

static void test_delete_prefix_bytes(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;
	const char *keys[] = {"a",     "a%",     "a%b",  "a_b",  "ab",
			      "a/x",   "a/y",    "a/y/z", "a0",  "b",
			      "a\xff", "a\xff\xff", "\xff", "\xff\xffz",
			      "A/x"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		put(t, keys[i], "v", 0);
	uint64_t rev = rs_fsm_revision(f);
	char buf[512];

	/* ranges first: exact bytes, in byte order */
	assert_string_equal(keys_under(f, "a/", 2, 0, buf, sizeof(buf)),
			    "a/x,a/y,a/y/z");
	assert_string_equal(keys_under(f, "a%", 2, 0, buf, sizeof(buf)),
			    "a%,a%b");
	assert_string_equal(keys_under(f, "a_", 2, 0, buf, sizeof(buf)),
			    "a_b");
	assert_string_equal(keys_under(f, "a\xff", 2, 0, buf, sizeof(buf)),
			    "a\xff,a\xff\xff");
	assert_string_equal(keys_under(f, "\xff", 1, 0, buf, sizeof(buf)),
			    "\xff,\xff\xffz");
	assert_string_equal(keys_under(f, "a/", 2, 2, buf, sizeof(buf)),
			    "a/x,a/y");
	assert_string_equal(keys_under(f, "", 0, 3, buf, sizeof(buf)),
			    "A/x,a,a%");
	assert_string_equal(keys_under(f, "zz", 2, 0, buf, sizeof(buf)), "");

	/* '%' and '_' are not wildcards */
	struct rs_result r = del(t, "a%", RS_CMD_PREFIX, 0);
	assert_true(r.count == 2);
	assert_true(r.revision == rev + 1);
	r = del(t, "a_", RS_CMD_PREFIX, 0);
	assert_true(r.count == 1);
	assert_true(r.revision == rev + 2);
	assert_kv(f, "ab", "v", 5, 5, 1, 0);
	/* a whole prefix is one revision */
	r = del(t, "a/", RS_CMD_PREFIX, 0);
	assert_true(r.count == 3);
	assert_true(r.revision == rev + 3);
	/* the 0xff paths (no upper bound / carry) */
	r = del(t, "a\xff", RS_CMD_PREFIX, 0);
	assert_true(r.count == 2);
	r = del(t, "\xff", RS_CMD_PREFIX, 0);
	assert_true(r.count == 2);
	/* nothing matches: no new revision */
	r = del(t, "q", RS_CMD_PREFIX, 0);
	assert_true(r.count == 0);
	assert_true(r.revision == rev + 5);
	assert_string_equal(keys_under(f, "", 0, 0, buf, sizeof(buf)),
			    "A/x,a,a0,ab,b");
	/* a prefix of a prefix */
	r = del(t, "a", RS_CMD_PREFIX, 0);
	assert_true(r.count == 3);
	assert_string_equal(keys_under(f, "", 0, 0, buf, sizeof(buf)),
			    "A/x,b");
}

static void test_leases(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;

	put(t, "x", "1", 0);
	/* grant: ids from 1, no revision change */
	struct rs_result r = lease_op(t, RS_OP_LEASE_GRANT, 0, 10000);
	assert_int_equal(r.code, 0);
	assert_true(r.lease == 1);
	assert_true(r.ttl_ms == 10000);
	assert_true(r.revision == 1);
	r = lease_op(t, RS_OP_LEASE_GRANT, 0, 5000);
	assert_true(r.lease == 2);
	assert_true(rs_fsm_revision(f) == 1);

	/* attach */
	r = put(t, "k1", "a", 1);
	assert_int_equal(r.code, 0);
	put(t, "k2", "b", 1);
	put(t, "k3", "c", 2);
	assert_kv(f, "k1", "a", 2, 2, 1, 1);
	/* unknown lease */
	uint64_t h = rs_fsm_hash(f);
	r = put(t, "k4", "d", 99);
	assert_int_equal(r.code, ERR_NOTFOUND);
	assert_true(r.revision == 4);
	assert_true(rs_fsm_hash(f) == h);
	assert_absent(f, "k4");

	struct rs_lease_info *ls;
	size_t n;
	assert_int_equal(rs_fsm_leases(f, &ls, &n), 0);
	assert_int_equal(n, 2);
	assert_true(ls[0].id == 1 && ls[0].ttl_ms == 10000 &&
		    ls[0].renewals == 0 && ls[0].nkeys == 2);
	assert_true(ls[1].id == 2 && ls[1].ttl_ms == 5000 && ls[1].nkeys == 1);
	mem_free(ls);

	/* put with lease 0 detaches; moving to another lease too */
	put(t, "k1", "a2", 0);
	assert_kv(f, "k1", "a2", 2, 5, 2, 0);
	struct rs_lease_info li;
	assert_int_equal(rs_fsm_lease_get(f, 1, &li), 0);
	assert_true(li.nkeys == 1);
	assert_int_equal(rs_fsm_lease_get(f, 42, &li), ERR_NOTFOUND);

	/* keepalive */
	r = lease_op(t, RS_OP_LEASE_KEEPALIVE, 2, 0);
	assert_int_equal(r.code, 0);
	assert_true(r.ttl_ms == 5000);
	assert_true(r.lease == 2);
	assert_true(r.revision == 5);
	assert_int_equal(rs_fsm_lease_get(f, 2, &li), 0);
	assert_true(li.renewals == 1);
	r = lease_op(t, RS_OP_LEASE_KEEPALIVE, 77, 0);
	assert_int_equal(r.code, ERR_NOTFOUND);

	/* revoke: lease and its keys go, one revision */
	r = lease_op(t, RS_OP_LEASE_REVOKE, 1, 0);
	assert_int_equal(r.code, 0);
	assert_true(r.count == 1);
	assert_true(r.revision == 6);
	assert_absent(f, "k2");
	assert_kv(f, "k1", "a2", 2, 5, 2, 0);
	assert_int_equal(rs_fsm_lease_get(f, 1, &li), ERR_NOTFOUND);
	r = lease_op(t, RS_OP_LEASE_REVOKE, 1, 0);
	assert_int_equal(r.code, ERR_NOTFOUND);

	/* expire: guarded by the renewal count the leader saw */
	h = rs_fsm_hash(f);
	r = lease_op(t, RS_OP_LEASE_EXPIRE, 2, 0); /* a keepalive won */
	assert_int_equal(r.code, ERR_CONFLICT);
	assert_true(rs_fsm_hash(f) == h);
	assert_kv(f, "k3", "c", 4, 4, 1, 2);
	r = lease_op(t, RS_OP_LEASE_EXPIRE, 2, 1);
	assert_int_equal(r.code, 0);
	assert_true(r.count == 1);
	assert_true(r.revision == 7);
	assert_absent(f, "k3");
	r = lease_op(t, RS_OP_LEASE_EXPIRE, 2, 1);
	assert_int_equal(r.code, ERR_NOTFOUND);

	/* a lease without keys: revoke changes no revision; ids are never
	 * reused */
	r = lease_op(t, RS_OP_LEASE_GRANT, 0, 1);
	assert_true(r.lease == 3);
	r = lease_op(t, RS_OP_LEASE_REVOKE, 3, 0);
	assert_int_equal(r.code, 0);
	assert_true(r.count == 0);
	assert_true(r.revision == 7);
	r = lease_op(t, RS_OP_LEASE_GRANT, 0, 1);
	assert_true(r.lease == 4);
	assert_int_equal(rs_fsm_leases(f, &ls, &n), 0);
	assert_int_equal(n, 1);
	assert_true(ls[0].id == 4 && ls[0].nkeys == 0);
	mem_free(ls);
}

static void test_members(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;

	struct rs_result r = member_set(t, 20, "node2", "h2:7101", "");
	assert_int_equal(r.code, 0);
	r = member_set(t, 10, "node1", "h1:7101", "http://h1:8101");
	assert_int_equal(r.code, 0);
	r = member_set(t, 30, "node1", "h3:7101", ""); /* name taken */
	assert_int_equal(r.code, ERR_CONFLICT);
	/* upsert same id: new addresses */
	r = member_set(t, 20, "node2", "h2b:7101", "http://h2b:8101");
	assert_int_equal(r.code, 0);
	/* rename to a free name */
	r = member_set(t, 10, "node1x", "h1:7101", "http://h1:8101");
	assert_int_equal(r.code, 0);
	/* the old name is free again */
	r = member_set(t, 30, "node1", "h3:7101", "");
	assert_int_equal(r.code, 0);
	assert_true(rs_fsm_revision(f) == 0); /* not keys */

	struct rs_member_rec *m;
	size_t n;
	assert_int_equal(rs_fsm_members(f, &m, &n), 0);
	assert_int_equal(n, 3);
	assert_true(m[0].id == 10);
	assert_string_equal(m[0].name, "node1x");
	assert_string_equal(m[0].api, "http://h1:8101");
	assert_true(m[1].id == 20);
	assert_string_equal(m[1].peer, "h2b:7101");
	assert_string_equal(m[1].api, "http://h2b:8101");
	assert_true(m[2].id == 30);
	assert_string_equal(m[2].name, "node1");
	assert_string_equal(m[2].api, "");
	mem_free(m);

	struct rs_cmd d = {.op = RS_OP_MEMBER_DEL, .member_id = 20};
	r = apply(t, &d);
	assert_int_equal(r.code, 0);
	assert_true(r.count == 1);
	r = apply(t, &d);
	assert_int_equal(r.code, 0);
	assert_true(r.count == 0);
	assert_int_equal(rs_fsm_members(f, &m, &n), 0);
	assert_int_equal(n, 2);
	mem_free(m);
}

/* The three list reads behind one signature, for a failure sweep: the
 * read's result; the list is freed here and *got tells whether one was
 * returned (each sets its out pointer to NULL first). */
static int read_range(struct rs_fsm *f, size_t *n, bool *got)
{
	struct rs_kv *kvs = (struct rs_kv *)1;
	int rc = rs_fsm_range(f, "/", 1, true, 0, &kvs, n, NULL);
	*got = kvs != NULL;
	if (rc == 0)
		rs_kvs_free(kvs, *n);
	return rc;
}

static int read_leases(struct rs_fsm *f, size_t *n, bool *got)
{
	struct rs_lease_info *ls = (struct rs_lease_info *)1;
	int rc = rs_fsm_leases(f, &ls, n);
	*got = ls != NULL;
	if (rc == 0)
		mem_free(ls);
	return rc;
}

static int read_members(struct rs_fsm *f, size_t *n, bool *got)
{
	struct rs_member_rec *m = (struct rs_member_rec *)1;
	int rc = rs_fsm_members(f, &m, n);
	*got = m != NULL;
	if (rc == 0)
		mem_free(m);
	return rc;
}

/* The list reads (range, leases, members) on an empty store, and past
 * their first allocation (8 kvs, 8 leases, 4 members), also with every
 * allocation failing in turn. */
static void test_lists(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;

	/* empty: NULL and 0, not an error */
	struct rs_kv *kvs = (struct rs_kv *)1;
	struct rs_lease_info *ls = (struct rs_lease_info *)1;
	struct rs_member_rec *m = (struct rs_member_rec *)1;
	size_t n = 7;
	assert_int_equal(rs_fsm_range(f, "", 0, true, 0, &kvs, &n, NULL), 0);
	assert_null(kvs);
	assert_int_equal(n, 0);
	n = 7;
	assert_int_equal(rs_fsm_leases(f, &ls, &n), 0);
	assert_null(ls);
	assert_int_equal(n, 0);
	n = 7;
	assert_int_equal(rs_fsm_members(f, &m, &n), 0);
	assert_null(m);
	assert_int_equal(n, 0);

	/* 21 of each: two doublings past 8 for keys and leases, three past
	 * 4 for members. Lease i+1 holds i % 3 keys. */
	enum { N = 21 };
	char k[32], name[32], peer[32];
	for (int i = 0; i < N; i++) {
		lease_op(t, RS_OP_LEASE_GRANT, 0, 1000 + (uint64_t)i);
		snprintf(name, sizeof name, "node%02d", i);
		snprintf(peer, sizeof peer, "h%d:7101", i);
		member_set(t, 100 + (uint64_t)i, name, peer, "");
	}
	for (int i = 0; i < N; i++)
		for (int j = 0; j < i % 3; j++) {
			snprintf(k, sizeof k, "/k/%02d/%d", i, j);
			put(t, k, "v", (uint64_t)i + 1);
		}
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "/p/%02d", i);
		put(t, k, k, 0);
	}

	assert_int_equal(rs_fsm_range(f, "/p/", 3, true, 0, &kvs, &n, NULL),
			 0);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "/p/%02d", i);
		assert_string_equal(kvs[i].key, k);
		assert_string_equal(kvs[i].value, k);
	}
	rs_kvs_free(kvs, n);
	assert_int_equal(rs_fsm_leases(f, &ls, &n), 0);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++) {
		assert_true(ls[i].id == (uint64_t)i + 1);
		assert_true(ls[i].ttl_ms == 1000 + (uint64_t)i);
		assert_true(ls[i].nkeys == (uint64_t)(i % 3));
	}
	mem_free(ls);
	assert_int_equal(rs_fsm_members(f, &m, &n), 0);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "node%02d", i);
		snprintf(peer, sizeof peer, "h%d:7101", i);
		assert_true(m[i].id == 100 + (uint64_t)i);
		assert_string_equal(m[i].name, name);
		assert_string_equal(m[i].peer, peer);
	}
	mem_free(m);

	/* every allocation failure point, growth included: an error, nothing
	 * returned, errmsg set; no leak (ASan) */
	static int (*const reads[])(struct rs_fsm *, size_t *, bool *) = {
		read_range, read_leases, read_members};
	unsigned long failures = 0;
	for (size_t r = 0; r < sizeof reads / sizeof reads[0]; r++) {
		for (long a = 0;; a++) {
			bool got;
			n = 7;
			mem_fail_after(a);
			int rc = reads[r](f, &n, &got);
			mem_fail_after(-1);
			if (rc == 0) {
				assert_true(got);
				assert_int_equal(n, r == 0 ? 2 * N : N);
				break;
			}
			assert_true(rc == ERR_NOMEM || rc == ERR_DB);
			assert_false(got);
			assert_int_equal(n, 0);
			assert_true(strncmp(rs_fsm_errmsg(f), "fsm: ", 5) == 0);
			assert_true(a < 100000);
			failures++;
		}
	}
	print_message("list allocation failures injected: %lu\n", failures);
	/* at least the array's growth steps failed in each */
	assert_true(failures >= 3 + 2 + 2);
}

static void test_applied_index_and_invalid(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;
	struct rs_result r;

	t->index = 100;
	put(t, "a", "1", 0);
	assert_true(rs_fsm_applied_index(f) == 100);
	/* refused commands still advance the applied index */
	r = put_cas(t, "a", "2", 0);
	assert_int_equal(r.code, ERR_CONFLICT);
	assert_true(rs_fsm_applied_index(f) == 101);
	/* commands that did not come from the decoder are checked too */
	struct rs_cmd bad = {.op = RS_OP_PUT, .key = {.p = "", .len = 0}};
	r = apply(t, &bad);
	assert_int_equal(r.code, ERR_INVAL);
	struct rs_cmd badop = {.op = (enum rs_op)99};
	r = apply(t, &badop);
	assert_int_equal(r.code, ERR_INVAL);
	struct rs_cmd grant0 = {.op = RS_OP_LEASE_GRANT};
	r = apply(t, &grant0);
	assert_int_equal(r.code, ERR_INVAL);
	assert_true(rs_fsm_applied_index(f) == 104);
	assert_true(rs_fsm_revision(f) == 1);

	/* the applied index survives a snapshot; a second fsm is separate */
	void *buf;
	size_t len;
	assert_int_equal(rs_fsm_snapshot(f, malloc, &buf, &len), 0);
	struct rs_fsm *g;
	assert_int_equal(rs_fsm_new(&g), 0);
	assert_absent(g, "a");
	assert_int_equal(rs_fsm_restore(g, buf, len), 0);
	assert_true(rs_fsm_applied_index(g) == 104);
	assert_true(rs_fsm_revision(g) == 1);
	free(buf);
	rs_fsm_free(g);
	rs_fsm_free(NULL);
}

/* A fixed script touching every op. */
static void run_script(struct rs_fsm *f, uint64_t *index, int variant)
{
	char k[32], v[32];
	for (int i = 0; i < 30; i++) {
		struct rs_cmd c = {.op = RS_OP_PUT};
		snprintf(k, sizeof(k), "/svc/%02d", i % 12);
		snprintf(v, sizeof(v), "value-%d-%d", i, variant);
		c.key = S(k);
		c.value = S(v);
		apply_at(f, index, &c);
	}
	struct rs_cmd g = {.op = RS_OP_LEASE_GRANT, .ttl_ms = 3000};
	apply_at(f, index, &g);
	apply_at(f, index, &g);
	struct rs_cmd p = {.op = RS_OP_PUT, .key = S("/leader"),
			   .value = S("n1"), .lease = 1};
	apply_at(f, index, &p);
	p.key = S("/eph");
	p.lease = 2;
	apply_at(f, index, &p);
	struct rs_cmd ka = {.op = RS_OP_LEASE_KEEPALIVE, .lease = 1};
	apply_at(f, index, &ka);
	struct rs_cmd m = {.op = RS_OP_MEMBER_SET, .member_id = 5,
			   .name = S("node1"), .peer = S("h:1"),
			   .api = S("http://h:2")};
	apply_at(f, index, &m);
	struct rs_cmd d = {.op = RS_OP_DELETE, .key = S("/svc/1"),
			   .flags = RS_CMD_PREFIX};
	apply_at(f, index, &d);
}

static void assert_same_reads(struct rs_fsm *a, struct rs_fsm *b)
{
	struct rs_kv *ka, *kb;
	size_t na, nb;
	uint64_t ra, rb;
	assert_int_equal(rs_fsm_range(a, "", 0, true, 0, &ka, &na, &ra), 0);
	assert_int_equal(rs_fsm_range(b, "", 0, true, 0, &kb, &nb, &rb), 0);
	assert_int_equal(na, nb);
	assert_true(ra == rb);
	for (size_t i = 0; i < na; i++) {
		assert_string_equal(ka[i].key, kb[i].key);
		assert_int_equal(ka[i].value_len, kb[i].value_len);
		assert_memory_equal(ka[i].value, kb[i].value,
				    ka[i].value_len + 1);
		assert_true(ka[i].create_rev == kb[i].create_rev);
		assert_true(ka[i].mod_rev == kb[i].mod_rev);
		assert_true(ka[i].version == kb[i].version);
		assert_true(ka[i].lease == kb[i].lease);
	}
	rs_kvs_free(ka, na);
	rs_kvs_free(kb, nb);

	struct rs_lease_info *la, *lb;
	assert_int_equal(rs_fsm_leases(a, &la, &na), 0);
	assert_int_equal(rs_fsm_leases(b, &lb, &nb), 0);
	assert_int_equal(na, nb);
	if (na)
		assert_memory_equal(la, lb, na * sizeof(*la));
	mem_free(la);
	mem_free(lb);

	struct rs_member_rec *ma, *mb;
	assert_int_equal(rs_fsm_members(a, &ma, &na), 0);
	assert_int_equal(rs_fsm_members(b, &mb, &nb), 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_true(ma[i].id == mb[i].id);
		assert_string_equal(ma[i].name, mb[i].name);
		assert_string_equal(ma[i].peer, mb[i].peer);
		assert_string_equal(ma[i].api, mb[i].api);
	}
	mem_free(ma);
	mem_free(mb);
	assert_true(rs_fsm_hash(a) == rs_fsm_hash(b));
	assert_true(rs_fsm_revision(a) == rs_fsm_revision(b));
}

static void test_snapshot_restore(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;
	run_script(f, &t->index, 0);

	void *buf;
	size_t len;
	assert_int_equal(rs_fsm_snapshot(f, malloc, &buf, &len), 0);
	assert_true(len > 0);
	assert_int_equal(len, rs_fsm_db_size(f));

	/* restore into an fsm that holds something else */
	struct rs_fsm *g;
	assert_int_equal(rs_fsm_new(&g), 0);
	uint64_t gi = 1;
	struct rs_cmd other = {.op = RS_OP_PUT, .key = S("zzz"),
			       .value = S("gone")};
	apply_at(g, &gi, &other);
	assert_int_equal(rs_fsm_restore(g, buf, len), 0);
	free(buf);
	assert_absent(g, "zzz");
	assert_same_reads(f, g);
	assert_true(rs_fsm_applied_index(g) == rs_fsm_applied_index(f));

	/* both go on identically: same lease ids, same revisions, and the
	 * restored one rolls back refused/failed work the same way */
	uint64_t fi = t->index;
	gi = t->index;
	struct rs_cmd grant = {.op = RS_OP_LEASE_GRANT, .ttl_ms = 9};
	struct rs_result rf = apply_at(f, &fi, &grant);
	struct rs_result rg = apply_at(g, &gi, &grant);
	assert_true(rf.lease == 3 && rg.lease == 3);
	struct rs_cmd cas = {.op = RS_OP_PUT, .key = S("/leader"),
			     .value = S("n2"), .flags = RS_CMD_HAS_PREV,
			     .prev_rev = 1};
	rf = apply_at(f, &fi, &cas);
	rg = apply_at(g, &gi, &cas);
	assert_int_equal(rf.code, ERR_CONFLICT);
	assert_int_equal(rg.code, ERR_CONFLICT);
	run_script(f, &fi, 1);
	run_script(g, &gi, 1);
	assert_same_reads(f, g);

	/* snapshot of a restored fsm restores too (memdb-backed image) */
	assert_int_equal(rs_fsm_snapshot(g, malloc, &buf, &len), 0);
	struct rs_fsm *h;
	assert_int_equal(rs_fsm_new(&h), 0);
	assert_int_equal(rs_fsm_restore(h, buf, len), 0);
	free(buf);
	assert_same_reads(g, h);
	rs_fsm_free(h);
	rs_fsm_free(g);
}

/* A serialized SQLite database built by sql, as a refused snapshot. */
static void *image_of(const char *sql, size_t *len)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_int64 sz;
	unsigned char *img = sqlite3_serialize(db, "main", &sz, 0);
	assert_non_null(img);
	void *out = malloc((size_t)sz);
	memcpy(out, img, (size_t)sz);
	sqlite3_free(img);
	sqlite3_close(db);
	*len = (size_t)sz;
	return out;
}

static void test_restore_refuses_garbage(void **state)
{
	struct t *t = *state;
	struct rs_fsm *f = t->f;
	run_script(f, &t->index, 0);
	uint64_t h = rs_fsm_hash(f), rev = rs_fsm_revision(f),
		 ai = rs_fsm_applied_index(f);

	void *good;
	size_t glen;
	assert_int_equal(rs_fsm_snapshot(f, malloc, &good, &glen), 0);

	unsigned char junk[4096];
	uint64_t x = 12345;
	for (size_t i = 0; i < sizeof(junk); i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		junk[i] = (unsigned char)(x >> 56);
	}
	assert_int_not_equal(rs_fsm_restore(f, junk, sizeof(junk)), 0);
	assert_int_not_equal(rs_fsm_restore(f, junk, 1), 0);
	assert_int_not_equal(rs_fsm_restore(f, NULL, 0), 0);
	assert_int_not_equal(rs_fsm_restore(f, good, 0), 0);
	assert_true(strlen(rs_fsm_errmsg(f)) > 0);
	/* truncated image */
	assert_int_not_equal(rs_fsm_restore(f, good, glen / 2), 0);
	/* corrupted pages (a header that still says SQLite) */
	unsigned char *bad = malloc(glen);
	memcpy(bad, good, glen);
	for (size_t i = 100; i < glen; i += 7)
		bad[i] ^= 0x5a;
	assert_int_not_equal(rs_fsm_restore(f, bad, glen), 0);
	free(bad);

	const char *wrong[] = {
		/* not our tables */
		"CREATE TABLE x(a);",
		/* meta missing a row */
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER);"
		"CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB, create_rev,"
		" mod_rev, version, lease);"
		"CREATE TABLE lease(id INTEGER PRIMARY KEY, ttl_ms, renewals);"
		"CREATE TABLE member(id INTEGER PRIMARY KEY, name UNIQUE, peer,"
		" api);"
		"INSERT INTO meta VALUES ('schema', 1), ('revision', 0),"
		" ('applied_index', 0);",
		/* wrong schema version */
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER);"
		"CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB, create_rev,"
		" mod_rev, version, lease);"
		"CREATE TABLE lease(id INTEGER PRIMARY KEY, ttl_ms, renewals);"
		"CREATE TABLE member(id INTEGER PRIMARY KEY, name UNIQUE, peer,"
		" api);"
		"INSERT INTO meta VALUES ('schema', 2), ('revision', 0),"
		" ('applied_index', 0), ('next_lease_id', 1);",
		/* a column missing */
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER);"
		"CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB, create_rev,"
		" mod_rev, version);"
		"CREATE TABLE lease(id INTEGER PRIMARY KEY, ttl_ms, renewals);"
		"CREATE TABLE member(id INTEGER PRIMARY KEY, name UNIQUE, peer,"
		" api);"
		"INSERT INTO meta VALUES ('schema', 1), ('revision', 0),"
		" ('applied_index', 0), ('next_lease_id', 1);",
		/* a trigger */
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER);"
		"CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB, create_rev,"
		" mod_rev, version, lease);"
		"CREATE TABLE lease(id INTEGER PRIMARY KEY, ttl_ms, renewals);"
		"CREATE TABLE member(id INTEGER PRIMARY KEY, name UNIQUE, peer,"
		" api);"
		"CREATE TRIGGER t AFTER INSERT ON kv BEGIN DELETE FROM lease;"
		" END;"
		"INSERT INTO meta VALUES ('schema', 1), ('revision', 0),"
		" ('applied_index', 0), ('next_lease_id', 1);",
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		size_t len;
		void *img = image_of(wrong[i], &len);
		assert_int_equal(rs_fsm_restore(f, img, len), ERR_CORRUPT);
		free(img);
	}

	/* the old state is intact and still works */
	assert_true(rs_fsm_hash(f) == h);
	assert_true(rs_fsm_revision(f) == rev);
	assert_true(rs_fsm_applied_index(f) == ai);
	struct rs_result r = put(t, "/after", "x", 0);
	assert_true(r.revision == rev + 1);
	/* and a good image still restores */
	assert_int_equal(rs_fsm_restore(f, good, glen), 0);
	assert_true(rs_fsm_hash(f) == h);
	free(good);
}

static void test_hash(void **state)
{
	(void)state;
	struct rs_fsm *a, *b;
	assert_int_equal(rs_fsm_new(&a), 0);
	assert_int_equal(rs_fsm_new(&b), 0);
	assert_true(rs_fsm_hash(a) == rs_fsm_hash(b));
	/* applied index is not content: different indexes, same hash */
	uint64_t ia = 1, ib = 1000;
	run_script(a, &ia, 0);
	run_script(b, &ib, 0);
	assert_true(rs_fsm_hash(a) == rs_fsm_hash(b));
	assert_true(rs_fsm_applied_index(a) != rs_fsm_applied_index(b));

	uint64_t h0 = rs_fsm_hash(a);
	/* every row counts, the last one too (same revision on both) */
	struct rs_cmd z1 = {.op = RS_OP_PUT, .key = S("~last"), .value = S("1")};
	struct rs_cmd z2 = {.op = RS_OP_PUT, .key = S("~last"), .value = S("2")};
	apply_at(a, &ia, &z1);
	apply_at(b, &ib, &z2);
	assert_true(rs_fsm_hash(a) != rs_fsm_hash(b));
	struct rs_cmd zd = {.op = RS_OP_DELETE, .key = S("~last")};
	apply_at(a, &ia, &zd);
	apply_at(b, &ib, &zd);
	assert_true(rs_fsm_hash(a) == rs_fsm_hash(b));
	h0 = rs_fsm_hash(a);
	/* each kind of difference shows */
	struct rs_cmd c = {.op = RS_OP_PUT, .key = S("/svc/00"),
			   .value = S("other")};
	apply_at(b, &ib, &c);
	assert_true(rs_fsm_hash(a) != rs_fsm_hash(b));
	apply_at(a, &ia, &c);
	assert_true(rs_fsm_hash(a) == rs_fsm_hash(b));
	assert_true(rs_fsm_hash(a) != h0);

	struct rs_cmd ka = {.op = RS_OP_LEASE_KEEPALIVE, .lease = 2};
	apply_at(a, &ia, &ka); /* renewals only */
	assert_true(rs_fsm_hash(a) != rs_fsm_hash(b));
	apply_at(b, &ib, &ka);
	assert_true(rs_fsm_hash(a) == rs_fsm_hash(b));

	struct rs_cmd m = {.op = RS_OP_MEMBER_SET, .member_id = 5,
			   .name = S("node1"), .peer = S("h:1"),
			   .api = S("http://h:3")};
	apply_at(a, &ia, &m); /* api only */
	assert_true(rs_fsm_hash(a) != rs_fsm_hash(b));
	apply_at(b, &ib, &m);
	assert_true(rs_fsm_hash(a) == rs_fsm_hash(b));

	struct rs_cmd g = {.op = RS_OP_LEASE_GRANT, .ttl_ms = 1};
	struct rs_cmd rv = {.op = RS_OP_LEASE_REVOKE, .lease = 3};
	apply_at(a, &ia, &g); /* lease counter only, after revoke */
	apply_at(a, &ia, &rv);
	assert_true(rs_fsm_hash(a) != rs_fsm_hash(b));

	/* same keys and values but another history (revisions differ) */
	struct rs_fsm *x, *y;
	assert_int_equal(rs_fsm_new(&x), 0);
	assert_int_equal(rs_fsm_new(&y), 0);
	uint64_t ix = 1, iy = 1;
	struct rs_cmd p1 = {.op = RS_OP_PUT, .key = S("k"), .value = S("v")};
	apply_at(x, &ix, &p1);
	apply_at(y, &iy, &p1);
	apply_at(y, &iy, &p1);
	assert_true(rs_fsm_hash(x) != rs_fsm_hash(y));
	/* field boundaries are framed */
	struct rs_cmd q1 = {.op = RS_OP_PUT, .key = S("ab"), .value = S("c")};
	struct rs_cmd q2 = {.op = RS_OP_PUT, .key = S("a"), .value = S("bc")};
	apply_at(x, &ix, &q1);
	apply_at(x, &ix, &p1); /* keep revision counts equal */
	apply_at(y, &iy, &q2);
	assert_true(rs_fsm_revision(x) == rs_fsm_revision(y));
	assert_true(rs_fsm_hash(x) != rs_fsm_hash(y));

	rs_fsm_free(a);
	rs_fsm_free(b);
	rs_fsm_free(x);
	rs_fsm_free(y);
}

/* ---- allocation failures ---- */

/* Commands the sweep applies one by one, each under every failure point. */
static const struct rs_cmd *sweep_script(size_t *n)
{
	static struct rs_cmd cmds[16];
	static char big[4000];
	memset(big, 'B', sizeof(big));
	size_t i = 0;
	cmds[i++] = (struct rs_cmd){.op = RS_OP_PUT, .key = S("a"),
				    .value = S("1")};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_LEASE_GRANT, .ttl_ms = 100};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_PUT, .key = S("b"),
				    .value = {.p = big, .len = sizeof(big)},
				    .lease = 1};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_PUT, .key = S("a"),
				    .value = S("2"), .flags = RS_CMD_HAS_PREV,
				    .prev_rev = 1};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_PUT, .key = S("c"),
				    .value = S("x"), .flags = RS_CMD_HAS_PREV,
				    .prev_rev = 0};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_LEASE_KEEPALIVE, .lease = 1};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_MEMBER_SET, .member_id = 1,
				    .name = S("n1"), .peer = S("h:1"),
				    .api = S("u")};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_MEMBER_SET, .member_id = 2,
				    .name = S("n1"), .peer = S("h:2")};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_DELETE, .key = S("c"),
				    .flags = RS_CMD_PREFIX};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_LEASE_EXPIRE, .lease = 1,
				    .renewals = 0};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_LEASE_EXPIRE, .lease = 1,
				    .renewals = 1};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_MEMBER_DEL, .member_id = 1};
	cmds[i++] = (struct rs_cmd){.op = RS_OP_DELETE, .key = S("a")};
	*n = i;
	return cmds;
}

static void test_alloc_failure_sweep(void **state)
{
	(void)state;
	size_t ncmds;
	const struct rs_cmd *cmds = sweep_script(&ncmds);
	unsigned long failures = 0;

	/* rs_fsm_new */
	struct rs_fsm *f = NULL;
	for (long k = 0;; k++) {
		mem_fail_after(k);
		int rc = rs_fsm_new(&f);
		mem_fail_after(-1);
		if (rc == 0)
			break;
		assert_true(rc == ERR_NOMEM || rc == ERR_DB);
		assert_null(f);
		failures++;
	}

	/* a reference that never fails */
	struct rs_fsm *ref;
	assert_int_equal(rs_fsm_new(&ref), 0);
	uint64_t ri = 1;

	for (size_t i = 0; i < ncmds; i++) {
		uint64_t h0 = rs_fsm_hash(f), rev0 = rs_fsm_revision(f),
			 ai0 = rs_fsm_applied_index(f);
		struct rs_result res;
		for (long k = 0;; k++) {
			mem_fail_after(k);
			int rc = rs_fsm_apply(f, &cmds[i], i + 1, &res);
			mem_fail_after(-1);
			if (rc == 0)
				break;
			failures++;
			assert_true(rc == ERR_NOMEM || rc == ERR_DB);
			/* a failed apply changed nothing */
			assert_true(rs_fsm_hash(f) == h0);
			assert_true(rs_fsm_revision(f) == rev0);
			assert_true(rs_fsm_applied_index(f) == ai0);
			assert_true(k < 100000);
		}
		struct rs_result want = apply_at(ref, &ri, &cmds[i]);
		assert_int_equal(res.code, want.code);
		assert_true(res.revision == want.revision);
		assert_true(res.lease == want.lease);
		assert_true(res.ttl_ms == want.ttl_ms);
		assert_true(res.count == want.count);
		assert_true(rs_fsm_hash(f) == rs_fsm_hash(ref));
	}

	/* reads */
	for (long k = 0;; k++) {
		struct rs_kv *kvs = (struct rs_kv *)1;
		size_t n = 7;
		mem_fail_after(k);
		int rc = rs_fsm_range(f, "", 0, true, 0, &kvs, &n, NULL);
		mem_fail_after(-1);
		if (rc == 0) {
			rs_kvs_free(kvs, n);
			break;
		}
		assert_null(kvs);
		assert_int_equal(n, 0);
		failures++;
	}
	for (long k = 0;; k++) {
		struct rs_lease_info *ls;
		size_t n;
		mem_fail_after(k);
		int rc = rs_fsm_leases(f, &ls, &n);
		mem_fail_after(-1);
		if (rc == 0) {
			mem_free(ls);
			break;
		}
		failures++;
	}
	for (long k = 0;; k++) {
		struct rs_member_rec *m;
		size_t n;
		mem_fail_after(k);
		int rc = rs_fsm_members(f, &m, &n);
		mem_fail_after(-1);
		if (rc == 0) {
			mem_free(m);
			break;
		}
		failures++;
	}
	for (long k = 0;; k++) {
		mem_fail_after(k);
		uint64_t h = rs_fsm_hash(f);
		mem_fail_after(-1);
		if (h == rs_fsm_hash(ref))
			break;
		assert_true(h == 0);
		failures++;
	}

	/* snapshot (into mem_malloc, so the copy can fail too) */
	void *img = NULL;
	size_t len = 0;
	for (long k = 0;; k++) {
		mem_fail_after(k);
		int rc = rs_fsm_snapshot(f, mem_malloc, &img, &len);
		mem_fail_after(-1);
		if (rc == 0)
			break;
		assert_null(img);
		failures++;
	}

	/* restore over a different state: on failure the old one stays */
	struct rs_fsm *g;
	assert_int_equal(rs_fsm_new(&g), 0);
	uint64_t gi = 1;
	struct rs_cmd other = {.op = RS_OP_PUT, .key = S("zzz"),
			       .value = S("q")};
	apply_at(g, &gi, &other);
	uint64_t gh = rs_fsm_hash(g);
	for (long k = 0;; k++) {
		mem_fail_after(k);
		int rc = rs_fsm_restore(g, img, len);
		mem_fail_after(-1);
		if (rc == 0)
			break;
		assert_true(rc == ERR_NOMEM || rc == ERR_DB ||
			    rc == ERR_CORRUPT);
		assert_true(rs_fsm_hash(g) == gh);
		failures++;
	}
	mem_free(img);
	assert_true(rs_fsm_hash(g) == rs_fsm_hash(ref));

	/* the restored connection also survives failing applies */
	struct rs_cmd p = {.op = RS_OP_PUT, .key = S("after"),
			   .value = S("restore")};
	for (long k = 0;; k++) {
		uint64_t h0 = rs_fsm_hash(g);
		struct rs_result res;
		mem_fail_after(k);
		int rc = rs_fsm_apply(g, &p, 1000, &res);
		mem_fail_after(-1);
		if (rc == 0)
			break;
		assert_true(rs_fsm_hash(g) == h0);
		failures++;
	}
	apply_at(ref, &ri, &p);
	assert_true(rs_fsm_hash(g) == rs_fsm_hash(ref));

	print_message("allocation failures injected: %lu\n", failures);
	assert_true(failures > 50);
	rs_fsm_free(g);
	rs_fsm_free(ref);
	rs_fsm_free(f);
}

static void test_memory(void **state)
{
	(void)state;
	sqlite3_int64 before = sqlite3_memory_used();
	struct rs_fsm *f;
	assert_int_equal(rs_fsm_new(&f), 0);
	sqlite3_int64 empty = sqlite3_memory_used() - before;
	uint64_t idx = 1;
	char k[64], v[64];
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "/service/main/members/node%03d", i);
		snprintf(v, sizeof(v), "{\"conn_url\":\"postgres://h%d\"}", i);
		struct rs_cmd c = {.op = RS_OP_PUT, .key = S(k),
				   .value = S(v)};
		apply_at(f, &idx, &c);
	}
	sqlite3_int64 full = sqlite3_memory_used() - before;
	size_t dbsize = rs_fsm_db_size(f);

	/* and once more after a restore (memdb image + page cache) */
	void *img;
	size_t len;
	assert_int_equal(rs_fsm_snapshot(f, malloc, &img, &len), 0);
	struct rs_fsm *g;
	sqlite3_int64 b2 = sqlite3_memory_used();
	assert_int_equal(rs_fsm_new(&g), 0);
	assert_int_equal(rs_fsm_restore(g, img, len), 0);
	free(img);
	struct rs_kv *kvs;
	size_t n;
	assert_int_equal(rs_fsm_range(g, "", 0, true, 0, &kvs, &n, NULL), 0);
	rs_kvs_free(kvs, n);
	sqlite3_int64 restored = sqlite3_memory_used() - b2;
	print_message("fsm memory: empty %lld B, 100 keys %lld B (db %zu B),"
		      " restored %lld B\n",
		      (long long)empty, (long long)full, dbsize,
		      (long long)restored);
	assert_true(full < 512 * 1024);
	assert_true(restored < 512 * 1024);
	rs_fsm_free(g);
	rs_fsm_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_revisions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_prefix_bytes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_members, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_applied_index_and_invalid,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_restore, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_garbage,
						setup, teardown),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_alloc_failure_sweep),
		cmocka_unit_test(test_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
