"""`jaqc quantize`: bits specs, calibration data, calibrated export equal to PyTorch, uncalibrated export refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from jaqc.ir import LayerKind, QuantSpec, load_graph, save_graph
from jaqc.passes import PassContext, PassManager, parse_pipeline
from torch import nn

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.data import DataConfig, load_splits
from jaqc.export.onnx_export import build_onnx, model_bytes
from jaqc.export.onnx_lowering import ExportError
from jaqc.frontend import import_model
from jaqc.nn.subnet import build_subnet
from jaqc.quantize import (
    QuantizeError,
    assign_bits,
    calibrate,
    calibration_images,
    is_calibrated,
    parse_bits_spec,
    weighted_layers,
)

SHAPE = (1, 1, 16, 16)
MODEL_SOURCE = """
import torch
from torch import nn


def digits_cnn():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )
    state = {STATE!r}
    if state:
        model.load_state_dict(torch.load(state))
    return model.eval()
"""


def _digits():
    return load_splits(DataConfig(name="digits", resolution=16, channels=1))


def _stack(dataset):
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
    return images, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A small float CNN trained on digits, saved as a model file (file.py:digits_cnn) and as a module."""
    root = tmp_path_factory.mktemp("quantize")
    namespace: dict = {}
    exec(MODEL_SOURCE.replace("{STATE!r}", "None"), namespace)
    model = namespace["digits_cnn"]().train()
    images, labels = _stack(_digits().train)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    state = root / "state.pt"
    torch.save(model.state_dict(), state)
    source = root / "digits_model.py"
    source.write_text(MODEL_SOURCE.replace("{STATE!r}", repr(str(state))))
    return f"{source}:digits_cnn", model.eval()


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(-1) == labels).float().mean())


def _graph(model: nn.Module):  # type: ignore[no-untyped-def]
    return import_model(model, SHAPE, name="digits_cnn")


def test_bits_spec_rules_and_errors(tmp_path: Path) -> None:
    rules = parse_bits_spec("w8a8, 1=w4a8 ,*1*=float")
    assert [(r.pattern, r.quant) for r in rules] == [("*", QuantSpec(8, 8)), ("1", QuantSpec(4, 8)), ("*1*", None)]
    spec = tmp_path / "bits.json"
    spec.write_text(json.dumps({"*": "w4a4", "0": "float"}))
    assert [(r.pattern, r.quant) for r in parse_bits_spec(str(spec))] == [("*", QuantSpec(4, 4)), ("0", None)]
    for bad, message in [
        ("w3a8", "bits 'w3a8' must be wXaY with X, Y in 2, 4, 8"),
        ("", "bits spec is empty"),
        ("*.dw=w8", "bits 'w8' must be wXaY"),
    ]:
        with pytest.raises(QuantizeError, match=message):
            parse_bits_spec(bad)
    spec.write_text("{oops")
    with pytest.raises(QuantizeError, match=r"bits\.json: not valid JSON"):
        parse_bits_spec(str(spec))
    with pytest.raises(QuantizeError, match="no such file"):
        parse_bits_spec(str(tmp_path / "missing.json"))


def test_assign_bits_later_rules_win_and_first_last(trained) -> None:  # type: ignore[no-untyped-def]
    graph = _graph(trained[1])
    names = [x.name for x in weighted_layers(graph)]
    assign_bits(graph, parse_bits_spec(f"w8a8,{names[1]}=w4a4"))
    eight, four = QuantSpec(8, 8), QuantSpec(4, 4)
    assert [x.quant for x in weighted_layers(graph)] == [eight, four, eight, eight, eight]
    assign_bits(graph, parse_bits_spec("w2a4"), first_last="float")
    assert [x.quant for x in weighted_layers(graph)] == [None, *[QuantSpec(2, 4)] * 3, None]
    with pytest.raises(QuantizeError, match=r"bits pattern 'features\.\*' matches no conv2d/linear layer"):
        assign_bits(graph, parse_bits_spec("features.*=w4a4"))


def test_calibrated_w8a8_export_matches_pytorch_and_float_accuracy(trained) -> None:  # type: ignore[no-untyped-def]
    _, model = trained
    test_images, test_labels = _stack(_digits().test)
    float_acc = _accuracy(model, test_images, test_labels)
    assert float_acc > 0.9  # the float model learned the task
    graph = _graph(model)
    assign_bits(graph, parse_bits_spec("w8a8"))
    ranges = calibrate(graph, calibration_images("digits", SHAPE), method="minmax")
    assert len(ranges) == 5 and all(is_calibrated(x) for x in weighted_layers(graph))
    assert ranges[1].low == 0.0 < ranges[1].high  # after a ReLU
    fake_quant = build_subnet(graph)
    quant_acc = _accuracy(fake_quant, test_images, test_labels)
    assert abs(quant_acc - float_acc) <= 0.01  # w8a8 within one point of float on the digits test set
    onnx_model = build_onnx(graph, "qdq", 21, accelerator=_accelerator())[0]
    session = ort.InferenceSession(model_bytes(onnx_model), providers=["CPUExecutionProvider"],
                                   sess_options=_basic())  # fmt: skip
    name = session.get_inputs()[0].name
    exported = np.concatenate([session.run(None, {name: x[None].numpy()})[0] for x in test_images[:64]])
    with torch.no_grad():
        reference = fake_quant(test_images[:64]).numpy()
    assert np.abs(exported - reference).max() < 1e-4
    assert (exported.argmax(-1) == reference.argmax(-1)).all()


