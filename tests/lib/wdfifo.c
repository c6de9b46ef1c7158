/* wdfifo.c - the watchdog stand-in for tests (docs/architecture.md, "Testing
 * without a watchdog device"): this kernel has no softdog and no /dev/watchdog, so tests
 * point [watchdog] device at a FIFO read by this program, which behaves
 * like the kernel's watchdog towards the writer and SIGKILLs the "machine"
 * (a process group, or one pid such as the init of an `unshare --pid
 * --fork` namespace) instead of resetting it.
 *
 *   wdfifo --fifo PATH --timeout-ms N (--kill-pgid PGID | --kill-pid PID)
 *          [--log FILE] [--persist]
 *
 * Behaviour:
 *   - creates the FIFO if PATH does not exist: under a temporary name,
 *     opened for reading, then renamed to PATH, so that once PATH exists a
 *     writer's open(O_WRONLY|O_NONBLOCK) finds a reader (no ENXIO race). A
 *     FIFO that already exists is opened as it is. Anything else at PATH
 *     is an error. Then logs "ready".
 *   - the first byte arms the timer; every byte (any value, 'V' included,
 *     as on a real device) is a keepalive that moves the deadline to
 *     now + N ms.
 *   - EOF (the last writer closed) right after a 'V' is the magic close:
 *     disarmed, exit 0 without killing (with --persist: unarmed, wait for
 *     the next writer instead, so that a node can arm again later).
 *   - EOF without a 'V' before it (the writer crashed or closed without
 *     the magic byte): as on a real device the deadline keeps running; the
 *     FIFO is reopened (the new reader is opened before the old one is
 *     closed, so a new writer never sees ENXIO) to wait for a new writer.
 *   - armed and N ms without a byte: log "watchdog fired" with wall-clock
 *     and CLOCK_MONOTONIC timestamps, SIGKILL the target, exit 3.
 *   - bounded: exits 4 once the target is gone (kill(…, 0) fails with
 *     ESRCH, or every process of the target is a zombie per /proc/PID/stat,
 *     since a zombie still answers kill -0), and 0 on SIGTERM or SIGINT.
 *   - exit 2 on a usage or setup error.
 * Waiting is ppoll() with the time left to the deadline (capped at 100 ms
 * so that the target check runs), with SIGTERM/SIGINT only unblocked
 * inside ppoll.
 * Log lines go to stderr and, when --log is given, are appended to FILE:
 *   "2024-05-01T12:00:00.123Z mono=123456 wdfifo[PATH] watchdog fired ..."
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define EXIT_DISARMED 0
#define EXIT_USAGE 2
#define EXIT_FIRED 3
#define EXIT_TARGET_GONE 4
#define CHECK_EVERY_MS 100

struct opts {
	const char *fifo;
	const char *log;
	long timeout_ms;
	pid_t pgid; /* > 0 with --kill-pgid */
	pid_t pid;  /* > 0 with --kill-pid */
	bool persist;
};

static volatile sig_atomic_t got_signal;
static int log_fd = -1;
static const char *fifo_path = "?";

static void on_signal(int sig)
{
	got_signal = sig;
}

/* Microseconds, so that "fired no earlier than the timeout after the last
 * byte" holds exactly and not only to the millisecond. */
static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

__attribute__((format(printf, 1, 2))) static void logf_(const char *fmt,
							 ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line,
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ mono=%lld "
			 "wdfifo[%s] ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000L, (long long)(mono_us() / 1000),
			 fifo_path);
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	/* write(2), not stdio: the line must be out before a SIGKILL that
	 * may hit this process too */
	if (write(STDERR_FILENO, line, len) < 0) {
		/* nothing better to do */
	}
	if (log_fd >= 0 && write(log_fd, line, len) < 0) {
		/* idem */
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: wdfifo --fifo PATH --timeout-ms N "
		"(--kill-pgid PGID | --kill-pid PID) [--log FILE] "
		"[--persist]\n");
	exit(EXIT_USAGE);
}

static long parse_long(const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "wdfifo: bad number '%s'\n", s);
		usage();
	}
	return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->timeout_ms = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--persist") == 0) {
			o->persist = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--fifo") == 0)
			o->fifo = v;
		else if (strcmp(a, "--log") == 0)
			o->log = v;
		else if (strcmp(a, "--timeout-ms") == 0)
			o->timeout_ms = parse_long(v, 1, 3600 * 1000L);
		else if (strcmp(a, "--kill-pgid") == 0)
			o->pgid = (pid_t)parse_long(v, 2, INT_MAX);
		else if (strcmp(a, "--kill-pid") == 0)
			o->pid = (pid_t)parse_long(v, 2, INT_MAX);
		else
			usage();
	}
	if (!o->fifo || o->timeout_ms < 0 || (o->pgid > 0) == (o->pid > 0))
		usage();
}

