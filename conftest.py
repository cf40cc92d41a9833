"""Shared pytest set-up: offline model hubs, no telemetry, cores shared between xdist workers.

The evaluation matrix plugin comes with the package (entry point ``pytest11``)."""
import os

for _var, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_var, _value)


def pytest_configure(config):
    from evalsuite.pytest_plugin import share_cores_between_workers

    share_cores_between_workers(config)  # the library's tests too
