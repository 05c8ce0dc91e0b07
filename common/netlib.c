/*
 * netlib.c - see netlib.h. This is not a rewrite of anything the two
 * libraries do: each function below only forwards to the library's own,
 * found with dlsym() once the library is loaded. It is how a daemon whose
 * servers are all stdio ones keeps ~35 shared libraries it never calls
 * out of its memory.
 */
#define CURL_DISABLE_TYPECHECK /* the variadic setters are defined here */
#include "common/netlib.h"

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynlib.h"

/* F(return type, name, (parameters), (arguments), value when not loaded); V: returns void. */
#define CURL_FNS(F, V)                                                                             \
	F(CURL *, curl_easy_init, (void), (), NULL)                                                \
	V(curl_easy_cleanup, (CURL * h), (h))                                                      \
	F(char *, curl_easy_escape, (CURL * h, const char *s, int n), (h, s, n), NULL)             \
	F(const char *, curl_easy_strerror, (CURLcode c), (c), "libcurl is not loaded")            \
	V(curl_free, (void *p), (p))                                                               \
	F(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                    \
	V(curl_global_cleanup, (void), ())                                                         \
	F(CURLcode, curl_global_init_mem,                                                          \
	  (long fl, curl_malloc_callback m, curl_free_callback f, curl_realloc_callback r,         \
	   curl_strdup_callback s, curl_calloc_callback c),                                        \
	  (fl, m, f, r, s, c), CURLE_FAILED_INIT)                                                  \
	F(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * h), (m, h), CURLM_INTERNAL_ERROR)   \
	F(CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void *p), (m, s, p),          \
	  CURLM_INTERNAL_ERROR)                                                                    \
	F(CURLMcode, curl_multi_cleanup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)                   \
	F(CURLMsg *, curl_multi_info_read, (CURLM * m, int *q), (m, q), NULL)                      \
	F(CURLM *, curl_multi_init, (void), (), NULL)                                              \
	F(CURLMcode, curl_multi_perform, (CURLM * m, int *r), (m, r), CURLM_INTERNAL_ERROR)        \
	F(CURLMcode, curl_multi_poll,                                                              \
	  (CURLM * m, struct curl_waitfd e[], unsigned int ne, int ms, int *n), (m, e, ne, ms, n), \
	  CURLM_INTERNAL_ERROR)                                                                    \
	F(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * h), (m, h),                      \
	  CURLM_INTERNAL_ERROR)                                                                    \
	F(CURLMcode, curl_multi_socket_action, (CURLM * m, curl_socket_t s, int ev, int *r),       \
	  (m, s, ev, r), CURLM_INTERNAL_ERROR)                                                     \
	F(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s),  \
	  NULL)                                                                                    \
	V(curl_slist_free_all, (struct curl_slist * l), (l))                                       \
	F(CURLU *, curl_url, (void), (), NULL)                                                     \
	V(curl_url_cleanup, (CURLU * u), (u))                                                      \
	F(CURLUcode, curl_url_get, (CURLU * u, CURLUPart w, char **p, unsigned int fl),            \
	  (u, w, p, fl), CURLUE_OUT_OF_MEMORY)                                                     \
	F(CURLUcode, curl_url_set, (CURLU * u, CURLUPart w, const char *p, unsigned int fl),       \
	  (u, w, p, fl), CURLUE_OUT_OF_MEMORY)                                                     \
	F(const char *, curl_url_strerror, (CURLUcode c), (c), "libcurl is not loaded")

/* The variadic ones: the library's function, called with the argument's own type. */
#define CURL_VARFNS(X)                                           \
	X(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...)) \
	X(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))  \
	X(CURLMcode, curl_multi_setopt, (CURLM *, CURLMoption, ...))

