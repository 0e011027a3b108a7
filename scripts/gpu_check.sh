#!/usr/bin/env bash
# The checks that need a GPU, for a machine that has one (also `make gpu-check`). Nothing in `make test` needs
# a GPU; this runs what `make test` skips there and says what the GPU machine's software is.
#
# Today (issue #12 grows it: search steps with AMP, resume across devices, nccl, the step benchmarks):
#   1. the machine: GPU, driver, torch and its CUDA;
#   2. jaqc installed into a throw-away target from this checkout, with the machine's own torch and packages
#      (nothing is downloaded: the machine may have no network);
#   3. the CUDA-only tests (pytest -m gpu) and the cost-model tests on that torch;
#   4. the cost model on the GPU against the CPU: one batched evaluate() of every jaq-space mapping of a
#      CIFAR FBNet subnet, timed on both (cuda synchronised), and equal results.
# Prints one JSON summary as its last line; exits non-zero when a check fails.
#
#   bash scripts/gpu_check.sh [PYTHON]     (default: python3; OUT=dir keeps the logs)
set -u
PY=${1:-python3}
OUT=${OUT:-$(mktemp -d)}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SITE=$(mktemp -d)
start=$(date +%s)
fail=0

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || fail=1
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" || fail=1

echo "== install (no network, no dependencies: the machine's own torch, onnx, numpy ...)"
if ! "$PY" -m pip install -q --no-deps --no-build-isolation --no-index --target "$SITE" "$REPO" >"$OUT/install.log" 2>&1; then
    echo "install failed:"; tail -20 "$OUT/install.log"; fail=1
fi
export PYTHONPATH="$SITE"
(cd /tmp && "$PY" -c "import jaqc, jaqc.ir, jaqc.passes, jaqc.hw; print('jaqc', jaqc.__version__, 'from', jaqc.__file__)") || fail=1

echo "== CUDA-only tests and the cost-model tests"
# conftest adds the zoo to sys.path; -p no:cacheprovider keeps the checkout clean
# (from another folder: this checkout's jaqc/ would shadow the installed package, which maps jaqc.ir to ir/)
cd /tmp || exit 1
"$PY" -m pytest -q -p no:cacheprovider --rootdir "$REPO" -m gpu "$REPO/tests" 2>&1 | tee "$OUT/gpu_tests.log" | tail -3
gpu_tests=${PIPESTATUS[0]}
"$PY" -m pytest -q -p no:cacheprovider --rootdir "$REPO" -x "$REPO/tests/hw" 2>&1 | tee "$OUT/hw_tests.log" | tail -3
hw_tests=${PIPESTATUS[0]}
[ "$gpu_tests" = 0 ] || fail=1
[ "$hw_tests" = 0 ] || fail=1

echo "== cost model: GPU against CPU"
"$PY" - <<'EOF' | tee "$OUT/evaluate.json"
import json, time
import torch
from jaqc.hw.mapping.mapping_space import candidate_tiles
from jaqc.hw.model.tensors import HardwareTensors, MappingTensors, ProblemTensors
from jaqc.hw.model.cost_model import evaluate
from jaqc.hw.model.orders import ALL_ORDERS
from jaqc.hw.reference.workloads import fbnet_cifar_subnet
from jaqc.hw.accelerators import load_accelerator
from jaqc.ir import Mapping

accelerator = load_accelerator("jaq-table2")
problems, mappings = [], []
for problem in fbnet_cifar_subnet():
    for tile in candidate_tiles(problem, accelerator, "jaq", hw_model="deployment").tolist():
        for order in ALL_ORDERS[::5]:
            problems.append(problem)
            mappings.append(Mapping(tile=[int(t) for t in tile], loop_order=order))
n = len(problems)
cpu_args = (ProblemTensors.from_problems(problems), HardwareTensors.from_accelerators([accelerator] * n),
            MappingTensors.from_mappings(mappings))

def to(obj, device):
    return type(obj)(**{a.name: getattr(obj, a.name).to(device) for a in type(obj).__attrs_attrs__})

def timed(args, device):
    best = float("inf")
    for _ in range(5):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        cost = evaluate(*args, hw_model="deployment")
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return cost, best

cpu, cpu_s = timed(cpu_args, "cpu")
gpu, gpu_s = timed(tuple(to(a, "cuda") for a in cpu_args), "cuda")
same = torch.equal(gpu.total_cycles.cpu(), cpu.total_cycles) and torch.allclose(
    gpu.energy_total.cpu(), cpu.energy_total, rtol=1e-12, atol=0)
print(json.dumps({"evaluations": n, "cpu_s": round(cpu_s, 4), "cuda_s": round(gpu_s, 4),
                  "cuda_speedup": round(cpu_s / gpu_s, 1), "equal": bool(same)}))
EOF
evaluate=${PIPESTATUS[0]}
[ "$evaluate" = 0 ] || fail=1
grep -q '"equal": true' "$OUT/evaluate.json" || fail=1

"$PY" - "$OUT" "$gpu_tests" "$hw_tests" "$fail" "$(( $(date +%s) - start ))" <<'EOF'
import json, sys
out, gpu_tests, hw_tests, fail, seconds = sys.argv[1:]
def last(path):
    try:
        lines = [l for l in open(path).read().splitlines() if l.strip()]
        return lines[-1] if lines else ""
    except OSError:
        return ""
summary = {"gpu_tests": last(f"{out}/gpu_tests.log"), "gpu_tests_rc": int(gpu_tests),
           "hw_tests": last(f"{out}/hw_tests.log"), "hw_tests_rc": int(hw_tests),
           "evaluate": json.loads(last(f"{out}/evaluate.json") or "null"), "seconds": int(seconds), "ok": fail == "0"}
print(json.dumps(summary))
EOF
exit "$fail"
