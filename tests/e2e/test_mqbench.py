"""test_mqbench.py — the load generator against a real NameServer and broker: every produce
shape (sync, batch, async, oneway) and both consume shapes (group consumer, raw pulls) move the
messages they claim, the RESULT line is well formed, and usage errors exit 2. This is also the
end-to-end test of libmqclient's send and pull paths with binary (ROCKETMQ) headers."""

import subprocess

import pytest

from brokers import broker_factory  # noqa: F401
from conftest import binary


def mqbench(*args, timeout=60):
    p = subprocess.run([binary("mqbench"), *args], capture_output=True, text=True,
                       timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    result = dict(kv.split("=", 1) for kv in lines[-1].split()[1:]) if lines else {}
    return p.returncode, result, p.stderr


@pytest.fixture
def cluster(namesrv, broker_factory):  # noqa: F811
    broker_factory(namesrv=namesrv, defaultTopicQueueNums=4)
    return "127.0.0.1:%d" % namesrv.port


def test_produce_shapes_then_consume_everything(cluster):
    sent = 0
    for shape in (["-c", "4"], ["-b", "50", "-c", "2"], ["-m", "async", "-c", "2", "-w", "64"],
                  ["-m", "async", "-b", "30", "-c", "2", "-w", "4"]):
        rc, res, err = mqbench("produce", "-n", cluster, "-t", "BenchT", "-N", "1000",
                               "-s", "64", *shape)
        assert rc == 0, err
        assert res["msgs"] == "1000" and res["errors"] == "0", res
        assert float(res["p50_us"]) > 0 and float(res["p99_us"]) >= float(res["p50_us"])
        sent += 1000 + 1  # each run's warm-up send comes first
    rc, res, err = mqbench("consume", "-n", cluster, "-t", "BenchT", "-g", "BG", "--idle", "2")
    assert rc == 0, err
    assert int(res["msgs"]) == sent and res["mode"] == "group", res
    assert float(res["mbps"]) > 0 and float(res["tps"]) > 0
    rc, res, err = mqbench("consume", "-n", cluster, "-t", "BenchT", "-g", "BR", "--raw",
                           "-c", "2", "--pull-batch", "32", "--idle", "2")
    assert rc == 0, err
    assert int(res["msgs"]) == sent and res["mode"] == "raw", res


def test_oneway_and_count_stop(cluster):
    # Oneway sends are only counted here: frames still queued in the client when the producer
    # is freed are dropped (rpc_client_free closes at once; docs/BENCHMARKS.md), so how many
    # reach the broker varies.
    rc, res, err = mqbench("produce", "-n", cluster, "-t", "BenchO", "-m", "oneway", "-N", "500")
    assert rc == 0, err
    assert res["msgs"] == "500" and res["mode"] == "oneway", res
    rc, res, err = mqbench("produce", "-n", cluster, "-t", "BenchC", "-N", "500", "-c", "2")
    assert rc == 0, err
    rc, res, err = mqbench("consume", "-n", cluster, "-t", "BenchC", "-g", "CG", "--raw",
                           "-N", "100", "--pull-batch", "10", "--idle", "5")
    assert rc == 0, err
    assert 100 <= int(res["msgs"]) <= 110, res  # stops within one pull of the count


def test_usage_errors_exit_2():
    assert mqbench()[0] == 2
    assert mqbench("produce", "-t", "T")[0] == 2  # no NameServer
    assert mqbench("produce", "-n", "127.0.0.1:1", "-t", "T", "-b", "5", "-m", "oneway")[0] == 2
    assert mqbench("consume", "-n", "127.0.0.1:1", "-t", "T")[0] == 2  # no group
    assert mqbench("bogus")[0] == 2
    assert mqbench("--help")[0] == 0


def test_unreachable_namesrv_exits_1():
    rc, res, err = mqbench("produce", "-n", "127.0.0.1:1", "-t", "T", "-N", "1",
                           "--timeout-ms", "500")
    assert rc == 1 and "failed" in err
