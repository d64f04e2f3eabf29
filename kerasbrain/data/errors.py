"""The one error type the data layer raises for bad input, so the CLI can report it cleanly."""


class DataError(ValueError):
    """An input file or folder is missing, unreadable or inconsistent; the message names it."""


def keep_readable(items, read, name_of=str, progress=None) -> tuple[list, list[dict]]:
    """Split `items` into those `read(item)` can read and a list of {"case_id", "error"} for the rest.

    Evaluation uses it so that one unreadable file in a dataset of many is reported, not fatal.
    """
    kept, failed = [], []
    for item in items:
        try:
            read(item)
            kept.append(item)
        except (ValueError, OSError) as exc:  # DataError, a decoder's error, an unreadable disk
            failed.append({"case_id": name_of(item), "error": str(exc)})
            if progress:
                progress(f"{name_of(item)}: FAILED: {exc}")
    return kept, failed
