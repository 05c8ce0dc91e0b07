/*
 * test_platform.c - the constraint gate, the sim provider, and the linux
 * provider's parsers and rules on fake input: power_supply trees built in
 * mkdtemp() directories, a real statvfs() of a temporary directory, the
 * metered-interface patterns. The linux provider is also opened for real on
 * an event loop with a fake power tree, to see refresh reach the callback,
 * and on the real /sys/class/power_supply to see the kernel's uevents reach
 * its NETLINK_KOBJECT_UEVENT socket and forged ones refused.
 * (Real networking is tests/e2e/test_netns.py.)
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/constraints.h"
#include "platform/linux/linux.h"
#include "platform/platform.h"

#define U DEV_UNKNOWN

/* --- helpers ---------------------------------------------------------------- */

static char *make_tmpdir(void) {
	char *dir = xstrdup("/tmp/mcpjob-platform-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(char *dir) {
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Write @root/@supply/@attr = @value (with the newline sysfs adds). */
static void put_attr(const char *root, const char *supply, const char *attr, const char *value) {
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", root, supply);
	ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
	snprintf(path, sizeof path, "%s/%s/%s", root, supply, attr);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", value);
	fclose(f);
}

static void put_battery(const char *root, const char *name, const char *status, const char *pct) {
	put_attr(root, name, "type", "Battery");
	put_attr(root, name, "status", status);
	put_attr(root, name, "capacity", pct);
}

static void put_mains(const char *root, const char *name, const char *type, const char *online) {
	put_attr(root, name, "type", type);
	put_attr(root, name, "online", online);
}

struct power {
	int charging, low, rc;
	char *cause;
};

static struct power read_power(const char *root) {
	struct power p = {.cause = NULL};
	p.rc = linux_power_read(root, &p.charging, &p.low, &p.cause);
	return p;
}

/* --- the constraint gate ------------------------------------------------------ */

struct gate_case {
	const char *name;
	struct job_constraints c;
	struct device_state d;
	bool holds_if_unknown_allowed;
	bool holds_if_unknown_refused;
	const char *reason; /* when it does not hold ("" when it always holds) */
};

/* A device where everything is allowed; each case changes one value. */
#define OK_DEV {DEV_NET_UNMETERED, 1, 0, 1, 0}
#define NET(v) {v, 1, 0, 1, 0}

static const struct gate_case gate_cases[] = {
	{"any/none", {.network = NET_REQ_ANY}, NET(DEV_NET_NONE), true, true, ""},
	{"any/unknown", {.network = NET_REQ_ANY}, NET(U), true, true, ""},
	{"connected/none", {.network = NET_REQ_CONNECTED}, NET(DEV_NET_NONE), false, false,
	 "waiting for network (now: none)"},
	{"connected/metered", {.network = NET_REQ_CONNECTED}, NET(DEV_NET_METERED), true, true, ""},
	{"connected/unmetered", {.network = NET_REQ_CONNECTED}, NET(DEV_NET_UNMETERED), true, true, ""},
	{"connected/unknown", {.network = NET_REQ_CONNECTED}, NET(U), true, false,
	 "waiting for network (now: unknown)"},
	{"unmetered/none", {.network = NET_REQ_UNMETERED}, NET(DEV_NET_NONE), false, false,
	 "waiting for unmetered network (now: none)"},
	{"unmetered/metered", {.network = NET_REQ_UNMETERED}, NET(DEV_NET_METERED), false, false,
	 "waiting for unmetered network (now: metered)"},
	{"unmetered/unmetered", {.network = NET_REQ_UNMETERED}, NET(DEV_NET_UNMETERED), true, true, ""},
	{"unmetered/unknown", {.network = NET_REQ_UNMETERED}, NET(U), true, false,
	 "waiting for unmetered network (now: unknown)"},
	{"charging/yes", {.charging = true}, {DEV_NET_UNMETERED, 1, 0, 1, 0}, true, true, ""},
	{"charging/no", {.charging = true}, {DEV_NET_UNMETERED, 0, 0, 1, 0}, false, false,
	 "waiting for charging (now: on battery)"},
	{"charging/unknown", {.charging = true}, {DEV_NET_UNMETERED, U, 0, 1, 0}, true, false,
	 "waiting for charging (now: unknown)"},
	{"battery/ok", {.battery_not_low = true}, {DEV_NET_UNMETERED, 0, 0, 1, 0}, true, true, ""},
	{"battery/low", {.battery_not_low = true}, {DEV_NET_UNMETERED, 1, 1, 1, 0}, false, false,
	 "waiting for battery not low (now: low)"},
	{"battery/unknown", {.battery_not_low = true}, {DEV_NET_UNMETERED, 1, U, 1, 0}, true, false,
	 "waiting for battery not low (now: unknown)"},
	{"idle/yes", {.idle = true}, {DEV_NET_UNMETERED, 1, 0, 1, 0}, true, true, ""},
	{"idle/no", {.idle = true}, {DEV_NET_UNMETERED, 1, 0, 0, 0}, false, false,
	 "waiting for device idle (now: in use)"},
	{"idle/unknown", {.idle = true}, {DEV_NET_UNMETERED, 1, 0, U, 0}, true, false,
	 "waiting for device idle (now: unknown)"},
	{"storage/ok", {.storage_not_low = true}, {DEV_NET_UNMETERED, 1, 0, 1, 0}, true, true, ""},
	{"storage/low", {.storage_not_low = true}, {DEV_NET_UNMETERED, 1, 0, 1, 1}, false, false,
	 "waiting for storage not low (now: low)"},
	{"storage/unknown", {.storage_not_low = true}, {DEV_NET_UNMETERED, 1, 0, 1, U}, true, false,
	 "waiting for storage not low (now: unknown)"},
};
#define N_GATE_CASES ((int)(sizeof gate_cases / sizeof gate_cases[0]))

static void check_gate(const struct gate_case *g, bool unknown_allows) {
	char reason[128];
	memset(reason, 'x', sizeof reason);
	reason[sizeof reason - 1] = '\0';
	bool want = unknown_allows ? g->holds_if_unknown_allowed : g->holds_if_unknown_refused;
	bool got = constraints_check(&g->c, &g->d, unknown_allows, reason, sizeof reason);
	ck_assert_msg(got == want, "%s (unknown_allows=%d): got %d, want %d", g->name,
	              unknown_allows, got, want);
	ck_assert_msg(strcmp(reason, want ? "" : g->reason) == 0, "%s: reason \"%s\", want \"%s\"",
	              g->name, reason, want ? "" : g->reason);
}

START_TEST(test_gate_each_constraint_and_state_when_unknown_allows) {
	check_gate(&gate_cases[_i], true);
}
END_TEST

START_TEST(test_gate_each_constraint_and_state_when_unknown_refused) {
	check_gate(&gate_cases[_i], false);
}
END_TEST

START_TEST(test_gate_without_constraints_holds_on_any_device) {
	struct job_constraints none = {NET_REQ_ANY, false, false, false, false};
	struct device_state worst = {DEV_NET_NONE, 0, 1, 0, 1};
	struct device_state unknown = {U, U, U, U, U};
	ck_assert(!constraints_any(&none));
	ck_assert(constraints_check(&none, &worst, false, NULL, 0));
	ck_assert(constraints_check(&none, &unknown, false, NULL, 0));
}
END_TEST

START_TEST(test_gate_names_the_first_unmet_constraint) {
	struct job_constraints all = {NET_REQ_UNMETERED, true, true, true, true};
	struct device_state d = {DEV_NET_UNMETERED, 0, 1, 0, 1};
	char reason[128];
	ck_assert(constraints_any(&all));
	ck_assert(!constraints_check(&all, &d, true, reason, sizeof reason));
	ck_assert_str_eq(reason, "waiting for charging (now: on battery)");
	d.charging = 1;
	ck_assert(!constraints_check(&all, &d, true, reason, sizeof reason));
	ck_assert_str_eq(reason, "waiting for battery not low (now: low)");
	struct device_state ok = OK_DEV;
	ck_assert(constraints_check(&all, &ok, false, reason, sizeof reason));
}
END_TEST

START_TEST(test_gate_truncates_reason_to_buffer) {
	struct job_constraints c = {.network = NET_REQ_UNMETERED};
	struct device_state d = NET(DEV_NET_METERED);
	char reason[12];
	ck_assert(!constraints_check(&c, &d, true, reason, sizeof reason));
	ck_assert_str_eq(reason, "waiting for");
}
END_TEST

/* --- the sim provider ---------------------------------------------------------- */

struct changes {
	int calls;
	struct device_state old, now;
};

static void count_change(void *arg, const struct device_state *old,
                         const struct device_state *now) {
	struct changes *c = arg;
	c->calls++;
	c->old = *old;
	c->now = *now;
}

static struct platform *open_sim(struct event_base *base, struct changes *ch) {
	char *cause = NULL;
	struct platform_args pa = {.name = "sim", .base = base, .state_dir = "/",
	                           .fn = count_change, .arg = ch};
	struct platform *p = platform_open(&pa, &cause);
	ck_assert_msg(p != NULL, "sim: %s", cause);
	return p;
}

START_TEST(test_sim_starts_with_everything_allowed) {
	struct event_base *base = event_base_new();
	struct changes ch = {0};
	struct platform *p = open_sim(base, &ch);
	struct device_state d;
	platform_get(p, &d);
	struct device_state want = OK_DEV;
	ck_assert_mem_eq(&d, &want, sizeof d);
	ck_assert_str_eq(platform_name(p), "sim");
	ck_assert(platform_can_set(p));
	ck_assert_int_eq(ch.calls, 0);
	platform_close(p);
	event_base_free(base);
}
END_TEST

START_TEST(test_sim_set_every_key_and_value) {
	static const struct {
		const char *key, *value;
		size_t off;
		int want;
	} sets[] = {
		{"network", "none", offsetof(struct device_state, network), DEV_NET_NONE},
		{"network", "metered", offsetof(struct device_state, network), DEV_NET_METERED},
		{"network", "unknown", offsetof(struct device_state, network), U},
		{"network", "unmetered", offsetof(struct device_state, network), DEV_NET_UNMETERED},
		{"charging", "false", offsetof(struct device_state, charging), 0},
		{"charging", "unknown", offsetof(struct device_state, charging), U},
		{"charging", "yes", offsetof(struct device_state, charging), 1},
		{"battery_low", "true", offsetof(struct device_state, battery_low), 1},
		{"battery_low", "0", offsetof(struct device_state, battery_low), 0},
		{"idle", "no", offsetof(struct device_state, idle), 0},
		{"idle", "1", offsetof(struct device_state, idle), 1},
		{"storage_low", "true", offsetof(struct device_state, storage_low), 1},
		{"storage_low", "unknown", offsetof(struct device_state, storage_low), U},
	};
	struct event_base *base = event_base_new();
	struct changes ch = {0};
	struct platform *p = open_sim(base, &ch);
	for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
		char *cause = NULL;
		ck_assert_msg(platform_set(p, sets[i].key, sets[i].value, &cause) == 0, "%s", cause);
		struct device_state d;
		platform_get(p, &d);
		int got;
		memcpy(&got, (char *)&d + sets[i].off, sizeof got);
		ck_assert_msg(got == sets[i].want, "%s=%s gave %d", sets[i].key, sets[i].value, got);
		ck_assert_mem_eq(&ch.now, &d, sizeof d);
	}
	platform_close(p);
	event_base_free(base);
}
END_TEST

START_TEST(test_sim_rejects_bad_keys_and_values_without_changing) {
	struct event_base *base = event_base_new();
	struct changes ch = {0};
	struct platform *p = open_sim(base, &ch);
	char *cause = NULL;
	ck_assert_int_eq(platform_set(p, "wifi", "on", &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "unknown device key \"wifi\""));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(platform_set(p, "network", "fast", &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "network=fast"));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(platform_set(p, "charging", "maybe", &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "charging=maybe: expected true, false or unknown"));
	free(cause);
	ck_assert_int_eq(ch.calls, 0);
	platform_close(p);
	event_base_free(base);
}
END_TEST

START_TEST(test_sim_callback_fires_only_on_real_change) {
	struct event_base *base = event_base_new();
	struct changes ch = {0};
	struct platform *p = open_sim(base, &ch);
	char *cause = NULL;
	ck_assert_int_eq(platform_set(p, "network", "unmetered", &cause), 0); /* already so */
	ck_assert_int_eq(ch.calls, 0);
	ck_assert_int_eq(platform_set(p, "network", "metered", &cause), 0);
	ck_assert_int_eq(ch.calls, 1);
	ck_assert_int_eq(ch.old.network, DEV_NET_UNMETERED);
	ck_assert_int_eq(ch.now.network, DEV_NET_METERED);
	ck_assert_int_eq(platform_set(p, "network", "metered", &cause), 0);
	ck_assert_int_eq(ch.calls, 1);
	ck_assert_int_eq(platform_set(p, "idle", "false", &cause), 0);
	ck_assert_int_eq(ch.calls, 2);
	ck_assert_int_eq(ch.old.idle, 1);
	ck_assert_int_eq(ch.now.idle, 0);
	platform_close(p);
	event_base_free(base);
}
END_TEST

START_TEST(test_unknown_platform_name_is_refused) {
	struct event_base *base = event_base_new();
	char *cause = NULL;
	struct platform_args pa = {.name = "android9", .base = base};
	ck_assert_ptr_null(platform_open(&pa, &cause));
	ck_assert_str_eq(cause, "unknown platform \"android9\" (try \"linux\" or \"sim\")");
	free(cause);
	event_base_free(base);
}
END_TEST

START_TEST(test_device_state_json_shows_unknown_as_null) {
	struct device_state d = {DEV_NET_METERED, 1, U, 0, U};
	json_t *j = platform_state_to_json(&d);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	ck_assert_str_eq(s, "{\"battery_low\":null,\"charging\":true,\"idle\":false,"
	                    "\"network\":\"metered\",\"storage_low\":null}");
	free(s);
	json_decref(j);
}
END_TEST

/* --- linux: power_supply trees --------------------------------------------------- */

START_TEST(test_power_mains_online_is_charging) {
	char *root = make_tmpdir();
	put_mains(root, "AC", "Mains", "1");
	put_battery(root, "BAT0", "Discharging", "50"); /* firmware lag: mains wins */
	struct power p = read_power(root);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(p.charging, 1);
	ck_assert_int_eq(p.low, 0);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_usb_charger_online_is_charging) {
	char *root = make_tmpdir();
	put_mains(root, "ucsi-source-psy-1", "USB", "1");
	put_battery(root, "BAT0", "Not charging", "80");
	struct power p = read_power(root);
	ck_assert_int_eq(p.charging, 1);
	ck_assert_int_eq(p.low, 0);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_battery_charging_is_charging_and_not_low) {
	char *root = make_tmpdir();
	put_mains(root, "AC", "Mains", "0");
	put_battery(root, "BAT0", "Charging", "5");
	struct power p = read_power(root);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(p.charging, 1);
	ck_assert_int_eq(p.low, 0);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_battery_full_is_charging) {
	char *root = make_tmpdir();
	put_battery(root, "BAT0", "Full", "100");
	struct power p = read_power(root);
	ck_assert_int_eq(p.charging, 1);
	ck_assert_int_eq(p.low, 0);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_discharging_at_10_percent_is_battery_low) {
	char *root = make_tmpdir();
	put_mains(root, "AC", "Mains", "0");
	put_battery(root, "BAT0", "Discharging", "10");
	struct power p = read_power(root);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(p.charging, 0);
	ck_assert_int_eq(p.low, 1);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_discharging_at_15_percent_is_not_low) {
	char *root = make_tmpdir();
	put_battery(root, "BAT0", "Discharging", "15");
	struct power p = read_power(root);
	ck_assert_int_eq(p.charging, 0);
	ck_assert_int_eq(p.low, 0);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_capacity_from_energy_when_no_capacity_file) {
	char *root = make_tmpdir();
	put_attr(root, "BAT1", "type", "Battery");
	put_attr(root, "BAT1", "status", "Discharging");
	put_attr(root, "BAT1", "energy_now", "4000000");
	put_attr(root, "BAT1", "energy_full", "50000000"); /* 8 % */
	struct power p = read_power(root);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(p.low, 1);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_no_supplies_means_on_mains) {
	char *root = make_tmpdir();
	struct power p = read_power(root);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(p.charging, 1);
	ck_assert_int_eq(p.low, 0);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_peripheral_battery_is_ignored) {
	char *root = make_tmpdir();
	put_battery(root, "hidpp_battery_0", "Discharging", "3");
	put_attr(root, "hidpp_battery_0", "scope", "Device");
	struct power p = read_power(root);
	ck_assert_int_eq(p.charging, 1);
	ck_assert_int_eq(p.low, 0);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_unreadable_status_is_unknown) {
	char *root = make_tmpdir();
	char path[PATH_MAX];
	put_attr(root, "BAT0", "type", "Battery");
	/* A directory where the file should be: read() fails even for root. */
	snprintf(path, sizeof path, "%s/BAT0/status", root);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	struct power p = read_power(root);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_int_eq(p.charging, U);
	ck_assert_int_eq(p.low, U);
	ck_assert_ptr_nonnull(strstr(p.cause, "/BAT0/status: Is a directory"));
	free(p.cause);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_online_charger_decides_despite_unreadable_battery) {
	char *root = make_tmpdir();
	put_mains(root, "AC", "Mains", "1");
	put_attr(root, "BAT0", "type", "Battery"); /* no status at all */
	struct power p = read_power(root);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_int_eq(p.charging, 1);
	ck_assert_int_eq(p.low, U);
	free(p.cause);
	rm_tree(root);
}
END_TEST

START_TEST(test_power_missing_tree_is_unknown) {
	char *root = make_tmpdir();
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/absent", root);
	struct power p = read_power(path);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_int_eq(p.charging, U);
	ck_assert_int_eq(p.low, U);
	ck_assert_ptr_nonnull(strstr(p.cause, "cannot list power supplies in"));
	free(p.cause);
	rm_tree(root);
}
END_TEST

/* --- linux: provider opened for real on a fake power tree ------------------------- */

static char *default_patterns[] = {"wwan*", "ppp*", "usb*", NULL};

static struct device_settings linux_settings(char *power_path, int storage_low_percent) {
	return (struct device_settings){
		.metered_interfaces = default_patterns,
		.idle_load = 0.5,
		.storage_low_percent = storage_low_percent,
		.power_supply_path = power_path,
		.unknown_allows = true,
	};
}

START_TEST(test_linux_refresh_reports_power_change_through_callback) {
	char *root = make_tmpdir();
	put_mains(root, "AC", "Mains", "1");
	put_battery(root, "BAT0", "Charging", "40");
	struct device_settings s = linux_settings(root, 0);
	struct event_base *base = event_base_new();
	struct changes ch = {0};
	char *cause = NULL;
	struct platform_args pa = {.name = "linux", .base = base, .settings = &s, .state_dir = root,
	                           .fn = count_change, .arg = &ch, .no_system_bus = true};
	struct platform *p = platform_open(&pa, &cause);
	ck_assert_msg(p != NULL, "%s", cause);
	ck_assert(!platform_can_set(p));
	struct linux_power_stats st;
	ck_assert(linux_power_stats(p, &st));
	ck_assert_str_eq(st.source, "poll"); /* no uevent describes a tree outside /sys */
	struct device_state d;
	platform_get(p, &d);
	ck_assert_int_eq(d.charging, 1);
	ck_assert_int_eq(d.battery_low, 0);
	ck_assert_int_eq(d.storage_low, 0);

	put_attr(root, "AC", "online", "0");
	put_battery(root, "BAT0", "Discharging", "9");
	platform_linux_refresh(p);
	ck_assert_int_ge(ch.calls, 1);
	ck_assert_int_eq(ch.now.charging, 0);
	ck_assert_int_eq(ch.now.battery_low, 1);
	int calls = ch.calls;
	platform_linux_refresh(p); /* nothing changed: no callback */
	ck_assert_int_eq(ch.calls, calls);
	platform_close(p);
	event_base_free(base);
	rm_tree(root);
}
END_TEST

START_TEST(test_linux_platform_cannot_be_set) {
	char *root = make_tmpdir();
	struct device_settings s = linux_settings(root, 10);
	struct event_base *base = event_base_new();
	char *cause = NULL;
	struct platform_args pa = {.name = "linux", .base = base, .settings = &s, .state_dir = root,
	                           .no_system_bus = true};
	struct platform *p = platform_open(&pa, &cause);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(platform_set(p, "network", "none", &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "--platform sim"));
	free(cause);
	platform_close(p);
	event_base_free(base);
	rm_tree(root);
}
END_TEST

/* --- linux: metered rule, storage, idle ------------------------------------------- */

START_TEST(test_metered_interface_patterns) {
	struct device_settings s = linux_settings(NULL, 10);
	ck_assert(linux_net_iface_metered(&s, "wwan0"));
	ck_assert(linux_net_iface_metered(&s, "wwan0test"));
	ck_assert(linux_net_iface_metered(&s, "ppp0"));
	ck_assert(linux_net_iface_metered(&s, "usb0"));
	ck_assert(!linux_net_iface_metered(&s, "eth0"));
	ck_assert(!linux_net_iface_metered(&s, "wlan0"));
	ck_assert(!linux_net_iface_metered(&s, "enp0s31f6"));
	char *wifi_only[] = {"wl*", NULL};
	s.metered_interfaces = wifi_only;
	ck_assert(linux_net_iface_metered(&s, "wlp2s0"));
	ck_assert(!linux_net_iface_metered(&s, "wwan0"));
	s.metered_interfaces = NULL;
	ck_assert(!linux_net_iface_metered(&s, "wwan0"));
}
END_TEST

START_TEST(test_networkmanager_metered_values) {
	ck_assert_int_eq(linux_net_nm_metered(0), -1); /* unknown: the names decide */
	ck_assert_int_eq(linux_net_nm_metered(1), 1);  /* yes */
	ck_assert_int_eq(linux_net_nm_metered(2), 0);  /* no */
	ck_assert_int_eq(linux_net_nm_metered(3), 1);  /* guess yes */
	ck_assert_int_eq(linux_net_nm_metered(4), 0);  /* guess no */
}
END_TEST

START_TEST(test_storage_threshold_100_is_low_and_0_is_not) {
	char *dir = make_tmpdir();
	char *cause = NULL;
	ck_assert_int_eq(linux_storage_read(dir, 100, &cause), 1);
	ck_assert_int_eq(linux_storage_read(dir, 0, &cause), 0);
	rm_tree(dir);
}
END_TEST

START_TEST(test_storage_of_missing_dir_is_unknown) {
	char *cause = NULL;
	ck_assert_int_eq(linux_storage_read("/nonexistent/mcpjob-state", 10, &cause), -1);
	ck_assert_str_eq(cause, "cannot measure free space of /nonexistent/mcpjob-state: "
	                        "No such file or directory");
	free(cause);
}
END_TEST

START_TEST(test_linux_storage_low_follows_setting) {
	char *dir = make_tmpdir();
	struct device_settings s = linux_settings(dir, 100);
	struct event_base *base = event_base_new();
	char *cause = NULL;
	struct platform_args pa = {.name = "linux", .base = base, .settings = &s, .state_dir = dir,
	                           .no_system_bus = true};
	struct platform *p = platform_open(&pa, &cause);
	struct device_state d;
	platform_get(p, &d);
	ck_assert_int_eq(d.storage_low, 1);
	s.storage_low_percent = 0;
	platform_linux_refresh(p);
	platform_get(p, &d);
	ck_assert_int_eq(d.storage_low, 0);
	platform_close(p);
	event_base_free(base);
	rm_tree(dir);
}
END_TEST

START_TEST(test_idle_from_loadavg) {
	ck_assert_int_eq(linux_idle_from_loadavg("0.12 0.30 0.41 1/234 5678\n", 0.5), 1);
	ck_assert_int_eq(linux_idle_from_loadavg("2.50 1.00 0.80 3/234 5678\n", 0.5), 0);
	ck_assert_int_eq(linux_idle_from_loadavg("0.50 0.50 0.50 1/1 1\n", 0.5), 0);
	ck_assert_int_eq(linux_idle_from_loadavg("", 0.5), U);
	ck_assert_int_eq(linux_idle_from_loadavg("busy", 0.5), U);
}
END_TEST

/* --- linux: kernel uevents (power.c without udevd) ------------------------------ */

/* A kernel uevent as lib/kobject_uevent.c lays it out ("ACTION@DEVPATH\0"
 * then KEY=VALUE\0), with the properties of an ACPI mains adapter (this test
 * VM has no power_supply device to capture one from). */
static const char uevent_ac[] =
	"change@/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A08:00/device:00/PNP0C09:00/ACPI0003:00/"
	"power_supply/AC\0"
	"ACTION=change\0"
	"DEVPATH=/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A08:00/device:00/PNP0C09:00/ACPI0003:00/"
	"power_supply/AC\0"
	"SUBSYSTEM=power_supply\0"
	"POWER_SUPPLY_NAME=AC\0"
	"POWER_SUPPLY_TYPE=Mains\0"
	"POWER_SUPPLY_ONLINE=1\0"
	"SEQNUM=3362\0";

/* Captured on this VM after `echo change > /sys/class/net/lo/uevent`. */
static const char uevent_lo[] =
	"change@/devices/virtual/net/lo\0"
	"ACTION=change\0"
	"DEVPATH=/devices/virtual/net/lo\0"
	"SUBSYSTEM=net\0"
	"SYNTH_UUID=0\0"
	"INTERFACE=lo\0"
	"IFINDEX=1\0"
	"SEQNUM=9603\0";

static const struct ucred kernel_cred = {.pid = 0, .uid = 0, .gid = 0};

#define REJECT LINUX_POWER_UEVENT_REJECT
#define OTHER  LINUX_POWER_UEVENT_OTHER
#define POWER  LINUX_POWER_UEVENT_POWER

static int classify(const char *buf, size_t len, uint32_t port, const struct ucred *cred) {
	const char *why = NULL;
	int r = linux_power_uevent_classify(buf, len, port, cred, &why);
	ck_assert(r == REJECT ? why != NULL : why == NULL);
	return r;
}

START_TEST(test_uevent_power_supply_from_kernel_rereads) {
	ck_assert_int_eq(classify(uevent_ac, sizeof uevent_ac - 1, 0, &kernel_cred),
	                 POWER);
}
END_TEST

START_TEST(test_uevent_of_another_subsystem_is_ignored) {
	ck_assert_int_eq(classify(uevent_lo, sizeof uevent_lo - 1, 0, &kernel_cred),
	                 OTHER);
	/* A longer subsystem name that starts the same is another subsystem. */
	static const char near[] = "change@/x\0SUBSYSTEM=power_supply_x\0";
	ck_assert_int_eq(classify(near, sizeof near - 1, 0, &kernel_cred), OTHER);
	/* POWER_SUPPLY_* keys without SUBSYSTEM=power_supply are not enough. */
	static const char keys[] = "change@/x\0SUBSYSTEM=input\0POWER_SUPPLY_ONLINE=1\0";
	ck_assert_int_eq(classify(keys, sizeof keys - 1, 0, &kernel_cred), OTHER);
}
END_TEST

START_TEST(test_uevent_not_from_the_kernel_is_rejected) {
	size_t n = sizeof uevent_ac - 1;
	struct ucred user = {.pid = 4242, .uid = 0, .gid = 0};
	struct ucred nonroot = {.pid = 0, .uid = 1000, .gid = 1000};
	ck_assert_int_eq(classify(uevent_ac, n, 4242, &kernel_cred), REJECT);
	ck_assert_int_eq(classify(uevent_ac, n, 0, &user), REJECT);
	ck_assert_int_eq(classify(uevent_ac, n, 0, &nonroot), REJECT);
	ck_assert_int_eq(classify(uevent_ac, n, 0, NULL), REJECT);
}
END_TEST

START_TEST(test_uevent_without_kernel_header_is_rejected) {
	/* udevd's own messages start "libudev\0" (and go to group 2). */
	static const char udev[] = "libudev\0\xfe\xed\xca\xfeSUBSYSTEM=power_supply\0";
	ck_assert_int_eq(classify(udev, sizeof udev - 1, 0, &kernel_cred), REJECT);
	static const char no_nul[] = "change@/devices/virtual/power_supply/AC";
	ck_assert_int_eq(classify(no_nul, sizeof no_nul - 1, 0, &kernel_cred), REJECT);
	ck_assert_int_eq(classify("", 0, 0, &kernel_cred), REJECT);
	/* A last field without its NUL is still read within the length. */
	static const char tail[] = "change@/x\0SUBSYSTEM=power_supply";
	ck_assert_int_eq(classify(tail, sizeof tail - 1, 0, &kernel_cred), POWER);
	ck_assert_int_eq(classify(tail, sizeof tail - 4, 0, &kernel_cred), OTHER);
}
END_TEST

static void uevent_deadline_cb(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Run @base until the provider has received more than @seen datagrams;
 * false when 10 s pass first (a guard against hanging, not a timing test). */
static bool uevent_wait(struct event_base *base, struct platform *p, unsigned long seen,
                        struct linux_power_stats *st) {
	bool expired = false;
	struct timeval tv = {.tv_sec = 10};
	struct event *deadline = evtimer_new(base, uevent_deadline_cb, &expired);
	evtimer_add(deadline, &tv);
	while (linux_power_stats(p, st) && st->seen <= seen && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	return st->seen > seen;
}

START_TEST(test_linux_kernel_uevents_arrive_and_forged_ones_are_refused) {
	if (access("/run/udev/control", F_OK) == 0) {
		printf("skipped: udevd runs here, so power.c uses its events, not the kernel's\n");
		return;
	}
	char map[64] = "";
	FILE *f = fopen("/proc/self/uid_map", "r");
	unsigned long in = 1, out = 1, count = 0;
	if (f && fgets(map, sizeof map, f) && sscanf(map, "%lu %lu %lu", &in, &out, &count) == 3 &&
	    (in != 0 || out != 0 || count != 4294967295UL)) {
		printf("skipped: in a user namespace the kernel sends no uevents\n");
		fclose(f);
		return;
	}
	if (f)
		fclose(f);
	struct device_settings s = linux_settings(NULL, 0); /* the real /sys/class/power_supply */
	struct event_base *base = event_base_new();
	char *cause = NULL;
	struct platform_args pa = {.name = "linux", .base = base, .settings = &s,
	                           .state_dir = "/tmp", .no_system_bus = true};
	struct platform *p = platform_open(&pa, &cause);
	ck_assert_msg(p != NULL, "%s", cause);
	struct linux_power_stats st;
	ck_assert(linux_power_stats(p, &st));
	ck_assert_str_eq(st.source, "kernel");
	ck_assert_uint_ne(st.port, 0);

	/* The kernel itself sends a uevent for lo: received, believed, not power. */
	int fd = open("/sys/class/net/lo/uevent", O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && write(fd, "change", 6) == 6) {
		ck_assert_msg(uevent_wait(base, p, st.seen, &st), "no kernel uevent arrived");
		ck_assert_uint_eq(st.rejected, 0);
	} else {
		printf("not root: no kernel uevent triggered (%s)\n", strerror(errno));
	}
	if (fd >= 0)
		close(fd);

	/* A power_supply uevent forged by a process (root may send to the
	 * socket): received and refused, the tree not re-read for it. */
	int us = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	ck_assert_int_ge(us, 0);
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = st.port};
	unsigned long power = st.power, rejected = st.rejected;
	if (sendto(us, uevent_ac, sizeof uevent_ac - 1, 0, (struct sockaddr *)&to, sizeof to) ==
	    (ssize_t)(sizeof uevent_ac - 1)) {
		ck_assert_msg(uevent_wait(base, p, st.seen, &st), "the forged one did not arrive");
		ck_assert_uint_eq(st.rejected, rejected + 1);
		ck_assert_uint_eq(st.power, power);
	} else {
		printf("cannot send to the uevent socket (%s): not tried\n", strerror(errno));
	}
	close(us);
	platform_close(p);
	event_base_free(base);
}
END_TEST

static Suite *platform_suite(void) {
	Suite *s = suite_create("platform");
	TCase *gate = tcase_create("gate");
	tcase_add_loop_test(gate, test_gate_each_constraint_and_state_when_unknown_allows, 0,
	                    N_GATE_CASES);
	tcase_add_loop_test(gate, test_gate_each_constraint_and_state_when_unknown_refused, 0,
	                    N_GATE_CASES);
	tcase_add_test(gate, test_gate_without_constraints_holds_on_any_device);
	tcase_add_test(gate, test_gate_names_the_first_unmet_constraint);
	tcase_add_test(gate, test_gate_truncates_reason_to_buffer);
	suite_add_tcase(s, gate);

	TCase *sim = tcase_create("sim");
	tcase_add_test(sim, test_sim_starts_with_everything_allowed);
	tcase_add_test(sim, test_sim_set_every_key_and_value);
	tcase_add_test(sim, test_sim_rejects_bad_keys_and_values_without_changing);
	tcase_add_test(sim, test_sim_callback_fires_only_on_real_change);
	tcase_add_test(sim, test_unknown_platform_name_is_refused);
	tcase_add_test(sim, test_device_state_json_shows_unknown_as_null);
	suite_add_tcase(s, sim);

	TCase *power = tcase_create("power");
	tcase_add_test(power, test_power_mains_online_is_charging);
	tcase_add_test(power, test_power_usb_charger_online_is_charging);
	tcase_add_test(power, test_power_battery_charging_is_charging_and_not_low);
	tcase_add_test(power, test_power_battery_full_is_charging);
	tcase_add_test(power, test_power_discharging_at_10_percent_is_battery_low);
	tcase_add_test(power, test_power_discharging_at_15_percent_is_not_low);
	tcase_add_test(power, test_power_capacity_from_energy_when_no_capacity_file);
	tcase_add_test(power, test_power_no_supplies_means_on_mains);
	tcase_add_test(power, test_power_peripheral_battery_is_ignored);
	tcase_add_test(power, test_power_unreadable_status_is_unknown);
	tcase_add_test(power, test_power_online_charger_decides_despite_unreadable_battery);
	tcase_add_test(power, test_power_missing_tree_is_unknown);
	tcase_add_test(power, test_linux_refresh_reports_power_change_through_callback);
	tcase_add_test(power, test_linux_platform_cannot_be_set);
	suite_add_tcase(s, power);

	TCase *uevent = tcase_create("uevent");
	tcase_add_test(uevent, test_uevent_power_supply_from_kernel_rereads);
	tcase_add_test(uevent, test_uevent_of_another_subsystem_is_ignored);
	tcase_add_test(uevent, test_uevent_not_from_the_kernel_is_rejected);
	tcase_add_test(uevent, test_uevent_without_kernel_header_is_rejected);
	tcase_add_test(uevent, test_linux_kernel_uevents_arrive_and_forged_ones_are_refused);
	suite_add_tcase(s, uevent);

	TCase *misc = tcase_create("linux");
	tcase_add_test(misc, test_metered_interface_patterns);
	tcase_add_test(misc, test_networkmanager_metered_values);
	tcase_add_test(misc, test_storage_threshold_100_is_low_and_0_is_not);
	tcase_add_test(misc, test_storage_of_missing_dir_is_unknown);
	tcase_add_test(misc, test_linux_storage_low_follows_setting);
	tcase_add_test(misc, test_idle_from_loadavg);
	suite_add_tcase(s, misc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(platform_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
