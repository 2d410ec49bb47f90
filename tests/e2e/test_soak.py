"""test_soak.py — the soak (tools/soak.py) in short: 35 s of three producers and two consumer
groups, each mixing an mqfs group reader and a libmqclient consumer, against a NameServer, two
brokers and a mount; 15 s in, the first group's libmqclient consumer is killed (SIGKILL) and
replaced. Every acknowledged message reaches every group (exactly once in the group without the
crash; the crashed group may see what the dead member had not committed again), and the
daemons' heap (RssAnon) and open descriptors stay flat. The long run (10 minutes) and its
figures: docs/RELIABILITY.md, "Cluster and soak"."""

import json
import os
import subprocess
import sys


from conftest import REPO, binary
from mqfs_mount import require_fuse


def test_soak_short(tmp_path):
    require_fuse()
    for name in ("mqnamesrv", "mqbroker", "mqfs", "mqadmin", "example_producer_sync",
                 "example_consumer_pull"):
        binary(name)
    report = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "soak.py"),
                        "--duration", "35", "--producers", "3", "--groups", "2",
                        "--interval-ms", "5", "--crash-at", "15", "--workdir", str(tmp_path / "work"),
                        "--report", str(report)],
                       capture_output=True, text=True, timeout=150)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    rep = json.loads(report.read_text())
    assert rep["sent_ok"] > 1000
    for g in rep["groups"].values():
        assert g["missing"] == 0 and g["foreign"] == 0
        assert g["duplicates"] == 0 or "crash" in g, g
        assert all(n > 0 for n in g["members"].values()), g  # mqfs and libmqclient both read
    crash = rep["groups"]["Soak0"]["crash"]
    # What the killed member redelivers is bounded by what it took in its last moments.
    assert rep["groups"]["Soak0"]["duplicates"] <= crash["its_deliveries_last_2s"], crash
    assert rep["groups"]["Soak1"]["duplicates"] == 0
    assert {"namesrv", "broker-a", "broker-b", "mqfs"} <= set(rep["processes"])
