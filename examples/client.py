#!/usr/bin/env python3
"""Run one mcpjobd job and watch it: the control protocol from Python's
standard library alone (see mcpjobd-protocol(7)).

    client.py JOB [SOCKET]      (SOCKET defaults to $MCPJOBD_SOCKET, then
                                 /run/mcpjobd/control.sock)
Prints the events seen while the job runs, then the run record; exits 0 when
the run succeeded, 1 when it did not or mcpjobd cannot be reached, 2 on a
protocol error.
"""
import json, os, socket, sys

job = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
path = sys.argv[2] if len(sys.argv) > 2 else os.environ.get(
    "MCPJOBD_SOCKET", "/run/mcpjobd/control.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(path)
except OSError as e:
    # The same sentence mcpjobctl prints: what failed, where, and what to do.
    print("client.py: cannot connect to %s: %s (is mcpjobd running? the socket is "
          "given as the second argument or $MCPJOBD_SOCKET)" % (path, e.strerror or e),
          file=sys.stderr)
    sys.exit(1)
lines = sock.makefile("r", encoding="utf-8")


def call(rid, method, params):
    """Send one request; print events until its response arrives."""
    sock.sendall((json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                              "params": params}) + "\n").encode())
    for line in lines:
        msg = json.loads(line)
        if msg.get("method") == "event":
            ev = msg["params"]
            print("event", ev["type"], json.dumps({k: v for k, v in ev.items()
                                                   if k not in ("type", "run")}))
        elif msg.get("id") == rid:
            if "error" in msg:
                print("%s failed: %s" % (method, msg["error"]["message"]), file=sys.stderr)
                sys.exit(2)
            return msg["result"]
    sys.exit("mcpjobd closed the connection")


hello = call(1, "daemon.hello", {"client": "client.py", "protocol": 1})
print("connected to %s %s (%s access)" % (hello["name"], hello["version"], hello["access"]))
call(2, "events.subscribe", {"jobs": [job]})
run = call(3, "job.run", {"job": job, "wait": True})
print("run", json.dumps(run, indent=2))
sys.exit(0 if run["outcome"] == "success" else 1)
