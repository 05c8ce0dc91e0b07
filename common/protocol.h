/*
 * protocol.h - the control protocol's names and numbers, shared by mcpjobd,
 * mcpjobctl and documented in mcpjobd-protocol(7).
 *
 * JSON-RPC 2.0, one message per line, over a Unix stream socket.
 * Bump MCPJOB_PROTOCOL_VERSION when a method, a param, a result field or an
 * error code changes meaning or goes away (adding optional fields does not).
 */
#ifndef MCPJOB_PROTOCOL_H
#define MCPJOB_PROTOCOL_H

#define MCPJOB_PROTOCOL_VERSION 1

/* job.history "limit": at most this many runs per request; mcpjobctl's -n
 * default. */
#define MCPJOB_HISTORY_MAX     1000
#define MCPJOB_HISTORY_DEFAULT 20

/* Longest request line the daemon reads; longer ones close the connection. */
#define MCPJOB_MAX_LINE (1024 * 1024)

#define RPC_M_HELLO            "daemon.hello"
#define RPC_M_RELOAD           "daemon.reload"
#define RPC_M_JOBS_LIST        "jobs.list"
#define RPC_M_JOB_STATUS       "job.status"
#define RPC_M_JOB_ENABLE       "job.enable"
#define RPC_M_JOB_DISABLE      "job.disable"
#define RPC_M_JOB_RUN          "job.run"
#define RPC_M_JOB_CANCEL       "job.cancel"
#define RPC_M_JOB_HISTORY      "job.history"
#define RPC_M_JOB_ADD          "job.add"
#define RPC_M_JOB_UPDATE       "job.update"
#define RPC_M_JOB_REMOVE       "job.remove"
#define RPC_M_EVENTS_SUBSCRIBE "events.subscribe"
#define RPC_M_DEVICE_STATUS    "device.status"
#define RPC_M_DEVICE_SET       "device.set"
#define RPC_M_METRICS          "daemon.metrics" /* Prometheus text (daemon/metrics.h) */
#define RPC_M_AUTH_LOGIN       "auth.login"     /* OAuth: start a person's login */
#define RPC_M_AUTH_COMPLETE    "auth.complete"  /* ... finish it (pasted redirect) or wait */
#define RPC_M_AUTH_STATUS      "auth.status"
#define RPC_M_AUTH_LOGOUT      "auth.logout"
/* Notification the daemon sends to subscribers. */
#define RPC_M_EVENT            "event"

/* Event kinds (params.type of an "event" notification). */
#define EVENT_JOB_STATE      "job.state"
#define EVENT_RUN_STARTED    "run.started"
#define EVENT_RUN_PROGRESS   "run.progress"
#define EVENT_RUN_FINISHED   "run.finished"
#define EVENT_DEVICE_CHANGED "device.changed"
#define EVENT_NOTIFICATION   "notification" /* a job's "notify" (daemon/notify.h) */
#define EVENT_STORE_PRUNED   "store.pruned"
#define EVENT_AUTH_AUTHORIZED "auth.authorized" /* a login saved a grant */
#define EVENT_AUTH_FAILED     "auth.failed"     /* a login ended without one */
#define EVENT_AUTH_REVOKED    "auth.revoked"    /* the authorization server refused the grant */
#define EVENT_AUTH_LOGGED_OUT "auth.logged_out" /* auth.logout removed it */

/* JSON-RPC 2.0's own codes. */
#define RPC_E_PARSE            (-32700)
#define RPC_E_INVALID_REQUEST  (-32600)
#define RPC_E_METHOD_NOT_FOUND (-32601)
#define RPC_E_INVALID_PARAMS   (-32602)
#define RPC_E_INTERNAL         (-32603)

/* Application range, -32001 .. -32099 ("server error" range of JSON-RPC). */
#define RPC_E_NO_SUCH_JOB       (-32001) /* data: {"job": id} */
#define RPC_E_ALREADY_RUNNING   (-32002) /* data: {"job": id, "run_id": n} */
#define RPC_E_PERMISSION_DENIED (-32003) /* data: {"method": m, "group": g} */
#define RPC_E_NOT_RUNNING       (-32004) /* job.cancel on an idle job */
#define RPC_E_CONFIG_INVALID    (-32005) /* daemon.reload refused; data: {"errors": [...]} */
#define RPC_E_NOT_SUPPORTED     (-32006) /* e.g. device.set off the sim platform */
#define RPC_E_TOO_MANY_CONNS    (-32007) /* per-uid connection cap reached */
#define RPC_E_LINE_TOO_LONG     (-32008) /* request over MCPJOB_MAX_LINE; connection closed */
#define RPC_E_SHUTTING_DOWN     (-32009) /* daemon is stopping */
#define RPC_E_VERSION_MISMATCH  (-32010) /* daemon.hello with an unsupported protocol */
#define RPC_E_JOB_EXISTS        (-32011) /* job.add of an added job's id without if_exists */
#define RPC_E_QUOTA             (-32012) /* job.add past max_jobs_per_uid */
#define RPC_E_AUTH_FAILED       (-32013) /* auth.*: the login failed or is not in progress;
                                            data: {"server": name} */
#define RPC_E_NO_SUCH_SERVER    (-32014) /* auth.*: no http/sse server of that name */

#endif
