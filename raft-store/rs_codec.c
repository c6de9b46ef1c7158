/* raft-store/rs_codec.c: to be written */
typedef int pgw_placeholder_t;
