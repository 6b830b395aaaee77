"""The environment `make install` builds: torchvision and timm must never be in it.

The only torchvision wheel for the pinned torch is a CUDA build that fails to import beside the CPU torch
(`operator torchvision::nms does not exist`) and then breaks `import torchmetrics` and Lightning; timm
imports torchvision. MONAI's backbones need neither. This test asks the venv's own interpreter, so a
package pulled in by some later dependency fails here, not in the first trial.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("torchvision", "timm")


@pytest.mark.parametrize("package", FORBIDDEN)
def test_package_is_not_installed(package: str) -> None:
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({package!r}) is not None)"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.returncode == 0, (
        f"{package} is importable in {sys.executable}: uninstall it (pip uninstall -y {package}); "
        "medtune's backbones come from MONAI and torchvision's CUDA wheel breaks the CPU torch")


def test_monai_networks_import_without_torchvision() -> None:
    probe = ("import sys; import monai.networks.nets, medtune.models.backbones; "
             "sys.exit('torchvision' in sys.modules or 'timm' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0
