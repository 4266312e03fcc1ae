"""A slow link on this machine: network namespaces joined by veth, shaped with tc.

::

    with slow_link(rate="100mbit", delay="1ms") as link:
        # rank i runs in namespace link.names[i] and listens on link.addresses[i]
        subprocess.run(link.exec(0, [sys.executable, "train.py", "--addr", link.addresses[0]]))

Two ranks share one veth pair; more ranks meet at a bridge in a hub namespace. The addresses
(``10.213.0.x``) exist only inside the namespaces, so traffic never leaves the machine. Every
rank's outgoing traffic is shaped with ``tc qdisc add dev cpsl0 root netem [delay DELAY] rate
RATE limit 100000``; where the kernel has no netem, with ``tbf rate RATE burst BURST latency
100ms`` (rate only: no delay is added, and ``SlowLink.delay`` is None).

The commands are built by a pure function, :func:`commands` (argv lists, no shell), and run by
:func:`slow_link`, which deletes every namespace it created on the way out: on an exception, on
Ctrl-C and on SIGTERM or SIGHUP (turned into ``SystemExit`` while the block runs, in the main
thread), a second signal during the clean-up waiting until the clean-up is done. Namespaces are
named ``cpsl-<pid>-<call>-<i>``; :func:`clean_stale` deletes those of processes that are gone
(a run killed with SIGKILL).

Needs root and iproute2 (``ip``, ``tc``): :func:`unavailable` says why not, or None. No torch here:
the parent process of a benchmark imports this without loading torch.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from commpress.errors import CommpressError, ConfigError

__all__ = ["IFNAME", "PREFIX", "SUBNET", "Commands", "NetnsError", "SlowLink", "clean_stale", "commands",
           "namespaces", "slow_link", "unavailable"]

#: Every namespace this module creates starts with this.
PREFIX = "cpsl-"
#: The ranks' addresses are ``SUBNET.1``, ``SUBNET.2``, ... (private to the namespaces).
SUBNET = "10.213.0"
#: The rank's end of its veth, in every rank's namespace.
IFNAME = "cpsl0"
#: netem's queue limit in packets (its default, 1000, drops packets at 100 Mbit/s with 1 ms delay).
NETEM_LIMIT = "100000"
#: tbf's queueing latency bound (the fallback where the kernel has no netem).
TBF_LATENCY = "100ms"

_RATE = re.compile(r"[0-9]+(\.[0-9]+)?([kmgt]i?)?bit", re.IGNORECASE)  # tc and parse_bandwidth agree: bits/s
_DELAY = re.compile(r"[0-9]+(\.[0-9]+)?(s|ms|us)")
_BURST = re.compile(r"[0-9]+([kmg]b?|b)?", re.IGNORECASE)
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGINT too: a shell may have set it to ignore
_calls = itertools.count()


class NetnsError(CommpressError, RuntimeError):
    """A command that builds the slow link failed; ``cmd`` and ``stderr`` say which and why."""

    def __init__(self, cmd: Sequence[str], returncode: int, stderr: str) -> None:
        self.cmd, self.returncode, self.stderr = list(cmd), returncode, (stderr or "").strip()
        super().__init__(f"building the slow link failed: {' '.join(self.cmd)} exited with {returncode}"
                         f"{': ' + self.stderr if self.stderr else ''}. It needs root, iproute2 and a kernel "
                         "with network namespaces, veth and tc (netem or tbf).")


@dataclass(frozen=True)
class Commands:
    """What :func:`commands` builds: the namespaces and the argv lists that make and unmake them.

    ``setup`` runs in order; ``teardown`` deletes the namespaces (their veths and qdiscs go with
    them) in the reverse order of their creation.
    """

    tag: str
    names: list[str]
    hub: str | None
    addresses: list[str]
    qdisc: str
    setup: list[list[str]]
    teardown: list[list[str]]


@dataclass(frozen=True)
class SlowLink:
    """The link :func:`slow_link` built: rank ``i`` lives in ``names[i]`` at ``addresses[i]``.

    ``qdisc`` is ``"netem"`` or ``"tbf"`` (the kernel has no netem); ``delay`` is the delay tc
    adds (None with tbf, or when none was asked).
    """

    tag: str
    names: list[str]
    addresses: list[str]
    rate: str
    delay: str | None
    qdisc: str
    ifname: str = IFNAME

    def exec(self, i: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside rank ``i``'s namespace."""
        return ["ip", "netns", "exec", self.names[i], *argv]

    def qdisc_show(self, i: int = 0) -> str:
        """tc's description of rank ``i``'s qdisc, on one line."""
        out = subprocess.run(self.exec(i, ["tc", "qdisc", "show", "dev", self.ifname]),
                             capture_output=True, text=True).stdout
        return " ".join(out.split())


