"""Sphinx extension of the dlref site: the pages that are generated from the code at build time.

At ``builder-inited`` it writes (only where the content changed, atomically, removing what is
stale):

* ``api/generated/<module>.rst`` — one page per public module (``dlref.activations``, …,
  ``dlref.kernels.pallas_igemm``, ``dlref.testing.strategies``), found by walking the package,
  listing each module's ``__all__`` (or, without one, the functions and classes it defines) in a
  summary table followed by the full docstrings. A function added to an ``__all__`` appears
  without editing the docs; a new module appears at the end of the API index.
* ``notebooks/*`` — a copy of the repository's ``notebooks/`` (rendered from their saved
  outputs; a new notebook gets a page by itself).
* ``tests/<path>.md`` — one page per file of ``tests/`` with a section per test function (the
  section label is ``tests/<file>:<test name>``), so the questions and the errata link to the
  test that proves a claim, offline.

During reading, a line ``% dlref:<name>`` in a Markdown page is replaced by generated Markdown
(``questions``, ``bench-results``, ``verify-coverage``, ``toplevel-names``, ``api-toctree``,
``tests-toctree``, ``notebook-list``). Roles: ``{test}`tests/test_x.py::test_y``` links to a
test's section and ``{nb}`03_convolution#5. Where the pooling gradients go``` to a notebook's
section; both warn (so ``-W`` fails) when the target does not exist, as does a ``py`` reference
from the pages written here that resolves to nothing. ``dlref.conv`` resolves to
``dlref.convolution.conv``. After a successful build MathJax (one file, SVG output) is copied
from the sphinx-mathjax-offline wheel into ``_static/mathjax/``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import json
import math
import os
import pathlib
import pkgutil
import re
import tempfile
import tomllib
from typing import Any

from docutils import nodes
from docutils.transforms import Transform
from sphinx import addnodes
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

logger = logging.getLogger(__name__)

DOCS = pathlib.Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
API_DIR = DOCS / "api" / "generated"
TESTS_DIR = DOCS / "tests"
FIG_DIR = DOCS / "_generated"
MATHJAX_FILE = "tex-svg-full.js"

# The order of the API index; modules found by walking the package but missing here follow.
MODULE_ORDER = (
    "dlref",
    "dlref.activations",
    "dlref.losses",
    "dlref.convolution",
    "dlref.pooling",
    "dlref.norm",
    "dlref.regularize",
    "dlref.shapes",
    "dlref.model_summary",
    "dlref.augment",
    "dlref.nn",
    "dlref.train",
    "dlref.models",
    "dlref.experiments",
    "dlref.kernels",
    "dlref.testing",
)
# Tools, not API: the command line and the `dlref verify` cases (see contract.md).
EXCLUDED = ("dlref.cli", "dlref.verify")
# Pages whose Python references must all resolve (the ones written for this site).
STRICT_DOCS = ("questions", "errata", "kernels", "contract", "getting_started", "index")


# -- helpers ----------------------------------------------------------------------------------


def _write_if_changed(path: pathlib.Path, data: str | bytes) -> None:
    """Write atomically and only when the content differs (keeps mtimes, safe for 2 builds)."""
    raw = data.encode() if isinstance(data, str) else data
    if path.exists() and path.read_bytes() == raw:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    os.replace(tmp, path)


def _prune(directory: pathlib.Path, keep: set[pathlib.Path]) -> None:
    """Remove generated files that the current code no longer produces."""
    if not directory.exists():
        return
    for p in sorted(directory.rglob("*"), reverse=True):
        if p.is_file() and p not in keep:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()


def _md_escape(text: str) -> str:
    """Escape every ASCII punctuation character CommonMark could read as markup."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|$~:%])", r"\\\1", text)


def _fence(code: str, lang: str = "python") -> str:
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{code.rstrip()}\n{ticks}\n"


# -- API pages --------------------------------------------------------------------------------


