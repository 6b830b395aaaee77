"""What a `medtune` process costs to start and to exit, with Python's normal exit and with medtune's.

`dvc repro` runs every stage as its own `medtune <stage>` process, so each pays for importing the stack
(torch, Lightning, MLflow, MONAI, Ray) and for Python's exit, whose last garbage-collector passes walk every
object those imports made. `medtune` as installed (medtune.cli:main) freezes the collector once the exit
handlers have run; the baseline runs the same commands through medtune.cli:app, as the entry point did
before, with Python's normal exit. `--against REV` adds a third arm: the same commands running the code of
git revision REV (a worktree on PYTHONPATH; medtune's exit), so a change to what each stage imports is
measured against the code before it. Two measures, the arms interleaved in one run:
- each stage's command on a params file that does not exist: it imports the stage's code, prints its
  one-line error and exits, so its wall is start-up + exit;
- `dvc repro -f` of a scratch project (synthetic cohort, 2 short trials), which pays them in every stage.
Writes bench/results/startup.json (`repro_ratio`: medtune's exit / the normal one, whole pipeline;
`repro_ratio_vs_against`: this checkout / REV).

    python -m bench.startup                       # 5 repeats of each command, 3 repros per arm
    python -m bench.startup --against c1e24b0     # and the code of c1e24b0 as a third arm
    python -m bench.startup --smoke-test          # 1 repeat of the test stage's command, no repro
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
from bench.quality import ROOT, SMOKE, make_project, sh, tool_env

ARMS = ("medtune_exit", "normal_exit")  # medtune.cli:main as installed; medtune.cli:app (the baseline)
AGAINST = "against"  # the arm running another revision's code
STAGES = ("tune", "promote", "test")


def shim_bin(folder: Path, entry: str) -> Path:
    """A folder holding a `medtune` that runs the commands through `medtune.cli.<entry>`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "medtune"
    # The guard as in pip's entry scripts: ingest's decode workers start by spawn and import this file.
    script.write_text(f"#!{sys.executable}\nfrom medtune.cli import {entry}\n\nif __name__ == '__main__':\n"
                      f"    {entry}()\n")
    script.chmod(0o755)
    return folder


def checkout(rev: str, folder: Path) -> str:
    """REV's tree in `folder` (a detached git worktree); returns its full commit."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(folder), rev], check=True)
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def arm_envs(work: Path, against: Path | None) -> dict[str, dict[str, str]]:
    """Each arm's environment: its `medtune` first on PATH and, for REV's arm, REV's code first on
    PYTHONPATH (ahead of this checkout's editable install), which Ray's workers inherit."""
    envs = {arm: tool_env() for arm in ARMS}
    envs["normal_exit"]["PATH"] = f"{shim_bin(work / 'normal', 'app')}{os.pathsep}{envs['normal_exit']['PATH']}"
    if against is not None:
        env = envs[AGAINST] = tool_env()
        env["PATH"] = f"{shim_bin(work / 'against-bin', 'main')}{os.pathsep}{env['PATH']}"
        env["PYTHONPATH"] = os.pathsep.join([str(against / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return envs


def timed(cmd: list[str], cwd: Path, env: dict[str, str], expect: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}, expected {expect}:\n{proc.stderr[-2000:]}")
    return wall


def interleaved(cmd: list[str], cwd: Path, envs: dict[str, dict[str, str]], times: int,
                expect: int) -> dict[str, list[float]]:
    """`cmd`'s wall in each arm's environment, `times` rounds of one run per arm (a slow spell of the shared
    machine then hits every arm alike)."""
    runs: dict[str, list[float]] = {arm: [] for arm in envs}
    for _ in range(times):
        for arm, env in envs.items():
            runs[arm].append(timed(cmd, cwd, env, expect))
    return runs


def compare(runs: dict[str, list[float]]) -> dict[str, float | list[float]]:
    medians = {arm: statistics.median(walls) for arm, walls in runs.items()}
    out = {**{f"{arm}_s": walls for arm, walls in runs.items()}, **{f"{arm}_median_s": m for arm, m in medians.items()},
           "ratio": medians["medtune_exit"] / medians["normal_exit"],
           "saved_s": medians["normal_exit"] - medians["medtune_exit"]}
    if AGAINST in medians:  # this checkout against REV's code, both with medtune's exit
        out |= {"ratio_vs_against": medians["medtune_exit"] / medians[AGAINST],
                "saved_vs_against_s": medians[AGAINST] - medians["medtune_exit"]}
    return out


def line(what: str, result: dict) -> str:
    text = f"{what}: {result['ratio']:.2f}x with medtune's exit ({result['saved_s']:.1f} s saved)"
    if "ratio_vs_against" in result:
        text += f"; {result['ratio_vs_against']:.2f}x the --against code ({result['saved_vs_against_s']:.1f} s saved)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each stage's command per arm")
    parser.add_argument("--repros", type=int, default=3, help="`dvc repro -f` per arm")
    parser.add_argument("--against", metavar="REV", help="also run the code of this git revision (a third arm)")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    stages, repeats, repros = (("test",), 1, 0) if args.smoke_test else (STAGES, args.repeats, args.repros)
    started = time.perf_counter()
    out: dict = {"bench": "startup" + ("-smoke" if args.smoke_test else ""), "repeats": repeats, "repros": repros}
    with tempfile.TemporaryDirectory(prefix="medtune-startup-") as tmp:
        work = Path(tmp)
        against = work / "against" if args.against else None
        if against is not None:
            out["against"] = {"rev": args.against, "commit": checkout(args.against, against)}
        try:
            out |= measure(work, arm_envs(work, against), stages, repeats, repros)
        finally:
            if against is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(against)], check=False)
    out |= {"wall_s": time.perf_counter() - started, "smoke_test": args.smoke_test, "machine": machine()}
    write_result(args.results, "startup-smoke.json" if args.smoke_test else "startup.json", out)


def measure(work: Path, envs: dict[str, dict[str, str]], stages: tuple[str, ...], repeats: int,
            repros: int) -> dict:
    """Each stage's command `repeats` times and `dvc repro -f` `repros` times per arm, arms interleaved."""
    out: dict = {"commands": {}}
    for stage in stages:
        out["commands"][stage] = compare(interleaved(["medtune", stage, "--params", str(work / "missing.yaml")],
                                                     work, envs, repeats, expect=2))
        print(line(f"medtune {stage} (start-up + exit)", out["commands"][stage]), flush=True)
    if repros:
        proj = make_project(work / "repro", SMOKE | {"preprocess": {"image_size": 16}}, 0, ["--patients", "24"])
        sh(["dvc", "repro"], proj, 1800)  # outputs and caches in place before the clock runs
        out["repro"] = compare(interleaved(["dvc", "repro", "-f"], proj, envs, repros, expect=0))
        out["repro_ratio"] = out["repro"]["ratio"]
        if AGAINST in envs:
            out["repro_ratio_vs_against"] = out["repro"]["ratio_vs_against"]
        print(line("dvc repro -f", out["repro"]), flush=True)
    return out


if __name__ == "__main__":
    main()
