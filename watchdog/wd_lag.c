/* wd_lag.c - the loop-stall monitor (wd_lag.h). */
#include "wd_lag.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"

bool wd_lag_note(struct wd_lag *m, uint64_t now_ms, uint64_t busy_ms,
		 uint64_t *quiet, uint64_t *quiet_worst_ms)
{
	if (busy_ms < m->threshold_ms)
		return false;
	m->st.stalls++;
	m->st.last_ms = busy_ms;
	if (busy_ms > m->st.worst_ms)
		m->st.worst_ms = busy_ms;
	if (m->logged_at_ms != 0 &&
	    now_ms - m->logged_at_ms < WD_LAG_LOG_INTERVAL_MS) {
		m->quiet++;
		if (busy_ms > m->quiet_worst_ms)
			m->quiet_worst_ms = busy_ms;
		return false;
	}
	if (quiet)
		*quiet = m->quiet;
	if (quiet_worst_ms)
		*quiet_worst_ms = m->quiet_worst_ms;
	m->quiet = 0;
	m->quiet_worst_ms = 0;
	/* 0 means "never": a clock at 0 ms still counts as a line */
	m->logged_at_ms = now_ms ? now_ms : 1;
	return true;
}

/* CPU time of the calling thread, ns */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_prepare(uv_prepare_t *h)
{
	struct wd_lag *m = h->data;
	uint64_t now = uv_hrtime();
	uint64_t idle = uv_metrics_idle_time(m->loop);
	uint64_t cpu = thread_cpu_ns();
	if (!m->started) {
		m->started = true;
		m->last_ns = now;
		m->last_idle_ns = idle;
		m->last_cpu_ns = cpu;
		return;
	}
	uint64_t span = now - m->last_ns;
	uint64_t waited = idle - m->last_idle_ns;
	uint64_t busy_ms = span > waited ? (span - waited) / 1000000u : 0;
	/* the CPU the loop thread used meanwhile: close to busy_ms when a
	 * callback computed, far below it when the thread waited in a
	 * system call (a disk flush) or for a CPU (an overloaded machine) */
	uint64_t cpu_ms = cpu >= m->last_cpu_ns
				  ? (cpu - m->last_cpu_ns) / 1000000u
				  : 0;
	m->last_ns = now;
	m->last_idle_ns = idle;
	m->last_cpu_ns = cpu;
	uint64_t quiet = 0, quiet_worst = 0;
	if (!wd_lag_note(m, now / 1000000u, busy_ms, &quiet, &quiet_worst))
		return;
	if (quiet)
		log_warn("loop[%s] stall ms=%" PRIu64 " cpu_ms=%" PRIu64
			 " stalls=%" PRIu64 " worst_ms=%" PRIu64 " (%" PRIu64
			 " more since the last line, worst %" PRIu64 " ms)",
			 m->name, busy_ms, cpu_ms, m->st.stalls,
			 m->st.worst_ms, quiet, quiet_worst);
	else
		log_warn("loop[%s] stall ms=%" PRIu64 " cpu_ms=%" PRIu64
			 " stalls=%" PRIu64 " worst_ms=%" PRIu64,
			 m->name, busy_ms, cpu_ms, m->st.stalls,
			 m->st.worst_ms);
}

int wd_lag_init(struct wd_lag *m, uv_loop_t *loop, const char *name,
		unsigned threshold_ms)
{
	memset(m, 0, sizeof *m);
	if (threshold_ms == 0)
		return ERR_INVAL;
	m->loop = loop;
	m->threshold_ms = threshold_ms;
	snprintf(m->name, sizeof m->name, "%s", name ? name : "");
	if (!loop)
		return 0;
	/* idle-time metrics: the loop measures how long it waits in
	 * epoll_wait; without them a wait would count as busy */
	int rc = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
	if (rc != 0) {
		log_warn("loop[%s] no idle-time metrics (%s): stall monitor "
			 "off",
			 m->name, uv_strerror(rc));
		m->loop = NULL;
		return 0;
	}
	uv_prepare_init(loop, &m->prepare);
	m->prepare.data = m;
	uv_prepare_start(&m->prepare, on_prepare);
	/* the prepare handle alone must not keep the loop alive */
	uv_unref((uv_handle_t *)&m->prepare);
	return 0;
}

void wd_lag_get(const struct wd_lag *m, struct wd_lag_stats *out)
{
	*out = m->st;
}

static void on_closed(uv_handle_t *h)
{
	struct wd_lag *m = h->data;
	if (m->close_cb)
		m->close_cb(m->close_arg);
}

void wd_lag_close(struct wd_lag *m, void (*cb)(void *), void *arg)
{
	if (m->closing)
		return;
	m->closing = true;
	m->close_cb = cb;
	m->close_arg = arg;
	if (!m->loop) {
		if (cb)
			cb(arg);
		return;
	}
	uv_close((uv_handle_t *)&m->prepare, on_closed);
}