#define CRYPTO_FNS(F, V)                                                                          \
	F(int, BIO_free, (BIO * a), (a), 0)                                                       \
	F(BIO *, BIO_new_mem_buf, (const void *b, int n), (b, n), NULL)                           \
	F(int, BN_bn2binpad, (const BIGNUM *a, unsigned char *to, int n), (a, to, n), -1)         \
	F(int, CRYPTO_memcmp, (const void *a, const void *b, size_t n), (a, b, n), 1)             \
	F(int, CRYPTO_secure_malloc_init, (size_t sz, size_t min), (sz, min), 0)                  \
	F(void *, CRYPTO_secure_malloc, (size_t n, const char *file, int line), (n, file, line),  \
	  NULL)                                                                                   \
	V(ECDSA_SIG_free, (ECDSA_SIG * s), (s))                                                   \
	V(ECDSA_SIG_get0, (const ECDSA_SIG *s, const BIGNUM **r, const BIGNUM **t), (s, r, t))    \
	F(int, EVP_DigestSign,                                                                    \
	  (EVP_MD_CTX * c, unsigned char *sig, size_t *n, const unsigned char *t, size_t tn),     \
	  (c, sig, n, t, tn), 0)                                                                  \
	F(int, EVP_DigestSignInit,                                                                \
	  (EVP_MD_CTX * c, EVP_PKEY_CTX * *p, const EVP_MD *t, ENGINE *e, EVP_PKEY *k),           \
	  (c, p, t, e, k), 0)                                                                     \
	F(int, EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n), -1) \
	V(EVP_MD_CTX_free, (EVP_MD_CTX * c), (c))                                                 \
	F(EVP_MD_CTX *, EVP_MD_CTX_new, (void), (), NULL)                                         \
	V(EVP_PKEY_free, (EVP_PKEY * k), (k))                                                     \
	F(int, EVP_PKEY_get_base_id, (const EVP_PKEY *k), (k), 0)                                 \
	F(int, EVP_PKEY_get_bits, (const EVP_PKEY *k), (k), 0)                                    \
	F(const EVP_MD *, EVP_sha256, (void), (), NULL)                                           \
	F(EVP_PKEY *, PEM_read_bio_PrivateKey,                                                    \
	  (BIO * b, EVP_PKEY * *x, pem_password_cb * cb, void *u), (b, x, cb, u), NULL)           \
	F(int, RAND_bytes, (unsigned char *b, int n), (b, n), 0)                                  \
	F(unsigned char *, SHA256, (const unsigned char *d, size_t n, unsigned char *md),         \
	  (d, n, md), NULL)                                                                       \
	F(ECDSA_SIG *, d2i_ECDSA_SIG, (ECDSA_SIG * *a, const unsigned char **in, long n),         \
	  (a, in, n), NULL)

/* Never load libcrypto: memory it never saw cannot be in its secure heap (written out below). */
#define CRYPTO_NOLOAD_FNS(F, V)                                                      \
	F(int, CRYPTO_secure_allocated, (const void *p), (p), 0)                     \
	F(int, CRYPTO_secure_malloc_initialized, (void), (), 0)                      \
	F(size_t, CRYPTO_secure_actual_size, (void *p), (p), 0)                      \
	V(CRYPTO_secure_clear_free, (void *p, size_t n, const char *file, int line), \
	  (p, n, file, line))                                                        \
	V(OPENSSL_cleanse, (void *p, size_t n), (p, n))

/* The pointers dlsym() fills. */
#define PTR_F(ret, name, params, args, fail) static ret(*p_##name) params;
#define PTR_V(name, params, args)            static void(*p_##name) params;
#define PTR_X(ret, name, params)             static ret(*p_##name) params;
CURL_FNS(PTR_F, PTR_V)
CURL_VARFNS(PTR_X)
CRYPTO_FNS(PTR_F, PTR_V)
CRYPTO_NOLOAD_FNS(PTR_F, PTR_V)

#define SYM_F(ret, name, params, args, fail) { #name, &p_##name },
#define SYM_V(name, params, args)            { #name, &p_##name },
#define SYM_X(ret, name, params)             { #name, &p_##name },
static const struct dynlib_sym curl_syms[] = { CURL_FNS(SYM_F, SYM_V)
	                                               CURL_VARFNS(SYM_X){ NULL, NULL } };
static const struct dynlib_sym crypto_syms[] = { CRYPTO_FNS(SYM_F, SYM_V)
	                                                 CRYPTO_NOLOAD_FNS(SYM_F, SYM_V){ NULL, NULL } };

static struct {
	bool set;
	curl_malloc_callback m;
	curl_free_callback f;
	curl_realloc_callback r;
	curl_strdup_callback s;
	curl_calloc_callback c;
} curl_mem;

void netlib_curl_allocators(void *(*m)(size_t), void (*f)(void *), void *(*r)(void *, size_t),
                            char *(*s)(const char *), void *(*c)(size_t, size_t)) {
	curl_mem.m = m;
	curl_mem.f = f;
	curl_mem.r = r;
	curl_mem.s = s;
	curl_mem.c = c;
	curl_mem.set = true;
}

/* Initialised once, for the process's life, before any other call into it. */
static int curl_init(void) {
	CURLcode rc = curl_mem.set ? p_curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_mem.m,
	                                                    curl_mem.f, curl_mem.r, curl_mem.s,
	                                                    curl_mem.c)
	                           : p_curl_global_init(CURL_GLOBAL_DEFAULT);
	return rc == CURLE_OK ? 0 : -1;
}

/* One lock each: loading libcurl may need libcrypto (its allocators). */
static struct dynlib curl_lib = DYNLIB_INIT("libcurl", "MCPJOB_LIBCURL", NETLIB_CURL_FILE,
                                            NETLIB_CURL_PACKAGE, curl_syms, curl_init);
