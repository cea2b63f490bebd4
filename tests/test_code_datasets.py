"""The cache of encoded code grids: reused when present, never left half-written, and safe when two runs encode
the same data at once."""

from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from hf_vqvae.training.code_datasets import load_or_encode_codes


def grids() -> Dataset:
    return Dataset.from_dict({"codes": [[[1, 2], [3, 4]]]}).with_format("torch")


def test_cached_codes_are_reused_without_encoding(tmp_path):
    load_or_encode_codes(tmp_path, "fingerprint", {"train": grids})

    def must_not_encode():
        raise AssertionError("encoded again although the codes were cached")

    codes = load_or_encode_codes(tmp_path, "fingerprint", {"train": must_not_encode})
    assert codes["train"][:]["codes"].tolist() == [[[1, 2], [3, 4]]]


def test_a_run_that_finishes_encoding_second_keeps_the_first_runs_cache(tmp_path):
    def encode_while_another_run_caches_the_same_codes():
        load_or_encode_codes(tmp_path, "fingerprint", {"train": grids})
        return grids()

    codes = load_or_encode_codes(
        tmp_path, "fingerprint", {"train": encode_while_another_run_caches_the_same_codes}
    )

    assert codes["train"][:]["codes"].tolist() == [[[1, 2], [3, 4]]]
    assert [path.name for path in tmp_path.iterdir()] == ["fingerprint"]


def test_a_failed_write_leaves_no_partial_cache_behind(tmp_path, monkeypatch):
    def disk_full(self, path, **kwargs):
        (Path(path) / "half-written").write_text("")
        raise OSError("No space left on device")

    monkeypatch.setattr(DatasetDict, "save_to_disk", disk_full)
    with pytest.raises(OSError, match="No space left"):
        load_or_encode_codes(tmp_path, "fingerprint", {"train": grids})
    assert list(tmp_path.iterdir()) == []
