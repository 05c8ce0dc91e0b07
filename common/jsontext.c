/*
 * jsontext.c - JSON text into a buffer, as jansson's compact encoding.
 */
#include "common/jsontext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"

void jsontext_init(struct jsontext *t) {
	memset(t, 0, sizeof *t);
}

void jsontext_free(struct jsontext *t) {
	free(t->buf);
	jsontext_init(t);
}

char *jsontext_take(struct jsontext *t, size_t *len) {
	char *s = t->buf ? t->buf : xstrdup("");
	if (len)
		*len = t->len;
	jsontext_init(t);
	return s;
}

static char *jsontext_room(struct jsontext *t, size_t n) {
	if (t->cap - t->len < n + 1) {
		size_t cap = t->cap ? t->cap : 1024; /* a job.status reply fits */
		while (cap - t->len < n + 1)
			cap *= 2;
		t->buf = xrealloc(t->buf, cap);
		t->cap = cap;
	}
	return t->buf + t->len;
}

static inline void jsontext_raw_inline(struct jsontext *t, const char *s, size_t n) {
	char *p = t->cap - t->len > n ? t->buf + t->len : jsontext_room(t, n);
	memcpy(p, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

void jsontext_raw(struct jsontext *t, const char *s, size_t n) {
	char *p = jsontext_room(t, n);
	memcpy(p, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

char *jsontext_reserve(struct jsontext *t, size_t n) {
	return jsontext_room(t, n);
}

void jsontext_commit(struct jsontext *t, char *end) {
	t->len = (size_t)(end - t->buf);
	t->buf[t->len] = '\0';
	t->comma = true;
}

char *jsontext_put_raw(char *p, const char *s, size_t n) {
	memcpy(p, s, n);
	return p + n;
}

char *jsontext_put_str(char *p, const char *s) {
	if (s == NULL)
		return jsontext_put_raw(p, "null", 4);
	*p++ = '"';
	p = jsontext_put_escaped(p, s, strlen(s));
	*p++ = '"';
	return p;
}

static inline void jsontext_char(struct jsontext *t, char c) {
	char *p = t->cap - t->len >= 2 ? t->buf + t->len : jsontext_room(t, 1);
	p[0] = c;
	p[1] = '\0';
	t->len++;
}

static void jsontext_sep(struct jsontext *t) {
	if (t->comma)
		jsontext_char(t, ',');
}

void jsontext_encoded(struct jsontext *t, const char *s, size_t n) {
	jsontext_sep(t);
	jsontext_raw_inline(t, s, n);
	t->comma = true;
}

void jsontext_obj_open(struct jsontext *t) {
	jsontext_sep(t);
	jsontext_char(t, '{');
	t->comma = false;
}

void jsontext_obj_close(struct jsontext *t) {
	jsontext_char(t, '}');
	t->comma = true;
}

void jsontext_arr_open(struct jsontext *t) {
	jsontext_sep(t);
	jsontext_char(t, '[');
	t->comma = false;
}

void jsontext_arr_close(struct jsontext *t) {
	jsontext_char(t, ']');
	t->comma = true;
}

/* The length of the valid UTF-8 sequence at @s (@n bytes left), 0 if none
 * starts there: jansson's rules (no overlong forms, surrogates or code
 * points over U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
	unsigned char u = s[0];
	size_t size;
	uint32_t v;
	if (u < 0x80)
		return 1;
	if (u >= 0xC2 && u <= 0xDF) {
		size = 2;
		v = u & 0x1F;
	} else if (u >= 0xE0 && u <= 0xEF) {
		size = 3;
		v = u & 0x0F;
	} else if (u >= 0xF0 && u <= 0xF4) {
		size = 4;
		v = u & 0x07;
	} else {
		return 0;
	}
	if (size > n)
		return 0;
	for (size_t i = 1; i < size; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (size == 3 && v < 0x800) ||
	    (size == 4 && v < 0x10000))
		return 0;
	return size;
}

/* The length of @s's prefix that is written as it is. */
static inline size_t clean_prefix(const unsigned char *s, size_t n) {
	size_t i = 0;
	while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
		i++;
	return i;
}

/* @n bytes of @str escaped (no quotes) at @p, at most JSONTEXT_ESCAPED_MAX(@n)
 * bytes; the end. */
char *jsontext_put_escaped(char *p, const char *str, size_t n) {
	const unsigned char *s = (const unsigned char *)str;
	size_t i = clean_prefix(s, n), run = 0; /* s[run..i) is copied as it is */
	/* most strings: one copy */
	if (i == n) {
		memcpy(p, str, n);
		return p + n;
	}
	while (i < n) {
		while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
			i++;
		if (i == n)
			break;
		unsigned char c = s[i];
		const char *esc = NULL;
		char seq[8];
		if (c >= 0x80) {
			size_t k = utf8_seq(s + i, n - i);
			if (k > 0) {
				i += k;
				continue;
			}
			esc = "\xef\xbf\xbd"; /* U+FFFD for a byte that starts nothing valid */
		} else if (c == '"') {
			esc = "\\\"";
		} else if (c == '\\') {
			esc = "\\\\";
		} else if (c == '\b') {
			esc = "\\b";
		} else if (c == '\f') {
			esc = "\\f";
		} else if (c == '\n') {
			esc = "\\n";
		} else if (c == '\r') {
			esc = "\\r";
		} else if (c == '\t') {
			esc = "\\t";
		} else {
			snprintf(seq, sizeof seq, "\\u%04X", (unsigned)c);
			esc = seq;
		}
		memcpy(p, str + run, i - run);
		p += i - run;
		size_t e = strlen(esc);
		memcpy(p, esc, e);
		p += e;
		run = ++i;
	}
	memcpy(p, str + run, n - run);
	return p + (n - run);
}

static void jsontext_escaped(struct jsontext *t, const char *str, size_t n) {
	char *p = jsontext_reserve(t, JSONTEXT_ESCAPED_MAX(n) + 2);
	*p++ = '"';
	p = jsontext_put_escaped(p, str, n);
	*p++ = '"';
	t->len = (size_t)(p - t->buf);
	t->buf[t->len] = '\0';
}

void jsontext_key(struct jsontext *t, const char *key) {
	size_t n = strlen(key);
	if (clean_prefix((const unsigned char *)key, n) == n) {
		char *p = jsontext_room(t, n + 4), *q = p;
		if (t->comma)
			*q++ = ',';
		*q++ = '"';
		memcpy(q, key, n);
		q += n;
		*q++ = '"';
		*q++ = ':';
		*q = '\0';
		t->len += (size_t)(q - p);
	} else {
		jsontext_sep(t);
		jsontext_escaped(t, key, n);
		jsontext_char(t, ':');
	}
	t->comma = false;
}

void jsontext_key_quoted(struct jsontext *t, const char *quoted, size_t n) {
	if (t->comma)
		jsontext_char(t, ',');
	jsontext_raw_inline(t, quoted, n);
	t->comma = false;
}

void jsontext_strn(struct jsontext *t, const char *s, size_t n) {
	jsontext_sep(t);
	jsontext_escaped(t, s, n);
	t->comma = true;
}

void jsontext_str(struct jsontext *t, const char *s) {
	if (s == NULL)
		jsontext_null(t);
	else
		jsontext_strn(t, s, strlen(s));
}

/* Digits by hand: snprintf's format machinery was a tenth of a reply. */
char *jsontext_put_int(char *p, long long v) {
	char b[24], *q = b + sizeof b;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		*--q = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--q = '-';
	return jsontext_put_raw(p, q, (size_t)(b + sizeof b - q));
}

void jsontext_int(struct jsontext *t, long long v) {
	char b[24];
	jsontext_encoded(t, b, (size_t)(jsontext_put_int(b, v) - b));
}

/* jansson's jsonp_dtostr(): "%.17g", ".0" when neither '.' nor 'e' shows,
 * the exponent without '+' and leading zeros. A value JSON cannot hold
 * (jansson refuses NaN and infinities) is null. */
void jsontext_real(struct jsontext *t, double v) {
	char b[64];
	if (v != v || v - v != 0) {
		jsontext_null(t);
		return;
	}
	/* A whole number under 1e15 (whole seconds, most durations): "%.17g"
	 * prints its digits, then ".0" - without the float formatting. */
	if (v > -1e15 && v < 1e15 && v == (double)(long long)v && (v != 0 || !signbit(v))) {
		jsontext_int(t, (long long)v);
		jsontext_raw_inline(t, ".0", 2);
		return;
	}
	int n = snprintf(b, sizeof b - 3, "%.17g", v);
	if (n < 0 || (size_t)n >= sizeof b - 3) {
		jsontext_null(t);
		return;
	}
	size_t len = (size_t)n;
	for (char *p = b; *p; p++)
		if (*p == ',') /* a locale's decimal comma */
			*p = '.';
	if (strchr(b, '.') == NULL && strchr(b, 'e') == NULL) {
		memcpy(b + len, ".0", 3);
		len += 2;
	}
	char *start = strchr(b, 'e');
	if (start) {
		start++;
		char *end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, len - (size_t)(end - b) + 1);
			len -= (size_t)(end - start);
		}
	}
	jsontext_encoded(t, b, len);
}

void jsontext_bool(struct jsontext *t, bool v) {
	if (v)
		jsontext_encoded(t, "true", 4);
	else
		jsontext_encoded(t, "false", 5);
}

void jsontext_null(struct jsontext *t) {
	jsontext_encoded(t, "null", 4);
}

/* time_format_rfc3339() quoted (it writes 24 characters and a NUL). */
char *jsontext_put_time(char *b, int64_t ms) {
	if (ms == 0)
		return jsontext_put_raw(b, "null", 4);
	b[0] = '"';
	time_format_rfc3339(ms, b + 1);
	b[25] = '"';
	return b + 26;
}

void jsontext_time(struct jsontext *t, int64_t ms) {
	char b[32];
	jsontext_encoded(t, b, (size_t)(jsontext_put_time(b, ms) - b));
}

/*
 * The tree walked here, not by json_dump_callback(): jansson's dump keeps a
 * hashtable of the parents (a snprintf("%p") and an insert per object or
 * array) and hands the text over in small pieces; this walk costs a third
 * of it. Objects in jansson's order (as inserted), as its dump writes them.
 * A tree deeper than jansson parses (a loop, which no parse makes) fails.
 */
static bool jsontext_walk(struct jsontext *t, const json_t *v, int depth) {
	if (depth > JSONTEXT_DEPTH_MAX)
		return false;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		jsontext_obj_open(t);
		for (void *it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			jsontext_sep(t);
			jsontext_escaped(t, json_object_iter_key(it), json_object_iter_key_len(it));
			jsontext_char(t, ':');
			t->comma = false;
			if (!jsontext_walk(t, json_object_iter_value(it), depth + 1))
				return false;
		}
		jsontext_obj_close(t);
		return true;
	case JSON_ARRAY:
		jsontext_arr_open(t);
		for (size_t i = 0, n = json_array_size(v); i < n; i++)
			if (!jsontext_walk(t, json_array_get(v, i), depth + 1))
				return false;
		jsontext_arr_close(t);
		return true;
	case JSON_STRING:
		jsontext_strn(t, json_string_value(v), json_string_length(v));
		return true;
	case JSON_INTEGER:
		jsontext_int(t, (long long)json_integer_value(v));
		return true;
	case JSON_REAL:
		jsontext_real(t, json_real_value(v));
		return true;
	case JSON_TRUE:
	case JSON_FALSE:
		jsontext_bool(t, json_is_true(v));
		return true;
	case JSON_NULL:
		jsontext_null(t);
		return true;
	}
	return false;
}

char *jsontext_dumps(const json_t *v, size_t *len) {
	struct jsontext t;
	jsontext_init(&t);
	if (v == NULL || !jsontext_walk(&t, v, 0)) {
		jsontext_free(&t);
		return NULL;
	}
	return jsontext_take(&t, len);
}

void jsontext_json(struct jsontext *t, const json_t *v) {
	jsontext_sep(t);
	size_t at = t->len;
	t->comma = false;
	if (v == NULL || !jsontext_walk(t, v, 0)) {
		t->len = at; /* whatever a failed dump wrote */
		if (t->buf)
			t->buf[at] = '\0';
		jsontext_raw(t, "null", 4);
	}
	t->comma = true;
}
