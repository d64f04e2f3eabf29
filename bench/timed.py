"""Wall-clock time of any command, kept as a result line (for figures like "finishes in N minutes").

    python bench/timed.py --json bench/results_X/timed.jsonl -- kerasbrain experiment lgg-compare ... --quick
    python bench/timed.py --label "before: 8f8ab18" --json ... -- kerasbrain train ...   # a labelled line

Runs the command as given (its output streams through), then appends its wall seconds, exit status
and the machine to the JSON file. The exit status is the command's.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from common import add_json_option, record  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json_option(parser)
    parser.add_argument("--label", default="", help="kept with the line: which tree or setting was timed")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to time after --")
    start = time.perf_counter()
    status = subprocess.call(command)
    seconds = time.perf_counter() - start
    line = record(args.json, "timed", command=" ".join(command), seconds=round(seconds, 1), exit_status=status,
                  **({"label": args.label} if args.label else {}))
    print(f"{line['command']}: {seconds / 60:.1f} min (exit {status})")
    sys.exit(status)


if __name__ == "__main__":
    main()
