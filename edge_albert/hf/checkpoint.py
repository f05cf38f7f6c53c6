"""Read a Hugging Face ALBERT checkpoint directory into numpy weights, config, labels and tokenizer.

No TensorFlow here; PyTorch only for a legacy `pytorch_model.bin` (loaded with
weights_only=True) and transformers only to build `tokenizer.json` from a bare `spiece.model`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..bundle import sha256_of_file
from ..contract import TASK_BY_ARCHITECTURE
from ..errors import CheckpointError
from .weights import BASE_MODEL_PREFIX, HEAD_AXES, SHARED_LAYER_PREFIX, expected_shapes

SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish")

# config.json field of a head-pruned checkpoint (written by `edge-albert compress`): indices of the
# shared layer's attention heads that were removed, the same at every call. transformers 5 no longer
# prunes heads (config.pruned_heads and prune_heads are gone) and sizes attention as
# hidden_size / num_attention_heads, so the checkpoint keeps full-size tensors with these heads'
# query/key/value rows and attention.dense columns set to zero: transformers computes exactly the
# pruned function, and the converter slices the heads out (load_checkpoint) so the graph does not
# compute them.
PRUNED_HEADS_KEY = "edge_albert_pruned_heads"
# The tokenizer files of a checkpoint, copied along when finetune or compress writes a new one.
TOKENIZER_FILES = ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass
class AlbertConfigView:
    """The config fields the graph needs, validated."""

    vocab_size: int
    embedding_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    num_labels: int
    raw: dict = field(repr=False, default_factory=dict)
    pruned_heads: Tuple[int, ...] = ()

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def kept_heads(self) -> List[int]:
        """The shared layer's attention heads the graph computes (all but the pruned ones)."""
        return [head for head in range(self.num_attention_heads) if head not in self.pruned_heads]


@dataclass
class AlbertCheckpoint:
    """Everything the converter takes from a checkpoint directory."""

    path: Path
    architecture: str
    task: str
    config: AlbertConfigView
    weights: Dict[str, np.ndarray]  # Hugging Face names without the "albert." prefix
    labels: List[str]
    weights_file: Path
    weights_sha256: str
    tokenizer_json: Path
    spiece_model: Optional[Path]
    tokenizer_settings: dict
    problem_type: Optional[str] = None

    def parameter_count(self) -> int:
        return int(sum(w.size for w in self.weights.values()))


