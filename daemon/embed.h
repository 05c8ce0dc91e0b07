/*
 * embed.h - the engine without a daemon, for the mobile hooks.
 *
 * On Android (WorkManager) and iOS (BGTaskScheduler) there is no
 * long-running process: the OS wakes the app with a time budget. The app
 * opens the engine on its configuration and state directory, runs what is
 * due within the budget, and asks when to be woken next. The OS's
 * expiration handler calls mcpjob_engine_expire() - from any thread - and
 * what still runs is stopped and recorded as cancelled. `mcpjobd --run-due
 * --budget 30s` takes the same engine path on Linux.
 *
 * The device state starts as "everything allowed" (the OS already applied
 * its own constraints before waking us); the host reports changes with
 * mcpjob_engine_set_device(). History and job state are the same LMDB store
 * the daemon uses.
 */
#ifndef MCPJOB_EMBED_H
#define MCPJOB_EMBED_H

#include <stdint.h>

struct mcpjob_engine;

/*
 * mcpjob_engine_open() - load @config_path, open @state_dir. NULL with
 * *@error (caller frees) listing what is wrong.
 */
struct mcpjob_engine *mcpjob_engine_open(const char *config_path, const char *state_dir,
                                         char **error);
/*
 * mcpjob_engine_run_due() - run what is due and allowed now; return when
 * nothing runs any more, or when @budget_ms ran out or
 * mcpjob_engine_expire() was called (what still ran is then stopped and
 * recorded cancelled). Returns the number of runs that started.
 */
int mcpjob_engine_run_due(struct mcpjob_engine *eng, int64_t budget_ms);
/* Thread-safe: end the current mcpjob_engine_run_due() early. */
void mcpjob_engine_expire(struct mcpjob_engine *eng);
/* When the next job is due (ms since the epoch), 0 if none: the next wake-up to ask for. */
int64_t mcpjob_engine_next_due(struct mcpjob_engine *eng);
/* Report device state: key network|charging|battery_low|idle|storage_low. */
int mcpjob_engine_set_device(struct mcpjob_engine *eng, const char *key, const char *value,
                             char **error);
void mcpjob_engine_close(struct mcpjob_engine *eng);

#endif