/* The state letter of /proc/PID/stat ('R', 'S', 'Z', ...) and its process
 * group; 0 when it cannot be read (the process is gone). */
static char proc_state(pid_t pid, pid_t *pgrp)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ppid pgrp ...": comm may hold ')' and spaces */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return 0;
	char st = p[2];
	if (pgrp) {
		int ppid = 0, pg = 0;
		if (sscanf(p + 3, " %d %d", &ppid, &pg) == 2)
			*pgrp = (pid_t)pg;
		else
			*pgrp = 0;
	}
	return st;
}

static bool live_state(char st)
{
	return st != 0 && st != 'Z' && st != 'X' && st != 'x';
}

/* Is any process of the target still alive (not a zombie)? */
static bool target_alive(const struct opts *o)
{
	if (o->pid > 0) {
		if (kill(o->pid, 0) != 0 && errno == ESRCH)
			return false;
		return live_state(proc_state(o->pid, NULL));
	}
	if (kill(-o->pgid, 0) != 0 && errno == ESRCH)
		return false;
	/* some member exists: is one of them more than a zombie? */
	DIR *d = opendir("/proc");
	if (!d)
		return true;
	bool alive = false;
	struct dirent *e;
	while (!alive && (e = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		long pid = strtol(e->d_name, NULL, 10);
		pid_t pg = 0;
		char st = proc_state((pid_t)pid, &pg);
		if (pg == o->pgid && live_state(st))
			alive = true;
	}
	closedir(d);
	return alive;
}

/* Open the reader: creating the FIFO under a temporary name and renaming
 * it into place, so that PATH exists only with a reader on it. */
static int open_reader(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) == 0) {
		if (!S_ISFIFO(sb.st_mode)) {
			logf_("setup: %s exists and is not a FIFO", path);
			return -1;
		}
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			logf_("setup: open: %s", strerror(errno));
		return fd;
	}
	if (errno != ENOENT) {
		logf_("setup: stat: %s", strerror(errno));
		return -1;
	}
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof tmp, "%s.wdfifo.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp) {
		logf_("setup: path too long");
		return -1;
	}
	if (mkfifo(tmp, 0600) != 0) {
		logf_("setup: mkfifo %s: %s", tmp, strerror(errno));
		return -1;
	}
	int fd = open(tmp, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		logf_("setup: open %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		logf_("setup: rename %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	return fd;
}

/* After EOF: a fresh reader on the same FIFO (through /proc/self/fd, so it
 * works even if PATH was removed), opened before the old one is closed so
 * that the FIFO never lacks a reader. A new open file description does not
 * report the old writer's hang-up. */
static int reopen_reader(int fd)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	int nfd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (nfd < 0) {
		logf_("reopen: %s", strerror(errno));
		return -1;
	}
	close(fd);
	return nfd;
}

/* A machine reset stops everything at once. PostgreSQL's backends leave
 * the process group (they call setsid), so killing the group alone let a
 * backend acknowledge a commit after "fired". Kill the group and every
 * descendant of its leader (found through /proc), then log. */
static bool in_set(const pid_t *set, size_t n, pid_t p)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == p)
			return true;
	return false;
}

static size_t kill_tree(pid_t pgid)
{
	static pid_t set[8192];
	size_t n = 0;
	set[n++] = pgid;
	kill(-pgid, SIGSTOP); /* freeze the group while we look */
	for (int pass = 0; pass < 4; pass++) {
		DIR *d = opendir("/proc");
		if (!d)
			break;
		struct dirent *e;
		while ((e = readdir(d)) && n < sizeof set / sizeof set[0]) {
			char *end;
			long pid = strtol(e->d_name, &end, 10);
			if (*end || pid <= 0)
				continue;
			char path[64], buf[512];
			snprintf(path, sizeof path, "/proc/%ld/stat", pid);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			ssize_t r = read(fd, buf, sizeof buf - 1);
			close(fd);
			if (r <= 0)
				continue;
			buf[r] = '\0';
			char *rp = strrchr(buf, ')');
			long ppid = 0, pgrp = 0;
			char st;
			if (!rp || sscanf(rp + 1, " %c %ld %ld", &st, &ppid,
					  &pgrp) != 3)
				continue;
			if ((pgrp == pgid || in_set(set, n, (pid_t)ppid)) &&
			    !in_set(set, n, (pid_t)pid)) {
				set[n++] = (pid_t)pid;
				kill((pid_t)pid, SIGSTOP);
			}
		}
		closedir(d);
	}
	kill(-pgid, SIGKILL);
	for (size_t i = 0; i < n; i++)
		kill(set[i], SIGKILL);
	return n;
}

