# tests/lib/pgcluster.sh - helpers for pgwarden system tests with real
# PostgreSQL 15: three `pgwarden run` processes on 127.0.0.1, each running
# its own PostgreSQL as the postgres user, one temp dir per test.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
#   pg_init 28000            # per-test block of ports in 28000..28999
#                            # (100 each; the last 50 of pg_bootstrap_failure's
#                            # block go to pg_node_death_sync)
#   pg_start_all; pg_wait_healthy
#   sql_rw "INSERT ..."; sql_at 2 "SELECT ..."
#
# Ports of node I (1..3): raft BASE+I, api BASE+10+I, PostgreSQL BASE+20+I;
# BASE+30.. are free for the test (haproxy). Nodes run as postgres through
#   cd / && setsid setpriv --reuid=postgres ... pgwarden run -c FILE
# so the recorded pid is the node's own pid and its process group holds
# the node's PostgreSQL: `kill -KILL -- -PID` kills the node's "machine".
# Everything a test starts is recorded by pid and stopped by pid on exit,
# and so is every postmaster whose postmaster.pid lies in the temp dir.
# On failure the node logs and PostgreSQL logs are printed. PGW_KEEP=1
# keeps the temp dir. Every wait is bounded (wait_until, -t SECONDS).
#
# Needs root (to become postgres), psql, jq, curl, ss. Exits 77 (skip)
# when there is no postgres user or no PostgreSQL 15.

set -eEuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
trap 'pg_rc=$?; printf "[%s %s] command failed (status %s) at %s:%s: %s\\n" "$(date +%T.%3N)" "$PG_NAME" "$pg_rc" "${BASH_SOURCE[0]##*/}" "$LINENO" "$BASH_COMMAND" >&2' ERR

: "${PGWARDEN:?PGWARDEN must name the pgwarden binary}"
PGWARDEN=$(readlink -f "$PGWARDEN")
WAIT_TIMEOUT=${WAIT_TIMEOUT:-30}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=postgres
PG_HOME=/var/lib/postgresql
PG_CLUSTER=pgit
PG_NAME=$(basename "$0" .sh)

declare -A PG_PID=()          # node index -> pid of its `pgwarden run`
declare -a PG_GROUPS=()       # every node pid ever started (= its pgid)
declare -a PG_EXTRA_PIDS=()   # other background processes of the test
declare -A PG_INI_EXTRA=()    # node index -> extra ini text (appended)
PG_DIR=
PG_BASE=
PG_NODES=3
PG_WITNESS=${PG_WITNESS:-0} # 1: node PG_NODES+1 is a store-only Raft voter

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$PG_NAME" "$*" >&2; }
fail() {
	printf '[%s %s] FAIL: %s\n' "$(date +%T.%3N)" "$PG_NAME" "$*" >&2
	exit 1
}
skip() {
	printf '[%s %s] SKIP: %s\n' "$(date +%T.%3N)" "$PG_NAME" "$*" >&2
	exit 77
}

raft_port() { echo $((PG_BASE + $1)); }
api_port() { echo $((PG_BASE + 10 + $1)); }
pg_port() { echo $((PG_BASE + 20 + $1)); }
api_url() { echo "http://127.0.0.1:$(api_port "$1")"; }
ini() { echo "$PG_DIR/node$1.ini"; }
node_dir() { echo "$PG_DIR/node$1"; }    # [node] data_dir
pg_data() { echo "$PG_DIR/pg$1"; }       # [postgresql] data_dir
node_log() { echo "$PG_DIR/node$1.log"; }
pg_log() { echo "$PG_DIR/node$1/postgresql.log"; }
as_pg() { (cd / && setpriv --reuid=$PG_USER --regid=$PG_USER --init-groups env HOME=$PG_HOME "$@"); }

