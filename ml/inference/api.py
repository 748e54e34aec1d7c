"""The one interface the web side uses: volume (z, y, x) + spacing -> label volume.

Importing this module is cheap (numpy only); torch and the model library load inside
`load_segmenter`. Build one Segmenter per worker process and reuse it: `load_segmenter`
caches by folder, device, weights file and config.

    seg = load_segmenter(settings.MODEL_DIR / "phantom-demo")
    result = seg.segment(volume, (sz, sy, sx), axis_directions=axes)
    result.labels, result.label_map, result.model_version

Grades: when the checkpoint folder holds a stenosis grader (DIR/grader/, written by
`python -m ml train-grader --into DIR`, or `load_segmenter(..., grader_dir=...)`) and the
caller passes `level_slices` (disc level -> index of the axial slice nearest that disc's
mid-plane), `result.grades[level]` holds the central canal stenosis grade of each level whose
slice shows a canal, and `result.grader_version` names the grader. When the levels are only
known after segmenting (from the sagittal series), `seg.grade(volume, spacing, labels,
level_slices)` grades the stored axial labels without segmenting again.

Axes: volume[k, r, c] is slice k, row r, column c. For a DICOM series, sort the slices along
the slice normal (or in any order) and pass `axis_directions` = the patient-space (LPS) unit
vectors along which the z, y and x indices increase: z = direction from slice k to k+1
(IPP difference, normalised), y = the column cosine (IOP[3:6]), x = the row cosine (IOP[0:3]).
See `axis_directions_from_dicom`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ml.grading.inference import Grader
    from ml.preprocessing import Preprocessing

AxisDirections = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

_SPINE_LABELS = (1, 2, 3, 4)  # vertebral body, disc, canal, dural sac: they define the midline
_LEFT, _RIGHT = 5, 6


@dataclass(frozen=True)
class TaskGrade:
    """The grader's answer to one of its other tasks (e.g. the sedimentation sign) on one level."""

    task: str
    index: int
    """Index into `classes`."""
    name: str
    """classes[index]."""
    probabilities: tuple[float, ...]
    """Per class, summing to 1."""
    classes: tuple[str, ...]
    """Mildest / absent first."""


@dataclass(frozen=True)
class LevelGrade:
    """Central canal stenosis grade of one disc level, from the grader, with its other tasks'."""

    level: str
    grade: int
    """Index into `grades` (0 = normal ... 3 = severe)."""
    name: str
    """grades[grade]."""
    probabilities: tuple[float, ...]
    """Per grade, summing to 1."""
    slice_index: int
    """z index of the axial slice graded."""
    grades: tuple[str, ...]
    tasks: dict[str, TaskGrade] = field(default_factory=dict)
    """The grader's other tasks (not the stenosis grade) by key; empty for a stenosis-only grader."""


@dataclass(frozen=True)
class SegmentationResult:
    labels: NDArray[np.uint8]
    """uint8 (z, y, x), same shape as the input volume."""
    label_map: dict[int, str]
    """Label value -> structure name (background 0 not listed), from the checkpoint."""
    model_version: str
    """"<name>@<first 12 hex digits of sha256(weights.pt)>"."""
    grades: dict[str, LevelGrade] = field(default_factory=dict)
    """Disc level -> grade; empty without a grader or without `level_slices`."""
    grader_version: str | None = None
    """"<grader name>@<sha256(grader weights)[:12]>" when grades were computed."""


def axis_directions_from_dicom(
    image_orientation: Sequence[float],
    first_position: Sequence[float],
    last_position: Sequence[float] | None = None,
) -> AxisDirections:
    """Axis directions for a volume built from DICOM slices.

    `image_orientation` is IOP (row cosine, then column cosine); `first_position` and
    `last_position` the ImagePositionPatient of volume[0] and volume[-1]. With one slice (or
    no last position) z is taken along the normal row x column.
    """
    iop = np.asarray(image_orientation, dtype=float)
    if iop.shape != (6,) or not np.all(np.isfinite(iop)):
        raise ValueError(f"image_orientation must be 6 finite numbers, got {image_orientation!r}")
    row, col = iop[:3], iop[3:]
    z = np.cross(row, col)
    if last_position is not None:
        d = np.asarray(last_position, dtype=float) - np.asarray(first_position, dtype=float)
        if d.shape != (3,) or not np.all(np.isfinite(d)):
            raise ValueError("positions must be 3 finite numbers each")
        if np.linalg.norm(d) > 1e-6:
            z = d
    z = z / np.linalg.norm(z)

    def t(v: NDArray[np.float64]) -> tuple[float, float, float]:
        return (float(v[0]), float(v[1]), float(v[2]))

    return (t(z), t(col), t(row))


