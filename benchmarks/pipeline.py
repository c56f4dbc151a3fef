"""Pipeline benchmark (DESIGN §12); the code lives in ``ttlp.bench`` so ``ttlp bench`` runs it
from an installed wheel too. ``python benchmarks/pipeline.py --help`` for the options."""

from __future__ import annotations

from ttlp.bench import cli

if __name__ == "__main__":
    cli()
