"""Try jaqc as a hostile user would and tally the outcomes (issue #13).

Builds a corpus of bad inputs in a temporary folder -- CLI misuse, mutated IR text and JSON, accelerator files,
cost files, ONNX models, Python model specs, damaged run directories -- runs every command on each of them
in-process (``jaqc.cli.main``) and counts, per category: clean exits (0), one-line errors (exit 2 with a single
``error: ...`` line on stderr), other exits, tracebacks (an exception escaping ``main``; distinct causes listed
by exception type and raising line) and hangs (over ``--timeout`` seconds).

    .venv/bin/python scripts/hostile_inputs.py [--seed 0] [--per-category 150] [--json out.json]

The damaged-run-directory category starts from a real run: a one-epoch ``tiny`` search (about a minute on 2
cores), made once in the temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fuzz tests' documents and helpers (run this from a checkout)

from test_fuzz_inputs import ACCEL, COST_FILE, json_paths, toml_value  # noqa: E402

GOOD_TEXT = """graph net
accelerator pe_rows=8 pe_cols=8 wbuf_kb=16 ibuf_kb=16 obuf_kb=16 dataflow=WS dram_bits_per_cycle=128 freq_mhz=500.0 name="a"
hw_model deployment
%x = input : [1,3,8,8] ; fx=x
%c = conv2d[k=3,p=1](%x) : w4a8 [1,3,8,8]->[1,8,8,8] tile{b=1,ow=8,oh=8,ic=3,oc=8} order=b>ow>oh>ic>oc cost{compute=10,stall=2,energy_nJ=1.5} ; fx=c module=c
%b = batchnorm[eps=1e-05](%c) : [1,8,8,8]->[1,8,8,8]
%r = relu(%b) : [1,8,8,8]->[1,8,8,8]
%dw = conv2d[k=3,p=1,g=8](%r) : w2a4 [1,8,8,8]->[1,8,8,8]
%a = add(%dw, %r) : [1,8,8,8],[1,8,8,8]->[1,8,8,8]
%p = global_avgpool(%a) : [1,8,8,8]->[1,8,1,1]
%f = flatten(%p) : [1,8,1,1]->[1,8]
%fc = linear(%f) : w8a8 [1,8]->[1,10]
%out = output(%fc) : [1,10]->[1,10]
"""  # noqa: E501

HOSTILE: list[Any] = [None, True, False, 0, -1, 1.5, 2.0, math.nan, math.inf, -math.inf, 10**30, 2**31, "abc", "",
                      [], {}, [1], {"a": 1}, [[1]], "WS", 3, "\u00e9", [1, 2, 3, 4, 5, 6], 1e23]  # fmt: skip
TOKENS = ["1.5", "nan", "inf", "-1", "0", "abc", "1e23", "true", "99999999999999999999999", "[]", "{", "}", "=", "%",
          '"', "(", ")", ",", ">", "[1,-3]", "w3a8", "%x", "\u00e9", "\\", ""]  # fmt: skip


# --- corpus --------------------------------------------------------------------------------------------------------


def mutate(doc: Any, rng: random.Random) -> Any:
    """``doc`` with one to three values replaced by hostile ones, deleted or given an unknown sibling."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(json_paths(doc))
        if not path:
            return copy.deepcopy(rng.choice(HOSTILE))
        holder = doc
        for key in path[:-1]:
            holder = holder[key]
        action = rng.random()
        if isinstance(holder, dict) and action < 0.15:
            del holder[path[-1]]
        elif isinstance(holder, dict) and action < 0.2:
            holder["unknown_field"] = 1
        else:
            holder[path[-1]] = copy.deepcopy(rng.choice(HOSTILE))
    return doc


def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        action = rng.random()
        if action < 0.1 and len(lines) > 1:
            del lines[i]
        elif action < 0.2:
            lines.insert(i, lines[i])
        else:
            parts = re.split(r"(\W)", lines[i])
            parts[rng.randrange(len(parts))] = rng.choice(TOKENS)
            lines[i] = "".join(parts)
    return "\n".join(lines) + "\n"


