"""Which series of a study is FLAIR, T1, T1 post-contrast (T1Gd) and T2: a documented rule set.

Rules, in order, for each image series (the README's "DICOM" section repeats them):

1. Series that are not anatomical MR images are passed over: localisers / scouts, and derived
   maps (ADC, diffusion, perfusion, subtractions) recognised by their description or ImageType.
2. The series' names (SeriesDescription, ProtocolName, SequenceName), lower-cased, with `_`, `-`
   and `.` read as spaces, are matched against each modality's pattern, FLAIR first (so
   "T2 FLAIR" is FLAIR), then T1 post-contrast, T1, T2.
3. A series named T1 whose ContrastBolusAgent (or enhanced MR contrast usage) is filled in is T1
   post-contrast.
4. A series whose names say nothing is classified by its timing: an inversion time over 1500 ms
   with a repetition time over 4000 ms is FLAIR; a repetition time under 1000 ms is T1 (T1
   post-contrast with a contrast agent); a repetition time over 2000 ms with an echo time over 60 ms
   is T2.

`--series MODALITY=UID_OR_PATTERN` overrides the rules for a modality: a SeriesInstanceUID, a
series number, or a shell pattern (`*post*`) matched against the description, case-insensitively.
Several candidates for one modality, or none, are refused in one line that lists them.
"""

from __future__ import annotations

import fnmatch
import re

from kerasbrain.data.errors import DataError
from kerasbrain.data.layouts import MODALITIES

_SKIP = re.compile(r"\b(loc|localizer|localiser|scout|survey|3 plane|tri pilot|calibration|adc|dwi|diffusion|"
                   r"trace|tensor|perfusion|dsc|dce|swi|mip|subtraction|sub)\b")
_PATTERNS = {
    "FLAIR": re.compile(r"\bflair\b|\bt2f\b|\bdark fluid\b|\btirm\b"),
    "T1Gd": re.compile(r"\bt1 ?(c|ce|gd|gad|post|contrast|\+ ?c|c\+)\b|\bt1c\b|\bt1ce\b|\bt1gd\b|"
                       r"\b(post|gad|gado|gd|contrast|\+c|c\+)\b.*\bt1\b|\bt1\b.*\b(post|gad|gado|gd|contrast|\+c|c\+)"
                       r"(\b|$)|\bmprage\b.*\b(post|gd|gad)\b"),
    "T1": re.compile(r"\bt1\b|\bt1w\b|\bt1n\b|\bmprage\b|\bspgr\b|\bbravo\b"),
    "T2": re.compile(r"\bt2\b|\bt2w\b|\bt2 ?tse\b|\bt2 ?fse\b"),
}


def _names(info) -> str:
    text = " ".join((info.description, info.protocol, info.sequence)).lower()
    return re.sub(r"[_\-.]+", " ", text).strip()


def classify(info) -> tuple[str | None, str]:
    """(modality or None, the rule that decided) for one series; see the module docstring."""
    names = _names(info)
    if _SKIP.search(names) or any(t in info.image_type.upper() for t in ("LOCALIZER", "ADC", "DIFFUSION", "SUBTRACT")):
        return None, "not an anatomical image"
    for modality in ("FLAIR", "T1Gd", "T1", "T2"):
        if _PATTERNS[modality].search(names):
            if modality == "T1" and info.contrast_agent:
                return "T1Gd", "named T1, with a contrast agent"
            return modality, f"named {(info.description or info.protocol or info.sequence)!r}"
    tr, te, ti = info.repetition_time, info.echo_time, info.inversion_time
    if ti is not None and ti > 1500 and tr is not None and tr > 4000:
        return "FLAIR", f"timing (TI {ti:g} ms, TR {tr:g} ms)"
    if tr is not None and tr < 1000:
        return ("T1Gd" if info.contrast_agent else "T1"), f"timing (TR {tr:g} ms)" + (
            ", contrast agent" if info.contrast_agent else "")
    if tr is not None and tr > 2000 and te is not None and te > 60:
        return "T2", f"timing (TR {tr:g} ms, TE {te:g} ms)"
    return None, "no rule matched"


def parse_overrides(values) -> dict[str, str]:
    """`--series MODALITY=UID_OR_PATTERN` values as {modality: selector}; a bad one is one line."""
    chosen = {}
    by_name = {m.lower(): m for m in MODALITIES} | {"t1c": "T1Gd", "t1ce": "T1Gd", "t2f": "FLAIR"}
    for value in values or ():
        name, sep, selector = str(value).partition("=")
        modality = by_name.get(name.strip().lower())
        if not sep or modality is None or not selector.strip():
            raise DataError(f"--series {value}: expected MODALITY=UID_OR_PATTERN with MODALITY one of "
                            f"{', '.join(MODALITIES)}")
        chosen[modality] = selector.strip()
    return chosen


def _selected(info, selector: str) -> bool:
    if selector == info.uid or (info.number is not None and selector == str(info.number)):
        return True
    return any(fnmatch.fnmatch(text.lower(), selector.lower()) for text in (info.description, info.protocol) if text)


def assign_modalities(series: dict, overrides: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    """{modality: SeriesInfo} for the four modalities, and one line per modality saying why.

    Raises `DataError` (one line, listing the candidates) when a modality has no series or several.
    """
    overrides = overrides or {}
    verdicts = {uid: classify(info) for uid, info in series.items()}
    chosen, lines = {}, []
    for modality in MODALITIES:
        if modality in overrides:
            candidates = [info for info in series.values() if _selected(info, overrides[modality])]
            why = f"--series {modality}={overrides[modality]}"
        else:
            taken = {overrides_uid for m in overrides for overrides_uid in
                     [i.uid for i in series.values() if _selected(i, overrides[m])]}
            candidates = [info for uid, info in series.items() if verdicts[uid][0] == modality and uid not in taken]
            why = ""
        if len(candidates) != 1:
            listing = "; ".join(f"{i.label} -> {verdicts[i.uid][0] or '?'} ({verdicts[i.uid][1]})"
                                for i in series.values())
            problem = "no series" if not candidates else \
                f"{len(candidates)} series ({', '.join(i.label for i in candidates)})"
            raise DataError(f"{modality}: {problem} found; choose one with --series {modality}=UID_OR_PATTERN. "
                            f"Series in the study: {listing}")
        info = candidates[0]
        chosen[modality] = info
        lines.append(f"{modality:>5} <- series {info.label}: {why or verdicts[info.uid][1]}")
    used = [info.uid for info in chosen.values()]
    if len(set(used)) != len(used):
        raise DataError("one series was chosen for two modalities: " + "; ".join(lines))
    return chosen, lines
