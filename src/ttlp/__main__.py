from __future__ import annotations

from ttlp.cli import main

main()
