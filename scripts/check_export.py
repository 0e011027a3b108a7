"""Run an exported model with onnxruntime on a run's test split and compare it with the PyTorch subnet.

    python scripts/check_export.py RUN_DIR EXPORT_DIR [--data DIR]

Prints the test accuracy of the exported ``model.onnx`` under onnxruntime (graph optimisation level BASIC,
see docs/export.md), of the retrained PyTorch subnet it came from (``RUN_DIR/retrain/subnet.json``, else
``RUN_DIR/subnet.json``) in eval mode, how many predictions differ and the largest logit difference.
Exits 1 when any prediction differs, 2 with a one-line error on bad input. Needs onnxruntime (the dev extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 when every prediction agrees, 1 when one differs, 2 on bad input (one-line error)."""
    from jaqc.core import JaqcError

    try:
        return _check(argv)
    except JaqcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _check(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--data", default=None, help="CIFAR / ImageNet directory, if the run's moved")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch
    from jaqc.ir import load_graph

    from jaqc.core import JaqcError
    from jaqc.data import load_splits, make_loader
    from jaqc.nn.subnet import build_subnet
    from jaqc.search.runner import preset_from_run

    torch.set_num_threads(1)
    preset, _ = preset_from_run(args.run_dir, args.data)
    subnet = args.run_dir / "retrain" / "subnet.json"
    if not subnet.exists():
        subnet = args.run_dir / "subnet.json"
    model = build_subnet(load_graph(subnet))
    onnx_path = args.export_dir / "model.onnx"
    if not onnx_path.is_file():
        hint = f"write one with jaqc export {args.run_dir} -o {args.export_dir}"
        raise JaqcError(f"{onnx_path}: no exported model ({hint})")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    batch = feed.shape[0] if isinstance(feed.shape[0], int) else 1  # exports have the IR's static batch size

    test = load_splits(preset.data).test
    labels, onnx_pred, torch_pred, worst = [], [], [], 0.0
    with torch.no_grad():
        for images, target in make_loader(test, batch_size=batch, shuffle=False, drop_last=False):
            if images.shape[0] != batch:  # the last partial batch: pad to the static shape
                pad = torch.zeros((batch - images.shape[0], *images.shape[1:]), dtype=images.dtype)
                padded = torch.cat([images, pad])
            else:
                padded = images
            onnx_logits = session.run(None, {feed.name: padded.numpy().astype(np.float32)})[0][: images.shape[0]]
            torch_logits = model(images).numpy()
            worst = max(worst, float(np.abs(onnx_logits - torch_logits).max()))
            labels.append(target.numpy())
            onnx_pred.append(onnx_logits.argmax(-1))
            torch_pred.append(torch_logits.argmax(-1))
    y, p_onnx, p_torch = (np.concatenate(x) for x in (labels, onnx_pred, torch_pred))
    differ = int((p_onnx != p_torch).sum())
    print(f"test images: {len(y)}")
    print(f"onnxruntime (BASIC) accuracy: {(p_onnx == y).mean():.2%}  ({args.export_dir / 'model.onnx'})")
    print(f"PyTorch eval accuracy:        {(p_torch == y).mean():.2%}  ({subnet})")
    print(f"predictions that differ: {differ}; largest logit difference: {worst:.3g}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
