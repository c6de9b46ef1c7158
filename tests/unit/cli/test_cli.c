/* test_cli.c - unit tests for the CLI's pure parts (src/cli/cli.c, included
 * so that its static functions can be called). */
#include "cli/cli.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

static int parse(struct cli_args *a, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, errlen);
	argv[argc++] = (char *)"pgwarden";
	for (char *s; (s = va_arg(ap, char *)) != NULL;)
		argv[argc++] = s;
	va_end(ap);
	return cli_parse(argc, argv, a, err, errlen);
}

static void test_parse_options_anywhere(void **state)
{
	(void)state;
	struct cli_args a;
	char err[128];
	assert_int_equal(parse(&a, err, sizeof(err), "-e", "h1:1,h2:2", "get",
			       "/a", "--prefix", "-o", "json", "--timeout=2",
			       NULL),
			 0);
	assert_int_equal(a.npos, 2);
	assert_string_equal(a.pos[0], "get");
	assert_string_equal(a.pos[1], "/a");
	assert_true(a.seen & OPT(O_PREFIX));
	assert_string_equal(a.val[O_ENDPOINTS], "h1:1,h2:2");
	assert_string_equal(a.val[O_OUTPUT], "json");
	assert_string_equal(a.val[O_TIMEOUT], "2");
	/* etcdctl spellings and -ovalue */
	assert_int_equal(parse(&a, err, sizeof(err), "member", "add", "n4",
			       "--peer-urls=http://h:7", "-wtable",
			       "--endpoints", "x", NULL),
			 0);
	assert_string_equal(a.val[O_PEER_URL], "http://h:7");
	assert_string_equal(a.val[O_OUTPUT], "table");
	assert_string_equal(a.val[O_ENDPOINTS], "x");
	/* "--" ends options: a value starting with '-' */
	assert_int_equal(parse(&a, err, sizeof(err), "put", "/a", "--", "-1",
			       NULL),
			 0);
	assert_int_equal(a.npos, 3);
	assert_string_equal(a.pos[2], "-1");
	/* a lone "-" is a word */
	assert_int_equal(parse(&a, err, sizeof(err), "put", "/a", "-", NULL),
			 0);
	assert_int_equal(a.npos, 3);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct cli_args a;
	char err[128];
	assert_int_equal(parse(&a, err, sizeof(err), "get", "--bogus", NULL),
			 -1);
	assert_string_equal(err, "unknown option --bogus");
	assert_int_equal(parse(&a, err, sizeof(err), "get", "/a", "-e", NULL),
			 -1);
	assert_string_equal(err, "option -e needs a value");
	assert_int_equal(parse(&a, err, sizeof(err), "get", "--prefix=yes",
			       NULL),
			 -1);
	assert_string_equal(err, "option --prefix takes no value");
	assert_int_equal(parse(&a, err, sizeof(err), "-x", NULL), -1);
}

static const struct cli_cmd *match(const char *w0, const char *w1,
				   const char *w2)
{
	struct cli_args a;
	memset(&a, 0, sizeof(a));
	const char *w[] = {w0, w1, w2};
	for (int i = 0; i < 3 && w[i]; i++)
		a.pos[a.npos++] = (char *)w[i];
	return cli_match(&a);
}

static void test_match(void **state)
{
	(void)state;
	assert_ptr_equal(match("get", "/a", NULL)->run, cmd_get);
	assert_ptr_equal(match("lease", "grant", "10")->run, cmd_lease_grant);
	assert_ptr_equal(match("members", NULL, NULL)->run, cmd_members);
	assert_ptr_equal(match("member", "list", NULL)->run, cmd_members);
	assert_ptr_equal(match("endpoint", "status", NULL)->run,
			 cmd_endpoints);
	assert_ptr_equal(match("endpoint", "health", NULL)->run,
			 cmd_endpoint_health);
	assert_ptr_equal(match("member", "add", "n4")->run, cmd_member_add);
	assert_null(match("lease", NULL, NULL));
	assert_null(match("lease", "frob", NULL));
	assert_null(match("frob", NULL, NULL));
	/* every mutating command is marked as needing the token */
	assert_true(match("put", "k", "v")->needs_token);
	assert_true(match("del", "k", NULL)->needs_token);
	assert_true(match("transfer-leader", NULL, NULL)->needs_token);
	assert_false(match("lease", "list", NULL)->needs_token);
}

