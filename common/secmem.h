/*
 * secmem.h - memory for secrets (access and refresh tokens, client
 * secrets) that a core dump never holds: OpenSSL's secure heap, a mapping
 * apart marked MADV_DONTDUMP (and locked where RLIMIT_MEMLOCK allows).
 *
 * The daemon asks for it at start with secmem_enable(); the heap itself is
 * made by secmem_need(), called when the first HTTP transport opens, so a
 * daemon with only stdio servers pays nothing for it. A program that embeds
 * the engine decides for itself (the heap is OpenSSL's, process-wide).
 * Before the heap exists, or when it is full, allocations fall back to the
 * ordinary heap, so a secret is never refused; every free cleanses.
 */
#ifndef MCPJOB_SECMEM_H
#define MCPJOB_SECMEM_H

#include <stddef.h>

#define SECMEM_HEAP_SIZE (1u << 19) /* 512 KiB, locked: the grants and libcurl's small blocks */
#define SECMEM_SMALL     8192        /* libcurl's blocks up to this size go there (header lists,
                                        request headers); its 16 KiB receive buffers do not */

/* Let secmem_need() make the heap (the daemon; not a program that embeds the engine). */
void secmem_enable(void);
/* Make the heap now if enabled and not made yet. 0, or -1 when it could not be made. */
int secmem_need(void);
/* A copy of @s (NULL: NULL) in the secure heap when there is one; never NULL for a non-NULL @s. */
char *secmem_strdup(const char *s);
/* Cleanse and free what secmem_strdup() or any malloc() gave; NULL is fine. */
void secmem_free(char *s);

/*
 * Allocators for libraries that copy secrets into buffers of their own.
 * secmem_secure_*: the secure heap, when there is one, for blocks up to
 * SECMEM_SMALL (libcurl: its header lists and request header buffers hold
 * the Bearer token while a request is in flight - the GET stream is in
 * flight for a session's life); larger blocks, and all when the heap is
 * full, go to the ordinary heap and are wiped when freed.
 * secmem_wiping_*: the ordinary heap, wiped when freed (jansson: the
 * lexer's buffer and parsed strings of a token response).
 * Both free either kind of block.
 */
void *secmem_secure_malloc(size_t n);
void *secmem_secure_realloc(void *p, size_t n);
void *secmem_secure_calloc(size_t n, size_t size);
char *secmem_secure_strdup(const char *s);
void *secmem_wiping_malloc(size_t n);

/*
 * secmem_asprintf() - like xasprintf(), but formatted straight into a block
 * of the exact size (vasprintf() grows a buffer of its own and frees the
 * old copies unwiped): for text that carries a secret. Ordinary memory;
 * the caller cleanses it and free()s it.
 */
char *secmem_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void secmem_wiping_free(void *p);

#endif
