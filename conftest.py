"""Shared pytest set-up: offline model hubs, no telemetry, and the evaluation matrix plugin."""
import os

for _var, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_var, _value)

pytest_plugins = ["fixtures.matrix_plugin"]


def pytest_configure(config):
    """Under pytest-xdist, share the cores between workers: torch's OpenMP threads spin while
    waiting, so two workers with a thread per core each run many times slower than one."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    workers = int(workerinput.get("workercount", 1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
