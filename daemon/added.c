/*
 * added.c - jobs added over the control socket, kept in memory and in the
 * store. See added.h.
 */
#include "daemon/added.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "daemon/store.h"

struct added {
	struct store *st;
	json_t *jobs; /* id -> {"job": {...}, "uid": n} */
	struct config_socket_job *view; /* what added_load_opts() handed out */
	size_t nview;
};

static int load_one(const char *job_id, const char *text, void *arg) {
	struct added *a = arg;
	json_t *o = json_loads(text, 0, NULL);
	/* A record this build cannot read is left where it is, not lost. */
	if (json_is_object(json_object_get(o, "job")) && json_is_integer(json_object_get(o, "uid")))
		json_object_set(a->jobs, job_id, o);
	json_decref(o);
	return 0;
}

struct added *added_load(struct store *st, char **cause) {
	struct added *a = xcalloc(1, sizeof *a);
	a->st = st;
	a->jobs = json_object();
	if (store_each_def(st, load_one, a, cause) < 0) {
		added_free(a);
		return NULL;
	}
	return a;
}

void added_free(struct added *a) {
	if (a == NULL)
		return;
	json_decref(a->jobs);
	free(a->view);
	free(a);
}

void added_load_opts(struct added *a, const char *extra_id, json_t *extra, int extra_uid,
                     struct config_load_opts *lo) {
	const char *id;
	json_t *o;
	size_t n = 0;
	free(a->view);
	a->view = xcalloc(json_object_size(a->jobs) + 1, sizeof *a->view);
	json_object_foreach(a->jobs, id, o) {
		if (extra_id && strcmp(id, extra_id) == 0)
			continue;
		a->view[n].job = json_object_get(o, "job");
		a->view[n].uid = (int)json_integer_value(json_object_get(o, "uid"));
		n++;
	}
	if (extra) {
		a->view[n].job = extra;
		a->view[n].uid = extra_uid;
		n++;
	}
	a->nview = n;
	lo->socket_jobs = a->view;
	lo->nsocket_jobs = n;
}

int added_owner(const struct added *a, const char *id) {
	json_t *o = json_object_get(a->jobs, id);
	return o ? (int)json_integer_value(json_object_get(o, "uid")) : -1;
}

size_t added_count(const struct added *a, int uid) {
	const char *id;
	json_t *o;
	size_t n = 0;
	json_object_foreach(a->jobs, id, o)
		n += json_integer_value(json_object_get(o, "uid")) == uid;
	return n;
}

int added_put(struct added *a, const char *id, json_t *job, int uid, char **cause) {
	json_t *o = json_pack("{s:O, s:i}", "job", job, "uid", uid);
	char *text = json_dumps(o, JSON_COMPACT);
	int r = store_put_def(a->st, id, text, cause);
	free(text);
	if (r == 0)
		json_object_set(a->jobs, id, o);
	json_decref(o);
	return r;
}

int added_remove(struct added *a, const char *id, char **cause) {
	if (store_put_def(a->st, id, NULL, cause) < 0)
		return -1;
	json_object_del(a->jobs, id);
	return 0;
}
