/*
 * test_oauth.c - the OAuth 2.1 rules of the MCP specification's
 * "Authorization" (daemon/mcp/oauth.c): challenges, discovery order, what
 * metadata and token responses are accepted or refused and why, scope
 * choice, client authentication, PKCE and signed client assertions.
 */
#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mcp/oauth.h"

START_TEST(test_challenge_reads_the_bearer_params_quoted_or_not) {
	struct oauth_challenge c;
	ck_assert_int_eq(oauth_challenge_parse(
	                     "Bearer resource_metadata=\"https://mcp.example.com/.well-known/"
	                     "oauth-protected-resource\",\n    scope=\"files:read\"",
	                     &c),
	                 0);
	ck_assert_str_eq(c.resource_metadata,
	                 "https://mcp.example.com/.well-known/oauth-protected-resource");
	ck_assert_str_eq(c.scope, "files:read");
	ck_assert_ptr_null(c.error);
	oauth_challenge_clear(&c);
	/* Another scheme first, a token68, escapes, an unquoted value, the step-up error. */
	ck_assert_int_eq(oauth_challenge_parse("Basic realm=\"x\", Negotiate abc==, Bearer "
	                                       "error=insufficient_scope, scope=\"a \\\"b\\\" c\", "
	                                       "error_description=\"more needed\"",
	                                       &c),
	                 0);
	ck_assert_str_eq(c.error, "insufficient_scope");
	ck_assert_str_eq(c.scope, "a \"b\" c");
	ck_assert_str_eq(c.error_description, "more needed");
	ck_assert_ptr_null(c.resource_metadata);
	oauth_challenge_clear(&c);
	/* Params of another scheme are not the Bearer's. */
	ck_assert_int_eq(oauth_challenge_parse("Basic scope=\"nope\"", &c), -1);
	ck_assert_ptr_null(c.scope);
	ck_assert_int_eq(oauth_challenge_parse("bearer", &c), 0); /* case-insensitive, no params */
	oauth_challenge_clear(&c);
}
END_TEST

static void assert_urls(char **v, const char *const *want) {
	ck_assert_ptr_nonnull(v);
	size_t i = 0;
	for (; want[i]; i++) {
		ck_assert_ptr_nonnull(v[i]);
		ck_assert_str_eq(v[i], want[i]);
	}
	ck_assert_ptr_null(v[i]);
	oauth_strv_free(v);
}

START_TEST(test_discovery_urls_come_in_the_specified_order) {
	char *cause = NULL;
	assert_urls(oauth_prm_urls("https://example.com/public/mcp", NULL, &cause),
	            (const char *const[]){
	                "https://example.com/.well-known/oauth-protected-resource/public/mcp",
	                "https://example.com/.well-known/oauth-protected-resource", NULL});
	assert_urls(oauth_prm_urls("https://example.com/mcp", "https://meta.example.com/prm", &cause),
	            (const char *const[]){"https://meta.example.com/prm",
	                                  "https://example.com/.well-known/oauth-protected-resource/mcp",
	                                  "https://example.com/.well-known/oauth-protected-resource",
	                                  NULL});
	assert_urls(oauth_prm_urls("http://127.0.0.1:8080/", NULL, &cause),
	            (const char *const[]){"http://127.0.0.1:8080/.well-known/oauth-protected-resource",
	                                  NULL});
	assert_urls(oauth_as_metadata_urls("https://auth.example.com/tenant1", &cause),
	            (const char *const[]){
	                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
	                "https://auth.example.com/.well-known/openid-configuration/tenant1",
	                "https://auth.example.com/tenant1/.well-known/openid-configuration", NULL});
	assert_urls(oauth_as_metadata_urls("https://auth.example.com", &cause),
	            (const char *const[]){
	                "https://auth.example.com/.well-known/oauth-authorization-server",
	                "https://auth.example.com/.well-known/openid-configuration", NULL});
	ck_assert_ptr_null(oauth_as_metadata_urls("auth.example.com", &cause));
	ck_assert_ptr_nonnull(strstr(cause, "not an absolute URL"));
	free(cause);
}
END_TEST

static int prm(const char *body, const char *server, struct oauth_prm *p, char **cause) {
	return oauth_prm_parse(body, strlen(body), server, p, cause);
}

