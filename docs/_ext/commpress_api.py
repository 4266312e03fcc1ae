"""Sphinx extension: the API reference of commpress, generated at every build, and its coverage check.

At ``builder-inited`` it writes ``docs/api/`` (ignored by git; never edit it by hand):

- one page per public module (:data:`PAGES`): the module's docstring, then every name of its
  ``__all__`` in order (classes with their documented members, functions, data with their ``#:``
  comment);
- one page per registry (:data:`REGISTRIES`): a table of every registered name, then each
  registered class with its docstring (formula, class, payload, source). A component registered
  tomorrow appears there without any edit here.

At ``env-check-consistency`` (the end of reading, before writing) it warns, which ``-W`` turns into a
failed build, about every public name that is not in the API reference or has no docstring, and
about every public subpackage that has no page. The same facts, without Sphinx's output, come from
:func:`missing` (used by ``tests/test_docs_site.py``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from dataclasses import dataclass, field
from pathlib import Path


def _title(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


#: (page, title, module, optional): the public modules, in the order of the API index. An optional
#: module may not exist yet; it gets its page as soon as it can be imported.
PAGES: list[tuple[str, str, str, bool]] = [
    ("commpress", "commpress: simulate, History, seeds, errors", "commpress", False),
    ("compressors", "commpress.compressors", "commpress.compressors", False),
    ("matrix-compressors", "commpress.compressors.matrix", "commpress.compressors.matrix", False),
    ("algorithms", "commpress.algorithms", "commpress.algorithms", False),
    ("problems", "commpress.problems", "commpress.problems", False),
    ("theory", "commpress.theory", "commpress.theory", False),
    ("network", "commpress.network", "commpress.network", False),
    ("wire", "commpress.wire", "commpress.wire", False),
    ("experiments", "commpress.experiments", "commpress.experiments", False),
    ("reproductions", "commpress.reproductions", "commpress.reproductions", False),
    ("distributed", "commpress.distributed", "commpress.distributed", False),
    ("integrations", "commpress.integrations", "commpress.integrations", False),
    ("ddp", "commpress.integrations.ddp", "commpress.integrations.ddp", False),
    ("fsdp", "commpress.integrations.fsdp", "commpress.integrations.fsdp", False),
    ("fsdp-params", "commpress.integrations.fsdp_params", "commpress.integrations.fsdp_params", False),
    ("advise", "commpress.integrations.advise", "commpress.integrations.advise", False),
    ("netns", "commpress.integrations.netns", "commpress.integrations.netns", True),
    ("optim", "commpress.optim", "commpress.optim", False),
    ("datasets", "commpress.datasets", "commpress.datasets", False),
    ("testing", "commpress.testing", "commpress.testing", True),
]

#: (page, title, package): the registries; each registered class gets its entry on the page.
REGISTRIES: list[tuple[str, str, str]] = [
    ("registered-compressors", "Registered compressors", "commpress.compressors"),
    ("registered-algorithms", "Registered algorithms", "commpress.algorithms"),
    ("registered-problems", "Registered problems", "commpress.problems"),
]

#: Module attributes of ``commpress`` that are public but have no page of their own (internal
#: subpackages reachable as attributes): none at present. ``errors`` is documented through the
#: top-level names it defines.
NOT_PAGED = {"commpress.errors"}

#: page -> (directive, target, heading, members): objects outside ``__all__`` that public docstrings
#: and signatures refer to, documented at the end of the page (``members``: "" for all documented).
EXTRAS: dict[str, list[tuple[str, str, str, str]]] = {
    "experiments": [
        ("automodule", "commpress.experiments.config", _title("The TOML config", "-"),
         "ProblemConfig, RunConfig, MethodConfig, PlotConfig"),
    ],
    "network": [("autoclass", "commpress.network.dist.TorchDistNetwork", "", "")],
    "wire": [("automodule", "commpress.wire.elias", _title("commpress.wire.elias", "-"), "")],
}

#: Docstring problems in modules that the documentation's authors may not edit, reported to their
#: owners, as (object, text, replacement) on the docstring as autodoc reads it (dedented, lines
#: joined by newlines): the replacement is made in the rendered docstring only (the module is not
#: touched). An entry whose text is gone (fixed upstream, or changed) does nothing: delete it.
DOCSTRING_PATCHES: list[tuple[str, str, str]] = []

#: Public data without a ``#:`` comment in a module the documentation's authors may not edit
#: (reported to its owner): the text shown until the comment exists there.
DATA_DOCS: dict[str, str] = {}


@dataclass
class Plan:
    """What the generated pages document: full public name -> how, and the registered classes."""

    pages: dict[str, str] = field(default_factory=dict)  # page -> rst text
    documented: dict[str, str] = field(default_factory=dict)  # public name -> canonical name
    registered: dict[str, type] = field(default_factory=dict)  # "compressor 'cq'" -> class
    problems: list[str] = field(default_factory=list)  # what the check will report


# ---------------------------------------------------------------------------------------- helpers
def _import(module: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise


def _kind(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if isinstance(obj, (types.GenericAlias, types.UnionType)) or type(obj).__module__ == "typing":
        return "data"  # a type alias: Message = dict[str, Tensor]
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "exception"
        return "class"
    if callable(obj):
        return "function"
    return "data"


def data_doc(module: str, name: str) -> str:
    """The ``#:`` comment (or string after the assignment) of ``module.name``: searched in ``module``,
    in the modules of its package, then in every loaded commpress module that holds the same
    object under that name (where a re-exported constant is defined)."""
    import sys

    from sphinx.pycode import ModuleAnalyzer, PycodeError

    mod = importlib.import_module(module)
    value = getattr(mod, name)
    candidates = [module]
    package = mod if hasattr(mod, "__path__") else importlib.import_module(module.rsplit(".", 1)[0])
    candidates += [f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)]
    candidates += sorted(m for m, loaded in list(sys.modules.items())
                         if m.startswith("commpress.") and getattr(loaded, name, None) is value)
    for candidate in dict.fromkeys(candidates):
        try:
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except PycodeError:
            continue
        lines = docs.get(("", name))
        if lines and "".join(lines).strip():
            return "\n".join(line.rstrip() for line in lines).strip()
    return ""


def _indent(text: str, spaces: int = 3) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in text.splitlines())


# ------------------------------------------------------------------------------------ generation
def plan() -> Plan:
    """Import the public modules and registries and write (in memory) every API page."""
    out = Plan()
    modules: list[tuple[str, str, types.ModuleType]] = []
    for page, title, module, optional in PAGES:
        mod = _import(module)
        if mod is None:
            if not optional:
                out.problems.append(f"public module {module} cannot be imported")
            continue
        modules.append((page, title, mod))
    canonical = _homes([mod for _, _, mod in modules])
    index_entries: list[str] = []
    for page, title, mod in modules:
        index_entries.append(page)
        out.pages[page] = _module_page(mod, title, canonical, out) + _extras(page)
    for page, title, package in REGISTRIES:
        index_entries.append(page)
        out.pages[page] = _registry_page(package, title, out)
    out.pages["index"] = _index_page(index_entries)
    _check_subpackages(out)
    return out


def _homes(modules: list[types.ModuleType]) -> dict[int, str]:
    """id(object) -> the public name under which it is documented in full: the one whose module is
    the longest prefix of the module that defines it (``commpress.experiments.run``, not
    ``commpress.run``), so that the short references in its docstring resolve; ties go to the
    first page. Every other public name of the object is an alias entry."""
    best: dict[int, tuple[int, str]] = {}
    for order, mod in enumerate(modules):
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            if obj is None or _kind(obj) in ("module", "data"):
                continue
            home = getattr(obj, "__module__", "") or ""
            depth = len(mod.__name__) if (home + ".").startswith(mod.__name__ + ".") else -1
            rank = (depth, -order)
            if id(obj) not in best or rank > best[id(obj)][0]:
                best[id(obj)] = (rank, f"{mod.__name__}.{name}")
    return {key: full for key, (_, full) in best.items()}


def _extras(page: str) -> str:
    lines = []
    for directive, target, heading, members in EXTRAS.get(page, []):
        lines += [heading, "", f".. {directive}:: {target}", f"   :members: {members}".rstrip(), ""]
    return ("\n".join(lines) + "\n") if lines else ""


def _module_page(mod: types.ModuleType, title: str, canonical: dict[int, str], out: Plan) -> str:
    module = mod.__name__
    lines = [_title(title), f".. automodule:: {module}", "", f".. currentmodule:: {module}", ""]
    names = list(getattr(mod, "__all__", []))
    if not names:
        out.problems.append(f"public module {module} has no __all__")
    for name in names:
        full = f"{module}.{name}"
        if not hasattr(mod, name):
            out.problems.append(f"{full} is in __all__ but does not exist")
            continue
        obj = getattr(mod, name)
        kind = _kind(obj)
        if kind == "module":
            out.documented[full] = obj.__name__  # documented by its own page (checked below)
            lines += [f"``{name}``: :mod:`{obj.__name__}`", ""]
            continue
        key = id(obj)
        if kind != "data" and canonical.get(key, full) != full:
            role = "func" if kind == "function" else "class" if kind in ("class", "exception") else "obj"
            directive = "function" if kind == "function" else kind
            lines += [
                f".. py:{directive}:: {name}",
                "   :no-index:",
                "",
                f"   The same object as :{role}:`{canonical[key]}`.",
                "",
            ]
            out.documented[full] = canonical[key]
            continue
        out.documented[full] = full
        if kind in ("class", "exception"):
            lines += [f".. auto{kind}:: {full}", "   :members:", "   :show-inheritance:", ""]
        elif kind == "function":
            lines += [f".. autofunction:: {full}", ""]
        else:
            doc = data_doc(module, name) or DATA_DOCS.get(full, "")
            if not doc:
                out.problems.append(f"{full} (data) has no #: comment")
            value = repr(obj)
            lines += [f".. py:data:: {name}", ""]
            if len(value) <= 300 and "`" not in value:
                lines[-1:] = [f"   :value: {value}", ""]
            lines += [_indent(doc or "(undocumented)"), ""]
        if kind != "data" and not (inspect.getdoc(obj) or "").strip():
            out.problems.append(f"{full} has no docstring")
    return "\n".join(lines) + "\n"


def _registry_page(package: str, title: str, out: Plan) -> str:
    pkg = importlib.import_module(package)
    what = package.rsplit(".", 1)[1].rstrip("s")
    names = pkg.names()
    lines = [
        _title(title),
        f"Every name that ``{package}.make(name, ...)`` and the TOML configs accept "
        f"(``{package}.names()``), with its class. This page is generated from the registry at "
        f"every build: a class registered with ``@{package}.register(\"name\")`` in a module of "
        f"``{package}`` appears here by itself.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 15 25 60",
        "",
        "   * - name",
        "     - class",
        "     - summary",
    ]
    entries = []
    for name in names:
        cls = pkg.get(name)
        if not cls.__module__.startswith("commpress."):
            continue  # a plugin installed here (entry points) is documented by its own package
        target = f"{cls.__module__}.{cls.__qualname__}"
        out.registered[f"{what} {name!r}"] = cls
        text = " ".join((inspect.getdoc(cls) or "").strip().split("\n\n")[0].split())
        lines += [f"   * - ``{name}``", f"     - :class:`~{target}`", f"     - {text}"]
        entries += [
            _title(f"``{name}``", "-"),
            f".. autoclass:: {target}",
            "   :members:",
            "",
        ]
        if not (cls.__doc__ or "").strip():
            out.problems.append(f"registered {what} {name!r} ({target}) has no docstring")
    return "\n".join(lines + [""] + entries) + "\n"


def _index_page(entries: list[str]) -> str:
    return "\n".join([
        _title("API reference"),
        "Every public name of commpress (the ``__all__`` of each public module) and every "
        "registered compressor, algorithm and problem, with its docstring. These pages are "
        "generated from the package at every build (``docs/_ext/commpress_api.py``); a build "
        "fails when a public name is missing or has no docstring.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
        *(f"   {entry}" for entry in entries),
        "",
    ])


def _check_subpackages(out: Plan) -> None:
    import commpress

    paged = {module for _, _, module, _ in PAGES}
    subpackages = {f"commpress.{name}" for name in getattr(commpress, "_SUBMODULES", ())}
    for name in commpress.__all__:
        obj = getattr(commpress, name)
        if isinstance(obj, types.ModuleType):
            subpackages.add(obj.__name__)
    for module in sorted(subpackages - paged - NOT_PAGED):
        out.problems.append(f"public subpackage {module} has no API page: add it to PAGES in {__file__}")


def missing(documented: set[str] | None = None) -> list[str]:
    """Every problem of the API reference: a public name or registered class that is not
    documented (when ``documented``, the Python objects Sphinx recorded, is given) or has no
    docstring, and every public subpackage without a page."""
    result = plan()
    problems = list(result.problems)
    if documented is not None:
        for public, target in result.documented.items():
            if target not in documented:
                problems.append(f"{public} is not in the API reference")
        for label, cls in result.registered.items():
            target = f"{cls.__module__}.{cls.__qualname__}"
            if target not in documented:
                problems.append(f"{label} ({target}) is not in the API reference")
    return problems


# ----------------------------------------------------------------------------------- Sphinx hooks
#: public alias name -> the name it is documented under (from the last :func:`plan`).
_ALIASES: dict[str, str] = {}


def _write_pages(app) -> None:
    folder = Path(app.srcdir) / "api"
    folder.mkdir(exist_ok=True)
    result = plan()
    _ALIASES.clear()
    _ALIASES.update({name: target for name, target in result.documented.items() if name != target})
    wanted = {f"{page}.rst" for page in result.pages}
    for stale in folder.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    for page, text in result.pages.items():
        path = folder / f"{page}.rst"
        if not path.exists() or path.read_text(encoding="utf-8") != text:  # keep mtimes: incremental builds
            path.write_text(text, encoding="utf-8")


def _check(app, env) -> None:
    from sphinx.util import logging

    logger = logging.getLogger("commpress_api")
    documented = set(env.get_domain("py").objects)
    for problem in missing(documented):
        logger.warning("API reference: %s", problem, type="commpress", subtype="api")


_ATTRIBUTE_DOCS: dict[str, list[str]] = {}


def _keep_attribute_doc(app, what, name, obj, options, lines) -> None:
    """Before napoleon: remember the docstring of an attribute. Napoleon reads ``text: more`` on an
    attribute's first line as ``type: description`` (Google style); ours are plain sentences."""
    if what in ("attribute", "data", "property"):
        _ATTRIBUTE_DOCS[name] = list(lines)