/* cli_main on argv, stdout/stderr not captured: usage errors only. */
static int run(const char *a0, const char *a1, const char *a2,
	       const char *a3)
{
	char *argv[] = {(char *)"pgwarden", (char *)a0, (char *)a1,
			(char *)a2, (char *)a3, NULL};
	int argc = 1;
	while (argc < 5 && argv[argc])
		argc++;
	return cli_main(argc, argv);
}

static void test_usage_exit_codes(void **state)
{
	(void)state;
	unsetenv("PGWARDEN_TOKEN_FILE");
	assert_int_equal(run(NULL, NULL, NULL, NULL), 2);
	assert_int_equal(run("frob", NULL, NULL, NULL), 2);
	assert_int_equal(run("put", NULL, NULL, NULL) , 2);
	assert_int_equal(run("put", "/a", "1", "--prefix"), 2);
	assert_int_equal(run("get", "/a", "-o", "table"), 2);
	assert_int_equal(run("get", "/a", "--timeout", "0"), 2);
	assert_int_equal(run("get", "/a", "-e", ","), 2);
	/* mutating without a token: 2 before any request */
	assert_int_equal(run("put", "/a", "1", NULL), 2);
	assert_int_equal(run("lease", "revoke", "7", NULL), 2);
	assert_int_equal(run("--help", NULL, NULL, NULL), 0);
	assert_int_equal(run("put", "--help", NULL, NULL), 0);
}

/* `pgwarden fsm` asks no node: the table, or with --dot a digraph. */
static void test_fsm_command(void **state)
{
	(void)state;
	assert_int_equal(run("fsm", "extra", NULL, NULL), 2);
	assert_int_equal(run("fsm", "--prefix", NULL, NULL), 2);
	assert_ptr_equal(match("fsm", NULL, NULL)->run, cmd_fsm);
	assert_false(match("fsm", NULL, NULL)->needs_token);
	for (int dot = 0; dot < 2; dot++) {
		char *buf = NULL;
		size_t len = 0;
		struct cli c;
		memset(&c, 0, sizeof c);
		c.out = open_memstream(&buf, &len);
		assert_non_null(c.out);
		c.a.seen = dot ? OPT(O_DOT) : 0;
		assert_int_equal(cmd_fsm(&c, NULL, 0), 0);
		fclose(c.out);
		if (dot)
			assert_memory_equal(buf, "digraph ", 8);
		else
			assert_non_null(strstr(buf, "FROM      TO"));
		free(buf);
	}
}