# pg_init BASE: checks, temp dir owned by postgres with the binary, the
# secrets, a pgpass file for psql and the three ini files; installs the
# EXIT trap. Call pg_write_ini I again after changing PG_INI_EXTRA[I].
pg_init() {
	PG_BASE=${PGW_PG_PORT_BASE:-$1}
	if ((PG_BASE < 28000 || PG_BASE > 28950 || PG_BASE % 50 != 0)); then
		echo "port base $PG_BASE outside 28000..28950 (a block of 50 or 100)" >&2
		exit 2
	fi
	PG_BASE=$((PG_BASE + PGW_TEST_PORT_SHIFT))
	[[ $(id -u) == 0 ]] || skip "needs root (to run the nodes as postgres)"
	id "$PG_USER" >/dev/null 2>&1 || skip "no $PG_USER user"
	[[ -x $PG_BIN/postgres ]] || skip "no PostgreSQL 15 in $PG_BIN"
	local t
	for t in psql jq curl ss setpriv setsid; do
		command -v "$t" >/dev/null || skip "$t not installed"
	done
	PG_DIR=$(mktemp -d "/tmp/pgw-$PG_NAME.XXXXXX")
	trap pg_cleanup EXIT
	trap 'exit 130' INT TERM
	install -d -m 0700 -o "$PG_USER" -g "$PG_USER" "$PG_DIR" "$PG_DIR/bin" "$PG_DIR/run"
	chown "$PG_USER:$PG_USER" "$PG_DIR"
	install -m 0755 "$PGWARDEN" "$PG_DIR/bin/pgwarden"
	printf 'pg-token-%s\n' "$RANDOM$RANDOM$RANDOM" >"$PG_DIR/token"
	printf 'su-%s\n' "$RANDOM$RANDOM$RANDOM" >"$PG_DIR/superuser.pw"
	printf 'repl-%s\n' "$RANDOM$RANDOM$RANDOM" >"$PG_DIR/replicator.pw"
	for t in token superuser.pw replicator.pw; do
		chown "$PG_USER:$PG_USER" "$PG_DIR/$t"
		chmod 0600 "$PG_DIR/$t"
	done
	# psql (run by root) reads this one
	printf '127.0.0.1:*:*:postgres:%s\n' "$(cat "$PG_DIR/superuser.pw")" >"$PG_DIR/pgpass"
	chmod 0600 "$PG_DIR/pgpass"
	export PGPASSFILE=$PG_DIR/pgpass PGCONNECT_TIMEOUT=3
	local i
	for ((i = 1; i <= PG_NODES + PG_WITNESS; i++)); do pg_write_ini "$i"; done
	log "dir $PG_DIR, port base $PG_BASE"
}

# Where node I runs, listens and what it trusts: loopback here; tests/lib/
# failover.sh redefines these for its network namespaces.
node_addr() { echo 127.0.0.1; }
node_netns() { :; }   # the network namespace node I runs in ("" here)
node_sock_dir() { echo "$PG_DIR/run"; }
pg_hba_lines() {
	echo "host all all 127.0.0.1/32 scram-sha-256"
	echo "         host replication replicator 127.0.0.1/32 scram-sha-256"
}

pg_peers() {
	local i out=
	for ((i = 1; i <= PG_NODES + PG_WITNESS; i++)); do
		out+="${out:+, }node$i=$(node_addr "$i"):$(raft_port "$i")"
	done
	echo "$out"
}

