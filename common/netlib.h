/*
 * netlib.h - libcurl and OpenSSL's libcrypto, loaded (dlopen) the first
 * time they are needed, not at start-up.
 *
 * Linked, the two pull about 35 more shared libraries into the process
 * (gnutls, krb5, ldap, ssh2, nghttp2, p11-kit ...: ~8 MB of PSS) although a
 * daemon whose servers are all stdio ones never calls them. So nothing links
 * them: netlib.c defines the libcurl and libcrypto functions the engine
 * calls, under their own names and prototypes (the callers include
 * <curl/curl.h> and <openssl/...> as usual), and each forwards to the
 * function dlsym() found in the library. What needs them loads them:
 * an http server or an auth block in the configuration (config.c, at load,
 * so a missing library is a configuration error naming the key), a job with
 * randomized_delay (SHA-256), the HTTP transport and the OAuth flow.
 *
 * A few functions never load the library: CRYPTO_secure_allocated() and
 * CRYPTO_secure_malloc_initialized() say 0 (nothing is in a secure heap that
 * was never made) and OPENSSL_cleanse() wipes with explicit_bzero(), so the
 * jansson free hook (secmem.c) that runs on every JSON free costs no load.
 *
 * Tests only: $MCPJOB_LIBCURL and $MCPJOB_LIBCRYPTO name the file to load
 * instead of libcurl.so.4 and libcrypto.so.3 (to exercise the error when a
 * library cannot be loaded).
 */
#ifndef MCPJOB_NETLIB_H
#define MCPJOB_NETLIB_H

#include <stdbool.h>
#include <stddef.h>

/* The files loaded and the Debian packages that ship them (-D to override, e.g. Android). */
#ifndef NETLIB_CURL_FILE
#define NETLIB_CURL_FILE "libcurl.so.4"
#endif
#ifndef NETLIB_CURL_PACKAGE
#define NETLIB_CURL_PACKAGE "libcurl4"
#endif
#ifndef NETLIB_CRYPTO_FILE
#define NETLIB_CRYPTO_FILE "libcrypto.so.3"
#endif
#ifndef NETLIB_CRYPTO_PACKAGE
#define NETLIB_CRYPTO_PACKAGE "libssl3"
#endif

/*
 * netlib_need_curl(), netlib_need_crypto() - load the library now if it is
 * not loaded yet. 0, or -1 with *@cause (the caller frees it; NULL: not
 * wanted) naming the library, why it failed and the package to install.
 * A failure is remembered: later calls fail the same way, and the forwarding
 * functions return their failure value (NULL, CURLE_FAILED_INIT, 0 ...).
 * Thread-safe.
 */
int netlib_need_curl(char **cause);
int netlib_need_crypto(char **cause);
/* Whether libcrypto is loaded (never loads it). */
bool netlib_crypto_loaded(void);
bool netlib_curl_loaded(void);

/*
 * netlib_curl_allocators() - the allocators curl_global_init_mem() is given
 * right after libcurl is loaded (before any other call into it). Call it
 * before anything needs libcurl; without it libcurl keeps malloc().
 */
void netlib_curl_allocators(void *(*m)(size_t), void (*f)(void *), void *(*r)(void *, size_t),
                            char *(*s)(const char *), void *(*c)(size_t, size_t));

#endif
