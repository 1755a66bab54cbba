"""Two processes, one run (gloo on the CPU): the ranks see different data, agree on every weight after every
step, and only rank 0 writes; a run killed under DDP resumes under DDP."""
import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ganforge import api
from ganforge.data.sampler import BatchSampler
from ganforge.training import checkpoint
from ganforge.training.trainer import Trainer

from conftest import FAST, digits, small

WORLD = 2


def worker(rank: int, port: int, out: str, steps: int, resume: bool, minutes=None) -> None:
    """One rank: train `steps` steps, saving D's and G's weights after each step and the batches it drew."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank))
    os.environ["TORCHELASTIC_USE_AGENT_STORE"] = "True"  # every rank a client of the parent's store, as under torchrun
    torch.set_num_threads(1)
    try:
        cfg = api.resolve_config("dcgan", sets=[*FAST, *small("dcgan"), "checkpoint.every=2"], out=out, steps=steps,
                                 batch_size=4, resume=resume, minutes=minutes)
        trainer = Trainer(cfg, out, resume=resume, progress=False, data=digits())
        weights, batches = [], []
        next_batch = trainer.sampler.next

        def drawing():
            batch = next_batch()
            batches.append(batch["image"].clone())
            return batch

        iteration = trainer._iteration

        def recording(running):  # every weight and buffer as the step ends
            result = iteration(running)
            weights.append([t.clone() for net in trainer.all_nets() for t in net.state_dict().values()])
            return result

        trainer.sampler.next, trainer._iteration = drawing, recording
        trainer.fit()
        torch.save({"weights": weights, "batches": batches, "step": trainer.step}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def spawn(out, steps, resume=False, minutes=None):
    # The rendezvous store lives here, as torchrun's agent hosts it, on the port the system gave it: no port
    # is picked, closed and hoped to be still free when rank 0 binds it.
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(worker, args=(store.port, str(out), steps, resume, minutes), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def test_two_ranks_agree_after_every_step_and_only_rank_0_writes(tmp_path):
    r0, r1 = spawn(tmp_path, steps=3)
    assert r0["step"] == r1["step"] == 3 and len(r0["weights"]) == len(r1["weights"]) == 3
    for step, (a, b) in enumerate(zip(r0["weights"], r1["weights"])):
        assert all(torch.equal(x, y) for x, y in zip(a, b)), f"the ranks' weights differ after step {step + 1}"
    assert not all(torch.equal(x, y) for x, y in zip(r0["weights"][0], r0["weights"][-1]))  # and they trained
    # each rank drew its own half of the global batch: different images, batch_size each
    assert r0["batches"][0].shape[0] == r1["batches"][0].shape[0] == 4
    assert not torch.equal(r0["batches"][0], r1["batches"][0])
    # together they are exactly the batches of one process with WORLD x the batch, in the same order
    single = BatchSampler(digits(), 4 * WORLD, 0, torch.device("cpu"))
    for step in range(3):
        merged = torch.stack([r0["batches"][step], r1["batches"][step]], dim=1).flatten(0, 1)  # rank r: every WORLD-th from r
        assert torch.equal(merged, single.next()["image"]), f"the global batch of step {step + 1} differs"
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]  # logged once, by rank 0
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path / "checkpoints")] == [2, 3]
    tensors, _ = checkpoint.load(str(tmp_path))
    assert {"rng.torch.rank0", "rng.torch.rank1"} <= set(tensors)


@pytest.mark.slow  # two more pairs of process start-ups
def test_resume_under_ddp_continues_the_run(tmp_path):
    spawn(tmp_path, steps=2)
    r0, r1 = spawn(tmp_path, steps=4, resume=True)
    assert r0["step"] == r1["step"] == 4 and len(r0["weights"]) == 2
    assert all(torch.equal(x, y) for x, y in zip(r0["weights"][-1], r1["weights"][-1]))
    assert checkpoint.list_checkpoints(tmp_path / "checkpoints")[-1][0] == 4


def test_a_time_budget_stops_every_rank_at_the_same_step(tmp_path):
    """--minutes under DDP is read on rank 0's clock and shared: no rank runs a step the others do not."""
    r0, r1 = spawn(tmp_path, steps=10**6, minutes=0.03)
    assert r0["step"] == r1["step"] and 0 < r0["step"] < 10**6
    assert all(torch.equal(x, y) for x, y in zip(r0["weights"][-1], r1["weights"][-1]))

