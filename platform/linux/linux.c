/*
 * linux.c - the "linux" device-state provider: the ops table and the glue
 * between its sources (see linux.h for which file measures what).
 *
 * Every source is event driven where the system offers events (rtnetlink,
 * D-Bus signals, udev); the few timers are documented where they are set.
 * Nothing here is fatal: a source that cannot be read reports DEV_UNKNOWN
 * and logs one warning saying why, and open() always succeeds.
 */
#include "platform/linux/linux.h"

#include <stdlib.h>

#include "common/xmalloc.h"

void linux_publish(struct linux_priv *lp) {
	platform_update(lp->p, &lp->now);
}

static int linux_open(struct platform *p, char **cause) {
	(void)cause;
	struct linux_priv *lp = xcalloc(1, sizeof *lp);
	lp->p = p;
	lp->now = p->state; /* all DEV_UNKNOWN until a source has measured */
	p->priv = lp;
	if (!p->no_system_bus)
		linux_bus_open(lp);
	linux_net_open(lp);
	linux_power_open(lp);
	linux_idle_open(lp);
	linux_storage_open(lp);
	if (lp->bus)
		linux_bus_arm(lp); /* send the requests the sources queued */
	linux_publish(lp);
	return 0;
}

static void linux_close(struct platform *p) {
	struct linux_priv *lp = p->priv;
	if (lp == NULL)
		return;
	linux_storage_close(lp);
	linux_idle_close(lp);
	linux_power_close(lp);
	linux_net_close(lp);
	linux_bus_close(lp);
	free(lp);
	p->priv = NULL;
}

void platform_linux_refresh(struct platform *p) {
	struct linux_priv *lp = p->priv;
	if (p->ops != &platform_linux_ops || lp == NULL)
		return;
	linux_power_refresh(lp);
	linux_idle_refresh(lp);
	linux_storage_refresh(lp);
}

static void linux_watch(struct platform *p, unsigned mask) {
	struct linux_priv *lp = p->priv;
	linux_power_poll(lp, mask & (DEV_WATCH_CHARGING | DEV_WATCH_BATTERY));
	linux_idle_poll(lp, mask & DEV_WATCH_IDLE);
	linux_storage_poll(lp, mask & DEV_WATCH_STORAGE);
}

const struct platform_ops platform_linux_ops = {
	.name = "linux",
	.open = linux_open,
	.close = linux_close,
	.set = NULL,
	.watch = linux_watch,
	.refresh = platform_linux_refresh,
};
