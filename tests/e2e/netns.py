"""netns.py — hosts as network namespaces for multi-host end-to-end tests.

`Net` creates one namespace holding a bridge (the "switch") and one namespace per host, each
joined to the bridge by a veth pair (`eth0` in the host, `p-<host>` on the switch). Addresses
come from 10.99.0.0/24 and exist only inside these namespaces: no namespace has a default
route and nothing connects to the machine's own interfaces, so no packet leaves them.
Namespace names carry a per-run random suffix, so parallel runs do not collide; `cleanup()`
kills whatever still runs inside them (processes the test started) and deletes them, which
also deletes every veth.

Programs run in a host with `argv(host, [...])` (`ip netns exec`: network AND a private mount
namespace) or `nsenter_argv(host, [...])` (network namespace only: a FUSE mount made there is
visible on the machine, so the test reads the mount point directly).
"""

import os
import secrets
import shutil
import signal
import subprocess

import pytest

SUBNET = "10.99.0"


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def require_netns():
    """Skips the test when namespaces cannot be created (not root, no iproute2)."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("iproute2 / nsenter missing (tools/install-deps.sh installs them)")
    probe = "mqprobe-%s" % secrets.token_hex(4)
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot create a network namespace: %s" % r.stderr.strip())
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


class Net:
    def __init__(self):
        self.tag = "mq%s" % secrets.token_hex(3)
        self.switch = self.tag + "-sw"
        self.hosts = {}  # name -> address
        self.namespaces = []
        self._add_ns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_ns(self, ns):
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def ns(self, host):
        return "%s-%s" % (self.tag, host)

    def add_host(self, host):
        """A host on the switch; returns its address."""
        addr = "%s.%d" % (SUBNET, len(self.hosts) + 1)
        ns = self.ns(host)
        self._add_ns(ns)
        _ip("link", "add", "name", "eth0", "netns", ns, "type", "veth", "peer", "name",
            "p-" + host, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", "p-" + host, "master", "br0")
        _ip("-n", self.switch, "link", "set", "p-" + host, "up")
        _ip("-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        self.hosts[host] = addr
        return addr

    def addr(self, host):
        return self.hosts[host]

    def argv(self, host, argv):
        return ["ip", "netns", "exec", self.ns(host)] + list(argv)

    def nsenter_argv(self, host, argv):
        return ["nsenter", "--net=/run/netns/" + self.ns(host), "--"] + list(argv)

    def run(self, host, argv, timeout=30, **kw):
        return subprocess.run(self.argv(host, argv), capture_output=True, text=True,
                              timeout=timeout, **kw)

    def cut(self, host):
        """Pulls the host's cable: its switch port goes down, packets to and from it vanish
        (no RST, no ICMP: peers see timeouts). The host's own interface stays up."""
        _ip("-n", self.switch, "link", "set", "p-" + host, "down")

    def restore(self, host):
        _ip("-n", self.switch, "link", "set", "p-" + host, "up")

    def cleanup(self):
        """Kills what still runs in the namespaces (SIGKILL, by pid) and deletes them."""
        for ns in reversed(self.namespaces):
            r = _ip("netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            _ip("netns", "del", ns, check=False)
        self.namespaces = []