static void test_ids_and_numbers(void **state)
{
	(void)state;
	char id[17];
	assert_int_equal(cli_norm_id("7", id), 0);
	assert_string_equal(id, "0000000000000007");
	assert_int_equal(cli_norm_id("72689339F34030A9", id), 0);
	assert_string_equal(id, "72689339f34030a9");
	assert_int_equal(cli_norm_id("0x1f", id), 0);
	assert_string_equal(id, "000000000000001f");
	assert_int_equal(cli_norm_id("", id), -1);
	assert_int_equal(cli_norm_id("12345678901234567", id), -1);
	assert_int_equal(cli_norm_id("xyz", id), -1);

	assert_int_equal(cli_parse_duration_ms("5"), 5000);
	assert_int_equal(cli_parse_duration_ms("2.5"), 2500);
	assert_int_equal(cli_parse_duration_ms("3s"), 3000);
	assert_int_equal(cli_parse_duration_ms("250ms"), 250);
	assert_int_equal(cli_parse_duration_ms("1m"), 60000);
	assert_int_equal(cli_parse_duration_ms("0"), -1);
	assert_int_equal(cli_parse_duration_ms("-1"), -1);
	assert_int_equal(cli_parse_duration_ms("5h"), -1);
	assert_int_equal(cli_parse_duration_ms("x"), -1);

	long long v;
	assert_int_equal(cli_parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cli_parse_u64("42", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(cli_parse_u64("-1", &v), -1);
	assert_int_equal(cli_parse_u64("4x", &v), -1);
	assert_int_equal(cli_parse_u64("", &v), -1);
}

static void test_endpoints(void **state)
{
	(void)state;
	char *eps[4];
	char err[128];
	int n = cli_split_endpoints(" 127.0.0.1:8101 ,https://h:1/, ,h2:3",
				    eps, 4, err, sizeof(err));
	assert_int_equal(n, 3);
	assert_string_equal(eps[0], "http://127.0.0.1:8101");
	assert_string_equal(eps[1], "https://h:1");
	assert_string_equal(eps[2], "http://h2:3");
	for (int i = 0; i < n; i++)
		mem_free(eps[i]);
	assert_int_equal(cli_split_endpoints(" , ", eps, 4, err, sizeof(err)),
			 -1);
	assert_int_equal(cli_split_endpoints("a,b,c,d,e", eps, 4, err,
					     sizeof(err)),
			 -1);
	assert_string_equal(err, "too many endpoints");

	char hp[64];
	cli_url_hostport("http://10.0.0.1:8104/x", hp, sizeof(hp));
	assert_string_equal(hp, "10.0.0.1:8104");
	cli_url_hostport("10.0.0.1:7104", hp, sizeof(hp));
	assert_string_equal(hp, "10.0.0.1:7104");
}

static void test_human_size(void **state)
{
	(void)state;
	/* go-humanize's Bytes, as etcdctl prints DB SIZE */
	static const struct {
		uint64_t n;
		const char *s;
	} cases[] = {
		{0, "0 B"},          {9, "9 B"},          {10, "10 B"},
		{999, "999 B"},      {1000, "1.0 kB"},    {1500, "1.5 kB"},
		{20480, "20 kB"},    {24576, "25 kB"},    {99999, "100 kB"},
		{1000000, "1.0 MB"}, {2500000000ULL, "2.5 GB"},
	};
	char buf[32];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_human_size(cases[i].n, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].s);
	}
}

static void test_table(void **state)
{
	(void)state;
	static const char *const h[] = {"ENDPOINT", "ID", "DB SIZE", "ERRORS"};
	struct cli_table t;
	assert_int_equal(cli_table_init(&t, 4, h), 0);
	const char *r1[] = {"http://10.201.217.181:2379", "c62a62b5d410be14",
			    "20 kB", ""};
	const char *r2[] = {"http://h:1", "x", NULL, "refused"};
	assert_int_equal(cli_table_add(&t, r1), 0);
	/* grow past the initial capacity */
	for (int i = 0; i < 10; i++)
		assert_int_equal(cli_table_add(&t, r2), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cli_table_print(&t, f), 0);
	fclose(f);
	const char *want =
		"+----------------------------+------------------+---------+"
		"---------+\n"
		"|          ENDPOINT          |        ID        | DB SIZE |"
		" ERRORS  |\n"
		"+----------------------------+------------------+---------+"
		"---------+\n"
		"| http://10.201.217.181:2379 | c62a62b5d410be14 |   20 kB |"
		"         |\n";
	assert_true(strncmp(buf, want, strlen(want)) == 0);
	const char *row2 =
		"|                 http://h:1 |                x |         |"
		" refused |\n";
	assert_non_null(strstr(buf, row2));
	/* header rule, header, rule, 11 rows, closing rule */
	int lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 15);
	free(buf);
	cli_table_free(&t);
	cli_table_free(&t); /* freeing a freed (zeroed) table is a no-op */
}

