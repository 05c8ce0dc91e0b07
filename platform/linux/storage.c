/*
 * storage.c - is storage low where mcpjobd keeps its state?
 *
 * statvfs() of the state dir: low when the space an unprivileged writer may
 * use (f_bavail) is below storage_low_percent of the file system (f_blocks).
 * Re-checked every 5 minutes: there is no event for "the disk is filling",
 * storage fills slowly, and a job that needs free space tolerates minutes of
 * lag. platform_linux_refresh() checks at once. The timer runs only while
 * some job waits on storage (platform_watch()), so an idle daemon sleeps.
 */
#include "platform/linux/linux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define STORAGE_CHECK_SEC (5 * 60)
#define STORAGE_DEFAULT_PERCENT 10

struct linux_storage {
	struct event *timer;
	bool warned;
};

int linux_storage_read(const char *dir, int low_percent, char **cause) {
	struct statvfs st;
	if (statvfs(dir, &st) < 0) {
		*cause = xasprintf("cannot measure free space of %s: %s", dir, strerror(errno));
		return -1;
	}
	if (st.f_blocks == 0) {
		*cause = xasprintf("cannot measure free space of %s: its file system reports no "
		                   "size", dir);
		return -1;
	}
	/* bavail * 100 < blocks * percent, in long double to stay clear of overflow. */
	return (long double)st.f_bavail * 100 < (long double)st.f_blocks * low_percent;
}

void linux_storage_refresh(struct linux_priv *lp) {
	const struct device_settings *s = lp->p->settings;
	char *cause = NULL;
	int low = linux_storage_read(lp->p->state_dir,
	                             s ? s->storage_low_percent : STORAGE_DEFAULT_PERCENT, &cause);
	if (low < 0) {
		if (!lp->storage->warned)
			log_warning("storage state unknown: %s (constraints on storage treat it as "
			            "unknown)", cause);
		lp->storage->warned = true;
		free(cause);
	}
	lp->now.storage_low = low < 0 ? DEV_UNKNOWN : low;
	linux_publish(lp);
}

static void storage_timer_cb(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	linux_storage_refresh(arg);
}

void linux_storage_open(struct linux_priv *lp) {
	lp->storage = xcalloc(1, sizeof *lp->storage);
	lp->storage->timer = event_new(lp->p->base, -1, EV_PERSIST, storage_timer_cb, lp);
	linux_storage_refresh(lp);
}

void linux_storage_poll(struct linux_priv *lp, bool on) {
	struct timeval tv = {.tv_sec = STORAGE_CHECK_SEC};
	if (lp->storage == NULL)
		return;
	if (on) {
		linux_storage_refresh(lp);
		event_add(lp->storage->timer, &tv);
	} else {
		event_del(lp->storage->timer);
	}
}

void linux_storage_close(struct linux_priv *lp) {
	if (lp->storage == NULL)
		return;
	event_free(lp->storage->timer);
	free(lp->storage);
	lp->storage = NULL;
}
