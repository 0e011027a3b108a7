"""Quantize a user's model: per-layer bits from a spec, activation ranges calibrated on data (``jaqc quantize``).

An IR with weights gets a :class:`~jaqc.ir.types.QuantSpec` per conv2d/linear layer from a **bits spec**, and every
quantized layer's activation quantizer gets its input range from **calibration data**; the result exports to
low-bit ONNX that matches the fake-quantized PyTorch model (``jaqc export`` refuses an IR whose activation
quantizers were never calibrated).

* Bits spec (:func:`parse_bits_spec`): comma-separated rules ``PATTERN=BITS`` (shell patterns on layer names,
  later rules win), a rule without ``PATTERN=`` applying to every layer, ``BITS`` as ``w4a8`` or ``float``,
  e.g. ``w8a8,*.dw=w4a8,features.0.*=float``; or a ``.json`` file ``{"PATTERN": "w4a8", ...}`` (in order).
* Calibration data (:func:`calibration_images`): ``digits`` (scikit-learn's digits at the model's input size), an
  ``.npy`` array ``[N, C, H, W]`` (float, already normalised as the model expects), or a folder of images
  (``*.png``/``*.jpg``/..., searched recursively; shorter side resized, centre-cropped to the model's input,
  normalised with the ImageNet statistics unless told ``none``).
* Calibration (:func:`calibrate`): the **floating-point** model (every QuantSpec removed) runs on the data and the
  input of every quantized layer is observed: its minimum and maximum (``minmax``) or its ``(100 − p)`` and ``p``
  percentiles (``percentile``, default p = 99.99, over a seeded sample of at most 2^16 values per batch) become
  the per-tensor range of the layer's activation quantizer (asymmetric, with a zero point). Observing the float
  network is the usual post-training convention; a short QAT (``jaqc retrain``) can refine the ranges.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from attrs import frozen

from jaqc.core import JaqcError
from jaqc.ir import LayerGraph, LayerKind, QuantSpec

#: Ways to turn observed activations into a range.
CALIBRATION_METHODS: tuple[str, ...] = ("minmax", "percentile")
#: Values sampled per layer and batch for the percentile method.
PERCENTILE_SAMPLE = 1 << 16
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")
_BITS = re.compile(r"^w(2|4|8)a(2|4|8)$")


class QuantizeError(JaqcError):
    """A bits spec, calibration source or model that cannot be quantized as asked."""


@frozen
class BitsRule:
    """Layers whose name matches ``pattern`` (a shell pattern) run at ``quant`` (None: floating point)."""

    pattern: str
    quant: QuantSpec | None


def _parse_bits(text: str, where: str) -> QuantSpec | None:
    text = text.strip().lower()
    if text == "float":
        return None
    match = _BITS.match(text)
    if match is None:
        raise QuantizeError(f"{where}: bits {text!r} must be wXaY with X, Y in 2, 4, 8 (e.g. w4a8) or 'float'")
    return QuantSpec(int(match.group(1)), int(match.group(2)))


def parse_bits_spec(spec: str) -> list[BitsRule]:
    """The rules of a bits spec (see the module docstring): a string, or the path of a ``.json`` file."""
    path = Path(spec)
    if spec.endswith(".json"):
        if not path.is_file():
            raise QuantizeError(f"bits file {spec}: no such file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise QuantizeError(f"bits file {spec}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise QuantizeError(f'bits file {spec}: expected an object {{"PATTERN": "w4a8" | "float", ...}}')
        return [BitsRule(k, _parse_bits(v, f"bits file {spec}, pattern {k!r}")) for k, v in data.items()]
    rules = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        pattern, sep, bits = item.rpartition("=")
        rules.append(BitsRule(pattern.strip() if sep else "*", _parse_bits(bits, f"bits spec {spec!r}")))
    if not rules:
        raise QuantizeError("bits spec is empty; give e.g. w8a8 or 'w8a8,*.dw=w4a8'")
    return rules


def weighted_layers(graph: LayerGraph) -> list[Any]:
    """The conv2d and linear layers in topological order."""
    return graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)


def assign_bits(graph: LayerGraph, rules: Sequence[BitsRule], first_last: str = "quantized") -> LayerGraph:
    """Set every conv2d/linear layer's QuantSpec by the rules (the last matching rule wins; unmatched layers
    stay as they are). ``first_last="float"`` keeps the first and the last weighted layer in floating point
    whatever the rules say. A rule that matches no layer is an error naming it. In place; returns ``graph``."""
    if first_last not in ("quantized", "float"):
        raise QuantizeError(f"first_last must be 'quantized' or 'float', got {first_last!r}")
    layers = weighted_layers(graph)
    if not layers:
        raise QuantizeError(f"graph {graph.name!r} has no conv2d or linear layer to quantize")
    for rule in rules:
        if not any(fnmatch.fnmatchcase(layer.name, rule.pattern) for layer in layers):
            names = ", ".join(x.name for x in layers[:6]) + (", ..." if len(layers) > 6 else "")
            raise QuantizeError(f"bits pattern {rule.pattern!r} matches no conv2d/linear layer (layers: {names})")
    for layer in layers:
        for rule in rules:
            if fnmatch.fnmatchcase(layer.name, rule.pattern):
                layer.quant = rule.quant
    if first_last == "float":
        layers[0].quant = layers[-1].quant = None
    return graph


def _is_quantized(layer: Any) -> bool:
    q = layer.quant
    return q is not None and q.w_bits is not None and q.a_bits is not None


def is_calibrated(layer: Any) -> bool:
    """Whether a quantized layer's activation quantizer holds an observed input range."""
    state = layer.weights.get("act_quant.initialized")
    return state is not None and bool(np.asarray(state).all())


