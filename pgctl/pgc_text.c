/* pgc_text.c - pure text helpers (LSNs, conninfo and conf quoting,
 * postmaster.pid and pg_controldata parsing) and the small file writes
 * pgctl makes in a data directory.
 *
 * Files are written to NAME.tmp and renamed over NAME, one small file per
 * call. Without a loop (offline tools, tests) NAME.tmp is fdatasync'ed
 * before the rename, in the calling thread. With a loop the rename comes
 * at once (what PostgreSQL reads from the return on is the new content)
 * and the disk flush, fdatasync of the file and fsync of its directory,
 * runs on libuv's thread pool (pgc_file_sync_async): the loop never waits
 * on the disk.
 *
 * pgc_file_sync_async, happy path: queue (the request owns the fd and a
 * copy of the path) -> worker: fdatasync(fd), fsync(dir) -> loop: close
 * fd, free. Failure paths: no memory or the queue refused -> the flush is
 * done at once in the caller (logged; rare) and the fd closed; a failed
 * fdatasync/fsync -> logged as an error on the loop (the content is in
 * place, only its durability across a machine crash is in doubt). The
 * request holds nothing of its caller, so the caller may go away before
 * it completes; a pending request keeps the loop alive until done, so the
 * daemon's final drain waits for it.
 */
#include "pgc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mem.h"

