"""clientkit.py — helpers for the libmqclient end-to-end tests (test_client.py): running the
example programs and mqadmin (tools/examples, tools/mqadmin) against real daemons, reading
their one-line-per-message output while they run, waiting on conditions instead of sleeping,
and asking the NameServer for routes through the independent Python encoder."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest

import mqproto as mp

from conftest import SANITIZER_MARKS, binary

GET_ROUTEINFO_BY_TOPIC = 105


def wait_for(pred, timeout=10.0, interval=0.02):
    """Polls pred() until it returns a true value (returned) or timeout (returns None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def addr(d):
    return "127.0.0.1:%d" % d.port


def run(name, *args, ns=None, timeout=20, env=None):
    """Runs a program of build/bin to completion: (returncode, stdout lines, stderr)."""
    e = dict(os.environ, **(env or {}))
    argv = [binary(name)] + (["-n", addr(ns)] if ns is not None else []) + [str(a) for a in args]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=e)
    err = p.stderr.decode(errors="replace")
    check_clean(name, err)
    return p.returncode, p.stdout.decode(errors="replace").splitlines(), err


def check_clean(name, stderr):
    """Fails the test when a program's stderr shows a sanitizer report or a crash."""
    for mark in SANITIZER_MARKS:
        if mark in stderr:
            pytest.fail("%s stderr shows '%s':\n%s" % (name, mark, stderr[-6000:]))


def admin(ns, *args, as_json=False, timeout=20):
    """mqadmin with -n; returns (returncode, parsed JSON or stdout lines, stderr)."""
    sub, rest = args[0], args[1:]  # mqadmin <subcommand> -n ADDR ...
    rc, out, err = run("mqadmin", sub, "-n", addr(ns), *rest, *(["--json"] if as_json else []),
                       timeout=timeout)
    if as_json and rc == 0:
        return rc, json.loads("\n".join(out)), err
    return rc, out, err


class Proc:
    """A program running in the background whose stdout lines are collected as they come."""

    def __init__(self, name, *args, ns=None):
        argv = [binary(name)] + (["-n", addr(ns)] if ns is not None else []) + [
            str(a) for a in args]
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self._lines = []
        self._lock = threading.Lock()
        self._err = b""
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self._te = threading.Thread(target=self._read_err, daemon=True)
        self._te.start()

    def _read(self):
        for raw in self.p.stdout:
            with self._lock:
                self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    def _read_err(self):
        self._err = self.p.stderr.read()

    def lines(self, prefix=None):
        with self._lock:
            return [l for l in self._lines if prefix is None or l.startswith(prefix)]

    def stderr(self):
        return self._err.decode(errors="replace")

    def wait(self, timeout=20):
        """Waits for exit; returns the exit code (kills it on timeout and fails)."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s still running after %ss" % (self.p.args[0], timeout))
        self._t.join(5)
        self._te.join(5)
        check_clean(self.p.args[0], self.stderr())
        return rc

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def route(ns, topic):
    """The topic's TopicRouteData from the NameServer, or None."""
    with mp.Client(ns.port) as c:
        r = c.call(GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    return r.json_body() if r.code == mp.SUCCESS else None


def route_brokers(ns, topic):
    r = route(ns, topic)
    return {q["brokerName"] for q in r["queueDatas"]} if r else set()


def create_topic(ns, topic, queues=4, broker=None, expect=("broker-a",)):
    """updateTopic through mqadmin (every master of DefaultCluster, or -b broker) and waits
    until the NameServer routes it to the `expect` brokers."""
    target = ["-b", addr(broker)] if broker else ["-c", "DefaultCluster"]
    rc, out, err = admin(ns, "updateTopic", "-t", topic, "-r", queues, "-w", queues, *target)
    assert rc == 0, (out, err)
    ok = wait_for(lambda: route_brokers(ns, topic) >= set(expect), timeout=5)
    assert ok, "topic %s not routed to %s" % (topic, expect)


def expected_body(prefix, i, size=0):
    """What tools/examples/example.h example_body() produces."""
    head = ("%s-%d" % (prefix, i)).encode()
    if size <= len(head):
        return head
    return head + bytes(ord("a") + (j * 7) % 26 for j in range(len(head), size))


def msgs(lines):
    """MSG <broker> <queueId> <queueOffset> <tags> <body> lines -> tuples."""
    out = []
    for l in lines:
        if l.startswith("MSG "):
            _, broker, qid, off, tags, body = l.split(" ", 5)
            out.append((broker, int(qid), int(off), tags, body))
    return out
