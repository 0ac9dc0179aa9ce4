"""Which decoder may open a file, decided from its first bytes, never from its name.

libsndfile reads WAV, FLAC, Ogg, MP3, AIFF, AU, CAF, W64, RF64 and NIST from the file alone.
PyAV (FFmpeg) reads the rest, but FFmpeg also has demuxers that open *other* files or URLs named
inside the input: HLS and M3U playlists, ffconcat lists, DASH manifests, image sequences, the
``tee``/``data`` protocols. So FFmpeg is never asked to guess: :func:`sniff` recognises the
container by its magic bytes and names the one FFmpeg demuxer that reads it (``mov`` for
MP4/M4A, ``matroska`` for WebM/MKA, ``asf`` for WMA, ``aac`` for ADTS, ``wv``, ``amr``,
``ac3``); :func:`open_av` opens the file through a Python file object with that demuxer forced
and every protocol refused, so nothing but the one file is read. Playlists, concat lists, URLs
and other text are refused with a cause that says what they are.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

SNDFILE = "sndfile"
AV = "av"

_ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


@dataclass(frozen=True)
class Container:
    """``decoder`` is ``"sndfile"`` or ``"av"``; ``name`` the container; ``demuxer`` the FFmpeg
    demuxer that reads it (for libsndfile containers: the one to fall back on, or None)."""

    decoder: str
    name: str
    demuxer: str | None = None


def _mpeg_audio(h: bytes) -> Container | None:
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0:
        layer = (h[1] >> 1) & 3
        if layer == 0 and (h[1] & 0xF6) == 0xF0:
            return Container(AV, "AAC (ADTS)", "aac")
        if layer != 0 and (h[1] >> 3) & 3 != 1:
            return Container(SNDFILE, "MP3", "mp3")
    return None


def _by_magic(h: bytes) -> Container | None:
    four = h[:4]
    if four in (b"RIFF", b"RIFX", b"RF64", b"BW64") and h[8:12] == b"WAVE":
        return Container(SNDFILE, "WAV", "wav")
    if four == b"riff" and h[24:28] == b"wave":
        return Container(SNDFILE, "W64", "w64")
    if four == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"):
        return Container(SNDFILE, "AIFF", "aiff")
    if four == b"fLaC":
        return Container(SNDFILE, "FLAC", "flac")
    if four == b"OggS":
        return Container(SNDFILE, "Ogg", "ogg")
    if four == b".snd":
        return Container(SNDFILE, "AU", "au")
    if four == b"caff":
        return Container(SNDFILE, "CAF", "caf")
    if h[:7] == b"NIST_1A":
        return Container(SNDFILE, "NIST SPHERE")
    if four == b"wvpk":
        return Container(AV, "WavPack", "wv")
    if h[4:8] == b"ftyp":
        return Container(AV, "MP4/M4A", "mov")
    if four == b"\x1a\x45\xdf\xa3":
        return Container(AV, "Matroska/WebM", "matroska")
    if h[:16] == _ASF:
        return Container(AV, "ASF/WMA", "asf")
    if h[:6] == b"#!AMR\n":
        return Container(AV, "AMR", "amr")
    if h[:2] == b"\x0b\x77":
        return Container(AV, "AC-3", "ac3")
    return _mpeg_audio(h)


_URL = re.compile(rb"^[a-z][a-z0-9+.-]{1,20}:(//|[^\s]*\.)", re.I)


def _refusal(h: bytes) -> str | None:
    """What a non-audio file is, when it is something a decoder could be tricked by."""
    text = h.lstrip(b"\xef\xbb\xbf").lstrip()[:1024].lower()
    if text.startswith(b"#extm3u") or b"#ext-x-" in text or b"#extinf" in text:
        return "an HLS/M3U playlist"
    if text.startswith(b"ffconcat") or re.match(rb"^(#[^\n]*\n\s*)*file\s+\S", text):
        return "an ffconcat list"
    if text.startswith(b"[playlist]"):
        return "a PLS playlist"
    if text.startswith(b"<") and any(t in text for t in (b"<mpd", b"<smil", b"<asx", b"<playlist", b"<?xml")):
        return "an XML playlist or manifest"
    if _URL.match(text):
        return "a URL"
    return None


def sniff(path: str | os.PathLike) -> Container | str:
    """The container of the file at ``path`` (a :class:`Container`), or a string saying why it
    is not audio emovox will decode. Reads the first bytes only (past an ID3 tag)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:3] == b"ID3" and len(head) >= 10:  # an ID3v2 tag may precede MP3, AAC or FLAC data
            size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
            f.seek(10 + size + (10 if head[5] & 0x10 else 0))
            after = f.read(64)
            found = _by_magic(after)
            return found if found is not None else "not an audio file (an ID3 tag with no audio after it)"
        head += f.read(4096 - len(head))
    found = _by_magic(head)
    if found is not None:
        return found
    what = _refusal(head)
    if what is not None:
        return (f"not an audio file: {what} (refused: it would make the decoder read other files or URLs; "
                "emovox decodes only the audio in the file itself)")
    return "not an audio file (format not recognised)"


def open_av(path: str | os.PathLike, demuxer: str):
    """A PyAV input container on ``path`` with ``demuxer`` forced, read through a Python file
    object with every protocol refused (no nested file or network opens) and MP4 external data
    references off. The caller closes it; closing it closes the file too."""
    import av

    f = open(path, "rb")
    try:
        c = av.open(f, mode="r", format=demuxer,
                    options={"protocol_whitelist": "none", "enable_drefs": "0", "use_absolute_path": "0"})
    except BaseException:
        f.close()
        raise
    return _Closing(c, f)


class _Closing:
    """A container proxy whose ``close`` (and context exit) also closes the file object."""

    def __init__(self, container, file):
        self._c, self._f = container, file

    def __getattr__(self, name):
        return getattr(self._c, name)

    def close(self):
        try:
            self._c.close()
        finally:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
