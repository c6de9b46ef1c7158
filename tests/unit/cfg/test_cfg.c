/* test_cfg.c - unit tests of the node configuration loader (src/config/cfg.c).
 *
 * Every fixture is written to a mkdtemp() directory by the test itself and
 * removed at the end. Error cases are a table: each one is a whole ini file
 * and the exact message expected after "FILE:" ("@TOKEN@" and "@DIR@" are
 * replaced by the fixture paths in both). Each case runs as its own cmocka
 * test and also checks that a failed load leaves the struct zeroed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/cfg.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "timing.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char ini_path[128];
static char token_path[128];

/* ---- fixtures --------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void fixture_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* Replace @TOKEN@ and @DIR@; the result is malloc'ed. */
static char *subst(const char *s)
{
	size_t cap = strlen(s) * 4 + 256, n = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	while (*s) {
		const char *rep = NULL;
		size_t skip = 0;
		if (strncmp(s, "@TOKEN@", 7) == 0) {
			rep = token_path;
			skip = 7;
		} else if (strncmp(s, "@DIR@", 5) == 0) {
			rep = dir;
			skip = 5;
		}
		if (rep) {
			size_t rl = strlen(rep);
			assert_true(n + rl < cap);
			memcpy(out + n, rep, rl);
			n += rl;
			s += skip;
		} else {
			assert_true(n + 1 < cap);
			out[n++] = *s++;
		}
	}
	out[n] = '\0';
	return out;
}

static void write_ini(const char *text)
{
	char *t = subst(text);
	write_file(ini_path, t, strlen(t));
	free(t);
}

static bool is_zeroed(const struct cfg *c)
{
	static const struct cfg zero;
	return memcmp(c, &zero, sizeof zero) == 0;
}

/* Load text; expect failure with exactly "<ini_path>:<want>". */
static void expect_err(const char *text, const char *want)
{
	struct cfg c;
	char err[512], full[1024];
	char *w = subst(want);
	write_ini(text);
	memset(&c, 0xA5, sizeof c); /* cfg_load must zero it */
	int rc = cfg_load(ini_path, &c, err, sizeof err);
	snprintf(full, sizeof full, "%s:%s", ini_path, w);
	free(w);
	if (rc == 0)
		cfg_free(&c);
	assert_int_equal(rc, ERR_INVAL);
	assert_string_equal(err, full);
	assert_true(is_zeroed(&c));
}

