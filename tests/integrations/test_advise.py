"""``commpress advise``: the step-time model on synthetic numbers, the measurements, the command."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from commpress.cli import main
from commpress.errors import ConfigError, InputTypeError
from commpress.integrations import advise as adv
from commpress.integrations.advise import FP16, FP32, Candidate, Compute, Link

MBIT = 1e6 / 8  # bytes/s of 1 Mbit/s


# ------------------------------------------------------------------ the link model
def test_ring_costs_on_synthetic_numbers():
    link = Link(bandwidth=1e6, latency=1e-3)
    # k = 4: all-reduce moves 2(k-1)/k = 1.5 B per rank and waits 2(k-1) = 6 hops per message
    assert adv.allreduce_seconds(1e6, 4, link) == pytest.approx(6e-3 + 1.5)
    assert adv.allreduce_seconds(1e6, 4, link, messages=3) == pytest.approx(18e-3 + 1.5)
    # all-gather moves (k-1) B and waits (k-1) hops
    assert adv.allgather_seconds(1e6, 4, link) == pytest.approx(3e-3 + 3.0)
    # k = 2: one rank's B crosses the link once either way; k = 1: nothing to send
    assert adv.allreduce_seconds(1e6, 2, link) == pytest.approx(adv.allgather_seconds(1e6, 2, link) + 1e-3)
    assert adv.allreduce_seconds(1e6, 1, link) == adv.allgather_seconds(1e6, 1, link) == 0.0


def _candidates(d=10_000_000, sign_codec=0.2, buckets=2):
    return [
        Candidate(FP32, 4 * d, 0.0, "all_reduce", buckets, overlap=True),
        Candidate(FP16, 2 * d, 0.02, "all_reduce", buckets, overlap=True),
        Candidate("sign", d / 8 + 8 * buckets, sign_codec, "all_gather", 2 * buckets),
    ]


COMPUTE = Compute(forward=0.03, backward=0.06, optimizer=0.01)


def test_predict_adds_the_terms_of_each_candidate():
    d, link = 10_000_000, Link(100 * MBIT, 1e-3)
    preds = {p.name: p for p in adv.predict(_candidates(d), link=link, processes=2, compute=COMPUTE, d=d)}
    fp32_comm = 2 * 2 * 1e-3 + 4 * d / link.bandwidth  # 2 buckets x 2(k-1) hops + B / beta
    assert preds[FP32].comm == pytest.approx(fp32_comm)
    # asynchronous all-reduce: the backward pass hides behind the (longer) communication
    assert preds[FP32].step == pytest.approx(0.03 + fp32_comm + 0.01)
    fp16_comm = 4e-3 + 2 * d / link.bandwidth
    assert preds[FP16].step == pytest.approx(0.03 + fp16_comm + 0.01 + 0.02)
    sign_comm = 4 * 1e-3 + (d / 8 + 16) / link.bandwidth  # 2 all-gathers per bucket, (k-1) = 1
    assert preds["sign"].step == pytest.approx(COMPUTE.total + 0.2 + sign_comm)
    assert preds["sign"].bits_per_coordinate == pytest.approx(1 + 128 / d)
    assert preds["sign"].vs_fp32 == pytest.approx(preds[FP32].step / preds["sign"].step)
    assert preds["sign"].vs_fp16 == pytest.approx(preds[FP16].step / preds["sign"].step)
    # the headline: 1 bit per coordinate at 100 Mbit/s is > 5x faster than fp32 and > 2.5x than fp16
    assert preds["sign"].vs_fp32 > 5 and preds["sign"].vs_fp16 > 2.5


def test_overlap_hides_communication_shorter_than_backward():
    link = Link(1e12, 0.0)  # almost free link: comm << backward
    c = Candidate(FP32, 4e6, 0.0, "all_reduce", 1, overlap=True)
    (p,) = adv.predict([c], link=link, processes=2, compute=COMPUTE, d=10**6)
    assert p.step == pytest.approx(COMPUTE.total)
    sync = Candidate(FP32, 4e6, 0.0, "all_reduce", 1, overlap=False)
    (q,) = adv.predict([sync], link=link, processes=2, compute=COMPUTE, d=10**6)
    assert q.step == pytest.approx(COMPUTE.total + q.comm) and q.step > p.step


def test_predict_needs_the_fp32_reference():
    with pytest.raises(ConfigError, match="fp32 all-reduce"):
        adv.predict(_candidates()[1:], link=Link(1e8, 0.0), processes=2, compute=COMPUTE, d=10)


def test_verdicts_on_a_slow_and_a_fast_link():
    d = 10_000_000
    slow = adv.predict(_candidates(d), link=Link(100 * MBIT, 1e-3), processes=2, compute=COMPUTE, d=d)
    text = adv.verdict(slow)
    assert text.startswith("compression pays: sign is fastest") and "faster than the fp16 hook" in text
    fast = adv.predict(_candidates(d), link=Link(10e9 / 8 * 100, 1e-6), processes=2, compute=COMPUTE, d=d)
    text = adv.verdict(fast, break_even=50 * MBIT)
    assert text.startswith("on this link compression does not pay: fp32 all-reduce is fastest")
    assert "the best compressor (sign)" in text and "below about 50 Mbit/s" in text
    # in between, fp16's halved bytes win but sign's codec does not pay
    mid = adv.predict(_candidates(d, sign_codec=2.0), link=Link(1e9 / 8, 1e-6), processes=2, compute=COMPUTE, d=d)
    assert adv.verdict(mid).startswith("on this link compression beyond fp16 does not pay: the fp16 hook is fastest")


def test_break_even_bandwidth_keeps_the_links_collective_factors():
    """With gloo's factors (its all-gather 1.6x the ring, its all-reduce 1.1x) the two steps are equal at
    the returned bandwidth, which is not the rings' crossing."""
    d = 10_000_000
    sign = Candidate("sign", d / 8 + 16, 0.05, "all_gather", 2)
    fp32 = Candidate(FP32, 4 * d, 0.0, "all_reduce", 1, overlap=True)
    gloo = Link(1.25e7, 1e-4, all_reduce_factor=1.1, all_gather_factor=1.6)
    bw = adv.break_even_bandwidth(sign, fp32, latency=1e-4, processes=2, compute=COMPUTE, factors=gloo)
    at = dataclasses.replace(gloo, bandwidth=bw)
    steps = adv.predict([fp32, sign], link=at, processes=2, compute=COMPUTE, d=d)
    assert steps[0].step == pytest.approx(steps[1].step, rel=1e-6)
    # negative control: on rings (no factors) the crossing is elsewhere
    ring = adv.break_even_bandwidth(sign, fp32, latency=1e-4, processes=2, compute=COMPUTE)
    assert not math.isclose(ring, bw, rel_tol=1e-3)


