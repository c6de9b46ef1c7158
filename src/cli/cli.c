/* cli.c - the operator CLI (see cli.h, docs/cli.md, docs/http-api.md).
 *
 * Flow of one invocation:
 *   1. cli_parse() reads all of argv: options anywhere (etcdctl-style),
 *      everything else is a positional word. "--" ends the options.
 *   2. cli_match() finds the command in cli_cmds[] by its leading words;
 *      the rest are its arguments. Options the command does not take, a
 *      wrong number of arguments or a bad output format: usage error, 2.
 *   3. Endpoints (-e, $PGWARDEN_ENDPOINTS, http://127.0.0.1:8101) are
 *      normalised; a command that mutates reads the token file (missing
 *      or empty token: usage error, 2).
 *   4. The handler calls cli_call() for each request:
 *        - each endpoint in order; connection refused, connect timeout
 *          (1 s) or any other transport failure -> next endpoint;
 *        - 503 (no leader / shutting down) -> next endpoint, and once
 *          every endpoint was tried, sleep a bounded backoff (100 ms
 *          doubling to 500 ms) and try them all again until --timeout
 *          runs out;
 *        - any other status is the answer: 2xx goes to the handler,
 *          others print "pgwarden: WHAT: STATUS error-field", exit 1;
 *        - a mutating request that was sent but got no answer is not
 *          resent elsewhere (it may have been applied): error, exit 1,
 *          unless doing it twice is harmless (CALL_RESENDABLE);
 *        - every request has connect timeout min(1 s, remaining) and a
 *          total timeout of the remaining --timeout, except that an
 *          endpoint with others still to try gets at most
 *          max(1 s, --timeout / number of endpoints), so one frozen
 *          node that accepts connections but never answers cannot use
 *          up the whole budget; endpoints that failed at the transport
 *          level are tried last from then on.
 *   5. The handler prints its result; exit 0.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ha/ha_fsm.h"
#include "mem.h"

#define CLI_DEFAULT_ENDPOINT "http://127.0.0.1:8101"
#define CLI_DEFAULT_TIMEOUT_MS 5000L
#define CLI_CONNECT_TIMEOUT_MS 1000L
#define CLI_BACKOFF_FIRST_MS 100L
#define CLI_BACKOFF_MAX_MS 500L
#define CLI_MAX_ENDPOINTS 32
#define CLI_MAX_POS 16
#define CLI_MAX_BODY (16u << 20) /* bytes; responses are far smaller */
#define CLI_MAX_TOKEN 4096       /* bytes */

/* ------------------------------------------------------------------ */
/* Options                                                            */

enum cli_opt {
	O_ENDPOINTS,
	O_TOKEN_FILE,
	O_TIMEOUT,
	O_OUTPUT,
	O_PREFIX,
	O_VALUE_ONLY,
	O_KEYS_ONLY,
	O_SERIALIZABLE,
	O_LEASE,
	O_PREV_REV,
	O_CREATE,
	O_ONCE,
	O_PEER_URL,
	O_API_URL,
	O_CANDIDATE,
	O_LEADER,
	O_SCHEDULED,
	O_FORCE,
	O_CANCEL,
	O_DOT,
	O_HELP,
	O__COUNT
};

#define OPT(o) (1u << (o))
#define OPTS_GLOBAL                                                     \
	(OPT(O_ENDPOINTS) | OPT(O_TOKEN_FILE) | OPT(O_TIMEOUT) | OPT(O_HELP))

struct cli_optdef {
	const char *name; /* long name, without "--" */
	char short_name;  /* 0: none */
	bool has_arg;
	enum cli_opt id;
};

static const struct cli_optdef cli_optdefs[] = {
	{"endpoints", 'e', true, O_ENDPOINTS},
	{"token-file", 0, true, O_TOKEN_FILE},
	{"timeout", 0, true, O_TIMEOUT},
	{"command-timeout", 0, true, O_TIMEOUT}, /* etcdctl's name */
	{"output", 'o', true, O_OUTPUT},
	{"write-out", 'w', true, O_OUTPUT}, /* etcdctl's name */
	{"prefix", 0, false, O_PREFIX},
	{"print-value-only", 0, false, O_VALUE_ONLY},
	{"keys-only", 0, false, O_KEYS_ONLY},
	{"serializable", 0, false, O_SERIALIZABLE},
	{"lease", 0, true, O_LEASE},
	{"prev-revision", 0, true, O_PREV_REV},
	{"create", 0, false, O_CREATE},
	{"once", 0, false, O_ONCE},
	{"peer-url", 0, true, O_PEER_URL},
	{"peer-urls", 0, true, O_PEER_URL}, /* etcdctl's name */
	{"api-url", 0, true, O_API_URL},
	{"candidate", 0, true, O_CANDIDATE},
	{"leader", 0, true, O_LEADER},
	{"primary", 0, true, O_LEADER},
	{"scheduled", 0, true, O_SCHEDULED},
	{"force", 0, false, O_FORCE},
	{"cancel", 0, false, O_CANCEL},
	{"dot", 0, false, O_DOT},
	{"help", 'h', false, O_HELP},
};

/* Output formats, as a bit set so commands can list the ones they take. */
enum cli_fmt { F_SIMPLE = 1, F_JSON = 2, F_TABLE = 4 };

struct cli_args {
	unsigned seen;                /* OPT() bits given */
	const char *val[O__COUNT];    /* borrowed from argv: last value */
	char *pos[CLI_MAX_POS];       /* borrowed from argv */
	int npos;
};

/* Parse argv[1..]: options anywhere, "--opt=value" or "--opt value",
 * "-e value" or "-evalue"; "--" ends options. Returns 0, or -1 with a
 * message in err. */
static int cli_parse(int argc, char **argv, struct cli_args *a, char *err,
		     size_t errlen)
{
	bool opts_done = false;
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		char *s = argv[i];
		if (opts_done || s[0] != '-' || s[1] == '\0') {
			if (a->npos >= CLI_MAX_POS) {
				snprintf(err, errlen, "too many arguments");
				return -1;
			}
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			opts_done = true;
			continue;
		}
		const struct cli_optdef *d = NULL;
		const char *inline_val = NULL;
		if (s[1] == '-') {
			const char *name = s + 2;
			const char *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			for (size_t k = 0; k < sizeof(cli_optdefs) /
						       sizeof(cli_optdefs[0]);
			     k++) {
				if (strlen(cli_optdefs[k].name) == n &&
				    strncmp(cli_optdefs[k].name, name, n) == 0)
					d = &cli_optdefs[k];
			}
			if (d && eq)
				inline_val = eq + 1;
		} else {
			for (size_t k = 0; k < sizeof(cli_optdefs) /
						       sizeof(cli_optdefs[0]);
			     k++) {
				if (cli_optdefs[k].short_name == s[1])
					d = &cli_optdefs[k];
			}
			if (d && s[2] != '\0') {
				if (!d->has_arg)
					d = NULL; /* no bundling of flags */
				else
					inline_val = s + 2;
			}
		}
		if (!d) {
			snprintf(err, errlen, "unknown option %s", s);
			return -1;
		}
		const char *v = NULL;
		if (d->has_arg) {
			if (inline_val) {
				v = inline_val;
			} else if (i + 1 < argc) {
				v = argv[++i];
			} else {
				snprintf(err, errlen, "option %s needs a value",
					 s);
				return -1;
			}
		} else if (inline_val) {
			snprintf(err, errlen, "option --%s takes no value",
				 d->name);
			return -1;
		}
		a->seen |= OPT(d->id);
		a->val[d->id] = v;
	}
	return 0;
}

/* Long name of an option, for messages. */
static const char *cli_opt_name(enum cli_opt id)
{
	for (size_t k = 0; k < sizeof(cli_optdefs) / sizeof(cli_optdefs[0]);
	     k++)
		if (cli_optdefs[k].id == id)
			return cli_optdefs[k].name;
	return "?";
}

/* "5", "2.5", "5s", "500ms", "1m" -> milliseconds. -1 if invalid/<= 0. */
static long cli_parse_duration_ms(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v <= 0)
		return -1;
	double mult = 1000.0;
	if (strcmp(end, "ms") == 0)
		mult = 1.0;
	else if (strcmp(end, "m") == 0)
		mult = 60000.0;
	else if (*end != '\0' && strcmp(end, "s") != 0)
		return -1;
	double ms = v * mult;
	if (ms < 1.0 || ms > 86400000.0)
		return -1;
	return (long)ms;
}

/* A lease id as the user typed it ("7", "0000000000000007", "0x7") ->
 * the API's 16-digit lowercase hex in out[17]. Returns 0 or -1. */
static int cli_norm_id(const char *s, char out[17])
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	size_t n = strlen(s);
	if (n == 0 || n > 16)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -1;
	unsigned long long v = strtoull(s, NULL, 16);
	snprintf(out, 17, "%016llx", v);
	return 0;
}

/* Non-negative decimal integer -> 0 and *out; -1 otherwise. */
static int cli_parse_u64(const char *s, long long *out)
{
	char *end;
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end != '\0' || v < 0)
		return -1;
	*out = v;
	return 0;
}

/* Split a comma-separated endpoint list into normalised base URLs:
 * spaces trimmed, "http://" added when there is no scheme, trailing '/'
 * removed. Fills eps[] (each owned by the caller, mem_free) and returns
 * the count, or -1 (message in err) when empty, too many or no memory. */
static int cli_split_endpoints(const char *list, char **eps, int max,
			       char *err, size_t errlen)
{
	int n = 0;
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		const char *e = comma ? comma : p + strlen(p);
		const char *b = p;
		while (b < e && isspace((unsigned char)*b))
			b++;
		const char *t = e;
		while (t > b && (isspace((unsigned char)t[-1]) || t[-1] == '/'))
			t--;
		if (t > b) {
			if (n >= max) {
				snprintf(err, errlen, "too many endpoints");
				goto fail;
			}
			size_t len = (size_t)(t - b);
			bool scheme = false;
			for (const char *q = b; q + 2 < t; q++)
				if (q[0] == ':' && q[1] == '/' && q[2] == '/')
					scheme = true;
			const char *pre = scheme ? "" : "http://";
			size_t sz = strlen(pre) + len + 1;
			char *u = mem_malloc(sz);
			if (!u) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			snprintf(u, sz, "%s%.*s", pre, (int)len, b);
			eps[n++] = u;
		}
		p = comma ? comma + 1 : e;
	}
	if (n == 0) {
		snprintf(err, errlen, "no endpoint given in '%s'", list);
		return -1;
	}
	return n;
fail:
	while (n > 0)
		mem_free(eps[--n]);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Rendering                                                          */

/* Bytes as etcdctl prints them (go-humanize's Bytes: SI units, one
 * decimal below 10): 7 -> "7 B", 20480 -> "20 kB", 1500000 -> "1.5 MB". */
