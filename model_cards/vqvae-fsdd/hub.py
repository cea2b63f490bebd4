# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Upload a training run's hub-ready output folder."""

from pathlib import Path

from huggingface_hub import HfApi

# Resumable state and local logs stay out of the Hub repo.
HUB_IGNORE_PATTERNS = [
    "checkpoint-*",
    "prior-checkpoint-*",
    "*.partial/*",
    "training_history.jsonl",
    "prior_training_history.jsonl",
]


def push_output_dir(
    output_dir: str | Path, repo_id: str, token: str | None = None, logging_dir: str = "logs"
) -> str:
    """Create `repo_id` if needed and upload `output_dir` without its checkpoints, training histories and tracker
    logs (`logging_dir`, relative to `output_dir`); returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=output_dir,
        ignore_patterns=[*HUB_IGNORE_PATTERNS, f"{Path(logging_dir).as_posix().rstrip('/')}/*"],
        commit_message="Upload model trained with hf_vqvae",
    )
    return commit.commit_url
