/* test_cfg.c - unit tests of the node configuration loader (src/cfg.c).
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

#include "cfg.h"
#include "err.h"
#include "log.h"
#include "mem.h"

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
	{ "unknown_section_empty", LAST_R "[tags]\n",
	  "12: unknown section [tags]" },
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

/* The deploy examples must load (with a token file of ours). */
static void test_deploy_examples(void **state)
{
	(void)state;
	const char *src = getenv("PGW_SRCDIR");
	if (!src)
		fail_msg("PGW_SRCDIR is not set (run through meson test)");
	for (int i = 1; i <= 3; i++) {
		char path[512], line[256], text[4096] = "";
		snprintf(path, sizeof path, "%s/deploy/examples/node%d.ini",
			 src, i);
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof line, f)) {
			if (strncmp(line, "token_file", 10) == 0)
				strcpy(line, "token_file = @TOKEN@\n");
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
	/* an error found after everything was allocated */
	sweep(LAST_R "heartbeat_interval = 200\n", ERR_INVAL);
	sweep(CLUSTER NODE API "[raft]\nlisten = 127.0.0.1:7101\n"
			       "peers = node1=127.0.0.1:7109, node2=a:1, "
			       "node3=b:1\n",
	      ERR_INVAL);
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