static void cli_human_size(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B",  "kB", "MB", "GB",
					    "TB", "PB", "EB"};
	if (n < 10) {
		snprintf(buf, len, "%llu B", (unsigned long long)n);
		return;
	}
	size_t e = 0;
	double div = 1.0;
	while (e + 1 < sizeof(units) / sizeof(units[0]) &&
	       (double)n >= div * 1000.0) {
		div *= 1000.0;
		e++;
	}
	double val = floor((double)n / div * 10.0 + 0.5) / 10.0;
	snprintf(buf, len, val < 10.0 ? "%.1f %s" : "%.0f %s", val, units[e]);
}

/* A table in etcdctl's "-w table" style: +---+ borders, centred headers,
 * right-aligned cells. */
struct cli_table {
	size_t ncols;
	size_t nrows;  /* including the header row */
	size_t cap;    /* rows allocated */
	char **cells;  /* owned: nrows * ncols owned strings */
};

static int cli_table_init(struct cli_table *t, size_t ncols,
			  const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->cap = 8;
	t->cells = mem_calloc(t->cap * ncols, sizeof(char *));
	if (!t->cells)
		return -1;
	for (size_t c = 0; c < ncols; c++) {
		t->cells[c] = mem_strdup(headers[c]);
		if (!t->cells[c])
			return -1;
	}
	t->nrows = 1;
	return 0;
}

/* Add a row of ncols strings (copied; NULL prints as empty). */
static int cli_table_add(struct cli_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap * 2;
		char **c = mem_realloc(t->cells, cap * t->ncols * sizeof(*c));
		if (!c)
			return -1;
		memset(c + t->cap * t->ncols, 0,
		       (cap - t->cap) * t->ncols * sizeof(*c));
		t->cells = c;
		t->cap = cap;
	}
	char **dst = t->cells + t->nrows * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		dst[c] = mem_strdup(row[c] ? row[c] : "");
		if (!dst[c])
			return -1;
	}
	t->nrows++;
	return 0;
}

static void cli_table_free(struct cli_table *t)
{
	if (t->cells)
		for (size_t i = 0; i < t->cap * t->ncols; i++)
			mem_free(t->cells[i]);
	mem_free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* Display width: UTF-8 code points (continuation bytes do not count). */
static size_t cli_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

static void cli_pad(FILE *f, size_t n)
{
	while (n--)
		fputc(' ', f);
}

static void cli_table_rule(FILE *f, const size_t *w, size_t ncols)
{
	fputc('+', f);
	for (size_t c = 0; c < ncols; c++) {
		for (size_t i = 0; i < w[c] + 2; i++)
			fputc('-', f);
		fputc('+', f);
	}
	fputc('\n', f);
}

/* Returns 0, or -1 when out of memory (then nothing is printed). */
static int cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t *w = mem_calloc(t->ncols, sizeof(*w));
	if (!w)
		return -1;
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t x = cli_width(t->cells[r * t->ncols + c]);
			if (x > w[c])
				w[c] = x;
		}
	cli_table_rule(f, w, t->ncols);
	for (size_t r = 0; r < t->nrows; r++) {
		fputc('|', f);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t gap = w[c] - cli_width(s);
			/* header centred (extra space on the right), cells
			 * right-aligned, as etcdctl's tablewriter does */
			size_t left = r == 0 ? gap / 2 : gap;
			cli_pad(f, 1 + left);
			fputs(s, f);
			cli_pad(f, gap - left + 1);
			fputc('|', f);
		}
		fputc('\n', f);
		if (r == 0)
			cli_table_rule(f, w, t->ncols);
	}
	cli_table_rule(f, w, t->ncols);
	mem_free(w);
	return 0;
}

/* Adds the row for one element of a JSON array to t, through
 * cli_table_add, and returns its result. arg is the caller's (borrowed). */
typedef int (*cli_row_cb)(struct cli_table *t, const json_t *item,
			  const void *arg);

/* Print to f a table of ncols columns under headers with one row, made by
 * row, for each element of arr (no rows when arr is not an array).
 * Returns 0, or -1 when out of memory; then nothing is printed. */
static int cli_print_rows(FILE *f, size_t ncols, const char *const *headers,
			  const json_t *arr, cli_row_cb row, const void *arg)
{
	struct cli_table t;
	size_t i;
	json_t *item;
	if (cli_table_init(&t, ncols, headers) != 0)
		goto fail;
	json_array_foreach(arr, i, item)
		if (row(&t, item, arg) != 0)
			goto fail;
	if (cli_table_print(&t, f) != 0)
		goto fail;
	cli_table_free(&t);
	return 0;
fail:
	/* whichever step failed, t is consistent for cli_table_free */
	cli_table_free(&t);
	return -1;
}

/* ------------------------------------------------------------------ */
/* JSON helpers (missing or ill-typed fields read as empty/zero)      */

static const char *js_str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static long long js_int(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return 0;
}

static const char *js_bool(const json_t *o, const char *k)
{
	return json_is_true(json_object_get(o, k)) ? "true" : "false";
}

/* A JSON number as a short decimal: 10 -> "10", 2.5 -> "2.5". */
static void js_num_fmt(const json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, len, "%g", json_number_value(v));
}

/* ------------------------------------------------------------------ */
/* HTTP                                                               */

struct cli;

struct cli_cmd {
	const char *words[3]; /* command words, NULL-terminated */
	int min_args;
	int max_args;
	unsigned opts;        /* OPT() bits taken besides OPTS_GLOBAL */
	unsigned fmts;        /* F_* accepted by -o; 0: no -o */
	enum cli_fmt fmt_default;
	bool needs_token;     /* mutates: needs the cluster token */
	int (*run)(struct cli *c, char **args, int nargs);
	const char *usage;    /* after "pgwarden "; NULL: alias, not listed */
	const char *help;
};

struct cli {
	struct cli_args a;
	const struct cli_cmd *cmd;
	enum cli_fmt fmt;
	char *eps[CLI_MAX_ENDPOINTS]; /* owned base URLs */
	int neps;
	char *token;                  /* owned; NULL: none */
	long timeout_ms;
	CURL *curl;                   /* owned, reused across requests */
	FILE *out;                    /* borrowed: stdout */
	FILE *err;                    /* borrowed: stderr */
};

struct cli_resp {
	long status;          /* HTTP status; 0: no HTTP answer */
	char *body;           /* owned, NUL-terminated */
	size_t len;
	size_t cap;
	json_t *json;         /* owned; the parsed body, or NULL */
	const char *endpoint; /* borrowed: the endpoint that answered */
	bool sent;            /* request bytes went out (transport errors) */
	char err[256];        /* transport error text */
};

