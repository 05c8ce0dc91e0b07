/*
 * auth_login.h - a person's login on a remote MCP server, for a daemon with
 * no browser (mcpjobctl auth login; mcpjobd-protocol(7) auth.*).
 *
 * auth_login_start() begins the flow of daemon/mcp/mcp_auth.h with a
 * redirect URI on a loopback listener of its own (RFC 8252 section 7.3:
 * http://127.0.0.1:PORT/callback, a random port, one use): the person
 * opens the authorization URL, the browser comes back to the listener,
 * which answers a small page and closes. On a box without a browser the
 * person pastes the address the browser was sent to (or the code alone)
 * and auth_login_complete() takes it. Either way the redirect must be the
 * login's own: the loopback redirect URI, this login's state; anything
 * else is refused with a sentence and nothing is stored. A login not
 * finished within AUTH_LOGIN_TIMEOUT_MS is given up.
 *
 * One login per server at a time (a new one replaces the old). Its end is
 * an event: auth.authorized or auth.failed. No code, state or token
 * appears in a reply, an event or a log line.
 */
#ifndef MCPJOB_AUTH_LOGIN_H
#define MCPJOB_AUTH_LOGIN_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

struct auth_logins;
struct events;
struct mcp_pool;

#define AUTH_LOGIN_TIMEOUT_MS (10 * 60 * 1000) /* the person has this long */
#define AUTH_LOGIN_KEEP_MS    (60 * 1000)      /* a finished login's result is kept this long */
#define AUTH_LOGIN_PASTE_MAX  8192             /* a pasted redirect URL or code */

/* @rc 0 with @result (borrowed), or a protocol error code with @cause. Called once. */
typedef void (*auth_login_reply_fn)(void *arg, int rc, const json_t *result, const char *cause);

struct auth_logins *auth_login_open(struct event_base *base, struct mcp_pool *pool,
                                    struct events *events);
/* Gives up every login in progress (no reply follows for their waiters). */
void auth_login_close(struct auth_logins *L);

/*
 * auth_login_start() - begin a login on @server (an http/sse server of the
 * configuration). @fn is called once, never from inside this call, with
 * {"server", "url", "redirect_uri", "expires_at"}. Returns a handle for
 * auth_login_forget(), or NULL with *@cause and a protocol error code in
 * *@rc (nothing was started).
 */
void *auth_login_start(struct auth_logins *L, const char *server, auth_login_reply_fn fn,
                       void *arg, int *rc, char **cause);

/*
 * auth_login_complete() - finish @server's login with @pasted (the address
 * the browser was sent to, or the code alone; NULL: the loopback listener
 * will get it), and call @fn once when it is done: {"server",
 * "authorized": true} or RPC_E_AUTH_FAILED with why. Returns a handle, or
 * NULL with *@rc and *@cause (no login in progress, or @pasted refused:
 * the login goes on, nothing was stored).
 */
void *auth_login_complete(struct auth_logins *L, const char *server, const char *pasted,
                          auth_login_reply_fn fn, void *arg, int *rc, char **cause);

/* The waiter's connection went away: @fn of that handle is not called. */
void auth_login_forget(struct auth_logins *L, void *handle);

/* Give up @server's login, if one is in progress (auth.logout); its waiters hear why. */
void auth_login_cancel(struct auth_logins *L, const char *server, const char *why);

/* "none", "starting", "waiting" (for the redirect), "exchanging", "authorized" or "failed". */
const char *auth_login_phase(struct auth_logins *L, const char *server);

#endif