def load_checkpoint(path) -> AlbertCheckpoint:
    """Read and validate a checkpoint directory; raise CheckpointError with one clear line."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory (expected a Hugging Face checkpoint directory)")
    raw_config = _read_config(path)
    architecture = _architecture(raw_config, path)
    config = _config_view(raw_config, path)
    weights_file, raw_weights = _read_weights(path)
    weights = _strip_prefix(raw_weights)
    _check_shapes(weights, config, architecture, path)
    weights = _drop_pruned_heads(weights, config, path)
    if architecture == "AlbertForQuestionAnswering" and config.num_labels != 2:
        raise CheckpointError(
            f"AlbertForQuestionAnswering needs num_labels=2 (start and end logits), {path / 'config.json'} has {config.num_labels}"
        )
    tokenizer_json, spiece_model = _tokenizer_files(path)
    labels = _labels(raw_config, architecture, config)
    return AlbertCheckpoint(
        path=path,
        architecture=architecture,
        task=TASK_BY_ARCHITECTURE[architecture],
        config=config,
        weights=weights,
        labels=labels,
        weights_file=weights_file,
        weights_sha256=sha256_of_file(weights_file),
        tokenizer_json=tokenizer_json,
        spiece_model=spiece_model,
        tokenizer_settings=_tokenizer_settings(path, tokenizer_json),
        problem_type=raw_config.get("problem_type"),
    )


def read_json_file(path: Path, what: str = "") -> object:
    """Parse a small JSON file the checkpoint carries; one CheckpointError for any unreadable content.

    Invalid UTF-8 and nesting deep enough to exhaust Python's recursion (RecursionError, not a
    JSONDecodeError) are reported like any other malformed file.
    """
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise CheckpointError(f"{path} is nested too deeply to be a {what or 'configuration'} file") from None
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _read_config(path: Path) -> dict:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{path} has no config.json; is it a Hugging Face checkpoint directory?")
    config = read_json_file(config_path, "model configuration")
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} does not hold a JSON object")
    if config.get("model_type") != "albert":
        raise CheckpointError(
            f"{config_path} describes model_type {config.get('model_type')!r}; edge-albert converts ALBERT "
            "checkpoints only (model_type 'albert')"
        )
    return config


def _architecture(config: dict, path: Path) -> str:
    architectures = config.get("architectures")
    if architectures is None or architectures == []:
        return "AlbertModel"
    if not isinstance(architectures, list) or not all(isinstance(name, str) for name in architectures):
        raise CheckpointError(
            f"{path / 'config.json'}: architectures must be a list of class names such as "
            f'["AlbertForSequenceClassification"], not {_short(architectures)}'
        )
    architecture = architectures[0]
    if architecture not in TASK_BY_ARCHITECTURE:
        raise CheckpointError(
            f"architecture {architecture!r} in {path / 'config.json'} is not supported; supported: "
            + ", ".join(TASK_BY_ARCHITECTURE)
        )
    return architecture


# (field, default, smallest valid value); None as default means the field is required.
_INTEGER_FIELDS = (
    ("vocab_size", None, 1),
    ("embedding_size", 128, 1),
    ("hidden_size", 4096, 1),
    ("num_hidden_layers", 12, 1),
    ("num_attention_heads", 64, 1),
    ("intermediate_size", 16384, 1),
    ("max_position_embeddings", 512, 1),
    ("type_vocab_size", 2, 1),
    ("num_hidden_groups", 1, 1),
    ("inner_group_num", 1, 1),
)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _integer_field(config: dict, name: str, default: Optional[int], minimum: int, where: Path) -> int:
    """A JSON integer >= minimum: a string, float or bool there is a broken config, not something to coerce."""
    if name not in config and default is not None:
        return default
    if name not in config:
        raise CheckpointError(f"{where}: required field {name} is missing (an integer >= {minimum})")
    value = config[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"{where}: {name} must be an integer >= {minimum}, not {_short(value)}")
    if value < minimum:
        raise CheckpointError(f"{where}: {name} must be an integer >= {minimum}, not {value}")
    return value


def _label_names(config: dict, where: Path) -> Optional[Dict[int, str]]:
    """id2label as {index: name}; it must be an object mapping "0".."n-1" to strings."""
    id2label = config.get("id2label")
    if id2label is None:
        return None
    if not isinstance(id2label, dict):
        raise CheckpointError(
            f'{where}: id2label must be an object such as {{"0": "negative", "1": "positive"}}, not {_short(id2label)}'
        )
    names = {}
    for key, name in id2label.items():
        if not (isinstance(key, str) and key.isdigit() and key.isascii()) or not isinstance(name, str):
            raise CheckpointError(
                f"{where}: id2label must map label indices (\"0\", \"1\", ...) to label names (strings); "
                f"found {_short(key)}: {_short(name)}"
            )
        names[int(key)] = name
    if sorted(names) != list(range(len(names))):
        raise CheckpointError(f"{where}: id2label's indices must be 0..{len(names) - 1} without gaps, not {sorted(names)}")
    return names


def _config_view(config: dict, path: Path) -> AlbertConfigView:
    where = path / "config.json"
    ints = {name: _integer_field(config, name, default, minimum, where) for name, default, minimum in _INTEGER_FIELDS}
    groups, inner = ints.pop("num_hidden_groups"), ints.pop("inner_group_num")
    if groups != 1 or inner != 1:
        raise CheckpointError(
            f"num_hidden_groups={groups} and inner_group_num={inner} in {where}: edge-albert "
            "supports only ALBERT's standard sharing (num_hidden_groups=1, inner_group_num=1), as in every "
            "released ALBERT model"
        )
    label_names = _label_names(config, where)
    default_labels = len(label_names) if label_names else 2
    num_labels = _integer_field(config, "num_labels", default_labels, 1, where)
    if label_names is not None and len(label_names) != num_labels:
        raise CheckpointError(f"{where}: num_labels is {num_labels} but id2label names {len(label_names)} labels")
    eps = config.get("layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise CheckpointError(f"{where}: layer_norm_eps must be a small positive number such as 1e-12, not {_short(eps)}")
    hidden_act = config.get("hidden_act", "gelu_new")
    if not isinstance(hidden_act, str) or hidden_act not in SUPPORTED_ACTIVATIONS:
        raise CheckpointError(
            f"{where}: hidden_act {_short(hidden_act)} is not supported; supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
        )
    view = AlbertConfigView(**ints, hidden_act=hidden_act, layer_norm_eps=float(eps), num_labels=num_labels, raw=config)
    if view.hidden_size % view.num_attention_heads:
        raise CheckpointError(
            f"{where}: hidden_size {view.hidden_size} is not a multiple of num_attention_heads {view.num_attention_heads}"
        )
    view.pruned_heads = _pruned_heads(config.get(PRUNED_HEADS_KEY) or [], view.num_attention_heads, path)
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise CheckpointError(f"{where}: position_embedding_type {_short(position_type)} is not supported (only 'absolute')")
    problem_type = config.get("problem_type")
    if problem_type is not None and not isinstance(problem_type, str):
        raise CheckpointError(f"{where}: problem_type must be a string such as 'single_label_classification', not {_short(problem_type)}")
    return view


def _pruned_heads(value, num_heads: int, path: Path) -> Tuple[int, ...]:
    where = f"{PRUNED_HEADS_KEY} in {path / 'config.json'}"
    if not isinstance(value, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in value):
        raise CheckpointError(f"{where} must be a list of head indices, got {value!r}")
    if len(set(value)) != len(value) or any(not 0 <= h < num_heads for h in value):
        raise CheckpointError(f"{where} must hold distinct indices in 0..{num_heads - 1}, got {value}")
    if len(value) >= num_heads:
        raise CheckpointError(f"{where} removes all {num_heads} attention heads; at least one must stay")
    return tuple(sorted(value))


def _drop_pruned_heads(weights: Dict[str, np.ndarray], config: AlbertConfigView, path: Path) -> Dict[str, np.ndarray]:
    """Slice pruned heads out of the shared layer along weights.HEAD_AXES (query/key/value rows,
    attention.dense columns).

    Exact only if the pruned heads' columns in the tensors that read them (axis 1) are zero (their
    output is discarded), which is how `compress` writes them; anything else is a mislabelled
    checkpoint and is refused.
    """
    if not config.pruned_heads:
        return weights
    size = config.head_size
    kept = np.concatenate([np.arange(h * size, (h + 1) * size) for h in config.kept_heads])
    for name in (name for name, axis in HEAD_AXES.items() if axis == 1):
        for head in config.pruned_heads:
            if np.any(weights[SHARED_LAYER_PREFIX + name][:, head * size:(head + 1) * size]):
                raise CheckpointError(
                    f"{path}: head {head} is listed in {PRUNED_HEADS_KEY} but its {name.rsplit('.', 1)[0]} weights "
                    "are not zero, so removing it would change the model"
                )
    sliced = dict(weights)
    for name, axis in HEAD_AXES.items():
        sliced[SHARED_LAYER_PREFIX + name] = np.take(weights[SHARED_LAYER_PREFIX + name], kept, axis=axis)
    return sliced


def _read_weights(path: Path):
    safetensors_path = path / "model.safetensors"
    bin_path = path / "pytorch_model.bin"
    if safetensors_path.is_file():
        return safetensors_path, _read_safetensors(safetensors_path)
    if (path / "model.safetensors.index.json").is_file() or (path / "pytorch_model.bin.index.json").is_file():
        raise CheckpointError(f"{path} holds a sharded checkpoint; save it unsharded (ALBERT is small enough)")
    if bin_path.is_file():
        return bin_path, _read_torch_bin(bin_path)
    raise CheckpointError(f"{path} has no model.safetensors or pytorch_model.bin")


def _read_safetensors(path: Path) -> Dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} cannot be read (truncated or corrupt?): {exc}") from None
    except Exception as exc:  # bfloat16 tensors cannot be loaded by the numpy backend
        if "bfloat16" not in str(exc).lower() and "bf16" not in str(exc).lower():
            raise CheckpointError(f"{path} cannot be read: {exc}") from None
        return _read_safetensors_with_torch(path)
    return {name: np.asarray(tensor, dtype=np.float32) for name, tensor in tensors.items() if _is_float(tensor)}


def _read_safetensors_with_torch(path: Path) -> Dict[str, np.ndarray]:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    return {name: t.float().numpy() for name, t in tensors.items() if t.is_floating_point()}


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating)


def _read_torch_bin(path: Path) -> Dict[str, np.ndarray]:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or unsafe pickles
        raise CheckpointError(f"{path} cannot be loaded safely (weights_only=True): {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    return {
        name: tensor.float().numpy()
        for name, tensor in state.items()
        if hasattr(tensor, "is_floating_point") and tensor.is_floating_point()
    }


def _strip_prefix(weights: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Drop the "albert." prefix that task models put before the encoder's names."""
    stripped = {}
    for name, value in weights.items():
        stripped[name[len(BASE_MODEL_PREFIX):] if name.startswith(BASE_MODEL_PREFIX) else name] = value
    return stripped


