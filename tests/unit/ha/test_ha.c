/* test_ha.c - unit tests for the member record codec and store key names
 * (src/ha/ha_member.c), the controller's pure decision function
 * ha_decide() (src/ha/ha_decide.c) and the controller's timing and
 * answer parsing (src/ha/ha_ctl.c).
 *
 * The decision tests are a table of scenarios, each run with every
 * permutation of its members (the order of member records in the store
 * must never matter), plus a randomized comparison (fixed seed, bounded
 * iterations, the seed printed on failure) with an oracle written from
 * the numbered rules in docs/architecture.md, "Choosing the new primary".
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "err.h"
#include "ha/ha_ctl.h"
#include "ha/ha_member.h"
#include "mem.h"

#define NROLES 4
#define NSTATES 12

/* ------------------------------------------------------------------ */
/* Member codec                                                         */
/* ------------------------------------------------------------------ */

static void fill_member(struct ha_member *m, unsigned variant)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "node-%u", variant);
	snprintf(m->api_url, sizeof m->api_url, "http://10.0.0.%u:8008",
		 variant % 250);
	snprintf(m->host, sizeof m->host, "db%u.example \"quoted\" \\ é",
		 variant);
	snprintf(m->hostaddr, sizeof m->hostaddr, "10.1.%u.%u", variant / 250,
		 variant % 250);
	m->port = 5432 + (int)variant;
	m->role = (enum ha_role)(variant % NROLES);
	m->state = (enum ha_state)(variant % NSTATES);
	m->timeline = variant + 1;
	snprintf(m->sysid, sizeof m->sysid, "%" PRIu64,
		 (uint64_t)7300000000000000000ull + variant);
	m->lsn_current = 0x16B374D848ull * (variant + 1);
	m->lsn_received = 0x16B374D848ull * (variant + 2);
	m->lsn_replayed = 0x16B374D848ull * (variant + 3);
	m->lag_bytes = (int64_t)variant * 1000 - 1;
	m->pending_restart = variant & 1;
	m->tags.nofailover = variant & 2;
	m->tags.noloadbalance = variant & 4;
	m->tags.nosync = variant & 8;
	m->tags.failover_priority = (int)variant - 3;
	snprintf(m->detail, sizeof m->detail, "detail %u\nline2\t\"x\"",
		 variant);
	m->seq = (uint64_t)variant * 1000003u;
}

static void assert_member_equal(const struct ha_member *a,
				const struct ha_member *b)
{
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->api_url, b->api_url);
	assert_string_equal(a->host, b->host);
	assert_string_equal(a->hostaddr, b->hostaddr);
	assert_int_equal(a->port, b->port);
	assert_int_equal(a->role, b->role);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->timeline, b->timeline);
	assert_string_equal(a->sysid, b->sysid);
	assert_true(a->lsn_current == b->lsn_current);
	assert_true(a->lsn_received == b->lsn_received);
	assert_true(a->lsn_replayed == b->lsn_replayed);
	assert_true(a->lag_bytes == b->lag_bytes);
	assert_int_equal(a->pending_restart, b->pending_restart);
	assert_int_equal(a->tags.nofailover, b->tags.nofailover);
	assert_int_equal(a->tags.noloadbalance, b->tags.noloadbalance);
	assert_int_equal(a->tags.nosync, b->tags.nosync);
	assert_int_equal(a->tags.failover_priority,
			 b->tags.failover_priority);
	assert_string_equal(a->detail, b->detail);
	assert_true(a->seq == b->seq);
}

static void round_trip(const struct ha_member *in)
{
	char *js = ha_member_encode(in);
	assert_non_null(js);
	struct ha_member out;
	memset(&out, 0xA5, sizeof out);
	assert_int_equal(ha_member_decode(js, strlen(js), &out), 0);
	assert_member_equal(in, &out);
	/* encoding is stable: encode(decode(encode(m))) == encode(m) */
	char *js2 = ha_member_encode(&out);
	assert_non_null(js2);
	assert_string_equal(js, js2);
	mem_free(js2);
	mem_free(js);
}

static void test_member_round_trip_variants(void **state)
{
	(void)state;
	/* covers every role and every state, every tag combination */
	for (unsigned v = 0; v < 64; v++) {
		struct ha_member m;
		fill_member(&m, v);
		round_trip(&m);
	}
}

static void test_member_round_trip_every_role_state(void **state)
{
	(void)state;
	for (int r = 0; r < NROLES; r++) {
		for (int s = 0; s < NSTATES; s++) {
			struct ha_member m;
			fill_member(&m, 5);
			m.role = (enum ha_role)r;
			m.state = (enum ha_state)s;
			round_trip(&m);
			/* the names are the wire format */
			char *js = ha_member_encode(&m);
			assert_non_null(js);
			json_t *o = json_loads(js, 0, NULL);
			assert_non_null(o);
			assert_string_equal(
				json_string_value(json_object_get(o, "role")),
				ha_role_name(m.role));
			assert_string_equal(
				json_string_value(json_object_get(o, "state")),
				ha_state_name(m.state));
			json_decref(o);
			mem_free(js);
		}
	}
}

static void test_member_role_state_names(void **state)
{
	(void)state;
	static const char *const roles[NROLES] = { "unknown", "primary",
						   "replica",
						   "uninitialized" };
	static const char *const states[NSTATES] = {
		"stopped",   "starting",  "running",  "streaming",
		"initializing", "cloning", "rewinding", "promoting",
		"demoting",  "crashed",   "refused",  "waiting",
	};
	for (int r = 0; r < NROLES; r++)
		assert_string_equal(ha_role_name((enum ha_role)r), roles[r]);
	for (int s = 0; s < NSTATES; s++)
		assert_string_equal(ha_state_name((enum ha_state)s),
				    states[s]);
	assert_int_equal(HA_ROLE_UNINITIALIZED, NROLES - 1);
	assert_int_equal(HA_ST_WAITING, NSTATES - 1);
	/* out of range: a name, never a crash */
	assert_string_equal(ha_role_name((enum ha_role)NROLES), "unknown");
	assert_string_equal(ha_role_name((enum ha_role)-1), "unknown");
	assert_string_equal(ha_state_name((enum ha_state)NSTATES), "unknown");
	assert_string_equal(ha_state_name((enum ha_state)-1), "unknown");
}

static void test_member_round_trip_extremes(void **state)
{
	(void)state;
	struct ha_member m;
	/* all zero / empty */
	memset(&m, 0, sizeof m);
	round_trip(&m);

	/* the largest LSNs PostgreSQL can have, lag unknown */
	fill_member(&m, 2);
	m.lsn_current = INT64_MAX;
	m.lsn_received = INT64_MAX;
	m.lsn_replayed = INT64_MAX - 1;
	m.lag_bytes = -1;
	m.seq = INT64_MAX;
	m.timeline = UINT32_MAX;
	m.port = 65535;
	round_trip(&m);
	m.lag_bytes = INT64_MAX;
	m.lsn_current = 1;
	m.lsn_received = (uint64_t)1 << 62;
	m.lsn_replayed = 0;
	m.tags.failover_priority = 0;
	round_trip(&m);
	m.tags.failover_priority = -7;
	round_trip(&m);
	m.tags.failover_priority = 1000000;
	round_trip(&m);

	/* longest strings that fit */
	memset(m.name, 'n', HA_NAME_MAX);
	m.name[HA_NAME_MAX] = '\0';
	memset(m.api_url, 'u', sizeof m.api_url - 1);
	m.api_url[sizeof m.api_url - 1] = '\0';
	memset(m.host, 'h', sizeof m.host - 1);
	m.host[sizeof m.host - 1] = '\0';
	memset(m.sysid, '9', sizeof m.sysid - 1);
	m.sysid[sizeof m.sysid - 1] = '\0';
	memset(m.detail, 'd', sizeof m.detail - 1);
	m.detail[sizeof m.detail - 1] = '\0';
	round_trip(&m);
}

static void test_member_encode_is_object_with_wire_names(void **state)
{
	(void)state;
	struct ha_member m;
	fill_member(&m, 9);
	m.lsn_current = 123;
	m.lsn_received = 456;
	m.lsn_replayed = 789;
	m.lag_bytes = -1;
	m.tags.failover_priority = 3;
	char *js = ha_member_encode(&m);
	assert_non_null(js);
	json_t *o = json_loads(js, 0, NULL);
	assert_true(json_is_object(o));
	json_t *lsn = json_object_get(o, "lsn");
	assert_true(json_is_object(lsn));
	assert_int_equal(json_integer_value(json_object_get(lsn, "current")),
			 123);
	assert_int_equal(json_integer_value(json_object_get(lsn, "received")),
			 456);
	assert_int_equal(json_integer_value(json_object_get(lsn, "replayed")),
			 789);
	assert_int_equal(json_integer_value(json_object_get(o, "lag_bytes")),
			 -1);
	json_t *tags = json_object_get(o, "tags");
	assert_true(json_is_object(tags));
	assert_int_equal(
		json_integer_value(json_object_get(tags, "failover_priority")),
		3);
	assert_string_equal(json_string_value(json_object_get(o, "name")),
			    "node-9");
	json_decref(o);
	mem_free(js);
}

static void test_member_encode_nomem(void **state)
{
	(void)state;
	struct ha_member m;
	fill_member(&m, 3);
	mem_fail_after(0);
	char *js = ha_member_encode(&m);
	mem_fail_after(-1);
	assert_null(js);
	/* and it works again afterwards */
	js = ha_member_encode(&m);
	assert_non_null(js);
	mem_free(js);
}

static int decode_str(const char *s, struct ha_member *m)
{
	memset(m, 0x5A, sizeof *m); /* decode must not rely on the caller */
	return ha_member_decode(s, strlen(s), m);
}

static void assert_defaults(const struct ha_member *m)
{
	assert_string_equal(m->name, "");
	assert_string_equal(m->api_url, "");
	assert_string_equal(m->host, "");
	assert_string_equal(m->hostaddr, "");
	assert_int_equal(m->port, 0);
	assert_int_equal(m->role, HA_ROLE_UNKNOWN);
	assert_int_equal(m->state, HA_ST_STOPPED);
	assert_int_equal(m->timeline, 0);
	assert_string_equal(m->sysid, "");
	assert_true(m->lsn_current == 0);
	assert_true(m->lsn_received == 0);
	assert_true(m->lsn_replayed == 0);
	assert_true(m->lag_bytes == -1);
	assert_false(m->pending_restart);
	assert_false(m->tags.nofailover);
	assert_false(m->tags.noloadbalance);
	assert_false(m->tags.nosync);
	assert_int_equal(m->tags.failover_priority, 1);
	assert_string_equal(m->detail, "");
	assert_true(m->seq == 0);
}

static void test_member_decode_empty_object_defaults(void **state)
{
	(void)state;
	struct ha_member m;
	assert_int_equal(decode_str("{}", &m), 0);
	assert_defaults(&m);
	assert_int_equal(decode_str(" \n{ }\t", &m), 0);
	assert_defaults(&m);
	/* tags present but empty: priority still defaults to 1 */
	assert_int_equal(decode_str("{\"tags\":{}}", &m), 0);
	assert_defaults(&m);
	/* lsn present but empty */
	assert_int_equal(decode_str("{\"lsn\":{}}", &m), 0);
	assert_defaults(&m);
}

static void test_member_decode_missing_fields(void **state)
{
	(void)state;
	struct ha_member m;
	assert_int_equal(
		decode_str("{\"name\":\"a\",\"role\":\"replica\","
			   "\"state\":\"streaming\",\"sysid\":\"42\","
			   "\"lsn\":{\"received\":100}}",
			   &m),
		0);
	assert_string_equal(m.name, "a");
	assert_int_equal(m.role, HA_ROLE_REPLICA);
	assert_int_equal(m.state, HA_ST_STREAMING);
	assert_string_equal(m.sysid, "42");
	assert_true(m.lsn_received == 100);
	assert_true(m.lsn_current == 0);
	assert_true(m.lsn_replayed == 0);
	assert_true(m.lag_bytes == -1);
	assert_int_equal(m.tags.failover_priority, 1);
	assert_false(m.tags.nofailover);
	assert_int_equal(m.port, 0);
	assert_int_equal(m.timeline, 0);
	assert_true(m.seq == 0);

	/* a tags object without failover_priority */
	assert_int_equal(decode_str("{\"tags\":{\"nofailover\":true}}", &m),
			 0);
	assert_true(m.tags.nofailover);
	assert_int_equal(m.tags.failover_priority, 1);
}