static void cli_resp_clear(struct cli_resp *r)
{
	mem_free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static size_t cli_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct cli_resp *r = ud;
	size_t n = size * nmemb;
	if (r->len + n + 1 > CLI_MAX_BODY)
		return 0; /* aborts the transfer */
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		char *b = mem_realloc(r->body, cap);
		if (!b)
			return 0;
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static long cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Set by SIGINT while `lease keepalive` runs. A file-scope flag because
 * a signal handler has nowhere else to put it. */
static volatile sig_atomic_t cli_interrupted;

static void cli_on_sigint(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

/* Sleep ms, returning early (true) when interrupted by SIGINT. */
static bool cli_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (!cli_interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return cli_interrupted != 0;
}

static int cli_on_progress(void *ud, curl_off_t dt, curl_off_t dn,
			   curl_off_t ut, curl_off_t un)
{
	(void)ud, (void)dt, (void)dn, (void)ut, (void)un;
	return cli_interrupted ? 1 : 0;
}

/* One HTTP request to one endpoint, blocking for at most total_ms.
 * body (borrowed) is the request body (NULL: none; a POST then sends an
 * empty one). Returns 0 when an
 * HTTP answer arrived (r->status, r->body, r->json), -1 on a transport
 * failure (r->err, r->sent). r is cleared first. */
static int cli_http_once(struct cli *c, const char *base, const char *method,
			 const char *path, const char *body, bool auth,
			 long total_ms, struct cli_resp *r)
{
	cli_resp_clear(r);
	r->endpoint = base;
	size_t ulen = strlen(base) + strlen(path) + 1;
	char *url = mem_malloc(ulen);
	if (!url) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return -1;
	}
	snprintf(url, ulen, "%s%s", base, path);

	CURL *h = c->curl;
	char ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	char authhdr[CLI_MAX_TOKEN + 32];
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 total_ms < CLI_CONNECT_TIMEOUT_MS
				 ? total_ms
				 : CLI_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cli_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "pgwarden-cli");
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cli_on_progress);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body) {
		hdrs = curl_slist_append(hdrs,
					 "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	} else if (strcmp(method, "POST") == 0) {
		/* libcurl sends a GET unless it has POST data: a body-less
		 * POST (pause, resume, reinitialize) is an empty body */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (auth && c->token) {
		snprintf(authhdr, sizeof(authhdr), "Authorization: Bearer %s",
			 c->token);
		hdrs = curl_slist_append(hdrs, authhdr);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	CURLcode rc = curl_easy_perform(h);
	/* the token must not linger in freed memory longer than needed */
	memset(authhdr, 0, sizeof(authhdr));
	curl_slist_free_all(hdrs);
	mem_free(url);
	if (rc != CURLE_OK) {
		long oserr = 0;
		curl_off_t up = 0;
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
		curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
		long reqsize = 0;
		curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &reqsize);
		r->sent = reqsize > 0 || up > 0;
		if (rc == CURLE_OPERATION_TIMEDOUT)
			snprintf(r->err, sizeof(r->err), "timed out");
		else if (rc == CURLE_ABORTED_BY_CALLBACK)
			snprintf(r->err, sizeof(r->err), "interrupted");
		else if (rc == CURLE_COULDNT_CONNECT && oserr)
			snprintf(r->err, sizeof(r->err), "%s",
				 strerror((int)oserr));
		else
			snprintf(r->err, sizeof(r->err), "%s",
				 ebuf[0] ? ebuf : curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->body)
		r->json = json_loadb(r->body, r->len, 0, NULL);
	return 0;
}

/* The reason phrase for statuses whose body carries no "error". */
static const char *cli_reason(long status)
{
	switch (status) {
	case 400: return "bad request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not found";
	case 405: return "method not allowed";
	case 409: return "conflict";
	case 413: return "request too large";
	case 500: return "internal server error";
	case 502: return "bad gateway";
	case 503: return "service unavailable";
	case 504: return "gateway timeout";
	default: return "unexpected status";
	}
}

/* The server's error text for a non-2xx answer: its "error" field, else
 * the first line of a non-JSON body, else the reason phrase. */
static void cli_resp_errtext(const struct cli_resp *r, char *buf, size_t len)
{
	const char *e = json_string_value(json_object_get(r->json, "error"));
	if (e && *e) {
		snprintf(buf, len, "%s", e);
	} else if (!r->json && r->body && r->len) {
		size_t n = strcspn(r->body, "\r\n");
		if (n > 200)
			n = 200;
		snprintf(buf, len, "%.*s", (int)n, r->body);
	} else {
		snprintf(buf, len, "%s", cli_reason(r->status));
	}
}

__attribute__((format(printf, 2, 3))) static void cli_errorf(struct cli *c,
							   const char *fmt,
							   ...)
{
	va_list ap;
	fputs("pgwarden: ", c->err);
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
}

/* cli_call() flags */
enum {
	/* applying the request twice does no harm (put or del without a
	 * compare, lease grant: the spare lease expires, keepalive,
	 * transfer-leader), so it may be resent to the next endpoint after
	 * a timeout or a broken connection */
	CALL_RESENDABLE = 1,
	/* one pass over the endpoints, no 503 retry over time */
	CALL_SINGLE_PASS = 2,
};

/* Move the endpoints flagged in bad[] to the end, keeping the order
 * otherwise, so that later passes and requests try answering nodes
 * first (a frozen node costs its attempt budget only once). */
static void cli_demote_endpoints(struct cli *c, const bool *bad)
{
	char *tmp[CLI_MAX_ENDPOINTS];
	int n = 0;
	for (int i = 0; i < c->neps; i++)
		if (!bad[i])
			tmp[n++] = c->eps[i];
	for (int i = 0; i < c->neps; i++)
		if (bad[i])
			tmp[n++] = c->eps[i];
	memcpy(c->eps, tmp, (size_t)c->neps * sizeof(tmp[0]));
}

/* Send one request with endpoint failover and 503 retry (see the top
 * of the file). what names the operation in error lines ("put /a").
 * req (borrowed) is the JSON body of a POST, NULL for GET. On a 2xx
 * answer whose body is a JSON object returns 0 with r filled. Otherwise
 * prints the one error line and returns 1; r->status tells what the
 * server said (0 when no endpoint gave an HTTP answer). */
static int cli_call(struct cli *c, const char *what, const char *method,
		    const char *path, json_t *req, int flags,
		    struct cli_resp *r)
{
	bool mutating = strcmp(method, "GET") != 0;
	bool resend = !mutating || (flags & CALL_RESENDABLE);
	char *body = NULL;
	if (req) {
		body = json_dumps(req, JSON_COMPACT);
		if (!body) {
			cli_errorf(c, "%s: out of memory", what);
			return 1;
		}
	}
	long start = cli_now_ms();
	long deadline = start + c->timeout_ms;
	/* an endpoint that is not the last one to try gets a share of the
	 * budget, so a node that accepts connections but never answers
	 * (frozen, overloaded) does not eat all of it */
	long share = c->timeout_ms / (c->neps > 0 ? c->neps : 1);
	if (share < CLI_CONNECT_TIMEOUT_MS)
		share = CLI_CONNECT_TIMEOUT_MS;
	long backoff = CLI_BACKOFF_FIRST_MS;
	char tried[2048];
	char last503[256] = "";
	int ret = 1;
	for (;;) {
		size_t tl = 0;
		bool saw503 = false;
		bool bad[CLI_MAX_ENDPOINTS] = {false};
		tried[0] = '\0';
		for (int i = 0; i < c->neps; i++) {
			long left = deadline - cli_now_ms();
			if (left <= 0)
				break;
			long budget = i + 1 < c->neps && left > share ? share
								     : left;
			if (cli_http_once(c, c->eps[i], method, path, body,
					  mutating, budget, r) == 0) {
				if (r->status == 503) {
					saw503 = true;
					cli_resp_errtext(r, last503,
							 sizeof(last503));
					continue;
				}
				if (r->status >= 200 && r->status < 300) {
					if (!json_is_object(r->json)) {
						cli_errorf(c,
							   "%s: %s: malformed "
							   "response (status "
							   "%ld)",
							   what, r->endpoint,
							   r->status);
						goto out;
					}
					ret = 0;
					goto out;
				}
				char e[256];
				cli_resp_errtext(r, e, sizeof(e));
				cli_errorf(c, "%s: %ld %s", what, r->status, e);
				goto out;
			}
			if (cli_interrupted) {
				cli_errorf(c, "%s: interrupted", what);
				goto out;
			}
			if (r->sent && !resend) {
				cli_errorf(c,
					   "%s: %s: %s (the request was sent; "
					   "it may have been applied)",
					   what, c->eps[i], r->err);
				goto out;
			}
			bad[i] = true;
			int n = snprintf(tried + tl, sizeof(tried) - tl,
					 "%s%s: %s", tl ? ", " : "", c->eps[i],
					 r->err);
			if (n > 0 && (size_t)n < sizeof(tried) - tl)
				tl += (size_t)n;
		}
		cli_demote_endpoints(c, bad);
		r->status = saw503 ? 503 : 0;
		long now = cli_now_ms();
		if (!saw503 && tl) {
			cli_errorf(c, "%s: no endpoint answered (tried %s)",
				   what, tried);
			goto out;
		}
		if (saw503 && (flags & CALL_SINGLE_PASS)) {
			cli_errorf(c, "%s: 503 %s", what, last503);
			goto out;
		}
		/* keep CLI_BACKOFF_FIRST_MS for one last pass */
		long wait = deadline - now - CLI_BACKOFF_FIRST_MS;
		if (!saw503 || wait < 0) {
			if (saw503)
				cli_errorf(c, "%s: 503 %s (gave up after %.1fs)",
					   what, last503,
					   (double)(now - start) / 1000.0);
			else
				cli_errorf(c, "%s: timed out after %.1fs", what,
					   (double)(now - start) / 1000.0);
			goto out;
		}
		if (cli_sleep_ms(wait < backoff ? wait : backoff)) {
			cli_errorf(c, "%s: interrupted", what);
			goto out;
		}
		backoff = backoff * 2 > CLI_BACKOFF_MAX_MS ? CLI_BACKOFF_MAX_MS
							   : backoff * 2;
	}
out:
	free(body); /* from jansson's allocator */
	return ret;
}

/* Print the body as the server sent it (for -o json). */
static void cli_print_raw(struct cli *c, const struct cli_resp *r)
{
	fwrite(r->body, 1, r->len, c->out);
	if (r->len == 0 || r->body[r->len - 1] != '\n')
		fputc('\n', c->out);
}

/* Print a JSON value we built, compact, one line. */
static void cli_print_json(struct cli *c, const json_t *v)
{
	json_dumpf(v, c->out, JSON_COMPACT);
	fputc('\n', c->out);
}

/* ------------------------------------------------------------------ */
/* Commands: keys                                                     */

static int cmd_get(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	if ((c->a.seen & OPT(O_VALUE_ONLY)) && (c->a.seen & OPT(O_KEYS_ONLY))) {
		cli_errorf(c, "get: --print-value-only and --keys-only "
			      "exclude each other");
		return 2;
	}
	char *k = curl_easy_escape(c->curl, args[0], 0);
	if (!k) {
		cli_errorf(c, "get: out of memory");
		return 1;
	}
	char path[8192];
	int n = snprintf(path, sizeof(path), "/v1/kv?key=%s%s%s", k,
			 (c->a.seen & OPT(O_PREFIX)) ? "&prefix=true" : "",
			 (c->a.seen & OPT(O_SERIALIZABLE)) ? "&serializable=true"
							  : "");
	curl_free(k);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		cli_errorf(c, "get: key too long");
		return 2;
	}
	char what[160];
	snprintf(what, sizeof(what), "get %.140s", args[0]);
	struct cli_resp r = {0};
	int rc = cli_call(c, what, "GET", path, NULL, 0, &r);
	if (rc == 0) {
		if (c->fmt == F_JSON) {
			cli_print_raw(c, &r);
		} else {
			json_t *kvs = json_object_get(r.json, "kvs");
			size_t i;
			json_t *kv;
			json_array_foreach(kvs, i, kv) {
				json_t *key = json_object_get(kv, "key");
				json_t *val = json_object_get(kv, "value");
				if (!(c->a.seen & OPT(O_VALUE_ONLY))) {
					fwrite(json_string_value(key), 1,
					       json_string_length(key), c->out);
					fputc('\n', c->out);
				}
				if (!(c->a.seen & OPT(O_KEYS_ONLY))) {
					fwrite(json_string_value(val), 1,
					       json_string_length(val), c->out);
					fputc('\n', c->out);
				}
			}
		}
	}
	cli_resp_clear(&r);
	return rc;
}

/* Reads all of stdin into a NUL-terminated string (put KEY without a
 * VALUE, like etcdctl). Returns NULL on error; the caller mem_frees. */
static char *cli_read_stdin(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = mem_malloc(cap);
	while (b) {
		if (n + 1 >= cap) {
			char *nb = mem_realloc(b, cap * 2);
			if (!nb || cap > CLI_MAX_BODY)
				break;
			b = nb;
			cap *= 2;
		}
		size_t got = fread(b + n, 1, cap - n - 1, stdin);
		n += got;
		if (got == 0) {
			if (ferror(stdin))
				break;
			b[n] = '\0';
			*len = n;
			return b;
		}
	}
	mem_free(b);
	return NULL;
}

/* --prev-revision N / --create into req; 0, or 2 (usage, printed). */
static int cli_add_compare(struct cli *c, const char *cmd, json_t *req)
{
	if (c->a.seen & OPT(O_CREATE)) {
		if (c->a.seen & OPT(O_PREV_REV)) {
			cli_errorf(c, "%s: --create and --prev-revision "
				      "exclude each other", cmd);
			return 2;
		}
		json_object_set_new(req, "prev_revision", json_integer(0));
	}
	if (c->a.seen & OPT(O_PREV_REV)) {
		long long rev;
		if (cli_parse_u64(c->a.val[O_PREV_REV], &rev) != 0) {
			cli_errorf(c, "%s: --prev-revision wants a revision "
				      "number, not '%s'", cmd,
				   c->a.val[O_PREV_REV]);
			return 2;
		}
		json_object_set_new(req, "prev_revision", json_integer(rev));
	}
	return 0;
}

/* A put or del without a compare may be resent after a lost answer:
 * doing it twice leaves the same keys. With a compare it may not (the
 * second attempt would fail the compare after the first applied). */
static int cli_resend_flags(const struct cli *c)
{
	return (c->a.seen & (OPT(O_PREV_REV) | OPT(O_CREATE))) ? 0
							     : CALL_RESENDABLE;
}

static int cmd_put(struct cli *c, char **args, int nargs)
{
	char *stdin_val = NULL;
	size_t vlen;
	const char *val;
	if (nargs >= 2) {
		val = args[1];
		vlen = strlen(val);
	} else {
		if (isatty(STDIN_FILENO)) {
			cli_errorf(c, "put: expected KEY VALUE (or the value "
				      "on standard input)");
			return 2;
		}
		stdin_val = cli_read_stdin(&vlen);
		if (!stdin_val) {
			cli_errorf(c, "put: cannot read the value from "
				      "standard input");
			return 1;
		}
		val = stdin_val;
	}
	json_t *req = json_object();
	json_object_set_new(req, "key", json_string(args[0]));
	json_object_set_new(req, "value", json_stringn(val, vlen));
	mem_free(stdin_val);
	if (!json_is_string(json_object_get(req, "key")) ||
	    !json_is_string(json_object_get(req, "value"))) {
		cli_errorf(c, "put: key and value must be UTF-8 text");
		json_decref(req);
		return 2;
	}
	if (c->a.seen & OPT(O_LEASE)) {
		char id[17];
		if (cli_norm_id(c->a.val[O_LEASE], id) != 0) {
			cli_errorf(c, "put: --lease wants a hex lease ID, "
				      "not '%s'", c->a.val[O_LEASE]);
			json_decref(req);
			return 2;
		}
		json_object_set_new(req, "lease", json_string(id));
	}
	int rc = cli_add_compare(c, "put", req);
	if (rc == 0) {
		char what[160];
		snprintf(what, sizeof(what), "put %.140s", args[0]);
		struct cli_resp r = {0};
		rc = cli_call(c, what, "POST", "/v1/kv/put", req,
			      cli_resend_flags(c), &r);
		if (rc == 0)
			fputs("OK\n", c->out);
		cli_resp_clear(&r);
	}
	json_decref(req);
	return rc;
}

static int cmd_del(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	json_t *req = json_object();
	json_object_set_new(req, "key", json_string(args[0]));
	if (c->a.seen & OPT(O_PREFIX))
		json_object_set_new(req, "prefix", json_true());
	int rc = cli_add_compare(c, "del", req);
	if (rc == 0) {
		char what[160];
		snprintf(what, sizeof(what), "del %.140s", args[0]);
		struct cli_resp r = {0};
		rc = cli_call(c, what, "POST", "/v1/kv/delete", req,
			      cli_resend_flags(c), &r);
		if (rc == 0)
			fprintf(c->out, "%lld\n", js_int(r.json, "deleted"));
		cli_resp_clear(&r);
	}
	json_decref(req);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Commands: leases                                                   */

static int cmd_lease_grant(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	char *end;
	errno = 0;
	double ttl = strtod(args[0], &end);
	if (errno || end == args[0] || *end != '\0' || !isfinite(ttl) ||
	    ttl <= 0) {
		cli_errorf(c, "lease grant: TTL must be a number of seconds, "
			      "not '%s'", args[0]);
		return 2;
	}
	json_t *req = json_object();
	if (ttl == floor(ttl) && ttl < 1e15)
		json_object_set_new(req, "ttl", json_integer((json_int_t)ttl));
	else
		json_object_set_new(req, "ttl", json_real(ttl));
	struct cli_resp r = {0};
	int rc = cli_call(c, "lease grant", "POST", "/v1/lease/grant", req,
			  CALL_RESENDABLE, &r);
	if (rc == 0) {
		char t[64];
		js_num_fmt(json_object_get(r.json, "ttl"), t, sizeof(t));
		fprintf(c->out, "lease %s granted with TTL(%ss)\n",
			js_str(r.json, "id"), t);
	}
	cli_resp_clear(&r);
	json_decref(req);
	return rc;
}

static int cmd_lease_keepalive(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	char id[17];
	if (cli_norm_id(args[0], id) != 0) {
		cli_errorf(c, "lease keepalive: '%s' is not a hex lease ID",
			   args[0]);
		return 2;
	}
	bool once = (c->a.seen & OPT(O_ONCE)) != 0;
	struct sigaction sa, old;
	if (!once) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = cli_on_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, &old);
	}
	json_t *req = json_object();
	json_object_set_new(req, "id", json_string(id));
	char what[64];
	snprintf(what, sizeof(what), "lease keepalive %s", id);
	int rc = 0;
	long last_ok = cli_now_ms();
	double ttl_s = 0; /* 0 until the first answer */
	for (;;) {
		struct cli_resp r = {0};
		rc = cli_call(c, what, "POST", "/v1/lease/keepalive", req,
			      CALL_RESENDABLE, &r);
		long wait_ms;
		if (rc == 0) {
			char t[64];
			json_t *tv = json_object_get(r.json, "ttl");
			js_num_fmt(tv, t, sizeof(t));
			fprintf(c->out, "lease %s keepalived with TTL(%s)\n",
				js_str(r.json, "id"), t);
			fflush(c->out);
			ttl_s = json_number_value(tv);
			last_ok = cli_now_ms();
			wait_ms = (long)(ttl_s * 1000.0 / 3.0);
		} else {
			/* 404: the lease is gone; before any success, or
			 * once a whole TTL passed without one, it surely is;
			 * otherwise keep trying (the error is printed) */
			bool gone = r.status == 404 || ttl_s <= 0 ||
				    cli_now_ms() - last_ok >
					    (long)(ttl_s * 1000.0);
			if (gone || cli_interrupted || once) {
				cli_resp_clear(&r);
				break;
			}
			wait_ms = 500;
		}
		cli_resp_clear(&r);
		if (once)
			break;
		if (wait_ms < 100)
			wait_ms = 100;
		if (cli_sleep_ms(wait_ms)) {
			rc = 0; /* stopped by the operator */
			break;
		}
	}
	if (cli_interrupted && rc != 0)
		rc = 0;
	json_decref(req);
	if (!once)
		sigaction(SIGINT, &old, NULL);
	return rc;
}