static void test_table_nomem(void **state)
{
	(void)state;
	static const char *const h[] = {"A", "B"};
	const char *r[] = {"1", "2"};
	/* every allocation failure point: no crash, no leak (ASan) */
	for (long n = 0; n < 40; n++) {
		struct cli_table t;
		mem_fail_after(n);
		int rc = cli_table_init(&t, 2, h);
		for (int i = 0; rc == 0 && i < 9; i++)
			rc = cli_table_add(&t, r);
		mem_fail_after(-1);
		cli_table_free(&t);
	}
}

/* ---- cli_print_rows and the commands' row makers ---- */

/* `list`'s and `history`'s columns, as cmd_list and cmd_history give
 * them */
static const char *const list_h[] = {"MEMBER", "HOST", "ROLE", "STATE",
				      "TL",     "LAG IN MB", "TAGS"};
static const char *const hist_h[] = {"TL", "LSN", "REASON", "LEADER",
				      "TIME"};

/* cli_print_rows into memory: its result, the text in *out (free()). */
static int print_rows(size_t ncols, const char *const *h, const json_t *arr,
		      cli_row_cb row, const void *arg, char **out)
{
	size_t len = 0;
	*out = NULL;
	FILE *f = open_memstream(out, &len);
	assert_non_null(f);
	int rc = cli_print_rows(f, ncols, h, arr, row, arg);
	fclose(f);
	return rc;
}

static json_t *load(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

/* Four members as GET /cluster lists them; "pg3" is the leader. */
static const char pg_members[] =
	"[{\"name\":\"pg0\",\"host\":\"10.0.0.0\",\"port\":5432,"
	"\"role\":\"primary\",\"state\":\"running\",\"timeline\":3,"
	"\"lag_bytes\":0},"
	"{\"name\":\"pg1\",\"host\":\"10.0.0.1\",\"port\":5433,"
	"\"role\":\"replica\",\"state\":\"streaming\",\"timeline\":0,"
	"\"lag_bytes\":1572864,\"tags\":{\"nofailover\":false,"
	"\"noloadbalance\":true,\"nosync\":false,\"clonefrom\":false,"
	"\"failover_priority\":0}},"
	"{\"name\":\"pg2\",\"host\":\"10.0.0.2\",\"port\":5434,"
	"\"role\":\"replica\",\"state\":\"stopped\",\"timeline\":-1,"
	"\"lag_bytes\":-1},"
	"{\"name\":\"pg3\",\"host\":\"10.0.0.3\",\"port\":5435,"
	"\"role\":\"standby_leader\",\"state\":\"starting\",\"timeline\":12,"
	"\"lag_bytes\":123,\"tags\":{\"nofailover\":true,"
	"\"noloadbalance\":true,\"nosync\":false,\"clonefrom\":false,"
	"\"failover_priority\":-1}}]";

static void test_rows_list(void **state)
{
	(void)state;
	json_t *ms = load(pg_members);
	char *out;
	assert_int_equal(print_rows(7, list_h, ms, cli_pg_member_row, "pg3",
				    &out),
			 0);
	const char *rule = "+--------+---------------+-------------------------"
			   "+-----------+----+-----------+---------------------"
			   "----------------------+\n";
	char want[4096];
	snprintf(want, sizeof want,
		 "%s"
		 "| MEMBER |     HOST      |          ROLE           |   STATE"
		 "   | TL | LAG IN MB |                   TAGS                "
		 "    |\n"
		 "%s"
		 "|    pg0 | 10.0.0.0:5432 |                 primary |   runni"
		 "ng |  3 |           |                      failover_priority"
		 ": 0 |\n"
		 "|    pg1 | 10.0.0.1:5433 |                 replica | streami"
		 "ng |    |       1.5 | noloadbalance: true, failover_priority"
		 ": 0 |\n"
		 "|    pg2 | 10.0.0.2:5434 |                 replica |   stopp"
		 "ed |    |           |                      failover_priority"
		 ": 0 |\n"
		 "|    pg3 | 10.0.0.3:5435 | standby_leader (leader) |  starti"
		 "ng | 12 |           |     nofailover: true, noloadbalance: t"
		 "rue |\n"
		 "%s",
		 rule, rule, rule);
	assert_string_equal(out, want);
	free(out);
	json_decref(ms);
}

static void test_rows_history(void **state)
{
	(void)state;
	json_t *h = load(
		"[{\"timeline\":1,\"lsn\":0,\"reason\":\"switchover to pg0\","
		"\"leader\":\"pg0\",\"time\":\"2024-05-01T10:00:00Z\"},"
		"{\"timeline\":2,\"lsn\":4345299040,\"reason\":\"switchover to "
		"pg1\",\"leader\":\"pg1\",\"time\":\"2024-05-02T10:00:00Z\"},"
		"{\"timeline\":3,\"lsn\":8690598080,\"reason\":\"switchover to "
		"pg2\",\"leader\":\"pg2\",\"time\":\"2024-05-03T10:00:00Z\"}]");
	char *out;
	assert_int_equal(print_rows(5, hist_h, h, cli_history_row, NULL, &out),
			 0);
	const char *want =
		"+----+-----------+-------------------+--------+---------------"
		"-------+\n"
		"| TL |    LSN    |      REASON       | LEADER |         TIME  "
		"       |\n"
		"+----+-----------+-------------------+--------+---------------"
		"-------+\n"
		"|  1 |       0/0 | switchover to pg0 |    pg0 | 2024-05-01T10:"
		"00:00Z |\n"
		"|  2 | 1/3000060 | switchover to pg1 |    pg1 | 2024-05-02T10:"
		"00:00Z |\n"
		"|  3 | 2/60000C0 | switchover to pg2 |    pg2 | 2024-05-03T10:"
		"00:00Z |\n"
		"+----+-----------+-------------------+--------+---------------"
		"-------+\n";
	assert_string_equal(out, want);
	free(out);
	json_decref(h);
}

/* A row maker that fails on the element equal to the integer *arg. */
static int fail_at_row(struct cli_table *t, const json_t *item,
		       const void *arg)
{
	if (json_integer_value(item) == *(const json_int_t *)arg)
		return -1;
	char v[32];
	snprintf(v, sizeof v, "%lld", (long long)json_integer_value(item));
	const char *row[] = {v};
	return cli_table_add(t, row);
}

/* n rows 0..n-1 */
static json_t *int_array(int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_integer(i));
	return a;
}