def public_modules() -> list[str]:
    """Every public module of dlref (walking packages, ``dlref.kernels`` included)."""
    import dlref

    found: set[str] = {"dlref"}
    todo = [f"dlref.{m.name}" for m in pkgutil.iter_modules(dlref.__path__)]
    todo += [f"dlref.{name}" for name in getattr(dlref, "_LAZY_SUBMODULES", ())]
    while todo:
        name = todo.pop()
        if name in found or any(part.startswith("_") for part in name.split(".")):
            continue
        if any(name == e or name.startswith(e + ".") for e in EXCLUDED):
            continue
        module = importlib.import_module(name)
        found.add(name)
        if hasattr(module, "__path__"):
            todo += [f"{name}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
    order = {m: i for i, m in enumerate(MODULE_ORDER)}

    def key(name: str):
        top = ".".join(name.split(".")[:2])
        return (order.get(top, len(order)), top, name != top, name)

    return sorted(found, key=key)


def module_names(modname: str) -> list[str]:
    """The names a module documents: ``__all__``, else what it defines (in source order)."""
    module = importlib.import_module(modname)
    if hasattr(module, "__all__"):
        return [n for n in module.__all__ if not inspect.ismodule(getattr(module, n, None))]
    items = []
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != modname:
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            try:
                line = inspect.getsourcelines(value)[1]
            except (OSError, TypeError):
                line = 0
            items.append((line, name))
    return [name for _, name in sorted(items)]


def _home_module(modname: str, name: str, modules: list[str]) -> str:
    """Where ``modname.name`` is documented: the public module defining it, if it lists it."""
    obj = getattr(importlib.import_module(modname), name)
    home = getattr(obj, "__module__", None)
    if home and home != modname and home in modules and name in module_names(home):
        if getattr(importlib.import_module(home), name, None) is obj:
            return home
    return modname


def _api_page(modname: str, modules: list[str]) -> str:
    module = importlib.import_module(modname)
    title = modname
    lines = [title, "=" * len(title), "", f".. automodule:: {modname}", ""]
    names = module_names(modname) if modname != "dlref" else []
    if modname == "dlref":
        lines += [
            "Every name below is importable from ``dlref`` itself; its documentation is on",
            "the page of the module that defines it.",
            "",
            ".. include:: /_generated/toplevel-names.rst.inc",
            "",
        ]
        return "\n".join(lines)
    lines += [f".. currentmodule:: {modname}", ""]
    if names:
        lines += [".. rubric:: Contents", ""]
        if any(_home_module(modname, n, modules) != modname for n in names):
            lines += [
                "Names re-exported from a submodule link to the page of the module that",
                "defines them.",
                "",
            ]
        lines += [".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {n}" for n in names] + [""]
    for name in names:
        obj = getattr(module, name)
        home = _home_module(modname, name, modules)
        if home != modname:  # a re-export: documented once, on its own module's page
            ALIASES[f"{modname}.{name}"] = f"{home}.{name}"
            continue
        if inspect.isclass(obj):
            lines += [f".. autoclass:: {name}", "   :members:", ""]
        elif callable(obj):
            lines += [f".. autofunction:: {name}", ""]
        else:
            lines += [f".. autodata:: {name}", ""]
    return "\n".join(lines)


def _toplevel_table(modules: list[str]) -> str:
    import dlref

    rows = []
    for name in dlref.__all__:
        target = _home_of(name, modules)
        ref = f":py:obj:`{target} <{target}>`" if target else "(not documented)"
        rows.append((f"``dlref.{name}``", ref))
    out = [".. list-table::", "   :header-rows: 1", "", "   * - name", "     - defined as"]
    for a, b in rows:
        out += [f"   * - {a}", f"     - {b}"]
    return "\n".join(out) + "\n"


_HOMES: dict[str, str] = {}
# "dlref.kernels.pallas_conv" -> "dlref.kernels.pallas_igemm.pallas_conv": a re-exported name,
# resolved to the one place it is documented.
ALIASES: dict[str, str] = {}


def _home_of(name: str, modules: list[str] | None = None) -> str | None:
    """``conv`` -> ``dlref.convolution.conv``: the documented module page that holds ``name``."""
    if name in _HOMES:
        return _HOMES[name]
    import dlref

    obj = getattr(dlref, name, None)
    for modname in modules or public_modules():
        if modname == "dlref":
            continue
        module = importlib.import_module(modname)
        if name in module_names(modname) and getattr(module, name, None) is obj:
            _HOMES[name] = ALIASES.get(f"{modname}.{name}", f"{modname}.{name}")
            return _HOMES[name]
    return None


def generate_api() -> list[str]:
    modules = public_modules()
    keep = set()
    ALIASES.clear()
    for modname in modules:
        path = API_DIR / f"{modname}.rst"
        _write_if_changed(path, _api_page(modname, modules))
        keep.add(path)
    _prune(API_DIR, keep)
    _write_if_changed(FIG_DIR / "toplevel-names.rst.inc", _toplevel_table(modules))
    return modules


# -- test source pages ------------------------------------------------------------------------


def _test_items(tree: ast.Module, lines: list[str]) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of each test function / class, decorators and comments in."""
    items = []
    for node in tree.body:
        is_test = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        )
        is_test |= isinstance(node, ast.ClassDef) and node.name.startswith("Test")
        if not is_test:
            continue
        start = min([d.lineno for d in node.decorator_list] + [node.lineno])
        while start > 1 and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        items.append((node.name, start, node.end_lineno))
    return items


def _test_page(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    out = [f"# {rel}", ""]
    if doc:
        out += [_md_escape(" ".join(doc.split())), ""]
    items = _test_items(tree, lines)
    if not items:
        out += [_fence(source)]
        return "\n".join(out)
    out += [
        f"{len(items)} tests. Run one with `python -m pytest '{rel}::NAME'`; the module's",
        "imports and helpers are under *Module setup* at the end of the page.",
        "",
    ]
    taken = set()
    for name, start, end in items:
        taken.update(range(start, end + 1))
        code = "\n".join(lines[start - 1 : end])
        out += [f"## {name}", "", f"`{rel}::{name}`, line {start}", "", _fence(code)]
    rest = [line for i, line in enumerate(lines, 1) if i not in taken]
    setup = re.sub(r"\n{3,}", "\n\n", "\n".join(rest)).strip("\n")
    out += ["## Module setup", "", _fence(setup)]
    return "\n".join(out)


def test_files() -> list[pathlib.Path]:
    return sorted(
        p
        for p in (ROOT / "tests").rglob("*.py")
        if "__pycache__" not in p.parts and p.stat().st_size
    )


# (docname, test name) of every test: the {test} role picks the first alternative that exists.
KNOWN_TESTS: set[tuple[str, str]] = set()


def generate_tests() -> list[str]:
    keep = set()
    docnames = []
    KNOWN_TESTS.clear()
    for path in test_files():
        rel = path.relative_to(ROOT / "tests").with_suffix(".md")
        target = TESTS_DIR / rel
        _write_if_changed(target, _test_page(path))
        source = path.read_text()
        for name, _, _ in _test_items(ast.parse(source), source.splitlines()):
            KNOWN_TESTS.add((f"tests/{rel.with_suffix('').as_posix()}", name))
        keep.add(target)
        docnames.append(f"tests/{rel.with_suffix('').as_posix()}")
    index = TESTS_DIR / "index.md"
    body = [
        "# Test sources",
        "",
        "The test suite, file by file, with one section per test: the questions and the errata",
        "link here to the test that proves each claim. `make test` runs all of it.",
        "",
        "```{toctree}",
        ":maxdepth: 1",
        "",
        *[f"/{d}" for d in docnames],
        "```",
        "",
    ]
    _write_if_changed(index, "\n".join(body))
    keep.add(index)
    _prune(TESTS_DIR, keep)
    return docnames


def _test_label(target: str) -> tuple[str, str]:
    """``tests/test_x.py::test_y`` -> (docname, label of the section)."""
    path, _, func = target.partition("::")
    docname = path.removesuffix(".py")
    func = func.split("::")[0].split("[")[0]
    return docname, nodes.fully_normalize_name(f"{docname}:{func}")


# -- generated Markdown blocks ----------------------------------------------------------------


def _py_display(target: str) -> str:
    """``dlref.convolution.conv`` -> ``dlref.conv`` where the top level re-exports it."""
    import dlref

    mod, _, name = target.rpartition(".")
    if mod != "dlref" and name in getattr(dlref, "__all__", ()) and _home_of(name) == target:
        return f"dlref.{name}"
    return target


def _link_py(target: str) -> str:
    return f"{{py:obj}}`{_py_display(target)} <{target}>`"


def _link_test(target: str) -> str:
    return f"{{test}}`{target}`"


def _link_nb(target: str) -> str:
    return f"{{nb}}`{target}`"


def _py_exists(target: str) -> bool:
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def _notebook_headings(stem: str) -> list[str]:
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    if not path.exists():
        return []
    cells = json.loads(path.read_text()).get("cells", [])
    markdown = [c for c in cells if c.get("cell_type") == "markdown"]
    text = "\n".join("".join(c.get("source", [])) for c in markdown)
    return [m.group(1) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)]


def _section_matches(titles: list[str], wanted: str) -> list[str]:
    key = _norm_title(wanted)
    hits = [t for t in titles if _norm_title(t) == key]
    return hits or [t for t in titles if _norm_title(t).startswith(key)]


def _exists(kind: str, head: str, tail: str) -> bool:
    if kind == "code":
        return _py_exists(head)
    if kind == "tests":
        return (head.removesuffix(".py"), tail) in KNOWN_TESTS
    return not tail or len(_section_matches(_notebook_headings(head), tail)) == 1


def _pick_all(specs: list[str], kind: str) -> list[str]:
    """Each spec is a target or ``"a | b"`` alternatives (the first that exists wins, e.g. a test
    before and after a rename); a spec starting with ``?`` is dropped when none exists (content
    another change adds). A required spec with no existing alternative is kept, so the build
    warns about it."""
    sep = {"code": "\0", "tests": "::", "notebooks": "#"}[kind]
    out = []
    for spec in specs:
        optional = spec.startswith("?")
        spec = spec.removeprefix("?")
        if kind == "code":  # full names: nothing is inherited between alternatives
            alts = [(a.strip(), "") for a in spec.split("|")]
        else:
            alts = _alternatives(spec, sep)
        found = [a for a in alts if _exists(kind, *a)]
        if found or not optional:
            head, tail = (found or alts)[0]
            out.append(f"{head}{sep}{tail}" if tail else head)
    return out


def md_questions(app) -> str:
    data = tomllib.loads((DOCS / "questions.toml").read_text())
    out = []
    for i, q in enumerate(data["question"], 1):
        hashes = "#" * q["level"]
        out += [f"({q['id']})=", f"{hashes} {q['zh']}", ""]
        out += [f"*{q['en']}*", "", q["answer"].strip(), ""]
        links = []
        code = _pick_all(q.get("code", []), "code")
        tests = _pick_all(q.get("tests", []), "tests")
        notebooks = _pick_all(q.get("notebooks", []), "notebooks")
        if code:
            links.append("**Code:** " + " · ".join(_link_py(t) for t in code))
        if tests:
            links.append("**Tests:** " + " · ".join(_link_test(t) for t in tests))
        if notebooks:
            links.append("**Notebook:** " + " · ".join(_link_nb(t) for t in notebooks))
        if q.get("errata"):
            links.append(
                "**Errata:** " + " · ".join(f"{{ref}}`{n} <erratum-{n}>`" for n in q["errata"])
            )
        for line in q["answer"].splitlines():  # Markdown would start a list or a heading
            if re.match(r"\s*([-+*>#]|\d+[.)])\s", line):
                logger.warning(
                    f"dlref_docs: question {q['id']}: answer line starts with a Markdown marker: "
                    f"{line!r}",
                    location=(DOCS / "questions.toml", 0),
                )
        for field, picked in (("code", code), ("tests", tests), ("notebooks", notebooks)):
            if not picked:
                logger.warning(
                    f"dlref_docs: question {i} ({q['id']}) has no {field} link",
                    location=(DOCS / "questions.toml", 0),
                )
        out += [":::{container} dlref-links", *[f"- {link}" for link in links], ":::", ""]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.3g}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list) and v and all(isinstance(x, int) for x in v):
        return "×".join(map(str, v))
    if isinstance(v, list | dict):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _cell(v: Any) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[dict]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def bench_files() -> list[pathlib.Path]:
    return sorted((ROOT / "bench" / "results").glob("*.json"))


def md_bench_results(app) -> str:
    out = []
    files = bench_files()
    if not files:
        return "No results are recorded in `bench/results/` yet.\n"
    for path in files:
        app.env.note_dependency(str(path))
        data = json.loads(path.read_text())
        rel = path.relative_to(ROOT).as_posix()
        out += [f"### `{rel}`", ""]
        meta = {k: v for k, v in data.items() if not _is_rows(v)}
        if meta:
            out += ["| field | value |", "|---|---|"]
            out += [f"| {k} | {_cell(v)} |" for k, v in meta.items()]
            out += [""]
        for key, value in data.items():
            if _is_rows(value):
                cols = list(dict.fromkeys(k for r in value for k in r))
                same = [
                    c
                    for c in cols
                    if len(value) > 1 and all(c in r and r[c] == value[0][c] for r in value)
                ]
                rows = [{k: v for k, v in r.items() if k not in same} for r in value]
                out += [f"**{key}** ({len(value)} rows)"]
                if same:
                    out[-1] += "; the same in every row: " + ", ".join(
                        f"{c} = `{_cell(value[0][c])}`" for c in same
                    )
                out += ["", ":::{container} bench-table", _md_table(rows), ":::", ""]
        png = path.with_suffix(".png")
        if png.exists():
            out += [
                f"```{{image}} /../{png.relative_to(ROOT).as_posix()}",
                f":alt: {rel}",
                "```",
                "",
            ]
    return "\n".join(out)


def _is_rows(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(r, dict) for r in v)


def md_gpu_results(app) -> str:
    gpu = []
    for path in bench_files():
        data = json.loads(path.read_text())
        kind = " ".join(str(data.get(k, "")) for k in ("platform", "device", "device_kind"))
        if re.search(r"gpu|cuda|nvidia|tpu", kind, re.I):
            gpu.append(path.relative_to(ROOT).as_posix())
    if gpu:
        return (
            "Recorded accelerator results (tables above): "
            + ", ".join(f"`{g}`" for g in gpu)
            + ".\n"
        )
    return (
        "**To be measured.** No accelerator result is recorded in `bench/results/` yet: the\n"
        "shipped tuning entries for the ResNet-50 layers on H100 and H200 are reasoned\n"
        'defaults marked `"measured": false`.\n'
    )


def md_verify_coverage(app) -> str:
    from dlref import verify

    cases = verify.all_cases()
    covered: dict[str, list[str]] = {}
    for case in cases:
        m = re.match(r"(\w+)\.(\w+)", case.op)
        if m:
            covered.setdefault(f"dlref.{m.group(1)}", []).append(m.group(2))
    out = [
        f"`dlref verify` runs **{len(cases)} rows** over "
        f"**{sum(len(set(v)) for v in covered.values())} ops**:",
        "",
        "| row | checked against |",
        "|---|---|",
    ]
    out += [f"| `{_cell(c.op)}` | `{_cell(c.counterpart)}` |" for c in cases]
    # Modules of array ops (the verify topics) and of their arithmetic; the rest are tools.
    op_modules = {f"dlref.{t}" for t in verify.TOPICS} | {"dlref.shapes", "dlref.model_summary"}
    out += [
        "",
        "Public functions of the op modules **without a row** — most have no lax / jax.nn /",
        "optax / flax / dm-pix counterpart to compare with. Each is tested in the test suite",
        "instead: against NumPy, SciPy or scikit-learn oracles, flax (`scan_rnn`), `lax` output",
        "shapes and XLA's cost analysis (the shape and FLOP arithmetic), closed forms, or",
        "hand-computed values.",
        "",
        "| module | functions without a `dlref verify` row |",
        "|---|---|",
    ]
    tools = []
    for modname in public_modules():
        if modname == "dlref" or modname.startswith("dlref.kernels"):
            continue  # the kernels' ops (im2col_conv, pallas_conv) have rows; the rest is tuning
        if modname not in op_modules:
            tools.append(modname)
            continue
        module = importlib.import_module(modname)
        missing = [
            n
            for n in module_names(modname)
            if callable(getattr(module, n))
            and not inspect.isclass(getattr(module, n))
            and n not in covered.get(modname, [])
        ]
        if missing:
            out.append(f"| {{py:mod}}`{modname}` | " + ", ".join(f"`{n}`" for n in missing) + " |")
    out += [
        "",
        "Not ops, and so without rows: the tools "
        + ", ".join(f"{{py:mod}}`{m}`" for m in tools)
        + ", and the kernels' tuning helpers (`dlref.kernels.choose_blocks`, the tuning table,"
        " `dlref bench`).",
    ]
    return "\n".join(out) + "\n"


def md_api_toctree(app) -> str:
    modules = app.env.dlref_modules
    return "\n".join(
        ["```{toctree}", ":maxdepth: 1", "", *[f"generated/{m}" for m in modules], "```", ""]
    )


def md_api_overview(app) -> str:
    out = ["| module | what it holds |", "|---|---|"]
    for modname in app.env.dlref_modules:
        module = importlib.import_module(modname)
        first = (inspect.getdoc(module) or "").strip().split("\n\n")[0].replace("\n", " ")
        first = re.sub(r"``([^`]+)``", r"`\1`", first)
        first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first)
        out.append(f"| {{doc}}`{modname} </api/generated/{modname}>` | {_cell(first)} |")
    return "\n".join(out) + "\n"


def md_notebook_list(app) -> str:
    out = ["| notebook | topic |", "|---|---|"]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        title = path.stem
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "markdown":
                text = "".join(cell.get("source", []))
                m = re.search(r"^#\s+(.+)$", text, re.M)
                if m:
                    title = m.group(1).strip()
                    break
        out.append(f"| {{doc}}`{path.stem} </notebooks/{path.stem}>` | {_cell(title)} |")
    return "\n".join(out) + "\n"


GENERATORS = {
    "questions": md_questions,
    "bench-results": md_bench_results,
    "gpu-results": md_gpu_results,
    "verify-coverage": md_verify_coverage,
    "api-toctree": md_api_toctree,
    "api-overview": md_api_overview,
    "notebook-list": md_notebook_list,
}


def on_source_read(app, docname: str, source: list[str]) -> None:
    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name not in GENERATORS:
            logger.warning(f"dlref_docs: unknown generated block {name!r}", location=docname)
            return ""
        if name == "questions":
            app.env.note_dependency(str(DOCS / "questions.toml"))
        return GENERATORS[name](app)

    if docname.startswith("notebooks/"):
        source[0] = _notebook_links(source[0])
        return
    source[0] = re.sub(r"^% dlref:([\w-]+)[ \t]*$", replace, source[0], flags=re.M)


# -- roles ------------------------------------------------------------------------------------


def _split_title(text: str) -> tuple[str | None, str]:
    m = re.match(r"^(.*?)\s*<([^<>]+)>$", text, re.S)
    return (m.group(1), m.group(2)) if m and m.group(1) else (None, text)


def _xref(rawtext: str, title: str, reftype: str, target: str, cls: str) -> addnodes.pending_xref:
    node = addnodes.pending_xref(
        rawtext, refdomain="std", reftype=reftype, reftarget=target, refexplicit=True, refwarn=True
    )
    node += nodes.inline(title, title, classes=["xref", cls])
    return node


def _alternatives(target: str, sep: str) -> list[tuple[str, str]]:
    """``"a.py::x | y | b.py::z"`` -> ``[("a.py", "x"), ("a.py", "y"), ("b.py", "z")]``."""
    out, head = [], ""
    for alt in (a.strip() for a in target.split("|")):
        if sep in alt:
            new_head, _, tail = alt.partition(sep)
            head = new_head or head  # "#title" keeps the previous notebook
        elif out or head:
            tail = alt
        else:
            head, tail = alt, ""
        out.append((head, tail))
    return out


def test_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{test}`tests/test_x.py::test_y``` -> the test's section on the test-source page.

    Alternatives separated by ``|`` (``tests/test_x.py::test_old | test_new``) name the same
    test across a rename: the first one that exists is linked; if none does, the build warns.
    """
    title, target = _split_title(text)
    alts = _alternatives(target, "::")
    if not alts[0][1]:
        doc = "/" + alts[0][0].removesuffix(".py")
        return [_xref(rawtext, title or alts[0][0], "doc", doc, "dlref-test")], []
    chosen = next((a for a in alts if (a[0].removesuffix(".py"), a[1]) in KNOWN_TESTS), alts[0])
    _, label = _test_label(f"{chosen[0]}::{chosen[1]}")
    return [_xref(rawtext, title or f"{chosen[0]}::{chosen[1]}", "ref", label, "dlref-test")], []


def nb_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{nb}`03_convolution#Where the pooling gradients go``` -> that notebook section.

    The section is found by its title with any leading number ("5. ", "2 · ") ignored, first
    exactly, else as the one title that starts with the given text; ``|`` separates
    alternatives (``06_training_dynamics#Batch size | #Batch-size effects``). Nothing found: the
    build warns, listing the notebook's sections.
    """
    title, target = _split_title(text)
    alts = _alternatives(target, "#")
    stem = alts[0][0]
    number = stem.split("_")[0]
    if not alts[0][1]:
        return [
            _xref(rawtext, title or f"notebook {number}", "doc", f"/notebooks/{stem}", "nb")
        ], []
    node = addnodes.pending_xref(
        rawtext, refdomain="std", reftype="nbsection", reftarget=target, refexplicit=bool(title)
    )
    node["dlref_title"] = title or ""
    node += nodes.inline(title or target, title or target, classes=["xref", "dlref-nb"])
    return [node], []


def _norm_title(text: str) -> str:
    # "5. Title", "2 · Title" -> "title"; "1×1 convolutions" keeps its number.
    text = re.sub(r"^\s*\d+(?:\.\d+)*\s*[.·:)\-–—]\s*", "", text.replace("`", ""))
    return " ".join(text.lower().split())


def on_doctree_read(app, doctree) -> None:
    """Record each notebook's section titles and ids for the {nb} role."""
    docname = app.env.docname
    if not hasattr(app.env, "dlref_nb_sections"):
        app.env.dlref_nb_sections = {}
    if docname.startswith("notebooks/"):
        app.env.dlref_nb_sections[docname] = [
            (section[0].astext(), section["ids"][0])
            for section in doctree.findall(nodes.section)
            if section["ids"]
        ]


def _resolve_nb_section(app, env, node, contnode):
    sections = getattr(env, "dlref_nb_sections", {})
    alts = _alternatives(node["reftarget"], "#")
    for stem, wanted in alts:
        docname = f"notebooks/{stem}"
        titles = sections.get(docname, [])
        key = _norm_title(wanted)
        hits = [t for t in titles if _norm_title(t[0]) == key]
        hits = hits or [t for t in titles if _norm_title(t[0]).startswith(key)]
        if len(hits) == 1:
            shown = node["dlref_title"] or f"notebook {stem.split('_')[0]} § {hits[0][0]}"
            inline = nodes.inline(shown, shown, classes=["xref", "dlref-nb"])
            return make_refnode(app.builder, node["refdoc"], docname, hits[0][1], inline)
    stem = alts[0][0]
    known = [t for t, _ in sections.get(f"notebooks/{stem}", [])]
    logger.warning(
        f"dlref_docs: no single section of notebooks/{stem} matches {node['reftarget']!r}; "
        f"its sections: {known}",
        location=node,
    )
    return contnode


# -- references -------------------------------------------------------------------------------


def on_missing_reference(app, env, node, contnode):
    if node.get("reftype") == "nbsection":
        return _resolve_nb_section(app, env, node, contnode)
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    m = re.fullmatch(r"dlref\.(\w+)", target)
    home = ALIASES.get(target) or (m and _home_of(m.group(1), env.dlref_modules))
    if home:
        domain = env.get_domain("py")
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], home, node, contnode
        )
        if found is not None:
            return found
    if node.get("refdoc") in STRICT_DOCS:
        logger.warning(
            f"dlref_docs: Python reference {target!r} resolves to nothing", location=node
        )
    return None


