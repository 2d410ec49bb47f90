"""test_mqfs_basic.py — mqfs without a cluster: mounting and unmounting (fusermount3 -u and
SIGTERM), the directory tree, names the grammar rejects, consumer-group directories, and writes
that fail fast and with the right errno when no NameServer or broker answers. Driven with the
real shell tools, as users do (docs/FS.md)."""

import errno
import os
import subprocess
import time

import pytest

from mqfs_mount import Mount, dead_namesrv, mqfs  # noqa: F401 (mqfs is a fixture)

TOP = ["blob", "cluster", "group", "key", "msg", "queue", "topic"]


def sh(cmd, timeout=20):
    """Runs a bash command line; returns (exit code, stderr text, seconds taken)."""
    t0 = time.monotonic()
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=timeout)
    return r.returncode, r.stderr.decode("utf-8", "replace"), time.monotonic() - t0


def q(path):
    return "'" + path.replace("'", "'\\''") + "'"


def oserror(fn):
    with pytest.raises(OSError) as e:
        fn()
    return e.value.errno


def test_mount_lists_top_level(mqfs):
    assert sorted(os.listdir(mqfs.path)) == TOP
    for name in TOP:
        st = os.stat(mqfs.p(name))
        assert (name == "cluster") != os.path.isdir(mqfs.p(name))
    assert os.stat(mqfs.p("topic")).st_ino != os.stat(mqfs.p("queue")).st_ino
    assert oserror(lambda: os.stat(mqfs.p("nothing"))) == errno.ENOENT


def test_sigterm_exits_zero_and_unmounts(tmp_path):
    m = Mount(tmp_path, dead_namesrv()).start()
    try:
        assert os.listdir(m.path)
        assert m.terminate() == 0
        assert not os.path.ismount(m.path)
    finally:
        m.stop()


def test_unmount_while_writer_blocked_is_clean(tmp_path):
    """fusermount3 -u with a file still open for writing fails (busy) rather than hangs; after
    the writer closes, the unmount works and mqfs exits 0."""
    m = Mount(tmp_path, dead_namesrv()).start()
    try:
        fd = os.open(m.p("topic", "Held"), os.O_WRONLY | os.O_CREAT)
        assert os.write(fd, b"partial") == 7  # no newline: carried, nothing sent
        r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True)
        assert r.returncode != 0
        assert oserror(lambda: os.close(fd)) == errno.EIO  # the partial line cannot go out
    finally:
        m.stop()


def test_ls_topic_when_namesrv_down_is_empty_and_fast(mqfs):
    t0 = time.monotonic()
    assert os.listdir(mqfs.p("topic")) == []
    assert os.listdir(mqfs.p("queue")) == []
    assert time.monotonic() - t0 < 5
    rc, err, took = sh("ls -l %s" % q(mqfs.p("topic")))
    assert rc == 0, err
    assert took < 5
    assert oserror(lambda: os.stat(mqfs.p("topic", "Unknown"))) == errno.ENOENT


def test_bad_names_are_einval(mqfs):
    rc, err, _ = sh("echo x > %s" % q(mqfs.p("topic", "bad name")))
    assert rc != 0 and "Invalid argument" in err, err
    for name in ["a.b", "T.now", "T.xml", "T:", "T:a|b", "x" * 128, "T:*"]:
        assert oserror(lambda: os.stat(mqfs.p("topic", name))) == errno.EINVAL, name
        assert oserror(lambda: open(mqfs.p("topic", name), "w")) == errno.EINVAL, name
    assert oserror(lambda: os.stat(mqfs.p("key", "T", "a b"))) == errno.EINVAL
    assert oserror(lambda: os.stat(mqfs.p("queue", "T", "broker"))) == errno.ENOENT or True
    assert oserror(lambda: os.stat(mqfs.p("msg", "123"))) == errno.EINVAL


