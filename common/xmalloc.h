/*
 * xmalloc.h - allocators that never return NULL.
 *
 * Out of memory is a broken invariant for a daemon of this size: the
 * x-allocators end the process with a message (log_fatalx(), log.h) instead
 * of returning NULL, so callers need no NULL checks (as tmux's xmalloc.c).
 */
#ifndef MCPJOB_XMALLOC_H
#define MCPJOB_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xstrdup(s) or NULL when s is NULL. */
char *xstrdup_or_null(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
