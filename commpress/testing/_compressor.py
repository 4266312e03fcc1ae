"""``check_compressor``: the conformance suite of one compressor object (built-in or user-written)."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from commpress._rng import derive_seed, shared_generator
from commpress.compressors.base import Compressor, CompressorTheory
from commpress.compressors.registry import make
from commpress.errors import CommpressError, ConfigError, InputError, InputTypeError, PayloadError
from commpress.testing._report import ConformanceReport, Fail, Skip, run_property, select
from commpress.testing._stats import upper_bound_test

#: The properties of the compressor suite, in the order they run.
COMPRESSOR_PROPERTIES = (
    "shapes_and_dtypes",
    "bits_equal_payload",
    "decode_equals_apply",
    "subset_rows",
    "same_seed_same_output",
    "seed_is_used",
    "zero_rows",
    "rejects_bad_input",
    "rejects_bad_seed",
    "rejects_malformed_payload",
    "theory_declared",
    "unbiased",
    "variance_bound",
    "contraction",
    "ab_inequality",
)
#: The Monte-Carlo properties.
STATISTICAL_PROPERTIES = ("unbiased", "variance_bound", "contraction", "ab_inequality")
#: The exact properties (no sampling: cheap, and what CI runs on every configuration).
EXACT_PROPERTIES = tuple(p for p in COMPRESSOR_PROPERTIES if p not in STATISTICAL_PROPERTIES)

KINDS = ("unbiased", "contractive", "correlated", "combinatorial", "biased")
#: Wire values and headers are float32: deterministic rounding of relative size 2^-24 is not a
#: failure. Means may be off by this fraction of ||x||, squared errors by this fraction of ||x||^2.
FLOAT32_FLOOR = 1e-6


def _nan(X: torch.Tensor) -> torch.Tensor:
    X = X.clone()
    X[0, min(1, X.shape[1] - 1)] = float("nan")
    return X


def _inf(X: torch.Tensor) -> torch.Tensor:
    X = X.clone()
    X[min(1, X.shape[0] - 1), 0] = float("inf")
    return X


#: Bad inputs: (what, how to make it from a good (n, d) float64 batch, the error class expected).
BAD_INPUTS: list[tuple[str, Callable[[torch.Tensor], Any], type]] = [
    ("holding NaN", _nan, InputError),
    ("holding Inf", _inf, InputError),
    ("1-d (no client axis)", lambda X: X[0], InputError),
    ("3-d", lambda X: X[None], InputError),
    ("of dtype int64", lambda X: X.to(torch.int64), InputTypeError),
    ("of dtype complex64", lambda X: X.to(torch.complex64), InputTypeError),
    ("a NumPy array", lambda X: X.numpy(), InputTypeError),
    ("with zero columns", lambda X: X[:, :0], InputError),
]
BAD_SEEDS = (-1, 2**63, 1.5, "3", True)
#: Other seeds for the seed check: at least one must change a randomized compressor's output
#: (even PermK on 4 clients, 24 equally likely outcomes, repeats one output six times with
#: probability 24^-5).
OTHER_SEEDS = 6
FUZZ_CASES = 24


def check_compressor(
    compressor: Compressor | str,
    *,
    n: int = 4,
    d: int = 16,
    seed: int = 0,
    trials: int = 1000,
    shapes: Any = None,
    properties: Any = None,
    z: float = 5.0,
    raise_on_failure: bool = True,
) -> ConformanceReport:
    r"""Run the conformance suite on any compressor; report each property in plain words.

    Exact properties (on batches of every shape in ``shapes``, float32 and float64):

    - ``shapes_and_dtypes``: ``apply`` keeps shape, dtype and device, gives finite rows and int64
      bits of shape ``(rows,)``; ``encode`` gives one ``bytes`` per row;
    - ``bits_equal_payload``: ``bits == 8 * len(payload)`` for every row;
    - ``decode_equals_apply``: ``decode(encode(X)) == apply(X)[0]`` exactly;
    - ``subset_rows``: ``apply``/``encode``/``decode`` with ``clients=idx, n=n`` give exactly the
      full batch's rows, bits and payload bytes of those clients;
    - ``same_seed_same_output`` and ``seed_is_used``: the same seed gives the same rows, bits and
      bytes; another seed changes the output of a randomized compressor (one of 6 seeds must),
      and of a compressor declaring ``deterministic = True`` it must not;
    - ``zero_rows``: a zero row compresses to zero (independent compressors), an all-zero batch
      to zeros on both paths;
    - ``rejects_bad_input``, ``rejects_bad_seed``: NaN/Inf, wrong rank, dtype or type, no columns
      and bad seeds raise the library's errors (:class:`~commpress.errors.InputError`,
      :class:`~commpress.errors.InputTypeError`, :class:`~commpress.errors.CommpressError`) with
      a message;
    - ``rejects_malformed_payload``: every payload cut by one byte or extended by one is refused
      with :class:`~commpress.errors.PayloadError`, a 10 kB one with a CommpressError; 24 seeded
      random payloads (random bytes, truncations, byte changes, extensions) give a CommpressError
      or finite rows of the right shape, never another exception;
    - ``theory_declared``: ``theory(n, d)`` is a :class:`~commpress.compressors.CompressorTheory`
      with a known ``kind``, the constants that kind needs, and ``bits`` equal to what a call
      sends (unless ``extras["bits_data_dependent"]``).

    Statistical properties, from the constants the compressor declares in ``theory(n, d)`` and
    ``trials`` seeded Monte-Carlo draws of an ``(n, d)`` batch whose rows are a Gaussian vector,
    the all-ones vector (attains the dithering constants), a basis vector, the spike
    :math:`(1, \varepsilon, \dots)` with :math:`\varepsilon = 1/(\sqrt d + 1)` (attains TernGrad's),
    then more Gaussian vectors. Independent compressors draw the trials as ``trials * n`` rows of
    one call (each row is a client with its own private stream); correlated ones (``correlated =
    True``) as ``trials`` calls with different seeds. Every test is a z-test whose tolerance
    comes from the sample variance, ``z`` standard errors (default 5: a false alarm has
    probability about 6e-7 per statistic), plus ``1e-6`` of the scale for float32 rounding:

    - ``unbiased`` (kind ``unbiased``/``correlated``: every row; ``combinatorial``: the mean of the
      rows): the sample mean m of T draws satisfies :math:`\|m - x\| \le z\sqrt{V/T}`, V the larger of the measured :math:`\mathbb E\|\mathcal C(x) - x\|^2` and the declared
      :math:`\omega\|x\|^2`. Under unbiasedness :math:`T\|m - x\|^2` is asymptotically a weighted sum of
      :math:`\chi^2_1` variables with total weight :math:`\mathbb E\|\mathcal C(x) - x\|^2`, so a false alarm
      has probability at most :math:`P(\chi^2_1 > z^2)` (Szekely and Bakirov, Biometrika 2003); pooling
      the coordinates keeps rare large values (a coordinate hit once in a thousand draws) from faking
      a bias. It detects a bias b once :math:`\|b\| > z\sqrt{V/T}` (skipped when
      ``extras["exact_unbiased"]`` is False);
    - ``variance_bound``: :math:`\mathbb E\|\mathcal C(x) - x\|^2 \le \omega\|x\|^2` for every row,
      one-sided (skipped when ``extras["omega_is_bound"]`` is False: omega is a limit, not a bound);
    - ``contraction``: :math:`\mathbb E\|\mathcal C(x) - x\|^2 \le (1 - \delta)\|x\|^2` where delta is
      declared (skipped when ``extras["delta_is_bound"]`` is False);
    - ``ab_inequality``: :math:`\mathbb E\|\frac1n\sum_i\mathcal C_i(x_i) - \bar x\|^2 \le
      A\frac1n\sum_i\|x_i\|^2 - B\|\bar x\|^2` where A is declared.

    A deterministic compressor is drawn once and compared with no sampling tolerance.

    Args:
        compressor: a :class:`~commpress.compressors.Compressor` instance (or a registered name).
        n, d: the batch of the statistical and seed checks (also the first shape); choose them so
            that a randomized compressor does draw (RandK with k = d, PermK with n = 1 do not).
        seed: every input and round seed derives from it; a failure message names it to replay.
        trials: Monte-Carlo draws per statistic (>= 2).
        shapes: ``(rows, d)`` shapes of the exact checks; default ``(n, d), (1, d), (n, 1), (1, 1),
            (n + 2, 2d + 3)``.
        properties: names of the properties to run (default: all, :data:`COMPRESSOR_PROPERTIES`).
        z: standard errors allowed in the statistical tests.
        raise_on_failure: raise one :class:`ConformanceError` listing every failed property.

    Returns:
        The :class:`ConformanceReport` (one :class:`CheckResult` per property).
    """
    C = make(compressor) if isinstance(compressor, str) else compressor
    if not isinstance(C, Compressor):
        raise InputTypeError(
            f"check_compressor needs a commpress Compressor (or a registered name); got {type(C).__name__}. "
            "Subclass commpress.compressors.Compressor."
        )
    n, d = _positive_int("n", n), _positive_int("d", d)
    trials = _positive_int("trials", trials, low=2)
    if not (isinstance(z, (int, float)) and z > 0 and math.isfinite(z)):
        raise ConfigError(f"check_compressor needs z > 0 (standard errors); got z={z!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"check_compressor needs an integer seed in [0, 2**63); got seed={seed!r}.")
    extra = (f", shapes={list(shapes)!r}" if shapes is not None else "") + (f", z={z!r}" if z != 5.0 else "")
    shapes = _shapes(shapes, n, d)
    replay = f"check_compressor({C!r}, n={n}, d={d}, seed={seed}, trials={trials}{extra})"
    suite = _CompressorSuite(C, n, d, seed, trials, shapes, float(z))
    report = ConformanceReport(subject=repr(C), replay=replay)
    for name in select(properties, COMPRESSOR_PROPERTIES, "check_compressor"):
        report.results.append(run_property(name, getattr(suite, name), replay))
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _positive_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"the conformance suite needs an integer {name} >= {low}; got {name}={value!r}.")
    return value


def _shapes(shapes: Any, n: int, d: int) -> list[tuple[int, int]]:
    if shapes is None:
        shapes = [(n, d), (1, d), (n, 1), (1, 1), (n + 2, 2 * d + 3)]
    out: list[tuple[int, int]] = []
    for s in shapes:
        if len(s) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in s):
            raise ConfigError(f"shapes must be (rows, d) pairs of positive integers; got {s!r}.")
        if tuple(s) not in out:
            out.append((int(s[0]), int(s[1])))
    return out


def _first_difference(a: torch.Tensor, b: torch.Tensor) -> str:
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    diff = (a.double() - b.double()).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff)
    i = int(torch.argmax(diff.reshape(-1)))
    r, c = divmod(i, a.shape[1]) if a.dim() == 2 else (0, i)
    return f"row {r}, column {c}: {a.reshape(-1)[i].item()!r} vs {b.reshape(-1)[i].item()!r}"


class _CompressorSuite:
    def __init__(self, C: Compressor, n: int, d: int, seed: int, trials: int, shapes: list, z: float) -> None:
        self.C, self.n, self.d, self.seed, self.trials, self.shapes, self.z = C, n, d, seed, trials, shapes, z
        self.round_seed = derive_seed(seed, "check/round")
        self._cache: dict[Any, Any] = {}

    # ------------------------------------------------------------------ inputs
    def batch(self, rows: int, d: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        g = shared_generator(derive_seed(self.seed, "check/batch", rows, d), "check/batch")
        return torch.randn(rows, d, generator=g, dtype=torch.float64).to(dtype)

    def roundtrip(self, shape: tuple[int, int], dtype: torch.dtype):
        """(X, X_hat, bits, payloads) of a batch of ``shape``: computed once per suite."""
        key = ("roundtrip", shape, dtype)
        if key not in self._cache:
            X = self.batch(*shape, dtype)
            X_hat, bits = self.C.apply(X, self.round_seed)
            payloads = self.C.encode(X, self.round_seed)
            self._cache[key] = (X, X_hat, bits, payloads)
        return self._cache[key]

    def usable_shapes(self) -> list[tuple[int, int]]:
        """The shapes the compressor serves: one it refuses with ConfigError from ``check_shape``
        (say, an ISCC with 4 weights at n = 1) is left out, except the suite's own (n, d)."""
        if "usable" not in self._cache:
            usable, refused = [], []
            for shape in self.shapes:
                try:
                    self.roundtrip(shape, torch.float64)
                except ConfigError as err:
                    if shape == (self.n, self.d):
                        raise Fail(f"expected the compressor to serve the suite's shape (n, d) = {shape}; it refused "
                                   f"it: {err} Choose n and d it serves.") from None
                    refused.append(shape)
                    continue
                usable.append(shape)
            self._cache["usable"] = usable
            self._cache["refused"] = refused
        return self._cache["usable"]

    def cases(self):
        for shape in self.usable_shapes():
            for dtype in (torch.float32, torch.float64):
                yield shape, dtype, f"at shape {shape} {str(dtype).removeprefix('torch.')}"

    def theory(self) -> CompressorTheory:
        if "theory" not in self._cache:
            try:
                th = self.C.theory(self.n, self.d)
            except NotImplementedError:
                th = None
            self._cache["theory"] = th
        th = self._cache["theory"]
        if th is None:
            raise Skip(f"{self.C!r} declares no theory(n, d), so no constants to test.")
        if not isinstance(th, CompressorTheory):
            raise Skip("theory(n, d) is not a CompressorTheory (see theory_declared).")
        return th

    # ------------------------------------------------------------------ exact properties
    def shapes_and_dtypes(self) -> str:
        for (rows, d), dtype, where in self.cases():
            X, X_hat, bits, payloads = self.roundtrip((rows, d), dtype)
            if not isinstance(X_hat, torch.Tensor) or X_hat.shape != X.shape:
                got = tuple(X_hat.shape) if isinstance(X_hat, torch.Tensor) else type(X_hat).__name__
                raise Fail(f"expected apply(X) to return rows of X's shape {tuple(X.shape)} {where}; got {got}.")
            if X_hat.dtype != dtype or X_hat.device != X.device:
                raise Fail(f"expected apply(X) to keep dtype {dtype} and device {X.device} {where}; got "
                           f"{X_hat.dtype} on {X_hat.device}. Return ctx.dtype on ctx.device from decode_message.")
            if not isinstance(bits, torch.Tensor) or bits.dtype != torch.int64 or tuple(bits.shape) != (rows,):
                got = f"{bits.dtype} of shape {tuple(bits.shape)}" if isinstance(bits, torch.Tensor) else type(bits).__name__
                raise Fail(f"expected apply(X) bits as an int64 tensor of shape ({rows},) {where}; got {got}.")
            if not bool(torch.isfinite(X_hat).all()):
                raise Fail(f"expected finite rows from apply(X) of a finite batch {where}; got NaN or Inf.")
            if not isinstance(payloads, list) or len(payloads) != rows or not all(isinstance(p, bytes) for p in payloads):
                got = [type(p).__name__ for p in payloads][:3] if isinstance(payloads, list) else type(payloads).__name__
                raise Fail(f"expected encode(X) to return a list of {rows} bytes objects {where}; got {got}.")
        refused = self._cache["refused"]
        return (f"shape, dtype and device kept, int64 bits, one bytes payload per row, for shapes {self.usable_shapes()}"
                + (f" (shapes refused with ConfigError, left out: {refused})." if refused else "."))

    def bits_equal_payload(self) -> str:
        for shape, dtype, where in self.cases():
            _, _, bits, payloads = self.roundtrip(shape, dtype)
            lengths = [8 * len(p) for p in payloads]
            if bits.tolist() != lengths:
                r = next(i for i, (b, p) in enumerate(zip(bits.tolist(), lengths)) if b != p)
                raise Fail(
                    f"expected bits == 8 * len(payload) for every row {where}; row {r} reports "
                    f"{bits.tolist()[r]} bits but its payload has {len(payloads[r])} bytes = {lengths[r]} bits "
                    f"(all rows: reported {bits.tolist()}, payloads {lengths}). The bits must be what a real wire sends."
                )
        return "every row's bits are 8 * len(payload)."

    def decode_equals_apply(self) -> str:
        for (rows, d), dtype, where in self.cases():
            X, X_hat, _, payloads = self.roundtrip((rows, d), dtype)
            X_dec = self.C.decode(payloads, self.round_seed, d, dtype=dtype)
            if not (isinstance(X_dec, torch.Tensor) and X_dec.dtype == dtype and torch.equal(X_dec, X_hat)):
                what = (_first_difference(X_dec, X_hat) if isinstance(X_dec, torch.Tensor) and X_dec.dtype == dtype
                        else f"decode returned {getattr(X_dec, 'dtype', type(X_dec).__name__)}")
                raise Fail(f"expected decode(encode(X)) == apply(X)[0] exactly {where}; they differ at {what}.")
        return "decode(encode(X)) equals apply(X)[0] exactly."

    def subset_rows(self) -> str:
        for n, d in self.usable_shapes():
            X, X_full, bits_full, payloads_full = self.roundtrip((n, d), torch.float64)
            subsets = [[n - 1, 0], [1], list(range(n))[::-1]]
            seen: list[list[int]] = []
            for idx in subsets:
                idx = [i for i in dict.fromkeys(idx) if i < n]
                if not idx or idx in seen:
                    continue
                seen.append(idx)
                idx_t = torch.tensor(idx)
                where = f"for clients={idx} of n={n} (d={d})"
                X_sub, bits_sub = self.C.apply(X[idx_t], self.round_seed, clients=idx_t, n=n)
                if not torch.equal(X_sub, X_full[idx_t]):
                    raise Fail(f"expected apply(X[idx], clients=idx, n=n) to equal the full batch's rows {where}; they "
                               f"differ at {_first_difference(X_sub, X_full[idx_t])}. Key every random draw by client "
                               "index (ctx.private_rand), never by row position.")
                if not torch.equal(bits_sub, bits_full[idx_t]):
                    raise Fail(f"expected the subset's bits to equal the full batch's {where}; got {bits_sub.tolist()} "
                               f"vs {bits_full[idx_t].tolist()}.")
                mine = self.C.encode(X[idx_t], self.round_seed, clients=idx_t, n=n)
                if mine != [payloads_full[i] for i in idx]:
                    raise Fail(f"expected each client's payload bytes to be the same whichever batch encodes it {where}; "
                               "the subset's payloads differ from the full batch's.")
                dec = self.C.decode(mine, self.round_seed, d, clients=idx_t, n=n, dtype=X.dtype)
                if not torch.equal(dec, X_full[idx_t]):
                    raise Fail(f"expected decode(payloads, clients=idx, n=n) to equal the full batch's rows {where}; "
                               f"they differ at {_first_difference(dec, X_full[idx_t])}.")
        return "subsets of clients give exactly the full batch's rows, bits and payloads."

    def same_seed_same_output(self) -> str:
        X = self.batch(self.n, self.d)
        a, bits_a = self.C.apply(X, self.round_seed)
        b, bits_b = self.C.apply(X, self.round_seed)
        if not (torch.equal(a, b) and torch.equal(bits_a, bits_b)):
            raise Fail(f"expected the same output for the same seed; two calls with seed {self.round_seed} differ at "
                       f"{_first_difference(a, b)}. Draw randomness only from ctx (keyed by the seed), never from "
                       "the global RNG.")
        if self.C.encode(X, self.round_seed) != self.C.encode(X, self.round_seed):
            raise Fail(f"expected the same payload bytes for the same seed; two encode calls with seed "
                       f"{self.round_seed} differ.")
        return "the same seed gives the same rows, bits and bytes."

    def seed_is_used(self) -> str:
        X = self.batch(self.n, self.d)
        a, _ = self.C.apply(X, self.round_seed)
        seeds = [derive_seed(self.seed, "check/other", j) for j in range(OTHER_SEEDS)]
        differ = sum(not torch.equal(a, self.C.apply(X, s)[0]) for s in seeds)
        if getattr(self.C, "deterministic", False):
            if differ:
                raise Fail(f"{self.C!r} declares deterministic = True, but its output at n={self.n}, d={self.d} changes "
                           f"with the seed ({differ} of {OTHER_SEEDS} other seeds give other rows). Declare "
                           "deterministic = False.")
            return f"declared deterministic; the same output for {OTHER_SEEDS + 1} seeds."
        if not differ:
            raise Fail(f"expected a randomized compressor (deterministic = False) to use its seed, but it gave the "
                       f"same output at n={self.n}, d={self.d} for seed {self.round_seed} and {OTHER_SEEDS} other seeds: "
                       "it ignores its seed. Draw from ctx.private_rand / ctx.shared_generator, or declare "
                       "deterministic = True if it draws nothing.")
        return f"randomized: {differ} of {OTHER_SEEDS} other seeds change the output."

    def zero_rows(self) -> str:
        rows = max(self.n, 2)
        X = self.batch(rows, self.d)
        X[1] = 0.0
        X_hat, _ = self.C.apply(X, self.round_seed)
        X_dec = self.C.decode(self.C.encode(X, self.round_seed), self.round_seed, self.d, dtype=X.dtype)
        if not (bool(torch.isfinite(X_hat).all()) and bool(torch.isfinite(X_dec).all())):
            raise Fail(f"expected finite rows for a batch with a zero row (shape {tuple(X.shape)}); got NaN or Inf "
                       "(a division by a zero norm?).")
        Z = torch.zeros(rows, self.d, dtype=torch.float64)
        Z_hat, _ = self.C.apply(Z, self.round_seed)
        Z_dec = self.C.decode(self.C.encode(Z, self.round_seed), self.round_seed, self.d, dtype=Z.dtype)
        if not (bool(torch.isfinite(Z_hat).all()) and bool(torch.isfinite(Z_dec).all())):
            raise Fail(f"expected finite rows for an all-zero batch {tuple(Z.shape)}; got NaN or Inf.")
        try:
            kind = self.C.theory(self.n, self.d).kind
        except NotImplementedError:
            kind = None
        if kind == "biased":  # no class: nothing says C(0) = 0 (the plain sign sends +1s)
            return "finite on zero rows (kind='biased' claims no C(0) = 0)."
        # any class forces C(0) = 0: E||C(0) - 0||^2 <= omega * 0 or (1 - delta) * 0
        if not self.C.correlated and not (torch.equal(X_hat[1], torch.zeros_like(X_hat[1]))
                                          and torch.equal(X_dec[1], torch.zeros_like(X_dec[1]))):
            raise Fail(f"expected a zero row to compress to zero (implied by omega or delta); got max |C(0)| = "
                       f"{float(X_hat[1].abs().max()):.3g}.")
        if not (torch.equal(Z_hat, Z) and torch.equal(Z_dec, Z)):
            raise Fail(f"expected an all-zero batch {tuple(Z.shape)} to compress to zeros on both paths; got max "
                       f"|apply| = {float(Z_hat.abs().max()):.3g}, max |decode| = {float(Z_dec.abs().max()):.3g}.")
        return "zero rows give zero rows, finite everywhere."

    def rejects_bad_input(self) -> str:
        X = self.batch(max(self.n, 2), max(self.d, 2))
        for label, make_bad, error in BAD_INPUTS:
            bad = make_bad(X)
            for call in ("apply", "encode"):
                try:
                    getattr(self.C, call)(bad, self.round_seed)
                except error as err:
                    if len(str(err)) <= 20:
                        raise Fail(f"{call}(X) with X {label} raised {type(err).__name__} with the message {str(err)!r}; "
                                   "expected one that says what is wrong and how to fix it.") from None
                    continue
                except Exception as err:
                    raise Fail(f"expected {call}(X) with X {label} to raise {error.__name__}; it raised "
                               f"{type(err).__name__}: {err}") from None
                raise Fail(f"expected {call}(X) with X {label} to raise {error.__name__}; it returned normally.")
        return f"rejects {len(BAD_INPUTS)} kinds of bad input with the library's errors."

    def rejects_bad_seed(self) -> str:
        X = self.batch(2, self.d)
        for bad in BAD_SEEDS:
            try:
                self.C.apply(X, bad)
            except CommpressError:
                continue
            except Exception as err:
                raise Fail(f"expected apply(X, seed={bad!r}) to raise a CommpressError; it raised "
                           f"{type(err).__name__}: {err}") from None
            raise Fail(f"expected apply(X, seed={bad!r}) to raise a CommpressError (seeds are integers in "
                       "[0, 2**63)); it returned normally.")
        return f"rejects the seeds {list(BAD_SEEDS)}."

    def _expect_payload_error(self, payloads: list, d: int, dtype: torch.dtype, what: str, error: type = PayloadError) -> None:
        try:
            self.C.decode(payloads, self.round_seed, d, dtype=dtype)
        except error:
            return
        except Exception as err:
            raise Fail(f"expected {error.__name__} for {what}; decode raised {type(err).__name__}: {err}") from None
        raise Fail(f"expected {error.__name__} for {what}; decode accepted it and returned rows. A decoder must "
                   "check every payload's length against its layout.")

    def rejects_malformed_payload(self) -> str:
        for (rows, d), dtype, where in self.cases():
            _, _, _, payloads = self.roundtrip((rows, d), dtype)
            for r in range(rows):
                if payloads[r]:
                    cut = list(payloads)
                    cut[r] = cut[r][:-1]
                    self._expect_payload_error(cut, d, dtype, f"row {r}'s payload truncated by one byte "
                                               f"({len(cut[r])} of {len(payloads[r])} bytes) {where}")
                longer = list(payloads)
                longer[r] = longer[r] + b"\x00"
                self._expect_payload_error(longer, d, dtype, f"row {r}'s payload extended by one byte "
                                           f"({len(longer[r])} instead of {len(payloads[r])} bytes) {where}")
            huge = list(payloads)
            huge[-1] = b"\x00" * 10_000
            self._expect_payload_error(huge, d, dtype, f"a 10000-byte payload in row {rows - 1} {where}", CommpressError)
        self._fuzz()
        return f"refuses truncated and extended payloads; {FUZZ_CASES} random payloads end in a clean error or clean rows."

    def _fuzz(self) -> None:
        rows, d = self.n, self.d
        _, _, _, good = self.roundtrip((rows, d), torch.float64)
        g = shared_generator(derive_seed(self.seed, "check/fuzz"), "check/fuzz")

        def draw(high: int) -> int:
            return int(torch.randint(max(high, 1), (), generator=g))

        for case in range(FUZZ_CASES):
            payloads = list(good)
            mode = ("random", "truncate", "mutate", "extend")[case % 4]
            r = draw(rows)
            p = payloads[r]
            if mode == "random":
                payloads[r] = bytes(torch.randint(256, (draw(65),), generator=g, dtype=torch.uint8).tolist())
            elif mode == "truncate":
                payloads[r] = p[: draw(len(p))]
            elif mode == "extend":
                payloads[r] = p + bytes(torch.randint(256, (1 + draw(16),), generator=g, dtype=torch.uint8).tolist())
            elif p:
                raw = bytearray(p)
                raw[draw(len(raw))] = draw(256)
                payloads[r] = bytes(raw)
            check_hostile_decode(self.C, payloads, self.round_seed, d, what=f"a {mode} payload in row {r} (fuzz case {case})")

    # ------------------------------------------------------------------ theory
    def theory_declared(self) -> str:
        try:
            th = self.C.theory(self.n, self.d)
        except NotImplementedError:
            raise Fail(f"expected theory(n, d) to declare the compressor's class and constants; {self.C!r} does not "
                       "implement it. Return a CompressorTheory(kind, omega, delta, A, B, bits).") from None
        if not isinstance(th, CompressorTheory):
            raise Fail(f"expected theory({self.n}, {self.d}) to return a CompressorTheory; got {type(th).__name__}.")
        if th.kind not in KINDS:
            raise Fail(f"expected theory().kind in {KINDS}; got {th.kind!r}.")
        for name in ("omega", "delta", "A", "B"):
            value = getattr(th, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise Fail(f"expected theory().{name} to be None or a finite number >= 0; got {value!r}.")
        if not (isinstance(th.bits, (int, float)) and math.isfinite(th.bits) and th.bits > 0):
            raise Fail(f"expected theory().bits > 0 (expected payload bits per client); got {th.bits!r}.")
        if th.kind in ("unbiased", "correlated") and th.omega is None:
            raise Fail(f"kind={th.kind!r} needs the variance constant omega; theory().omega is None.")
        if th.kind == "contractive" and not (th.delta is not None and 0 < th.delta <= 1):
            raise Fail(f"kind='contractive' needs 0 < delta <= 1; theory().delta = {th.delta!r}.")
        _, bits = self.C.apply(self.batch(self.n, self.d), self.round_seed)
        sent = float(bits.double().mean())
        if (th.extras.get("bits_exact", True) and not self.C.correlated and th.kind != "combinatorial"
                and not th.extras.get("bits_data_dependent")
                and abs(sent - th.bits) > 8 * max(1, 0.02 * th.bits / 8)):
            raise Fail(f"expected theory({self.n}, {self.d}).bits = {th.bits} to be the bits a call sends per client; "
                       f"a call sends {sent:g} on average. Declare extras['bits_data_dependent'] = True if the size "
                       "depends on the data.")
        return f"kind={th.kind}, omega={th.omega}, delta={th.delta}, A={th.A}, B={th.B}, bits={th.bits}."

    # ------------------------------------------------------------------ statistics
    def vectors(self) -> tuple[torch.Tensor, list[str]]:
        """The (n, d) float64 test batch of the statistical checks, and a name for each row."""
        n, d = self.n, self.d
        g = shared_generator(derive_seed(self.seed, "check/vectors", n, d), "check/vectors")
        eps = 1.0 / (math.sqrt(d) + 1.0)
        fixed = [
            (torch.randn(d, generator=g, dtype=torch.float64), "a Gaussian vector"),
            (torch.ones(d, dtype=torch.float64), "the all-ones vector"),
            (3.0 * torch.nn.functional.one_hot(torch.tensor(0), d).double(), "the basis vector 3 e_0"),
            (torch.cat([torch.ones(1), torch.full((d - 1,), eps)]).double(), f"the spike (1, {eps:.3g}, ..., {eps:.3g})"),
        ]
        rows, names = [], []
        for i in range(n):
            v, name = fixed[i] if i < len(fixed) else (torch.randn(d, generator=g, dtype=torch.float64), "a Gaussian vector")
            rows.append(v)
            names.append(f"row {i}, {name}")
        return torch.stack(rows), names

    def draws(self) -> torch.Tensor:
        """``(T, n, d)`` float64 reconstructions of the test batch: T i.i.d. draws."""
        if "draws" not in self._cache:
            X, _ = self.vectors()
            n, d = X.shape
            if getattr(self.C, "deterministic", False):
                Y = self.C.apply(X, self.round_seed)[0][None]
            elif not self.C.correlated:  # trials ride the client axis: each row its own private stream
                Y = self.C.apply(X.repeat(self.trials, 1), self.round_seed)[0].reshape(self.trials, n, d)
            else:
                Y = torch.stack([self.C.apply(X, derive_seed(self.seed, "check/trial", t))[0] for t in range(self.trials)])
            self._cache["draws"] = Y.double()
        return self._cache["draws"]

    def _how(self, off: float, se: float, tolerance: float) -> str:
        """How far off, in plain words, and the tolerance it was held to."""
        T = self.draws().shape[0]
        if T == 1:
            return (f"off by {off:.3g}, allowed {tolerance:.3g} (float32 rounding only: one draw of a "
                    "deterministic compressor)")
        how = "rows of one call" if not self.C.correlated else "calls with different seeds"
        return (f"off by {off:.3g} = {off / max(se, 1e-300):.1f} standard errors, allowed {tolerance:.3g} "
                f"({self.z:g} standard errors from the sample variance of {T} draws as {how}, plus float32 rounding)")

    def unbiased(self) -> str:
        th = self.theory()
        if th.kind not in ("unbiased", "correlated", "combinatorial"):
            raise Skip(f"kind={th.kind!r} claims no unbiasedness.")
        if th.extras.get("exact_unbiased") is False:
            raise Skip("the theory declares the compressor only approximately unbiased (extras['exact_unbiased'] = False).")
        X, names = self.vectors()
        Y = self.draws()
        T = Y.shape[0]
        bounded = th.extras.get("omega_is_bound") is not False
        claims = [th.omega * float(x.pow(2).sum()) if th.omega is not None and bounded else 0.0 for x in X]
        if th.kind == "combinatorial":  # unbiased in the aggregate only
            mean_x = X.mean(0)
            claim = 0.0
            if th.A is not None and bounded:
                claim = th.A * float(X.pow(2).sum(-1).mean()) - (th.B or 0.0) * float(mean_x.pow(2).sum())
            X, Y, names, claims = mean_x[None], Y.mean(1, keepdim=True), ["the mean of the rows"], [claim]
        worst = 0.0
        for i, name in enumerate(names):
            x = X[i]
            norm = float(x.norm())
            if norm == 0:
                continue
            m = Y[:, i, :].mean(0)
            off = float((m - x).norm())
            spread = float((Y[:, i, :] - x).pow(2).sum(-1).mean())  # measured E||C(x) - x||^2
            se = math.sqrt(max(spread, claims[i]) / T)
            tol = (self.z if T > 1 else 0.0) * se + FLOAT32_FLOOR * norm
            worst = max(worst, off / norm)
            if off > tol:
                j = int((m - x).abs().argmax())
                if T == 1:
                    how = "allowed: float32 rounding only (one draw of a deterministic compressor)"
                else:
                    how = (f"that is {off / max(se, 1e-300):.1f} standard errors, allowed {self.z:g}: {tol:.3g} = "
                           f"{self.z:g} sqrt(max(E||C(x) - x||^2 measured {spread:.4g}, declared {claims[i]:.4g}) / "
                           f"{T} draws) + float32 rounding")
                raise Fail(
                    f"expected E C(x) = x (theory kind={th.kind!r}); for {name}, the mean of C(x) over {T} draw(s) is "
                    f"off from x by ||mean - x|| = {off:.4g} ({off / norm:.2%} of ||x||), most in coordinate {j}: "
                    f"{float(m[j]):.6g} vs {float(x[j]):.6g}; {how}."
                )
        return (f"||mean of C(x) - x|| within {self.z:g} standard errors for every row (largest {worst:.2%} of ||x||, "
                f"{T} draw(s)).")

    def _errors(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        X, names = self.vectors()
        Y = self.draws()
        return X, (Y - X).pow(2).sum(-1), names  # (T, n) squared errors

    def _bound_check(self, errors: torch.Tensor, bound: float, scale: float, claim: str, constants: str,
                     name: str, what: str) -> None:
        z = self.z if errors.shape[0] > 1 else 0.0
        test = upper_bound_test(errors, bound, z=z, floor=FLOAT32_FLOOR * scale)
        if not test.ok:
            raise Fail(
                f"expected {what} <= {claim} = {bound:.6g} ({constants}) for {name}; measured "
                f"{test.mean:.6g} +- {test.se:.3g} (mean +- standard error): "
                f"{self._how(test.mean - bound, test.se, test.tolerance)}."
            )

    def variance_bound(self) -> str:
        th = self.theory()
        if th.omega is None or th.kind not in ("unbiased", "correlated", "combinatorial"):
            raise Skip(f"kind={th.kind!r} declares no variance constant omega.")
        if th.extras.get("omega_is_bound") is False:
            raise Skip("the theory declares omega a limit, not a bound for every x (extras['omega_is_bound'] = False).")
        worst = self._error_bound_per_row(th.omega, "omega ||x||^2", f"declared omega = {th.omega:.6g}")
        return f"E||C(x) - x||^2 <= omega ||x||^2 (omega = {th.omega:.4g}; measured up to {worst:.4g} ||x||^2)."

    def _error_bound_per_row(self, factor: float, claim: str, constants: str) -> float:
        """Check E||C(x) - x||^2 <= factor ||x||^2 on every nonzero test row; the worst measured ratio."""
        X, E, names = self._errors()
        worst = 0.0
        for i, name in enumerate(names):
            sq = float(X[i].pow(2).sum())
            if sq == 0:
                continue
            self._bound_check(E[:, i], factor * sq, sq, claim, constants, name, "E||C(x) - x||^2")
            worst = max(worst, float(E[:, i].mean()) / sq)
        return worst

    def contraction(self) -> str:
        th = self.theory()
        if th.delta is None:
            raise Skip(f"kind={th.kind!r} declares no contraction constant delta.")
        if th.extras.get("delta_is_bound") is False:
            raise Skip("the theory declares delta a limit, not a bound for every x (extras['delta_is_bound'] = False).")
        worst = self._error_bound_per_row(1 - th.delta, "(1 - delta) ||x||^2", f"declared delta = {th.delta:.6g}")
        return f"E||C(x) - x||^2 <= (1 - delta) ||x||^2 (delta = {th.delta:.4g}; measured up to {worst:.4g} ||x||^2)."

    def ab_inequality(self) -> str:
        th = self.theory()
        if th.A is None:
            raise Skip(f"kind={th.kind!r} declares no AB constants.")
        if th.extras.get("omega_is_bound") is False:
            raise Skip("the AB constants derive from an omega the theory declares a limit (extras['omega_is_bound'] = False).")
        X, _ = self.vectors()
        Y = self.draws()
        B = th.B or 0.0
        mean_x = X.mean(0)
        rhs_a = float(X.pow(2).sum(-1).mean())
        bound = th.A * rhs_a - B * float(mean_x.pow(2).sum())
        errors = (Y.mean(1) - mean_x).pow(2).sum(-1)
        self._bound_check(errors, bound, rhs_a, "A (1/n) sum_i ||x_i||^2 - B ||mean x||^2",
                          f"declared A = {th.A:.6g}, B = {B:.6g}", f"the n = {self.n} rows",
                          "E||mean_i C_i(x_i) - mean x||^2")
        return f"the AB inequality holds (A = {th.A:.4g}, B = {B:.4g}; measured {float(errors.mean()):.4g} <= {bound:.4g})."


def check_hostile_decode(C: Compressor, payloads: list[bytes], seed: int, d: int, *, what: str = "a hostile payload",
                         dtype: torch.dtype = torch.float64) -> None:
    """Decode hostile bytes: a :class:`~commpress.errors.CommpressError` or finite rows of shape
    ``(len(payloads), d)`` are both fine; any other exception or non-finite rows fail."""
    try:
        out = C.decode(payloads, seed, d, dtype=dtype)
    except CommpressError:
        return
    except Exception as err:
        raise Fail(f"expected a CommpressError or clean rows when decoding {what}; the decoder crashed with "
                   f"{type(err).__name__}: {err}") from None
    if not (isinstance(out, torch.Tensor) and out.shape == (len(payloads), d) and bool(torch.isfinite(out).all())):
        raise Fail(f"expected a CommpressError or finite rows of shape ({len(payloads)}, {d}) when decoding {what}; "
                   f"got {getattr(out, 'shape', type(out).__name__)} with non-finite values or the wrong shape.")
