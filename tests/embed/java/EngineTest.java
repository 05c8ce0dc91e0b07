import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.mcpjob.Engine;
import org.mcpjob.McpJobException;

/**
 * The JVM test of org.mcpjob.Engine over libmcpjob_jni.so and libmcpjob.so,
 * run by make check (tests/embed/run-jvm-test.sh) with -Xcheck:jni: open,
 * list, run now, history, a progress event, expire from a second thread
 * while a run is going, a config error as an exception with the key path,
 * a closed handle refused.
 *
 * Usage: java -Djava.library.path=BUILD EngineTest MCP_FAULT TMPDIR
 */
public class EngineTest {
    private static int passed;

    private static void check(boolean ok, String what) {
        if (!ok)
            throw new AssertionError("FAILED: " + what);
    }

    private static void pass(String name) {
        passed++;
        System.out.println("ok " + passed + " - " + name);
    }

    private static McpJobException expectThrows(Runnable r) {
        try {
            r.run();
        } catch (McpJobException e) {
            return e;
        }
        throw new AssertionError("FAILED: no McpJobException");
    }

    static final class Recorder implements Engine.Listener {
        final List<String> events = new CopyOnWriteArrayList<>();
        final List<String> logs = new CopyOnWriteArrayList<>();
        volatile String firstProgress;

        @Override
        public void onEvent(String type, String job, String json) {
            events.add(type + " " + job);
            if (type.equals("run.progress") && firstProgress == null)
                firstProgress = json;
        }

        @Override
        public void onLog(int level, String job, String message) {
            logs.add(level + " " + job + ": " + message);
        }

        boolean saw(String type, String job) {
            return events.contains(type + " " + job);
        }
    }

    public static void main(String[] args) throws Exception {
        String mcpFault = args[0];
        Path tmp = Paths.get(args[1]);
        Path state = tmp.resolve("state");
        Path cache = Files.createDirectories(tmp.resolve("cache"));
        Path config = tmp.resolve("mcpjobd.json");
        Files.write(config, ("{\"mcpServers\": {\"fault\": {\"command\": \"" + mcpFault
                + "\", \"args\": [\"--mode\", \"ok\"]}},\n"
                + " \"jobs\": [\n"
                + "  {\"id\": \"tidy\", \"interval\": \"1h\", \"action\": {\"cleanup\": {\"path\": \""
                + cache + "\", \"max_age\": \"7d\"}}},\n"
                + "  {\"id\": \"steps\", \"interval\": \"1h\", \"initial_delay\": \"1h\", \"action\": {\"mcp\":"
                + " {\"server\": \"fault\", \"tool\": \"slow\", \"arguments\": {\"seconds\": 0.4, \"steps\": 4}}}},\n"
                + "  {\"id\": \"sleeper\", \"interval\": \"1h\", \"initial_delay\": \"1h\","
                + " \"action\": {\"exec\": {\"argv\": [\"sleep\", \"60\"]}}}]}\n").getBytes("UTF-8"));

        McpJobException ce = expectThrows(() -> Engine.openJson(
                "{\"jobs\": [{\"id\": \"x\", \"interval\": \"15x\"}]}", state.toString()));
        check(ce.code() == McpJobException.CONFIG, "config error code, got " + ce.code());
        check(ce.errors().size() >= 2, "one entry per config error: " + ce.errors());
        check(ce.errors().get(0).startsWith("config: jobs[0] (x)"), "key path first: " + ce.errors());
        check(ce.getMessage().contains("15x"), "the bad value in the message: " + ce.getMessage());
        check(!ce.getMessage().contains("--"), "no daemon flags in: " + ce.getMessage());
        pass("a config error surfaces as McpJobException with the key path");

        Recorder rec = new Recorder();
        Engine engine = Engine.open(config.toString(), state.toString());
        engine.setListener(rec);
        String jobs = engine.jobs();
        for (String id : new String[] {"tidy", "steps", "sleeper"})
            check(jobs.contains("\"id\":\"" + id + "\""), "jobs() lists " + id + ": " + jobs);
        check(engine.status("tidy").contains("\"state\":\"scheduled\""), "status: " + engine.status("tidy"));
        pass("open and list the jobs");

        String started = engine.runNow("steps");
        check(started.contains("\"job\":\"steps\"") && started.contains("\"queued\":false"), "runNow: " + started);
        McpJobException twice = expectThrows(() -> engine.runNow("steps"));
        check(twice.code() == McpJobException.ALREADY_RUNNING, "a job never overlaps itself");
        int n = engine.runDue(20000); /* tidy is due too */
        check(n == 1, "runDue started tidy, got " + n);
        String hist = engine.history("steps", 5);
        check(hist.contains("\"outcome\":\"success\"") && hist.contains("\"trigger\":\"manual\""), "history: " + hist);
        check(engine.history("tidy", 5).contains("\"outcome\":\"success\""), "tidy ran: " + engine.history("tidy", 5));
        check(rec.saw("run.started", "steps") && rec.saw("run.finished", "steps"), "run events: " + rec.events);
        pass("run now, then history shows the run");

        check(rec.firstProgress != null && rec.firstProgress.contains("\"job\":\"steps\"")
                && rec.firstProgress.contains("\"progress\""), "a progress event: " + rec.firstProgress);
        check(!rec.logs.isEmpty(), "log lines reach the listener");
        pass("a progress event and log lines reach the listener");

        engine.runNow("sleeper");
        AtomicInteger busySeen = new AtomicInteger();
        AtomicReference<Throwable> threadError = new AtomicReference<>();
        Thread expirer = new Thread(() -> {
            try {
                for (int i = 0; i < 4000; i++) {
                    try {
                        engine.jobs();
                    } catch (McpJobException e) {
                        if (e.code() == McpJobException.BUSY) { /* runDue is inside */
                            busySeen.incrementAndGet();
                            break;
                        }
                        throw e;
                    }
                    Thread.sleep(5);
                }
                engine.expire();
            } catch (Throwable t) {
                threadError.set(t);
            }
        }, "expiration-handler");
        expirer.start();
        engine.runDue(120000);
        expirer.join();
        check(threadError.get() == null, "the second thread failed: " + threadError.get());
        check(busySeen.get() == 1, "the second thread was refused with BUSY while runDue ran");
        String sh = engine.history("sleeper", 1);
        check(sh.contains("\"outcome\":\"cancelled\"") && sh.contains("expired"), "expired run recorded: " + sh);
        pass("expire from a second thread while a run is going");

        check(engine.nextDue() > System.currentTimeMillis(), "nextDue in the future");
        engine.close();
        McpJobException closed = expectThrows(engine::jobs);
        check(closed.code() == McpJobException.HANDLE, "closed: code " + closed.code());
        check(closed.getMessage().contains("not open"), "closed: " + closed.getMessage());
        expectThrows(engine::expire);
        engine.close(); /* a second close does nothing */
        pass("a closed handle is refused");

        System.out.println("jvm: " + passed + " passed, Engine " + Engine.version());
    }
}
