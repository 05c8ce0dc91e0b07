/*
 * store.c - persistent job state and run history in LMDB.
 *
 * Layout, guarantees and which thread owns what are in store.h.
 *
 * Every write is an "op", built (and its values encoded) on the loop thread,
 * queued on st->sub under st->mu, and applied by the writer thread, which
 * takes everything queued (and whatever a failed commit kept) into one write
 * transaction: group commit. A commit that LMDB reports as MDB_MAP_FULL
 * grows the map (doubling, never past store.max_size) or, at the bound,
 * prunes the oldest finished runs of all jobs, and tries again. Done ops go
 * back on st->done; an eventfd wakes the loop, which calls their callbacks
 * and frees them (store_poll()). Until then the loop keeps every op on its
 * pending list, which store_history() and store_load_job() read, so what
 * was written is shown before it is committed.
 *
 * Run records (schema 2) are binary, read back without a parser:
 *   u8 'R', u8 2, u8 trigger, u8 outcome, be32 attempt, be64 finished_ms,
 *   be32 pid, be64 pid start time, then message, output and structured
 *   content (JSON text) each as be32 length (0xffffffff: none) + bytes;
 *   then, added later and absent from older records: trigger ref, input,
 *   and the MCP task (id, server, session) the same way.
 * Job records stay JSON (read once, at load).
 *
 * A state directory is used by one mcpjobd at a time (flock on store.lock):
 * a second daemon would mark the first one's running runs "interrupted".
 */
#include "daemon/store.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/jsontext.h"
#include "common/log.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/action/action.h"
#include "daemon/orphan.h"

#define STORE_MAP_SIZE    ((size_t)64 << 20)
#define STORE_MAX_GROWS   12
#define STORE_LOCK_FILE   "store.lock"
#define STORE_LOCK_WAIT_MS 3000
/* LMDB's default maximum key size is 511; a runs key adds '\0' + 16 bytes. */
#define STORE_MAX_JOB_ID  (511 - 17)
#define STORE_RUN_KEY_MAX (STORE_MAX_JOB_ID + 17)
/* Keys in "meta"; values are decimal text, readable with mdb_dump. */
#define META_SCHEMA       "schema"
#define META_LAST_RUN_ID  "last_run_id"
#define META_ID           "id"
#define META_JOURNAL_FOLDED "journal_folded" /* the last journal entry in the store */
#define REC_MAGIC         'R'
#define REC_VERSION       2
#define REC_HEADER        28
#define REC_NONE          0xffffffffu
#define PRUNE_FRACTION    10 /* at max_size: delete the oldest 1/10 of finished runs */
/* The journal (batched mode): one per boot, folded into the store at most
 * STORE_SYNC_INTERVAL_MS after its first entry, or sooner when this big. */
#define JOURNAL_PREFIX    "journal-"
#define JOURNAL_SUFFIX    ".mdb"
#define JOURNAL_MAP_SIZE  ((size_t)16 << 20)
#define FOLD_MAX_OPS      1024
#define FOLD_MAX_BYTES    ((size_t)4 << 20)
#define BOOT_ID_MAX       64
/* A run's process identity is written this late, so a short run's end
 * (which supersedes it) usually takes its place: one commit less. */
#define PROC_DEFER_MS     50

enum op_kind { OP_BEGIN, OP_PROC, OP_FINISH, OP_SAVE_JOB, OP_RECOVER, OP_DEF };

struct op {
	struct op *next;            /* sub/done/retry list (under st->mu) */
	struct op *pnext;           /* pending list (loop thread) */
	struct op *fnext;           /* journaled, to fold (writer); folded (under st->mu) */
	bool journaled;             /* in the journal, not yet in the store: stays pending */
	uint64_t jkey;              /* its journal entry's key, once journaled */
	enum op_kind kind;
	uint64_t seq;
	char *job_id;
	uint8_t key[STORE_RUN_KEY_MAX];
	size_t klen;
	uint64_t run_id;
	void *val;                  /* encoded run record, or NULL */
	size_t vlen;
	char *job_val;              /* encoded job record, or NULL */
	size_t jlen;
	int max_runs;
	int64_t max_age_ms, now_ms;
	struct run_record shown;    /* for store_history() (loop thread) */
	bool has_shown;
	store_start_fn start_of;    /* OP_PROC deferred: reads shown.proc.start when queued */
	store_done_fn done;
	void *arg;
	bool sync;                  /* a caller waits on st->cv */
	/* Results, written by the writer under st->mu. */
	bool completed;
	int rc;
	char *cause;
};

struct store {
	MDB_env *env;
	MDB_dbi meta, jobs, runs, active, counts, defs;
	char *dir;
	char id[33];
	int lock_fd;
	/* Loop thread. */
	uint64_t next_run_id;
	uint64_t seq;
	struct op *pend_head, *pend_tail;
	MDB_txn *load_txn;
	struct event *done_ev;
	struct op *proc_head, *proc_tail; /* deferred OP_PROC writes (next) */
	struct event *proc_ev;
	struct event *fold_ev;      /* times the fold of what the loop journaled itself */
	bool attached;
	store_notice_fn notice;
	void *notice_arg;
	/* Shared, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* writer: work; callers of sync ops: done */
	struct op *sub_head, *sub_tail;
	struct op *done_head, *done_tail;
	struct op *retry_head, *retry_tail;
	bool stop;
	bool hold;                  /* tests: the writer waits */
	enum store_durability durability;
	uint64_t max_size;
	char *last_error;
	struct store_stats stats;
	uint64_t pruned_unreported;
	int efd;
	/* Writer thread. */
	pthread_t thread;
	bool thread_running;
	pthread_rwlock_t maplock;
	bool meta_dirty;
	uint64_t w_prune_steps;
	uint64_t w_max_size;        /* the bound the map was last fitted to */
	int64_t last_commit_ms;
	int64_t retry_at_ms;
	int orphan_grace_ms;        /* recovery's SIGTERM -> SIGKILL grace */
	/* The journal (see store.h): NULL when this system has no boot id. */
	MDB_env *jenv;
	MDB_dbi jdbi;
	bool jwritemap;             /* mapped writable: a commit makes no system call */
	pthread_mutex_t jmu;        /* the journal's transactions (writer, or the loop inline) */
	char *jpath;
	uint64_t jseq;              /* writer: the key of its last entry */
	struct op *unf_head, *unf_tail; /* writer: journaled, not yet folded (fnext) */
	size_t unf_bytes;
	int64_t unf_since_ms;
	int64_t fold_retry_at_ms;
	bool keep_journal;          /* a fold failed at stop: the next start folds it */
	int64_t fold_ms;            /* STORE_SYNC_INTERVAL_MS ($MCPJOB_STORE_FOLD_MS in tests) */
	/* Under mu. */
	uint64_t unf_n;
	uint64_t fold_gen;          /* folds tried */
	bool fold_now;              /* store_flush() waits for one */
	bool fold_failing;          /* the last fold failed: write the store directly */
	bool writer_busy;           /* the writer holds a batch it has not settled */
	struct op *folded_head, *folded_tail; /* for the loop to free (fnext) */
};

void store_set_orphan_grace_ms(struct store *st, int ms) {
	st->orphan_grace_ms = ms > 0 ? ms : ACTION_KILL_GRACE_MS;
}

const char *store_durability_name(enum store_durability d) {
	return d == DURABILITY_STRICT ? "strict" : "batched";
}

int store_durability_from_name(const char *s) {
	if (s && strcmp(s, "strict") == 0)
		return DURABILITY_STRICT;
	if (s && strcmp(s, "batched") == 0)
		return DURABILITY_BATCHED;
	return -1;
}

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


