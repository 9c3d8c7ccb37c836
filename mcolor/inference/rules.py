"""Which files of a DICOM folder the model may see: chest-radiograph selection rules.

The model was trained on frontal chest radiographs; anything else (a lateral view, a hand, a CT slice,
a structured report) would still get a probability, and a wrong one. So every file is checked against
:class:`SelectionRules` from its header alone (``stop_before_pixels``) before any pixel is decoded, and a
file that fails a rule is *skipped* with a reason code and a sentence instead of being predicted.

Defaults (overridable by a JSON/YAML rules file, see :func:`load_rules`): Modality CR or DX; an image
storage SOP class that is not "For Processing" (raw detector data); one frame; MONOCHROME1/2;
BodyPartExamined CHEST (absent: accepted, with a warning on the row); ViewPosition PA or AP (absent:
accepted with a warning; LL, LATERAL... skipped). Non-DICOM images (PNG/JPEG/TIFF, MetaImage, NRRD, NIfTI)
have no DICOM header to check, so they are skipped unless ``allow_non_dicom`` is set (then predicted, with a
``no_dicom_header`` warning).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.uid import UID

from mcolor.errors import ConfigError
from mcolor.io.dicom import dicom_get
from mcolor.options import parse_bool

MISSING_POLICIES = ("accept", "warn", "skip")
#: Stands for a header value that does not fit its VR (possibly swallowed neighbours: PHI).
WITHHELD = "(malformed value withheld)"
_CS = re.compile(r"[A-Z0-9 _]{0,16}")
_UI = re.compile(r"[0-9]+(\.[0-9]+)*")
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


@dataclass
class SelectionRules:
    """Header rules a DICOM file must pass to be predicted (empty list = any value accepted)."""

    modalities: list[str] = field(default_factory=lambda: ["CR", "DX"])
    body_parts: list[str] = field(default_factory=lambda: ["CHEST"])
    missing_body_part: str = "warn"
    view_positions: list[str] = field(default_factory=lambda: ["PA", "AP"])
    missing_view_position: str = "warn"
    #: ``"image_storage"`` (any SOP class whose name is an Image Storage) or a list of SOP Class UIDs.
    sop_classes: str | list[str] = "image_storage"
    allow_for_processing: bool = False
    allow_non_dicom: bool = False

    def __post_init__(self) -> None:
        for name in ("modalities", "body_parts", "view_positions"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise ConfigError(f"rules: {name} must be a list of strings, got {value!r}", reason="bad_rules")
            setattr(self, name, [str(v).strip().upper() for v in value])
        for name in ("missing_body_part", "missing_view_position"):
            if getattr(self, name) not in MISSING_POLICIES:
                raise ConfigError(
                    f"rules: {name} must be one of {MISSING_POLICIES}, got {getattr(self, name)!r}",
                    reason="bad_rules",
                )
        if self.sop_classes != "image_storage":
            if isinstance(self.sop_classes, str) or not isinstance(self.sop_classes, list | tuple):
                raise ConfigError(
                    "rules: sop_classes must be 'image_storage' or a list of SOP Class UIDs",
                    reason="bad_rules",
                )
            self.sop_classes = [str(v).strip() for v in self.sop_classes]
        for name in ("allow_for_processing", "allow_non_dicom"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"rules: {name} must be true or false", reason="bad_rules")

    def to_dict(self) -> dict[str, Any]:
        """The rules as written into ``report.json`` (so a report says what was selected and why)."""
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """The verdict of the rules on one header: accepted (maybe with warnings) or skipped with a reason."""

    accepted: bool
    reason: str = ""
    message: str = ""
    warnings: tuple[str, ...] = ()


def load_rules(path: str | Path | None = None, allow_non_dicom: bool | None = None) -> SelectionRules:
    """Rules from a JSON or YAML file (keys of :class:`SelectionRules`; missing keys keep the defaults).

    ``allow_non_dicom`` (the CLI flag) overrides the file when given. Unknown keys are refused so that a
    typo (``body_part: ...``) cannot silently leave a default in force.
    """
    data: dict[str, Any] = {}
    if path is not None and str(path).strip() not in ("", "null", "None"):
        p = Path(path).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read rules file {p}: {exc.strerror or exc}", reason="bad_rules", path=p) from exc
        try:
            loaded = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"rules file {p} is not valid JSON/YAML: {exc}", reason="bad_rules", path=p) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"rules file {p} must hold a mapping of rule names to values", reason="bad_rules", path=p)
        valid = {f.name for f in fields(SelectionRules)}
        unknown = sorted(set(loaded) - valid)
        if unknown:
            raise ConfigError(
                f"rules file {p}: unknown keys {unknown}; valid keys: {sorted(valid)}",
                reason="bad_rules",
                path=p,
            )
        data = loaded
    rules = SelectionRules(**data)
    if allow_non_dicom is not None:
        rules.allow_non_dicom = parse_bool(allow_non_dicom, "allow_non_dicom")
    return rules


def header_value(ds: Dataset, keyword: str) -> str:
    """A header value that is safe to compare and to echo in outputs; '' when absent or unparsable.

    A corrupt element length can make a short value swallow the elements after it (PatientName
    included), so a value is only returned when it has the shape its VR allows: CS upper-cased and at
    most 16 characters of ``A-Z 0-9 _ space``, UI digits and dots up to 64 characters. Anything else
    becomes :data:`WITHHELD`, never the raw text.
    """
    value = dicom_get(ds, keyword)
    if value is None:
        return ""
    text = str(value).strip()
    vr = dictionary_VR(keyword)
    if vr == "CS":
        text = text.upper()
        return text if _CS.fullmatch(text) else WITHHELD
    if vr == "UI":
        return text if len(text) <= 64 and _UI.fullmatch(text) else WITHHELD
    if vr in ("US", "IS"):
        return text if text.isdigit() else WITHHELD
    return text


def sop_class_of(ds: Dataset) -> str:
    """SOPClassUID, or the file meta's MediaStorageSOPClassUID when the data set lacks it."""
    value = header_value(ds, "SOPClassUID")
    if not value and hasattr(ds, "file_meta"):
        value = header_value(ds.file_meta, "MediaStorageSOPClassUID")
    return value


