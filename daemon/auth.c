/*
 * auth.c - the token keeper (see auth.h): one file of mode 0600 per server
 * under STATE/auth, written atomically, read through memory no core dump
 * holds.
 *
 * The file is a JSON object; "version" says its shape:
 *   {"version": 1, "server": NAME, "access_token", "refresh_token",
 *    "scope", "expires_at_ms", "client_id", "client_secret", "issuer",
 *    "token_endpoint", "obtained_at_ms"}
 */
#include "daemon/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/secmem.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define AUTH_FILE_VERSION 1

struct auth {
	char *dir; /* STATE/auth */
	int dirfd;
	auth_change_fn change;
	void *change_arg;
};

/* --- memory no core dump holds ------------------------------------------- */

/* A zeroed buffer of AUTH_FILE_MAX + 1 bytes, mapped apart, never dumped, locked when allowed. */
static char *secret_buf_new(void) {
	void *p = mmap(NULL, AUTH_FILE_MAX + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	               -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, AUTH_FILE_MAX + 1, MADV_DONTDUMP);
	(void)mlock(p, AUTH_FILE_MAX + 1); /* best effort: RLIMIT_MEMLOCK may say no */
	return p;
}

static void secret_buf_free(char *p) {
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, AUTH_FILE_MAX + 1);
	(void)munlock(p, AUTH_FILE_MAX + 1);
	munmap(p, AUTH_FILE_MAX + 1);
}

/* json_decref() of an object of secrets, every string cleansed first. */
static void secret_json_free(json_t *o) {
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
	json_decref(o);
}

/* Secrets go to the secure heap (common/secmem.h); the rest is plain text. */
static char *secret_dup(const char *s) {
	return secmem_strdup(s);
}

/* --- files --------------------------------------------------------------------- */

/* Server names are configuration ids; one starting with "." would not be a plain file name. */
static bool name_ok(const char *server) {
	return server && *server && *server != '.' && strchr(server, '/') == NULL;
}

struct auth *auth_new(const char *state_dir, char **cause) {
	struct auth *a = xcalloc(1, sizeof *a);
	a->dir = xasprintf("%s/auth", state_dir);
	a->dirfd = -1;
	if (mkdir(a->dir, 0700) != 0 && errno != EEXIST) {
		*cause = xasprintf("cannot create %s: %s (check the state directory's owner and "
		                   "mode)", a->dir, strerror(errno));
		goto fail;
	}
	a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (a->dirfd < 0 || fstat(a->dirfd, &st) != 0) {
		*cause = xasprintf("cannot open %s: %s", a->dir, strerror(errno));
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		*cause = xasprintf("%s belongs to uid %d, not to mcpjobd (uid %d): tokens are kept "
		                   "only in a folder of ours (chown it)", a->dir, (int)st.st_uid,
		                   (int)geteuid());
		goto fail;
	}
	if ((st.st_mode & 077) != 0 && fchmod(a->dirfd, 0700) != 0) {
		*cause = xasprintf("cannot make %s private (mode 0700): %s", a->dir, strerror(errno));
		goto fail;
	}
	return a;
fail:
	auth_free(a);
	return NULL;
}

void auth_free(struct auth *a) {
	if (a == NULL)
		return;
	if (a->dirfd >= 0)
		close(a->dirfd);
	free(a->dir);
	free(a);
}

void auth_set_change_fn(struct auth *a, auth_change_fn fn, void *arg) {
	a->change = fn;
	a->change_arg = arg;
}

