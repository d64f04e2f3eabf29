"""Tumour classes of the 4-class MRI datasets, and their spellings in each public layout.

Class indices follow the alphabetical folder order that the published pipelines (and Keras'
`image_dataset_from_directory`) use, so a confusion matrix reads the same as theirs:
0 glioma, 1 meningioma, 2 no tumour, 3 pituitary.
"""

from __future__ import annotations

CLASSES = ("glioma", "meningioma", "no_tumor", "pituitary")
#: Row names of seed 000's per-class table.
CLASS_TITLES = ("Glioma", "Meningioma", "No Tumor", "Pituitary Tumor")
NO_TUMOR = CLASSES.index("no_tumor")

#: Folder names of the 4-class Kaggle dataset (seed 000), current and older releases, and BRISC's.
FOLDER_ALIASES = {
    "glioma": 0, "glioma_tumor": 0,
    "meningioma": 1, "meningioma_tumor": 1,
    "notumor": 2, "no_tumor": 2,
    "pituitary": 3, "pituitary_tumor": 3,
}
#: BRISC 2025 file names carry the class as a code: brisc2025_train_00010_gl_ax_t1.jpg.
BRISC_CODES = {"gl": 0, "me": 1, "no": 2, "pi": 3}


def class_index(folder: str) -> int | None:
    """The class index of a class folder name (any known spelling, any case), or None."""
    return FOLDER_ALIASES.get(folder.strip().lower())
