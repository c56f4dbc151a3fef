"""Decode benchmark (DESIGN §5.2): the fast decoder against TikTokLive's own parse.

    .venv/bin/python benchmarks/decode.py [--seconds 2]

The corpus is the bundled session (``tests/fixtures/raw-frames.ndjson``): every TikTok frame
of it as protobuf bytes built with TikTokLiveProto (chats with emoji, gift streaks, likes,
joins, follows/shares, emotes, battles, viewer counts, rank and poll messages, stream end),
decoded in arrival order, round and round. Every decoder sees the same bytes; before timing,
the fast dicts are checked equal to TikTokLive's. Printed: messages/s of

- ``ttlp`` ``decode_payload`` (upb parse + dict, what the normalizer calls) and
  ``parse_message`` (upb parse alone, attribute access);
- ``json_format.MessageToDict`` on the same upb messages (the stock converter, for scale);
- TikTokLive: ``cls().parse(payload)`` with the TikTokLiveProto class (the client runs the
  same parse through its event subclasses) and ``cls().parse(payload).to_dict()`` (the same
  dict as ``decode_payload``);

and the ratios, plus the one-time cost of building the descriptors.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "raw-frames.ndjson"
TARGET_RATIO = 100


def load_corpus(classes: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(raw type, protobuf bytes) of every TikTok frame of the fixture session."""
    corpus = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        frame = json.loads(line)
        cls = classes.get(frame["type"])
        if cls is None:
            continue  # lifecycle frames (ControlEvent.*) are not protobuf
        data = frame["data"]
        payload = base64.b64decode(data) if isinstance(data, str) else bytes(cls.from_dict(data))
        corpus.append((frame["type"], payload))
    return corpus


def rate(fn: Callable[[str, bytes], Any], corpus: list[tuple[str, bytes]], seconds: float) -> float:
    """Messages per second of ``fn`` over ``corpus``, repeated for at least ``seconds``."""
    fn(*corpus[0])  # warm caches
    done = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for raw_type, payload in corpus:
            fn(raw_type, payload)
        done += len(corpus)
        elapsed = time.perf_counter() - started
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    from google.protobuf import json_format
    from google.protobuf.internal import api_implementation

    from ttlp.tiktok import decode, descriptors

    started = time.perf_counter()
    decode.prepare()
    first_use = time.perf_counter() - started
    rebuild = descriptors.build_schema().build_seconds  # modules imported: descriptors only

    schema = decode.schema()
    classes: dict[str, Any] = schema.roots  # raw type → TikTokLiveProto class
    decode.message_class("WebcastChatMessage")  # imports TikTokLive (needed before parsing)
    corpus = load_corpus(classes)

    for raw_type, payload in corpus:
        expected = classes[raw_type]().parse(payload).to_dict()
        assert decode.decode_payload(raw_type, payload) == expected, raw_type

    def message_to_dict(raw_type: str, payload: bytes) -> Any:
        return json_format.MessageToDict(decode.parse_message(raw_type, payload))

    def tiktoklive_parse(raw_type: str, payload: bytes) -> Any:
        return classes[raw_type]().parse(payload)

    def tiktoklive_dict(raw_type: str, payload: bytes) -> Any:
        return classes[raw_type]().parse(payload).to_dict()

    s = args.seconds
    fast_dict = rate(decode.decode_payload, corpus, s)
    fast_parse = rate(decode.parse_message, corpus, s)
    stock_dict = rate(message_to_dict, corpus, s)
    lib_parse = rate(tiktoklive_parse, corpus, s)
    lib_dict = rate(tiktoklive_dict, corpus, s)

    kinds = sorted({raw_type for raw_type, _ in corpus})
    size = sum(len(payload) for _, payload in corpus) / len(corpus)
    print(f"protobuf runtime: {api_implementation.Type()}")
    print(f"corpus: {len(corpus)} messages of {len(kinds)} types, {size:.0f} bytes on average")
    print(f"first use (import TikTokLiveProto + build descriptors): {first_use * 1000:.0f} ms")
    print(f"  descriptors alone ({len(schema.fields)} messages, {len(schema.enums)} enums): "
          f"{rebuild * 1000:.0f} ms")  # fmt: skip
    print()
    print(f"{'decoder':<44}{'messages/s':>14}")
    rows = (
        ("ttlp decode_payload (upb + dict)", fast_dict),
        ("ttlp parse_message (upb, parse only)", fast_parse),
        ("upb + json_format.MessageToDict", stock_dict),
        ("TikTokLive parse + to_dict", lib_dict),
        ("TikTokLive parse only", lib_parse),
    )
    for name, value in rows:
        print(f"{name:<44}{value:>14,.0f}")
    print()
    ratios = (
        ("dict vs dict (decode_payload / parse+to_dict)", fast_dict / lib_dict),
        ("parse vs parse (parse_message / parse)", fast_parse / lib_parse),
        ("dict vs TikTokLive parse only", fast_dict / lib_parse),
        ("fast path: parse only vs dict (to_dict cost)", fast_parse / fast_dict),
    )
    for name, value in ratios:
        print(f"{name:<48}{value:>10,.1f}×")
    verdict = "met" if fast_dict / lib_dict >= TARGET_RATIO else "NOT met"
    print(f"target ≥ {TARGET_RATIO}× (like for like): {verdict}")


if __name__ == "__main__":
    main()