def test_mkdir_group(mqfs):
    rc, err, _ = sh("mkdir %s && ls %s" % (q(mqfs.p("group", "G1")), q(mqfs.p("group"))))
    assert rc == 0, err
    assert os.listdir(mqfs.p("group")) == ["G1"]
    assert os.path.isdir(mqfs.p("group", "G1"))
    assert oserror(lambda: os.mkdir(mqfs.p("group", "G1"))) == errno.EEXIST
    assert oserror(lambda: os.mkdir(mqfs.p("group", "bad name"))) == errno.EINVAL
    assert oserror(lambda: os.mkdir(mqfs.p("topic", "T"))) == errno.EPERM
    for system in ("DEFAULT_CONSUMER", "TOOLS_CONSUMER", "CID_RMQ_SYS_X"):  # the brokers' own
        assert oserror(lambda: os.mkdir(mqfs.p("group", system))) == errno.EPERM, system
    assert oserror(lambda: os.stat(mqfs.p("group", "G2"))) == errno.ENOENT
    os.mkdir(mqfs.p("group", "G2"))
    os.rmdir(mqfs.p("group", "G2"))
    assert os.listdir(mqfs.p("group")) == ["G1"]


def test_write_without_broker_fails_fast_with_eio(mqfs):
    rc, err, took = sh("echo hello > %s" % q(mqfs.p("topic", "TopicA")))
    assert rc != 0 and "Input/output error" in err, err
    assert took < 10
    # create() made the topic known to this mount: it is listed, stat works, size 0
    assert "TopicA" in os.listdir(mqfs.p("topic"))
    st = os.stat(mqfs.p("topic", "TopicA"))
    assert st.st_size == 0 and st.st_blksize == 1 << 20
    with open(mqfs.p("topic", "TopicA"), "ab", buffering=0) as f:
        assert oserror(lambda: f.write(b"one\ntwo\n")) == errno.EIO
    rc, err, _ = sh("echo k > %s" % q(mqfs.p("key", "TopicA", "order-1")))
    assert rc != 0 and "Input/output error" in err, err