def test_break_even_bandwidth_is_where_the_steps_cross():
    cands = {c.name: c for c in _candidates()}
    a, b = cands["sign"], cands[FP32]
    bw = adv.break_even_bandwidth(a, b, latency=1e-3, processes=2, compute=COMPUTE)
    assert bw is not None

    def step(c, bandwidth):
        link = Link(bandwidth, 1e-3)
        return adv.predict([b, c] if c is not b else [b], link=link, processes=2, compute=COMPUTE, d=10**7)[-1].step

    assert step(a, bw) == pytest.approx(step(b, bw), rel=1e-6)
    assert step(a, bw / 2) < step(b, bw / 2)  # slower link: compression wins
    assert step(a, bw * 2) > step(b, bw * 2)  # faster link: fp32 wins
    # negative control: a compressor that is never faster (same bytes, extra codec) has no break-even
    worse = Candidate("worse", b.payload_bytes, 0.1, "all_reduce", b.messages, overlap=True)
    assert adv.break_even_bandwidth(worse, b, latency=1e-3, processes=2, compute=COMPUTE) is None


# ------------------------------------------------------------------ fitting a link
@pytest.mark.parametrize("k", [2, 4])
def test_fit_link_recovers_the_link_that_made_the_timings(k):
    truth = Link(bandwidth=3e8, latency=2e-4)
    samples = [("all_reduce", b, adv.allreduce_seconds(b, k, truth)) for b in (4e3, 2.6e5, 4e6)]
    samples += [("all_gather", b, adv.allgather_seconds(b, k, truth)) for b in (4e3, 2.6e5, 4e6)]
    fit = adv.fit_link(samples, k)
    assert fit.bandwidth == pytest.approx(truth.bandwidth, rel=1e-9)
    assert fit.latency == pytest.approx(truth.latency, rel=1e-9)
    # negative control: the same timings read as if from another number of ranks give another link
    other = adv.fit_link(samples, k + 1)
    assert not math.isclose(other.bandwidth, truth.bandwidth, rel_tol=1e-3)


