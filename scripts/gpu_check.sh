#!/usr/bin/env bash
# The checks that need a GPU, for a machine that has one (also `make gpu-check`). Nothing in `make test` needs
# a GPU; this runs what `make test` skips there and says what the GPU machine's software is.
#
#   1. the machine: GPU, driver, torch and its CUDA;
#   2. jaqc installed into a throw-away target from this checkout, with the machine's own torch and packages
#      (nothing is downloaded: the machine may have no network);
#   3. the CUDA-only tests (pytest -m gpu: search steps on the GPU against the CPU with AMP off and bf16, a run
#      resumed across devices both ways, the relaxed cost model) and the cost-model tests on that torch;
#   4. the cost model on the GPU against the CPU: one batched evaluate() of every jaq-space mapping of a
#      CIFAR FBNet subnet, timed on both (cuda synchronised), and equal results;
#   5. `jaqc search --preset cifar10` on synthetic CIFAR-10 files (8000 training images: 2 epochs of about 90 steps)
#      on the GPU with --amp off and with --amp bf16: each one's derived architecture and seconds;
#   6. a two-process nccl search (torchrun) when the machine has two GPUs;
#   7. benchmarks/search_step.py on the GPU (cifar10, batch 64): CSQ against float per step, images per second.
# Prints one JSON summary as its last line; exits non-zero when a check fails. Meant to take under 8 minutes on
# one H100 (each stage has a timeout).
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

echo "== cifar10 searches on synthetic CIFAR-10 files, AMP off and bf16"
"$PY" - "$OUT/cifar" <<'EOF'
import pickle, sys
from pathlib import Path
import numpy as np
folder = Path(sys.argv[1]) / "cifar-10-batches-py"
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
def dump(name, content):
    with (folder / name).open("wb") as handle:
        pickle.dump(content, handle, protocol=2)
for i in range(1, 6):
    dump(f"data_batch_{i}", {b"data": rng.integers(0, 256, (1600, 3072), dtype=np.uint8),
                             b"labels": rng.integers(0, 10, 1600).tolist()})
dump("test_batch", {b"data": rng.integers(0, 256, (1000, 3072), dtype=np.uint8),
                    b"labels": rng.integers(0, 10, 1000).tolist()})
dump("batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)]})
EOF
searches=0
for amp in off bf16; do
    t0=$(date +%s)
    if timeout 150 "$PY" -m jaqc search --preset cifar10 --data "$OUT/cifar" --epochs 2 --device cuda --amp "$amp" \
        --run-dir "$OUT/search-$amp" >"$OUT/search-$amp.log" 2>&1; then
        echo "amp $amp: $(( $(date +%s) - t0 )) s"
    else
        echo "amp $amp: failed"; tail -5 "$OUT/search-$amp.log"; searches=1
    fi
done
[ "$searches" = 0 ] || fail=1

echo "== two-process nccl search"
gpus=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "$gpus" -ge 2 ]; then
    if timeout 120 "$PY" -m torch.distributed.run --nproc_per_node 2 -m jaqc search --preset tiny --epochs 1 \
        --device cuda --run-dir "$OUT/nccl" >"$OUT/nccl.log" 2>&1; then
        nccl=ok
    else
        nccl=failed; fail=1; tail -5 "$OUT/nccl.log"
    fi
else
    nccl="skipped: $gpus GPU"
fi
echo "nccl: $nccl"

echo "== benchmarks/search_step.py on the GPU"
timeout 200 "$PY" "$REPO/benchmarks/search_step.py" --preset cifar10 --batch 64 --threads 1 --steps 3 --device cuda \
    >"$OUT/search_step.json" 2>"$OUT/search_step.log" || { fail=1; tail -5 "$OUT/search_step.log"; }

"$PY" - "$OUT" "$gpu_tests" "$hw_tests" "$fail" "$(( $(date +%s) - start ))" "$nccl" <<'EOF'
import json, sys
out, gpu_tests, hw_tests, fail, seconds, nccl = sys.argv[1:]
def last(path):
    try:
        lines = [l for l in open(path).read().splitlines() if l.strip()]
        return lines[-1] if lines else ""
    except OSError:
        return ""
def read(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
searches = {}
for amp in ("off", "bf16"):
    summary = read(f"{out}/search-{amp}/summary.json")
    searches[amp] = summary and {k: summary.get(k) for k in ("architecture", "search_seconds", "val_acc", "edap_mJ_ms_mm2")}
same = searches["off"]["architecture"] == searches["bf16"]["architecture"] if all(searches.values()) else None
step = read(f"{out}/search_step.json")
keys = ("device_name", "float_step_s", "csq_step_s", "csq_over_float_step_time", "search_loop")
summary = {"gpu_tests": last(f"{out}/gpu_tests.log"), "gpu_tests_rc": int(gpu_tests),
           "hw_tests": last(f"{out}/hw_tests.log"), "hw_tests_rc": int(hw_tests),
           "evaluate": json.loads(last(f"{out}/evaluate.json") or "null"),
           "cifar10_search": searches, "bf16_same_architecture": same, "nccl": nccl,
           "search_step": step and {k: step.get(k) for k in keys}, "seconds": int(seconds), "ok": fail == "0"}
print(json.dumps(summary))
EOF
exit "$fail"
