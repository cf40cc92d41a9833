"""LoRA fine-tuning on a dataset's fine-tune pool, with a content-addressed adapter store.

result = train_adapter("bundled:smollm2-135m-instruct", "qasper", 200)
tuned = load_model(f"bundled:smollm2-135m-instruct+lora:{result.path}")
"""

from ._config import FinetuneConfig
from ._train import (
    AdapterResult,
    PoolTooSmall,
    answer_loss,
    encode_pair,
    pad_collator,
    pairs_from_file,
    qlora_unavailable,
    render_pair,
    stored_adapter,
    train_adapter,
    training_pairs,
)

__all__ = [
    "AdapterResult",
    "FinetuneConfig",
    "PoolTooSmall",
    "answer_loss",
    "encode_pair",
    "pad_collator",
    "pairs_from_file",
    "qlora_unavailable",
    "render_pair",
    "stored_adapter",
    "train_adapter",
    "training_pairs",
]
