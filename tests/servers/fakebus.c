/*
 * fakebus.c - test helper: stands in for NetworkManager and logind on the bus
 * DBUS_SYSTEM_BUS_ADDRESS names (a private dbus-daemon the test started), so
 * the linux provider's sd-bus path can be driven without touching the host.
 *
 * Serves org.freedesktop.NetworkManager's Metered (u) and
 * org.freedesktop.login1.Manager's IdleHint (b), both emitting
 * PropertiesChanged. Reads commands on stdin, answers "ok" on stdout:
 *   metered N    set Metered (NMMetered, 0..4)
 *   idle 0|1     set IdleHint
 *   nm-exit      release NetworkManager's name (as if it stopped)
 *   nm-start     own it again (as if it started)
 * and prints "ready" once both names are owned. EOF on stdin ends it.
 * Send one command at a time and wait for its answer (stdin is read with
 * stdio behind an fd watch).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#define NM_NAME "org.freedesktop.NetworkManager"
#define NM_PATH "/org/freedesktop/NetworkManager"
#define LOGIN_NAME "org.freedesktop.login1"
#define LOGIN_PATH "/org/freedesktop/login1"
#define LOGIN_IFACE "org.freedesktop.login1.Manager"

static uint32_t metered;
static int idle_hint;

static int get_metered(sd_bus *bus, const char *path, const char *iface, const char *prop,
                       sd_bus_message *reply, void *arg, sd_bus_error *err) {
	(void)bus, (void)path, (void)iface, (void)prop, (void)arg, (void)err;
	return sd_bus_message_append(reply, "u", metered);
}

static int get_idle(sd_bus *bus, const char *path, const char *iface, const char *prop,
                    sd_bus_message *reply, void *arg, sd_bus_error *err) {
	(void)bus, (void)path, (void)iface, (void)prop, (void)arg, (void)err;
	return sd_bus_message_append(reply, "b", idle_hint);
}

static const sd_bus_vtable nm_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Metered", "u", get_metered, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_VTABLE_END,
};

static const sd_bus_vtable login_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("IdleHint", "b", get_idle, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_VTABLE_END,
};

static int command(sd_bus *bus, const char *line) {
	unsigned v;
	if (sscanf(line, "metered %u", &v) == 1) {
		metered = v;
		return sd_bus_emit_properties_changed(bus, NM_PATH, NM_NAME, "Metered", NULL);
	}
	if (sscanf(line, "idle %u", &v) == 1) {
		idle_hint = v != 0;
		return sd_bus_emit_properties_changed(bus, LOGIN_PATH, LOGIN_IFACE, "IdleHint", NULL);
	}
	if (strcmp(line, "nm-exit") == 0)
		return sd_bus_release_name(bus, NM_NAME);
	if (strcmp(line, "nm-start") == 0)
		return sd_bus_request_name(bus, NM_NAME, 0);
	return -EINVAL;
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *arg) {
	char line[128];
	(void)fd, (void)revents;
	if (fgets(line, sizeof line, stdin) == NULL)
		return sd_event_exit(sd_event_source_get_event(s), 0);
	line[strcspn(line, "\n")] = '\0';
	int r = command(arg, line);
	printf(r < 0 ? "error %d\n" : "ok\n", r);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv) {
	sd_bus *bus = NULL;
	sd_event *ev = NULL;
	int r;
	if (argc > 1)
		metered = (uint32_t)atoi(argv[1]);
	if (argc > 2)
		idle_hint = atoi(argv[2]) != 0;
	setvbuf(stdin, NULL, _IOLBF, 0);
	if ((r = sd_event_default(&ev)) < 0 || (r = sd_bus_open_system(&bus)) < 0 ||
	    (r = sd_bus_add_object_vtable(bus, NULL, NM_PATH, NM_NAME, nm_vtable, NULL)) < 0 ||
	    (r = sd_bus_add_object_vtable(bus, NULL, LOGIN_PATH, LOGIN_IFACE, login_vtable, NULL)) < 0 ||
	    (r = sd_bus_request_name(bus, NM_NAME, 0)) < 0 ||
	    (r = sd_bus_request_name(bus, LOGIN_NAME, 0)) < 0 ||
	    (r = sd_bus_attach_event(bus, ev, 0)) < 0 ||
	    (r = sd_event_add_io(ev, NULL, STDIN_FILENO, EPOLLIN, on_stdin, bus)) < 0) {
		fprintf(stderr, "fakebus: %s\n", strerror(-r));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	r = sd_event_loop(ev);
	sd_bus_flush_close_unref(bus);
	sd_event_unref(ev);
	return r < 0 ? 1 : 0;
}
