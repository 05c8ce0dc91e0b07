/*
 * config_check.h - check a loaded configuration against this host: what
 * mcpjobd --check-config can see before any job runs.
 *
 * config_load() checks the file's shape; this checks what the jobs will
 * meet: the users and groups they run as exist, each program (exec argv[0],
 * MCP server command) exists and its user may execute it, each cwd exists
 * and its user may enter it. A cleanup path that does not exist is only a
 * warning: it may be created later (by a package, by another job). Each
 * problem names the file and key path, as config_load()'s errors do:
 *   mcpjobd.json: jobs[3] (backup).action.exec.argv[0]: "/usr/local/bin/backup" does not exist ...
 * Permissions are judged from mode bits, owner and groups (not ACLs, not
 * the unit's sandbox).
 */
#ifndef MCPJOB_CONFIG_CHECK_H
#define MCPJOB_CONFIG_CHECK_H

#include "daemon/config.h"

/* Where a job came from: its file and key path ("jobs[2] (sync-data)"). */
struct config_check_where {
	const char *file;
	const char *label;
};

/*
 * config_check_host() - check @cfg's jobs (@jobs parallel to cfg->jobs) and
 * servers (@server_files parallel to cfg->servers) against this host.
 * Errors are appended to @errs, warnings to @warnings.
 */
void config_check_host(const struct config *cfg, const struct config_check_where *jobs,
                       const char *const *server_files, struct config_errors *errs,
                       struct config_errors *warnings);

#endif
