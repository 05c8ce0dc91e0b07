/*
 * duration.h - "30s", "15m", "1h30m", "7d" <-> milliseconds.
 *
 * Units: ms, s, m (minutes), h, d, w; components add up ("1h30m"). A bare
 * number is refused (is "15" seconds or minutes?): the cause suggests a unit.
 */
#ifndef MCPJOB_DURATION_H
#define MCPJOB_DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * duration_parse() - parse @s into *@ms.
 * Returns 0, or -1 with *@cause set (caller frees) to a sentence such as
 * `"15x" is not a duration (try "15m")`.
 */
int duration_parse(const char *s, int64_t *ms, char **cause);

/* Shortest exact form: 5400000 -> "1h30m", 0 -> "0s". buf >= 32 bytes. */
char *duration_format(int64_t ms, char *buf, size_t len);

#endif
