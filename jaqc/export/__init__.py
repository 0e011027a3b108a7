"""jaqc.export: the mapping schedule for the BitFusion target (and, later, low-bit ONNX)."""
