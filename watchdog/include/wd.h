/* wd.h - the Linux watchdog device (/dev/watchdog) for pgwarden's fencing.
 *
 * While this node holds or is acquiring the primary lease the agent keeps
 * the device open ("armed") and writes one byte to it after each successful
 * lease renewal ("keepalive", "pet"). If the agent hangs, is SIGSTOPped or
 * dies, the keepalives stop and the kernel resets the machine Twd after the
 * last one, before the store can expire the lease (I3, docs/architecture.md).
 *
 * Device handling, so that a FIFO read by the test stand-in (tests/lib/
 * wdfifo.c) behaves like a real device:
 *   - open(O_WRONLY | O_CLOEXEC | O_NONBLOCK): O_CLOEXEC so that no child
 *     (pg_ctl, postgres) inherits the descriptor and prevents the magic
 *     close; O_NONBLOCK so that opening a FIFO without a reader fails at
 *     once with ENXIO instead of blocking the loop. The flag stays set: a
 *     keepalive to a FIFO whose reader stalled fails with EAGAIN instead of
 *     blocking (watchdog drivers ignore it).
 *   - WDIOC_SETTIMEOUT (whole seconds, rounded up) then WDIOC_GETTIMEOUT:
 *     the timeout the device reports is the one used. Where the ioctls fail
 *     with ENOTTY (a FIFO) the configured value in ms is used as is.
 *   - one byte 'k' is written right after the open (a real device starts
 *     its timer at open; the stand-in at its first byte), then one byte per
 *     keepalive, by write() and never by WDIOC_KEEPALIVE.
 *   - disarm = write 'V' then close (the magic close: the kernel stops the
 *     timer, the stand-in exits 0). Closing without 'V' (wd_close_no_disarm)
 *     leaves the timer running on a real device (and on the stand-in).
 *
 * Modes (the [watchdog] mode of the ini, mapped by the caller):
 *   WD_MODE_OFF        never opens anything; wd_may_lead() is true.
 *   WD_MODE_AUTOMATIC  uses the device if it exists; if the path does not
 *                      exist the node runs without it (wd_open returns 0,
 *                      status "absent", wd_errmsg() says so). A device that
 *                      exists but cannot be opened is an error (the caller
 *                      logs it) but the node may still lead.
 *   WD_MODE_REQUIRED   the node must never become primary without an armed
 *                      device: after a failed wd_open, wd_may_lead() is
 *                      false and wd_required_but_unavailable() is true until
 *                      an open succeeds.
 *
 * The process must ignore SIGPIPE (pgwarden's daemon does): a keepalive to
 * a FIFO whose reader is gone fails with EPIPE.
 *
 * Errors: 0 or a negative code from base/err.h (ERR_IO for a failed system
 * call, ERR_INVAL for bad arguments or a call in the wrong state,
 * ERR_TIMEOUT when wd_keepalive_for refuses a pet that would break I3). The
 * reason is in wd_errmsg(), "wd[PATH] open: ...: strerror". errno is
 * captured into the message right after the failing call.
 * Times are milliseconds on CLOCK_MONOTONIC (the clock of uv_hrtime()).
 * Thread: the loop thread; every call is a few system calls on a local
 * descriptor and never blocks.
 */
#ifndef WD_H
#define WD_H

#include <stdbool.h>
#include <stdint.h>

#define WD_PATH_MAX 256   /* bytes, with the NUL */
#define WD_ERRMSG_MAX 256 /* bytes, with the NUL */
#define WD_DEFAULT_DEVICE "/dev/watchdog"

/* Same order and values as enum cfg_wd_mode in src/config/cfg.h. */
enum wd_mode { WD_MODE_OFF = 0, WD_MODE_AUTOMATIC, WD_MODE_REQUIRED };

/* What the status JSON shows as "state". */
enum wd_state {
	WD_ST_OFF = 0,     /* mode off */
	WD_ST_CLOSED,      /* not opened yet, or disarmed */
	WD_ST_ARMED,       /* open, timer running */
	WD_ST_ABSENT,      /* automatic mode, the path does not exist */
	WD_ST_FAILED,      /* the last open or keepalive failed */
};

/* The watchdog, embedded by its owner (the agent). wd_init before any other
 * call; wd_disarm / wd_close_no_disarm before the owner goes away. */
struct wd {
	/* private */
	int fd;                     /* -1 when closed */
	enum wd_mode mode;
	enum wd_state state;
	bool unavailable;           /* required mode and the last open
				       failed */
	bool timeout_from_device;   /* WDIOC_GETTIMEOUT answered */
	char path[WD_PATH_MAX];     /* copy of the configured path */
	unsigned cfg_timeout_ms;    /* ms, as configured */
	unsigned timeout_ms;        /* ms, in force (device's or cfg's) */
	uint64_t armed_ms;          /* ms, when the last open succeeded */
	uint64_t last_keepalive_ms; /* ms, last successful write; 0 never */
	uint64_t keepalives;        /* successful writes since the open */
	char errmsg[WD_ERRMSG_MAX]; /* last problem, "" if none */
};

/* A snapshot for the status JSON and `pgwarden list -o json`. Strings are
 * borrowed from the struct wd and valid until its next call. */
struct wd_status {
	const char *mode;            /* "off" | "automatic" | "required" */
	const char *state;           /* wd_state_name() */
	const char *path;            /* the device path */
	bool armed;
	bool may_lead;               /* wd_may_lead() */
	unsigned timeout_ms;         /* in force when armed, else configured */
	bool timeout_from_device;
	uint64_t last_keepalive_ms;  /* CLOCK_MONOTONIC ms, 0 never */
	int64_t last_keepalive_age_ms; /* now - last keepalive; -1 never */
	uint64_t keepalives;         /* since the last open */
	const char *errmsg;          /* "" if none */
};

