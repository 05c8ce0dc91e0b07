/*
 * text.c - UTF-8-safe cutting, validation and control-character scrubbing
 * (see text.h).
 */
#include "common/text.h"

#include <string.h>

#include "common/xmalloc.h"

bool text_equal(const char *a, const char *b) {
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool text_utf8_is_cont(unsigned char c) {
	return (c & 0xc0) == 0x80;
}

size_t text_utf8_cut(const char *s, size_t len, size_t max) {
	if (len <= max)
		return len;
	size_t n = max;
	while (n > 0 && text_utf8_is_cont((unsigned char)s[n]))
		n--;
	return n;
}

size_t text_utf8_width(const char *s) {
	size_t n = 0;
	for (; *s; s++)
		if (!text_utf8_is_cont((unsigned char)*s))
			n++;
	return n;
}

/* Length of the valid UTF-8 sequence at @s (at most @len bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t len) {
	size_t n;
	unsigned min, cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, min = 0x80, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, min = 0x800, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (!text_utf8_is_cont(s[i]))
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool text_utf8_ok(const char *text, size_t len) {
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < len;) {
		if (s[i] >= 0x01 && s[i] < 0x80) { /* the common case, a byte at a time */
			i++;
			continue;
		}
		size_t n = s[i] == '\0' ? 0 : utf8_seq_len(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

char *text_utf8_valid(const char *text, size_t len) {
	const unsigned char *s = (const unsigned char *)text;
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = s[i] == '\0' ? 0 : utf8_seq_len(s + i, len - i);
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static bool is_control(unsigned char c) {
	return c < 0x20 || c == 0x7f;
}

void text_scrub(char *s, char repl) {
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (is_control(*p))
			*p = (unsigned char)repl;
}

void text_scrub_line(char *s) {
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (is_control(*p))
			*p = (*p == '\n' || *p == '\t') ? ' ' : '?';
}
