"""Data-parallel training with torch.distributed (gloo, 2 CPU processes) equals 1 process."""

import os
import socket
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from test_trainer import _Interrupt, tiny_cfg, tiny_scene  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _detector():
    from patchkit.detectors import create_detector

    torch.manual_seed(0)
    return create_detector("yolov8n.yaml", imgsz=128, letterbox="square")


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from patchkit.engine.trainer import Trainer

    trainer = Trainer(tiny_cfg(Path(out), optim__batch_size=4), detector=_detector(), scene=tiny_scene(n=8))
    patch = trainer.fit()
    torch.save(patch, Path(out) / f"patch_rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _interrupted_worker(rank: int, world: int, port: int, out: str) -> None:
    """Trains with ``world`` ranks and is killed after step 3 (rank 0 saves the checkpoint)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from patchkit.engine.trainer import Trainer

    trainer = Trainer(tiny_cfg(Path(out), optim__batch_size=4), detector=_detector(), scene=tiny_scene(n=8),
                      callbacks=[_Interrupt(3)])
    try:
        trainer.fit()
    except KeyboardInterrupt:
        pass
    torch.distributed.destroy_process_group()


def test_two_gloo_ranks_equal_one_process(tmp_path):
    from patchkit.engine.trainer import Trainer

    torch.set_num_threads(1)
    single = Trainer(tiny_cfg(tmp_path / "single", optim__batch_size=4), detector=_detector(), scene=tiny_scene(n=8)).fit()
    port = _free_port()
    mp.start_processes(_worker, args=(2, port, str(tmp_path / "ddp")), nprocs=2, join=True, start_method="spawn")
    p0 = torch.load(tmp_path / "ddp" / "patch_rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "ddp" / "patch_rank1.pt", weights_only=True)
    assert torch.equal(p0, p1), "ranks drifted apart"
    assert (single - 0.5).abs().max() > 0.05, "the single-process run did not train"
    # Equal up to float summation order. Adam divides by the gradient's own size, so a pixel whose
    # gradient is ~0 can flip direction on rounding noise: allow a handful of such pixels.
    diff = (p0 - single).abs()
    assert (diff > 1e-4).float().mean() < 0.005, diff.max()
    assert diff.mean() < 1e-4
    # rank 0 alone wrote the run folder
    assert (tmp_path / "ddp" / "run" / "checkpoint.pt").is_file()
    ckpt = torch.load(tmp_path / "ddp" / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["step"] == 6


def test_a_two_rank_run_resumes_in_one_process(tmp_path):
    """The checkpoint does not depend on the number of ranks: 2 ranks killed after step 3, then
    resumed by 1 process, give the patch of 1 process trained straight through."""
    from patchkit.engine.trainer import Trainer

    torch.set_num_threads(1)
    straight = Trainer(tiny_cfg(tmp_path / "single", optim__batch_size=4), detector=_detector(),
                       scene=tiny_scene(n=8)).fit()
    out = tmp_path / "ddp"
    mp.start_processes(_interrupted_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True, start_method="spawn")
    resumed = Trainer(tiny_cfg(out, optim__batch_size=4), detector=_detector(), scene=tiny_scene(n=8))
    resumed.load_checkpoint(out / "run" / "checkpoint.pt")
    assert resumed.state.step == 3
    patch = resumed.fit()
    assert resumed.state.step == 6
    diff = (patch - straight).abs()  # float summation order differs between 2 ranks and 1 (see above)
    assert (diff > 1e-4).float().mean() < 0.005, diff.max()
    assert diff.mean() < 1e-4