static void fire(const struct opts *o, int64_t since_ms)
{
	if (o->pgid > 0) {
		size_t n = kill_tree(o->pgid);
		logf_("watchdog fired: no keepalive for %lldms (timeout "
		      "%ldms): SIGKILL pgid %d and %zu processes under it",
		      (long long)since_ms, o->timeout_ms, (int)o->pgid, n);
		exit(EXIT_FIRED);
	}
	logf_("watchdog fired: no keepalive for %lldms (timeout %ldms): "
	      "SIGKILL pid %d",
	      (long long)since_ms, o->timeout_ms, (int)o->pid);
	if (kill(o->pid, SIGKILL) != 0)
		logf_("kill: %s", strerror(errno));
	exit(EXIT_FIRED);
}

int main(int argc, char **argv)
{
	struct opts o;
	parse_args(argc, argv, &o);
	fifo_path = o.fifo;
	signal(SIGPIPE, SIG_IGN);
	if (o.log) {
		log_fd = open(o.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			      0644);
		if (log_fd < 0) {
			fprintf(stderr, "wdfifo: --log %s: %s\n", o.log,
				strerror(errno));
			return EXIT_USAGE;
		}
	}

	/* SIGTERM/SIGINT are delivered only inside ppoll, so a signal can
	 * never slip in between the check of got_signal and the wait. */
	sigset_t block, waitmask;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int fd = open_reader(o.fifo);
	if (fd < 0)
		return EXIT_USAGE;
	if (o.pgid > 0)
		logf_("ready: timeout %ldms, target pgid %d%s", o.timeout_ms,
		      (int)o.pgid, o.persist ? ", persist" : "");
	else
		logf_("ready: timeout %ldms, target pid %d%s", o.timeout_ms,
		      (int)o.pid, o.persist ? ", persist" : "");

	bool armed = false;
	char last = 0;            /* last byte of the current writer */
	bool seen_alive = false;  /* the target existed at some check */
	int64_t last_byte_us = 0; /* when it was read */
	int64_t next_check = 0;   /* us */
	const int64_t timeout_us = o.timeout_ms * 1000;
	for (;;) {
		int64_t now = mono_us();
		if (armed && now - last_byte_us >= timeout_us)
			fire(&o, (now - last_byte_us) / 1000);
		if (now >= next_check) {
			/* "gone" only once it was seen: a node started just
			 * before its stand-in may not have set up its process
			 * group yet */
			bool alive = target_alive(&o);
			if (alive && !seen_alive) {
				seen_alive = true;
				logf_("target seen");
			}
			if (!alive && seen_alive) {
				logf_("target gone, exiting%s",
				      armed ? " (was armed)" : "");
				return EXIT_TARGET_GONE;
			}
			next_check = now + CHECK_EVERY_MS * 1000;
		}
		int64_t wait = next_check - now;
		if (armed && last_byte_us + timeout_us - now < wait)
			wait = last_byte_us + timeout_us - now;
		if (wait < 0)
			wait = 0;
		struct timespec ts = { (time_t)(wait / 1000000),
				       (long)(wait % 1000000) * 1000L };
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = ppoll(&pfd, 1, &ts, &waitmask);
		if (got_signal) {
			logf_("signal %d: exiting without killing%s",
			      (int)got_signal, armed ? " (was armed)" : "");
			return EXIT_DISARMED;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logf_("poll: %s", strerror(errno));
			return EXIT_USAGE;
		}
		if (n == 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		char buf[256];
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			logf_("read: %s", strerror(errno));
			return EXIT_USAGE;
		}
		if (r > 0) {
			if (!armed)
				logf_("armed");
			armed = true;
			last = buf[r - 1];
			last_byte_us = mono_us();
			continue;
		}
		/* EOF: every writer closed */
		if (armed && last == 'V') {
			logf_("disarmed (magic close)");
			if (!o.persist)
				return EXIT_DISARMED;
			armed = false;
		} else if (armed) {
			logf_("writer closed without 'V': the deadline keeps "
			      "running (%lldms left)",
			      (long long)(last_byte_us + timeout_us -
					  mono_us()) / 1000);
		}
		last = 0;
		fd = reopen_reader(fd);
		if (fd < 0)
			return EXIT_USAGE;
	}
}
