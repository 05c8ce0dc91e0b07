#!/usr/bin/env python3
"""A scriptable MCP stdio server for the unit tests of daemon/mcp*.c.

    mcp_test_server.py MODE [ARG]

Modes: ok, version (ARG: the protocolVersion to answer), exit-before-init,
die-mid-call, never-answer, garbage, huge-line, bad-utf8, server-requests,
progress-after-cancel, split-writes, pages (tools/list in pages of one),
pages-loop (tools/list always names the same next cursor), logging
(declares logging; tool "levels" tells the logging/setLevel levels seen),
init-error (answers initialize with an error), tasks (declares task-augmented
tools/call; tool "research" requires a task that completes after 3 polls,
"forever" one that never does, "task-log" tells the task methods seen),
ignore-stdin-close,
ignore-term (also ignores stdin closing).
Malformed replies by tool name: no-jsonrpc, string-id, bad-utf8-reply,
batch (a well-formed reply inside a one-element batch), roots (asks the
client roots/list; tells the uris, the roots capability and the
list_changed notifications seen), rpc-error-data
(an error with "data"), long-text (three text items, 100 kB in all).
Tools in every mode that answers: echo {message}, slow {ms, steps},
fail (isError), structured {size}, image, rpc-error, pid, hang (never
answers), crash (exits 5), cancelled (the notifications/cancelled seen).
"""
import base64
import json
import os
import signal
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "ok"
ARG = sys.argv[2] if len(sys.argv) > 2 else None
out = sys.stdout.buffer
TOOLS = [
    {"name": "echo", "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}},
                                     "required": ["message"]}},
    {"name": "slow", "inputSchema": {"type": "object"}},
    {"name": "fail", "inputSchema": {"type": "object"}},
    {"name": "structured", "inputSchema": {"type": "object"}},
    {"name": "image", "inputSchema": {"type": "object"}},
    {"name": "rpc-error", "inputSchema": {"type": "object"}},
]


def write(data: bytes):
    out.write(data)
    out.flush()


def send(msg):
    write(json.dumps(msg).encode() + b"\n")


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def readline():
    line = sys.stdin.buffer.readline()
    if not line:
        if MODE in ("ignore-stdin-close", "ignore-term"):
            while True:
                time.sleep(1)
        sys.exit(0)
    return json.loads(line)


def recv_reply(want_id):
    while True:
        m = readline()
        if "method" not in m and m.get("id") == want_id:
            return m


def text(t, **extra):
    r = {"content": [{"type": "text", "text": t}]}
    r.update(extra)
    return r


def call_tool(msg):
    p = msg["params"]
    name, args = p["name"], p.get("arguments", {})
    token = p.get("_meta", {}).get("progressToken")
    rid = msg["id"]
    if name == "echo":
        return text("Echo: %s" % args.get("message"), structuredContent={"args": args})
    if name == "slow":
        steps = int(args.get("steps", 3))
        for i in range(steps):
            time.sleep(args.get("ms", 100) / 1000.0 / max(steps, 1))
            if token is not None:
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": token, "progress": i + 1, "total": steps,
                                 "message": "step %d" % (i + 1)}})
        return text("slow done")
    if name == "pid":
        return text(str(os.getpid()))
    if name == "cancelled":
        return text(",".join(CANCELS) or "none")
    if name == "crash":
        log("crash tool called")
        os._exit(5)
    if name == "fail":
        return text("MCP error -32602: bad thing\nsecond line", isError=True)
    if name == "structured":
        return text("big", structuredContent={"blob": "x" * int(args.get("size", 10))})
    if name == "image":
        return {"content": [{"type": "text", "text": "here"},
                            {"type": "image", "mimeType": "image/png",
                             "data": base64.b64encode(b"\0" * 12345).decode()},
                            {"type": "hologram", "data": 1}]}
    if name == "rpc-error":
        return None
    return text("MCP error -32602: Tool %s not found" % name, isError=True)


def server_requests():
    """Ask the client things before answering; return what it answered."""
    answers = []
    for i, method in enumerate(["ping", "roots/list", "sampling/createMessage", "elicitation/create"]):
        rid = [0, "req-str", 7, "z"][i]
        send({"jsonrpc": "2.0", "id": rid, "method": method, "params": {}})
        r = recv_reply(rid)
        if "result" in r:
            answers.append("%s:ok" % method)
        else:
            answers.append("%s:%d" % (method, r["error"]["code"]))
    return " ".join(answers)


