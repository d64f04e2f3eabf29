"""The one-page case report the web app makes, for one case, from the command line.

    python bench/case_report.py --model RUN_DIR --case CASE.nii.gz --out DIR

Runs the case through the app's own path (`kerasbrain.app.handlers.run_model`: the same `predict`
the CLI runs) and writes DIR/report.png with the views, volumes, lesions and RANO diameters, plus
the prediction's files (label map, overlay, `<case>_report.json`).
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path,
                        help="A run folder (the model the app offers for it: calibrated.keras if there is one).")
    parser.add_argument("--case", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    from kerasbrain.app import handlers
    from kerasbrain.app.catalogue import find_local_models
    from kerasbrain.app.report import write_report

    run = args.model.resolve()
    models = [m for m in find_local_models(run.parent) if Path(m.ref).parent == run]  # as the app offers it
    if not models:
        sys.exit(f"{run}: no model found there")
    result = handlers.run_model(models[0], [args.case], args.out / "work", progress=lambda f, m: None)
    report = write_report(result, args.out / "report.png")
    print("\n".join(result.prediction.lines + [str(report)] + [str(f) for f in result.prediction.files]))


if __name__ == "__main__":
    main()