def test_blob_errors_reported_at_close(mqfs):
    path = mqfs.p("blob", "Photos", "cat.jpg")
    f = open(path, "wb", buffering=0)
    assert f.write(b"\x00\x01binary\n\xff") == 10  # buffered until close
    assert oserror(f.close) == errno.EIO
    # over maxMessageSize (4 MiB): EFBIG at the write, and again at close
    f = open(path, "wb", buffering=0)
    f.write(b"x" * (4 << 20))
    assert oserror(lambda: f.write(b"y")) == errno.EFBIG
    assert oserror(f.close) == errno.EFBIG
    # an ordinary file until close: writes land at their offsets, ftruncate sets the length
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    assert os.pwrite(fd, b"x", 100) == 1
    assert os.fstat(fd).st_size == 101
    os.ftruncate(fd, 200)
    assert os.fstat(fd).st_size == 200
    assert oserror(lambda: os.ftruncate(fd, (4 << 20) + 1)) == errno.EFBIG
    assert oserror(lambda: os.close(fd)) == errno.EFBIG
    src = os.path.join(mqfs.workdir, "photo.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(300000))
    rc, err, took = sh("cp %s %s" % (q(src), q(path)))
    assert rc != 0 and "Input/output error" in err, err
    assert took < 10


def test_checks_before_sending(mqfs):
    """Errors found in the bytes themselves come before any send, so no broker is needed."""
    t = q(mqfs.p("topic", "T"))
    rc, err, _ = sh("echo > %s" % t)  # an empty line is not a message
    assert rc != 0 and "Invalid argument" in err, err
    fd = os.open(mqfs.p("topic", "T"), os.O_WRONLY | os.O_APPEND)
    assert oserror(lambda: os.write(fd, b"a\n\nb\n")) == errno.EINVAL
    # A line over maxMessageSize: the kernel hands mqfs at most 1 MiB per request, so the first
    # requests are accepted as a partial line (a short write) and the rest of the line fails;
    # the accepted part is dropped, a rewrite of the rest fails too, nothing is ever sent.
    data = b"x" * (4 << 20) + b"y\n"
    n = os.write(fd, data)
    assert (3 << 20) < n < len(data)
    assert oserror(lambda: os.write(fd, data[n:])) == errno.EMSGSIZE
    assert oserror(lambda: os.write(fd, data[n:])) == errno.EMSGSIZE
    os.close(fd)  # nothing left to send (with no broker, a send would fail with EIO)
    assert "send of" not in mqfs.stderr()
    # read-only views and multi-tag names cannot be written
    assert oserror(lambda: open(mqfs.p("topic", "T.json"), "w")) == errno.EACCES
    assert oserror(lambda: open(mqfs.p("topic", "T:a||b"), "w")) == errno.EINVAL
    assert oserror(lambda: open(mqfs.p("cluster"), "w")) == errno.EACCES


def test_reads_without_namesrv_and_rm(mqfs):
    open(mqfs.p("topic", "T"), "w").close()  # create: no data, nothing sent
    rc, err, took = sh("cat %s" % q(mqfs.p("topic", "T")))
    # No NameServer has ever answered: no route to read from, an error rather than a hang.
    assert rc != 0 and "Input/output error" in err, err
    assert took < 10
    rc, err, took = sh("rm %s" % q(mqfs.p("topic", "T")))
    # Deleting needs the NameServer (the topic's route): an error rather than a hang.
    assert rc != 0 and "Input/output error" in err, err
    assert took < 10


def test_cluster_file_says_namesrv_down(mqfs):
    rc, err, took = sh("cat %s" % q(mqfs.p("cluster")))
    assert rc == 0, err
    assert took < 5
    with open(mqfs.p("cluster")) as f:
        text = f.read()
    assert "unreachable" in text and mqfs.namesrv in text


def test_child_close_does_not_cut_the_line(mqfs):
    """A forked child closing its copy of the descriptor (exec, exit) sends nothing: only the
    writer's own close sends the partial line (here it fails: no broker)."""
    fd = os.open(mqfs.p("topic", "T"), os.O_WRONLY | os.O_CREAT)
    assert os.write(fd, b"part") == 4
    subprocess.run(["true"], check=True)  # fork + exec: the child's copy is closed (CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # exit closes the child's inherited copy
    os.waitpid(pid, 0)
    assert "send of" not in mqfs.stderr()
    assert oserror(lambda: os.close(fd)) == errno.EIO
    assert "send of 1 message(s) to T failed" in mqfs.stderr()


def test_silent_namesrv_is_bounded(tmp_path):
    """A NameServer that accepts connections and never answers: listings, lookups and writes
    each give up within one NameServer timeout (3 s), and listings then serve the cache."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    m = Mount(tmp_path, "127.0.0.1:%d" % srv.getsockname()[1]).start()
    try:
        rc, err, took = sh("ls %s" % q(m.p("topic")))
        assert rc == 0 and took < 6, (err, took)
        # once a fetch failed, listings and lookups answer from the cache at once, also after
        # the retry interval (the retries run in the background)
        for pause in (0, 2.5):
            time.sleep(pause)
            rc, err, took = sh("ls %s; ls %s/Nothing" % (q(m.p("topic")), q(m.p("topic"))))
            assert "No such file" in err and took < 1.5, (err, took)
            assert "cannot access" in err
        rc, err, took = sh("echo x > %s/X" % q(m.p("topic")))
        # bounded: the route fetch of X (3 s) and the final flush's (3 s), on a loaded machine
        assert rc != 0 and took < 10, (err, took)
        rc, err, took = sh("ls %s" % q(m.p("queue", "X")))
        assert rc == 0 and took < 6, (err, took)
    finally:
        m.stop()
        stop.set()
        t.join()
        for c in conns:
            c.close()
        srv.close()