/* Set up *wd in mode `mode` for device `path` (copied; NULL means
 * WD_DEFAULT_DEVICE) and timeout `timeout_ms` (> 0). Opens nothing. Returns
 * ERR_INVAL (message in wd->errmsg, wd stays closed) for a path of
 * WD_PATH_MAX bytes or more, a zero timeout or an unknown mode. */
int wd_init(struct wd *wd, const char *path, unsigned timeout_ms,
	    enum wd_mode mode);

/* wd_init followed by wd_arm: open the device `path` (copied) now. wd must
 * not be armed (wd_init forgets an open descriptor). */
int wd_open(const char *path, unsigned timeout_ms, enum wd_mode mode,
	    struct wd *wd);

/* Arm: open the device, set and read the timeout, write the first byte.
 * Returns 0 when the device is armed, or when there is nothing to arm
 * (mode off; automatic mode and the path does not exist: state ABSENT,
 * wd_errmsg() says the node runs without a watchdog). Returns ERR_IO when
 * the device exists (or is required) and cannot be opened or written, e.g.
 * a FIFO with no reader: "wd[PATH] open: no reader on the FIFO (ENXIO) ...".
 * In required mode a failure sets wd_required_but_unavailable(). Calling
 * it while armed is a no-op returning 0. */
int wd_arm(struct wd *wd);

/* Pet: write one byte 'k'. ERR_INVAL when not armed; ERR_IO when the write
 * fails (the descriptor stays open: the timer keeps running and the next
 * keepalive may succeed). Does not check the I3 condition; the agent uses
 * wd_keepalive_for. */
int wd_keepalive(struct wd *wd);

/* The latest instant at which a pet is still safe after a renewal sent at
 * t_send_ms whose lease the agent counts valid for lease_span_ms
 * (= ttl*(1-rho) - margin, the agent's lease_valid_span):
 *   t_send + lease_span - Twd,  or 0 when lease_span <= Twd.
 * Twd is the timeout in force (wd_timeout_ms). */
uint64_t wd_pet_deadline(const struct wd *wd, uint64_t t_send_ms,
			 uint64_t lease_span_ms);

/* Pet only if now <= wd_pet_deadline(wd, t_send_ms, lease_span_ms), i.e.
 * only while now - t_send <= ttl*(1-rho) - Twd - margin (I3). Returns
 * ERR_TIMEOUT, writing nothing, when it is too late; else as
 * wd_keepalive. */
int wd_keepalive_for(struct wd *wd, uint64_t t_send_ms,
		     uint64_t lease_span_ms);

/* Arm (or, when already armed, pet) under the same I3 limit: opening a
 * device starts its timer, which is a pet, so an open after the lease
 * already exists must respect the limit too (a restarted agent adopting
 * its lease; a late answer to an acquisition). Returns ERR_TIMEOUT without
 * opening or writing when now > wd_pet_deadline(); else as wd_arm (not
 * armed) or wd_keepalive (armed). Mode off and an absent device in
 * automatic mode return 0 as wd_arm does. */
int wd_arm_for(struct wd *wd, uint64_t t_send_ms, uint64_t lease_span_ms);

/* Magic close: write 'V', then close. The timer stops (the stand-in exits
 * 0). Returns 0 when not armed (nothing to do) or when 'V' was written,
 * ERR_IO when the write of 'V' failed (the descriptor is closed anyway, so
 * the timer keeps running on a real device: the caller logs it). */
int wd_disarm(struct wd *wd);

/* Close without 'V' (crash paths, an exec'ing child): a real device keeps
 * ticking and resets the machine. No-op when not armed. */
void wd_close_no_disarm(struct wd *wd);

/* State accessors. */
bool wd_armed(const struct wd *wd);
/* The timeout in force while armed (what the device reported, or the
 * configured one), else the configured one; ms. */
unsigned wd_timeout_ms(const struct wd *wd);
/* CLOCK_MONOTONIC ms of the last successful keepalive (the byte written by
 * the open counts); 0 if none since the last open. */
uint64_t wd_last_keepalive_ms(const struct wd *wd);
const char *wd_path(const struct wd *wd);
enum wd_mode wd_mode_of(const struct wd *wd);
enum wd_state wd_state_of(const struct wd *wd);
/* The descriptor, -1 when closed (for tests and diagnostics only). */
int wd_fd(const struct wd *wd);
/* Last problem or the reason the node runs without a watchdog; "" if
 * none. Borrowed, valid until the next call on wd. */
const char *wd_errmsg(const struct wd *wd);

/* Required mode and the device could not be opened: this node must not
 * take (or keep) the primary lease. */
bool wd_required_but_unavailable(const struct wd *wd);
/* May this node hold the primary lease as far as the watchdog goes: mode
 * off or automatic, or required and armed. In required mode the agent arms
 * before acquiring and acquires only if this is then true. */
bool wd_may_lead(const struct wd *wd);

/* Fill *out (strings borrowed from wd). */
void wd_status_get(const struct wd *wd, struct wd_status *out);

/* "off", "automatic", "required"; "?" otherwise. */
const char *wd_mode_name(enum wd_mode mode);
/* "off", "closed", "armed", "absent", "failed"; "?" otherwise. */
const char *wd_state_name(enum wd_state state);
/* Parse a mode name; -1 for anything else. */
int wd_mode_parse(const char *s);

/* CLOCK_MONOTONIC in ms (same clock as uv_hrtime() / 1e6). */
uint64_t wd_now_ms(void);

#endif
