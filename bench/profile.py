"""Summarise py-spy raw (folded) profiles: ``python -m bench.profile FILE...``.

Prints, per file, the functions with the most samples on top of the stack (self) and the most
samples anywhere in the stack (inclusive): the hot spots of a measured process.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def summarise(path: Path, top: int = 15) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        # py-spy names frames "function (file:line)": group by function
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return f"{path.name}: no samples"
    out = [f"{path.name}: {total} samples", "  self:"]
    out += [f"    {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    out.append("  inclusive:")
    out += [f"    {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    for path in args.files:
        print(summarise(path, args.top))


if __name__ == "__main__":
    main()
