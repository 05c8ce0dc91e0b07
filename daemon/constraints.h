/*
 * constraints.h - the constraint gate: may a job run on this device now?
 *
 * Pure functions of a job's constraints and the device state, so the engine
 * can evaluate only the jobs a change affects, and say why one waits.
 */
#ifndef MCPJOB_CONSTRAINTS_H
#define MCPJOB_CONSTRAINTS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/job.h"
#include "platform/platform.h"

/*
 * constraints_check() - true when every constraint holds. Otherwise false,
 * and @reason (if not NULL) gets the first unmet one as people read it:
 * "waiting for unmetered network (now: metered)". A constraint on an
 * unknown value holds when @unknown_allows.
 */
bool constraints_check(const struct job_constraints *c, const struct device_state *d,
                       bool unknown_allows, char *reason, size_t len);

/* True when @c constrains anything at all. */
bool constraints_any(const struct job_constraints *c);

/* The device values @c depends on (DEV_WATCH_*), for platform_watch(). */
unsigned constraints_watch_mask(const struct job_constraints *c);

/* The constraints as the protocol sends them. */
json_t *constraints_to_json(const struct job_constraints *c);

#endif