static int cmd_lease_revoke(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	char id[17];
	if (cli_norm_id(args[0], id) != 0) {
		cli_errorf(c, "lease revoke: '%s' is not a hex lease ID",
			   args[0]);
		return 2;
	}
	json_t *req = json_object();
	json_object_set_new(req, "id", json_string(id));
	char what[64];
	snprintf(what, sizeof(what), "lease revoke %s", id);
	struct cli_resp r = {0};
	int rc = cli_call(c, what, "POST", "/v1/lease/revoke", req, 0, &r);
	if (rc == 0)
		fprintf(c->out, "lease %s revoked\n", id);
	cli_resp_clear(&r);
	json_decref(req);
	return rc;
}

static int cli_lease_row(struct cli_table *t, const json_t *l,
			 const void *arg)
{
	(void)arg;
	char ttl[64], rem[64], keys[32];
	js_num_fmt(json_object_get(l, "ttl"), ttl, sizeof(ttl));
	strcat(ttl, "s");
	snprintf(rem, sizeof(rem), "%.1fs",
		 (double)js_int(l, "remaining_ms") / 1000.0);
	snprintf(keys, sizeof(keys), "%lld", js_int(l, "keys"));
	const char *row[] = {js_str(l, "id"), ttl, rem, keys};
	return cli_table_add(t, row);
}

