"""Storage: the schema (``tables``), engines and URLs (``engine``), migrations (``migrate``) and
the one writer of the event tables (``store.Store``). Nothing here connects at import time."""