static void set_msg(char *errmsg, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_msg(char *errmsg, size_t cap, const char *fmt, ...)
{
	if (!errmsg || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, cap, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* LSN                                                                  */
/* ------------------------------------------------------------------ */

static int parse_hex32(const char *s, size_t n, uint32_t *out)
{
	if (n == 0 || n > 8)
		return ERR_INVAL;
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return ERR_INVAL;
		v = (v << 4) | d;
	}
	*out = v;
	return 0;
}

int pgc_lsn_parse(const char *s, uint64_t *out)
{
	if (!s)
		return ERR_INVAL;
	const char *slash = strchr(s, '/');
	if (!slash)
		return ERR_INVAL;
	uint32_t hi, lo;
	if (parse_hex32(s, (size_t)(slash - s), &hi) < 0 ||
	    parse_hex32(slash + 1, strlen(slash + 1), &lo) < 0)
		return ERR_INVAL;
	*out = ((uint64_t)hi << 32) | lo;
	return 0;
}

char *pgc_lsn_format(uint64_t lsn, char buf[PGC_LSN_STRLEN])
{
	snprintf(buf, PGC_LSN_STRLEN, "%" PRIX32 "/%" PRIX32,
		 (uint32_t)(lsn >> 32), (uint32_t)lsn);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Quoting                                                              */
/* ------------------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t cap, len;
	bool over;
};

static void sb_putc(struct sbuf *b, char c)
{
	if (b->len + 1 < b->cap)
		b->p[b->len] = c;
	else
		b->over = true;
	b->len++;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	while (*s)
		sb_putc(b, *s++);
}

static int sb_end(struct sbuf *b)
{
	if (b->cap == 0)
		return ERR_TOOBIG;
	if (b->over) {
		b->p[0] = '\0';
		return ERR_TOOBIG;
	}
	b->p[b->len] = '\0';
	return 0;
}

static bool is_ident(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '.'))
			return false;
	return true;
}

int pgc_conninfo_build(char *buf, size_t cap, const char *const *keywords,
		       const char *const *values)
{
	struct sbuf b = {.p = buf, .cap = cap};
	bool first = true;
	for (size_t i = 0; keywords && keywords[i]; i++) {
		const char *v = values[i];
		if (!v || !*v)
			continue;
		if (!is_ident(keywords[i]))
			return ERR_INVAL;
		if (!first)
			sb_putc(&b, ' ');
		first = false;
		sb_puts(&b, keywords[i]);
		sb_putc(&b, '=');
		/* libpq: a value with a space, quote or backslash (or empty)
		 * is written in single quotes, ' and \ escaped by \. */
		bool plain = true;
		for (const char *q = v; *q; q++)
			if (isspace((unsigned char)*q) || *q == '\'' ||
			    *q == '\\')
				plain = false;
		if (plain) {
			sb_puts(&b, v);
			continue;
		}
		sb_putc(&b, '\'');
		for (const char *q = v; *q; q++) {
			if (*q == '\'' || *q == '\\')
				sb_putc(&b, '\\');
			sb_putc(&b, *q);
		}
		sb_putc(&b, '\'');
	}
	return sb_end(&b);
}

int pgc_conf_quote(char *buf, size_t cap, const char *val)
{
	struct sbuf b = {.p = buf, .cap = cap};
	sb_putc(&b, '\'');
	for (const char *q = val ? val : ""; *q; q++) {
		/* The GUC file lexer turns '' into ' and processes backslash
		 * escapes inside strings, so both are doubled. */
		if (*q == '\'')
			sb_putc(&b, '\'');
		else if (*q == '\\')
			sb_putc(&b, '\\');
		if (*q == '\n') {
			sb_puts(&b, "\\n");
			continue;
		}
		sb_putc(&b, *q);
	}
	sb_putc(&b, '\'');
	return sb_end(&b);
}

/* ------------------------------------------------------------------ */
/* postmaster.pid                                                       */
/* ------------------------------------------------------------------ */

/* Copy line number `no` (1-based) of text into dst, without the newline;
 * false if there is no such line. */
static bool get_line(const char *text, int no, char *dst, size_t cap)
{
	const char *p = text;
	for (int i = 1; i < no; i++) {
		p = strchr(p, '\n');
		if (!p)
			return false;
		p++;
	}
	if (*p == '\0')
		return false;
	size_t n = strcspn(p, "\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	while (*s == ' ')
		s++;
	if (!*s)
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s)
		return false;
	while (*end == ' ' || *end == '\r')
		end++;
	if (*end)
		return false;
	*out = v;
	return true;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	size_t i = 0;
	while (s[i] && isspace((unsigned char)s[i]))
		i++;
	if (i)
		memmove(s, s + i, n - i + 1);
}

static void copy_trunc(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int pgc_pidfile_parse(const char *text, struct pgc_pidfile *out)
{
	memset(out, 0, sizeof *out);
	char line[1024];
	int64_t v;
	if (!get_line(text, 1, line, sizeof line) || !parse_i64(line, &v) ||
	    v == 0 || v > INT32_MAX || v < -INT32_MAX)
		return ERR_CORRUPT;
	out->pid = (pid_t)v;
	if (!get_line(text, 2, out->data_dir, sizeof out->data_dir) ||
	    !out->data_dir[0])
		return ERR_CORRUPT;
	if (!get_line(text, 3, line, sizeof line) || !parse_i64(line, &v))
		return ERR_CORRUPT;
	out->start_time = v;
	if (!get_line(text, 4, line, sizeof line) || !parse_i64(line, &v) ||
	    v < 0 || v > 65535)
		return ERR_CORRUPT;
	out->port = (unsigned)v;
	if (get_line(text, 5, line, sizeof line)) {
		trim(line);
		copy_trunc(out->sock_dir, sizeof out->sock_dir, line);
	}
	if (get_line(text, 6, line, sizeof line)) {
		trim(line);
		copy_trunc(out->listen, sizeof out->listen, line);
	}
	if (get_line(text, 8, line, sizeof line)) {
		trim(line);
		copy_trunc(out->status, sizeof out->status, line);
	}
	return 0;
}

static int read_small_file(const char *path, char *buf, size_t cap,
			   char *errmsg, size_t ecap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		set_msg(errmsg, ecap, "open %s: %s", path, strerror(e));
		return e == ENOENT ? ERR_NOTFOUND : ERR_IO;
	}
	size_t len = 0;
	for (;;) {
		if (len + 1 >= cap) {
			close(fd);
			set_msg(errmsg, ecap, "%s: larger than %zu bytes", path,
				cap - 1);
			return ERR_TOOBIG;
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			set_msg(errmsg, ecap, "read %s: %s", path,
				strerror(e));
			return ERR_IO;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return 0;
}

int pgc_pidfile_read(const char *data_dir, struct pgc_pidfile *out,
		     char *errmsg, size_t cap)
{
	char path[1100], text[4096];
	snprintf(path, sizeof path, "%s/postmaster.pid", data_dir);
	int rc = read_small_file(path, text, sizeof text, errmsg, cap);
	if (rc < 0)
		return rc;
	rc = pgc_pidfile_parse(text, out);
	if (rc < 0)
		set_msg(errmsg, cap, "%s: malformed", path);
	return rc;
}

/* ------------------------------------------------------------------ */
/* pg_controldata                                                       */
/* ------------------------------------------------------------------ */

/* Value after "key:" on its line, trimmed, into dst; false if absent. */
static bool cd_field(const char *text, const char *key, char *dst,
		     size_t cap)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			const char *v = p + klen + 1;
			size_t n = strcspn(v, "\n");
			if (n >= cap)
				n = cap - 1;
			memcpy(dst, v, n);
			dst[n] = '\0';
			trim(dst);
			return true;
		}
	}
	return false;
}

