# tests/lib/cluster.sh - helpers for pgwarden system tests: real
# `pgwarden run` processes on 127.0.0.1, one temp dir per test.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
#   cl_init 24000            # per-test port base (PGW_PORT_BASE overrides)
#   cl_start_all; cl_wait_leader
#   pgw put /a 1; ...
#
# Ports: raft BASE+i, api BASE+10+i for node i (1..9). Everything a test
# starts is recorded by pid and killed by pid on exit; the node logs are
# printed when the test fails. PGW_KEEP=1 keeps the temp dir.
# Every wait is bounded: wait_until polls every 0.1 s for at most
# WAIT_TIMEOUT seconds (default 15), or -t SECONDS.

set -eEuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
# a command that fails under set -e says which one it was
trap 'cl_rc=$?; printf "[%s %s] command failed (status %s) at %s:%s: %s\\n" "$(date +%T.%3N)" "$CL_NAME" "$cl_rc" "${BASH_SOURCE[0]##*/}" "$LINENO" "$BASH_COMMAND" >&2' ERR

: "${PGWARDEN:?PGWARDEN must name the pgwarden binary}"
PGWARDEN=$(readlink -f "$PGWARDEN")
WAIT_TIMEOUT=${WAIT_TIMEOUT:-15}

declare -A CL_PID=()      # node index -> pid of its running `pgwarden run`
declare -a CL_EXTRA_PIDS=()  # other background processes of the test
CL_DIR=
CL_BASE=
CL_NODES=3
CL_NAME=$(basename "$0" .sh)
CL_RAFT_EXTRA=${CL_RAFT_EXTRA:-}

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$CL_NAME" "$*" >&2; }
fail() {
	printf '[%s %s] FAIL: %s\n' "$(date +%T.%3N)" "$CL_NAME" "$*" >&2
	exit 1
}

# cl_init BASE: temp dir, token, ini files for node1..3; installs the trap.
cl_init() {
	local base=$1
	CL_BASE=${PGW_PORT_BASE:-$base}
	if ((CL_BASE < 24000 || CL_BASE > 25900)); then
		echo "port base $CL_BASE outside 24000..25900" >&2
		exit 2
	fi
	CL_BASE=$((CL_BASE + PGW_TEST_PORT_SHIFT))
	CL_DIR=$(mktemp -d "/tmp/pgw-it-$CL_NAME.XXXXXX")
	trap cl_cleanup EXIT
	printf 'it-token-%s\n' "$RANDOM$RANDOM" >"$CL_DIR/token"
	chmod 600 "$CL_DIR/token"
	local i
	for ((i = 1; i <= CL_NODES; i++)); do
		cl_write_ini "$i"
	done
	log "dir $CL_DIR, port base $CL_BASE"
}

raft_port() { echo $((CL_BASE + $1)); }
api_port() { echo $((CL_BASE + 10 + $1)); }
api_url() { echo "http://127.0.0.1:$(api_port "$1")"; }
peer_addr() { echo "127.0.0.1:$(raft_port "$1")"; }
ini() { echo "$CL_DIR/node$1.ini"; }
data_dir() { echo "$CL_DIR/data$1"; }
node_log() { echo "$CL_DIR/node$1.log"; }

# cl_peers: the initial voters node1..CL_NODES
cl_peers() {
	local i out=
	for ((i = 1; i <= CL_NODES; i++)); do
		out+="${out:+, }node$i=$(peer_addr "$i")"
	done
	echo "$out"
}

# cl_write_ini I [STATE]: node I's ini (STATE new|existing, default new).
# Extra [raft] lines come from $CL_RAFT_EXTRA (one "key = value" a line).
cl_write_ini() {
	local i=$1 state=${2:-new}
	{
		echo "[cluster]"
		echo "name = it"
		echo "[node]"
		echo "name = node$i"
		echo "data_dir = $(data_dir "$i")"
		echo "log_level = info"
		echo "[raft]"
		echo "listen = $(peer_addr "$i")"
		if [[ $state == existing ]]; then
			echo "peers = $(cl_peers)"
			echo "initial_cluster_state = existing"
		else
			echo "peers = $(cl_peers)"
		fi
		if [[ -n $CL_RAFT_EXTRA ]]; then
			printf '%s\n' "$CL_RAFT_EXTRA"
		fi
		echo "[api]"
		echo "listen = 127.0.0.1:$(api_port "$i")"
		echo "token_file = $CL_DIR/token"
	} >"$(ini "$i")"
}

node_pid() { echo "${CL_PID[$1]:-}"; }
node_running() {
	local p=${CL_PID[$1]:-}
	[[ -n $p ]] && pid_alive "$p"
}

