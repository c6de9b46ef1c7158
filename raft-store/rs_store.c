/* raft-store/rs_store.c: to be written */
typedef int pgw_placeholder_t;