# pg_write_ini I: node I's ini; PG_INI_EXTRA[I] is appended verbatim. Node
# PG_NODES+1 (with PG_WITNESS=1) is a store-only witness: no [postgresql].
pg_write_ini() {
	local i=$1 a
	a=$(node_addr "$i")
	{
		cat <<INI
; pgwarden system test $PG_NAME, node $i at $a (tests/lib/pgcluster.sh)
[cluster]
name = $PG_CLUSTER
[node]
name = node$i
data_dir = $(node_dir "$i")
log_level = info
[raft]
listen = $a:$(raft_port "$i")
peers = $(pg_peers)
[api]
listen = $a:$(api_port "$i")
token_file = $PG_DIR/token
INI
		((i > PG_NODES)) || cat <<INI
[postgresql]
data_dir = $(pg_data "$i")
listen = $a:$(pg_port "$i")
socket_dir = $(node_sock_dir "$i")
superuser_password_file = $PG_DIR/superuser.pw
replication_password_file = $PG_DIR/replicator.pw
[postgresql.parameters]
shared_buffers = 16MB
max_connections = 30
wal_keep_size = 128MB
[bootstrap]
pg_hba = $(pg_hba_lines)
${PG_INI_EXTRA[$i]:-}
INI
	} >"$(ini "$i")"
	chown "$PG_USER:$PG_USER" "$(ini "$i")"
	[[ -d $(node_sock_dir "$i") ]] || install -d -m 0700 -o "$PG_USER" -g "$PG_USER" "$(node_sock_dir "$i")"
}

# ---------------------------------------------------------------- processes

node_pid() { echo "${PG_PID[$1]:-}"; }
node_running() { pid_alive "${PG_PID[$1]:-}"; }

# node_start I: start node I as postgres in its own session (log appended)
node_start() {
	local i=$1
	if node_running "$i"; then fail "node$i already running (pid ${PG_PID[$i]})"; fi
	# still recorded but gone: it exited without the test asking for it
	if [[ -n ${PG_PID[$i]:-} ]]; then
		daemons_exited PG_PID node_log ||
			fail "node$i died before the test started it again"
	fi
	echo "===== $(date +%T.%3N) start node$i =====" >>"$(node_log "$i")"
	# setsid does not fork (a background job of a non-interactive shell
	# is no group leader) and setpriv execs: $! is pgwarden's own pid.
	# PGW_CORE=1 (debugging): core dumps in the temp dir (core_pattern
	# "core" is relative to the cwd, which must be writable by postgres)
	local cwd=/
	if [[ ${PGW_CORE:-0} == 1 ]]; then
		cwd=$PG_DIR
		ulimit -c unlimited
	fi
	# ip netns exec does not fork either
	local ns pre=()
	ns=$(node_netns "$i")
	[[ -z $ns ]] || pre=(ip netns exec "$ns")
	(cd "$cwd" && exec "${pre[@]}" setsid setpriv --reuid=$PG_USER --regid=$PG_USER --init-groups \
		env HOME=$PG_HOME "$PG_DIR/bin/pgwarden" run -c "$(ini "$i")" \
		>>"$(node_log "$i")" 2>&1 </dev/null) &
	PG_PID[$i]=$!
	PG_GROUPS+=("$!")
	log "started node$i pid ${PG_PID[$i]}${ns:+ in $ns}"
}

pg_start_all() {
	local i
	for ((i = 1; i <= PG_NODES + PG_WITNESS; i++)); do node_start "$i"; done
}

# reap I: wait for node I's exited process; NODE_RC = its exit status
NODE_RC=
reap() {
	local i=$1 p=${PG_PID[$1]:-}
	NODE_RC=
	[[ -n $p ]] || return 0
	NODE_RC=0
	wait "$p" 2>/dev/null || NODE_RC=$?
	unset "PG_PID[$i]"
}

# node_wait_exit I [SECONDS]: bounded wait for node I to exit by itself
node_wait_exit() {
	local i=$1 secs=${2:-15} p=${PG_PID[$1]:-}
	[[ -n $p ]] || return 0
	if wait_until -t "$secs" not pid_alive "$p"; then
		reap "$i"
		return 0
	fi
	return 1
}

# node_stop I: SIGTERM; the node must exit 0 within 20 s.
node_stop() {
	local i=$1 p=${PG_PID[$1]:-}
	[[ -n $p ]] || fail "node_stop: node$i not started"
	kill -TERM "$p" 2>/dev/null || true
	if ! node_wait_exit "$i" 20; then
		kill -KILL -- "-$p" 2>/dev/null || true
		reap "$i"
		fail "node$i did not exit within 20 s of SIGTERM"
	fi
	log "stopped node$i (exit $NODE_RC)"
	[[ $NODE_RC == 0 ]] || fail "node$i exited with status $NODE_RC after SIGTERM"
}

