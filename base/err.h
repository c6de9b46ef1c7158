/* base/err.h - the one project error enum.
 *
 * Every function that can fail returns 0 or a negative code from this enum.
 * Codes from libuv, libraft, SQLite and libpq are translated at the module
 * boundary. err_str() maps a code to a short, stable name.
 */
#ifndef PGW_ERR_H
#define PGW_ERR_H

#define ERR_TABLE(X)                                                    \
	X(ERR_OK, 0, "ok")                                              \
	X(ERR_NOMEM, -1, "out of memory")                               \
	X(ERR_INVAL, -2, "invalid argument")                            \
	X(ERR_IO, -3, "i/o error")                                      \
	X(ERR_TIMEOUT, -4, "timed out")                                 \
	X(ERR_NOTLEADER, -5, "not the raft leader")                     \
	X(ERR_NOTFOUND, -6, "not found")                                \
	X(ERR_CONFLICT, -7, "compare failed")                           \
	X(ERR_UNAVAILABLE, -8, "unavailable")                           \
	X(ERR_CORRUPT, -9, "malformed data")                            \
	X(ERR_PG, -10, "postgresql error")                              \
	X(ERR_RAFT, -11, "raft error")                                  \
	X(ERR_DB, -12, "sqlite error")                                  \
	X(ERR_AUTH, -13, "not authorized")                              \
	X(ERR_EXISTS, -14, "already exists")                            \
	X(ERR_SHUTDOWN, -15, "shutting down")                           \
	X(ERR_CANCELED, -16, "canceled")                                \
	X(ERR_TOOBIG, -17, "too large")

enum err_code {
#define X(name, value, text) name = (value),
	ERR_TABLE(X)
#undef X
};

/* Short human text for a code; never NULL, "unknown error" for others. */
const char *err_str(int code);

/* Stable identifier ("ERR_NOTLEADER") for a code, for JSON and logs. */
const char *err_name(int code);

#endif
