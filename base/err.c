#include "err.h"

const char *err_str(int code)
{
	switch (code) {
#define X(name, value, text)                                            \
	case value:                                                     \
		return text;
		ERR_TABLE(X)
#undef X
	default:
		return "unknown error";
	}
}

const char *err_name(int code)
{
	switch (code) {
#define X(name, value, text)                                            \
	case value:                                                     \
		return #name;
		ERR_TABLE(X)
#undef X
	default:
		return "ERR_UNKNOWN";
	}
}
