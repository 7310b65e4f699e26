"""Binary deltas between releases: zstd with the old release as dictionary.

Pure: bytes in, bytes out. A delta is the new release compressed with the
old release as a raw-content dictionary, so what the two share costs almost
nothing. Applying it needs the exact old release; the result is checked
against the new release's SHA-256 and anything else is refused, so a node
falls back to the full release rather than install a wrong one.
"""

from __future__ import annotations

import hashlib

import zstandard

from edge.errors import EdgeError


class DeltaError(EdgeError, ValueError):
    """A delta that does not reproduce the release it claims to."""


def delta_name(release: str, base: str) -> str:
    """The target name of the delta that turns ``base`` into ``release``."""
    return f"{release}.from-{base}.zst"


def _dictionary(old: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(old, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def make_delta(old: bytes, new: bytes, *, level: int = 19) -> bytes:
    """The delta that turns ``old`` into ``new``."""
    window = max(len(old), len(new)).bit_length() + 1
    params = zstandard.ZstdCompressionParameters.from_level(
        level, window_log=max(10, min(window, 31)), enable_ldm=True
    )
    compressor = zstandard.ZstdCompressor(
        dict_data=_dictionary(old), compression_params=params
    )
    return compressor.compress(new)


def apply_delta(old: bytes, delta: bytes, *, sha256: str, length: int) -> bytes:
    """Rebuild the new release from ``old`` and ``delta``.

    Raises:
        DeltaError: the delta does not decompress against ``old``, or the
            result is not the release (length or SHA-256 differ).
    """
    try:
        out = zstandard.ZstdDecompressor(
            dict_data=_dictionary(old), max_window_size=2**31
        ).decompress(delta, max_output_size=length)
    except zstandard.ZstdError as exc:
        raise DeltaError(f"delta does not apply to this release: {exc}") from exc
    if len(out) != length or hashlib.sha256(out).hexdigest() != sha256:
        raise DeltaError(
            f"delta gave {len(out)} bytes with another SHA-256; expected {length} bytes"
        )
    return out