static void test_rows_edges(void **state)
{
	(void)state;
	static const char *const h[] = {"N"};
	const json_int_t never = -1;
	char *out;

	/* no rows: an empty array, no array at all, an object */
	const char *empty = "+---+\n| N |\n+---+\n+---+\n";
	json_t *a = json_array();
	assert_int_equal(print_rows(1, h, a, fail_at_row, &never, &out), 0);
	assert_string_equal(out, empty);
	free(out);
	assert_int_equal(print_rows(1, h, NULL, fail_at_row, &never, &out), 0);
	assert_string_equal(out, empty);
	free(out);
	json_t *o = json_object();
	assert_int_equal(print_rows(1, h, o, fail_at_row, &never, &out), 0);
	assert_string_equal(out, empty);
	free(out);
	json_decref(o);
	json_decref(a);

	/* growth past the table's first 8 rows, in array order */
	a = int_array(12);
	assert_int_equal(print_rows(1, h, a, fail_at_row, &never, &out), 0);
	assert_string_equal(out, "+----+\n| N  |\n+----+\n"
				 "|  0 |\n|  1 |\n|  2 |\n|  3 |\n|  4 |\n"
				 "|  5 |\n|  6 |\n|  7 |\n|  8 |\n|  9 |\n"
				 "| 10 |\n| 11 |\n+----+\n");
	free(out);

	/* a row that cannot be added: nothing printed (no half table) */
	const json_int_t at = 9;
	assert_int_equal(print_rows(1, h, a, fail_at_row, &at, &out), -1);
	assert_string_equal(out, "");
	free(out);
	json_decref(a);
}