# node_start I [ARGS...]: start node I in the background (log appended).
node_start() {
	local i=$1
	shift
	if [[ -n ${CL_PID[$i]:-} ]] && pid_alive "${CL_PID[$i]}"; then
		fail "node$i already running (pid ${CL_PID[$i]})"
	fi
	# still recorded but gone: it exited without the test asking for it
	if [[ -n ${CL_PID[$i]:-} ]]; then
		daemons_exited CL_PID node_log ||
			fail "node$i died before the test started it again"
	fi
	echo "===== $(date +%T.%3N) start node$i $* =====" >>"$(node_log "$i")"
	"$PGWARDEN" run -c "$(ini "$i")" "$@" >>"$(node_log "$i")" 2>&1 &
	CL_PID[$i]=$!
	log "started node$i pid ${CL_PID[$i]} $*"
}

# reap I: wait for node I's process (which has exited) and forget it.
# Sets NODE_RC to its exit status (128+signal when killed).
NODE_RC=
reap() {
	local i=$1 p=${CL_PID[$1]:-}
	NODE_RC=
	[[ -n $p ]] || return 0
	NODE_RC=0
	wait "$p" 2>/dev/null || NODE_RC=$?
	unset "CL_PID[$i]"
}

# node_wait_exit I [SECONDS]: wait (bounded) for node I to exit by itself;
# returns 1 if it is still running after SECONDS (default 10).
node_wait_exit() {
	local i=$1 secs=${2:-10} p=${CL_PID[$1]:-} n
	[[ -n $p ]] || return 0
	for ((n = 0; n < secs * 10; n++)); do
		pid_alive "$p" || {
			reap "$i"
			return 0
		}
		sleep 0.1
	done
	return 1
}

# node_stop I: SIGTERM, then SIGKILL after 10 s. Fails the test if the
# node needed SIGKILL or exited non-zero.
node_stop() {
	local i=$1 p=${CL_PID[$1]:-}
	[[ -n $p ]] || fail "node_stop: node$i not started"
	kill -TERM "$p" 2>/dev/null || true
	if ! node_wait_exit "$i" 10; then
		kill -KILL "$p" 2>/dev/null || true
		reap "$i"
		fail "node$i did not exit within 10 s of SIGTERM"
	fi
	log "stopped node$i (exit $NODE_RC)"
	[[ $NODE_RC == 0 ]] || fail "node$i exited with status $NODE_RC after SIGTERM"
}

# node_kill I: SIGKILL and reap.
node_kill() {
	local i=$1 p=${CL_PID[$1]:-}
	[[ -n $p ]] || fail "node_kill: node$i not started"
	kill -KILL "$p" 2>/dev/null || true
	reap "$i"
	log "killed node$i (pid $p)"
}

cl_start_all() {
	local i
	for ((i = 1; i <= CL_NODES; i++)); do node_start "$i"; done
}

# cl_cleanup (the EXIT trap): a node the test did not stop or kill
# through the functions above must still be running, and no node log may
# hold a sanitizer report; either fails a test that passed so far (and is
# reported on a failing one). With PGW_TEST_STOP_AT_END=1 the nodes of a
# passing test are then stopped with SIGTERM and must exit 0 (a sanitized
# daemon's leak check runs at exit). Then every process is killed by pid.
cl_cleanup() {
	local rc=$? i p
	trap - EXIT
	set +eE
	trap - ERR
	if ! daemons_exited CL_PID node_log && ((rc == 0)); then rc=1; fi
	# PGW_TEST_STOP_AT_END=1 (tests/run-all's sanitized run): a test that
	# passed stops its nodes with SIGTERM, so that their exit checks run
	if ((rc == 0)) && [[ ${PGW_TEST_STOP_AT_END:-0} == 1 ]] &&
		! daemons_stop_all CL_PID node_log; then rc=1; fi
	if [[ -n $CL_DIR && -d $CL_DIR ]] &&
		! sanitizer_reports "$CL_DIR"/node*.log && ((rc == 0)); then rc=1; fi
	for i in "${!CL_PID[@]}"; do
		p=${CL_PID[$i]}
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	for p in "${CL_EXTRA_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ -n $CL_DIR && -d $CL_DIR ]]; then
		if ((rc != 0)); then
			local f
			for f in "$CL_DIR"/node*.log; do
				[[ -f $f ]] || continue
				echo "----- $f (last 150 lines) -----" >&2
				tail -n 150 "$f" >&2
			done
		fi
		if [[ ${PGW_KEEP:-0} == 1 ]]; then
			echo "kept $CL_DIR" >&2
		else
			rm -rf "$CL_DIR"
		fi
	fi
	if ((rc == 0)); then log "PASS"; else log "FAILED (status $rc)"; fi
	exit "$rc"
}

