"""Loading a model artifact given by the user or found in the store, and checking that
it fits the data it is about to see."""
from __future__ import annotations

from pathlib import Path

import keras

from src.errors import ArtifactError, ConfigError
from src.runstore import is_done


def resolve_model_file(path: str | Path, what: str = "model") -> Path:
    """A run folder (must be finished) or a .keras file -> the .keras file."""
    path = Path(path).expanduser()
    if path.is_dir():
        if not is_done(path):
            raise ArtifactError(
                f"{what} folder {path} is not a finished run (no valid DONE marker): "
                f"finish it by re-running its command, or point at another run or .keras file")
        path = path / "model.keras"
    if not path.is_file():
        raise ArtifactError(f"{what} file {path} does not exist: give a run folder or a .keras file")
    return path


def load_model(path: str | Path, what: str = "model") -> keras.Model:
    """Load a Keras model, turning a corrupt or truncated file into a one-line error."""
    file = resolve_model_file(path, what)
    try:
        return keras.models.load_model(file, compile=False)
    except Exception as error:  # Keras raises many types for a broken zip/h5
        raise ArtifactError(
            f"cannot load {what} from {file} ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            f"the file is truncated or not a Keras model: re-create it (force=true) or give another file") from None


def check_fits(model: keras.Model, input_shape: tuple, num_classes: int, dataset: str, what: str) -> None:
    """One-line error when a model's input shape or class count does not match the data."""
    expected = tuple(model.input_shape[1:])
    if tuple(d for d in expected) != tuple(input_shape):
        raise ArtifactError(
            f"{what} '{model.name}' takes inputs of shape {expected} but dataset {dataset} gives {tuple(input_shape)}: "
            f"use a dataset of that shape or a {what} trained on {dataset}")
    outputs = int(model.output_shape[-1])
    if outputs != num_classes:
        raise ArtifactError(
            f"{what} '{model.name}' predicts {outputs} classes but dataset {dataset} has {num_classes}")


def check_layers(model: keras.Model, names: list[str], what: str, key: str) -> None:
    """A ConfigError naming the setting, the unknown layers and the layers the model has."""
    known = [layer.name for layer in model.layers]
    missing = [name for name in names if name not in known]
    if missing:
        raise ConfigError(f"{key}: {what} {model.name} has no layer {', '.join(missing)}; its layers are: "
                          f"{', '.join(known)}")


def layer_tap(model: keras.Model, names: list[str], *, with_logits: bool = False) -> keras.Model:
    """A model sharing `model`'s weights whose outputs are the named layers' outputs (after
    its logits when with_logits): how methods read inner activations."""
    outputs = [model.get_layer(name).output for name in names]
    return keras.Model(model.inputs, [model.outputs[0], *outputs] if with_logits else outputs,
                       name=f"{model.name}_tapped")