def _check_shapes(weights: Dict[str, np.ndarray], config: AlbertConfigView, architecture: str, path: Path) -> None:
    for name, shape in expected_shapes(config, architecture).items():
        if name not in weights:
            raise CheckpointError(f"weight {name} is missing from the checkpoint in {path} ({architecture})")
        if tuple(weights[name].shape) != shape:
            raise CheckpointError(
                f"weight {name} has shape {tuple(weights[name].shape)} but config.json implies {shape}"
            )


def _labels(config: dict, architecture: str, view: AlbertConfigView) -> List[str]:
    if architecture not in ("AlbertForSequenceClassification", "AlbertForTokenClassification"):
        return []
    names = _label_names(config, Path("config.json")) or {}  # validated by _config_view already
    return [names.get(index, f"LABEL_{index}") for index in range(view.num_labels)]


def _tokenizer_files(path: Path):
    tokenizer_json = path / "tokenizer.json"
    spiece_model = path / "spiece.model"
    spiece = spiece_model if spiece_model.is_file() else None
    if tokenizer_json.is_file():
        return tokenizer_json, spiece
    if spiece is None:
        raise CheckpointError(
            f"{path} has neither tokenizer.json nor spiece.model; save the tokenizer with the model "
            "(tokenizer.save_pretrained(dir))"
        )
    return build_tokenizer_json(path), spiece