def _accelerator():  # type: ignore[no-untyped-def]
    from jaqc.hw.accelerators import load_accelerator

    return load_accelerator("jaq-table2")


def _basic() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return options


def test_uncalibrated_export_is_refused_naming_the_layer(trained) -> None:  # type: ignore[no-untyped-def]
    graph = PassManager(parse_pipeline("annotate-quant{w_bits=4,a_bits=4}")).run(_graph(trained[1]), PassContext())
    first = next(x for x in weighted_layers(graph.graph) if x.quant is not None)
    with pytest.raises(ExportError, match=rf"layer %{first.name} is w4a4 but its activation quantizer was never"):
        build_onnx(graph.graph, "qdq", 21, accelerator=_accelerator())


def test_percentile_narrows_the_range(trained) -> None:  # type: ignore[no-untyped-def]
    images = calibration_images("digits", SHAPE, limit=128)
    wide, narrow = _graph(trained[1]), _graph(trained[1])
    for graph in (wide, narrow):
        assign_bits(graph, parse_bits_spec("w4a4"))
    minmax = calibrate(wide, images, "minmax")
    percentile = calibrate(narrow, images, "percentile", percentile=99.0)
    assert all(p.high <= m.high and p.low >= m.low for p, m in zip(percentile, minmax, strict=True))
    assert any(p.high < m.high for p, m in zip(percentile, minmax, strict=True))
    with pytest.raises(QuantizeError, match="calibration method must be one of minmax, percentile"):
        calibrate(wide, images, "mse")