static void expect_ok(const char *text, struct cfg *c)
{
	char err[512] = "";
	write_ini(text);
	int rc = cfg_load(ini_path, c, err, sizeof err);
	if (rc != 0)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/pgw-test-cfg-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	fixture_path(ini_path, sizeof ini_path, "node.ini");
	fixture_path(token_path, sizeof token_path, "token");
	static const char tok[] = "  s3cret-token \n\n";
	write_file(token_path, tok, sizeof tok - 1);
	char path[128], big[4097];
	fixture_path(path, sizeof path, "token_empty");
	write_file(path, "", 0);
	fixture_path(path, sizeof path, "token_blank");
	write_file(path, " \n\t\r\n", 5);
	fixture_path(path, sizeof path, "token_ctrl");
	write_file(path, "abc\ndef\n", 8);
	fixture_path(path, sizeof path, "token_big");
	memset(big, 'a', sizeof big);
	write_file(path, big, sizeof big);
	/* a password file, a script and a script without the x bit */
	fixture_path(path, sizeof path, "pw");
	write_file(path, "\n pa55 word\t\n", 13);
	static const char sh[] = "#!/bin/sh\nexit 0\n";
	fixture_path(path, sizeof path, "script");
	write_file(path, sh, sizeof sh - 1);
	if (chmod(path, 0755) != 0)
		return -1;
	fixture_path(path, sizeof path, "noexec");
	write_file(path, sh, sizeof sh - 1);
	if (chmod(path, 0644) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	mem_fail_after(-1);
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- sections used to build files --------------------------------------
 * CLUSTER 2 lines, NODE 3, RAFT 3, API 3: any order of all four is a valid
 * file of 11 lines, so text appended after it starts at line 12 and lands
 * in the last section. */
#define CLUSTER "[cluster]\nname = main\n"
#define NODE "[node]\nname = node1\ndata_dir = /var/lib/pgwarden\n"
#define PEERS3                                                          \
	"node1=127.0.0.1:7101, node2=127.0.0.1:7102, node3=127.0.0.1:7103"
#define RAFT "[raft]\nlisten = 127.0.0.1:7101\npeers = " PEERS3 "\n"
#define API "[api]\nlisten = 127.0.0.1:8101\ntoken_file = @TOKEN@\n"
#define LAST_C NODE RAFT API CLUSTER
#define LAST_N CLUSTER RAFT API NODE
#define LAST_R CLUSTER NODE API RAFT
#define LAST_A CLUSTER NODE RAFT API
#define NAME_RULE "(allowed: letters, digits, '_', '.', '-', at most 63)"
#define HP_RULE "(expected host:port or [ipv6]:port, port 1..65535)"
#define DUR_RULE(lo, hi)                                                \
	"(expected milliseconds, or a number with unit ms or s, " #lo ".." #hi \
	" ms)"
#define CONT "unexpected continuation line (an indented line continues the " \
	"previous key; start keys in the first column)"
#define SYNTAX "syntax error (expected 'key = value', a [section] header " \
	"or a comment)"
/* [postgresql] with only data_dir: 2 lines, after LAST_A (lines 12-13) */
#define PG "[postgresql]\ndata_dir = /var/lib/postgresql/15/main\n"
#define LAST_P LAST_A PG
#define PGHP_RULE                                                       \
	"(expected host:port, [ipv6]:port or *:port, port 1..65535)"
#define BOOL_RULE "(allowed: true, false, yes, no, on, off, 1, 0)"
#define SIZE_RULE                                                       \
	"(expected bytes, or a whole number with unit kB, MB or GB "     \
	"(1024-based), at most 1EB)"
#define OPT_RULE                                                        \
	"(allowed: SUPERUSER, CREATEDB, CREATEROLE, INHERIT, LOGIN, "    \
	"REPLICATION, BYPASSRLS and their NO... forms)"
#define PARAM_RULE                                                      \
	"(allowed: letters, digits, '_', '.', starting with a letter, at " \
	"most 63)"
#define INITDB_RULE                                                     \
	"(each argument must be a long option starting with '--', e.g. " \
	"--data-checksums)"
#define HBA_TYPE_RULE                                                   \
	"(the first field must be local, host, hostssl, hostnossl, "     \
	"hostgssenc or hostnogssenc)"

struct ecase {
	const char *name;
	const char *text;
	const char *want;
};

static const struct ecase cases[] = {
	/* structure */
	{ "unknown_key", LAST_R "listn = 127.0.0.1:7101\n",
	  "12: unknown key 'listn' in [raft]" },
	{ "unknown_key_other_section", LAST_A "peers = x=a:1\n",
	  "12: unknown key 'peers' in [api]" },
	{ "unknown_section", LAST_R "[rafts]\nlisten = a:1\n",
	  "12: unknown section [rafts]" },
	{ "unknown_section_empty", LAST_R "[tagz]\n",
	  "12: unknown section [tagz]" },
	{ "unknown_section_first", "[bogus]\n" LAST_R,
	  "1: unknown section [bogus]" },
	{ "section_case_matters", "[Cluster]\nname = main\n",
	  "1: unknown section [Cluster]" },
	{ "section_spaces_matter", "[ cluster ]\nname = main\n",
	  "1: unknown section [ cluster ]" },
	{ "duplicate_key", LAST_N "name = node2\n",
	  "12: duplicate key 'name' in [node] (first at line 10)" },
	{ "duplicate_key_same_value", LAST_R "listen = 127.0.0.1:7101\n",
	  "12: duplicate key 'listen' in [raft] (first at line 10)" },
	{ "duplicate_section", LAST_R "[node]\nlog_level = debug\n",
	  "12: duplicate section [node] (first at line 3)" },
	{ "key_outside_section", "name = main\n" LAST_R,
	  "1: key 'name' outside any section" },
	{ "syntax_no_equals", LAST_R "just some words\n", "12: " SYNTAX },
	{ "syntax_comment_hides_equals", LAST_R "listen ; = x\n",
	  "12: " SYNTAX },
	{ "section_no_bracket", LAST_R "[api\n",
	  "12: section header without closing ']'" },
	{ "section_trailing_text", "[cluster] name = main\n",
	  "1: unexpected text after section header" },
	{ "continuation_scalar", LAST_N "log_level = info\n  debug\n",
	  "13: [node] log_level: " CONT },
	{ "indented_key_is_continuation", LAST_N "  log_level = debug\n",
	  "12: [node] data_dir: " CONT },
	{ "indented_section_is_continuation", CLUSTER "  [node]\n",
	  "3: [cluster] name: " CONT },

	/* missing keys: the line of the section header */
	{ "missing_cluster_name", "[cluster]\n" NODE RAFT API,
	  "1: missing required key 'name' in [cluster]" },
	{ "missing_node_name",
	  CLUSTER "[node]\ndata_dir = /var/lib/pgwarden\n" RAFT API,
	  "3: missing required key 'name' in [node]" },
	{ "missing_data_dir", CLUSTER "[node]\nname = node1\n" RAFT API,
	  "3: missing required key 'data_dir' in [node]" },
	{ "missing_raft_listen",
	  CLUSTER NODE "[raft]\npeers = " PEERS3 "\n" API,
	  "6: missing required key 'listen' in [raft]" },
	{ "missing_peers", CLUSTER NODE "[raft]\nlisten = 127.0.0.1:7101\n" API,
	  "6: missing required key 'peers' in [raft]" },
	{ "missing_api_listen",
	  CLUSTER NODE RAFT "[api]\ntoken_file = @TOKEN@\n",
	  "9: missing required key 'listen' in [api]" },
	{ "missing_token_file",
	  CLUSTER NODE RAFT "[api]\nlisten = 127.0.0.1:8101\n",
	  "9: missing required key 'token_file' in [api]" },
	{ "missing_earliest_wins",
	  "[cluster]\n" NODE "[raft]\npeers = " PEERS3 "\n" API,
	  "1: missing required key 'name' in [cluster]" },
	/* missing sections: the last line of the file */
	{ "missing_section_cluster", NODE RAFT API,
	  "9: missing required section [cluster]" },
	{ "missing_section_node", CLUSTER RAFT API,
	  "8: missing required section [node]" },
	{ "missing_section_raft", CLUSTER NODE API,
	  "8: missing required section [raft]" },
	{ "missing_section_api", CLUSTER NODE RAFT "; the end\n\n",
	  "10: missing required section [api]" },
	{ "missing_section_vs_key", "[cluster]\n" NODE RAFT,
	  "1: missing required key 'name' in [cluster]" },
	{ "empty_file", "", "1: missing required section [cluster]" },
	{ "comments_only", "; nothing\n# here\n",
	  "2: missing required section [cluster]" },

	/* [cluster] name, [node] name */
	{ "cluster_name_space", "[cluster]\nname = a b\n",
	  "2: [cluster] name: invalid value 'a b' " NAME_RULE },
	{ "cluster_name_empty", "[cluster]\nname =\n",
	  "2: [cluster] name: invalid value '' " NAME_RULE },
	{ "cluster_name_64",
	  "[cluster]\nname = "
	  "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd\n",
	  "2: [cluster] name: invalid value "
	  "'abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd' "
	  NAME_RULE },
	{ "cluster_name_hash_is_not_comment", "[cluster]\nname = main # x\n",
	  "2: [cluster] name: invalid value 'main # x' " NAME_RULE },
	{ "node_name_slash", "[node]\nname = node/1\n",
	  "2: [node] name: invalid value 'node/1' " NAME_RULE },
	{ "node_name_quoted", "[node]\nname = \"node1\"\n",
	  "2: [node] name: invalid value '\"node1\"' " NAME_RULE },
	/* [node] data_dir, log_level */
	{ "data_dir_relative", "[node]\ndata_dir = var/lib/pgwarden\n",
	  "2: [node] data_dir: invalid value 'var/lib/pgwarden' (an absolute "
	  "path is required)" },
	{ "data_dir_empty", "[node]\ndata_dir =\n",
	  "2: [node] data_dir: invalid value '' (an absolute path is "
	  "required)" },
	{ "log_level_bad", LAST_N "log_level = verbose\n",
	  "12: [node] log_level: invalid value 'verbose' (allowed: error, "
	  "warn, info, debug)" },
	{ "log_level_case", LAST_N "log_level = INFO\n",
	  "12: [node] log_level: invalid value 'INFO' (allowed: error, "
	  "warn, info, debug)" },

	/* [raft] listen, advertise */
	{ "raft_listen_no_port", "[raft]\nlisten = 127.0.0.1\n",
	  "2: [raft] listen: invalid value '127.0.0.1' " HP_RULE },
	{ "raft_listen_port_0", "[raft]\nlisten = 127.0.0.1:0\n",
	  "2: [raft] listen: invalid value '127.0.0.1:0' " HP_RULE },
	{ "raft_listen_port_65536", "[raft]\nlisten = 127.0.0.1:65536\n",
	  "2: [raft] listen: invalid value '127.0.0.1:65536' " HP_RULE },
	{ "raft_listen_no_host", "[raft]\nlisten = :7101\n",
	  "2: [raft] listen: invalid value ':7101' " HP_RULE },
	{ "raft_listen_bare_v6", "[raft]\nlisten = ::1:7101\n",
	  "2: [raft] listen: invalid value '::1:7101' " HP_RULE },
	{ "raft_listen_port_junk", "[raft]\nlisten = 127.0.0.1:71x\n",
	  "2: [raft] listen: invalid value '127.0.0.1:71x' " HP_RULE },
	{ "raft_listen_wildcard_no_advertise",
	  CLUSTER NODE API "[raft]\nlisten = 0.0.0.0:7101\npeers = " PEERS3
			   "\n",
	  "10: [raft] listen: 0.0.0.0:7101 is a wildcard address; set [raft] "
	  "advertise to an address other nodes can reach" },
	{ "raft_advertise_bad", LAST_R "advertise = nope\n",
	  "12: [raft] advertise: invalid value 'nope' " HP_RULE },
	{ "raft_advertise_wildcard", LAST_R "advertise = [::]:7101\n",
	  "12: [raft] advertise: invalid value '[::]:7101' (a wildcard "
	  "address; advertise an address other nodes can reach)" },

	/* [raft] peers */
	{ "peers_no_equals", "[raft]\npeers = node1\n",
	  "2: [raft] peers: invalid peer 'node1' (expected name=host:port)" },
	{ "peers_bad_address", "[raft]\npeers = node1=127.0.0.1\n",
	  "2: [raft] peers: invalid address '127.0.0.1' for peer 'node1' "
	  HP_RULE },
	{ "peers_bad_name", "[raft]\npeers = no de=127.0.0.1:7101\n",
	  "2: [raft] peers: invalid peer name 'no de' " NAME_RULE },
	{ "peers_empty_name", "[raft]\npeers = =127.0.0.1:7101\n",
	  "2: [raft] peers: invalid peer name '' " NAME_RULE },
	{ "peers_empty_item", "[raft]\npeers = a=h:1,,b=h:2\n",
	  "2: [raft] peers: empty item in 'a=h:1,,b=h:2' (expected "
	  "name=host:port, ...)" },
	{ "peers_leading_comma", "[raft]\npeers = , a=h:1\n",
	  "2: [raft] peers: empty item in ', a=h:1' (expected "
	  "name=host:port, ...)" },
	{ "peers_wildcard", "[raft]\npeers = node1=0.0.0.0:7101\n",
	  "2: [raft] peers: node1=0.0.0.0:7101 is a wildcard address; list "
	  "an address other nodes can reach" },
	{ "peers_duplicate_name",
	  "[raft]\npeers = node1=127.0.0.1:7101, node1=127.0.0.1:7102\n",
	  "2: [raft] peers: duplicate peer name 'node1' (first at line 2)" },
	{ "peers_duplicate_address",
	  "[raft]\npeers = node1=127.0.0.1:7101, node2=127.0.0.1:7101\n",
	  "2: [raft] peers: duplicate address 127.0.0.1:7101 (peers 'node1' "
	  "and 'node2')" },
	{ "peers_duplicate_address_case",
	  "[raft]\npeers = a=Host1:7101, b=host1:07101\n",
	  "2: [raft] peers: duplicate address host1:07101 (peers 'a' and "
	  "'b')" },
	{ "peers_duplicate_on_continuation",
	  "[raft]\npeers = node1=127.0.0.1:7101,\n"
	  "    node2=127.0.0.1:7102,\n    node1=127.0.0.1:7103\n",
	  "4: [raft] peers: duplicate peer name 'node1' (first at line 2)" },
	{ "peers_two_items_without_comma",
	  "[raft]\npeers = node1=127.0.0.1:7101,\n"
	  "    node2=127.0.0.1:7102 node3=127.0.0.1:7103\n",
	  "3: [raft] peers: invalid address '127.0.0.1:7102 "
	  "node3=127.0.0.1:7103' for peer 'node2' " HP_RULE },
	{ "peers_none", CLUSTER NODE API "[raft]\nlisten = 127.0.0.1:7101\n"
					 "peers =\n",
	  "11: [raft] peers: no peers listed (at least one name=host:port is "
	  "required)" },
	{ "self_not_in_peers",
	  CLUSTER NODE API "[raft]\nlisten = 127.0.0.1:7101\n"
			   "peers = node2=127.0.0.1:7102, "
			   "node3=127.0.0.1:7103\n",
	  "11: [raft] peers: this node 'node1' is not listed; add "
	  "node1=127.0.0.1:7101, or set initial_cluster_state = existing to "
	  "join a running cluster" },
	{ "self_address_mismatch",
	  CLUSTER NODE API "[raft]\nlisten = 127.0.0.1:7101\n"
			   "peers = node2=127.0.0.1:7102,\n"
			   "  node1=127.0.0.1:7109\n",
	  "12: [raft] peers: node1=127.0.0.1:7109 does not match this node's "
	  "advertise address 127.0.0.1:7101 (advertise defaults to [raft] "
	  "listen)" },
	{ "self_address_mismatch_advertise",
	  CLUSTER NODE API "[raft]\nlisten = 0.0.0.0:7101\n"
			   "advertise = 10.0.0.1:7101\npeers = " PEERS3 "\n",
	  "12: [raft] peers: node1=127.0.0.1:7101 does not match this node's "
	  "advertise address 10.0.0.1:7101" },
	{ "join_self_address_mismatch",
	  LAST_R "initial_cluster_state = existing\n"
		 "advertise = 127.0.0.1:7201\n",
	  "11: [raft] peers: node1=127.0.0.1:7101 does not match this node's "
	  "advertise address 127.0.0.1:7201" },

	/* [raft] initial_cluster_state and numbers */
	{ "cluster_state_bad", LAST_R "initial_cluster_state = joining\n",
	  "12: [raft] initial_cluster_state: invalid value 'joining' "
	  "(allowed: new, existing)" },
	{ "election_not_a_number", LAST_R "election_timeout = abc\n",
	  "12: [raft] election_timeout: invalid value 'abc' " DUR_RULE(50,
								     60000) },
	{ "election_empty", LAST_R "election_timeout =\n",
	  "12: [raft] election_timeout: invalid value '' " DUR_RULE(50,
								    60000) },
	{ "election_too_small", LAST_R "election_timeout = 49\n",
	  "12: [raft] election_timeout: invalid value '49' " DUR_RULE(50,
								      60000) },
	{ "election_too_big", LAST_R "election_timeout = 61s\n",
	  "12: [raft] election_timeout: invalid value '61s' " DUR_RULE(50,
								       60000) },
	{ "election_negative", LAST_R "election_timeout = -300\n",
	  "12: [raft] election_timeout: invalid value '-300' "
	  DUR_RULE(50, 60000) },
	{ "election_plus", LAST_R "election_timeout = +300\n",
	  "12: [raft] election_timeout: invalid value '+300' "
	  DUR_RULE(50, 60000) },
	{ "election_space_unit", LAST_R "election_timeout = 300 ms\n",
	  "12: [raft] election_timeout: invalid value '300 ms' " DUR_RULE(
		  50, 60000) },
	{ "election_bad_unit", LAST_R "election_timeout = 300us\n",
	  "12: [raft] election_timeout: invalid value '300us' " DUR_RULE(
		  50, 60000) },
	{ "election_fraction", LAST_R "election_timeout = 1.5s\n",
	  "12: [raft] election_timeout: invalid value '1.5s' " DUR_RULE(
		  50, 60000) },
	{ "election_unit_only", LAST_R "election_timeout = ms\n",
	  "12: [raft] election_timeout: invalid value 'ms' " DUR_RULE(50,
								      60000) },
	{ "election_overflow",
	  LAST_R "election_timeout = 99999999999999999999999\n",
	  "12: [raft] election_timeout: invalid value "
	  "'99999999999999999999999' " DUR_RULE(50, 60000) },
	{ "heartbeat_too_small", LAST_R "heartbeat_interval = 9ms\n",
	  "12: [raft] heartbeat_interval: invalid value '9ms' " DUR_RULE(
		  10, 20000) },
	{ "heartbeat_too_big", LAST_R "heartbeat_interval = 21s\n",
	  "12: [raft] heartbeat_interval: invalid value '21s' " DUR_RULE(
		  10, 20000) },
	{ "heartbeat_vs_election_later_heartbeat",
	  LAST_R "election_timeout = 100\nheartbeat_interval = 50\n",
	  "13: [raft] heartbeat_interval (50ms) must be at most a third of "
	  "election_timeout (100ms)" },
	{ "heartbeat_vs_election_later_election",
	  LAST_R "heartbeat_interval = 50\nelection_timeout = 100\n",
	  "13: [raft] heartbeat_interval (50ms) must be at most a third of "
	  "election_timeout (100ms)" },
	{ "heartbeat_vs_default_election",
	  LAST_R "heartbeat_interval = 134\n",
	  "12: [raft] heartbeat_interval (134ms) must be at most a third of "
	  "election_timeout (400ms)" },
	{ "election_vs_default_heartbeat", LAST_R "election_timeout = 239\n",
	  "12: [raft] heartbeat_interval (80ms) must be at most a third of "
	  "election_timeout (239ms)" },
	{ "snapshot_threshold_small", LAST_R "snapshot_threshold = 15\n",
	  "12: [raft] snapshot_threshold: invalid value '15' (expected a "
	  "whole number, 16..10000000)" },
	{ "snapshot_threshold_big", LAST_R "snapshot_threshold = 10000001\n",
	  "12: [raft] snapshot_threshold: invalid value '10000001' (expected "
	  "a whole number, 16..10000000)" },
	{ "snapshot_threshold_exp", LAST_R "snapshot_threshold = 1e3\n",
	  "12: [raft] snapshot_threshold: invalid value '1e3' (expected a "
	  "whole number, 16..10000000)" },
	{ "snapshot_threshold_unit", LAST_R "snapshot_threshold = 100ms\n",
	  "12: [raft] snapshot_threshold: invalid value '100ms' (expected a "
	  "whole number, 16..10000000)" },
	{ "snapshot_trailing_negative", LAST_R "snapshot_trailing = -1\n",
	  "12: [raft] snapshot_trailing: invalid value '-1' (expected a "
	  "whole number, 0..10000000)" },
	{ "snapshot_trailing_big", LAST_R "snapshot_trailing = 10000001\n",
	  "12: [raft] snapshot_trailing: invalid value '10000001' (expected "
	  "a whole number, 0..10000000)" },
	{ "snapshot_trailing_empty", LAST_R "snapshot_trailing =\n",
	  "12: [raft] snapshot_trailing: invalid value '' (expected a whole "
	  "number, 0..10000000)" },

	/* [api] */
	{ "api_listen_bad", "[api]\nlisten = localhost\n",
	  "2: [api] listen: invalid value 'localhost' " HP_RULE },
	{ "api_listen_bad_v6", "[api]\nlisten = [fe80::zz]:8101\n",
	  "2: [api] listen: invalid value '[fe80::zz]:8101' " HP_RULE },
	{ "api_listen_wildcard_no_url",
	  CLUSTER NODE RAFT "[api]\nlisten = 0.0.0.0:8101\n"
			    "token_file = @TOKEN@\n",
	  "10: [api] listen: 0.0.0.0:8101 is a wildcard address; set [api] "
	  "url to a URL other nodes can reach" },
	{ "api_listen_same_as_raft",
	  CLUSTER NODE RAFT "[api]\nlisten = 127.0.0.1:7101\n"
			    "token_file = @TOKEN@\n",
	  "10: [api] listen and [raft] listen are the same address "
	  "127.0.0.1:7101" },
	{ "api_url_scheme", LAST_A "url = ftp://127.0.0.1:8101\n",
	  "12: [api] url: invalid value 'ftp://127.0.0.1:8101' (expected "
	  "http://host[:port][/path] or https://...)" },
	{ "api_url_no_scheme", LAST_A "url = 127.0.0.1:8101\n",
	  "12: [api] url: invalid value '127.0.0.1:8101' (expected "
	  "http://host[:port][/path] or https://...)" },
	{ "api_url_no_host", LAST_A "url = https://\n",
	  "12: [api] url: invalid value 'https://' (expected "
	  "http://host[:port][/path] or https://...)" },
	{ "api_url_space", LAST_A "url = http://a b\n",
	  "12: [api] url: invalid value 'http://a b' (expected "
	  "http://host[:port][/path] or https://...)" },
	{ "token_file_empty_value", "[api]\ntoken_file =\n",
	  "2: [api] token_file: invalid value '' (a file name is required)" },
	{ "token_file_missing", "[api]\ntoken_file = @DIR@/nope\n",
	  "2: [api] token_file: @DIR@/nope: cannot open: No such file or "
	  "directory" },
	{ "token_file_directory", "[api]\n\ntoken_file = @DIR@\n",
	  "3: [api] token_file: @DIR@: not a regular file" },
	{ "token_file_empty",
	  "[api]\ntoken_file = @DIR@/token_empty\n",
	  "2: [api] token_file: @DIR@/token_empty: empty token" },
	{ "token_file_blank",
	  "[api]\ntoken_file = @DIR@/token_blank\n",
	  "2: [api] token_file: @DIR@/token_blank: empty token" },
	{ "token_file_too_big",
	  "[api]\ntoken_file = @DIR@/token_big\n",
	  "2: [api] token_file: @DIR@/token_big: larger than 4096 bytes" },
	{ "token_file_two_lines",
	  "[api]\ntoken_file = @DIR@/token_ctrl\n",
	  "2: [api] token_file: @DIR@/token_ctrl: the token must be one line "
	  "without control characters" },

	/* ---- [postgresql] and the sections after it -------------------- */
	/* unknown keys, sections, duplicates, missing keys */
	{ "pg_unknown_key", LAST_P "prot = 5441\n",
	  "14: unknown key 'prot' in [postgresql]" },
	{ "pg_port_is_not_a_key", LAST_P "port = 5441\n",
	  "14: unknown key 'port' in [postgresql]" },
	{ "bootstrap_unknown_key", LAST_A "[bootstrap]\ninitdbb = --x\n",
	  "13: unknown key 'initdbb' in [bootstrap]" },
	{ "user_unknown_key", LAST_A "[bootstrap.user.alice]\npasword = x\n",
	  "13: unknown key 'pasword' in [bootstrap.user.alice]" },
	{ "tags_unknown_key",
	  LAST_A "[tags]\nnofailover = on\nnoloadbalancing = on\n",
	  "14: unknown key 'noloadbalancing' in [tags]" },
	{ "ha_unknown_key", LAST_A "[ha]\nttl = 3s\nloopwait = 1s\n",
	  "14: unknown key 'loopwait' in [ha]" },
	{ "watchdog_unknown_key", LAST_A "[watchdog]\npath = /dev/watchdog\n",
	  "13: unknown key 'path' in [watchdog]" },
	{ "callbacks_unknown_key",
	  LAST_A "[callbacks]\non_promote = @DIR@/script\n",
	  "13: unknown key 'on_promote' in [callbacks]" },
	{ "pg_duplicate_section", LAST_P "[postgresql]\n",
	  "14: duplicate section [postgresql] (first at line 12)" },
	{ "ha_duplicate_key", LAST_A "[ha]\nttl = 3s\nttl = 4s\n",
	  "14: duplicate key 'ttl' in [ha] (first at line 13)" },
	{ "pg_missing_data_dir",
	  LAST_A "[postgresql]\nlisten = 127.0.0.1:5441\n",
	  "12: missing required key 'data_dir' in [postgresql]" },
	{ "pg_missing_data_dir_earliest",
	  "[postgresql]\nbin_dir = /usr/bin\n[cluster]\n" NODE RAFT API,
	  "1: missing required key 'data_dir' in [postgresql]" },
	{ "pg_continuation_scalar",
	  LAST_P "bin_dir = /usr/lib/postgresql/15/bin\n   /usr/bin\n",
	  "15: [postgresql] bin_dir: " CONT },
	{ "user_section_duplicate",
	  LAST_A "[bootstrap.user.alice]\n[bootstrap.user.bob]\n"
		 "[bootstrap.user.alice]\n",
	  "14: duplicate section [bootstrap.user.alice] (first at line 12)" },
	{ "user_section_bad_name", LAST_A "[bootstrap.user.a b]\n",
	  "12: [bootstrap.user.a b]: invalid role name 'a b' " NAME_RULE },
	{ "user_section_empty_name", LAST_A "[bootstrap.user.]\n",
	  "12: [bootstrap.user.]: invalid role name '' " NAME_RULE },
	{ "user_section_without_name", LAST_A "[bootstrap.user]\n",
	  "12: unknown section [bootstrap.user]" },
	{ "user_duplicate_key",
	  LAST_A "[bootstrap.user.alice]\npassword = x\npassword = y\n",
	  "14: duplicate key 'password' in [bootstrap.user.alice] (first at "
	  "line 13)" },

	/* [postgresql] values */
	{ "pg_data_dir_relative", "[postgresql]\ndata_dir = pg\n",
	  "2: [postgresql] data_dir: invalid value 'pg' (an absolute path is "
	  "required)" },
	{ "pg_bin_dir_relative", "[postgresql]\nbin_dir = bin\n",
	  "2: [postgresql] bin_dir: invalid value 'bin' (an absolute path is "
	  "required)" },
	{ "pg_listen_bad", "[postgresql]\nlisten = 5441\n",
	  "2: [postgresql] listen: invalid value '5441' " PGHP_RULE },
	{ "pg_listen_star_port_0", "[postgresql]\nlisten = *:0\n",
	  "2: [postgresql] listen: invalid value '*:0' " PGHP_RULE },
	{ "pg_listen_star_host", "[postgresql]\nlisten = *x:5441\n",
	  "2: [postgresql] listen: invalid value '*x:5441' " PGHP_RULE },
	{ "pg_connect_wildcard", "[postgresql]\nconnect_address = *:5441\n",
	  "2: [postgresql] connect_address: invalid value '*:5441' " HP_RULE },
	{ "pg_connect_zero", "[postgresql]\nconnect_address = 0.0.0.0:5441\n",
	  "2: [postgresql] connect_address: invalid value '0.0.0.0:5441' (a "
	  "wildcard address; advertise an address other nodes can reach)" },
	{ "pg_listen_wildcard_no_connect_address",
	  LAST_P "listen = 0.0.0.0:5441\n",
	  "14: [postgresql] listen: 0.0.0.0:5441 is a wildcard address; set "
	  "[postgresql] connect_address to an address other nodes can reach" },
	{ "pg_listen_star_no_connect_address", LAST_P "listen = *:5441\n",
	  "14: [postgresql] listen: *:5441 is a wildcard address; set "
	  "[postgresql] connect_address to an address other nodes can reach" },
	{ "pg_listen_same_as_raft", LAST_P "listen = 127.0.0.1:7101\n",
	  "14: [postgresql] listen and [raft] listen are the same address "
	  "127.0.0.1:7101" },
	{ "pg_listen_same_as_api", LAST_P "listen = 127.0.0.1:08101\n",
	  "14: [postgresql] listen and [api] listen are the same address "
	  "127.0.0.1:08101" },
	{ "pg_superuser_bad", "[postgresql]\nsuperuser = post gres\n",
	  "2: [postgresql] superuser: invalid value 'post gres' " NAME_RULE },
	{ "pg_replication_user_bad", "[postgresql]\nreplication_user =\n",
	  "2: [postgresql] replication_user: invalid value '' " NAME_RULE },
	{ "bool_bad", "[postgresql]\nuse_slots = maybe\n",
	  "2: [postgresql] use_slots: invalid value 'maybe' " BOOL_RULE },
	{ "bool_empty", "[postgresql]\nuse_rewind =\n",
	  "2: [postgresql] use_rewind: invalid value '' " BOOL_RULE },
	{ "bool_number", "[tags]\nnofailover = 2\n",
	  "2: [tags] nofailover: invalid value '2' " BOOL_RULE },
	{ "bool_long_key",
	  "[postgresql]\nremove_data_directory_on_rewind_failure = y\n",
	  "2: [postgresql] remove_data_directory_on_rewind_failure: invalid "
	  "value 'y' " BOOL_RULE },

	/* data_dir against [node] data_dir (/var/lib/pgwarden) */
	{ "pg_data_dir_inside_node",
	  LAST_A "[postgresql]\ndata_dir = /var/lib/pgwarden/pg\n",
	  "13: [postgresql] data_dir: /var/lib/pgwarden/pg is inside [node] "
	  "data_dir /var/lib/pgwarden (they must be separate directories)" },
	{ "pg_data_dir_same_as_node",
	  LAST_A "[postgresql]\ndata_dir = /var//lib/pgwarden/\n",
	  "13: [postgresql] data_dir: /var//lib/pgwarden/ is the same "
	  "directory as [node] data_dir /var/lib/pgwarden (they must be "
	  "separate directories)" },
	{ "pg_data_dir_contains_node",
	  LAST_A "[postgresql]\ndata_dir = /var/lib\n",
	  "13: [postgresql] data_dir: /var/lib contains [node] data_dir "
	  "/var/lib/pgwarden (they must be separate directories)" },
	{ "pg_data_dir_dotdot",
	  LAST_A "[postgresql]\ndata_dir = /var/lib/x/../pgwarden/./pg\n",
	  "13: [postgresql] data_dir: /var/lib/x/../pgwarden/./pg is inside "
	  "[node] data_dir /var/lib/pgwarden (they must be separate "
	  "directories)" },
	{ "pg_data_dir_root",
	  "[postgresql]\ndata_dir = /\n" CLUSTER NODE RAFT API,
	  "7: [postgresql] data_dir: / contains [node] data_dir "
	  "/var/lib/pgwarden (they must be separate directories)" },

	/* passwords and password files */
	{ "su_password_empty", LAST_P "superuser_password =\n",
	  "14: [postgresql] superuser_password: empty value (remove the key "
	  "for no password)" },
	{ "su_password_exclusive",
	  LAST_P "superuser_password_file = @DIR@/pw\n"
		 "superuser_password = s3cret\n",
	  "15: [postgresql] superuser_password: cannot be combined with "
	  "superuser_password_file (line 14); set only one of them" },
	{ "repl_password_exclusive",
	  LAST_P "replication_password = s3cret\n"
		 "superuser = admin\n"
		 "replication_password_file = @DIR@/pw\n",
	  "16: [postgresql] replication_password_file: cannot be combined "
	  "with replication_password (line 14); set only one of them" },
	{ "user_password_exclusive",
	  LAST_A "[bootstrap.user.alice]\npassword = x\n"
		 "password_file = @DIR@/pw\n",
	  "14: [bootstrap.user.alice] password_file: cannot be combined with "
	  "password (line 13); set only one of them" },
	{ "password_file_missing",
	  LAST_P "replication_password_file = @DIR@/nope\n",
	  "14: [postgresql] replication_password_file: @DIR@/nope: cannot "
	  "open: No such file or directory" },
	{ "password_file_empty",
	  LAST_P "superuser_password_file = @DIR@/token_empty\n",
	  "14: [postgresql] superuser_password_file: @DIR@/token_empty: "
	  "empty password" },
	{ "password_file_blank",
	  LAST_A "[bootstrap.user.bob]\npassword_file = @DIR@/token_blank\n",
	  "13: [bootstrap.user.bob] password_file: @DIR@/token_blank: empty "
	  "password" },
	{ "password_file_two_lines",
	  LAST_P "superuser_password_file = @DIR@/token_ctrl\n",
	  "14: [postgresql] superuser_password_file: @DIR@/token_ctrl: the "
	  "password must be one line without control characters" },
	{ "password_file_too_big",
	  LAST_P "superuser_password_file = @DIR@/token_big\n",
	  "14: [postgresql] superuser_password_file: @DIR@/token_big: larger "
	  "than 4096 bytes" },
	{ "password_file_directory",
	  LAST_P "superuser_password_file = @DIR@\n",
	  "14: [postgresql] superuser_password_file: @DIR@: not a regular "
	  "file" },
	{ "password_file_empty_name", LAST_P "superuser_password_file =\n",
	  "14: [postgresql] superuser_password_file: invalid value '' (a file "
	  "name is required)" },
	{ "user_is_superuser", LAST_P "[bootstrap.user.postgres]\n",
	  "14: [bootstrap.user.postgres]: 'postgres' is the [postgresql] "
	  "superuser, which pgwarden creates; set its password in "
	  "[postgresql]" },
	{ "user_is_replication_user",
	  "[bootstrap.user.repl]\n" LAST_P "replication_user = repl\n",
	  "1: [bootstrap.user.repl]: 'repl' is the [postgresql] "
	  "replication_user, which pgwarden creates; set its password in "
	  "[postgresql]" },

	/* role options */
	{ "user_unknown_option",
	  LAST_A "[bootstrap.user.alice]\noptions = login, createuser\n",
	  "13: [bootstrap.user.alice] options: unknown role option "
	  "'createuser' " OPT_RULE },
	{ "user_unknown_no_option",
	  LAST_A "[bootstrap.user.alice]\noptions = NO\n",
	  "13: [bootstrap.user.alice] options: unknown role option 'NO' "
	  OPT_RULE },
	{ "user_option_conflict",
	  LAST_A "[bootstrap.user.alice]\noptions = LOGIN nologin\n",
	  "13: [bootstrap.user.alice] options: NOLOGIN repeats or "
	  "contradicts LOGIN" },
	{ "user_option_repeat",
	  LAST_A "[bootstrap.user.alice]\noptions = NoCreateDB,nocreatedb\n",
	  "13: [bootstrap.user.alice] options: NOCREATEDB repeats or "
	  "contradicts NOCREATEDB" },

	/* [postgresql.parameters] */
	{ "param_reserved_port", LAST_A "[postgresql.parameters]\nport = 5433\n",
	  "13: [postgresql.parameters] port: not allowed here (pgwarden sets "
	  "it from [postgresql] listen)" },
	{ "param_reserved_case",
	  LAST_A "[postgresql.parameters]\nListen_Addresses = '*'\n",
	  "13: [postgresql.parameters] Listen_Addresses: not allowed here "
	  "(pgwarden sets it from [postgresql] listen)" },
	{ "param_reserved_socket",
	  LAST_A "[postgresql.parameters]\nunix_socket_directories = /tmp\n",
	  "13: [postgresql.parameters] unix_socket_directories: not allowed "
	  "here (pgwarden sets it from [postgresql] socket_dir)" },
	{ "param_reserved_data_directory",
	  LAST_A "[postgresql.parameters]\ndata_directory = /pg\n",
	  "13: [postgresql.parameters] data_directory: not allowed here "
	  "(pgwarden sets it from [postgresql] data_dir)" },
	{ "param_reserved_hba_file",
	  LAST_A "[postgresql.parameters]\nhba_file = /etc/hba\n",
	  "13: [postgresql.parameters] hba_file: not allowed here (managed "
	  "by pgwarden; use [bootstrap] pg_hba)" },
	{ "param_reserved_config_file",
	  LAST_A "[postgresql.parameters]\nconfig_file = /etc/pg.conf\n",
	  "13: [postgresql.parameters] config_file: not allowed here "
	  "(managed by pgwarden)" },
	{ "param_reserved_primary_conninfo",
	  LAST_A "[postgresql.parameters]\nprimary_conninfo = host=x\n",
	  "13: [postgresql.parameters] primary_conninfo: not allowed here "
	  "(managed by pgwarden)" },
	{ "param_reserved_primary_slot_name",
	  LAST_A "[postgresql.parameters]\nprimary_slot_name = s\n",
	  "13: [postgresql.parameters] primary_slot_name: not allowed here "
	  "(managed by pgwarden; see [postgresql] use_slots)" },
	{ "param_reserved_sync_names",
	  LAST_A "[postgresql.parameters]\n"
		 "synchronous_standby_names = '*'\n",
	  "13: [postgresql.parameters] synchronous_standby_names: not "
	  "allowed here (managed by pgwarden; use [ha] synchronous_mode and "
	  "synchronous_node_count)" },
	{ "param_bad_name_digit",
	  LAST_A "[postgresql.parameters]\n9lives = on\n",
	  "13: [postgresql.parameters] invalid setting name '9lives' "
	  PARAM_RULE },
	{ "param_bad_name_dash",
	  LAST_A "[postgresql.parameters]\nwork-mem = 4MB\n",
	  "13: [postgresql.parameters] invalid setting name 'work-mem' "
	  PARAM_RULE },
	{ "param_bad_name_64",
	  LAST_A "[postgresql.parameters]\n"
		 "a12345678901234567890123456789012345678901234567890123456789"
		 "0123 = 1\n",
	  "13: [postgresql.parameters] invalid setting name "
	  "'a123456789012345678901234567890123456789012345678901234567890123' "
	  PARAM_RULE },
	{ "param_duplicate_case",
	  LAST_A "[postgresql.parameters]\nwork_mem = 4MB\nWORK_MEM = 8MB\n",
	  "14: duplicate key 'WORK_MEM' in [postgresql.parameters] (first at "
	  "line 13)" },
	{ "param_continuation",
	  LAST_A "[postgresql.parameters]\nwork_mem = 4MB\n  8MB\n",
	  "14: [postgresql.parameters] work_mem: " CONT },

	/* [bootstrap] */
	{ "initdb_short_option", LAST_A "[bootstrap]\ninitdb = -k\n",
	  "13: [bootstrap] initdb: invalid argument '-k' " INITDB_RULE },
	{ "initdb_bare_dashes",
	  LAST_A "[bootstrap]\ninitdb = --data-checksums --\n",
	  "13: [bootstrap] initdb: invalid argument '--' " INITDB_RULE },
	{ "initdb_bad_on_continuation",
	  LAST_A "[bootstrap]\ninitdb = --data-checksums\n"
		 "    --locale=C UTF8\n",
	  "14: [bootstrap] initdb: invalid argument 'UTF8' " INITDB_RULE },
	{ "initdb_pgdata", LAST_A "[bootstrap]\ninitdb = --pgdata=/pg\n",
	  "13: [bootstrap] initdb: --pgdata is set by pgwarden from "
	  "[postgresql] data_dir" },
	{ "initdb_username", LAST_A "[bootstrap]\ninitdb = --username admin\n",
	  "13: [bootstrap] initdb: --username is set by pgwarden from "
	  "[postgresql] superuser" },
	{ "hba_bad_type",
	  LAST_A "[bootstrap]\npg_hba = hots all all 127.0.0.1/32 trust\n",
	  "13: [bootstrap] pg_hba: invalid line 'hots all all 127.0.0.1/32 "
	  "trust' " HBA_TYPE_RULE },
	{ "hba_type_case",
	  LAST_A "[bootstrap]\npg_hba = HOST all all 127.0.0.1/32 trust\n",
	  "13: [bootstrap] pg_hba: invalid line 'HOST all all 127.0.0.1/32 "
	  "trust' " HBA_TYPE_RULE },
	{ "hba_host_too_few",
	  LAST_A "[bootstrap]\npg_hba = local all all peer\n"
		 "    host all all trust\n",
	  "14: [bootstrap] pg_hba: invalid line 'host all all trust' "
	  "(expected TYPE DATABASE USER ADDRESS METHOD [OPTIONS])" },
	{ "hba_local_too_few",
	  LAST_A "[bootstrap]\npg_hba =\n    local all peer\n",
	  "14: [bootstrap] pg_hba: invalid line 'local all peer' (expected "
	  "local DATABASE USER METHOD [OPTIONS])" },
	{ "post_bootstrap_relative",
	  LAST_A "[bootstrap]\npost_bootstrap = setup.sh\n",
	  "13: [bootstrap] post_bootstrap: invalid value 'setup.sh' (an "
	  "absolute path is required)" },
	{ "post_bootstrap_missing",
	  LAST_A "[bootstrap]\npost_bootstrap = @DIR@/nope\n",
	  "13: [bootstrap] post_bootstrap: @DIR@/nope: cannot access: No such "
	  "file or directory" },
	{ "post_bootstrap_directory",
	  LAST_A "[bootstrap]\npost_bootstrap = @DIR@\n",
	  "13: [bootstrap] post_bootstrap: @DIR@: not a regular file" },
	{ "post_bootstrap_not_executable",
	  LAST_A "[bootstrap]\npost_bootstrap = @DIR@/noexec\n",
	  "13: [bootstrap] post_bootstrap: @DIR@/noexec: not executable "
	  "(Permission denied)" },

	/* [callbacks] */
	{ "callback_not_executable",
	  LAST_A "[callbacks]\non_start = @DIR@/script\n"
		 "on_role_change = @DIR@/noexec\n",
	  "14: [callbacks] on_role_change: @DIR@/noexec: not executable "
	  "(Permission denied)" },
	{ "callback_missing", LAST_A "[callbacks]\non_stop = @DIR@/nope\n",
	  "13: [callbacks] on_stop: @DIR@/nope: cannot access: No such file "
	  "or directory" },
	{ "callback_relative", LAST_A "[callbacks]\non_start = script\n",
	  "13: [callbacks] on_start: invalid value 'script' (an absolute path "
	  "is required)" },

	/* [tags] */
	{ "failover_priority_big", "[tags]\nfailover_priority = 1000001\n",
	  "2: [tags] failover_priority: invalid value '1000001' (expected a "
	  "whole number, 0..1000000)" },
	{ "failover_priority_negative", "[tags]\nfailover_priority = -1\n",
	  "2: [tags] failover_priority: invalid value '-1' (expected a whole "
	  "number, 0..1000000)" },

	/* [ha] and [watchdog] values */
	{ "ttl_too_small", "[ha]\nttl = 499ms\n",
	  "2: [ha] ttl: invalid value '499ms' " DUR_RULE(500, 600000) },
	{ "ttl_too_big", "[ha]\nttl = 601s\n",
	  "2: [ha] ttl: invalid value '601s' " DUR_RULE(500, 600000) },
	{ "loop_wait_fraction", "[ha]\nloop_wait = 0.5s\n",
	  "2: [ha] loop_wait: invalid value '0.5s' " DUR_RULE(10, 60000) },
	{ "safety_margin_negative", "[ha]\nsafety_margin = -1\n",
	  "2: [ha] safety_margin: invalid value '-1' " DUR_RULE(0, 60000) },
	{ "crash_restart_timeout_small", "[ha]\ncrash_restart_timeout = 99\n",
	  "2: [ha] crash_restart_timeout: invalid value '99' " DUR_RULE(
		  100, 3600000) },
	{ "size_lower_case_unit", "[ha]\nmaximum_lag_on_failover = 1mb\n",
	  "2: [ha] maximum_lag_on_failover: invalid value '1mb' " SIZE_RULE },
	{ "size_space_unit", "[ha]\nmaximum_lag_on_failover = 1 MB\n",
	  "2: [ha] maximum_lag_on_failover: invalid value '1 MB' "
	  SIZE_RULE },
	{ "size_fraction", "[ha]\nmaximum_lag_on_failover = 1.5MB\n",
	  "2: [ha] maximum_lag_on_failover: invalid value '1.5MB' "
	  SIZE_RULE },
	{ "size_unit_only", "[ha]\nmaximum_lag_on_failover = kB\n",
	  "2: [ha] maximum_lag_on_failover: invalid value 'kB' " SIZE_RULE },
	{ "size_overflow",
	  "[ha]\nmaximum_lag_on_failover = 1073741825GB\n",
	  "2: [ha] maximum_lag_on_failover: invalid value '1073741825GB' "
	  SIZE_RULE },
	{ "size_negative", "[ha]\nmaximum_lag_on_failover = -1\n",
	  "2: [ha] maximum_lag_on_failover: invalid value '-1' " SIZE_RULE },
	{ "sync_mode_bad", "[ha]\nsynchronous_mode = true\n",
	  "2: [ha] synchronous_mode: invalid value 'true' (allowed: off, on, "
	  "strict)" },
	{ "sync_count_zero", "[ha]\nsynchronous_node_count = 0\n",
	  "2: [ha] synchronous_node_count: invalid value '0' (expected a "
	  "whole number, 1..16)" },
	{ "sync_count_big", "[ha]\nsynchronous_node_count = 17\n",
	  "2: [ha] synchronous_node_count: invalid value '17' (expected a "
	  "whole number, 1..16)" },
	{ "wd_mode_bad", "[watchdog]\nmode = auto\n",
	  "2: [watchdog] mode: invalid value 'auto' (allowed: off, automatic, "
	  "required)" },
	{ "wd_device_relative", "[watchdog]\ndevice = watchdog0\n",
	  "2: [watchdog] device: invalid value 'watchdog0' (an absolute path "
	  "is required)" },
	{ "wd_fencer_bad", "[watchdog]\nfencer = maybe\n",
	  "2: [watchdog] fencer: invalid value 'maybe' (allowed: true, false, "
	  "yes, no, on, off, 1, 0)" },
	{ "wd_timeout_small", "[watchdog]\ntimeout = 999\n",
	  "2: [watchdog] timeout: invalid value '999' " DUR_RULE(1000,
								 60000) },

	/* the timing inequalities */
	{ "loop_wait_over_third", LAST_P "[ha]\nloop_wait = 834\n",
	  "15: [ha] loop_wait (834ms) must be at most a third of ttl "
	  "(2500ms)" },
	{ "loop_wait_vs_later_ttl",
	  LAST_P "[ha]\nloop_wait = 500\nttl = 1400\n",
	  "16: [ha] loop_wait (500ms) must be at most a third of ttl "
	  "(1400ms)" },
	{ "i1_ttl_too_short", LAST_P "[ha]\nttl = 2000\n",
	  "15: [ha] ttl 2000ms is too short: ttl*(1-rho) - safety_margin "
	  "(1698ms) must exceed 3.5*election_timeout + loop_wait (1800ms)" },
	{ "i1_margin_too_big", LAST_P "[ha]\nsafety_margin = 700ms\n",
	  "15: [ha] ttl 2500ms is too short: ttl*(1-rho) - safety_margin "
	  "(1797ms) must exceed 3.5*election_timeout + loop_wait (1800ms)" },
	{ "i1_loop_wait", LAST_P "[ha]\nloop_wait = 800\n",
	  "15: [ha] ttl 2500ms is too short: ttl*(1-rho) - safety_margin "
	  "(2197ms) must exceed 3.5*election_timeout + loop_wait (2200ms)" },
	{ "i1_election_timeout", LAST_R "election_timeout = 600ms\n" PG,
	  "12: [ha] ttl 2500ms is too short: ttl*(1-rho) - safety_margin "
	  "(2197ms) must exceed 3.5*election_timeout + loop_wait (2500ms)" },
	{ "i1_rounding",
	  LAST_R "election_timeout = 401\n" PG "[ha]\nttl = 2100\n",
	  "16: [ha] ttl 2100ms is too short: ttl*(1-rho) - safety_margin "
	  "(1797ms) must exceed 3.5*election_timeout + loop_wait (1804ms)" },
	{ "i1_negative",
	  LAST_P "[ha]\nttl = 1000\nloop_wait = 100\nsafety_margin = 2s\n",
	  "17: [ha] ttl 1000ms is too short: ttl*(1-rho) - safety_margin "
	  "(-1001ms) must exceed 3.5*election_timeout + loop_wait (1500ms)" },
	{ "i1_store_only_with_ha", LAST_A "[ha]\nttl = 2000\n",
	  "13: [ha] ttl 2000ms is too short: ttl*(1-rho) - safety_margin "
	  "(1698ms) must exceed 3.5*election_timeout + loop_wait (1800ms)" },
	{ "i3_watchdog_timeout", LAST_P "[watchdog]\ntimeout = 2s\n",
	  "15: [watchdog] timeout 2000ms is too long: ttl*(1-rho) - timeout - "
	  "safety_margin (197ms) must exceed loop_wait (400ms)" },
	{ "i3_watchdog_rounded_up", LAST_P "[watchdog]\ntimeout = 1500\n",
	  "15: [watchdog] timeout 1500ms (2000ms on the device, which counts "
	  "whole seconds) is too long: ttl*(1-rho) - timeout - safety_margin "
	  "(197ms) must exceed loop_wait (400ms)" },
	{ "i3_mode_line_later",
	  LAST_P "[watchdog]\ntimeout = 2s\nmode = required\n",
	  "16: [watchdog] timeout 2000ms is too long: ttl*(1-rho) - timeout - "
	  "safety_margin (197ms) must exceed loop_wait (400ms)" },
	{ "i3_ttl_line_later",
	  LAST_P "[watchdog]\ntimeout = 2s\n[ha]\nttl = 2600\n",
	  "17: [watchdog] timeout 2000ms is too long: ttl*(1-rho) - timeout - "
	  "safety_margin (297ms) must exceed loop_wait (400ms)" },
};

static void run_case(void **state)
{
	const struct ecase *ec = *state;
	expect_err(ec->text, ec->want);
}

/* ---- success paths ---------------------------------------------------- */

/* The minimal file of the issue, comments included. */
static const char minimal[] =
	"[cluster]\n"
	"name = main                      ; the cluster (Patroni's "
	"\"scope\")\n"
	"[node]\n"
	"name = node1                     ; unique in the cluster\n"
	"data_dir = /var/lib/pgwarden     ; Raft log, snapshots, node state\n"
	"[raft]\n"
	"listen = 127.0.0.1:7101          ; Raft peer address of this node\n"
	"peers = node1=127.0.0.1:7101, node2=127.0.0.1:7102, "
	"node3=127.0.0.1:7103  ; initial voters\n"
	"[api]\n"
	"listen = 127.0.0.1:8101          ; HTTP API of this node\n"
	"token_file = @TOKEN@ ; shared cluster secret; required for writes "
	"and forwarding\n";

static void test_minimal_example(void **state)
{
	(void)state;
	struct cfg c;
	expect_ok(minimal, &c);
	assert_string_equal(c.path, ini_path);
	assert_string_equal(c.cluster_name, "main");
	assert_string_equal(c.node_name, "node1");
	assert_string_equal(c.data_dir, "/var/lib/pgwarden");
	assert_int_equal(c.log_level, LOG_INFO);
	assert_string_equal(c.raft_listen, "127.0.0.1:7101");
	assert_string_equal(c.raft_advertise, "127.0.0.1:7101");
	assert_int_equal(c.npeers, 3);
	assert_string_equal(c.peers[0].name, "node1");
	assert_string_equal(c.peers[0].address, "127.0.0.1:7101");
	assert_string_equal(c.peers[1].name, "node2");
	assert_string_equal(c.peers[1].address, "127.0.0.1:7102");
	assert_string_equal(c.peers[2].name, "node3");
	assert_string_equal(c.peers[2].address, "127.0.0.1:7103");
	assert_false(c.join);
	assert_int_equal(c.election_timeout_ms, CFG_DEFAULT_ELECTION_MS);
	assert_int_equal(c.heartbeat_ms, CFG_DEFAULT_HEARTBEAT_MS);
	assert_int_equal(c.snapshot_threshold, 1024);
	assert_int_equal(c.snapshot_trailing, 2048);
	assert_string_equal(c.api_listen, "127.0.0.1:8101");
	assert_string_equal(c.api_url, "http://127.0.0.1:8101");
	assert_string_equal(c.token_file, token_path);
	assert_string_equal(c.token, "s3cret-token");
	cfg_free(&c);
	assert_true(is_zeroed(&c));
	cfg_free(&c); /* twice: still a no-op */
}

static const char full[] =
	"# every key set\n"
	"[cluster]\n"
	"name = prod.eu-1\n"
	"[node]\n"
	"name = db_2\n"
	"data_dir = /srv/pgwarden/\n"
	"log_level = debug\n"
	"[raft]\n"
	"listen = 0.0.0.0:7102\n"
	"advertise = 10.0.0.2:7102\n"
	"peers = db_1=10.0.0.1:7102 , db_2 = 10.0.0.2:7102,\n"
	"        db_3=[fd00::3]:7102,   ; a comma may end a line\n"
	"\n"
	"        db_4=node4.example.com:7102\n"
	"initial_cluster_state = new\n"
	"election_timeout = 1s\n"
	"heartbeat_interval = 100ms\n"
	"snapshot_threshold = 16\n"
	"snapshot_trailing = 0\n"
	"[api]\n"
	"listen = [::]:8102\n"
	"url = https://db2.example.com:8443/pgw\n"
	"token_file = @TOKEN@\n";

static void test_all_keys(void **state)
{
	(void)state;
	struct cfg c;
	expect_ok(full, &c);
	assert_string_equal(c.cluster_name, "prod.eu-1");
	assert_string_equal(c.node_name, "db_2");
	assert_string_equal(c.data_dir, "/srv/pgwarden/");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.raft_listen, "0.0.0.0:7102");
	assert_string_equal(c.raft_advertise, "10.0.0.2:7102");
	assert_int_equal(c.npeers, 4);
	assert_string_equal(c.peers[1].name, "db_2");
	assert_string_equal(c.peers[1].address, "10.0.0.2:7102");
	assert_string_equal(c.peers[2].name, "db_3");
	assert_string_equal(c.peers[2].address, "[fd00::3]:7102");
	assert_string_equal(c.peers[3].address, "node4.example.com:7102");
	assert_false(c.join);
	assert_int_equal(c.election_timeout_ms, 1000);
	assert_int_equal(c.heartbeat_ms, 100);
	assert_int_equal(c.snapshot_threshold, 16);
	assert_int_equal(c.snapshot_trailing, 0);
	assert_string_equal(c.api_listen, "[::]:8102");
	assert_string_equal(c.api_url, "https://db2.example.com:8443/pgw");
	assert_string_equal(c.token, "s3cret-token");
	cfg_free(&c);
}

static void test_join_without_self(void **state)
{
	(void)state;
	struct cfg c;
	expect_ok(CLUSTER NODE API "[raft]\nlisten = 127.0.0.1:7104\n"
				   "peers = node2=127.0.0.1:7102\n"
				   "initial_cluster_state = existing\n",
		  &c);
	assert_true(c.join);
	assert_int_equal(c.npeers, 1);
	assert_string_equal(c.raft_advertise, "127.0.0.1:7104");
	cfg_free(&c);
}

static void test_formats(void **state)
{
	(void)state;
	struct cfg c;
	/* CRLF endings, a UTF-8 BOM, ':' as separator, comments of both
	 * kinds, a comment after a section header, indented comments */
	expect_ok("\xEF\xBB\xBF[cluster]\r\n"
		  "name: main\r\n"
		  "; comment\r\n"
		  "# comment\r\n"
		  "[node] ; the node\r\n"
		  "name=node1\r\n"
		  "  ; indented comment, not a continuation\r\n"
		  "data_dir=/d\r\n"
		  "log_level = error\r\n"
		  "[raft]\r\n"
		  "listen = [::1]:7101\r\n"
		  "peers = node1=[::1]:7101\r\n"
		  "election_timeout = 60s\r\n"
		  "heartbeat_interval = 20s\r\n"
		  "[api]\r\n"
		  "listen = [::1]:8101\r\n"
		  "token_file = @TOKEN@\r\n",
		  &c);
	assert_string_equal(c.cluster_name, "main");
	assert_string_equal(c.data_dir, "/d");
	assert_int_equal(c.log_level, LOG_ERROR);
	assert_int_equal(c.election_timeout_ms, 60000);
	assert_int_equal(c.heartbeat_ms, 20000);
	assert_string_equal(c.api_url, "http://[::1]:8101");
	cfg_free(&c);

	/* sections in any order; no trailing newline */
	expect_ok(API RAFT NODE "[cluster]\nname = main", &c);
	assert_string_equal(c.cluster_name, "main");
	cfg_free(&c);
}

static void test_long_lines(void **state)
{
	(void)state;
	char text[2048], want[64];
	struct cfg c;
	/* a 198-character comment line is fine */
	int n = snprintf(text, sizeof text, "%s;", LAST_R);
	memset(text + n, 'x', 197);
	strcpy(text + n + 197, "\n");
	expect_ok(text, &c);
	cfg_free(&c);
	/* 199 characters is not, whatever the line is */
	memset(text + n, 'x', 198);
	strcpy(text + n + 198, "\n");
	expect_err(text, "12: line too long (199 characters, at most 198)");
	/* a very long value line */
	n = snprintf(text, sizeof text, "%surl = http://", LAST_A);
	memset(text + n, 'a', 1000);
	strcpy(text + n + 1000, "\n");
	snprintf(want, sizeof want,
		 "12: line too long (%d characters, at most 198)",
		 (int)strlen("url = http://") + 1000);
	expect_err(text, want);
}

static void test_nul_byte(void **state)
{
	(void)state;
	static const char text[] = CLUSTER "[node]\nname = no\0de1\n";
	struct cfg c;
	char err[256], want[256];
	write_file(ini_path, text, sizeof text - 1);
	int rc = cfg_load(ini_path, &c, err, sizeof err);
	assert_int_equal(rc, ERR_INVAL);
	snprintf(want, sizeof want, "%s:4: line contains a NUL byte",
		 ini_path);
	assert_string_equal(err, want);
	assert_true(is_zeroed(&c));
}

static void test_unreadable_config(void **state)
{
	(void)state;
	struct cfg c;
	char err[256], want[300], path[160];

	fixture_path(path, sizeof path, "missing.ini");
	memset(&c, 0x5A, sizeof c);
	assert_int_equal(cfg_load(path, &c, err, sizeof err), ERR_INVAL);
	snprintf(want, sizeof want,
		 "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);
	assert_true(is_zeroed(&c));

	/* a directory opens but cannot be read */
	assert_int_equal(cfg_load(dir, &c, err, sizeof err), ERR_INVAL);
	snprintf(want, sizeof want, "%s: cannot read: Is a directory", dir);
	assert_string_equal(err, want);
	assert_true(is_zeroed(&c));

	/* no permission (root can read anything) */
	if (geteuid() != 0) {
		fixture_path(path, sizeof path, "secret.ini");
		write_file(path, CLUSTER, strlen(CLUSTER));
		assert_int_equal(chmod(path, 0), 0);
		assert_int_equal(cfg_load(path, &c, err, sizeof err),
				 ERR_INVAL);
		snprintf(want, sizeof want, "%s: cannot open: %s", path,
			 strerror(EACCES));
		assert_string_equal(err, want);
		assert_true(is_zeroed(&c));
	}
}

static void test_token_files(void **state)
{
	(void)state;
	struct cfg c;
	char path[160], big[4097];

	/* exactly 4096 bytes is fine, and trimmed */
	memset(big, 'k', sizeof big);
	big[0] = ' ';
	big[4095] = '\n';
	fixture_path(path, sizeof path, "token_4096");
	write_file(path, big, 4096);
	expect_ok(CLUSTER NODE RAFT "[api]\nlisten = 127.0.0.1:8101\n"
				    "token_file = @DIR@/token_4096\n",
		  &c);
	assert_int_equal(strlen(c.token), 4094);
	assert_int_equal(c.token[0], 'k');
	cfg_free(&c);
}

static void test_error_buffer(void **state)
{
	(void)state;
	struct cfg c;
	char small[12];
	write_ini(LAST_R "listn = x\n");
	memset(small, 'Z', sizeof small);
	assert_int_equal(cfg_load(ini_path, &c, small, sizeof small),
			 ERR_INVAL);
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_int_equal(cfg_load(ini_path, &c, NULL, 0), ERR_INVAL);
	assert_true(is_zeroed(&c));
	assert_int_equal(cfg_load(NULL, &c, small, sizeof small), ERR_INVAL);
	assert_true(is_zeroed(&c));
}

static void test_free_zeroed(void **state)
{
	(void)state;
	struct cfg c;
	memset(&c, 0, sizeof c);
	cfg_free(&c);
	cfg_free(NULL);
	assert_true(is_zeroed(&c));
}

/* ---- PostgreSQL and HA: success paths --------------------------------- */

static void assert_pg_defaults(const struct cfg_pg *pg)
{
	assert_string_equal(pg->bin_dir, "/usr/lib/postgresql/15/bin");
	assert_string_equal(pg->listen, "127.0.0.1:5432");
	assert_string_equal(pg->connect_address, "127.0.0.1:5432");
	assert_string_equal(pg->socket_dir, "/var/run/postgresql");
	assert_string_equal(pg->superuser, "postgres");
	assert_null(pg->superuser_password);
	assert_string_equal(pg->replication_user, "replicator");
	assert_null(pg->replication_password);
	assert_true(pg->use_slots);
	assert_true(pg->use_rewind);
	assert_true(pg->remove_data_on_rewind_failure);
	assert_int_equal(pg->nparams, 0);
	assert_null(pg->params);
	assert_int_equal(pg->ninitdb, 2);
	assert_string_equal(pg->initdb[0], "--data-checksums");
	assert_string_equal(pg->initdb[1], "--encoding=UTF8");
	assert_int_equal(pg->npg_hba, 0);
	assert_null(pg->post_bootstrap);
	assert_int_equal(pg->nusers, 0);
	assert_false(pg->nofailover);
	assert_false(pg->noloadbalance);
	assert_false(pg->nosync);
	assert_false(pg->clonefrom);
	assert_int_equal(pg->failover_priority, 1);
	assert_int_equal(pg->ttl_ms, 2500);
	assert_int_equal(pg->loop_wait_ms, 400);
	assert_int_equal(pg->safety_margin_ms, 300);
	assert_int_equal(pg->maximum_lag_on_failover, 1048576);
	assert_int_equal(pg->synchronous_mode, CFG_SYNC_OFF);
	assert_int_equal(pg->synchronous_node_count, 1);
	assert_int_equal(pg->crash_restart_timeout_ms, 5000);
	assert_int_equal(pg->wd_mode, CFG_WD_AUTOMATIC);
	assert_string_equal(pg->wd_device, "/dev/watchdog");
	assert_int_equal(pg->wd_timeout_ms, 1000);
	assert_true(pg->fencer);
	assert_null(pg->on_start);
	assert_null(pg->on_stop);
	assert_null(pg->on_role_change);
}

/* [postgresql] with only data_dir: every default, and they pass I1/I3. */
static void test_pg_defaults(void **state)
{
	(void)state;
	struct cfg c;
	expect_ok(LAST_P, &c);
	assert_true(c.pg.enabled);
	assert_string_equal(c.pg.data_dir, "/var/lib/postgresql/15/main");
	assert_pg_defaults(&c.pg);
	cfg_free(&c);
	assert_true(is_zeroed(&c));
}

/* Without [postgresql] the node runs the store only; defaults still
 * apply, and the other PostgreSQL sections are allowed. */
static void test_store_only(void **state)
{
	(void)state;
	struct cfg c;
	expect_ok(minimal, &c);
	assert_false(c.pg.enabled);
	assert_null(c.pg.data_dir);
	assert_pg_defaults(&c.pg);
	cfg_free(&c);

	/* the HA timing is not checked for a store-only node ... */
	expect_ok(LAST_R "election_timeout = 2s\n"
			 "[tags]\nnofailover = on\n"
			 "[bootstrap]\ninitdb =\n",
		  &c);
	assert_false(c.pg.enabled);
	assert_true(c.pg.nofailover);
	assert_int_equal(c.pg.ninitdb, 0); /* given empty: no arguments */
	assert_null(c.pg.initdb);
	cfg_free(&c);
	/* ... unless it has [ha] or [watchdog] */
	expect_err(LAST_R "election_timeout = 2s\n[watchdog]\n",
		   "12: [ha] ttl 2500ms is too short: ttl*(1-rho) - "
		   "safety_margin (2197ms) must exceed 3.5*election_timeout + "
		   "loop_wait (7400ms)");
}

static const char pg_full[] =
	"[cluster]\n"
	"name = main\n"
	"[node]\n"
	"name = node1\n"
	"data_dir = /var/lib/pgwarden/node1\n"
	"[raft]\n"
	"listen = 127.0.0.1:7101\n"
	"peers = node1=127.0.0.1:7101\n"
	"election_timeout = 300ms\n"
	"heartbeat_interval = 50ms\n"
	"[api]\n"
	"listen = 127.0.0.1:8101\n"
	"token_file = @TOKEN@\n"
	"[postgresql]\n"
	"bin_dir = /usr/lib/postgresql/16/bin\n"
	"data_dir = /var/lib/pgwarden2/../postgresql/15/pgwarden-node1\n"
	"listen = *:5441\n"
	"connect_address = 10.0.0.1:5441\n"
	"socket_dir = /tmp\n"
	"superuser = admin\n"
	"superuser_password_file = @DIR@/pw\n"
	"replication_user = repl\n"
	"replication_password = r3pl#x   ; an inline comment\n"
	"use_slots = off\n"
	"use_rewind = No\n"
	"remove_data_directory_on_rewind_failure = FALSE\n"
	"[postgresql.parameters]\n"
	"shared_buffers = 128MB\n"
	"Max_Connections = 200\n"
	"log_line_prefix = '%m [%p] '\n"
	"auto_explain.log_min_duration =\n"
	"hot_standby = on\n"
	"[bootstrap]\n"
	"initdb = --data-checksums   --encoding=UTF8\n"
	"         --locale=C.UTF-8\n"
	"pg_hba = local all all peer\n"
	"         host replication repl 127.0.0.1/32 scram-sha-256\n"
	"\n"
	"    hostssl all all 10.0.0.0 255.0.0.0 md5 clientcert=verify-ca\n"
	"post_bootstrap = @DIR@/script\n"
	"[bootstrap.user.alice]\n"
	"password = alice pw\n"
	"options = createdb, login\n"
	"[bootstrap.user.bob]\n"
	"password_file = @DIR@/pw\n"
	"[bootstrap.user.carol]\n"
	"options = NOLOGIN NoInherit,noSuperUser\n"
	"[tags]\n"
	"nofailover = yes\n"
	"noloadbalance = 1\n"
	"nosync = TRUE\n"
	"clonefrom = on\n"
	"failover_priority = 0\n"
	"[ha]\n"
	"ttl = 3s\n"
	"loop_wait = 500ms\n"
	"safety_margin = 250\n"
	"maximum_lag_on_failover = 16MB\n"
	"synchronous_mode = strict\n"
	"synchronous_node_count = 2\n"
	"crash_restart_timeout = 10s\n"
	"[watchdog]\n"
	"mode = required\n"
	"device = /dev/watchdog1\n"
	"timeout = 1s\n"
	"[callbacks]\n"
	"on_start = @DIR@/script\n"
	"on_stop = @DIR@/script\n"
	"on_role_change = @DIR@/script\n";

static void test_pg_all_keys(void **state)
{
	(void)state;
	struct cfg c;
	char script[160];
	fixture_path(script, sizeof script, "script");
	expect_ok(pg_full, &c);
	const struct cfg_pg *pg = &c.pg;
	assert_true(pg->enabled);
	assert_string_equal(pg->bin_dir, "/usr/lib/postgresql/16/bin");
	assert_string_equal(pg->data_dir,
			    "/var/lib/pgwarden2/../postgresql/15/pgwarden-node1");
	assert_string_equal(pg->listen, "*:5441");
	assert_string_equal(pg->connect_address, "10.0.0.1:5441");
	assert_string_equal(pg->socket_dir, "/tmp");
	assert_string_equal(pg->superuser, "admin");
	assert_string_equal(pg->superuser_password, "pa55 word");
	assert_string_equal(pg->replication_user, "repl");
	assert_string_equal(pg->replication_password, "r3pl#x");
	assert_false(pg->use_slots);
	assert_false(pg->use_rewind);
	assert_false(pg->remove_data_on_rewind_failure);

	assert_int_equal(pg->nparams, 5);
	assert_string_equal(pg->params[0].name, "shared_buffers");
	assert_string_equal(pg->params[0].value, "128MB");
	assert_string_equal(pg->params[1].name, "Max_Connections");
	assert_string_equal(pg->params[1].value, "200");
	assert_string_equal(pg->params[2].value, "'%m [%p] '");
	assert_string_equal(pg->params[3].name,
			    "auto_explain.log_min_duration");
	assert_string_equal(pg->params[3].value, "");
	assert_string_equal(pg->params[4].name, "hot_standby");

	assert_int_equal(pg->ninitdb, 3);
	assert_string_equal(pg->initdb[0], "--data-checksums");
	assert_string_equal(pg->initdb[1], "--encoding=UTF8");
	assert_string_equal(pg->initdb[2], "--locale=C.UTF-8");
	assert_int_equal(pg->npg_hba, 3);
	assert_string_equal(pg->pg_hba[0], "local all all peer");
	assert_string_equal(pg->pg_hba[1],
			    "host replication repl 127.0.0.1/32 scram-sha-256");
	assert_string_equal(pg->pg_hba[2], "hostssl all all 10.0.0.0 "
					   "255.0.0.0 md5 clientcert=verify-ca");
	assert_string_equal(pg->post_bootstrap, script);

	assert_int_equal(pg->nusers, 3);
	assert_string_equal(pg->users[0].name, "alice");
	assert_string_equal(pg->users[0].password, "alice pw");
	assert_string_equal(pg->users[0].options, "CREATEDB LOGIN");
	assert_string_equal(pg->users[1].name, "bob");
	assert_string_equal(pg->users[1].password, "pa55 word");
	assert_string_equal(pg->users[1].options, "");
	assert_string_equal(pg->users[2].name, "carol");
	assert_null(pg->users[2].password);
	assert_string_equal(pg->users[2].options,
			    "NOLOGIN NOINHERIT NOSUPERUSER");

	assert_true(pg->nofailover);
	assert_true(pg->noloadbalance);
	assert_true(pg->nosync);
	assert_true(pg->clonefrom);
	assert_int_equal(pg->failover_priority, 0);
	assert_int_equal(pg->ttl_ms, 3000);
	assert_int_equal(pg->loop_wait_ms, 500);
	assert_int_equal(pg->safety_margin_ms, 250);
	assert_int_equal(pg->maximum_lag_on_failover, 16u << 20);
	assert_int_equal(pg->synchronous_mode, CFG_SYNC_STRICT);
	assert_int_equal(pg->synchronous_node_count, 2);
	assert_int_equal(pg->crash_restart_timeout_ms, 10000);
	assert_int_equal(pg->wd_mode, CFG_WD_REQUIRED);
	assert_string_equal(pg->wd_device, "/dev/watchdog1");
	assert_int_equal(pg->wd_timeout_ms, 1000);
	assert_string_equal(pg->on_start, script);
	assert_string_equal(pg->on_stop, script);
	assert_string_equal(pg->on_role_change, script);
	cfg_free(&c);
	assert_true(is_zeroed(&c));
}

/* Values at the edges of what is accepted. */
static void test_pg_values(void **state)
{
	(void)state;
	struct cfg c;
	static const struct {
		const char *text;
		uint64_t bytes;
	} sizes[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "1kB", 1024 },
		{ "1MB", 1048576 },
		{ "3GB", 3ULL << 30 },
		{ "1073741824GB", 1ULL << 60 },
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char text[512];
		snprintf(text, sizeof text,
			 "%s[ha]\nmaximum_lag_on_failover = %s\n", LAST_P,
			 sizes[i].text);
		expect_ok(text, &c);
		assert_true(c.pg.maximum_lag_on_failover == sizes[i].bytes);
		cfg_free(&c);
	}
	static const char *const bools[] = { "true", "Yes", "ON", "1",
					     "false", "NO", "Off", "0" };
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		char text[512];
		snprintf(text, sizeof text, "%snosync = %s\n",
			 LAST_P "[tags]\n", bools[i]);
		expect_ok(text, &c);
		assert_int_equal(c.pg.nosync, i < 4);
		cfg_free(&c);
	}

	/* socket_dir: 90 bytes is the most */
	char text[512], dir90[92], want[256], shownv[80];
	dir90[0] = '/';
	memset(dir90 + 1, 's', 89);
	dir90[90] = '\0';
	snprintf(text, sizeof text, "%ssocket_dir = %s\n", LAST_P, dir90);
	expect_ok(text, &c);
	assert_int_equal(strlen(c.pg.socket_dir), 90);
	cfg_free(&c);
	strcpy(dir90 + 90, "s");
	snprintf(text, sizeof text, "%ssocket_dir = %s\n", LAST_P, dir90);
	memcpy(shownv, dir90, 76);
	strcpy(shownv + 76, "...");
	snprintf(want, sizeof want,
		 "14: [postgresql] socket_dir: invalid value '%s' (an absolute "
		 "path of at most 90 bytes is required)",
		 shownv);
	expect_err(text, want);

	/* a data_dir next to [node]'s, sharing a prefix, is fine */
	expect_ok(LAST_A "[postgresql]\ndata_dir = /var/lib/pgwarden2\n", &c);
	cfg_free(&c);
	/* wildcard listen with connect_address; [::] too */
	expect_ok(LAST_P "listen = [::]:5441\nconnect_address = db1:5441\n",
		  &c);
	assert_string_equal(c.pg.connect_address, "db1:5441");
	cfg_free(&c);
	/* hot_standby may be set; the I3 check is off with the watchdog */
	expect_ok(LAST_P "[postgresql.parameters]\nhot_standby = off\n"
			 "[watchdog]\nmode = off\ntimeout = 2s\n",
		  &c);
	assert_int_equal(c.pg.wd_mode, CFG_WD_OFF);
	assert_true(c.pg.fencer);
	cfg_free(&c);
	/* the fencer can be turned off on its own */
	expect_ok(LAST_P "[watchdog]\nmode = off\nfencer = off\n", &c);
	assert_false(c.pg.fencer);
	cfg_free(&c);
	/* the limits themselves: loop_wait = ttl/3, I1 and I3 just hold */
	expect_ok(LAST_P "[ha]\nttl = 3000\nloop_wait = 1000\n"
			 "safety_margin = 0\n[watchdog]\ntimeout = 1s\n",
		  &c);
	/* 0 is no margin, the value checked and the value the agent uses
	 * (timing_valid_span), never replaced by a default */
	assert_int_equal(c.pg.safety_margin_ms, 0);
	assert_int_equal(timing_valid_span(c.pg.ttl_ms, c.pg.safety_margin_ms),
			 2997);
	cfg_free(&c);
	expect_ok(LAST_R "election_timeout = 400\n" PG
			 "[ha]\nttl = 2004\nsafety_margin = 200\n",
		  &c); /* 2004 - ceil(2.004) = 2001; 2001 - 200 = 1801 > 1800 */
	cfg_free(&c);
	/* rounded as the run time rounds: 2003 - 3 - 200 = 1800, not above */
	expect_err(LAST_R "election_timeout = 400\n" PG
			  "[ha]\nttl = 2003\nsafety_margin = 200\n",
		   "17: [ha] ttl 2003ms is too short: ttl*(1-rho) - "
		   "safety_margin (1800ms) must exceed 3.5*election_timeout + "
		   "loop_wait (1800ms)");
	cfg_free(&c);
	expect_err(LAST_R "election_timeout = 400\n" PG
			  "[ha]\nttl = 2002\nsafety_margin = 200\n",
		   "17: [ha] ttl 2002ms is too short: ttl*(1-rho) - "
		   "safety_margin (1799ms) must exceed 3.5*election_timeout + "
		   "loop_wait (1800ms)");
}

