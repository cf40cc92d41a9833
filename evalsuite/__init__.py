"""evalsuite: does this fine-tune make our RAG answers better or worse than the un-tuned model?"""

from evalsuite._telemetry import quiet_third_parties

quiet_third_parties()  # before any package with usage telemetry is imported (see evalsuite._telemetry)
