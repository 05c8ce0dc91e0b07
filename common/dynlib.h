/*
 * dynlib.h - a shared library loaded with dlopen() the first time it is
 * needed, not at start-up: its symbols resolved into the caller's function
 * pointers, once, safe from any thread. common/netlib (libcurl, libcrypto)
 * and common/sdlib (libsystemd) are built on it, so a daemon that uses none
 * of them maps none of them.
 */
#ifndef MCPJOB_DYNLIB_H
#define MCPJOB_DYNLIB_H

#include <pthread.h>
#include <stdbool.h>

/* One symbol: its name, and the address of the pointer dlsym() fills. */
struct dynlib_sym {
	const char *name;
	void *slot;
};

struct dynlib {
	const char *what;              /* "libcurl", for messages */
	const char *env;               /* tests only: a variable naming another file */
	const char *file;              /* the soname */
	const char *package;           /* the Debian package to install */
	const struct dynlib_sym *syms; /* ends with a NULL name */
	int (*init)(void);             /* after the symbols, once: 0, or it cannot be used */
	_Atomic int state;
	char *cause; /* failed: why, for people */
	pthread_mutex_t lock;
};
#define DYNLIB_INIT(what, env, file, package, syms, init) \
	{ (what), (env), (file), (package), (syms), (init), 0, NULL, PTHREAD_MUTEX_INITIALIZER }

/* Load @l unless it is: 0, or -1 with *@cause (may be NULL) saying what
 * failed and which package to install. Tried once; a failure stays. */
int dynlib_need(struct dynlib *l, char **cause);
/* Loaded (never loads it). */
bool dynlib_loaded(struct dynlib *l);
/* Why it failed, or NULL. */
const char *dynlib_cause(struct dynlib *l);

#endif
