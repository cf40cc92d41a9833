"""Benchmarks (not timed tests): ``python -m benchmarks.generation --json``, ``python -m benchmarks.finetune --json``,
``python -m benchmarks.judge_agreement --json`` (judges against people, with the published evaluators alongside);
``python -m benchmarks.gpu_check`` checks the GPU paths on one CUDA GPU (exit status 2 without one)."""
