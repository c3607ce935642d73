"""The persisted configuration table of the Pallas convolution kernels.

A table maps ``(device kind, shape signature, dtype)`` to a :class:`ConvBlocks` (tile shapes,
``num_warps``, ``num_stages``, loop order, kernel path). ``pallas_conv`` passes it to
:func:`dlref.kernels.blocks.choose_blocks`, which returns a stored configuration before its
heuristic; ``dlref.conv(impl="auto")`` picks Pallas on a GPU only for a shape whose entry is
``"measured"`` and records a Pallas time below XLA's (``time_ms < xla_time_ms``).

* Device kind: an entry's ``device`` matches a device whose ``device_kind`` equals it or starts
  with it (case-insensitive; the longest match wins), so ``"NVIDIA H100"`` covers
  ``"NVIDIA H100 80GB HBM3"``.
* Shape signature: :func:`conv_signature`, every static fact of the convolution except the
  batch size (which only lengthens the grid), e.g. ``k3x3_s1x1_d1x1_p1-1_1-1_g1_in56x56_c64-64``.
  The backward input gradient runs the forward kernel on its own (transposed) geometry, so it
  has its own signature and its own entry.
* dtype: the input dtype's name (``"bfloat16"``).

Each entry says whether it was ``"measured"`` (``bench/gpu_check.py`` writes measured
fragments, with the Pallas and the XLA forward times) or a reasoned default. The shipped
table is ``tuning_table.json`` next to this module; files named in the ``DLREF_TUNING_TABLE``
environment variable (``os.pathsep`` separated) are merged over it, the later file winning.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from dlref.kernels.blocks import ConvBlocks, conv_geometry, conv_signature

__all__ = [
    "ENV_VAR",
    "SCHEMA_VERSION",
    "TABLE_PATH",
    "TuningEntry",
    "TuningTable",
    "conv_signature",
    "default_table",
    "signature_of",
]

SCHEMA_VERSION = 1
TABLE_PATH = Path(__file__).resolve().with_name("tuning_table.json")
ENV_VAR = "DLREF_TUNING_TABLE"
_BLOCK_FIELDS = tuple(f.name for f in dataclasses.fields(ConvBlocks))
_ENTRY_KEYS = {"device", "signature", "dtype", "blocks", "measured"}
_OPTIONAL_KEYS = {"note", "time_ms", "xla_time_ms", "layer"}


def signature_of(x_shape, w_shape, *, stride=1, padding=0, dilation=1, groups=1) -> str:
    """:func:`conv_signature` from shapes (channels-last input, HWIO kernel) and conv options.

    Example:
      >>> signature_of((128, 224, 224, 3), (7, 7, 3, 64), stride=2, padding=3)
      'k7x7_s2x2_d1x1_p3-3_3-3_g1_in224x224_c3-64'
    """
    x = jax.ShapeDtypeStruct(tuple(x_shape), jnp.float32)
    w = jax.ShapeDtypeStruct(tuple(w_shape), jnp.float32)
    geo = conv_geometry(x, w, stride, padding, dilation, groups, "signature_of")
    return conv_signature(geo)


def _dtype_name(dtype: Any) -> str:
    return jnp.dtype(dtype).name


@dataclasses.dataclass(frozen=True)
class TuningEntry:
    """One row of the table: a configuration for a device kind, signature and dtype.

    ``time_ms`` is the measured Pallas forward time of ``blocks`` and ``xla_time_ms`` XLA's
    on the same layer and device (both optional; only measured entries have them).
    """

    device: str
    signature: str
    dtype: str
    blocks: ConvBlocks
    measured: bool
    note: str = ""
    time_ms: float | None = None
    layer: str = ""
    xla_time_ms: float | None = None

    @property
    def beats_xla(self) -> bool:
        """Measured, and its Pallas time is below XLA's on the same layer and device."""
        return (
            self.measured
            and self.time_ms is not None
            and self.xla_time_ms is not None
            and self.time_ms < self.xla_time_ms
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.device.lower(), self.signature, self.dtype)

    def to_json(self) -> dict:
        d = {
            "device": self.device,
            "signature": self.signature,
            "dtype": self.dtype,
            "blocks": dataclasses.asdict(self.blocks),
            "measured": self.measured,
        }
        for name in ("layer", "note", "time_ms", "xla_time_ms"):
            v = getattr(self, name)
            if v not in ("", None):
                d[name] = v
        return d

    @classmethod
    def from_json(cls, d: Any, where: str = "tuning table") -> TuningEntry:
        """Validate and build an entry; ``ValueError`` names what is wrong and where."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: an entry must be an object, got {type(d).__name__}")
        missing = _ENTRY_KEYS - set(d)
        if missing:
            raise ValueError(f"{where}: entry is missing {sorted(missing)}: {d}")
        unknown = set(d) - _ENTRY_KEYS - _OPTIONAL_KEYS
        if unknown:
            raise ValueError(f"{where}: entry has unknown keys {sorted(unknown)}")
        for name in ("device", "signature", "dtype"):
            if not isinstance(d[name], str) or not d[name]:
                raise ValueError(f"{where}: {name} must be a non-empty string, got {d[name]!r}")
        try:
            dtype = _dtype_name(d["dtype"])
        except TypeError as e:
            raise ValueError(f"{where}: unknown dtype {d['dtype']!r}") from e
        if not isinstance(d["measured"], bool):
            raise ValueError(f"{where}: measured must be true or false, got {d['measured']!r}")
        b = d["blocks"]
        if not isinstance(b, dict):
            raise ValueError(f"{where}: blocks must be an object, got {type(b).__name__}")
        bad = set(b) - set(_BLOCK_FIELDS)
        if bad:
            raise ValueError(
                f"{where}: blocks has unknown fields {sorted(bad)}; known: {_BLOCK_FIELDS}"
            )
        try:
            blocks = ConvBlocks(**b)
        except ValueError as e:
            raise ValueError(f"{where}: {d['signature']}: {e}") from e
        for name in ("time_ms", "xla_time_ms"):
            t = d.get(name)
            if t is not None and (not isinstance(t, int | float) or isinstance(t, bool) or t <= 0):
                raise ValueError(f"{where}: {name} must be a positive number, got {t!r}")
        return cls(
            d["device"],
            d["signature"],
            dtype,
            blocks,
            d["measured"],
            d.get("note", ""),
            d.get("time_ms"),
            d.get("layer", ""),
            d.get("xla_time_ms"),
        )


class TuningTable:
    """Entries keyed by ``(device kind, signature, dtype)``; see the module docstring.

    Example:
      >>> t = TuningTable([TuningEntry("NVIDIA H100", "sig", "bfloat16", ConvBlocks(), False)])
      >>> t.lookup("NVIDIA H100 80GB HBM3", "sig", jnp.bfloat16).block_m
      64
      >>> t.lookup("NVIDIA A100", "sig", jnp.bfloat16) is None
      True
    """

    def __init__(self, entries=()):
        if isinstance(entries, str | bytes | dict) or not isinstance(entries, Iterable):
            raise TypeError(f"TuningTable: entries must be a list of TuningEntry, got {entries!r}")
        self._entries: dict[tuple[str, str, str], TuningEntry] = {}
        for e in entries:
            if not isinstance(e, TuningEntry):
                raise TypeError(f"TuningTable: entries must hold TuningEntry values, got {e!r}")
            self._entries[e.key] = e

    @property
    def entries(self) -> list[TuningEntry]:
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, device_kind: str, signature: str, dtype: Any) -> TuningEntry | None:
        """The entry for a device kind (longest matching prefix), signature and dtype, or
        ``None``."""
        kind, dt = device_kind.lower(), _dtype_name(dtype)
        best = None
        for (dev, sig, d), e in self._entries.items():
            if sig == signature and d == dt and kind.startswith(dev):
                if best is None or len(dev) > len(best.device):
                    best = e
        return best

    def lookup(self, device_kind: str, signature: str, dtype: Any) -> ConvBlocks | None:
        """The stored blocks of :meth:`entry`, or ``None``."""
        e = self.entry(device_kind, signature, dtype)
        return None if e is None else e.blocks

    def merged(self, other: TuningTable) -> TuningTable:
        """A new table with ``other``'s entries over this one's."""
        return TuningTable([*self.entries, *other.entries])

    def to_json(self) -> dict:
        return {"version": SCHEMA_VERSION, "entries": [e.to_json() for e in self.entries]}

    @classmethod
    def from_json(cls, d: Any, where: str = "tuning table") -> TuningTable:
        """Validate a ``{"version": 1, "entries": [...]}`` object (``ValueError`` if bad)."""
        if not isinstance(d, dict) or "entries" not in d:
            raise ValueError(f"{where}: expected an object with 'version' and 'entries'")
        if d.get("version") != SCHEMA_VERSION:
            raise ValueError(
                f"{where}: schema version {d.get('version')!r}, this dlref reads {SCHEMA_VERSION}"
            )
        if not isinstance(d["entries"], list):
            raise ValueError(f"{where}: entries must be a list")
        entries = [
            TuningEntry.from_json(e, f"{where}, entry {i}") for i, e in enumerate(d["entries"])
        ]
        seen = set()
        for e in entries:
            if e.key in seen:
                raise ValueError(f"{where}: duplicate entry for {e.key}")
            seen.add(e.key)
        return cls(entries)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TuningTable:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"tuning table {path}: not valid JSON ({e})") from e
        return cls.from_json(data, where=f"tuning table {path}")


_CACHE: dict[tuple[str, ...], TuningTable] = {}


def default_table() -> TuningTable:
    """The shipped table with the ``DLREF_TUNING_TABLE`` files merged over it.

    The result is cached per value of the environment variable (a path list).

    Returns:
      The merged :class:`TuningTable` (``kernels/tuning_table.json``, then each file of
      ``$DLREF_TUNING_TABLE``).
    """
    extra = tuple(p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p)
    if extra not in _CACHE:
        table = TuningTable.load(TABLE_PATH) if TABLE_PATH.exists() else TuningTable()
        for p in extra:
            table = table.merged(TuningTable.load(p))
        _CACHE[extra] = table
    return _CACHE[extra]
