"""The compressor interface: fast path, wire path, theory.

Every compressor maps a batch ``X`` of shape ``(rows, d)`` (one row per client) and a round
seed to the rows the server reconstructs. It is written once, as three public hooks (see
:class:`Compressor` for the how-to and an example):

- ``encode_message(X, ctx) -> message``: a dict of named tensors, each ``(rows, count)``: exactly
  the numbers that go on the wire (float32 headers already rounded, integer codes, ...);
- ``decode_message(message, ctx) -> X_hat``: the server's reconstruction from those numbers and
  the seed alone;
- ``layout(ctx, message)``: how many entries of which width each field has (the
  :mod:`commpress.wire` fields);

plus ``theory(n, d)``, the constants the compressor declares. From these the base class builds

- ``apply(X, seed)``: ``decode_message(encode_message(X))`` and the exact payload bits, without
  making bytes (the simulator's fast path);
- ``encode(X, seed)`` / ``decode(payloads, seed, d)``: the same message really packed into
  bytes and parsed back, with every length and header validated.

Because both paths reconstruct from the same message, ``decode(encode(X)) == apply(X)[0]``
and ``bits == 8 * len(payload)`` hold by construction; :func:`commpress.testing.check_compressor`
checks them, and the declared constants, for any compressor.

The built-in compressors implement the same hooks under their older private names
(``_encode``, ``_decode``, ``_layout``, ``_header_fields``, ...); the public hooks default to
them, so either name works and the public one wins.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch

from commpress._rng import SEED_LIMIT, private_rand, shared_generator
from commpress.errors import ConfigError, InputError, InputTypeError, NonFiniteError, PayloadError
from commpress.wire import Field, payload_bytes, pack_rows, unpack_rows

#: A message: field name -> the ``(rows, count)`` tensor of the numbers sent (what ``encode_message`` returns).
Message = dict[str, torch.Tensor]
#: A layout: groups of rows that share one field list, as (fields, row indices).
Layout = list[tuple[list[Field], torch.Tensor]]


@dataclass(frozen=True)
class Context:
    """What both sides of the wire know about a call: no data, only public facts.

    ``seed`` (the round seed), ``n`` (clients in the round), ``d``, ``clients`` (the client index of
    every row of this call, ``(rows,)``), ``dtype`` and ``device`` of the rows; ``rows``, ``is_full``
    (the rows are clients 0..n-1 in order). Randomness: :meth:`private_rand`, :meth:`shared_generator`.
    """

    seed: int
    n: int
    d: int
    clients: torch.Tensor  # (rows,) int64 on the CPU: the client index of every row
    dtype: torch.dtype
    device: torch.device

    @property
    def rows(self) -> int:
        return int(self.clients.numel())

    @property
    def is_full(self) -> bool:
        """True when the rows are exactly clients 0..n-1 in order."""
        return self.rows == self.n and bool(torch.equal(self.clients, torch.arange(self.n)))

    def select(self, full: torch.Tensor) -> torch.Tensor:
        """Rows of a per-client tensor (leading axis n) for this call's clients."""
        return full if self.is_full else full[self.clients.to(full.device)]

    def private_rand(self, tag: str, shape: tuple[int, ...] | None = None,
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Uniform [0, 1) draws private to each row's client: ``(rows, *shape)`` on ``self.device``.

        ``shape`` defaults to ``(d,)``. Row j is a pure function of (seed, ``tag``, shape, dtype,
        client index ``clients[j]``): the same whichever process encodes the client and whoever
        shares its batch, and regenerated identically by the decoder (0 bits on the wire). Use a
        ``tag`` of your own (e.g. ``"int8/round"``) per purpose.
        """
        shape = (self.d,) if shape is None else tuple(int(s) for s in shape)
        return private_rand(self.seed, tag, self.n, shape, None if self.is_full else self.clients, dtype=dtype,
                            device=self.device)

    def shared_generator(self, tag: str) -> torch.Generator:
        """A CPU ``torch.Generator`` for the round's shared stream ``(seed, tag)``: the same draws on
        every process and for every client (shifts, permutations, coins that tie clients together)."""
        return shared_generator(self.seed, tag)


@dataclass(frozen=True)
class CompressorTheory:
    """What theory says of a compressor at (n, d).

    ``kind``: ``"unbiased"``, ``"contractive"``, ``"correlated"`` (jointly acting, individually
    unbiased), ``"combinatorial"`` (unbiased only in the aggregate) or ``"biased"`` (no class).
    ``omega``: variance constant of the class U(omega) (per client); ``delta``: contraction
    constant of B(delta); ``A``, ``B``: the AB-inequality constants of the set of n clients
    (as implemented); ``bits``: expected payload bits per client (bytes-padded, as sent).
    ``extras`` holds paper conventions (``omega_paper``, ``A_paper``) and notes, and the flags
    :func:`commpress.testing.check_compressor` reads: ``exact_unbiased=False`` (unbiased only
    approximately), ``omega_is_bound=False`` / ``delta_is_bound=False`` (the constant is a limit
    or typical value, not a bound for every x: its statistical check is skipped),
    ``bits_data_dependent=True`` (``bits`` is an expectation or bound, not every call's size).
    """

    kind: str
    omega: float | None
    delta: float | None
    A: float | None
    B: float | None
    bits: float
    extras: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def padded_bits(information_bits: int | float) -> int:
    """Bits on the wire for a payload of ``information_bits``: padded to a whole byte."""
    return 8 * math.ceil(information_bits / 8)


def uniform_layout(fields: list[Field], rows: int) -> Layout:
    """A layout in which every row has the same fields."""
    return [(fields, torch.arange(rows))]


def f32_up(t: torch.Tensor) -> torch.Tensor:
    """Round to float32 upward (the result as float32 is >= t): range headers must contain x."""
    r = t.to(torch.float32)
    below = r.to(t.dtype) < t
    if bool(below.any()):
        r = torch.where(below, torch.nextafter(r, torch.full_like(r, math.inf)), r)
    return r


def f32(t: torch.Tensor) -> torch.Tensor:
    """Round to the nearest float32 (a scale header)."""
    return t.to(torch.float32)


class Compressor:
    r"""Base class of every compressor; subclass it to write your own.

    **What to implement** (all public names; nothing with an underscore is needed):

    1. ``layout(ctx, message) -> Layout``: the wire format of every row, as a list of
       ``(fields, rows)`` groups; :func:`uniform_layout` when all rows share one field list.
       A :class:`~commpress.wire.Field` is ``Field(name, kind, width, count)`` with ``kind`` one of
       :data:`~commpress.wire.UINT` (unsigned integer codes), :data:`~commpress.wire.F32`,
       :data:`~commpress.wire.F64`. The layout may depend on ``ctx`` (n, d, seed, clients) only:
       a decoder knows nothing else. (Data-dependent sizes: also implement ``header_fields(ctx)``,
       fields read first, and use ``message`` -- then holding those header fields -- in ``layout``.)
    2. ``encode_message(X, ctx) -> dict[str, Tensor]``: for the ``(rows, d)`` batch ``X``, one
       ``(rows, count)`` tensor per field: exactly the numbers sent (round float headers to float32
       yourself, with :func:`f32` or :func:`f32_up`; integer codes in ``[0, 2**width)``).
    3. ``decode_message(message, ctx) -> Tensor``: the ``(rows, d)`` reconstruction, of
       ``ctx.dtype`` on ``ctx.device``, from the message and ``ctx`` alone.
    4. ``theory(n, d) -> CompressorTheory``: the constants you claim: ``kind`` (``"unbiased"``
       with ``omega``, ``"contractive"`` with ``delta``, ...), the AB constants ``A``, ``B`` of n
       clients, and the expected ``bits`` per client. Algorithms take their theoretical stepsizes
       from it, and :func:`commpress.testing.check_compressor` tests every claim.

    Randomness comes from ``ctx`` only: ``ctx.private_rand(tag)`` (per-client draws keyed by the
    client index) and ``ctx.shared_generator(tag)`` (the round's shared stream), never from the
    global RNG, so that ``decode`` can regenerate it and subsets of clients give the same rows.
    Declare ``deterministic = True`` if the output never depends on the seed, ``correlated = True``
    if rows depend on each other through shared randomness. Optional hooks: ``check_shape(ctx)``
    (reject an (n, d) you cannot serve with :class:`~commpress.errors.ConfigError`) and
    ``check_message(message, ctx)`` (validate a parsed message, raise
    :class:`~commpress.errors.PayloadError`). Register it with ``@commpress.compressors.register("name")``
    to use its name in configs (optional: instances work everywhere).

    Example: ``examples/plugin/commpress_int8/__init__.py``, 8-bit stochastic rounding in 30 lines of
    public names (a package registering it as ``"int8"`` through an entry point);
    ``examples/int8_compressor.py`` checks it with :func:`commpress.testing.check_compressor` and
    runs it with MARINA at its theoretical stepsize, and the tutorial "Your own compressor" in the
    documentation walks through it.
    """

    name: ClassVar[str] = ""
    #: Messages of different clients can be summed while compressed (all-reduce friendly).
    summable: ClassVar[bool] = False
    #: Rows depend on each other through shared randomness (CQ, PermK, ISCC): the set is the object.
    correlated: ClassVar[bool] = False
    #: The output does not depend on the seed (TopK, scaled sign, the identity). The conformance
    #: suite checks both ways: a deterministic compressor gives one output for every seed, any
    #: other one must use its seed. Wrappers set it per instance from their parts.
    deterministic: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every ``apply`` / ``encode`` / ``decode`` a subclass defines takes half precision too."""
        super().__init_subclass__(**kwargs)
        for name, wrap in _HALF_WRAPPERS.items():
            if name in cls.__dict__:
                setattr(cls, name, wrap(cls.__dict__[name]))

    # ------------------------------------------------------------------ public API
    def apply(
        self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compress and reconstruct ``X`` (``(rows, d)``) in one step; returns ``(X_hat, bits)``.

        ``bits`` is an int64 ``(rows,)`` tensor: exactly ``8 * len(payload)`` of each row's message.
        """
        ctx = self._context(X, seed, clients, n)
        if self._apply_fused is not None:
            X_hat = self._apply_fused(X, ctx)
            if X_hat is not None:
                return X_hat, self._bits(self.layout(ctx, None), ctx.rows)
        message = self._checked_encode(X, ctx)
        X_hat = self.decode_message(message, ctx)
        return X_hat, self._bits(self.layout(ctx, message), ctx.rows)

    #: Optional fused fast path of :meth:`apply` (built-ins only; plugins leave it None).
    #:
    #: Contract: ``_apply_fused(X, ctx) -> Tensor | None``. ``apply`` calls it, when the class
    #: sets it, after validating ``X`` and building ``ctx`` (``X`` finite, float32 or float64,
    #: ``(rows, d)``; half precision was already upcast). It either returns ``None`` (take the
    #: generic path: ``decode_message(encode_message(X, ctx), ctx)``; e.g. when a variable-length
    #: layout needs the message, or the method has no faster path for this dtype, device or
    #: setting) or returns ``X_hat``, which must equal that generic result **bit for bit**
    #: (``ctx.dtype``, ``ctx.device``), raise the encoder's errors (overflowing headers,
    #: out-of-range inputs) or return None for such inputs, and leave ``X`` unchanged. The bits are then read from
    #: ``layout(ctx, None)``, so the layout must not depend on the message. Whether the hook uses a
    #: compiled kernel is its own business: :func:`commpress._rng.fused_enabled` is the switch
    #: (``COMMPRESS_COMPILE`` / :func:`commpress._rng.set_compile`), and the eager path stays the
    #: default. ``encode`` / ``decode`` never call it.
    _apply_fused: ClassVar[Any] = None

    def encode(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None) -> list[bytes]:
        """The wire messages of the rows of ``X``: one ``bytes`` per row."""
        ctx = self._context(X, seed, clients, n)
        message = self._checked_encode(X, ctx)
        payloads: list[bytes | None] = [None] * ctx.rows
        for fields, idx in self.layout(ctx, message):
            if idx.numel() == 0:
                continue
            every_row = _in_order(idx, ctx.rows)
            part = message if every_row else {k: v[idx.to(v.device)] for k, v in message.items()}
            packed = pack_rows(fields, part, int(idx.numel()))
            width = packed.shape[1]
            flat = packed.numpy().tobytes()
            for j, row in enumerate(idx.tolist()):
                payloads[row] = flat[j * width : (j + 1) * width]
        return payloads  # type: ignore[return-value]

    def decode(
        self,
        payloads: list[bytes],
        seed: int,
        d: int,
        *,
        clients: Any = None,
        n: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: Any = None,
    ) -> torch.Tensor:
        """Reconstruct the rows from their wire messages; ``(len(payloads), d)`` of ``dtype``.

        Every payload's length and header is validated before anything is allocated on its word;
        a truncated, over-long or corrupted payload raises :class:`PayloadError`.
        """
        ctx = self._decode_context(payloads, seed, d, clients, n, dtype, device)
        rows = ctx.rows
        clients_t = ctx.clients
        header_fields = self.header_fields(ctx)
        header: Message | None = None
        if header_fields:
            hb = payload_bytes(header_fields)
            short = [i for i, p in enumerate(payloads) if len(p) < hb]
            if short:
                raise PayloadError(
                    f"{self.name}: payload of row {short[0]} has {len(payloads[short[0]])} bytes, "
                    f"fewer than the {hb}-byte header; it is truncated."
                )
            head = torch.frombuffer(bytearray(b"".join(bytes(p[:hb]) for p in payloads)), dtype=torch.uint8)
            header = unpack_rows(header_fields, head.reshape(rows, hb))
            self.check_header(header, ctx)
        layout = self.layout(ctx, header)
        message: Message = {}
        for fields, idx in layout:
            if idx.numel() == 0:
                continue
            width = payload_bytes(fields)
            rows_idx = idx.tolist()
            for row in rows_idx:
                if len(payloads[row]) != width:
                    raise PayloadError(
                        f"{self.name}: payload of row {row} (client {int(clients_t[row])}) has "
                        f"{len(payloads[row])} bytes; its layout needs exactly {width}. "
                        "It is truncated, over-long or not a message of this compressor/seed/d."
                    )
            data = torch.frombuffer(bytearray(b"".join(bytes(payloads[r]) for r in rows_idx)), dtype=torch.uint8)
            parsed = unpack_rows(fields, data.reshape(len(rows_idx), width))
            every_row = _in_order(idx, rows)
            for f in fields:
                values = parsed[f.name]
                if every_row and f.count >= 1:  # one layout for all rows: the parsed field is the message
                    message[f.name] = values
                    continue
                if f.name not in message:
                    message[f.name] = torch.zeros(rows, max(f.count, 1), dtype=values.dtype)
                target = message[f.name]
                if target.shape[1] < f.count:
                    grown = torch.zeros(rows, f.count, dtype=target.dtype)
                    grown[:, : target.shape[1]] = target
                    message[f.name] = target = grown
                target[idx, : f.count] = values
        self.check_message(message, ctx)
        out = self.decode_message(message, ctx)
        if not bool(torch.isfinite(out.sum())) and not bool(torch.isfinite(out).all()):
            raise PayloadError(
                f"{self.name}: the payload decodes to non-finite values (a header out of range for "
                f"{dtype}); it is corrupted or was not made by this compressor."
            )
        return out

    def theory(self, n: int, d: int) -> CompressorTheory:
        """Class, constants and expected bits at ``n`` clients and dimension ``d``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"

    def params(self) -> dict[str, Any]:
        """The constructor parameters (for configs, logs and ``repr``)."""
        return {}

    # ------------------------------------------------------------------ public hooks
    def encode_message(self, X: torch.Tensor, ctx: Context) -> Message:
        """The message of the rows of ``X``: one ``(rows, count)`` tensor per field of the layout."""
        return self._encode(X, ctx)

    def decode_message(self, message: Message, ctx: Context) -> torch.Tensor:
        """The ``(rows, d)`` reconstruction (``ctx.dtype``, ``ctx.device``) from a message."""
        return self._decode(message, ctx)

    def layout(self, ctx: Context, message: Message | None) -> Layout:
        """Field layout of every row. ``message`` holds at least the header fields (None-safe
        when there are none: a decoder calls ``layout(ctx, header)`` before it has the rest)."""
        return self._layout(ctx, message)

    def header_fields(self, ctx: Context) -> list[Field]:
        """Fields a decoder must read first because the layout depends on them (byte-aligned)."""
        return self._header_fields(ctx)

    def check_header(self, header: Message, ctx: Context) -> None:
        """Validate header values before the layout is computed from them (raise PayloadError)."""
        self._check_header(header, ctx)

    def check_message(self, message: Message, ctx: Context) -> None:
        """Validate a parsed message before reconstruction (raise PayloadError); default: finite floats."""
        self._check_message(message, ctx)

    def check_shape(self, ctx: Context) -> None:
        """Reject an (n, d) the compressor cannot serve (raise ConfigError), e.g. k > d."""
        self._check_shape(ctx)

    # ------------------------------------------------------------------ built-ins' private hooks
    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        raise NotImplementedError(f"{type(self).__name__} must implement encode_message(X, ctx).")

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement decode_message(message, ctx).")

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        raise NotImplementedError(f"{type(self).__name__} must implement layout(ctx, message).")

    def _header_fields(self, ctx: Context) -> list[Field]:
        return []

    def _check_header(self, header: Message, ctx: Context) -> None:
        pass

    def _check_message(self, message: Message, ctx: Context) -> None:
        for key, value in message.items():
            if value.is_floating_point() and not bool(torch.isfinite(value.sum())) and not bool(torch.isfinite(value).all()):
                raise PayloadError(f"{self.name}: field '{key}' holds NaN or Inf; the payload is corrupted.")

    def _check_shape(self, ctx: Context) -> None:
        pass

    # ------------------------------------------------------------------ helpers
    def _decode_context(
        self, payloads: Any, seed: Any, d: Any, clients: Any, n: int | None, dtype: Any, device: Any
    ) -> Context:
        """Validate the arguments of :meth:`decode` (for subclasses that override it, too)."""
        if not isinstance(payloads, (list, tuple)) or not all(isinstance(p, (bytes, bytearray)) for p in payloads):
            raise InputTypeError(
                f"decode expects a list of bytes payloads; got {type(payloads).__name__}. "
                "Pass the list returned by encode()."
            )
        if not payloads:
            raise InputError("decode got no payloads; pass one bytes object per client row.")
        d = _check_dim(d)
        if dtype not in (torch.float32, torch.float64):
            raise InputTypeError(f"decode dtype must be torch.float32, float64, float16 or bfloat16; got {dtype}.")
        clients_t, n = _check_clients(clients, n, len(payloads))
        ctx = Context(
            seed=_check_seed(seed), n=n, d=d, clients=clients_t, dtype=dtype,
            device=torch.device(device) if device is not None else torch.device("cpu"),
        )
        self.check_shape(ctx)
        return ctx

    def _checked_encode(self, X: torch.Tensor, ctx: Context) -> Message:
        """``encode_message``, refusing a message whose float fields overflowed (e.g. a float32 norm
        of a blown-up vector): the sender learns it at once instead of the receiver seeing garbage."""
        message = self.encode_message(X, ctx)
        for key, value in message.items():
            if value is X:  # sent as given (identity at its own precision): checked finite on entry
                continue
            if value.is_floating_point() and not bool(torch.isfinite(value.sum())) and not bool(torch.isfinite(value).all()):
                raise NonFiniteError(
                    f"{self.name}: field '{key}' of the message overflows to Inf "
                    f"(|x| up to {float(X.abs().max()):.3g} does not fit the float32 wire format). "
                    "The run has probably diverged: lower the stepsize."
                )
        return message

    def _context(self, X: Any, seed: int, clients: Any, n: int | None) -> Context:
        X = _check_batch(X)
        rows, d = X.shape
        clients_t, n = _check_clients(clients, n, rows)
        ctx = Context(seed=_check_seed(seed), n=n, d=d, clients=clients_t, dtype=X.dtype, device=X.device)
        self.check_shape(ctx)
        return ctx

    @staticmethod
    def _bits(layout: Layout, rows: int) -> torch.Tensor:
        bits = torch.zeros(rows, dtype=torch.int64)
        for fields, idx in layout:
            bits[idx] = 8 * payload_bytes(fields)
        return bits


#: Half precisions (float16, bfloat16): a batch is compressed as its float32 upcast, which is exact,
#: so the payload and bits are those of the float32 batch; ``apply`` rounds its output back to the
#: input's dtype and ``decode(..., dtype=half)`` rounds the float32 rows it decodes.
HALF_DTYPES = (torch.float16, torch.bfloat16)


def _half_apply(fn: Any) -> Any:
    if getattr(fn, "_takes_half", False):
        return fn

    @functools.wraps(fn)
    def apply(self: Compressor, X: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(X, torch.Tensor) and X.dtype in HALF_DTYPES:
            X_hat, bits = fn(self, X.float(), *args, **kwargs)
            return X_hat.to(X.dtype), bits
        return fn(self, X, *args, **kwargs)

    apply._takes_half = True  # type: ignore[attr-defined]
    return apply


def _half_encode(fn: Any) -> Any:
    if getattr(fn, "_takes_half", False):
        return fn

    @functools.wraps(fn)
    def encode(self: Compressor, X: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(X, torch.Tensor) and X.dtype in HALF_DTYPES:
            X = X.float()
        return fn(self, X, *args, **kwargs)

    encode._takes_half = True  # type: ignore[attr-defined]
    return encode


def _half_decode(fn: Any) -> Any:
    if getattr(fn, "_takes_half", False):
        return fn

    @functools.wraps(fn)
    def decode(self: Compressor, *args: Any, **kwargs: Any) -> Any:
        dtype = kwargs.get("dtype")
        if dtype in HALF_DTYPES:
            return fn(self, *args, **{**kwargs, "dtype": torch.float32}).to(dtype)
        return fn(self, *args, **kwargs)

    decode._takes_half = True  # type: ignore[attr-defined]
    return decode


_HALF_WRAPPERS = {"apply": _half_apply, "encode": _half_encode, "decode": _half_decode}
for _name, _wrap in _HALF_WRAPPERS.items():
    setattr(Compressor, _name, _wrap(getattr(Compressor, _name)))
del _name, _wrap


def _in_order(idx: torch.Tensor, rows: int) -> bool:
    """The layout group ``idx`` is every row, in order (its fields need no gather or scatter)."""
    return int(idx.numel()) == rows and bool(torch.equal(idx, torch.arange(rows)))


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) and not hasattr(seed, "__index__"):
        raise InputTypeError(f"seed must be an integer in [0, 2**63); got {seed!r} ({type(seed).__name__}).")
    seed = int(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"seed must be in [0, 2**63); got {seed}. Use commpress.derive_seed(base, round).")
    return seed


def _check_dim(d: Any) -> int:
    if isinstance(d, bool) or not isinstance(d, int) and not hasattr(d, "__index__"):
        raise InputTypeError(f"d must be a positive integer; got {d!r}.")
    d = int(d)
    if d < 1:
        raise ConfigError(f"d must be >= 1; got {d}.")
    return d


def _check_batch(X: Any) -> torch.Tensor:
    if not isinstance(X, torch.Tensor):
        raise InputTypeError(
            f"compressors take a torch.Tensor X of shape (n_clients, d); got {type(X).__name__}. "
            "Convert with torch.as_tensor(X, dtype=torch.float64)."
        )
    if X.dim() != 2:
        hint = " Add the client axis: X[None, :]." if X.dim() == 1 else ""
        raise InputError(f"compress expects X of shape (n_clients, d); got {tuple(X.shape)}.{hint}")
    if X.dtype not in (torch.float32, torch.float64):
        raise InputTypeError(
            f"compressors take float32, float64, float16 or bfloat16 tensors; got {X.dtype}. Convert with X.float()."
        )
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise InputError(f"X must have at least one row and one column; got shape {tuple(X.shape)}.")
    if not bool(torch.isfinite(X.sum())) and not bool(torch.isfinite(X).all()):  # the sum is a cheap first test
        bad = (~torch.isfinite(X)).nonzero()[0].tolist()
        raise NonFiniteError(
            f"X holds NaN or Inf (first at row {bad[0]}, column {bad[1]}: {X[bad[0], bad[1]].item()}). "
            "Compress finite vectors only; check the gradient or the stepsize."
        )
    return X


def _check_clients(clients: Any, n: int | None, rows: int) -> tuple[torch.Tensor, int]:
    if clients is None:
        if n is not None and int(n) != rows:
            raise InputError(
                f"n={n} but X has {rows} rows and no clients= were given; pass clients=<the rows' "
                "client indices> to encode a subset, or drop n."
            )
        return torch.arange(rows), rows
    clients_t = torch.as_tensor(clients, dtype=torch.int64).reshape(-1).cpu()
    if clients_t.numel() != rows:
        raise InputError(f"clients has {clients_t.numel()} entries but there are {rows} rows; give one index per row.")
    if n is None:
        raise InputError("clients= needs n= (the total number of clients of the round).")
    n = int(n)
    if n < 1:
        raise ConfigError(f"n must be >= 1; got {n}.")
    if bool((clients_t < 0).any()) or bool((clients_t >= n).any()):
        raise InputError(f"client indices must lie in [0, {n}); got {clients_t.tolist()[:10]}.")
    if clients_t.unique().numel() != rows:
        raise InputError("client indices must be distinct; a client appears twice in clients=.")
    return clients_t, n