class Segmenter:
    """A loaded model, ready to segment volumes. Build with load_segmenter()."""

    def __init__(
        self,
        model: nn.Module,
        config: dict[str, Any],
        model_version: str,
        device: str,
        *,
        batch_size: int = 16,
        grader: Grader | None = None,
    ) -> None:
        from ml.preprocessing import Preprocessing

        self._model = model
        self._device = device
        self._batch_size = batch_size
        self._prep: Preprocessing = Preprocessing.from_dict(config["preprocessing"])
        from ml.calibration import offsets_from_config

        self._offsets = offsets_from_config(config, int(config["classes"])) if "calibration" in config else None
        """Size calibration (ml.calibration): added to each class's logit before the argmax."""
        self._lock = threading.Lock()
        self.config = config
        self.model_version = model_version
        self.label_map: dict[int, str] = {int(k): v for k, v in config["label_map"].items()}
        self.device = device
        self.grader = grader
        self.oom_retries = 0
        """How many times a batch was retried at half size after CUDA ran out of memory."""

    def without_calibration(self) -> Segmenter:
        """The same model without its size calibration (raw argmax), for comparisons; its
        version says so."""
        config = {k: v for k, v in self.config.items() if k != "calibration"}
        version = self.model_version if self._offsets is None else f"{self.model_version} (uncalibrated)"
        return Segmenter(self._model, config, version, self._device, batch_size=self._batch_size, grader=self.grader)

    @property
    def batch_size(self) -> int:
        """Slices per forward pass (halved after each CUDA out-of-memory error)."""
        return self._batch_size

    def segment(
        self,
        volume: NDArray[Any],
        spacing_mm: tuple[float, float, float],
        *,
        axis_directions: AxisDirections | None = None,
        level_slices: Mapping[str, int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SegmentationResult:
        """Segment every slice of `volume` (z, y, x); `spacing_mm` is (z, y, x) in mm.

        `progress(slices_done, slices_total)` is called after each batch (e.g. to store a job's
        progress). On CUDA out of memory the batch is retried with half as many slices (down
        to one); the smaller batch size is kept for later calls (`batch_size`, `oom_retries`).

        Slices are segmented in 2-D (the in-plane spacing sets the scale; the z spacing is
        only validated). With `axis_directions`, paraspinal muscle voxels are assigned to the
        patient's left (+x) or right side of the spine's midline from the geometry; without
        it, the sides come from the network, which is reliable on axial slices in the
        standard orientation (image right = patient left) but not on sagittal ones.

        With `level_slices` (disc level -> z index of its mid-plane axial slice) and a grader,
        each level whose slice shows a canal (labels spinal canal / dural sac) is graded on a
        patch centred there; a level without a canal is left out of `grades`.
        """
        array = _check_volume(volume)
        spacing = _check_spacing(spacing_mm)
        directions = _check_directions(axis_directions)
        levels = _check_level_slices(level_slices, array.shape[0])
        labels = np.empty(array.shape, dtype=np.uint8)
        import torch

        def keep(start: int, logits: torch.Tensor) -> None:
            labels[start : start + len(logits)] = logits.argmax(dim=1).to(torch.uint8).cpu().numpy()

        self._forward(array, spacing, keep, calibrated=True, progress=progress)
        if directions is not None:
            _assign_sides(labels, spacing, directions)
        grades: dict[str, LevelGrade] = {}
        if levels and self.grader is not None:
            grades = self._grade(array, (spacing[1], spacing[2]), labels, levels)
        return SegmentationResult(
            labels=labels,
            label_map=dict(self.label_map),
            model_version=self.model_version,
            grades=grades,
            grader_version=self.grader.version if self.grader is not None and levels else None,
        )

    def logits(self, volume: NDArray[Any], spacing_mm: tuple[float, float, float], *, calibrated: bool = False) -> torch.Tensor:
        """The network's logits (z, classes, y, x) on the CPU, float32, at the volume's own
        resolution: what `segment` takes the argmax of (with `calibrated`, the checkpoint's
        logit offsets added first; ml.calibration fits them on the uncalibrated ones)."""
        import torch

        array = _check_volume(volume)
        spacing = _check_spacing(spacing_mm)
        batches: list[torch.Tensor] = []

        def keep(start: int, logits: torch.Tensor) -> None:
            batches.append(logits.cpu())  # in slice order: a batch is kept once, after it ran

        self._forward(array, spacing, keep, calibrated=calibrated)
        return torch.cat(batches)

    def _forward(
        self,
        array: NDArray[np.float32],
        spacing: tuple[float, float, float],
        keep: Callable[[int, torch.Tensor], None],
        *,
        calibrated: bool,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Runs the model over the slices in batches; `keep(first slice, logits)` receives each
        batch's logits resized to the slice grid. On CUDA out of memory the batch is retried
        with half as many slices (see `segment`)."""
        import torch

        from ml.preprocessing import pad_to_multiple, prepare_slices, resample

        nz, h, w = array.shape
        device_type = "cuda" if self._device.startswith("cuda") else "cpu"
        offsets = (
            torch.tensor(self._offsets, dtype=torch.float32, device=self._device)[None, :, None, None]
            if calibrated and self._offsets is not None
            else None
        )

        def run_batch(start: int, stop: int) -> None:
            chunk = torch.from_numpy(array[start:stop])
            x = prepare_slices(chunk, (spacing[1], spacing[2]), self._prep)
            hs, ws = x.shape[-2:]
            x = pad_to_multiple(x, self._prep.pad_multiple).to(self._device, memory_format=torch.channels_last)
            with torch.autocast(device_type, enabled=device_type == "cuda"):
                logits = self._model(x)
            logits = logits[..., :hs, :ws].float()
            if offsets is not None:
                logits = logits + offsets  # a constant per class: the same before or after resizing
            keep(start, resample(logits, (h, w)))

        with self._lock, torch.inference_mode():
            start = 0
            while start < nz:
                stop = min(nz, start + self._batch_size)
                try:
                    run_batch(start, stop)
                except torch.cuda.OutOfMemoryError:
                    # Another process (or a larger series) took the GPU memory this batch size
                    # needed: halve it for this and later calls, and retry the same slices.
                    if self._batch_size == 1:
                        raise
                    self._batch_size = max(1, self._batch_size // 2)
                    self.oom_retries += 1
                    if device_type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                start = stop
                if progress is not None:
                    progress(start, nz)

    @property
    def grader_version(self) -> str | None:
        return self.grader.version if self.grader is not None else None

    def grade(
        self,
        volume: NDArray[Any],
        spacing_mm: tuple[float, float, float],
        labels: NDArray[Any],
        level_slices: Mapping[str, int],
    ) -> dict[str, LevelGrade]:
        """Grade levels of an axial volume whose labels exist already (e.g. a stored AI mask):
        the same as `segment(..., level_slices=)` without segmenting again. ValueError without
        a grader, or when labels and volume differ in shape."""
        if self.grader is None:
            raise ValueError("this model has no stenosis grader (no grader/ in its folder)")
        array = _check_volume(volume)
        spacing = _check_spacing(spacing_mm)
        label_array = np.asarray(labels)
        if label_array.shape != array.shape:
            raise ValueError(f"labels {label_array.shape} and volume {array.shape} differ in shape")
        levels = _check_level_slices(level_slices, array.shape[0])
        return self._grade(array, (spacing[1], spacing[2]), label_array.astype(np.uint8), levels)

    def _grade(
        self,
        array: NDArray[np.float32],
        pixel_spacing: tuple[float, float],
        labels: NDArray[np.uint8],
        levels: dict[str, int],
    ) -> dict[str, LevelGrade]:
        from ml.grading.inference import STENOSIS_TASK
        from ml.grading.patches import canal_centre

        assert self.grader is not None
        todo = [(lv, k, c) for lv, k in levels.items() if (c := canal_centre(labels[k])) is not None]
        if not todo:
            return {}
        with self._lock:
            probs = self.grader.grade_tasks(array[[k for _, k, _ in todo]], pixel_spacing, [c for _, _, c in todo])
        names = self.grader.grades
        out = {}
        for i, (level, k, _) in enumerate(todo):
            p = probs[STENOSIS_TASK][i]
            g = int(np.argmax(p))
            others = {}
            for task, classes in self.grader.tasks.items():
                if task != STENOSIS_TASK:
                    j = int(np.argmax(probs[task][i]))
                    others[task] = TaskGrade(task=task, index=j, name=classes[j], classes=classes,
                                             probabilities=tuple(float(v) for v in probs[task][i]))
            out[level] = LevelGrade(
                level=level, grade=g, name=names[g], probabilities=tuple(float(v) for v in p), slice_index=k, grades=names,
                tasks=others,
            )
        return out


def _check_level_slices(level_slices: Any, nz: int) -> dict[str, int]:
    if level_slices is None:
        return {}
    if not isinstance(level_slices, Mapping):
        raise ValueError("level_slices must map disc level names to slice indices")
    out: dict[str, int] = {}
    for level, k in level_slices.items():
        if not isinstance(level, str) or isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"level_slices must map level names to int slice indices, got {level!r}: {k!r}")
        if not 0 <= int(k) < nz:
            raise ValueError(f"level_slices[{level!r}] = {k} is outside the volume's {nz} slices")
        out[level] = int(k)
    return out


def _check_volume(volume: Any) -> NDArray[np.float32]:
    if not isinstance(volume, np.ndarray):
        raise ValueError(f"volume must be a numpy array, got {type(volume).__name__}")
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got shape {volume.shape}")
    if volume.size == 0:
        raise ValueError(f"volume is empty, shape {volume.shape}")
    if volume.dtype == np.bool_ or not (np.issubdtype(volume.dtype, np.integer) or np.issubdtype(volume.dtype, np.floating)):
        raise ValueError(f"volume must hold integers or floats, got dtype {volume.dtype}")
    array = np.ascontiguousarray(volume, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("volume contains NaN or infinite values")
    if min(array.shape[1:]) < 8:
        raise ValueError(f"slices of {array.shape[1]}x{array.shape[2]} pixels are too small")
    return array


def _check_spacing(spacing_mm: Any) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in spacing_mm)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spacing_mm must be 3 numbers (z, y, x) in mm: {exc}") from exc
    if len(values) != 3 or not all(np.isfinite(v) and 0.0 < v < 100.0 for v in values):
        raise ValueError(f"spacing_mm must be 3 positive numbers (z, y, x) in mm, got {spacing_mm!r}")
    return (values[0], values[1], values[2])


def _check_directions(directions: Any) -> NDArray[np.float64] | None:
    if directions is None:
        return None
    d = np.asarray(directions, dtype=float)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)):
        raise ValueError("axis_directions must be three 3-vectors (z, y, x axes), LPS")
    norms = np.linalg.norm(d, axis=1)
    if np.any(np.abs(norms - 1.0) > 1e-3):
        raise ValueError(f"axis_directions must be unit vectors, norms {norms.tolist()}")
    return d


def _assign_sides(labels: NDArray[np.uint8], spacing: tuple[float, float, float], directions: NDArray[np.float64]) -> None:
    """Relabel muscle voxels as left/right by their patient x relative to the spine midline."""
    muscle = (labels == _LEFT) | (labels == _RIGHT)
    if not muscle.any():
        return
    # patient x (up to a constant) of every index along each axis
    x_axes = [np.arange(n) * s * directions[a][0] for a, (n, s) in enumerate(zip(labels.shape, spacing, strict=True))]
    px = x_axes[0][:, None, None] + x_axes[1][None, :, None] + x_axes[2][None, None, :]
    spine = np.isin(labels, _SPINE_LABELS)
    px_full = np.broadcast_to(px, labels.shape)
    midline = float(px_full[spine].mean()) if spine.any() else float(px_full.mean())
    side_left = px_full > midline
    labels[muscle & side_left] = _LEFT
    labels[muscle & ~side_left] = _RIGHT


_CACHE: dict[tuple[Any, ...], Segmenter] = {}
_CACHE_LOCK = threading.Lock()


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return device


GRADER_SUBFOLDER = "grader"


def load_segmenter(
    model_dir: str | os.PathLike[str],
    *,
    device: str = "auto",
    grader_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 16,
) -> Segmenter:
    """Load (once per process, then reuse) the model in `model_dir`, with the stenosis grader
    in `grader_dir` or, by default, in `model_dir`/grader when there is one. `batch_size` is
    the number of slices per forward pass (halved on CUDA out of memory).

    Raises ValueError with the reason when a folder is missing, incomplete or corrupt.
    """
    from ml.checkpoint import WEIGHTS, load_model, read_config

    path = Path(model_dir).resolve()
    config = read_config(path)  # fail fast with a clear reason before importing torch fully
    grader_path: Path | None = Path(grader_dir).resolve() if grader_dir is not None else path / GRADER_SUBFOLDER
    if grader_dir is None and grader_path is not None and not grader_path.is_dir():
        grader_path = None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}")
    resolved = _resolve_device(device)
    stat = (path / WEIGHTS).stat()
    # the config too: its calibration offsets change what the same weights segment
    key: tuple[Any, ...] = (str(path), resolved, stat.st_mtime_ns, stat.st_size, batch_size, json.dumps(config, sort_keys=True))
    if grader_path is not None:
        if not (grader_path / WEIGHTS).is_file():
            raise ValueError(f"grader folder {grader_path} has no {WEIGHTS}")
        gstat = (grader_path / WEIGHTS).stat()
        key += (str(grader_path), gstat.st_mtime_ns, gstat.st_size)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        model, config, version = load_model(path, resolved)
        grader = None
        if grader_path is not None:
            from ml.grading.inference import load_grader

            grader = load_grader(grader_path, resolved)
        segmenter = Segmenter(model, config, version, resolved, batch_size=batch_size, grader=grader)
        _CACHE[key] = segmenter
        return segmenter


@dataclass(frozen=True)
class CheckpointInfo:
    """What the web side records when it registers a checkpoint folder."""

    name: str
    model_version: str
    label_map: dict[int, str]
    config: dict[str, Any]
    metrics: dict[str, Any]
    grader: dict[str, Any] = field(default_factory=dict)
    """The stenosis grader in DIR/grader/: name, version, grades (class names, mildest first) and its
    held-out scores (accuracy, kappa) when its metrics.json has them, and its other tasks
    ({key: {"classes", "heldout"}}, e.g. the sedimentation sign); {} without a grader."""


def checkpoint_describe(model_dir: str | os.PathLike[str]) -> CheckpointInfo:
    """Validate a checkpoint folder and describe it without importing torch.

    Raises ValueError with the reason when the folder is missing, incomplete, its config is
    invalid or its weights file is not an intact torch archive (truncated, bytes changed: the
    archive's CRCs are checked). Weights that are intact but do not fit the architecture are
    found by `checkpoint_verify` (which imports torch) or by `load_segmenter`, on the worker.
    """
    import json

    from ml.checkpoint import METRICS, WEIGHTS, model_version, read_config

    path = Path(model_dir).resolve()
    config = read_config(path)
    _check_weights_archive(path / WEIGHTS)
    grader_path = path / GRADER_SUBFOLDER
    grader: dict[str, Any] = {}
    if grader_path.is_dir():
        from ml.grading.inference import STENOSIS_TASK, grader_tasks, read_grader_config

        try:
            grader_config = read_grader_config(grader_path)
        except ValueError as exc:
            raise ValueError(f"its stenosis grader is unusable: {exc}") from exc
        _check_weights_archive(grader_path / WEIGHTS)
        grader = {
            "name": str(grader_config["name"]),
            "version": model_version(str(grader_config["name"]), grader_path / WEIGHTS),
            "grades": [str(g) for g in grader_config["grades"]],
            "heldout": _grader_heldout(grader_path / METRICS),
            "tasks": {
                key: {"classes": list(classes), "heldout": _grader_heldout(grader_path / METRICS, key)}
                for key, classes in grader_tasks(grader_config) if key != STENOSIS_TASK
            },
        }
    metrics_path = path / METRICS
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{metrics_path} is not valid JSON: {exc}") from exc
    return CheckpointInfo(
        name=str(config["name"]),
        model_version=model_version(str(config["name"]), path / WEIGHTS, config),
        label_map={int(k): str(v) for k, v in config["label_map"].items()},
        config=config,
        metrics=metrics if isinstance(metrics, dict) else {},
        grader=grader,
    )


def _grader_heldout(metrics_path: Path, task: str | None = None) -> dict[str, Any]:
    """The grader's held-out accuracy and kappa (of the stenosis grade, or of another `task` from
    metrics["heldout_tasks"]), from its metrics.json ({} when it has none)."""
    import json

    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        heldout = metrics.get("heldout") if task is None else (metrics.get("heldout_tasks") or {}).get(task)
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(heldout, dict):
        return {}
    return {k: heldout[k] for k in ("n", "accuracy", "linear_weighted_kappa") if isinstance(heldout.get(k), int | float)}


def _check_weights_archive(weights: Path) -> None:
    """A torch.save file is a zip archive: check it is one and that every member's CRC holds."""
    import zipfile

    try:
        with zipfile.ZipFile(weights) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{weights.name} is not a readable torch checkpoint ({exc})") from exc
    if bad is not None:
        raise ValueError(f"{weights.name} is corrupt: member {bad} fails its CRC check")


def checkpoint_verify(model_dir: str | os.PathLike[str]) -> CheckpointInfo:
    """`checkpoint_describe`, then build the model on the CPU and load its weights (and the
    grader's), so weights that do not fit the architecture are refused before registration.
    Imports torch. Raises ValueError with the reason."""
    from ml.checkpoint import load_model

    info = checkpoint_describe(model_dir)
    path = Path(model_dir).resolve()
    load_model(path, "cpu")
    if (path / GRADER_SUBFOLDER).is_dir():
        from ml.grading.inference import load_grader

        try:
            load_grader(path / GRADER_SUBFOLDER, "cpu")
        except ValueError as exc:
            raise ValueError(f"its stenosis grader is unusable: {exc}") from exc
    return info