/* Each [bootstrap.user.NAME] has its own keys. */
static void test_users(void **state)
{
	(void)state;
	struct cfg c;
	expect_ok(LAST_A "[bootstrap.user.a]\npassword = x\noptions = login\n"
			 "[bootstrap.user.b]\npassword_file = @DIR@/pw\n"
			 "options = REPLICATION\n"
			 "[bootstrap.user.A]\n",
		  &c);
	assert_int_equal(c.pg.nusers, 3);
	assert_string_equal(c.pg.users[0].password, "x");
	assert_string_equal(c.pg.users[0].options, "LOGIN");
	assert_string_equal(c.pg.users[1].password, "pa55 word");
	assert_string_equal(c.pg.users[1].options, "REPLICATION");
	assert_string_equal(c.pg.users[2].name, "A");
	assert_null(c.pg.users[2].password);
	cfg_free(&c);
}

/* The deploy examples must load (with a token file of ours). */
static void test_deploy_examples(void **state)
{
	(void)state;
	const char *src = getenv("PGW_SRCDIR");
	if (!src)
		fail_msg("PGW_SRCDIR is not set (run through meson test)");
	for (int i = 1; i <= 3; i++) {
		char path[512], line[256], text[8192] = "";
		snprintf(path, sizeof path, "%s/deploy/examples/node%d.ini",
			 src, i);
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof line, f)) {
			if (strncmp(line, "token_file", 10) == 0)
				strcpy(line, "token_file = @TOKEN@\n");
			assert_true(strlen(text) + strlen(line) < sizeof text);
			strcat(text, line);
		}
		fclose(f);
		struct cfg c;
		char name[8];
		expect_ok(text, &c);
		snprintf(name, sizeof name, "node%d", i);
		assert_string_equal(c.node_name, name);
		assert_int_equal(c.npeers, 3);
		assert_false(c.join);
		char pgdir[64], listen[32];
		snprintf(pgdir, sizeof pgdir,
			 "/var/lib/postgresql/15/pgwarden-node%d", i);
		snprintf(listen, sizeof listen, "127.0.0.1:544%d", i);
		assert_true(c.pg.enabled);
		assert_string_equal(c.pg.data_dir, pgdir);
		assert_string_equal(c.pg.listen, listen);
		assert_string_equal(c.pg.connect_address, listen);
		assert_string_equal(c.pg.socket_dir, "/var/run/postgresql");
		cfg_free(&c);
	}
}

