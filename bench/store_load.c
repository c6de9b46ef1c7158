/*
 * store_load: HTTP put load generator for bench/store (pgwarden or etcd).
 *
 * Load mode: M puts in total over N concurrent keep-alive connections,
 * driven by one libcurl multi handle (no threads). Each client issues its
 * next request as soon as its previous one completes (closed loop). Every
 * request's latency is taken with CLOCK_MONOTONIC from the moment its easy
 * handle is added to the moment the multi handle reports it done. Prints
 * count, errors, throughput and p50/p90/p99/max, then one machine-readable
 * line:
 *
 *   RESULT mode=pgwarden clients=16 n=5000 ok=5000 errors=0 rps=... \
 *          p50_ms=... p90_ms=... p99_ms=... max_ms=... elapsed_s=...
 *
 * Until-ok mode (failover timing): single puts, each with a short timeout
 * (--attempt-timeout-ms, 200), round-robin over a comma-separated list of
 * URLs, until one succeeds or --max-ms passes. Attempts go one at a time,
 * at most one per 10 ms. A store that holds a put while it has no leader
 * (etcd does) would then be seen up to one timeout late; --stagger-ms S also
 * starts a new attempt every S ms while earlier ones still wait (at most 32
 * in flight), so the first success is seen within about S ms. With --kill-pid the program sends SIGKILL to that pid
 * itself right after taking its start time, so the figure is "SIGKILL to the
 * first acknowledged write" without process-start noise. Prints:
 *
 *   UNTIL_OK ok=1 ms=812.3 attempts=17 url=http://... last_status=503
 *
 * Request bodies: pgwarden  POST URL/v1/kv/put {"key":K,"value":V}
 *                 etcd      POST URL/v3/kv/put {"key":b64(K),"value":b64(V)}
 * --token is sent as "Authorization: Bearer T" in pgwarden mode only (etcd
 * would take the header for one of its own auth tokens and answer 401).
 * A request counts as ok when the transfer succeeded and the status is 200.
 * Proxies from the environment are ignored: traffic goes where --url says.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_PGWARDEN, MODE_ETCD };

struct opts {
	const char *url;        /* one URL, or a comma list for --until-ok */
	enum mode mode;
	const char *token;      /* borrowed from argv; may be NULL */
	long clients;
	long requests;
	long warmup;            /* requests sent first and not recorded */
	const char *key_prefix;
	long value_size;        /* bytes */
	long timeout_ms;        /* per request, load mode */
	bool until_ok;
	long attempt_timeout_ms;/* per attempt, until-ok mode */
	long max_ms;            /* until-ok: give up after this */
	long kill_pid;          /* until-ok: SIGKILL this pid at t=0 (0: none) */
	long stagger_ms;        /* until-ok: start an attempt every this many ms
				 * even while earlier ones wait (0: one at a time) */
	bool quiet;
};

struct client {
	CURL *easy;
	struct curl_slist *hdrs; /* owned */
	char *body;             /* owned, current request body */
	char resp[512];         /* head of the response, for error messages */
	size_t resp_len;
	uint64_t start_ns;
	long seq;               /* global request number of the current put */
	bool busy;
};

