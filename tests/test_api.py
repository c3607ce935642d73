"""Conventions over every public name of dlref (the API contract, docs/contract.md)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import dlref

# Public modules whose functions are not all re-exported from the package root; their public
# names (``__all__``, else every public function defined there) obey the same conventions.
SUBMODULES = ["dlref.nn", "dlref.train", "dlref.experiments", "dlref.models", "dlref.kernels"]

# Optional arguments that docs/contract.md places positionally (the API contract wins over the
# keyword-only habit): {function name: {argument names}}.
POSITIONAL_OPTIONAL = {
    "leaky_relu": {"negative_slope"},
    "softmax": {"axis"},
    "log_softmax": {"axis"},
    "hinge_loss": {"margin"},
    "huber_loss": {"delta"},
    "smooth_l1_loss": {"beta"},
    "min_max_scale": {"axis", "feature_range"},
    "standardize": {"axis"},
    "fold_batch_norm": {"eps"},
    "conv_output_size": {"s", "p", "d"},
    "conv_transpose_output_size": {"s", "p", "output_padding", "d"},
}


def _is_function(obj) -> bool:
    return inspect.isfunction(obj) or (callable(obj) and hasattr(obj, "__wrapped__"))


def _public_functions():
    out = {}
    for name in dlref.__all__:
        obj = getattr(dlref, name)
        if _is_function(obj):
            out[name] = obj
    for module_name in SUBMODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and _is_function(v) and v.__module__ == module_name
        ]
        for n in names:
            obj = getattr(module, n)
            if _is_function(obj):
                out.setdefault(n, obj)
    return sorted(out.items())


# Every public submodule of dlref (the kernels ship as dlref.kernels from kernels/, outside
# dlref's own directory, so they are named here too).
PUBLIC_SUBMODULES = sorted(
    {m.name for m in pkgutil.iter_modules(dlref.__path__) if not m.name.startswith("_")}
    | {"kernels"}
)


def test_public_submodules_are_found():
    assert {"convolution", "pooling", "regularize", "model_summary", "testing"} <= set(
        PUBLIC_SUBMODULES
    )


def test_no_submodule_is_named_like_an_export():
    """`import dlref.<name> as m` binds dlref.<name>: an export of that name would shadow it."""
    clashes = [m for m in PUBLIC_SUBMODULES if m in dlref.__all__]
    assert clashes == []


@pytest.mark.parametrize("name", PUBLIC_SUBMODULES)
def test_import_submodule_as_gives_the_module(name):
    namespace: dict = {}
    exec(f"import dlref.{name} as m", namespace)
    assert isinstance(namespace["m"], types.ModuleType)
    assert namespace["m"].__name__ == f"dlref.{name}"


def test_all_names_exist():
    missing = [n for n in dlref.__all__ if not hasattr(dlref, n)]
    assert missing == []


@pytest.mark.parametrize("name,fn", _public_functions(), ids=lambda v: getattr(v, "__name__", v))
def test_docstring_has_args_and_returns(name, fn):
    doc = inspect.getdoc(fn) or ""
    if inspect.signature(fn).parameters:
        assert "Args:" in doc, f"{name}: docstring lacks 'Args:'"
    assert "Returns:" in doc, f"{name}: docstring lacks 'Returns:'"


@pytest.mark.parametrize("name,fn", _public_functions(), ids=lambda v: getattr(v, "__name__", v))
def test_key_first_and_optional_keyword_only(name, fn):
    params = list(inspect.signature(fn).parameters.values())
    names = [p.name for p in params]
    if "key" in names:
        assert names[0] == "key", f"{name}: the random key must be the first argument"
    allowed = POSITIONAL_OPTIONAL.get(name, set())
    for p in params:
        if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD:
            assert p.name in allowed, f"{name}: optional argument {p.name!r} must be keyword-only"


@pytest.mark.parametrize("name", [n for n in dlref.__all__ if inspect.isclass(getattr(dlref, n))])
def test_classes_documented(name):
    assert inspect.getdoc(getattr(dlref, name)), f"{name}: class has no docstring"
