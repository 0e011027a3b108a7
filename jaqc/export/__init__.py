"""jaqc.export: the mapping schedule for the BitFusion target and the low-bit ONNX export (docs/export.md).

``schedule`` (the ``jaqc.schedule`` document), ``onnx_export`` (``export_onnx``; torch is imported when an export
runs), ``onnx_translation`` and ``onnx_lowering`` (its steps), ``embedded`` (the schedule inside an exported model,
``read_export``).
"""