@pytest.mark.parametrize("k", [2, 4])
def test_rebased_link_keeps_the_measured_times_of_fsdp_collectives(k):
    """The probe's factors are relative to the bandwidth it fitted; on the link tc states (faster here)
    a large reduce-scatter and all-gather must still take what the probe measured."""
    probed = Link(9.15e6, 0.0, reduce_scatter_factor=1.57, gather_tensor_factor=1.15)
    stated = probed.rebased(12.5e6, 0.0, source="tc")
    big = 4e7
    assert adv.reduce_scatter_seconds(big, k, stated) == pytest.approx(adv.reduce_scatter_seconds(big, k, probed))
    # the parameter all-gather's factor multiplies the ring all-gather (as advise's FSDP2 rows use it)
    assert stated.gather_tensor_factor * adv.allgather_seconds(big, k, stated) == \
        pytest.approx(probed.gather_tensor_factor * adv.allgather_seconds(big, k, probed))
    assert stated.reduce_scatter_factor == pytest.approx(1.57 * 12.5 / 9.15)
    assert (stated.bandwidth, stated.source) == (12.5e6, "tc")
    # negative control: the factors copied unscaled predict the stated link's collectives 1.37x too fast
    copied = Link(12.5e6, 0.0, reduce_scatter_factor=1.57, gather_tensor_factor=1.15)
    assert adv.reduce_scatter_seconds(big, k, probed) / adv.reduce_scatter_seconds(big, k, copied) == \
        pytest.approx(12.5 / 9.15)


@pytest.mark.parametrize("k", [2, 4])
def test_fit_link_gives_each_collective_its_measured_factor(k):
    """A backend whose all-gather moves bytes 1.6x slower than its all-reduce (gloo across veth): the
    fitted line is a compromise, and each collective's factor restores its own large-message times."""
    ring = Link(bandwidth=1.25e7, latency=0.0)  # no latency: each factor is then exact at every size
    sizes = (6.5e4, 1e6, 4e6)
    samples = [("all_reduce", b, 1.1 * adv.allreduce_seconds(b, k, ring)) for b in sizes]
    samples += [("all_gather", b, 1.6 * adv.allgather_seconds(b, k, ring)) for b in sizes]
    fit = adv.fit_link(samples, k)
    for collective, b, seconds in samples:
        if b >= 1e6:  # the largest messages (within 8x of the largest) set the factors
            model = adv.allreduce_seconds if collective == "all_reduce" else adv.allgather_seconds
            factor = fit.all_reduce_factor if collective == "all_reduce" else fit.all_gather_factor
            assert factor * model(b, k, fit) == pytest.approx(seconds, rel=1e-9)
    assert fit.all_gather_factor / fit.all_reduce_factor == pytest.approx(1.6 / 1.1, rel=1e-9)
    assert "all-gather " in fit.describe() and "collectives over the ring model" in fit.describe()
    # negative control: the same timings with one efficiency fit one line, and every factor is 1
    same = adv.fit_link([(c, b, t / (1.1 if c == "all_reduce" else 1.6)) for c, b, t in samples], k)
    assert same.all_reduce_factor == pytest.approx(1.0) and same.all_gather_factor == pytest.approx(1.0)
    assert "collectives over the ring model" not in Link(1e8, 0.0).describe()


def test_fit_link_keeps_latency_nonnegative():
    # timings exactly proportional to the bytes, minus a little: alpha would come out < 0
    samples = [("all_gather", b, b / 1e8 - 1e-6) for b in (1e5, 1e6, 1e7)]
    fit = adv.fit_link(samples, 2)
    assert fit.latency == 0.0 and fit.bandwidth == pytest.approx(1e8, rel=1e-2)


@pytest.mark.parametrize("samples,match", [
    ([("all_reduce", 1e3, 1e-3)], "at least two"),
    ([("broadcast", 1e3, 1e-3), ("all_reduce", 1e6, 1e-2)], "unknown collective"),
    ([("all_reduce", 1e3, 0.0), ("all_reduce", 1e6, 1e-2)], "> 0 s"),
])
def test_fit_link_rejects_bad_samples(samples, match):
    with pytest.raises(ConfigError, match=match):
        adv.fit_link(samples, 2)


