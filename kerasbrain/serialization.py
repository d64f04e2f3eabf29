"""One decorator that registers kerasbrain's Keras objects under a fixed package name.

Saved `.keras` files refer to objects as "kerasbrain>ClassName"; renaming a registered class or
changing this package name would break every saved model, so neither may change. `check_archive`
refuses `.keras` files that are not what Keras writes, before Keras opens them.
"""

import keras

PACKAGE = "kerasbrain"


def register(cls):
    """Register `cls` for `.keras` (de)serialization under `kerasbrain>ClassName`."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


class ModelFileError(ValueError):
    """A `.keras` file that is not a plain Keras archive (the message names the file and the reason)."""


#: What a Keras 3 `.keras` archive holds; anything else is refused before Keras reads the file.
ARCHIVE_FILES = ("config.json", "metadata.json", "model.weights.h5", "model.weights.npz")
ARCHIVE_FOLDERS = ("assets/",)


def check_archive(path) -> None:
    """Refuse a `.keras` file that is not the zip Keras writes: not a zip, a member whose name leaves
    the archive (`../`, an absolute path), an unexpected member, or a pickle inside.

    Keras itself loads in safe mode (no `Lambda` code, no unregistered classes); this check covers
    what safe mode does not look at, so a model file from a colleague or the web cannot smuggle in
    files or pickled code.
    """
    import posixpath
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras archive (a .keras file is a zip)")
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            normal = posixpath.normpath(name.replace("\\", "/"))
            if name.startswith(("/", "\\")) or normal.startswith("..") or ":" in name.split("/")[0]:
                raise ModelFileError(f"{path}: archive member {name!r} points outside the archive; refused")
            if name not in ARCHIVE_FILES and not name.startswith(ARCHIVE_FOLDERS):
                raise ModelFileError(f"{path}: unexpected archive member {name!r} (a .keras file holds "
                                     f"{', '.join(ARCHIVE_FILES[:3])} and assets/); refused")
            with archive.open(info) as member:
                head = member.read(2)
            if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
                raise ModelFileError(f"{path}: archive member {name!r} is a Python pickle; refused")