int pgc_controldata_parse(const char *text, struct pgc_controldata *out)
{
	memset(out, 0, sizeof *out);
	char v[128];
	char *end;
	if (!cd_field(text, "Database system identifier", v, sizeof v))
		return ERR_CORRUPT;
	errno = 0;
	unsigned long long id = strtoull(v, &end, 10);
	if (errno || end == v || *end)
		return ERR_CORRUPT;
	out->system_id = id;
	if (!cd_field(text, "Database cluster state", out->state,
		      sizeof out->state) ||
	    !out->state[0])
		return ERR_CORRUPT;
	if (!cd_field(text, "Latest checkpoint's TimeLineID", v, sizeof v))
		return ERR_CORRUPT;
	unsigned long tli = strtoul(v, &end, 10);
	if (end == v || *end || tli == 0 || tli > UINT32_MAX)
		return ERR_CORRUPT;
	out->timeline = (uint32_t)tli;
	if (cd_field(text, "Latest checkpoint location", v, sizeof v))
		(void)pgc_lsn_parse(v, &out->checkpoint_lsn);
	if (cd_field(text, "Minimum recovery ending location", v, sizeof v))
		(void)pgc_lsn_parse(v, &out->min_recovery_lsn);
	if (cd_field(text, "Min recovery ending loc's timeline", v,
		     sizeof v)) {
		tli = strtoul(v, &end, 10);
		if (end != v && !*end && tli <= UINT32_MAX)
			out->min_recovery_tli = (uint32_t)tli;
	}
	if (cd_field(text, "Data page checksum version", v, sizeof v))
		out->data_checksums = strcmp(v, "0") != 0;
	if (cd_field(text, "wal_log_hints setting", v, sizeof v))
		out->wal_log_hints = strcmp(v, "on") == 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Files in the data directory                                          */
/* ------------------------------------------------------------------ */

struct sync_req {
	uv_work_t work;
	int fd;          /* owned */
	int err_file;    /* errno of fdatasync, 0 if it worked */
	int err_dir;     /* errno of the directory's open or fsync */
	char path[4200]; /* the file's (final) name */
};

/* fdatasync(fd), then fsync of path's directory (the rename); errnos */
static void flush_now(int fd, const char *path, int *err_file, int *err_dir)
{
	*err_file = fdatasync(fd) < 0 ? errno : 0;
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		*err_dir = errno;
		return;
	}
	*err_dir = fsync(dfd) < 0 ? errno : 0;
	close(dfd);
}

static void sync_work(uv_work_t *w)
{
	struct sync_req *r = w->data;
	flush_now(r->fd, r->path, &r->err_file, &r->err_dir);
}

static void sync_report(const char *path, int err_file, int err_dir)
{
	if (err_file)
		log_error("pgc[file] fdatasync %s: %s (the content is in place; "
			  "a machine crash may lose it)",
			  path, strerror(err_file));
	if (err_dir)
		log_error("pgc[file] fsync of the directory of %s: %s", path,
			  strerror(err_dir));
}

static void sync_done(uv_work_t *w, int status)
{
	struct sync_req *r = w->data;
	(void)status; /* UV_ECANCELED: never cancelled */
	sync_report(r->path, r->err_file, r->err_dir);
	close(r->fd);
	mem_free(r);
}

int pgc_file_sync_async(uv_loop_t *loop, int fd, const char *path)
{
	struct sync_req *r = loop ? mem_calloc(1, sizeof *r) : NULL;
	int rc = r || !loop ? 0 : ERR_NOMEM;
	if (r) {
		r->fd = fd;
		r->work.data = r;
		snprintf(r->path, sizeof r->path, "%s", path);
		int uvrc = uv_queue_work(loop, &r->work, sync_work, sync_done);
		if (uvrc == 0)
			return 0;
		mem_free(r);
		rc = ERR_IO;
	}
	/* no request: flush here (the caller waits for the disk this once) */
	if (loop)
		log_warn("pgc[file] %s: cannot queue the flush (%s); flushing "
			 "on the calling thread",
			 path, err_str(rc));
	int ef, ed;
	flush_now(fd, path, &ef, &ed);
	sync_report(path, ef, ed);
	close(fd);
	return rc;
}