# ---------------------------------------------------------------------------- the commands
def new_tag() -> str:
    """A namespace-name prefix no other call of this process and no other live process uses."""
    return f"{PREFIX}{os.getpid()}-{next(_calls)}"


def commands(rate: str = "100mbit", delay: str | None = None, burst: str = "32kb", *, world: int = 2,
             qdisc: str = "netem", tag: str | None = None) -> Commands:
    """The argv lists that build (``setup``) and remove (``teardown``) a shaped link of ``world`` ranks.

    Args:
        rate: tc rate of every rank's outgoing traffic, in bits/s as tc writes them: ``100mbit``,
            ``1gbit``, ``800kbit``, ``1mibit`` (tc's ``mbps`` means megabytes/s: refused).
        delay: one-way delay netem adds (``1ms``, ``200us``, ``0.1s``), or None for none.
        burst: tbf's bucket size (``32kb``), used with ``qdisc="tbf"`` only.
        world: ranks, one namespace each (>= 2); more than 2 adds a hub namespace with a bridge.
        qdisc: ``"netem"`` or ``"tbf"`` (rate only: ``delay`` is not applied).
        tag: the names' prefix; None for a fresh one (``new_tag()``), so names are unique per call.
    """
    if not isinstance(rate, str) or not _RATE.fullmatch(rate):
        raise ConfigError(f"slow link rate must be a number and a tc bit rate unit (bit, kbit, mbit, gbit, tbit, "
                          f"kibit, ...); got {rate!r}. Write e.g. '100mbit' (tc reads 'mbps' as megabytes/s).")
    if delay is not None and (not isinstance(delay, str) or not _DELAY.fullmatch(delay)):
        raise ConfigError(f"slow link delay must be a number and s, ms or us; got {delay!r}. Write e.g. '1ms', "
                          "'200us', or None for no added delay.")
    if not isinstance(burst, str) or not _BURST.fullmatch(burst):
        raise ConfigError(f"slow link burst must be a size in bytes, with k, kb, m, mb, g or gb; got {burst!r}. "
                          "Write e.g. '32kb'.")
    if isinstance(world, bool) or not isinstance(world, int) or world < 2:
        raise ConfigError(f"a slow link joins world >= 2 ranks; got world={world!r}. Use world=2 for one veth pair.")
    if qdisc not in ("netem", "tbf"):
        raise ConfigError(f"qdisc must be 'netem' or 'tbf'; got {qdisc!r}.")
    tag = new_tag() if tag is None else tag
    names = [f"{tag}-{i}" for i in range(world)]
    hub = f"{tag}-hub" if world > 2 else None
    addresses = [f"{SUBNET}.{i + 1}" for i in range(world)]
    created = names + ([hub] if hub else [])
    setup: list[list[str]] = []
    for name in created:
        setup += [["ip", "netns", "add", name], ["ip", "-n", name, "link", "set", "lo", "up"]]
    if hub is None:  # two ranks: one veth pair, both ends created inside the namespaces
        setup.append(["ip", "link", "add", IFNAME, "netns", names[0], "type", "veth", "peer", "name", IFNAME,
                      "netns", names[1]])
    else:
        setup += [["ip", "-n", hub, "link", "add", "br0", "type", "bridge"],
                  ["ip", "-n", hub, "link", "set", "br0", "up"]]
        for i, name in enumerate(names):
            port = f"p{i}"
            setup += [["ip", "link", "add", IFNAME, "netns", name, "type", "veth", "peer", "name", port, "netns", hub],
                      ["ip", "-n", hub, "link", "set", port, "master", "br0"],
                      ["ip", "-n", hub, "link", "set", port, "up"]]
    for name, addr in zip(names, addresses):
        setup += [["ip", "-n", name, "addr", "add", f"{addr}/24", "dev", IFNAME],
                  ["ip", "-n", name, "link", "set", IFNAME, "up"],
                  _shaping(name, qdisc, rate, delay, burst)]
    teardown = [["ip", "netns", "del", name] for name in reversed(created)]
    return Commands(tag=tag, names=names, hub=hub, addresses=addresses, qdisc=qdisc, setup=setup, teardown=teardown)