START_TEST(test_resource_metadata_must_name_this_server) {
	struct oauth_prm p;
	char *cause = NULL;
	const char *ok = "{\"resource\":\"https://mcp.example.com/mcp\","
	                 "\"authorization_servers\":[\"https://auth.example.com\"],"
	                 "\"scopes_supported\":[\"read\",\"write\"]}";
	ck_assert_int_eq(prm(ok, "https://MCP.example.com/mcp", &p, &cause), 0);
	ck_assert_str_eq(p.authorization_servers[0], "https://auth.example.com");
	ck_assert_str_eq(p.scopes_supported[1], "write");
	oauth_prm_clear(&p);
	/* The origin's resource covers a path on it. */
	ck_assert_int_eq(prm("{\"resource\":\"https://mcp.example.com\",\"authorization_servers\":"
	                     "[\"https://a\"]}", "https://mcp.example.com/mcp", &p, &cause), 0);
	oauth_prm_clear(&p);
	const char *bad[][2] = {
	    {"{\"resource\":\"https://evil.example.com/mcp\",\"authorization_servers\":[\"https://a\"]}",
	     "is for \"https://evil.example.com/mcp\", not for https://mcp.example.com/mcp"},
	    {"{\"resource\":\"https://mcp.example.com/other\",\"authorization_servers\":[\"https://a\"]}",
	     "refused (RFC 9728 section 3.3)"},
	    {"{\"resource\":\"https://mcp.example.com/mcpx\",\"authorization_servers\":[\"https://a\"]}",
	     "not for"},
	    {"{\"resource\":\"https://mcp.example.com/mcp\"}", "lists no authorization_servers"},
	    {"{\"resource\":\"https://mcp.example.com/mcp\",\"authorization_servers\":[]}",
	     "lists no authorization_servers"},
	    {"{\"authorization_servers\":[\"https://a\"]}", "has no \"resource\""},
	    {"[1,2]", "is not a JSON object"},
	    {"{\"resource\":", "is not JSON"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		ck_assert_int_eq(prm(bad[i][0], "https://mcp.example.com/mcp", &p, &cause), -1);
		ck_assert_msg(cause && strstr(cause, bad[i][1]), "%s -> %s", bad[i][0], cause);
		free(cause);
	}
	/* Oversized: refused before parsing. */
	size_t big = OAUTH_BODY_MAX + 1;
	char *huge = malloc(big + 1);
	memset(huge, ' ', big);
	huge[big] = '\0';
	ck_assert_int_eq(oauth_prm_parse(huge, big, "https://mcp.example.com/mcp", &p, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "larger than 64 KiB"));
	free(cause);
	free(huge);
}
END_TEST

static int asm_parse(const char *body, const char *issuer, struct oauth_as_meta *m, char **cause) {
	return oauth_as_meta_parse(body, strlen(body), issuer, m, cause);
}

START_TEST(test_authorization_server_metadata_issuer_and_endpoints_are_checked) {
	struct oauth_as_meta m;
	char *cause = NULL;
	const char *ok = "{\"issuer\":\"https://auth.example.com\","
	                 "\"authorization_endpoint\":\"https://auth.example.com/authorize\","
	                 "\"token_endpoint\":\"https://auth.example.com/token\","
	                 "\"code_challenge_methods_supported\":[\"S256\"],"
	                 "\"token_endpoint_auth_methods_supported\":[\"client_secret_post\"],"
	                 "\"client_id_metadata_document_supported\":true}";
	ck_assert_int_eq(asm_parse(ok, "https://auth.example.com", &m, &cause), 0);
	ck_assert(oauth_as_supports_s256(&m));
	ck_assert(m.client_id_metadata_document_supported);
	oauth_as_meta_clear(&m);
	ck_assert_int_eq(asm_parse(ok, "https://auth.example.com/tenant", &m, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "names issuer \"https://auth.example.com\", not "
	                                    "\"https://auth.example.com/tenant\""));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(asm_parse("{\"issuer\":\"https://a.example\",\"token_endpoint\":"
	                           "\"http://a.example/token\"}", "https://a.example", &m, &cause),
	                 -1);
	ck_assert_ptr_nonnull(strstr(cause, "token endpoint http://a.example/token is not https"));
	free(cause);
	/* http is fine on this machine (local servers, the conformance suite). */
	ck_assert_int_eq(asm_parse("{\"issuer\":\"http://localhost:3000\",\"token_endpoint\":"
	                           "\"http://localhost:3000/token\"}", "http://localhost:3000", &m,
	                           &cause), 0);
	ck_assert(!oauth_as_supports_s256(&m)); /* no code_challenge_methods_supported: no PKCE */
	oauth_as_meta_clear(&m);
	/* 2025-03-26 fallback: default endpoints at the issuer's root. */
	oauth_as_meta_fallback("http://localhost:3000/some/path", &m);
	ck_assert_str_eq(m.authorization_endpoint, "http://localhost:3000/authorize");
	ck_assert_str_eq(m.token_endpoint, "http://localhost:3000/token");
	ck_assert_str_eq(m.registration_endpoint, "http://localhost:3000/register");
	ck_assert(oauth_as_supports_s256(&m));
	oauth_as_meta_clear(&m);
}
END_TEST

START_TEST(test_scope_comes_from_the_challenge_then_the_resource_then_nowhere) {
	struct oauth_prm p = {0};
	struct oauth_as_meta as = {0};
	char *scopes[] = {"read", "write", NULL}, *as_scopes[] = {"openid", "offline_access", NULL};
	p.scopes_supported = scopes;
	char *s = oauth_choose_scope("files:read", &p, NULL, false);
	ck_assert_str_eq(s, "files:read");
	free(s);
	s = oauth_choose_scope(NULL, &p, NULL, false);
	ck_assert_str_eq(s, "read write");
	free(s);
	p.scopes_supported = NULL;
	ck_assert_ptr_null(oauth_choose_scope(NULL, &p, NULL, false));
	/* offline_access only where the authorization server offers it. */
	ck_assert_ptr_null(oauth_choose_scope(NULL, &p, &as, true));
	as.scopes_supported = as_scopes;
	s = oauth_choose_scope("files:read", &p, &as, true);
	ck_assert_str_eq(s, "files:read offline_access");
	free(s);
	s = oauth_choose_scope("offline_access files:read", &p, &as, true);
	ck_assert_str_eq(s, "offline_access files:read");
	free(s);
}
END_TEST

START_TEST(test_client_authentication_follows_what_the_server_advertises) {
	struct oauth_as_meta as = {0};
	enum oauth_client_auth a;
	char *cause = NULL;
	char *post[] = {"client_secret_post", NULL}, *none[] = {"none", NULL};
	ck_assert_int_eq(oauth_pick_client_auth(&as, true, false, &a, &cause), 0);
	ck_assert_int_eq(a, OAUTH_AUTH_SECRET_BASIC); /* RFC 8414's default */
	as.token_auth_methods = post;
	ck_assert_int_eq(oauth_pick_client_auth(&as, true, false, &a, &cause), 0);
	ck_assert_int_eq(a, OAUTH_AUTH_SECRET_POST);
	ck_assert_int_eq(oauth_pick_client_auth(&as, false, false, &a, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "accepts none of the client authentication methods"));
	free(cause);
	as.token_auth_methods = none;
	ck_assert_int_eq(oauth_pick_client_auth(&as, false, false, &a, &cause), 0);
	ck_assert_int_eq(a, OAUTH_AUTH_NONE);
}
END_TEST

START_TEST(test_pkce_is_s256_of_a_43_character_verifier) {
	char v[OAUTH_PKCE_LEN + 1], c[OAUTH_PKCE_LEN + 1], v2[OAUTH_PKCE_LEN + 1];
	/* Known answer computed independently (Python's hashlib + base64). */
	oauth_pkce_challenge("dBjftJeZ4CVP-mJ92K1ookxN-kcSu5l5SGBk4yE4x6Q", c);
	ck_assert_str_eq(c, "QB2MJTZQIG86hQP5MQKro7eELsKgCLjTqsOBikSFjb0");
	ck_assert_int_eq(oauth_pkce_new(v, c), 0);
	ck_assert_int_eq(strlen(v), 43);
	ck_assert_int_eq(strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	                 43);
	char again[OAUTH_PKCE_LEN + 1];
	oauth_pkce_challenge(v, again);
	ck_assert_str_eq(again, c);
	ck_assert_int_eq(oauth_pkce_new(v2, c), 0);
	ck_assert_str_ne(v, v2);
}
END_TEST

START_TEST(test_authorize_url_carries_pkce_state_and_resource) {
	struct oauth_as_meta as = {.authorization_endpoint = "https://auth.example.com/authorize"};
	char *url = oauth_authorize_url(&as, "client 1", "http://127.0.0.1:5123/callback", "a b",
	                                "st", "ch", "https://mcp.example.com/mcp");
	ck_assert_str_eq(url, "https://auth.example.com/authorize?response_type=code&client_id="
	                      "client%201&redirect_uri=http%3A%2F%2F127.0.0.1%3A5123%2Fcallback&"
	                      "state=st&code_challenge=ch&code_challenge_method=S256&resource="
	                      "https%3A%2F%2Fmcp.example.com%2Fmcp&scope=a%20b");
	free(url);
}
END_TEST

START_TEST(test_token_requests_authenticate_as_chosen) {
	struct oauth_as_meta as = {.issuer = "https://auth.example.com",
	                           .token_endpoint = "https://auth.example.com/token"};
	struct oauth_client c = {"app", "s3cr:t", NULL, OAUTH_AUTH_SECRET_BASIC};
	struct oauth_token_request r;
	char *cause = NULL;
	ck_assert_int_eq(oauth_token_request_code(&c, &as, "CODE", "http://127.0.0.1:1/cb", "VER",
	                                          "https://mcp.example.com", 0, &r, &cause),
	                 0);
	ck_assert_str_eq(r.body, "grant_type=authorization_code&code=CODE&redirect_uri=http%3A%2F%2F"
	                         "127.0.0.1%3A1%2Fcb&code_verifier=VER&resource=https%3A%2F%2F"
	                         "mcp.example.com");
	/* base64("app:s3cr%3At") */
	ck_assert_str_eq(r.authorization, "Basic YXBwOnMzY3IlM0F0");
	oauth_token_request_clear(&r);
	c.auth = OAUTH_AUTH_SECRET_POST;
	ck_assert_int_eq(oauth_token_request_refresh(&c, &as, "RT", "https://mcp.example.com", NULL,
	                                             0, &r, &cause),
	                 0);
	ck_assert_str_eq(r.body, "grant_type=refresh_token&refresh_token=RT&resource=https%3A%2F%2F"
	                         "mcp.example.com&client_id=app&client_secret=s3cr%3At");
	ck_assert_ptr_null(r.authorization);
	oauth_token_request_clear(&r);
	c.auth = OAUTH_AUTH_NONE;
	ck_assert_int_eq(oauth_token_request_client_credentials(&c, &as, NULL, "x", 0, &r, &cause), 0);
	ck_assert_str_eq(r.body, "grant_type=client_credentials&scope=x&client_id=app");
	oauth_token_request_clear(&r);
}
END_TEST

static int toks(const char *body, struct oauth_tokens *t, char **cause) {
	return oauth_tokens_parse(body, strlen(body), 1000000, t, cause);
}

START_TEST(test_token_responses_are_checked_and_errors_never_quote_tokens) {
	struct oauth_tokens t;
	char *cause = NULL;
	ck_assert_int_eq(toks("{\"access_token\":\"AT\",\"token_type\":\"bearer\",\"expires_in\":60,"
	                      "\"refresh_token\":\"RT\",\"scope\":\"a\"}", &t, &cause), 0);
	ck_assert_str_eq(t.access_token, "AT");
	ck_assert_str_eq(t.refresh_token, "RT");
	ck_assert_int_eq(t.expires_at_ms, 1000000 + 60000);
	oauth_tokens_clear(&t);
	const char *bad[][2] = {
	    {"{\"error\":\"invalid_grant\",\"error_description\":\"code expired\"}",
	     "the authorization server refused: invalid_grant (code expired)"},
	    {"{\"access_token\":\"SECRET1\",\"token_type\":\"mac\"}", "token_type is not Bearer"},
	    {"{\"access_token\":\"\",\"token_type\":\"Bearer\"}", "has no access_token"},
	    {"{\"access_token\":\"SECRET2\",\"token_type\":\"Bearer\",\"expires_in\":\"soon\"}",
	     "expires_in is not a number"},
	    {"{\"access_token\":7,\"token_type\":\"Bearer\"}", "has no access_token"},
	    {"not json SECRET3", "is not JSON"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		ck_assert_int_eq(toks(bad[i][0], &t, &cause), -1);
		ck_assert_msg(cause && strstr(cause, bad[i][1]), "%s -> %s", bad[i][0], cause);
		ck_assert_msg(strstr(cause, "SECRET") == NULL, "a token in the message: %s", cause);
		ck_assert_ptr_null(t.access_token);
		free(cause);
	}
}
END_TEST

/* base64url decode for checking what was signed. */
static char *b64url_decode(const char *s, size_t n, size_t *len) {
	char *std = calloc(1, n + 4);
	memcpy(std, s, n);
	for (size_t i = 0; i < n; i++)
		std[i] = std[i] == '-' ? '+' : std[i] == '_' ? '/' : std[i];
	size_t pad = 0;
	while (n % 4)
		std[n++] = '=', pad++;
	unsigned char *out = calloc(1, n);
	int r = EVP_DecodeBlock(out, (unsigned char *)std, (int)n);
	free(std);
	ck_assert_int_ge(r, 0);
	*len = (size_t)r - pad; /* EVP_DecodeBlock counts the padding as bytes */
	return (char *)out;
}

static void check_assertion(const char *alg, EVP_PKEY *key) {
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	char *pem;
	long n = BIO_get_mem_data(bio, &pem);
	char *pemz = strndup(pem, (size_t)n), *cause = NULL;
	BIO_free(bio);
	char *jwt = oauth_jwt_assertion(pemz, "my-client", "https://auth.example.com/token",
	                                1767225600000LL, &cause);
	ck_assert_msg(jwt != NULL, "%s", cause);
	char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');
	ck_assert_ptr_ne(dot1, dot2);
	size_t hl, cl, sl;
	char *h = b64url_decode(jwt, (size_t)(dot1 - jwt), &hl);
	char *c = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &cl);
	json_t *hdr = json_loadb(h, hl, 0, NULL), *claims = json_loadb(c, cl, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), alg);
	ck_assert_str_eq(json_string_value(json_object_get(claims, "iss")), "my-client");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "sub")), "my-client");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "aud")),
	                 "https://auth.example.com/token");
	ck_assert_int_eq(json_integer_value(json_object_get(claims, "iat")), 1767225600);
	ck_assert_int_eq(json_integer_value(json_object_get(claims, "exp")), 1767225900);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(claims, "jti")));
	/* The signature verifies with the public key over header.claims. */
	char *sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sl);
	unsigned char der[80];
	size_t derlen = sl;
	const unsigned char *check = (unsigned char *)sig;
	if (strcmp(alg, "ES256") == 0) { /* JOSE R||S back to DER for the verifier */
		ck_assert_int_eq(sl, 64);
		ECDSA_SIG *es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, BN_bin2bn((unsigned char *)sig, 32, NULL),
		               BN_bin2bn((unsigned char *)sig + 32, 32, NULL));
		unsigned char *p = der;
		derlen = (size_t)i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		check = der;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
	ck_assert_int_eq(EVP_DigestVerify(md, check, derlen, (unsigned char *)jwt,
	                                  (size_t)(dot2 - jwt)), 1);
	EVP_MD_CTX_free(md);
	json_decref(hdr);
	json_decref(claims);
	free(h);
	free(c);
	free(sig);
	free(jwt);
	free(pemz);
}

