/*
 * constraints.c - the constraint gate.
 */
#include "daemon/constraints.h"

#include <stdio.h>

static bool holds(int v, int want, bool unknown_allows) {
	return v == DEV_UNKNOWN ? unknown_allows : v == want;
}

static bool unmet(char *reason, size_t len, const char *fmt, const char *now) {
	if (reason)
		snprintf(reason, len, fmt, now);
	return false;
}

static const char *tri_name(int v, const char *yes, const char *no) {
	return v == DEV_UNKNOWN ? "unknown" : v ? yes : no;
}

bool constraints_check(const struct job_constraints *c, const struct device_state *d,
                       bool unknown_allows, char *reason, size_t len) {
	const char *net = platform_network_name(d->network);
	if (c->network == NET_REQ_CONNECTED && d->network != DEV_UNKNOWN &&
	    d->network == DEV_NET_NONE)
		return unmet(reason, len, "waiting for network (now: %s)", net);
	if (c->network == NET_REQ_CONNECTED && d->network == DEV_UNKNOWN && !unknown_allows)
		return unmet(reason, len, "waiting for network (now: %s)", net);
	if (c->network == NET_REQ_UNMETERED && !holds(d->network, DEV_NET_UNMETERED, unknown_allows))
		return unmet(reason, len, "waiting for unmetered network (now: %s)", net);
	if (c->charging && !holds(d->charging, 1, unknown_allows))
		return unmet(reason, len, "waiting for charging (now: %s)",
		             tri_name(d->charging, "charging", "on battery"));
	if (c->battery_not_low && !holds(d->battery_low, 0, unknown_allows))
		return unmet(reason, len, "waiting for battery not low (now: %s)",
		             tri_name(d->battery_low, "low", "ok"));
	if (c->idle && !holds(d->idle, 1, unknown_allows))
		return unmet(reason, len, "waiting for device idle (now: %s)",
		             tri_name(d->idle, "idle", "in use"));
	if (c->storage_not_low && !holds(d->storage_low, 0, unknown_allows))
		return unmet(reason, len, "waiting for storage not low (now: %s)",
		             tri_name(d->storage_low, "low", "ok"));
	if (reason && len)
		reason[0] = '\0';
	return true;
}

bool constraints_any(const struct job_constraints *c) {
	return c->network != NET_REQ_ANY || c->charging || c->battery_not_low || c->idle ||
	       c->storage_not_low;
}

unsigned constraints_watch_mask(const struct job_constraints *c) {
	return (c->network != NET_REQ_ANY ? DEV_WATCH_NETWORK : 0) |
	       (c->charging ? DEV_WATCH_CHARGING : 0) | (c->battery_not_low ? DEV_WATCH_BATTERY : 0) |
	       (c->idle ? DEV_WATCH_IDLE : 0) | (c->storage_not_low ? DEV_WATCH_STORAGE : 0);
}

json_t *constraints_to_json(const struct job_constraints *c) {
	return json_pack("{s:s, s:b, s:b, s:b, s:b}", "network", job_net_req_name(c->network),
	                 "charging", c->charging, "battery_not_low", c->battery_not_low, "idle",
	                 c->idle, "storage_not_low", c->storage_not_low);
}
