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
