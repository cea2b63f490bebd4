"""Loading by Hub id, offline, from a Hugging Face cache laid out as a download leaves it:
`VQVAEModel.from_pretrained("org/vqvae-tiny")`, `AutoModel.from_pretrained(...)` and
`pipeline("vq-sample", model="org/vqvae-tiny")`, whose prior comes from `prior/` of the same snapshot."""

import os
import shutil
from functools import partial
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants, snapshot_download
from test_pipeline import quiet, save_pipeline_folder, stack, tiny_prior, tiny_vqvae
from transformers import AutoModel, pipeline

from hf_vqvae import VQPriorModel, VQSamplePipeline, VQVAEModel

REPO_ID = "org/vqvae-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def place_in_hub_cache(folder, repo_id: str, cache_dir, commit: str = COMMIT) -> Path:
    """Lay `folder` out in `cache_dir` as the cached snapshot of model repo `repo_id` at `commit`, with
    `refs/main` pointing at it: `models--{org}--{name}/snapshots/{commit}/...` + `refs/main`. As in a real
    cache the snapshot holds symlinks (here to the files of `folder`, not to `blobs/`), so a large released
    model is not copied. Returns the snapshot folder."""
    # from_pretrained prefers a local folder spelled like the repo id; the test would not use the cache.
    assert not Path(repo_id).exists(), f"{repo_id!r} exists as a local path"
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(Path(folder).resolve(), snapshot, copy_function=os.symlink)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty, offline Hub cache for this test; returns `place(folder, repo_id, commit=COMMIT) -> snapshot`.

    huggingface_hub reads `HF_HUB_CACHE` and `HF_HUB_OFFLINE` from the environment once, when it is imported,
    into `huggingface_hub.constants`; setting the variables afterwards changes nothing (checked with
    huggingface_hub 2.4 / transformers 5.24: the id is then not found). Its download functions, and
    transformers' `cached_file`, read `constants.HF_HUB_CACHE` at call time, so patching the attribute moves
    every load to this cache. `cache_dir=` would also work for `from_pretrained`, but not for the pipeline:
    `pipeline()` does not hand `model_kwargs` to the pipeline, so the prior would be looked up in the default
    cache. The environment variables are set too, for subprocesses.
    """
    cache_dir = tmp_path / "hub"
    cache_dir.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return partial(place_in_hub_cache, cache_dir=cache_dir)


@pytest.fixture
def saved_folder(tmp_path):
    """A tiny image VQ-VAE with a transformer prior in `prior/`."""
    vqvae = tiny_vqvae("image")
    return save_pipeline_folder(tmp_path / "saved", vqvae, tiny_prior(vqvae.config.code_shape))


def test_cache_layout_is_what_huggingface_hub_resolves(hub_cache, saved_folder):
    snapshot = hub_cache(saved_folder, REPO_ID)
    assert Path(snapshot_download(REPO_ID)) == snapshot
    assert (snapshot / "prior" / "config.json").is_file()


def test_vqvae_from_pretrained_by_hub_id(hub_cache, saved_folder):
    hub_cache(saved_folder, REPO_ID)
    model = VQVAEModel.from_pretrained(REPO_ID)
    assert model.name_or_path == REPO_ID
    torch.testing.assert_close(model.state_dict(), tiny_vqvae("image").state_dict(), rtol=0, atol=0)


def test_auto_model_by_hub_id(hub_cache, saved_folder):
    hub_cache(saved_folder, REPO_ID)
    assert type(AutoModel.from_pretrained(REPO_ID)) is VQVAEModel
    assert type(AutoModel.from_pretrained(REPO_ID, subfolder="prior")) is VQPriorModel


def test_pipeline_by_hub_id_loads_the_prior_from_the_snapshot(hub_cache, saved_folder):
    hub_cache(saved_folder, REPO_ID)
    pipe = quiet(pipeline("vq-sample", model=REPO_ID))
    assert isinstance(pipe, VQSamplePipeline) and pipe.model.name_or_path == REPO_ID
    torch.testing.assert_close(pipe.prior.state_dict(), tiny_prior([4, 4]).state_dict(), rtol=0, atol=0)


def test_pipeline_by_hub_id_samples_as_the_local_folder(hub_cache, saved_folder):
    hub_cache(saved_folder, REPO_ID)
    from_hub = quiet(pipeline("vq-sample", model=REPO_ID))
    from_folder = quiet(pipeline("vq-sample", model=str(saved_folder)))
    torch.testing.assert_close(
        stack(from_hub(num_samples=2, seed=0, output_type="pt")),
        stack(from_folder(num_samples=2, seed=0, output_type="pt")),
    )


def test_prior_comes_from_the_snapshot_refs_main_points_to(hub_cache, saved_folder, tmp_path):
    # An older snapshot with another prior stays in the cache; main points at the newer one.
    vqvae = tiny_vqvae("image")
    older = save_pipeline_folder(tmp_path / "older", vqvae, tiny_prior(vqvae.config.code_shape, num_layers=1))
    hub_cache(older, REPO_ID, commit=OTHER_COMMIT)
    hub_cache(saved_folder, REPO_ID)
    assert quiet(pipeline("vq-sample", model=REPO_ID)).prior.config.num_layers == 2


def test_pipeline_at_a_revision_takes_the_prior_of_that_revision(hub_cache, saved_folder, tmp_path):
    vqvae = tiny_vqvae("image")
    older = save_pipeline_folder(tmp_path / "older", vqvae, tiny_prior(vqvae.config.code_shape, num_layers=1))
    hub_cache(older, REPO_ID, commit=OTHER_COMMIT)
    hub_cache(saved_folder, REPO_ID)
    assert quiet(pipeline("vq-sample", model=REPO_ID, revision=OTHER_COMMIT)).prior.config.num_layers == 1


def test_cached_repo_without_prior(hub_cache, tmp_path):
    hub_cache(save_pipeline_folder(tmp_path / "vqvae-only", tiny_vqvae("image"), prior=None), REPO_ID)
    with pytest.raises(ValueError, match=r"No prior found at org/vqvae-tiny \(subfolder 'prior'\)"):
        pipeline("vq-sample", model=REPO_ID)


def test_uncached_repo_is_not_found_offline(hub_cache):
    with pytest.raises(OSError, match="couldn't find them in the cached files"):
        VQVAEModel.from_pretrained("org/not-cached")