struct run {
	const struct opts *o;
	char *value_json;       /* owned: the value as it goes in the body */
	char *value_b64;        /* owned (etcd) */
	char *put_url;          /* owned */
	long next_seq;
	long done;
	long ok;
	long errors;
	long shown_errors;
	double *lat_ms;         /* owned, one per recorded ok request */
	long nlat;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("store_load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("vsnprintf failed");
	char *s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static char *b64(const char *in, size_t len)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((len + 2) / 3 * 4 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < len)
			v |= (uint32_t)(unsigned char)in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static long parse_long(const char *name, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		die("%s: bad value '%s' (allowed %ld..%ld)", name, s, lo, hi);
	return v;
}

static void usage(FILE *f)
{
	fputs(
	    "usage: store_load --url URL --mode pgwarden|etcd [--token T]\n"
	    "         [--clients N] [--requests M] [--warmup W] [--key-prefix P]\n"
	    "         [--value-size B] [--timeout-ms MS] [--quiet]\n"
	    "       store_load --until-ok --url URL[,URL...] --mode pgwarden|etcd\n"
	    "         [--token T] [--attempt-timeout-ms 200] [--max-ms 30000]\n"
	    "         [--kill-pid PID] [--stagger-ms S]\n",
	    f);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){
	    .mode = MODE_PGWARDEN,
	    .clients = 1,
	    .requests = 1000,
	    .key_prefix = "/bench/",
	    .value_size = 64,
	    .timeout_ms = 10000,
	    .attempt_timeout_ms = 200,
	    .max_ms = 30000,
	};
	bool have_mode = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--until-ok") == 0) {
			o->until_ok = true;
			continue;
		}
		if (strcmp(a, "--quiet") == 0) {
			o->quiet = true;
			continue;
		}
		if (i + 1 >= argc)
			die("%s: missing value (try --help)", a);
		const char *v = argv[++i];
		if (strcmp(a, "--url") == 0)
			o->url = v;
		else if (strcmp(a, "--mode") == 0) {
			have_mode = true;
			if (strcmp(v, "pgwarden") == 0)
				o->mode = MODE_PGWARDEN;
			else if (strcmp(v, "etcd") == 0)
				o->mode = MODE_ETCD;
			else
				die("--mode: '%s' is not pgwarden or etcd", v);
		} else if (strcmp(a, "--token") == 0)
			o->token = v;
		else if (strcmp(a, "--clients") == 0)
			o->clients = parse_long(a, v, 1, 10000);
		else if (strcmp(a, "--requests") == 0)
			o->requests = parse_long(a, v, 1, 100000000);
		else if (strcmp(a, "--warmup") == 0)
			o->warmup = parse_long(a, v, 0, 100000000);
		else if (strcmp(a, "--key-prefix") == 0)
			o->key_prefix = v;
		else if (strcmp(a, "--value-size") == 0)
			o->value_size = parse_long(a, v, 0, 1 << 20);
		else if (strcmp(a, "--timeout-ms") == 0)
			o->timeout_ms = parse_long(a, v, 1, 3600000);
		else if (strcmp(a, "--attempt-timeout-ms") == 0)
			o->attempt_timeout_ms = parse_long(a, v, 1, 60000);
		else if (strcmp(a, "--max-ms") == 0)
			o->max_ms = parse_long(a, v, 1, 3600000);
		else if (strcmp(a, "--stagger-ms") == 0)
			o->stagger_ms = parse_long(a, v, 0, 60000);
		else if (strcmp(a, "--kill-pid") == 0)
			o->kill_pid = parse_long(a, v, 2, 1L << 22);
		else
			die("unknown option '%s' (try --help)", a);
	}
	if (o->url == NULL || !have_mode) {
		usage(stderr);
		exit(2);
	}
	if (strpbrk(o->key_prefix, "\"\\") != NULL)
		die("--key-prefix: no quotes or backslashes");
	if (o->kill_pid != 0 && !o->until_ok)
		die("--kill-pid goes with --until-ok");
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct client *c = data;
	size_t n = size * nmemb;
	size_t room = sizeof c->resp - 1 - c->resp_len;
	size_t take = n < room ? n : room;
	memcpy(c->resp + c->resp_len, ptr, take);
	c->resp_len += take;
	c->resp[c->resp_len] = '\0';
	return n;
}

static void run_init(struct run *r, const struct opts *o)
{
	*r = (struct run){.o = o};
	char *value = xmalloc((size_t)o->value_size + 1);
	for (long i = 0; i < o->value_size; i++)
		value[i] = (char)('a' + i % 26);
	value[o->value_size] = '\0';
	if (o->mode == MODE_ETCD)
		r->value_b64 = b64(value, (size_t)o->value_size);
	r->value_json = value;
	r->lat_ms = xmalloc(sizeof *r->lat_ms * (size_t)(o->requests + 1));
}

static char *make_put_url(const struct opts *o, const char *base, size_t len)
{
	while (len > 0 && base[len - 1] == '/')
		len--;
	return xasprintf("%.*s%s", (int)len, base,
			 o->mode == MODE_ETCD ? "/v3/kv/put" : "/v1/kv/put");
}

