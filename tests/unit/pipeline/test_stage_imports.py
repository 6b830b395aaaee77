"""Each stage process imports what it runs and no more: `dvc repro` starts one process per stage, and on
these machines Lightning costs ~2.5 s to import, scikit-learn's model selection ~1 s and albumentations
~0.5 s. The tune driver only builds and watches the sweep (its trials train in Ray's workers, which
preload the training code), promote trains only for CV folds, and test trains nothing. Measured by
`python -m bench.startup --against <rev>` (README, Start-up)."""

from __future__ import annotations

import subprocess
import sys

# stage module -> libraries importing it must not load
NOT_IMPORTED = {
    "medtune.pipeline.tune": ("pytorch_lightning", "albumentations", "sklearn"),
    "medtune.pipeline.promote": ("pytorch_lightning", "albumentations"),
    "medtune.pipeline.test": ("pytorch_lightning", "albumentations"),
    "medtune.pipeline.split": ("sklearn",),
}


def test_each_stage_imports_only_what_it_runs() -> None:
    # A fresh interpreter per stage (a library another stage loaded must not count), all started at once.
    procs = {stage: subprocess.Popen([sys.executable, "-c", f"import sys, {stage}; print(*sys.modules)"],
                                     stdout=subprocess.PIPE, text=True) for stage in NOT_IMPORTED}
    found = {stage: set(proc.communicate(timeout=300)[0].split()) for stage, proc in procs.items()}
    assert all(proc.returncode == 0 for proc in procs.values())
    loaded = {stage: [lib for lib in libs if lib in found[stage]] for stage, libs in NOT_IMPORTED.items()}
    assert loaded == {stage: [] for stage in NOT_IMPORTED}, f"a stage imports a library it does not run: {loaded}"