def main():
    if MODE == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log("test server %s started pid %d" % (MODE, os.getpid()))
    if MODE == "exit-before-init":
        log("fatal: cannot open the database")
        sys.exit(3)
    init = readline()
    CAPS.update(init["params"].get("capabilities", {}))
    if MODE == "never-answer":
        while True:
            readline()
    version = ARG if MODE == "version" else init["params"]["protocolVersion"]
    if MODE == "init-error":
        send({"jsonrpc": "2.0", "id": init["id"], "error": {"code": -32602, "message": "no"}})
        while True:
            readline()
    caps = {"tools": {"listChanged": True}}
    if MODE == "logging":
        caps["logging"] = {}
    if MODE == "tasks":
        caps["tasks"] = {"cancel": {}, "requests": {"tools": {"call": {}}}}
    send({"jsonrpc": "2.0", "id": init["id"], "result": {
        "protocolVersion": version, "capabilities": caps,
        "serverInfo": {"name": "test", "version": "1"}, "unknownField": [1, 2]}})
    while True:
        m = readline()
        method = m.get("method")
        if method == "notifications/initialized":
            send({"jsonrpc": "2.0", "method": "notifications/message",
                  "params": {"level": "info", "data": "hello from the test server"}})
            continue
        if method == "notifications/cancelled":
            log("got cancel for %s: %s" % (m["params"]["requestId"], m["params"].get("reason")))
            CANCELS.append("%s:%s" % (m["params"]["requestId"], m["params"].get("reason")))
            if MODE == "progress-after-cancel":
                tok = PENDING.get(m["params"]["requestId"])
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": tok, "progress": 99}})
                send({"jsonrpc": "2.0", "id": m["params"]["requestId"], "result": text("late")})
            continue
        if method == "notifications/roots/list_changed":
            ROOTS_CHANGED.append(1)
            continue
        if "id" not in m:
            continue
        if method == "logging/setLevel":
            LEVELS.append(m["params"]["level"])
            send({"jsonrpc": "2.0", "id": m["id"], "result": {}})
            continue
        if method in ("tasks/get", "tasks/result", "tasks/cancel"):
            tid = m["params"]["taskId"]
            TASK_LOG.append("%s:%s" % (method.split("/")[1], tid))
            t = TASKS.get(tid)
            if t is None:  # as after a restart of the server: its tasks are gone
                send({"jsonrpc": "2.0", "id": m["id"], "error": {
                    "code": -32602, "message": "Failed to retrieve task: Task not found"}})
                continue
            if method == "tasks/cancel":
                t["status"] = "cancelled"
            elif method == "tasks/get" and t["name"] == "research":
                t["polls"] += 1
                if t["polls"] >= 3:
                    t["status"] = "completed"
            if method == "tasks/result":
                send({"jsonrpc": "2.0", "id": m["id"],
                      "result": text("research done after %d polls" % t["polls"])})
            else:
                send({"jsonrpc": "2.0", "id": m["id"], "result": {
                    "taskId": tid, "status": t["status"], "pollInterval": 100,
                    "createdAt": "2025-11-25T10:30:00Z", "lastUpdatedAt": "2025-11-25T10:30:00Z",
                    "ttl": None}})
            continue
        if method == "tools/list":
            if MODE == "tasks":
                send({"jsonrpc": "2.0", "id": m["id"], "result": {"tools": TOOLS + [
                    {"name": "research", "inputSchema": {"type": "object"},
                     "execution": {"taskSupport": "required"}},
                    {"name": "forever", "inputSchema": {"type": "object"},
                     "execution": {"taskSupport": "optional"}}]}})
                continue
            if MODE == "pages-loop":
                LISTS.append(1)
                send({"jsonrpc": "2.0", "id": m["id"],
                      "result": {"tools": TOOLS[:1], "nextCursor": "again"}})
                continue
            if MODE == "pages":
                i = int(m.get("params", {}).get("cursor", "0"))
                r = {"tools": TOOLS[i:i + 1]}
                if i + 1 < len(TOOLS):
                    r["nextCursor"] = str(i + 1)
                send({"jsonrpc": "2.0", "id": m["id"], "result": r})
            else:
                send({"jsonrpc": "2.0", "id": m["id"], "result": {"tools": TOOLS}})
            continue
        if method != "tools/call":
            send({"jsonrpc": "2.0", "id": m["id"], "error": {"code": -32601, "message": "nope"}})
            continue
        if MODE == "die-mid-call":
            log("crashing now")
            os._exit(5)
        if m["params"]["name"] == "hang":
            PENDING[m["id"]] = m["params"].get("_meta", {}).get("progressToken")
            continue
        if MODE == "garbage":
            write(b"this is not json\n{\"half\": \n[1,2,3]\n\n")
        if MODE == "bad-utf8":
            write(b'{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"\xff\xfe"}}\n')
        if MODE == "huge-line" and m["params"]["name"] == "echo":
            chunk = b"x" * (1024 * 1024)
            write(b'{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"')
            for _ in range(10):
                write(chunk)
            write(b'"}}\n')
        if MODE == "server-requests":
            send({"jsonrpc": "2.0", "id": m["id"], "result": text(server_requests())})
            continue
        name = m["params"]["name"]
        if MODE == "tasks" and name in ("research", "forever"):
            if "task" not in m["params"]:
                send({"jsonrpc": "2.0", "id": m["id"],
                      "error": {"code": -32601, "message": "%s must be called as a task" % name}})
                continue
            tid = "task-%d" % (len(TASKS) + 1)
            TASKS[tid] = {"name": name, "status": "working", "polls": 0}
            send({"jsonrpc": "2.0", "id": m["id"], "result": {"task": {
                "taskId": tid, "status": "working", "pollInterval": 100, "ttl": m["params"]["task"].get("ttl"),
                "createdAt": "2025-11-25T10:30:00Z", "lastUpdatedAt": "2025-11-25T10:30:00Z"}}})
            continue
        if MODE == "tasks" and name == "start-research":
            # A task as if created by an earlier client (a daemon before its restart).
            tid = "task-%d" % (len(TASKS) + 1)
            TASKS[tid] = {"name": "research", "status": "working", "polls": 0}
            send({"jsonrpc": "2.0", "id": m["id"], "result": text(tid)})
            continue
        if name == "task-log":
            send({"jsonrpc": "2.0", "id": m["id"], "result": text(" ".join(TASK_LOG))})
            continue
        if name in MALFORMED:
            write(MALFORMED[name](m["id"]))
            continue
        if name == "roots":
            send({"jsonrpc": "2.0", "id": "roots-1", "method": "roots/list"})
            r = recv_reply("roots-1")
            uris = ",".join(x["uri"] for x in r.get("result", {}).get("roots", [])) \
                if "result" in r else "error %d" % r["error"]["code"]
            send({"jsonrpc": "2.0", "id": m["id"], "result": text(
                "%s cap:%s changed:%d" % (uris, json.dumps(CAPS.get("roots")), len(ROOTS_CHANGED)))})
            continue
        if name == "levels":
            send({"jsonrpc": "2.0", "id": m["id"],
                  "result": text("setLevel:" + ",".join(LEVELS) + " lists:%d" % len(LISTS))})
            continue
        r = call_tool(m)
        if r is None:
            reply = {"jsonrpc": "2.0", "id": m["id"], "error": {"code": -32602, "message": "bad args"}}
        else:
            reply = {"jsonrpc": "2.0", "id": m["id"], "result": r, "extra": True}
        data = json.dumps(reply).encode() + b"\n"
        if MODE == "split-writes" and SPLIT.append(1) is None and len(SPLIT) % 2 == 0:
            # Several messages in one write.
            note = json.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}).encode() + b"\n"
            write(note + note + data)
            continue
        if MODE == "split-writes":
            # A notification and the reply split across writes, then two in one.
            note = json.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}).encode() + b"\n"
            both = note + data
            for i in range(0, len(both), 7):
                write(both[i:i + 7])
                time.sleep(0.001)
            continue
        write(data)


