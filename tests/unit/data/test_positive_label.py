"""Which class is positive (target 1): stated by ingest.positive_label or obvious from the two labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtune.config import load_params
from medtune.data.ingest import ingest
from medtune.data.sample import write_dicom
from medtune.data.targets import target_mapping
from medtune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("labels", "positive"), [
    (["0", "1"], "1"), (["no", "yes"], "yes"), (["True", "False"], "True"), (["negative", "positive"], "positive"),
    (["normal", "pneumonia"], "pneumonia"), (["Normal", "abnormal"], "abnormal"), (["present", "absent"], "present"),
    (["benign", "malignant"], "malignant"), (["healthy", "effusion"], "effusion"),
])
def test_obvious_pairs_put_the_finding_at_target_1(labels: list[str], positive: str) -> None:
    mapping = target_mapping(labels)
    assert mapping[positive] == 1 and sum(mapping.values()) == 1 and set(mapping) == set(labels)


def test_the_parameter_decides_and_wins_over_the_names() -> None:
    # Sorted order alone would make no_contrast (the second label) positive.
    assert target_mapping(["contrast", "no_contrast"], "contrast") == {"contrast": 1, "no_contrast": 0}
    assert target_mapping(["normal", "abnormal"], "normal") == {"normal": 1, "abnormal": 0}
    assert target_mapping(["a", "b", "c"]) == {"a": 0, "b": 1, "c": 2}  # multi-class: sorted, no positive


@pytest.mark.parametrize(("labels", "positive", "message"), [
    (["contrast", "no_contrast"], None,
     "params.yaml: ingest.positive_label: labels 'contrast' and 'no_contrast' do not say which class is "
     "positive; set it to one of them"),
    (["1", "2"], None, "labels '1' and '2' do not say which class is positive"),
    (["contrast", "no_contrast"], "Contrast",
     "params.yaml: ingest.positive_label: 'Contrast' is not a label in the labels file (labels: contrast, "
     "no_contrast)"),
    (["a", "b", "c"], "a", "applies to two classes, but there are 3 (a, b, c); leave it unset"),
])
def test_missing_or_unknown_positive_label_is_one_clear_line(labels: list[str], positive: str | None,
                                                             message: str) -> None:
    with pytest.raises(ConfigError) as info:
        target_mapping(labels, positive)
    assert message in str(info.value) and "\n" not in str(info.value)


def contrast_cohort(tmp_path: Path) -> tuple[Path, Path]:
    raw, labels = tmp_path / "raw", tmp_path / "labels.csv"
    rows = []
    for n in range(4):
        write_dicom(raw / f"p{n}/1.dcm", np.full((8, 8), n * 100, np.uint16), f"P{n}", "Acme", modality="CT")
        rows.append(f"p{n}/1.dcm,{'contrast' if n % 2 else 'no_contrast'}\n")
    labels.write_text("path,label\n" + "".join(rows))
    return raw, labels


def test_ingest_needs_it_for_unclear_labels_and_maps_with_it(tmp_path: Path, hmac_key: bytes) -> None:
    raw, labels = contrast_cohort(tmp_path)
    with pytest.raises(ConfigError, match="do not say which class is positive"):
        ingest(raw, str(labels), hmac_key)
    result = ingest(raw, str(labels), hmac_key, positive_label="contrast")
    assert dict(zip(result.manifest["label"], result.manifest["target"])) == {"contrast": 1, "no_contrast": 0}
    assert result.fingerprint["task"]["positive_label"] == "contrast"
    assert result.task.names == ("no_contrast", "contrast")


def test_params_take_a_label_as_text_or_number_never_as_a_yaml_boolean() -> None:
    assert load_params(ROOT / "params.yaml").ingest.positive_label is None
    assert load_params(ROOT / "params.yaml", {"ingest.positive_label": 1}).ingest.positive_label == "1"
    assert load_params(ROOT / "params.yaml", {"ingest.positive_label": "yes"}).ingest.positive_label == "yes"
    with pytest.raises(ConfigError, match=r"ingest.positive_label: True must be one of the two labels "
                                          r"\(quote yes/no/true/false: 'yes'\) or null"):
        load_params(ROOT / "params.yaml", {"ingest.positive_label": True})  # YAML reads `yes` as true
