/* wd_fencer.c - the independent fencer process (wd_fencer.h).
 *
 * One thread, one poll() on stdin with the deadline as its timeout; no
 * allocation after the start. Everything it does at the deadline is a
 * handful of system calls on /proc and kill(). */
#include "wd_fencer.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

int wd_fencer_format(char *buf, size_t cap, const struct wd_fencer_msg *m)
{
	int n;
	if (m->arm) {
		if (m->pid <= 0)
			return ERR_INVAL;
		n = snprintf(buf, cap, "arm %ld %" PRIu64 "\n", (long)m->pid,
			     m->deadline_ms);
	} else {
		n = snprintf(buf, cap, "disarm\n");
	}
	if (n < 0 || (size_t)n >= cap)
		return ERR_INVAL;
	return n;
}

static int parse_u64(const char *s, const char **end, uint64_t *out)
{
	if (*s < '0' || *s > '9')
		return ERR_INVAL;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return ERR_INVAL;
		v = v * 10 + d;
	}
	*end = s;
	*out = v;
	return 0;
}

int wd_fencer_parse(const char *line, struct wd_fencer_msg *m)
{
	memset(m, 0, sizeof *m);
	if (strcmp(line, "disarm") == 0)
		return 0;
	if (strncmp(line, "arm ", 4) != 0)
		return ERR_INVAL;
	const char *p = line + 4;
	uint64_t pid, deadline;
	if (parse_u64(p, &p, &pid) != 0 || *p != ' ' || pid == 0 ||
	    pid > INT_MAX)
		return ERR_INVAL;
	if (parse_u64(p + 1, &p, &deadline) != 0 || *p != '\0')
		return ERR_INVAL;
	m->arm = 1;
	m->pid = (pid_t)pid;
	m->deadline_ms = deadline;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The process                                                          */
/* ------------------------------------------------------------------ */

struct fencer {
	const char *node;
	const char *data_dir;
	dev_t dir_dev;
	ino_t dir_ino;
	bool armed;
	pid_t pid;
	unsigned long long start; /* the postmaster's start time, 0: unknown */
	uint64_t deadline_ms;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* /proc/PID/stat: state, parent and start time (field 22) */
static int proc_stat(pid_t pid, char *state, pid_t *ppid,
		     unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return ERR_NOTFOUND;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: skip to the
	 * last ')' */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return ERR_IO;
	p += 2;
	char st;
	long pp;
	unsigned long long t = 0;
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice threads
	 * itrealvalue starttime */
	if (sscanf(p,
		   "%c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
		   "%*d %*d %*d %*d %*d %llu",
		   &st, &pp, &t) != 3)
		return ERR_IO;
	if (state)
		*state = st;
	if (ppid)
		*ppid = (pid_t)pp;
	if (start)
		*start = t;
	return 0;
}

/* the process runs with the data directory as its working directory */
static bool in_data_dir(const struct fencer *f, pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%ld/cwd", (long)pid);
	if (stat(path, &st) != 0)
		return false;
	return st.st_dev == f->dir_dev && st.st_ino == f->dir_ino;
}

static pid_t pidfile_pid(const struct fencer *f)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/postmaster.pid", f->data_dir);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return 0;
	long v = 0;
	if (fscanf(fp, "%ld", &v) != 1 || v <= 0 || v > INT_MAX)
		v = 0;
	fclose(fp);
	return (pid_t)v;
}

struct killset {
	pid_t pid[512];
	int n;
};

/* add pid to k; 1 if it was not in it */
static int remember(struct killset *k, pid_t pid)
{
	for (int i = 0; i < k->n; i++)
		if (k->pid[i] == pid)
			return 0;
	if (k->n < (int)(sizeof k->pid / sizeof k->pid[0]))
		k->pid[k->n++] = pid;
	return 1;
}

/* SIGKILL pid once; 1 if it was not killed before */
static int kill_once(struct killset *k, pid_t pid)
{
	kill(pid, SIGKILL);
	return remember(k, pid);
}

/* SIGKILL the live children of pm: from /proc/PM/task/PM/children (one
 * read; the postmaster has one thread), or by scanning /proc when the
 * kernel has no such file. Returns how many were not killed before. */
static int kill_children(pid_t pm, struct killset *k, bool scan)
{
	int fresh = 0;
	char path[96];
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)pm,
		 (long)pm);
	FILE *fp = scan ? NULL : fopen(path, "re");
	if (fp) {
		long v;
		while (fscanf(fp, "%ld", &v) == 1)
			if (v > 0 && v <= INT_MAX)
				fresh += kill_once(k, (pid_t)v);
		fclose(fp);
		return fresh;
	}
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long v = strtol(e->d_name, &end, 10);
		pid_t pp;
		char st = 0;
		if (*end != '\0' || v <= 0 || v > INT_MAX ||
		    proc_stat((pid_t)v, &st, &pp, NULL) != 0 || pp != pm ||
		    st == 'Z' || st == 'X')
			continue;
		fresh += kill_once(k, (pid_t)v);
	}
	closedir(d);
	return fresh;
}

