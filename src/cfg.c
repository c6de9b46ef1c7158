/* src/cfg.c: to be written */
typedef int pgw_placeholder_t;
