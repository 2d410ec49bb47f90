"""test_mqfs_rename.py — what renaming and editing in place do on the mount (docs/FS.md "Errors"
and "Editing in place"): `mv` between names, `ln`, `ln -s`, `mkfifo` and `mknod` fail with
EPERM ("Operation not permitted") and change nothing; `sed -i` and `perl -pi` fail at their
temporary file (O_RDWR | O_CREAT | O_EXCL is refused) before anything is made or sent; `vim`
(which rewrites a file in place: ftruncate, then write) fails to write. Afterwards the topic holds exactly what it held,
the broker stored nothing more and no other topic exists. Real NameServer, broker and mount."""

import errno
import json
import os
import shutil
import subprocess

import pytest

import mqproto as mp
from brokers import broker_factory  # noqa: F401
from brokers import mqfs_cluster as cluster  # noqa: F401
from mqfs_mount import mqfs_binary
from test_mqfs_read import make_topic, sh

GET_BROKER_RUNTIME_INFO = 28
LINES = "alpha\nbeta\ngamma\n"


def clog_end(m):
    """The broker's commitlog write position: unchanged when nothing was stored."""
    with mp.Client(m.broker.port) as cli:
        r = cli.call(GET_BROKER_RUNTIME_INFO)
    assert r.code == mp.SUCCESS, r
    return int(json.loads(r.body)["table"]["commitLogMaxOffset"])


def topics(m):
    """The topics the NameServer lists (mqadmin topicList)."""
    mqadmin = os.path.join(os.path.dirname(mqfs_binary()), "mqadmin")
    r = sh("'%s' topicList -n 127.0.0.1:%d" % (mqadmin, m.namesrv_port))
    assert r.returncode == 0, r.stderr
    return set(r.stdout.decode().split())


def setup_topic(m, name):
    make_topic(m, name, queues=1)  # one queue: the file's lines are in send order
    with open(m.p("topic", name), "a") as f:
        f.write(LINES)
    return m.p("topic", name)


def unchanged(m, path, end, known):
    with open(path) as f:
        assert f.read() == LINES
    assert clog_end(m) == end  # nothing was sent anywhere
    assert topics(m) == known  # no topic made (nor left behind)
    assert sorted(os.listdir(m.p("topic"))) == sorted(
        t for t in known if t in os.listdir(m.p("topic")))


def test_mv_and_links_are_eperm(cluster):
    m = cluster
    path = setup_topic(m, "Mv")
    end, known = clog_end(m), topics(m)
    r = sh("mv '%s' '%s'" % (path, m.p("topic", "Moved")))
    assert r.returncode != 0 and b"Operation not permitted" in r.stderr, r.stderr
    with pytest.raises(OSError) as e:
        os.rename(path, m.p("topic", "Moved"))
    assert e.value.errno == errno.EPERM
    with pytest.raises(OSError) as e:  # onto an existing topic, and in group/
        os.rename(path, setup_topic(m, "Other"))
    assert e.value.errno == errno.EPERM
    end, known = clog_end(m), topics(m)
    os.mkdir(m.p("group", "Gm"))
    with pytest.raises(OSError) as e:
        os.rename(m.p("group", "Gm"), m.p("group", "Gn"))
    assert e.value.errno == errno.EPERM
    for cmd in ("ln", "ln -s"):
        r = sh("%s '%s' '%s'" % (cmd, path, m.p("topic", "Linked")))
        assert r.returncode != 0 and b"Operation not permitted" in r.stderr, (cmd, r.stderr)
    # special files neither (they were "Function not implemented")
    for cmd in ("mkfifo '%s'", "mknod '%s' c 1 3"):
        r = sh(cmd % m.p("topic", "Special"))
        assert r.returncode != 0 and b"Operation not permitted" in r.stderr, (cmd, r.stderr)
    unchanged(m, path, end, known)
    assert not os.path.exists(m.p("topic", "Moved"))


def test_sed_i_and_perl_i_fail_before_making_anything(cluster):
    m = cluster
    path = setup_topic(m, "Ed")
    end, known = clog_end(m), topics(m)
    r = sh("sed -i s/beta/BETA/ '%s'" % path)
    assert r.returncode != 0
    assert b"couldn't open temporary file" in r.stderr, r.stderr
    assert b"Operation not permitted" in r.stderr, r.stderr
    unchanged(m, path, end, known)
    r = sh("perl -pi -e s/beta/BETA/ '%s'" % path)  # perl warns, skips the file, exits 0
    assert b"Cannot make temp name: Operation not permitted" in r.stderr, r.stderr
    unchanged(m, path, end, known)
    # A temporary file in topic/ is refused whatever its name; in key/ and blob/, query spaces,
    # every name exists already.
    for where, err in ((("topic", "Tmp1"), errno.EPERM), (("blob", "Ed", "Tmp3"), errno.EEXIST),
                       (("key", "Ed", "Tmp2"), errno.EEXIST)):
        with pytest.raises(OSError) as e:
            os.open(m.p(*where), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        assert e.value.errno == err, where
    unchanged(m, path, end, known)


@pytest.mark.skipif(not shutil.which("vim"), reason="vim is not installed")
def test_vim_write_fails_and_sends_nothing(cluster, tmp_path):
    m = cluster
    path = setup_topic(m, "Vi")
    end, known = clog_end(m), topics(m)
    env = dict(os.environ, HOME=str(tmp_path))  # its swap and backup files go there
    r = subprocess.run(["vim", "-N", "-u", "NONE", "-i", "NONE", "-n", "-es",
                        "-c", "%s/beta/BETA/", "-c", "w", "-c", "qa!", path],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode != 0, (r.stdout, r.stderr)
    unchanged(m, path, end, known)
    # A plain `truncate` and `: >` still delete nothing and fail nothing; appends still work.
    assert sh("truncate -s 0 '%s' && : > '%s'" % (path, path)).returncode == 0
    with open(path) as f:
        assert f.read() == LINES
    assert sh("echo delta >> '%s'" % path).returncode == 0
    with open(path) as f:
        assert f.read() == LINES + "delta\n"