PENDING = {}
CANCELS = []
SPLIT = []
LEVELS = []
TASKS = {}
TASK_LOG = []
ROOTS_CHANGED = []
CAPS = {}
LISTS = []
MALFORMED = {
    "no-jsonrpc": lambda i: json.dumps({"id": i, "result": text("x")}).encode() + b"\n",
    "string-id": lambda i: json.dumps({"jsonrpc": "2.0", "id": str(i),
                                       "result": text("x")}).encode() + b"\n",
    "bad-utf8-reply": lambda i: b'{"jsonrpc":"2.0","id":%d,"result":{"content":'
                                b'[{"type":"text","text":"\xff\xfe"}]}}\n' % i,
    "batch": lambda i: json.dumps([{"jsonrpc": "2.0", "id": i,
                                    "result": text("from a batch")}]).encode() + b"\n",
    "rpc-error-data": lambda i: json.dumps({"jsonrpc": "2.0", "id": i, "error": {
        "code": -32001, "message": "quota", "data": {"retry_after": 30, "pad": "p" * 9000}}}
    ).encode() + b"\n",
    "long-text": lambda i: json.dumps({"jsonrpc": "2.0", "id": i, "result": {"content": [
        {"type": "text", "text": "first " + "a" * 50000},
        {"type": "image", "mimeType": "image/png", "data": "AAAA"},
        {"type": "text", "text": "second " + "b" * 50000 + " end"}]}}).encode() + b"\n",
}
main()
