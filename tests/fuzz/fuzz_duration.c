/*
 * fuzz_duration.c - durations and RFC 3339 times come from config files and
 * requests: parse, format, parse again; round trips must agree.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *s = xstrndup((const char *)data, size);
	int64_t ms, again;
	char *cause = NULL, buf[64];
	if (duration_parse(s, &ms, &cause) == 0) {
		duration_format(ms, buf, sizeof buf);
		if (duration_parse(buf, &again, &cause) != 0 || again != ms)
			abort(); /* a formatted duration must parse back to itself */
	} else {
		free(cause);
	}
	char tbuf[TIME_RFC3339_LEN];
	if (time_parse_rfc3339(s, &ms) && ms > 0 && ms < 253402300799000LL) {
		time_format_rfc3339(ms, tbuf);
		if (!time_parse_rfc3339(tbuf, &again) || again != ms)
			abort();
	}
	free(s);
	return 0;
}
