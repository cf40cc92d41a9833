"""Fine-tuning hyperparameters: a frozen dataclass with help text, validated on creation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from evalsuite.errors import ConfigError

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that shapes a LoRA adapter; every field is part of the adapter's store key."""

    epochs: float = field(default=3.0, metadata=_help("passes over the training pairs"))
    per_device_batch_size: int = field(default=4, metadata=_help("pairs per forward pass on each device"))
    gradient_accumulation: int = field(
        default=1, metadata=_help("forward passes per optimizer step; effective batch = batch size x this x devices")
    )
    learning_rate: float = field(default=2e-4, metadata=_help("peak AdamW learning rate"))
    lr_scheduler: str = field(default="linear", metadata=_help("learning-rate schedule: " + ", ".join(SCHEDULERS)))
    warmup_ratio: float = field(
        default=0.0, metadata=_help("share of the steps spent warming the learning rate up, in [0, 1)")
    )
    lora_r: int = field(default=16, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=32, metadata=_help("LoRA scaling numerator (scale = alpha / r)"))
    lora_dropout: float = field(default=0.05, metadata=_help("dropout on the LoRA input, in [0, 1)"))
    target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"), metadata=_help("names of the linear layers that get adapters")
    )
    max_seq_length: int = field(
        default=1024, metadata=_help("longest training sequence in tokens; longer prompts lose their oldest tokens")
    )
    seed: int = field(default=0, metadata=_help("seed of adapter initialisation, shuffling and dropout"))
    precision: str = field(default="auto", metadata=_help("auto (bf16 where the hardware has it), bf16 or fp32"))
    quantization: str = field(
        default="none", metadata=_help("none, or qlora: 4-bit NF4 base weights (CUDA + bitsandbytes)")
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        for name in ("epochs", "learning_rate", "warmup_ratio", "lora_dropout"):  # 1 and 1.0 are one key
            value = getattr(self, name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        problems = []
        if not self.epochs > 0:
            problems.append(f"epochs must be > 0, got {self.epochs}")
        for name in ("per_device_batch_size", "gradient_accumulation", "lora_r", "lora_alpha", "max_seq_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a whole number >= 1, got {value!r}")
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.lr_scheduler not in SCHEDULERS:
            problems.append(f"lr_scheduler must be one of {', '.join(SCHEDULERS)}, got {self.lr_scheduler!r}")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            problems.append("target_modules must name at least one layer, e.g. q_proj,v_proj")
        if self.max_seq_length < 16:
            problems.append(f"max_seq_length must be >= 16, got {self.max_seq_length}")
        if self.precision not in ("auto", "bf16", "fp32"):
            problems.append(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.quantization not in ("none", "qlora"):
            problems.append(f"quantization must be none or qlora, got {self.quantization!r}")
        if problems:
            raise ConfigError("invalid fine-tuning config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FinetuneConfig":
        """The config of plain options. ``effective_batch_size`` (pairs per optimizer step, as the study
        states it) may stand for ``gradient_accumulation``: the accumulation steps follow from it and
        ``per_device_batch_size``."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - {"effective_batch_size"})
        if unknown:
            raise ConfigError(
                f"unknown fine-tuning setting(s) {', '.join(unknown)}: use "
                f"{', '.join(sorted(known | {'effective_batch_size'}))}"
            )
        if "effective_batch_size" in data:
            effective = data.pop("effective_batch_size")
            batch = data.get("per_device_batch_size", cls.per_device_batch_size)
            if not isinstance(effective, int) or isinstance(effective, bool) or effective < 1:
                raise ConfigError(
                    f"invalid fine-tuning config: effective_batch_size must be a whole number >= 1, got {effective!r}"
                )
            if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1 or effective % batch:
                raise ConfigError(
                    f"invalid fine-tuning config: effective_batch_size {effective} is not a multiple of "
                    f"per_device_batch_size {batch!r}; choose sizes whose ratio is a whole number"
                )
            steps = effective // batch
            if data.get("gradient_accumulation", steps) != steps:
                raise ConfigError(
                    f"invalid fine-tuning config: effective_batch_size {effective} with "
                    f"per_device_batch_size {batch} needs gradient_accumulation {steps}, not "
                    f"{data['gradient_accumulation']}; give one of the two"
                )
            data["gradient_accumulation"] = steps
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Sorted plain data (lists for tuples), as written in the adapter manifest."""
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return dict(sorted(data.items()))

    @property
    def effective_batch_size(self) -> int:
        """Pairs per optimizer step on one device (multiply by the device count under ``accelerate launch``)."""
        return self.per_device_batch_size * self.gradient_accumulation

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
