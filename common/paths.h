/*
 * paths.h - where mcpjobd and mcpjobctl look unless told: one rule for both
 * programs, so the client always finds the daemon's socket.
 *
 * System daemon: /etc/mcpjobd/mcpjobd.json, /var/lib/mcpjobd,
 * /run/mcpjobd/control.sock. Per-user daemon (--user), after the XDG base
 * directory spec: $XDG_CONFIG_HOME (else ~/.config)/mcpjobd/mcpjobd.json,
 * $XDG_STATE_HOME (else ~/.local/state)/mcpjobd, and
 * $XDG_RUNTIME_DIR (else /run/user/UID)/mcpjobd/control.sock.
 * $MCPJOBD_SOCKET, when set and not empty, overrides the socket of both.
 * An XDG variable counts only when it holds an absolute path.
 */
#ifndef MCPJOB_PATHS_H
#define MCPJOB_PATHS_H

#include <stdbool.h>

/* Each returns a string the caller frees. */
char *paths_default_config(bool user);
char *paths_default_state_dir(bool user);
char *paths_default_socket(bool user);

#endif