def _skip(reason: str, message: str) -> Decision:
    return Decision(False, reason, message)


def _check_sop(ds: Dataset, rules: SelectionRules, warnings: list[str]) -> Decision | None:
    sop = sop_class_of(ds)
    if sop == MEDIA_STORAGE_DIRECTORY:
        return _skip("dicomdir", "DICOMDIR (a media directory index), not an image")
    if not sop or sop == WITHHELD:
        warnings.append("sop_class_missing: no valid SOP Class UID in the header")
        return None
    uid = UID(sop)
    name = uid.name if uid.is_valid else sop
    if isinstance(rules.sop_classes, list):
        if sop not in rules.sop_classes:
            return _skip("sop_class_not_allowed", f"SOP class {name} ({sop}) is not in the rules' sop_classes")
        return None
    if uid.is_valid and uid.type == "SOP Class":
        if "Image Storage" not in name:
            return _skip("non_image_sop", f"{name} is not an image (SR, segmentation, RT, PDF, waveform...)")
        if "For Processing" in name and not rules.allow_for_processing:
            return _skip("for_processing", f"{name}: raw detector data, not meant for display or this model")
        return None
    warnings.append(f"unknown_sop_class: SOP class {sop} is not a standard one; treated as an image")
    return None


def _frames(ds: Dataset) -> int:
    try:
        return int(dicom_get(ds, "NumberOfFrames") or 1)
    except (TypeError, ValueError):
        return 1


def _check_value(
    value: str, allowed: list[str], policy: str, what: str, keyword: str, warnings: list[str]
) -> Decision | None:
    """One allowed-values rule with its policy for an absent value."""
    if not allowed:
        return None
    if not value:
        if policy == "skip":
            return _skip(f"{what}_missing", f"{keyword} is absent and the rules require one of {', '.join(allowed)}")
        if policy == "warn":
            warnings.append(f"{what}_missing: {keyword} absent; accepted as one of {', '.join(allowed)}")
        return None
    if value not in allowed:
        return _skip(f"{what}_not_allowed", f"{keyword} {value} is not one of {', '.join(allowed)}")
    return None


def check_header(ds: Dataset, rules: SelectionRules) -> Decision:
    """Apply the rules to a header (read with ``stop_before_pixels``), in order of how fundamental they are.

    Order: DICOMDIR / SOP class -> frames -> modality -> photometric -> body part -> view. The first
    failing rule gives the reason, so a multi-frame CT is ``multi_frame`` rather than ``modality``.
    """
    warnings: list[str] = []
    decision = _check_sop(ds, rules, warnings)
    if decision:
        return decision
    frames = _frames(ds)
    if frames > 1:
        return _skip("multi_frame", f"{frames} frames; the model reads single projection radiographs")
    modality = header_value(ds, "Modality")
    if rules.modalities and modality not in rules.modalities:
        shown = modality or "absent"
        return _skip("modality_not_allowed", f"Modality {shown} is not one of {', '.join(rules.modalities)}")
    photometric, samples = header_value(ds, "PhotometricInterpretation"), header_value(ds, "SamplesPerPixel") or "1"
    if samples != "1" or (photometric and photometric not in _GRAYSCALE):
        return _skip(
            "unsupported_photometric",
            f"PhotometricInterpretation {photometric or 'absent'} with {samples} samples per pixel; "
            "only grayscale MONOCHROME1/2 radiographs",
        )
    for value, allowed, policy, what, keyword in (
        (
            header_value(ds, "BodyPartExamined"),
            rules.body_parts,
            rules.missing_body_part,
            "body_part",
            "BodyPartExamined",
        ),
        (
            header_value(ds, "ViewPosition"),
            rules.view_positions,
            rules.missing_view_position,
            "view_position",
            "ViewPosition",
        ),
    ):
        decision = _check_value(value, allowed, policy, what, keyword, warnings)
        if decision:
            return decision
    if header_value(ds, "BurnedInAnnotation") == "YES":
        warnings.append("burned_in_annotation: pixels may show patient identifiers (previews included)")
    return Decision(True, warnings=tuple(warnings))


def check_non_dicom(fmt: str, rules: SelectionRules) -> Decision:
    """PNG/JPEG/TIFF/MetaImage/NRRD/NIfTI: no DICOM header to apply the rules to; predicted only when
    ``allow_non_dicom``."""
    if rules.allow_non_dicom:
        return Decision(True, warnings=(f"no_dicom_header: {fmt.upper()} file, selection rules not applied",))
    return _skip(
        "non_dicom_image",
        f"{fmt.upper()} image without a DICOM header: the selection rules cannot be "
        "checked (use --allow-non-dicom to predict it anyway)",
    )
