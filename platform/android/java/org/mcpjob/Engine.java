package org.mcpjob;

/**
 * The mcpjob engine inside an app: the job screen (jobs, status, history,
 * enable, disable, runNow, cancel - JSON as mcpjobd's socket returns it,
 * see mcpjobd-protocol(7)) and the background hook (runDue within a
 * budget, expire from any thread, nextDue for the next wake-up).
 *
 * Threads: one thread at a time per Engine; a call while another thread
 * is inside it (in runDue) throws McpJobException with code BUSY at once.
 * expire() is the exception: call it from any thread, e.g. a Worker's
 * onStopped() while doWork() is in runDue(). Listener methods run on the
 * thread inside the engine, before its call returns.
 *
 * Every failure is a McpJobException carrying the engine's message; a
 * closed Engine is refused by the engine (code HANDLE).
 */
public final class Engine implements AutoCloseable {
    static {
        System.loadLibrary("mcpjob_jni");
    }

    /** Events and log lines; both run on the thread inside the engine. */
    public interface Listener {
        /**
         * @param type "run.started", "run.progress", "run.finished", "job.state", "device.changed"
         * @param job  the job id, or null for device events
         * @param json the event as the socket sends it ({"type", "time", "job", ...})
         */
        void onEvent(String type, String job, String json);

        /** @param level syslog's: 3 error, 4 warning, 5 notice, 6 info */
        default void onLog(int level, String job, String message) {
        }
    }

    /** runNow flag: wait for the job's constraints instead of bypassing them. */
    public static final int RUN_WHEN_ALLOWED = 1;

    private static final int STATUS = 0, HISTORY = 1, ENABLE = 2, DISABLE = 3, RUN = 4, CANCEL = 5;

    private final long handle;
    private long listener; /* the native listener context, owned here */
    private boolean closed;

    private Engine(long handle) {
        this.handle = handle;
    }

    /** Open on a configuration file (mcpjobd.json(5)) and a private state directory. */
    public static Engine open(String configPath, String stateDir) {
        return new Engine(nativeOpen(configPath, false, stateDir));
    }

    /** Open on a configuration held as a JSON string; its errors name it "config". */
    public static Engine openJson(String configJson, String stateDir) {
        return new Engine(nativeOpen(configJson, true, stateDir));
    }

    public static String version() {
        return nativeVersion();
    }

    /** Replace the listener (null: none; log lines then go to logcat on Android). */
    public void setListener(Listener l) {
        listener = nativeSetListener(handle, l, listener);
    }

    /** Run what is due within budgetMs; returns the number of runs started in this call. */
    public int runDue(long budgetMs) {
        return nativeRunDue(handle, budgetMs);
    }

    /** From any thread: stop the current runDue(); what still runs is recorded "cancelled". */
    public void expire() {
        nativeExpire(handle);
    }

    /** When the next job is due, in ms since the epoch; 0 if none. */
    public long nextDue() {
        return nativeNextDue(handle);
    }

    /** key: network (none|metered|unmetered), charging, battery_low, idle, storage_low. */
    public void setDevice(String key, String value) {
        nativeSetDevice(handle, key, value);
    }

    public String device() {
        return nativeDevice(handle);
    }

    /** {"jobs": [...]} as jobs.list returns it. */
    public String jobs() {
        return nativeJobs(handle);
    }

    public String status(String job) {
        return nativeJobCall(handle, STATUS, job, 0);
    }

    /** The newest {@code limit} runs (1..1000): {"job", "runs": [...]}. */
    public String history(String job, int limit) {
        return nativeJobCall(handle, HISTORY, job, limit);
    }

    public String enable(String job) {
        return nativeJobCall(handle, ENABLE, job, 0);
    }

    public String disable(String job) {
        return nativeJobCall(handle, DISABLE, job, 0);
    }

    /** Start a run now (it goes on while a thread is in runDue()): {"job", "run_id", "queued"}. */
    public String runNow(String job) {
        return nativeJobCall(handle, RUN, job, 0);
    }

    public String runNow(String job, int flags) {
        return nativeJobCall(handle, RUN, job, flags);
    }

    public String cancel(String job) {
        return nativeJobCall(handle, CANCEL, job, 0);
    }

    /**
     * Stop what runs (recorded "cancelled"), close the store; a second close
     * does nothing, every other call afterwards throws (HANDLE).
     */
    @Override
    public synchronized void close() {
        if (closed)
            return;
        nativeClose(handle, listener);
        listener = 0;
        closed = true;
    }

    private static native long nativeOpen(String config, boolean isJson, String stateDir);
    private static native void nativeClose(long handle, long listener);
    private static native long nativeSetListener(long handle, Listener l, long old);
    private static native int nativeRunDue(long handle, long budgetMs);
    private static native void nativeExpire(long handle);
    private static native long nativeNextDue(long handle);
    private static native void nativeSetDevice(long handle, String key, String value);
    private static native String nativeDevice(long handle);
    private static native String nativeJobs(long handle);
    private static native String nativeJobCall(long handle, int what, String job, int arg);
    private static native String nativeVersion();
}
