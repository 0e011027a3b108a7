"""The measured properties of the ``digits32`` testbed (docs/data.md): uniform k3_e6 networks of the ``digits32``
supernet trained from scratch with jaqc's retraining recipe (the preset's epochs, float warm-up epochs, learning
rate and batch size) in floating point, at w8a8 and at w2a2, and their test accuracies with the test set's size
and standard error.

    python benchmarks/digits32_properties.py [--bits float,8,2] [--epochs N] [--threads 2]

Prints one JSON object (progress lines on stderr); ``w2a2_loss_points`` is the w8a8 accuracy minus the w2a2 one
(target: >= 5), and ``float_in_target`` whether the float network lands in 85-95 %.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", default="float,8,2", help="comma-separated: float, 8, 4, 2 (uniform w = a)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's retraining epochs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from jaqc.data import load_splits
    from jaqc.hw.accelerators import load_accelerator
    from jaqc.nn.subnet import DerivedSubnet
    from jaqc.nn.tracing import trace_model
    from jaqc.search.presets import search_preset
    from jaqc.search.retrain import retrain

    preset = search_preset("digits32")
    config = preset.supernet
    epochs = args.epochs or preset.retrain_epochs
    test_images = len(load_splits(preset.data).test)
    result: dict = {"epochs": epochs, "float_epochs": preset.retrain_float_epochs, "lr": preset.retrain_lr,
                    "batch_size": preset.batch_size, "test_images": test_images, "threads": args.threads,
                    "clipping": config.quant.quantizer.activation_clipping.value}  # fmt: skip
    for label in args.bits.split(","):
        bits = None if label == "float" else (int(label), int(label))
        torch.manual_seed(0)
        model = DerivedSubnet(config, ["k3_e6"] * config.num_blocks, [bits] * config.num_blocks)
        graph = trace_model(model.eval(), model.example_input_shape)
        graph.accelerator = load_accelerator("jaq-table2")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            summary = retrain(
                graph, preset.data, f"{out}/r", epochs, preset.retrain_lr, preset.batch_size, progress=None,
                float_epochs=0 if bits is None else min(preset.retrain_float_epochs, epochs - 1),
            )  # fmt: skip
        acc = summary["test_accuracy"]
        key = "float" if bits is None else f"w{label}a{label}"
        result[key] = {"test_accuracy": acc, "standard_error": math.sqrt(acc * (1 - acc) / test_images),
                       "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        print(json.dumps({key: result[key]}), flush=True)
    if "w8a8" in result and "w2a2" in result:
        result["w2a2_loss_points"] = 100 * (result["w8a8"]["test_accuracy"] - result["w2a2"]["test_accuracy"])
    if "float" in result:
        result["float_in_target"] = 0.85 <= result["float"]["test_accuracy"] <= 0.95
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
