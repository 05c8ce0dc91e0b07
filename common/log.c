/*
 * log.c - stderr or journal logging, levels, rate limiting.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#ifndef MCPJOB_WITH_SYSTEMD
#define MCPJOB_WITH_SYSTEMD 1
#endif
#if MCPJOB_WITH_SYSTEMD
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "common/sdlib.h"
#define SDLIB_STR_(x) #x
#define SDLIB_STR(x)  SDLIB_STR_(x)
#endif

#include "common/timeutil.h"
#include "common/xmalloc.h"

static const char *log_progname = "mcpjob";
static enum log_target log_target_cur = LOG_TARGET_STDERR;
static bool log_verbose;
static _Thread_local const struct log_sink *log_sink_cur;

const struct log_sink *log_sink_set(const struct log_sink *sink) {
	const struct log_sink *old = log_sink_cur;
	log_sink_cur = sink;
	return old;
}

void log_init(const char *progname, enum log_target target, bool verbose) {
	log_progname = progname;
	log_target_cur = target;
	log_verbose = verbose;
#if !MCPJOB_WITH_SYSTEMD
	if (target == LOG_TARGET_JOURNAL) {
		log_target_cur = LOG_TARGET_STDERR;
		log_warning("this build has no journal support (built with WITH_SYSTEMD=0): "
		            "logging to stderr");
	}
#endif
}

bool log_stderr_is_journal(void) {
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;
	if (js == NULL || sscanf(js, "%lu:%lu", &dev, &ino) != 2)
		return false;
	if (fstat(2, &st) < 0)
		return false;
	return (unsigned long)st.st_dev == dev && (unsigned long)st.st_ino == ino;
}

static const char *level_word(enum log_level level) {
	switch (level) {
	case LOG_LEVEL_ERROR: return "error: ";
	case LOG_LEVEL_WARNING: return "warning: ";
	default: return "";
	}
}

#if MCPJOB_WITH_SYSTEMD
static void log_journal(enum log_level level, const struct log_ctx *ctx, const char *msg) {
	const char *job = ctx && ctx->job_id ? ctx->job_id : NULL;
	const char *run = ctx && ctx->run_id ? ctx->run_id : NULL;
	const char *outc = ctx && ctx->outcome ? ctx->outcome : NULL;
	const char *mid = ctx && ctx->message_id ? ctx->message_id : NULL;
	/* One iovec a field, only those that are set (sd_journal_sendv(3)). */
	char msgf[2048 + 200], prio[32], ident[128], f[4][160];
	struct iovec iov[7];
	int n = 0;
	snprintf(msgf, sizeof msgf, "MESSAGE=%s%s%s", job ? job : "", job ? ": " : "", msg);
	snprintf(prio, sizeof prio, "PRIORITY=%d", (int)level);
	snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", log_progname);
	/* The text reads as on stderr ("sync-data: run 3: ..."): journalctl -u
	 * shows MESSAGE only, and the fields stay for filtering. */
	iov[n++] = (struct iovec){ msgf, strlen(msgf) };
	iov[n++] = (struct iovec){ prio, strlen(prio) };
	iov[n++] = (struct iovec){ ident, strlen(ident) };
	int k = 0;
	if (job) snprintf(f[k++], sizeof f[0], "MCPJOB_ID=%s", job);
	if (run) snprintf(f[k++], sizeof f[0], "MCPJOB_RUN=%s", run);
	if (outc) snprintf(f[k++], sizeof f[0], "MCPJOB_OUTCOME=%s", outc);
	if (mid) snprintf(f[k++], sizeof f[0], "MESSAGE_ID=%s", mid);
	for (int i = 0; i < k; i++)
		iov[n++] = (struct iovec){ f[i], strlen(f[i]) };
	/* The code location sd_journal_send() adds (its macro), then the fields. */
	sd_journal_sendv_with_location("CODE_FILE=" __FILE__, "CODE_LINE=" SDLIB_STR(__LINE__),
	                               __func__, iov, n);
}
#endif

void log_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...) {
	const struct log_sink *sink = log_sink_cur;
	if (level == LOG_LEVEL_DEBUG && !log_verbose && sink == NULL)
		return;
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (sink != NULL) {
		sink->fn(sink->arg, level, ctx, buf);
		return;
	}
#if MCPJOB_WITH_SYSTEMD
	/* libsystemd is loaded for it (mcpjobd loads it up front when it logs
	 * there); if it cannot be, stderr has the message. */
	if (log_target_cur == LOG_TARGET_JOURNAL && sdlib_need(NULL) == 0) {
		log_journal(level, ctx, buf);
		return;
	}
#endif
	if (ctx && ctx->job_id)
		fprintf(stderr, "%s: %s%s: %s\n", log_progname, level_word(level), ctx->job_id, buf);
	else
		fprintf(stderr, "%s: %s%s\n", log_progname, level_word(level), buf);
}

bool log_ratelimit_ok(struct log_ratelimit *rl, unsigned burst, int64_t interval_ms,
                      const char *what) {
	int64_t now = time_mono_ms();
	if (rl->window_start_ms == 0 || now - rl->window_start_ms >= interval_ms) {
		if (rl->suppressed)
			log_warning("%u messages from %s suppressed", rl->suppressed, what);
		rl->window_start_ms = now;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count < burst) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}

/* --- the two ways to die -------------------------------------------------- */

void log_fatal(const char *fmt, ...) {
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_error("fatal: %s: %s", msg, strerror(saved));
	free(msg);
	exit(1);
}

void log_fatalx(const char *fmt, ...) {
	va_list ap;
	char buf[1024];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_error("fatal: %s", buf);
	exit(1);
}