def on_autodoc_signature(app, what, name, obj, options, signature, return_annotation):
    """flax NNX modules show ``(*args, **kwargs)`` (their metaclass); show ``__init__``'s."""
    if what != "class" or signature not in ("(*args: Any, **kwargs: Any)", "(*args, **kwargs)"):
        return None
    init = obj.__dict__.get("__init__")
    if init is None:
        return None
    sig = inspect.signature(init)
    params = list(sig.parameters.values())[1:]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty)), None


def _repo_link_docname(path: pathlib.Path) -> str | None:
    """The page of a repository file: a docs source, a test file, or a module's API page."""
    try:
        rel = path.relative_to(ROOT)
    except ValueError:
        return None
    parts = rel.with_suffix("").parts
    if parts[:1] == ("docs",) and path.suffix in (".md", ".rst", ".ipynb"):
        return "/".join(parts[1:])
    if parts[:1] in (("tests",), ("notebooks",)) and path.suffix in (".py", ".ipynb"):
        return "/".join(parts)
    if path.suffix == ".py" and parts[:1] in (("dlref",), ("kernels",)):
        mod = ".".join(("dlref", "kernels") + parts[1:] if parts[0] == "kernels" else parts)
        return f"api/generated/{mod.removesuffix('.__init__')}"
    return None


