"""A real 2-process (gloo, CPU) run: the codebook state stays identical on every rank and equals what one process
computes on the concatenated batch, also inside DistributedDataParallel and with uneven per-rank batches."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import tiny_config
from safetensors.torch import load_file, save_file

from hf_vqvae import VectorQuantizer, VQVAEModel

pytestmark = pytest.mark.slow

WORLD_SIZE = 2
# Per-rank batches of different sizes: 4x4 grids of 3 and 2 examples (48 and 32 latent vectors).
BATCH_SIZES = (3, 2)


def latent_batches(step: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(step)
    return [torch.randn(b, 8, 4, 4, generator=generator) for b in BATCH_SIZES]


def quantizer_config(**overrides):
    return tiny_config("image", **{"kmeans_init": True, "dead_code_threshold": 0.0, **overrides})


def run_rank(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        assert dist.get_world_size() == WORLD_SIZE
        torch.manual_seed(0)
        ema = VectorQuantizer(quantizer_config()).train()
        for step in range(3):
            ema(latent_batches(step)[rank])

        torch.manual_seed(0)
        restarting = VectorQuantizer(quantizer_config(dead_code_threshold=1e6, kmeans_init=False)).train()
        restarting.cluster_size.zero_()  # every code dead
        restarting(latent_batches(0)[rank])

        torch.manual_seed(0)
        model = torch.nn.parallel.DistributedDataParallel(
            VQVAEModel(tiny_config("image", dead_code_threshold=0.5))
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for step in range(3):
            generator = torch.Generator().manual_seed(100 * step + rank)
            model(torch.rand(BATCH_SIZES[rank], 3, 16, 16, generator=generator) * 2 - 1).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()(torch.zeros(1, 3, 16, 16))  # eval forwards run no collective: a lone rank cannot hang

        state = {f"ema.{k}": v for k, v in ema.state_dict().items()}
        state |= {f"restart.{k}": v for k, v in restarting.state_dict().items()}
        state |= {f"ddp.{k}": v for k, v in model.module.quantizer.state_dict().items()}
        save_file(
            {k: v.contiguous() for k, v in state.items()}, os.path.join(out_dir, f"rank{rank}.safetensors")
        )
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def rank_states(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ranks")
    mp.spawn(run_rank, args=(free_port(), str(out_dir)), nprocs=WORLD_SIZE, join=True)
    return [load_file(out_dir / f"rank{rank}.safetensors") for rank in range(WORLD_SIZE)]


def test_every_rank_holds_the_identical_codebook_state(rank_states):
    first, second = rank_states
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_ema_codebook_equals_one_process_on_the_concatenated_batch(rank_states):
    torch.manual_seed(0)
    single = VectorQuantizer(quantizer_config()).train()
    for step in range(3):
        single(
            torch.cat([b.permute(0, 2, 3, 1).reshape(-1, 8) for b in latent_batches(step)]).T.reshape(
                1, 8, 80, 1
            )
        )
    for name, tensor in single.state_dict().items():
        torch.testing.assert_close(rank_states[0][f"ema.{name}"], tensor, msg=name)


def test_restarts_draw_replacements_from_both_ranks(rank_states):
    state = rank_states[0]
    rank_vectors = [b.permute(0, 2, 3, 1).reshape(-1, 8) for b in latent_batches(0)]
    codebook = state["restart.embedding.weight"]
    sources = [(codebook[:, None] == vectors[None]).all(-1).any(1) for vectors in rank_vectors]
    assert state["restart.num_restarts"].item() == 16
    assert all(source.any() for source in sources)  # replacements came from rank 0's and rank 1's batches
    assert (sources[0] | sources[1]).all()


def test_ddp_training_with_uneven_batches_finishes_with_an_initialised_finite_codebook(rank_states):
    assert rank_states[0]["ddp.initialized"].item()
    assert torch.isfinite(rank_states[0]["ddp.embedding.weight"]).all()