# ------------------------------------------------------------------ units
@pytest.mark.parametrize("text,expected", [
    ("100Mbit", 12.5e6), ("100mbit", 12.5e6), ("1Gbit", 1.25e8), ("1.5 gbit", 1.875e8), ("800kbit", 1e5),
    ("50MB/s", 5e7), ("1MiB/s", 1024**2), ("1e3bit", 125.0),
    # bits/s: "bit" in any case, or a lowercase b after an uppercase prefix
    ("100mbit/s", 12.5e6), ("100Mbps", 12.5e6), ("100Mb/s", 12.5e6), ("100Mbits", 12.5e6), ("128Kbps", 16e3),
    ("1Gbps", 1.25e8), ("1 Gbit/s", 1.25e8), ("1Mibit", 2**20 / 8),
    # bytes/s: an uppercase B, or "byte" spelled out
    ("12.5MBps", 12.5e6), ("12.5 MB/s", 12.5e6), ("5MByte/s", 5e6), ("2GiB/s", 2 * 1024**3), ("3B/s", 3.0),
])
def test_parse_bandwidth(text, expected):
    assert adv.parse_bandwidth(text) == pytest.approx(expected)


@pytest.mark.parametrize("text,expected", [("1ms", 1e-3), ("50us", 5e-5), ("0.2s", 0.2), ("0ms", 0.0), ("10 ns", 1e-8)])
def test_parse_latency(text, expected):
    assert adv.parse_latency(text) == pytest.approx(expected)


@pytest.mark.parametrize("fn,text,match", [
    (adv.parse_bandwidth, "100", "no unit"),
    (adv.parse_bandwidth, "100MB", "unknown bandwidth unit 'MB'.*MB/s"),  # a size, not a rate
    (adv.parse_bandwidth, "100Mb", "unknown bandwidth unit 'Mb'.*Mbit/s"),
    (adv.parse_bandwidth, "100MBPS", "unknown bandwidth unit 'MBPS'"),
    (adv.parse_bandwidth, "2mbps", "ambiguous.*tc reads it as bytes/s.*2Mbit/s.*2MB/s"),  # tc's bytes, others' bits
    (adv.parse_bandwidth, "1gbps", "ambiguous.*1Gbit/s.*1GB/s"),
    (adv.parse_bandwidth, "128kbps", "ambiguous.*128kbit/s.*128kB/s"),
    (adv.parse_bandwidth, "fast", "cannot read"),
    (adv.parse_bandwidth, "0Mbit", "positive"),
    (adv.parse_latency, "1", "no unit"),
    (adv.parse_latency, "1 day", "unknown latency unit"),
])
def test_units_errors_say_what_to_write(fn, text, match):
    with pytest.raises(ConfigError, match=match):
        fn(text)


def test_link_rejects_nonsense():
    with pytest.raises(ConfigError, match="bandwidth"):
        Link(0.0, 1e-3)
    with pytest.raises(ConfigError, match="latency"):
        Link(1e6, -1.0)


# ------------------------------------------------------------------ models, buckets, measurements
def test_ddp_buckets_follow_ddp_rules():
    # reverse order, the first bucket closes at 6 bytes, the others at 10
    assert adv.ddp_buckets([5, 5, 5, 5], element_size=1, first_bucket_bytes=6, bucket_cap_bytes=10) == [10, 10]
    assert adv.ddp_buckets([3, 100, 2], element_size=1, first_bucket_bytes=6, bucket_cap_bytes=10) == [102, 3]
    # the 10^7-parameter MLP: a 1 MiB-or-more first bucket, then the rest (checked against DDP's rebuild)
    sizes = [784 * 2800, 2800, 2800 * 2800, 2800, 28000, 10]
    assert adv.ddp_buckets(sizes) == [28010 + 2800 * 2800 + 2800, 784 * 2800 + 2800]


def test_make_model_sizes_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    model, (x, y) = adv.make_model(params=200_000, batch_size=4)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - 200_000) / 200_000 < 0.01
    assert model(x).shape == (4, 10) and y.shape == (4,)
    cnn, (xc, _) = adv.make_model("cnn", batch_size=2)
    assert cnn(xc).shape == (2, 10)
    assert torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(ConfigError, match="unknown model"):
        adv.make_model("rnn")
    with pytest.raises(InputTypeError):
        adv.make_model(params=1e5)


