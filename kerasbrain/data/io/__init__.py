"""The input-format registry: every way a case arrives (NIfTI, DICOM, pictures) is one `InputFormat`.

A format owns what is particular to it: which inputs it recognises (and which uploads, by name),
how it lists the cases in a folder, how it loads a volumetric case into the format-neutral
`kerasbrain.data.layouts.Case` (RAS+ arrays, spacing, world geometry, and in `Case.source` what
writing back needs), and how results are named and written in the input's own terms. A family
names the kind it takes (`"volume"` or `"image"`); `predict`, `predict --input DIR`, the app and
the command line's format flags go through this registry, so a new format is one file plus one
`register_input_format` call (`tests/data/toy_format.py` proves it).

Nothing here imports Keras, TensorFlow, nibabel or pydicom; each format imports its readers when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kerasbrain.data.errors import DataError


@dataclass(frozen=True)
class InputOption:
    """A format-specific `kerasbrain predict` flag, declared without importing click."""

    name: str  # keyword in `PredictRequest.input_options`; the flag is --name-with-dashes
    type: type  # str, int, float or bool (a flag)
    help: str
    multiple: bool = False
    default: object = None
    reading: bool = True  # how inputs are read (also `data convert`'s flag), not how results are written


class InputFormat:
    """Base class of an input format; subclasses set the attributes and override what applies."""

    name: str = ""
    kind: str = ""  # "volume" or "image": which families take it (ModelFamily.input_kind)
    description: str = ""  # what a user gives, for messages ("a DICOM study: a folder or a .zip")
    upload_suffixes: tuple[str, ...] = ()  # names the app takes as this format (lower case)
    output_suffixes: tuple[str, ...] = ()  # what `--out` may end with for one case; the first is the default
    options: tuple[InputOption, ...] = ()

    def recognises(self, inputs: list[Path]) -> bool:
        """Whether these `--input` paths are one case of this format."""
        return False

    def check_upload(self, paths: list[Path]) -> tuple[Path, ...]:
        """The uploaded files as `load` wants them; raises `DataError` with one line otherwise."""
        if len(paths) != 1:
            raise DataError(f"{self.description} is one file; {len(paths)} were uploaded")
        return tuple(paths)

    def list_cases(self, folder: Path) -> list[tuple[str, tuple[Path, ...]]]:
        """The cases of this format in `folder` as (name, inputs) pairs; [] when it holds none."""
        return []

    def labelled_cases(self, folder: Path, options: dict | None = None) -> list[tuple[str, object]]:
        """The cases in `folder` for `evaluate`, as (name, load) pairs with `load()` -> Case; [] when none.

        By default every listed case; `evaluate` scores those whose loaded case carries labels.
        """
        from functools import partial

        return [(name, partial(self.load, inputs, options)) for name, inputs in self.list_cases(folder)]

    def load(self, inputs, options: dict | None = None, progress=None):
        """Load one volumetric case as a `kerasbrain.data.layouts.Case` (image formats: the family reads)."""
        raise DataError(f"{self.name} inputs are read by the model family itself")

    def output_name(self, name: str) -> str:
        """The result's file name for case `name` when a folder is predicted."""
        return f"{name}_seg{self.output_suffixes[0]}" if self.output_suffixes else f"{name}.png"

    def check_output(self, out: Path) -> None:
        """Refuse an `--out` this format cannot write, before anything runs."""
        if self.output_suffixes and not str(out).lower().endswith(self.output_suffixes):
            raise ValueError(f"--out must end with {' or '.join(self.output_suffixes)} for {self.description}. "
                             f"Received: {out}")

    def stem(self, out: Path) -> str:
        """`out`'s name without its format suffix (pictures and extra files are named from it)."""
        name = Path(out).name
        for suffix in sorted(self.output_suffixes, key=len, reverse=True):
            if name.lower().endswith(suffix):
                return name[: -len(suffix)]
        return Path(out).stem

    def write(self, case, labels, out: Path, probabilities=None, layout: str | None = None, model: str = "",
              run: str = "", options: dict | None = None) -> list[Path]:
        """Write a volumetric result (internal labels, canonical RAS grid) in the input's own terms."""
        raise DataError(f"{self.name} results are written by the model family itself")

    def write_maps(self, case, maps: dict, out: Path, model: str = "") -> list[Path]:
        """Write per-voxel maps (name -> canonical (X, Y, Z, C) float) beside `out` as
        `<stem>_<name>.nii.gz` in the input's voxel grid (uncertainty maps; any volumetric format)."""
        import numpy as np

        from kerasbrain.data.nifti import from_canonical, save_nifti

        out = Path(out)
        return [save_nifti(out.with_name(f"{self.stem(out)}_{name}.nii.gz"), from_canonical(value, case.grid),
                           case.grid, np.float32) for name, value in maps.items()]

    def __repr__(self):
        return f"<input format {self.name!r}>"