def _restore_attribute_doc(app, what, name, obj, options, lines) -> None:
    if what in ("attribute", "data", "property") and name in _ATTRIBUTE_DOCS:
        lines[:] = _ATTRIBUTE_DOCS.pop(name)


def _resolve_short_name(app, env, node, contnode):
    """A Python reference by a short name (``:class:`ConfigError```, ``Smoothness.weighted``) that the
    usual rules did not resolve, resolved to the one documented object whose name ends with it;
    left unresolved (and reported by ``-n``) when none or several do."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    domain = env.get_domain("py")
    if target in _ALIASES:  # commpress.run -> commpress.experiments.run
        found = {_ALIASES[target]} & set(domain.objects)
    elif target and not target.startswith("commpress."):
        suffix = "." + target
        found = {name for name, entry in domain.objects.items() if name.endswith(suffix) and not entry.aliased}
    else:
        return None
    if len(found) != 1:
        return None
    from sphinx.util.nodes import make_refnode

    name = found.pop()
    entry = domain.objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def _pydantic_fields(app, what, name, obj, options, lines) -> None:
    """After a pydantic model's docstring: its fields (the TOML keys), with type and default."""
    fields = getattr(obj, "model_fields", None) if what == "class" else None
    if not isinstance(fields, dict) or not fields:
        return
    import re
    import typing

    from pydantic_core import PydanticUndefined

    lines += ["", ".. rubric:: Keys", ""]
    for key, info in fields.items():
        annotation = info.annotation
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        kind = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
        kind = kind or re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(annotation))  # typing.Any -> Any
        if info.default_factory is not None:
            made = info.default_factory()
            default = ("optional, every key at its default" if hasattr(made, "model_fields")
                       else f"default ``{made!r}``")
        elif info.default is PydanticUndefined:
            default = "required"
        else:
            default = f"default ``{info.default!r}``"
        alias = getattr(info.validation_alias, "choices", None)
        also = [c for c in (alias or []) if isinstance(c, str) and c != key]
        spelled = f"; also spelled ``{also[0]}``" if also else ""
        lines.append(f"- ``{key}`` (``{kind}``): {default}{spelled}")
    lines.append("")