def test_measurements_are_positive_and_payloads_exact():
    import commpress as cp

    model, batch = adv.make_model("mlp", hidden=32, batch_size=8)
    c = adv.measure_compute(model, batch, repeat=2, threads=1)
    assert c.forward > 0 and c.backward > 0 and c.optimizer > 0
    buckets = [1000, 3000]
    cands = {x.name: x for x in adv.measure_candidates(["sign", "identity", "qsgd:s=7"], buckets, 3, repeat=1)}
    assert cands[FP32].payload_bytes == 4 * 4000 and cands[FP32].messages == 2
    assert cands[FP16].payload_bytes == 2 * 4000
    sign = cp.compressors.make("sign")
    exact = sum(len(sign.encode(torch.ones(1, b), 0, clients=[0], n=3)[0]) + 8 for b in buckets)
    assert cands["sign"].payload_bytes == exact and cands["sign"].collective == "all_gather"
    assert cands["sign"].messages == 4  # a length word and a payload per bucket
    assert cands["identity"].collective == "all_reduce" and cands["identity"].payload_bytes == 4 * (4000 + 2)
    assert all(x.codec_seconds > 0 for name, x in cands.items() if name != FP32)


def test_compressor_specs():
    assert adv.compressor_from_spec("qsgd:s=7").params()["s"] == 7
    assert adv.compressor_from_spec("cq:levels=15,range=norm").params() == {"levels": 15, "range": "norm"}
    with pytest.raises(ConfigError, match="key=value"):
        adv.compressor_from_spec("qsgd:7")


def test_measure_link_between_two_local_processes():
    link = adv.measure_link(2, sizes=(1024, 262144), repeat=2, timeout=60)
    assert link.bandwidth > 1e6 and link.latency < 0.1  # loopback: far above 8 Mbit/s
    assert link.source.startswith("measured")


# ------------------------------------------------------------------ the command
#: Numbers injected into the command's verdict tests (see _inject_timings): about what one CPU
#: thread measures for the 2e5-parameter MLP (compute per step, codec seconds per step).
SMALL_COMPUTE = Compute(forward=2.6e-4, backward=3.7e-4, optimizer=1e-4)
CODEC = {FP16: 4e-4, "sign": 1e-3, "qsgd:s=7": 8e-3}


def _inject_timings(monkeypatch, codec=CODEC):
    """No wall-clock number decides a verdict test: the command runs end to end, but its compute
    timing is SMALL_COMPUTE and each candidate's codec time is ``codec[name]``. The payload bytes stay
    the real packed lengths (measure_candidates still encodes, once). The timings themselves are
    tested in test_measurements_are_positive_and_payloads_exact."""
    measure_candidates = adv.measure_candidates

    def candidates(specs, buckets, processes, **kw):
        real = measure_candidates(specs, buckets, processes, **{**kw, "repeat": 1})
        return [dataclasses.replace(c, codec_seconds=codec.get(c.name, 0.0)) for c in real]

    monkeypatch.setattr(adv, "measure_compute", lambda model, batch, **kw: SMALL_COMPUTE)
    monkeypatch.setattr(adv, "measure_candidates", candidates)
    monkeypatch.setattr(adv, "measure_powersgd_hook", lambda model, batch, ranks, **kw: {r: 0.0 for r in ranks})


def _table(out):
    rows = [line for line in out.splitlines() if line.startswith("| ") and "method" not in line]
    return {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in rows}


SLOW = ["advise", "--bandwidth", "100Mbit", "--latency", "1ms", "--model-params", "2e5",
        "--compressors", "sign,qsgd:s=7", "--repeat", "1", "--threads", "1"]


def test_cli_on_a_slow_what_if_link(capsys, monkeypatch):
    _inject_timings(monkeypatch)
    assert main(SLOW) == 0
    out = capsys.readouterr().out
    assert "link: 100 Mbit/s, latency 1.0 ms (given: --bandwidth 100Mbit --latency 1ms); 2 processes" in out
    table = _table(out)
    assert sorted(table) == sorted([FP32, FP16, "sign", "qsgd:s=7"])
    assert table["sign"][2] == "1.00" and table["qsgd:s=7"][2] == "8.00"  # codec ms: the injected numbers
    assert "verdict: compression pays: sign is fastest" in out


def test_negative_control_the_slow_link_verdict_follows_the_injected_codec_times(capsys, monkeypatch):
    # the same command with a sign codec of 30 ms per step: qsgd (4x the bytes, 8 ms) is now fastest
    _inject_timings(monkeypatch, {**CODEC, "sign": 0.03})
    assert main(SLOW) == 0
    out = capsys.readouterr().out
    assert "verdict: compression pays: qsgd:s=7 is fastest" in out and "sign is fastest" not in out


