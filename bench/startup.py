"""What a `medtune` process costs to start and to exit, with Python's normal exit and with medtune's.

`dvc repro` runs every stage as its own `medtune <stage>` process, so each pays for importing the stack
(torch, Lightning, MLflow, MONAI, Ray) and for Python's exit, whose last garbage-collector passes walk every
object those imports made. `medtune` as installed (medtune.cli:main) freezes the collector once the exit
handlers have run; the baseline runs the same commands through medtune.cli:app, as the entry point did
before, with Python's normal exit. Two measures, the arms interleaved in one run:
- each stage's command on a params file that does not exist: it imports the stage's code, prints its
  one-line error and exits, so its wall is start-up + exit;
- `dvc repro -f` of a scratch project (synthetic cohort, 2 short trials), which pays them in every stage.
Writes bench/results/startup.json (`repro_ratio`: medtune's exit / the normal one, whole pipeline).

    python -m bench.startup                # 5 repeats of each command, 3 repros per arm
    python -m bench.startup --smoke-test   # 1 repeat of the test stage's command, no repro
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, machine, write_result
from bench.quality import SMOKE, make_project, sh, tool_env

ARMS = ("medtune_exit", "normal_exit")  # medtune.cli:main as installed; medtune.cli:app (the baseline)
STAGES = ("tune", "promote", "test")


def baseline_bin(folder: Path) -> Path:
    """A folder holding a `medtune` that runs the same commands through medtune.cli:app."""
    script = folder / "medtune"
    # The guard as in pip's entry scripts: ingest's decode workers start by spawn and import this file.
    script.write_text(f"#!{sys.executable}\nfrom medtune.cli import app\n\nif __name__ == '__main__':\n    app()\n")
    script.chmod(0o755)
    return folder


def arm_env(arm: str, baseline: Path) -> dict[str, str]:
    env = tool_env()
    if arm == "normal_exit":
        env["PATH"] = f"{baseline}{os.pathsep}{env['PATH']}"
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str], expect: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}, expected {expect}:\n{proc.stderr[-2000:]}")
    return wall


def compare(runs: dict[str, list[float]]) -> dict[str, float | list[float]]:
    medians = {arm: statistics.median(walls) for arm, walls in runs.items()}
    return {**{f"{arm}_s": runs[arm] for arm in ARMS}, **{f"{arm}_median_s": medians[arm] for arm in ARMS},
            "ratio": medians["medtune_exit"] / medians["normal_exit"],
            "saved_s": medians["normal_exit"] - medians["medtune_exit"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each stage's command per arm")
    parser.add_argument("--repros", type=int, default=3, help="`dvc repro -f` per arm")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    stages, repeats, repros = (("test",), 1, 0) if args.smoke_test else (STAGES, args.repeats, args.repros)
    started = time.perf_counter()
    out: dict = {"bench": "startup" + ("-smoke" if args.smoke_test else ""), "repeats": repeats, "repros": repros}
    with tempfile.TemporaryDirectory(prefix="medtune-startup-") as tmp:
        work, baseline = Path(tmp), baseline_bin(Path(tmp))
        commands = {}
        for stage in stages:
            runs: dict[str, list[float]] = {arm: [] for arm in ARMS}
            for _ in range(repeats):
                for arm in ARMS:
                    runs[arm].append(timed(["medtune", stage, "--params", str(work / "missing.yaml")], work,
                                           arm_env(arm, baseline), expect=2))
            commands[stage] = compare(runs)
            print(f"medtune {stage} (start-up + exit): {commands[stage]['ratio']:.2f}x with medtune's exit "
                  f"({commands[stage]['saved_s']:.1f} s saved)", flush=True)
        out["commands"] = commands
        if repros:
            proj = make_project(work / "repro", SMOKE | {"preprocess": {"image_size": 16}}, 0, ["--patients", "24"])
            sh(["dvc", "repro"], proj, 1800)  # outputs and caches in place before the clock runs
            runs = {arm: [] for arm in ARMS}
            for _ in range(repros):
                for arm in ARMS:
                    runs[arm].append(timed(["dvc", "repro", "-f"], proj, arm_env(arm, baseline), expect=0))
            out["repro"] = compare(runs)
            out["repro_ratio"] = out["repro"]["ratio"]
            print(f"dvc repro -f: {out['repro_ratio']:.2f}x with medtune's exit ({out['repro']['saved_s']:.1f} s "
                  f"of {out['repro']['normal_exit_median_s']:.0f} s saved)", flush=True)
    out |= {"wall_s": time.perf_counter() - started, "smoke_test": args.smoke_test, "machine": machine()}
    write_result(args.results, "startup-smoke.json" if args.smoke_test else "startup.json", out)


if __name__ == "__main__":
    main()