static int cmd_lease_list(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	struct cli_resp r = {0};
	int rc = cli_call(c, "lease list", "GET", "/v1/lease/list", NULL, 0,
			  &r);
	if (rc != 0)
		goto out;
	json_t *leases = json_object_get(r.json, "leases");
	size_t i;
	json_t *l;
	if (c->fmt == F_JSON) {
		cli_print_raw(c, &r);
	} else if (c->fmt == F_TABLE) {
		static const char *const h[] = {"ID", "TTL", "REMAINING",
						"KEYS"};
		if (cli_print_rows(c->out, 4, h, leases, cli_lease_row,
				   NULL) != 0) {
			cli_errorf(c, "lease list: out of memory");
			rc = 1;
		}
	} else {
		fprintf(c->out, "found %zu leases\n", json_array_size(leases));
		json_array_foreach(leases, i, l)
			fprintf(c->out, "%s\n", js_str(l, "id"));
	}
out:
	cli_resp_clear(&r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Commands: members and endpoints                                    */

static int cli_member_row(struct cli_table *t, const json_t *m,
			  const void *arg)
{
	(void)arg;
	const char *row[] = {js_str(m, "id"),
			     js_str(m, "name"),
			     js_str(m, "peer_url"),
			     js_str(m, "api_url"),
			     js_str(m, "role"),
			     js_bool(m, "is_leader")};
	return cli_table_add(t, row);
}

static int cmd_members(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	struct cli_resp r = {0};
	int rc = cli_call(c, "members", "GET", "/v1/members", NULL, 0, &r);
	if (rc != 0)
		goto out;
	json_t *ms = json_object_get(r.json, "members");
	size_t i;
	json_t *m;
	if (c->fmt == F_JSON) {
		cli_print_raw(c, &r);
	} else if (c->fmt == F_SIMPLE) {
		/* etcdctl member list's default lines */
		json_array_foreach(ms, i, m)
			fprintf(c->out, "%s, %s, %s, %s, %s, %s\n",
				js_str(m, "id"), js_str(m, "name"),
				js_str(m, "peer_url"), js_str(m, "api_url"),
				js_str(m, "role"), js_bool(m, "is_leader"));
	} else {
		static const char *const h[] = {"ID",      "NAME", "PEER ADDRS",
						"API URL", "ROLE", "IS LEADER"};
		if (cli_print_rows(c->out, 6, h, ms, cli_member_row, NULL) !=
		    0) {
			cli_errorf(c, "members: out of memory");
			rc = 1;
		}
	}
out:
	cli_resp_clear(&r);
	return rc;
}

/* A `list` row for one PostgreSQL member; arg is the leader's name. */
static int cli_pg_member_row(struct cli_table *t, const json_t *m,
			     const void *arg)
{
	const char *leader = arg;
	char host[300], tl[24], lag[32], tags[160] = "";
	snprintf(host, sizeof host, "%s:%lld", js_str(m, "host"),
		 js_int(m, "port"));
	long long tlv = js_int(m, "timeline");
	snprintf(tl, sizeof tl, "%s", "");
	if (tlv > 0)
		snprintf(tl, sizeof tl, "%lld", tlv);
	long long lagv = js_int(m, "lag_bytes");
	if (lagv >= 0 && strcmp(js_str(m, "role"), "replica") == 0)
		snprintf(lag, sizeof lag, "%.1f",
			 (double)lagv / (1024.0 * 1024.0));
	else
		snprintf(lag, sizeof lag, "%s", "");
	json_t *tg = json_object_get(m, "tags");
	const char *tnames[] = {"nofailover", "noloadbalance", "nosync"};
	for (size_t k = 0; k < 3; k++)
		if (json_is_true(json_object_get(tg, tnames[k])))
			snprintf(tags + strlen(tags),
				 sizeof tags - strlen(tags), "%s%s: true",
				 tags[0] ? ", " : "", tnames[k]);
	long long prio = js_int(tg, "failover_priority");
	if (prio != 1 && prio >= 0)
		snprintf(tags + strlen(tags), sizeof tags - strlen(tags),
			 "%sfailover_priority: %lld", tags[0] ? ", " : "",
			 prio);
	const char *role = js_str(m, "role");
	char rolebuf[40];
	snprintf(rolebuf, sizeof rolebuf, "%s%s", role,
		 strcmp(js_str(m, "name"), leader) == 0 &&
				 strcmp(role, "primary") != 0
			 ? " (leader)"
			 : "");
	const char *row[] = {js_str(m, "name"), host, rolebuf,
			     js_str(m, "state"), tl, lag, tags};
	return cli_table_add(t, row);
}

/* `pgwarden list`: the cluster's PostgreSQL members, like patronictl. */
static int cmd_list(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	struct cli_resp r = {0};
	int rc = cli_call(c, "list", "GET", "/cluster", NULL, 0, &r);
	if (rc != 0)
		goto out;
	json_t *ms = json_object_get(r.json, "members");
	if (c->fmt == F_JSON) {
		if (ms) {
			cli_print_json(c, ms);
		} else {
			fputs("[]\n", c->out);
		}
		goto out;
	}
	const char *leader = js_str(r.json, "leader");
	const char *sysid = js_str(r.json, "initialize");
	fprintf(c->out, "Cluster: %s (%s)%s\n", js_str(r.json, "cluster"),
		*sysid ? sysid : "not initialized",
		json_is_string(json_object_get(r.json, "pause"))
			? "  [maintenance mode]"
			: "");
	static const char *const h[] = {"MEMBER", "HOST", "ROLE", "STATE",
					"TL", "LAG IN MB", "TAGS"};
	if (cli_print_rows(c->out, 7, h, ms, cli_pg_member_row, leader) != 0) {
		cli_errorf(c, "list: out of memory");
		rc = 1;
	}
out:
	cli_resp_clear(&r);
	return rc;
}

/* GET base+path from one node only (no failover, no 503 retry), with a
 * fresh --timeout budget. Returns 0 with a JSON object in r on 2xx,
 * else -1 with a message in err. */
static int cli_get_one(struct cli *c, const char *base, const char *path,
		       struct cli_resp *r, char *err, size_t errlen)
{
	if (cli_http_once(c, base, "GET", path, NULL, false, c->timeout_ms,
			  r) != 0) {
		snprintf(err, errlen, "%s", r->err);
		return -1;
	}
	if (r->status < 200 || r->status >= 300) {
		char e[256];
		cli_resp_errtext(r, e, sizeof(e));
		snprintf(err, errlen, "%ld %s", r->status, e);
		return -1;
	}
	if (!json_is_object(r->json)) {
		snprintf(err, errlen, "malformed response");
		return -1;
	}
	return 0;
}

/* One row of `endpoints`: the node's /status plus "endpoint" and
 * "error" (null when fine). Returns a new object, or NULL (no memory). */
static json_t *cli_node_status(struct cli *c, const char *endpoint,
			       const json_t *member)
{
	json_t *o = NULL;
	char err[300] = "";
	if (endpoint && *endpoint) {
		struct cli_resp r = {0};
		if (cli_get_one(c, endpoint, "/status", &r, err,
				sizeof(err)) == 0)
			o = json_deep_copy(r.json);
		cli_resp_clear(&r);
	} else {
		snprintf(err, sizeof(err), "no api_url registered");
	}
	if (!o) {
		o = json_object();
		if (member) {
			json_object_set_new(o, "id", json_string(
							    js_str(member, "id")));
			json_object_set_new(o, "name",
					    json_string(js_str(member, "name")));
		}
	}
	if (!o)
		return NULL;
	json_object_set_new(o, "endpoint", json_string(endpoint ? endpoint
								: ""));
	json_object_set_new(o, "error", err[0] ? json_string(err)
					       : json_null());
	return o;
}

/* An `endpoints` row from one cli_node_status object. */
static int cli_status_row(struct cli_table *t, const json_t *s,
			  const void *arg)
{
	(void)arg;
	bool ok = !json_is_string(json_object_get(s, "error"));
	char term[32] = "", idx[32] = "", app[32] = "", db[32] = "";
	if (ok) {
		snprintf(term, sizeof(term), "%lld", js_int(s, "raft_term"));
		snprintf(idx, sizeof(idx), "%lld", js_int(s, "raft_index"));
		snprintf(app, sizeof(app), "%lld", js_int(s, "applied_index"));
		cli_human_size((uint64_t)js_int(s, "db_size"), db, sizeof(db));
	}
	const char *row[] = {js_str(s, "endpoint"),
			     js_str(s, "id"),
			     js_str(s, "name"),
			     ok ? js_bool(s, "is_leader") : "",
			     ok ? js_bool(s, "is_learner") : "",
			     term,
			     idx,
			     app,
			     db,
			     js_str(s, "fsm_hash"),
			     js_str(s, "error")};
	return cli_table_add(t, row);
}

static int cmd_endpoints(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	json_t *rows = json_array();
	struct cli_resp r = {0};
	int rc = 0;
	/* One pass only: with no leader the member list is unavailable,
	 * and that is when the per-node view matters most, so fall back to
	 * the endpoints given with -e. */
	if (cli_call(c, "members", "GET", "/v1/members", NULL,
		     CALL_SINGLE_PASS, &r) == 0) {
		size_t i;
		json_t *m;
		json_array_foreach(json_object_get(r.json, "members"), i, m)
			json_array_append_new(
				rows, cli_node_status(c, js_str(m, "api_url"),
						      m));
	} else {
		fprintf(c->err, "pgwarden: endpoints: showing the given "
				"endpoints only\n");
		rc = 1;
		for (int i = 0; i < c->neps; i++)
			json_array_append_new(
				rows, cli_node_status(c, c->eps[i], NULL));
	}
	cli_resp_clear(&r);

	size_t i;
	json_t *s;
	json_array_foreach(rows, i, s)
		if (json_is_string(json_object_get(s, "error")))
			rc = 1;

	if (c->fmt == F_JSON) {
		cli_print_json(c, rows);
	} else {
		static const char *const h[] = {
			"ENDPOINT",  "ID",         "NAME",
			"IS LEADER", "IS LEARNER", "RAFT TERM",
			"RAFT INDEX", "RAFT APPLIED INDEX", "DB SIZE",
			"FSM HASH",  "ERRORS"};
		if (cli_print_rows(c->out, 11, h, rows, cli_status_row,
				   NULL) != 0) {
			cli_errorf(c, "endpoints: out of memory");
			rc = 1;
		}
	}
	json_decref(rows);
	return rc;
}

/* Whether a /status object names a leader (null, "" and the zero id do
 * not). */
static bool cli_knows_leader(const json_t *st)
{
	const char *lid = js_str(st, "leader_id");
	const char *ln = js_str(st, "leader");
	bool zero = true;
	for (const char *p = lid; *p; p++)
		if (*p != '0')
			zero = false;
	return *ln != '\0' || !zero;
}

static int cli_health_row(struct cli_table *t, const json_t *o,
			  const void *arg)
{
	(void)arg;
	const char *row[] = {js_str(o, "endpoint"), js_bool(o, "health"),
			     js_str(o, "took"), js_str(o, "leader"),
			     js_str(o, "error")};
	return cli_table_add(t, row);
}

static int cmd_endpoint_health(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	int rc = 0;
	json_t *rows = json_array();
	for (int i = 0; i < c->neps; i++) {
		struct cli_resp r = {0};
		char err[300] = "";
		const char *leader = "";
		long t0 = cli_now_ms();
		json_t *st = NULL;
		if (cli_get_one(c, c->eps[i], "/liveness", &r, err,
				sizeof(err)) == 0 &&
		    cli_get_one(c, c->eps[i], "/status", &r, err,
				sizeof(err)) == 0) {
			st = json_incref(r.json);
			if (cli_knows_leader(st))
				leader = js_str(st, "leader");
			else
				snprintf(err, sizeof(err),
					 "no leader known (state %s)",
					 js_str(st, "state"));
		}
		long took = cli_now_ms() - t0;
		bool ok = err[0] == '\0';
		if (!ok)
			rc = 1;
		char tk[32];
		snprintf(tk, sizeof(tk), "%ldms", took);
		json_t *o = json_object();
		json_object_set_new(o, "endpoint", json_string(c->eps[i]));
		json_object_set_new(o, "health", json_boolean(ok));
		json_object_set_new(o, "took", json_string(tk));
		json_object_set_new(o, "leader", json_string(leader));
		json_object_set_new(o, "error",
				    ok ? json_null() : json_string(err));
		json_array_append_new(rows, o);
		json_decref(st);
		cli_resp_clear(&r);
	}
	size_t i;
	json_t *o;
	if (c->fmt == F_JSON) {
		cli_print_json(c, rows);
	} else if (c->fmt == F_TABLE) {
		static const char *const h[] = {"ENDPOINT", "HEALTH", "TOOK",
						"LEADER", "ERROR"};
		if (cli_print_rows(c->out, 5, h, rows, cli_health_row,
				   NULL) != 0) {
			cli_errorf(c, "endpoint health: out of memory");
			rc = 1;
		}
	} else {
		json_array_foreach(rows, i, o) {
			if (json_is_true(json_object_get(o, "health")))
				fprintf(c->out,
					"%s is healthy: leader %s, took = %s\n",
					js_str(o, "endpoint"),
					js_str(o, "leader"), js_str(o, "took"));
			else
				fprintf(c->err, "%s is unhealthy: %s\n",
					js_str(o, "endpoint"),
					js_str(o, "error"));
		}
	}
	if (rc)
		cli_errorf(c, "unhealthy cluster");
	json_decref(rows);
	return rc;
}

/* "http://h:p/x" -> "h:p" into buf (the listen address an API URL
 * implies). */
static void cli_url_hostport(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/");
	snprintf(buf, len, "%.*s", (int)n, p);
}

/* HOST:PORT with a host name -> A.B.C.D:PORT (the first IPv4 address),
 * in place. An IPv4 address is kept; 0, or -1 with the error printed. */
static int cli_peer_resolve(struct cli *c, char *peer, size_t len)
{
	char host[256];
	const char *colon = strrchr(peer, ':');
	unsigned char a4[4];
	if (!colon || colon == peer || colon[1] == '\0' ||
	    (size_t)(colon - peer) >= sizeof(host)) {
		cli_errorf(c, "member add: --peer-url '%s' is not HOST:PORT",
			   peer);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - peer), peer);
	if (inet_pton(AF_INET, host, a4) == 1)
		return 0;
	if (host[0] == '[' || strchr(host, ':')) {
		cli_errorf(c, "member add: --peer-url '%s': an IPv6 address; "
			   "libraft's TCP transport takes IPv4 only", peer);
		return -1;
	}
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	int rv = getaddrinfo(host, NULL, &hints, &res);
	char ip[INET_ADDRSTRLEN] = "";
	if (rv == 0 && res && res->ai_addr) {
		const struct sockaddr_in *sin =
			(const struct sockaddr_in *)(const void *)res->ai_addr;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	}
	if (res)
		freeaddrinfo(res);
	if (!ip[0]) {
		cli_errorf(c, "member add: --peer-url '%s': cannot resolve "
			   "'%s' to an IPv4 address: %s", peer, host,
			   rv ? gai_strerror(rv) : "no address");
		return -1;
	}
	char port[16];
	snprintf(port, sizeof(port), "%s", colon + 1);
	snprintf(peer, len, "%s:%s", ip, port);
	return 0;
}

static int cmd_member_add(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	if (!(c->a.seen & OPT(O_PEER_URL))) {
		cli_errorf(c, "member add: --peer-url HOST:PORT is required");
		return 2;
	}
	char peer[256];
	/* etcdctl habit: --peer-urls=http://h:p; raft wants h:p */
	cli_url_hostport(c->a.val[O_PEER_URL], peer, sizeof(peer));
	/* ... and an IPv4 address: a host name is resolved here (a
	 * short-lived process may block), never by the daemon's loop */
	if (cli_peer_resolve(c, peer, sizeof(peer)) != 0)
		return 2;
	json_t *req = json_object();
	json_object_set_new(req, "name", json_string(args[0]));
	json_object_set_new(req, "peer_url", json_string(peer));
	if (c->a.seen & OPT(O_API_URL))
		json_object_set_new(req, "api_url",
				    json_string(c->a.val[O_API_URL]));
	char what[160];
	snprintf(what, sizeof(what), "member add %.140s", args[0]);
	struct cli_resp r = {0};
	int rc = cli_call(c, what, "POST", "/v1/members/add", req, 0, &r);
	json_decref(req);
	if (rc != 0) {
		cli_resp_clear(&r);
		return rc;
	}
	json_t *m = json_incref(json_object_get(r.json, "member"));
	char answered[512];
	snprintf(answered, sizeof(answered), "%s", r.endpoint);

	/* Best effort from here: the member is added; the cluster name and
	 * peer list only complete the ini lines printed for the new node. */
	char cluster[128] = "";
	char err[300];
	if (cli_get_one(c, answered, "/status", &r, err, sizeof(err)) == 0)
		snprintf(cluster, sizeof(cluster), "%s",
			 js_str(r.json, "cluster"));
	char *peers = NULL;
	size_t plen = 0;
	FILE *pf = open_memstream(&peers, &plen);
	if (pf && cli_get_one(c, answered, "/v1/members", &r, err,
			      sizeof(err)) == 0) {
		size_t i;
		json_t *x;
		bool self = false;
		json_array_foreach(json_object_get(r.json, "members"), i, x) {
			fprintf(pf, "%s%s=%s", i ? ", " : "", js_str(x, "name"),
				js_str(x, "peer_url"));
			if (strcmp(js_str(x, "name"), args[0]) == 0)
				self = true;
		}
		/* like etcd's INITIAL_CLUSTER, the list names the new node */
		if (!self)
			fprintf(pf, "%s%s=%s", i ? ", " : "", args[0], peer);
	}
	if (pf)
		fclose(pf);
	cli_resp_clear(&r);

	const char *name = json_object_get(m, "name") ? js_str(m, "name")
						      : args[0];
	fprintf(c->out, "Member %s added with ID %s to cluster %s\n\n", name,
		js_str(m, "id"), cluster[0] ? cluster : "?");
	fprintf(c->out, "; %s's ini file (plus data_dir and token_file as "
			"on the other nodes),\n; then: pgwarden run -c FILE; "
			"then: pgwarden member promote %s\n",
		name, name);
	if (cluster[0])
		fprintf(c->out, "[cluster]\nname = %s\n", cluster);
	fprintf(c->out, "[node]\nname = %s\n", name);
	fprintf(c->out, "[raft]\nlisten = %s\n",
		json_object_get(m, "peer_url") ? js_str(m, "peer_url") : peer);
	if (peers && peers[0])
		fprintf(c->out, "peers = %s\n", peers);
	fprintf(c->out, "initial_cluster_state = existing\n");
	const char *api = js_str(m, "api_url");
	if (!*api && (c->a.seen & OPT(O_API_URL)))
		api = c->a.val[O_API_URL];
	if (*api) {
		char hp[256];
		cli_url_hostport(api, hp, sizeof(hp));
		fprintf(c->out, "[api]\nlisten = %s\n", hp);
	} else {
		fprintf(c->out, "[api]\n; listen = HOST:PORT of %s's API "
				"(it registers its URL when it starts)\n",
			name);
	}
	free(peers); /* from open_memstream */
	json_decref(m);
	return 0;
}

static int cmd_member_promote(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	json_t *req = json_object();
	json_object_set_new(req, "name", json_string(args[0]));
	char what[160];
	snprintf(what, sizeof(what), "member promote %.140s", args[0]);
	struct cli_resp r = {0};
	int rc = cli_call(c, what, "POST", "/v1/members/promote", req, 0, &r);
	if (rc == 0) {
		json_t *m = json_object_get(r.json, "member");
		fprintf(c->out, "Member %s promoted to %s\n", args[0],
			json_object_get(m, "role") ? js_str(m, "role")
						   : "voter");
	}
	cli_resp_clear(&r);
	json_decref(req);
	return rc;
}

static int cmd_member_remove(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	json_t *req = json_object();
	json_object_set_new(req, "name", json_string(args[0]));
	char what[160];
	snprintf(what, sizeof(what), "member remove %.140s", args[0]);
	struct cli_resp r = {0};
	int rc = cli_call(c, what, "POST", "/v1/members/remove", req, 0, &r);
	if (rc == 0) {
		const char *n = js_str(r.json, "removed");
		fprintf(c->out, "Member %s removed\n", *n ? n : args[0]);
	}
	cli_resp_clear(&r);
	json_decref(req);
	return rc;
}

static int cmd_transfer_leader(struct cli *c, char **args, int nargs)
{
	json_t *req = json_object();
	if (nargs > 0)
		json_object_set_new(req, "name", json_string(args[0]));
	struct cli_resp r = {0};
	int rc = cli_call(c, "transfer-leader", "POST", "/v1/transfer-leader",
			  req, CALL_RESENDABLE, &r);
	if (rc == 0)
		fprintf(c->out, "Leadership transferred to %s\n",
			js_str(r.json, "leader"));
	cli_resp_clear(&r);
	json_decref(req);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Command table                                                      */

#define OUT_KV (F_SIMPLE | F_JSON)
#define OUT_ALL (F_SIMPLE | F_JSON | F_TABLE)
#define OUT_TJ (F_TABLE | F_JSON | F_SIMPLE)

/* ------------------------------------------------------------------ */
/* HA operator commands                                                 */

/* Ask unless --force; a non-interactive run without --force is refused. */
static int cli_confirm(struct cli *c, const char *question)
{
	if (c->a.seen & OPT(O_FORCE))
		return 0;
	if (!isatty(STDIN_FILENO)) {
		cli_errorf(c, "%s: not a terminal: add --force to skip the "
			      "confirmation",
			   question);
		return 2;
	}
	fprintf(c->out, "%s [y/N]: ", question);
	fflush(c->out);
	char line[32];
	if (!fgets(line, sizeof line, stdin) ||
	    (line[0] != 'y' && line[0] != 'Y')) {
		fprintf(c->out, "Aborted\n");
		return 1;
	}
	return 0;
}

/* The cluster's current leader name from /cluster, "" when none. */
static int cli_current_leader(struct cli *c, char *out, size_t len)
{
	struct cli_resp r = {0};
	int rc = cli_call(c, "cluster", "GET", "/cluster", NULL, 0, &r);
	out[0] = '\0';
	if (rc == 0 && json_is_string(json_object_get(r.json, "leader")))
		snprintf(out, len, "%s", js_str(r.json, "leader"));
	cli_resp_clear(&r);
	return rc;
}

/* Poll /cluster until a primary other than `old` runs (or `want` when
 * set), at most wait_ms. */
static int cli_wait_new_primary(struct cli *c, const char *old,
				const char *want, long wait_ms, char *got,
				size_t len)
{
	long deadline = cli_now_ms() + wait_ms;
	long gone_since = 0;
	got[0] = '\0';
	while (cli_now_ms() < deadline) {
		struct cli_resp r = {0};
		if (cli_call(c, "cluster", "GET", "/cluster", NULL, 0, &r) ==
		    0) {
			const char *l = js_str(r.json, "leader");
			/* the request is deleted once carried out or refused:
			 * gone for a second with the old primary still in
			 * place means refused */
			bool pending =
				json_is_string(
					json_object_get(r.json, "switchover")) ||
				json_is_string(
					json_object_get(r.json, "failover"));
			if (!pending && strcmp(l, old) == 0) {
				if (!gone_since)
					gone_since = cli_now_ms();
				else if (cli_now_ms() - gone_since > 1500) {
					cli_resp_clear(&r);
					snprintf(got, len, "%s", "");
					return 2;
				}
			} else {
				gone_since = 0;
			}
			json_t *ms = json_object_get(r.json, "members");
			size_t i;
			json_t *m;
			bool running = false;
			json_array_foreach(ms, i, m)
				if (strcmp(js_str(m, "name"), l) == 0 &&
				    strcmp(js_str(m, "role"), "primary") == 0 &&
				    strcmp(js_str(m, "state"), "running") == 0)
					running = true;
			if (*l && strcmp(l, old) != 0 && running &&
			    (!want || !*want || strcmp(l, want) == 0)) {
				snprintf(got, len, "%s", l);
				cli_resp_clear(&r);
				return 0;
			}
		}
		cli_resp_clear(&r);
		if (cli_sleep_ms(100)) /* interrupted */
			return 1;
	}
	return 1;
}

static int cmd_switchover(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	struct cli_resp r = {0};
	int rc;
	if (c->a.seen & OPT(O_CANCEL)) {
		rc = cli_call(c, "switchover", "DELETE", "/switchover", NULL, 0,
			      &r);
		if (rc == 0)
			fprintf(c->out, "%s\n", js_str(r.json, "message"));
		cli_resp_clear(&r);
		return rc;
	}
	char old[128];
	if (cli_current_leader(c, old, sizeof old) != 0)
		return 1;
	if (!*old) {
		cli_errorf(c, "switchover: no primary holds the lease; use "
			      "`pgwarden failover --candidate NODE`");
		return 1;
	}
	const char *to = c->a.val[O_CANDIDATE];
	char q[256];
	snprintf(q, sizeof q,
		 "Switch over from primary %s to %s%s%s?", old,
		 to ? to : "the most advanced replica",
		 c->a.val[O_SCHEDULED] ? " at " : "",
		 c->a.val[O_SCHEDULED] ? c->a.val[O_SCHEDULED] : "");
	if ((rc = cli_confirm(c, q)) != 0)
		return rc;
	json_t *req = json_object();
	json_object_set_new(req, "leader",
			    json_string(c->a.val[O_LEADER] ? c->a.val[O_LEADER]
							   : old));
	if (to)
		json_object_set_new(req, "candidate", json_string(to));
	if (c->a.val[O_SCHEDULED])
		json_object_set_new(req, "scheduled_at",
				    json_string(c->a.val[O_SCHEDULED]));
	rc = cli_call(c, "switchover", "POST", "/switchover", req, 0, &r);
	json_decref(req);
	if (rc != 0) {
		cli_resp_clear(&r);
		return rc;
	}
	fprintf(c->out, "%s\n", js_str(r.json, "message"));
	cli_resp_clear(&r);
	if (c->a.val[O_SCHEDULED])
		return 0;
	char got[128];
	long wait = c->timeout_ms > 30000 ? c->timeout_ms : 30000;
	int w = cli_wait_new_primary(c, old, to, wait, got, sizeof got);
	if (w == 2) {
		cli_errorf(c, "switchover: refused or abandoned by %s, which "
			      "stays the primary (see its log)",
			   old);
		return 1;
	}
	if (w != 0) {
		cli_errorf(c, "switchover: no new primary within %ld s (see "
			      "`pgwarden list` and the nodes' logs)",
			   wait / 1000);
		return 1;
	}
	fprintf(c->out, "Switched over: %s is the primary\n", got);
	return 0;
}

static int cmd_failover(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	const char *to = c->a.val[O_CANDIDATE];
	if (!to) {
		cli_errorf(c, "failover: --candidate NODE is required");
		return 2;
	}
	char old[128];
	if (cli_current_leader(c, old, sizeof old) != 0)
		return 1;
	char q[256];
	snprintf(q, sizeof q, "Fail over to %s%s%s?", to,
		 *old ? ", demoting the current primary " : "", old);
	int rc = cli_confirm(c, q);
	if (rc != 0)
		return rc;
	json_t *req = json_pack("{s:s}", "candidate", to);
	struct cli_resp r = {0};
	rc = cli_call(c, "failover", "POST", "/failover", req, 0, &r);
	json_decref(req);
	if (rc == 0)
		fprintf(c->out, "%s\n", js_str(r.json, "message"));
	cli_resp_clear(&r);
	if (rc != 0)
		return rc;
	char got[128];
	long wait = c->timeout_ms > 30000 ? c->timeout_ms : 30000;
	int w = cli_wait_new_primary(c, old, to, wait, got, sizeof got);
	if (w == 2) {
		cli_errorf(c, "failover to %s refused (see the primary's log, "
			      "or the controller's on the Raft leader)",
			   to);
		return 1;
	}
	if (w != 0) {
		cli_errorf(c, "failover: %s did not become the primary within "
			      "%ld s (see `pgwarden list` and the logs)",
			   to, wait / 1000);
		return 1;
	}
	fprintf(c->out, "Failed over: %s is the primary\n", got);
	return 0;
}

static int cmd_pause_resume(struct cli *c, const char *path)
{
	struct cli_resp r = {0};
	int rc = cli_call(c, path + 1, "POST", path, NULL, CALL_RESENDABLE,
			  &r);
	if (rc == 0)
		fprintf(c->out, "%s\n", js_str(r.json, "message"));
	cli_resp_clear(&r);
	return rc;
}

static int cmd_pause(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	return cmd_pause_resume(c, "/pause");
}

static int cmd_resume(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	return cmd_pause_resume(c, "/resume");
}

static int cli_history_row(struct cli_table *t, const json_t *e,
			   const void *arg)
{
	(void)arg;
	char tl[24], lsn[32];
	snprintf(tl, sizeof tl, "%lld", js_int(e, "timeline"));
	unsigned long long v = (unsigned long long)js_int(e, "lsn");
	snprintf(lsn, sizeof lsn, "%llX/%llX", v >> 32, v & 0xffffffffULL);
	const char *row[] = {tl, lsn, js_str(e, "reason"), js_str(e, "leader"),
			     js_str(e, "time")};
	return cli_table_add(t, row);
}

static int cmd_history(struct cli *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	struct cli_resp r = {0};
	int rc = cli_call(c, "history", "GET", "/history", NULL, 0, &r);
	if (rc != 0)
		goto out;
	json_t *h = json_object_get(r.json, "history");
	if (c->fmt == F_JSON) {
		cli_print_json(c, h);
		goto out;
	}
	static const char *const hd[] = {"TL", "LSN", "REASON", "LEADER",
					 "TIME"};
	if (cli_print_rows(c->out, 5, hd, h, cli_history_row, NULL) != 0) {
		cli_errorf(c, "history: out of memory");
		rc = 1;
	}
out:
	cli_resp_clear(&r);
	return rc;
}

/* No server: the agent's transition table, compiled in. */
static int cmd_fsm(struct cli *c, char **args, int nargs)
{
	(void)args;
	(void)nargs;
	ha_fsm_print(c->out, (c->a.seen & OPT(O_DOT)) != 0);
	return 0;
}

static int cmd_reinit(struct cli *c, char **args, int nargs)
{
	(void)nargs;
	const char *node = args[0];
	struct cli_resp r = {0};
	int rc = cli_call(c, "reinit", "GET", "/cluster", NULL, 0, &r);
	if (rc != 0) {
		cli_resp_clear(&r);
		return rc;
	}
	char api[512] = "";
	json_t *ms = json_object_get(r.json, "members");
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m)
		if (strcmp(js_str(m, "name"), node) == 0)
			snprintf(api, sizeof api, "%s", js_str(m, "api_url"));
	cli_resp_clear(&r);
	if (!api[0]) {
		cli_errorf(c, "reinit: %s does not report (not a member, or "
			      "down)",
			   node);
		return 1;
	}
	char q[200];
	snprintf(q, sizeof q,
		 "Wipe %s's data directory and clone it again from the "
		 "primary?",
		 node);
	if ((rc = cli_confirm(c, q)) != 0)
		return rc;
	if (cli_http_once(c, api, "POST", "/reinitialize", NULL, true,
			  c->timeout_ms, &r) != 0) {
		cli_errorf(c, "reinit: %s: %s", api, r.err);
		cli_resp_clear(&r);
		return 1;
	}
	if (r.status != 200) {
		char e[256];
		cli_resp_errtext(&r, e, sizeof e);
		cli_errorf(c, "reinit: %ld %s", r.status, e);
		cli_resp_clear(&r);
		return 1;
	}
	fprintf(c->out, "%s: %s\n", node, js_str(r.json, "message"));
	cli_resp_clear(&r);
	return 0;
}

static const struct cli_cmd cli_cmds[] = {
	{{"list"}, 0, 0, OPT(O_OUTPUT), OUT_TJ, F_TABLE, false, cmd_list,
	 "list [-o table|json]",
	 "the cluster's PostgreSQL members: role, state, timeline, lag"},
	{{"switchover"}, 0, 0,
	 OPT(O_CANDIDATE) | OPT(O_LEADER) | OPT(O_SCHEDULED) | OPT(O_FORCE) |
		 OPT(O_CANCEL),
	 0, F_SIMPLE, true, cmd_switchover,
	 "switchover [--candidate NODE] [--scheduled TIME] [--force] "
	 "[--cancel]",
	 "planned handover of the primary role (waits until done)"},
	{{"failover"}, 0, 0, OPT(O_CANDIDATE) | OPT(O_FORCE), 0, F_SIMPLE,
	 true, cmd_failover, "failover --candidate NODE [--force]",
	 "make NODE the primary now (also when no primary runs)"},
	{{"pause"}, 0, 0, 0, 0, F_SIMPLE, true, cmd_pause, "pause",
	 "maintenance mode: no automatic action"},
	{{"resume"}, 0, 0, 0, 0, F_SIMPLE, true, cmd_resume, "resume",
	 "leave maintenance mode"},
	{{"history"}, 0, 0, OPT(O_OUTPUT), OUT_TJ, F_TABLE, false,
	 cmd_history, "history [-o table|json]",
	 "timeline switches with their reasons"},
	{{"fsm"}, 0, 0, OPT(O_DOT), 0, F_SIMPLE, false, cmd_fsm,
	 "fsm [--dot]",
	 "the agent's life cycle, transition table and flows (asks no "
	 "node; --dot: Graphviz)"},
	{{"reinit"}, 1, 1, OPT(O_FORCE), 0, F_SIMPLE, true, cmd_reinit,
	 "reinit NODE [--force]",
	 "wipe a replica's data and clone it again from the primary"},
	{{"get"}, 1, 1,
	 OPT(O_PREFIX) | OPT(O_VALUE_ONLY) | OPT(O_KEYS_ONLY) |
		 OPT(O_SERIALIZABLE) | OPT(O_OUTPUT),
	 OUT_KV, F_SIMPLE, false, cmd_get,
	 "get KEY [--prefix] [--print-value-only|--keys-only] "
	 "[--serializable] [-o simple|json]",
	 "print key and value lines (linearizable unless --serializable)"},
	{{"put"}, 1, 2, OPT(O_LEASE) | OPT(O_PREV_REV) | OPT(O_CREATE), 0,
	 F_SIMPLE, true, cmd_put,
	 "put KEY [VALUE] [--lease ID] [--prev-revision N] [--create]",
	 "set a key (VALUE from stdin when omitted; --create: only if "
	 "absent)"},
	{{"del"}, 1, 1, OPT(O_PREFIX) | OPT(O_PREV_REV), 0, F_SIMPLE, true,
	 cmd_del, "del KEY [--prefix] [--prev-revision N]",
	 "delete a key or a prefix; prints how many were deleted"},
	{{"lease", "grant"}, 1, 1, 0, 0, F_SIMPLE, true, cmd_lease_grant,
	 "lease grant TTL_S", "create a lease"},
	{{"lease", "keepalive"}, 1, 1, OPT(O_ONCE), 0, F_SIMPLE, true,
	 cmd_lease_keepalive, "lease keepalive ID [--once]",
	 "renew a lease every TTL/3 until Ctrl-C (--once: one renewal)"},
	{{"lease", "revoke"}, 1, 1, 0, 0, F_SIMPLE, true, cmd_lease_revoke,
	 "lease revoke ID", "delete a lease and its keys"},
	{{"lease", "list"}, 0, 0, OPT(O_OUTPUT), OUT_ALL, F_SIMPLE, false,
	 cmd_lease_list, "lease list [-o simple|table|json]",
	 "list the leases"},
	{{"members"}, 0, 0, OPT(O_OUTPUT), OUT_TJ, F_TABLE, false,
	 cmd_members, "members [-o table|json|simple]   (alias: member list)",
	 "list the cluster's members"},
	{{"member", "list"}, 0, 0, OPT(O_OUTPUT), OUT_TJ, F_TABLE, false,
	 cmd_members, NULL, NULL},
	{{"endpoints"}, 0, 0, OPT(O_OUTPUT), F_TABLE | F_JSON, F_TABLE, false,
	 cmd_endpoints, "endpoints [-o table|json]   (alias: endpoint status)",
	 "every member's raft status, applied index and FSM hash"},
	{{"endpoint", "status"}, 0, 0, OPT(O_OUTPUT), F_TABLE | F_JSON,
	 F_TABLE, false, cmd_endpoints, NULL, NULL},
	{{"endpoint", "health"}, 0, 0, OPT(O_OUTPUT), OUT_ALL, F_SIMPLE, false,
	 cmd_endpoint_health, "endpoint health [-o simple|table|json]",
	 "each -e endpoint: alive, and knows a leader"},
	{{"member", "add"}, 1, 1, OPT(O_PEER_URL) | OPT(O_API_URL), 0,
	 F_SIMPLE, true, cmd_member_add,
	 "member add NAME --peer-url HOST:PORT [--api-url URL]",
	 "add a learner; prints the new node's ini lines"},
	{{"member", "promote"}, 1, 1, 0, 0, F_SIMPLE, true,
	 cmd_member_promote, "member promote NAME",
	 "make a caught-up learner a voter"},
	{{"member", "remove"}, 1, 1, 0, 0, F_SIMPLE, true, cmd_member_remove,
	 "member remove NAME", "remove a member"},
	{{"transfer-leader"}, 0, 1, 0, 0, F_SIMPLE, true, cmd_transfer_leader,
	 "transfer-leader [NAME]",
	 "hand Raft leadership to NAME (or any up-to-date voter)"},
};

#define CLI_NCMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

static size_t cli_cmd_nwords(const struct cli_cmd *cmd)
{
	size_t n = 0;
	while (n < 3 && cmd->words[n])
		n++;
	return n;
}

/* The command whose words lead a->pos (the longest match), or NULL. */
static const struct cli_cmd *cli_match(const struct cli_args *a)
{
	const struct cli_cmd *best = NULL;
	size_t bestn = 0;
	for (size_t k = 0; k < CLI_NCMDS; k++) {
		size_t n = cli_cmd_nwords(&cli_cmds[k]);
		if (n > (size_t)a->npos || n <= bestn)
			continue;
		size_t w = 0;
		while (w < n && strcmp(cli_cmds[k].words[w], a->pos[w]) == 0)
			w++;
		if (w == n) {
			best = &cli_cmds[k];
			bestn = n;
		}
	}
	return best;
}

static enum cli_fmt cli_fmt_parse(const char *s)
{
	if (strcmp(s, "simple") == 0)
		return F_SIMPLE;
	if (strcmp(s, "json") == 0)
		return F_JSON;
	if (strcmp(s, "table") == 0)
		return F_TABLE;
	return 0;
}

static void cli_cmd_usage(FILE *f, const struct cli_cmd *cmd)
{
	const struct cli_cmd *u = cmd;
	/* an alias shows the usage of the command it stands for */
	if (!u->usage)
		for (size_t k = 0; k < CLI_NCMDS; k++)
			if (cli_cmds[k].run == cmd->run && cli_cmds[k].usage)
				u = &cli_cmds[k];
	fprintf(f, "usage: pgwarden [-e URL,...] [--token-file F] "
		   "[--timeout S] %s\n",
		u->usage);
}

void cli_usage(FILE *f)
{
	fprintf(f, "Store and cluster commands (talk to a node's HTTP API):\n");
	for (size_t k = 0; k < CLI_NCMDS; k++) {
		if (!cli_cmds[k].usage)
			continue;
		fprintf(f, "  %s\n      %s\n", cli_cmds[k].usage,
			cli_cmds[k].help);
	}
	fprintf(f,
		"Client options (before or after the command):\n"
		"  -e, --endpoints URL,URL,...  nodes' API URLs, tried in "
		"order\n"
		"                      (default $PGWARDEN_ENDPOINTS, "
		"else " CLI_DEFAULT_ENDPOINT ")\n"
		"  --token-file FILE   cluster token, needed to write "
		"(default $PGWARDEN_TOKEN_FILE)\n"
		"  --timeout S         give up after S seconds (default 5; "
		"500ms, 2s, 1m work)\n"
		"  -o, -w, --write-out FORMAT   simple, json or table\n");
}

/* The token file's content, trimmed, into c->token. 0, or 2 (printed). */
static int cli_load_token(struct cli *c, const char *name)
{
	const char *path = c->a.val[O_TOKEN_FILE];
	if (!path || !*path)
		path = getenv("PGWARDEN_TOKEN_FILE");
	if (!path || !*path) {
		cli_errorf(c, "%s needs the cluster token: pass --token-file "
			      "FILE or set PGWARDEN_TOKEN_FILE",
			   name);
		return 2;
	}
	FILE *f = fopen(path, "r");
	if (!f) {
		cli_errorf(c, "token file %s: %s", path, strerror(errno));
		return 2;
	}
	char buf[CLI_MAX_TOKEN + 1];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	bool bad = ferror(f) != 0;
	fclose(f);
	buf[n] = '\0';
	size_t b = 0;
	while (b < n && isspace((unsigned char)buf[b]))
		b++;
	while (n > b && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	if (bad || n == b) {
		cli_errorf(c, "token file %s: %s", path,
			   bad ? "read error" : "empty");
		return 2;
	}
	c->token = mem_strdup(buf + b);
	memset(buf, 0, sizeof(buf));
	if (!c->token) {
		cli_errorf(c, "out of memory");
		return 1;
	}
	return 0;
}

/* Resolve the command, check its options and arguments, set up
 * endpoints, timeout, output format. Returns 0, or an exit status
 * (2 for usage errors, message printed). */
static int cli_setup(struct cli *c, int argc, char **argv)
{
	char err[256];
	if (cli_parse(argc, argv, &c->a, err, sizeof(err)) != 0) {
		cli_errorf(c, "%s (see pgwarden --help)", err);
		return 2;
	}
	if (c->a.npos == 0) {
		if (c->a.seen & OPT(O_HELP)) {
			cli_usage(c->out);
			return -1;
		}
		cli_errorf(c, "no command given (see pgwarden --help)");
		return 2;
	}
	if (strcmp(c->a.pos[0], "help") == 0) {
		cli_usage(c->out);
		return -1;
	}
	c->cmd = cli_match(&c->a);
	if (!c->cmd) {
		bool group = false;
		for (size_t k = 0; k < CLI_NCMDS; k++)
			if (cli_cmd_nwords(&cli_cmds[k]) > 1 &&
			    strcmp(cli_cmds[k].words[0], c->a.pos[0]) == 0)
				group = true;
		if (group)
			cli_errorf(c, "%s: unknown or missing subcommand "
				      "(see pgwarden --help)", c->a.pos[0]);
		else
			cli_errorf(c, "unknown command '%s' (see pgwarden "
				      "--help)", c->a.pos[0]);
		return 2;
	}
	if (c->a.seen & OPT(O_HELP)) {
		cli_cmd_usage(c->out, c->cmd);
		return -1;
	}
	size_t nw = cli_cmd_nwords(c->cmd);
	int nargs = c->a.npos - (int)nw;
	char name[64];
	snprintf(name, sizeof(name), "%s%s%s", c->cmd->words[0],
		 nw > 1 ? " " : "", nw > 1 ? c->cmd->words[1] : "");
	unsigned extra = c->a.seen & ~(c->cmd->opts | OPTS_GLOBAL);
	if (extra) {
		enum cli_opt o = 0;
		while (!(extra & OPT(o)))
			o++;
		cli_errorf(c, "%s does not take --%s", name, cli_opt_name(o));
		cli_cmd_usage(c->err, c->cmd);
		return 2;
	}
	if (nargs < c->cmd->min_args || nargs > c->cmd->max_args) {
		cli_errorf(c, "%s: wrong number of arguments", name);
		cli_cmd_usage(c->err, c->cmd);
		return 2;
	}
	c->fmt = c->cmd->fmt_default;
	if (c->a.seen & OPT(O_OUTPUT)) {
		enum cli_fmt f = cli_fmt_parse(c->a.val[O_OUTPUT]);
		if (!(f & c->cmd->fmts)) {
			cli_errorf(c, "%s: unsupported output format '%s'",
				   name, c->a.val[O_OUTPUT]);
			cli_cmd_usage(c->err, c->cmd);
			return 2;
		}
		c->fmt = f;
	}
	c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	if (c->a.seen & OPT(O_TIMEOUT)) {
		c->timeout_ms = cli_parse_duration_ms(c->a.val[O_TIMEOUT]);
		if (c->timeout_ms < 0) {
			cli_errorf(c, "--timeout wants seconds (5, 2.5, "
				      "500ms), not '%s'", c->a.val[O_TIMEOUT]);
			return 2;
		}
	}
	const char *eps = c->a.val[O_ENDPOINTS];
	if (!eps || !*eps)
		eps = getenv("PGWARDEN_ENDPOINTS");
	if (!eps || !*eps)
		eps = CLI_DEFAULT_ENDPOINT;
	c->neps = cli_split_endpoints(eps, c->eps, CLI_MAX_ENDPOINTS, err,
				      sizeof(err));
	if (c->neps < 0) {
		c->neps = 0;
		cli_errorf(c, "endpoints: %s", err);
		return 2;
	}
	if (c->cmd->needs_token) {
		int rc = cli_load_token(c, name);
		if (rc)
			return rc;
	}
	return 0;
}

int cli_main(int argc, char **argv)
{
	struct cli c;
	memset(&c, 0, sizeof(c));
	c.out = stdout;
	c.err = stderr;
	int rc = cli_setup(&c, argc, argv);
	if (rc == 0) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
		    !(c.curl = curl_easy_init())) {
			cli_errorf(&c, "cannot initialise libcurl");
			rc = 1;
		} else {
			size_t nw = cli_cmd_nwords(c.cmd);
			rc = c.cmd->run(&c, c.a.pos + nw,
					c.a.npos - (int)nw);
			curl_easy_cleanup(c.curl);
		}
		curl_global_cleanup();
	} else if (rc < 0) {
		rc = 0; /* help printed */
	}
	if (fflush(c.out) != 0 && rc == 0) {
		fprintf(stderr, "pgwarden: write error: %s\n", strerror(errno));
		rc = 1;
	}
	for (int i = 0; i < c.neps; i++)
		mem_free(c.eps[i]);
	if (c.token) {
		memset(c.token, 0, strlen(c.token));
		mem_free(c.token);
	}
	return rc;
}
