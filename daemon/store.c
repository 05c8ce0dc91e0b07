/*
 * store.c - persistent job state and run history in LMDB.
 *
 * Layout and guarantees are in store.h. Every write goes through
 * store_write(), which runs a callback inside one write transaction and, when
 * LMDB reports MDB_MAP_FULL, aborts, doubles the map and runs the callback
 * again from scratch; callbacks therefore keep no state across attempts that
 * is not reset at their start. Commits are durable (no MDB_NOSYNC): history
 * is something we promise to keep.
 *
 * A state directory is used by one mcpjobd at a time (flock on store.lock):
 * a second daemon would mark the first one's running runs "interrupted".
 */
#include "daemon/store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"

#define STORE_MAP_SIZE    ((size_t)64 << 20)
#define STORE_MAX_GROWS   12
#define STORE_LOCK_FILE   "store.lock"
/* LMDB's default maximum key size is 511; a runs key adds '\0' + 16 bytes. */
#define STORE_MAX_JOB_ID  (511 - 17)
#define STORE_RUN_KEY_MAX (STORE_MAX_JOB_ID + 17)
/* Keys in "meta"; values are decimal text, readable with mdb_dump. */
#define META_SCHEMA       "schema"
#define META_LAST_RUN_ID  "last_run_id"
#define STORE_INTERRUPTED_MSG "mcpjobd stopped while this run was in progress"

struct store {
	MDB_env *env;
	MDB_dbi meta, jobs, runs, active, defs;
	char *dir;
	int lock_fd;
};

/* A write step: 0, or an LMDB/errno code (with *cause set when it knows better). */
typedef int (*store_write_fn)(struct store *st, MDB_txn *txn, void *arg, char **cause);

