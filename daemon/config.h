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
#include "platform/platform.h"

struct spawn_identity;
struct spawn_identities;
struct config_job_index;

enum mcp_server_type { MCP_SERVER_STDIO, MCP_SERVER_HTTP, MCP_SERVER_SSE };
/* What we answer a server's elicitation/create with (see mcpjobd.json(5)). */
enum mcp_elicitation { MCP_ELICIT_DECLINE, MCP_ELICIT_DEFAULTS, MCP_ELICIT_ANSWERS };

/* How the client gets its tokens from a server's authorization server. */
enum mcp_auth_grant_type {
	MCP_GRANT_AUTHORIZATION_CODE, /* a person logs in once (mcpjobctl auth login) */
	MCP_GRANT_CLIENT_CREDENTIALS, /* machine to machine: no person at all */
	MCP_GRANT_JWT_BEARER,         /* "jwt_bearer": an enterprise IdP's ID token, exchanged
	                                 there for an ID-JAG (SEP-990, RFC 8693, RFC 7523) */
};

/*
 * "mcpServers": {NAME: {"auth": {...}}} of an http/sse server (see
 * mcpjobd.json(5)). Without "auth" the client still answers a 401 with the
 * specification's flow: discovery, then Dynamic Client Registration.
 * Secrets stay unexpanded ${env:..}/${credential:..} references here
 * (mcp_headers.h expands them when used).
 */
struct mcp_auth_def {
	char *client_id;           /* pre-registered; NULL: CIMD or DCR */
	char *client_secret;       /* reference or literal; may be NULL */
	char *client_metadata_url; /* an https Client ID Metadata Document URL; may be NULL */
	char *private_key;         /* private_key_jwt: reference to a PEM key; may be NULL */
	char *scope;               /* asked for instead of the discovered one; may be NULL */
	enum mcp_auth_grant_type grant;
	/* MCP_GRANT_JWT_BEARER: the IdP's token endpoint, our client id there, and a
	 * reference to the ID token it issued us (a secret). */
	char *idp_token_endpoint;
	char *idp_client_id;
	char *id_token;
};

struct mcp_server_def {
	char *name;          /* key in "mcpServers" */
	enum mcp_server_type type; /* "type"; stdio when "command" is given */
	char *url;           /* http, sse: the MCP endpoint (sse: the SSE endpoint) */
	char **headers;      /* http, sse: "Name: value" with ${env:..}/${credential:..}
	                        unexpanded (mcp_headers.h), NULL-terminated, may be NULL */
	char *ca_file;       /* http, sse: PEM CA bundle besides the system store; may be NULL */
	struct mcp_auth_def *auth; /* http, sse: "auth"; NULL when not given */
	enum mcp_elicitation elicitation;
	json_t *elicit_answers; /* MCP_ELICIT_ANSWERS: the fixed answers (owned) */
	char *log_level;     /* logging/setLevel sent to the server; NULL = "warning" */
	char **roots;        /* file:// URIs answered to roots/list; NULL = roots not declared */
	char **argv;         /* command followed by args, NULL-terminated */
	char **env;          /* "KEY=VALUE", NULL-terminated, may be NULL */
	char *cwd;           /* may be NULL */
	char *user;          /* run as; NULL = the configured default user */
	int64_t idle_timeout_ms; /* keep a started server this long; default 60 s */
	bool shared;         /* jobs added over the socket by non-admins may use it */
};


/* Free @d and what it holds (NULL is fine). */
void config_server_free(struct mcp_server_def *d);
/* A deep copy of @d whose "user" is @user (NULL: none). */
struct mcp_server_def *config_server_copy(const struct mcp_server_def *d, const char *user);
/* Whether @a and @b are the same server in every key (the name aside; of
 * "roots" only whether there are any: their list may change under a kept
 * server, which is told so). */
bool config_server_equal(const struct mcp_server_def *a, const struct mcp_server_def *b);

