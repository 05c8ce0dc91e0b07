/*
 * mcpjob_jni.c - the JNI bridge under org.mcpjob.Engine
 * (platform/android/java/org/mcpjob/Engine.java).
 *
 * One native per mcpjob.h call, static, taking the engine's handle (a
 * jlong holding the mcpjob_t): the C side checks every handle, so a closed
 * Engine is refused by the engine itself, never a crash. A failure throws
 * org.mcpjob.McpJobException(code, message) with the engine's message.
 *
 * Events and log lines are delivered to the Engine's Listener on the thread
 * inside the engine call (the one in runDue(), runNow(), ...): that is a
 * Java thread, so the JNIEnv comes from GetEnv. The listener is held by a
 * global reference in a small per-engine context, which the Java object
 * owns (nativeListener field) and frees in close(). An exception thrown by
 * the listener is printed and cleared, so the engine call goes on.
 *
 * On Android, without a listener for logs, log lines go to logcat (tag
 * "mcpjob"). Built by the NDK from platform/android/CMakeLists.txt; on Linux
 * `make check` builds it as build/libmcpjob_jni.so over libmcpjob.so and
 * drives it from a JVM test (tests/embed/java/EngineTest.java).
 */
#include <jni.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __ANDROID__
#include <android/log.h>
#endif

#include "daemon/embed.h"

#define EXC_CLASS "org/mcpjob/McpJobException"
#define LISTENER_CLASS "org/mcpjob/Engine$Listener"

struct jni_listener {
	JavaVM *vm;
	jobject listener; /* global ref */
	jmethodID on_event, on_log;
};

static void throw_rc(JNIEnv *env, int rc, const char *msg) {
	jclass cls = (*env)->FindClass(env, EXC_CLASS);
	if (cls == NULL)
		return; /* NoClassDefFoundError is pending */
	jmethodID ctor = (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;)V");
	jstring jmsg = (*env)->NewStringUTF(env, msg ? msg : mcpjob_rc_name(rc));
	if (ctor == NULL || jmsg == NULL)
		return;
	jobject exc = (*env)->NewObject(env, cls, ctor, (jint)rc, jmsg);
	if (exc != NULL)
		(*env)->Throw(env, (jthrowable)exc);
}

/* Throw for @rc < 0 with @error (freed); returns @rc. */
static int check(JNIEnv *env, int rc, char *error) {
	if (rc < 0)
		throw_rc(env, rc, error);
	mcpjob_free(error);
	return rc;
}

/* A Java string as UTF-8, or NULL (with an exception pending) if @s is null. */
static const char *utf(JNIEnv *env, jstring s, const char *what) {
	if (s == NULL) {
		char msg[96];
		snprintf(msg, sizeof msg, "%s must not be null", what);
		throw_rc(env, MCPJOB_E_ARG, msg);
		return NULL;
	}
	return (*env)->GetStringUTFChars(env, s, NULL);
}

static void unutf(JNIEnv *env, jstring s, const char *c) {
	if (c)
		(*env)->ReleaseStringUTFChars(env, s, c);
}

/* A JSON result as a Java String (and the C string freed). */
static jstring json_result(JNIEnv *env, int rc, char *json, char *error) {
	jstring out = NULL;
	if (check(env, rc, error) >= 0 && json)
		out = (*env)->NewStringUTF(env, json);
	mcpjob_free(json);
	return out;
}

/* --- callbacks ------------------------------------------------------------------ */

static JNIEnv *env_of(struct jni_listener *l) {
	JNIEnv *env = NULL;
	if ((*l->vm)->GetEnv(l->vm, (void **)&env, JNI_VERSION_1_6) != JNI_OK)
		return NULL; /* not a Java thread: cannot happen, engine calls come from Java */
	return env;
}

static jstring opt_string(JNIEnv *env, const char *s) {
	return s ? (*env)->NewStringUTF(env, s) : NULL;
}

static void after_call(JNIEnv *env) {
	if ((*env)->ExceptionCheck(env)) {
		(*env)->ExceptionDescribe(env); /* the listener threw: say so, go on */
		(*env)->ExceptionClear(env);
	}
}

static void on_event(void *user, const char *type, const char *job, const char *json) {
	struct jni_listener *l = user;
	JNIEnv *env = env_of(l);
	if (env == NULL || (*env)->PushLocalFrame(env, 8) < 0)
		return;
	(*env)->CallVoidMethod(env, l->listener, l->on_event, opt_string(env, type),
	                       opt_string(env, job), opt_string(env, json));
	after_call(env);
	(*env)->PopLocalFrame(env, NULL);
}