static void test_split_hostport(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *host; /* NULL: invalid */
		uint16_t port;
	} t[] = {
		{ "127.0.0.1:7101", "127.0.0.1", 7101 },
		{ "localhost:1", "localhost", 1 },
		{ "db-1.example.com:65535", "db-1.example.com", 65535 },
		{ "[::1]:8101", "::1", 8101 },
		{ "[fe80::1%eth0]:80", "fe80::1%eth0", 80 },
		{ "[::]:80", "::", 80 },
		{ "h:007", "h", 7 },
		{ "127.0.0.1", NULL, 0 },
		{ "127.0.0.1:", NULL, 0 },
		{ ":80", NULL, 0 },
		{ "h:0", NULL, 0 },
		{ "h:65536", NULL, 0 },
		{ "h:99999999999999999999", NULL, 0 },
		{ "h:-1", NULL, 0 },
		{ "h:+1", NULL, 0 },
		{ "h:1 ", NULL, 0 },
		{ "h :1", NULL, 0 },
		{ "a/b:1", NULL, 0 },
		{ "::1:80", NULL, 0 },
		{ "[::1]", NULL, 0 },
		{ "[::1]80", NULL, 0 },
		{ "[]:80", NULL, 0 },
		{ "[zz]:80", NULL, 0 },
		{ "[1.2.3.4]:80", NULL, 0 },
		{ "[::1%]:80", NULL, 0 },
		{ "", NULL, 0 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char host[64] = "";
		uint16_t port = 0;
		int rc = cfg_split_hostport(t[i].in, host, sizeof host, &port);
		if (!t[i].host) {
			if (rc != ERR_INVAL)
				print_error("accepted '%s'\n", t[i].in);
			assert_int_equal(rc, ERR_INVAL);
			continue;
		}
		if (rc != 0)
			print_error("rejected '%s'\n", t[i].in);
		assert_int_equal(rc, 0);
		assert_string_equal(host, t[i].host);
		assert_int_equal(port, t[i].port);
	}
	char tiny[4];
	uint16_t port;
	assert_int_equal(cfg_split_hostport("abcd:1", tiny, sizeof tiny, &port),
			 ERR_INVAL);
	assert_int_equal(cfg_split_hostport("abc:1", tiny, sizeof tiny, &port),
			 0);
	assert_int_equal(cfg_split_hostport(NULL, tiny, sizeof tiny, &port),
			 ERR_INVAL);
}