/* Build the body of put number seq into c->body. */
static void client_body(struct run *r, struct client *c, long seq)
{
	const struct opts *o = r->o;
	free(c->body);
	char *key = xasprintf("%s%08ld", o->key_prefix, seq);
	if (o->mode == MODE_ETCD) {
		char *k64 = b64(key, strlen(key));
		c->body = xasprintf("{\"key\":\"%s\",\"value\":\"%s\"}", k64,
				    r->value_b64);
		free(k64);
	} else {
		c->body = xasprintf("{\"key\":\"%s\",\"value\":\"%s\"}", key,
				    r->value_json);
	}
	free(key);
}

static void client_setup(struct client *c, const struct opts *o, long timeout_ms)
{
	c->easy = curl_easy_init();
	if (c->easy == NULL)
		die("curl_easy_init failed");
	c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	c->hdrs = curl_slist_append(c->hdrs, "Expect:");
	/* etcd reads an Authorization header as its own auth token: pgwarden only. */
	if (o->token != NULL && o->mode == MODE_PGWARDEN) {
		char *h = xasprintf("Authorization: Bearer %s", o->token);
		c->hdrs = curl_slist_append(c->hdrs, h);
		free(h);
	}
	if (c->hdrs == NULL)
		die("curl_slist_append failed");
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
}

static void client_cleanup(struct client *c)
{
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->hdrs);
	free(c->body);
}