static void test_member_decode_unknown_fields_ignored(void **state)
{
	(void)state;
	struct ha_member ref, m;
	fill_member(&ref, 6);
	char *js = ha_member_encode(&ref);
	assert_non_null(js);
	/* a newer writer: extra fields at every level */
	json_t *o = json_loads(js, 0, NULL);
	assert_non_null(o);
	json_object_set_new(o, "zone", json_string("eu-1"));
	json_object_set_new(o, "future", json_pack("{s:[i,i],s:n}", "x", 1, 2,
						   "y"));
	json_object_set_new(json_object_get(o, "lsn"), "flushed",
			    json_integer(5));
	json_object_set_new(json_object_get(o, "tags"), "nostream",
			    json_true());
	char *js2 = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_int_equal(decode_str(js2, &m), 0);
	assert_member_equal(&ref, &m);
	free(js2);
	mem_free(js);
}

static void test_member_decode_wrong_types(void **state)
{
	(void)state;
	struct ha_member m;
	/* every field with a wrong type: ignored, defaults apply */
	const char *js =
		"{\"name\":1,\"api_url\":true,\"host\":[\"h\"],\"port\":\"5432\","
		"\"role\":2,\"state\":{},\"timeline\":\"3\",\"sysid\":42,"
		"\"lsn\":[1,2,3],\"lag_bytes\":\"10\",\"pending_restart\":1,"
		"\"tags\":[],\"detail\":null,\"seq\":1.5}";
	assert_int_equal(decode_str(js, &m), 0);
	assert_defaults(&m);

	/* wrong types inside lsn and tags */
	js = "{\"lsn\":{\"current\":\"1\",\"received\":1.0,\"replayed\":null},"
	     "\"tags\":{\"nofailover\":\"true\",\"noloadbalance\":1,"
	     "\"nosync\":null,\"clonefrom\":[true],"
	     "\"failover_priority\":\"5\"}}";
	assert_int_equal(decode_str(js, &m), 0);
	assert_defaults(&m);

	/* a real where an integer belongs */
	assert_int_equal(decode_str("{\"port\":5432.0,\"tags\":"
				    "{\"failover_priority\":2.0}}",
				    &m),
			 0);
	assert_int_equal(m.port, 0);
	assert_int_equal(m.tags.failover_priority, 1);

	/* tags:null and lsn:null */
	assert_int_equal(decode_str("{\"tags\":null,\"lsn\":null}", &m), 0);
	assert_defaults(&m);

	/* one wrong field does not spoil the others */
	assert_int_equal(decode_str("{\"name\":\"b\",\"port\":\"x\","
				    "\"role\":\"primary\",\"lag_bytes\":[]}",
				    &m),
			 0);
	assert_string_equal(m.name, "b");
	assert_int_equal(m.role, HA_ROLE_PRIMARY);
	assert_int_equal(m.port, 0);
	assert_true(m.lag_bytes == -1);
}

static void test_member_decode_unknown_names_and_ranges(void **state)
{
	(void)state;
	struct ha_member m;
	assert_int_equal(decode_str("{\"role\":\"leader\",\"state\":\"dancing\"}",
				    &m),
			 0);
	assert_int_equal(m.role, HA_ROLE_UNKNOWN);
	assert_int_equal(m.state, HA_ST_STOPPED);
	/* names are case-sensitive wire values */
	assert_int_equal(decode_str("{\"role\":\"PRIMARY\"}", &m), 0);
	assert_int_equal(m.role, HA_ROLE_UNKNOWN);
	/* timeline out of uint32 range, or not positive: 0 */
	assert_int_equal(decode_str("{\"timeline\":4294967296}", &m), 0);
	assert_int_equal(m.timeline, 0);
	assert_int_equal(decode_str("{\"timeline\":-1}", &m), 0);
	assert_int_equal(m.timeline, 0);
	assert_int_equal(decode_str("{\"timeline\":4294967295}", &m), 0);
	assert_true(m.timeline == UINT32_MAX);
	/* booleans: only true is true */
	assert_int_equal(decode_str("{\"pending_restart\":true,\"tags\":"
				    "{\"nosync\":true}}",
				    &m),
			 0);
	assert_true(m.pending_restart);
	assert_true(m.tags.nosync);
	/* explicit lag -1 and explicit priority 0 are kept */
	assert_int_equal(decode_str("{\"lag_bytes\":-1,\"tags\":"
				    "{\"failover_priority\":0}}",
				    &m),
			 0);
	assert_true(m.lag_bytes == -1);
	assert_int_equal(m.tags.failover_priority, 0);
	/* strings longer than the field are cut, NUL-terminated */
	char big[700];
	char name[300];
	memset(name, 'x', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	snprintf(big, sizeof big, "{\"name\":\"%s\",\"sysid\":\"%s\"}", name,
		 name);
	assert_int_equal(decode_str(big, &m), 0);
	assert_int_equal(strlen(m.name), HA_NAME_MAX);
	assert_int_equal(strlen(m.sysid), sizeof m.sysid - 1);
}

static void test_member_decode_corrupt(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		" ",
		"null",
		"true",
		"42",
		"\"member\"",
		"[]",
		"[{\"name\":\"a\"}]",
		"{",
		"{\"name\":}",
		"{\"name\":\"a\"",
		"{\"name\":\"a\"}}",
		"{\"name\":\"a\"} trailing",
		"{'name':'a'}",
		"{name:\"a\"}",
		"\xff\xfe{}",
		"{\"name\":\"\xc3\"}", /* invalid UTF-8 */
		"garbage",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct ha_member m;
		assert_int_equal(decode_str(bad[i], &m), ERR_CORRUPT);
		/* never leaves garbage behind */
		assert_string_equal(m.name, "");
		assert_true(m.lag_bytes == -1);
	}
	/* len is honoured: a valid prefix is not enough, and bytes past len
	 * are not read */
	const char *s = "{\"name\":\"a\"}";
	struct ha_member m;
	assert_int_equal(ha_member_decode(s, strlen(s) - 1, &m), ERR_CORRUPT);
	assert_int_equal(ha_member_decode(s, 0, &m), ERR_CORRUPT);
	char buf[32];
	memcpy(buf, "{\"name\":\"ab\"}XXXXXXXX", 21);
	assert_int_equal(ha_member_decode(buf, 13, &m), 0);
	assert_string_equal(m.name, "ab");
	/* embedded NUL inside len */
	assert_int_equal(ha_member_decode("{}\0{}", 5, &m), ERR_CORRUPT);
}

/* ha_member.h: encode returns NULL on NOMEM only. Whatever decode
 * accepts, encode must be able to write back, and a detail taken from a
 * PostgreSQL message (any bytes, cut at 127 by the agent's snprintf) must
 * not stop the member record from being published: ha_agent's
 * put_member() silently skips the report when encode returns NULL, so the
 * node's member record would expire and the controller would treat it as
 * gone. Strings cut to the field size must not end up as broken UTF-8
 * (which json_pack rejects). */
static void test_member_decode_truncation_keeps_utf8(void **state)
{
	(void)state;
	/* 100 x "é" (2 bytes each): 200 bytes, cut at 127 -> mid-character */
	char detail[256] = "";
	for (int i = 0; i < 100; i++)
		strcat(detail, "\xc3\xa9");
	char js[512];
	snprintf(js, sizeof js, "{\"name\":\"a\",\"detail\":\"%s\"}", detail);
	struct ha_member m;
	assert_int_equal(decode_str(js, &m), 0);
	char *out = ha_member_encode(&m);
	assert_non_null(out);
	mem_free(out);
}

static void test_member_encode_any_detail_bytes(void **state)
{
	(void)state;
	/* a Latin-1 message ("\xe9chec" = "échec") straight into detail, as
	 * the agent does with a failed flow's message */
	struct ha_member m;
	fill_member(&m, 1);
	snprintf(m.detail, sizeof m.detail, "start: \xe9" "chec");
	char *js = ha_member_encode(&m);
	assert_non_null(js);
	mem_free(js);
}

static void test_member_lsn(void **state)
{
	(void)state;
	struct ha_member m;
	memset(&m, 0, sizeof m);
	assert_true(ha_member_lsn(&m) == 0);
	const uint64_t vals[] = { 0, 1, 0x3000000, INT64_MAX };
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 4; b++)
			for (size_t c = 0; c < 4; c++) {
				m.lsn_current = vals[a];
				m.lsn_received = vals[b];
				m.lsn_replayed = vals[c];
				uint64_t want = vals[a];
				if (vals[b] > want)
					want = vals[b];
				if (vals[c] > want)
					want = vals[c];
				assert_true(ha_member_lsn(&m) == want);
			}
	m.lsn_current = UINT64_MAX;
	m.lsn_received = 0;
	m.lsn_replayed = 0;
	assert_true(ha_member_lsn(&m) == UINT64_MAX);
}

static void test_keys(void **state)
{
	(void)state;
	char buf[256];
	ha_key(buf, sizeof buf, "main", "leader");
	assert_string_equal(buf, "/service/main/leader");
	ha_key(buf, sizeof buf, "main", "members/");
	assert_string_equal(buf, "/service/main/members/");
	ha_key(buf, sizeof buf, "c-1", "initialize");
	assert_string_equal(buf, "/service/c-1/initialize");
	ha_member_key(buf, sizeof buf, "main", "node1");
	assert_string_equal(buf, "/service/main/members/node1");
	/* the member key lies under the members/ prefix */
	char prefix[256];
	ha_key(prefix, sizeof prefix, "main", "members/");
	assert_memory_equal(buf, prefix, strlen(prefix));
	/* truncation: always NUL-terminated, never overruns */
	char small[12];
	memset(small, 'Z', sizeof small);
	ha_member_key(small, sizeof small, "main", "node1");
	assert_string_equal(small, "/service/ma");
	memset(small, 'Z', sizeof small);
	ha_key(small, 1, "main", "leader");
	assert_int_equal(small[0], '\0');
	assert_int_equal(small[1], 'Z');
	/* empty components */
	ha_key(buf, sizeof buf, "", "");
	assert_string_equal(buf, "/service//");
}

/* ------------------------------------------------------------------ */
/* ha_decide: scenario table                                            */
/* ------------------------------------------------------------------ */

#define SYS "7300000000000000001"
#define OTHER "7300000000000000002"
#define MAXM 6

struct mspec {
	const char *name;
	enum ha_role role;
	enum ha_state state;
	const char *sysid;
	uint64_t lsn;
	int prio;
	bool nofailover;
	uint32_t tl; /* timeline; 0 (unknown) when not given */
};

/* shorthands: a streaming replica / running primary of cluster SYS,
 * an empty node waiting to bootstrap */
#define REP(n, l) { n, HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, l, 1, false, 0 }
#define PRI(n, l) { n, HA_ROLE_PRIMARY, HA_ST_RUNNING, SYS, l, 1, false, 0 }
#define UNI(n) { n, HA_ROLE_UNINITIALIZED, HA_ST_WAITING, "", 0, 1, false, 0 }

struct scenario {
	const char *label;
	struct ha_view v; /* members filled in at run time */
	struct mspec m[MAXM];
	size_t n;
	enum ha_action_kind kind;
	const char *name;   /* SET: expected candidate */
	const char *reason; /* SET: expected reason */
	const char *why;    /* a substring of why, or NULL */
};

