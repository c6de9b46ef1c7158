#!/usr/bin/env bash
# fo_pgroup_stop: the primary's whole process group is stopped, as Ctrl-Z
# on a foreground `pgwarden run`, `kill -STOP -PGID` or a debugger attached
# to the group do: pgwarden and its postmaster stop together, while
# PostgreSQL's backends (every child of the postmaster makes itself a
# session leader) keep committing on the connections they hold. No watchdog
# ([watchdog] mode = off): the fencer process, which pgwarden starts in a
# session of its own with the job-control signals ignored, is the only
# line of defence, and must kill the backends and the postmaster at its
# deadline while the group is still stopped.
#
# Two cases, each with two writers holding open connections to every node
# (tests/lib/fo_writer.c):
#   1. SIGSTOP to the group (`kill -STOP -- -PGID`);
#   2. SIGTSTP to the group, as a terminal sends it to its foreground job.
# Each stop lasts 8 s, longer than the lease (2.5 s) plus a failover.
# Asserted, for each case: the fencer fired while the group was stopped and
# no postgres process of the old primary's data directory is left; the old
# primary acknowledged no row after another node was listed as primary nor
# after its fencer fired, and the fire precedes the new primary's first
# acknowledged row and its promotion; the write windows of all instances
# are disjoint; synchronous_mode = on: no acknowledged row is lost. After
# SIGCONT the old node rejoins as a replica of the new primary.
#
# The nodes run as jobs of a shell with job control (node_start below), so
# each pgwarden leads a process group inside that shell's session, as one
# started from an interactive shell does: the kernel discards SIGTSTP sent
# to an orphaned process group (the group of a `setsid pgwarden run`), so
# only such a group can be stopped by it.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 33600

# node_start I: node I as a background job of `bash -c 'set -m; ...'` in a
# session of its own; the job's pid (pgwarden's, = its process group) is
# read from a file, and the shell is stopped by pid at the end.
node_start() {
	local i=$1 pidf=$PG_DIR/node$1.jobpid
	if node_running "$i"; then fail "node$i already running (pid ${PG_PID[$i]})"; fi
	rm -f "$pidf"
	echo "===== $(date +%T.%3N) start node$i (job of a shell) =====" >>"$(node_log "$i")"
	# wait -f: with job control on, a plain wait returns when the job
	# stops; the shell must stay until pgwarden exits
	# shellcheck disable=SC2016
	(cd / && exec setsid bash -c 'set -m; "$@" & echo $! >"$0"; wait -f $!' "$pidf" \
		setpriv --reuid=$PG_USER --regid=$PG_USER --init-groups \
		env HOME=$PG_HOME "$PG_DIR/bin/pgwarden" run -c "$(ini "$i")" \
		>>"$(node_log "$i")" 2>&1 </dev/null) &
	PG_EXTRA_PIDS+=("$!")
	wait_until -t 5 test -s "$pidf" || fail "node$i: the job shell wrote no pid"
	PG_PID[$i]=$(<"$pidf")
	PG_GROUPS+=("${PG_PID[$i]}")
	local pgid
	pgid=$(ps -o pgid= -p "${PG_PID[$i]}" | tr -d ' ')
	assert_eq "${PG_PID[$i]}" "$pgid" "node$i's process group"
	log "started node$i pid ${PG_PID[$i]} (job of shell $!)"
}

# is_stopped PID: in the stopped state (T in /proc/PID/stat)
is_stopped() { [[ $(proc_state "$1") == T ]]; }

fo_up
FIRST=1

# stop_case SIGNAL: one case; P is the primary; sets P to the new primary
stop_case() {
	local sig=$1 pm pgwpid fencer wa=w$FIRST wb=w$((FIRST + 1)) tk t_listed old_port st
	wait_until -t 10 fo_fencer_armed "$P" || fail "node$P (primary) never armed its fencer"
	fo_wait_sync_published
	pm=$(postmaster_pid "$P") || fail "no postmaster for node$P"
	pgwpid=$(node_pid "$P")
	fencer=$(fencers_of "$P")
	[[ -n $fencer ]] || fail "node$P runs no fencer"
	old_port=$(pg_port "$P")
	log "case SIG$sig: node$P pgwarden $pgwpid (process group), postmaster $pm, fencer $fencer (pgid $(ps -o pgid= -p "$fencer" | tr -d ' '))"

	fo_writer_start "$wa" $((FIRST * 10000000))
	fo_writer_start "$wb" $(((FIRST + 1) * 10000000))
	fo_wait_acks "$wa" 100 20 0 "$old_port"
	fo_wait_acks "$wb" 100 20 0 "$old_port"
	tk=$(fo_now)
	kill "-$sig" -- "-$pgwpid"
	log "SIG$sig to node$P's process group $pgwpid"
	wait_until -t 3 is_stopped "$pgwpid" ||
		fail "node$P's pgwarden is not stopped by SIG$sig (state $(proc_state "$pgwpid"))"

	wait_until -t 30 fo_new_primary "$P" || {
		pgw list >&2 || true
		fail "no new primary within 30 s of SIG$sig"
	}
	t_listed=$(fo_now)
	N=$(primary_idx)
	log "node$N listed as primary $(((t_listed - tk) / 1000)) ms into the stop"
	fo_wait_acks "$wa" 20 20 "$tk" "$(pg_port "$N")"
	# the rest of the 8 s stop
	while (($(fo_since "$tk") < 8000)); do sleep 0.2; done
	st=$(proc_state "$pgwpid")
	[[ $st == T ]] || fail "node$P's pgwarden left the stopped state during the stop (state $st)"
	local late
	late=$(($(fo_acks_after "$wa" "$t_listed" "$old_port") + $(fo_acks_after "$wb" "$t_listed" "$old_port")))
	((late == 0)) || fail "node$P's PostgreSQL acknowledged $late row(s) after node$N was listed as primary"
	fo_fired_ms "$P" >/dev/null ||
		fail "node$P's fencer did not fire during the 8 s stop of its process group"
	log "node$P's fencer fired $(($(fo_fired_ms "$P") - tk / 1000)) ms after SIG$sig"
	no_postmaster "$P" || fail "postgres processes of node$P run on while its group is stopped: $(postmasters_of "$P")"

	kill -CONT -- "-$pgwpid"
	log "SIGCONT to node$P's process group"
	wait_until -t 60 fo_streams_from "$P" "$N" || {
		pgw list >&2 || true
		fail "node$P not streaming from node$N within 60 s of the SIGCONT"
	}
	assert_eq "$N" "$(primary_idx)" "primary after node$P woke up"
	local t
	t=$(fo_now)
	fo_wait_acks "$wa" 50 20 "$t" "$(pg_port "$N")"
	fo_wait_acks "$wb" 50 20 "$t" "$(pg_port "$N")"
	fo_writer_stop "$wa"
	fo_writer_stop "$wb"
	# nothing after the resume either: the old instance's last window ends
	# before the fire
	fo_check_fired_first "$P" "$N" "$wa" "$wb"
	fo_check_overlap "$wa" "$wb"
	P=$N
	FIRST=$((FIRST + 2))
}

# FO_PGROUP_CASES (default "STOP TSTP") runs a subset, for diagnosis
WRITERS=()
for sig in ${FO_PGROUP_CASES:-STOP TSTP}; do
	WRITERS+=("w$FIRST" "w$((FIRST + 1))")
	stop_case "$sig"
done
pg_wait_healthy 60
fo_check_lost "$P" "${WRITERS[@]}"
fo_check_overlap "${WRITERS[@]}"
