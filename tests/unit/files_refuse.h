/*
 * files_refuse.h - for the unit tests that need a store which refuses its
 * writes: while refused, every write to a regular file fails with EFBIG
 * (RLIMIT_FSIZE 0, SIGXFSZ ignored), as on a full disk.
 */
#ifndef MCPJOB_TEST_FILES_REFUSE_H
#define MCPJOB_TEST_FILES_REFUSE_H

#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>

static inline void files_refuse(bool refuse) {
	static struct rlimit saved;
	if (refuse) {
		ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
		struct rlimit none = {0, saved.rlim_max};
		signal(SIGXFSZ, SIG_IGN);
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &none), 0);
	} else {
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
	}
}

#endif
