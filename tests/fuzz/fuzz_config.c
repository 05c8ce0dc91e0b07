/*
 * fuzz_config.c - configuration files are written by people: any bytes
 * must load or be refused with errors, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static char path[64];
	if (path[0] == '\0')
		snprintf(path, sizeof path, "/tmp/mcpjob-fuzz-config-%d.json", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	struct config *cfg = NULL;
	struct config_errors errs = {0};
	if (config_load(path, &cfg, &errs) == 0)
		config_free(cfg);
	free(config_errors_join(&errs));
	config_errors_clear(&errs);
	return 0;
}
