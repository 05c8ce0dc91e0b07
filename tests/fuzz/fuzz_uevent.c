/*
 * fuzz_uevent.c - datagrams on the kernel's uevent socket (power.c without
 * udevd): classify any bytes as the kernel's and as someone else's. Reads
 * must stay within the length; only port 0 with kernel credentials may
 * ever ask for a re-read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "platform/linux/linux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	/* A copy of exactly @size bytes, so ASan sees any read past the end. */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	const struct ucred kernel = { .pid = 0, .uid = 0, .gid = 0 };
	const struct ucred user = { .pid = 4242, .uid = 0, .gid = 0 };
	const char *why;
	int r = linux_power_uevent_classify(buf, size, 0, &kernel, &why);
	if (r == LINUX_POWER_UEVENT_REJECT ? why == NULL : why != NULL)
		abort(); /* a refusal always says why, an acceptance never */
	const int reject = LINUX_POWER_UEVENT_REJECT;
	if (linux_power_uevent_classify(buf, size, 4242, &kernel, &why) != reject ||
	    linux_power_uevent_classify(buf, size, 0, &user, &why) != reject ||
	    linux_power_uevent_classify(buf, size, 0, NULL, &why) != reject)
		abort(); /* whatever the bytes, only the kernel is believed */
	free(buf);
	return 0;
}
