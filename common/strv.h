/*
 * strv.h - NULL-terminated arrays of strings (argv, env, patterns).
 */
#ifndef MCPJOB_STRV_H
#define MCPJOB_STRV_H

#include <stdbool.h>
#include <stddef.h>

/* Free a NULL-terminated array of strings and the array itself. */
void strv_free(char **v);
/* Number of entries in a NULL-terminated array of strings. */
size_t strv_len(char *const *v);
/* Deep copy of a NULL-terminated array (NULL gives NULL). */
char **strv_dup(char *const *v);
/* Same strings in the same order (NULL equals an empty array). */
bool strv_equal(char *const *a, char *const *b);

#endif
