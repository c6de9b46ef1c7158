/* raft-store/rs_fsm.c: to be written */
typedef int pgw_placeholder_t;
