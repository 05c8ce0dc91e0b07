/*
 * demo-tools.h - the demo server's two tools and the files behind them.
 *
 * syncData appends what it receives to DIR/synced.json; getNotifications
 * reads DIR/notifications.json (created with three samples on first start).
 * Both files are plain JSON arrays a person can read and edit.
 */
#ifndef MCPJOB_DEMO_TOOLS_H
#define MCPJOB_DEMO_TOOLS_H

#include <jansson.h>

/*
 * demo_tools_init() - use @dir for the data files; create it and the sample
 * notifications if missing. 0, or -1 with a sentence in @cause (cause_len bytes).
 */
int demo_tools_init(const char *dir, char *cause, size_t cause_len);

/* The tool definitions for tools/list: a new JSON array. */
json_t *demo_tools_list(void);

/*
 * demo_tools_call() - run tool @name with @args (an object, or NULL).
 * Returns a new CallToolResult object; failures of the tool, including an
 * unknown name, are results with "isError": true.
 */
json_t *demo_tools_call(const char *name, json_t *args);

#endif
