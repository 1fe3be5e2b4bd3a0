"""The samplers under torch.distributed: two CPU processes (gloo)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import smallgan
from smallgan import sampling
from smallgan.sampling import CoresetBatchSampler, PriorCoreset

PYTHON_DIR = Path(sampling.__file__).resolve().parents[1]
N, K, FACTOR, SEED = 1000, 20, 4, 5

_WORKER = textwrap.dedent(
    f"""
    import json, sys
    import numpy as np
    import torch.distributed as dist
    from smallgan.sampling import CoresetBatchSampler, PriorCoreset, RandomBatchSampler, RandomPrior

    rank, init, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    emb = np.random.default_rng(0).normal(size=({N}, 8)).astype(np.float32)
    # num_replicas and rank left out: they must come from torch.distributed
    sampler = CoresetBatchSampler(emb, {K}, factor={FACTOR}, seed={SEED}, prefetch=2)
    res = {{"num_replicas": sampler.num_replicas, "rank": sampler.rank, "len": len(sampler)}}
    res["epochs"] = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        res["epochs"].append(list(sampler))
    # the priors and plain batches read the rank from the process group too
    with PriorCoreset(3, 4, seed={SEED}) as prior, RandomPrior(3, 4, seed={SEED}) as plain:
        res["prior_rank"] = [prior.rank, plain.rank]
        res["prior"] = [next(prior).tolist() for _ in range(3)]
        res["plain"] = [next(plain).tolist() for _ in range(3)]
    res["random_batches"] = list(RandomBatchSampler({N}, {K}, seed={SEED}))
    # what the other rank saw in epoch 0, through the process group itself
    seen = [None, None]
    dist.all_gather_object(seen, res["epochs"][0])
    res["other_epoch0"] = seen[1 - rank]
    dist.barrier()
    dist.destroy_process_group()
    with open(out, "w") as f:
        json.dump(res, f)
    """
)


@pytest.mark.timeout(180)
def test_two_ranks_draw_different_valid_batches(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    init = f"file://{tmp_path / 'rendezvous'}"
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), init, str(tmp_path / f"rank{r}.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in (0, 1)
    ]
    try:
        for p in procs:
            _, err = p.communicate(timeout=90)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    emb = np.random.default_rng(0).normal(size=(N, 8)).astype(np.float32)
    for r in (0, 1):
        assert res[r]["num_replicas"] == 2 and res[r]["rank"] == r
        assert res[r]["len"] == (N // 2) // K
        # the same batches as a single process told its rank explicitly
        local = CoresetBatchSampler(emb, K, factor=FACTOR, seed=SEED, num_replicas=2, rank=r, prefetch=0)
        assert res[r]["epochs"] == [list(local), list(local)]
        for epoch in res[r]["epochs"]:
            assert len(epoch) == res[r]["len"]
            for b in epoch:
                assert len(b) == K == len(set(b)) and all(0 <= i < N for i in b)
        assert res[r]["epochs"][0] != res[r]["epochs"][1]
    # priors: each rank its own stream, exactly the documented draws; rank 0
    # draws what a single process draws
    for r in (0, 1):
        assert res[r]["prior_rank"] == [r, r]
        for b in range(3):
            key = (1, b) if r == 0 else (1, b, r)
            rng = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=key))
            cand = rng.random((4 * 4, 3), dtype=np.float32) * 2 - 1  # factor 4, batch 4
            first = int(rng.integers(16))
            want = cand[smallgan.kcenter(cand, 4, first=first)]
            np.testing.assert_array_equal(np.array(res[r]["prior"][b], dtype=np.float32), want)
            np.testing.assert_array_equal(np.array(res[r]["plain"][b], dtype=np.float32), cand[:4])
    assert res[0]["prior"] != res[1]["prior"] and res[0]["plain"] != res[1]["plain"]
    with PriorCoreset(3, 4, seed=SEED, prefetch=0) as single:
        assert [next(single).tolist() for _ in range(3)] == res[0]["prior"]
    # plain batches: disjoint shares, each a shuffled pass over N // 2 rows
    rows = [[i for b in res[r]["random_batches"] for i in b] for r in (0, 1)]
    assert all(len(x) == len(set(x)) == (N // 2) // K * K for x in rows)
    assert set(rows[0]).isdisjoint(rows[1])
    assert res[0]["other_epoch0"] == res[1]["epochs"][0]
    assert res[1]["other_epoch0"] == res[0]["epochs"][0]
    # within an epoch the ranks' shares are disjoint: different batches whose
    # union is a valid set of rows with no row used by both ranks
    for e in (0, 1):
        rows = [set(i for b in res[r]["epochs"][e] for i in b) for r in (0, 1)]
        assert rows[0].isdisjoint(rows[1])
        assert all(0 <= i < N for i in rows[0] | rows[1])
