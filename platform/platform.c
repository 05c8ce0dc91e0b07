/*
 * platform.c - choosing a device state provider, and change notification.
 */
#include "platform/provider.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

static const struct platform_ops *const providers[] = {
	&platform_linux_ops,
	&platform_sim_ops,
};

struct platform *platform_open(const struct platform_args *a, char **cause) {
	const struct platform_ops *ops = NULL;
	for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
		if (strcmp(providers[i]->name, a->name) == 0)
			ops = providers[i];
	if (ops == NULL) {
		*cause = xasprintf("unknown platform \"%s\" (try \"linux\" or \"sim\")", a->name);
		return NULL;
	}
	struct platform *p = xcalloc(1, sizeof *p);
	p->ops = ops;
	p->base = a->base;
	p->settings = a->settings;
	p->state_dir = xstrdup(a->state_dir ? a->state_dir : "/");
	p->no_system_bus = a->no_system_bus;
	p->state = (struct device_state){DEV_UNKNOWN, DEV_UNKNOWN, DEV_UNKNOWN, DEV_UNKNOWN,
	                                 DEV_UNKNOWN};
	if (ops->open(p, cause) < 0) {
		free(p->state_dir);
		free(p);
		return NULL;
	}
	/* Callbacks start after open: the initial state is not a change. */
	p->fn = a->fn;
	p->arg = a->arg;
	return p;
}

void platform_close(struct platform *p) {
	if (p == NULL)
		return;
	p->ops->close(p);
	free(p->state_dir);
	free(p);
}

const char *platform_name(const struct platform *p) {
	return p->ops->name;
}

void platform_get(const struct platform *p, struct device_state *out) {
	*out = p->state;
}

bool platform_can_set(const struct platform *p) {
	return p->ops->set != NULL;
}

int platform_set(struct platform *p, const char *key, const char *value, char **cause) {
	if (p->ops->set == NULL) {
		*cause = xasprintf("the device state cannot be set on the \"%s\" platform "
		                   "(start mcpjobd with --platform sim)", p->ops->name);
		return -1;
	}
	return p->ops->set(p, key, value, cause);
}

void platform_set_settings(struct platform *p, const struct device_settings *settings) {
	p->settings = settings;
}

void platform_refresh(struct platform *p) {
	if (p->ops->refresh)
		p->ops->refresh(p);
}

void platform_watch(struct platform *p, unsigned mask) {
	if (p->ops->watch)
		p->ops->watch(p, mask);
}

void platform_update(struct platform *p, const struct device_state *now) {
	if (memcmp(&p->state, now, sizeof *now) == 0)
		return;
	struct device_state old = p->state;
	p->state = *now;
	if (p->fn)
		p->fn(p->arg, &old, now);
}

const char *platform_network_name(int network) {
	switch (network) {
	case DEV_NET_NONE: return "none";
	case DEV_NET_METERED: return "metered";
	case DEV_NET_UNMETERED: return "unmetered";
	default: return "unknown";
	}
}

static json_t *tri(int v) {
	return v == DEV_UNKNOWN ? json_null() : json_boolean(v);
}

json_t *platform_state_to_json(const struct device_state *d) {
	return json_pack("{s:o, s:o, s:o, s:o, s:o}",
	                 "network", d->network == DEV_UNKNOWN ? json_null()
	                                                      : json_string(platform_network_name(d->network)),
	                 "charging", tri(d->charging), "battery_low", tri(d->battery_low),
	                 "idle", tri(d->idle), "storage_low", tri(d->storage_low));
}
