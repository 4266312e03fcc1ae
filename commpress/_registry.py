"""One name -> class registry, used by compressors, problems and algorithms.

A package makes one :class:`Registry`; its modules register classes with ``@registry.register(
"name")``; ``names()`` / ``get()`` import every public module of the package first (so a new
module registers just by existing). Unknown names and parameters give a :class:`ConfigError`
with close-match hints and the list of what exists.

Plugins. Besides the built-ins, a registry finds

- classes that installed packages declare as entry points of its group (``commpress.compressors``,
  ``commpress.algorithms``, ``commpress.problems``): the entry point's name is the registry name,
  its value ``module:Class``. The group is read the first time a name is not a built-in, or when
  ``names()`` is called; a plugin's module is imported when its name is first asked for (all of
  them for ``names()``). A plugin that cannot be imported, is not a subclass of the kind's base
  class or takes a built-in's name is left out, with a one-line :class:`ConfigError` (naming its
  package and the fix) raised when its name is asked for and shown by ``commpress list``;
- ``"package.module:Class"`` names, imported at lookup (the class must be of the right kind).
  The class's canonical name (``cls.name``) is then that string, which every process resolves
  the same way, unless the class is also registered under a plain name.

Parameters of plugin classes are checked from their constructor's signature, like the built-ins'.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from commpress.errors import ConfigError

#: ``module.path:Class.path`` (the class may be nested: ``mod:Outer.Inner``).
_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
BUILTIN = "builtin"


def plugin_entry_points(group: str) -> list:
    """The installed entry points of ``group`` (one per distribution and name, first on sys.path wins)."""
    return list(entry_points(group=group))


def _dist_name(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "an unknown package"


@dataclass(frozen=True)
class Entry:
    """One line of ``commpress list``: a name, where it comes from, its class or why it is missing."""

    name: str
    origin: str  # "builtin", "plugin <distribution>", "registered by <module>"
    cls: type | None
    error: str | None = None


class Registry:
    """Classes of one kind (``what``: "compressor", "problem", "algorithm") by lower-case name.

    ``base``: the class (or ``"module:Class"``, imported when first needed) every member derives
    from; ``group``: the entry-point group of plugins (None: no plugins).
    """

    def __init__(self, what: str, package: str, *, base: type | str | None = None, group: str | None = None,
                 skip_params: tuple[str, ...] = (), normalise_dashes: bool = False):
        self.what = what
        self.package = package
        self.group = group
        self.skip_params = ("self", *skip_params)
        self.normalise_dashes = normalise_dashes
        self._base = base
        self._classes: dict[str, type] = {}
        self._origins: dict[str, str] = {}
        self._loaded = False
        self._entries: dict[str, Any] | None = None  # plugin entry points not yet imported
        self._broken: dict[str, Entry] = {}  # plugins left out, by the name they asked for
        self._clashes: list[Entry] = []  # plugins whose name is taken (shown by `list`, never looked up)
        self._references: dict[str, type] = {}  # "module:Class" names resolved so far

    # ------------------------------------------------------------------ registration
    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: register ``cls`` under ``name`` and set ``cls.name``."""

        def wrap(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise RuntimeError(f"{self.what} name {name!r} registered twice")
            cls.name = name
            self._classes[name] = cls
            module = getattr(cls, "__module__", "") or ""
            inside = module == self.package or module.startswith(self.package + ".")
            self._origins.setdefault(name, BUILTIN if inside else f"registered by {module}")
            return cls

        return wrap

    # ------------------------------------------------------------------ look-up
    def names(self) -> list[str]:
        """Every registered name, sorted: the built-ins and the plugins that load."""
        self._load_all()
        self._load_plugins()
        return sorted(self._classes)

    def get(self, name: Any) -> type:
        """The class registered under ``name`` (case-insensitive), or the class a
        ``"package.module:Class"`` name refers to."""
        if isinstance(name, str) and ":" in name:
            return self._reference(name.strip())
        self._load_all()
        key = self._key(name)
        if key in self._classes:
            return self._classes[key]
        self._discover()
        if key in self._entries:
            self._load_plugin(key)
            if key in self._classes:
                return self._classes[key]
        if key in self._broken:
            raise ConfigError(self._broken[key].error)
        self._load_plugins()  # an unknown name: every plugin, for a complete message
        known = sorted(self._classes)
        close = difflib.get_close_matches(str(key), known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        broken = f" Plugins that failed to load: {', '.join(sorted(self._broken))} (see `commpress list " \
                 f"{self.what}s`)." if self._broken else ""
        raise ConfigError(
            f"unknown {self.what} {name!r}.{hint} Known {self.what}s: {', '.join(known)}.{broken} "
            f"A class of your own: name it as 'package.module:Class'."
        )

    def origin(self, name: Any) -> str:
        """Where the class of ``name`` comes from: ``"builtin"``, ``"plugin <distribution>"``, ..."""
        cls = self.get(name)
        return self._origins.get(cls.name, "module:Class")

    def entries(self) -> list[Entry]:
        """Every name with its origin, plugins that failed included (their ``error`` set), sorted."""
        self.names()
        rows = [Entry(n, self._origins.get(n, BUILTIN), c) for n, c in self._classes.items()]
        rows += [*self._broken.values(), *self._clashes]
        return sorted(rows, key=lambda e: (e.name, e.error is not None))

    def refresh(self) -> None:
        """Forget the plugins found so far: the next look-up reads the entry points again (after a
        ``pip install`` in a running session)."""
        for name, origin in list(self._origins.items()):
            if origin.startswith("plugin "):
                self._classes.pop(name, None)
                self._origins.pop(name)
        self._entries, self._broken, self._clashes, self._references = None, {}, [], {}

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
        """The first paragraph of the class's own docstring, as plain text (this module's ``summary``)."""
        doc = self.get(name).__doc__  # not inherited: a plugin without one gets "", not its base's
        return summary(inspect.cleandoc(doc) if doc else None)

    # ------------------------------------------------------------------ internals
    def _key(self, name: Any) -> Any:
        key = name.strip().lower() if isinstance(name, str) else name
        if isinstance(key, str) and self.normalise_dashes:
            key = key.replace("-", "_")
        return key

    def _load_all(self) -> None:
        if self._loaded:
            return
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_") and info.name not in ("base", "registry"):
                importlib.import_module(f"{self.package}.{info.name}")
        self._loaded = True

    def _base_class(self) -> type | None:
        if isinstance(self._base, str):
            module, _, attr = self._base.partition(":")
            self._base = getattr(importlib.import_module(module), attr)
        return self._base

    def _wrong_kind(self, obj: Any) -> str | None:
        """Why ``obj`` cannot be a member (None when it can)."""
        base = self._base_class()
        if not isinstance(obj, type):
            return f"is a {type(obj).__name__}, not a class"
        if base is not None and not issubclass(obj, base):
            return f"is not a subclass of {base.__module__.removesuffix('.base')}.{base.__name__}"
        return None

    def _discover(self) -> None:
        """Read the entry points of the group (no plugin module is imported here)."""
        if self._entries is not None:
            return
        self._load_all()
        self._entries = {}
        if self.group is None:
            return
        for ep in plugin_entry_points(self.group):
            key, dist = self._key(ep.name), _dist_name(ep)
            where = f"entry point {ep.name} = {ep.value!r} of package {dist!r} (group {self.group})"
            if key in self._classes or key in self._entries:
                other = self._origins.get(key) or f"plugin {_dist_name(self._entries[key])}"
                owner = f"the built-in {self.what}" if other == BUILTIN else (
                    f"the {self.what} {other}" if other.startswith("registered") else f"the {self.what} of {other}")
                self._clashes.append(Entry(key, f"plugin {dist}", None, (
                    f"{where}: the name {key!r} is taken by {owner}, so this one is ignored. "
                    f"Rename the entry point in {dist}'s pyproject.toml, or use it as {ep.value!r}.")))
                continue
            self._entries[key] = ep

    def _load_plugin(self, key: str) -> None:
        ep = self._entries.pop(key)
        dist = _dist_name(ep)
        where = f"{self.what} plugin {key!r} (entry point {ep.value!r} of package {dist!r})"
        try:
            obj = ep.load()
        except Exception as err:  # noqa: BLE001 - any failure of a third-party import is reported, not raised
            self._broken[key] = Entry(key, f"plugin {dist}", None, (
                f"{where} cannot be imported: {type(err).__name__}: {_first_line(err)}. Fix or reinstall "
                f"{dist}, or remove it (pip uninstall {dist})."))
            return
        problem = self._wrong_kind(obj)
        if problem is not None:
            self._broken[key] = Entry(key, f"plugin {dist}", None, (
                f"{where} {problem}. {dist} must point the entry point at a subclass of it "
                f"(in its pyproject.toml), or be removed (pip uninstall {dist})."))
            return
        obj.name = key
        self._classes[key] = obj
        self._origins[key] = f"plugin {dist}"

    def _load_plugins(self) -> None:
        self._discover()
        for key in list(self._entries):
            self._load_plugin(key)

    def _reference(self, name: str) -> type:
        """The class a ``"package.module:Class"`` name refers to."""
        if name in self._references:
            return self._references[name]
        if not _REFERENCE.match(name):
            raise ConfigError(
                f"{self.what} {name!r}: a name with ':' refers to a class as 'package.module:Class' "
                f"(e.g. 'mypkg.comp:Int8'); this one is not of that form.")
        module_name, _, attr = name.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001
            raise ConfigError(
                f"{self.what} {name!r}: cannot import module {module_name!r} ({type(err).__name__}: "
                f"{_first_line(err)}). Install the package that provides it, or put its folder on "
                "PYTHONPATH (every process of a distributed run needs it too).") from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                base = self._base_class()
                found = sorted(n for n, v in vars(obj).items() if isinstance(v, type) and not n.startswith("_")
                               and v.__module__ == getattr(obj, "__name__", None) and (base is None or issubclass(v, base)))
                hint = f" It defines: {', '.join(found)}." if found else ""
                raise ConfigError(f"{self.what} {name!r}: {module_name!r} has no attribute {part!r}.{hint}")
            obj = getattr(obj, part)
        problem = self._wrong_kind(obj)
        if problem is not None:
            raise ConfigError(f"{self.what} {name!r} {problem}; point at a {self.what} class.")
        self.names()  # built-ins and plugins: a class registered under a plain name keeps that name
        if not any(c is obj for c in self._classes.values()):
            obj.name = name
        self._references[name] = obj
        return obj


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"


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