# --- calibration data ---------------------------------------------------------------------------------------------


def calibration_images(
    source: str, input_shape: Sequence[int], limit: int = 512, normalization: str = "imagenet"
) -> torch.Tensor:
    """Up to ``limit`` images ``[N, C, H, W]`` (float32) shaped for a model whose input is ``input_shape``."""
    if len(input_shape) != 4:
        raise QuantizeError(f"calibration needs an image model (input [N, C, H, W]), got input shape {input_shape}")
    _, channels, height, width = (int(d) for d in input_shape)
    if limit < 1:
        raise QuantizeError(f"calibration needs at least one image, got a limit of {limit}")
    if source == "digits":
        images = _digits(channels, height, width)
    elif source.endswith(".npy"):
        images = _npy(Path(source), channels, height, width)
    else:
        images = _folder(Path(source), channels, height, width, normalization)
    return images[:limit]


def _digits(channels: int, height: int, width: int) -> torch.Tensor:
    from jaqc.data import DataConfig, load_splits

    if height != width:
        raise QuantizeError(f"digits calibration needs a square input, the model takes {height}x{width}")
    if channels not in (1, 3):
        raise QuantizeError(f"digits calibration needs 1 or 3 input channels, the model takes {channels}")
    splits = load_splits(DataConfig(name="digits", resolution=height, channels=channels))
    return torch.stack([splits.train[i][0] for i in range(len(splits.train))]).float()