#define INIT .initialized = true, .sysid = SYS
#define LAG .maximum_lag = 1u << 20, .candidate_timeout_ms = 30000
/* the sync key: ANY k of the n listed slot names */
#define SYNC(k, n, ...)                                                     \
	.sync_active = true, .sync_k = (k), .nsync = (n),                   \
	.sync_standbys = { __VA_ARGS__ }
#define SYNC_EMPTY(k) .sync_active = true, .sync_k = (k), .nsync = 0

static const struct scenario scenarios[] = {
	/* ---- pause, leader, candidate ---------------------------------- */
	{ "paused, nothing else",
	  { .paused = true, LAG },
	  { UNI("a") },
	  1,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "paused" },
	{ "paused beats no leader",
	  { .paused = true, INIT, LAG },
	  { REP("a", 100), REP("b", 200) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "paused" },
	{ "paused beats a stale candidate under a leader",
	  { .paused = true, INIT, LAG, .has_leader = true, .leader = "a",
	    .has_candidate = true, .candidate = "b" },
	  { PRI("a", 100), REP("b", 100) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "paused" },
	{ "paused beats a timed-out candidate",
	  { .paused = true, INIT, LAG, .has_candidate = true,
	    .candidate = "zz", .candidate_age_ms = 999999 },
	  { REP("a", 100) },
	  1,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "paused" },
	{ "leader present",
	  { INIT, LAG, .has_leader = true, .leader = "a" },
	  { PRI("a", 500), REP("b", 900) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "leader" },
	{ "leader present, not initialized",
	  { LAG, .has_leader = true, .leader = "a" },
	  { UNI("a"), UNI("b") },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  NULL },
	{ "leader present, leader not reporting",
	  { INIT, LAG, .has_leader = true, .leader = "gone" },
	  { REP("a", 100) },
	  1,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  NULL },
	{ "leader present with a stale candidate",
	  { INIT, LAG, .has_leader = true, .leader = "a",
	    .has_candidate = true, .candidate = "a" },
	  { PRI("a", 500), REP("b", 500) },
	  2,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "a holds the leader key" },
	{ "leader present with a candidate that is someone else",
	  { INIT, LAG, .has_leader = true, .leader = "a",
	    .has_candidate = true, .candidate = "b" },
	  { PRI("a", 500), REP("b", 500) },
	  2,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "holds the leader key" },
	{ "candidate still reporting",
	  { INIT, LAG, .has_candidate = true, .candidate = "b",
	    .candidate_age_ms = 1000 },
	  { REP("a", 900), REP("b", 500) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "waiting for the candidate" },
	{ "candidate exactly at the timeout still stands",
	  { INIT, LAG, .has_candidate = true, .candidate = "b",
	    .candidate_age_ms = 30000 },
	  { REP("b", 500) },
	  1,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "waiting" },
	{ "candidate still reporting, not initialized (bootstrap running)",
	  { LAG, .has_candidate = true, .candidate = "a",
	    .candidate_age_ms = 5 },
	  { { "a", HA_ROLE_UNINITIALIZED, HA_ST_INITIALIZING, "", 0, 1,
	      false, 0 },
	    UNI("b") },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "waiting" },
	{ "candidate gone",
	  { INIT, LAG, .has_candidate = true, .candidate = "c" },
	  { REP("a", 900), REP("b", 500) },
	  2,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "candidate c stopped reporting" },
	{ "candidate gone, no members at all",
	  { LAG, .has_candidate = true, .candidate = "c" },
	  { { 0 } },
	  0,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "stopped reporting" },
	{ "candidate refused",
	  { INIT, LAG, .has_candidate = true, .candidate = "b" },
	  { REP("a", 900),
	    { "b", HA_ROLE_REPLICA, HA_ST_REFUSED, OTHER, 500, 1, false, 0 } },
	  2,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "candidate b refused" },
	{ "candidate refused during bootstrap",
	  { LAG, .has_candidate = true, .candidate = "a" },
	  { { "a", HA_ROLE_UNINITIALIZED, HA_ST_REFUSED, "", 0, 1, false, 0 },
	    UNI("b") },
	  2,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "refused" },
	{ "candidate older than the timeout",
	  { INIT, LAG, .has_candidate = true, .candidate = "b",
	    .candidate_age_ms = 30001 },
	  { REP("a", 900), REP("b", 500) },
	  2,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "did not take the lease within 30000 ms" },
	{ "candidate with a zero timeout and age 1",
	  { INIT, .maximum_lag = 100, .candidate_timeout_ms = 0,
	    .has_candidate = true, .candidate = "b", .candidate_age_ms = 1 },
	  { REP("b", 500) },
	  1,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "did not take the lease" },

	/* ---- not initialized ---------------------------------------------- */
	{ "bootstrap: all empty, lowest name",
	  { LAG },
	  { UNI("node3"), UNI("node1"), UNI("node2") },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "node1",
	  "bootstrap",
	  "node1 bootstraps" },
	{ "bootstrap: single node",
	  { LAG },
	  { UNI("solo") },
	  1,
	  HA_ACT_SET_CANDIDATE,
	  "solo",
	  "bootstrap",
	  NULL },
	{ "bootstrap: names compare bytewise",
	  { LAG },
	  { UNI("b"), UNI("B"), UNI("a1"), UNI("a") },
	  4,
	  HA_ACT_SET_CANDIDATE,
	  "B",
	  "bootstrap",
	  NULL },
	{ "bootstrap: nofailover skipped",
	  { LAG },
	  { { "a", HA_ROLE_UNINITIALIZED, HA_ST_WAITING, "", 0, 1, true, 0 },
	    UNI("b"), UNI("c") },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "bootstrap",
	  NULL },
	{ "bootstrap: cloning / initializing / refused / rewinding skipped",
	  { LAG },
	  { { "a", HA_ROLE_UNINITIALIZED, HA_ST_CLONING, "", 0, 1, false, 0 },
	    { "b", HA_ROLE_UNINITIALIZED, HA_ST_INITIALIZING, "", 0, 1,
	      false, 0 },
	    { "c", HA_ROLE_UNINITIALIZED, HA_ST_REFUSED, "", 0, 1, false, 0 },
	    { "d", HA_ROLE_UNINITIALIZED, HA_ST_REWINDING, "", 0, 1, false, 0 },
	    UNI("e") },
	  5,
	  HA_ACT_SET_CANDIDATE,
	  "e",
	  "bootstrap",
	  NULL },
	{ "bootstrap: every empty node busy or nofailover",
	  { LAG },
	  { { "a", HA_ROLE_UNINITIALIZED, HA_ST_CLONING, "", 0, 1, false, 0 },
	    { "b", HA_ROLE_UNINITIALIZED, HA_ST_REFUSED, "", 0, 1, false, 0 },
	    { "c", HA_ROLE_UNINITIALIZED, HA_ST_WAITING, "", 0, 1, true, 0 } },
	  3,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "not initialized" },
	{ "bootstrap: unknown role never bootstraps",
	  { LAG },
	  { { "a", HA_ROLE_UNKNOWN, HA_ST_STOPPED, "", 0, 1, false, 0 },
	    UNI("b") },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "bootstrap",
	  NULL },
	{ "bootstrap: nobody",
	  { LAG },
	  { { 0 } },
	  0,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "not initialized" },
	{ "bootstrap: only unknown roles",
	  { LAG },
	  { { "a", HA_ROLE_UNKNOWN, HA_ST_STOPPED, "", 0, 1, false, 0 },
	    { "b", HA_ROLE_UNKNOWN, HA_ST_STARTING, "", 0, 1, false, 0 } },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  NULL },
	{ "existing data beats empty nodes",
	  { LAG },
	  { UNI("a"), UNI("b"), REP("z", 100) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "z",
	  "existing_data",
	  "z has data" },
	{ "existing data: a primary record",
	  { LAG },
	  { UNI("a"), PRI("y", 5) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "y",
	  "existing_data",
	  NULL },
	{ "existing data: best LSN among them",
	  { LAG },
	  { UNI("a"), REP("x", 100), REP("y", 300), PRI("z", 200) },
	  4,
	  HA_ACT_SET_CANDIDATE,
	  "y",
	  "existing_data",
	  "lsn 300" },
	{ "existing data: LSN tie -> priority",
	  { LAG },
	  { { "x", HA_ROLE_REPLICA, HA_ST_RUNNING, SYS, 300, 1, false, 0 },
	    { "y", HA_ROLE_REPLICA, HA_ST_RUNNING, SYS, 300, 5, false, 0 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "y",
	  "existing_data",
	  NULL },
	{ "existing data: tie -> last leader",
	  { LAG, .last_leader = "y" },
	  { REP("x", 300), REP("y", 300), UNI("a") },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "y",
	  "existing_data",
	  NULL },
	{ "existing data: tie -> name",
	  { LAG },
	  { REP("y", 300), REP("x", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "x",
	  "existing_data",
	  NULL },
	{ "existing data needs a sysid",
	  { LAG },
	  { { "x", HA_ROLE_REPLICA, HA_ST_RUNNING, "", 900, 1, false, 0 },
	    UNI("b") },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "bootstrap",
	  NULL },
	{ "existing data: nofailover skipped",
	  { LAG },
	  { { "x", HA_ROLE_REPLICA, HA_ST_RUNNING, SYS, 900, 1, true, 0 },
	    REP("y", 100), UNI("a") },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "y",
	  "existing_data",
	  NULL },
	{ "existing data: busy skipped",
	  { LAG },
	  { { "x", HA_ROLE_REPLICA, HA_ST_REWINDING, SYS, 900, 1, false, 0 },
	    { "w", HA_ROLE_REPLICA, HA_ST_REFUSED, SYS, 900, 1, false, 0 },
	    REP("y", 100) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "y",
	  "existing_data",
	  NULL },
	{ "existing data all nofailover: an empty node bootstraps",
	  { LAG },
	  { { "x", HA_ROLE_REPLICA, HA_ST_RUNNING, SYS, 900, 1, true, 0 },
	    UNI("b") },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "bootstrap",
	  NULL },

	/* ---- initialized, no leader: failover ----------------------------- */
	{ "failover: highest LSN wins",
	  { INIT, LAG },
	  { REP("a", 100), REP("b", 300), REP("c", 200) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  "b is the most advanced (lsn 300)" },
	{ "failover: received/replayed/current all count",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 0, 1, false, 0 },
	    REP("b", 250) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: LSN beats priority",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 100, 9, false, 0 },
	    REP("b", 101) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: LSN tie -> failover_priority",
	  { INIT, LAG, .last_leader = "gone" },
	  { REP("a", 300),
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 2, false, 0 },
	    REP("c", 300) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: tie -> last leader",
	  { INIT, LAG, .last_leader = "c" },
	  { REP("a", 300), REP("b", 300), PRI("c", 300) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "failover: tie -> name",
	  { INIT, LAG, .last_leader = "gone" },
	  { REP("c", 300), REP("b", 300), REP("d", 300) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "stale last_leader: its node (the previous primary, now a lagging "
	  "replica) is passed over for the most advanced",
	  { INIT, LAG, .last_leader = "a", .last_leader_recent = true },
	  { PRI("a", 299), REP("b", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  "b is the most advanced" },
	{ "failover: sysid mismatch excluded",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, OTHER, 900, 1, false, 0 },
	    REP("b", 100) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: empty sysid excluded",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, "", 900, 1, false, 0 },
	    REP("b", 100) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: nofailover excluded",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, 1, true, 0 },
	    REP("b", 899) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: priority 0 excluded",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, 0, false, 0 },
	    REP("b", 899) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: negative priority excluded",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, -1, false, 0 },
	    REP("b", 899) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: busy members excluded",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_CLONING, SYS, 900, 1, false, 0 },
	    { "b", HA_ROLE_REPLICA, HA_ST_REWINDING, SYS, 900, 1, false, 0 },
	    { "c", HA_ROLE_REPLICA, HA_ST_REFUSED, SYS, 900, 1, false, 0 },
	    { "d", HA_ROLE_REPLICA, HA_ST_INITIALIZING, SYS, 900, 1, false, 0 },
	    REP("e", 899) },
	  5,
	  HA_ACT_SET_CANDIDATE,
	  "e",
	  "failover",
	  NULL },
	{ "failover: uninitialized never chosen",
	  { INIT, LAG },
	  { UNI("a"),
	    { "b", HA_ROLE_UNINITIALIZED, HA_ST_WAITING, SYS, 900, 1,
	      false, 0 },
	    { "c", HA_ROLE_UNKNOWN, HA_ST_RUNNING, SYS, 900, 1, false, 0 },
	    REP("d", 100) },
	  4,
	  HA_ACT_SET_CANDIDATE,
	  "d",
	  "failover",
	  NULL },
	{ "failover: only uninitialized members",
	  { INIT, LAG },
	  { UNI("a"), UNI("b") },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "no eligible member" },
	{ "failover: lag beyond maximum_lag against last_primary_lsn",
	  { INIT, .maximum_lag = 1000, .candidate_timeout_ms = 1,
	    .last_primary_lsn = 10000 },
	  { REP("a", 8999), REP("b", 9000) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: lag exactly maximum_lag is allowed",
	  { INIT, .maximum_lag = 1000, .candidate_timeout_ms = 1,
	    .last_primary_lsn = 10000 },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 9000, 1, false, 0 } },
	  1,
	  HA_ACT_SET_CANDIDATE,
	  "a",
	  "failover",
	  NULL },
	{ "failover: all lag beyond maximum_lag",
	  { INIT, .maximum_lag = 1000, .candidate_timeout_ms = 1,
	    .last_primary_lsn = 10000 },
	  { REP("a", 8999), REP("b", 5000), UNI("c") },
	  3,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "2 excluded" },
	{ "failover: lag measured against the most advanced member",
	  { INIT, .maximum_lag = 1000, .candidate_timeout_ms = 1,
	    .last_primary_lsn = 100 },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 50000, 1, true, 0 },
	    REP("b", 48999), REP("c", 49000) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "failover: lag reference ignores another cluster's LSNs",
	  { INIT, .maximum_lag = 1000, .candidate_timeout_ms = 1 },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, OTHER, 90000, 1,
	      false, 0 },
	    REP("b", 500) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: maximum_lag 0 -> only the most advanced",
	  { INIT, .maximum_lag = 0, .candidate_timeout_ms = 1 },
	  { REP("a", 300), REP("b", 299) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "a",
	  "failover",
	  NULL },
	{ "failover: maximum_lag 0 and the best is nofailover",
	  { INIT, .maximum_lag = 0, .candidate_timeout_ms = 1 },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, true, 0 },
	    REP("b", 299) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "2 excluded" },
	{ "failover: huge LSNs, no overflow",
	  { INIT, .maximum_lag = 10, .candidate_timeout_ms = 1,
	    .last_primary_lsn = INT64_MAX },
	  { REP("a", INT64_MAX - 10), REP("b", INT64_MAX - 11), REP("c", 0) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "a",
	  "failover",
	  NULL },
	{ "failover: all excluded -> none, with the count",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, 1, true, 0 },
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 800, 0, false, 0 },
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, OTHER, 900, 1, false, 0 },
	    { "d", HA_ROLE_REPLICA, HA_ST_CLONING, SYS, 900, 1, false, 0 } },
	  4,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "2 excluded" },
	{ "failover: no members",
	  { INIT, LAG, .last_primary_lsn = 5 },
	  { { 0 } },
	  0,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "0 excluded" },
	{ "failover: a crashed old primary (gave up its lease) is passed over",
	  { INIT, LAG, .last_leader = "a", .last_primary_lsn = 700 },
	  { { "a", HA_ROLE_PRIMARY, HA_ST_CRASHED, SYS, 700, 1, false, 0 },
	    REP("b", 700), REP("c", 650) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: six members",
	  { INIT, LAG, .last_leader = "gone", .last_primary_lsn = 1000 },
	  { REP("a", 1000), REP("b", 990),
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 1000, 3, false, 0 },
	    { "d", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 1200, 1, true, 0 },
	    { "e", HA_ROLE_REPLICA, HA_ST_STREAMING, OTHER, 5000, 9, false, 0 },
	    PRI("f", 1000) },
	  6,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	/* ---- the last leader (docs/architecture.md, "Choosing the new
	 * primary", rules 7, 8.2, 9.4) ------------------------------------ */
	{ "stale last_leader: a lagging replica is not promoted (async)",
	  { INIT, LAG, .last_leader = "a", .last_leader_recent = true },
	  { REP("a", 100), REP("b", 300), REP("c", 200) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  "b is the most advanced" },
	{ "last leader holding the most WAL leads again over a higher "
	  "priority",
	  { INIT, LAG, .last_leader = "a", .last_leader_recent = true },
	  { PRI("a", 300),
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 5, false, 0 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "a",
	  "failover",
	  "a led last" },
	{ "last leader ahead of everyone but the record is old: it is not "
	  "recent, ranking applies",
	  { INIT, LAG, .last_leader = "a" },
	  { PRI("a", 300),
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 5, false, 0 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  "most advanced" },
	{ "last leader behind a nofailover member: no shortcut, ranking "
	  "(priority) applies",
	  { INIT, LAG, .last_leader = "a", .last_leader_recent = true },
	  { REP("a", 300),
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 2, false, 0 },
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 400, 1, true, 0 } },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "last leader with the most WAL but tagged nofailover",
	  { INIT, LAG, .last_leader = "a", .last_leader_recent = true },
	  { { "a", HA_ROLE_PRIMARY, HA_ST_RUNNING, SYS, 500, 1, true, 0 },
	    REP("b", 400) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "last leader on an older timeline is not named, whatever its LSN",
	  { INIT, LAG, .last_leader = "a", .last_leader_recent = true },
	  { { "a", HA_ROLE_PRIMARY, HA_ST_STOPPED, SYS, 900, 1, false, 1 },
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, false, 2 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "waiting for the last leader to report after a Raft leader change",
	  { INIT, LAG, .last_leader = "a", .last_leader_pending = true },
	  { PRI("a", 100), REP("b", 300) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "waiting for the last leader" },
	{ "last leader pending but reported: it leads if it holds the most",
	  { INIT, LAG, .last_leader = "a", .last_leader_pending = true,
	    .last_leader_recent = true },
	  { PRI("a", 300), REP("b", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "a",
	  "failover",
	  NULL },

	/* ---- timelines (terms, rule 8) --------------------------------- */
	{ "failover: a member on an older timeline is not promoted, whatever "
	  "its LSN",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, 1, false, 1 },
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, false, 2 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: an older timeline's LSN is not the lag reference",
	  { INIT, .maximum_lag = 100, .candidate_timeout_ms = 1 },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 90000, 1, false,
	      3 },
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, false, 4 },
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 250, 2, false, 4 } },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "failover: only old-timeline members besides a nofailover one",
	  { INIT, LAG },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, 1, false, 1 },
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, true, 2 } },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "2 excluded by nofailover, timeline or lag" },

	/* ---- manual failover, asynchronous (rules 2, 8.1) -------------- */
	{ "manual failover to an eligible node, whatever its lag",
	  { INIT, .maximum_lag = 100, .candidate_timeout_ms = 1,
	    .has_failover = true, .failover_to = "b" },
	  { REP("a", 9000), REP("b", 100) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "manual",
	  "manual failover to b" },
	{ "manual failover beats the last leader",
	  { INIT, LAG, .has_failover = true, .failover_to = "b",
	    .last_leader = "a", .last_leader_recent = true },
	  { PRI("a", 9000), REP("b", 8000) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "manual",
	  NULL },
	{ "manual failover does not wait for the last leader",
	  { INIT, LAG, .has_failover = true, .failover_to = "b",
	    .last_leader = "a", .last_leader_pending = true },
	  { PRI("a", 100), REP("b", 100) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "manual",
	  NULL },
	{ "manual failover to a nofailover node is refused",
	  { INIT, LAG, .has_failover = true, .failover_to = "b" },
	  { REP("a", 100),
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 100, 1, true, 0 } },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "refused: it is tagged nofailover" },
	{ "manual failover to a priority-0 node is refused",
	  { INIT, LAG, .has_failover = true, .failover_to = "b" },
	  { REP("a", 100),
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 100, 0, false, 0 } },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "nofailover" },
	{ "manual failover to a node that does not report is refused",
	  { INIT, LAG, .has_failover = true, .failover_to = "zz" },
	  { REP("a", 100) },
	  1,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "it does not report" },
	{ "manual failover to another cluster's data is refused",
	  { INIT, LAG, .has_failover = true, .failover_to = "b" },
	  { REP("a", 100),
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, OTHER, 900, 1, false,
	      0 } },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "no data of this cluster" },
	{ "manual failover to an empty node is refused",
	  { INIT, LAG, .has_failover = true, .failover_to = "b" },
	  { REP("a", 100), UNI("b") },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "no data of this cluster" },
	{ "manual failover to a busy node is refused",
	  { INIT, LAG, .has_failover = true, .failover_to = "b" },
	  { REP("a", 100),
	    { "b", HA_ROLE_REPLICA, HA_ST_REWINDING, SYS, 900, 1, false, 0 } },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "busy" },
	{ "manual failover to a node on an older timeline is refused",
	  { INIT, LAG, .has_failover = true, .failover_to = "b" },
	  { { "a", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 100, 1, false, 3 },
	    { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, 1, false,
	      2 } },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "older timeline" },
	{ "manual failover done: the target holds the leader key",
	  { INIT, LAG, .has_leader = true, .leader = "b",
	    .has_failover = true, .failover_to = "b" },
	  { REP("a", 100), PRI("b", 100) },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "manual failover to b done" },
	{ "manual failover done, candidate key still there: cleared first",
	  { INIT, LAG, .has_leader = true, .leader = "b",
	    .has_failover = true, .failover_to = "b", .has_candidate = true,
	    .candidate = "b" },
	  { REP("a", 100), PRI("b", 100) },
	  2,
	  HA_ACT_CLEAR_CANDIDATE,
	  NULL,
	  NULL,
	  "b holds the leader key" },
	{ "switchover pending (a running primary): the controller does "
	  "nothing, the primary's agent hands over",
	  { INIT, LAG, .has_leader = true, .leader = "a",
	    .has_failover = true, .failover_to = "b" },
	  { PRI("a", 100), REP("b", 100) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "leader present" },
	{ "manual failover waits for a standing candidate",
	  { INIT, LAG, .has_failover = true, .failover_to = "b",
	    .has_candidate = true, .candidate = "a", .candidate_age_ms = 5 },
	  { REP("a", 100), REP("b", 100) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "waiting for the candidate" },

	/* ---- synchronous mode (rule 9) --------------------------------- */
	{ "stale last_leader outside the published set is not promoted (sync)",
	  { INIT, LAG, SYNC(1, 1, "c"), .last_leader = "a",
	    .last_leader_recent = true },
	  { REP("a", 100), REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  "synchronous standby c" },
	{ "stale last_leader outside the published set, even holding more WAL",
	  { INIT, LAG, SYNC(1, 1, "c"), .last_leader = "a",
	    .last_leader_recent = true },
	  { REP("a", 400), REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "stale last_leader in the set but behind another standby (sync)",
	  { INIT, LAG, SYNC(1, 2, "a", "c"), .last_leader = "a",
	    .last_leader_recent = true },
	  { REP("a", 100), REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "last leader in the set at the top wins over priority (sync)",
	  { INIT, LAG, SYNC(1, 2, "a", "c"), .last_leader = "a",
	    .last_leader_recent = true },
	  { REP("a", 300),
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 5, false, 0 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "a",
	  "failover",
	  "a led last" },
	{ "quorum sync: ANY 1 of 2, both heard, the most advanced",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { REP("b", 200), REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  "2 of 2 standbys heard" },
	{ "quorum sync: the most advanced wins over priority",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 200, 9, false, 0 },
	    REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "quorum sync: a tie at the top goes by priority",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { REP("b", 300),
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 2, false, 0 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "quorum sync: one of two heard is not enough",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { REP("b", 300), REP("x", 900) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "heard from 1 of 2 synchronous standbys, need 2" },
	{ "quorum sync: ANY 2 of 3, two heard suffice",
	  { INIT, LAG, SYNC(2, 3, "b", "c", "d") },
	  { REP("b", 200), REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "quorum sync: ANY 1 of 3, two heard are not enough",
	  { INIT, LAG, SYNC(1, 3, "b", "c", "d") },
	  { REP("b", 200), REP("c", 300) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "need 3" },
	{ "sync: a member outside the set is never promoted, whatever its WAL",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { REP("b", 200), REP("c", 200), REP("d", 900) },
	  3,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  NULL },
	{ "sync: an empty published set allows no automatic failover",
	  { INIT, LAG, SYNC_EMPTY(1) },
	  { REP("b", 300) },
	  1,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "heard from 0 of 0" },
	{ "sync: k = 0 allows no automatic failover",
	  { INIT, LAG, SYNC(0, 1, "b") },
	  { REP("b", 300) },
	  1,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  NULL },
	{ "sync: the most advanced standby is nofailover: nobody",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, true, 0 },
	    REP("c", 200) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "b may not lead" },
	{ "sync: a busy standby is not heard",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { { "b", HA_ROLE_REPLICA, HA_ST_REWINDING, SYS, 300, 1, false, 0 },
	    REP("c", 200) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "heard from 1 of 2" },
	{ "sync: a standby with another cluster's data is not heard",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, OTHER, 300, 1, false, 0 },
	    REP("c", 200) },
	  2,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "heard from 1 of 2" },
	{ "sync: the lag limit does not apply (the set holds every commit)",
	  { INIT, .maximum_lag = 10, .candidate_timeout_ms = 1,
	    .last_primary_lsn = 90000, SYNC(1, 2, "b", "c") },
	  { REP("b", 200), REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "sync: an older timeline's LSN is behind a newer one",
	  { INIT, LAG, SYNC(1, 2, "b", "c") },
	  { { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 900, 1, false, 1 },
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, false, 2 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "failover",
	  NULL },
	{ "sync: set entries are slot names (lower case, [a-z0-9_])",
	  { INIT, LAG, SYNC(1, 1, "node_b") },
	  { REP("Node-B", 300), REP("node_c", 900) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "Node-B",
	  "failover",
	  NULL },
	{ "strict sync with a witness: the witness is not listed, the one "
	  "standby suffices",
	  { INIT, LAG, SYNC(1, 1, "b") },
	  { REP("b", 300) },
	  1,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "failover",
	  "1 of 1 standbys heard" },
	{ "strict sync with a witness wrongly listed: n-k+1 unreachable",
	  { INIT, LAG, SYNC(1, 2, "b", "witness") },
	  { REP("b", 300) },
	  1,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "need 2" },
	{ "sync: waiting for the last leader applies too",
	  { INIT, LAG, SYNC(1, 2, "b", "c"), .last_leader = "a",
	    .last_leader_pending = true },
	  { PRI("a", 300), REP("b", 300), REP("c", 300) },
	  3,
	  HA_ACT_NONE,
	  NULL,
	  NULL,
	  "waiting for the last leader" },
	{ "sync: manual failover to the most advanced published standby",
	  { INIT, LAG, SYNC(1, 2, "b", "c"), .has_failover = true,
	    .failover_to = "c" },
	  { REP("b", 200), REP("c", 300) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "c",
	  "manual",
	  "manual failover to synchronous standby c" },
	{ "sync: manual failover to a tie at the top",
	  { INIT, LAG, SYNC(1, 2, "b", "c"), .has_failover = true,
	    .failover_to = "b" },
	  { REP("b", 300),
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 5, false, 0 } },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "manual",
	  NULL },
	{ "sync: manual failover to a standby behind is refused",
	  { INIT, LAG, SYNC(1, 2, "b", "c"), .has_failover = true,
	    .failover_to = "b" },
	  { REP("b", 200), REP("c", 300) },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "may lack acknowledged commits" },
	{ "sync: manual failover to a node outside the set is refused",
	  { INIT, LAG, SYNC(1, 2, "b", "c"), .has_failover = true,
	    .failover_to = "d" },
	  { REP("b", 200), REP("c", 300), REP("d", 900) },
	  3,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "may lack acknowledged commits" },
	{ "sync: manual failover to a nofailover top standby is refused",
	  { INIT, LAG, SYNC(1, 2, "b", "c"), .has_failover = true,
	    .failover_to = "c" },
	  { REP("b", 200),
	    { "c", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, true, 0 } },
	  2,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "nofailover" },
	{ "sync: manual failover with too few standbys heard is refused",
	  { INIT, LAG, SYNC(1, 2, "b", "c"), .has_failover = true,
	    .failover_to = "b" },
	  { REP("b", 300) },
	  1,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "refused: synchronous mode: heard from 1 of 2" },
	{ "sync: empty set, the operator's manual failover is carried out "
	  "with a warning",
	  { INIT, LAG, SYNC_EMPTY(1), .has_failover = true,
	    .failover_to = "b" },
	  { REP("b", 300), REP("c", 400) },
	  2,
	  HA_ACT_SET_CANDIDATE,
	  "b",
	  "manual",
	  "may be lost" },
	{ "sync: empty set, manual failover to a nofailover node is refused",
	  { INIT, LAG, SYNC_EMPTY(1), .has_failover = true,
	    .failover_to = "b" },
	  { { "b", HA_ROLE_REPLICA, HA_ST_STREAMING, SYS, 300, 1, true, 0 } },
	  1,
	  HA_ACT_DROP_FAILOVER,
	  NULL,
	  NULL,
	  "heard from 0 of 0" },
};

static void to_member(const struct mspec *s, struct ha_member *m)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", s->name);
	m->role = s->role;
	m->state = s->state;
	snprintf(m->sysid, sizeof m->sysid, "%s", s->sysid ? s->sysid : "");
	/* a replica's LSN is its received LSN, a primary's the current one;
	 * the others stay lower so ha_member_lsn() picks these */
	if (s->role == HA_ROLE_PRIMARY) {
		m->lsn_current = s->lsn;
	} else {
		m->lsn_received = s->lsn;
		m->lsn_replayed = s->lsn / 2;
	}
	m->timeline = s->tl;
	m->lag_bytes = -1;
	m->tags.failover_priority = s->prio;
	m->tags.nofailover = s->nofailover;
	snprintf(m->detail, sizeof m->detail, "%s",
		 s->state == HA_ST_REFUSED ? "sysid mismatch" : "");
}

/* decide, and check that ha_decide() is pure: the input is untouched and
 * a second call gives the same answer */
static void decide(const struct ha_view *v, struct ha_action *out)
{
	struct ha_view before;
	memcpy(&before, v, sizeof before);
	struct ha_member copy[MAXM + 2];
	size_t n = v->nmembers < MAXM + 2 ? v->nmembers : MAXM + 2;
	if (n)
		memcpy(copy, v->members, n * sizeof copy[0]);
	memset(out, 0x77, sizeof *out);
	ha_decide(v, out);
	assert_memory_equal(&before, v, sizeof before);
	if (n)
		assert_memory_equal(copy, v->members, n * sizeof copy[0]);
	struct ha_action again;
	ha_decide(v, &again);
	assert_int_equal(again.kind, out->kind);
	assert_string_equal(again.name, out->name);
	assert_ptr_equal(again.reason, out->reason);
	assert_string_equal(again.why, out->why);
	/* why is always a terminated string, name too */
	assert_non_null(memchr(out->why, '\0', sizeof out->why));
	assert_non_null(memchr(out->name, '\0', sizeof out->name));
}

static void check_scenario(const struct scenario *s,
			   const struct ha_member *ms, size_t n,
			   const char *perm)
{
	struct ha_view v = s->v;
	v.members = n ? ms : NULL;
	v.nmembers = n;
	struct ha_action a;
	decide(&v, &a);
	if (a.kind != s->kind ||
	    (s->kind == HA_ACT_SET_CANDIDATE &&
	     (strcmp(a.name, s->name) != 0 || !a.reason ||
	      strcmp(a.reason, s->reason) != 0)) ||
	    (s->why && !strstr(a.why, s->why))) {
		print_error("scenario \"%s\" (order %s): got kind=%d name=%s "
			    "reason=%s why=\"%s\"; want kind=%d name=%s "
			    "reason=%s why~\"%s\"\n",
			    s->label, perm, a.kind, a.name,
			    a.reason ? a.reason : "(null)", a.why, s->kind,
			    s->name ? s->name : "", s->reason ? s->reason : "",
			    s->why ? s->why : "");
		fail();
	}
	if (s->kind != HA_ACT_SET_CANDIDATE) {
		assert_string_equal(a.name, "");
		assert_null(a.reason);
	}
	assert_true(a.why[0] != '\0');
}

/* next lexicographic permutation of idx[0..n); false after the last */
static bool next_perm(size_t *idx, size_t n)
{
	if (n < 2)
		return false;
	size_t i = n - 1;
	while (i > 0 && idx[i - 1] >= idx[i])
		i--;
	if (i == 0)
		return false;
	size_t j = n - 1;
	while (idx[j] <= idx[i - 1])
		j--;
	size_t t = idx[i - 1];
	idx[i - 1] = idx[j];
	idx[j] = t;
	for (size_t a = i, b = n - 1; a < b; a++, b--) {
		t = idx[a];
		idx[a] = idx[b];
		idx[b] = t;
	}
	return true;
}

static void test_decide_scenarios(void **state)
{
	(void)state;
	size_t nscen = sizeof scenarios / sizeof scenarios[0];
	size_t runs = 0;
	for (size_t k = 0; k < nscen; k++) {
		const struct scenario *s = &scenarios[k];
		assert_true(s->n <= MAXM);
		struct ha_member base[MAXM];
		for (size_t i = 0; i < s->n; i++)
			to_member(&s->m[i], &base[i]);
		/* every order of the member records: all of them (720 at
		 * most for six members, cheap) */
		size_t idx[MAXM];
		for (size_t i = 0; i < s->n; i++)
			idx[i] = i;
		do {
			struct ha_member ms[MAXM];
			char perm[MAXM * 8 + 1] = "";
			size_t off = 0;
			for (size_t i = 0; i < s->n; i++) {
				ms[i] = base[idx[i]];
				/* "name," each, cut to the buffer */
				int w = snprintf(perm + off, sizeof perm - off,
						 "%.6s,", ms[i].name);
				if (w > 0 && off + (size_t)w < sizeof perm)
					off += (size_t)w;
			}
			check_scenario(s, ms, s->n, perm);
			runs++;
		} while (next_perm(idx, s->n));
	}
	assert_true(runs > nscen);
}

/* LSN from a member's record, whichever of the three fields carries it */
static void test_decide_uses_best_of_three_lsns(void **state)
{
	(void)state;
	for (int which = 0; which < 3; which++) {
		struct ha_member ms[2];
		struct mspec a = REP("a", 100), b = REP("b", 0);
		to_member(&a, &ms[0]);
		to_member(&b, &ms[1]);
		ms[1].lsn_received = ms[1].lsn_replayed = 0;
		if (which == 0)
			ms[1].lsn_current = 101;
		else if (which == 1)
			ms[1].lsn_received = 101;
		else
			ms[1].lsn_replayed = 101;
		struct ha_view v = { INIT, LAG };
		v.members = ms;
		v.nmembers = 2;
		struct ha_action act;
		decide(&v, &act);
		assert_int_equal(act.kind, HA_ACT_SET_CANDIDATE);
		assert_string_equal(act.name, "b");
		assert_string_equal(act.reason, "failover");
	}
}

/* The reason strings are static and exactly the documented ones. */
static void test_decide_reason_strings(void **state)
{
	(void)state;
	struct mspec sp[] = { UNI("a"), REP("b", 5) };
	struct ha_member ms[2];
	to_member(&sp[0], &ms[0]);
	to_member(&sp[1], &ms[1]);
	struct ha_view v = { LAG };
	struct ha_action act;
	v.members = ms;
	v.nmembers = 1;
	decide(&v, &act);
	assert_string_equal(act.reason, "bootstrap");
	v.nmembers = 2;
	decide(&v, &act);
	assert_string_equal(act.reason, "existing_data");
	v.initialized = true;
	snprintf(v.sysid, sizeof v.sysid, "%s", SYS);
	decide(&v, &act);
	assert_string_equal(act.reason, "failover");
	assert_string_equal(act.name, "b");
}

/* Long names and details do not overflow the action. */
static void test_decide_long_strings(void **state)
{
	(void)state;
	struct ha_member ms[2];
	struct mspec sp = REP("x", 5);
	to_member(&sp, &ms[0]);
	memset(ms[0].name, 'n', HA_NAME_MAX);
	ms[0].name[HA_NAME_MAX] = '\0';
	ms[0].state = HA_ST_REFUSED;
	memset(ms[0].detail, 'd', sizeof ms[0].detail - 1);
	ms[0].detail[sizeof ms[0].detail - 1] = '\0';
	struct ha_view v = { INIT, LAG };
	v.members = ms;
	v.nmembers = 1;
	v.has_candidate = true;
	memcpy(v.candidate, ms[0].name, sizeof v.candidate);
	struct ha_action act;
	decide(&v, &act);
	assert_int_equal(act.kind, HA_ACT_CLEAR_CANDIDATE);
	assert_true(strlen(act.why) < sizeof act.why);
	/* SET with a 63-byte name */
	ms[0].state = HA_ST_STREAMING;
	v.has_candidate = false;
	decide(&v, &act);
	assert_int_equal(act.kind, HA_ACT_SET_CANDIDATE);
	assert_string_equal(act.name, ms[0].name);
	/* leader key with a long name and a candidate */
	v.has_leader = true;
	memcpy(v.leader, ms[0].name, sizeof v.leader);
	v.has_candidate = true;
	decide(&v, &act);
	assert_int_equal(act.kind, HA_ACT_CLEAR_CANDIDATE);
}

/* ------------------------------------------------------------------ */
/* ha_decide: an oracle from the rules, compared over random views      */
/* ------------------------------------------------------------------ */

/* The oracle below is written from docs/architecture.md, "Choosing the
 * new primary" (rule numbers in the comments), not from ha_decide.c: it
 * filters the members by each rule into a set, sorts that set by rule 6
 * with qsort, and takes the first. */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* Terms */
static bool o_has_data(const struct ha_member *m)
{
	return (m->role == HA_ROLE_PRIMARY || m->role == HA_ROLE_REPLICA) &&
	       m->sysid[0] != '\0';
}

static bool o_ours(const struct ha_view *v, const struct ha_member *m)
{
	return o_has_data(m) && strcmp(m->sysid, v->sysid) == 0;
}

static bool o_busy(const struct ha_member *m)
{
	switch (m->state) {
	case HA_ST_INITIALIZING:
	case HA_ST_CLONING:
	case HA_ST_REWINDING:
	case HA_ST_REFUSED:
	case HA_ST_CRASHED:
		return true;
	case HA_ST_STOPPED:
	case HA_ST_STARTING:
	case HA_ST_RUNNING:
	case HA_ST_STREAMING:
	case HA_ST_PROMOTING:
	case HA_ST_DEMOTING:
	case HA_ST_WAITING:
		break;
	}
	return !strcmp(m->watchdog.mode, "required") &&
	       !strcmp(m->watchdog.state, "failed");
}

/* rule 5 */
static bool o_may_promote(const struct ha_view *v, const struct ha_member *m)
{
	return o_ours(v, m) && !o_busy(m) && !m->tags.nofailover &&
	       m->tags.failover_priority > 0;
}

static uint64_t o_lsn(const struct ha_member *m)
{
	uint64_t l = m->lsn_current;
	if (m->lsn_received > l)
		l = m->lsn_received;
	if (m->lsn_replayed > l)
		l = m->lsn_replayed;
	return l;
}

/* position: timeline first, then LSN */
static int o_pos_cmp(const struct ha_member *a, const struct ha_member *b)
{
	if (a->timeline != b->timeline)
		return a->timeline < b->timeline ? -1 : 1;
	uint64_t la = o_lsn(a), lb = o_lsn(b);
	return la < lb ? -1 : la > lb;
}

/* rule 6 as a qsort order (first = best) */
static const char *o_last_leader;

static int o_order(const void *pa, const void *pb)
{
	const struct ha_member *a = *(const struct ha_member *const *)pa;
	const struct ha_member *b = *(const struct ha_member *const *)pb;
	int c = o_pos_cmp(b, a);
	if (c)
		return c;
	if (a->tags.failover_priority != b->tags.failover_priority)
		return b->tags.failover_priority > a->tags.failover_priority
			       ? 1
			       : -1;
	int la = !strcmp(a->name, o_last_leader);
	int lb = !strcmp(b->name, o_last_leader);
	if (la != lb)
		return lb - la;
	return strcmp(a->name, b->name);
}

static const struct ha_member *o_first(const struct ha_view *v,
				       const struct ha_member **set, size_t n)
{
	if (n == 0)
		return NULL;
	o_last_leader = v->last_leader;
	qsort(set, n, sizeof set[0], o_order);
	return set[0];
}

static const struct ha_member *o_find(const struct ha_view *v,
				      const char *name)
{
	for (size_t i = 0; i < v->nmembers; i++)
		if (!strcmp(v->members[i].name, name))
			return &v->members[i];
	return NULL;
}

/* a name as a slot name: lower case; anything but a-z, 0-9 becomes _ */
static bool o_in_set(const struct ha_view *v, const struct ha_member *m)
{
	char slot[HA_NAME_MAX + 1];
	size_t i;
	for (i = 0; m->name[i]; i++) {
		char ch = m->name[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		else if (!(ch >= 'a' && ch <= 'z') &&
			 !(ch >= '0' && ch <= '9'))
			ch = '_';
		slot[i] = ch;
	}
	slot[i] = '\0';
	for (size_t j = 0; j < v->nsync; j++)
		if (!strcmp(v->sync_standbys[j], slot))
			return true;
	return false;
}

struct expect {
	enum ha_action_kind kind;
	const char *name;   /* SET */
	const char *reason; /* SET */
};

static struct expect o_set(const struct ha_member *m, const char *reason)
{
	return (struct expect){ HA_ACT_SET_CANDIDATE, m->name, reason };
}

static struct expect o_kind(enum ha_action_kind k)
{
	return (struct expect){ k, NULL, NULL };
}

static struct expect oracle(const struct ha_view *v)
{
	const struct ha_member *set[MAXM];
	size_t n = 0;
	/* 1 */
	if (v->paused)
		return o_kind(HA_ACT_NONE);
	/* 2 */
	if (v->has_leader) {
		if (v->has_candidate)
			return o_kind(HA_ACT_CLEAR_CANDIDATE);
		if (v->has_failover && !strcmp(v->failover_to, v->leader))
			return o_kind(HA_ACT_DROP_FAILOVER);
		return o_kind(HA_ACT_NONE);
	}
	/* 3 */
	if (v->has_candidate) {
		const struct ha_member *c = o_find(v, v->candidate);
		bool failed_wd = c && !strcmp(c->watchdog.mode, "required") &&
				 !strcmp(c->watchdog.state, "failed");
		if (!c || c->state == HA_ST_REFUSED || failed_wd ||
		    v->candidate_age_ms > v->candidate_timeout_ms)
			return o_kind(HA_ACT_CLEAR_CANDIDATE);
		return o_kind(HA_ACT_NONE);
	}
	/* 4 */
	if (!v->initialized) {
		for (size_t i = 0; i < v->nmembers; i++) {
			const struct ha_member *m = &v->members[i];
			if (o_has_data(m) && !o_busy(m) && !m->tags.nofailover)
				set[n++] = m;
		}
		if (n)
			return o_set(o_first(v, set, n), "existing_data");
		const struct ha_member *e = NULL;
		for (size_t i = 0; i < v->nmembers; i++) {
			const struct ha_member *m = &v->members[i];
			if (m->role == HA_ROLE_UNINITIALIZED && !o_busy(m) &&
			    !m->tags.nofailover &&
			    (!e || strcmp(m->name, e->name) < 0))
				e = m;
		}
		return e ? o_set(e, "bootstrap") : o_kind(HA_ACT_NONE);
	}
	/* 7 */
	const struct ha_member *ll = v->last_leader[0]
					     ? o_find(v, v->last_leader)
					     : NULL;
	if (v->last_leader_pending && !v->last_leader_recent &&
	    !v->has_failover)
		return o_kind(HA_ACT_NONE);
	bool ll_back = ll && v->last_leader_recent && o_may_promote(v, ll);
	const struct ha_member *fo = v->has_failover
					     ? o_find(v, v->failover_to)
					     : NULL;

	if (v->sync_active) {
		/* 9 */
		const struct ha_member *top = NULL;
		size_t heard = 0;
		for (size_t i = 0; i < v->nmembers; i++) {
			const struct ha_member *m = &v->members[i];
			if (!o_ours(v, m) || !o_in_set(v, m) || o_busy(m))
				continue;
			heard++;
			if (!top || o_pos_cmp(m, top) > 0)
				top = m;
		}
		size_t need = v->nsync + 1 > v->sync_k
				      ? v->nsync + 1 - v->sync_k
				      : 1;
		if (v->nsync == 0 || v->sync_k == 0) { /* 9.1 */
			if (v->has_failover && fo && o_may_promote(v, fo))
				return o_set(fo, "manual");
			return o_kind(v->has_failover ? HA_ACT_DROP_FAILOVER
						      : HA_ACT_NONE);
		}
		if (heard < need) /* 9.2 */
			return o_kind(v->has_failover ? HA_ACT_DROP_FAILOVER
						      : HA_ACT_NONE);
		/* heard members at top that may be promoted */
		for (size_t i = 0; i < v->nmembers; i++) {
			const struct ha_member *m = &v->members[i];
			if (o_in_set(v, m) && o_may_promote(v, m) &&
			    o_pos_cmp(m, top) == 0)
				set[n++] = m;
		}
		bool fo_ok = false, ll_ok = false;
		for (size_t i = 0; i < n; i++) {
			fo_ok |= set[i] == fo;
			ll_ok |= ll_back && set[i] == ll;
		}
		if (v->has_failover) /* 9.3 */
			return fo_ok ? o_set(fo, "manual")
				     : o_kind(HA_ACT_DROP_FAILOVER);
		if (ll_ok) /* 9.4 */
			return o_set(ll, "failover");
		return n ? o_set(o_first(v, set, n), "failover") /* 9.5 */
			 : o_kind(HA_ACT_NONE);
	}

	/* 8 */
	const struct ha_member *top = NULL;
	for (size_t i = 0; i < v->nmembers; i++)
		if (o_ours(v, &v->members[i]) &&
		    (!top || o_pos_cmp(&v->members[i], top) > 0))
			top = &v->members[i];
	if (v->has_failover) { /* 8.1 */
		if (fo && o_may_promote(v, fo) && fo->timeline >= top->timeline)
			return o_set(fo, "manual");
		return o_kind(HA_ACT_DROP_FAILOVER);
	}
	if (ll_back && o_pos_cmp(ll, top) == 0) /* 8.2 */
		return o_set(ll, "failover");
	uint64_t ref = v->last_primary_lsn;
	if (top && o_lsn(top) > ref)
		ref = o_lsn(top);
	for (size_t i = 0; i < v->nmembers; i++) { /* 8.3 */
		const struct ha_member *m = &v->members[i];
		if (o_may_promote(v, m) && m->timeline == top->timeline &&
		    (o_lsn(m) >= ref || ref - o_lsn(m) <= v->maximum_lag))
			set[n++] = m;
	}
	return n ? o_set(o_first(v, set, n), "failover")
		 : o_kind(HA_ACT_NONE);
}

/* A random view: few names (so that candidate, leader, last leader and
 * failover target often name members), values at the rules' edges. */
static void random_view(struct ha_view *v, struct ha_member *ms, size_t *n)
{
	static const char *const sysids[] = { SYS, SYS, SYS, OTHER, "" };
	static const uint64_t lsns[] = { 0,    100,  100,       200,
					 1000, 1100, 1u << 30, INT64_MAX };
	static const uint64_t lags[] = { 0, 100, 1000, UINT64_MAX };
	static const int prios[] = { 1, 1, 1, 2, 3, 0, -1 };
	static const char *const names[] = { "m0", "m1", "M2", "m-3", "m4",
					     "m5" };
	memset(v, 0, sizeof *v);
	*n = rnd_below(MAXM + 1);
	size_t order[MAXM];
	for (size_t i = 0; i < MAXM; i++)
		order[i] = i;
	for (size_t i = MAXM - 1; i > 0; i--) {
		size_t j = rnd_below((unsigned)i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < *n; i++) {
		struct ha_member *m = &ms[i];
		memset(m, 0, sizeof *m);
		snprintf(m->name, sizeof m->name, "%s", names[order[i]]);
		m->role = (enum ha_role)rnd_below(NROLES);
		m->state = (enum ha_state)rnd_below(NSTATES);
		snprintf(m->sysid, sizeof m->sysid, "%s",
			 sysids[rnd_below(5)]);
		m->timeline = rnd_below(4) ? 2 : rnd_below(4);
		uint64_t l = lsns[rnd_below(8)];
		switch (rnd_below(3)) {
		case 0:
			m->lsn_current = l;
			break;
		case 1:
			m->lsn_received = l;
			m->lsn_replayed = l / 2;
			break;
		default:
			m->lsn_replayed = l;
			break;
		}
		m->lag_bytes = -1;
		m->tags.failover_priority = prios[rnd_below(7)];
		m->tags.nofailover = rnd_below(5) == 0;
		if (rnd_below(8) == 0) {
			snprintf(m->watchdog.mode, sizeof m->watchdog.mode,
				 "%s", rnd_below(2) ? "required" : "automatic");
			snprintf(m->watchdog.state, sizeof m->watchdog.state,
				 "%s", rnd_below(2) ? "failed" : "armed");
		}
	}
	v->paused = rnd_below(20) == 0;
	v->initialized = rnd_below(4) != 0;
	if (v->initialized)
		snprintf(v->sysid, sizeof v->sysid, "%s", SYS);
	v->has_leader = rnd_below(8) == 0;
	if (v->has_leader)
		snprintf(v->leader, sizeof v->leader, "%s",
			 names[rnd_below(MAXM)]);
	v->has_candidate = rnd_below(6) == 0;
	if (v->has_candidate)
		snprintf(v->candidate, sizeof v->candidate, "%s",
			 names[rnd_below(MAXM)]);
	v->candidate_age_ms = rnd_below(3) * 1000;
	v->candidate_timeout_ms = 1000;
	if (rnd_below(3))
		snprintf(v->last_leader, sizeof v->last_leader, "%s",
			 names[rnd_below(MAXM)]);
	v->last_leader_recent = rnd_below(2);
	v->last_leader_pending = rnd_below(6) == 0;
	v->last_primary_lsn = rnd_below(2) ? lsns[rnd_below(8)] : 0;
	v->maximum_lag = lags[rnd_below(4)];
	v->has_failover = rnd_below(3) == 0;
	if (v->has_failover)
		snprintf(v->failover_to, sizeof v->failover_to, "%s",
			 rnd_below(8) ? names[rnd_below(MAXM)] : "nobody");
	if (rnd_below(3) == 0) {
		v->sync_active = true;
		v->sync_k = rnd_below(4);
		v->nsync = rnd_below(4);
		for (size_t i = 0; i < v->nsync; i++) {
			/* slot names of members, or of a witness */
			static const char *const slots[] = { "m0", "m1", "m2",
							     "m_3", "m4", "m5",
							     "witness" };
			snprintf(v->sync_standbys[i], 64, "%s",
				 slots[rnd_below(7)]);
		}
	}
	v->members = ms;
	v->nmembers = *n;
}

static void print_view(const struct ha_view *v)
{
	print_error("view: paused=%d init=%d leader=%d:%s cand=%d:%s "
		    "age=%" PRIu64
		    " last=%s recent=%d pending=%d last_lsn=%" PRIu64
		    " max_lag=%" PRIu64 " failover=%d:%s sync=%d k=%u n=%zu\n",
		    v->paused, v->initialized, v->has_leader, v->leader,
		    v->has_candidate, v->candidate, v->candidate_age_ms,
		    v->last_leader, v->last_leader_recent,
		    v->last_leader_pending, v->last_primary_lsn,
		    v->maximum_lag, v->has_failover, v->failover_to,
		    v->sync_active, v->sync_k, v->nsync);
	for (size_t i = 0; i < v->nsync; i++)
		print_error("  sync[%zu]=%s\n", i, v->sync_standbys[i]);
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct ha_member *m = &v->members[i];
		print_error("  %s role=%s state=%s sysid=%s tl=%u lsn=%" PRIu64
			    " prio=%d nofailover=%d wd=%s/%s\n",
			    m->name, ha_role_name(m->role),
			    ha_state_name(m->state), m->sysid, m->timeline,
			    ha_member_lsn(m), m->tags.failover_priority,
			    m->tags.nofailover, m->watchdog.mode,
			    m->watchdog.state);
	}
}

#define PROPERTY_ITERATIONS 50000

static void test_decide_matches_oracle(void **state)
{
	(void)state;
	/* fixed seed; HA_PROPERTY_SEED=0x... runs another sequence */
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	const char *env = getenv("HA_PROPERTY_SEED");
	if (env && *env)
		seed = strtoull(env, NULL, 0);
	unsigned counts[4] = { 0, 0, 0, 0 };
	unsigned sync_sets = 0, manual = 0;
	for (unsigned iter = 0; iter < PROPERTY_ITERATIONS; iter++) {
		/* each iteration its own seed, so that one can be replayed */
		rng_state = seed + 0x9E3779B97F4A7C15ull * (iter + 1u);
		if (!rng_state)
			rng_state = 1;
		struct ha_member ms[MAXM];
		size_t n;
		struct ha_view v;
		random_view(&v, ms, &n);
		struct ha_action a;
		decide(&v, &a);
		struct expect e = oracle(&v);
		bool same = a.kind == e.kind &&
			    (e.kind != HA_ACT_SET_CANDIDATE ||
			     (!strcmp(a.name, e.name) && a.reason &&
			      !strcmp(a.reason, e.reason)));
		if (!same) {
			print_error("seed=0x%016" PRIx64 " iteration=%u: "
				    "ha_decide kind=%d name=%s reason=%s "
				    "why=\"%s\"; oracle kind=%d name=%s "
				    "reason=%s\n",
				    seed, iter, a.kind, a.name,
				    a.reason ? a.reason : "-", a.why, e.kind,
				    e.name ? e.name : "-",
				    e.reason ? e.reason : "-");
			print_view(&v);
			fail();
		}
		counts[a.kind]++;
		sync_sets += v.sync_active && a.kind == HA_ACT_SET_CANDIDATE;
		manual += a.kind == HA_ACT_SET_CANDIDATE &&
			  !strcmp(a.reason, "manual");
		/* the order of the member records never matters */
		if (n > 1) {
			struct ha_member sh[MAXM];
			memcpy(sh, ms, n * sizeof sh[0]);
			for (size_t i = n - 1; i > 0; i--) {
				size_t j = rnd_below((unsigned)i + 1);
				struct ha_member t = sh[i];
				sh[i] = sh[j];
				sh[j] = t;
			}
			struct ha_view v2 = v;
			v2.members = sh;
			struct ha_action b;
			decide(&v2, &b);
			assert_int_equal(b.kind, a.kind);
			assert_string_equal(b.name, a.name);
			assert_ptr_equal(b.reason, a.reason);
			assert_string_equal(b.why, a.why);
		}
	}
	/* the generator reaches every kind of answer, and the synchronous
	 * and manual branches, often */
	print_message("oracle: %u none, %u set (%u sync, %u manual), %u clear, "
		      "%u drop\n",
		      counts[HA_ACT_NONE], counts[HA_ACT_SET_CANDIDATE],
		      sync_sets, manual, counts[HA_ACT_CLEAR_CANDIDATE],
		      counts[HA_ACT_DROP_FAILOVER]);
	assert_true(counts[HA_ACT_NONE] > 1000);
	assert_true(counts[HA_ACT_SET_CANDIDATE] > 1000);
	assert_true(counts[HA_ACT_CLEAR_CANDIDATE] > 500);
	assert_true(counts[HA_ACT_DROP_FAILOVER] > 500);
	assert_true(sync_sets > 300);
	assert_true(manual > 150);
}

/* ------------------------------------------------------------------ */
/* Controller: the answer to GET /internal/lsn, and the timing          */
/* ------------------------------------------------------------------ */

static int parse_lsn(const char *s, struct ha_lsn_pos *p, char *err)
{
	memset(p, 0x5A, sizeof *p);
	return ha_ctl_parse_lsn(s, strlen(s), p, err, 96);
}

static void test_ctl_parse_lsn(void **state)
{
	(void)state;
	struct ha_lsn_pos p;
	char err[96];
	assert_int_equal(parse_lsn("{\"name\":\"b\",\"in_recovery\":true,"
				   "\"timeline\":3,\"lsn_received\":5000,"
				   "\"lsn_replayed\":4000,\"lsn_current\":0}",
				   &p, err),
			 0);
	assert_int_equal(p.timeline, 3);
	assert_true(p.received == 5000 && p.replayed == 4000);
	/* the largest LSN JSON can carry */
	assert_int_equal(parse_lsn("{\"in_recovery\":true,\"lsn_received\":"
				   "9223372036854775807,\"lsn_replayed\":0}",
				   &p, err),
			 0);
	assert_true(p.received == INT64_MAX && p.timeline == 0);
	/* refused: each of these would rank the member by a number it never
	 * reported; a negative one cast to uint64 would win any ranking */
	static const char *const bad[] = {
		"{\"in_recovery\":true,\"lsn_received\":-1,\"lsn_replayed\":0}",
		"{\"in_recovery\":true,\"lsn_received\":0,\"lsn_replayed\":-5}",
		"{\"in_recovery\":true,\"lsn_received\":-9223372036854775808,"
		"\"lsn_replayed\":1}",
		"{\"in_recovery\":true,\"lsn_received\":\"0/3000060\","
		"\"lsn_replayed\":1}",
		"{\"in_recovery\":true,\"lsn_received\":1.5e20,"
		"\"lsn_replayed\":1}",
		"{\"in_recovery\":true,\"lsn_received\":18446744073709551615,"
		"\"lsn_replayed\":1}",
		"{\"in_recovery\":true,\"lsn_replayed\":1}",
		"{\"in_recovery\":true,\"lsn_received\":null,"
		"\"lsn_replayed\":1}",
		"{\"in_recovery\":true,\"lsn_received\":1,\"lsn_replayed\":1,"
		"\"timeline\":-1}",
		"{\"in_recovery\":true,\"lsn_received\":1,\"lsn_replayed\":1,"
		"\"timeline\":4294967296}",
		"{\"in_recovery\":true,\"lsn_received\":1,\"lsn_replayed\":1,"
		"\"timeline\":\"2\"}",
		"{\"in_recovery\":false,\"lsn_received\":1,\"lsn_replayed\":1}",
		"{\"lsn_received\":1,\"lsn_replayed\":1}",
		"[1,2]",
		"",
		"not json",
		"{\"in_recovery\":true,\"lsn_received\":1,\"lsn_replayed\":1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		if (parse_lsn(bad[i], &p, err) != ERR_CORRUPT) {
			print_error("accepted: %s\n", bad[i]);
			fail();
		}
		assert_true(err[0] != '\0');
		assert_true(p.received == 0 && p.replayed == 0 &&
			    p.timeline == 0);
	}
	assert_int_equal(parse_lsn("{\"in_recovery\":true,\"lsn_received\":-1,"
				   "\"lsn_replayed\":0}",
				   &p, err),
			 ERR_CORRUPT);
	assert_string_equal(err, "negative LSN");
}

/* A refused answer is never applied, so a replica with a negative answer
 * is ranked by its record; and a record with a negative LSN decodes to 0
 * (ha_member.c): neither wins a failover. */
static void test_ctl_negative_lsn_never_wins(void **state)
{
	(void)state;
	struct ha_member ms[2];
	const char *rec_a = "{\"name\":\"a\",\"role\":\"replica\",\"state\":"
			    "\"streaming\",\"sysid\":\"" SYS "\",\"lsn\":"
			    "{\"received\":-1,\"replayed\":-1,\"current\":-7}}";
	const char *rec_b = "{\"name\":\"b\",\"role\":\"replica\",\"state\":"
			    "\"streaming\",\"sysid\":\"" SYS "\",\"lsn\":"
			    "{\"received\":300,\"replayed\":300}}";
	assert_int_equal(ha_member_decode(rec_a, strlen(rec_a), &ms[0]), 0);
	assert_int_equal(ha_member_decode(rec_b, strlen(rec_b), &ms[1]), 0);
	assert_true(ha_member_lsn(&ms[0]) == 0);
	struct ha_lsn_pos p;
	char err[96];
	if (parse_lsn("{\"in_recovery\":true,\"lsn_received\":-2,"
		      "\"lsn_replayed\":-2}",
		      &p, err) == 0)
		ha_ctl_apply_lsn(&ms[0], &p);
	struct ha_view v = { INIT, .maximum_lag = UINT64_MAX,
			     .candidate_timeout_ms = 1 };
	v.members = ms;
	v.nmembers = 2;
	struct ha_action act;
	decide(&v, &act);
	assert_int_equal(act.kind, HA_ACT_SET_CANDIDATE);
	assert_string_equal(act.name, "b");
}

static void test_ctl_apply_lsn(void **state)
{
	(void)state;
	struct ha_member m;
	memset(&m, 0, sizeof m);
	m.timeline = 2;
	m.lsn_received = 500;
	m.lsn_replayed = 400;
	/* same timeline: only grows */
	struct ha_lsn_pos p = { 2, 450, 450 };
	ha_ctl_apply_lsn(&m, &p);
	assert_true(m.lsn_received == 500 && m.lsn_replayed == 450);
	/* no timeline in the answer: only grows */
	p = (struct ha_lsn_pos){ 0, 600, 10 };
	ha_ctl_apply_lsn(&m, &p);
	assert_true(m.timeline == 2 && m.lsn_received == 600 &&
		    m.lsn_replayed == 450);
	/* older timeline than the record: ignored */
	p = (struct ha_lsn_pos){ 1, 9000, 9000 };
	ha_ctl_apply_lsn(&m, &p);
	assert_true(m.timeline == 2 && m.lsn_received == 600);
	/* newer timeline: replaces */
	p = (struct ha_lsn_pos){ 3, 100, 90 };
	ha_ctl_apply_lsn(&m, &p);
	assert_true(m.timeline == 3 && m.lsn_received == 100 &&
		    m.lsn_replayed == 90);
}

static void on_ctl_closed(void *arg)
{
	*(bool *)arg = true;
}

/* A node's configuration with the ini's defaults for what the controller
 * and the [ha] checks read. */
static void test_cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof *c);
	c->cluster_name = "main";
	c->node_name = "node1";
	c->election_timeout_ms = CFG_DEFAULT_ELECTION_MS;
	c->heartbeat_ms = CFG_DEFAULT_HEARTBEAT_MS;
	c->pg.ttl_ms = 2500;
	c->pg.loop_wait_ms = 400;
	c->pg.safety_margin_ms = 300;
	c->pg.maximum_lag_on_failover = 1048576;
	c->pg.synchronous_node_count = 1;
	c->pg.crash_restart_timeout_ms = 5000;
	c->pg.move_raft_leader = true;
	c->pg.wd_mode = CFG_WD_OFF;
	c->pg.wd_timeout_ms = 1000;
}

struct ctl_fixture {
	uv_loop_t loop;
	struct cfg cfg;
	struct ha_ctl *c;
};

static void ctl_open(struct ctl_fixture *f)
{
	assert_int_equal(uv_loop_init(&f->loop), 0);
	struct ha_ctl_options o = { .cluster = "main", .cfg = &f->cfg };
	f->c = NULL;
	assert_int_equal(ha_ctl_new(&f->loop, NULL, NULL, &o, &f->c), 0);
}

static void ctl_close(struct ctl_fixture *f)
{
	bool closed = false;
	ha_ctl_close(f->c, on_ctl_closed, &closed);
	for (int i = 0; i < 100 && !closed; i++)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_true(closed);
	ha_ctl_free(f->c);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* The controller runs with the constants this node's [ha] gives until
 * the store holds the cluster's, and then with the cluster's. */
static void test_ctl_uses_configured_timing(void **state)
{
	(void)state;
	struct ctl_fixture f;
	test_cfg_defaults(&f.cfg);
	f.cfg.pg.ttl_ms = 6000;
	f.cfg.pg.loop_wait_ms = 1000;
	f.cfg.pg.maximum_lag_on_failover = 0; /* explicit 0: kept */
	ctl_open(&f);
	struct ha_ctl_timing want;
	ha_ctl_timing(6000, 1000, 100, &want);
	assert_memory_equal(ha_ctl_timing_of(f.c), &want, sizeof want);
	assert_int_equal(ha_ctl_timing_of(f.c)->candidate_timeout_ms, 24000);
	assert_true(ha_ctl_ha_of(f.c)->maximum_lag_on_failover == 0);

	/* the cluster's [ha] as the first node wrote it */
	struct cfg_ha h;
	cfg_ha_of(&f.cfg, &h);
	h.ttl_ms = 10000;
	h.loop_wait_ms = 2000;
	h.maximum_lag_on_failover = 4096;
	h.move_raft_leader = false;
	char js[1024];
	assert_true(cfg_ha_to_json(&h, js, sizeof js) > 0);
	assert_int_equal(ha_ctl_follow_config(f.c, js), 0);
	ha_ctl_timing(10000, 2000, 100, &want);
	assert_memory_equal(ha_ctl_timing_of(f.c), &want, sizeof want);
	assert_int_equal(ha_ctl_timing_of(f.c)->stale_ms, 10000);
	assert_true(ha_ctl_ha_of(f.c)->maximum_lag_on_failover == 4096);
	assert_false(ha_ctl_ha_of(f.c)->move_raft_leader);

	/* a stored value this node's checks refuse (I1 with its election
	 * timeout) or garbage: the settings in force stay */
	static const char *const bad[] = {
		"{\"ha\":{\"ttl\":\"500ms\"}}",
		"{\"ha\":{\"ttl\":-1}}",
		"{\"ha\":{\"bogus\":\"1\"}}",
		"not json",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(ha_ctl_follow_config(f.c, bad[i]), ERR_INVAL);
		assert_memory_equal(ha_ctl_timing_of(f.c), &want, sizeof want);
		assert_true(ha_ctl_ha_of(f.c)->ttl_ms == 10000);
	}
	ctl_close(&f);
}

/* The controller's constants follow ttl and loop_wait; the defaults give
 * the values used before they were derived. */
static void test_ctl_timing_follows_config(void **state)
{
	(void)state;
	struct ha_ctl_timing t;
	ha_ctl_timing(2500, 400, 100, &t);
	assert_int_equal(t.stale_ms, 2500);
	assert_int_equal(t.candidate_timeout_ms, 10000);
	assert_int_equal(t.lsn_timeout_ms, 300);
	assert_int_equal(t.poll_reuse_ms, 1000);
	assert_int_equal(t.pending_ms, 1500);
	assert_int_equal(t.move_after_ms, 2000);
	assert_int_equal(t.move_retry_ms, 5000);
	assert_int_equal(t.move_check_ms, 1000);
	assert_int_equal(t.write_timeout_ms, 2000);

	/* a longer lease and loop: everything that depends on them grows */
	ha_ctl_timing(6000, 1000, 100, &t);
	assert_int_equal(t.stale_ms, 6000);
	assert_int_equal(t.candidate_timeout_ms, 24000);
	assert_int_equal(t.lsn_timeout_ms, 750);
	assert_int_equal(t.pending_ms, 2100);
	assert_int_equal(t.move_after_ms, 5000);
	assert_int_equal(t.move_retry_ms, 12000);
	assert_int_equal(t.write_timeout_ms, 4800);

	/* the shortest lease the configuration accepts (500 ms, loop_wait
	 * at most ttl/3): a record is never counted stale before the agent
	 * could have written it twice, and the poll keeps a floor */
	ha_ctl_timing(500, 100, 100, &t);
	assert_int_equal(t.stale_ms, 2 * HA_REPORT_INTERVAL_MS);
	assert_int_equal(t.lsn_timeout_ms, 100);
	assert_int_equal(t.candidate_timeout_ms, 2000);
	assert_int_equal(t.move_after_ms, 500);
	assert_int_equal(t.move_retry_ms, 1000);

	/* the orderings the docs rely on, over a range of settings */
	for (unsigned ttl = 500; ttl <= 60000; ttl += 250) {
		for (unsigned loop = 10; loop <= ttl / 3; loop += 97) {
			ha_ctl_timing(ttl, loop, 100, &t);
			/* a live node is never stale between two reports */
			assert_true(t.stale_ms > HA_REPORT_INTERVAL_MS);
			/* the agents' record of a node outlives its lease
			 * only briefly: staleness is at most a lease or two
			 * reports */
			assert_true(t.stale_ms <= ttl ||
				    t.stale_ms == 2 * HA_REPORT_INTERVAL_MS);
			/* waiting for the candidate outlasts a lease */
			assert_true(t.candidate_timeout_ms > t.stale_ms ||
				    ttl < 2 * HA_REPORT_INTERVAL_MS);
			assert_true(t.candidate_timeout_ms > ttl);
			/* the poll costs less than an agent loop (or 100 ms) */
			assert_true(t.lsn_timeout_ms < loop ||
				    t.lsn_timeout_ms == 100);
			/* a decision write ends before a lease could lapse */
			assert_true(t.write_timeout_ms < ttl);
			/* the pending wait covers a report plus a loop */
			assert_true(t.pending_ms >
				    HA_REPORT_INTERVAL_MS + loop);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_round_trip_variants),
		cmocka_unit_test(test_member_round_trip_every_role_state),
		cmocka_unit_test(test_member_role_state_names),
		cmocka_unit_test(test_member_round_trip_extremes),
		cmocka_unit_test(test_member_encode_is_object_with_wire_names),
		cmocka_unit_test(test_member_encode_nomem),
		cmocka_unit_test(test_member_decode_empty_object_defaults),
		cmocka_unit_test(test_member_decode_missing_fields),
		cmocka_unit_test(test_member_decode_unknown_fields_ignored),
		cmocka_unit_test(test_member_decode_wrong_types),
		cmocka_unit_test(test_member_decode_unknown_names_and_ranges),
		cmocka_unit_test(test_member_decode_corrupt),
		cmocka_unit_test(test_member_decode_truncation_keeps_utf8),
		cmocka_unit_test(test_member_encode_any_detail_bytes),
		cmocka_unit_test(test_member_lsn),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_decide_scenarios),
		cmocka_unit_test(test_decide_uses_best_of_three_lsns),
		cmocka_unit_test(test_decide_reason_strings),
		cmocka_unit_test(test_decide_long_strings),
		cmocka_unit_test(test_decide_matches_oracle),
		cmocka_unit_test(test_ctl_parse_lsn),
		cmocka_unit_test(test_ctl_negative_lsn_never_wins),
		cmocka_unit_test(test_ctl_apply_lsn),
		cmocka_unit_test(test_ctl_timing_follows_config),
		cmocka_unit_test(test_ctl_uses_configured_timing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