def _notebook_links(text: str) -> str:
    """Repository-relative links in a notebook's Markdown, made to work on the site.

    The notebooks live in ``notebooks/`` and link as a reader of the repository would
    (``../docs/errata.md#erratum-3``, ``../tests/test_nn.py``, ``../dlref/norm.py``,
    ``03_convolution.ipynb``). Each such link is rewritten to the page of that file, as a path
    from the site's root (``/errata.md``, ``/tests/test_nn.md``, ``/api/generated/dlref.norm.rst``,
    ``/notebooks/03_convolution.ipynb``); a link to a file that exists but has no page
    (``../bench/README.md``) becomes its text; a link to a missing file is left to warn.
    """

    def fix(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        path_part, hash_, fragment = target.partition("#")
        if not path_part or _is_url(target) or path_part.startswith("/"):
            return m.group(0)
        path = (ROOT / "notebooks" / path_part).resolve()
        page = _repo_link_docname(path)
        if page:
            for suffix in (".md", ".rst", ".ipynb"):
                if (DOCS / f"{page}{suffix}").exists():
                    return f"[{label}](/{page}{suffix}{hash_}{fragment})"
        return label if path.exists() else m.group(0)

    # [label](target) outside images; JSON-escaped text keeps its escapes untouched.
    return re.sub(r"(?<!!)\[([^\]\n]*)\]\(([^)\s\\\"]+)\)", fix, text)


def _is_url(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I))


