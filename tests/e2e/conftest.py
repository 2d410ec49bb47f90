"""conftest.py — fixtures shared by every end-to-end test: where the binaries are, free ports,
and a daemon helper that starts a program in a temporary directory, waits until it is ready,
stops it with SIGTERM (SIGKILL after a timeout), requires exit code 0, and fails the test if
its stderr shows a sanitizer report or a crash.

Binaries come from $MQ_BIN_DIR (default: build/bin under the repository).
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.dirname(os.path.dirname(HERE))

# A shell that starts the suite as a background job without job control (`cmd &` in a script)
# makes it ignore SIGINT, and every program the tests start would inherit that: `cat` on a
# group file, or mqfs, would then not end on Ctrl-C as the tests expect. A signal caught here
# is reset to its default in the children (exec does that; an ignored one stays ignored).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "ERROR: ThreadSanitizer", "Segmentation fault", "Aborted",
                   "AddressSanitizer:DEADLYSIGNAL")


def bin_dir():
    return os.environ.get("MQ_BIN_DIR") or os.path.join(REPO, "build", "bin")


def binary(name):
    path = os.path.join(bin_dir(), name)
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built (MQ_BIN_DIR=%s)" % (name, bin_dir()))
    return path


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Daemon:
    """One daemon process. stderr goes to <workdir>/<name>.stderr so tests can read it."""

    def __init__(self, name, argv, workdir, port=None, ready_text=None, env=None):
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.port = port
        self.ready_text = ready_text
        self.env = dict(os.environ, **(env or {}))
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.proc = None
        self.returncode = None

    def start(self, timeout=10.0):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before it was ready:\n%s" %
                                     (self.name, self.proc.returncode, self.stderr()))
            ready = True
            if self.ready_text is not None:
                ready = self.ready_text in self.stderr()
            if ready and self.port is not None:
                ready = port_open(self.port)
            if ready:
                return self
            time.sleep(0.02)
        self.kill()
        raise AssertionError("%s not ready after %.0fs:\n%s" % (self.name, timeout,
                                                                 self.stderr()))

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None
        self._err.close()
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.returncode = self.proc.returncode
            self.proc = None
            self._err.close()

    def check_clean(self):
        """Fails on sanitizer reports or crash markers in stderr."""
        text = self.stderr()
        for mark in SANITIZER_MARKS:
            if mark in text:
                pytest.fail("%s stderr shows '%s':\n%s" % (self.name, mark, text[-6000:]))


class DaemonSet:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.daemons = []

    def start(self, name, argv, port=None, ready_text=None, env=None, timeout=10.0):
        workdir = self.tmp_path / name
        workdir.mkdir(exist_ok=True)
        d = Daemon(name, argv, str(workdir), port=port, ready_text=ready_text, env=env)
        self.daemons.append(d)
        return d.start(timeout)

    def finish(self):
        failures = []
        for d in self.daemons:
            if d.proc is not None:
                rc = d.stop()
                if rc != 0:
                    failures.append("%s exited with %s on SIGTERM:\n%s" %
                                    (d.name, rc, d.stderr()[-4000:]))
            d.check_clean()
        if failures:
            pytest.fail("\n".join(failures))


@pytest.fixture(autouse=True)
def _bounded_disk(tmp_path):
    """After each test (its daemons and mounts are gone by then), deletes the big files it left
    in tmp_path: stores preallocate their files, and pytest keeps several runs' directories."""
    yield
    for root, dirs, files in os.walk(tmp_path):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(root, d))]
        for f in files:
            path = os.path.join(root, f)
            try:
                if os.lstat(path).st_size > (1 << 20):
                    os.unlink(path)
            except OSError:
                pass


@pytest.fixture
def daemons(tmp_path):
    """Starts daemons for a test; at the end stops them (exit 0 required) and scans stderr."""
    ds = DaemonSet(tmp_path)
    yield ds
    ds.finish()


@pytest.fixture
def namesrv_factory(daemons, tmp_path):
    """namesrv_factory(**config) -> started mqnamesrv Daemon with .port; config keys are
    written to a namesrv.conf (RocketMQ key names)."""
    counter = [0]

    def start(**conf):
        counter[0] += 1
        port = free_port()
        path = tmp_path / ("namesrv%d.conf" % counter[0])
        lines = ["listenPort=%d" % port] + ["%s=%s" % kv for kv in conf.items()]
        path.write_text("\n".join(lines) + "\n")
        d = daemons.start("namesrv%d" % counter[0], [binary("mqnamesrv"), "-c", str(path)],
                          port=port, ready_text="ready on")
        d.port = port
        return d

    return start


@pytest.fixture
def namesrv(namesrv_factory):
    return namesrv_factory()
