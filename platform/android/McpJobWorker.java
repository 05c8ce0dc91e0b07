// McpJobWorker - a WorkManager Worker that runs mcpjob's due jobs.
//
// A sample for an Android app (androidx.work); it cannot be compiled on the
// build machine (no Android SDK) - the Engine class it calls is compiled and
// driven by the JVM test in make check (tests/embed/java/EngineTest.java).
package org.mcpjob.sample;

import android.content.Context;
import androidx.annotation.NonNull;
import androidx.work.OneTimeWorkRequest;
import androidx.work.WorkManager;
import androidx.work.Worker;
import androidx.work.WorkerParameters;
import java.io.File;
import java.util.concurrent.TimeUnit;
import org.mcpjob.Engine;
import org.mcpjob.McpJobException;

public final class McpJobWorker extends Worker {
    private volatile Engine engine;

    public McpJobWorker(@NonNull Context ctx, @NonNull WorkerParameters params) {
        super(ctx, params);
    }

    @NonNull
    @Override
    public Result doWork() {
        Context ctx = getApplicationContext();
        try (Engine e = Engine.open(new File(ctx.getFilesDir(), "mcpjobd.json").getPath(),
                                    new File(ctx.getNoBackupFilesDir(), "mcpjob").getPath())) {
            engine = e;
            e.runDue(9 * 60 * 1000L);             // WorkManager stops a worker after 10 min
            long next = e.nextDue();
            engine = null;
            if (next > 0) {
                long delay = Math.max(0, next - System.currentTimeMillis());
                WorkManager.getInstance(ctx).enqueue(new OneTimeWorkRequest.Builder(McpJobWorker.class)
                        .setInitialDelay(delay, TimeUnit.MILLISECONDS).build());
            }
            return Result.success();
        } catch (McpJobException ex) {            // e.g. a config error: ex.errors() has the key paths
            return Result.failure();
        }
    }

    @Override
    public void onStopped() {                     // any thread: runDue() returns, runs are "cancelled"
        Engine e = engine;
        if (e != null)
            e.expire();
    }
}
