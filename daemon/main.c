/*
 * main.c - mcpjobd: parse flags, open the engine and the control socket,
 * talk to systemd, handle signals. Everything else lives in the engine.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/netlib.h"
#include "common/sdlib.h"
#include "common/secmem.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/action/action.h"
#include "daemon/config.h"
#include "daemon/control.h"
#include "daemon/engine.h"
#include "daemon/events.h"
#include "common/protocol.h"
#include "daemon/mcp/mcp.h"
#include "daemon/metrics.h"
#include "daemon/notify.h"
#include "daemon/spawn.h"
#include "daemon/systemd_compat.h"

struct daemon {
	struct event_base *base;
	struct engine *engine;
	struct control *control;
	struct notify *notify; /* consumers of the engine's events */
	struct metrics *metrics;
	struct event *sig_hup, *sig_term, *sig_int, *watchdog_ev;
	struct event *status_ev; /* STATUS= after a change, at most every STATUS_DELAY_MS */
	const char *config_path;
	bool stopping;
	int exit_code;
};

static void usage(FILE *f) {
	fprintf(f,
	        "usage: mcpjobd [options]\n"
	        "Run periodic jobs (MCP tool calls, programs, clean-up) when the device allows.\n\n"
	        "  -c, --config FILE     configuration (default /etc/mcpjobd/mcpjobd.json;\n"
	        "                        with --user $XDG_CONFIG_HOME/mcpjobd/mcpjobd.json)\n"
	        "  -s, --state-dir DIR   job state and history (default /var/lib/mcpjobd;\n"
	        "                        with --user $XDG_STATE_HOME/mcpjobd)\n"
	        "  -S, --socket PATH     control socket (default /run/mcpjobd/control.sock;\n"
	        "                        with --user $XDG_RUNTIME_DIR/mcpjobd/control.sock;\n"
	        "                        $MCPJOBD_SOCKET overrides the default)\n"
	        "      --user            per-user daemon: user paths, socket mode 0600\n"
	        "      --platform NAME   device state from \"linux\" (default) or \"sim\"\n"
	        "      --check-config    check the configuration, and the users, programs and\n"
	        "                        directories it names on this host; exit 0 when valid\n"
	        "      --probe           with --check-config: start each MCP server and check\n"
	        "                        every mcp job's tool and arguments\n"
	        "      --run-due         run what is due now, then exit (mobile hooks' path)\n"
	        "      --budget DURATION with --run-due: stop what still runs after this (30s)\n"
	        "      --log-target T    \"stderr\" or \"journal\" (default: journal when stderr\n"
	        "                        is the journal, else stderr)\n"
	        "  -v, --verbose         debug messages\n"
	        "  -V, --version         print the version and exit\n"
	        "  -h, --help            print this help and exit\n\n"
	        "Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT stop (running\n"
	        "runs are cancelled and recorded). See mcpjobd(8), mcpjobd.json(5),\n"
	        "mcpjobd-protocol(7), mcpjobctl(1).\n");
}

struct opts {
	char *config, *state_dir, *socket, *platform, *log_target;
	bool user, check, probe, run_due, verbose;
	int64_t budget_ms;
};

/* What was not given: the defaults mcpjobctl shares (common/paths.h). */
static void default_paths(struct opts *o) {
	if (!o->config)
		o->config = paths_default_config(o->user);
	if (!o->state_dir)
		o->state_dir = paths_default_state_dir(o->user);
	if (!o->socket)
		o->socket = paths_default_socket(o->user);
	if (!o->platform)
		o->platform = xstrdup("linux");
}

