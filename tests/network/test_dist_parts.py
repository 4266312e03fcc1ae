"""The parts of the distributed network that need no process group: framing of the payload
exchange, the client layout, the scale candidates, the watchdog's diagnosis, job validation."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
import time
import zlib

import pytest
import torch
import torch.distributed as dist

import commpress as cp
from commpress.distributed import Job
from commpress.distributed._faults import parse
from commpress.errors import ConfigError, DistributedError, PayloadError
from commpress.network._exchange import HEADER_WORDS, STATUS_DIVERGED, blob_width, frame, unframe
from commpress.network._watchdog import Watchdog
from commpress.network.dist import TorchDistNetwork, _around, block_layout


# ------------------------------------------------------------------ framing
def _exchange(blocks: list[list[bytes]]):
    """What the two all-gathers would deliver for these per-rank payload lists."""
    max_rows = max(len(b) for b in blocks)
    framed = [frame(b, max_rows) for b in blocks]
    headers = torch.stack([h for h, _ in framed])
    width = blob_width(headers)
    blobs = []
    for _, blob in framed:
        t = torch.zeros(width, dtype=torch.uint8)
        t[: len(blob)] = torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob else t[:0]
        blobs.append(t)
    counts = [len(b) for b in blocks]
    starts = [sum(counts[:r]) for r in range(len(counts))]
    return headers, blobs, counts, starts


def test_unframe_returns_every_payload_in_client_order():
    blocks = [[b"ab", b""], [b"cde", b"f", b"ghij"], [b"k"]]
    headers, blobs, counts, starts = _exchange(blocks)
    assert unframe(headers, blobs, counts, starts, "test") == [p for b in blocks for p in b]
    assert blob_width(headers) == 8


def test_a_blob_shorter_than_announced_is_rejected_naming_the_rank():
    headers, blobs, counts, starts = _exchange([[b"ab"], [b"cdef"]])
    blobs = [b[:3] for b in blobs]  # the padded width shrank: rank 1's 4 bytes cannot all have arrived
    with pytest.raises(PayloadError, match=r"rank 1 \(clients 1\.\.1\) announced 4 payload bytes but only 3"):
        unframe(headers, blobs, counts, starts, "test")


def test_damaged_bytes_fail_the_checksum_naming_the_rank():
    headers, blobs, counts, starts = _exchange([[b"ab"], [b"cdef", b"gh"]])
    blobs[1][2] ^= 0x01
    with pytest.raises(PayloadError, match=r"from rank 1 \(clients 1\.\.2\) fail their CRC-32"):
        unframe(headers, blobs, counts, starts, "test")
    headers, blobs, counts, starts = _exchange([[b"ab"], [b"cdef", b"gh"]])
    unframe(headers, blobs, counts, starts, "test")  # control: undamaged bytes pass


@pytest.mark.parametrize("word,value", [(HEADER_WORDS, -1), (HEADER_WORDS + 1, 7)])
def test_a_malformed_header_is_rejected(word, value):
    headers, blobs, counts, starts = _exchange([[b"ab", b"c"], [b"d"]])
    headers[1, word] = value  # a negative length, or a length beyond rank 1's single client
    with pytest.raises(PayloadError, match="rank 1 .* malformed header"):
        unframe(headers, blobs, counts, starts, "test")


def test_a_failed_rank_sends_only_its_status():
    header, blob = frame(None, 3, STATUS_DIVERGED)
    assert blob == b"" and int(header[0]) == STATUS_DIVERGED and not bool(header[1:].any())
    header, blob = frame([b"xy"], 3)
    assert int(header[0]) == 0 and int(header[1]) == zlib.crc32(b"xy")


# ------------------------------------------------------------------ layout, scale candidates
@pytest.mark.parametrize("n,world", [(8, 1), (8, 4), (6, 4), (7, 3), (5, 5)])
def test_blocks_are_contiguous_balanced_and_cover_every_client(n, world):
    starts, counts = block_layout(n, world)
    assert sum(counts) == n and max(counts) - min(counts) <= 1 and min(counts) >= 1
    assert [s + c for s, c in zip(starts, counts)][:-1] == starts[1:] and starts[0] == 0


def test_scale_candidates_surround_the_quotient():
    q = 5 / 24
    got = _around(q, 3)
    assert len(got) == 7 and got[3] == q and got == sorted(got) and len(set(got)) == 7
    assert got[4] == math.nextafter(q, math.inf) and got[2] == math.nextafter(q, -math.inf)
    scale, x = 5 / 24, torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = scale * x
    quotients = (y / x).tolist()
    assert all(scale in _around(v, 3) for v in quotients)  # the true factor is always among the candidates
    assert any(v != scale for v in quotients)                # and a bare quotient is not always it


def test_the_network_needs_a_process_group():
    assert not dist.is_initialized()
    with pytest.raises(DistributedError, match="init_process_group"):
        TorchDistNetwork(4)


# ------------------------------------------------------------------ watchdog
class _Peer:
    """Rank 1's heartbeat, written into the shared store by hand."""

    def __init__(self, store, pid: int, ops: int, rnd: int = 3) -> None:
        self.store, self.pid, self.ops, self.rnd = store, pid, ops, rnd

    def beat(self, state: str = "running") -> None:
        self.store.set("hb/1", f"{time.time():.3f} {self.pid} {socket.gethostname()} {self.ops} {self.rnd} {state}")


