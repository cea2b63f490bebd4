"""Uploading a training run's output folder: what goes to the Hub and what stays local."""

from huggingface_hub.utils import filter_repo_objects

from hf_vqvae.pipelines import hub


class RecordingApi:
    """Stands in for `HfApi`: records the upload instead of making it."""

    calls = []

    def __init__(self, token=None):
        pass

    def create_repo(self, repo_id, exist_ok=False):
        pass

    def upload_folder(self, **kwargs):
        RecordingApi.calls.append(kwargs)
        return type("Commit", (), {"commit_url": "https://huggingface.co/org/model/commit/0"})()


def test_push_leaves_out_checkpoints_histories_and_tracker_logs(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "HfApi", RecordingApi)
    hub.push_output_dir(tmp_path, "org/model", logging_dir="runs/tb")
    files = [
        "config.json",
        "model.safetensors",
        "prior/config.json",
        "prior/model.safetensors",
        "README.md",
        "samples/sample_grid.png",
        "checkpoint-500/model.safetensors",
        "prior-checkpoint-300/prior/config.json",
        "checkpoint-600.partial/model.safetensors",
        "training_history.jsonl",
        "prior_training_history.jsonl",
        "runs/tb/events.out.tfevents",
    ]
    uploaded = filter_repo_objects(files, ignore_patterns=RecordingApi.calls[-1]["ignore_patterns"])
    assert list(uploaded) == files[:6]
