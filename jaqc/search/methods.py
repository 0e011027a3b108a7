"""The search methods of ``jaqc search --method``: one registry, one way to start or resume a run.

Every method writes the same run-directory layout (``config.json`` with its ``"method"``, ``metrics.jsonl``,
``checkpoints/``, and at the end ``architecture.json``, ``subnet.json``, ``accelerator.json``,
``schedule.json``, ``summary.json``), so ``jaqc retrain``, ``jaqc export`` and ``jaqc compare`` treat them
alike. A method is a class ``XxxRun(preset, run_dir, resume=..., recipe=..., options=...)`` with
``run(progress=None) -> SearchOutcome``; it is imported only when chosen.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from jaqc.core import JaqcError

from .presets import SearchPreset

#: method name -> "module:class"
METHODS: dict[str, str] = {
    "jaq": "jaqc.search.runner:SearchRun",
    "autonba": "jaqc.search.autonba:AutoNbaRun",
    "haq": "jaqc.search.haq.run:HaqRun",
    "hqnas": "jaqc.search.hqnas:HqnasRun",
}

#: One line per method for ``--help`` and the docs.
METHOD_HELP: dict[str, str] = {
    "jaq": "JAQ: differentiable NAS + CSQ bit search + hardware generation network (the default)",
    "autonba": "Auto-NBA: heterogeneous sampling, best-of-N random accelerator search",
    "haq": "HAQ: DDPG agent picks per-layer bits of a fixed network on a fixed accelerator",
    "hqnas": "HQNAS: single-path superkernel with bit-sharing thresholds, CE + λ·log(latency)",
}


class MethodRun(Protocol):
    """What ``jaqc search`` needs of a method's run."""

    def run(self, progress: bool | None = None) -> Any: ...


def method_class(name: str) -> type:
    """The run class of method ``name`` (imported on demand)."""
    if name not in METHODS:
        raise JaqcError(f"unknown search method {name!r}; choose from {', '.join(METHODS)}")
    module_name, _, attr = METHODS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # pragma: no cover - a broken install
        raise JaqcError(f"search method {name!r} is not available: {exc}") from exc
    return getattr(module, attr)


def start_run(
    method: str,
    preset: SearchPreset,
    run_dir: str | Path,
    recipe: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    device: str | None = None,
) -> MethodRun:
    """A new run of ``method`` in ``run_dir`` (which must be new or empty) on ``device``."""
    cls = method_class(method)
    if preset.settings.passes and method != "jaq":
        raise JaqcError(
            f"search passes ({preset.settings.passes!r}) apply to --method jaq; {method} does not read its space "
            "through the pass pipeline yet"
        )
    return cls(preset, run_dir, resume=False, recipe=recipe, options=options or None, **_device(method, preset, device))


def resume_run(run_dir: str | Path, data_root: str | None = None, device: str | None = None) -> MethodRun:
    """Re-open an interrupted run of whichever method wrote it, with its preset and options, on ``device`` (any:
    checkpoints hold CPU tensors)."""
    from .rundir import RunDir
    from .runner import preset_from_run

    preset, recipe = preset_from_run(run_dir, data_root)
    config = RunDir.open(run_dir).read_config()
    method = config.get("method", "jaq")
    cls = method_class(method)
    options = config.get("options") or None
    return cls(preset, run_dir, resume=True, recipe=recipe, options=options, **_device(method, preset, device))


#: The methods whose training runs on a chosen device (the Gumbel-softmax searches); HAQ and HQNAS run on the CPU.
DEVICE_METHODS = ("jaq", "autonba")


def _device(method: str, preset: SearchPreset, device: str | None) -> dict[str, Any]:
    """The device keyword of ``method``'s run class; an error for a GPU or bf16 where the method has no device
    path."""
    if method in DEVICE_METHODS:
        return {"device": device}
    from jaqc.device import resolve_device

    if device is not None and resolve_device(device).type != "cpu":
        raise JaqcError(f"--device {device}: --method {method} runs on the CPU only (GPU: {', '.join(DEVICE_METHODS)})")
    if preset.settings.amp != "off":
        raise JaqcError(f"--amp {preset.settings.amp}: --method {method} trains in float32 only")
    return {}


def run_method(name: str) -> str:
    """The method that wrote run directory ``name`` (``jaq`` for runs older than the field)."""
    from .rundir import RunDir

    return str(RunDir.open(name).read_config().get("method", "jaq"))
