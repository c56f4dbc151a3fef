"""The rule engine's parts, which know nothing about roles (DESIGN §8).

``jsonlogic``: conditions, validated at rule creation and compiled for evaluation per event.
``templates``: announce and webhook text, ``{token}`` placeholders plus sandboxed Jinja2.

Import the modules themselves; this package re-exports nothing, so importing one part does not
pull in the others (Jinja2 is only loaded by ``templates``).
"""
