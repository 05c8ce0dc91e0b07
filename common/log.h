/*
 * log.h - one place every message goes through.
 *
 * To stderr ("mcpjobd: warning: ...") by default, or to the systemd journal
 * with structured fields (MCPJOB_ID=, MCPJOB_RUN=, MCPJOB_OUTCOME=,
 * MESSAGE_ID=) when log_init() chooses LOG_TARGET_JOURNAL. Anything clients,
 * children or servers can make us log goes through a struct log_ratelimit
 * (dbus-broker's "lossy" mode): a burst is logged, the rest counted and
 * summarised once the window ends.
 */
#ifndef MCPJOB_LOG_H
#define MCPJOB_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR = 3, LOG_LEVEL_WARNING = 4, LOG_LEVEL_NOTICE = 5,
                 LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

enum log_target { LOG_TARGET_STDERR, LOG_TARGET_JOURNAL };

/* Structured context of a message about a job or a run; any field may be NULL. */
struct log_ctx {
	const char *job_id;
	const char *run_id;
	const char *outcome;
	const char *message_id; /* 128-bit id as 32 hex chars, see MCPJOB_MSGID_* */
};

/* Journal MESSAGE_ID= per event kind (journalctl MESSAGE_ID=...). */
#define MCPJOB_MSGID_RUN_STARTED  "6a1d3f0c4e8b4d6f9a2c51e7b3d80f11"
#define MCPJOB_MSGID_RUN_FINISHED "6a1d3f0c4e8b4d6f9a2c51e7b3d80f12"
#define MCPJOB_MSGID_JOB_PENDING  "6a1d3f0c4e8b4d6f9a2c51e7b3d80f13"
#define MCPJOB_MSGID_RELOAD       "6a1d3f0c4e8b4d6f9a2c51e7b3d80f14"

/* progname prefixes stderr lines; verbose enables debug messages. */
void log_init(const char *progname, enum log_target target, bool verbose);
/* True when stderr is connected to the journal (JOURNAL_STREAM matches). */
bool log_stderr_is_journal(void);

/*
 * A sink takes every message logged on this thread instead of stderr or the
 * journal (debug messages too: the sink decides). The embedding API
 * (daemon/embed.c) sets its engine's sink for the duration of each call, so
 * what one engine logs reaches that engine's host - logcat, os_log - with
 * no process-wide setting. log_sink_set() returns the sink it replaces, to
 * be put back when the call returns.
 */
struct log_sink {
	void (*fn)(void *arg, enum log_level level, const struct log_ctx *ctx, const char *msg);
	void *arg;
};
const struct log_sink *log_sink_set(const struct log_sink *sink);

void log_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...)   log_msg(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, NULL, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_LEVEL_NOTICE, NULL, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)

/*
 * The two ways to die: log and exit(1); log_fatal() appends strerror(errno).
 * For broken invariants and start-up failures only; anything caused by
 * input, a child or a client returns an error to its caller instead.
 */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

struct log_ratelimit {
	int64_t window_start_ms;
	unsigned count;
	unsigned suppressed;
};

/*
 * log_ratelimit_ok() - may one more message be logged now?
 * At most @burst per @interval_ms; when a new window starts after some were
 * suppressed, a "N messages suppressed" line is logged first with @what.
 */
bool log_ratelimit_ok(struct log_ratelimit *rl, unsigned burst, int64_t interval_ms,
                      const char *what);

#endif
