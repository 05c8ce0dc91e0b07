/*
 * fuzz_store_record.c - the store reads its records back from disk, where a
 * damaged or hand-edited file may hold anything: every run key and value
 * and every job value must decode to a record (or be refused), never crash
 * or leak, and what decoded must encode again.
 *
 * Input: one byte splitting the rest into a run key (that many bytes, at
 * most the rest) and its JSON value; the value alone is also decoded as a
 * job record.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/job.h"
#include "daemon/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size < 1)
		return 0;
	size_t klen = data[0];
	const uint8_t *key = data + 1;
	if (klen > size - 1)
		klen = size - 1;
	const uint8_t *val = key + klen;
	size_t vlen = size - 1 - klen;

	struct run_record run;
	if (store_run_record_decode(key, klen, val, vlen, &run) == 0) {
		json_t *j = store_run_to_json(&run);
		json_decref(j);
		(void)job_outcome_name(run.outcome);
		(void)job_trigger_name(run.trigger);
	}
	store_run_record_clear(&run);

	struct job_record rec;
	store_job_record_decode(val, vlen, &rec);
	(void)job_outcome_name(rec.last_outcome);
	store_job_record_clear(&rec);
	return 0;
}
