/*
 * dynlib.c - see dynlib.h.
 */
#include "common/dynlib.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

enum { LIB_UNTRIED, LIB_LOADED, LIB_FAILED };

/* Under l->lock. */
static void open_lib(struct dynlib *l) {
	const char *file = l->env ? getenv(l->env) : NULL;
	if (file == NULL || *file == '\0')
		file = l->file;
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		l->cause = xasprintf("cannot load %s (%s); install the Debian package %s", l->what,
		                     e ? e : file, l->package);
		l->state = LIB_FAILED;
		return;
	}
	for (const struct dynlib_sym *s = l->syms; s->name; s++) {
		void *fn = dlsym(h, s->name);
		if (fn == NULL) {
			l->cause = xasprintf("cannot use %s (%s has no %s: too old); install a "
			                     "current Debian package %s",
			                     l->what, file, s->name, l->package);
			l->state = LIB_FAILED;
			dlclose(h);
			return;
		}
		memcpy(s->slot, &fn, sizeof fn); /* POSIX: a data pointer holds a function's */
	}
	if (l->init != NULL && l->init() != 0) {
		l->cause = xasprintf("%s (%s) could not be initialised", l->what, file);
		l->state = LIB_FAILED;
		return; /* not closed: it may hold memory already */
	}
	atomic_store_explicit(&l->state, LIB_LOADED, memory_order_release);
}

int dynlib_need(struct dynlib *l, char **cause) {
	if (atomic_load_explicit(&l->state, memory_order_acquire) == LIB_LOADED)
		return 0;
	pthread_mutex_lock(&l->lock);
	if (l->state == LIB_UNTRIED)
		open_lib(l);
	int ok = l->state == LIB_LOADED;
	if (!ok && cause != NULL)
		*cause = xstrdup(l->cause);
	pthread_mutex_unlock(&l->lock);
	return ok ? 0 : -1;
}

bool dynlib_loaded(struct dynlib *l) {
	return atomic_load_explicit(&l->state, memory_order_acquire) == LIB_LOADED;
}

const char *dynlib_cause(struct dynlib *l) {
	return atomic_load_explicit(&l->state, memory_order_acquire) == LIB_FAILED ? l->cause
	                                                                          : NULL;
}