static void test_rows_nomem(void **state)
{
	(void)state;
	json_t *ms = load(pg_members);
	/* past the table's first 8 rows, so the growth can fail too */
	json_t *many = json_array();
	for (int i = 0; i < 3; i++)
		json_array_extend(many, ms);
	char *want;
	assert_int_equal(print_rows(7, list_h, many, cli_pg_member_row, "pg3",
				    &want),
			 0);
	/* every allocation failure point: -1 and nothing printed, no leak
	 * (ASan); then the whole table */
	long n;
	for (n = 0; n < 10000; n++) {
		char *out;
		mem_fail_after(n);
		int rc = print_rows(7, list_h, many, cli_pg_member_row, "pg3",
				    &out);
		mem_fail_after(-1);
		if (rc == 0) {
			assert_string_equal(out, want);
			free(out);
			break;
		}
		assert_int_equal(rc, -1);
		assert_string_equal(out, "");
		free(out);
	}
	assert_true(n > 12 * 7); /* at least one per cell failed */
	free(want);
	json_decref(many);
	json_decref(ms);
}

static void test_knows_leader(void **state)
{
	(void)state;
	json_t *a = json_pack("{s:s, s:s}", "leader", "node1", "leader_id",
			      "1f0c000000000001");
	json_t *b = json_pack("{s:n, s:s}", "leader", "leader_id",
			      "0000000000000000");
	json_t *d = json_pack("{s:s}", "leader", "");
	assert_true(cli_knows_leader(a));
	assert_false(cli_knows_leader(b));
	assert_false(cli_knows_leader(d));
	json_decref(a);
	json_decref(b);
	json_decref(d);
}

/* ------------------------------------------------------------------ */
/* The requests the commands send, seen by a loopback HTTP listener     */

/* A one-shot HTTP server in a child process: it serves `nconn`
 * connections (one request each), answers GET /cluster with one member
 * named n2 whose api_url is this server and anything else with
 * {"message":"ok"}, and writes "METHOD PATH LEN\n" per request (LEN: the
 * Content-Length it got, -1 when none) to a pipe that the parent reads. */
struct t_srv {
	pid_t pid;
	int port;
	int rfd; /* read end of the record pipe */
};

static void t_srv_child(int lfd, int wfd, int port, int nconn)
{
	alarm(10); /* a test that never connects cannot hang the suite */
	for (int i = 0; i < nconn; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(1);
		char buf[8192];
		size_t n = 0;
		char *hend = NULL;
		while (!hend && n < sizeof(buf) - 1) {
			ssize_t k = read(c, buf + n, sizeof(buf) - 1 - n);
			if (k <= 0)
				_exit(1);
			n += (size_t)k;
			buf[n] = '\0';
			hend = strstr(buf, "\r\n\r\n");
		}
		char method[16] = "", path[256] = "";
		if (sscanf(buf, "%15s %255s", method, path) != 2)
			_exit(1);
		long clen = -1;
		for (char *h = strstr(buf, "\r\n"); h && h < hend;
		     h = strstr(h + 2, "\r\n"))
			if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
				clen = strtol(h + 17, NULL, 10);
		/* read the body, if any, before answering */
		size_t have = n - (size_t)(hend + 4 - buf);
		while (clen > 0 && have < (size_t)clen) {
			ssize_t k = read(c, buf, sizeof(buf));
			if (k <= 0)
				break;
			have += (size_t)k;
		}
		char rec[300];
		int rl = snprintf(rec, sizeof(rec), "%s %s %ld\n", method,
				  path, clen);
		if (write(wfd, rec, (size_t)rl) != rl)
			_exit(1);
		char body[256];
		if (strcmp(path, "/cluster") == 0)
			snprintf(body, sizeof(body),
				 "{\"leader\":\"n1\",\"members\":[{\"name\":"
				 "\"n2\",\"api_url\":\"http://127.0.0.1:%d\"}"
				 "]}",
				 port);
		else
			snprintf(body, sizeof(body), "{\"message\":\"ok\"}");
		char resp[512];
		int m = snprintf(resp, sizeof(resp),
				 "HTTP/1.1 200 OK\r\nContent-Type: "
				 "application/json\r\nContent-Length: %zu\r\n"
				 "Connection: close\r\n\r\n%s",
				 strlen(body), body);
		if (write(c, resp, (size_t)m) != m)
			_exit(1);
		close(c);
	}
	_exit(0);
}

