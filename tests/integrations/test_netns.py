"""``commpress.integrations.netns``: the commands of a slow link (pure), their clean-up whatever happens
(``subprocess.run`` replaced by a recorder: no root needed), and, as root, the real namespaces."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from commpress.errors import ConfigError
from commpress.integrations import netns

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the commands (pure)
def test_commands_two_ranks_exact_argv():
    c = netns.commands("100mbit", "1ms", "64kb", tag="cpsl-7-3")
    a, b = "cpsl-7-3-0", "cpsl-7-3-1"
    tc = ["tc", "qdisc", "add", "dev", "cpsl0", "root"]
    assert c.names == [a, b] and c.hub is None and c.addresses == ["10.213.0.1", "10.213.0.2"]
    assert c.setup == [
        ["ip", "netns", "add", a], ["ip", "-n", a, "link", "set", "lo", "up"],
        ["ip", "netns", "add", b], ["ip", "-n", b, "link", "set", "lo", "up"],
        ["ip", "link", "add", "cpsl0", "netns", a, "type", "veth", "peer", "name", "cpsl0", "netns", b],
        ["ip", "-n", a, "addr", "add", "10.213.0.1/24", "dev", "cpsl0"], ["ip", "-n", a, "link", "set", "cpsl0", "up"],
        ["ip", "netns", "exec", a, *tc, "netem", "delay", "1ms", "rate", "100mbit", "limit", "100000"],
        ["ip", "-n", b, "addr", "add", "10.213.0.2/24", "dev", "cpsl0"], ["ip", "-n", b, "link", "set", "cpsl0", "up"],
        ["ip", "netns", "exec", b, *tc, "netem", "delay", "1ms", "rate", "100mbit", "limit", "100000"],
    ]
    assert c.teardown == [["ip", "netns", "del", b], ["ip", "netns", "del", a]]


def test_commands_without_delay_and_with_tbf():
    netem = netns.commands("1gbit", None, tag="t")
    assert netem.setup[7] == ["ip", "netns", "exec", "t-0", "tc", "qdisc", "add", "dev", "cpsl0", "root",
                              "netem", "rate", "1gbit", "limit", "100000"]  # no "delay" at all
    tbf = netns.commands("1gbit", "2ms", "16kb", qdisc="tbf", tag="t")
    assert tbf.setup[7][10:] == ["tbf", "rate", "1gbit", "burst", "16kb", "latency", "100ms"]  # tbf adds no delay
    # the fallback swaps the shaping commands only: same length, same everything else
    netem = netns.commands("1gbit", "2ms", "16kb", tag="t")
    diff = [i for i, (x, y) in enumerate(zip(netem.setup, tbf.setup)) if x != y]
    assert len(netem.setup) == len(tbf.setup) and diff == [7, 10]
    assert tbf.teardown == netem.teardown


@pytest.mark.parametrize("world", [2, 3, 5])
def test_teardown_mirrors_setup(world):
    c = netns.commands("100mbit", "1ms", world=world, tag="cpsl-1-0")
    added = [argv[3] for argv in c.setup if argv[:3] == ["ip", "netns", "add"]]
    assert c.teardown == [["ip", "netns", "del", name] for name in reversed(added)]
    assert added == c.names + ([c.hub] if world > 2 else [])
    # every command acts inside a namespace it created (nothing is left in the host's namespace)
    for argv in c.setup:
        inside = {tok for tok in argv if tok.startswith("cpsl-1-0-")}
        assert inside and inside <= set(added), argv
    shaped = [argv[3] for argv in c.setup if argv[4:6] == ["tc", "qdisc"]]
    assert shaped == c.names  # every rank's end is shaped, the hub's bridge ports are not
    assert len(set(c.addresses)) == world


def test_names_are_unique_per_call_and_carry_the_pid():
    first, second = netns.commands(), netns.commands()
    assert not set(first.names) & set(second.names) and first.tag != second.tag
    for c in (first, second):
        assert all(name.startswith(f"{netns.PREFIX}{os.getpid()}-") for name in c.names)
    assert first.names == [f"{first.tag}-0", f"{first.tag}-1"]


@pytest.mark.parametrize("kwargs,match", [
    ({"rate": "100mbps"}, "tc reads 'mbps' as megabytes/s"),  # tc: megabytes/s; most people: megabits/s
    ({"rate": "100MB/s"}, "slow link rate"),
    ({"rate": "fast"}, "slow link rate"),
    ({"rate": "100"}, "slow link rate"),
    ({"delay": "1 day"}, "slow link delay"),
    ({"delay": "1ns"}, "s, ms or us"),
    ({"burst": "lots"}, "slow link burst"),
    ({"world": 1}, "world >= 2"),
    ({"world": True}, "world >= 2"),
    ({"qdisc": "htb"}, "'netem' or 'tbf'"),
])
def test_commands_reject_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        netns.commands(**kwargs)


def test_rates_it_accepts_are_read_alike_by_advise():
    # the benchmark reads the tc rate back with advise's strict parser: every rate accepted here must parse
    from commpress.integrations.advise import parse_bandwidth

    for rate, bytes_per_s in [("100mbit", 12.5e6), ("1Gbit", 1.25e8), ("800kbit", 1e5), ("1mibit", 2**20 / 8)]:
        netns.commands(rate, tag="t")
        assert parse_bandwidth(rate) == pytest.approx(bytes_per_s)


# ------------------------------------------------------------------ running them (subprocess.run recorded)
class Recorder:
    """Stands in for subprocess.run: records every argv; ``fail`` maps a predicate to (code, stderr)."""

    def __init__(self, fail=None, on_call=None):
        self.calls, self.fail, self.on_call = [], fail or (lambda argv: None), on_call

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        if self.on_call:
            self.on_call(list(argv))
        failure = self.fail(list(argv))
        code, stderr = failure if failure else (0, "")
        return subprocess.CompletedProcess(argv, code, "", stderr)

    def ran(self, verb):
        return [c[3] for c in self.calls if c[:3] == ["ip", "netns", verb]]


def test_slow_link_runs_the_setup_then_the_teardown(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(subprocess, "run", rec)
    with netns.slow_link("100mbit", "1ms") as link:
        plan = netns.commands("100mbit", "1ms", tag=link.tag)
        assert rec.calls == plan.setup
        assert link.qdisc == "netem" and link.delay == "1ms" and link.names == plan.names
        assert link.exec(1, ["true"]) == ["ip", "netns", "exec", plan.names[1], "true"]
    assert rec.calls == plan.setup + plan.teardown


def test_an_exception_inside_the_block_still_removes_the_namespaces(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(subprocess, "run", rec)
    with pytest.raises(RuntimeError, match="boom"):
        with netns.slow_link() as link:
            raise RuntimeError("boom")
    assert rec.ran("del") == list(reversed(link.names)) and rec.calls[-2:] == [
        ["ip", "netns", "del", link.names[1]], ["ip", "netns", "del", link.names[0]]]


def test_sigterm_inside_the_block_removes_the_namespaces_and_restores_the_handler(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(subprocess, "run", rec)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        with netns.slow_link() as link:
            os.kill(os.getpid(), signal.SIGTERM)  # raised as SystemExit(143) at once, in this thread
            pytest.fail("SIGTERM did not interrupt the block")
    assert info.value.code == 128 + signal.SIGTERM
    assert rec.ran("del") == list(reversed(link.names))
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_during_the_teardown_waits_until_it_is_done(monkeypatch):
    def interrupt_once(argv, sent=[]):  # noqa: B006 - one signal, at the first deletion
        if argv[:3] == ["ip", "netns", "del"] and not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    rec = Recorder(on_call=interrupt_once)
    monkeypatch.setattr(subprocess, "run", rec)
    with pytest.raises(KeyboardInterrupt):
        with netns.slow_link() as link:
            pass
    assert rec.ran("del") == list(reversed(link.names))  # both deleted, then the Ctrl-C


def test_a_failed_setup_removes_what_it_built_and_says_why(monkeypatch):
    def fail(argv):  # the second namespace's loopback cannot come up
        if argv[:2] == ["ip", "-n"] and argv[2].endswith("-1") and argv[3:] == ["link", "set", "lo", "up"]:
            return 2, "RTNETLINK answers: Operation not permitted"

    rec = Recorder(fail)
    monkeypatch.setattr(subprocess, "run", rec)
    with pytest.raises(netns.NetnsError, match="Operation not permitted") as info:
        with netns.slow_link():
            pytest.fail("the block must not run")
    added = rec.ran("add")
    assert len(added) == 2 and rec.ran("del") == list(reversed(added))  # both were created: both deleted
    assert info.value.cmd[:2] == ["ip", "-n"] and info.value.returncode == 2


def test_only_the_created_namespaces_are_deleted(monkeypatch):
    rec = Recorder(lambda argv: (1, "Cannot create namespace file: File exists")
                   if argv[:3] == ["ip", "netns", "add"] and argv[3].endswith("-1") else None)
    monkeypatch.setattr(subprocess, "run", rec)
    with pytest.raises(netns.NetnsError, match="File exists"):
        with netns.slow_link():
            pass
    assert rec.ran("del") == [rec.ran("add")[0]]  # not the name that already existed


def test_without_netem_it_shapes_with_tbf(monkeypatch):
    rec = Recorder(lambda argv: (2, "Error: Specified qdisc kind is unknown.") if "netem" in argv else None)
    monkeypatch.setattr(subprocess, "run", rec)
    with netns.slow_link("100mbit", "1ms", "32kb") as link:
        assert link.qdisc == "tbf" and link.delay is None  # tbf adds no delay: say so
    tbf = [c for c in rec.calls if "tbf" in c]
    assert [c[3] for c in tbf] == link.names and tbf[0][-7:] == ["tbf", "rate", "100mbit", "burst", "32kb",
                                                                  "latency", "100ms"]
    assert sum("netem" in c for c in rec.calls) == 1  # tried once, on the first rank


@pytest.mark.parametrize("stderr", ["RTNETLINK answers: Operation not permitted", ""])
def test_negative_control_other_netem_failures_are_errors(monkeypatch, stderr):
    rec = Recorder(lambda argv: (2, stderr) if "netem" in argv else None)
    monkeypatch.setattr(subprocess, "run", rec)
    with pytest.raises(netns.NetnsError):
        with netns.slow_link("100mbit", "1ms"):
            pass
    assert not any("tbf" in c for c in rec.calls) and len(rec.ran("del")) == 2


def test_clean_stale_removes_only_namespaces_of_gone_processes(monkeypatch):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    listing = (f"{netns.PREFIX}{gone.pid}-0-0 (id: 3)\n{netns.PREFIX}{os.getpid()}-0-0\n"
               f"{netns.PREFIX}1-0-0\nsomeone-else\n{netns.PREFIX}notapid-0\n")
    calls = []

    def run(argv, **kwargs):
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, listing if argv == ["ip", "netns", "list"] else "", "")

    monkeypatch.setattr(subprocess, "run", run)
    assert netns.clean_stale() == [f"{netns.PREFIX}{gone.pid}-0-0"]  # pid 1 lives; ours is ours
    assert calls[1:] == [["ip", "netns", "del", f"{netns.PREFIX}{gone.pid}-0-0"]]


def test_the_module_loads_no_torch():
    code = "import sys, commpress.integrations.netns; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


# ------------------------------------------------------------------ as root: the real namespaces
def _why_no_netns() -> str | None:
    why = netns.unavailable()
    if why:
        return why
    probe = f"cp_probe_{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode:
        return f"'ip netns add' fails here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, text=True)
    return None


_NO_NETNS = _why_no_netns()
#: An environment skip (root, iproute2, a kernel that allows namespaces), not a data skip.
needs_netns = pytest.mark.skipif(_NO_NETNS is not None, reason=f"environment, not data: {_NO_NETNS}")


@needs_netns
@pytest.mark.parametrize("world", [2, 3])
def test_real_namespaces_are_built_joined_and_removed(world):
    with netns.slow_link("10mbit", "1ms", world=world) as link:
        assert set(link.names) <= set(netns.namespaces())
        assert "rate 10Mbit" in link.qdisc_show(0) and link.qdisc_show(0).startswith(f"qdisc {link.qdisc}")
        # a byte from the first rank reaches the last across the shaped link
        last = link.addresses[-1]
        server = subprocess.Popen(link.exec(world - 1, [sys.executable, "-c", textwrap.dedent(f"""
            import socket
            s = socket.create_server(({last!r}, 5555)); s.settimeout(20)
            print(s.accept()[0].recv(5).decode(), flush=True)""")]), stdout=subprocess.PIPE, text=True)
        client = textwrap.dedent(f"""
            import socket, time
            for _ in range(100):  # until the server listens
                try:
                    socket.create_connection(({last!r}, 5555), timeout=5).sendall(b"hello")
                    break
                except OSError:
                    time.sleep(0.1)""")
        assert subprocess.run(link.exec(0, [sys.executable, "-c", client]), timeout=60).returncode == 0
        assert server.communicate(timeout=30)[0].strip() == "hello"
    assert not set(link.names) & set(netns.namespaces())


@needs_netns
def test_real_namespaces_are_removed_on_sigterm(tmp_path):
    ready = tmp_path / "names"
    code = textwrap.dedent(f"""
        import pathlib, time
        from commpress.integrations import netns
        with netns.slow_link("100mbit") as link:
            pathlib.Path({str(ready)!r}).write_text(" ".join(link.names))
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(300):
            if ready.exists() and ready.read_text():
                break
            assert proc.poll() is None, "the child exited before building the link"
            time.sleep(0.1)
        names = ready.read_text().split()
        assert set(names) <= set(netns.namespaces())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not set(names) & set(netns.namespaces())


@needs_netns
def test_unavailable_says_nothing_as_root():
    assert netns.unavailable() is None and shutil.which("tc")
