/* src/http_server.c: to be written */
typedef int pgw_placeholder_t;
