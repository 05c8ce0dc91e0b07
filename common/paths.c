/*
 * paths.c - the default paths of mcpjobd and mcpjobctl (see paths.h).
 */
#include "common/paths.h"

#include <stdlib.h>
#include <unistd.h>

#include "common/xmalloc.h"

/* $@var/mcpjobd, else ~/@home_rel/mcpjobd, else /run/user/UID/mcpjobd. */
static char *xdg_dir(const char *var, const char *home_rel) {
	const char *base = getenv(var);
	if (base && *base == '/')
		return xasprintf("%s/mcpjobd", base);
	const char *home = getenv("HOME");
	if (home_rel && home && *home)
		return xasprintf("%s/%s/mcpjobd", home, home_rel);
	return xasprintf("/run/user/%u/mcpjobd", (unsigned)getuid());
}

char *paths_default_config(bool user) {
	if (!user)
		return xstrdup("/etc/mcpjobd/mcpjobd.json");
	char *dir = xdg_dir("XDG_CONFIG_HOME", ".config");
	char *path = xasprintf("%s/mcpjobd.json", dir);
	free(dir);
	return path;
}

char *paths_default_state_dir(bool user) {
	return user ? xdg_dir("XDG_STATE_HOME", ".local/state") : xstrdup("/var/lib/mcpjobd");
}

char *paths_default_socket(bool user) {
	const char *env = getenv("MCPJOBD_SOCKET");
	if (env && *env)
		return xstrdup(env);
	if (!user)
		return xstrdup("/run/mcpjobd/control.sock");
	char *dir = xdg_dir("XDG_RUNTIME_DIR", NULL);
	char *path = xasprintf("%s/control.sock", dir);
	free(dir);
	return path;
}