/* Fail the 1st, 2nd, ... allocation until the load succeeds: every run
 * returns ERR_NOMEM with the struct zeroed (LeakSanitizer checks that
 * nothing leaks). */
static void sweep(const char *text, int final_rc)
{
	char err[512];
	struct cfg c;
	long n;
	write_ini(text);
	for (n = 0; n < 1000; n++) {
		mem_fail_after(n);
		int rc = cfg_load(ini_path, &c, err, sizeof err);
		mem_fail_after(-1);
		if (rc == final_rc)
			break;
		assert_int_equal(rc, ERR_NOMEM);
		assert_true(is_zeroed(&c));
		assert_non_null(strstr(err, ": out of memory"));
	}
	assert_true(n > 3 && n < 1000);
	if (final_rc == 0)
		cfg_free(&c);
	else
		assert_true(is_zeroed(&c));
}

static void test_alloc_sweep(void **state)
{
	(void)state;
	sweep(full, 0);
	sweep(minimal, 0);
	sweep(pg_full, 0);
	/* an error found after everything was allocated */
	sweep(LAST_R "heartbeat_interval = 200\n", ERR_INVAL);
	sweep(CLUSTER NODE API "[raft]\nlisten = 127.0.0.1:7101\n"
			       "peers = node1=127.0.0.1:7109, node2=a:1, "
			       "node3=b:1\n",
	      ERR_INVAL);
	sweep(LAST_A "[bootstrap.user.alice]\n[postgresql.parameters]\n"
		     "work_mem = 4MB\n[postgresql]\n"
		     "data_dir = /var/lib/pgwarden/pg\n",
	      ERR_INVAL);
	sweep(LAST_P "[ha]\nttl = 2000\n", ERR_INVAL);
}

