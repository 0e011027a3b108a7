"""onnxscript translations of jaqc's fake-quantization ops for ``torch.onnx.export(dynamo=True)``.

``jaqc::fake_quant`` (activations: per tensor, asymmetric, unsigned with a zero point) becomes
``QuantizeLinear -> DequantizeLinear`` and ``jaqc::fake_quant_symmetric`` (weights: per output channel,
symmetric narrow range) ``QuantizeLinear(zero point 0, axis) -> DequantizeLinear``. The scale and zero point
are computed in the graph from the op's range inputs with the arithmetic of :func:`jaqc.nn.fake_quant.quant_params`
and :func:`~jaqc.nn.fake_quant.symmetric_scale` (float32, round half to even), so they equal PyTorch's bit for bit;
the export folds them into constants afterwards (:mod:`jaqc.export.onnx_lowering`).

Integer types: 8 bits ``uint8`` / ``int8``; 4 bits ``UINT4`` / ``INT4`` (opset 21); 2 bits ``UINT2`` / ``INT2`` at
opset 25, or an 8-bit container with a ``Clip`` to the 2-bit range between Q and DQ (QCDQ) below opset 25.
This module needs onnx and onnxscript, not torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onnx import TensorProto

#: The first opset with the 2-bit integer types INT2 / UINT2.
NATIVE_2BIT_OPSET = 25

_UNSIGNED = {8: TensorProto.UINT8, 4: TensorProto.UINT4, 2: TensorProto.UINT2}
_SIGNED = {8: TensorProto.INT8, 4: TensorProto.INT4, 2: TensorProto.INT2}


def integer_type(bits: int, signed: bool, opset: int) -> tuple[int, bool]:
    """``(ONNX element type, needs_clip)`` holding ``bits``-bit codes at ``opset``.

    ``needs_clip`` is true where the type is wider than ``bits`` (2 bits below opset 25: an 8-bit container whose
    range a ``Clip`` narrows). Raises ``ValueError`` for widths other than 2, 4, 8.
    """
    table = _SIGNED if signed else _UNSIGNED
    if bits not in table:
        raise ValueError(f"{bits}-bit quantizers cannot be exported (2, 4 or 8 bits)")
    if bits == 2 and opset < NATIVE_2BIT_OPSET:
        return table[8], True
    return table[bits], False


def translations(opset: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The translation functions ``(fake_quant, fake_quant_symmetric)`` for a target ``opset``.

    Both are traced by the exporter (plain Python over onnxscript ops, so the integer type can depend on
    ``bits``); they emit standard ONNX only.
    """
    from onnxscript import values

    op = values.Opset("", opset)

    def const(value: float) -> Any:
        return op.Constant(value_float=float(value))

    def typed(value: int, elem_type: int) -> Any:
        return op.Cast(const(value), to=elem_type)

    def fake_quant(x: Any, lo: Any, hi: Any, bits: int, axis: int) -> Any:
        """``jaqc::fake_quant`` as QuantizeLinear -> [Clip] -> DequantizeLinear (unsigned, zero point)."""
        elem_type, needs_clip = integer_type(bits, signed=False, opset=opset)
        levels = float((1 << bits) - 1)
        zero = const(0.0)
        lo_eff = op.Min(lo, zero)
        hi_eff = op.Max(hi, zero)
        scale = op.Div(op.Sub(hi_eff, lo_eff), const(levels))
        scale = op.Where(op.Greater(scale, zero), scale, const(1.0))
        zero_point = op.Clip(op.Round(op.Div(op.Neg(lo_eff), scale)), zero, const(levels))
        zero_point = op.Cast(zero_point, to=elem_type)
        codes = op.QuantizeLinear(x, scale, zero_point, axis=axis)
        if needs_clip:
            codes = op.Clip(codes, typed(0, elem_type), typed(int(levels), elem_type))
        return op.DequantizeLinear(codes, scale, zero_point, axis=axis)

    def fake_quant_symmetric(x: Any, amax: Any, bits: int, axis: int) -> Any:
        """``jaqc::fake_quant_symmetric`` as QuantizeLinear -> [Clip] -> DequantizeLinear (signed, zero point 0)."""
        elem_type, needs_clip = integer_type(bits, signed=True, opset=opset)
        levels = (1 << (bits - 1)) - 1
        zero = const(0.0)
        scale = op.Div(amax, const(levels))
        scale = op.Where(op.Greater(scale, zero), scale, const(1.0))
        zero_point = op.Cast(op.Mul(scale, zero), to=elem_type)  # zeros shaped like the scale
        codes = op.QuantizeLinear(x, scale, zero_point, axis=axis)
        if needs_clip:
            codes = op.Clip(codes, typed(-levels, elem_type), typed(levels, elem_type))
        return op.DequantizeLinear(codes, scale, zero_point, axis=axis)

    return fake_quant, fake_quant_symmetric
