/* wd.c - the watchdog device: open, timeout, keepalive, magic close.
 *
 * Arm (wd_arm):
 *   mode off                          -> nothing, 0
 *   open(O_WRONLY|O_CLOEXEC|O_NONBLOCK)
 *     ENOENT in automatic mode        -> state absent, 0 (runs without)
 *     ENXIO (FIFO, no reader yet)     -> failed, ERR_IO, clear message
 *     any other failure               -> failed, ERR_IO
 *   WDIOC_SETTIMEOUT (s, rounded up)  ENOTTY/EINVAL/...: ignored
 *   WDIOC_GETTIMEOUT                  ok: device's value; else configured
 *   write "k" (starts a FIFO stand-in; a device started at open)
 *     failure                         -> magic close attempt, failed, ERR_IO
 *   -> armed, 0
 * A failure in required mode marks the watchdog unavailable: the node must
 * not lead until an arm succeeds.
 */
#include "wd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

uint64_t wd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 2, 3))) static void
set_err(struct wd *wd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(wd->errmsg, sizeof wd->errmsg, fmt, ap);
	va_end(ap);
}

const char *wd_mode_name(enum wd_mode mode)
{
	switch (mode) {
	case WD_MODE_OFF:
		return "off";
	case WD_MODE_AUTOMATIC:
		return "automatic";
	case WD_MODE_REQUIRED:
		return "required";
	}
	return "?";
}

const char *wd_state_name(enum wd_state state)
{
	switch (state) {
	case WD_ST_OFF:
		return "off";
	case WD_ST_CLOSED:
		return "closed";
	case WD_ST_ARMED:
		return "armed";
	case WD_ST_ABSENT:
		return "absent";
	case WD_ST_FAILED:
		return "failed";
	}
	return "?";
}

int wd_mode_parse(const char *s)
{
	if (!s)
		return -1;
	if (strcmp(s, "off") == 0)
		return WD_MODE_OFF;
	if (strcmp(s, "automatic") == 0)
		return WD_MODE_AUTOMATIC;
	if (strcmp(s, "required") == 0)
		return WD_MODE_REQUIRED;
	return -1;
}

int wd_init(struct wd *wd, const char *path, unsigned timeout_ms,
	    enum wd_mode mode)
{
	memset(wd, 0, sizeof *wd);
	wd->fd = -1;
	wd->mode = mode;
	wd->state = mode == WD_MODE_OFF ? WD_ST_OFF : WD_ST_CLOSED;
	wd->cfg_timeout_ms = timeout_ms;
	wd->timeout_ms = timeout_ms;
	if (!path)
		path = WD_DEFAULT_DEVICE;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof wd->path) {
		set_err(wd, "wd: device path is empty or too long (%zu bytes)",
			n);
		wd->state = WD_ST_FAILED;
		wd->unavailable = mode == WD_MODE_REQUIRED;
		return ERR_INVAL;
	}
	memcpy(wd->path, path, n + 1);
	if (mode != WD_MODE_OFF && mode != WD_MODE_AUTOMATIC &&
	    mode != WD_MODE_REQUIRED) {
		set_err(wd, "wd[%s] unknown mode %d", wd->path, (int)mode);
		wd->state = WD_ST_FAILED;
		return ERR_INVAL;
	}
	if (timeout_ms == 0) {
		set_err(wd, "wd[%s] timeout must be > 0", wd->path);
		wd->state = WD_ST_FAILED;
		wd->unavailable = mode == WD_MODE_REQUIRED;
		return ERR_INVAL;
	}
	return 0;
}

int wd_open(const char *path, unsigned timeout_ms, enum wd_mode mode,
	    struct wd *wd)
{
	int rc = wd_init(wd, path, timeout_ms, mode);
	if (rc)
		return rc;
	return wd_arm(wd);
}

/* A failed arm: record it; in required mode the node may not lead. */
static int arm_failed(struct wd *wd)
{
	wd->state = WD_ST_FAILED;
	wd->unavailable = wd->mode == WD_MODE_REQUIRED;
	log_warn("%s%s", wd->errmsg,
		 wd->unavailable ? " (mode required: this node will not "
				   "become primary)"
				 : "");
	return ERR_IO;
}

/* Ask the device for the timeout (whole seconds, rounded up) and read back
 * what it took; a FIFO answers ENOTTY and the configured value stays. */