/* @server's file as a JSON object of secrets (free with secret_json_free()), or NULL. */
static json_t *grant_read(struct auth *a, const char *server) {
	if (!name_ok(server))
		return NULL;
	char *name = xasprintf("%s.json", server);
	int fd = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(name);
	if (fd < 0)
		return NULL;
	char *buf = secret_buf_new();
	size_t len = 0;
	ssize_t n = 0;
	while (buf && len <= AUTH_FILE_MAX &&
	       (n = read(fd, buf + len, AUTH_FILE_MAX + 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	json_t *o = NULL;
	json_error_t jerr;
	if (buf && n >= 0 && len <= AUTH_FILE_MAX)
		o = json_loadb(buf, len, 0, &jerr);
	secret_buf_free(buf);
	if (!json_is_object(o) ||
	    json_integer_value(json_object_get(o, "version")) != AUTH_FILE_VERSION ||
	    !json_is_string(json_object_get(o, "access_token"))) {
		log_warning("%s/%s.json is not a grant this mcpjobd can read (too large, not JSON, "
		            "or another version): ignored; run `mcpjobctl auth login %s`", a->dir,
		            server, server);
		secret_json_free(o);
		return NULL;
	}
	return o;
}

/* Write @o (all of it secret) to @server's file: temporary file, fsync, rename, fsync dir. */
static int grant_write(struct auth *a, const char *server, json_t *o, char **cause) {
	char *buf = secret_buf_new();
	size_t len = buf ? json_dumpb(o, buf, AUTH_FILE_MAX, JSON_COMPACT) : 0;
	if (buf == NULL || len == 0 || len > AUTH_FILE_MAX) {
		secret_buf_free(buf);
		*cause = xasprintf("the grant for %s is larger than %d bytes: not kept", server,
		                   AUTH_FILE_MAX);
		return -1;
	}
	char *tmp = xasprintf(".%s.json.tmp", server), *name = xasprintf("%s.json", server);
	int rc = -1;
	(void)unlinkat(a->dirfd, tmp, 0); /* left by a crash */
	int fd = openat(a->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	size_t off = 0;
	while (fd >= 0 && off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (fd >= 0 && off == len && fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		if (renameat(a->dirfd, tmp, a->dirfd, name) == 0 && fsync(a->dirfd) == 0)
			rc = 0;
	}
	if (rc != 0) {
		*cause = xasprintf("cannot write %s/%s: %s (is the state directory full or "
		                   "read-only?)", a->dir, name, strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)unlinkat(a->dirfd, tmp, 0);
	}
	secret_buf_free(buf);
	free(tmp);
	free(name);
	return rc;
}

static int grant_remove(struct auth *a, const char *server, char **cause) {
	if (!name_ok(server))
		return 0;
	char *name = xasprintf("%s.json", server);
	int rc = unlinkat(a->dirfd, name, 0);
	if (rc != 0 && errno == ENOENT) {
		free(name);
		return 0;
	}
	if (rc != 0) {
		*cause = xasprintf("cannot remove %s/%s: %s", a->dir, name, strerror(errno));
		free(name);
		return -1;
	}
	(void)fsync(a->dirfd);
	free(name);
	return 1;
}

/* --- the store hooks ------------------------------------------------------------ */

static const char *str_of(json_t *o, const char *key) {
	return json_string_value(json_object_get(o, key));
}

static int store_load(void *arg, const char *server, struct mcp_auth_grant *out) {
	json_t *o = grant_read(arg, server);
	if (o == NULL)
		return -1;
	memset(out, 0, sizeof *out);
	out->access_token = secret_dup(str_of(o, "access_token"));
	out->refresh_token = secret_dup(str_of(o, "refresh_token"));
	out->scope = xstrdup_or_null(str_of(o, "scope"));
	out->expires_at_ms = json_integer_value(json_object_get(o, "expires_at_ms"));
	out->client_id = secret_dup(str_of(o, "client_id"));
	out->client_secret = secret_dup(str_of(o, "client_secret"));
	out->issuer = xstrdup_or_null(str_of(o, "issuer"));
	out->token_endpoint = xstrdup_or_null(str_of(o, "token_endpoint"));
	out->obtained_at_ms = json_integer_value(json_object_get(o, "obtained_at_ms"));
	secret_json_free(o);
	return 0;
}

static void set_str(json_t *o, const char *key, const char *v) {
	if (v != NULL)
		json_object_set_new(o, key, json_string(v));
}

static int store_save(void *arg, const char *server, const struct mcp_auth_grant *g,
                      char **cause) {
	struct auth *a = arg;
	if (!name_ok(server)) {
		*cause = xasprintf("\"%s\" cannot name a grant file", server);
		return -1;
	}
	if (g->access_token == NULL) {
		*cause = xasprintf("the grant for %s has no access token: not kept", server);
		return -1;
	}
	json_t *o = json_pack("{s:i, s:s}", "version", AUTH_FILE_VERSION, "server", server);
	set_str(o, "access_token", g->access_token);
	set_str(o, "refresh_token", g->refresh_token);
	set_str(o, "scope", g->scope);
	json_object_set_new(o, "expires_at_ms", json_integer(g->expires_at_ms));
	set_str(o, "client_id", g->client_id);
	set_str(o, "client_secret", g->client_secret);
	set_str(o, "issuer", g->issuer);
	set_str(o, "token_endpoint", g->token_endpoint);
	json_object_set_new(o, "obtained_at_ms", json_integer(g->obtained_at_ms));
	int rc = grant_write(a, server, o, cause);
	secret_json_free(o);
	if (rc == 0 && a->change)
		a->change(a->change_arg, server, true, NULL);
	return rc;
}

static void store_drop(void *arg, const char *server, const char *why) {
	struct auth *a = arg;
	char *cause = NULL;
	if (grant_remove(a, server, &cause) < 0) {
		log_error("%s: the refused grant is kept on disk: %s", server, cause);
		free(cause);
	}
	log_warning("%s: authorization was withdrawn (%s); its jobs wait for `mcpjobctl auth "
	            "login %s`", server, why ? why : "the authorization server refused the grant",
	            server);
	if (a->change)
		a->change(a->change_arg, server, false, why ? why : "refused by the authorization "
		                                                    "server");
}

struct mcp_auth_store auth_store(struct auth *a) {
	return (struct mcp_auth_store){.load = store_load, .save = store_save, .drop = store_drop,
	                               .arg = a};
}

bool auth_has_grant(struct auth *a, const char *server) {
	json_t *o = grant_read(a, server);
	secret_json_free(o);
	return o != NULL;
}

int auth_logout(struct auth *a, const char *server, char **cause) {
	int rc = grant_remove(a, server, cause);
	if (rc == 1 && a->change)
		a->change(a->change_arg, server, false, NULL);
	return rc;
}

json_t *auth_status_json(struct auth *a, const char *server) {
	json_t *o = grant_read(a, server);
	json_t *st = json_pack("{s:s, s:b}", "server", server, "authorized", o != NULL);
	const char *scope = str_of(o, "scope"), *issuer = str_of(o, "issuer");
	json_object_set_new(st, "scope", scope ? json_string(scope) : json_null());
	json_object_set_new(st, "issuer", issuer ? json_string(issuer) : json_null());
	json_object_set_new(st, "expires_at",
	                    time_to_json(json_integer_value(json_object_get(o, "expires_at_ms"))));
	json_object_set_new(st, "obtained_at",
	                    time_to_json(json_integer_value(json_object_get(o, "obtained_at_ms"))));
	json_object_set_new(st, "refreshable",
	                    json_boolean(json_is_string(json_object_get(o, "refresh_token"))));
	secret_json_free(o);
	return st;
}
