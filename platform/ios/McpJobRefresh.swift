// McpJobRefresh.swift - mcpjob inside BGTaskScheduler (iOS 13+).
//
// A sample: it needs Xcode and the iOS SDK, so it is not compiled on the
// build machine. The C calls it makes are the ones tests/unit/test_embed.c
// and tests/unit/test_embed_hooks.c drive (run_due with a budget, expire
// from another thread, next_due), built as iOS builds them
// (make MCPJOB_NO_SPAWN=1 WITH_SYSTEMD=0): http MCP servers and cleanup only.
import BackgroundTasks
import MCPJob
import os

enum McpJobRefresh {
    static let identifier = "org.mcpjob.refresh"   // in Info.plist's BGTaskSchedulerPermittedIdentifiers

    static func register(configPath: String, stateDir: String) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            run(task as! BGAppRefreshTask, configPath: configPath, stateDir: stateDir)
        }
    }

    static func run(_ task: BGAppRefreshTask, configPath: String, stateDir: String) {
        var engine: mcpjob_t = 0
        var error: UnsafeMutablePointer<CChar>? = nil
        guard mcpjob_engine_open(configPath, stateDir, &engine, &error) == MCPJOB_OK.rawValue else {
            os_log("mcpjob: %{public}s", String(cString: error!))   // one config error per line
            mcpjob_free(error)
            task.setTaskCompleted(success: false)
            return
        }
        mcpjob_engine_set_log_callback(engine, { _, _, _, message in
            os_log("mcpjob: %{public}s", String(cString: message!))
        }, nil, Int32(MCPJOB_LOG_INFO.rawValue))
        // Any thread. After close the handle is stale: expire then returns
        // MCPJOB_E_HANDLE instead of touching freed memory.
        task.expirationHandler = { _ = mcpjob_engine_expire(engine) }
        DispatchQueue.global(qos: .utility).async {
            _ = mcpjob_engine_run_due(engine, 25_000, nil)   // an app refresh task gets ~30 s
            var next: Int64 = 0
            _ = mcpjob_engine_next_due(engine, &next, nil)
            _ = mcpjob_engine_close(engine)
            let request = BGAppRefreshTaskRequest(identifier: identifier)
            if next > 0 { request.earliestBeginDate = Date(timeIntervalSince1970: Double(next) / 1000) }
            try? BGTaskScheduler.shared.submit(request)
            task.setTaskCompleted(success: true)
        }
    }
}
