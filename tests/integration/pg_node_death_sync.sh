#!/usr/bin/env bash
# pg_node_death with [ha] synchronous_mode = on: the same machine death
# under a write load, where every acknowledged row must be on the new
# primary (a commit is acknowledged only once a synchronous standby has
# it, and failover goes to such a standby).
export PGW_NODE_DEATH_SYNC=1 PGW_NODE_DEATH_BASE=${PGW_NODE_DEATH_BASE:-28950}
source "$(dirname "${BASH_SOURCE[0]}")/pg_node_death.sh"
