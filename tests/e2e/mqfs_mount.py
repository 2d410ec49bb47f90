"""mqfs_mount.py — the mount fixture for mqfs end-to-end tests (self-contained: no conftest).

`Mount` starts `$MQ_BIN_DIR/mqfs MNT -f -n ADDR` with Popen, polls os.path.ismount every 0.1 s
(failing at once if the daemon died), and on stop unmounts with `fusermount3 -u` (`-z` only as
a last resort), requires exit code 0 and fails if the daemon's stderr shows a sanitizer report.
Tests skip cleanly when /dev/fuse or fusermount3 is missing. `write_lines` is the line writer
that tests run in threads against a topic file.

Use from a test module:  from mqfs_mount import mqfs, Mount, dead_namesrv  # noqa: F401
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "AddressSanitizer:DEADLYSIGNAL", "Segmentation fault")


def mqfs_binary():
    d = os.environ.get("MQ_BIN_DIR") or os.path.join(REPO, "build", "bin")
    path = os.path.join(d, "mqfs")
    if not os.access(path, os.X_OK):
        pytest.skip("mqfs not built (MQ_BIN_DIR=%s)" % d)
    return path


def require_fuse():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing")
    if not shutil.which("fusermount3"):
        pytest.skip("fusermount3 is missing")


def dead_namesrv():
    """host:port of a TCP port nobody listens on: a NameServer that is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % s.getsockname()[1]


def write_lines(path, tag, written, stop=None):
    """Appends the lines b"<tag>-0", b"<tag>-1", ... to path (a topic file), one write() each,
    until stop (a threading.Event; None: never) is set or a write fails (mqfs or its broker
    gone). Each line whose write() returned is appended to written, without its newline.
    Returns the OSError that opening path raised, else None."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as e:
        return e
    i = 0
    try:
        while stop is None or not stop.is_set():
            line = b"%s-%d" % (tag, i)
            os.write(fd, line + b"\n")
            written.append(line)
            i += 1
    except OSError:
        pass
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    return None


class Mount:
    def __init__(self, workdir, namesrv, extra_args=()):
        require_fuse()
        self.binary = mqfs_binary()
        self.workdir = str(workdir)
        self.path = os.path.join(self.workdir, "mnt")
        os.makedirs(self.path, exist_ok=True)
        self.namesrv = namesrv
        self.stderr_path = os.path.join(self.workdir, "mqfs.stderr")
        self.argv = [self.binary, self.path, "-f", "-n", namesrv] + list(extra_args)
        self.proc = None

    def start(self, timeout=10.0):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err)
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None:
                raise AssertionError("mqfs exited with %s before mounting:\n%s" %
                                     (self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                self._kill()
                raise AssertionError("mqfs did not mount within %.0f s:\n%s" %
                                     (timeout, self.stderr()))
            time.sleep(0.1)
        return self

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def check_stderr(self):
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            assert mark not in err, "mqfs stderr shows %r:\n%s" % (mark, err)

    def threads(self):
        """Where every thread of mqfs is (kernel wait channel + user stack), for a hang report."""
        out = []
        pid = self.proc.pid
        if shutil.which("gdb"):
            r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 12"],
                               capture_output=True, text=True, timeout=60)
            out.append(r.stdout[-12000:])
        for tid in sorted(os.listdir("/proc/%d/task" % pid)):
            try:
                with open("/proc/%d/task/%s/wchan" % (pid, tid)) as f:
                    out.append("task %s wchan %s" % (tid, f.read()))
            except OSError:
                pass
        return "\n".join(out)

    def wait_exit(self, timeout=60.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                where = self.threads()
            except Exception as e:  # the report must not hide the failure
                where = "(no thread report: %s)" % e
            self._kill()
            raise AssertionError("mqfs did not exit within %.0f s:\n%s\nthreads:\n%s" %
                                 (timeout, self.stderr(), where))

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path], check=False)

    def stop(self):
        """Unmounts with fusermount3 -u and requires exit code 0 and a clean stderr."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                deadline = time.monotonic() + 10
                while os.path.ismount(self.path):
                    r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
                    if r.returncode == 0 or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)  # busy: a test's process may still be closing a file
            rc = self.wait_exit()
            assert rc == 0, "mqfs exited with %s:\n%s" % (rc, self.stderr())
            assert not os.path.ismount(self.path)
            self.check_stderr()
        finally:
            self._kill()
            self._err.close()
            self.proc = None

    def terminate(self):
        """SIGTERM; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit()
        self.check_stderr()
        self._err.close()
        self.proc = None
        return rc


@pytest.fixture
def mqfs(tmp_path):
    """A mount whose NameServer is down (nothing listens at its address)."""
    m = Mount(tmp_path, dead_namesrv()).start()
    try:
        yield m
    finally:
        m.stop()