/* SIGSTOP the postmaster (no more forks, no restart of what dies), SIGKILL
 * its children at once (the backends: no commit is acknowledged after
 * this), then again until none is new, then the postmaster. *stopped_ms:
 * when the first round of SIGKILLs was sent. Every pid signalled is added
 * to *k. Returns the number of children killed. */
static int kill_tree(pid_t pm, struct killset *kset, uint64_t *stopped_ms)
{
	struct killset k = { .n = 0 };
	kill(pm, SIGSTOP);
	kill_children(pm, &k, false);
	*stopped_ms = mono_ms();
	/* the postmaster stops on its way back to user space: wait
	 * (bounded) so that a fork in progress on another CPU has finished,
	 * then look again, the last time by a full scan of /proc */
	for (int i = 0; i < 50; i++) {
		char st = 0;
		if (proc_stat(pm, &st, NULL, NULL) != 0 || st == 'T' ||
		    st == 'Z')
			break;
		struct timespec d = { 0, 1000000 };
		nanosleep(&d, NULL);
	}
	for (int round = 0; round < 20; round++)
		if (kill_children(pm, &k, false) == 0)
			break;
	kill_children(pm, &k, true);
	kill(pm, SIGKILL);
	for (int i = 0; i < k.n; i++)
		(void)remember(kset, k.pid[i]);
	(void)remember(kset, pm);
	return k.n;
}

/* the process's name (/proc/PID/comm) is "postgres" */
static bool named_postgres(pid_t pid)
{
	char path[64], buf[32];
	snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return false;
	bool yes = fgets(buf, sizeof buf, fp) && strcmp(buf, "postgres\n") == 0;
	fclose(fp);
	return yes;
}

/* SIGKILL every live process named postgres that works in the data
 * directory (the children of a postmaster fenced just now are dead or
 * dying already): backends whose postmaster died before the deadline (a
 * SIGKILL to pgwarden's process group takes the postmaster, never its
 * children, which each sit in a session of their own) are nobody's
 * children any more and run until each notices the death by itself.
 * Returns how many were signalled. */