static struct dynlib crypto_lib = DYNLIB_INIT("libcrypto", "MCPJOB_LIBCRYPTO",
                                              NETLIB_CRYPTO_FILE, NETLIB_CRYPTO_PACKAGE,
                                              crypto_syms, NULL);

int netlib_need_curl(char **cause) {
	return dynlib_need(&curl_lib, cause);
}

int netlib_need_crypto(char **cause) {
	return dynlib_need(&crypto_lib, cause);
}

bool netlib_curl_loaded(void) {
	return dynlib_loaded(&curl_lib);
}

bool netlib_crypto_loaded(void) {
	return dynlib_loaded(&crypto_lib);
}

/* The forwarding functions. */
#define FWD_F(lib, ret, name, params, args, fail) \
	ret(name) params {                        \
		if (dynlib_need(&lib, NULL) < 0)     \
			return fail;              \
		return p_##name args;             \
	}
#define FWD_V(lib, name, params, args)         \
	void(name) params {                    \
		if (dynlib_need(&lib, NULL) == 0) \
			p_##name args;         \
	}
#define CURL_F(ret, name, params, args, fail) FWD_F(curl_lib, ret, name, params, args, fail)
#define CURL_V(name, params, args)            FWD_V(curl_lib, name, params, args)
CURL_FNS(CURL_F, CURL_V)

#define CRYPTO_F(ret, name, params, args, fail) FWD_F(crypto_lib, ret, name, params, args, fail)
#define CRYPTO_V(name, params, args)            FWD_V(crypto_lib, name, params, args)
CRYPTO_FNS(CRYPTO_F, CRYPTO_V)

int(CRYPTO_secure_allocated)(const void *p) {
	return dynlib_loaded(&crypto_lib) ? p_CRYPTO_secure_allocated(p) : 0;
}

int(CRYPTO_secure_malloc_initialized)(void) {
	return dynlib_loaded(&crypto_lib) ? p_CRYPTO_secure_malloc_initialized() : 0;
}

size_t(CRYPTO_secure_actual_size)(void *p) {
	return dynlib_loaded(&crypto_lib) ? p_CRYPTO_secure_actual_size(p) : 0;
}

/* What OpenSSL does with a block that is not in its secure heap. */
void(CRYPTO_secure_clear_free)(void *p, size_t n, const char *file, int line) {
	if (dynlib_loaded(&crypto_lib)) {
		p_CRYPTO_secure_clear_free(p, n, file, line);
	} else if (p != NULL) {
		explicit_bzero(p, n);
		free(p);
	}
}

void(OPENSSL_cleanse)(void *p, size_t n) {
	if (dynlib_loaded(&crypto_lib))
		p_OPENSSL_cleanse(p, n);
	else
		explicit_bzero(p, n);
}

/*
 * The variadic ones: the option number says the argument's type class
 * (curl.h's CURLOPTTYPE_*, the same for the multi options; every getinfo
 * argument is a pointer). A function pointer is passed as one.
 */
typedef void (*any_fn)(void);

#define OPT_FORWARD(rc, fn, h, opt, ap)                          \
	do {                                                     \
		int o_ = (int)(opt);                             \
		if (o_ < CURLOPTTYPE_OBJECTPOINT)                \
			rc = fn(h, opt, va_arg(ap, long));       \
		else if (o_ < CURLOPTTYPE_FUNCTIONPOINT)         \
			rc = fn(h, opt, va_arg(ap, void *));     \
		else if (o_ < CURLOPTTYPE_OFF_T)                 \
			rc = fn(h, opt, va_arg(ap, any_fn));     \
		else if (o_ < CURLOPTTYPE_BLOB)                  \
			rc = fn(h, opt, va_arg(ap, curl_off_t)); \
		else                                             \
			rc = fn(h, opt, va_arg(ap, void *));     \
	} while (0)

CURLcode(curl_easy_setopt)(CURL *h, CURLoption opt, ...) {
	if (dynlib_need(&curl_lib, NULL) < 0)
		return CURLE_FAILED_INIT;
	CURLcode rc;
	va_list ap;
	va_start(ap, opt);
	OPT_FORWARD(rc, p_curl_easy_setopt, h, opt, ap);
	va_end(ap);
	return rc;
}

CURLMcode(curl_multi_setopt)(CURLM *m, CURLMoption opt, ...) {
	if (dynlib_need(&curl_lib, NULL) < 0)
		return CURLM_INTERNAL_ERROR;
	CURLMcode rc;
	va_list ap;
	va_start(ap, opt);
	OPT_FORWARD(rc, p_curl_multi_setopt, m, opt, ap);
	va_end(ap);
	return rc;
}

CURLcode(curl_easy_getinfo)(CURL *h, CURLINFO info, ...) {
	if (dynlib_need(&curl_lib, NULL) < 0)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	void *out = va_arg(ap, void *);
	va_end(ap);
	return p_curl_easy_getinfo(h, info, out);
}