static void t_srv_start(struct t_srv *s, int nconn)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	socklen_t sl = sizeof(sa);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		close(p[0]);
		t_srv_child(lfd, p[1], s->port, nconn);
	}
	close(lfd);
	close(p[1]);
	s->rfd = p[0];
}

/* Everything the server recorded (the child has exited), into buf. */
static void t_srv_finish(struct t_srv *s, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t k;
	while (n < len - 1 && (k = read(s->rfd, buf + n, len - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	close(s->rfd);
	int st = 0;
	assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Run `pgwarden -e http://127.0.0.1:PORT --token-file F words...` against
 * a fresh server that serves nconn requests; what it saw goes to seen. */
static int t_run_cli(int nconn, char *seen, size_t seenlen, ...)
{
	char tok[] = "/tmp/pgw-test-token-XXXXXX";
	int fd = mkstemp(tok);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "secret\n", 7), 7);
	close(fd);
	struct t_srv s;
	t_srv_start(&s, nconn);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	char *argv[16];
	int argc = 0;
	argv[argc++] = (char *)"pgwarden";
	argv[argc++] = (char *)"-e";
	argv[argc++] = ep;
	argv[argc++] = (char *)"--token-file";
	argv[argc++] = tok;
	va_list ap;
	va_start(ap, seenlen);
	for (char *w; (w = va_arg(ap, char *)) != NULL && argc < 15;)
		argv[argc++] = w;
	va_end(ap);
	argv[argc] = NULL;
	int rc = cli_main(argc, argv);
	t_srv_finish(&s, seen, seenlen);
	unlink(tok);
	return rc;
}

/* pause, resume and reinit send POST without a body: it must go out as a
 * POST (with Content-Length: 0), not as libcurl's default GET, which the
 * server answers with 405. */
static void test_bodyless_post_is_post(void **state)
{
	(void)state;
	char seen[1024];
	assert_int_equal(t_run_cli(1, seen, sizeof(seen), "pause", NULL), 0);
	assert_string_equal(seen, "POST /pause 0\n");
	assert_int_equal(t_run_cli(1, seen, sizeof(seen), "resume", NULL), 0);
	assert_string_equal(seen, "POST /resume 0\n");
	/* reinit reads the node's API URL from /cluster, then posts there */
	assert_int_equal(t_run_cli(2, seen, sizeof(seen), "reinit", "n2",
				   "--force", NULL),
			 0);
	assert_string_equal(seen, "GET /cluster -1\nPOST /reinitialize 0\n");
	/* the other body-less mutation: switchover --cancel is a DELETE */
	assert_int_equal(t_run_cli(1, seen, sizeof(seen), "switchover",
				   "--cancel", NULL),
			 0);
	assert_string_equal(seen, "DELETE /switchover -1\n");
	/* a POST with a body still carries it */
	assert_int_equal(t_run_cli(1, seen, sizeof(seen), "put", "/k", "v",
				   NULL),
			 0);
	assert_true(strncmp(seen, "POST /v1/kv/put ", 16) == 0);
	assert_true(strtol(seen + 16, NULL, 10) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_options_anywhere),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_usage_exit_codes),
		cmocka_unit_test(test_fsm_command),
		cmocka_unit_test(test_ids_and_numbers),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_human_size),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_nomem),
		cmocka_unit_test(test_rows_list),
		cmocka_unit_test(test_rows_history),
		cmocka_unit_test(test_rows_edges),
		cmocka_unit_test(test_rows_nomem),
		cmocka_unit_test(test_knows_leader),
		cmocka_unit_test(test_bodyless_post_is_post),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
