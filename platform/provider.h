/*
 * provider.h - what a device-state provider implements and may touch
 * (platform/linux/, platform/sim/); consumers of platform.h never see it.
 *
 * A provider fills in an ops table, keeps p->state current through
 * platform_update() and keeps its own data in p->priv.
 */
#ifndef MCPJOB_PLATFORM_PROVIDER_H
#define MCPJOB_PLATFORM_PROVIDER_H

#include "platform/platform.h"

struct platform_ops {
	const char *name;
	int (*open)(struct platform *p, char **cause);
	void (*close)(struct platform *p);
	/* NULL when the provider's state cannot be set from outside. */
	int (*set)(struct platform *p, const char *key, const char *value, char **cause);
	/* Read every source again now (on reload); NULL when always current. */
	void (*refresh)(struct platform *p);
	/* Which values jobs wait on now (DEV_WATCH_*); NULL when it costs nothing. */
	void (*watch)(struct platform *p, unsigned mask);
};

struct platform {
	const struct platform_ops *ops;
	struct event_base *base;
	const struct device_settings *settings;
	char *state_dir;
	bool no_system_bus;
	struct device_state state;
	platform_change_fn fn;
	void *arg;
	void *priv; /* the provider's own data */
};

/* Set the whole state; calls the change callback if anything differs. */
void platform_update(struct platform *p, const struct device_state *now);

extern const struct platform_ops platform_linux_ops;
extern const struct platform_ops platform_sim_ops;

#endif
