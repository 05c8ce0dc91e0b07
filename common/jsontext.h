/*
 * jsontext.h - JSON text written straight into a growing buffer, for the
 * replies the daemon sends most (job.status, jobs.list, job.history): no
 * jansson tree is built, encoded and freed per reply.
 *
 * What it writes is byte for byte what jansson's json_dumps(JSON_COMPACT)
 * writes for the same values (tests/unit/test_jsontext.c compares them):
 * keys in the order written, "," and ":" without spaces, strings escaped as
 * jansson escapes them ('"', '\\', \b \f \n \r \t, other control characters
 * as \u00XX; '/' and non-ASCII as they are), integers in decimal, reals as
 * jansson's "%.17g" with ".0" when it looks like an integer. One thing
 * differs on purpose: a C string that is not valid UTF-8 (jansson refuses
 * it) is written with U+FFFD for each byte that starts no valid sequence,
 * as the store's records always did.
 *
 * Separators are automatic: a value or key after another gets its ",".
 * Memory runs out only as xmalloc does (the daemon exits).
 */
#ifndef MCPJOB_JSONTEXT_H
#define MCPJOB_JSONTEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsontext {
	char *buf; /* NUL-terminated while not empty (owned) */
	size_t len, cap;
	bool comma; /* the next key or value needs a "," first */
};

void jsontext_init(struct jsontext *t);
void jsontext_free(struct jsontext *t);
/* The text (NUL-terminated, "" when empty), taken from @t, which is empty again. */
char *jsontext_take(struct jsontext *t, size_t *len);

/* Bytes as they are: no separator, no escaping (framing, pre-encoded parts). */
void jsontext_raw(struct jsontext *t, const char *s, size_t n);
/* A value already encoded as JSON text (@n bytes), with its separator. */
void jsontext_encoded(struct jsontext *t, const char *s, size_t n);

void jsontext_obj_open(struct jsontext *t);
void jsontext_obj_close(struct jsontext *t);
void jsontext_arr_open(struct jsontext *t);
void jsontext_arr_close(struct jsontext *t);
/* An object's key; the value follows. */
void jsontext_key(struct jsontext *t, const char *key);
/* A key that is a string literal needing no escapes: JSONTEXT_KEY(t, "run_id").
 * The same as jsontext_key() without looking at the key at run time. */
#define JSONTEXT_KEY(t, lit) jsontext_key_quoted((t), "\"" lit "\":", sizeof(lit) + 2)
void jsontext_key_quoted(struct jsontext *t, const char *quoted, size_t n);

/* A string value; NULL is written as null. */
void jsontext_str(struct jsontext *t, const char *s);
void jsontext_strn(struct jsontext *t, const char *s, size_t n);
void jsontext_int(struct jsontext *t, long long v);
void jsontext_real(struct jsontext *t, double v);
void jsontext_bool(struct jsontext *t, bool v);
void jsontext_null(struct jsontext *t);
/* An RFC 3339 time string ("2026-11-28T16:23:01.123Z"), or null for 0, as
 * time_to_json(). */
void jsontext_time(struct jsontext *t, int64_t ms);
/* A jansson value as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes it;
 * NULL (or a tree nested deeper than JSONTEXT_DEPTH_MAX) is written as null. */
#define JSONTEXT_DEPTH_MAX 2048 /* jansson's JSON_PARSER_MAX_DEPTH */
void jsontext_json(struct jsontext *t, const json_t *v);
/* @v as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) would return it, or NULL
 * (as jsontext_json() writes null); *@len set when not NULL. Caller frees. */
char *jsontext_dumps(const json_t *v, size_t *len);

/*
 * Straight-line writing, for an encoder called thousands of times per
 * reply: jsontext_reserve() room for at most @n bytes (after what @t holds),
 * write with the jsontext_put_*() (each returns the end of what it wrote), then
 * jsontext_commit() the end; it counts as one value for the separators (write
 * the "," yourself when @t->comma says so).
 */
#define JSONTEXT_ESCAPED_MAX(n) (6 * (n)) /* \u00XX per control byte; U+FFFD is 3 */
#define JSONTEXT_TIME_MAX       26        /* a quoted time, or null */
#define JSONTEXT_INT_MAX        20
char *jsontext_reserve(struct jsontext *t, size_t n);
void jsontext_commit(struct jsontext *t, char *end);
char *jsontext_put_raw(char *p, const char *s, size_t n);
#define JSONTEXT_PUT_LIT(p, lit) jsontext_put_raw((p), (lit), sizeof(lit) - 1)
char *jsontext_put_int(char *p, long long v);
/* Escaped without quotes: at most JSONTEXT_ESCAPED_MAX(@n) bytes. */
char *jsontext_put_escaped(char *p, const char *s, size_t n);
/* Quoted and escaped, or null: at most JSONTEXT_ESCAPED_MAX(strlen(@s)) + 2. */
char *jsontext_put_str(char *p, const char *s);
/* As jsontext_time(): at most JSONTEXT_TIME_MAX. */
char *jsontext_put_time(char *p, int64_t ms);

#endif
