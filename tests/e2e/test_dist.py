"""test_dist.py — the distribution files (tools/dist): the sample configurations list every key
the daemons know, each with its description, and `cmake --install` yields systemd units whose
ExecStart programs and -c configuration files are really installed."""

import os
import re
import shutil
import subprocess

import pytest

from clientkit import run
from conftest import REPO, bin_dir

DIST = os.path.join(REPO, "tools", "dist")


def test_dist_configs_list_every_key():
    for daemon, conf in (("mqbroker", "broker.conf"), ("mqnamesrv", "namesrv.conf")):
        rc, out, _ = run(daemon, "-m")
        keys = [l.split("=", 1)[0] for l in out if "=" in l and not l.startswith("#")]
        assert rc == 0 and len(keys) > 5
        with open(os.path.join(DIST, conf)) as f:
            text = f.read().splitlines()
        listed = [l[1:].split("=", 1)[0] for l in text if l.startswith("#") and "=" in l
                  and " " not in l.split("=", 1)[0]]
        assert sorted(set(keys) - set(listed)) == [], "%s misses keys" % conf
        assert sorted(set(listed) - set(keys)) == [], "%s lists unknown keys" % conf
        # Each key comes with a description line right above it.
        for i, l in enumerate(text):
            if l.startswith("#") and l[1:].split("=", 1)[0] in keys:
                assert text[i - 1].startswith("# "), l


def test_install_puts_what_the_units_start(tmp_path):
    build = os.path.dirname(bin_dir())
    cache = os.path.join(build, "CMakeCache.txt")
    if not os.path.exists(cache) or not shutil.which("cmake"):
        pytest.skip("no CMake build directory at %s" % build)
    with open(cache) as f:
        prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", f.read(), re.M).group(1)
    dest = tmp_path / "root"
    p = subprocess.run(["cmake", "--install", build, "--prefix", str(dest)],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    units = dest / "lib" / "systemd" / "system"
    for unit in ("mqnamesrv", "mqbroker", "mqfs"):
        text = (units / (unit + ".service")).read_text()
        argv = re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()
        assert argv[0] == os.path.join(prefix, "bin", unit)
        if unit != "mqfs" or os.path.exists(os.path.join(bin_dir(), "mqfs")):
            installed = str(dest) + argv[0][len(prefix):]
            assert os.access(installed, os.X_OK), "%s not installed" % argv[0]
        if "-c" in argv:
            conf = argv[argv.index("-c") + 1]
            assert conf.startswith(prefix)
            assert os.path.exists(str(dest) + conf[len(prefix):]), conf
    assert os.access(dest / "bin" / "mqadmin", os.X_OK)
