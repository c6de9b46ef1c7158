# tests/lib/proc.sh - process helpers shared by tests/lib/cluster.sh and
# tests/lib/pgcluster.sh (sourced by both).

# proc_state PID: the state letter from /proc/PID/stat, or "-" if gone.
proc_state() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo -
		return
	}
	s=${s##*) }
	echo "${s%% *}"
}

# pid_alive PID: running (not a zombie, not gone; a zombie still answers
# kill -0)
pid_alive() {
	local st
	[[ -n $1 ]] || return 1
	kill -0 "$1" 2>/dev/null || return 1
	st=$(proc_state "$1")
	[[ $st != Z && $st != X && $st != - ]]
}

# not CMD...: CMD fails (for wait_until)
not() { ! "$@"; }

# port_bound PORT: something listens on TCP PORT
port_bound() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# PGW_TEST_PORT_SHIFT (default 0) moves every test's port block by that many
# ports, and PGW_TEST_NS_TAG names its network namespaces apart, so that two
# copies of the suite (two checkouts on one machine) never collide. The
# blocks are checked before the shift.
PGW_TEST_PORT_SHIFT=${PGW_TEST_PORT_SHIFT:-0}
PGW_TEST_NS_TAG=${PGW_TEST_NS_TAG:-}

# ------------------------------------------------ daemons that must survive
#
# Every daemon a test starts is recorded in an associative array (node
# index -> pid); the harness functions that end one on purpose (node_stop,
# node_kill, node_kill_daemon, node_kill_machine, node_wait_exit, reap)
# take it out. So at the end of a test every pid still recorded belongs to
# a daemon that must still be running: one that exited by itself (a crash,
# a sanitizer abort, an exit the test did not ask for) fails the test, and
# so does a sanitizer report in any daemon log, also of a node that was
# killed on purpose.

# signal_desc STATUS: "status 134 (SIGABRT)" for a shell exit status
signal_desc() {
	local st=$1 sig
	if ((st > 128 && st < 128 + 65)); then
		sig=$(kill -l $((st - 128)) 2>/dev/null) || sig=
		echo "status $st${sig:+ (SIG$sig)}"
	else
		echo "status $st"
	fi
}

# daemons_exited MAP LOGFN: reports (stderr) every node of the associative
# array MAP (index -> pid) whose process is no longer running: its exit
# status (it is reaped and taken out of MAP) and the last 30 lines of its
# log (LOGFN I prints the log's path). Returns 1 if there was any.
daemons_exited() {
	local -n __dm=$1
	local logfn=$2 i p st bad=0 f
	for i in "${!__dm[@]}"; do
		p=${__dm[$i]}
		pid_alive "$p" && continue
		st=0
		wait "$p" 2>/dev/null || st=$?
		unset "__dm[$i]"
		bad=1
		f=$("$logfn" "$i")
		printf '[%s] FAIL: node%s (pid %s) exited unexpectedly with %s; the last 30 lines of %s:\n' \
			"$(date +%T.%3N)" "$i" "$p" "$(signal_desc "$st")" "$f" >&2
		tail -n 30 "$f" 2>/dev/null | sed 's/^/    /' >&2
	done
	return "$bad"
}

# SANITIZER_RE: what AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer print when they find something
SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'

# sanitizer_reports FILE...: reports (stderr) every file that holds a
# sanitizer report, with the report's first 40 lines. Returns 1 if any.
sanitizer_reports() {
	local f bad=0 n
	for f in "$@"; do
		[[ -f $f ]] || continue
		n=$(grep -n -m 1 -E -- "$SANITIZER_RE" "$f" | cut -d: -f1) || true
		[[ -n $n ]] || continue
		bad=1
		printf '[%s] FAIL: sanitizer report in %s (line %s):\n' "$(date +%T.%3N)" "$f" "$n" >&2
		tail -n +"$n" "$f" | head -n 40 | sed 's/^/    /' >&2
	done
	return "$bad"
}

# daemons_stop_all MAP LOGFN: SIGTERM to every node of MAP at once (as at
# a machine's shutdown), then each must exit 0 within 20 s; a sanitized
# daemon runs its exit checks (LeakSanitizer) then. Reports (stderr) a
# node that exits non-zero or does not exit; returns 1 if any. Nodes that
# exited are reaped and taken out of MAP.
daemons_stop_all() {
	local -n __ds=$1
	local logfn=$2 i p st bad=0 end
	for i in "${!__ds[@]}"; do kill -TERM "${__ds[$i]}" 2>/dev/null; done
	end=$((SECONDS + 20))
	for i in "${!__ds[@]}"; do
		p=${__ds[$i]}
		while pid_alive "$p" && ((SECONDS < end)); do sleep 0.1; done
		if pid_alive "$p"; then
			printf '[%s] FAIL: node%s (pid %s) did not exit within 20 s of SIGTERM\n' "$(date +%T.%3N)" "$i" "$p" >&2
			bad=1
			continue
		fi
		st=0
		wait "$p" 2>/dev/null || st=$?
		unset "__ds[$i]"
		if ((st != 0)); then
			printf '[%s] FAIL: node%s (pid %s) exited with %s after SIGTERM; the last 30 lines of %s:\n' \
				"$(date +%T.%3N)" "$i" "$p" "$(signal_desc "$st")" "$("$logfn" "$i")" >&2
			tail -n 30 "$("$logfn" "$i")" 2>/dev/null | sed 's/^/    /' >&2
			bad=1
		fi
	done
	return "$bad"
}