class LiteralUndefinedSubstitutions(Transform):
    """``|x|`` in a docstring is an absolute value, not an undefined RST substitution."""

    default_priority = 215  # after Sphinx's |version| / |today| (210), before docutils' (220)

    def apply(self) -> None:
        defined = set(self.document.substitution_defs) | set(self.document.substitution_names)
        for ref in list(self.document.findall(nodes.substitution_reference)):
            name = ref["refname"]
            if name not in defined and nodes.fully_normalize_name(name) not in defined:
                ref.replace_self(nodes.Text(f"|{ref.astext()}|"))


def on_autodoc_docstring(app, what, name, obj, options, lines):
    """A constant without a docstring of its own shows no docstring (not ``dict``'s)."""
    if what in ("data", "attribute") and lines:
        inherited = inspect.getdoc(type(obj)) or ""
        if "\n".join(lines).strip() == inherited.strip():
            lines[:] = []


# -- setup ------------------------------------------------------------------------------------


def generate_notebooks() -> None:
    """Copy ``notebooks/*`` to ``docs/notebooks/``: inside the source directory (a symlink is
    resolved by MyST, which then finds no document for a link between two notebooks)."""
    keep = set()
    for path in sorted((ROOT / "notebooks").iterdir()):
        if path.is_file() and not path.name.startswith("."):
            target = DOCS / "notebooks" / path.name
            _write_if_changed(target, path.read_bytes())
            keep.add(target)
    _prune(DOCS / "notebooks", keep)


