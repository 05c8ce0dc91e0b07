/*
 * mcpjob_jni.c - the Android bridge: WorkManager's Worker calls the engine.
 *
 * Java side (package org.mcpjob):
 *   final class Engine {
 *     static native long open(String config, String stateDir); // throws IllegalStateException
 *     static native int runDue(long handle, long budgetMs);    // blocks; in doWork()
 *     static native void expire(long handle);                  // from onStopped()
 *     static native long nextDue(long handle);                 // ms epoch, 0 = none
 *     static native void setDevice(long handle, String key, String value);
 *     static native void close(long handle);
 *   }
 * A CoroutineWorker's doWork() calls runDue(handle, 9 * 60 * 1000) (Work
 * Manager allows 10 minutes), onStopped() calls expire(handle), and the
 * app enqueues the next one-time work for nextDue(handle). See README.md
 * beside this file. Built by the Android NDK with the engine's sources; on
 * Linux `make check` compiles this file against a JDK's jni.h when one is
 * installed.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/embed.h"

static void throw_state(JNIEnv *env, const char *msg) {
	jclass cls = (*env)->FindClass(env, "java/lang/IllegalStateException");
	if (cls != NULL)
		(*env)->ThrowNew(env, cls, msg);
}

static struct mcpjob_engine *engine_of(jlong handle) {
	return (struct mcpjob_engine *)(intptr_t)handle;
}

JNIEXPORT jlong JNICALL Java_org_mcpjob_Engine_open(JNIEnv *env, jclass cls, jstring config,
                                                    jstring state_dir);
JNIEXPORT jint JNICALL Java_org_mcpjob_Engine_runDue(JNIEnv *env, jclass cls, jlong handle,
                                                     jlong budget_ms);
JNIEXPORT void JNICALL Java_org_mcpjob_Engine_expire(JNIEnv *env, jclass cls, jlong handle);
JNIEXPORT jlong JNICALL Java_org_mcpjob_Engine_nextDue(JNIEnv *env, jclass cls, jlong handle);
JNIEXPORT void JNICALL Java_org_mcpjob_Engine_setDevice(JNIEnv *env, jclass cls, jlong handle,
                                                        jstring key, jstring value);
JNIEXPORT void JNICALL Java_org_mcpjob_Engine_close(JNIEnv *env, jclass cls, jlong handle);

JNIEXPORT jlong JNICALL Java_org_mcpjob_Engine_open(JNIEnv *env, jclass cls, jstring config,
                                                    jstring state_dir) {
	(void)cls;
	const char *c = (*env)->GetStringUTFChars(env, config, NULL);
	const char *s = (*env)->GetStringUTFChars(env, state_dir, NULL);
	char *error = NULL;
	struct mcpjob_engine *m = c && s ? mcpjob_engine_open(c, s, &error) : NULL;
	if (c)
		(*env)->ReleaseStringUTFChars(env, config, c);
	if (s)
		(*env)->ReleaseStringUTFChars(env, state_dir, s);
	if (m == NULL) {
		throw_state(env, error ? error : "cannot open the mcpjob engine");
		free(error);
		return 0;
	}
	return (jlong)(intptr_t)m;
}

JNIEXPORT jint JNICALL Java_org_mcpjob_Engine_runDue(JNIEnv *env, jclass cls, jlong handle,
                                                     jlong budget_ms) {
	(void)env;
	(void)cls;
	return mcpjob_engine_run_due(engine_of(handle), (int64_t)budget_ms);
}

JNIEXPORT void JNICALL Java_org_mcpjob_Engine_expire(JNIEnv *env, jclass cls, jlong handle) {
	(void)env;
	(void)cls;
	mcpjob_engine_expire(engine_of(handle));
}

JNIEXPORT jlong JNICALL Java_org_mcpjob_Engine_nextDue(JNIEnv *env, jclass cls, jlong handle) {
	(void)env;
	(void)cls;
	return (jlong)mcpjob_engine_next_due(engine_of(handle));
}

JNIEXPORT void JNICALL Java_org_mcpjob_Engine_setDevice(JNIEnv *env, jclass cls, jlong handle,
                                                        jstring key, jstring value) {
	(void)cls;
	const char *k = (*env)->GetStringUTFChars(env, key, NULL);
	const char *v = (*env)->GetStringUTFChars(env, value, NULL);
	char *error = NULL;
	if (k && v && mcpjob_engine_set_device(engine_of(handle), k, v, &error) < 0)
		throw_state(env, error);
	free(error);
	if (k)
		(*env)->ReleaseStringUTFChars(env, key, k);
	if (v)
		(*env)->ReleaseStringUTFChars(env, value, v);
}

JNIEXPORT void JNICALL Java_org_mcpjob_Engine_close(JNIEnv *env, jclass cls, jlong handle) {
	(void)env;
	(void)cls;
	mcpjob_engine_close(engine_of(handle));
}