static void client_start(struct run *r, CURLM *multi, struct client *c)
{
	c->seq = r->next_seq++;
	client_body(r, c, c->seq);
	c->resp_len = 0;
	c->resp[0] = '\0';
	curl_easy_setopt(c->easy, CURLOPT_URL, r->put_url);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
	c->busy = true;
	c->start_ns = now_ns();
	CURLMcode mc = curl_multi_add_handle(multi, c->easy);
	if (mc != CURLM_OK)
		die("curl_multi_add_handle: %s", curl_multi_strerror(mc));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, long n, double p)
{
	if (n == 0)
		return 0;
	long rank = (long)((p / 100.0) * (double)n + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void note_error(struct run *r, struct client *c, CURLcode rc, long status)
{
	r->errors++;
	if (r->shown_errors++ < 5) {
		if (rc != CURLE_OK)
			fprintf(stderr, "store_load: put %ld: %s\n", c->seq,
				curl_easy_strerror(rc));
		else
			fprintf(stderr, "store_load: put %ld: HTTP %ld %s\n",
				c->seq, status, c->resp);
	}
}

static int run_load(const struct opts *o)
{
	struct run r;
	run_init(&r, o);
	r.put_url = make_put_url(o, o->url, strlen(o->url));

	CURLM *multi = curl_multi_init();
	if (multi == NULL)
		die("curl_multi_init failed");
	/* HTTP/1.1, one request per connection at a time, keep-alive. */
	curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, o->clients + 4);

	long total = o->requests + o->warmup;
	long nclients = o->clients < total ? o->clients : total;
	struct client *cl = calloc((size_t)nclients, sizeof *cl);
	if (cl == NULL)
		die("out of memory");
	for (long i = 0; i < nclients; i++)
		client_setup(&cl[i], o, o->timeout_ms);

	/* Warm-up: same clients, same connections, not recorded. */
	uint64_t t0 = now_ns();
	bool warming = o->warmup > 0;
	long issued = 0;
	long limit = warming ? o->warmup : o->requests;
	for (long i = 0; i < nclients && issued < limit; i++, issued++)
		client_start(&r, multi, &cl[i]);

	long in_flight = issued;
	while (in_flight > 0) {
		int running;
		CURLMcode mc = curl_multi_perform(multi, &running);
		if (mc != CURLM_OK)
			die("curl_multi_perform: %s", curl_multi_strerror(mc));
		CURLMsg *m;
		int left;
		bool any = false;
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			any = true;
			uint64_t end = now_ns();
			char *priv = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
			struct client *c = (struct client *)(void *)priv;
			CURLcode rc = m->data.result;
			long status = 0;
			curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
			curl_multi_remove_handle(multi, c->easy);
			c->busy = false;
			in_flight--;
			if (!warming) {
				r.done++;
				if (rc == CURLE_OK && status == 200) {
					r.ok++;
					r.lat_ms[r.nlat++] =
					    (double)(end - c->start_ns) / 1e6;
				} else {
					note_error(&r, c, rc, status);
				}
			} else if (!(rc == CURLE_OK && status == 200)) {
				note_error(&r, c, rc, status);
			}
			if (issued < limit) {
				issued++;
				in_flight++;
				client_start(&r, multi, c);
			}
		}
		if (warming && in_flight == 0) {
			/* Warm-up over: start the measured run. */
			warming = false;
			r.errors = 0;
			issued = 0;
			limit = o->requests;
			t0 = now_ns();
			for (long i = 0; i < nclients && issued < limit;
			     i++, issued++)
				client_start(&r, multi, &cl[i]);
			in_flight = issued;
			continue;
		}
		if (!any && in_flight > 0) {
			mc = curl_multi_poll(multi, NULL, 0, 100, NULL);
			if (mc != CURLM_OK)
				die("curl_multi_poll: %s", curl_multi_strerror(mc));
		}
	}
	uint64_t t1 = now_ns();
	double elapsed = (double)(t1 - t0) / 1e9;

	qsort(r.lat_ms, (size_t)r.nlat, sizeof *r.lat_ms, cmp_double);
	double p50 = pct(r.lat_ms, r.nlat, 50), p90 = pct(r.lat_ms, r.nlat, 90),
	       p99 = pct(r.lat_ms, r.nlat, 99),
	       mx = r.nlat ? r.lat_ms[r.nlat - 1] : 0;
	double sum = 0;
	for (long i = 0; i < r.nlat; i++)
		sum += r.lat_ms[i];
	double mean = r.nlat ? sum / (double)r.nlat : 0;
	double rps = elapsed > 0 ? (double)r.ok / elapsed : 0;
	const char *mode = o->mode == MODE_ETCD ? "etcd" : "pgwarden";
	if (!o->quiet) {
		printf("store_load: %s %s clients=%ld value_size=%ld\n", mode,
		       r.put_url, nclients, o->value_size);
		printf("  count %ld  ok %ld  errors %ld  elapsed %.3f s  "
		       "throughput %.1f req/s\n",
		       r.done, r.ok, r.errors, elapsed, rps);
		printf("  latency ms: mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  "
		       "max %.3f\n",
		       mean, p50, p90, p99, mx);
	}
	printf("RESULT mode=%s clients=%ld n=%ld ok=%ld errors=%ld rps=%.1f "
	       "mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "elapsed_s=%.3f\n",
	       mode, nclients, r.done, r.ok, r.errors, rps, mean, p50, p90, p99,
	       mx, elapsed);
	fflush(stdout);

	for (long i = 0; i < nclients; i++) {
		if (cl[i].busy)
			curl_multi_remove_handle(multi, cl[i].easy);
		client_cleanup(&cl[i]);
	}
	free(cl);
	curl_multi_cleanup(multi);
	free(r.lat_ms);
	free(r.value_json);
	free(r.value_b64);
	free(r.put_url);
	return r.errors == 0 ? 0 : 1;
}

#define UNTIL_OK_MAX_INFLIGHT 32

