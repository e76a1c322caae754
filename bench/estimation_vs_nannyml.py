"""radmon's label-free estimate against NannyML's CBPE, chunk by chunk, on NannyML's own data.

    .venv/bin/python bench/estimation_vs_nannyml.py --data DIR [--nannyml-python /tmp/nannyml-venv/bin/python]

DIR holds NannyML's bundled synthetic binary classification dataset (synthetic_sample_reference.csv,
synthetic_sample_analysis.csv, synthetic_sample_analysis_gt.csv: `nml.load_synthetic_binary_
classification_dataset()`). Without NannyML installed anywhere they come out of its wheel:

    pip download nannyml --no-deps -d /tmp/nannyml-wheel && cd /tmp/nannyml-wheel && unzip -q nannyml-*.whl
    # then --data /tmp/nannyml-wheel/nannyml/datasets/data

NannyML conflicts with this venv's pandas<3, so its side runs in another interpreter
(--nannyml-python, a venv with `pip install nannyml statsmodels`: nannyml 0.13.1 imports statsmodels without requiring it); the script calls itself there with
--nannyml-side and reads the per-chunk estimates back as JSON. Both estimators are fitted on the
same reference and estimate the same 5000-row analysis chunks; the realized figures come from the
ground truth. Prints, per chunk and metric, realized, radmon's and NannyML's estimates, and the
mean absolute error of each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 5000
METRICS = ("roc_auc", "recall", "specificity", "precision")
RADMON_NAMES = {"roc_auc": "auc", "recall": "sensitivity", "specificity": "specificity", "precision": "ppv"}


def load(data: Path) -> dict[str, Any]:
    import pandas as pd

    reference = pd.read_csv(data / "synthetic_sample_reference.csv")
    analysis = pd.read_csv(data / "synthetic_sample_analysis.csv")
    truth = pd.read_csv(data / "synthetic_sample_analysis_gt.csv")
    analysis = analysis.merge(truth, on="id", how="left", validate="one_to_one")
    return {"reference": reference, "analysis": analysis}


def chunks(n: int) -> list[slice]:
    """NannyML's SizeBasedChunker: consecutive rows, the incomplete last chunk dropped."""
    return [slice(start, start + CHUNK) for start in range(0, n - CHUNK + 1, CHUNK)]


def realized(frame: Any) -> list[dict[str, float]]:
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    out = []
    for rows in chunks(len(frame)):
        part = frame.iloc[rows]
        y, p, s = part["work_home_actual"].to_numpy(), part["y_pred"].to_numpy(), part["y_pred_proba"].to_numpy()
        out.append(
            {
                "roc_auc": roc_auc_score(y, s),
                "recall": recall_score(y, p),
                "specificity": recall_score(1 - y, 1 - p),
                "precision": precision_score(y, p),
            }
        )
    return out


def radmon_estimates(frame: Any, reference: Any) -> list[dict[str, Any]]:
    from monitor.checks import estimation
    from monitor.checks.performance import Limits

    fitted = estimation.Reference.fit(reference["y_pred_proba"].to_numpy(), reference["work_home_actual"].to_numpy())
    out = []
    for rows in chunks(len(frame)):
        part = frame.iloc[rows]
        figures = estimation.estimated_figures(
            fitted,
            part["y_pred_proba"].to_numpy(),
            part["y_pred"].to_numpy(),
            targets={},
            limits=Limits(),
            replicates=200,
        )
        by_metric = {f.metric: f for f in figures if f.segment is None}
        out.append(
            {
                name: {"value": by_metric[ours].value, "low": by_metric[ours].ci_low, "high": by_metric[ours].ci_high}
                for name, ours in RADMON_NAMES.items()
            }
        )
    return out


