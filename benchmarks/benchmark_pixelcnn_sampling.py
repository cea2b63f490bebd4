"""Sampling speed of the gated PixelCNN prior: the cached sampler (per-layer rolling caches, Ramachandran et
al. 2017) against the naive sampler that reruns the full network on the whole grid for every code, in one
process.

    python benchmarks/benchmark_pixelcnn_sampling.py [--naive_positions 64] [--threads 1]

The naive sampler costs one full-grid pass per code, the same at every position, so it is timed on the first
`--naive_positions` codes only and its per-code cost extrapolated to the grid. Only the printed ratio means
anything: absolute times depend on the CPU, which differs from run to run.
"""

import argparse
import time
from collections.abc import Callable

import torch
from machine import set_threads

from hf_vqvae.models.prior.configuration_prior import VQPriorConfig
from hf_vqvae.models.prior.pixelcnn_backbone import GatedPixelCNNPrior


class StopSampling(Exception):
    """Raised from the progress callback to end a sampler after a given number of codes."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--codebook_size", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--num_layers", type=int, default=8)
    parser.add_argument("--kernel_size", type=int, default=3)
    parser.add_argument(
        "--naive_positions",
        type=int,
        default=64,
        help="codes the naive sampler is timed on (the whole grid if larger)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def multinomial_sampler(seed: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[torch.Tensor]]:
    """A seeded `sample_next` (softmax + multinomial) and the codes it drew, one `(batch,)` per step."""
    generator = torch.Generator().manual_seed(seed)
    drawn = []

    def sample_next(logits: torch.Tensor) -> torch.Tensor:
        drawn.append(torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1))
        return drawn[-1]

    return sample_next, drawn


def time_sampler(prior: GatedPixelCNNPrior, batch_size: int, use_cache: bool, positions: int, seed: int):
    """Seconds to sample the first `positions` codes of each grid (in raster order), and the codes drawn
    `(positions, batch)`."""
    sample_next, drawn = multinomial_sampler(seed)

    def stop_after_positions() -> None:
        if len(drawn) == positions:
            raise StopSampling

    start = time.perf_counter()
    try:
        prior.sample(batch_size, None, sample_next, use_cache=use_cache, progress=stop_after_positions)
    except StopSampling:
        pass
    return time.perf_counter() - start, torch.stack(drawn)


def main() -> None:
    args = parse_args()
    machine = set_threads(args.threads)
    config = VQPriorConfig(
        prior_type="pixelcnn",
        codebook_size=args.codebook_size,
        code_shape=[args.height, args.width],
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        kernel_size=args.kernel_size,
    )
    torch.manual_seed(args.seed)
    prior = GatedPixelCNNPrior(config).eval()
    num_codes = args.height * args.width
    naive_positions = min(args.naive_positions, num_codes)

    with torch.no_grad():
        # Warm-up: first calls pay for kernel selection and allocations.
        time_sampler(prior, args.batch_size, use_cache=True, positions=args.width, seed=args.seed)
        time_sampler(prior, args.batch_size, use_cache=False, positions=2, seed=args.seed)
        cached_seconds, cached_codes = time_sampler(prior, args.batch_size, True, num_codes, args.seed)
        naive_seconds, naive_codes = time_sampler(prior, args.batch_size, False, naive_positions, args.seed)

    cached_rate = args.batch_size * num_codes / cached_seconds
    naive_rate = args.batch_size * naive_positions / naive_seconds
    parameters = sum(parameter.numel() for parameter in prior.parameters())
    print(machine)
    print(
        f"Gated PixelCNN: hidden {args.hidden_size}, {args.num_layers} layers, kernel {args.kernel_size}, "
        f"K={args.codebook_size}, unconditional, {parameters / 1e6:.2f}M parameters; eval, no_grad"
    )
    print(f"grid {args.height}x{args.width} ({num_codes} codes), batch {args.batch_size}")
    print(f"cached: {cached_rate:10.1f} codes/s  ({cached_seconds:.2f} s for the whole grid)")
    print(
        f"naive:  {naive_rate:10.1f} codes/s  ({naive_seconds:.2f} s for the first {naive_positions} "
        f"positions; one full-grid pass per code at every position, so the whole grid extrapolates to "
        f"{naive_seconds * num_codes / naive_positions:.0f} s)"
    )
    print(f"cached / naive: {cached_rate / naive_rate:.1f}x")
    same_codes = torch.equal(cached_codes[:naive_positions], naive_codes)
    print(f"same codes as the cached sampler on the first {naive_positions} positions: {same_codes}")


if __name__ == "__main__":
    main()