def build_tokenizer_json(checkpoint_dir: Path) -> Path:
    """Build tokenizer.json from spiece.model with transformers' AutoTokenizer (the parity reference).

    Written to a temporary directory; transformers 5's AlbertTokenizer(vocab_file=...) alone
    silently maps everything to <unk>, so the tokenizer is loaded from the directory with its config.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir))
    except Exception as exc:  # transformers raises many types for a broken tokenizer directory
        raise CheckpointError(f"cannot build tokenizer.json from {checkpoint_dir / 'spiece.model'}: {exc}") from None
    out_dir = Path(tempfile.mkdtemp(prefix="edge-albert-tokenizer-"))
    tokenizer.save_pretrained(str(out_dir))
    target = out_dir / "tokenizer.json"
    if not target.is_file():
        shutil.rmtree(out_dir, ignore_errors=True)
        raise CheckpointError(f"transformers did not write tokenizer.json for {checkpoint_dir}")
    _check_tokenizer_is_not_degenerate(target, checkpoint_dir)
    return target


def _check_tokenizer_is_not_degenerate(tokenizer_json: Path, checkpoint_dir: Path) -> None:
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(tokenizer_json)).encode("hello world, this is a test", add_special_tokens=False).ids
    if ids and len(set(ids)) == 1:
        raise CheckpointError(
            f"the tokenizer built from {checkpoint_dir / 'spiece.model'} maps every word to id {ids[0]}; "
            "the SentencePiece model or tokenizer config is broken"
        )


def _tokenizer_settings(path: Path, tokenizer_json: Path) -> dict:
    """Normaliser flags and special-token ids, for the manifest and the Java tokenizer."""
    from tokenizers import Tokenizer

    settings = {"do_lower_case": True, "remove_space": True, "keep_accents": False}
    config_path = path / "tokenizer_config.json"
    if config_path.is_file():
        tokenizer_config = read_json_file(config_path, "tokenizer configuration")
        if not isinstance(tokenizer_config, dict):
            raise CheckpointError(f"{config_path} does not hold a JSON object")
        for key in settings:
            if key in tokenizer_config:
                if not isinstance(tokenizer_config[key], bool):
                    raise CheckpointError(f"{config_path}: {key} must be true or false, not {_short(tokenizer_config[key])}")
                settings[key] = tokenizer_config[key]
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_json))
    except Exception as exc:  # tokenizers raises a bare Exception for malformed files
        raise CheckpointError(f"{tokenizer_json} cannot be loaded by the tokenizers library: {exc}") from None
    special = {}
    for role, token in (("pad", "<pad>"), ("unk", "<unk>"), ("cls", "[CLS]"), ("sep", "[SEP]"), ("mask", "[MASK]")):
        token_id = tokenizer.token_to_id(token)
        if token_id is None and role in ("cls", "sep", "pad"):
            raise CheckpointError(f"{tokenizer_json} has no {token} token, which ALBERT inputs need")
        special[f"{role}_token"] = token
        special[f"{role}_id"] = token_id
    settings["special_tokens"] = special
    return settings
