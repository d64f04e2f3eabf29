"""Where the suite's time goes, read off a `tests/run_all.sh --durations=0` log; two logs compared.

    python bench/suite_durations.py LOG [--top 40]      # seconds per test file, each backend's half
    python bench/suite_durations.py OLD_LOG NEW_LOG     # a slower machine hour, or tests that got slower?

The suite's wall time drifts by a third between identical runs on the same machine kind (README,
tests/ entry), so a longer run alone says little. Compared test by test, a slower machine shows as
every test slower by about the same factor (the median ratio); a regression shows as a few tests far
above that factor. Only tests timed in both logs are compared; pytest leaves out those under 5 ms.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics

HALF = re.compile(r"^== KERAS_BACKEND=(\w+): (?:passed|FAILED)", re.M)
TIMING = re.compile(r"^([\d.]+)s (setup|call|teardown) +(\S.*?) *$", re.M)  # ids may hold spaces


def read_durations(path):
    """{(backend, test id): seconds of setup, call and teardown}; the test id without parameters kept."""
    text = open(path, encoding="utf-8", errors="replace").read()
    halves = list(HALF.finditer(text))
    if not halves:
        raise SystemExit(f"{path}: no '== KERAS_BACKEND=...: passed' line; not a tests/run_all.sh log")
    seconds = collections.defaultdict(float)
    for i, half in enumerate(halves):
        end = halves[i + 1].start() if i + 1 < len(halves) else len(text)
        for match in TIMING.finditer(text, half.end(), end):
            seconds[(half.group(1), match.group(3))] += float(match.group(1))
    return dict(seconds)


def by_file(durations):
    """{test file: {backend: seconds}}, the files in order of their time on both backends together."""
    files = collections.defaultdict(lambda: collections.defaultdict(float))
    for (backend, test), s in durations.items():
        files[test.split("::")[0]][backend] += s
    return dict(sorted(files.items(), key=lambda kv: -sum(kv[1].values())))


def file_table(durations, top):
    backends = sorted({b for b, _ in durations})
    lines = ["  ".join(f"{b:>10}" for b in backends) + "  file"]
    for name, per in list(by_file(durations).items())[:top]:
        lines.append("  ".join(f"{per.get(b, 0.0):10.1f}" for b in backends) + f"  {name}")
    totals = {b: sum(s for (bb, _), s in durations.items() if bb == b) for b in backends}
    lines.append("  ".join(f"{totals[b]:10.1f}" for b in backends) + "  all tests timed")
    return lines


def compare(old, new, top, floor=1.0):
    """The median new/old ratio over tests timed in both (above `floor` seconds in the old log), and the
    tests furthest above it by the seconds they added beyond that factor."""
    shared = [k for k in old if k in new and old[k] >= floor]
    if not shared:
        return ["no test timed in both logs"]
    factor = statistics.median(new[k] / old[k] for k in shared)
    extra = sorted(shared, key=lambda k: -(new[k] - factor * old[k]))
    lines = [f"{len(shared)} tests timed in both (>= {floor:g} s before): median new/old {factor:.2f}; "
             f"all of them {sum(old[k] for k in shared):.0f} s -> {sum(new[k] for k in shared):.0f} s",
             f"furthest above the median factor (seconds beyond {factor:.2f}x the old time):"]
    for k in extra[:top]:
        if new[k] - factor * old[k] <= 0:
            break
        lines.append(f"{new[k] - factor * old[k]:8.1f}  {old[k]:7.1f} -> {new[k]:7.1f}  {k[0]:10}  {k[1]}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", metavar="LOG", help="one log to summarise, or OLD NEW to compare")
    parser.add_argument("--top", type=int, default=40, help="how many rows (default 40)")
    args = parser.parse_args(argv)
    if len(args.logs) > 2:
        parser.error("give one log, or two to compare")
    durations = [read_durations(p) for p in args.logs]
    lines = file_table(durations[0], args.top) if len(durations) == 1 else compare(*durations, args.top)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
