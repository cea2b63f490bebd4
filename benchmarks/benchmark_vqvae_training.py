"""Training-step throughput of `VQVAEModel` against a plain-PyTorch textbook VQ-VAE of the same architecture, and
the nearest-code search against diffusers' `VectorQuantizer`, side by side in one process.

    python benchmarks/benchmark_vqvae_training.py [--batch_size 128] [--steps 10]

Only the printed ratios mean anything: absolute times depend on the CPU, which differs from run to run.
"""

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from machine import set_threads
from torch import nn

from hf_vqvae import VQVAEConfig, VQVAEModel
from hf_vqvae.models.vqvae.quantization import nearest_codes


class TextbookResidual(nn.Module):
    def __init__(self, hidden: int, residual: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(hidden, residual, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(residual, hidden, 1, bias=False),
        )

    def forward(self, x):
        return x + self.block(x)


class TextbookVQVAE(nn.Module):
    """The paper's CIFAR-10 VQ-VAE as tutorials write it: Sonnet's layers, cdist + argmin, the paper's loss."""

    def __init__(self, hidden=128, residual=32, num_codes=512, dim=64, beta=0.25):
        super().__init__()
        self.beta = beta
        self.encoder = nn.Sequential(
            nn.Conv2d(3, hidden // 2, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            TextbookResidual(hidden, residual),
            TextbookResidual(hidden, residual),
            nn.ReLU(),
            nn.Conv2d(hidden, dim, 1),
        )
        self.codebook = nn.Embedding(num_codes, dim)
        self.codebook.weight.data.uniform_(-1 / num_codes, 1 / num_codes)
        self.decoder = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, padding=1),
            TextbookResidual(hidden, residual),
            TextbookResidual(hidden, residual),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, 3, 4, 2, 1),
        )

    def forward(self, x):
        z = self.encoder(x)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        codes = torch.cdist(flat, self.codebook.weight).argmin(1)
        quantized = self.codebook(codes).view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        loss_vq = F.mse_loss(quantized, z.detach()) + self.beta * F.mse_loss(z, quantized.detach())
        quantized = z + (quantized - z).detach()
        reconstruction = self.decoder(quantized)
        return F.mse_loss(reconstruction, x) + loss_vq


def time_steps(step: Callable[[], None], steps: int, warmup: int = 2) -> float:
    """Median seconds per call of `step`."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def training_step(model: nn.Module, loss_of: Callable, batch: torch.Tensor, bf16: bool) -> Callable[[], None]:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def benchmark_training(batch_size: int, steps: int) -> None:
    batch = torch.rand(batch_size, 3, 32, 32) * 2 - 1
    contenders = {
        "textbook": (lambda: TextbookVQVAE(), lambda m, x: m(x)),
        "hf_vqvae vq": (lambda: VQVAEModel(VQVAEConfig(quantizer="vq")), lambda m, x: m(x).loss),
        "hf_vqvae ema (default)": (lambda: VQVAEModel(VQVAEConfig()), lambda m, x: m(x).loss),
    }
    seconds = {}
    for bf16 in (False, True):
        for name, (build, loss_of) in contenders.items():
            torch.manual_seed(0)
            seconds[name, bf16] = time_steps(training_step(build(), loss_of, batch, bf16), steps)
    print(f"\nTraining step, batch {batch_size} of 32x32x3, Adam (median of {steps} steps)")
    print(
        f"{'model':<24}{'fp32 img/s':>12}{'bf16 img/s':>12}{'vs textbook fp32':>18}{'vs textbook bf16':>18}"
        f"{'own bf16/fp32':>15}"
    )
    for name in contenders:
        fp32, bf16 = seconds[name, False], seconds[name, True]
        print(
            f"{name:<24}{batch_size / fp32:>12.1f}{batch_size / bf16:>12.1f}"
            f"{seconds['textbook', False] / fp32:>18.2f}{seconds['textbook', True] / bf16:>18.2f}"
            f"{fp32 / bf16:>15.2f}"
        )


def benchmark_search(num_vectors: int, steps: int) -> None:
    from diffusers.models.autoencoders.vae import VectorQuantizer as DiffusersVectorQuantizer

    diffusers_quantizer = DiffusersVectorQuantizer(512, 64, beta=0.25, legacy=False).eval()
    codebook = diffusers_quantizer.embedding.weight.detach()
    side = int(num_vectors**0.5)
    latents = torch.randn(1, 64, side, side)
    flat = latents.permute(0, 2, 3, 1).reshape(-1, 64)
    with torch.no_grad():
        ours = time_steps(lambda: nearest_codes(flat, codebook), steps)
        theirs = time_steps(lambda: diffusers_quantizer(latents), steps)
        exact = torch.cdist(flat.double(), codebook.double()).argmin(1)
        agree_ours = (nearest_codes(flat, codebook) == exact).float().mean().item()
        agree_theirs = (diffusers_quantizer(latents)[2][2].flatten() == exact).float().mean().item()
    print(f"\nNearest-code search, {side * side} vectors x K=512, D=64 (median of {steps})")
    print(
        f"hf_vqvae nearest_codes: {ours * 1e3:.2f} ms | diffusers VectorQuantizer.forward (cdist + argmin): "
        f"{theirs * 1e3:.2f} ms | ratio (diffusers / ours): {theirs / ours:.2f}"
    )
    print(f"codes equal to a float64 search: hf_vqvae {agree_ours:.2%}, diffusers {agree_theirs:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--search_vectors", type=int, default=128 * 64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    print(set_threads(args.threads))
    benchmark_training(args.batch_size, args.steps)
    benchmark_search(args.search_vectors, args.steps * 5)


if __name__ == "__main__":
    main()
