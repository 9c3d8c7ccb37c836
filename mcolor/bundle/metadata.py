"""Bundle ``configs/metadata.json``: read it and check it against the schema kept in the repository.

The schema (``mcolor/schemas/bundle_metadata.schema.json``) covers every mandatory key of the MONAI
bundle specification plus mcolor's own; it is read from the package, so checking never downloads
anything (MONAI's ``verify_metadata`` fetches the schema named in the file unless given ``filepath``).
JSON Schema cannot say "the changelog has an entry for ``version``", so that rule is checked here.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from mcolor.errors import BundleError

SCHEMA_RESOURCE = "schemas/bundle_metadata.schema.json"
#: MONAI's metadata schema as published in the MONAI-extra-test-data repository (PR 15, commit cecb1523,
#: the nearest text of the release assets ``meta_schema_*.json``, which are not in any repository).
MONAI_SCHEMA_RESOURCE = "schemas/monai_meta_schema_draft.json"


def schema_path() -> Path:
    """Filesystem path of mcolor's metadata schema (for ``monai.bundle.verify_metadata(filepath=...)``)."""
    return Path(str(resources.files("mcolor").joinpath(SCHEMA_RESOURCE)))


def monai_schema_path() -> Path:
    """Filesystem path of the vendored MONAI metadata schema (see :data:`MONAI_SCHEMA_RESOURCE`)."""
    return Path(str(resources.files("mcolor").joinpath(MONAI_SCHEMA_RESOURCE)))


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The metadata JSON schema shipped with mcolor."""
    return json.loads(schema_path().read_text(encoding="utf-8"))


def _where(error: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(top level)"


def metadata_problems(meta: Any) -> list[str]:
    """Every way ``meta`` breaks the schema or the changelog rule, as sentences; empty when valid."""
    if not isinstance(meta, dict):
        return [f"metadata must be a JSON object, got {type(meta).__name__}"]
    validator = jsonschema.Draft7Validator(load_schema())
    problems = []
    errors = sorted(validator.iter_errors(meta), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for err in errors:
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in err.instance]
            problems.extend(f"missing mandatory key {k!r} in {_where(err)}" for k in missing)
        else:
            problems.append(f"{_where(err)}: {err.message}")
    problems = list(dict.fromkeys(problems))  # one "required" error per key lists all missing keys
    version, changelog = meta.get("version"), meta.get("changelog")
    if isinstance(version, str) and isinstance(changelog, dict) and version not in changelog:
        problems.append(f"changelog has no entry for version {version!r}")
    return problems


def check_metadata(meta: Any, source: str | Path = "metadata.json") -> dict[str, Any]:
    """Return ``meta`` if valid, else raise ``BundleError(reason="bad_metadata")`` listing the problems."""
    problems = metadata_problems(meta)
    if problems:
        raise BundleError(f"{source} is not valid bundle metadata: " + "; ".join(problems),
                          reason="bad_metadata", path=source)
    return meta


def parse_metadata(text: str | bytes, source: str | Path = "metadata.json") -> dict[str, Any]:
    """Parse and check metadata text (also used on a zip member before anything is extracted)."""
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{source} is not valid JSON: {exc}", reason="bad_metadata", path=source) from exc
    return check_metadata(meta, source)


def read_metadata(root: str | Path) -> dict[str, Any]:
    """Read and check ``root/configs/metadata.json``."""
    path = Path(root) / "configs" / "metadata.json"
    if not path.is_file():
        raise BundleError(f"bundle {root} has no configs/metadata.json", reason="missing_metadata", path=path)
    return parse_metadata(path.read_bytes(), path)
