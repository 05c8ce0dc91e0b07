/*
 * mcp_headers.c - ${env:NAME} and ${credential:NAME} in header values (see
 * mcp_headers.h). Pure string work plus one bounded file read.
 */
#include "daemon/mcp/mcp_headers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"

#define REF_NAME_MAX 128

bool mcp_headers_name_ok(const char *name) {
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (*name == '\0' || strlen(name) > 256)
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c != '\0' && strchr(extra, c) != NULL)))
			return false;
	}
	return true;
}

static bool ref_name_ok(const char *s, size_t n) {
	if (n == 0 || n > REF_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

enum ref_kind { REF_ENV, REF_CREDENTIAL };

/*
 * Parse the reference at @p (which starts with "${"): kind, name and the
 * length up to and including '}'. -1 with *@cause when it is not one.
 */
static int ref_parse(const char *p, enum ref_kind *kind, char *name, size_t *len, char **cause) {
	const char *end = strchr(p, '}');
	if (end == NULL) {
		*cause = xstrdup("\"${\" without a closing \"}\" (write a reference as ${env:NAME} or "
		                 "${credential:NAME})");
		return -1;
	}
	const char *body = p + 2, *colon = memchr(body, ':', (size_t)(end - body));
	size_t blen = (size_t)(end - body);
	if (colon == NULL || blen > REF_NAME_MAX + 16) {
		*cause = xasprintf("${%.*s}: not a reference (use ${env:NAME} or ${credential:NAME})",
		                   (int)(blen > 40 ? 40 : blen), body);
		return -1;
	}
	size_t slen = (size_t)(colon - body), nlen = (size_t)(end - colon - 1);
	if (slen == 3 && memcmp(body, "env", 3) == 0)
		*kind = REF_ENV;
	else if (slen == 10 && memcmp(body, "credential", 10) == 0)
		*kind = REF_CREDENTIAL;
	else {
		*cause = xasprintf("${%.*s}: unknown source \"%.*s\" (use ${env:NAME} or "
		                   "${credential:NAME})", (int)blen, body, (int)slen, body);
		return -1;
	}
	if (!ref_name_ok(colon + 1, nlen)) {
		*cause = xasprintf("${%.*s}: \"%.*s\" is not a name (1 to %d of A-Z a-z 0-9 _ - .)",
		                   (int)blen, body, (int)nlen, colon + 1, REF_NAME_MAX);
		return -1;
	}
	memcpy(name, colon + 1, nlen);
	name[nlen] = '\0';
	*len = (size_t)(end - p) + 1;
	return 0;
}

int mcp_headers_check(const char *tmpl, char **cause) {
	char name[REF_NAME_MAX + 1];
	enum ref_kind kind;
	size_t len;
	for (const char *p = tmpl; (p = strstr(p, "${")) != NULL; p += len)
		if (ref_parse(p, &kind, name, &len, cause) != 0)
			return -1;
	if (strpbrk(tmpl, "\r\n") != NULL) {
		*cause = xstrdup("a header value must not contain a line break");
		return -1;
	}
	return 0;
}

/* The content of $CREDENTIALS_DIRECTORY/@name without a trailing newline. */
static char *read_credential(const char *name, char **cause) {
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	if (dir == NULL || *dir == '\0') {
		*cause = xasprintf("${credential:%s}: $CREDENTIALS_DIRECTORY is not set (give mcpjobd "
		                   "the credential with LoadCredential=%s:FILE in its unit)", name, name);
		return NULL;
	}
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*cause = xasprintf("${credential:%s}: cannot open %s: %s", name, path, strerror(errno));
		free(path);
		return NULL;
	}
	char *buf = xmalloc(MCP_HEADER_VALUE_MAX + 1);
	size_t n = 0;
	ssize_t r;
	while (n <= MCP_HEADER_VALUE_MAX &&
	       (r = read(fd, buf + n, MCP_HEADER_VALUE_MAX + 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*cause = xasprintf("${credential:%s}: cannot read %s: %s", name, path,
			                   strerror(errno));
			goto fail;
		}
		n += (size_t)r;
	}
	if (n > MCP_HEADER_VALUE_MAX) {
		*cause = xasprintf("${credential:%s}: %s is larger than %d bytes", name, path,
		                   MCP_HEADER_VALUE_MAX);
		goto fail;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	close(fd);
	free(path);
	return buf;
fail:
	close(fd);
	free(path);
	free(buf);
	return NULL;
}

static char *ref_value(enum ref_kind kind, const char *name, char **cause) {
	if (kind == REF_CREDENTIAL)
		return read_credential(name, cause);
	const char *v = getenv(name);
	if (v == NULL) {
		*cause = xasprintf("${env:%s}: %s is not set in mcpjobd's environment (set it in "
		                   "the unit's Environment= or EnvironmentFile=)", name, name);
		return NULL;
	}
	return xstrdup(v);
}

static char *expand(const char *tmpl, bool lines_ok, char **cause) {
	size_t cap = strlen(tmpl) + 1, len = 0;
	char *out = xmalloc(cap);
	const char *p = tmpl;
	while (*p) {
		char name[REF_NAME_MAX + 1], *v;
		enum ref_kind kind;
		size_t rlen;
		const char *ref = strstr(p, "${");
		size_t lit = ref ? (size_t)(ref - p) : strlen(p);
		const char *piece = p;
		size_t plen = lit;
		v = NULL;
		if (lit == 0) {
			if (ref_parse(p, &kind, name, &rlen, cause) != 0 ||
			    (v = ref_value(kind, name, cause)) == NULL)
				goto fail;
			piece = v;
			plen = strlen(v);
			p += rlen;
		} else {
			p += lit;
		}
		if (len + plen + 1 > MCP_HEADER_VALUE_MAX + 1) {
			free(v);
			*cause = xasprintf("the expanded value is longer than %d bytes",
			                   MCP_HEADER_VALUE_MAX);
			goto fail;
		}
		if (len + plen + 1 > cap) {
			cap = (len + plen + 1) * 2;
			out = xrealloc(out, cap);
		}
		memcpy(out + len, piece, plen);
		len += plen;
		free(v);
	}
	out[len] = '\0';
	if (!lines_ok && strpbrk(out, "\r\n") != NULL) {
		*cause = xstrdup("the expanded value contains a line break (refused: it would split "
		                 "the header)");
		goto fail;
	}
	return out;
fail:
	explicit_bzero(out, cap);
	free(out);
	return NULL;
}

char *mcp_headers_expand(const char *tmpl, char **cause) {
	return expand(tmpl, false, cause);
}

char *mcp_headers_expand_secret(const char *tmpl, char **cause) {
	return expand(tmpl, true, cause);
}