def nannyml_side(data: Path) -> None:
    """Runs inside NannyML's interpreter: print its per-chunk estimates as JSON."""
    import nannyml as nml

    frames = load(data)
    estimator = nml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="work_home_actual",
        metrics=list(METRICS),
        chunk_size=CHUNK,
        problem_type="classification_binary",
    )
    estimator.fit(frames["reference"])
    analysis = frames["analysis"].drop(columns=["work_home_actual"])
    table = estimator.estimate(analysis).filter(period="analysis").to_df()
    out = []
    for _, row in table.iterrows():
        out.append(
            {
                metric: {
                    "value": float(row[(metric, "value")]),
                    "low": float(row[(metric, "lower_confidence_boundary")]),
                    "high": float(row[(metric, "upper_confidence_boundary")]),
                }
                for metric in METRICS
            }
        )
    json.dump({"version": nml.__version__, "chunks": out}, sys.stdout)


def compare(data: Path, nannyml_python: str | None) -> dict[str, Any]:
    frames = load(data)
    truth = realized(frames["analysis"])
    ours = radmon_estimates(frames["analysis"], frames["reference"])
    theirs, version = None, None
    if nannyml_python:
        answer = subprocess.run(
            [nannyml_python, __file__, "--nannyml-side", "--data", str(data)],
            capture_output=True,
            text=True,
            check=True,
        )
        parsed = json.loads(answer.stdout)
        theirs, version = parsed["chunks"], parsed["version"]
    summary: dict[str, Any] = {"chunks": len(truth), "nannyml_version": version, "metrics": {}}
    for metric in METRICS:
        ours_error = [abs(o[metric]["value"] - t[metric]) for o, t in zip(ours, truth, strict=True)]
        entry = {
            "radmon_mae": float(np.mean(ours_error)),
            "radmon_max": float(np.max(ours_error)),
            "radmon_inside": int(
                sum(o[metric]["low"] <= t[metric] <= o[metric]["high"] for o, t in zip(ours, truth, strict=True))
            ),
        }
        if theirs is not None:
            their_error = [abs(n[metric]["value"] - t[metric]) for n, t in zip(theirs, truth, strict=True)]
            entry |= {
                "nannyml_mae": float(np.mean(their_error)),
                "nannyml_max": float(np.max(their_error)),
                "nannyml_inside": int(
                    sum(n[metric]["low"] <= t[metric] <= n[metric]["high"] for n, t in zip(theirs, truth, strict=True))
                ),
            }
        summary["metrics"][metric] = entry
    summary["rows"] = [
        {
            "chunk": i,
            **{
                m: {"realized": t[m], "radmon": o[m]["value"], "nannyml": theirs[i][m]["value"] if theirs else None}
                for m in METRICS
            },
        }
        for i, (t, o) in enumerate(zip(truth, ours, strict=True))
    ]
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    print(f"NannyML synthetic binary classification dataset, {summary['chunks']} chunks of {CHUNK} rows")
    print(f"NannyML version: {summary['nannyml_version'] or 'not run (--nannyml-python not given)'}\n")
    for metric in METRICS:
        print(f"{metric}: chunk  realized  radmon   nannyml")
        for row in summary["rows"]:
            r = row[metric]
            nannyml = f"{r['nannyml']:.4f}" if r["nannyml"] is not None else "-"
            print(f"{'':>{len(metric)}}  {row['chunk']:>5}  {r['realized']:.4f}    {r['radmon']:.4f}   {nannyml}")
    print("\nper-chunk absolute error of the estimate (mean / max; realized inside the 95% band)")
    for metric, entry in summary["metrics"].items():
        line = f"  {metric:<12} radmon {entry['radmon_mae']:.5f} / {entry['radmon_max']:.5f} ({entry['radmon_inside']}/{summary['chunks']})"
        if "nannyml_mae" in entry:
            line += f"   nannyml {entry['nannyml_mae']:.5f} / {entry['nannyml_max']:.5f} ({entry['nannyml_inside']}/{summary['chunks']})"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with NannyML's synthetic_sample_*.csv")
    parser.add_argument("--nannyml-python", help="python of a venv with nannyml installed")
    parser.add_argument("--nannyml-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    if args.nannyml_side:
        nannyml_side(args.data)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    summary = compare(args.data, args.nannyml_python)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)


if __name__ == "__main__":
    main()
