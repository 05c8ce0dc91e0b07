/*
 * netstate.c - test helper: open the linux device-state provider on an event
 * loop and print one field of the device state as a line at start and again
 * each time it changes: by default the network ("none", "metered",
 * "unmetered" or "unknown"), with --field idle the idle state ("true",
 * "false" or "unknown"). tests/e2e/test_netns.py runs it inside a network
 * namespace it builds.
 *
 *   netstate [--no-bus] [--metered PATTERN]... [--field network|idle] [--verbose]
 *
 * --no-bus keeps the host's NetworkManager out of a namespace's answer;
 * --metered replaces the default patterns (wwan*, ppp*, usb*).
 * SIGTERM or SIGINT ends it cleanly (the sanitizers check the clean-up).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "platform/linux/linux.h"
#include "platform/platform.h"

#define NETSTATE_MAX_PATTERNS 16

static bool show_idle;

static int field(const struct device_state *d) {
	return show_idle ? d->idle : d->network;
}

static void print_field(const struct device_state *d) {
	if (!show_idle)
		printf("%s\n", platform_network_name(d->network));
	else
		printf("%s\n", d->idle == DEV_UNKNOWN ? "unknown" : d->idle ? "true" : "false");
	fflush(stdout);
}

static void on_change(void *arg, const struct device_state *old, const struct device_state *now) {
	(void)arg;
	if (field(old) != field(now))
		print_field(now);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static int parse_args(int argc, char **argv, char **patterns, bool *verbose, bool *no_bus) {
	size_t n = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-bus") == 0)
			*no_bus = true;
		else if (strcmp(argv[i], "--verbose") == 0)
			*verbose = true;
		else if (strcmp(argv[i], "--field") == 0 && i + 1 < argc &&
		         (strcmp(argv[i + 1], "network") == 0 || strcmp(argv[i + 1], "idle") == 0))
			show_idle = strcmp(argv[++i], "idle") == 0;
		else if (strcmp(argv[i], "--metered") == 0 && i + 1 < argc && n < NETSTATE_MAX_PATTERNS)
			patterns[n++] = argv[++i];
		else {
			fprintf(stderr, "usage: netstate [--no-bus] [--metered PATTERN]... "
			                "[--field network|idle] [--verbose]\n");
			return -1;
		}
	}
	if (n == 0) {
		patterns[n++] = "wwan*";
		patterns[n++] = "ppp*";
		patterns[n++] = "usb*";
	}
	patterns[n] = NULL;
	return 0;
}

int main(int argc, char **argv) {
	char *patterns[NETSTATE_MAX_PATTERNS + 4];
	bool verbose = false, no_bus = false;
	if (parse_args(argc, argv, patterns, &verbose, &no_bus) < 0)
		return 2;
	log_init("netstate", LOG_TARGET_STDERR, verbose);
	struct device_settings settings = {
		.metered_interfaces = patterns,
		.idle_load = 0.5,
		.storage_low_percent = 10,
		.power_supply_path = "/sys/class/power_supply",
		.unknown_allows = true,
	};
	struct event_base *base = event_base_new();
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	char *cause = NULL;
	struct platform_args pa = {.name = "linux", .base = base, .settings = &settings,
	                           .state_dir = "/", .fn = on_change, .no_system_bus = no_bus};
	struct platform *p = platform_open(&pa, &cause);
	if (p == NULL) {
		fprintf(stderr, "netstate: %s\n", cause);
		free(cause);
		return 1;
	}
	struct device_state st;
	platform_get(p, &st);
	print_field(&st);
	event_base_dispatch(base);
	platform_close(p);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(base);
	return 0;
}
