/*
 * secmem.c - see secmem.h.
 */
#include "common/secmem.h"

#include <malloc.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/netlib.h"
#include "common/xmalloc.h"

static bool enabled;

void secmem_enable(void) {
	enabled = true;
}

int secmem_need(void) {
	if (!enabled || CRYPTO_secure_malloc_initialized())
		return 0;
	/* 1: made and locked; 2: made, but mlock() was refused - still never dumped. */
	return CRYPTO_secure_malloc_init(SECMEM_HEAP_SIZE, 16) == 0 ? -1 : 0;
}

static size_t block_size(void *p) {
	return CRYPTO_secure_allocated(p) ? CRYPTO_secure_actual_size(p) : malloc_usable_size(p);
}

void secmem_wiping_free(void *p) {
	if (p == NULL)
		return;
	/* jansson's free hook, on every JSON free: it must not load libcrypto
	 * (common/netlib.h); before it is loaded nothing is in its secure heap. */
	if (!netlib_crypto_loaded()) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	} else if (CRYPTO_secure_allocated(p)) {
		OPENSSL_secure_clear_free(p, CRYPTO_secure_actual_size(p));
	} else {
		OPENSSL_cleanse(p, malloc_usable_size(p));
		free(p);
	}
}

void *secmem_wiping_malloc(size_t n) {
	return malloc(n);
}

void *secmem_secure_malloc(size_t n) {
	if (n <= SECMEM_SMALL && CRYPTO_secure_malloc_initialized()) {
		void *p = OPENSSL_secure_malloc(n ? n : 1);
		if (p != NULL)
			return p;
	}
	return malloc(n); /* no heap, or it is full */
}

void *secmem_secure_realloc(void *p, size_t n) {
	if (p == NULL)
		return secmem_secure_malloc(n);
	size_t have = block_size(p);
	if (n != 0 && n <= have)
		return p; /* it fits: the block stays where it is */
	void *q = secmem_secure_malloc(n ? n : 1);
	if (q == NULL)
		return NULL; /* realloc's contract: the old block is kept */
	memcpy(q, p, have < n ? have : n);
	secmem_wiping_free(p);
	return q;
}

void *secmem_secure_calloc(size_t n, size_t size) {
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	void *p = secmem_secure_malloc(n * size);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

char *secmem_secure_strdup(const char *s) {
	size_t n = strlen(s) + 1;
	char *p = secmem_secure_malloc(n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

char *secmem_strdup(const char *s) {
	if (s == NULL)
		return NULL;
	char *p = secmem_secure_strdup(s);
	return p ? p : xstrdup(s);
}

void secmem_free(char *s) {
	secmem_wiping_free(s);
}

char *secmem_asprintf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return xstrdup("");
	char *out = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(out, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return out;
}
