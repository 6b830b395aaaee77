"""A sweep planned from the cohort: batch sizes capped by the train size, a minimum number of optimizer
steps per trial, and ASHA's grace period in steps (nnU-Net-style: the data decide what `auto` means).

With 66 training images, `epochs: 2-6` at batch 32-128 is 1-3 optimizer steps per epoch and ASHA cuts
trials that have barely started. Steps, not epochs, are what a network learns from, so the plan counts
steps. Every explicit integer in params.yaml wins over the plan; `auto` asks for it.

Under ASHA a searched epochs range is ASHA's budget, not a key TPE samples (Hyperband's view): every trial
is planned for the range's top, so all follow one learning-rate schedule and a rung compares like with
like (a trial planned for 2 epochs has annealed when one planned for 12 has not), and ASHA alone decides
how far each trains. bench/hpo.py measured it against sampled epochs: better on every seed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from medtune.config import ParamSpec, SearchCfg, TrainCfg, largest

MIN_STEPS = 30            # auto: optimizer steps every trial is planned for (raises its epochs)
STEPS_PER_EPOCH = 4       # auto batch cap: at least this many steps per epoch
MAX_STARTUP_TRIALS = 5    # bench/hpo.py: 5 random trials reached random search's best sooner than Optuna's 10


@dataclass(frozen=True)
class Plan:
    """What `auto` resolved to for this cohort, and the sentences that say why."""

    batch_cap: int            # largest batch size any trial uses (0: no cap)
    min_steps: int            # optimizer steps every trial gets at least (0: none)
    grace_steps: int          # ASHA: steps before a trial can be stopped
    max_steps: int            # ASHA's max_t: the most steps any trial can run
    startup_trials: int       # Optuna: random trials before TPE proposes
    startup_steps: int        # ASHA stops those random trials here, its first rung (0: no cap)
    why: tuple[str, ...]


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps in one epoch, as the train loader makes them (a last batch of 1 is dropped)."""
    full, rest = divmod(n_train, batch_size)
    dropped = rest == 1 and n_train > batch_size
    return max(1, full + (1 if rest and not dropped else 0))


def trial_epochs(epochs: int, batch_size: int, n_train: int, min_steps: int) -> int:
    """A trial's epochs: its sampled value, raised until it makes at least `min_steps` steps."""
    return max(epochs, math.ceil(min_steps / steps_per_epoch(n_train, batch_size)))


def startup_trials(num_samples: int) -> int:
    """Random trials before TPE: a quarter of the budget, 3..5, so TPE proposes most of any sweep (Optuna's
    fixed 10 left TPE 6 of 16 trials, and 10 of 64 cost more compute to random search's best than 5)."""
    return min(MAX_STARTUP_TRIALS, max(3, num_samples // 4))


def _cap_space(space: tuple[ParamSpec, ...], cap: int) -> tuple[ParamSpec, ...]:
    out = []
    for spec in space:
        if spec.name == "batch_size" and spec.choices is not None:
            kept = tuple(c for c in spec.choices if c <= cap) or (cap,)
            spec = dataclasses.replace(spec, choices=kept)
        elif spec.name == "batch_size" and spec.high is not None and spec.high > cap:
            spec = (dataclasses.replace(spec, high=cap) if spec.low < cap
                    else ParamSpec("batch_size", choices=(cap,)))
        out.append(spec)
    return tuple(out)


def epochs_as_budget(base: TrainCfg, search: SearchCfg) -> tuple[TrainCfg, SearchCfg, list[str]]:
    """A searched epochs range made ASHA's budget: out of the space, every trial planned for its top."""
    spec = next((s for s in search.space if s.name == "epochs"), None)
    if spec is None:
        return base, search, []
    base = dataclasses.replace(base, epochs=int(spec.top))
    search = dataclasses.replace(search, space=tuple(s for s in search.space if s.name != "epochs"))
    return base, search, [f"every trial planned for {base.epochs} epochs (epochs not sampled) because ASHA "
                          "decides how far each trains, and one schedule makes its rungs fair"]


def plan_sweep(base: TrainCfg, search: SearchCfg, n_train: int,
               early_stopping: bool = True) -> tuple[TrainCfg, SearchCfg, Plan]:
    """Resolve the `auto` plan keys for a cohort of `n_train` training images; returns the train defaults
    and search space with batch sizes capped (and, under ASHA, epochs made its budget), and the plan."""
    base, search, why = epochs_as_budget(base, search) if early_stopping else (base, search, [])
    cap = max(1, n_train // STEPS_PER_EPOCH) if search.batch_cap == "auto" else int(search.batch_cap)
    if cap and largest("batch_size", base, search.space) > cap:
        base = dataclasses.replace(base, batch_size=min(base.batch_size, cap))
        search = dataclasses.replace(search, space=_cap_space(search.space, cap))
        why.append(f"batch size <= {cap} because {n_train} training images should give >= "
                   f"{n_train // cap} steps per epoch")
    min_steps = MIN_STEPS if search.min_steps == "auto" else int(search.min_steps)
    if min_steps:
        why.append(f"trials planned for >= {min_steps} optimizer steps (epochs raised where fewer) because a trial "
                   "that has barely started says nothing about its config")
    smallest = min([base.batch_size, *[v for s in search.space if s.name == "batch_size"
                                        for v in (s.choices or (s.low,))]])
    biggest = largest("batch_size", base, search.space)
    top_epochs = int(largest("epochs", base, search.space))
    most = steps_per_epoch(n_train, int(smallest))
    max_steps = max(min_steps + most, top_epochs * most)  # a raised trial overshoots by < 1 epoch
    if search.grace_period == "auto":
        # max_t / rf^2, so ASHA has two rungs to cut at, in whole epochs at the largest batch, at least one:
        # a trial reports once per epoch, and a rung between two reports is judged at the next one (5 steps
        # with 4-step epochs was judged at 8, its next rung at 16: rungs 2x apart, not rf). Not floored at
        # min_steps: on a small cohort that left one rung near max_t and ASHA cut almost nothing
        # (bench/hpo.py; min_steps still sets how long a survivor trains).
        epoch = steps_per_epoch(n_train, int(biggest))
        grace = epoch * max(1, max_steps // search.reduction_factor ** 2 // epoch)
        why.append(f"ASHA grace {grace} steps (rungs x{search.reduction_factor}) because trials run up to "
                   f"{max_steps} steps and a trial reports every epoch, {epoch} steps at batch {biggest}")
    else:
        grace = int(search.grace_period)
    grace = min(grace, max_steps)
    start = startup_trials(search.num_samples) if search.n_startup_trials == "auto" else int(search.n_startup_trials)
    why.append(f"TPE after {start} random trials because {search.num_samples} trials leave it "
               f"{max(0, search.num_samples - start)} to guide")
    # Only when TPE proposes at least half the sweep: a sweep of random trials alone would train none in full.
    startup_steps = grace if early_stopping and search.num_samples >= 2 * start and grace < max_steps else 0
    if startup_steps:
        why.append(f"the random trials stop at ASHA's first rung ({startup_steps} steps) because they explore: "
                   "the first trial to train in full is one TPE chose")
    return base, search, Plan(cap, min_steps, grace, max_steps, start, startup_steps, tuple(why))
