/*
 * fuzz_calendar.c - calendar expressions and cron lines come from config
 * files and job.add requests: parse them, and for what parses, ask for a
 * few elapse times (the search must end and move forward) and parse the
 * normalised form again (it must mean the same calendar).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/calendar.h"
#include "common/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const char *s, bool cron) {
	struct calendar *c, *again;
	char *cause = NULL;
	int r = cron ? calendar_parse_cron(s, "UTC", &c, &cause) : calendar_parse(s, NULL, &c, &cause);
	if (r < 0) {
		free(cause);
		return;
	}
	int64_t t = 1767225600LL * 1000000, next, other;
	bool reparse = !cron && calendar_parse(calendar_normalized(c), NULL, &again, &cause) == 0;
	if (!cron && !reparse)
		abort(); /* the normalised form must parse */
	for (int i = 0; i < 3; i++) {
		if (calendar_next(c, t, &next) < 0)
			break;
		if (next <= t)
			abort(); /* elapses move forward */
		if (reparse && (calendar_next(again, t, &other) < 0 || other != next))
			abort(); /* and the normalised form elapses at the same times */
		t = next;
	}
	if (reparse)
		calendar_free(again);
	calendar_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size > 256)
		return 0;
	char *s = xstrndup((const char *)data, size);
	exercise(s, false);
	exercise(s, true);
	free(s);
	return 0;
}