static void on_log(void *user, int level, const char *job, const char *message) {
	struct jni_listener *l = user;
	JNIEnv *env = env_of(l);
	if (env == NULL || (*env)->PushLocalFrame(env, 8) < 0)
		return;
	(*env)->CallVoidMethod(env, l->listener, l->on_log, (jint)level, opt_string(env, job),
	                       opt_string(env, message));
	after_call(env);
	(*env)->PopLocalFrame(env, NULL);
}

#ifdef __ANDROID__
static void to_logcat(void *user, int level, const char *job, const char *message) {
	int prio = level <= MCPJOB_LOG_ERROR     ? ANDROID_LOG_ERROR
	           : level == MCPJOB_LOG_WARNING ? ANDROID_LOG_WARN
	           : level == MCPJOB_LOG_DEBUG   ? ANDROID_LOG_DEBUG
	                                         : ANDROID_LOG_INFO;
	(void)user;
	__android_log_print(prio, "mcpjob", "%s%s%s", job ? job : "", job ? ": " : "", message);
}
#endif

/* --- natives ---------------------------------------------------------------------- */

#define ENGINE(name) Java_org_mcpjob_Engine_##name

JNIEXPORT jlong JNICALL ENGINE(nativeOpen)(JNIEnv *env, jclass cls, jstring config,
                                           jboolean is_json, jstring state_dir);
JNIEXPORT void JNICALL ENGINE(nativeClose)(JNIEnv *env, jclass cls, jlong h, jlong listener);
JNIEXPORT jlong JNICALL ENGINE(nativeSetListener)(JNIEnv *env, jclass cls, jlong h,
                                                  jobject listener, jlong old);
JNIEXPORT jint JNICALL ENGINE(nativeRunDue)(JNIEnv *env, jclass cls, jlong h, jlong budget_ms);
JNIEXPORT void JNICALL ENGINE(nativeExpire)(JNIEnv *env, jclass cls, jlong h);
JNIEXPORT jlong JNICALL ENGINE(nativeNextDue)(JNIEnv *env, jclass cls, jlong h);
JNIEXPORT void JNICALL ENGINE(nativeSetDevice)(JNIEnv *env, jclass cls, jlong h, jstring key,
                                               jstring value);
JNIEXPORT jstring JNICALL ENGINE(nativeDevice)(JNIEnv *env, jclass cls, jlong h);
JNIEXPORT jstring JNICALL ENGINE(nativeJobs)(JNIEnv *env, jclass cls, jlong h);
JNIEXPORT jstring JNICALL ENGINE(nativeJobCall)(JNIEnv *env, jclass cls, jlong h, jint what,
                                                jstring job, jint arg);
JNIEXPORT jstring JNICALL ENGINE(nativeVersion)(JNIEnv *env, jclass cls);

JNIEXPORT jlong JNICALL ENGINE(nativeOpen)(JNIEnv *env, jclass cls, jstring config,
                                           jboolean is_json, jstring state_dir) {
	(void)cls;
	const char *c = utf(env, config, is_json ? "the configuration" : "the configuration path");
	const char *s = c ? utf(env, state_dir, "the state directory") : NULL;
	mcpjob_t h = 0;
	if (c && s) {
		char *error = NULL;
		int rc = is_json ? mcpjob_engine_open_json(c, s, &h, &error)
		                 : mcpjob_engine_open(c, s, &h, &error);
		check(env, rc, error);
#ifdef __ANDROID__
		if (rc == MCPJOB_OK)
			mcpjob_engine_set_log_callback(h, to_logcat, NULL, MCPJOB_LOG_INFO);
#endif
	}
	unutf(env, config, c);
	unutf(env, state_dir, s);
	return (jlong)h;
}

static void listener_free(JNIEnv *env, jlong p) {
	struct jni_listener *l = (struct jni_listener *)(intptr_t)p;
	if (l == NULL)
		return;
	(*env)->DeleteGlobalRef(env, l->listener);
	free(l);
}

JNIEXPORT void JNICALL ENGINE(nativeClose)(JNIEnv *env, jclass cls, jlong h, jlong listener) {
	(void)cls;
	int rc = mcpjob_engine_close((mcpjob_t)h);
	if (rc == MCPJOB_OK)
		listener_free(env, listener); /* no callback can come any more */
	else
		throw_rc(env, rc, rc == MCPJOB_E_BUSY ? "the engine is busy on another thread: "
		         "expire() it and let runDue() return before close()" : NULL);
}

