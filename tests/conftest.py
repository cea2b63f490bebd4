"""Shared test set-up: offline hub, a private HF cache, seeded RNGs, tiny configs for every modality, and the
example scripts as importable modules."""

import functools
import importlib.util
import os
import tempfile
from pathlib import Path

# Hub look-ups otherwise stall ~23 s each on a machine without internet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf_home_"))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from hf_vqvae import VQVAEConfig  # noqa: E402

# The test models are tiny: every op then pays for thread-pool synchronisation, which on a busy 2-core machine made
# sampling tests 40-50x slower with two threads than with one (measured). Subprocess runs keep their own setting.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Input shapes of the tiny configs below: image (B, C, H, W), audio (B, C, T), video (B, T, C, H, W).
TINY_INPUT_SHAPES = {"image": (4, 3, 16, 16), "audio": (4, 1, 256), "video": (2, 4, 3, 16, 16)}


def tiny_config(modality: str = "image", **overrides) -> VQVAEConfig:
    """A VQ-VAE small enough for a CPU test: 16 hidden channels, K=16, D=8."""
    sample_size = {"image": [16, 16], "audio": [256], "video": [4, 16, 16]}[modality]
    downsample = {"image": 4, "audio": 16, "video": [2, 4, 4]}[modality]
    fields = dict(
        modality=modality,
        hidden_channels=16,
        residual_channels=8,
        num_residual_layers=1,
        codebook_size=16,
        embedding_dim=8,
        sample_size=sample_size,
        downsample_factors=downsample,
    )
    return VQVAEConfig(**{**fields, **overrides})


@functools.cache
def load_script(path: Path):
    """An example script as a module, to call its functions (`main(argv)`) in this process."""
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_inputs(modality: str, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(TINY_INPUT_SHAPES[modality], generator=generator) * 2 - 1


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item):
    """Keeps each phase's report on the test item (`item.rep_call`), so fixtures can tell that a test failed (the
    browser tests then print the browser's console)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
