/*
 * added.h - the jobs added over the control socket (job.add), as the
 * engine keeps them: each one's JSON as it was sent and the uid that added
 * it, in memory and in the store's "defs" database, so they come back at
 * every start and reload. The configuration code parses them (with the
 * same rules and messages as a file's jobs); this module only keeps them.
 */
#ifndef MCPJOB_ADDED_H
#define MCPJOB_ADDED_H

#include <jansson.h>
#include <stddef.h>

#include "daemon/config.h"

struct store;
struct added;

/* The added jobs saved in @st. NULL with *@cause when they cannot be read. */
struct added *added_load(struct store *st, char **cause);
void added_free(struct added *a);

/*
 * added_load_opts() - point @lo's socket_jobs at the jobs, with @extra
 * (may be NULL) in place of (or besides) the one of its id. Valid until
 * the next call or a change.
 */
void added_load_opts(struct added *a, const char *extra_id, json_t *extra, int extra_uid,
                     struct config_load_opts *lo);

/* The uid that added @id, or -1 when no job of that id was added. */
int added_owner(const struct added *a, const char *id);
/* How many jobs @uid added. */
size_t added_count(const struct added *a, int uid);

/* Save (or replace) @id as @job (a reference is taken) added by @uid. */
int added_put(struct added *a, const char *id, json_t *job, int uid, char **cause);
int added_remove(struct added *a, const char *id, char **cause);

#endif
