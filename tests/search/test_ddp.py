"""Distributed search: 2 CPU processes under torchrun (gloo) keep identical architecture parameters."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from search_cases import small_preset
    from jaqc.search.distributed import end_worker, fingerprint, ranks_agree, shutdown
    from jaqc.search.runner import SearchRun

    out = sys.argv[1]
    run = SearchRun(small_preset(), out + "/run")
    run.run(stop_after_steps=3, progress=False)
    arch = run.engine.supernet.arch
    local = fingerprint(arch.alpha, arch.beta_w, arch.beta_a)
    weights = fingerprint(*[p for p in run.engine.supernet.weight_parameters()])
    result = {{"rank": run.rank, "world": run.world, "steps_per_epoch": run.steps_per_epoch,
              "arch": local, "weights": weights, "agree": ranks_agree(local)}}
    with open(f"{{out}}/rank{{run.rank}}.json", "w") as f:
        json.dump(result, f)
    shutdown()
    end_worker(0)  # what jaqc's CLI does under torchrun: no interpreter teardown, which aborts a rank now and then
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_agree(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).parents[1])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(script), str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if Path("/sys/class/net/lo").exists():
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # bind gloo to loopback, not whatever the hostname resolves to
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[:4000] + "\n...\n" + proc.stderr[-1500:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["arch"] == ranks[1]["arch"] and all(r["agree"] for r in ranks)
    assert ranks[0]["weights"] == ranks[1]["weights"]  # averaged gradients keep the weights identical too
    single = 1034 // 64  # the weight split of digits at batch 64 on one process
    assert ranks[0]["steps_per_epoch"] == single // 2
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 3  # only rank 0 writes