# node_kill_daemon I: SIGKILL pgwarden only (its PostgreSQL survives)
node_kill_daemon() {
	local i=$1 p=${PG_PID[$1]:-}
	[[ -n $p ]] || fail "node_kill_daemon: node$i not started"
	kill -KILL "$p"
	reap "$i"
	log "SIGKILLed pgwarden of node$i (pid $p)"
}

# node_kill_machine I: the death of node I's machine: SIGKILL, in one
# kill(1) call, to pgwarden's process group (pgwarden and its postmaster)
# and to every postgres process working in node I's data dir (PostgreSQL's
# children make themselves process-group leaders, so the group alone would
# leave them to notice the postmaster's death on their own), and to the
# node's fencer (it runs in a session of its own).
node_kill_machine() {
	local i=$1 p=${PG_PID[$1]:-} d q targets=()
	[[ -n $p ]] || fail "node_kill_machine: node$i not started"
	d=$(pg_data "$i")
	for q in $(pgrep -x postgres || true); do
		[[ /proc/$q/cwd -ef $d ]] 2>/dev/null && targets+=("$q")
	done
	# shellcheck disable=SC2207
	targets+=($(fencers_of "$i"))
	kill -KILL -- "-$p" "${targets[@]}" 2>/dev/null || true
	reap "$i"
	log "SIGKILLed node$i: process group $p and ${#targets[@]} postgres and fencer processes"
}

