/*
 * linux.c - device state on Linux.
 *
 * Placeholder until the linux provider lands: reports every value as
 * unknown (which the default policy treats as allowed).
 */
#include "platform/platform.h"

static int linux_open(struct platform *p, char **cause) {
	(void)p;
	(void)cause;
	return 0;
}

static void linux_close(struct platform *p) {
	(void)p;
}

const struct platform_ops platform_linux_ops = {
	.name = "linux",
	.open = linux_open,
	.close = linux_close,
	.set = NULL,
};