/* The key is authoritative for job, start and id; the value for the rest. */
static void v1_run_from_kv(const MDB_val *key, const MDB_val *val, struct run_record *run) {
	const uint8_t *k = key->mv_data;
	size_t len = key->mv_size - 17;
	json_t *o = json_loadb(val->mv_data, val->mv_size, 0, NULL);
	json_t *s = json_object_get(o, "structured");

	memset(run, 0, sizeof *run);
	run->job_id = xstrndup((const char *)k, len);
	run->started_ms = (int64_t)get_be64(k + len + 1);
	run->run_id = get_be64(k + len + 9);
	run->trigger = jenum(o, "trigger", job_trigger_from_name, TRIGGER_SCHEDULE);
	run->attempt = (int)jint(o, "attempt", 1);
	run->finished_ms = jint(o, "finished_ms", 0);
	run->outcome = jenum(o, "outcome", job_outcome_from_name, OUTCOME_NONE);
	run->message = jstr(o, "message");
	run->output = jstr(o, "output");
	run->structured = (s && !json_is_null(s)) ? json_incref(s) : NULL;
	json_decref(o);
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
	/* A child forked by a daemon that was just killed holds the lock until
	 * it execs (close-on-exec): give it a moment before saying "in use". */
	for (int i = 0; i < STORE_LOCK_WAIT_MS / 10 && flock(fd, LOCK_EX | LOCK_NB) != 0 &&
	                errno == EWOULDBLOCK; i++)
		usleep(10000);
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
	rc = mdb_env_open(st->env, st->dir, MDB_NORDAHEAD | MDB_NOTLS | MDB_NOMETASYNC, 0600);
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


static int check_schema(struct store *st, uint64_t schema, char **cause) {
	if (schema > STORE_SCHEMA_VERSION) {
		set_cause(cause, "state directory %s was written by a newer mcpjobd (schema %llu, "
		          "this build knows %d): upgrade mcpjobd or use another --state-dir",
		          st->dir, (unsigned long long)schema, STORE_SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

/* --- binary run records ---------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v) {
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t put_str(uint8_t *p, const char *s, size_t len) {
	put_be32(p, s ? (uint32_t)len : REC_NONE);
	if (s)
		memcpy(p + 4, s, len);
	return 4 + (s ? len : 0);
}

/*
 * @s as valid UTF-8 (bad sequences as U+FFFD), or NULL: @s itself when it
 * is valid (no copy), else a copy in *@owned (caller frees).
 */
static const char *utf8_clean(const char *s, size_t *len, char **owned) {
	json_t *j;

	*owned = NULL;
	*len = s ? strlen(s) : 0;
	if (s == NULL || text_utf8_ok(s, *len))
		return s;
	j = json_text(s);
	*owned = xstrdup(json_is_string(j) ? json_string_value(j) : "");
	json_decref(j);
	*len = strlen(*owned);
	return *owned;
}

/* The value of @run as stored (schema 2); *@len set; caller frees. */
static void *run_encode(const struct run_record *run, size_t *len) {
	/* structured as kept (encoded once, by the action), else encoded here */
	char *dumped = NULL;
	const char *structured = NULL;
	/* As json_dumps(JSON_COMPACT) would: an object or array, else nothing. */
	if (json_is_object(run->structured) || json_is_array(run->structured))
		structured = run->structured_text ? run->structured_text
		                                   : (dumped = jsontext_dumps(run->structured, NULL));
	char *input = json_is_object(run->input) || json_is_array(run->input)
	                  ? jsontext_dumps(run->input, NULL) : NULL;
	enum { MSG, OUT, REF, TID, TSRV, TSES, NSTR };
	const char *src[NSTR] = { run->message, run->output, run->trigger_ref,
	                          run->task_id, run->task_server, run->task_session };
	const char *str[NSTR];
	char *owned[NSTR];
	size_t sl[NSTR], total = 0;
	for (int i = 0; i < NSTR; i++) {
		str[i] = utf8_clean(src[i], &sl[i], &owned[i]);
		total += sl[i];
	}
	size_t stl = structured ? strlen(structured) : 0, il = input ? strlen(input) : 0;
	uint8_t *b = xmalloc(REC_HEADER + 4 * 8 + total + stl + il);
	size_t o = REC_HEADER;

	b[0] = REC_MAGIC;
	b[1] = REC_VERSION;
	b[2] = (uint8_t)run->trigger;
	b[3] = (uint8_t)run->outcome;
	put_be32(b + 4, (uint32_t)run->attempt);
	put_be64(b + 8, (uint64_t)run->finished_ms);
	put_be32(b + 16, (uint32_t)run->proc.pid);
	put_be64(b + 20, run->proc.start);
	o += put_str(b + o, str[MSG], sl[MSG]);
	o += put_str(b + o, str[OUT], sl[OUT]);
	o += put_str(b + o, structured, stl);
	/* Since chains and run input: absent at the end of older records. */
	o += put_str(b + o, str[REF], sl[REF]);
	o += put_str(b + o, input, il);
	/* Since task resumption: written only for a task run (older records end here). */
	if (str[TID] || str[TSRV] || str[TSES]) {
		o += put_str(b + o, str[TID], sl[TID]);
		o += put_str(b + o, str[TSRV], sl[TSRV]);
		o += put_str(b + o, str[TSES], sl[TSES]);
	}
	for (int i = 0; i < NSTR; i++)
		free(owned[i]);
	free(input);
	free(dumped);
	*len = o;
	return b;
}

/* A length-prefixed string at *@o of @val, or NULL; false when it does not fit. */
static bool get_str(const MDB_val *val, size_t *o, char **out) {
	const uint8_t *p = val->mv_data;
	uint32_t n;

	*out = NULL;
	if (*o + 4 > val->mv_size)
		return false;
	n = get_be32(p + *o);
	*o += 4;
	if (n == REC_NONE)
		return true;
	if (n > val->mv_size - *o)
		return false;
	*out = xstrndup((const char *)p + *o, n);
	*o += n;
	return true;
}

/* Decode a record of either schema; a damaged one reads as such, never crashes. */
static void run_decode(const MDB_val *key, const MDB_val *val, struct run_record *run) {
	const uint8_t *k = key->mv_data, *p = val->mv_data;
	size_t o = REC_HEADER;
	char *structured = NULL;

	if (val->mv_size > 0 && p[0] == '{') {
		v1_run_from_kv(key, val, run);
		return;
	}
	memset(run, 0, sizeof *run);
	run->job_id = xstrndup((const char *)k, key->mv_size - 17);
	run->started_ms = (int64_t)get_be64(k + key->mv_size - 16);
	run->run_id = get_be64(k + key->mv_size - 8);
	if (val->mv_size < REC_HEADER || p[0] != REC_MAGIC || p[1] != REC_VERSION ||
	    p[2] > TRIGGER_AFTER || p[3] > OUTCOME_INTERRUPTED) {
		run->outcome = OUTCOME_NONE;
		run->message = xstrdup("this run's record is unreadable");
		return;
	}
	run->trigger = p[2];
	run->outcome = p[3];
	run->attempt = (int)get_be32(p + 4);
	run->finished_ms = (int64_t)get_be64(p + 8);
	run->proc.pid = (int32_t)get_be32(p + 16);
	run->proc.start = get_be64(p + 20);
	char *input = NULL;
	if (!get_str(val, &o, &run->message) || !get_str(val, &o, &run->output) ||
	    !get_str(val, &o, &structured) ||
	    (o < val->mv_size && (!get_str(val, &o, &run->trigger_ref) ||
	                          !get_str(val, &o, &input))) ||
	    (o < val->mv_size && (!get_str(val, &o, &run->task_id) ||
	                          !get_str(val, &o, &run->task_server) ||
	                          !get_str(val, &o, &run->task_session)))) {
		free(run->message);
		run->message = xstrdup("this run's record is damaged");
	}
	if (structured) { /* the text is kept: a reply writes it as it is */
		run->structured = json_loads(structured, 0, NULL);
		if (run->structured)
			run->structured_text = structured;
		else
			free(structured);
	}
	if (input) {
		run->input = json_loads(input, 0, NULL);
		free(input);
	}
}

static void run_copy(struct run_record *dst, const struct run_record *src) {
	*dst = *src;
	dst->job_id = xstrdup(src->job_id);
	dst->message = xstrdup_or_null(src->message);
	dst->output = xstrdup_or_null(src->output);
	dst->structured = src->structured ? json_incref(src->structured) : NULL;
	dst->structured_text = xstrdup_or_null(src->structured_text);
	dst->trigger_ref = xstrdup_or_null(src->trigger_ref);
	dst->input = src->input ? json_incref(src->input) : NULL;
	dst->task_id = xstrdup_or_null(src->task_id);
	dst->task_server = xstrdup_or_null(src->task_server);
	dst->task_session = xstrdup_or_null(src->task_session);
}

void store_run_record_copy(struct run_record *dst, const struct run_record *src) {
	run_copy(dst, src);
	/* Not shared with @src: the copy may go to another owner. */
	json_decref(dst->input);
	json_decref(dst->structured);
	dst->input = src->input ? json_deep_copy(src->input) : NULL;
	dst->structured = src->structured ? json_deep_copy(src->structured) : NULL;
}

/* A job's record as JSON text, written without a tree (twice per run). */
static char *job_encode(const struct job_record *rec, size_t *len) {
	struct jsontext t;

	jsontext_init(&t);
	jsontext_obj_open(&t);
	JSONTEXT_KEY(&t, "enabled_override");
	jsontext_int(&t, rec->enabled_override);
	JSONTEXT_KEY(&t, "last_run_ms");
	jsontext_int(&t, rec->last_run_ms);
	JSONTEXT_KEY(&t, "last_finished_ms");
	jsontext_int(&t, rec->last_finished_ms);
	JSONTEXT_KEY(&t, "last_success_ms");
	jsontext_int(&t, rec->last_success_ms);
	JSONTEXT_KEY(&t, "last_outcome");
	jsontext_str(&t, job_outcome_name(rec->last_outcome));
	JSONTEXT_KEY(&t, "last_message");
	jsontext_str(&t, rec->last_message);
	JSONTEXT_KEY(&t, "next_due_ms");
	jsontext_int(&t, rec->next_due_ms);
	JSONTEXT_KEY(&t, "attempt");
	jsontext_int(&t, rec->attempt);
	jsontext_obj_close(&t);
	return jsontext_take(&t, len);
}

static void job_decode(const void *data, size_t len, struct job_record *rec) {
	json_t *o = json_loadb(data, len, 0, NULL);

	job_record_from_json(o, rec);
	json_decref(o);
}

/* --- ops (built on the loop thread) ---------------------------------------- */

static struct op *op_new(enum op_kind kind, const char *job_id, const struct run_record *run,
                         const struct job_record *rec) {
	struct op *op = xcalloc(1, sizeof *op);

	op->kind = kind;
	op->job_id = xstrdup(job_id);
	if (run != NULL) {
		op->run_id = run->run_id;
		op->klen = run_key(op->key, job_id, (uint64_t)run->started_ms, run->run_id);
		if (kind != OP_PROC) /* an identity is encoded when submitted (proc_op_ready()) */
			op->val = run_encode(run, &op->vlen);
		run_copy(&op->shown, run);
		op->has_shown = true;
	}
	if (rec != NULL)
		op->job_val = job_encode(rec, &op->jlen);
	return op;
}

static void op_free(struct op *op) {
	if (op == NULL)
		return;
	free(op->job_id);
	free(op->val);
	free(op->job_val);
	if (op->has_shown)
		store_run_record_clear(&op->shown);
	free(op->cause);
	free(op);
}

static void list_append(struct op **head, struct op **tail, struct op *op) {
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static int journal_append(struct store *st, struct op *batch, size_t *bytes);
static void settle_as(struct store *st, struct op *batch, int rc, const char *cause, bool last,
                      bool journaled, size_t bytes, bool inline_);

/*
 * With the journal mapped writable a commit is a few stores into memory, no
 * system call and no device wait: when the writer holds nothing older (so
 * the order stays that of submit()), the loop journals @op itself and skips
 * two thread wake-ups. Under st->mu; true when done (its callback follows
 * from store_poll(), as for the writer's commits).
 */
static bool journal_inline(struct store *st, struct op *op, bool *arm_fold) {
	size_t bytes;
	int rc;

	if (!st->attached || st->done_ev == NULL || st->jenv == NULL || !st->jwritemap || op->sync ||
	    st->hold ||
	    st->stop || st->durability != DURABILITY_BATCHED || st->fold_failing ||
	    st->writer_busy || st->sub_head != NULL || st->retry_head != NULL ||
	    st->unf_n >= FOLD_MAX_OPS || st->unf_bytes >= FOLD_MAX_BYTES)
		return false;
	op->next = NULL; /* this one alone */
	pthread_mutex_lock(&st->jmu);
	rc = journal_append(st, op, &bytes);
	pthread_mutex_unlock(&st->jmu);
	if (rc != 0)
		return false; /* the writer takes it, and its error */
	bool first = st->unf_head == NULL;
	st->stats.pending++;
	settle_as(st, op, 0, NULL, false, true, bytes, true);
	/* The writer sleeps without a deadline when it had nothing: the loop
	 * times the fold (on_fold_due()) rather than wake it now, on a run's
	 * start path - a wake-up there put a second runnable thread on the
	 * loop's CPU just as the run's child was forked. */
	*arm_fold = first;
	return true;
}

/* The fold of the loop's journal entries is due: the writer does it. */
static void on_fold_due(evutil_socket_t fd, short what, void *arg) {
	struct store *st = arg;

	(void)fd;
	(void)what;
	pthread_cond_broadcast(&st->cv);
}

/*
 * An identity (OP_PROC) is encoded only as it is submitted: a deferred one's
 * start time is read then (a run that ended first never pays the /proc read).
 */
static void proc_op_ready(struct op *op) {
	uint64_t start;

	if (op->start_of && op->shown.proc.pid > 0 && op->shown.proc.start == 0 &&
	    op->start_of(op->shown.proc.pid, &start) == 0)
		op->shown.proc.start = start;
	op->val = run_encode(&op->shown, &op->vlen);
}

/* Queue @op; unless it is sync, it stays on the pending list until polled. */
static void submit(struct store *st, struct op *op) {
	if (op->kind == OP_PROC)
		proc_op_ready(op);
	op->seq = ++st->seq;
	if (!op->sync) {
		op->pnext = NULL;
		if (st->pend_tail)
			st->pend_tail->pnext = op;
		else
			st->pend_head = op;
		st->pend_tail = op;
	}
	bool arm_fold = false;
	pthread_mutex_lock(&st->mu);
	if (journal_inline(st, op, &arm_fold)) {
		pthread_mutex_unlock(&st->mu);
		if (arm_fold) {
			struct timeval tv = {st->fold_ms / 1000, (st->fold_ms % 1000) * 1000};
			evtimer_add(st->fold_ev, &tv);
		}
		return;
	}
	list_append(&st->sub_head, &st->sub_tail, op);
	st->stats.pending++;
	pthread_mutex_unlock(&st->mu);
	/* After the unlock: the writer wakes to a free mutex. */
	pthread_cond_broadcast(&st->cv);
}

/* Queue @op and wait for its commit; returns 0 or -1 with *@cause. */
static int submit_wait(struct store *st, struct op *op, char **cause) {
	int rc;

	op->sync = true;
	submit(st, op);
	pthread_mutex_lock(&st->mu);
	while (!op->completed)
		pthread_cond_wait(&st->cv, &st->mu);
	pthread_mutex_unlock(&st->mu);
	rc = op->rc;
	if (rc != 0 && cause != NULL) {
		*cause = op->cause;
		op->cause = NULL;
	}
	op_free(op);
	return rc == 0 ? 0 : -1;
}

static void pending_remove(struct store *st, struct op *op) {
	struct op **pp = &st->pend_head, *prev = NULL;

	while (*pp && *pp != op) {
		prev = *pp;
		pp = &(*pp)->pnext;
	}
	if (*pp == NULL)
		return;
	*pp = op->pnext;
	if (st->pend_tail == op)
		st->pend_tail = prev;
}

/* --- the writer thread ------------------------------------------------------ */

static int64_t mono_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Position on the last record before @key (which need not exist). */
static int seek_before(MDB_cursor *cur, MDB_val *key, MDB_val *val) {
	int rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);

	if (rc == 0)
		return mdb_cursor_get(cur, key, val, MDB_PREV);
	if (rc == MDB_NOTFOUND)
		return mdb_cursor_get(cur, key, val, MDB_LAST);
	return rc;
}

/* Finished runs kept for @job; counted once (walking its range) when unknown. */
static int get_count(struct store *st, MDB_txn *txn, const char *job, uint64_t *n) {
	MDB_val key = { strlen(job), (void *)job }, val;
	int rc = mdb_get(txn, st->counts, &key, &val);
	uint8_t kb[STORE_RUN_KEY_MAX];
	MDB_cursor *cur;

	if (rc == 0 && val.mv_size == 8) {
		*n = get_be64(val.mv_data);
		return 0;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	*n = 0;
	if ((rc = mdb_cursor_open(txn, st->runs, &cur)) != 0)
		return rc;
	key.mv_size = run_key(kb, job, 0, 0);
	key.mv_data = kb;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && run_key_is_of(&key, job, strlen(job));
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		if (!run_is_active(st, txn, &key))
			(*n)++;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_count(struct store *st, MDB_txn *txn, const char *job, uint64_t n) {
	uint8_t b[8];
	MDB_val key = { strlen(job), (void *)job }, val = { 8, b };

	put_be64(b, n);
	return mdb_put(txn, st->counts, &key, &val, 0);
}

/* Delete the record under the cursor; @key keeps its bytes in @kb, so the
 * caller can re-seek from it (MDB_SET_RANGE) rather than trust the cursor
 * after a page merge. */
static int cursor_del_keeping_key(MDB_cursor *cur, MDB_val *key, uint8_t *kb) {
	memcpy(kb, key->mv_data, key->mv_size);
	key->mv_data = kb;
	return mdb_cursor_del(cur, 0);
}

/*
 * Retention from the oldest end of the job's range: delete while the oldest
 * finished run is too old or more than max_runs are kept. Running runs (at
 * most one per job) and the run just finished are stepped over. Cost: the
 * runs deleted plus those stepped over, whatever the job keeps.
 */
static int retain(struct store *st, MDB_txn *txn, const struct op *op, uint64_t *count) {
	const char *job = op->job_id;
	size_t len = strlen(job);
	uint8_t kb[STORE_RUN_KEY_MAX];
	MDB_val key = { run_key(kb, job, 0, 0), kb }, val;
	int64_t cutoff = op->max_age_ms > 0 ? op->now_ms - op->max_age_ms : INT64_MIN;
	MDB_cursor *cur;
	int rc;

	if (op->max_runs <= 0 && op->max_age_ms <= 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, st->runs, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && run_key_is_of(&key, job, len)) {
		bool too_old = key_started(&key) < cutoff;
		bool too_many = op->max_runs > 0 && *count > (uint64_t)op->max_runs;

		st->w_prune_steps++;
		if (!too_old && !too_many)
			break;
		if (key_run_id(&key) == op->run_id || run_is_active(st, txn, &key)) {
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
			continue;
		}
		if ((rc = cursor_del_keeping_key(cur, &key, kb)) != 0)
			break;
		if (*count > 0)
			(*count)--;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_job_val(struct store *st, MDB_txn *txn, const struct op *op) {
	MDB_val key = { strlen(op->job_id), op->job_id }, val = { op->jlen, op->job_val };

	return op->job_val ? mdb_put(txn, st->jobs, &key, &val, 0) : 0;
}

static int bump_last_id(struct store *st, MDB_txn *txn, uint64_t id) {
	MDB_val key = { sizeof META_LAST_RUN_ID - 1, META_LAST_RUN_ID }, val;
	uint64_t last = 0;
	int rc = mdb_get(txn, st->meta, &key, &val);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (rc == 0 && parse_counter(&val, &last) != 0)
		return MDB_CORRUPTED;
	return id > last ? put_counter(txn, st->meta, META_LAST_RUN_ID, id) : 0;
}

static int apply_op(struct store *st, MDB_txn *txn, struct op *op) {
	uint8_t ib[8];
	MDB_val key = { op->klen, op->key }, val = { op->vlen, op->val }, ikey = { 8, ib }, old;
	uint64_t count;
	bool was_finished;
	int rc;

	put_be64(ib, op->run_id);
	switch (op->kind) {
	case OP_BEGIN:
		if ((rc = bump_last_id(st, txn, op->run_id)) != 0 ||
		    (rc = mdb_put(txn, st->runs, &key, &val, 0)) != 0 ||
		    (rc = mdb_put(txn, st->active, &ikey, &key, 0)) != 0)
			return rc;
		return put_job_val(st, txn, op);
	case OP_PROC:
		/* Only while the run is still running (its finish may be committed). */
		if ((rc = mdb_get(txn, st->active, &ikey, &old)) != 0)
			return rc == MDB_NOTFOUND ? 0 : rc;
		return mdb_put(txn, st->runs, &key, &val, 0);
	case OP_FINISH:
	case OP_RECOVER:
		rc = mdb_get(txn, st->runs, &key, &old);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
		was_finished = rc == 0 && !run_is_active(st, txn, &key);
		/* Counted (if unknown) before this run leaves "active". */
		if ((rc = get_count(st, txn, op->job_id, &count)) != 0)
			return rc;
		rc = mdb_del(txn, st->active, &ikey, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
		if ((rc = mdb_put(txn, st->runs, &key, &val, 0)) != 0 ||
		    (rc = put_job_val(st, txn, op)) != 0)
			return rc;
		if (!was_finished)
			count++;
		if ((rc = retain(st, txn, op, &count)) != 0)
			return rc;
		return put_count(st, txn, op->job_id, count);
	case OP_SAVE_JOB:
		return put_job_val(st, txn, op);
	case OP_DEF: { /* a job added over the socket: its JSON, or NULL to remove it */
		MDB_val dk = { strlen(op->job_id), op->job_id }, dv = { op->vlen, op->val };
		rc = op->val ? mdb_put(txn, st->defs, &dk, &dv, 0) : mdb_del(txn, st->defs, &dk, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	}
	return EINVAL;
}

static int cmp_i64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * At store.max_size: delete the oldest 1/PRUNE_FRACTION of all finished
 * runs (at least one), oldest first, whatever their job. Rare, so a full
 * scan; the per-job counts are dropped and recounted lazily.
 */
static int prune_for_size(struct store *st, MDB_txn *txn, uint64_t *deleted) {
	MDB_cursor *cur;
	MDB_val key, val;
	int64_t *starts = NULL, cutoff;
	size_t n = 0, cap = 0, want;
	uint8_t kb[STORE_RUN_KEY_MAX];
	int rc;

	*deleted = 0;
	if ((rc = mdb_cursor_open(txn, st->runs, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 18 || run_is_active(st, txn, &key))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			starts = xreallocarray(starts, cap, sizeof *starts);
		}
		starts[n++] = key_started(&key);
	}
	if (rc != MDB_NOTFOUND || n == 0) {
		mdb_cursor_close(cur);
		free(starts);
		return rc == MDB_NOTFOUND ? MDB_MAP_FULL : rc;
	}
	qsort(starts, n, sizeof *starts, cmp_i64);
	want = n / PRUNE_FRACTION + 1;
	cutoff = starts[want - 1];
	free(starts);
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0 && *deleted < want) {
		if (key.mv_size < 18 || key_started(&key) > cutoff || run_is_active(st, txn, &key)) {
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
			continue;
		}
		if ((rc = cursor_del_keeping_key(cur, &key, kb)) != 0)
			break;
		(*deleted)++;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	return mdb_drop(txn, st->counts, 0);
}

static void set_map_size(struct store *st, size_t size) {
	pthread_rwlock_wrlock(&st->maplock);
	mdb_env_set_mapsize(st->env, size);
	pthread_rwlock_unlock(&st->maplock);
}

/* MDB_MAP_FULL: grow toward max_size; at it, prune. 0 to try again, or an error. */
static int make_room(struct store *st, uint64_t max_size, char **cause) {
	MDB_envinfo info;
	MDB_txn *txn;
	uint64_t deleted = 0;
	size_t next;
	int rc;

	mdb_env_info(st->env, &info);
	if (max_size == 0 || info.me_mapsize < max_size) {
		next = info.me_mapsize * 2;
		if (max_size > 0 && next > max_size)
			next = max_size;
		if (next <= info.me_mapsize)
			return MDB_MAP_FULL;
		set_map_size(st, next);
		return 0;
	}
	/* Deleting needs pages too: a reserve of 1/8 over the bound, used only now. */
	if (info.me_mapsize < max_size + max_size / 8)
		set_map_size(st, max_size + max_size / 8);
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = prune_for_size(st, txn, &deleted)) != 0) {
		mdb_txn_abort(txn);
		if (rc == MDB_MAP_FULL)
			set_cause(cause, "the store in %s is at store.max_size (%llu bytes) and holds "
			          "no finished run to prune: raise store.max_size", st->dir,
			          (unsigned long long)max_size);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return rc;
	pthread_mutex_lock(&st->mu);
	st->stats.pruned_for_size += deleted;
	st->pruned_unreported += deleted;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

/*
 * A new store.max_size: a map larger than it shrinks to it (LMDB keeps at
 * least what is used, so a store already bigger stays as big and is pruned
 * at its next full map).
 */
static void apply_max_size(struct store *st, uint64_t max_size) {
	MDB_envinfo info;
	MDB_stat stat;

	if (max_size == 0)
		return;
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &stat);
	uint64_t used = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
	uint64_t want = max_size > used ? max_size : used;
	if (info.me_mapsize > want)
		set_map_size(st, (size_t)want);
}

/*
 * One commit for the whole batch (linked by next, or by fnext when @fold);
 * with @folded, the journal's entries up to it are marked as in the store
 * in the same transaction. 0 or the LMDB/errno code (and *cause).
 */
static int apply_batch(struct store *st, struct op *batch, const struct op *last, bool fold,
                       uint64_t folded, uint64_t max_size, char **cause) {
	int rc = 0;

	for (int tries = 0; tries <= STORE_MAX_GROWS; tries++) {
		MDB_txn *txn;

		if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
			break;
		for (struct op *op = batch; op && rc == 0; op = op == last ? NULL : fold ? op->fnext : op->next)
			rc = apply_op(st, txn, op);
		if (rc == 0 && folded > 0)
			rc = put_counter(txn, st->meta, META_JOURNAL_FOLDED, folded);
		if (rc != 0)
			mdb_txn_abort(txn);
		else
			rc = mdb_txn_commit(txn);
		if (rc != MDB_MAP_FULL)
			break;
		if ((rc = make_room(st, max_size, cause)) != 0)
			break;
		rc = MDB_MAP_FULL;
	}
	if (rc != 0 && cause != NULL && *cause == NULL) {
		const char *hint = rc == ENOSPC || rc == EDQUOT
		                       ? ": free space on its file system (mcpjobd retries by itself)"
		                   : rc == MDB_MAP_FULL ? ": raise store.max_size"
		                   : rc == MDB_PANIC ? ": restart mcpjobd (the store is intact on disk)"
		                                     : "";
		set_cause(cause, "cannot write to the store in state directory %s: %s%s", st->dir,
		          mdb_strerror(rc), hint);
	}
	return rc;
}

/* Worth keeping a write for: the condition may go away by itself. */
static bool retryable(int rc) {
	return rc == ENOSPC || rc == EDQUOT || rc == EFBIG || rc == EIO || rc == ENOMEM ||
	       rc == EAGAIN || rc == MDB_MAP_FULL || rc == MDB_TXN_FULL || rc == MDB_READERS_FULL;
}

static void complete(struct store *st, struct op *op, int rc, const char *cause) {
	op->rc = rc;
	free(op->cause);
	op->cause = rc != 0 ? xstrdup(cause ? cause : mdb_strerror(rc)) : NULL;
	op->completed = true;
	st->stats.pending--;
	if (!op->sync)
		list_append(&st->done_head, &st->done_tail, op);
}

static void wake_loop(struct store *st) {
	uint64_t one = 1;
	ssize_t n = write(st->efd, &one, sizeof one);

	(void)n; /* a full counter still wakes the loop */
}

/* Handle the result of a batch (under mu); @journaled: it went to the journal.
 * The loop is then woken, and whoever waits on st->cv, unless @inline (the
 * loop itself committed it). */
static void settle_as(struct store *st, struct op *batch, int rc, const char *cause, bool last,
                      bool journaled, size_t bytes, bool inline_) {
	int64_t now = mono_ms();
	struct op *next;

	if (rc == 0) {
		st->stats.commits++;
		st->stats.prune_steps = st->w_prune_steps;
		free(st->last_error);
		st->last_error = NULL;
		if (!journaled) {
			st->meta_dirty = st->durability != DURABILITY_STRICT;
			st->last_commit_ms = now;
		} else {
			if (st->unf_head == NULL)
				st->unf_since_ms = now;
			st->unf_bytes += bytes;
			for (struct op *op = batch; op; op = op->next) {
				op->journaled = true;
				op->fnext = NULL;
				if (st->unf_tail)
					st->unf_tail->fnext = op;
				else
					st->unf_head = op;
				st->unf_tail = op;
				st->unf_n++;
			}
		}
	} else {
		free(st->last_error);
		st->last_error = xstrdup(cause ? cause : mdb_strerror(rc));
		st->retry_at_ms = now + STORE_RETRY_MS;
	}
	for (struct op *op = batch; op; op = next) {
		next = op->next;
		if (rc == 0) {
			st->stats.ops++;
			complete(st, op, 0, NULL);
		} else if (op->sync || op->kind == OP_BEGIN || !retryable(rc) || last) {
			if (!op->sync && op->kind != OP_BEGIN)
				log_error("a write to the store was lost: %s", st->last_error);
			complete(st, op, rc, st->last_error);
		} else {
			list_append(&st->retry_head, &st->retry_tail, op);
		}
	}
	if (inline_) { /* EV_TIMEOUT: the eventfd was not written, on_done() leaves it */
		event_active(st->done_ev, EV_TIMEOUT, 1);
		return;
	}
	wake_loop(st);
	pthread_cond_broadcast(&st->cv);
}

static void settle(struct store *st, struct op *batch, int rc, const char *cause, bool last,
                   bool journaled, size_t bytes) {
	settle_as(st, batch, rc, cause, last, journaled, bytes, false);
}

static int get_meta(MDB_txn *txn, MDB_dbi dbi, const char *name, MDB_val *val);

/* --- the journal (batched mode) --------------------------------------------
 *
 * A second LMDB environment, STATE/journal-BOOTID.mdb, opened with
 * MDB_NOSYNC | MDB_WRITEMAP: a batch is one commit there, written into a
 * shared mapping of the file but never synced, so it survives a kill -9 of
 * the daemon (the page cache has it) at the cost of no system call at all.
 * The file is allocated whole (posix_fallocate) before it is mapped, so a
 * full disk cannot turn a write into the map into SIGBUS; where it cannot be
 * allocated, the journal is written with pwrite instead (no MDB_WRITEMAP).
 * After each fold the map's pages are given back (MADV_DONTNEED: they stay
 * in the page cache), so an idle daemon does not keep them resident. At most STORE_SYNC_INTERVAL_MS later (or at
 * FOLD_MAX_OPS / FOLD_MAX_BYTES, a flush or a stop) the writer "folds" what
 * it journaled into the store in one synced commit, which also records the
 * last entry folded (META_JOURNAL_FOLDED), then empties the journal. The
 * store itself only ever sees synced commits, so power loss cannot corrupt
 * it; the journal is only trusted within the boot that wrote it (the page
 * cache it lives in is gone after a power loss or a system crash, and an
 * unsynced LMDB file may then be torn), so one left by an earlier boot is
 * deleted unread: what it held, at most the last interval's records, is
 * lost. Entries: be64 key -> an op (op_pack()).
 */

static bool read_boot_id(char *out, size_t len) {
	const char *env = getenv("MCPJOB_STORE_BOOT_ID"); /* tests: another boot */
	char buf[BOOT_ID_MAX + 2] = "";
	size_t n = 0;

	if (env != NULL && *env != '\0') {
		snprintf(buf, sizeof buf, "%s", env);
	} else {
		FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
		if (f == NULL)
			return false;
		if (fgets(buf, sizeof buf, f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	for (const char *p = buf; *p; p++, n++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-'))
			return false;
	if (n == 0 || n >= len)
		return false;
	memcpy(out, buf, n + 1);
	return true;
}

static size_t put_blob(uint8_t *p, const void *b, size_t len, bool none) {
	put_be32(p, none ? REC_NONE : (uint32_t)len);
	if (!none && len > 0)
		memcpy(p + 4, b, len);
	return 4 + (none ? 0 : len);
}

/* u8 kind, be32 max_runs, be64 max_age_ms, now_ms, run_id, then job id, key,
 * run record and job record, each be32 length (REC_NONE: none) + bytes. */
static void *op_pack(const struct op *op, size_t *len) {
	size_t jl = strlen(op->job_id);
	size_t n = 1 + 4 + 24 + 16 + jl + op->klen + op->vlen + op->jlen;
	uint8_t *b = xmalloc(n), *p = b;

	*p++ = (uint8_t)op->kind;
	put_be32(p, (uint32_t)op->max_runs);
	put_be64(p + 4, (uint64_t)op->max_age_ms);
	put_be64(p + 12, (uint64_t)op->now_ms);
	put_be64(p + 20, op->run_id);
	p += 28;
	p += put_blob(p, op->job_id, jl, false);
	p += put_blob(p, op->key, op->klen, false);
	p += put_blob(p, op->val, op->vlen, op->val == NULL);
	p += put_blob(p, op->job_val, op->jlen, op->job_val == NULL);
	*len = (size_t)(p - b);
	return b;
}

static bool get_blob(const uint8_t *b, size_t len, size_t *o, void **out, size_t *olen,
                     size_t max, bool nul) {
	if (len - *o < 4)
		return false;
	uint32_t n = get_be32(b + *o);
	*o += 4;
	*out = NULL;
	*olen = 0;
	if (n == REC_NONE)
		return true;
	if (n > len - *o || n > max)
		return false;
	char *p = xmalloc((size_t)n + (nul ? 1 : 0) + (n == 0));
	memcpy(p, b + *o, n);
	if (nul)
		p[n] = '\0';
	*o += n;
	*out = p;
	*olen = n;
	return true;
}

/* An op back from its journal entry, or NULL when the entry is damaged. */
static struct op *op_unpack(const void *data, size_t len) {
	const uint8_t *b = data;
	struct op *op;
	void *job = NULL, *key = NULL;
	size_t jl, kl, o = 29;

	if (len < o || b[0] > OP_DEF)
		return NULL;
	op = xcalloc(1, sizeof *op);
	op->kind = (enum op_kind)b[0];
	op->max_runs = (int)get_be32(b + 1);
	op->max_age_ms = (int64_t)get_be64(b + 5);
	op->now_ms = (int64_t)get_be64(b + 13);
	op->run_id = get_be64(b + 21);
	if (!get_blob(b, len, &o, &job, &jl, STORE_MAX_JOB_ID, true) || job == NULL ||
	    !get_blob(b, len, &o, &key, &kl, STORE_RUN_KEY_MAX, false) ||
	    !get_blob(b, len, &o, &op->val, &op->vlen, SIZE_MAX, false) ||
	    !get_blob(b, len, &o, (void **)&op->job_val, &op->jlen, SIZE_MAX, false) ||
	    o != len || strlen(job) != jl) {
		free(job);
		free(key);
		op->job_id = NULL;
		op_free(op);
		return NULL;
	}
	op->job_id = job;
	if (key != NULL)
		memcpy(op->key, key, kl);
	op->klen = kl;
	free(key);
	return op;
}

/* The whole journal file allocated (no holes left): 0, or an errno. */
static int journal_allocate(const char *path) {
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return errno;
	rc = posix_fallocate(fd, 0, (off_t)JOURNAL_MAP_SIZE);
	close(fd);
	return rc;
}

static int journal_env_flags(struct store *st, unsigned writemap, MDB_env **out) {
	MDB_env *env;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0)
		return rc;
	mdb_env_set_mapsize(env, JOURNAL_MAP_SIZE);
	/* Only the writer thread (or open, before it starts) uses it: no lock. */
	rc = mdb_env_open(env, st->jpath, MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOLOCK |
	                  MDB_NOTLS | MDB_NORDAHEAD | writemap, 0600);
	/* Mapped writable: allocated whole before anything is written into it. */
	if (rc == 0 && writemap && (rc = journal_allocate(st->jpath)) != 0) {
		mdb_env_close(env);
		return rc;
	}
	if (rc == 0 && (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0) {
		if ((rc = mdb_dbi_open(txn, NULL, 0, &st->jdbi)) == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc != 0) {
		mdb_env_close(env);
		return rc;
	}
	*out = env;
	return 0;
}

static int journal_env(struct store *st, MDB_env **out, bool *writemap) {
	int rc = journal_env_flags(st, MDB_WRITEMAP, out);

	*writemap = rc == 0;
	if (rc == 0 || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
		return rc;
	log_notice("store in %s: its journal %s cannot be mapped and allocated in advance (%s); "
	           "it is written with system calls instead", st->dir, st->jpath, mdb_strerror(rc));
	return journal_env_flags(st, 0, out);
}

/* Append @batch (linked by next) in one unsynced commit; *@bytes: its size. */
static int journal_append(struct store *st, struct op *batch, size_t *bytes) {
	MDB_txn *txn;
	uint64_t seq = st->jseq;
	int rc;

	*bytes = 0;
	if ((rc = mdb_txn_begin(st->jenv, NULL, 0, &txn)) != 0)
		return rc;
	for (struct op *op = batch; op && rc == 0; op = op->next) {
		uint8_t kb[8];
		MDB_val key = { 8, kb }, val;

		put_be64(kb, ++seq);
		op->jkey = seq;
		val.mv_data = op_pack(op, &val.mv_size);
		*bytes += val.mv_size;
		rc = mdb_put(txn, st->jdbi, &key, &val, MDB_APPEND);
		free(val.mv_data);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) == 0)
		st->jseq = seq;
	return rc;
}

/* Delete the journal's entries up to @upto (all when it is the last one);
 * @idle: also give its map's pages back (a light load). Under st->jmu. */
static int journal_clear_pages(struct store *st, uint64_t upto, bool idle) {
	MDB_txn *txn;
	MDB_envinfo info;
	int rc;

	if ((rc = mdb_txn_begin(st->jenv, NULL, 0, &txn)) != 0)
		return rc;
	if (upto >= st->jseq) {
		rc = mdb_drop(txn, st->jdbi, 0);
	} else {
		MDB_cursor *cur;
		MDB_val key, val;
		idle = false; /* newer entries live in the map */
		if ((rc = mdb_cursor_open(txn, st->jdbi, &cur)) == 0) {
			while ((rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0 &&
			       key.mv_size == 8 && get_be64(key.mv_data) <= upto)
				if ((rc = mdb_cursor_del(cur, 0)) != 0)
					break;
			mdb_cursor_close(cur);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		}
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return rc;
	/* Not resident while idle; the page cache keeps what was written. Not
	 * under load: each page would fault in again at its next write. The
	 * store's own (read-only) map too: what a read needs faults back in. */
	if (idle && mdb_env_info(st->jenv, &info) == 0 && info.me_mapaddr != NULL)
		madvise(info.me_mapaddr, info.me_mapsize, MADV_DONTNEED);
	if (idle && mdb_env_info(st->env, &info) == 0 && info.me_mapaddr != NULL) {
		pthread_rwlock_rdlock(&st->maplock); /* not while the map is resized */
		madvise(info.me_mapaddr, info.me_mapsize, MADV_DONTNEED);
		pthread_rwlock_unlock(&st->maplock);
	}
	return 0;
}

static int journal_clear(struct store *st) {
	pthread_mutex_lock(&st->jmu);
	int rc = journal_clear_pages(st, st->jseq, true);
	pthread_mutex_unlock(&st->jmu);
	return rc;
}

/*
 * Write what was journaled into the store (writer thread, mu not held): one
 * synced commit, then the journal is emptied. On a failure that may pass
 * (full disk), everything stays journaled and shown, tried again in
 * STORE_RETRY_MS; meanwhile new writes go to the store directly, so they
 * fail as they would without a journal.
 */
static int fold(struct store *st, uint64_t max_size, char **cause) {
	char *why = NULL;
	int rc;

	/* What is journaled now; the loop may journal more meanwhile (inline). */
	pthread_mutex_lock(&st->mu);
	struct op *chain = st->unf_head, *tail = st->unf_tail;
	uint64_t n = st->unf_n;
	size_t bytes = st->unf_bytes;
	pthread_mutex_unlock(&st->mu);
	if (chain == NULL)
		return 0;
	rc = apply_batch(st, chain, tail, true, tail->jkey, max_size, &why);
	if (rc == 0) {
		mdb_env_sync(st->env, 1);
		/* Folded for its size, not its age: more is coming. */
		bool busy = n >= FOLD_MAX_OPS || bytes >= FOLD_MAX_BYTES;
		pthread_mutex_lock(&st->jmu);
		int jrc = journal_clear_pages(st, tail->jkey, !busy);
		pthread_mutex_unlock(&st->jmu);
		if (jrc != 0)
			log_warning("store in %s: cannot empty its journal %s: %s (what it holds is "
			            "in the store already)", st->dir, st->jpath, mdb_strerror(jrc));
	}
	pthread_mutex_lock(&st->mu);
	st->fold_gen++;
	if (rc == 0 || !retryable(rc) || st->stop) {
		if (rc != 0 && retryable(rc)) {
			st->keep_journal = true;
			log_error("store in %s: %llu writes stay in its journal %s for the next start: %s",
			          st->dir, (unsigned long long)n, st->jpath, why);
		} else if (rc != 0) {
			log_error("store in %s: %llu writes to the store were lost: %s", st->dir,
			          (unsigned long long)n, why);
			pthread_mutex_lock(&st->jmu);
			journal_clear_pages(st, tail->jkey, false);
			pthread_mutex_unlock(&st->jmu);
		}
		if (rc == 0) {
			st->stats.folds++;
			st->meta_dirty = false;
			st->stats.prune_steps = st->w_prune_steps;
			if (st->fold_failing) {
				free(st->last_error);
				st->last_error = NULL;
			}
		}
		st->fold_failing = false;
		st->fold_now = false;
		/* The folded ones leave the list; what was journaled since stays. */
		st->unf_head = tail->fnext;
		if (st->unf_head == NULL)
			st->unf_tail = NULL;
		else
			st->unf_since_ms = mono_ms();
		tail->fnext = NULL;
		st->unf_n -= n;
		st->unf_bytes -= bytes;
		if (st->folded_tail)
			st->folded_tail->fnext = chain;
		else
			st->folded_head = chain;
		st->folded_tail = tail;
		wake_loop(st);
	} else {
		if (!st->fold_failing)
			log_error("%s (%llu writes are kept and tried again every %d ms)", why,
			          (unsigned long long)n, STORE_RETRY_MS);
		st->fold_failing = true;
		st->fold_retry_at_ms = mono_ms() + STORE_RETRY_MS;
		free(st->last_error);
		st->last_error = xstrdup(why);
	}
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	if (cause != NULL && rc != 0) {
		*cause = why;
		why = NULL;
	}
	free(why);
	return rc;
}

/* A fold is due (under mu). */
static bool fold_due(const struct store *st, int64_t now) {
	if (st->unf_head == NULL)
		return false;
	if (st->stop)
		return true;
	if (st->fold_failing && now < st->fold_retry_at_ms)
		return false;
	return st->fold_now || st->durability == DURABILITY_STRICT || st->unf_n >= FOLD_MAX_OPS ||
	       st->unf_bytes >= FOLD_MAX_BYTES || now >= st->unf_since_ms + st->fold_ms;
}

static bool batch_has_sync(const struct op *batch) {
	for (; batch; batch = batch->next)
		if (batch->sync)
			return true;
	return false;
}

/*
 * At open (before the writer starts): delete journals of other boots, and
 * write what this boot's journal holds beyond META_JOURNAL_FOLDED (a kill -9
 * came before its fold) into the store. Without a boot id: no journal.
 */
static int journal_open(struct store *st, char **cause) {
	char boot[BOOT_ID_MAX + 1], *mine;
	DIR *d;
	struct dirent *de;
	int rc;

	const char *fm = getenv("MCPJOB_STORE_FOLD_MS");
	st->fold_ms = fm && atoi(fm) > 0 ? atoi(fm) : STORE_SYNC_INTERVAL_MS;
	if (!read_boot_id(boot, sizeof boot))
		return 0;
	mine = xasprintf(JOURNAL_PREFIX "%s" JOURNAL_SUFFIX, boot);
	if ((d = opendir(st->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name), pl = strlen(JOURNAL_PREFIX);
			size_t sl = strlen(JOURNAL_SUFFIX);
			if (n <= pl + sl || strncmp(de->d_name, JOURNAL_PREFIX, pl) != 0 ||
			    strcmp(de->d_name + n - sl, JOURNAL_SUFFIX) != 0 ||
			    strcmp(de->d_name, mine) == 0)
				continue;
			char *path = xasprintf("%s/%s", st->dir, de->d_name);
			if (unlink(path) == 0)
				log_warning("store in %s: the journal %s was left by an earlier boot that "
				            "ended without stopping mcpjobd (a power loss or a system crash): "
				            "it is deleted unread, so the runs recorded in its last %lld ms "
				            "are missing from the history; the store itself is intact",
				            st->dir, de->d_name, (long long)st->fold_ms);
			else
				log_warning("store in %s: cannot delete the earlier boot's journal %s: %s",
				            st->dir, path, strerror(errno));
			free(path);
		}
		closedir(d);
	}
	st->jpath = xasprintf("%s/%s", st->dir, mine);
	free(mine);
	if ((rc = journal_env(st, &st->jenv, &st->jwritemap)) != 0) {
		set_cause(cause, "cannot open the store's journal %s: %s: make the state directory "
		          "writable for the user mcpjobd runs as, or move the file away", st->jpath,
		          mdb_strerror(rc));
		free(st->jpath);
		st->jpath = NULL;
		return -1;
	}
	/* Replay: entries after the last one folded, in order. */
	MDB_txn *txn, *mtxn;
	MDB_cursor *cur;
	MDB_val key, val;
	uint64_t folded = 0, last = 0, n = 0, damaged = 0;
	struct op *head = NULL, *tail = NULL;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &mtxn)) == 0) {
		if (get_meta(mtxn, st->meta, META_JOURNAL_FOLDED, &val) == 0)
			parse_counter(&val, &folded);
		mdb_txn_abort(mtxn);
	}
	if ((rc = mdb_txn_begin(st->jenv, NULL, MDB_RDONLY, &txn)) != 0)
		return 0;
	if (mdb_cursor_open(txn, st->jdbi, &cur) == 0) {
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			if (key.mv_size != 8)
				continue;
			uint64_t k = get_be64(key.mv_data);
			if (k > last)
				last = k;
			if (k <= folded)
				continue;
			struct op *op = op_unpack(val.mv_data, val.mv_size);
			if (op == NULL) {
				damaged++;
				continue;
			}
			op->jkey = k;
			op->fnext = NULL;
			if (tail)
				tail->fnext = op;
			else
				head = op;
			tail = op;
			n++;
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	st->jseq = last > folded ? last : folded;
	if (damaged > 0)
		log_error("store in %s: %llu entries of its journal %s are damaged and were skipped",
		          st->dir, (unsigned long long)damaged, st->jpath);
	if (head == NULL) {
		if (last > 0)
			journal_clear(st);
		return 0;
	}
	char *why = NULL;
	rc = apply_batch(st, head, NULL, true, st->jseq, 0, &why);
	if (rc == 0) {
		mdb_env_sync(st->env, 1);
		journal_clear(st);
		log_notice("store in %s: %llu writes of the last run of mcpjobd were taken from its "
		           "journal", st->dir, (unsigned long long)n);
		for (struct op *op = head, *next; op; op = next) {
			next = op->fnext;
			op_free(op);
		}
	} else {
		/* Kept journaled: the writer folds them when it can. */
		log_error("%s (%llu writes of the last run of mcpjobd are kept in the journal)", why,
		          (unsigned long long)n);
		st->unf_head = head;
		st->unf_tail = tail;
		st->unf_n = n;
		st->unf_since_ms = mono_ms();
		st->fold_failing = true;
		st->fold_retry_at_ms = mono_ms() + STORE_RETRY_MS;
	}
	free(why);
	return 0;
}


static void *writer_main(void *arg) {
	struct store *st = arg;

	pthread_mutex_lock(&st->mu);
	for (;;) {
		int64_t now = mono_ms();
		bool retry_due = st->retry_head && (now >= st->retry_at_ms || st->stop);
		bool sync_due = st->meta_dirty && now >= st->last_commit_ms + STORE_SYNC_INTERVAL_MS;
		bool fdue = fold_due(st, now);

		if (st->hold || (st->sub_head == NULL && !retry_due && !sync_due && !fdue)) {
			if (st->stop && st->retry_head == NULL && st->sub_head == NULL &&
			    st->unf_head == NULL)
				break;
			int64_t wake = INT64_MAX;
			if (st->retry_head)
				wake = st->retry_at_ms;
			if (st->meta_dirty && st->last_commit_ms + STORE_SYNC_INTERVAL_MS < wake)
				wake = st->last_commit_ms + STORE_SYNC_INTERVAL_MS;
			if (st->unf_head) {
				int64_t f = st->fold_failing ? st->fold_retry_at_ms
				                             : st->unf_since_ms + st->fold_ms;
				if (f < wake)
					wake = f;
			}
			if (wake == INT64_MAX) {
				pthread_cond_wait(&st->cv, &st->mu);
			} else {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				int64_t ms = wake > now ? wake - now : 0;
				ts.tv_sec += ms / 1000;
				ts.tv_nsec += (ms % 1000) * 1000000L;
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_cond_timedwait(&st->cv, &st->mu, &ts);
			}
			continue;
		}
		/* Kept writes first: they are older than anything queued since. */
		struct op *batch = NULL, *tail = NULL;
		if (st->retry_head && (retry_due || st->sub_head)) {
			batch = st->retry_head;
			tail = st->retry_tail;
			st->retry_head = st->retry_tail = NULL;
		}
		if (st->sub_head) {
			if (tail)
				tail->next = st->sub_head;
			else
				batch = st->sub_head;
			st->sub_head = st->sub_tail = NULL;
		}
		enum store_durability dur = st->durability;
		uint64_t max_size = st->max_size;
		bool last = st->stop;
		/* The journal takes a batch in batched mode, unless someone waits on it
		 * (it must be in the store when they read), the store is failing, or
		 * this is the stop. */
		bool journal = batch != NULL && st->jenv != NULL && dur == DURABILITY_BATCHED &&
		               !st->fold_failing && !last && !batch_has_sync(batch);
		st->writer_busy = batch != NULL; /* the loop journals nothing inline meanwhile */
		pthread_mutex_unlock(&st->mu);
		if (max_size != st->w_max_size) {
			apply_max_size(st, max_size);
			st->w_max_size = max_size;
		}
		char *cause = NULL;
		size_t bytes = 0;
		int rc = 0;
		if (journal) {
			pthread_mutex_lock(&st->jmu);
			rc = journal_append(st, batch, &bytes);
			pthread_mutex_unlock(&st->jmu);
			if (rc == MDB_MAP_FULL && fold(st, max_size, NULL) == 0) {
				pthread_mutex_lock(&st->jmu);
				rc = journal_append(st, batch, &bytes);
				pthread_mutex_unlock(&st->jmu);
			}
			journal = rc == 0; /* else: straight into the store, below */
		}
		if (batch != NULL && !journal) {
			/* In order: what was journaled goes first. */
			if (st->unf_head == NULL || (rc = fold(st, max_size, &cause)) == 0) {
				rc = apply_batch(st, batch, NULL, false, 0, max_size, &cause);
				if (rc == 0 && dur == DURABILITY_STRICT)
					mdb_env_sync(st->env, 1);
			}
		} else if (batch == NULL && fdue) {
			fold(st, max_size, NULL);
		} else if (batch == NULL) {
			mdb_env_sync(st->env, 1); /* batched: the meta page, within the interval */
		}
		pthread_mutex_lock(&st->mu);
		st->writer_busy = false;
		if (batch != NULL)
			settle(st, batch, rc, cause, last, journal, bytes);
		else if (!fdue)
			st->meta_dirty = false;
		free(cause);
	}
	pthread_mutex_unlock(&st->mu);
	if (st->meta_dirty)
		mdb_env_sync(st->env, 1);
	return NULL;
}


/* --- open and close (loop thread; the writer starts last) ------------------ */

static int get_meta(MDB_txn *txn, MDB_dbi dbi, const char *name, MDB_val *val) {
	MDB_val key = { strlen(name), (void *)name };

	return mdb_get(txn, dbi, &key, val);
}

/* Schema 1 -> 2: every run record re-encoded, in this one transaction. */
static int migrate_v1(struct store *st, MDB_txn *txn) {
	MDB_cursor *cur;
	MDB_val key, val;
	uint64_t n = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->runs, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		struct run_record run;
		MDB_val nv;

		if (key.mv_size < 18)
			continue;
		run_decode(&key, &val, &run);
		nv.mv_data = run_encode(&run, &nv.mv_size);
		rc = mdb_cursor_put(cur, &key, &nv, MDB_CURRENT);
		free(nv.mv_data);
		store_run_record_clear(&run);
		if (rc != 0)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (n > 0)
		log_notice("store in %s: %llu run records converted to schema %d", st->dir,
		           (unsigned long long)n, STORE_SCHEMA_VERSION);
	return put_counter(txn, st->meta, META_SCHEMA, STORE_SCHEMA_VERSION);
}

static void new_store_id(char *out) {
	uint8_t b[16];

	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
		uint64_t t = (uint64_t)time_now_ms() ^ ((uint64_t)getpid() << 32);
		for (int i = 0; i < 16; i++)
			b[i] = (uint8_t)(t >> (i % 8 * 8)) ^ (uint8_t)i;
	}
	for (int i = 0; i < 16; i++)
		snprintf(out + i * 2, 3, "%02x", b[i]);
}

/*
 * Open the databases, create what a new store lacks, migrate an old one.
 * A current store whose disk is full commits nothing here, so it opens.
 */
static int open_dbs(struct store *st, char **cause) {
	MDB_txn *txn;
	MDB_val val;
	uint64_t schema = 0, last = 0;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "jobs", MDB_CREATE, &st->jobs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "runs", MDB_CREATE, &st->runs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "active", MDB_CREATE, &st->active)) != 0 ||
	    (rc = mdb_dbi_open(txn, "counts", MDB_CREATE, &st->counts)) != 0 ||
	    (rc = mdb_dbi_open(txn, "defs", MDB_CREATE, &st->defs)) != 0)
		goto abort;
	rc = get_meta(txn, st->meta, META_SCHEMA, &val);
	if (rc == MDB_NOTFOUND) {
		schema = STORE_SCHEMA_VERSION;
		if ((rc = put_counter(txn, st->meta, META_SCHEMA, schema)) != 0)
			goto abort;
	} else if (rc != 0) {
		goto abort;
	} else if (parse_counter(&val, &schema) != 0) {
		mdb_txn_abort(txn);
		set_cause(cause, "state directory %s: its schema version is unreadable (move the "
		          "directory away or choose another --state-dir)", st->dir);
		return -1;
	}
	if (check_schema(st, schema, cause) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	if (schema < STORE_SCHEMA_VERSION && (rc = migrate_v1(st, txn)) != 0)
		goto abort;
	if ((rc = get_meta(txn, st->meta, META_ID, &val)) == 0 && val.mv_size == 32) {
		memcpy(st->id, val.mv_data, 32);
	} else {
		MDB_val key = { sizeof META_ID - 1, META_ID }, idv = { 32, st->id };
		new_store_id(st->id);
		if ((rc = mdb_put(txn, st->meta, &key, &idv, 0)) != 0)
			goto abort;
	}
	if ((rc = get_meta(txn, st->meta, META_LAST_RUN_ID, &val)) == 0 &&
	    parse_counter(&val, &last) != 0) {
		mdb_txn_abort(txn);
		set_cause(cause, "state directory %s: its run counter is unreadable (move the "
		          "directory away or choose another --state-dir)", st->dir);
		return -1;
	}
	st->next_run_id = last + 1;
	for (int tries = 0;; tries++) {
		rc = mdb_txn_commit(txn);
		if (rc != MDB_MAP_FULL || tries >= STORE_MAX_GROWS)
			break;
		/* Only a migration fills a map: grow and do it again. */
		MDB_envinfo info;
		mdb_env_info(st->env, &info);
		mdb_env_set_mapsize(st->env, info.me_mapsize * 2);
		return open_dbs(st, cause);
	}
	if (rc == 0)
		return 0;
	goto fail;
abort:
	mdb_txn_abort(txn);
fail:
	if (schema != 0 && schema < STORE_SCHEMA_VERSION)
		set_cause(cause, "cannot convert the store in state directory %s to schema %d: %s: "
		          "free space on its file system and start mcpjobd again", st->dir,
		          STORE_SCHEMA_VERSION, mdb_strerror(rc));
	else
		set_cause(cause, "cannot open the databases of the store in state directory %s: %s",
		          st->dir, mdb_strerror(rc));
	return -1;
}

/* After the journal's replay: the run counter may have moved. */
static int reread_last_id(struct store *st, char **cause) {
	MDB_txn *txn;
	MDB_val val;
	uint64_t last = 0;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0) {
		set_cause(cause, "cannot read the store in state directory %s: %s", st->dir,
		          mdb_strerror(rc));
		return -1;
	}
	if (get_meta(txn, st->meta, META_LAST_RUN_ID, &val) == 0)
		parse_counter(&val, &last);
	mdb_txn_abort(txn);
	if (last + 1 > st->next_run_id)
		st->next_run_id = last + 1;
	return 0;
}

int store_open(const char *dir, struct store **out, char **cause) {
	struct store *st = xcalloc(1, sizeof *st);
	int dead;

	st->dir = xstrdup(dir);
	st->lock_fd = -1;
	st->efd = -1;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	pthread_rwlock_init(&st->maplock, NULL);
	pthread_mutex_init(&st->jmu, NULL);
	if (make_dirs(dir, cause) != 0 || lock_dir(st, cause) != 0 || env_open(st, cause) != 0)
		goto fail;
	/* Reader slots left by a killed process would pin old pages forever. */
	mdb_reader_check(st->env, &dead);
	if (open_dbs(st, cause) != 0 || journal_open(st, cause) != 0 ||
	    reread_last_id(st, cause) != 0)
		goto fail;
	if ((st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		set_cause(cause, "cannot create an eventfd for the store: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&st->thread, NULL, writer_main, st) != 0) {
		set_cause(cause, "cannot start the store's writer thread");
		goto fail;
	}
	st->thread_running = true;
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

static void proc_submit_all(struct store *st);
static void on_proc_due(evutil_socket_t fd, short what, void *arg);

void store_close(struct store *st) {
	if (st == NULL)
		return;
	proc_submit_all(st);
	if (st->proc_ev)
		event_free(st->proc_ev);
	if (st->fold_ev)
		event_free(st->fold_ev);
	if (st->thread_running) {
		pthread_mutex_lock(&st->mu);
		st->stop = true;
		st->hold = false;
		pthread_cond_broadcast(&st->cv);
		pthread_mutex_unlock(&st->mu);
		pthread_join(st->thread, NULL);
	}
	/* Replayed ones are on no pending list (the others are: freed below). */
	for (struct op *op = st->unf_head, *next; op; op = next) {
		next = op->fnext;
		if (!op->journaled)
			op_free(op);
	}
	for (struct op *op = st->folded_head, *next; op; op = next) {
		next = op->fnext;
		if (!op->journaled)
			op_free(op);
	}
	/* Every op not waited for is on the pending list, completed by now. */
	for (struct op *op = st->pend_head, *next; op; op = next) {
		next = op->pnext;
		op_free(op);
	}
	if (st->load_txn)
		mdb_txn_abort(st->load_txn);
	if (st->done_ev)
		event_free(st->done_ev);
	if (st->efd >= 0)
		close(st->efd);
	if (st->jenv) {
		mdb_env_close(st->jenv);
		/* Emptied by the last fold (or never used): nothing to keep. */
		if (!st->keep_journal && st->unf_head == NULL && st->thread_running)
			unlink(st->jpath);
	}
	free(st->jpath);
	if (st->env)
		mdb_env_close(st->env);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_rwlock_destroy(&st->maplock);
	pthread_mutex_destroy(&st->jmu);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st->last_error);
	free(st->dir);
	free(st);
}

void store_test_hold(struct store *st, bool hold) {
	pthread_mutex_lock(&st->mu);
	st->hold = hold;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

const char *store_id(const struct store *st) {
	return st->id;
}

void store_configure(struct store *st, enum store_durability d, uint64_t max_size) {
	pthread_mutex_lock(&st->mu);
	st->durability = d;
	st->max_size = max_size;
	pthread_mutex_unlock(&st->mu);
}

void store_set_notice(struct store *st, store_notice_fn fn, void *arg) {
	st->notice = fn;
	st->notice_arg = arg;
}

char *store_last_error(struct store *st) {
	char *s;

	pthread_mutex_lock(&st->mu);
	s = xstrdup_or_null(st->last_error);
	pthread_mutex_unlock(&st->mu);
	return s;
}

void store_get_stats(struct store *st, struct store_stats *out) {
	pthread_mutex_lock(&st->mu);
	*out = st->stats;
	pthread_mutex_unlock(&st->mu);
}

static void poll_done(struct store *st, bool drain_fd) {
	struct op *done, *folded, *next;
	uint64_t pruned, drain;

	if (drain_fd && read(st->efd, &drain, sizeof drain) < 0 && errno != EAGAIN)
		log_debug("store: reading its eventfd: %s", strerror(errno));
	pthread_mutex_lock(&st->mu);
	done = st->done_head;
	st->done_head = st->done_tail = NULL;
	folded = st->folded_head;
	st->folded_head = st->folded_tail = NULL;
	pruned = st->pruned_unreported;
	st->pruned_unreported = 0;
	pthread_mutex_unlock(&st->mu);
	for (struct op *op = done; op; op = next) {
		next = op->next;
		if (op->journaled && op->rc == 0) {
			/* Committed to the journal: stays shown until it is in the store. */
			if (op->done)
				op->done(op->arg, 1, NULL);
			continue;
		}
		pending_remove(st, op);
		if (op->done)
			op->done(op->arg, op->rc == 0, op->cause);
		op_free(op);
	}
	/* Folded ones were all delivered: above, or by an earlier call. */
	for (struct op *op = folded; op; op = next) {
		next = op->fnext;
		pending_remove(st, op);
		op_free(op);
	}
	if (pruned > 0) {
		char *what = xasprintf("the store in %s reached store.max_size (%llu bytes): the "
		                       "%llu oldest finished runs were deleted", st->dir,
		                       (unsigned long long)st->max_size, (unsigned long long)pruned);
		log_warning("%s", what);
		if (st->notice)
			st->notice(st->notice_arg, what, pruned);
		free(what);
	}
}

static uint64_t count_list(const struct op *op) {
	uint64_t n = 0;

	for (; op; op = op->next)
		n++;
	return n;
}

void store_flush(struct store *st) {
	proc_submit_all(st);
	pthread_mutex_lock(&st->mu);
	/* Queued writes done; kept ones (a full disk) are not waited for. */
	while (st->stats.pending > 0 && !(st->sub_head == NULL && st->retry_head != NULL &&
	                                  st->stats.pending == count_list(st->retry_head)))
		pthread_cond_wait(&st->cv, &st->mu);
	/* And what the journal holds is in the store (or one fold was tried). */
	uint64_t gen = st->fold_gen;
	if (st->unf_n > 0) {
		st->fold_now = true;
		pthread_cond_broadcast(&st->cv);
	}
	while (st->unf_n > 0 && st->fold_gen == gen)
		pthread_cond_wait(&st->cv, &st->mu);
	pthread_mutex_unlock(&st->mu);
	store_poll(st);
}

void store_poll(struct store *st) {
	poll_done(st, true);
}

/* EV_READ: the writer woke the loop; EV_TIMEOUT alone: the loop committed inline. */
static void on_done(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	poll_done(arg, (what & EV_READ) != 0);
}

void store_attach(struct store *st, struct event_base *base) {
	if (st->done_ev)
		event_free(st->done_ev);
	st->done_ev = event_new(base, st->efd, EV_READ | EV_PERSIST, on_done, st);
	if (st->done_ev == NULL)
		log_fatalx("cannot create the store's event");
	event_add(st->done_ev, NULL);
	proc_submit_all(st);
	if (st->proc_ev)
		event_free(st->proc_ev);
	st->proc_ev = evtimer_new(base, on_proc_due, st);
	if (st->fold_ev)
		event_free(st->fold_ev);
	st->fold_ev = evtimer_new(base, on_fold_due, st);
	st->attached = true;
	store_poll(st); /* what completed before (recovery) */
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
	free(run->task_id);
	free(run->task_server);
	free(run->task_session);
	json_decref(run->input);
	json_decref(run->structured);
	free(run->structured_text);
	memset(run, 0, sizeof *run);
}


/* --- jobs ----------------------------------------------------------------- */

static int read_begin(struct store *st, MDB_txn **txn) {
	int rc;

	pthread_rwlock_rdlock(&st->maplock);
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn)) != 0)
		pthread_rwlock_unlock(&st->maplock);
	return rc;
}

static void read_end(struct store *st, MDB_txn *txn) {
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->maplock);
}

void store_load_begin(struct store *st) {
	if (st->load_txn == NULL && read_begin(st, &st->load_txn) != 0)
		st->load_txn = NULL;
}

void store_load_end(struct store *st) {
	if (st->load_txn) {
		read_end(st, st->load_txn);
		st->load_txn = NULL;
	}
}

/* The newest queued job record of @job_id, or NULL. */
static const struct op *pending_job(const struct store *st, const char *job_id) {
	const struct op *found = NULL;

	for (const struct op *op = st->pend_head; op; op = op->pnext)
		if (op->job_val && strcmp(op->job_id, job_id) == 0)
			found = op;
	return found;
}

int store_load_job(struct store *st, const char *job_id, struct job_record *rec, char **cause) {
	MDB_val key = { 0, (void *)job_id }, val;
	MDB_txn *txn = st->load_txn;
	const struct op *p;
	int rc;

	store_job_record_init(rec);
	if (!job_id_ok(job_id, cause))
		return -1;
	if ((p = pending_job(st, job_id)) != NULL) {
		job_decode(p->job_val, p->jlen, rec);
		return 0;
	}
	if (txn == NULL && (rc = read_begin(st, &txn)) != 0) {
		set_cause(cause, "could not read job %s from state directory %s: %s", job_id,
		          st->dir, mdb_strerror(rc));
		return -1;
	}
	key.mv_size = strlen(job_id);
	rc = mdb_get(txn, st->jobs, &key, &val);
	if (rc == 0)
		job_decode(val.mv_data, val.mv_size, rec);
	if (txn != st->load_txn)
		read_end(st, txn);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0) {
		set_cause(cause, "could not read job %s from state directory %s: %s", job_id,
		          st->dir, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

/* Attached: queue and return; else wait for the commit. */
static int submit_maybe_wait(struct store *st, struct op *op, char **cause) {
	if (st->attached) {
		submit(st, op);
		return 0;
	}
	return submit_wait(st, op, cause);
}

int store_save_job(struct store *st, const char *job_id, const struct job_record *rec,
                   char **cause) {
	if (!job_id_ok(job_id, cause))
		return -1;
	return submit_maybe_wait(st, op_new(OP_SAVE_JOB, job_id, NULL, rec), cause);
}

/* --- runs ---------------------------------------------------------------- */

static struct op *begin_op(struct store *st, struct run_record *run,
                           const struct job_record *rec) {
	run->run_id = st->next_run_id++;
	run->outcome = OUTCOME_RUNNING;
	run->finished_ms = 0;
	return op_new(OP_BEGIN, run->job_id, run, rec);
}

int store_run_begin_async(struct store *st, struct run_record *run,
                          const struct job_record *rec, store_done_fn done, void *arg,
                          char **cause) {
	struct op *op;

	if (!job_id_ok(run->job_id, cause))
		return -1;
	op = begin_op(st, run, rec);
	op->done = done;
	op->arg = arg;
	submit(st, op);
	return 0;
}

int store_run_begin(struct store *st, struct run_record *run, const struct job_record *rec,
                    char **cause) {
	if (!job_id_ok(run->job_id, cause))
		return -1;
	return submit_wait(st, begin_op(st, run, rec), cause);
}

static void proc_submit_all(struct store *st) {
	struct op *op = st->proc_head, *next;

	st->proc_head = st->proc_tail = NULL;
	for (; op; op = next) {
		next = op->next;
		op->next = NULL;
		submit(st, op);
	}
}

/* Drop a deferred identity of run @run_id: a newer record of it supersedes it. */
static void proc_drop(struct store *st, uint64_t run_id) {
	struct op **pp = &st->proc_head, *prev = NULL;

	while (*pp) {
		struct op *op = *pp;
		if (op->run_id == run_id) {
			*pp = op->next;
			if (st->proc_tail == op)
				st->proc_tail = prev;
			op_free(op);
			if (st->proc_head == NULL && st->proc_ev)
				evtimer_del(st->proc_ev); /* nothing left to write: no wake-up */
		} else {
			prev = op;
			pp = &op->next;
		}
	}
}

static void on_proc_due(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	proc_submit_all(arg);
}

void store_run_set_process(struct store *st, const struct run_record *run,
                           store_start_fn start_of) {
	if (run->run_id == 0 || !job_id_ok(run->job_id, NULL))
		return;
	struct op *op = op_new(OP_PROC, run->job_id, run, NULL);
	op->start_of = start_of;
	if (!st->attached || st->proc_ev == NULL) {
		submit(st, op);
		if (!st->attached)
			store_flush(st);
		return;
	}
	proc_drop(st, run->run_id);
	op->next = NULL;
	if (st->proc_tail)
		st->proc_tail->next = op;
	else
		st->proc_head = op;
	st->proc_tail = op;
	if (!evtimer_pending(st->proc_ev, NULL)) {
		struct timeval tv = { 0, PROC_DEFER_MS * 1000 };
		evtimer_add(st->proc_ev, &tv);
	}
}

void store_run_set_task(struct store *st, const struct run_record *run, store_done_fn done,
                        void *arg) {
	struct op *op;

	if (run->run_id == 0 || !job_id_ok(run->job_id, NULL)) {
		if (done)
			done(arg, 0, "the run has no record to keep its task in");
		return;
	}
	/* The same write as OP_PROC: the whole record, only while it runs. */
	proc_drop(st, run->run_id);
	op = op_new(OP_PROC, run->job_id, run, NULL);
	op->done = done;
	op->arg = arg;
	submit(st, op);
	if (!st->attached)
		store_flush(st);
}

int store_run_finish(struct store *st, const struct run_record *run,
                     const struct job_record *rec, int max_runs, int64_t max_age_ms,
                     int64_t now_ms, char **cause) {
	struct op *op;

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
	proc_drop(st, run->run_id); /* the whole record, finished: the identity is moot */
	op = op_new(OP_FINISH, run->job_id, run, rec);
	op->max_runs = max_runs;
	op->max_age_ms = max_age_ms;
	op->now_ms = now_ms;
	return submit_maybe_wait(st, op, cause);
}

/* --- reading history ------------------------------------------------------ */

/* Queued versions of a job's runs, newest key first (latest write of each run). */
struct overlay {
	const struct run_record **runs;
	size_t n;
};

static int overlay_cmp(const void *a, const void *b) {
	const struct run_record *x = *(const struct run_record *const *)a;
	const struct run_record *y = *(const struct run_record *const *)b;

	if (x->started_ms != y->started_ms)
		return x->started_ms > y->started_ms ? -1 : 1;
	return x->run_id > y->run_id ? -1 : x->run_id < y->run_id;
}

static void overlay_build(const struct store *st, const char *job_id, struct overlay *ov) {
	size_t cap = 0;

	ov->runs = NULL;
	ov->n = 0;
	for (const struct op *op = st->pend_head; op; op = op->pnext) {
		size_t i;

		if (!op->has_shown || strcmp(op->job_id, job_id) != 0)
			continue;
		for (i = 0; i < ov->n && ov->runs[i]->run_id != op->run_id; i++)
			;
		if (i < ov->n) {
			/* A later write of the run; a PROC never undoes a finish. */
			if (!(op->kind == OP_PROC && ov->runs[i]->outcome != OUTCOME_RUNNING))
				ov->runs[i] = &op->shown;
			continue;
		}
		if (ov->n == cap) {
			cap = cap ? cap * 2 : 8;
			ov->runs = xreallocarray(ov->runs, cap, sizeof *ov->runs);
		}
		ov->runs[ov->n++] = &op->shown;
	}
	if (ov->n > 1)
		qsort(ov->runs, ov->n, sizeof *ov->runs, overlay_cmp);
}

static bool overlay_has(const struct overlay *ov, uint64_t run_id) {
	for (size_t i = 0; i < ov->n; i++)
		if (ov->runs[i]->run_id == run_id)
			return true;
	return false;
}

static int history_walk(struct store *st, MDB_cursor *cur, const char *job_id,
                        int64_t before_ms, size_t limit, store_run_fn fn, void *arg) {
	size_t len = strlen(job_id), n = 0, oi = 0;
	uint8_t kb[STORE_RUN_KEY_MAX];
	uint64_t bound = before_ms > 0 ? (uint64_t)before_ms : UINT64_MAX;
	MDB_val key = { run_key(kb, job_id, bound, 0), kb }, val;
	struct overlay ov;
	int rc = seek_before(cur, &key, &val), stop = 0;

	overlay_build(st, job_id, &ov);
	/* Queued runs started at or after the bound are not asked for. */
	while (oi < ov.n && before_ms > 0 && ov.runs[oi]->started_ms >= before_ms)
		oi++;
	for (;;) {
		bool db = rc == 0 && run_key_is_of(&key, job_id, len);

		if ((limit != 0 && n >= limit) || stop || (!db && oi >= ov.n))
			break;
		if (db && overlay_has(&ov, key_run_id(&key))) {
			rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
			continue;
		}
		if (oi < ov.n && (!db || (uint64_t)ov.runs[oi]->started_ms > (uint64_t)key_started(&key) ||
		                  ((uint64_t)ov.runs[oi]->started_ms == (uint64_t)key_started(&key) &&
		                   ov.runs[oi]->run_id > key_run_id(&key)))) {
			stop = fn(ov.runs[oi++], arg);
			n++;
			continue;
		}
		struct run_record run;
		run_decode(&key, &val, &run);
		stop = fn(&run, arg);
		store_run_record_clear(&run);
		n++;
		rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
	}
	free(ov.runs);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_history(struct store *st, const char *job_id, int64_t before_ms, size_t limit,
                  store_run_fn fn, void *arg, char **cause) {
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc;

	if (!job_id_ok(job_id, cause))
		return -1;
	if ((rc = read_begin(st, &txn)) == 0) {
		if ((rc = mdb_cursor_open(txn, st->runs, &cur)) == 0) {
			rc = history_walk(st, cur, job_id, before_ms, limit, fn, arg);
			mdb_cursor_close(cur);
		}
		read_end(st, txn);
	}
	if (rc != 0) {
		set_cause(cause, "could not read the history of job %s from state directory %s: %s",
		          job_id, st->dir, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

/* --- recovery -------------------------------------------------------------- */

int store_recover_interrupted(struct store *st, int64_t now_ms, store_run_fn fn, void *arg,
                              char **cause) {
	return store_recover_runs(st, now_ms, NULL, NULL, fn, arg, cause);
}

int store_recover_runs(struct store *st, int64_t now_ms, store_run_fn keep, void *keep_arg,
                       store_run_fn fn, void *arg, char **cause) {
	struct run_record *runs = NULL;
	struct orphan_target *targets;
	size_t n = 0, cap = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	if ((rc = read_begin(st, &txn)) != 0)
		goto fail;
	if ((rc = mdb_cursor_open(txn, st->active, &cur)) != 0) {
		read_end(st, txn);
		goto fail;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		MDB_val rval;

		if (val.mv_size < 18 || val.mv_size > STORE_RUN_KEY_MAX ||
		    mdb_get(txn, st->runs, &val, &rval) != 0)
			continue; /* a stale entry: the finish below clears none, harmless */
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			runs = xreallocarray(runs, cap, sizeof *runs);
		}
		run_decode(&val, &rval, &runs[n++]);
	}
	mdb_cursor_close(cur);
	read_end(st, txn);
	if (rc != MDB_NOTFOUND)
		goto fail;
	/* Runs the caller resumes stay as they are: out of the list. */
	for (size_t i = 0; keep != NULL && i < n;) {
		if (keep(&runs[i], keep_arg) == 0) {
			i++;
			continue;
		}
		store_run_record_clear(&runs[i]);
		runs[i] = runs[--n];
	}
	/* Processes first: no job may run again while its last run's still do. */
	targets = xcalloc(n ? n : 1, sizeof *targets);
	for (size_t i = 0; i < n; i++) {
		targets[i].leader.pid = runs[i].proc.pid;
		targets[i].leader.start = runs[i].proc.start;
		targets[i].tag = xasprintf("%llu", (unsigned long long)runs[i].run_id);
	}
	int stopped = orphan_stop(targets, n, true, st->id,
	                          st->orphan_grace_ms > 0 ? st->orphan_grace_ms : ACTION_KILL_GRACE_MS);
	if (stopped > 0)
		log_notice("stopped %d process%s left running by the mcpjobd that used %s before",
		           stopped, stopped == 1 ? "" : "es", st->dir);
	for (size_t i = 0; i < n; i++) {
		struct run_record *run = &runs[i];
		struct job_record rec;

		run->outcome = OUTCOME_INTERRUPTED;
		run->finished_ms = now_ms;
		free(run->message);
		run->message = xstrdup(targets[i].found > 0 ? STORE_ORPHANS_STOPPED_MSG
		                                            : STORE_INTERRUPTED_MSG);
		run->proc.pid = 0;
		run->proc.start = 0;
		if (store_load_job(st, run->job_id, &rec, NULL) < 0)
			store_job_record_init(&rec);
		rec.last_outcome = OUTCOME_INTERRUPTED;
		free(rec.last_message);
		rec.last_message = xstrdup(run->message);
		rec.last_finished_ms = now_ms;
		if (rec.last_run_ms < run->started_ms)
			rec.last_run_ms = run->started_ms;
		submit(st, op_new(OP_RECOVER, run->job_id, run, &rec));
		store_job_record_clear(&rec);
		free(targets[i].tag);
	}
	free(targets);
	for (size_t i = 0; fn != NULL && i < n; i++)
		if (fn(&runs[i], arg) != 0)
			break;
	for (size_t i = 0; i < n; i++)
		store_run_record_clear(&runs[i]);
	free(runs);
	/* Not attached yet: give the rewrite its commit now if the disk allows. */
	if (!st->attached)
		store_flush(st);
	return (int)n;
fail:
	for (size_t i = 0; i < n; i++)
		store_run_record_clear(&runs[i]);
	free(runs);
	set_cause(cause, "could not read the runs left running in state directory %s: %s",
	          st->dir, mdb_strerror(rc));
	return -1;
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
	if (run->task_id) /* an MCP task run: its task (the session stays ours) */
		json_object_set_new(v, "task_id", json_text(run->task_id));
	return v;
}

static size_t strlen0(const char *s) {
	return s ? strlen(s) : 0;
}

/*
 * store_run_to_json()'s object as text, key for key (test_jsontext.c holds
 * the two equal): job.history writes 50 of these per reply, so it is
 * written straight-line into room reserved for the longest it can be.
 */
void store_run_text(const struct run_record *run, struct jsontext *t) {
	bool finished = run->finished_ms != 0 && run->outcome != OUTCOME_RUNNING;
	const char *trigger = job_trigger_name(run->trigger);
	bool after = run->trigger == TRIGGER_AFTER && run->trigger_ref;
	size_t nref = after ? strlen(run->trigger_ref) : 0;
	int64_t ms;
	size_t room = 256 + 2 * JSONTEXT_TIME_MAX + 3 * JSONTEXT_INT_MAX + strlen(trigger) +
	              JSONTEXT_ESCAPED_MAX(strlen0(run->job_id) + nref + strlen0(run->message) +
	                                   strlen0(run->output));
	char *p = jsontext_reserve(t, room);

	if (t->comma)
		*p++ = ',';
	p = JSONTEXT_PUT_LIT(p, "{\"run_id\":");
	p = jsontext_put_int(p, (long long)run->run_id);
	p = JSONTEXT_PUT_LIT(p, ",\"job\":");
	p = jsontext_put_str(p, run->job_id);
	p = JSONTEXT_PUT_LIT(p, ",\"trigger\":");
	if (after) { /* a chained run says which run started it: "after:backup:41" */
		p = JSONTEXT_PUT_LIT(p, "\"after:");
		p = jsontext_put_escaped(p, run->trigger_ref, nref);
		*p++ = '"';
	} else {
		p = jsontext_put_str(p, trigger);
	}
	p = JSONTEXT_PUT_LIT(p, ",\"attempt\":");
	p = jsontext_put_int(p, run->attempt);
	p = JSONTEXT_PUT_LIT(p, ",\"started_at\":");
	p = jsontext_put_time(p, run->started_ms);
	p = JSONTEXT_PUT_LIT(p, ",\"finished_at\":");
	p = jsontext_put_time(p, finished ? run->finished_ms : 0);
	p = JSONTEXT_PUT_LIT(p, ",\"duration_ms\":");
	/* Times from a damaged record may be anything: no overflow; a clock
	 * step back during the run shows no negative duration. */
	if (__builtin_sub_overflow(run->finished_ms, run->started_ms, &ms))
		ms = 0;
	if (finished)
		p = jsontext_put_int(p, ms > 0 ? ms : 0);
	else
		p = JSONTEXT_PUT_LIT(p, "null");
	p = JSONTEXT_PUT_LIT(p, ",\"outcome\":");
	p = jsontext_put_str(p, job_outcome_name(run->outcome));
	p = JSONTEXT_PUT_LIT(p, ",\"message\":");
	p = jsontext_put_str(p, run->message);
	p = JSONTEXT_PUT_LIT(p, ",\"output\":");
	p = jsontext_put_str(p, run->output);
	p = JSONTEXT_PUT_LIT(p, ",\"structured_content\":");
	if (run->structured == NULL)
		p = JSONTEXT_PUT_LIT(p, "null");
	jsontext_commit(t, p);
	if (run->structured) {
		t->comma = false; /* the value of "structured_content", written above */
		if (run->structured_text)
			jsontext_encoded(t, run->structured_text, strlen(run->structured_text));
		else
			jsontext_json(t, run->structured);
	}
	if (run->input) {
		JSONTEXT_KEY(t, "input");
		jsontext_json(t, run->input);
	}
	if (run->task_id) { /* an MCP task run: its task (the session stays ours) */
		JSONTEXT_KEY(t, "task_id");
		jsontext_str(t, run->task_id);
	}
	jsontext_obj_close(t);
}

/* --- what the store reads from disk, for the fuzz target --------------------- */

int store_run_record_decode(const void *key, size_t klen, const void *val, size_t vlen,
                            struct run_record *run) {
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
	const uint8_t *kb = key;

	memset(run, 0, sizeof *run);
	/* job id (at least one byte), NUL, be64 start, be64 run id */
	if (klen < 18 || kb[klen - 17] != '\0' || memchr(kb, '\0', klen - 17) != NULL)
		return -1;
	run_decode(&k, &v, run);
	return 0;
}

void store_job_record_decode(const void *val, size_t vlen, struct job_record *rec) {
	job_decode(val, vlen, rec);
}

/* --- jobs added over the socket ------------------------------------------- */

int store_put_def(struct store *st, const char *job_id, const char *text, char **cause) {
	struct op *op;

	if (!job_id_ok(job_id, cause))
		return -1;
	op = op_new(OP_DEF, job_id, NULL, NULL);
	if (text) {
		op->val = xstrdup(text);
		op->vlen = strlen(text);
	}
	/* Waits for its commit: the caller tells its peer the job was kept. */
	return submit_wait(st, op, cause);
}

int store_each_def(struct store *st, store_def_fn fn, void *arg, char **cause) {
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	if ((rc = read_begin(st, &txn)) != 0) {
		set_cause(cause, "could not read the added jobs from state directory %s: %s", st->dir,
		          mdb_strerror(rc));
		return -1;
	}
	if ((rc = mdb_cursor_open(txn, st->defs, &cur)) != 0) {
		read_end(st, txn);
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
	read_end(st, txn);
	return 0;
}