def on_builder_inited(app) -> None:
    app.env.dlref_modules = generate_api()
    generate_tests()
    generate_notebooks()
    _mathjax_source()  # fail early, not after the build, if the wheel is missing


def _mathjax_source() -> pathlib.Path:
    try:
        dist = importlib.metadata.distribution("sphinx-mathjax-offline")
    except importlib.metadata.PackageNotFoundError as e:
        raise ExtensionError(
            "dlref_docs: MathJax ships in the sphinx-mathjax-offline wheel: "
            "pip install -e '.[docs]'"
        ) from e
    for f in dist.files or ():
        if f.name == MATHJAX_FILE:
            return pathlib.Path(dist.locate_file(f))
    raise ExtensionError(f"dlref_docs: {MATHJAX_FILE} not found in sphinx-mathjax-offline")


def on_build_finished(app, exc) -> None:
    if exc is not None or app.builder.format != "html":
        return
    src = _mathjax_source()
    dest = pathlib.Path(app.outdir) / "_static" / "mathjax" / MATHJAX_FILE
    _write_if_changed(dest, src.read_bytes())


def setup(app):
    app.connect("builder-inited", on_builder_inited)
    app.connect("source-read", on_source_read)
    app.connect("doctree-read", on_doctree_read)
    app.connect("missing-reference", on_missing_reference)
    app.connect("autodoc-process-signature", on_autodoc_signature)
    app.connect("autodoc-process-docstring", on_autodoc_docstring)
    app.add_transform(LiteralUndefinedSubstitutions)
    app.connect("build-finished", on_build_finished)
    app.add_role("test", test_role)
    app.add_role("nb", nb_role)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