def _watchdog(store) -> Watchdog:
    dog = Watchdog(lambda: store, 0, 2, timeout=0.5, prefix="")
    dog.ops, dog.round = 5, 3
    return dog


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_watchdog_names_a_dead_rank_a_failed_rank_and_a_silent_rank():
    store = dist.HashStore()
    dog = _watchdog(store)
    try:
        _Peer(store, _dead_pid(), ops=5).beat()
        assert dog.culprits() == ["rank 1 died (its process " + store.get("hb/1").decode().split()[1]
                                  + " is gone; its last heartbeat was in round 3)"]
        store.set("err/1", "PayloadError: bad bytes")
        assert dog.culprits() == ["rank 1 failed: PayloadError: bad bytes"]
        store.delete_key("err/1")
        _Peer(store, os.getpid(), ops=5).beat()  # a live process whose heartbeat does not move: frozen
        assert dog.culprits()[0].startswith("rank 1 stopped responding (no heartbeat")
    finally:
        dog.stop()


def test_watchdog_names_a_live_rank_that_never_reached_the_collective():
    store = dist.HashStore()
    dog = _watchdog(store)
    peer = _Peer(store, os.getpid(), ops=4)  # alive, beating, one collective behind this rank
    stop = threading.Event()

    def beating():
        while not stop.wait(0.02):
            peer.beat()

    thread = threading.Thread(target=beating, daemon=True)
    peer.beat()
    thread.start()
    try:
        assert dog.culprits() == ["rank 1 hangs: it is alive but never reached this collective (it is in round 3, "
                                  "after 4 collectives; this rank is at collective 5)"]
        peer.ops = 5  # control: a peer in the same collective is not blamed
        time.sleep(0.05)
        assert dog.culprits() == []
    finally:
        stop.set()
        thread.join()
        dog.stop()


def test_watchdog_turns_a_failed_collective_into_a_distributed_error_naming_the_rank():
    store = dist.HashStore()
    dog = _watchdog(store)
    try:
        store.set("err/1", "NonFiniteError: boom")

        def broken():
            raise RuntimeError("Connection closed by peer [127.0.0.1]:1234")

        with pytest.raises(DistributedError, match=r"rank 0: uplink in round 3 failed after .* rank 1 failed: "
                                                   r"NonFiniteError: boom\. \[torch.distributed: Connection closed"):
            dog.call("uplink", broken)
        assert dog.ops == 6
    finally:
        dog.stop()


# ------------------------------------------------------------------ jobs and faults
SPEC = {"name": "quadratic", "params": {"n_clients": 4, "dim": 8}}


@pytest.mark.parametrize("kw,words", [
    ({"problem": cp.problems.make("quadratic", n_clients=2, dim=3)}, "Problem objects cannot be sent"),
    ({"compressor": cp.compressors.make("cq")}, "Compressor objects cannot be sent"),
    ({"params": {"x0": torch.zeros(8)}}, "plain JSON data"),
    ({"checkpoint_every": 5}, "checkpoint_every needs checkpoint_dir"),
    ({"checkpoint_every": 0, "checkpoint_dir": "x"}, "checkpoint_every must be an integer >= 1"),
    ({"iterations": -1}, "iterations must be an integer >= 0"),
])
def test_bad_jobs_are_rejected_with_the_fix(kw, words):
    with pytest.raises(ConfigError, match=words):
        Job(**{"problem": SPEC, "algorithm": "marina", **kw})


def test_job_specs_round_trip_and_fingerprint_what_is_computed():
    job = Job(problem={"name": "quadratic", "n_clients": 4, "dim": 8}, algorithm="marina", compressor="cq")
    assert job.problem == SPEC
    assert Job.from_dict(job.to_dict()) == job
    moved = Job(**{**job.to_dict(), "checkpoint_dir": "elsewhere", "metrics_csv": "m.csv"})
    assert moved.fingerprint() == job.fingerprint()
    assert Job(**{**job.to_dict(), "seed": 1}).fingerprint() != job.fingerprint()


@pytest.mark.parametrize("text", ["exit@1", "boom@1:2", "exit@x:2"])
def test_bad_fault_specs_are_config_errors(text):
    with pytest.raises(ConfigError):
        parse(text)
