"""OBS overlays (DESIGN §7.5): read-only, per-streamer, revocable tokens and their options,
uploaded alert sounds, what an overlay shows when it opens, and the watch that tells open
overlays about changes (options, skip, revocation) on every api replica.

``store`` (tables), ``options`` (the options' Structs), ``audio`` (sound files by magic
bytes), ``queries`` (the state an overlay opens with), ``hub`` (tokens presented, open feeds,
rate-limit keys); the routes are ``ttlp.api.routes.overlays`` (management, logged in) and
``ttlp.api.routes.overlay`` (the OBS browser sources, by token).
"""