static void set_timeout(struct wd *wd)
{
	int secs = (int)((wd->cfg_timeout_ms + 999u) / 1000u);
	wd->timeout_ms = wd->cfg_timeout_ms;
	wd->timeout_from_device = false;
	if (ioctl(wd->fd, WDIOC_SETTIMEOUT, &secs) != 0) {
		int e = errno;
		if (e != ENOTTY)
			log_warn("wd[%s] WDIOC_SETTIMEOUT %ds: %s", wd->path,
				 secs, strerror(e));
	}
	int got = 0;
	if (ioctl(wd->fd, WDIOC_GETTIMEOUT, &got) != 0) {
		int e = errno;
		if (e != ENOTTY)
			log_warn("wd[%s] WDIOC_GETTIMEOUT: %s; using the "
				 "configured %ums",
				 wd->path, strerror(e), wd->cfg_timeout_ms);
		return;
	}
	if (got > 0) {
		wd->timeout_ms = (unsigned)got * 1000u;
		wd->timeout_from_device = true;
		if (wd->timeout_ms != (unsigned)secs * 1000u)
			log_warn("wd[%s] asked for %ds, the device uses %ds",
				 wd->path, secs, got);
	}
}

int wd_arm(struct wd *wd)
{
	if (wd->fd >= 0)
		return 0;
	if (wd->mode == WD_MODE_OFF) {
		wd->state = WD_ST_OFF;
		return 0;
	}
	if (wd->path[0] == '\0' || wd->cfg_timeout_ms == 0) {
		/* wd_init failed: its message stays */
		wd->state = WD_ST_FAILED;
		wd->unavailable = wd->mode == WD_MODE_REQUIRED;
		return ERR_INVAL;
	}
	wd->errmsg[0] = '\0';
	/* O_NONBLOCK: a FIFO without a reader fails with ENXIO instead of
	 * blocking the loop; it stays set so that a keepalive never blocks
	 * on a stalled reader either. O_CLOEXEC: no child may inherit the
	 * descriptor, or the magic close never stops the timer. */
	int fd = open(wd->path, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT && wd->mode == WD_MODE_AUTOMATIC) {
			set_err(wd,
				"wd[%s] not present (mode automatic): running "
				"without a watchdog",
				wd->path);
			if (wd->state != WD_ST_ABSENT)
				log_warn("%s", wd->errmsg);
			wd->state = WD_ST_ABSENT;
			wd->unavailable = false;
			return 0;
		}
		if (e == ENXIO)
			set_err(wd,
				"wd[%s] open: no reader on the FIFO (ENXIO): "
				"the watchdog stand-in is not running: %s",
				wd->path, strerror(e));
		else if (e == EBUSY)
			set_err(wd,
				"wd[%s] open: %s (EBUSY): another process "
				"holds the device",
				wd->path, strerror(e));
		else
			set_err(wd, "wd[%s] open: %s (errno %d)", wd->path,
				strerror(e), e);
		return arm_failed(wd);
	}
	wd->fd = fd;
	set_timeout(wd);
	wd->keepalives = 0;
	wd->last_keepalive_ms = 0;
	if (write(fd, "k", 1) != 1) {
		int e = errno;
		set_err(wd, "wd[%s] first keepalive: %s", wd->path,
			strerror(e));
		/* try to stop a timer the open may have started */
		if (write(fd, "V", 1) != 1)
			log_warn("wd[%s] magic close after a failed first "
				 "keepalive failed too",
				 wd->path);
		close(fd);
		wd->fd = -1;
		return arm_failed(wd);
	}
	uint64_t now = wd_now_ms();
	wd->armed_ms = now;
	wd->last_keepalive_ms = now;
	wd->keepalives = 1;
	wd->state = WD_ST_ARMED;
	wd->unavailable = false;
	log_info("wd[%s] state=armed timeout=%ums source=%s mode=%s", wd->path,
		 wd->timeout_ms, wd->timeout_from_device ? "device" : "config",
		 wd_mode_name(wd->mode));
	return 0;
}

int wd_keepalive(struct wd *wd)
{
	if (wd->fd < 0) {
		set_err(wd, "wd[%s] keepalive: not armed", wd->path);
		return ERR_INVAL;
	}
	ssize_t n = write(wd->fd, "k", 1);
	if (n != 1) {
		int e = n < 0 ? errno : EIO;
		set_err(wd, "wd[%s] keepalive: %s", wd->path, strerror(e));
		return ERR_IO;
	}
	wd->last_keepalive_ms = wd_now_ms();
	wd->keepalives++;
	wd->errmsg[0] = '\0';
	return 0;
}

uint64_t wd_pet_deadline(const struct wd *wd, uint64_t t_send_ms,
			 uint64_t lease_span_ms)
{
	uint64_t twd = wd_timeout_ms(wd);
	if (lease_span_ms <= twd)
		return 0;
	return t_send_ms + lease_span_ms - twd;
}

/* I3: a pet (or an open, which starts the timer) now must not let the
 * machine outlive the lease the store may already count as expired. */
