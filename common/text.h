/*
 * text.h - the rules for text that came from outside (child output, server
 * replies, configuration values) before it is shown, logged or stored:
 * cut on UTF-8 boundaries, made valid UTF-8, rid of control characters.
 * One copy of each, used by the daemon and mcpjobctl alike.
 */
#ifndef MCPJOB_TEXT_H
#define MCPJOB_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Both NULL, or the same string. */
bool text_equal(const char *a, const char *b);

/* Whether @c is a UTF-8 continuation byte (10xxxxxx). */
bool text_utf8_is_cont(unsigned char c);
/* The length of @s (@len bytes) cut to at most @max bytes, never inside a
 * UTF-8 sequence. */
size_t text_utf8_cut(const char *s, size_t len, size_t max);
/* Code points in the NUL-terminated @s (its width in a terminal, roughly). */
size_t text_utf8_width(const char *s);
/* @len bytes as a valid UTF-8 C string: invalid sequences, overlong forms,
 * surrogates and NULs become '?'. Caller frees. */
char *text_utf8_valid(const char *s, size_t len);
/* Whether @len bytes at @s are valid UTF-8 without a NUL (what
 * text_utf8_valid() would copy unchanged). */
bool text_utf8_ok(const char *s, size_t len);

/* Every C0 control character and DEL in @s becomes @repl. */
void text_scrub(char *s, char repl);
/* For one line of a table or log: tab and newline become ' ', other
 * control characters and DEL '?'. */
void text_scrub_line(char *s);

#endif
