"""Before Tuner.restore: every unfinished trial gets back the checkpoint its saved state resumes it from.

Ray deletes a trial's older checkpoints as soon as newer ones register (`CheckpointConfig.num_to_keep`) but
saves the experiment state only every 2 s. A driver killed in between leaves a state that names a
checkpoint already gone, and the restored trial then fails twice with "Could not recover from checkpoint as
it does not exist on storage anymore" and ends in ERROR: its training is lost although its newer checkpoints
are on disk. The newest of those is copied to the name the state holds, so the trial resumes from further on.
The Ray state is read, and Ray's staging folder found, with Ray's own helpers (private, of the pinned Ray;
this is their only user).

Ray also copies its state files (the experiment, the search generator, the searcher) from the driver's
staging folder into the sweep folder after every save, not atomically: a driver killed mid-copy leaves one
cut short, and Ray then logs "Failed to restore the run state", restarts the sweep from nothing and drops
its finished trials. The staging folder (under Ray's session folder, which the kill leaves on disk) holds
each save whole, so `repair_cut_state` copies all of them back when any copy in the sweep folder is cut.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ray import cloudpickle
from ray.train.constants import _get_ray_train_session_dir
from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
from ray.tune.experiment.trial import Trial
from ray.tune.utils.serialization import _loads_with_cloudpickle

from medtune.errors import MedtuneError

CHECKPOINT_GLOB = "checkpoint_*"
# A trial's checkpoint (trial.py writes it): the bare weights, the Lightning state, the best metric so far.
CHECKPOINT_FILE = "model.pt"
TRAINER_FILE = "trainer.ckpt"
PROGRESS_FILE = "progress.json"
# What Ray saves of a sweep on the driver every 2 s: the experiment, the search generator, the searcher.
STATE_GLOBS = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")


def repair_cut_state(sweep_dir: Path, ray_root: Path | None = None) -> list[str]:
    """When a state file in `sweep_dir` is cut short, copy every state file back from the killed driver's
    staging folder under `ray_root` (Ray's temp folder, all sessions; default: the running Ray's), one whole
    save; returns the names copied. Raises MedtuneError when a cut file has no whole copy: Ray would
    silently start over."""
    if ray_root is None:  # <temp>/session_<id>/artifacts, the folder Ray stages the driver's files under
        ray_root = Path(_get_ray_train_session_dir()).parent.parent
    saved = [path for pattern in STATE_GLOBS for path in sweep_dir.glob(pattern)]
    if all(_whole(path) for path in saved):
        return []
    copied = []
    for path in saved:
        pattern = f"session_*/artifacts/*/{sweep_dir.name}/driver_artifacts/{path.name}"
        staged = [c for c in sorted(ray_root.glob(pattern)) if _whole(c)]
        if staged:
            shutil.copyfile(staged[-1], path)
            copied.append(path.name)
        elif not _whole(path):
            raise MedtuneError(f"tune: the sweep's saved state {path.name} was cut short when it stopped and no "
                               f"whole copy is left in {ray_root}; `medtune tune --fresh` starts it over")
    return copied


def _whole(path: Path) -> bool:
    """Whether Ray can load the state file (a pickle, or JSON with pickles inside)."""
    try:
        data = path.read_bytes()
        try:
            cloudpickle.loads(data)
        except Exception:
            _loads_with_cloudpickle(data.decode())
        return True
    except Exception:
        return False


def restore_missing_checkpoints(sweep_dir: Path) -> dict[str, str]:
    """Copy a newer checkpoint to each missing one an unfinished trial would resume from; returns trial
    folder -> the checkpoint it now resumes from."""
    state_file = _find_newest_experiment_checkpoint(str(sweep_dir))
    if state_file is None:
        return {}
    state = _loads_with_cloudpickle(Path(state_file).read_text())
    restored = {}
    for trial_state, run_metadata in state["trial_data"]:
        trial = Trial.from_json_state(trial_state, stub=True)
        trial.restore_run_metadata(run_metadata)
        if trial.status == Trial.TERMINATED or trial.checkpoint is None:
            continue
        named = Path(trial.checkpoint.path)
        missing = sweep_dir / named.parent.name / named.name  # the sweep folder may have moved since
        source = None if missing.exists() else newest_complete(missing.parent)
        if source is not None:
            shutil.copytree(source, missing)
            restored[missing.parent.name] = source.name
    return restored


def newest_complete(trial_dir: Path) -> Path | None:
    """The trial's newest checkpoint that is surely whole: with more than one, the newest is skipped (the
    driver may have died while a worker was still writing it); None when none has every file."""
    whole = sorted(p for p in trial_dir.glob(CHECKPOINT_GLOB)
                   if all((p / name).is_file() for name in (CHECKPOINT_FILE, TRAINER_FILE, PROGRESS_FILE)))
    return whole[-2] if len(whole) > 1 else (whole[-1] if whole else None)