static int run_until_ok(const struct opts *o)
{
	struct run r;
	run_init(&r, o);

	/* Split the URL list. */
	char *urls[16];
	int nurls = 0;
	const char *p = o->url;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len > 0) {
			if (nurls == 16)
				die("--url: at most 16 URLs");
			urls[nurls++] = make_put_url(o, p, len);
		}
		p += len + (comma ? 1 : 0);
	}
	if (nurls == 0)
		die("--url: empty list");

	CURLM *multi = curl_multi_init();
	if (multi == NULL)
		die("curl_multi_init failed");
	curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	struct client cl[UNTIL_OK_MAX_INFLIGHT];
	memset(cl, 0, sizeof cl);
	for (int i = 0; i < UNTIL_OK_MAX_INFLIGHT; i++)
		client_setup(&cl[i], o, o->attempt_timeout_ms);
	int url_of[UNTIL_OK_MAX_INFLIGHT] = {0};

	uint64_t t0 = now_ns();
	if (o->kill_pid != 0 && kill((pid_t)o->kill_pid, SIGKILL) != 0)
		die("kill %ld: %s", o->kill_pid, strerror(errno));
	uint64_t deadline = t0 + (uint64_t)o->max_ms * 1000000u;
	const uint64_t pace = 10000000u; /* at most one new attempt per 10 ms */
	uint64_t stagger = (uint64_t)o->stagger_ms * 1000000u;

	long attempts = 0, last_status = 0;
	int ok_url = -1, next_url = 0, in_flight = 0;
	uint64_t last_launch = 0, t_ok = 0;
	CURLcode last_rc = CURLE_OK;
	while (ok_url < 0) {
		uint64_t now = now_ns();
		if (now >= deadline && in_flight == 0)
			break;
		/* Launch: when nothing is in flight (paced), or with
		 * --stagger-ms every that many ms while others still wait. */
		bool due = now < deadline && (attempts == 0 ||
		    (in_flight == 0 && now - last_launch >= pace) ||
		    (stagger > 0 && now - last_launch >= stagger));
		if (due && in_flight < UNTIL_OK_MAX_INFLIGHT) {
			int i = 0;
			while (cl[i].busy)
				i++;
			struct client *c = &cl[i];
			url_of[i] = next_url;
			next_url = (next_url + 1) % nurls;
			c->seq = r.next_seq++;
			client_body(&r, c, c->seq);
			c->resp_len = 0;
			c->resp[0] = '\0';
			curl_easy_setopt(c->easy, CURLOPT_URL, urls[url_of[i]]);
			curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE,
					 (long)strlen(c->body));
			curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
			c->busy = true;
			c->start_ns = now;
			CURLMcode mc = curl_multi_add_handle(multi, c->easy);
			if (mc != CURLM_OK)
				die("curl_multi_add_handle: %s",
				    curl_multi_strerror(mc));
			attempts++;
			in_flight++;
			last_launch = now;
		}
		int running;
		curl_multi_perform(multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
			struct client *c = (struct client *)(void *)priv;
			long status = 0;
			curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
			CURLcode rc = m->data.result;
			curl_multi_remove_handle(multi, c->easy);
			c->busy = false;
			in_flight--;
			if (rc == CURLE_OK && status == 200) {
				if (ok_url < 0) {
					t_ok = now_ns();
					ok_url = url_of[c - cl];
				}
			} else {
				last_rc = rc;
				last_status = status;
			}
		}
		if (ok_url >= 0)
			break;
		/* Sleep until the next launch is due or a transfer moves. */
		now = now_ns();
		uint64_t next = in_flight == 0 ? last_launch + pace
			      : stagger > 0  ? last_launch + stagger
					     : now + 100000000u;
		int wait_ms = next > now ? (int)((next - now) / 1000000u) + 1 : 0;
		if (wait_ms > 100)
			wait_ms = 100;
		if (in_flight > 0)
			curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
		else if (wait_ms > 0) {
			struct timespec ts = {0, (long)wait_ms * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	double ms = (double)((ok_url >= 0 ? t_ok : now_ns()) - t0) / 1e6;
	if (ok_url >= 0) {
		printf("UNTIL_OK ok=1 ms=%.1f attempts=%ld url=%s\n", ms,
		       attempts, urls[ok_url]);
	} else {
		printf("UNTIL_OK ok=0 ms=%.1f attempts=%ld last_error=\"%s\" "
		       "last_status=%ld\n",
		       ms, attempts,
		       last_rc != CURLE_OK ? curl_easy_strerror(last_rc) : "http",
		       last_status);
	}
	fflush(stdout);
	for (int i = 0; i < UNTIL_OK_MAX_INFLIGHT; i++) {
		if (cl[i].busy)
			curl_multi_remove_handle(multi, cl[i].easy);
		client_cleanup(&cl[i]);
	}
	curl_multi_cleanup(multi);
	for (int i = 0; i < nurls; i++)
		free(urls[i]);
	free(r.lat_ms);
	free(r.value_json);
	free(r.value_b64);
	return ok_url >= 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct opts o;
	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init failed");
	int rc = o.until_ok ? run_until_ok(&o) : run_load(&o);
	curl_global_cleanup();
	return rc;
}