_FORMATS: list[InputFormat] = []
_BUILTIN = ("kerasbrain.data.io.dicom", "kerasbrain.data.io.nifti", "kerasbrain.data.io.pictures")
_loaded = False


def register_input_format(fmt: InputFormat, first: bool = False) -> InputFormat:
    """Add a format (a plug-in or a test's toy); `first` makes it recognised before the others."""
    _ensure_builtin()
    _FORMATS[:] = [f for f in _FORMATS if f.name != fmt.name]
    _FORMATS.insert(0, fmt) if first else _FORMATS.append(fmt)
    return fmt


def unregister_input_format(name: str) -> None:
    _FORMATS[:] = [f for f in _FORMATS if f.name != name]


def _ensure_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for module in _BUILTIN:
        _FORMATS.append(importlib.import_module(module).FORMAT)


def input_formats(kind: str | None = None) -> list[InputFormat]:
    """The registered formats (of one kind), in the order they are tried."""
    _ensure_builtin()
    return [f for f in _FORMATS if kind is None or f.kind == kind]


def get_input_format(name: str) -> InputFormat:
    for fmt in input_formats():
        if fmt.name == name:
            return fmt
    raise KeyError(f"no input format {name!r}; known: {', '.join(f.name for f in input_formats())}")


def format_of(inputs, kind: str) -> InputFormat:
    """The format of `kind` that recognises these inputs; one line naming what is accepted otherwise."""
    paths = [Path(p) for p in inputs]
    for fmt in input_formats(kind):
        if fmt.recognises(paths):
            return fmt
    accepted = "; ".join(f.description for f in input_formats(kind))
    names = ", ".join(str(p) for p in paths)
    raise DataError(f"{names}: not an input this model takes ({accepted})")


def format_of_upload(paths) -> InputFormat | None:
    """The format whose upload names these files all have (None when they have none or several)."""
    found = set()
    for path in paths:
        name = Path(path).name.lower()
        matches = [f for f in input_formats() if name.endswith(f.upload_suffixes)]
        if not matches:
            return None
        found.add(matches[0].name)
    return get_input_format(found.pop()) if len(found) == 1 else None


def _first_with_cases(folder, kind: str, cases_of, none_found: str) -> list[tuple]:
    """(name, item, format) rows from the first format of `kind` whose `cases_of(format, folder)` finds any."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    for fmt in input_formats(kind):
        cases = cases_of(fmt, folder)
        if cases:
            return [(name, item, fmt) for name, item in cases]
    accepted = "; ".join(f.description for f in input_formats(kind))
    raise DataError(f"{folder}: {none_found} ({accepted})")


def list_cases(folder, kind: str) -> list[tuple[str, tuple[Path, ...], InputFormat]]:
    """Every case in `folder` of any format of `kind`, as (name, inputs, format); the first format wins."""
    return _first_with_cases(folder, kind, lambda fmt, f: fmt.list_cases(f), "no cases found")


def labelled_cases(folder, kind: str, options: dict | None = None) -> list[tuple[str, object, InputFormat]]:
    """The cases `evaluate` scores in `folder`, as (name, load, format), from the first format that has any;
    `options`: the input-format flags to read them with (DICOM's series choice, say)."""
    # without options a plug-in format written before they existed (labelled_cases(folder)) still works
    return _first_with_cases(folder, kind, lambda fmt, f: fmt.labelled_cases(f, options) if options else
                             fmt.labelled_cases(f),
                             "no dataset found: expected MSD Task01 (dataset.json, imagesTr/, labelsTr/), BraTS "
                             "case folders, or labelled cases of another format")


def names_one_output(out) -> bool:
    """Whether `--out` names one result file (any format's output suffix) rather than a folder."""
    suffixes = tuple(s for f in input_formats() for s in f.output_suffixes) + (".nii",)
    return Path(out).name.lower().endswith(suffixes)


def all_options() -> list[InputOption]:
    """Every format's flags, once each (for `kerasbrain predict`)."""
    seen, options = set(), []
    for fmt in input_formats():
        for option in fmt.options:
            if option.name not in seen:
                seen.add(option.name)
                options.append(option)
    return options