JNIEXPORT jlong JNICALL ENGINE(nativeSetListener)(JNIEnv *env, jclass cls, jlong h,
                                                  jobject listener, jlong old) {
	(void)cls;
	struct jni_listener *l = NULL;
	if (listener != NULL) {
		jclass lc = (*env)->FindClass(env, LISTENER_CLASS);
		if (lc == NULL)
			return old;
		l = calloc(1, sizeof *l);
		if (l == NULL) {
			throw_rc(env, MCPJOB_E_FAILED, "out of memory");
			return old;
		}
		(*env)->GetJavaVM(env, &l->vm);
		l->on_event = (*env)->GetMethodID(env, lc, "onEvent",
		                                  "(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;)V");
		l->on_log = (*env)->GetMethodID(env, lc, "onLog", "(ILjava/lang/String;Ljava/lang/String;)V");
		if (l->on_event == NULL || l->on_log == NULL) {
			free(l);
			return old;
		}
		l->listener = (*env)->NewGlobalRef(env, listener);
	}
	int rc = mcpjob_engine_set_event_callback((mcpjob_t)h, l ? on_event : NULL, l);
	if (rc == MCPJOB_OK)
		rc = mcpjob_engine_set_log_callback((mcpjob_t)h, l ? on_log : NULL, l, MCPJOB_LOG_INFO);
	if (rc != MCPJOB_OK) {
		listener_free(env, (jlong)(intptr_t)l);
		throw_rc(env, rc, NULL);
		return old;
	}
	listener_free(env, old);
	return (jlong)(intptr_t)l;
}

JNIEXPORT jint JNICALL ENGINE(nativeRunDue)(JNIEnv *env, jclass cls, jlong h, jlong budget_ms) {
	(void)cls;
	char *error = NULL;
	return check(env, mcpjob_engine_run_due((mcpjob_t)h, (int64_t)budget_ms, &error), error);
}

JNIEXPORT void JNICALL ENGINE(nativeExpire)(JNIEnv *env, jclass cls, jlong h) {
	(void)cls;
	check(env, mcpjob_engine_expire((mcpjob_t)h), NULL);
}

JNIEXPORT jlong JNICALL ENGINE(nativeNextDue)(JNIEnv *env, jclass cls, jlong h) {
	(void)cls;
	char *error = NULL;
	int64_t due = 0;
	check(env, mcpjob_engine_next_due((mcpjob_t)h, &due, &error), error);
	return (jlong)due;
}

JNIEXPORT void JNICALL ENGINE(nativeSetDevice)(JNIEnv *env, jclass cls, jlong h, jstring key,
                                               jstring value) {
	(void)cls;
	const char *k = utf(env, key, "the key");
	const char *v = k ? utf(env, value, "the value") : NULL;
	if (k && v) {
		char *error = NULL;
		check(env, mcpjob_engine_set_device((mcpjob_t)h, k, v, &error), error);
	}
	unutf(env, key, k);
	unutf(env, value, v);
}

JNIEXPORT jstring JNICALL ENGINE(nativeDevice)(JNIEnv *env, jclass cls, jlong h) {
	(void)cls;
	char *json = NULL, *error = NULL;
	int rc = mcpjob_engine_device((mcpjob_t)h, &json, &error);
	return json_result(env, rc, json, error);
}

JNIEXPORT jstring JNICALL ENGINE(nativeJobs)(JNIEnv *env, jclass cls, jlong h) {
	(void)cls;
	char *json = NULL, *error = NULL;
	int rc = mcpjob_jobs_list((mcpjob_t)h, &json, &error);
	return json_result(env, rc, json, error);
}

/* The per-job calls; @what matches Engine.java's constants. */
enum { CALL_STATUS, CALL_HISTORY, CALL_ENABLE, CALL_DISABLE, CALL_RUN, CALL_CANCEL };

JNIEXPORT jstring JNICALL ENGINE(nativeJobCall)(JNIEnv *env, jclass cls, jlong h, jint what,
                                                jstring job, jint arg) {
	(void)cls;
	const char *id = utf(env, job, "the job id");
	if (id == NULL)
		return NULL;
	char *json = NULL, *error = NULL;
	mcpjob_t e = (mcpjob_t)h;
	int rc;
	switch (what) {
	case CALL_STATUS: rc = mcpjob_job_status(e, id, &json, &error); break;
	case CALL_HISTORY: rc = mcpjob_job_history(e, id, arg, 0, &json, &error); break;
	case CALL_ENABLE: rc = mcpjob_job_enable(e, id, &json, &error); break;
	case CALL_DISABLE: rc = mcpjob_job_disable(e, id, &json, &error); break;
	case CALL_RUN: rc = mcpjob_job_run(e, id, arg, &json, &error); break;
	case CALL_CANCEL: rc = mcpjob_job_cancel(e, id, &json, &error); break;
	default: rc = MCPJOB_E_ARG; break;
	}
	unutf(env, job, id);
	return json_result(env, rc, json, error);
}

JNIEXPORT jstring JNICALL ENGINE(nativeVersion)(JNIEnv *env, jclass cls) {
	(void)cls;
	return (*env)->NewStringUTF(env, mcpjob_version());
}