static int kill_orphans(const struct fencer *f, const struct killset *done)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long v = strtol(e->d_name, &end, 10);
		char st = 0;
		if (*end != '\0' || v <= 0 || v > INT_MAX ||
		    proc_stat((pid_t)v, &st, NULL, NULL) != 0 || st == 'Z' ||
		    st == 'X' || !named_postgres((pid_t)v) ||
		    !in_data_dir(f, (pid_t)v))
			continue;
		/* a child SIGKILLed a moment ago may not have exited yet */
		bool seen = false;
		for (int i = 0; i < done->n && !seen; i++)
			seen = done->pid[i] == (pid_t)v;
		if (!seen && kill((pid_t)v, SIGKILL) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void fence(struct fencer *f, uint64_t now)
{
	static struct killset killed; /* static: no allocation, no big stack */
	killed.n = 0;
	pid_t done[2] = { 0, 0 };
	int n = 0;
	/* the postmaster the agent named, if it is still the same process */
	if (f->pid > 0) {
		unsigned long long start = 0;
		char st = 0;
		if (proc_stat(f->pid, &st, NULL, &start) == 0 && st != 'Z' &&
		    (!f->start || start == f->start) &&
		    in_data_dir(f, f->pid)) {
			uint64_t stopped;
			int c = kill_tree(f->pid, &killed, &stopped);
			log_warn("fencer[%s] fired mono=%" PRIu64
				 " late_ms=%" PRIu64 ": killed postmaster %ld "
				 "and %d children (the primary lease was not "
				 "renewed in time)",
				 f->node, stopped, stopped - f->deadline_ms,
				 (long)f->pid, c);
			done[n++] = f->pid;
		}
	}
	/* and whatever postmaster runs in the data directory now */
	pid_t p = pidfile_pid(f);
	if (p > 0 && p != done[0] && in_data_dir(f, p)) {
		uint64_t stopped;
		int c = kill_tree(p, &killed, &stopped);
		log_warn("fencer[%s] fired mono=%" PRIu64 ": killed postmaster "
			 "%ld of postmaster.pid and %d children",
			 f->node, stopped, (long)p, c);
		done[n++] = p;
	}
	/* and what is left of a postmaster that died earlier */
	int orphans = kill_orphans(f, &killed);
	if (orphans > 0)
		log_warn("fencer[%s] fired mono=%" PRIu64 ": killed %d postgres "
			 "processes left in the data directory without their "
			 "postmaster",
			 f->node, mono_ms(), orphans);
	else if (n == 0)
		log_info("fencer[%s] deadline passed mono=%" PRIu64
			 ": no postmaster left to fence",
			 f->node, now);
}

static void apply(struct fencer *f, const struct wd_fencer_msg *m)
{
	if (!m->arm) {
		if (f->armed)
			log_debug("fencer[%s] disarmed", f->node);
		f->armed = false;
		return;
	}
	if (!f->armed || m->pid != f->pid) {
		unsigned long long start = 0;
		if (proc_stat(m->pid, NULL, NULL, &start) != 0)
			start = 0;
		f->start = start;
		log_info("fencer[%s] armed for postmaster %ld, %" PRId64
			 " ms left",
			 f->node, (long)m->pid,
			 (int64_t)m->deadline_ms - (int64_t)mono_ms());
	}
	f->armed = true;
	f->pid = m->pid;
	f->deadline_ms = m->deadline_ms;
}

int wd_fencer_main(int argc, char **argv)
{
	struct fencer f = { 0 };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			f.data_dir = argv[++i];
		else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
			f.node = argv[++i];
		else {
			fprintf(stderr, "pgwarden fencer: unexpected argument "
					"'%s'\n",
				argv[i]);
			return 2;
		}
	}
	if (!f.data_dir || !f.node) {
		fprintf(stderr, "pgwarden fencer: --data-dir DIR and --node "
				"NAME are required (pgwarden run starts it)\n");
		return 2;
	}
	struct stat st;
	if (stat(f.data_dir, &st) != 0) {
		fprintf(stderr, "pgwarden fencer: %s: %s\n", f.data_dir,
			strerror(errno));
		return 2;
	}
	f.dir_dev = st.st_dev;
	f.dir_ino = st.st_ino;
	prctl(PR_SET_NAME, "pgw-fencer", 0, 0, 0);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	/* job control: the agent starts it in a session of its own
	 * (ha_fencer.c), and these are ignored as well so that a fencer
	 * started some other way cannot be stopped by a terminal */
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	if (getsid(0) != getpid() && setsid() < 0 && errno != EPERM)
		log_warn("fencer[%s] setsid: %s", f.node, strerror(errno));

	/* a stderr that blocks (journald stalled, a terminal on hold) must
	 * not hold the fencer back from its deadline: lines go through the
	 * sink's writer thread (base/log.h) */
	(void)log_sink_start();

	char buf[4 * WD_FENCER_LINE_MAX];
	size_t len = 0;
	bool eof = false;
	for (;;) {
		if (eof && !f.armed)
			break;
		int timeout = -1;
		if (f.armed) {
			uint64_t now = mono_ms();
			uint64_t left = f.deadline_ms > now ? f.deadline_ms - now
							    : 0;
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		struct pollfd p = { .fd = eof ? -1 : 0, .events = POLLIN };
		int rv = poll(&p, 1, timeout);
		if (rv < 0 && errno != EINTR) {
			log_error("fencer[%s] poll: %s", f.node,
				  strerror(errno));
			struct timespec d = { 0, 10000000 };
			nanosleep(&d, NULL);
		}
		/* read what the agent sent before looking at the deadline:
		 * a renewal that arrived in time moves it */
		if (rv > 0 && p.revents) {
			ssize_t r = read(0, buf + len, sizeof buf - len);
			if (r == 0 || (r < 0 && errno != EINTR &&
				       errno != EAGAIN)) {
				eof = true;
				if (f.armed)
					log_warn("fencer[%s] the agent is gone; "
						 "postmaster %ld is fenced in "
						 "%" PRId64 " ms unless it "
						 "exits",
						 f.node, (long)f.pid,
						 (int64_t)f.deadline_ms -
							 (int64_t)mono_ms());
			} else if (r > 0) {
				len += (size_t)r;
				char *nl;
				while ((nl = memchr(buf, '\n', len)) != NULL) {
					*nl = '\0';
					struct wd_fencer_msg m;
					if (wd_fencer_parse(buf, &m) == 0)
						apply(&f, &m);
					else
						log_error("fencer[%s] bad line "
							  "from the agent: "
							  "'%.40s'",
							  f.node, buf);
					size_t used = (size_t)(nl - buf) + 1;
					memmove(buf, nl + 1, len - used);
					len -= used;
				}
				if (len == sizeof buf) {
					log_error("fencer[%s] line too long "
						  "from the agent",
						  f.node);
					len = 0;
				}
			}
		}
		uint64_t now = mono_ms();
		if (f.armed && now >= f.deadline_ms) {
			fence(&f, now);
			f.armed = false;
		}
	}
	log_sink_stop();
	return 0;
}
