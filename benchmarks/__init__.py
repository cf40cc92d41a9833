"""Throughput benchmarks (not timed tests): ``python -m benchmarks.generation --json``, ``python -m benchmarks.finetune --json``."""