def _npy(path: Path, channels: int, height: int, width: int) -> torch.Tensor:
    if not path.is_file():
        raise QuantizeError(f"calibration data {path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise QuantizeError(f"calibration data {path}: not a numpy array file ({exc})") from None
    if array.ndim != 4 or tuple(array.shape[1:]) != (channels, height, width):
        raise QuantizeError(
            f"calibration data {path}: shape {list(array.shape)} does not match the model's input "
            f"[N, {channels}, {height}, {width}]"
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise QuantizeError(f"calibration data {path}: expected finite numbers, got dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _folder(root: Path, channels: int, height: int, width: int, normalization: str) -> torch.Tensor:
    from jaqc.data import Normalization, _require_pillow, _resize_short_side_center_crop

    if not root.is_dir():
        raise QuantizeError(f"calibration data {root}: expected 'digits', an .npy file or a folder of images")
    if normalization not in ("imagenet", "none"):
        raise QuantizeError(f"calibration normalization must be 'imagenet' or 'none', got {normalization!r}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise QuantizeError(f"calibration data {root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    if height != width:
        raise QuantizeError(f"image calibration needs a square input, the model takes {height}x{width}")
    image_module = _require_pillow()
    tensors = []
    for path in files:
        try:
            with image_module.open(path) as image:
                pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
        except OSError as exc:
            raise QuantizeError(f"calibration data {path}: cannot decode the image ({exc})") from None
        tensor = torch.from_numpy(pixels.copy()).float().div_(255.0)
        tensor = tensor.permute(2, 0, 1) if tensor.dim() == 3 else tensor.unsqueeze(0)
        tensors.append(_resize_short_side_center_crop(tensor.unsqueeze(0), height)[0])
    images = torch.stack(tensors)
    if normalization == "imagenet" and channels == 3:
        images = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).apply(images)
    return images


# --- calibration --------------------------------------------------------------------------------------------------


@frozen
class LayerRange:
    """The calibrated input range of one quantized layer."""

    name: str
    a_bits: int
    low: float
    high: float


def _batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size]


def calibrate(
    graph: LayerGraph,
    images: torch.Tensor,
    method: str = "minmax",
    percentile: float = 99.99,
    batch_size: int = 64,
    seed: int = 0,
) -> list[LayerRange]:
    """Observe every quantized layer's input on ``images`` in the floating-point model and store the range in the
    layer's activation-quantizer state (``act_quant.*`` weights). In place; returns the ranges."""
    from jaqc.nn.subnet import build_subnet

    if method not in CALIBRATION_METHODS:
        raise QuantizeError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    if not 50.0 < percentile <= 100.0:
        raise QuantizeError(f"the calibration percentile must be in (50, 100], got {percentile}")
    quantized = [x for x in weighted_layers(graph) if _is_quantized(x)]
    if not quantized:
        raise QuantizeError(f"graph {graph.name!r} has no quantized layer to calibrate (give --bits)")
    build_subnet(graph)  # a layer that cannot run quantized (e.g. a conv with a bias) fails here, named
    expected = tuple(graph.inputs()[0].output_shape.dims[1:])
    if tuple(images.shape[1:]) != expected:
        raise QuantizeError(f"calibration images are {list(images.shape[1:])}, the model takes {list(expected)}")
    float_graph = graph.clone()
    for layer in weighted_layers(float_graph):
        layer.quant = None
    model = build_subnet(float_graph).eval()
    generator = torch.Generator().manual_seed(seed)
    lows: dict[str, list[torch.Tensor]] = {x.name: [] for x in quantized}
    highs: dict[str, list[torch.Tensor]] = {x.name: [] for x in quantized}
    samples: dict[str, list[torch.Tensor]] = {x.name: [] for x in quantized}

    def observer(name: str):  # type: ignore[no-untyped-def]
        def hook(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].detach().reshape(-1)
            lows[name].append(x.min())
            highs[name].append(x.max())
            if method == "percentile":
                if x.numel() > PERCENTILE_SAMPLE:
                    x = x[torch.randint(x.numel(), (PERCENTILE_SAMPLE,), generator=generator)]
                samples[name].append(x.double())

        return hook

    handles = [model.get_submodule(x.name).register_forward_pre_hook(observer(x.name)) for x in quantized]
    try:
        with torch.no_grad():
            for batch in _batches(images, batch_size):
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
    ranges = []
    for layer in quantized:
        if method == "minmax":
            low, high = float(torch.stack(lows[layer.name]).min()), float(torch.stack(highs[layer.name]).max())
        else:
            values = torch.cat(samples[layer.name])
            q = torch.tensor([1.0 - percentile / 100.0, percentile / 100.0], dtype=torch.float64)
            low, high = (float(v) for v in torch.quantile(values, q))
        layer.weights["act_quant.running_min"] = np.array(low, dtype=np.float32)
        layer.weights["act_quant.running_max"] = np.array(high, dtype=np.float32)
        layer.weights["act_quant.initialized"] = np.array(True)
        ranges.append(LayerRange(layer.name, int(layer.quant.a_bits), low, high))
    return ranges