static bool pet_too_late(struct wd *wd, const char *what, uint64_t t_send_ms,
			 uint64_t lease_span_ms)
{
	uint64_t deadline = wd_pet_deadline(wd, t_send_ms, lease_span_ms);
	uint64_t now = wd_now_ms();
	if (deadline != 0 && now <= deadline)
		return false;
	set_err(wd,
		"wd[%s] %s refused: %llums after the renewal was sent, limit "
		"%llums (lease %llums - timeout %ums)",
		wd->path, what,
		(unsigned long long)(now > t_send_ms ? now - t_send_ms : 0),
		(unsigned long long)(deadline ? deadline - t_send_ms : 0),
		(unsigned long long)lease_span_ms, wd_timeout_ms(wd));
	return true;
}

int wd_keepalive_for(struct wd *wd, uint64_t t_send_ms,
		     uint64_t lease_span_ms)
{
	if (wd->fd < 0) {
		set_err(wd, "wd[%s] keepalive: not armed", wd->path);
		return ERR_INVAL;
	}
	if (pet_too_late(wd, "keepalive", t_send_ms, lease_span_ms))
		return ERR_TIMEOUT;
	return wd_keepalive(wd);
}

int wd_arm_for(struct wd *wd, uint64_t t_send_ms, uint64_t lease_span_ms)
{
	if (wd->fd >= 0)
		return wd_keepalive_for(wd, t_send_ms, lease_span_ms);
	if (wd->mode == WD_MODE_OFF)
		return wd_arm(wd);
	if (pet_too_late(wd, "arm", t_send_ms, lease_span_ms))
		return ERR_TIMEOUT;
	return wd_arm(wd);
}

int wd_disarm(struct wd *wd)
{
	if (wd->fd < 0)
		return 0;
	int rc = 0;
	if (write(wd->fd, "V", 1) != 1) {
		int e = errno;
		set_err(wd, "wd[%s] magic close: %s: the timer keeps running",
			wd->path, strerror(e));
		log_error("%s", wd->errmsg);
		rc = ERR_IO;
	}
	if (close(wd->fd) != 0 && rc == 0) {
		int e = errno;
		set_err(wd, "wd[%s] close: %s", wd->path, strerror(e));
		log_error("%s", wd->errmsg);
		rc = ERR_IO;
	}
	wd->fd = -1;
	wd->state = WD_ST_CLOSED;
	if (rc == 0)
		log_info("wd[%s] state=armed->closed (magic close)", wd->path);
	return rc;
}

void wd_close_no_disarm(struct wd *wd)
{
	if (wd->fd < 0)
		return;
	close(wd->fd);
	wd->fd = -1;
	wd->state = WD_ST_CLOSED;
	log_warn("wd[%s] closed without the magic close: the timer keeps "
		 "running",
		 wd->path);
}

bool wd_armed(const struct wd *wd)
{
	return wd->fd >= 0;
}

unsigned wd_timeout_ms(const struct wd *wd)
{
	return wd->fd >= 0 ? wd->timeout_ms : wd->cfg_timeout_ms;
}

uint64_t wd_last_keepalive_ms(const struct wd *wd)
{
	return wd->last_keepalive_ms;
}

const char *wd_path(const struct wd *wd)
{
	return wd->path;
}

enum wd_mode wd_mode_of(const struct wd *wd)
{
	return wd->mode;
}

enum wd_state wd_state_of(const struct wd *wd)
{
	return wd->state;
}

int wd_fd(const struct wd *wd)
{
	return wd->fd;
}

const char *wd_errmsg(const struct wd *wd)
{
	return wd->errmsg;
}

bool wd_required_but_unavailable(const struct wd *wd)
{
	return wd->mode == WD_MODE_REQUIRED && wd->unavailable;
}

bool wd_may_lead(const struct wd *wd)
{
	switch (wd->mode) {
	case WD_MODE_OFF:
	case WD_MODE_AUTOMATIC:
		return true;
	case WD_MODE_REQUIRED:
		return wd->fd >= 0;
	}
	return false;
}

void wd_status_get(const struct wd *wd, struct wd_status *out)
{
	memset(out, 0, sizeof *out);
	out->mode = wd_mode_name(wd->mode);
	out->state = wd_state_name(wd->state);
	out->path = wd->path;
	out->armed = wd_armed(wd);
	out->may_lead = wd_may_lead(wd);
	out->timeout_ms = wd_timeout_ms(wd);
	out->timeout_from_device = wd->fd >= 0 && wd->timeout_from_device;
	out->last_keepalive_ms = wd->last_keepalive_ms;
	if (wd->last_keepalive_ms) {
		uint64_t now = wd_now_ms();
		out->last_keepalive_age_ms =
			now >= wd->last_keepalive_ms
				? (int64_t)(now - wd->last_keepalive_ms)
				: 0;
	} else {
		out->last_keepalive_age_ms = -1;
	}
	out->keepalives = wd->keepalives;
	out->errmsg = wd->errmsg;
}