def test_cli_says_plainly_when_compression_does_not_pay(capsys, monkeypatch):
    _inject_timings(monkeypatch)
    argv = ["advise", "--bandwidth", "400Gbit", "--latency", "0us", "--model", "mlp", "--hidden", "64",
            "--compressors", "sign", "--repeat", "1", "--threads", "1", "--processes", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "verdict: on this link compression does not pay: fp32 all-reduce is fastest" in out
    assert "4 processes" in out


@pytest.mark.parametrize("argv,message", [
    (["--bandwidth", "100Mbit"], "--bandwidth and --latency together"),
    (["--bandwidth", "100", "--latency", "1ms"], "has no unit"),
    (["--bandwidth", "1Gbit", "--latency", "1ms", "--processes", "1"], "--processes must be >= 2"),
    (["--bandwidth", "1Gbit", "--latency", "1ms", "--compressors", "nosuch"], "nosuch"),
    (["--master-addr", "10.0.0.1"], "--rank"),
])
def test_cli_errors_in_one_line(capsys, argv, message):
    assert main(["advise", *argv, "--model", "mlp", "--hidden", "8", "--repeat", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        main(["advise", "--help"])
    assert info.value.code == 0
    assert "commpress advise --bandwidth 100Mbit --latency 1ms" in capsys.readouterr().out


# ------------------------------------------------------------------ PyTorch's other hooks
def test_powersgd_payload_follows_the_hooks_rule():
    """P and Q per matrix where they are smaller than the matrix by min_compression_rate (2), the
    tensor itself otherwise; vectors uncompressed (PyTorch's powerSGD_hook)."""
    shapes = [(100, 50), (100,), (3, 4), (8, 2, 3, 3)]  # a conv weight is viewed as (8, 18)
    r = 2
    expected = 4 * ((100 + 50) * 2 + 100 + 3 * 4 + (8 + 18) * 2)  # 3x4: (3+4)*2*2 = 28 > 12, kept
    assert adv.powersgd_payload(shapes, r) == expected
    assert adv.powersgd_payload(shapes, 1) < expected < adv.powersgd_payload(shapes, 4)
    assert adv.powersgd_payload([(10, 10)], 50) == 4 * 100  # the rank is capped by the sides


def test_baselines_join_the_candidates_and_bad_ones_are_refused():
    buckets = [1000, 3000]
    shapes = [(40, 50), (2000,)]
    cands = {x.name: x for x in adv.measure_candidates(["sign"], buckets, 2, repeat=1, baselines=adv.BASELINES,
                                                        shapes=shapes)}
    assert cands[adv.BF16].payload_bytes == 2 * 4000 and cands[adv.BF16].overlap
    p1 = cands[adv.powersgd_name(1)]
    # PowerSGD's all-reduces run one after the other once the bucket is complete: no overlap
    assert p1.payload_bytes == 4 * (90 + 2000) and p1.messages == 6 and not p1.overlap and p1.codec_seconds > 0
    given = {x.name: x for x in adv.measure_candidates([], buckets, 2, repeat=1, baselines=["powersgd:1"],
                                                        shapes=shapes, powersgd_codec={1: 0.25})}
    assert given[adv.powersgd_name(1)].codec_seconds == 0.25  # the real hook's measured cost is used
    assert adv.is_pytorch(p1.name) and adv.is_pytorch(adv.BF16) and not adv.is_pytorch("sign")
    with pytest.raises(ConfigError, match="unknown baseline 'powersgd:x'"):
        adv.measure_candidates([], buckets, 2, repeat=1, baselines=["powersgd:x"], shapes=shapes)
    with pytest.raises(ConfigError, match="shapes"):
        adv.measure_candidates([], buckets, 2, repeat=1, baselines=["powersgd:1"])


def test_the_verdict_names_pytorchs_powersgd_when_it_is_fastest(capsys, monkeypatch):
    _inject_timings(monkeypatch, {**CODEC, "sign": 0.05, "qsgd:s=7": 0.05, adv.powersgd_name(1): 1e-3,
                                  adv.powersgd_name(4): 2e-3})
    assert main([*SLOW, "--baselines", "all"]) == 0
    out = capsys.readouterr().out
    assert sorted(_table(out)) == sorted([FP32, FP16, adv.BF16, "PowerSGD rank 1", "PowerSGD rank 4", "sign",
                                          "qsgd:s=7"])
    assert "commpress's compressors do not pay: PyTorch's PowerSGD rank 1 is fastest" in out
    # negative control: PowerSGD's codec made slow, commpress's sign is fastest again
    _inject_timings(monkeypatch, {**CODEC, adv.powersgd_name(1): 1.0, adv.powersgd_name(4): 1.0, adv.BF16: 1.0})
    assert main([*SLOW, "--baselines", "all"]) == 0
    assert "verdict: compression pays: sign is fastest" in capsys.readouterr().out


def test_powersgd_hook_is_timed_for_real_in_a_one_process_ddp():
    """The hook's cost per rank, measured in a one-process DDP (gloo, in-process store); None inside a
    running process group (then the estimate from the matrix products is used)."""
    import torch.distributed as dist

    model, batch = adv.make_model("mlp", hidden=64, batch_size=4)
    costs = adv.measure_powersgd_hook(model, batch, [1, 2], repeat=1, threads=1)
    assert set(costs) == {1, 2} and all(c >= 0.0 for c in costs.values())
    assert not dist.is_initialized()  # the temporary group is gone
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert adv.measure_powersgd_hook(model, batch, [1], repeat=1, threads=1) is None
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------ FSDP2
@pytest.mark.parametrize("k", [2, 4])
def test_fit_link_measures_the_backends_reduce_scatter_factor(k):
    """gloo's reduce-scatter costs about an all-reduce (twice the ring's): the factor is recovered from
    timed reduce-scatters, and the bandwidth and latency are still those of the other collectives."""
    truth = Link(bandwidth=3e8, latency=2e-4, reduce_scatter_factor=2.0)
    samples = [("all_reduce", b, adv.allreduce_seconds(b, k, truth)) for b in (4e3, 2.6e5, 4e6)]
    samples += [("reduce_scatter", b, adv.reduce_scatter_seconds(b, k, truth)) for b in (4e3, 2.6e5, 4e6)]
    samples += [("all_gather_tensor", b, 1.5 * adv.allgather_seconds(b, k, truth)) for b in (4e3, 2.6e5, 4e6)]
    fit = adv.fit_link(samples, k)
    assert fit.reduce_scatter_factor == pytest.approx(2.0, rel=1e-9)
    assert fit.gather_tensor_factor == pytest.approx(1.5, rel=1e-9)
    assert fit.bandwidth == pytest.approx(3e8, rel=1e-9) and fit.latency == pytest.approx(2e-4, rel=1e-9)
    # negative control: without reduce-scatter timings the ring's cost is assumed
    assert adv.fit_link(samples[:3], k).reduce_scatter_factor == 1.0 == adv.fit_link(samples[:3], k).gather_tensor_factor
    with pytest.raises(ConfigError, match="reduce_scatter_factor"):
        Link(1e8, 0.0, reduce_scatter_factor=0.0)


def test_fsdp_candidates_have_the_real_payloads_and_the_fsdp_step_model():
    k, units = 2, [3000, 10]
    cands = {c.name: c for c in adv.measure_fsdp_candidates(["sign", "permk"], units, k, repeat=1)}
    d = sum(units)
    dense = cands["FSDP2"]
    assert dense.payload_bytes == 4 * (3000 + 10) and dense.param_bytes == 4 * d and dense.collective == "reduce_scatter"
    from commpress.compressors import make

    for name in ("sign", "permk"):  # bytes leaving rank 0: its payload for rank 1's chunk of each unit
        expected = sum(len(make(name).encode(torch.randn(1, -(-u // k)), 5, clients=[0], n=k)[0]) for u in units)
        assert cands[f"FSDP2 + {name}"].payload_bytes == expected and cands[f"FSDP2 + {name}"].codec_seconds > 0
    link = Link(1.25e7, 1e-3, reduce_scatter_factor=2.0, gather_tensor_factor=1.5)
    compute = Compute(0.01, 0.02, 0.001)
    preds = {p.name: p for p in adv.predict([Candidate(FP32, 4 * d, 0.0, "all_reduce"), *cands.values()],
                                            link=link, processes=k, compute=compute, d=d)}
    params = 2 * 1.5 * adv.allgather_seconds(4 * d / k, k, link, 2)  # forward and backward all-gathers
    assert preds["FSDP2"].comm == pytest.approx(params + adv.reduce_scatter_seconds(4 * d, k, link, 2))
    permk = cands["FSDP2 + permk"]
    assert preds["FSDP2 + permk"].comm == pytest.approx(params + adv.all_to_all_seconds(permk.payload_bytes, k, link, 4))
    assert preds["FSDP2 + permk"].step == pytest.approx(compute.total + permk.codec_seconds + preds["FSDP2 + permk"].comm)
    assert adv.is_pytorch("FSDP2") and not adv.is_pytorch("FSDP2 + sign")
    from commpress.integrations import fsdp_params

    with_params = {c.name: c for c in adv.measure_fsdp_candidates(["sign"], units, k, repeat=1, params=["int8"])}
    int8 = with_params["FSDP2 + sign + params=int8"]  # k payloads of each unit's shard, gathered twice per step
    assert int8.param_bytes == k * sum(fsdp_params.payload_bytes(-(-u // k), "int8") for u in units)
    assert int8.payload_bytes == cands["FSDP2 + sign"].payload_bytes and int8.param_bytes < 4 * d / 3
    # the bits each row reports leave a rank: FSDP's reduce-scatter keeps 1/k of its fp32 input, its two
    # parameter all-gathers send (k-1)/k of the parameters each; DDP rows have no parameter traffic
    preds = {p.name: p for p in adv.predict([Candidate(FP32, 4 * d, 0.0, "all_reduce"), *cands.values(), int8],
                                            link=link, processes=k, compute=compute, d=d)}
    assert preds["FSDP2"].bits_per_coordinate == pytest.approx(32 * (k - 1) / k)
    assert preds["FSDP2"].param_bits_per_coordinate == pytest.approx(64 * (k - 1) / k)
    assert preds["FSDP2 + sign"].bits_per_coordinate == pytest.approx(8 * cands["FSDP2 + sign"].payload_bytes / d)
    assert preds[int8.name].param_bits_per_coordinate == pytest.approx(16 * int8.param_bytes * (k - 1) / (k * d))
    assert 8 < preds[int8.name].param_bits_per_coordinate < 9  # int8 + one fp32 scale per 256, k = 2
    assert preds[FP32].param_bits_per_coordinate is None and preds[FP32].bits_per_coordinate == 32


def _prediction(name, step):
    return adv.Prediction(name, 0.0, 0.0, 0.0, 0.0, 0.0, step, 1.0, None)


def test_fsdp_rows_get_their_own_verdict_against_fsdps_own_collectives():
    rows = [_prediction(FP32, 1.0), _prediction("sign", 0.5), _prediction("FSDP2", 4.0),
            _prediction("FSDP2 + sign + params=int8", 0.4), _prediction("FSDP2 + sign", 2.0)]
    text = adv.verdict(rows)
    # the DDP sentence ranks DDP rows only, though an FSDP2 row has the smallest step of all
    assert text.startswith("compression pays: sign is fastest (500.0 ms per step)")
    assert "Sharded (FSDP2): FSDP2 + sign + params=int8 is fastest (400.0 ms per step), 10.0x faster than " \
           "FSDP2's own collectives (4.00 s)." in text
    # negative control: FSDP2's own fastest among the sharded rows is said so; without FSDP2 rows, no sentence
    slow = [_prediction(FP32, 1.0), _prediction("FSDP2", 2.0), _prediction("FSDP2 + sign", 3.0)]
    assert "Sharded (FSDP2): FSDP2's own collectives are fastest (2.00 s per step); the best compressed one " \
           "(FSDP2 + sign) would take 3.00 s." in adv.verdict(slow)
    assert "Sharded" not in adv.verdict(rows[:2])


def test_cli_predicts_fsdp_on_request(capsys, monkeypatch):
    _inject_timings(monkeypatch)
    monkeypatch.setattr(adv, "measure_fsdp_candidates", lambda specs, units, k, **kw: [
        dataclasses.replace(c, codec_seconds=1e-3)
        for c in adv._measure.measure_fsdp_candidates(specs, units, k, repeat=1, params=kw.get("params", ()))])
    assert main([*SLOW, "--fsdp"]) == 0
    out = capsys.readouterr().out
    table = _table(out)
    assert {"FSDP2", "FSDP2 + sign", "FSDP2 + qsgd:s=7"} <= set(table)
    assert "| param bits |" in out and table["FSDP2"][2] == "32.000" and table["sign"][2] == "-"
    assert "Sharded (FSDP2): " in out
    assert main(SLOW) == 0
    out = capsys.readouterr().out
    assert "FSDP2" not in _table(out) and "param bits" not in out  # DDP only: the table as before
    assert main([*SLOW, "--fsdp-params", "int8"]) == 0
    assert "FSDP2 + sign + params=int8" in _table(capsys.readouterr().out)
    assert main([*SLOW, "--fsdp-params", "int3"]) != 0
    assert "--fsdp-params: unknown mode 'int3'" in capsys.readouterr().err
