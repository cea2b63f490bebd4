"""Upload a training run's hub-ready output folder."""

from pathlib import Path

from huggingface_hub import HfApi

# Resumable state and local logs stay out of the Hub repo.
HUB_IGNORE_PATTERNS = [
    "checkpoint-*",
    "prior-checkpoint-*",
    "*.partial/*",
    "logs/*",
    "training_history.jsonl",
]


def push_output_dir(output_dir: str | Path, repo_id: str, token: str | None = None) -> str:
    """Create `repo_id` if needed and upload `output_dir` without its checkpoints; returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=output_dir,
        ignore_patterns=HUB_IGNORE_PATTERNS,
        commit_message="Upload model trained with hf_vqvae",
    )
    return commit.commit_url