struct config {
	char *path;                  /* the main file */
	struct job_def **jobs;       /* in file order, main file first, then jobs.d sorted */
	size_t njobs;
	struct config_job_index *job_index; /* private: job id -> position in jobs */
	struct job_arena *job_arena; /* private: where the jobs' definitions live */
	struct mcp_server_def **servers;
	size_t nservers;
	int max_concurrent;          /* default 4 */
	char *admin_group;           /* default "mcpjob" */
	int max_connections_per_uid; /* default 32 */
	int max_jobs_per_uid;        /* jobs one non-admin uid may add over the socket; default 100 */
	char *default_user;          /* jobs without "user"; NULL = the daemon's own user */
	int history_max_runs;        /* default 100 (per job, overridable) */
	int64_t history_max_age_ms;  /* default 30 days */
	int64_t catchup_spread_ms;   /* spread catch-up runs over this window; default 10 s */
	char **read_write_paths;     /* informational: paths cleanup jobs write */
	struct device_settings device;
	struct spawn_identities *identities; /* private: resolved at load (config_job_identity) */
	char *metrics_textfile;      /* "metrics": {"textfile"}; NULL: none (daemon/metrics.h) */
	json_t *notify_index;        /* private: job id -> its "notify"; see config_job_notify() */
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
/*
 * config_load_check_host() - config_load_with(), then, when the file is valid,
 * config_check_host() (daemon/config_check.h): users, groups, programs and
 * directories on this host. Its errors fail the load like the others; its
 * warnings (@warnings) do not. For --check-config.
 */
struct config_load_opts;
int config_load_check_host(const char *path, const struct config_load_opts *opts,
                           struct config **out, struct config_errors *errs,
                           struct config_errors *warnings);

/*
 * config_job_identity() - who @def's processes run as: its "user" (with
 * "group"), else "default_user", else the loading process. Resolved once,
 * when @cfg was loaded: a change to the user database counts from the next
 * reload. 0 with *@out (owned by @cfg), or -1 with *@cause ("no such user").
 */
int config_job_identity(const struct config *cfg, const struct job_def *def,
                        const struct spawn_identity **out, char **cause);

const struct job_def *config_find_job(const struct config *cfg, const char *id);
const struct mcp_server_def *config_find_server(const struct config *cfg, const char *name);

/* A job's "notify": which run ends become desktop notifications (daemon/notify.h). */
#define NOTIFY_ON_FAILURE 0x1u /* outcome failure or timeout: the run's message */
#define NOTIFY_ON_SUCCESS 0x2u /* outcome success: the run's message */
#define NOTIFY_ON_RESULT  0x4u /* mcp success: one per element of the items array */
struct job_notify {
	unsigned on;       /* NOTIFY_ON_* */
	const char *items; /* JSON pointer into structuredContent, or NULL */
};
/* 1 and *@out (borrowed from @cfg) when job @id has "notify", else 0. */
int config_job_notify(const struct config *cfg, const char *id, struct job_notify *out);

/*
 * How a load checks "user", "default_user" and servers' "user" against the
 * process that loads it. OFF (config_load(), for tools and tests): no check.
 * SYSTEM (mcpjobd): as non-root, naming a user other than ourselves is an
 * error; as root, default_user defaults to "nobody". PER_USER (mcpjobd
 * --user): the same check, but default_user stays unset (jobs run as the
 * daemon's own user) even as root.
 */
enum config_identity_mode { CONFIG_IDENTITY_OFF, CONFIG_IDENTITY_SYSTEM, CONFIG_IDENTITY_PER_USER };

/* How one load is done; each engine passes its own (no process-wide state). */
/* A job added over the control socket (job.add), kept in the store. */
struct config_socket_job {
	json_t *job; /* the job object as it was sent (borrowed) */
	int uid;     /* who added it */
};

struct config_load_opts {
	enum config_identity_mode identity;
	/* Jobs added over the socket, parsed after the files by the same code. A
	 * socket job with a problem (its server went away, a file now defines
	 * its id) is left out with the problem in @socket_errs, so it cannot
	 * keep the daemon from starting; with @socket_errs NULL it is an error. */
	const struct config_socket_job *socket_jobs;
	size_t nsocket_jobs;
	struct config_errors *socket_errs;
	bool last_socket_job_strict; /* the last one is being added: its problems are errors */
};

/*
 * config_check_socket_job() - may peer @uid (@admin or not) add the job
 * @def (already parsed)? A non-admin's job runs as the peer only ("user"
 * absent or the peer's own name, no "group") and uses only servers marked
 * "shared". Problems are appended to @errs with the job's key path.
 */
void config_check_socket_job(const struct config *cfg, const struct job_def *def, int uid,
                             bool admin, struct config_errors *errs);

/* config_load() with @opts (NULL: the defaults, as config_load()). */
int config_load_with(const char *path, const struct config_load_opts *opts, struct config **out,
                     struct config_errors *errs);

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void config_errors_clear(struct config_errors *errs);
/* All errors joined with "\n"; caller frees. */
char *config_errors_join(const struct config_errors *errs);

#endif