START_TEST(test_client_assertion_is_signed_rs256_or_es256) {
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert_ptr_nonnull(rsa);
	ck_assert_ptr_nonnull(ec);
	check_assertion("RS256", rsa);
	check_assertion("ES256", ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	char *cause = NULL;
	ck_assert_ptr_null(oauth_jwt_assertion("not a key", "c", "a", 0, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "not a PEM private key"));
	free(cause);
}
END_TEST

START_TEST(test_canonical_resource_lowercases_and_drops_the_trailing_slash) {
	char *cause = NULL, *s = oauth_canonical_resource("HTTPS://MCP.Example.COM/", &cause);
	ck_assert_str_eq(s, "https://mcp.example.com");
	free(s);
	s = oauth_canonical_resource("https://mcp.example.com:8443/Server/MCP#frag", &cause);
	ck_assert_str_eq(s, "https://mcp.example.com:8443/Server/MCP");
	free(s);
	ck_assert_ptr_null(oauth_canonical_resource("mcp.example.com", &cause));
	free(cause);
}
END_TEST

START_TEST(test_cross_app_access_requests_and_the_id_jag_answer) {
	struct oauth_token_request r;
	ck_assert_int_eq(oauth_token_request_token_exchange("idp-client", "ey.id.token",
	                                                    "https://as.example.com",
	                                                    "https://mcp.example.com/mcp", NULL, &r),
	                 0);
	ck_assert_ptr_nonnull(strstr(r.body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type"
	                                     "%3Atoken-exchange"));
	ck_assert_ptr_nonnull(strstr(r.body, "requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3A"
	                                     "token-type%3Aid-jag"));
	ck_assert_ptr_nonnull(strstr(r.body, "subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3A"
	                                     "token-type%3Aid_token"));
	ck_assert_ptr_nonnull(strstr(r.body, "audience=https%3A%2F%2Fas.example.com"));
	ck_assert_ptr_nonnull(strstr(r.body, "resource=https%3A%2F%2Fmcp.example.com%2Fmcp"));
	ck_assert_ptr_nonnull(strstr(r.body, "subject_token=ey.id.token"));
	ck_assert_ptr_null(r.authorization);
	oauth_token_request_clear(&r);

	struct oauth_as_meta as = {.issuer = "https://as.example.com",
	                           .token_endpoint = "https://as.example.com/token"};
	struct oauth_client c = {"xaa", "s3cret", NULL, OAUTH_AUTH_SECRET_BASIC};
	char *cause = NULL;
	ck_assert_int_eq(oauth_token_request_jwt_bearer(&c, &as, "ey.jag", "https://mcp.example.com",
	                                                NULL, 0, &r, &cause),
	                 0);
	ck_assert_ptr_nonnull(strstr(r.body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type"
	                                     "%3Ajwt-bearer"));
	ck_assert_ptr_nonnull(strstr(r.body, "assertion=ey.jag"));
	ck_assert_ptr_null(strstr(r.body, "s3cret"));
	ck_assert_ptr_nonnull(r.authorization); /* client_secret_basic */
	oauth_token_request_clear(&r);

	const char *ok = "{\"access_token\":\"ey.jag\",\"issued_token_type\":"
	                 "\"urn:ietf:params:oauth:token-type:id-jag\",\"token_type\":\"N_A\"}";
	char *jag = oauth_id_jag_parse(ok, strlen(ok), &cause);
	ck_assert_str_eq(jag, "ey.jag");
	free(jag);
	const char *access = "{\"access_token\":\"secret-at\",\"issued_token_type\":"
	                     "\"urn:ietf:params:oauth:token-type:access_token\"}";
	ck_assert_ptr_null(oauth_id_jag_parse(access, strlen(access), &cause));
	ck_assert_ptr_nonnull(strstr(cause, "not an ID-JAG"));
	ck_assert_ptr_null(strstr(cause, "secret-at"));
	free(cause);
	const char *err = "{\"error\":\"invalid_grant\",\"error_description\":\"bad id token\"}";
	ck_assert_ptr_null(oauth_id_jag_parse(err, strlen(err), &cause));
	ck_assert_ptr_nonnull(strstr(cause, "invalid_grant: bad id token"));
	free(cause);
}
END_TEST

static Suite *oauth_suite(void) {
	Suite *s = suite_create("oauth");
	TCase *tc = tcase_create("oauth");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_challenge_reads_the_bearer_params_quoted_or_not);
	tcase_add_test(tc, test_discovery_urls_come_in_the_specified_order);
	tcase_add_test(tc, test_resource_metadata_must_name_this_server);
	tcase_add_test(tc, test_authorization_server_metadata_issuer_and_endpoints_are_checked);
	tcase_add_test(tc, test_scope_comes_from_the_challenge_then_the_resource_then_nowhere);
	tcase_add_test(tc, test_client_authentication_follows_what_the_server_advertises);
	tcase_add_test(tc, test_pkce_is_s256_of_a_43_character_verifier);
	tcase_add_test(tc, test_authorize_url_carries_pkce_state_and_resource);
	tcase_add_test(tc, test_token_requests_authenticate_as_chosen);
	tcase_add_test(tc, test_token_responses_are_checked_and_errors_never_quote_tokens);
	tcase_add_test(tc, test_client_assertion_is_signed_rs256_or_es256);
	tcase_add_test(tc, test_canonical_resource_lowercases_and_drops_the_trailing_slash);
	tcase_add_test(tc, test_cross_app_access_requests_and_the_id_jag_answer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(oauth_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