def _shaping(name: str, qdisc: str, rate: str, delay: str | None, burst: str) -> list[str]:
    tc = ["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", IFNAME, "root"]
    if qdisc == "netem":
        return [*tc, "netem", *(["delay", delay] if delay is not None else []), "rate", rate, "limit", NETEM_LIMIT]
    return [*tc, "tbf", "rate", rate, "burst", burst, "latency", TBF_LATENCY]


def _is_shaping(argv: Sequence[str]) -> bool:
    return list(argv[4:8]) == ["tc", "qdisc", "add", "dev"]


# ---------------------------------------------------------------------------- running them
def unavailable() -> str | None:
    """Why :func:`slow_link` cannot run here (not root, no ``ip`` or ``tc``), or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (network namespaces and tc); run it as root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"needs iproute2 ({', '.join(missing)} not found); install it with: apt-get install -y iproute2"
    return None


def namespaces() -> list[str]:
    """The network namespaces of this machine (``ip netns list``)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def clean_stale() -> list[str]:
    """Delete namespaces ``cpsl-<pid>-*`` whose creating process ``pid`` is gone; returns their names."""
    removed = []
    for name in namespaces():
        if not name.startswith(PREFIX):
            continue
        try:
            pid = int(name[len(PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
            removed.append(name)
    return removed


@contextmanager
def slow_link(rate: str = "100mbit", delay: str | None = None, burst: str = "32kb", *,
              world: int = 2) -> Iterator[SlowLink]:
    """Build a shaped link of ``world`` namespaces (see :func:`commands`), yield it, always remove it.

    netem is tried first; if the kernel does not know it, tbf shapes the rate (no delay added).
    A failing command raises :class:`NetnsError` after what was built is removed. While the block
    runs (in the main thread), SIGTERM and SIGHUP raise ``SystemExit(128 + signum)`` and SIGINT
    ``KeyboardInterrupt``, so that ``finally`` blocks run; the previous handlers come back after.
    """
    plan = commands(rate, delay, burst, world=world)
    created: list[str] = []
    saved = _install_handlers()
    try:
        qdisc, shaped, i = plan.qdisc, False, 0
        while i < len(plan.setup):
            argv = plan.setup[i]
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                if _is_shaping(argv) and qdisc == "netem" and not shaped and "unknown" in (done.stderr or "").lower():
                    qdisc = "tbf"  # this kernel has no netem: the same commands, tbf in place of netem
                    plan = commands(rate, delay, burst, world=world, qdisc=qdisc, tag=plan.tag)
                    continue
                raise NetnsError(argv, done.returncode, done.stderr)
            if argv[:3] == ["ip", "netns", "add"]:
                created.append(argv[3])
            shaped = shaped or _is_shaping(argv)
            i += 1
        yield SlowLink(tag=plan.tag, names=plan.names, addresses=plan.addresses, rate=rate,
                       delay=delay if qdisc == "netem" else None, qdisc=qdisc)
    finally:
        _teardown(plan.teardown, created, saved)


def _teardown(teardown: list[list[str]], created: list[str], saved: dict | None) -> None:
    """Delete the created namespaces; a signal that arrives meanwhile is raised once they are gone."""
    pending: list[int] = []
    if saved is not None:
        for sig in _SIGNALS:
            signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        for argv in teardown:
            if argv[-1] in created:
                subprocess.run(argv, capture_output=True, text=True)
    finally:
        if saved is not None:
            for sig, handler in saved.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    if pending:
        _raise_for(pending[0])


def _install_handlers() -> dict | None:
    """Signals become exceptions (so ``finally`` runs); returns the previous handlers, or None
    outside the main thread (where Python allows no handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    saved = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, lambda signum, frame: _raise_for(signum))
    return saved


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _pid_alive(pid: int) -> bool:
    """A process of this host with this pid runs (not gone, not a zombie); as
    ``commpress.network._watchdog.pid_alive``, without importing the network layer (and torch)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True
