/*
 * xmalloc.c - allocators that never fail.
 */
#include "common/xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void oom(size_t size) {
	log_fatalx("out of memory allocating %zu bytes", size);
}

void *xmalloc(size_t size) {
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *xcalloc(size_t n, size_t size) {
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t size) {
	void *q = realloc(p, size ? size : 1);
	if (q == NULL)
		oom(size);
	return q;
}

void *xreallocarray(void *p, size_t n, size_t size) {
	if (size != 0 && n > ((size_t)-1) / size)
		log_fatalx("allocation of %zu x %zu bytes overflows", n, size);
	return xrealloc(p, n * size);
}

char *xstrdup(const char *s) {
	char *p = strdup(s);
	if (p == NULL)
		oom(strlen(s) + 1);
	return p;
}

char *xstrndup(const char *s, size_t n) {
	char *p = strndup(s, n);
	if (p == NULL)
		oom(n + 1);
	return p;
}

char *xstrdup_or_null(const char *s) {
	return s ? xstrdup(s) : NULL;
}

char *xvasprintf(const char *fmt, va_list ap) {
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		log_fatalx("out of memory formatting a string");
	return s;
}

char *xasprintf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

