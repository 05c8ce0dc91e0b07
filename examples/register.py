#!/usr/bin/env python3
"""An app registers its own periodic job with mcpjobd, as WorkManager's
enqueueUniquePeriodicWork does - the control protocol from Python's standard
library alone (see mcpjobd-protocol(7), job.add and job.remove).

    register.py schedule ID INTERVAL PROGRAM [ARG...]   add (or keep) the job
    register.py cancel ID                                remove it

The job runs as you, survives restarts of mcpjobd, and waits for a network
connection. SOCKET comes from $MCPJOBD_SOCKET, else /run/mcpjobd/control.sock.
Exits 0 on success, 1 when the daemon refused (its reasons are printed), 2 when
it cannot be reached.
"""
import json
import os
import socket
import sys


def request(method, params):
    path = os.environ.get("MCPJOBD_SOCKET", "/run/mcpjobd/control.sock")
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
    except OSError as e:
        print("cannot reach mcpjobd at %s: %s (is it running? set MCPJOBD_SOCKET)" %
              (path, e.strerror), file=sys.stderr)
        sys.exit(2)
    with s, s.makefile("r", encoding="utf-8") as lines:
        s.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                               "params": params}) + "\n").encode())
        for line in lines:
            msg = json.loads(line)
            if msg.get("id") != 1:
                continue
            if "error" in msg:
                print("%s: %s" % (method, msg["error"]["message"]), file=sys.stderr)
                for problem in msg["error"].get("data", {}).get("errors", []):
                    print("  " + problem, file=sys.stderr)
                sys.exit(1)
            return msg["result"]
    print("mcpjobd closed the connection", file=sys.stderr)
    sys.exit(2)


def schedule_job(job_id, interval, argv):
    """The example app's scheduleJob(job): one unique periodic job."""
    job = {"id": job_id, "interval": interval, "constraints": {"network": "connected"},
           "retry": {"max_attempts": 5, "backoff": "exponential", "initial": "30s"},
           "action": {"exec": {"argv": argv}}}
    return request("job.add", {"job": job, "if_exists": "keep"})


def cancel_job(job_id):
    """The example app's cancelJob(id)."""
    return request("job.remove", {"job": job_id})


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "schedule":
        r = schedule_job(sys.argv[2], sys.argv[3], sys.argv[4:])
        print("%s: %s, next run %s" % (r["job"], r["result"], r.get("status", {}).get("next_run")))
    elif len(sys.argv) == 3 and sys.argv[1] == "cancel":
        print("%s: %s" % (sys.argv[2], cancel_job(sys.argv[2])["result"]))
    else:
        sys.exit(__doc__)
