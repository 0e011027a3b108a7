#!/usr/bin/env bash
# `make demo`: the main job end to end on the built-in digits data: search -> retrain -> inspect.
# (Export to ONNX joins once it exists.) A few minutes on 2 CPU cores.
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
echo "== outputs: $OUT/search (run directory, plots/), $OUT/search/retrain"
ls "$OUT/search" "$OUT/search/plots"
