"""Checks before a sweep trusts Ray with it: the cluster it joins answers, a trial fits the machine, and the
sweep's storage folder can be made.

Ray meets these mistakes with silence or a traceback: `ray.init` on an address nobody answers retries for
minutes, printing C++ warnings (medtune.reach), Tune waits forever for a trial bigger than any node, and a
storage path that cannot be a folder ends in a FileNotFoundError from deep inside Tune. Here each is one line
naming the setting.
"""

from __future__ import annotations

import os
from pathlib import Path

from medtune.config import SearchCfg
from medtune.errors import ConfigError
from medtune.reach import unreachable


def endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a `host:port` or `ray://host:port` address; None for `auto`, `local` and other forms
    Ray resolves itself."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, source: str) -> None:
    """Refuse an address whose head does not accept a TCP connection (`source` names where it was set)."""
    target = endpoint(address)
    why = unreachable(*target) if target else None
    if why:
        raise ConfigError(f"{source}: no Ray cluster answers at {address} ({why})")


def check_trial_fits(search: SearchCfg, resources: dict[str, float]) -> None:
    """A trial asking for more CPUs or GPUs than Ray has never starts, and Tune waits for it forever without
    a word: refuse at once. Only for the local Ray: a cluster's autoscaler may still add bigger nodes."""
    for key, asked in (("CPU", search.cpus_per_trial), ("GPU", search.gpus_per_trial)):
        has = resources.get(key, 0.0)
        if asked > has:
            raise ConfigError(f"params.yaml: search.{key.lower()}s_per_trial: {asked:g} is more than the {has:g} "
                              f"{key}s of this machine's Ray, so no trial could start")


def check_storage(folder: Path) -> None:
    """Make the folder that holds the sweep's state and checkpoints, or say in one line why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"params.yaml: search.storage: cannot create {folder} ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"params.yaml: search.storage: {folder} is not writable")
