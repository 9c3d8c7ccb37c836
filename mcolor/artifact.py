"""The trained-model artifact: what a trained mcolor model *is*, on disk and in memory.

A trained model is a MONAI bundle folder (the model zoo's layout):

* ``models/model.pt``: a plain ``state_dict`` of :class:`mcolor.networks.ColorizedClassifier`, so that
  ``monai.bundle.load``, ``ckpt_export`` and MONAI Deploy read it without options;
* ``configs/metadata.json``: the zoo's metadata, whose ``network_data_format`` describes the network's
  input and output, plus one mcolor section, ``mcolor_model``, holding everything else a trained model
  needs: the :class:`ModelSpec` (how to rebuild the network and preprocess its input), the
  :class:`OperatingPoint` (decision thresholds chosen on validation, and the calibration temperature),
  and the provenance (data, recipe, commit, sha256 of the weights). The bundle's configs read these
  values through ``@_meta_#mcolor_model#...``, so ``monai.bundle`` tools see them too.

Training (:class:`mcolor.engines.handlers.TrainedBundleWriter`), evaluation, inference and bundle
sharing all go through this module; it imports torch only (the network is built on first use), so
using a trained model needs neither the training engine nor MONAI.

Checkpoints written by mcolor 0.1 (one ``.pt`` holding ``{"model", "operating_point", "spec"}``) are
refused with a clear error, never half-loaded; :func:`convert_legacy_checkpoint` turns one into a bundle.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcolor import __version__
from mcolor.atomic import atomic_write
from mcolor.errors import BundleError, ConfigError, WeightsError

log = logging.getLogger(__name__)

MODEL_PT = "models/model.pt"
MODEL_TS = "models/model.ts"
MODEL_ONNX = "models/model.onnx"
METADATA = "configs/metadata.json"
SECTION = "mcolor_model"
#: Layout version of the ``mcolor_model`` section (1 was the nested checkpoint of mcolor 0.1). The configs read the
#: section as ``@_meta_::mcolor_model::...``.
FORMAT = 2
TASKS = ("binary", "multiclass", "multilabel")


@dataclass
class ModelSpec:
    """How to rebuild a trained network and prepare its input: the one set of defaults.

    These defaults are the bundle's defaults (``configs/metadata.json`` of the repository bundle holds the
    same values); a field missing from an older file takes its default here and nowhere else.
    """

    color_module: str = "coloru"
    backbone: str = "efficientnet_lite0"
    num_classes: int = 1
    task: str = "binary"
    labels: list[str] = field(default_factory=lambda: ["negative", "positive"])
    output_names: list[str] = field(default_factory=lambda: ["positive"])
    image_size: int = 128
    letterbox: str = "pad"
    imagenet_norm: bool | str = "auto"
    input_normalization: str = "minmax"
    mcolor_version: str = __version__

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"model task must be one of {TASKS}, got {self.task!r}", reason="bad_model_spec")
        self.num_classes = int(self.num_classes)
        self.image_size = int(self.image_size)
        self.labels = [str(v) for v in self.labels]
        self.output_names = [str(v) for v in self.output_names]
        if self.num_classes < 1 or self.image_size < 1:
            raise ConfigError(f"bad model spec: num_classes={self.num_classes}, image_size={self.image_size}",
                              reason="bad_model_spec")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """A spec from JSON/checkpoint data; unknown keys (a newer mcolor's) are ignored with a log line."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"model spec must be a mapping, got {type(data).__name__}", reason="bad_model_spec")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            log.info("model spec: ignoring keys this mcolor does not know: %s", unknown)
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad model spec: {exc}", reason="bad_model_spec") from exc

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # MONAI's checkpoint savers call these (the spec rides along in resume checkpoints).
    def state_dict(self) -> dict[str, Any]:
        return self.to_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        new = ModelSpec.from_dict(state)
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(new, f.name))


