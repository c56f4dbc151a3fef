"""The forwarder (DESIGN §8): matching events → signed HTTP POSTs to targets, retried durably.

``signing`` (the header scheme receivers verify), ``store`` (targets and the delivery queue),
``dispatcher`` (the batch handler and the per-target workers), ``dlq`` (``ttlp dlq``).
"""
