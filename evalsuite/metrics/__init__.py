"""Metrics that need no model: answer overlap with gold answers, retrieval recall, paired statistics."""
from evalsuite.metrics._stats import PairedStats, bootstrap_ci, paired_stats, spearman, wilcoxon_p
from evalsuite.metrics._text import (
    exact_match,
    normalize_answer,
    recall_at_k,
    reference_metrics,
    rouge_l,
    token_f1,
    token_precision,
    token_recall,
    yes_no_answer,
    yes_no_correct,
)

__all__ = [
    "PairedStats",
    "bootstrap_ci",
    "exact_match",
    "normalize_answer",
    "paired_stats",
    "recall_at_k",
    "reference_metrics",
    "rouge_l",
    "spearman",
    "token_f1",
    "token_precision",
    "token_recall",
    "wilcoxon_p",
    "yes_no_answer",
    "yes_no_correct",
]