static int parse_args(int argc, char **argv, struct opts *o) {
	enum { O_USER = 256, O_PLATFORM, O_CHECK, O_PROBE, O_RUN_DUE, O_BUDGET, O_LOG };
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"state-dir", required_argument, NULL, 's'},
		{"socket", required_argument, NULL, 'S'}, {"user", no_argument, NULL, O_USER},
		{"platform", required_argument, NULL, O_PLATFORM},
		{"check-config", no_argument, NULL, O_CHECK}, {"probe", no_argument, NULL, O_PROBE},
		{"run-due", no_argument, NULL, O_RUN_DUE}, {"budget", required_argument, NULL, O_BUDGET},
		{"log-target", required_argument, NULL, O_LOG}, {"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	int c;
	char *cause = NULL;
	o->budget_ms = 30000;
	while ((c = getopt_long(argc, argv, "c:s:S:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = xstrdup(optarg); break;
		case 's': o->state_dir = xstrdup(optarg); break;
		case 'S': o->socket = xstrdup(optarg); break;
		case O_USER: o->user = true; break;
		case O_PLATFORM: o->platform = xstrdup(optarg); break;
		case O_CHECK: o->check = true; break;
		case O_PROBE: o->probe = true; break;
		case O_RUN_DUE: o->run_due = true; break;
		case O_BUDGET:
			if (duration_parse(optarg, &o->budget_ms, &cause) < 0) {
				fprintf(stderr, "mcpjobd: --budget: %s\n", cause);
				free(cause);
				return 2;
			}
			break;
		case O_LOG: o->log_target = xstrdup(optarg); break;
		case 'v': o->verbose = true; break;
		case 'V': printf("mcpjobd %s\n", MCPJOB_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: fprintf(stderr, "Try 'mcpjobd --help'.\n"); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mcpjobd: unexpected argument \"%s\"\nTry 'mcpjobd --help'.\n",
		        argv[optind]);
		return 2;
	}
	if (o->probe && !o->check) {
		fprintf(stderr, "mcpjobd: --probe goes with --check-config\n");
		return 2;
	}
	if (o->log_target && strcmp(o->log_target, "stderr") != 0 &&
	    strcmp(o->log_target, "journal") != 0) {
		fprintf(stderr, "mcpjobd: --log-target must be \"stderr\" or \"journal\"\n");
		return 2;
	}
	default_paths(o);
	return -1;
}

static void opts_free(struct opts *o) {
	free(o->config);
	free(o->state_dir);
	free(o->socket);
	free(o->platform);
	free(o->log_target);
}

static void print_errors(const struct config_errors *errs) {
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
}

/* How this daemon checks "user" keys: as a system or a per-user daemon. */
static enum config_identity_mode identity_mode(const struct opts *o) {
	return o->user ? CONFIG_IDENTITY_PER_USER : CONFIG_IDENTITY_SYSTEM;
}

static int check_config(const struct opts *o) {
	struct config *cfg;
	struct config_errors errs = {0}, warnings = {0};
	struct config_load_opts lo = {.identity = identity_mode(o)};
	int rc = config_load_check_host(o->config, &lo, &cfg, &errs, &warnings);
	print_errors(&warnings);
	config_errors_clear(&warnings);
	if (rc < 0) {
		print_errors(&errs);
		fprintf(stderr, "configuration has %zu error%s\n", errs.n, errs.n == 1 ? "" : "s");
		config_errors_clear(&errs);
		return 1;
	}
	int unsafe = 0;
	for (size_t i = 0; i < cfg->njobs; i++) {
		const struct job_def *j = cfg->jobs[i];
		char *cause = NULL;
		if (j->kind == ACTION_CLEANUP &&
		    action_cleanup_check_path(j->cleanup.path, j->user ? j->user : cfg->default_user,
		                              &cause) < 0) {
			fprintf(stderr, "%s: job %s: %s\n", j->source ? j->source : o->config, j->id,
			        cause);
			free(cause);
			unsafe++;
		}
	}
	if (unsafe > 0) {
		fprintf(stderr, "configuration has %d unsafe cleanup path%s\n", unsafe,
		        unsafe == 1 ? "" : "s");
		config_free(cfg);
		return 1;
	}
	int problems = 0;
	if (o->probe)
		problems = mcp_probe(cfg, stdout);
	printf("%s: %zu job%s, %zu MCP server%s\n", o->config, cfg->njobs,
	       cfg->njobs == 1 ? "" : "s", cfg->nservers, cfg->nservers == 1 ? "" : "s");
	config_free(cfg);
	if (problems > 0) {
		printf("probe found %d problem%s\n", problems, problems == 1 ? "" : "s");
		return 1;
	}
	printf("configuration OK\n");
	return 0;
}

/* --- systemd ------------------------------------------------------------------ */

static void notify_status(struct daemon *d) {
	char *line = engine_status_line(d->engine);
	sd_notifyf(0, "STATUS=%s", line);
	free(line);
}

static void on_status_due(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	notify_status(arg);
}

/*
 * STATUS= follows the engine's events, so an idle daemon needs no timer;
 * changes within STATUS_DELAY_MS share one message (a run changes the job's
 * state twice: one message each cost the daemon and systemd a sendmsg).
 */
#define STATUS_DELAY_MS 100
static void on_event_status(void *arg, const json_t *msg) {
	struct daemon *d = arg;
	struct timeval tv = {0, STATUS_DELAY_MS * 1000};
	(void)msg;
	if (!evtimer_pending(d->status_ev, NULL))
		evtimer_add(d->status_ev, &tv);
}

/* What changes the STATUS= line (job counts, running, pending, next due). */
static const char *const status_events[] = {EVENT_JOB_STATE, EVENT_RUN_FINISHED, NULL};

static void on_watchdog(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

static void setup_systemd(struct daemon *d) {
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		struct timeval tv = {(time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000)};
		d->watchdog_ev = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
		event_add(d->watchdog_ev, &tv);
		sd_notify(0, "WATCHDOG=1");
	}
	if (getenv("NOTIFY_SOCKET")) {
		d->status_ev = evtimer_new(d->base, on_status_due, d);
		events_subscribe_types(engine_events(d->engine), status_events, on_event_status, d);
	}
}

/* A socket handed to us by systemd (socket activation), or -1. */
static int activated_socket(char **cause) {
	int n = sd_listen_fds(1);
	if (n <= 0)
		return -1;
	if (n > 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
		*cause = xasprintf("socket activation passed %d descriptor%s; mcpjobd needs exactly "
		                   "one listening Unix stream socket", n, n == 1 ? "" : "s");
		return -2;
	}
	return SD_LISTEN_FDS_START;
}

/* --- signals, reload, stop ---------------------------------------------------- */

static int do_reload(void *arg, json_t **summary, struct config_errors *errs) {
	struct daemon *d = arg;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	           (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	int rc = engine_reload(d->engine, summary, errs);
	if (rc != 0) {
		log_error("the new configuration %s was refused; the running one stays:", d->config_path);
		for (size_t i = 0; i < errs->n; i++)
			log_error("%s", errs->msgs[i]);
	}
	if (rc == 0)
		metrics_changed(d->metrics); /* jobs or the textfile may have changed */
	sd_notify(0, "READY=1");
	notify_status(d);
	return rc;
}

static char *daemon_metrics(void *arg) {
	return metrics_render(((struct daemon *)arg)->metrics);
}

static void on_hup(evutil_socket_t fd, short what, void *arg) {
	struct config_errors errs = {0};
	json_t *summary = NULL;
	(void)fd;
	(void)what;
	do_reload(arg, &summary, &errs);
	json_decref(summary);
	config_errors_clear(&errs);
}

static void stopped(void *arg) {
	struct daemon *d = arg;
	event_base_loopexit(d->base, NULL);
}

static void on_term(evutil_socket_t sig, short what, void *arg) {
	struct daemon *d = arg;
	(void)what;
	if (d->stopping) {
		log_notice("second signal: stopping now");
		event_base_loopbreak(d->base);
		return;
	}
	d->stopping = true;
	log_notice("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	sd_notify(0, "STOPPING=1");
	control_stop_accepting(d->control);
	engine_shutdown(d->engine, "mcpjobd is stopping", stopped, d); /* tasks go on */
}

static void install_signals(struct daemon *d) {
	signal(SIGPIPE, SIG_IGN);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_term, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_term, d);
	evsignal_add(d->sig_hup, NULL);
	evsignal_add(d->sig_term, NULL);
	evsignal_add(d->sig_int, NULL);
}

static void daemon_free(struct daemon *d) {
	control_close(d->control);
	notify_free(d->notify);
	metrics_free(d->metrics);
	engine_free(d->engine);
	struct event *evs[] = {d->sig_hup, d->sig_term, d->sig_int, d->watchdog_ev, d->status_ev};
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	event_base_free(d->base);
}

static struct event_base *new_base(void) {
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base == NULL)
		log_fatalx("cannot create the event loop");
	return base;
}

static int open_engine(struct daemon *d, const struct opts *o) {
	struct engine_opts eo = {.config_path = o->config, .state_dir = o->state_dir,
	                         .platform = o->platform, .base = d->base,
	                         .identity_mode = identity_mode(o)};
	struct config_errors errs = {0};
	char *cause = NULL;
	/* The store creates the state directory (and its parents, 0700). */
	if (engine_open(&eo, &d->engine, &errs, &cause) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.msgs[i]);
		log_error("%s", cause);
		if (geteuid() != 0 && !o->user)
			log_error("hint: the system daemon runs as root; for a per-user daemon use "
			          "mcpjobd --user (see mcpjobd(8))");
		config_errors_clear(&errs);
		free(cause);
		return -1;
	}
	return 0;
}

static void run_due_done(void *arg) {
	event_base_loopexit(((struct daemon *)arg)->base, NULL);
}

static int serve(struct daemon *d, const struct opts *o) {
	char *cause = NULL;
	int lfd = activated_socket(&cause);
	if (lfd == -2) {
		log_error("%s", cause);
		free(cause);
		return 1;
	}
	/* As root, the socket we create belongs to the admin group (mode 0660),
	 * so its members can reach it; a missing group is only warned about. */
	const char *group = geteuid() == 0 && !o->user ? engine_config(d->engine)->admin_group : NULL;
	struct control_opts co = {o->socket, lfd, o->user ? 0600 : 0660,
	                          group, do_reload, d, daemon_metrics, d};
	if (control_open(d->base, d->engine, &co, &d->control, &cause) < 0) {
		log_error("%s", cause);
		free(cause);
		return 1;
	}
	install_signals(d);
	engine_start(d->engine);
	setup_systemd(d);
	log_notice("mcpjobd %s ready: %zu jobs, socket %s, state %s, platform %s", MCPJOB_VERSION,
	           engine_config(d->engine)->njobs, o->socket, o->state_dir, o->platform);
	sd_notify(0, "READY=1");
	notify_status(d);
	event_base_dispatch(d->base);
	return 0;
}

int main(int argc, char **argv) {
	struct opts o = {0};
	struct daemon d = {0};
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0) {
		opts_free(&o);
		return rc;
	}
	bool journal = o.log_target ? strcmp(o.log_target, "journal") == 0 : log_stderr_is_journal();
	log_init("mcpjobd", journal ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR, o.verbose);
#if MCPJOB_WITH_SYSTEMD
	/* libsystemd is loaded when first needed (common/sdlib.h); a systemd
	 * service or a journal logger needs it from the start, so a missing
	 * library is said here, on stderr, not lost later. */
	const char *sd_why = journal                           ? "logging to the journal"
	                     : getenv("NOTIFY_SOCKET") != NULL ? "$NOTIFY_SOCKET is set"
	                     : getenv("LISTEN_PID") != NULL    ? "$LISTEN_PID is set"
	                     : getenv("WATCHDOG_USEC") != NULL ? "$WATCHDOG_USEC is set"
	                                                       : NULL;
	char *sd_cause = NULL;
	if (sd_why != NULL && sdlib_need(&sd_cause) < 0) {
		log_init("mcpjobd", LOG_TARGET_STDERR, o.verbose);
		log_error("%s (needed: %s)", sd_cause, sd_why);
		free(sd_cause);
		opts_free(&o);
		return 1;
	}
#endif
	if (o.check) {
		rc = check_config(&o);
		opts_free(&o);
		return rc;
	}
	/* Tokens and client secrets sit where no core dump holds them (made when
	 * the first HTTP server is used), and what jansson held of them is wiped
	 * when freed. */
	secmem_enable();
	json_set_alloc_funcs(secmem_wiping_malloc, secmem_wiping_free);
	netlib_curl_allocators(secmem_secure_malloc, secmem_wiping_free, secmem_secure_realloc,
	                       secmem_secure_strdup, secmem_secure_calloc); /* when it is loaded */
	d.config_path = o.config;
	d.base = new_base();
	if (open_engine(&d, &o) < 0) {
		daemon_free(&d);
		opts_free(&o);
		return 1;
	}
	/* Desktop notifications only where there is a user's session. */
	d.notify = notify_new(d.base, d.engine, o.user);
	d.metrics = metrics_new(d.base, d.engine, o.state_dir);
	if (o.run_due) {
		install_signals(&d);
		engine_run_due(d.engine, o.budget_ms, run_due_done, &d);
		event_base_dispatch(d.base);
		rc = 0;
	} else {
		rc = serve(&d, &o);
	}
	daemon_free(&d);
	opts_free(&o);
	return rc;
}