/* base/timing.h against the rules, in exact rationals: shrink(d) is the
 * largest whole ms <= d*(1-rho), stretch(d) the smallest >= d*(1+rho),
 * election(et) the smallest >= 3.5*et; rho = 1/1000. */
static void test_timing(void **state)
{
	(void)state;
	for (uint64_t d = 0; d <= 200000; d += (d < 5000 ? 1 : 997)) {
		uint64_t lo = timing_shrink(d), hi = timing_stretch(d);
		/* lo*1000 <= d*999 < (lo+1)*1000 */
		assert_true(lo * 1000 <= d * 999);
		assert_true((lo + 1) * 1000 > d * 999);
		assert_true(hi * 1000 >= d * 1001);
		assert_true(hi == 0 || (hi - 1) * 1000 < d * 1001);
		uint64_t e = timing_election(d);
		assert_true(e * 10 >= d * 35);
		assert_true(e == 0 || (e - 1) * 10 < d * 35);
		assert_int_equal(timing_valid_span(d, 0), lo);
		assert_int_equal(timing_valid_span(d, lo), 0);
		assert_int_equal(timing_valid_span(d, lo + 1), 0);
		if (lo > 7)
			assert_int_equal(timing_valid_span(d, 7), lo - 7);
	}
}

/* The cluster-wide [ha] in the store: written as the ini writes values,
 * read back with the ini's own checks (types, ranges, I1/I3 against this
 * node's election_timeout and watchdog). */
