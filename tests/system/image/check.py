"""Drives pivox under the container's systemd and records what happened, then powers off.

Runs as root from pivox-check.service inside the booted container. Each step records
observations in /pivox-test/results.json and never asserts: tests/system/test_service.py
asserts on them and on the journal once the container has stopped. A failing step records
its error and the next steps still run.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import socket
import subprocess
import time
import traceback
from collections.abc import Callable
from typing import Any

TEST = "/pivox-test"
CONFIG = "/etc/pivox/pivox.toml"
with open(f"{TEST}/api_key") as _key:
    KEY = _key.read().strip()
SHOW = (
    "ActiveState",
    "SubState",
    "Result",
    "MainPID",
    "NRestarts",
    "StatusText",
    "ExecMainCode",
    "ExecMainStatus",
)

results: dict[str, Any] = {"started_at": time.monotonic()}


def sh(*cmd: str, timeout: float = 120) -> dict[str, Any]:
    """Run a command; its exit code and merged output."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        return {"cmd": " ".join(cmd), "rc": None, "out": f"timed out: {exc}"}
    return {"cmd": " ".join(cmd), "rc": done.returncode, "out": done.stdout + done.stderr}


def show(unit: str = "pivox.service") -> dict[str, str]:
    out = sh("systemctl", "show", unit, *(f"--property={p}" for p in SHOW))["out"]
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_for(predicate: Callable[[], Any], timeout: float) -> Any:
    """The first truthy value of `predicate` within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    return None


def pivox_journal(since_cursor: str | None = None) -> list[dict[str, Any]]:
    cmd = ["journalctl", "-u", "pivox.service", "-o", "json", "--no-pager"]
    if since_cursor:
        cmd.append(f"--after-cursor={since_cursor}")
    out = sh(*cmd)["out"]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def cursor() -> str:
    out = sh("journalctl", "-n", "1", "-o", "json", "--no-pager")["out"].strip()
    return json.loads(out.splitlines()[-1])["__CURSOR"] if out else ""


def write_config(extra: str = "") -> None:
    """The test config: the local server, debug logging (websockets logs its headers, which
    must reach the journal redacted), then `extra` (keys of [server], or more sections)."""
    with open(CONFIG, "w") as f:
        f.write('[log]\nlevel = "debug"\n[server]\nurl = "ws://127.0.0.1:8765/v1/realtime"\n'
                + extra)


def step(function: Callable[[], dict[str, Any]]) -> bool:
    """Run one step and record it; False when it raised."""
    start = time.monotonic()
    try:
        record = function()
    except Exception:
        record = {"error": traceback.format_exc()}
    record["seconds"] = round(time.monotonic() - start, 2)
    results[function.__name__] = record
    print(f"pivox-check: {function.__name__}: {json.dumps(record)[:2000]}", flush=True)
    return "error" not in record


def install() -> dict[str, Any]:
    first = sh(f"{TEST}/src/install.sh", "--wheelhouse", f"{TEST}/wheels", timeout=300)
    if first["rc"] != 0:
        raise RuntimeError(f"install.sh failed: {first['out']}")
    with open(CONFIG, "a") as f:
        f.write("# edited by the admin\n")
    again = sh(f"{TEST}/src/install.sh", "--wheelhouse", f"{TEST}/wheels", timeout=300)
    with open(CONFIG) as f:
        kept = "# edited by the admin" in f.read()
    return {
        "first": first,
        "again": again,
        "config_kept": kept,
        "enabled": sh("systemctl", "is-enabled", "pivox.service")["out"].strip(),
        "groups": sh("id", "-nG", "pivox")["out"].split(),
    }


def setup() -> dict[str, Any]:
    write_config()
    with open("/etc/pivox/api_key", "w") as f:
        f.write(KEY + "\n")
    os.chmod("/etc/pivox/api_key", 0o600)
    # PID 1 logs every sd_notify message it gets at debug level: READY=1, STATUS=, ...
    level = sh("systemd-analyze", "log-level", "debug")
    clock = sh("systemctl", "start", "pivox-audioclock.service")
    serve = sh("systemctl", "start", "pivox-serve.service")
    listening = wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", 8765)) == 0, 30)
    return {"log_level": level, "clock": clock, "serve": serve, "listening": bool(listening)}


def start() -> dict[str, Any]:
    start = sh("systemctl", "start", "pivox.service", timeout=90)
    return {
        "start": start,
        "show": show(),
        "status": sh("systemctl", "status", "pivox.service", "--no-pager", "-l")["out"],
    }


def turn() -> dict[str, Any]:
    def done_turn() -> dict[str, Any] | None:
        return next((e for e in pivox_journal() if "PIVOX_LATENCY_MS" in e), None)

    entry = wait_for(done_turn, 90) if show()["SubState"] == "running" else None
    played = 0
    if os.path.exists("/run/pivox-audio/played"):
        with open("/run/pivox-audio/played") as f:
            played = int(f.read() or 0)
    return {"turn_entry": entry, "played_bytes": played, "show": show()}


def control_socket() -> dict[str, Any]:
    """The runtime directory and the control socket as systemd made them, and who may use it."""
    path = "/run/pivox/control.sock"
    wait_for(lambda: os.path.exists(path), 20)
    stats = {}
    for name in ("/run/pivox", path):
        info = os.stat(name)
        stats[name] = {"mode": oct(info.st_mode & 0o7777),
                       "user": pwd.getpwuid(info.st_uid).pw_name,
                       "group": grp.getgrgid(info.st_gid).gr_name}
    pivox = "/opt/pivox/venv/bin/pivox"
    return {
        "stats": stats,
        "as_pivox": sh("runuser", "-u", "pivox", "--", pivox, "status", "--json"),
        "as_nobody": sh("runuser", "-u", "nobody", "--", pivox, "status"),
    }


def reload_with(config: str) -> dict[str, Any]:
    """Write `config`, `systemctl reload`, and collect the journal's reload lines."""
    before = show()
    mark = cursor()
    write_config(config)
    reload = sh("systemctl", "reload", "pivox.service", timeout=20)
    logged = wait_for(
        lambda: [e for e in pivox_journal(mark) if "reload" in e.get("MESSAGE", "")], 20
    )
    return {"before": before, "reload": reload, "after": show(), "logged": logged or []}


