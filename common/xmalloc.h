/*
 * xmalloc.h - allocators that never return NULL, and the two ways to die.
 *
 * Out of memory is a broken invariant for a daemon of this size: the
 * x-allocators end the process with a message instead of returning NULL, so
 * callers need no NULL checks (as tmux's xmalloc.c). fatal()/fatalx() are for
 * broken invariants and start-up failures only; anything caused by input, a
 * child or a client returns an error to its caller instead.
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

/* Log and exit(1); fatal() appends strerror(errno). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Free a NULL-terminated array of strings and the array itself. */
void strv_free(char **v);
/* Number of entries in a NULL-terminated array of strings. */
size_t strv_len(char *const *v);
/* Deep copy of a NULL-terminated array (NULL gives NULL). */
char **strv_dup(char *const *v);

#endif
