/*
 * tz.h - time zones without touching the process's TZ.
 *
 * Calendar schedules name zones ("Europe/Berlin"); a library linked into
 * apps must not setenv("TZ") to ask libc about them (process-wide state,
 * racy with other threads). So this module reads the zone's TZif file
 * (RFC 8536) from the system's zoneinfo directory itself, including the
 * POSIX TZ rule in its footer for times past the file's last transition,
 * and answers the two questions calendars ask: the UTC offset at an
 * instant, and the instant of a wall-clock time.
 *
 * Wall-clock times that do not exist (the hour skipped in spring) and
 * that happen twice (the hour repeated in autumn) follow what glibc's
 * mktime() does on the way to them, which is what systemd's calendar
 * code sees: a skipped time moves forward by the gap, a repeated time is
 * its first occurrence.
 */
#ifndef MCPJOB_TZ_H
#define MCPJOB_TZ_H

#include <stdbool.h>
#include <stdint.h>

struct tz_zone;

/*
 * tz_zone_load() - the zone @name: "UTC", an IANA name ("Europe/Berlin"),
 * or NULL for the local zone ($TZ as a zone name or a POSIX rule, else
 * /etc/localtime, else UTC). Returns 0, or -1 with *@cause saying why
 * ("unknown time zone \"Europe/Berln\"").
 * $MCPJOB_ZONEINFO replaces /usr/share/zoneinfo (tests).
 */
int tz_zone_load(const char *name, struct tz_zone **out, char **cause);
void tz_zone_free(struct tz_zone *z);
/* "Europe/Berlin", "UTC", or "local". */
const char *tz_zone_name(const struct tz_zone *z);
bool tz_zone_is_utc(const struct tz_zone *z);

/* UTC offset east of Greenwich, in seconds, at @t (seconds since the epoch). */
int32_t tz_offset_at(const struct tz_zone *z, int64_t t, bool *isdst, const char **abbr);

/*
 * tz_wall_to_utc() - the instant whose local time is @wall (a local time
 * written as seconds since the epoch, as if it were UTC), with the rules
 * for skipped and repeated times above.
 */
int64_t tz_wall_to_utc(const struct tz_zone *z, int64_t wall);

/* Civil dates: days since 1970-01-01 and back (proleptic Gregorian). */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
