"""Shared test support: fixtures and helpers every test directory may use (STYLE "Tests").

Registered as one pytest plugin (``tests/conftest.py`` names ``tests.support.plugin``), so its
fixtures need no import; test modules import the helpers (classes, functions, constants) from
the module that holds them. A test module never imports another test module or a conftest.

- ``paths``: the repository and its ``tests/fixtures`` folder.
- ``services``: real Redis and PostgreSQL (skipped with a reason, failed under ``CI=true``),
  key prefixes, throw-away databases, key cleanup.
- ``wait``: ``wait_for``, polling a condition with a deadline; ``free_port``.
- ``databases``: migrated SQLite and PostgreSQL databases, the ``backend`` parameter, engines.
- ``buses``: the bus fixture over both backends.
- ``processes``: ``ttlp`` as a subprocess (``Ttlp``) on the embedded or the real services.
- ``api``: the api role's app on a real server (``ApiHarness``) over both backends.
- ``http``: what every API error answer must look like.
- ``events``: factories of UnifiedEvent and RawFrame Structs.
- ``fakes``: fixtures around ``tests/fakes`` (the fake TikTok, the fake Euler REST API).
- ``containers``: the Dockerfile (parsed), the build context, the Compose files.
- ``browser``: ``ttlp run`` for the UI, Debian's Chromium under Playwright, page helpers.
- ``faults``: a Redis server and a PostgreSQL role of a test's own, to break (``tests/faults``).
"""
