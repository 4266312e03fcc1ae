"""Units: bandwidths and latencies read from text (strictly: a bit is not a byte), and written back."""

from __future__ import annotations

import re

from commpress.errors import ConfigError

#: Decimal and binary prefixes of a rate (any case: ``mbit`` is megabits, as in tc).
_RATE_PREFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
                  "ki": 2.0**10, "mi": 2.0**20, "gi": 2.0**30, "ti": 2.0**40}
_BIT_WORDS = ("bit", "bits", "bit/s", "bits/s")
_BYTE_WORDS = ("byte/s", "bytes/s")
#: The accepted spellings, for the messages (the M prefix stands for every prefix).
BANDWIDTH_UNITS = ("bits/s: bit, Mbit, Mbit/s, Mb/s, Mbps; bytes/s: B/s, MB/s, MBps, MiB/s, MByte/s "
                   "(prefixes k, M, G, T and Ki, Mi, Gi, Ti)")
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_bandwidth(text: str) -> float:
    """``"100Mbit"`` -> 12.5e6 bytes/s.

    ============================================  =========  ==================================
    spelling (M stands for k, M, G, T, Ki, ...)   unit       note
    ============================================  =========  ==================================
    ``Mbit``, ``mbit``, ``Mbit/s``, ``Mbits/s``   bits/s     tc's ``mbit``; ``bit`` in any case
    ``Mb/s``, ``Mbps``, ``Gbps``, ``Kbps``        bits/s     lowercase ``b``: bits
    ``MB/s``, ``MBps``, ``MiB/s``, ``MByte/s``    bytes/s    uppercase ``B``: bytes
    ``mbps``, ``kbps``, ``gbps``, ``bps``         refused    tc reads them as bytes/s, most
                                                             people as bits/s: say which
    ``MB``, ``Mb``, ``M``, ``MBPS``               refused    a size, or no bit/byte case
    ============================================  =========  ==================================

    Prefixes are decimal (k = 10^3, M = 10^6, G = 10^9, T = 10^12) or binary (Ki = 2^10, ...),
    in any case. Anything else is a :class:`ConfigError` listing the accepted spellings.
    """
    value, unit = _split_unit(text, "bandwidth", "100Mbit")
    match = re.fullmatch(r"([kmgt]i?)?(.+)", unit, flags=re.IGNORECASE)
    prefix, base = match.group(1) or "", match.group(2)
    if base.lower() == "i":  # "Mi" alone: no base
        prefix, base = "", unit
    if base.lower() in _BIT_WORDS or base == "b/s" or (base == "bps" and prefix != prefix.lower()):
        per_byte = 1 / 8
    elif base.lower() in _BYTE_WORDS or base in ("B/s", "Bps"):
        per_byte = 1.0
    elif base == "bps":  # all lowercase: tc's spelling of bytes/s, everyone else's of bits/s
        p = {"k": "k", "ki": "Ki"}.get(prefix.lower(), prefix.capitalize())  # the usual spelling
        raise ConfigError(
            f"ambiguous bandwidth unit {unit!r} in {text!r}: tc reads it as bytes/s, most people as bits/s. "
            f"Write {value:g}{p}bit/s{f' (or {value:g}{p.capitalize()}bps)' if p else ''} for bits/s, "
            f"{value:g}{p}B/s for bytes/s."
        )
    else:
        raise ConfigError(f"unknown bandwidth unit {unit!r} in {text!r}; write {BANDWIDTH_UNITS}, "
                          "e.g. 100Mbit, 1Gbit/s, 50MB/s.")
    rate = value * _RATE_PREFIXES[prefix.lower()] * per_byte
    if not rate > 0:
        raise ConfigError(f"bandwidth must be positive; got {text!r}.")
    return rate


def parse_latency(text: str) -> float:
    """``"1ms"`` -> 0.001 s. Units: s, ms, us, ns."""
    value, unit = _split_unit(text, "latency", "1ms")
    unit = unit.lower()
    if unit not in _TIME_UNITS:
        raise ConfigError(f"unknown latency unit {unit!r} in {text!r}; use s, ms, us or ns (e.g. 1ms, 50us).")
    if value < 0:
        raise ConfigError(f"latency must be >= 0; got {text!r}.")
    return value * _TIME_UNITS[unit]


def _split_unit(text: str, what: str, example: str) -> tuple[float, str]:
    """The number and the unit of ``text``, the unit's case kept (``Mb/s`` is not ``MB/s``)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9].*?)?\s*", str(text))
    if not match:
        raise ConfigError(f"cannot read the {what} {text!r}; write a number and a unit, e.g. {example}.")
    if not match.group(2):
        raise ConfigError(f"the {what} {text!r} has no unit; write e.g. {example}.")
    return float(match.group(1)), match.group(2)


# ---------------------------------------------------------------------------- written back
def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.1f} ms" if seconds >= 1e-3 else f"{1e6 * seconds:.0f} us"


def _fmt_seconds(seconds: float) -> str:
    return _ms(seconds) if seconds < 1 else f"{seconds:.2f} s"


def _fmt_rate(bytes_per_second: float) -> str:
    bits = 8 * bytes_per_second
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.3g} bit/s"