static void test_cluster_ha(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_ha h, back;
	char js[1024], err[256];
	expect_ok(LAST_P "[ha]\nttl = 3s\nloop_wait = 500\nsafety_margin = 0\n"
			 "maximum_lag_on_failover = 2MB\nsynchronous_mode = "
			 "strict\nsynchronous_node_count = 2\n"
			 "crash_restart_timeout = 7s\nmove_raft_leader = off\n",
		  &c);
	cfg_ha_of(&c, &h);
	assert_int_equal(h.ttl_ms, 3000);
	assert_int_equal(h.safety_margin_ms, 0);
	assert_true(cfg_ha_to_json(&h, js, sizeof js) > 0);
	memset(&back, 0xA5, sizeof back);
	assert_int_equal(cfg_ha_from_json(&c, js, &back, err, sizeof err), 0);
	assert_int_equal(back.ttl_ms, 3000);
	assert_int_equal(back.loop_wait_ms, 500);
	assert_int_equal(back.safety_margin_ms, 0);
	assert_int_equal(back.maximum_lag_on_failover, 2 * 1048576);
	assert_int_equal(back.synchronous_mode, CFG_SYNC_STRICT);
	assert_int_equal(back.synchronous_node_count, 2);
	assert_int_equal(back.crash_restart_timeout_ms, 7000);
	assert_false(back.move_raft_leader);
	char d[256];
	cfg_ha_diff(&h, &back, d, sizeof d);
	assert_string_equal(d, "");
	assert_int_equal(cfg_ha_to_json(&h, js, 10), ERR_INVAL);
	cfg_free(&c);

	/* a node with the defaults reads another node's values */
	expect_ok(LAST_P, &c);
	struct cfg_ha mine;
	cfg_ha_of(&c, &mine);
	assert_int_equal(cfg_ha_from_json(&c,
					  "{\"ha\":{\"ttl\":\"10s\","
					  "\"synchronous_mode\":\"on\"}}",
					  &h, err, sizeof err),
			 0);
	assert_int_equal(h.ttl_ms, 10000);
	assert_int_equal(h.synchronous_mode, CFG_SYNC_ON);
	assert_int_equal(h.loop_wait_ms, 400); /* absent: this node's */
	cfg_ha_diff(&mine, &h, d, sizeof d);
	assert_string_equal(d, "ttl, synchronous_mode");

	/* refused, naming the key and the reason; *out unchanged */
	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "{\"ha\":{\"ttl\":\"1s\"}}",
		  "cluster config: [ha] loop_wait (400ms) must be at most a "
		  "third of ttl (1000ms)" },
		{ "{\"ha\":{\"ttl\":\"2000ms\"}}",
		  "cluster config: [ha] ttl 2000ms is too short: ttl*(1-rho) - "
		  "safety_margin (1698ms) must exceed 3.5*election_timeout + "
		  "loop_wait (1800ms)" },
		{ "{\"ha\":{\"ttl\":\"fast\"}}",
		  "cluster config: [ha] ttl: invalid value 'fast' (expected "
		  "milliseconds, or a number with unit ms or s, 500..600000 "
		  "ms)" },
		{ "{\"ha\":{\"ttl\":2500}}",
		  "cluster config: [ha] ttl: expected a string value" },
		{ "{\"ha\":{\"tll\":\"2s\"}}",
		  "cluster config: [ha] tll: unknown key" },
		{ "{\"ha\":{},\"x\":1}",
		  "cluster config: expected {\"ha\": {...}} and nothing else" },
		{ "[1]", "cluster config: expected {\"ha\": {...}} and nothing "
			 "else" },
		{ "{\"ha\":{\"synchronous_node_count\":\"0\"}}",
		  "cluster config: [ha] synchronous_node_count: invalid value "
		  "'0' (expected a whole number, 1..16)" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cfg_ha keep = h;
		assert_int_equal(cfg_ha_from_json(&c, bad[i].json, &h, err,
						  sizeof err),
				 ERR_INVAL);
		assert_string_equal(err, bad[i].want);
		assert_memory_equal(&keep, &h, sizeof h);
	}
	assert_int_equal(cfg_ha_from_json(&c, "{nope", &h, err, sizeof err),
			 ERR_INVAL);
	assert_non_null(strstr(err, "cluster config: not a JSON object"));
	cfg_free(&c);

	/* I3 is checked with this node's own watchdog timeout */
	expect_ok(LAST_P "[ha]\nttl = 4s\n[watchdog]\ntimeout = 2s\n", &c);
	assert_int_equal(cfg_ha_from_json(&c,
					  "{\"ha\":{\"ttl\":\"3s\","
					  "\"safety_margin\":\"700ms\"}}",
					  &h, err, sizeof err),
			 ERR_INVAL);
	assert_string_equal(err, "cluster config: [watchdog] timeout 2000ms is "
				 "too long: ttl*(1-rho) - timeout - "
				 "safety_margin (297ms) must exceed loop_wait "
				 "(400ms)");
	cfg_free(&c);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_minimal_example),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_join_without_self),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_unreadable_config),
		cmocka_unit_test(test_token_files),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_free_zeroed),
		cmocka_unit_test(test_pg_defaults),
		cmocka_unit_test(test_store_only),
		cmocka_unit_test(test_pg_all_keys),
		cmocka_unit_test(test_pg_values),
		cmocka_unit_test(test_timing),
		cmocka_unit_test(test_cluster_ha),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_deploy_examples),
		cmocka_unit_test(test_split_hostport),
		cmocka_unit_test(test_alloc_sweep),
	};
	enum { NFIXED = sizeof fixed / sizeof fixed[0] };
	enum { NCASES = sizeof cases / sizeof cases[0] };
	static struct CMUnitTest all[NFIXED + NCASES];

	memcpy(all, fixed, sizeof fixed);
	for (size_t i = 0; i < NCASES; i++) {
		all[NFIXED + i] = (struct CMUnitTest){
			.name = cases[i].name,
			.test_func = run_case,
			.initial_state = (void *)&cases[i],
		};
	}
	return _cmocka_run_group_tests("cfg", all, NFIXED + NCASES,
				       group_setup, group_teardown);
}
