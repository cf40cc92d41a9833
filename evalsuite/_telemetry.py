"""Nothing leaves the machine unasked: the usage telemetry of packages evalsuite runs beside is off.

Importing evalsuite (the library, the ``evalsuite`` command, the pytest plugin) sets each
package's documented opt-out variable unless it is already set, so a team's own value wins. The
packages: deepeval (usage telemetry through PostHog, Sentry and OpenTelemetry, and a public-IP
lookup at import; error reporting only when ``ERROR_REPORTING=YES``), the Hugging Face hub
(``transformers``, ``datasets``, ``huggingface_hub``), Gradio and Chroma, and every tool that
honours ``DO_NOT_TRACK``. ``EVALSUITE_ALLOW_TELEMETRY=1`` leaves them all as they are.

pytest loads the plugins of installed packages in an order no package controls: deepeval's own
pytest plugin (named ``plugins``) imports deepeval, and with it its telemetry, when pytest starts,
possibly before evalsuite's plugin. The plugin then warns; pass ``-p no:plugins`` (this
repository's ``addopts`` does) or set ``DEEPEVAL_TELEMETRY_OPT_OUT=YES`` in the CI environment.
"""

from __future__ import annotations

import os
import sys

ALLOW = "EVALSUITE_ALLOW_TELEMETRY"
OPT_OUTS = {
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",  # deepeval: PostHog, Sentry, OpenTelemetry and the IP lookup
    "TELEMETRY_OPT_OUT": "YES",  # deepeval: its exception hook reporting to Sentry
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub, transformers, datasets
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb
    "DO_NOT_TRACK": "1",  # the cross-tool convention (consoledonottrack.com)
}


def telemetry_allowed() -> bool:
    return os.environ.get(ALLOW, "").strip().lower() in ("1", "yes", "true")


_EARLY: list[str] = []  # packages whose telemetry had started before evalsuite was imported


def quiet_third_parties() -> None:
    """Set every opt-out variable that is not set yet (nothing when the user allowed telemetry)."""
    if telemetry_allowed():
        return
    if "deepeval.telemetry" in sys.modules and os.environ.get("DEEPEVAL_TELEMETRY_OPT_OUT") != "YES":
        _EARLY.append("deepeval")
    for name, value in OPT_OUTS.items():
        os.environ.setdefault(name, value)


def imported_too_early() -> list[str]:
    """Packages imported, with their telemetry on, before evalsuite could turn it off."""
    return list(_EARLY)
