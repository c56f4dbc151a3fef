"""Route handlers, one module per area; ``ttlp.api.app`` mounts them."""