def test_calibration_sources(tmp_path: Path) -> None:
    from PIL import Image

    array = np.random.default_rng(0).normal(size=(5, 1, 16, 16)).astype(np.float32)
    np.save(tmp_path / "calib.npy", array)
    assert torch.equal(calibration_images(str(tmp_path / "calib.npy"), SHAPE), torch.from_numpy(array))
    with pytest.raises(
        QuantizeError, match=r"shape \[5, 1, 16, 16\] does not match the model's input \[N, 3, 16, 16\]"
    ):
        calibration_images(str(tmp_path / "calib.npy"), (1, 3, 16, 16))
    folder = tmp_path / "images" / "cls"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((40, 30, 3), 60 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    raw = calibration_images(str(tmp_path / "images"), (1, 3, 24, 24), normalization="none")
    assert raw.shape == (3, 3, 24, 24) and float(raw[2].mean()) == pytest.approx(120 / 255, abs=1e-6)
    normalised = calibration_images(str(tmp_path / "images"), (1, 3, 24, 24))
    assert float(normalised[0, 0].mean()) == pytest.approx(-0.485 / 0.229, abs=1e-5)
    with pytest.raises(QuantizeError, match=r"expected 'digits', an \.npy file or a folder of images"):
        calibration_images(str(tmp_path / "nothing"), SHAPE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(QuantizeError, match="no images"):
        calibration_images(str(tmp_path / "empty"), SHAPE)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(QuantizeError, match="not a numpy array file"):
        calibration_images(str(tmp_path / "bad.npy"), SHAPE)


def test_cli_quantize_then_export(trained, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = trained[0]
    out = tmp_path / "q.json"
    args = ["quantize", spec, "--input-shape", "1,1,16,16", "--bits", "w8a8,3=w4a8", "--calib", "digits"]
    assert main([*args, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "5 quantized layer(s), percentile calibration on digits" in printed and "w4a8" in printed
    graph = load_graph(out)
    assert graph.layers_of(LayerKind.CONV2D)[1].quant == QuantSpec(4, 8)
    assert all(is_calibrated(x) for x in weighted_layers(graph))
    assert main(["export", str(out), "--accel", "jaq-table2", "-o", str(tmp_path / "export")]) == 0
    capsys.readouterr()
    # an IR quantized without calibration is refused with the fix in the message
    raw = tmp_path / "raw.json"
    assert main(["dump", spec, "--input-shape", "1,1,16,16", "--passes", "annotate-quant{w_bits=4,a_bits=4}",
                 "-o", str(raw)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["export", str(raw), "--accel", "jaq-table2", "-o", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "activation quantizer was never calibrated" in err and "jaqc quantize" in err
    assert not (tmp_path / "refused" / "model.onnx").exists()
    assert main([*args, "-o", str(tmp_path / "q.jaqc")]) == 2
    assert "give a .json path" in capsys.readouterr().err


def test_save_and_reload_keeps_the_calibration(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graph = _graph(trained[1])
    assign_bits(graph, parse_bits_spec("w4a4"))
    calibrate(graph, calibration_images("digits", SHAPE, limit=64))
    save_graph(graph, tmp_path / "g.json", weights=True)
    again = load_graph(tmp_path / "g.json")
    assert all(is_calibrated(x) for x in weighted_layers(again))
    images = calibration_images("digits", SHAPE, limit=16)
    with torch.no_grad():
        assert torch.equal(build_subnet(graph)(images), build_subnet(again)(images))


def test_a_layer_that_cannot_run_quantized_is_named() -> None:
    model = nn.Sequential(nn.Conv2d(1, 8, (3, 1), padding=(1, 0)), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 256, 10))
    graph = import_model(model.eval(), SHAPE, name="non_square")
    assign_bits(graph, parse_bits_spec("w8a8"))
    with pytest.raises(JaqcError, match=r"quantized layer %0 needs a square kernel, stride and padding"):
        calibrate(graph, calibration_images("digits", SHAPE, limit=8))


@pytest.mark.parametrize("fmt", ["qdq", "qonnx"])
def test_folded_batchnorm_biases_quantize_and_export(trained, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """BatchNorm folded into the convs gives them a bias: it stays float and the export matches PyTorch."""
    graph = PassManager(parse_pipeline("fold-batchnorm")).run(_graph(trained[1]), PassContext()).graph
    assert not graph.layers_of(LayerKind.BATCHNORM) and all(c.params.bias for c in graph.layers_of(LayerKind.CONV2D))
    assign_bits(graph, parse_bits_spec("w8a8,6=w4a4"))
    calibrate(graph, calibration_images("digits", SHAPE, limit=256), method="minmax")
    test_images, test_labels = _stack(_digits().test)
    fake_quant = build_subnet(graph)
    assert _accuracy(fake_quant, test_images, test_labels) > 0.9
    onnx_model = build_onnx(graph, fmt, 21, accelerator=_accelerator())[0]
    assert {i.name for i in onnx_model.graph.initializer} >= {"0.bias", "6.bias"}
    if fmt == "qdq":
        session = ort.InferenceSession(model_bytes(onnx_model), providers=["CPUExecutionProvider"],
                                       sess_options=_basic())  # fmt: skip
        name = session.get_inputs()[0].name
        exported = np.concatenate([session.run(None, {name: x[None].numpy()})[0] for x in test_images[:32]])
    else:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx

        wrapper = ModelWrapper(onnx_model)
        name, out = wrapper.graph.input[0].name, wrapper.graph.output[0].name
        exported = np.concatenate([execute_onnx(wrapper, {name: x[None].numpy()})[out] for x in test_images[:32]])
    with torch.no_grad():
        reference = fake_quant(test_images[:32]).numpy()
    assert np.abs(exported - reference).max() < 1e-4
    # and the IR round-trips through tracing with its biases
    from jaqc.nn.tracing import trace_model

    again = trace_model(fake_quant, SHAPE)
    assert all(c.params.bias and "bias" in c.weights for c in again.layers_of(LayerKind.CONV2D))


def test_cli_short_qat_of_a_quantized_ir(trained, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    quantized = tmp_path / "q.json"
    args = ["quantize", trained[0], "--input-shape", "1,1,16,16", "--bits", "w4a4", "--calib", "digits"]
    assert main([*args, "-o", str(quantized)]) == 0
    capsys.readouterr()
    assert main(["retrain", str(quantized), "--epochs", "1", "--lr", "0.005", "-o", str(tmp_path / "qat")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "retrained 1 epochs on digits: test accuracy" in printed and "(deployment model)" in printed
    summary = json.loads((tmp_path / "qat" / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.9 and summary["hw_model"] == "deployment"
    trained_ir = load_graph(tmp_path / "qat" / "subnet.json")
    assert [x.quant for x in weighted_layers(trained_ir)] == [QuantSpec(4, 4)] * 5
    assert all(is_calibrated(x) for x in weighted_layers(trained_ir))
    assert main(["retrain", str(quantized)]) == 2
    assert "needs an output directory: give -o OUT/" in capsys.readouterr().err
    assert main(["retrain", str(tmp_path), "--dataset", "digits"]) == 2
    assert "--dataset apply to retraining an IR.json, not a run directory" in capsys.readouterr().err
    # --float-epochs: the first epoch in floating point, the second quantized
    assert main(["retrain", str(quantized), "--epochs", "2", "--float-epochs", "1", "-o", str(tmp_path / "warm")]) == 0
    assert json.loads((tmp_path / "warm" / "summary.json").read_text())["float_epochs"] == 1
    assert main(["retrain", str(quantized), "--epochs", "1", "--float-epochs", "1", "-o", str(tmp_path / "f")]) == 2
    assert "float_epochs must be in 0..0 (at least one quantized epoch of 1), got 1" in capsys.readouterr().err
