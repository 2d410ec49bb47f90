"""test_mqfs_rename.py — what renaming does on the mount (docs/FS.md "Errors" and "Renaming and
editing in place"): `mv` between names, `ln` and `ln -s` fail with EPERM ("Operation not
permitted") and change nothing. Afterwards the topic holds exactly what it held, the broker
stored nothing more and no other topic exists. Real NameServer, broker and mount."""

import errno
import json
import os

import pytest

import mqproto as mp
from brokers import broker_factory  # noqa: F401
from brokers import mqfs_cluster as cluster  # noqa: F401
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
    """The topics the broker keeps (its topics.json view through the NameServer route list)."""
    r = sh("'%s' topicList -n 127.0.0.1:%d" % (os.path.join(os.environ.get(
        "MQ_BIN_DIR", ""), "mqadmin"), m.namesrv_port))
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
    unchanged(m, path, end, known)
    assert not os.path.exists(m.p("topic", "Moved"))