class OperatingPoint:
    """Per-output decision thresholds and the calibration temperature, chosen on validation.

    ``temperature`` (one value per output, or one for a multi-class softmax) divides the logits before
    the sigmoid/softmax; 1.0 means uncalibrated. Thresholds apply to the *calibrated* probabilities.
    Has ``state_dict``/``load_state_dict`` so resume checkpoints carry it.
    """

    def __init__(self, num_outputs: int = 1, threshold: float = 0.5, method: str = "youden",
                 target_sensitivity: float = 0.9) -> None:
        self.thresholds = [float(threshold)] * int(num_outputs)
        self.temperature = [1.0] * int(num_outputs)
        self.method = method
        self.target_sensitivity = float(target_sensitivity)

    def state_dict(self) -> dict[str, Any]:
        return {"thresholds": torch.tensor(self.thresholds, dtype=torch.float64), "method": self.method,
                "target_sensitivity": self.target_sensitivity,
                "temperature": torch.tensor(self.temperature, dtype=torch.float64)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.thresholds = [float(t) for t in torch.as_tensor(state["thresholds"]).tolist()]
        self.method = str(state.get("method", self.method))
        self.target_sensitivity = float(state.get("target_sensitivity", self.target_sensitivity))
        temperature = state.get("temperature")
        self.temperature = ([float(t) for t in torch.as_tensor(temperature).reshape(-1).tolist()]
                            if temperature is not None else [1.0] * len(self.thresholds))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``operating_point`` of ``mcolor_model``)."""
        return {"thresholds": list(self.thresholds), "method": self.method,
                "target_sensitivity": self.target_sensitivity, "temperature": list(self.temperature)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperatingPoint:
        thresholds = [float(t) for t in data.get("thresholds", [0.5])]
        op = cls(len(thresholds), method=str(data.get("method", "youden")),
                 target_sensitivity=float(data.get("target_sensitivity", 0.9)))
        op.thresholds = thresholds
        temperature = data.get("temperature")
        op.temperature = [float(t) for t in temperature] if temperature else [1.0] * len(thresholds)
        if not all(math.isfinite(t) and t > 0 for t in op.temperature):
            raise ConfigError(f"temperature must be positive, got {op.temperature}", reason="bad_model_spec")
        return op


def operating_point(data: Mapping[str, Any]) -> OperatingPoint:
    """An :class:`OperatingPoint` from its JSON form (``mcolor_model#operating_point`` in the configs)."""
    return OperatingPoint.from_dict(data)


def probabilities(logits: torch.Tensor, task: str, temperature: Sequence[float] | None = None) -> torch.Tensor:
    """Logits -> probabilities: softmax for multi-class, sigmoid otherwise, after dividing by ``temperature``."""
    x = logits.float()
    if temperature is not None and any(t != 1.0 for t in temperature):
        t = torch.as_tensor(list(temperature), dtype=x.dtype, device=x.device)
        x = x / (t[0] if task == "multiclass" else t)
    return torch.softmax(x, dim=1) if task == "multiclass" else torch.sigmoid(x)


# ---------------------------------------------------------------------------------------------- files


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file (streamed)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_weights(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a checkpoint, with its zip CRCs checked first.

    ``torch.load`` does not verify the CRCs, so a flipped byte in a tensor would load silently; a missing,
    truncated or foreign file becomes a :class:`WeightsError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}", reason="checkpoint_missing", path=path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad:
                raise ValueError(f"CRC mismatch in {bad}")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # garbage bytes, not a refused object or function
            raise WeightsError(f"checkpoint {path} is corrupt or not a weights-only checkpoint (UnpicklingError: "
                               f"{str(exc).partition(chr(10))[0][:200]})", reason="checkpoint_corrupt",
                               path=path) from exc
        # torch's weights_only refusal: the file holds pickled code or objects, not only tensors
        raise WeightsError(f"{path}: refused, it holds pickled objects other than weights (read weights_only=True)",
                           reason="unsafe_checkpoint", path=path) from exc
    except Exception as exc:  # every failure of an untrusted file is a typed error
        raise WeightsError(
            f"checkpoint {path} is corrupt or not a weights-only checkpoint ({type(exc).__name__}: "
            f"{str(exc).partition(chr(10))[0][:200]})", reason="checkpoint_corrupt", path=path) from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"checkpoint {path} does not hold a dict", reason="checkpoint_corrupt", path=path)
    return obj


def is_legacy_checkpoint(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is an mcolor 0.1 checkpoint (a nested dict with ``model`` and ``spec``)."""
    return isinstance(obj.get("model"), Mapping) and isinstance(obj.get("spec"), Mapping)


def _legacy_error(path: Path) -> BundleError:
    return BundleError(
        f"{path} is a checkpoint of mcolor 0.1 (model, spec and operating point nested in one file), not a "
        f"plain state dict; convert it once with `mcolor bundle convert {path} --out BUNDLE_DIR`",
        reason="legacy_checkpoint", path=path)


def state_dict_of(obj: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a plain state dict; a legacy or foreign checkpoint is a clear error."""
    if is_legacy_checkpoint(obj):
        raise _legacy_error(path)
    if not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise BundleError(f"{path} is not a plain state dict of tensors (keys: {sorted(obj)[:8]})",
                          reason="bad_model", path=path)
    return dict(obj)


def read_metadata_file(root: str | Path) -> dict[str, Any]:
    """``root/configs/metadata.json`` as a dict (no schema check: see :mod:`mcolor.bundle.metadata`)."""
    path = Path(root) / METADATA
    if not path.is_file():
        raise BundleError(f"{root} has no {METADATA}", reason="missing_metadata", path=path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path} is not readable JSON: {exc}", reason="bad_metadata", path=path) from exc
    if not isinstance(meta, dict):
        raise BundleError(f"{path} does not hold a JSON object", reason="bad_metadata", path=path)
    return meta


def model_section(metadata: Mapping[str, Any], source: str | Path = METADATA) -> dict[str, Any]:
    """The ``mcolor_model`` section of a bundle's metadata (a clear error when it is absent)."""
    section = metadata.get(SECTION)
    if not isinstance(section, Mapping) or not isinstance(section.get("spec"), Mapping):
        raise BundleError(f"{source} has no '{SECTION}' section with a 'spec': this is not an mcolor bundle",
                          reason="bad_metadata", path=source)
    return dict(section)


# --------------------------------------------------------------------------------------- the model


@dataclass
class TrainedModel:
    """A trained model: its spec, operating point and weights file; the eager network is built on use.

    Building the network imports timm (seconds); a TorchScript-only inference never does.
    """

    spec: ModelSpec
    operating_point: OperatingPoint
    weights: Path
    root: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _network: torch.nn.Module | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def output_names(self) -> list[str]:
        return list(self.spec.output_names)

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels) or self.output_names

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    @property
    def letterbox(self) -> str:
        return self.spec.letterbox

    @property
    def num_outputs(self) -> int:
        return self.spec.num_classes

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or (self.root.name if self.root else self.weights.stem))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version") or "unknown")

    @property
    def ts_path(self) -> Path | None:
        """``models/model.ts`` beside the weights, when the bundle ships one."""
        path = self.weights.parent / Path(MODEL_TS).name
        return path if path.is_file() else None

    def state_dict(self) -> dict[str, torch.Tensor]:
        return state_dict_of(read_weights(self.weights), self.weights)

    @property
    def network(self) -> torch.nn.Module:
        """The eager ``ColorizedClassifier`` with the trained weights, in eval mode (built once)."""
        if self._network is None:
            net = build_network(self.spec)
            load_state(net, self.state_dict(), self.weights)
            self._network = net.to(self.device).eval()
        return self._network

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities of the network's logits."""
        return probabilities(logits, self.task, self.operating_point.temperature)


def build_network(spec: ModelSpec) -> torch.nn.Module:
    """The untrained network ``spec`` describes, from mcolor's registry (no pretrained weights)."""
    from mcolor.networks import ColorizedClassifier

    return ColorizedClassifier(color_module=spec.color_module, backbone=spec.backbone,
                               num_classes=spec.num_classes, pretrained=False, imagenet_norm=spec.imagenet_norm)


def load_state(network: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | Path = MODEL_PT) -> None:
    """Strict ``load_state_dict``: every tensor must fit, or a BundleError lists what did not."""
    from mcolor.networks.classifier import unwrap  # lazily: timm loads only once a network exists

    net = unwrap(network)
    try:
        net.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        raise BundleError(f"{path} does not fit the network its metadata describes: "
                          f"{str(exc).splitlines()[0][:300]}", reason="weights_mismatch", path=path) from exc


def load_weights(network: torch.nn.Module, path: str | Path, device: str | torch.device | None = None
                 ) -> torch.nn.Module:
    """Load ``path`` (a plain state dict) into ``network`` strictly; the bundle configs' loader."""
    path = Path(path)
    load_state(network, state_dict_of(read_weights(path), path), path)
    if device is not None:
        network = network.to(device)
    return network


def load_bundle_weights(network: torch.nn.Module, bundle_root: str | Path,
                        device: str | torch.device | None = None) -> torch.nn.Module:
    """The bundle configs' loader: ``bundle_root/models/model.pt`` into ``network``, strictly, in eval mode.

    The weights must be the file the bundle's metadata describes (sha256), and a legacy or missing file is
    a clear error, so a config never runs an untrained or mismatched network.
    """
    root = Path(bundle_root)
    weights = root / MODEL_PT
    if not weights.is_file():
        raise BundleError(f"bundle {root.resolve()} has no {MODEL_PT}: train it first (configs/train.json) or "
                          "download its weights", reason="missing_model", path=weights)
    if (root / METADATA).is_file():
        expected = (model_section(read_metadata_file(root), root / METADATA).get("provenance") or {}).get(
            "weights_sha256")
        if expected and sha256_file(weights) != expected:
            raise BundleError(f"{weights} is not the file {root / METADATA} describes (sha256 differs)",
                              reason="hash_mismatch", path=weights)
    network = load_weights(network, weights, device)
    return network.eval()


def _bundle_root_of(path: Path) -> Path:
    """The bundle folder of ``path``: the folder itself, or the bundle above ``models/model.pt``."""
    if path.is_dir():
        return path
    if path.parent.name == "models" and (path.parent.parent / METADATA).is_file():
        return path.parent.parent
    raise BundleError(f"{path} is not inside a bundle (no {METADATA} beside its models/ folder): a trained "
                      "model is a bundle folder (configs/metadata.json + models/model.pt)",
                      reason="not_a_bundle", path=path)


def load_trained_model(path: str | Path, device: str | torch.device = "cpu",
                       check_hash: bool = True) -> TrainedModel:
    """Open the trained model of a bundle folder (or of its ``models/model.pt``) without running configs.

    The spec and operating point come from ``configs/metadata.json``; the weights' sha256, when the
    metadata records it, must match ``models/model.pt``. A legacy (mcolor 0.1) checkpoint is refused.
    """
    from mcolor.options import resolve_device

    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".pt" and path.parent.name != "models":
        obj = read_weights(path)
        if is_legacy_checkpoint(obj):
            raise _legacy_error(path)
    root = _bundle_root_of(path)
    meta = read_metadata_file(root)
    weights = root / MODEL_PT
    try:
        section = model_section(meta, root / METADATA)
    except BundleError:
        if weights.is_file() and is_legacy_checkpoint(read_weights(weights)):
            raise _legacy_error(weights) from None  # a bundle packed by mcolor 0.1
        raise
    if not weights.is_file():
        raise BundleError(f"bundle {root} has no {MODEL_PT} (it has not been trained, or its weights were not "
                          "downloaded)", reason="missing_model", path=weights)
    expected = (section.get("provenance") or {}).get("weights_sha256")
    if check_hash and expected and sha256_file(weights) != expected:
        raise BundleError(f"{weights} is not the file {root / METADATA} describes (sha256 differs): the weights "
                          "were replaced or training was interrupted between the two writes",
                          reason="hash_mismatch", path=weights)
    spec = ModelSpec.from_dict(section["spec"])
    op = OperatingPoint.from_dict(section.get("operating_point") or {"thresholds": [0.5] * spec.num_classes})
    return TrainedModel(spec, op, weights, root, meta, resolve_device(device))


# ---------------------------------------------------------------------------------------- writing


def describe_model(metadata: Mapping[str, Any], spec: ModelSpec, operating_point: OperatingPoint,
                   provenance: Mapping[str, Any] | None = None,
                   eval_metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``metadata`` that describes this trained model (``network_data_format`` included)."""
    meta = copy.deepcopy(dict(metadata))
    fmt = meta.setdefault("network_data_format", {})
    image = fmt.setdefault("inputs", {}).setdefault("image", {})
    image.update({"type": "image", "format": "magnitude", "modality": "xray", "num_channels": 1,
                  "spatial_shape": [spec.image_size, spec.image_size], "dtype": "float32", "value_range": [0, 1],
                  "is_patch_data": False})
    image.setdefault("channel_def", {"0": "radiograph intensity, bone bright"})
    pred = fmt.setdefault("outputs", {}).setdefault("pred", {})
    kind = "logit (softmax over classes) of" if spec.task == "multiclass" else "logit of"
    pred.update({"type": "logits", "format": "classes", "modality": "n/a", "num_channels": spec.num_classes,
                 "spatial_shape": [spec.num_classes], "dtype": "float32", "value_range": [], "is_patch_data": False,
                 "is_onehot": False,
                 "channel_def": {str(i): f"{kind} {n}" for i, n in enumerate(spec.output_names)}})
    section = dict(meta.get(SECTION) or {})
    section.update({"format": FORMAT, "spec": spec.to_dict(), "operating_point": operating_point.to_dict()})
    if provenance is not None:
        section["provenance"] = dict(provenance)
    meta[SECTION] = section
    if eval_metrics is not None:
        meta["eval_metrics"] = {k: v for k, v in eval_metrics.items()
                                if isinstance(v, int | float) and math.isfinite(float(v))}
    return meta


def json_text(obj: Any) -> str:
    """JSON as the model zoo formats it (4-space indent, key order kept, newline at the end)."""
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


def write_trained_model(root: str | Path, state: Mapping[str, torch.Tensor], spec: ModelSpec,
                        operating_point: OperatingPoint, provenance: Mapping[str, Any] | None = None,
                        eval_metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``models/model.pt`` and then describe it in ``configs/metadata.json``, both atomically.

    The metadata records the weights' sha256, so a crash between the two writes (or a swapped file) is
    detected when the model is loaded rather than pairing weights with another model's threshold.
    """
    import io

    root = Path(root)
    weights = root / MODEL_PT
    buf = io.BytesIO()  # serialise first: torch's zip writer turns a full disk into an opaque error
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    atomic_write(weights, lambda fh: fh.write(buf.getbuffer()), mode="wb")
    prov = dict(provenance or {})
    prov["weights_sha256"] = sha256_file(weights)
    meta = describe_model(read_metadata_file(root), spec, operating_point, prov, eval_metrics)
    atomic_write(root / METADATA, lambda fh: fh.write(json_text(meta)), encoding="utf-8")
    return weights


#: Largest |TorchScript - eager| accepted on a random batch (float32, same CPU kernels: differences are ~1e-6).
TS_ATOL = 1e-4


def config_extra_files(root: str | Path) -> dict[str, bytes]:
    """The bundle's configs (JSON, metadata excepted) to embed in ``model.ts``, as ``ckpt_export`` does."""
    files = {}
    for path in sorted((Path(root) / "configs").glob("*.json")):
        if path.name != "metadata.json":
            files[path.name] = json.dumps(json.loads(path.read_text(encoding="utf-8"))).encode()
    return files


def write_torchscript(root: str | Path, out: str | Path | None = None) -> Path:
    """Script the bundle's trained network to ``models/model.ts`` in MONAI's ``ckpt_export`` format.

    ``torch.jit.script`` (not trace: any input size works) of the eager network, saved with
    ``monai.data.save_net_with_metadata`` carrying ``metadata.json`` (the bundle's, whose weights digest lets
    a loader tell a stale export) and the configs as extra files, which is what MONAI Deploy reads. The export
    is checked against the eager network on a random batch before it replaces anything.
    """
    import os
    import shutil
    import tempfile
    import warnings

    from monai.data import save_net_with_metadata

    root = Path(root)
    target = Path(out) if out is not None else root / MODEL_TS
    trained = load_trained_model(root)
    network = trained.network
    # torch names the archive's root folder after the file it writes, and MONAI Deploy looks for
    # ``<stem>/extra/inference.json``: write under the final name in a private folder, then move into place.
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staged = tmp_dir / target.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated upstream; MONAI's format still uses it
            scripted = torch.jit.script(network)
            save_net_with_metadata(scripted, str(staged), include_config_vals=False,
                                   meta_values=trained.metadata, more_extra_files=config_extra_files(root))
            check = torch.jit.load(str(staged), map_location="cpu")
        x = torch.rand(2, 1, trained.image_size, trained.image_size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            diff = float((check(x) - network(x)).abs().max())
        if not diff <= TS_ATOL:
            raise BundleError(f"TorchScript export of {root} differs from the eager network (max |diff| {diff:.3g})",
                              reason="export_mismatch", path=root)
        os.replace(staged, target)
    except OSError as exc:
        raise BundleError(f"cannot write {target}: {exc.strerror or exc}", reason="output_not_writable",
                          path=target) from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return target


def convert_legacy_checkpoint(checkpoint: str | Path, bundle_root: str | Path) -> Path:
    """Turn an mcolor 0.1 checkpoint into the trained model of the bundle folder ``bundle_root``.

    ``bundle_root`` must already be a bundle (copy ``bundles/cxr_colorization`` there first, or use the
    CLI, which does); its ``models/model.pt`` and metadata are (re)written.
    """
    checkpoint = Path(checkpoint)
    obj = read_weights(checkpoint)
    if not is_legacy_checkpoint(obj):
        raise BundleError(f"{checkpoint} is not an mcolor 0.1 checkpoint (no nested 'model' and 'spec')",
                          reason="not_legacy", path=checkpoint)
    spec = ModelSpec.from_dict(obj["spec"])
    op = OperatingPoint(spec.num_classes if spec.task != "multiclass" else 1)
    if isinstance(obj.get("operating_point"), Mapping):
        op.load_state_dict(obj["operating_point"])
    network = build_network(spec)
    load_state(network, obj["model"], checkpoint)  # prove the weights fit before writing anything
    provenance = {"converted_from": str(checkpoint.name), "converted_by": f"mcolor {__version__}",
                  "source_sha256": sha256_file(checkpoint)}
    return write_trained_model(bundle_root, obj["model"], spec, op, provenance)