def reload_ok() -> dict[str, Any]:
    return reload_with('[session]\ninstructions = "Answer in one word."\n')


def reload_bad() -> dict[str, Any]:
    result = reload_with('[session]\nmode = "sometimes"\n')
    write_config()
    result["restore"] = sh("systemctl", "reload", "pivox.service", timeout=20)
    return result


def watchdog() -> dict[str, Any]:
    before = show()
    pid = before["MainPID"]
    if pid == "0":
        raise RuntimeError(f"pivox is not running: {before}")
    stopped_at = time.monotonic()
    os.kill(int(pid), signal.SIGSTOP)
    restarted = wait_for(
        lambda: (s := show())["MainPID"] not in (pid, "0") and s["SubState"] == "running", 90
    )
    return {
        "before": before,
        "restarted": bool(restarted),
        "after": show(),
        "restart_seconds": round(time.monotonic() - stopped_at, 2),
    }


def stop() -> dict[str, Any]:
    before = show()
    stop = sh("systemctl", "stop", "pivox.service", timeout=60)
    return {"before": before, "stop": stop, "after": show()}


def missing_key_file() -> dict[str, Any]:
    """No /etc/pivox/api_key: the unit must start (SetCredential= fallback), pivox offline."""
    os.rename("/etc/pivox/api_key", "/etc/pivox/api_key.away")
    try:
        start = sh("systemctl", "start", "pivox.service", timeout=90)
        wait_for(lambda: "auth error" in show()["StatusText"], 20)
        record = {"start": start, "show": show()}
        sh("systemctl", "stop", "pivox.service")
        sh("systemctl", "reset-failed", "pivox.service")
    finally:
        os.rename("/etc/pivox/api_key.away", "/etc/pivox/api_key")
    return record


def loose_key_file() -> dict[str, Any]:
    """A key file others may read is refused, with a clear journal line, key not shown."""
    with open("/etc/pivox/loose_key", "w") as f:
        f.write(KEY + "\n")
    os.chmod("/etc/pivox/loose_key", 0o644)
    write_config('credential = ""\napi_key_env = ""\napi_key_file = "/etc/pivox/loose_key"\n')
    mark = cursor()
    start = sh("systemctl", "start", "pivox.service", timeout=90)
    refused = wait_for(
        lambda: [e for e in pivox_journal(mark) if "loose_key" in e.get("MESSAGE", "")], 30
    )
    record = {"start": start, "show": show(), "refused": refused or []}
    sh("systemctl", "stop", "pivox.service")
    sh("systemctl", "reset-failed", "pivox.service")
    write_config()
    return record


def uninstall() -> dict[str, Any]:
    run = sh(f"{TEST}/src/install.sh", "--uninstall", timeout=120)
    return {
        "run": run,
        "left": [
            p
            for p in ("/opt/pivox", "/etc/systemd/system/pivox.service", "/var/lib/pivox")
            if os.path.exists(p)
        ],
        "user": sh("getent", "passwd", "pivox")["rc"],
        "config_kept": os.path.exists(CONFIG),
    }


def main() -> None:
    try:
        # nothing else can work without the installed service and its peers
        if step(install) and step(setup):
            for function in (
                start,
                turn,
                control_socket,
                reload_ok,
                reload_bad,
                watchdog,
                stop,
                missing_key_file,
                loose_key_file,
                uninstall,
            ):
                step(function)
    finally:
        results["seconds"] = round(time.monotonic() - results.pop("started_at"), 2)
        with open(f"{TEST}/results.json", "w") as f:
            json.dump(results, f, indent=1)
        sh("journalctl", "--sync")


if __name__ == "__main__":
    main()