def _patch_docstring(app, what, name, obj, options, lines) -> None:
    patches = [(old, new) for target, old, new in DOCSTRING_PATCHES if target == name]
    if patches:
        text = "\n".join(lines)
        for old, new in patches:
            text = text.replace(old, new)
        lines[:] = text.split("\n")


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Members that pydantic adds to a model (``model_post_init``, ...) are pydantic's, not ours."""
    module = getattr(obj, "__module__", None) or getattr(getattr(obj, "fget", None), "__module__", None) or ""
    if module.startswith("pydantic"):
        return True
    return None


def _public_bases(app, name, obj, options, bases) -> None:
    """"Bases:" without ``object`` and with each private base replaced by its own bases."""
    out: list = []
    todo = list(bases)
    while todo:
        base = todo.pop(0)
        if base is object or base in out:
            continue
        if getattr(base, "__name__", "").startswith("_"):
            todo[:0] = list(getattr(base, "__bases__", ()))
            continue
        out.append(base)
    bases[:] = out or [object]


def _dataclass_defaults(app, what, name, obj, options, signature, return_annotation):
    """``field = <factory>`` in a dataclass's signature (not Python: Sphinx cannot parse the
    signature then) written as the call that makes the default, ``field = dict()``; a pydantic
    model's signature (its keys are listed under the docstring) left out."""
    if what == "class" and hasattr(obj, "model_fields"):
        return "", return_annotation
    if not signature or "<factory>" not in signature:
        return None
    import dataclasses
    import re

    factories = {}
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if f.default_factory is not dataclasses.MISSING:
                made = getattr(f.default_factory, "__name__", "")
                factories[f.name] = f"{made}()" if made.isidentifier() else "..."

    signature = re.sub(r"((\w+)(?::[^=]*?)? = )<factory>", lambda m: m.group(1) + factories.get(m.group(2), "..."),
                       signature)
    return signature, return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _dataclass_defaults)
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _keep_attribute_doc, priority=100)
    app.connect("autodoc-process-docstring", _restore_attribute_doc, priority=900)
    app.connect("autodoc-process-docstring", _patch_docstring, priority=50)
    app.connect("autodoc-process-docstring", _pydantic_fields, priority=950)
    app.connect("missing-reference", _resolve_short_name)
    app.connect("builder-inited", _write_pages)
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
