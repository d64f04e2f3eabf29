"""Every figure the README publishes points at a file that exists: result files under bench/results*/
(glob patterns such as `results_cpu_2026-11-2[67]` included) and every picture it shows."""

import glob
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def named_results(text: str) -> set[str]:
    """The bench/results* paths a text names (the bare folder family in prose left out)."""
    paths = set()
    for match in re.finditer(r"bench/results[A-Za-z0-9_.\-/\[\]*]*", text):
        path = match.group(0).rstrip(".,")
        if path.rstrip("/") not in ("bench/results", "bench/results*"):
            paths.add(path)
    return paths


def missing_results(text: str) -> list[str]:
    return sorted(p for p in named_results(text) if not glob.glob(str(ROOT / p)))


def test_every_result_file_the_readme_names_exists():
    assert len(named_results(README)) > 20  # the README cites its figures
    assert not missing_results(README), "README names result files that do not exist"


def test_every_picture_the_readme_shows_exists():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert len(pictures) > 5
    missing = [p for p in pictures if not (ROOT / p).is_file()]
    assert not missing, f"README shows pictures that do not exist: {missing}"


def test_the_check_finds_a_named_file_that_is_not_there():
    text = ("measured (`bench/results_cpu_2026-12-05/serving_case.jsonl`, `bench/results_cpu_1999-01-01/none.jsonl`),"
            " results under bench/results*/ and `bench/results_cpu_2026-11-2[67]/race2d.jsonl`.")
    assert named_results(text) == {"bench/results_cpu_2026-12-05/serving_case.jsonl",
                                   "bench/results_cpu_1999-01-01/none.jsonl",
                                   "bench/results_cpu_2026-11-2[67]/race2d.jsonl"}
    assert missing_results(text) == ["bench/results_cpu_1999-01-01/none.jsonl"]


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def test_every_contents_link_leads_to_a_heading():
    anchors = {github_anchor(h) for h in re.findall(r"^#{2,3} (.+)$", README, flags=re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert len(links) > 15 and not sorted(set(links) - anchors), "README links to headings it does not have"
    assert github_anchor("Plan a training (nnU-Net's way) / `data plan`") == "plan-a-training-nnu-nets-way--data-plan"
