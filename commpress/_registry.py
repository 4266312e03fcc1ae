"""One name -> class registry, used by compressors, problems and algorithms.

A package makes one :class:`Registry`; its modules register classes with ``@registry.register(
"name")``; ``names()`` / ``get()`` import every public module of the package first (so a new
module registers just by existing). Unknown names and parameters give a :class:`ConfigError`
with close-match hints and the list of what exists.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any, Callable

from commpress.errors import ConfigError


class Registry:
    """Classes of one kind (``what``: "compressor", "problem", "algorithm") by lower-case name."""

    def __init__(self, what: str, package: str, *, skip_params: tuple[str, ...] = (), normalise_dashes: bool = False):
        self.what = what
        self.package = package
        self.skip_params = ("self", *skip_params)
        self.normalise_dashes = normalise_dashes
        self._classes: dict[str, type] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: register ``cls`` under ``name`` and set ``cls.name``."""

        def wrap(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise RuntimeError(f"{self.what} name {name!r} registered twice")
            cls.name = name
            self._classes[name] = cls
            return cls

        return wrap

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_all()
        return sorted(self._classes)

    def get(self, name: Any) -> type:
        """The class registered under ``name`` (case-insensitive)."""
        self._load_all()
        key = name.strip().lower() if isinstance(name, str) else name
        if isinstance(key, str) and self.normalise_dashes:
            key = key.replace("-", "_")
        if key not in self._classes:
            close = difflib.get_close_matches(str(key), list(self._classes), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"unknown {self.what} {name!r}.{hint} Known {self.what}s: {', '.join(sorted(self._classes))}."
            )
        return self._classes[key]

    def parameters(self, name: Any) -> dict[str, Any]:
        """The keyword parameters of a class's constructor, with their defaults."""
        signature = inspect.signature(self.get(name).__init__)
        return {
            p.name: p.default
            for p in signature.parameters.values()
            if p.name not in self.skip_params and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }

    def check_params(self, name: Any, params: dict[str, Any]) -> type:
        """The class, after checking that every key of ``params`` is one of its parameters."""
        cls = self.get(name)
        signature = inspect.signature(cls.__init__)
        if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            return cls
        allowed = list(self.parameters(name))
        unknown = [k for k in params if k not in allowed]
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{self.what} {cls.name!r} has no parameter {unknown[0]!r}.{hint} Its parameters are: "
                f"{', '.join(allowed) or '(none)'}."
            )
        return cls

    def describe(self, name: Any) -> str:
        """The first paragraph of the class's docstring, as plain text (:func:`summary`)."""
        return summary(inspect.getdoc(self.get(name)))

    def _load_all(self) -> None:
        if self._loaded:
            return
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_") and info.name not in ("base", "registry"):
                importlib.import_module(f"{self.package}.{info.name}")
        self._loaded = True


# ---------------------------------------------------------------------------- plain-text summaries
_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π",
    "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Omega": "Ω",
    "circ": "∘", "cdot": "·", "times": "×", "pm": "±", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥",
    "ne": "≠", "neq": "≠", "approx": "≈", "sim": "~", "in": "∈", "to": "→", "infty": "∞", "sum": "Σ",
    "prod": "Π", "nabla": "∇", "partial": "∂", "dots": "…", "ldots": "…", "cdots": "⋯", "|": "‖",
    "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "langle": "⟨", "rangle": "⟩",
    "top": "ᵀ", "log": "log", "exp": "exp", "max": "max", "min": "min", "sign": "sign",
}
_FRAC = re.compile(r"\\[dt]?frac\s*(\{[^{}]*\}|\w)\s*(\{[^{}]*\}|\w)")
_SQRT = re.compile(r"\\sqrt\s*(\{[^{}]*\}|\w)")
_WORD = re.compile(r"\\(?:operatorname|mathrm|text|textrm|textit|mathit)\s*\{([^{}]*)\}")
_FONT = re.compile(r"\\(?:mathcal|mathbb|mathbf|boldsymbol|textstyle|displaystyle|left|right|bigg|Bigg|big|Big)"
                   r"(?![A-Za-z])\s*")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
_OPEN, _CLOSE = "\x00", "\x01"  # \{ and \}, kept through the removal of grouping braces


def _group(text: str) -> str:
    """``{a+b}`` -> ``(a+b)``; ``{a}`` or ``a`` -> ``a``."""
    inner = text[1:-1] if text.startswith("{") else text
    return inner if re.fullmatch(r"[\w.]+|[^\x00-\x7f]", inner) else f"({inner})"


def _spaced(match: re.Match, word: str) -> str:
    """``word``, after a space where it would run into the previous word (``d\\operatorname{sign}``)."""
    before = match.string[match.start() - 1] if match.start() else " "
    return (" " if before.isalnum() or before in ")]}" else "") + word


def _latex(text: str) -> str:
    """Common LaTeX as plain text: ``\\omega`` -> ω, ``\\tfrac{a}{b}`` -> a/b, ``\\sqrt{x}`` -> sqrt(x),
    ``x^{1-s}`` -> x^(1-s), ``\\operatorname{sign}`` -> sign; any other command loses its backslash."""
    text = text.replace("\\{", _OPEN).replace("\\}", _CLOSE).replace("^\\top", "ᵀ").replace("^{\\top}", "ᵀ")
    text = _WORD.sub(lambda m: _spaced(m, m.group(1)), text)
    text = _FONT.sub("", text)
    for _ in range(3):  # nested fractions and roots, innermost first
        text = _FRAC.sub(lambda m: f"{_group(m.group(1))}/{_group(m.group(2))}", text)
        text = _SQRT.sub(lambda m: f"sqrt({_group(m.group(1)).removeprefix('(').removesuffix(')')})", text)
    text = _COMMAND.sub(lambda m: _SYMBOLS.get(m.group(1), "" if m.group(1) in ",;:! " else m.group(1)), text)
    text = re.sub(r"([_^])\{([^{}]*)\}", lambda m: m.group(1) + _group("{" + m.group(2) + "}"), text)
    return text.replace("{", "").replace("}", "").replace(_OPEN, "{").replace(_CLOSE, "}")


def plain(text: str) -> str:
    """reST and LaTeX markup removed: ``:math:`\\omega``` -> ω, ``:func:`f``` -> f, ````x```` -> x."""
    text = re.sub(r":math:`([^`]*)`", lambda m: _latex(m.group(1)), text)
    text = re.sub(r":[\w:.-]+:`~?([^`]*)`", r"\1", text)  # :func:`f`, :class:`~a.B`
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`]*)`_?", r"\1", text)
    text = _latex(text) if "\\" in text else text
    return " ".join(text.replace("`", "").split())


def summary(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line, as plain text (:func:`plain`)."""
    return plain((doc or "").strip().split("\n\n")[0])


def static_catalog(package: str) -> dict[str, str]:
    """``name -> summary`` of every class registered with ``@register("name")`` in ``package``,
    read from the source files without importing them: ``commpress list`` without loading torch.

    The same names and texts as the imported registry's ``names()`` and ``describe()`` (tested).
    """
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    out: dict[str, str] = {}
    for path in sorted(p for folder in folders for p in Path(folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for deco in node.decorator_list:
                called = getattr(deco, "func", None)
                if (isinstance(deco, ast.Call) and getattr(called, "id", getattr(called, "attr", None)) == "register"
                        and len(deco.args) == 1 and isinstance(deco.args[0], ast.Constant)):
                    out[str(deco.args[0].value)] = summary(ast.get_docstring(node))
    return dict(sorted(out.items()))

