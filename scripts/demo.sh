#!/usr/bin/env bash
# `make demo`: the main job end to end with what exists today. It grows as features land
# (search -> retrain -> export once those commands exist).
set -euo pipefail
VENV=${1:-.venv}
JAQC="$VENV/bin/jaqc"
OUT=${DEMO_OUT:-runs/demo}
mkdir -p "$OUT"
MODEL=tests/zoo_models.py:fbnet_like

echo "== 1. trace an FBNet-style CNN into the layer IR, fold batchnorm, quantize to w4a8 (table)"
"$JAQC" dump "$MODEL" --input-shape 1,3,32,32 --format table \
  --passes 'shape-check,fold-batchnorm,annotate-quant{w_bits=4,a_bits=8}' --verify-each \
  -o "$OUT/fbnet_like.json"

echo "== 2. the saved IR (with weights) reads back; its text form"
"$JAQC" dump "$OUT/fbnet_like.json" -o "$OUT/fbnet_like.jaqc" | head -12
echo "   ... written: $OUT/fbnet_like.json, $OUT/fbnet_like.jaqc"
