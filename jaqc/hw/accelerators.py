"""Named accelerator presets and ACCEL arguments (a preset name, or a TOML/JSON file).

A file holds the :class:`~jaqc.ir.AcceleratorConfig` fields, at top level or under an ``[accelerator]``
table: ``pe_rows``, ``pe_cols``, ``wbuf_kb``, ``ibuf_kb``, ``obuf_kb`` and optionally ``dataflow``,
``dram_bits_per_cycle``, ``freq_mhz``, ``name``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from jaqc.core import JaqcError
from jaqc.core.files import read_text
from jaqc.ir import AcceleratorConfig
from jaqc.ir.errors import IRError

#: Presets. ``bitfusion-eyeriss``: the BitFusion simulator's Eyeriss-comparable configuration
#: (hsharma35/bitfusion, bf_e_conf.ini: a=16 rows, c=32 columns, Wgt/Act/Out SRAM 65536/32768/16384 B,
#: if_width 192 bits, 500 MHz). ``jaq-table2``: the accelerator of JAQ's Table 2 (16x16 PEs, 384 KB each).
PRESETS: dict[str, AcceleratorConfig] = {
    "bitfusion-eyeriss": AcceleratorConfig(
        pe_rows=16,
        pe_cols=32,
        wbuf_kb=64,
        ibuf_kb=32,
        obuf_kb=16,
        dram_bits_per_cycle=192,
        freq_mhz=500,
        name="bitfusion-eyeriss",
    ),
    "jaq-table2": AcceleratorConfig(
        pe_rows=16,
        pe_cols=16,
        wbuf_kb=384,
        ibuf_kb=384,
        obuf_kb=384,
        dram_bits_per_cycle=128,
        freq_mhz=500,
        name="jaq-table2",
    ),
}


def load_accelerator(spec: str) -> AcceleratorConfig:
    """A preset by name, or the accelerator described by a ``.toml`` / ``.json`` file."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.suffix not in (".toml", ".json"):
        raise JaqcError(f"ACCEL {spec!r}: not a preset ({', '.join(PRESETS)}) nor a .toml/.json file")
    text = read_text(path, JaqcError, what=f"ACCEL {spec!r}")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise JaqcError(f"{path}: invalid {path.suffix[1:].upper()}: {exc}") from None
    except RecursionError:
        raise JaqcError(f"{path}: {path.suffix[1:].upper()} nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("accelerator"), dict):
        data = data["accelerator"]
    if not isinstance(data, dict):
        raise JaqcError(f"{path}: expected a table of accelerator fields")
    data.setdefault("name", path.stem)
    try:
        return AcceleratorConfig.from_json(data, where=str(path))
    except IRError as exc:
        raise JaqcError(str(exc)) from None
