/*
 * config.h - load and validate the configuration: one JSON file plus
 * jobs.d/NAME.json files beside it (see mcpjobd.json(5)).
 *
 * Every problem is reported, not just the first, each as one sentence that
 * names the file, for syntax errors line:column (from jansson), for a bad
 * value the key's path and the value, with a hint:
 *   examples/mcpjobd.json: jobs[2].interval: "15x" is not a duration (try "15m")
 * Unknown keys are errors (a typo must not silently drop a constraint).
 */
#ifndef MCPJOB_CONFIG_H
#define MCPJOB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <stdint.h>

#include "daemon/job.h"

struct mcp_server_def {
	char *name;          /* key in "mcpServers" */
	char **argv;         /* command followed by args, NULL-terminated */
	char **env;          /* "KEY=VALUE", NULL-terminated, may be NULL */
	char *cwd;           /* may be NULL */
	char *user;          /* run as; NULL = the configured default user */
	int64_t idle_timeout_ms; /* keep a started server this long; default 60 s */
};

/* Device-state settings for the platform providers ("device" object). */
struct device_settings {
	char **metered_interfaces;  /* fnmatch patterns; default wwan*, ppp*, usb* */
	double idle_load;           /* idle when loadavg(1 min) below this; default 0.5 */
	int storage_low_percent;    /* storage low below this free %; default 10 */
	char *power_supply_path;    /* default /sys/class/power_supply */
	bool unknown_allows;        /* a constraint on an unknown value holds; default true */
};

struct config {
	char *path;                  /* the main file */
	struct job_def **jobs;       /* in file order, main file first, then jobs.d sorted */
	size_t njobs;
	json_t *job_index;           /* private: job id -> position in jobs */
	struct mcp_server_def **servers;
	size_t nservers;
	int max_concurrent;          /* default 4 */
	char *admin_group;           /* default "mcpjob" */
	int max_connections_per_uid; /* default 32 */
	char *default_user;          /* jobs without "user"; NULL = the daemon's own user */
	int history_max_runs;        /* default 100 (per job, overridable) */
	int64_t history_max_age_ms;  /* default 30 days */
	int64_t catchup_spread_ms;   /* spread catch-up runs over this window; default 10 s */
	char **read_write_paths;     /* informational: paths cleanup jobs write */
	struct device_settings device;
	int durability;              /* enum store_durability: 0 batched (default), 1 strict */
	uint64_t store_max_size;     /* "store": {"max_size"}; 0 = no bound */
};

/* An accumulated list of error sentences. */
struct config_errors {
	char **msgs;
	size_t n;
};

/*
 * config_load() - read @path and the jobs.d/ folder beside it.
 * Returns 0 and *@out (free with config_free()), or -1 with every problem
 * appended to @errs (free with config_errors_clear()).
 * Duplicate job ids or server names across files are errors; an mcp job
 * naming an undeclared server is an error.
 */
int config_load(const char *path, struct config **out, struct config_errors *errs);
void config_free(struct config *cfg);

const struct job_def *config_find_job(const struct config *cfg, const char *id);
const struct mcp_server_def *config_find_server(const struct config *cfg, const char *name);

/*
 * How config_load() checks "user", "default_user" and servers' "user"
 * against the process that loads it. OFF (the default, for tools and tests):
 * no check. SYSTEM (mcpjobd): as non-root, naming a user other than
 * ourselves is an error; as root, default_user defaults to "nobody".
 * PER_USER (mcpjobd --user): the same check, but default_user stays unset
 * (jobs run as the daemon's own user) even as root.
 */
enum config_identity_mode { CONFIG_IDENTITY_OFF, CONFIG_IDENTITY_SYSTEM, CONFIG_IDENTITY_PER_USER };
void config_set_identity_mode(enum config_identity_mode mode);

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void config_errors_clear(struct config_errors *errs);
/* All errors joined with "\n"; caller frees. */
char *config_errors_join(const struct config_errors *errs);

#endif
