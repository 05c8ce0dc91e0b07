/*
 * sim.c - the simulated device: its state is whatever device.set says.
 * For tests and demos; starts with everything allowed.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "platform/provider.h"

static int sim_open(struct platform *p, char **cause) {
	(void)cause;
	p->state = (struct device_state){DEV_NET_UNMETERED, 1, 0, 1, 0};
	return 0;
}

static void sim_close(struct platform *p) {
	(void)p;
}

static int parse_bool(const char *key, const char *v, int *out, char **cause) {
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else if (strcmp(v, "unknown") == 0)
		*out = DEV_UNKNOWN;
	else {
		*cause = xasprintf("%s=%s: expected true, false or unknown", key, v);
		return -1;
	}
	return 0;
}

static int sim_set(struct platform *p, const char *key, const char *value, char **cause) {
	struct device_state s = p->state;
	if (strcmp(key, "network") == 0) {
		if (strcmp(value, "none") == 0) s.network = DEV_NET_NONE;
		else if (strcmp(value, "metered") == 0) s.network = DEV_NET_METERED;
		else if (strcmp(value, "unmetered") == 0) s.network = DEV_NET_UNMETERED;
		else if (strcmp(value, "unknown") == 0) s.network = DEV_UNKNOWN;
		else {
			*cause = xasprintf("network=%s: expected none, metered, unmetered or unknown", value);
			return -1;
		}
	} else if (strcmp(key, "charging") == 0) {
		if (parse_bool(key, value, &s.charging, cause) < 0) return -1;
	} else if (strcmp(key, "battery_low") == 0) {
		if (parse_bool(key, value, &s.battery_low, cause) < 0) return -1;
	} else if (strcmp(key, "idle") == 0) {
		if (parse_bool(key, value, &s.idle, cause) < 0) return -1;
	} else if (strcmp(key, "storage_low") == 0) {
		if (parse_bool(key, value, &s.storage_low, cause) < 0) return -1;
	} else {
		*cause = xasprintf("unknown device key \"%s\" (network, charging, battery_low, "
		                   "idle, storage_low)", key);
		return -1;
	}
	platform_update(p, &s);
	return 0;
}

const struct platform_ops platform_sim_ops = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.set = sim_set,
};
