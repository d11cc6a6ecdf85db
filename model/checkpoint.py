"""Self-describing RCMA checkpoints: weights plus everything needed to use them correctly.

A checkpoint records the model configuration, which feature extractor produced each
modality (and its dim), the frame rate and window length it was trained at, what data
it was trained on, its validation metrics and the code version. Loading checks all of
it and fails with one line that names the file and the fix.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from affectflow.model.rcma import MODALITIES, RCMA, RCMAConfig

FORMAT = "affectflow-rcma/1"


class CheckpointError(Exception):
    """A checkpoint is missing, corrupt, not ours, or does not fit the features at hand."""


@dataclass
class CheckpointInfo:
    config: dict[str, Any]  # RCMAConfig fields
    features: dict[str, dict[str, Any]]  # modality -> {"extractor": name, "dim": D}
    fps: float | None  # frame rate of the features (Aff-Wild2: each video's own rate → None)
    targets: list[str]  # output columns, e.g. ["valence", "arousal"]
    training: dict[str, Any] = field(default_factory=dict)  # data, splits, TrainConfig, epochs run
    metrics: dict[str, Any] = field(default_factory=dict)  # best validation CCCs
    code_version: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def seq_len(self) -> int:
        return int(self.config["seq_len"])


def code_version() -> dict[str, str]:
    """Package version and a hash of the network's source, which decides what weights mean."""
    try:
        package = version("affectflow")
    except PackageNotFoundError:
        package = "0+unknown"
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join((here / f).read_bytes() for f in ("rcma.py", "tcn.py"))).hexdigest()
    return {"package": package, "model_code": digest[:12]}


def save_checkpoint(path: Path, model: RCMA, info: CheckpointInfo) -> None:
    """Write atomically: a crash mid-save leaves the previous checkpoint intact."""
    info.config = asdict(model.config)
    info.code_version = code_version()
    info.created = datetime.now(UTC).isoformat(timespec="seconds")
    payload = {"format": FORMAT, "info": asdict(info), "state_dict": model.state_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[RCMA, CheckpointInfo]:
    """The model (in eval mode) and its description."""
    payload = read_payload(path, map_location)
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an affectflow RCMA checkpoint (format {payload.get('format')!r})")
    info = CheckpointInfo(**payload["info"])
    model = RCMA(RCMAConfig.from_dict(info.config))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path}: weights do not fit the recorded configuration ({first})") from err
    return model.eval(), info


def read_payload(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw saved dict (plain types and tensors only: loaded with ``weights_only``)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; train one with `affectflow train --out {path}`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{path}: corrupt or truncated checkpoint ({type(err).__name__}); train or copy it again"
        ) from err
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not an affectflow RCMA checkpoint")
    return payload


def check_features(info: CheckpointInfo, features: dict[str, dict[str, Any]], path: Path) -> None:
    """Fail when the features at hand are not the kind the checkpoint was trained on."""
    for m in MODALITIES:
        want, have = info.features.get(m, {}), features.get(m, {})
        if want.get("dim") != have.get("dim"):
            raise CheckpointError(
                f"{path}: expects {m} features of dim {want.get('dim')} ({want.get('extractor')}), "
                f"the cache has dim {have.get('dim')} ({have.get('extractor')}); extract with the same extractor"
            )
        if want.get("extractor") not in (None, "unknown") and have.get("extractor") not in (
            None,
            "unknown",
            want.get("extractor"),
        ):
            raise CheckpointError(
                f"{path}: trained on {m} features from {want['extractor']}, the cache has {have['extractor']}; "
                "extract with the same extractor"
            )
