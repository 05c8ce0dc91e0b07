/*
 * strv.c - NULL-terminated arrays of strings (argv, env, patterns).
 */
#include "common/strv.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

void strv_free(char **v) {
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t strv_len(char *const *v) {
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

char **strv_dup(char *const *v) {
	if (v == NULL)
		return NULL;
	size_t n = strv_len(v);
	char **out = xcalloc(n + 1, sizeof *out);
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

bool strv_equal(char *const *a, char *const *b) {
	size_t n = strv_len(a);
	if (n != strv_len(b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}