# postmaster_pid I: the pid in node I's postmaster.pid if that process
# runs with the data dir as its cwd (a postmaster of this node); else fails
postmaster_pid() {
	local d f pid
	d=$(pg_data "$1")
	f=$d/postmaster.pid
	[[ -f $f ]] || return 1
	pid=$(head -n 1 "$f" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	pid_alive "$pid" || return 1
	[[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$d" ]] || return 1
	echo "$pid"
}

# postmasters_of I: pids of every running postgres whose cwd is node I's
# data dir and whose parent is not such a postgres (the postmasters)
postmasters_of() {
	local d p pp st out=()
	d=$(pg_data "$1")
	[[ -d $d ]] || return 0
	for p in $(pgrep -x postgres || true); do
		# -ef: same inode, no subprocess per pid
		[[ /proc/$p/cwd -ef $d ]] || continue
		st=$(<"/proc/$p/stat") 2>/dev/null || continue
		st=${st##*) }
		read -r _ pp _ <<<"$st"
		[[ /proc/$pp/cwd -ef $d && $(<"/proc/$pp/comm") == postgres ]] 2>/dev/null && continue
		out+=("$p")
	done
	echo "${out[@]}"
}

# fencers_of I: pids of node I's fencer processes (`pgwarden fencer
# --data-dir DATA`), whoever their parent is now
fencers_of() {
	local d p out=()
	d=$(pg_data "$1")
	for p in $(pgrep -x pgw-fencer || true); do
		# (a fencer may exit in between: the redirection fails quietly)
		{ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qxF -- "$d" && out+=("$p")
	done
	echo "${out[@]}"
}

# no_postmaster I: no postgres process runs in node I's data dir
no_postmaster() { [[ -z $(postmasters_of "$1") ]]; }

# pg_cleanup (the EXIT trap): a node the test did not stop or kill
# through the functions above must still be running, and no node log may
# hold a sanitizer report; either fails a test that passed so far (and is
# reported on a failing one). With PGW_TEST_STOP_AT_END=1 the nodes of a
# passing test are then stopped with SIGTERM and must exit 0 (a sanitized
# daemon's leak check runs at exit). Then every process is stopped by pid.
pg_cleanup() {
	local rc=$? i p d pid
	trap - EXIT
	set +eE
	trap - ERR
	if ((rc != 77)); then
		if ! daemons_exited PG_PID node_log && ((rc == 0)); then rc=1; fi
		# PGW_TEST_STOP_AT_END=1 (tests/run-all's sanitized run): a test
		# that passed stops its nodes with SIGTERM, so that their exit
		# checks run
		if ((rc == 0)) && [[ ${PGW_TEST_STOP_AT_END:-0} == 1 ]] &&
			! daemons_stop_all PG_PID node_log; then rc=1; fi
		if [[ -n $PG_DIR && -d $PG_DIR ]] &&
			! sanitizer_reports "$PG_DIR"/node*.log && ((rc == 0)); then rc=1; fi
	fi
	for p in "${PG_EXTRA_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# pgwarden first (by pid), so that nothing restarts PostgreSQL; then
	# every postmaster in the temp dir gets SIGQUIT (immediate shutdown,
	# which also removes its SysV segment), and what is left after 5 s
	# (any process working in a data dir) SIGKILL.
	for i in "${!PG_PID[@]}"; do
		p=${PG_PID[$i]}
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# the fencers pgwarden started (an armed one would otherwise outlive
	# its pgwarden until its deadline)
	if [[ -n $PG_DIR && -d $PG_DIR ]]; then
		for ((i = 1; i <= PG_NODES; i++)); do
			for pid in $(fencers_of "$i"); do kill -KILL "$pid" 2>/dev/null; done
		done
	fi
	if [[ -n $PG_DIR && -d $PG_DIR ]]; then
		for ((i = 1; i <= PG_NODES; i++)); do
			for pid in $(postmasters_of "$i"); do
				kill -QUIT "$pid" 2>/dev/null
			done
		done
		all_stopped() {
			local j
			for ((j = 1; j <= PG_NODES; j++)); do no_postmaster "$j" || return 1; done
		}
		if ! wait_until -t 5 all_stopped; then
			for ((i = 1; i <= PG_NODES; i++)); do
				d=$(pg_data "$i")
				for pid in $(pgrep -x postgres); do
					if [[ /proc/$pid/cwd -ef $d ]]; then
						log "SIGKILL to postgres $pid of node$i"
						kill -KILL "$pid" 2>/dev/null
					fi
				done
			done
		fi
	fi
	if [[ -n $PG_DIR && -d $PG_DIR ]]; then
		if ((rc != 0 && rc != 77)); then
			local f
			for ((i = 1; i <= PG_NODES; i++)); do
				for f in "$(node_log "$i")" "$(pg_log "$i")"; do
					[[ -f $f ]] || continue
					# repeated lines (a flow retried every loop) once, with
					# a count and the first time stamp; the start and the
					# end of the story
					echo "----- $f (repeats folded; first 80 and last 120 lines) -----" >&2
					uniq -c -f 1 "$f" |
						awk '{ n = $1; sub(/^ *[0-9]+ /, ""); print (n > 1 ? "[x" n "] " : "") $0 }' |
						awk '{ l[NR] = $0 } END {
							for (k = 1; k <= NR; k++) {
								if (k <= 80 || k > NR - 120) print l[k]
								else if (k == 81) print "[... " NR - 200 " lines ...]"
							} }' >&2
				done
			done
		fi
		if [[ ${PGW_KEEP:-0} == 1 ]]; then
			echo "kept $PG_DIR" >&2
		else
			rm -rf "$PG_DIR"
		fi
	fi
	if ((rc == 0)); then
		log "PASS"
	elif ((rc == 77)); then
		:
	else
		log "FAILED (status $rc)"
	fi
	exit "$rc"
}

# wait_until [-t SECONDS] CMD...: run CMD every 0.1 s until it succeeds;
# returns 1 after SECONDS (default $WAIT_TIMEOUT).
wait_until() {
	local secs=$WAIT_TIMEOUT
	if [[ $1 == -t ]]; then
		secs=$2
		shift 2
	fi
	local end
	end=$(($(date +%s%N) + $(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }') * 1000000))
	while :; do
		if "$@" >/dev/null 2>&1; then return 0; fi
		(($(date +%s%N) < end)) || return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------- cluster view

endpoints_csv() {
	local i out=
	for ((i = 1; i <= PG_NODES; i++)); do out+="${out:+,}$(api_url "$i")"; done
	echo "$out"
}

# pgw ARGS...: the CLI against every node, with the token
pgw() { "$PG_DIR/bin/pgwarden" -e "$(endpoints_csv)" --token-file "$PG_DIR/token" "$@"; }

# list_json: `pgwarden list -o json` (the members array)
list_json() { pgw --timeout 3 list -o json; }

# member FIELD NAME: one field of member NAME from list
member_field() {
	list_json | jq -er --arg n "$2" ".[] | select(.name == \$n) | .$1"
}

# healthy: exactly one primary (running) and PG_NODES-1 streaming replicas
healthy() {
	local js
	js=$(list_json) || return 1
	jq -e --argjson n "$PG_NODES" '
		length == $n and
		([.[] | select(.role == "primary" and .state == "running")] | length) == 1 and
		([.[] | select(.role == "replica" and .state == "streaming")] | length) == $n - 1' \
		<<<"$js" >/dev/null
}

# pg_wait_healthy [SECONDS]: wait for a healthy cluster (default 60 s)
pg_wait_healthy() {
	local secs=${1:-60} t0=$SECONDS
	wait_until -t "$secs" healthy || {
		pgw list >&2 || true
		fail "no healthy cluster (1 primary running, $((PG_NODES - 1)) replicas streaming) within $secs s"
	}
	log "cluster healthy after $((SECONDS - t0)) s"
	pgw list >&2 || true
}

# primary_idx: index of the member that list shows as primary/running
primary_idx() {
	local n
	n=$(list_json | jq -er '[.[] | select(.role == "primary" and .state == "running")] | if length == 1 then .[0].name else error("not one primary") end') || return 1
	echo "${n#node}"
}

# leader_key: the value of /service/<cluster>/leader (empty if none)
leader_key() { pgw --timeout 3 get "/service/$PG_CLUSTER/leader" --print-value-only; }

# ---------------------------------------------------------------- PostgreSQL

# rw_conninfo: libpq multi-host string that reaches the writable node
rw_conninfo() {
	local i h= p=
	for ((i = 1; i <= PG_NODES; i++)); do
		h+="${h:+,}127.0.0.1"
		p+="${p:+,}$(pg_port "$i")"
	done
	echo "host=$h port=$p user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=3"
}

# sql_at I SQL: run SQL on node I's PostgreSQL, unaligned tuples only
sql_at() {
	psql -X -q -At -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$(pg_port "$1") user=postgres dbname=postgres connect_timeout=3" \
		-c "$2"
}

# sql_rw SQL: run SQL through the read-write multi-host string
sql_rw() { psql -X -q -At -v ON_ERROR_STOP=1 "$(rw_conninfo)" -c "$1"; }

# sql_eq I SQL EXPECTED: node I answers SQL with EXPECTED
sql_eq() { [[ $(sql_at "$1" "$2" 2>/dev/null) == "$3" ]]; }

# pg_sysid I: system identifier of node I's running PostgreSQL
pg_sysid() { sql_at "$1" "SELECT system_identifier FROM pg_control_system()"; }

# ---------------------------------------------------------------- assertions

assert_eq() {
	[[ $1 == "$2" ]] || fail "$3: expected '$1', got '$2'"
}

# http_code METHOD URL [CURL ARGS...]: prints the status code only
http_code() {
	local m=$1 u=$2
	shift 2
	if [[ $m == HEAD ]]; then
		curl -s -o /dev/null -w '%{http_code}' --max-time 5 -I "$@" "$u"
	else
		curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$m" "$@" "$u"
	fi
}

# pg_ports_free: fail early if another process holds one of our ports
pg_ports_free() {
	local p
	for ((p = PG_BASE; p < PG_BASE + 40; p++)); do
		if port_bound "$p"; then fail "port $p already in use"; fi
	done
}
