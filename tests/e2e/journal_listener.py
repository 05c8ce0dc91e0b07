"""Run inside a private mount namespace (test_journal.py starts it with
unshare -m): put a tmpfs over /run/systemd, listen where sd_journal_send()
writes (/run/systemd/journal/socket, datagrams in the journal's native
protocol), start mcpjobd --log-target=journal, run a job, and print the
entries received as JSON lines on stdout."""
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon  # noqa: E402


def parse_native(data):
    """KEY=value lines; a KEY\\n<le64 size><bytes>\\n field for binary values."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode(errors="replace")
            i = nl + 1
        else:
            size = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            fields[line.decode()] = data[nl + 9:nl + 9 + size].decode(errors="replace")
            i = nl + 9 + size + 1
    return fields


def main():
    tmp = sys.argv[1]
    base = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", base], check=True)
    os.makedirs("/run/systemd/journal", exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("/run/systemd/journal/socket")
    s.settimeout(0.2)
    d = Daemon({"default_user": "root",
                "jobs": [{"id": "sync-data", "interval": "24h", "initial_delay": "24h",
                          "action": {"exec": {"argv": ["sh", "-c", "echo synced 3"]}}}]},
               args=["--log-target", "journal"], tmp=tmp)
    d.start()
    d.ctl("run", "sync-data", "--wait", check=True)
    d.stop()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            print(json.dumps(parse_native(s.recv(65536))), flush=True)
        except socket.timeout:
            break


main()