def build_corpus(root: Path, rng: random.Random, per: int, base_run: Path | None) -> dict[str, list[list[str]]]:
    """Category -> command lines (every file they name written under ``root``)."""
    from jaqc.ir import graph_to_json, parse

    corpus: dict[str, list[list[str]]] = defaultdict(list)
    good = root / "good.jaqc"
    good.write_text(GOOD_TEXT)
    good_json = root / "good.json"
    good_json.write_text(json.dumps(graph_to_json(parse(GOOD_TEXT))))
    (root / "afile").write_text("x")

    # CLI misuse: bad values and combinations for every command
    bad_values = ["", "0", "-1", "1.5", "nan", "inf", "abc", "99999999999999999999999", ",", "1,,2", "1,3,-8,8"]
    commands = [
        ["dump", str(good)], ["dump", str(good), "--format", "table"], ["dump", str(good), "--format", "json"],
        ["map", str(good), "--accel", "jaq-table2"], ["cost", str(root / "nope.json")],
        ["search", "--epochs", "1"], ["retrain", str(root / "norun")], ["compare"], ["export", str(good_json)],
        ["quantize", str(good_json), "--bits", "w8a8", "--calib", "digits"],
    ]  # fmt: skip
    options = ["--input-shape", "--epochs", "--threads", "--seed", "--lam", "--lambda-e", "--passes", "--accel",
               "--objective", "--space", "--format", "--hw-model", "-o", "--run-dir", "--bits", "--calib-images",
               "--opset", "--episodes", "--budget", "--preset", "--method", "--data", "--resume"]  # fmt: skip
    misc = [[], ["nosuchcommand"], ["dump"], ["dump", str(good), str(good)], ["dump", "--supernet", "nope"],
            ["dump", str(good), "--mappings"], ["dump", str(root / "x.onnx")], ["dump", str(root)],
            ["dump", str(good), "-o", str(root / "afile" / "x.json")], ["dump", str(good), "-o", "/proc/x.json"],
            ["search", "--run-dir", str(root / "afile" / "r"), "--epochs", "1"], ["search", "--force"],
            ["search", "--method", "haq", "--lifelong", str(root)], ["map", str(good)], ["export", str(good)],
            ["dump", "m:o:d", "--format", "json"], ["dump", str(good), "--weights"], ["cost", str(root)]]  # fmt: skip
    corpus["CLI misuse"] = misc
    while len(corpus["CLI misuse"]) < per:
        command = rng.choice(commands)
        option = rng.choice(options)
        if option in ("-o", "--run-dir"):
            value = rng.choice([str(root / "afile" / "x"), "", "/proc/x", str(root)])
        else:
            value = rng.choice(bad_values)
        corpus["CLI misuse"].append([*command, option, value])

    # IR text and JSON, mutated; read by dump (all) and map (one in four)
    for i in range(per):
        path = root / f"t{i}.jaqc"
        path.write_text(mutate_text(GOOD_TEXT, rng), encoding="utf-8")
        corpus["IR text"].append(["dump", str(path), "--format", rng.choice(["text", "table", "json"])])
        if i % 4 == 0:
            corpus["IR text"].append(["map", str(path), "--accel", "jaq-table2"])
    base_doc = graph_to_json(parse(GOOD_TEXT))
    for i in range(per):
        path = root / f"j{i}.json"
        path.write_text(json.dumps(mutate(base_doc, rng)))
        corpus["IR JSON"].append(["dump", str(path), "--format", rng.choice(["text", "table", "json"])])
        if i % 4 == 0:
            corpus["IR JSON"].append(["map", str(path), "--accel", "jaq-table2"])
    for raw in (b"", b"\xff\xfe\x00", b"[" * 100_000, b"{}", b"null", b'{"format": "jaqc-ir", "version": 1}'):
        path = root / f"raw{len(corpus['IR JSON'])}.json"
        path.write_bytes(raw)
        corpus["IR JSON"].append(["dump", str(path)])

    # accelerator files (JSON and TOML) handed to map
    for i in range(per):
        doc = mutate(ACCEL, rng)
        if i % 2:
            path = root / f"a{i}.json"
            path.write_text(json.dumps(doc))
        else:
            path = root / f"a{i}.toml"
            body = (
                "".join(f"{k} = {toml_value(v)}\n" for k, v in doc.items())
                if isinstance(doc, dict)
                else toml_value(doc)
            )
            path.write_text(body)
        corpus["accelerator files"].append(["map", str(good), "--accel", str(path)])
    for raw in (b"\xff", b"", b"pe_rows = [" * 5000):
        path = root / f"araw{len(corpus['accelerator files'])}.toml"
        path.write_bytes(raw)
        corpus["accelerator files"].append(["map", str(good), "--accel", str(path)])
    corpus["accelerator files"].append(["map", str(good), "--accel", str(root)])  # a directory

    # cost files
    for i in range(per):
        path = root / f"c{i}.json"
        path.write_text(json.dumps(mutate(COST_FILE, rng)))
        corpus["cost files"].append(["cost", str(path), *(["--search"] if i % 5 == 0 else [])])

    # ONNX models: valid ones from the IR, then damaged bytes and mutated fields
    corpus["ONNX models"] = _onnx_corpus(root, rng, max(20, per // 3))

    # Python model specs
    corpus["Python model specs"] = _python_corpus(root)

    # damaged run directories
    if base_run is not None:
        corpus["damaged run directories"] = _run_corpus(root, rng, base_run, max(20, per // 3))
    return corpus


def _onnx_corpus(root: Path, rng: random.Random, count: int) -> list[list[str]]:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.zeros(108, np.float32).tolist())
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [conv], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], [weight],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    good = root / "m.onnx"
    onnx.save(model, str(good))
    data = good.read_bytes()
    out: list[list[str]] = [
        ["dump", str(good)],
        ["dump", str(good), "--input-shape", "1,3,8,8"],
        ["dump", str(good), "--input-shape", "1,3,8"],
        ["dump", str(good), "--mappings"],
    ]
    for i in range(count):
        path = root / f"o{i}.onnx"
        kind = i % 4
        if kind == 0:
            path.write_bytes(data[: rng.randrange(len(data))])
        elif kind == 1:
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            path.write_bytes(bytes(flipped))
        else:
            copy_ = onnx.ModelProto()
            copy_.CopyFrom(model)
            node = copy_.graph.node[0]
            if kind == 2:
                del node.attribute[:]
                node.attribute.extend([helper.make_attribute("pads", [rng.randint(-2, 9)] * 4)])
                node.attribute.extend([helper.make_attribute("group", rng.choice([0, 2, 3, 5]))])
            else:
                copy_.graph.input[0].type.tensor_type.shape.dim[rng.randrange(4)].dim_value = rng.choice([0, 1, 7])
            onnx.save(copy_, str(path))
        out.append(["dump", str(path), *(["--input-shape", "1,3,8,8"] if i % 2 else [])])
    return out


def _python_corpus(root: Path) -> list[list[str]]:
    sources = {
        "syntax": "def broken(:\n",
        "raises": "def f():\n    raise RuntimeError('boom')\n",
        "notmodule": "def f():\n    return 42\n",
        "importerr": "import no_such_package_xyz\n",
        "shape5": "import torch.nn as nn\nclass f(nn.Sequential):\n    example_input_shape = 5\n"
        "    def __init__(self):\n        super().__init__(nn.Conv2d(3, 4, 3))\n",
        "shapeneg": "import torch.nn as nn\nclass f(nn.Sequential):\n    example_input_shape = (1, -3, 8, 8)\n"
        "    def __init__(self):\n        super().__init__(nn.Conv2d(3, 4, 3))\n",
        "shapestr": "import torch.nn as nn\nclass f(nn.Sequential):\n    example_input_shape = 'abc'\n"
        "    def __init__(self):\n        super().__init__(nn.Conv2d(3, 4, 3))\n",
        "dynamic": "import torch, torch.nn as nn\nclass f(nn.Module):\n    def forward(self, x):\n"
        "        return x if x.sum() > 0 else -x\n",
        "wrongchannels": "import torch.nn as nn\ndef f():\n    return nn.Conv2d(5, 4, 3)\n",
        "empty": "import torch.nn as nn\ndef f():\n    return nn.Sequential()\n",
        "ok": "import torch.nn as nn\ndef f():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())\n",
    }
    out: list[list[str]] = []
    for name, source in sources.items():
        path = root / f"py_{name}.py"
        path.write_text(source)
        for extra in ([], ["--input-shape", "1,3,8,8"], ["--format", "table"]):
            out.append(["dump", f"{path}:f", *extra])
        out.append(["map", f"{path}:f", "--accel", "jaq-table2"])
    out += [["dump", f"{root}/py_ok.py:nofactory"], ["dump", f"{root}/missing.py:f"], ["dump", "os.path:join"],
            ["dump", "no.such.module:f"], ["dump", ":f"], ["dump", f"{root}/py_ok.py:"]]  # fmt: skip
    return out


def _run_corpus(root: Path, rng: random.Random, base: Path, count: int) -> list[list[str]]:
    out: list[list[str]] = []
    damages = ["config-missing", "config-binary", "config-dir", "config-json", "config-format", "checkpoint-flip",
               "checkpoint-truncate", "checkpoints-gone", "metrics-torn", "metrics-binary", "subnet-gone",
               "subnet-mutated", "accelerator-mutated", "summary-gone", "sidecar-wrong"]  # fmt: skip
    for i in range(count):
        run = root / f"run{i}"
        shutil.copytree(base, run)
        damage = damages[i % len(damages)]
        checkpoints = sorted((run / "checkpoints").glob("*.pt"))
        if damage == "config-missing":
            (run / "config.json").unlink()
        elif damage == "config-binary":
            (run / "config.json").write_bytes(b"\xff\xfe")
        elif damage == "config-dir":
            (run / "config.json").unlink()
            (run / "config.json").mkdir()
        elif damage == "config-json":
            (run / "config.json").write_text(json.dumps(mutate(json.loads((base / "config.json").read_text()), rng)))
        elif damage == "config-format":
            (run / "config.json").write_text('{"format": "jaqc-run", "version": 7}')
        elif damage == "checkpoint-flip":
            data = bytearray(checkpoints[-1].read_bytes())
            data[rng.randrange(len(data))] ^= 0xFF
            checkpoints[-1].write_bytes(bytes(data))
        elif damage == "checkpoint-truncate":
            for checkpoint in checkpoints:
                checkpoint.write_bytes(checkpoint.read_bytes()[:100])
        elif damage == "checkpoints-gone":
            shutil.rmtree(run / "checkpoints")
        elif damage == "metrics-torn":
            with (run / "metrics.jsonl").open("a") as handle:
                handle.write('{"step": 9')
        elif damage == "metrics-binary":
            (run / "metrics.jsonl").write_bytes(b"\xff" * 10)
        elif damage == "subnet-gone":
            (run / "subnet.json").unlink()
        elif damage == "subnet-mutated":
            doc = json.loads((run / "subnet.json").read_text())
            for layer in doc["layers"]:
                layer.pop("weights", None)
            (run / "subnet.json").write_text(json.dumps(mutate(doc, rng)))
        elif damage == "accelerator-mutated":
            (run / "accelerator.json").write_text(
                json.dumps(mutate(json.loads((run / "accelerator.json").read_text()), rng))
            )
        elif damage == "summary-gone":
            (run / "summary.json").unlink()
        elif damage == "sidecar-wrong":
            for sidecar in (run / "checkpoints").glob("*.sha256"):
                sidecar.write_text("0" * 64)
        (run / "summary.json").unlink(missing_ok=True)  # so that --resume tries the checkpoints
        command = rng.choice([["search", "--resume", str(run)], ["export", str(run), "-o", str(run / "export")],
                              ["retrain", str(run), "--epochs", "1"]])  # fmt: skip
        out.append(command)
    return out


# --- running -----------------------------------------------------------------------------------------------------


class Hang(Exception):
    pass


def run_one(argv: list[str], timeout: int) -> dict[str, Any]:
    from jaqc.cli import main

    def alarm(_signum: int, _frame: Any) -> None:
        raise Hang()

    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        outcome = "exit 0" if code == 0 else ("error" if code == 2 else f"exit {code}")
        cause = None
    except Hang:
        outcome, cause = "hang", None
    except SystemExit as exc:
        outcome, cause = f"exit {exc.code}", None
    except BaseException as exc:  # a traceback: what the issue counts
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        outcome = "traceback"
        cause = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
    finally:
        signal.alarm(0)
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    if outcome == "error" and len(errors) != 1:
        if any(line.startswith(("Error: ", "Usage: ")) for line in lines):
            outcome = "usage error"  # click's: "Usage: ...", "Error: Invalid value for '--epochs': ..."
        elif errors and all(line.startswith(("error: ", "  ", "warning: ")) for line in lines):
            pass  # a verification error: one "error:" line, then the broken invariants indented
        else:
            outcome = "error (unclear)"
    return {"argv": argv, "outcome": outcome, "cause": cause, "seconds": time.perf_counter() - start,
            "stderr": err.getvalue()[-300:]}  # fmt: skip


def make_base_run(root: Path) -> Path:
    from jaqc.cli import main

    run = root / "base-run"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["search", "--epochs", "1", "--run-dir", str(run)])
    if code != 0:
        raise SystemExit(f"could not make the base run in {run}")
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-category", type=int, default=150)
    parser.add_argument("--timeout", type=int, default=120, help="seconds before an input counts as a hang")
    parser.add_argument("--no-runs", action="store_true", help="skip the damaged run directories (no base search)")
    parser.add_argument("--json", type=Path, default=None, help="also write every outcome here")
    args = parser.parse_args()
    os.environ.setdefault("JAQC_PROGRESS", "0")
    import torch

    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jaqc-hostile-") as tmp:
        root = Path(tmp)
        os.chdir(root)  # commands with default output folders (runs/<preset>) write here, not in the checkout
        base = None if args.no_runs else make_base_run(root)
        corpus = build_corpus(root, rng, args.per_category, base)
        results: dict[str, list[dict[str, Any]]] = {}
        for category, commands in corpus.items():
            results[category] = [run_one(argv, args.timeout) for argv in commands]
            print(f"{category}: {len(commands)} inputs done", file=sys.stderr, flush=True)
    header = ["category", "inputs", "exit 0", "one-line error", "usage error", "unclear error", "other exit",
              "traceback", "hang"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    totals: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    for category, rows in results.items():
        counts = Counter(r["outcome"] for r in rows)
        other = sum(v for k, v in counts.items() if k.startswith("exit ") and k != "exit 0")
        cells = [len(rows), counts["exit 0"], counts["error"], counts["usage error"], counts["error (unclear)"], other,
                 counts["traceback"], counts["hang"]]  # fmt: skip
        totals.update(dict(zip(header[1:], cells, strict=True)))
        causes.update(r["cause"] for r in rows if r["cause"])
        print(f"| {category} | " + " | ".join(str(c) for c in cells) + " |")
    print("| **all** | " + " | ".join(str(totals[h]) for h in header[1:]) + " |")
    print(f"\n{len(causes)} distinct traceback causes" + (":" if causes else ""))
    for cause, n in causes.most_common():
        print(f"- {cause} ({n})")
    print(f"\n{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if causes or totals["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