static void set_cause(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_cause(char **cause, const char *fmt, ...) {
	va_list ap;

	if (cause == NULL)
		return;
	va_start(ap, fmt);
	*cause = xvasprintf(fmt, ap);
	va_end(ap);
}

/* --- keys --------------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v) {
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)(v & 0xff);
}

static uint64_t get_be64(const uint8_t *p) {
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static bool job_id_ok(const char *job_id, char **cause) {
	size_t len = job_id ? strlen(job_id) : 0;

	if (len == 0 || len > STORE_MAX_JOB_ID) {
		set_cause(cause, "job id \"%.40s\" cannot be stored: it must be 1 to %d bytes long",
		          job_id ? job_id : "", STORE_MAX_JOB_ID);
		return false;
	}
	return true;
}

/* (job_id, '\0', be64 started, be64 run_id) into buf; returns its length. */
static size_t run_key(uint8_t *buf, const char *job_id, uint64_t started, uint64_t run_id) {
	size_t len = strlen(job_id);

	memcpy(buf, job_id, len);
	buf[len] = '\0';
	put_be64(buf + len + 1, started);
	put_be64(buf + len + 9, run_id);
	return len + 17;
}

/* Does @key belong to @job_id's range of the runs database? */
static bool run_key_is_of(const MDB_val *key, const char *job_id, size_t len) {
	const uint8_t *p = key->mv_data;

	return key->mv_size == len + 17 && memcmp(p, job_id, len) == 0 && p[len] == '\0';
}

/* --- JSON values --------------------------------------------------------- */

/*
 * Child output is arbitrary bytes; jansson only takes UTF-8. Invalid
 * sequences become U+FFFD so the record is still written and readable.
 */
static json_t *json_text(const char *s) {
	json_t *j;
	size_t len, o = 0;
	char *buf;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	len = strlen(s);
	buf = xmalloc(len * 3 + 1);
	for (size_t i = 0; i < len; i++) {
		size_t n;

		/* Try the longest valid sequence (1..4 bytes) starting at i. */
		for (n = 4; n >= 1; n--)
			if (i + n <= len && (j = json_stringn(s + i, n)) != NULL)
				break;
		if (n >= 1) {
			json_decref(j);
			memcpy(buf + o, s + i, n);
			o += n;
			i += n - 1;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j ? j : json_null();
}

static int64_t jint(const json_t *obj, const char *key, int64_t dflt) {
	const json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static char *jstr(const json_t *obj, const char *key) {
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

static int jenum(const json_t *obj, const char *key, int (*from)(const char *), int dflt) {
	const json_t *v = json_object_get(obj, key);
	int i = json_is_string(v) ? from(json_string_value(v)) : -1;

	return i < 0 ? dflt : i;
}

static json_t *job_record_to_json(const struct job_record *rec) {
	return json_pack("{s:i, s:I, s:I, s:I, s:s, s:o, s:I, s:i}",
	                 "enabled_override", rec->enabled_override,
	                 "last_run_ms", (json_int_t)rec->last_run_ms,
	                 "last_finished_ms", (json_int_t)rec->last_finished_ms,
	                 "last_success_ms", (json_int_t)rec->last_success_ms,
	                 "last_outcome", job_outcome_name(rec->last_outcome),
	                 "last_message", json_text(rec->last_message),
	                 "next_due_ms", (json_int_t)rec->next_due_ms,
	                 "attempt", rec->attempt);
}

static void job_record_from_json(const json_t *o, struct job_record *rec) {
	int ov = (int)jint(o, "enabled_override", -1);

	store_job_record_init(rec);
	rec->enabled_override = (ov == 0 || ov == 1) ? ov : -1;
	rec->last_run_ms = jint(o, "last_run_ms", 0);
	rec->last_finished_ms = jint(o, "last_finished_ms", 0);
	rec->last_success_ms = jint(o, "last_success_ms", 0);
	rec->last_outcome = jenum(o, "last_outcome", job_outcome_from_name, OUTCOME_NONE);
	rec->last_message = jstr(o, "last_message");
	rec->next_due_ms = jint(o, "next_due_ms", 0);
	rec->attempt = (int)jint(o, "attempt", 0);
}

static json_t *run_record_to_value(const struct run_record *run) {
	json_t *structured = run->structured ? json_incref(run->structured) : json_null();

	json_t *v = json_pack("{s:I, s:o, s:s, s:i, s:I, s:I, s:s, s:o, s:o, s:o}",
	                      "run_id", (json_int_t)run->run_id,
	                      "job", json_text(run->job_id),
	                      "trigger", job_trigger_name(run->trigger),
	                      "attempt", run->attempt,
	                      "started_ms", (json_int_t)run->started_ms,
	                      "finished_ms", (json_int_t)run->finished_ms,
	                      "outcome", job_outcome_name(run->outcome),
	                      "message", json_text(run->message),
	                      "output", json_text(run->output),
	                      "structured", structured);
	if (run->trigger_ref)
		json_object_set_new(v, "trigger_ref", json_string(run->trigger_ref));
	if (run->input)
		json_object_set(v, "input", run->input);
	return v;
}

/* The key is authoritative for job, start and id; the value for the rest. */
static void run_record_from_kv(const MDB_val *key, const MDB_val *val, struct run_record *run) {
	const uint8_t *k = key->mv_data;
	size_t len = key->mv_size - 17;
	json_t *o = json_loadb(val->mv_data, val->mv_size, 0, NULL);
	json_t *s = json_object_get(o, "structured");

	memset(run, 0, sizeof *run);
	run->job_id = xstrndup((const char *)k, len);
	run->started_ms = (int64_t)get_be64(k + len + 1);
	run->run_id = get_be64(k + len + 9);
	run->trigger = jenum(o, "trigger", job_trigger_from_name, TRIGGER_SCHEDULE);
	run->trigger_ref = jstr(o, "trigger_ref");
	run->input = json_incref(json_object_get(o, "input"));
	run->attempt = (int)jint(o, "attempt", 1);
	run->finished_ms = jint(o, "finished_ms", 0);
	run->outcome = jenum(o, "outcome", job_outcome_from_name, OUTCOME_NONE);
	run->message = jstr(o, "message");
	run->output = jstr(o, "output");
	run->structured = (s && !json_is_null(s)) ? json_incref(s) : NULL;
	json_decref(o);
}

int store_run_record_decode(const void *key, size_t klen, const void *val, size_t vlen,
                            struct run_record *run) {
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	const uint8_t *kb = key;

	memset(run, 0, sizeof *run);
	/* job id (at least one byte), NUL, be64 start, be64 run id */
	if (klen < 18 || kb[klen - 17] != '\0' || memchr(kb, '\0', klen - 17) != NULL)
		return -1;
	run_record_from_kv(&k, &v, run);
	return 0;
}

void store_job_record_decode(const void *val, size_t vlen, struct job_record *rec) {
	json_t *o = json_loadb(val, vlen, 0, NULL);

	job_record_from_json(o, rec);
	json_decref(o);
}

/* Store @v (consumed) under @key as compact JSON. */
static int put_json(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, json_t *v, char **cause) {
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
	MDB_val val;
	int rc;

	json_decref(v);
	if (text == NULL) {
		set_cause(cause, "could not encode a record as JSON");
		return EINVAL;
	}
	val.mv_data = text;
	val.mv_size = strlen(text);
	rc = mdb_put(txn, dbi, key, &val, 0);
	free(text);
	return rc;
}

static int put_job(struct store *st, MDB_txn *txn, const char *job_id,
                   const struct job_record *rec, char **cause) {
	MDB_val key = { strlen(job_id), (void *)job_id };

	return put_json(txn, st->jobs, &key, job_record_to_json(rec), cause);
}

/* --- transactions -------------------------------------------------------- */

static int store_grow(struct store *st, char **cause) {
	MDB_envinfo info;
	size_t next;
	int rc;

	mdb_env_info(st->env, &info);
	next = info.me_mapsize * 2;
	if (next < info.me_mapsize) {
		set_cause(cause, "the store in %s cannot grow beyond %zu bytes", st->dir,
		          info.me_mapsize);
		return -1;
	}
	if ((rc = mdb_env_set_mapsize(st->env, next)) != 0) {
		set_cause(cause, "could not grow the store in %s to %zu MiB: %s", st->dir,
		          next >> 20, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

static int txn_begin(struct store *st, unsigned flags, MDB_txn **txn) {
	int rc = mdb_txn_begin(st->env, NULL, flags, txn);

	/* Another process grew the map: adopt its size and try again. */
	if (rc == MDB_MAP_RESIZED && mdb_env_set_mapsize(st->env, 0) == 0)
		rc = mdb_txn_begin(st->env, NULL, flags, txn);
	return rc;
}

/* One attempt: begin, run @fn, commit. Returns 0 or the LMDB/errno code. */
static int store_write_once(struct store *st, store_write_fn fn, void *arg, char **err) {
	MDB_txn *txn;
	int rc;

	if ((rc = txn_begin(st, 0, &txn)) != 0)
		return rc;
	if ((rc = fn(st, txn, arg, err)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* Run @fn in one write transaction, growing the map when it is full. */
static int store_write(struct store *st, store_write_fn fn, void *arg, const char *what,
                       char **cause) {
	char *err = NULL;
	int rc;

	for (int tries = 0;; tries++) {
		rc = store_write_once(st, fn, arg, &err);
		if (rc == 0)
			return 0;
		if (rc != MDB_MAP_FULL)
			break;
		free(err);
		err = NULL;
		if (tries == STORE_MAX_GROWS) {
			set_cause(cause, "could not %s in state directory %s: %s even after growing "
			          "the map %d times: free disk space or lower history retention",
			          what, st->dir, mdb_strerror(rc), STORE_MAX_GROWS);
			return -1;
		}
		if (store_grow(st, cause) != 0)
			return -1;
	}
	if (err != NULL) {
		set_cause(cause, "could not %s in state directory %s: %s", what, st->dir, err);
		free(err);
	} else
		set_cause(cause, "could not %s in state directory %s: %s", what, st->dir,
		          mdb_strerror(rc));
	return -1;
}

/* --- open and close ----------------------------------------------------- */

/* mkdir -p with mode 0700 for every directory it creates. */
static int make_dirs(const char *dir, char **cause) {
	char *path = xstrdup(dir);
	struct stat sb;

	for (char *p = path + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			set_cause(cause, "cannot create state directory %s (at %s: %s): create it "
			          "yourself or choose another --state-dir", dir, path, strerror(errno));
			free(path);
			return -1;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		set_cause(cause, "state directory %s is not a directory: remove it or choose "
		          "another --state-dir", dir);
		return -1;
	}
	return 0;
}

static int lock_dir(struct store *st, char **cause) {
	char *path = xasprintf("%s/%s", st->dir, STORE_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		set_cause(cause, "cannot open %s: %s: make state directory %s writable for the "
		          "user mcpjobd runs as, or choose another --state-dir", path,
		          strerror(errno), st->dir);
		free(path);
		return -1;
	}
	free(path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			set_cause(cause, "state directory %s is in use by another mcpjobd: stop it "
			          "or choose another --state-dir", st->dir);
		else
			set_cause(cause, "cannot lock state directory %s: %s", st->dir, strerror(e));
		return -1;
	}
	st->lock_fd = fd;
	return 0;
}

static size_t map_size_wanted(void) {
	const char *s = getenv("MCPJOB_STORE_MAPSIZE");
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0')
		return STORE_MAP_SIZE;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 4096)
		return STORE_MAP_SIZE;
	return (size_t)v;
}

static int env_open(struct store *st, char **cause) {
	int rc;

	if ((rc = mdb_env_create(&st->env)) != 0) {
		set_cause(cause, "cannot create an LMDB environment for %s: %s", st->dir,
		          mdb_strerror(rc));
		return -1;
	}
	mdb_env_set_maxdbs(st->env, 8);
	mdb_env_set_mapsize(st->env, map_size_wanted());
	rc = mdb_env_open(st->env, st->dir, MDB_NORDAHEAD | MDB_NOTLS, 0600);
	if (rc == 0)
		return 0;
	if (rc == EACCES || rc == EPERM || rc == EROFS)
		set_cause(cause, "cannot open the store in state directory %s: %s: make it "
		          "writable for the user mcpjobd runs as, or choose another --state-dir",
		          st->dir, mdb_strerror(rc));
	else if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
		set_cause(cause, "state directory %s holds a data.mdb that this mcpjobd cannot "
		          "read (%s): move it away or choose another --state-dir", st->dir,
		          mdb_strerror(rc));
	else
		set_cause(cause, "cannot open the store in state directory %s: %s", st->dir,
		          mdb_strerror(rc));
	return -1;
}

static int parse_counter(const MDB_val *v, uint64_t *out) {
	char buf[32];
	char *end;

	if (v->mv_size == 0 || v->mv_size >= sizeof buf)
		return -1;
	memcpy(buf, v->mv_data, v->mv_size);
	buf[v->mv_size] = '\0';
	errno = 0;
	*out = strtoull(buf, &end, 10);
	return (errno != 0 || *end != '\0' || buf[0] == '-') ? -1 : 0;
}

static int put_counter(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t n) {
	char buf[32];
	MDB_val key = { strlen(name), (void *)name };
	MDB_val val = { 0, buf };

	val.mv_size = (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
	return mdb_put(txn, dbi, &key, &val, 0);
}

/* Open the databases; a new store gets our schema version, an old one reports its own. */
static int open_dbs(struct store *st, MDB_txn *txn, void *arg, char **cause) {
	MDB_val key = { sizeof META_SCHEMA - 1, META_SCHEMA }, val;
	uint64_t *schema = arg;
	int rc;

	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "jobs", MDB_CREATE, &st->jobs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "runs", MDB_CREATE, &st->runs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "active", MDB_CREATE, &st->active)) != 0 ||
	    (rc = mdb_dbi_open(txn, "defs", MDB_CREATE, &st->defs)) != 0)
		return rc;
	rc = mdb_get(txn, st->meta, &key, &val);
	if (rc == MDB_NOTFOUND) {
		*schema = STORE_SCHEMA_VERSION;
		return put_counter(txn, st->meta, META_SCHEMA, STORE_SCHEMA_VERSION);
	}
	if (rc == 0 && parse_counter(&val, schema) != 0) {
		set_cause(cause, "its schema version is unreadable (move the directory away or "
		          "choose another --state-dir)");
		return MDB_CORRUPTED;
	}
	return rc;
}

static int check_schema(struct store *st, uint64_t schema, char **cause) {
	if (schema > STORE_SCHEMA_VERSION) {
		set_cause(cause, "state directory %s was written by a newer mcpjobd (schema %llu, "
		          "this build knows %d): upgrade mcpjobd or use another --state-dir",
		          st->dir, (unsigned long long)schema, STORE_SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

int store_open(const char *dir, struct store **out, char **cause) {
	struct store *st = xcalloc(1, sizeof *st);
	uint64_t schema = 0;
	int dead;

	st->dir = xstrdup(dir);
	st->lock_fd = -1;
	if (make_dirs(dir, cause) != 0 || lock_dir(st, cause) != 0 || env_open(st, cause) != 0)
		goto fail;
	/* Reader slots left by a killed process would pin old pages forever. */
	mdb_reader_check(st->env, &dead);
	if (store_write(st, open_dbs, &schema, "open the databases", cause) != 0 ||
	    check_schema(st, schema, cause) != 0)
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

void store_close(struct store *st) {
	if (st == NULL)
		return;
	if (st->env)
		mdb_env_close(st->env);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->dir);
	free(st);
}

/* --- records ------------------------------------------------------------ */

void store_job_record_init(struct job_record *rec) {
	memset(rec, 0, sizeof *rec);
	rec->enabled_override = -1;
	rec->last_outcome = OUTCOME_NONE;
}

void store_job_record_clear(struct job_record *rec) {
	free(rec->last_message);
	store_job_record_init(rec);
}

void store_run_record_clear(struct run_record *run) {
	free(run->job_id);
	free(run->message);
	free(run->output);
	free(run->trigger_ref);
	json_decref(run->input);
	json_decref(run->structured);
	memset(run, 0, sizeof *run);
}

/* 0 and @rec filled, MDB_NOTFOUND (rec initialised), or another LMDB code. */
static int get_job(struct store *st, MDB_txn *txn, const char *job_id, struct job_record *rec) {
	MDB_val key = { strlen(job_id), (void *)job_id }, val;
	json_t *o;
	int rc = mdb_get(txn, st->jobs, &key, &val);

	if (rc != 0) {
		store_job_record_init(rec);
		return rc;
	}
	o = json_loadb(val.mv_data, val.mv_size, 0, NULL);
	job_record_from_json(o, rec);
	json_decref(o);
	return 0;
}

int store_load_job(struct store *st, const char *job_id, struct job_record *rec, char **cause) {
	MDB_txn *txn;
	int rc;

	store_job_record_init(rec);
	if (!job_id_ok(job_id, cause))
		return -1;
	if ((rc = txn_begin(st, MDB_RDONLY, &txn)) != 0) {
		set_cause(cause, "could not read job %s from state directory %s: %s", job_id,
		          st->dir, mdb_strerror(rc));
		return -1;
	}
	rc = get_job(st, txn, job_id, rec);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0) {
		set_cause(cause, "could not read job %s from state directory %s: %s", job_id,
		          st->dir, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

struct save_job_ctx {
	const char *job_id;
	const struct job_record *rec;
};

static int save_job_step(struct store *st, MDB_txn *txn, void *arg, char **cause) {
	struct save_job_ctx *c = arg;

	return put_job(st, txn, c->job_id, c->rec, cause);
}

int store_save_job(struct store *st, const char *job_id, const struct job_record *rec,
                   char **cause) {
	struct save_job_ctx c = { job_id, rec };

	if (!job_id_ok(job_id, cause))
		return -1;
	return store_write(st, save_job_step, &c, "save the state of a job", cause);
}

/* --- runs ---------------------------------------------------------------- */

struct run_ctx {
	const struct run_record *run;
	const struct job_record *rec;
	uint64_t run_id;      /* assigned (begin) */
	int max_runs;
	int64_t max_age_ms, now_ms;
};

static int next_run_id(struct store *st, MDB_txn *txn, uint64_t *id) {
	MDB_val key = { sizeof META_LAST_RUN_ID - 1, META_LAST_RUN_ID }, val;
	uint64_t last = 0;
	int rc = mdb_get(txn, st->meta, &key, &val);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (rc == 0 && parse_counter(&val, &last) != 0)
		return MDB_CORRUPTED;
	*id = last + 1;
	return put_counter(txn, st->meta, META_LAST_RUN_ID, *id);
}

/* Write @run (with @run_id and @outcome) and, while running, its "active" entry. */
static int put_run(struct store *st, MDB_txn *txn, const struct run_record *run,
                   uint64_t run_id, enum run_outcome outcome, char **cause) {
	uint8_t kb[STORE_RUN_KEY_MAX], ib[8];
	struct run_record r = *run;
	MDB_val key = { 0, kb }, ikey = { 8, ib };
	int rc;

	r.run_id = run_id;
	r.outcome = outcome;
	key.mv_size = run_key(kb, run->job_id, (uint64_t)run->started_ms, run_id);
	put_be64(ib, run_id);
	if ((rc = put_json(txn, st->runs, &key, run_record_to_value(&r), cause)) != 0)
		return rc;
	if (outcome == OUTCOME_RUNNING)
		return mdb_put(txn, st->active, &ikey, &key, 0);
	rc = mdb_del(txn, st->active, &ikey, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int begin_step(struct store *st, MDB_txn *txn, void *arg, char **cause) {
	struct run_ctx *c = arg;
	int rc;

	if ((rc = next_run_id(st, txn, &c->run_id)) != 0 ||
	    (rc = put_run(st, txn, c->run, c->run_id, OUTCOME_RUNNING, cause)) != 0)
		return rc;
	return put_job(st, txn, c->run->job_id, c->rec, cause);
}

int store_run_begin(struct store *st, struct run_record *run, const struct job_record *rec,
                    char **cause) {
	struct run_ctx c = { .run = run, .rec = rec };

	if (!job_id_ok(run->job_id, cause))
		return -1;
	if (store_write(st, begin_step, &c, "record the start of a run", cause) != 0)
		return -1;
	run->run_id = c.run_id;
	run->outcome = OUTCOME_RUNNING;
	run->finished_ms = 0;
	return 0;
}

static bool run_is_active(struct store *st, MDB_txn *txn, const MDB_val *key) {
	uint8_t ib[8];
	MDB_val ikey = { 8, ib }, val;

	memcpy(ib, (const uint8_t *)key->mv_data + key->mv_size - 8, 8);
	return mdb_get(txn, st->active, &ikey, &val) == 0;
}

static uint64_t key_run_id(const MDB_val *key) {
	return get_be64((const uint8_t *)key->mv_data + key->mv_size - 8);
}

static int64_t key_started(const MDB_val *key) {
	return (int64_t)get_be64((const uint8_t *)key->mv_data + key->mv_size - 16);
}

/*
 * Delete the record under the cursor, leaving a copy of its key in @key
 * (pointing at @kb). Callers re-seek from that copy instead of trusting the
 * cursor's position after mdb_cursor_del(), which keeps the walks correct
 * across page merges.
 */
static int del_current(MDB_cursor *cur, MDB_val *key, uint8_t *kb) {
	memcpy(kb, key->mv_data, key->mv_size);
	key->mv_data = kb;
	return mdb_cursor_del(cur, 0);
}

/* Position on the last record before @key (which need not exist). */
static int seek_before(MDB_cursor *cur, MDB_val *key, MDB_val *val) {
	int rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);

	if (rc == 0)
		return mdb_cursor_get(cur, key, val, MDB_PREV);
	if (rc == MDB_NOTFOUND)
		return mdb_cursor_get(cur, key, val, MDB_LAST);
	return rc;
}

/* Age: walk forward from the job's oldest run while runs are too old. */
static int prune_by_age(struct store *st, MDB_txn *txn, MDB_cursor *cur, const struct run_ctx *c) {
	const char *job = c->run->job_id;
	size_t len = strlen(job);
	uint8_t kb[STORE_RUN_KEY_MAX];
	MDB_val key = { run_key(kb, job, 0, 0), kb }, val;
	int64_t cutoff = c->now_ms - c->max_age_ms;
	int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

	while (rc == 0 && run_key_is_of(&key, job, len) && key_started(&key) < cutoff) {
		if (key_run_id(&key) == c->run->run_id || run_is_active(st, txn, &key))
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		else if ((rc = del_current(cur, &key, kb)) == 0)
			rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Count: walk backward from the job's newest run, keep @max_runs finished
 * runs and delete the older ones. Running runs are neither counted nor
 * deleted. O(max_runs + deleted).
 */
static int prune_by_count(struct store *st, MDB_txn *txn, MDB_cursor *cur, const struct run_ctx *c) {
	const char *job = c->run->job_id;
	size_t len = strlen(job);
	uint8_t kb[STORE_RUN_KEY_MAX];
	MDB_val key = { run_key(kb, job, UINT64_MAX, UINT64_MAX), kb }, val;
	int kept = 0;
	int rc = seek_before(cur, &key, &val);

	while (rc == 0 && run_key_is_of(&key, job, len)) {
		if (run_is_active(st, txn, &key)) {
			rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
		} else if (kept < c->max_runs || key_run_id(&key) == c->run->run_id) {
			kept++;
			rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
		} else if ((rc = del_current(cur, &key, kb)) == 0) {
			rc = seek_before(cur, &key, &val);
		}
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int prune(struct store *st, MDB_txn *txn, const struct run_ctx *c) {
	MDB_cursor *cur;
	int rc;

	if (c->max_runs <= 0 && c->max_age_ms <= 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, st->runs, &cur)) != 0)
		return rc;
	if (c->max_age_ms > 0)
		rc = prune_by_age(st, txn, cur, c);
	if (rc == 0 && c->max_runs > 0)
		rc = prune_by_count(st, txn, cur, c);
	mdb_cursor_close(cur);
	return rc;
}

static int finish_step(struct store *st, MDB_txn *txn, void *arg, char **cause) {
	struct run_ctx *c = arg;
	int rc;

	if ((rc = put_run(st, txn, c->run, c->run->run_id, c->run->outcome, cause)) != 0 ||
	    (rc = put_job(st, txn, c->run->job_id, c->rec, cause)) != 0)
		return rc;
	return prune(st, txn, c);
}

int store_run_finish(struct store *st, const struct run_record *run,
                     const struct job_record *rec, int max_runs, int64_t max_age_ms,
                     int64_t now_ms, char **cause) {
	struct run_ctx c = { .run = run, .rec = rec, .max_runs = max_runs,
	                     .max_age_ms = max_age_ms, .now_ms = now_ms };

	if (!job_id_ok(run->job_id, cause))
		return -1;
	if (run->run_id == 0) {
		set_cause(cause, "run of job %s has no run id: store_run_begin() was not called",
		          run->job_id);
		return -1;
	}
	/* A finished run is never written back as "running" (it would stay so). */
	if (run->outcome == OUTCOME_RUNNING || run->outcome == OUTCOME_NONE) {
		set_cause(cause, "run %llu of job %s cannot finish with outcome \"%s\"",
		          (unsigned long long)run->run_id, run->job_id,
		          job_outcome_name(run->outcome));
		return -1;
	}
	return store_write(st, finish_step, &c, "record the end of a run", cause);
}

/* --- reading history ------------------------------------------------------ */

static int history_walk(MDB_cursor *cur, const char *job_id,
                        int64_t before_ms, size_t limit, store_run_fn fn, void *arg) {
	size_t len = strlen(job_id), n = 0;
	uint8_t kb[STORE_RUN_KEY_MAX];
	uint64_t bound = before_ms > 0 ? (uint64_t)before_ms : UINT64_MAX;
	MDB_val key = { run_key(kb, job_id, bound, 0), kb }, val;
	int rc = seek_before(cur, &key, &val);

	while (rc == 0 && run_key_is_of(&key, job_id, len) && (limit == 0 || n < limit)) {
		struct run_record run;
		int stop;

		run_record_from_kv(&key, &val, &run);
		stop = fn(&run, arg);
		store_run_record_clear(&run);
		n++;
		if (stop)
			return 0;
		rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_history(struct store *st, const char *job_id, int64_t before_ms, size_t limit,
                  store_run_fn fn, void *arg, char **cause) {
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc;

	if (!job_id_ok(job_id, cause))
		return -1;
	if ((rc = txn_begin(st, MDB_RDONLY, &txn)) == 0) {
		if ((rc = mdb_cursor_open(txn, st->runs, &cur)) == 0) {
			rc = history_walk(cur, job_id, before_ms, limit, fn, arg);
			mdb_cursor_close(cur);
		}
		mdb_txn_abort(txn);
	}
	if (rc != 0) {
		set_cause(cause, "could not read the history of job %s from state directory %s: %s",
		          job_id, st->dir, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

/* --- recovery -------------------------------------------------------------- */

struct recover_ctx {
	int64_t now_ms;
	struct run_record *runs; /* rewritten, reported after the commit */
	size_t n, cap;
};

static void recover_reset(struct recover_ctx *c) {
	for (size_t i = 0; i < c->n; i++)
		store_run_record_clear(&c->runs[i]);
	c->n = 0;
}

/* Mark the job of @run as having ended in "interrupted". */
static int recover_job(struct store *st, MDB_txn *txn, const struct run_record *run,
                       char **cause) {
	struct job_record rec;
	int rc = get_job(st, txn, run->job_id, &rec);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	rec.last_outcome = OUTCOME_INTERRUPTED;
	free(rec.last_message);
	rec.last_message = xstrdup(run->message);
	rec.last_finished_ms = run->finished_ms;
	if (rec.last_run_ms < run->started_ms)
		rec.last_run_ms = run->started_ms;
	rc = put_job(st, txn, run->job_id, &rec, cause);
	store_job_record_clear(&rec);
	return rc;
}

/* Rewrite the run an "active" entry points at; the entry itself is left. */
static int recover_one(struct store *st, MDB_txn *txn, struct recover_ctx *c,
                       MDB_val *rkey, char **cause) {
	struct run_record *run;
	MDB_val val;
	int rc = mdb_get(txn, st->runs, rkey, &val);

	/* No record (should not happen): only the stale entry goes. */
	if (rc == MDB_NOTFOUND || rkey->mv_size < 18)
		return 0;
	if (rc != 0)
		return rc;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		c->runs = xreallocarray(c->runs, c->cap, sizeof *c->runs);
	}
	run = &c->runs[c->n++];
	run_record_from_kv(rkey, &val, run);
	run->outcome = OUTCOME_INTERRUPTED;
	run->finished_ms = c->now_ms;
	free(run->message);
	run->message = xstrdup(STORE_INTERRUPTED_MSG);
	if ((rc = put_json(txn, st->runs, rkey, run_record_to_value(run), cause)) != 0)
		return rc;
	return recover_job(st, txn, run, cause);
}

static int recover_step(struct store *st, MDB_txn *txn, void *arg, char **cause) {
	struct recover_ctx *c = arg;
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	recover_reset(c);
	if ((rc = mdb_cursor_open(txn, st->active, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0) {
		/* Copy the key out: the value points into a page the puts may move. */
		uint8_t kb[STORE_RUN_KEY_MAX];
		MDB_val rkey = { val.mv_size < sizeof kb ? val.mv_size : 0, kb };

		memcpy(kb, val.mv_data, rkey.mv_size);
		if ((rc = recover_one(st, txn, c, &rkey, cause)) != 0)
			break;
		/* Re-find the entry: the writes above may have moved it. */
		if ((rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) != 0 ||
		    (rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_recover_interrupted(struct store *st, int64_t now_ms, store_run_fn fn, void *arg,
                              char **cause) {
	struct recover_ctx c = { .now_ms = now_ms };
	int rc, count;

	rc = store_write(st, recover_step, &c, "mark interrupted runs", cause);
	count = rc == 0 ? (int)c.n : -1;
	for (size_t i = 0; rc == 0 && fn != NULL && i < c.n; i++)
		if (fn(&c.runs[i], arg) != 0)
			break;
	recover_reset(&c);
	free(c.runs);
	return count;
}

/* --- protocol ------------------------------------------------------------ */

/* A wall-clock step back during a run must not show a negative duration. */
static json_t *duration_or_null(const struct run_record *run, bool finished) {
	int64_t ms;

	/* Times from a damaged record may be anything: no overflow. */
	if (__builtin_sub_overflow(run->finished_ms, run->started_ms, &ms))
		ms = 0;
	return finished ? json_integer((json_int_t)(ms > 0 ? ms : 0)) : json_null();
}

json_t *store_run_to_json(const struct run_record *run) {
	bool finished = run->finished_ms != 0 && run->outcome != OUTCOME_RUNNING;
	json_t *structured = run->structured ? json_deep_copy(run->structured) : NULL;
	/* A chained run says which run started it: "after:backup:41". */
	char *trigger = run->trigger == TRIGGER_AFTER && run->trigger_ref
	                    ? xasprintf("after:%s", run->trigger_ref)
	                    : xstrdup(job_trigger_name(run->trigger));
	json_t *v = json_pack("{s:I, s:o, s:s, s:i, s:o, s:o, s:o, s:s, s:o, s:o, s:o}",
	                 "run_id", (json_int_t)run->run_id,
	                 "job", json_text(run->job_id),
	                 "trigger", trigger,
	                 "attempt", run->attempt,
	                 "started_at", time_to_json(run->started_ms),
	                 "finished_at", time_to_json(finished ? run->finished_ms : 0),
	                 "duration_ms", duration_or_null(run, finished),
	                 "outcome", job_outcome_name(run->outcome),
	                 "message", json_text(run->message),
	                 "output", json_text(run->output),
	                 "structured_content", structured ? structured : json_null());
	free(trigger);
	if (run->input)
		json_object_set_new(v, "input", json_deep_copy(run->input));
	return v;
}

/* --- jobs added over the socket ------------------------------------------ */

struct def_ctx {
	const char *job_id;
	const char *text; /* NULL: delete */
};

static int def_step(struct store *st, MDB_txn *txn, void *arg, char **cause) {
	struct def_ctx *c = arg;
	MDB_val key = { strlen(c->job_id), (void *)c->job_id };
	(void)cause;
	if (c->text == NULL) {
		int rc = mdb_del(txn, st->defs, &key, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	MDB_val val = { strlen(c->text), (void *)c->text };
	return mdb_put(txn, st->defs, &key, &val, 0);
}

int store_put_def(struct store *st, const char *job_id, const char *text, char **cause) {
	struct def_ctx c = { job_id, text };

	if (!job_id_ok(job_id, cause))
		return -1;
	return store_write(st, def_step, &c, text ? "save an added job" : "remove an added job",
	                   cause);
}

int store_each_def(struct store *st, store_def_fn fn, void *arg, char **cause) {
	MDB_txn *txn = NULL;
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	if ((rc = txn_begin(st, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, st->defs, &cur)) != 0) {
		if (rc != 0 && txn)
			mdb_txn_abort(txn);
		set_cause(cause, "could not read the added jobs from state directory %s: %s", st->dir,
		          mdb_strerror(rc));
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		char *id = xstrndup(key.mv_data, key.mv_size);
		char *text = xstrndup(val.mv_data, val.mv_size);
		int stop = fn(id, text, arg);
		free(id);
		free(text);
		if (stop)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return 0;
}