/* Write content to DIR/NAME atomically: NAME.tmp, then the rename. With
 * loop NULL: fdatasync before the rename, here; else the rename at once
 * and the flush on the thread pool (pgc_file_sync_async). */
static int write_file_atomic(uv_loop_t *loop, const char *dir,
			     const char *name, const char *content, size_t len,
			     char *errmsg, size_t cap)
{
	char path[1100], tmp[1110];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_msg(errmsg, cap, "open %s: %s", tmp, strerror(errno));
		return ERR_IO;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, content + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			set_msg(errmsg, cap, "write %s: %s", tmp,
				strerror(errno));
			close(fd);
			unlink(tmp);
			return ERR_IO;
		}
		off += (size_t)w;
	}
	if (!loop && fdatasync(fd) < 0) {
		set_msg(errmsg, cap, "fdatasync %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return ERR_IO;
	}
	if (rename(tmp, path) < 0) {
		set_msg(errmsg, cap, "rename %s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		return ERR_IO;
	}
	if (loop)
		(void)pgc_file_sync_async(loop, fd, path); /* takes fd */
	else
		close(fd);
	return 0;
}

/* A growable string on mem_*. */
struct dstr {
	char *p;
	size_t len, cap;
	bool failed;
};

static void ds_add(struct dstr *d, const char *s)
{
	size_t n = strlen(s);
	if (d->failed)
		return;
	if (d->len + n + 1 > d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 1024;
		while (nc < d->len + n + 1)
			nc *= 2;
		char *np = mem_realloc(d->p, nc);
		if (!np) {
			d->failed = true;
			return;
		}
		d->p = np;
		d->cap = nc;
	}
	memcpy(d->p + d->len, s, n + 1);
	d->len += n;
}

/* Append "name = 'value'\n" to d; ERR_INVAL for a bad name. */
static int ds_setting(struct dstr *d, const char *name, size_t name_len,
		      const char *value)
{
	char nm[128];
	if (name_len == 0 || name_len >= sizeof nm)
		return ERR_INVAL;
	memcpy(nm, name, name_len);
	nm[name_len] = '\0';
	trim(nm);
	if (!is_ident(nm))
		return ERR_INVAL;
	/* "name = value" from an ini: the spaces around value are not
	 * part of it. */
	while (isspace((unsigned char)*value))
		value++;
	size_t vlen = strlen(value);
	while (vlen && isspace((unsigned char)value[vlen - 1]))
		vlen--;
	char *v = mem_strndup(value, vlen);
	size_t qcap = 2 * vlen + 8;
	char *q = v ? mem_malloc(qcap) : NULL;
	if (!q) {
		mem_free(v);
		d->failed = true;
		return ERR_NOMEM;
	}
	(void)pgc_conf_quote(q, qcap, v);
	mem_free(v);
	ds_add(d, nm);
	ds_add(d, " = ");
	ds_add(d, q);
	ds_add(d, "\n");
	mem_free(q);
	return 0;
}

int pgc_conf_ensure_include(const char *data_dir, char *errmsg, size_t cap)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/postgresql.conf", data_dir);
	FILE *f = fopen(path, "re");
	if (!f) {
		set_msg(errmsg, cap, "open %s: %s", path, strerror(errno));
		return ERR_IO;
	}
	char line[4096];
	bool found = false, last_nl = true;
	while (fgets(line, sizeof line, f)) {
		size_t n = strlen(line);
		last_nl = n && line[n - 1] == '\n';
		trim(line);
		if (strcmp(line, PGC_CONF_INCLUDE) == 0)
			found = true;
	}
	fclose(f);
	if (found)
		return 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		set_msg(errmsg, cap, "open %s: %s", path, strerror(errno));
		return ERR_IO;
	}
	char add[128];
	int n = snprintf(add, sizeof add, "%s# added by pgwarden\n%s\n",
			 last_nl ? "" : "\n", PGC_CONF_INCLUDE);
	ssize_t w = write(fd, add, (size_t)n);
	int e = errno;
	close(fd);
	if (w != n) {
		set_msg(errmsg, cap, "write %s: %s", path,
			w < 0 ? strerror(e) : "short write");
		return ERR_IO;
	}
	return 0;
}

