#!/usr/bin/env bash
# `make demo`: the main job end to end on the built-in digits data: search -> retrain -> map -> export -> check.
# A few minutes on 2 CPU cores.
set -euo pipefail
VENV=${1:-.venv}
JAQC="$VENV/bin/jaqc"
OUT=${DEMO_OUT:-runs/demo}
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== 1. JAQ search on digits (tiny preset): architecture, bits and accelerator together"
"$JAQC" search --preset tiny --run-dir "$OUT/search"

echo
echo "== 2. retrain the derived subnet with fixed-precision QAT; test accuracy and hardware cost"
"$JAQC" retrain "$OUT/search"

echo
echo "== 3. the retrained subnet on its accelerator, layer by layer (BatchTile mappings)"
"$JAQC" map "$OUT/search/retrain/subnet.json" --accel "$OUT/search/accelerator.json"

echo
echo "== 4. low-bit ONNX (Q/DQ) with the mapping schedule embedded, and the schedule read back from it"
"$JAQC" export "$OUT/search" -o "$OUT/export"
"$JAQC" dump "$OUT/export/model.onnx" --mappings

echo
echo "== 5. the exported model under onnxruntime on the test split, against the PyTorch subnet"
"$VENV/bin/python" scripts/check_export.py "$OUT/search" "$OUT/export"

echo
echo "== outputs: $OUT/search (run directory, plots/), $OUT/search/retrain, $OUT/export"
ls "$OUT/search" "$OUT/search/plots" "$OUT/export"
