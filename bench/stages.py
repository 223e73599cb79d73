"""Group a sampling profile of the connector by pipeline stage.

    python -m bench.stages PROFILE.txt [PROFILE.txt ...]

Reads py-spy's raw (collapsed-stack) output, as written by
``py-spy record --gil --threads -f raw`` around ``python -m bench.profile_connector
FEED N --sampler``, keeps the event loop's samples (main thread) and
charges each to the first stage, in the order below, that has a frame in
its stack. With ``--gil`` only samples holding the GIL are taken, so the
shares are of the Python thread's CPU, not of wall time. Prints a markdown
table of the shares.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (stage, frame substrings); the first stage with a matching frame wins
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("normalise + encode (fused, or the two-step path)",
     ("WireEncoder.encode_payload", "WireEncoder.encode ", "normalize_for_wire")),
    ("JSON + frame decode", ("decode_stream_frame", "decode_lifecycle_frame",
                             "decode_sse_event")),
    ("bridge: route, dedupe, key, headers, record", ("Bridge.process",)),
    ("produce: librdkafka enqueue + pending table", ("KafkaSink.produce", "KafkaSink.send")),
    ("delivery reports: poll, callbacks, ack metrics",
     ("KafkaSink.poll", "KafkaSink.serve_delivery_reports")),
    ("socket: aiohttp frames, reader, hand-off",
     ("_read_ready", "WebSocketReader", "ClientWebSocketResponse")),
    ("worker loop (batches from the hand-off)", ("Connector._work",)),
]
OTHER = "event loop, start-up and the rest"


def stage_of(frames: list[str]) -> str:
    for name, needles in STAGES:
        for frame in frames:
            if any(needle in frame for needle in needles):
                return name
    return OTHER


def summarise(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        # with --threads the first frame names the thread: keep the main one
        if frames[0].startswith("thread (") and "MainThread" not in frames[0]:
            continue
        # the connector's event loop (not the harness around it)
        if not any("run_forever" in f for f in frames):
            continue
        counts[stage_of(frames)] += int(count)
    return counts


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    tables = [(Path(p).stem, summarise(Path(p))) for p in argv]
    names = [name for name, _ in STAGES] + [OTHER]
    print("| stage | " + " | ".join(stem for stem, _ in tables) + " |")
    print("|---|" + "---:|" * len(tables))
    for name in names:
        cells = [f"{100 * c[name] / max(1, sum(c.values())):.0f}%" for _, c in tables]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| samples | " + " | ".join(str(sum(c.values())) for _, c in tables) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