int pgc_standby_signal_set(const char *data_dir, bool present, char *errmsg,
			   size_t cap)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/standby.signal", data_dir);
	if (!present) {
		if (unlink(path) < 0 && errno != ENOENT) {
			set_msg(errmsg, cap, "unlink %s: %s", path,
				strerror(errno));
			return ERR_IO;
		}
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_msg(errmsg, cap, "open %s: %s", path, strerror(errno));
		return ERR_IO;
	}
	close(fd);
	return 0;
}

int pgc_conf_write(const char *data_dir, const struct pgc_conf *c,
		   char *errmsg, size_t cap)
{
	return pgc_conf_write_on(NULL, data_dir, c, errmsg, cap);
}

int pgc_conf_write_on(uv_loop_t *loop, const char *data_dir,
		      const struct pgc_conf *c, char *errmsg, size_t cap)
{
	struct dstr d = {0};
	int rc = 0;
	ds_add(&d, "# pgwarden.conf - written by pgwarden at every start; "
		   "do not edit.\n# Per-node settings are on the postgres "
		   "command line.\n");
	for (size_t i = 0; c->parameters && c->parameters[i]; i++) {
		const char *p = c->parameters[i];
		const char *eq = strchr(p, '=');
		if (!eq) {
			set_msg(errmsg, cap, "parameter '%s': not name=value",
				p);
			rc = ERR_INVAL;
			goto out;
		}
		rc = ds_setting(&d, p, (size_t)(eq - p), eq + 1);
		if (rc == ERR_INVAL) {
			set_msg(errmsg, cap, "parameter '%s': bad name", p);
			goto out;
		}
	}
	/* read only in recovery, and changeable only by a restart: written
	 * on every node, so that the reload after a promotion (the file then
	 * written as a primary's) never changes it and PostgreSQL never logs
	 * "configuration file ... contains errors" */
	(void)ds_setting(&d, "recovery_target_timeline", 24, "latest");
	if (c->replica) {
		ds_add(&d, "# replica\n");
		const char *ci = c->primary_conninfo ? c->primary_conninfo : "";
		(void)ds_setting(&d, "primary_conninfo", 16, ci);
		if (c->primary_slot_name && *c->primary_slot_name)
			(void)ds_setting(&d, "primary_slot_name", 17,
					 c->primary_slot_name);
	}
	if (d.failed) {
		set_msg(errmsg, cap, "pgwarden.conf: out of memory");
		rc = ERR_NOMEM;
		goto out;
	}
	rc = write_file_atomic(loop, data_dir, PGC_CONF_FILE, d.p, d.len,
			       errmsg, cap);
	if (rc == 0)
		rc = pgc_conf_ensure_include(data_dir, errmsg, cap);
	if (rc == 0)
		rc = pgc_standby_signal_set(data_dir, c->replica, errmsg, cap);
out:
	mem_free(d.p);
	return rc;
}

int pgc_hba_write(const char *data_dir, const char *const *lines,
		  char *errmsg, size_t cap)
{
	return pgc_hba_write_on(NULL, data_dir, lines, errmsg, cap);
}

int pgc_hba_write_on(uv_loop_t *loop, const char *data_dir,
		     const char *const *lines, char *errmsg, size_t cap)
{
	struct dstr d = {0};
	ds_add(&d, "# pg_hba.conf - written by pgwarden.\n");
	for (size_t i = 0; lines && lines[i]; i++) {
		if (strchr(lines[i], '\n')) {
			set_msg(errmsg, cap, "pg_hba line %zu has a newline",
				i + 1);
			mem_free(d.p);
			return ERR_INVAL;
		}
		ds_add(&d, lines[i]);
		ds_add(&d, "\n");
	}
	if (d.failed) {
		mem_free(d.p);
		set_msg(errmsg, cap, "pg_hba.conf: out of memory");
		return ERR_NOMEM;
	}
	int rc = write_file_atomic(loop, data_dir, "pg_hba.conf", d.p, d.len,
				   errmsg, cap);
	mem_free(d.p);
	return rc;
}