# wait_until [-t SECONDS] CMD...: run CMD every 0.1 s until it succeeds;
# returns 1 after SECONDS (default $WAIT_TIMEOUT). Bounded by both a count
# and the clock.
wait_until() {
	local secs=$WAIT_TIMEOUT
	if [[ $1 == -t ]]; then
		secs=$2
		shift 2
	fi
	local max n end
	max=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 10 + 1 }')
	end=$(($(date +%s%N) + ${secs%.*} * 1000000000 + 1000000000))
	for ((n = 0; n < max; n++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		(($(date +%s%N) < end)) || break
		sleep 0.1
	done
	return 1
}

# status I [FIELD]: node I's /status (or one jq field of it)
status() {
	local out
	out=$(curl -sS --max-time 2 "$(api_url "$1")/status") || return 1
	if [[ $# -ge 2 ]]; then
		jq -er "$2" <<<"$out"
	else
		echo "$out"
	fi
}

# leader_name: the leader's name, if exactly one running node says it is
# the leader and every running node agrees on it.
leader_name() {
	local i l= name leader
	for i in "${!CL_PID[@]}"; do
		node_running "$i" || continue
		leader=$(status "$i" .leader 2>/dev/null) || return 1
		[[ -n $leader && $leader != null ]] || return 1
		if [[ $(status "$i" .is_leader) == true ]]; then
			name=$(status "$i" .name)
			[[ -z $l || $l == "$name" ]] || return 1
			l=$name
		fi
		[[ -z $l || $l == "$leader" ]] || return 1
		l=$leader
	done
	[[ -n $l ]] || return 1
	echo "$l"
}

# leader_idx: the leader's node index
leader_idx() {
	local n
	n=$(leader_name) || return 1
	echo "${n#node}"
}

# cl_wait_leader [SECONDS]: wait (polling every 0.1 s, bounded) until the
# running nodes agree on a leader that says so itself; prints its index.
cl_wait_leader() {
	local secs=${1:-$WAIT_TIMEOUT} n name end
	end=$(($(date +%s%N) + secs * 1000000000))
	for ((n = 0; n < secs * 10 + 1; n++)); do
		if name=$(leader_name 2>/dev/null); then
			echo "${name#node}"
			return 0
		fi
		(($(date +%s%N) < end)) || break
		sleep 0.1
	done
	fail "no agreed leader within $secs s"
}

# endpoints_csv [I...]: API urls of the given nodes (default 1..CL_NODES)
endpoints_csv() {
	local i out= list=("$@")
	((${#list[@]})) || list=($(seq 1 "$CL_NODES"))
	for i in "${list[@]}"; do out+="${out:+,}$(api_url "$i")"; done
	echo "$out"
}

# pgw ARGS...: the CLI against every node, with the token
pgw() {
	"$PGWARDEN" -e "${PGW_ENDPOINTS:-$(endpoints_csv)}" --token-file "$CL_DIR/token" "$@"
}
# pgw_at I ARGS...: the CLI against node I only
pgw_at() {
	local i=$1
	shift
	"$PGWARDEN" -e "$(api_url "$i")" --token-file "$CL_DIR/token" "$@"
}

# same_fsm I J...: all given running nodes report the same applied_index
# and fsm_hash (from /status) and the same non-zero applied index.
same_fsm() {
	local i ref= cur
	for i in "$@"; do
		cur=$(status "$i" '"\(.applied_index) \(.fsm_hash)"') || return 1
		[[ -z $ref || $ref == "$cur" ]] || return 1
		ref=$cur
	done
	[[ -n $ref ]]
}

# fsm_of I: "applied_index fsm_hash" of node I
fsm_of() { status "$1" '"\(.applied_index) \(.fsm_hash)"'; }

# assert_eq EXPECTED ACTUAL MSG
assert_eq() {
	[[ $1 == "$2" ]] || fail "$3: expected '$1', got '$2'"
}

# expect_fail OUTVAR CMD...: CMD must exit non-zero; its exit status goes
# to EXPECT_RC and stderr+stdout to the variable OUTVAR.
EXPECT_RC=
expect_fail() {
	local __var=$1 __out
	shift
	EXPECT_RC=0
	__out=$("$@" 2>&1) || EXPECT_RC=$?
	printf -v "$__var" '%s' "$__out"
	((EXPECT_RC != 0)) || fail "expected failure from: $* (got exit 0: $__out)"
}

# http_code METHOD URL [CURL ARGS...]: prints the status code only
http_code() {
	local m=$1 u=$2
	shift 2
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$m" "$@" "$u"
}

# cl_ports_free: fail early if another process holds one of our ports
cl_ports_free() {
	local p
	for ((p = CL_BASE; p < CL_BASE + 30; p++)); do
		if port_bound "$p"; then fail "port $p already in use"; fi
	done
}
