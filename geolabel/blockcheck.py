"""Decoding a chip's DEFLATE blocks from the compressed bytes: to check and count them, or
to write them uncompressed.

Block copy (:mod:`geolabel.blockcopy`) decodes each chip once before copying its blocks:
to count the chip's nodata pixels and to check every block decodes. The blocks are
already in memory, read for the copy, so they are inflated here with libdeflate (the
``deflate`` package), which also checks each block's Adler-32 checksum, and counted in
their pixel-interleaved order. That is every pixel decoded once and nothing else: no
second read of the file and no GDAL block cache or band de-interleaving (about a quarter
less CPU than a GDAL window read on the benchmark scene). Uncompressed chips of such a
scene are decoded here too (:meth:`BlockDecoder.decode_into`), band by band as GDAL
reads them.

Only what this does exactly as GDAL does is handled: DEFLATE, integer samples, no
predictor or the horizontal one, little-endian multi-byte samples. Anything else, and a
block libdeflate rejects, returns ``None`` and the caller decodes the window with GDAL,
which then says what is wrong with the block (or reads it after all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray  # numpy.typing costs 40 ms to import: types only

    from geolabel.raster import SceneInfo

#: Unsigned integer types a whole pixel (all its bands) can be compared as, by byte size.
_PIXEL_TYPES = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}


@dataclass
class BlockDecoder:
    """Decodes and counts the DEFLATE blocks of one scene (see :func:`decoder_for`); one
    per task or thread, as it counts in arrays of its own."""

    rows: int
    cols: int
    count: int
    dtype: str  # little-endian numpy type string of one sample
    predictor: int
    nodata: float | None
    _scratch: _Scratch | None = field(default=None, init=False, repr=False)

    @property
    def nbytes(self) -> int:
        """Bytes of one decoded block."""
        import numpy as np

        return self.rows * self.cols * self.count * np.dtype(self.dtype).itemsize

    def nodata_pixels(self, blocks: Sequence[bytes]) -> int | None:
        """Pixels that are nodata in every band, over all ``blocks`` (each decoded, so
        checked); ``None`` when a block does not decode to a whole block (GDAL decides).

        An empty block is a sparse tile: GDAL reads it as nodata, so it counts whole.
        """
        total = 0
        for blob in blocks:
            if not blob:
                total += self.rows * self.cols if self.nodata is not None else 0
                continue
            raw = self._inflate(blob)
            if raw is None:
                return None
            if self.nodata is not None:
                scratch = self._arrays()
                total += count_nodata_pixels(self._samples(raw), self.nodata, out=scratch.mask)
        return total

    def decode_into(self, blocks: Sequence[bytes], out: NDArray[Any]) -> bool:
        """Decode the chip made of ``blocks`` (row-major) into ``out`` (bands, rows, cols),
        as GDAL reads it (a sparse tile as nodata, else 0); False when a block does not
        decode (GDAL decides)."""
        per_row = out.shape[2] // self.cols
        for i, blob in enumerate(blocks):
            y, x = divmod(i, per_row)
            window = out[:, y * self.rows : (y + 1) * self.rows, x * self.cols : (x + 1) * self.cols]
            if not blob:
                window[...] = 0 if self.nodata is None else self.nodata
                continue
            raw = self._inflate(blob)
            if raw is None:
                return False
            window[...] = self._samples(raw).transpose(2, 0, 1)
        return True

    def _inflate(self, blob: bytes) -> bytes | bytearray | None:
        """One block's bytes, checked (Adler-32, whole length), or None."""
        from deflate import DeflateError, zlib_decompress

        try:
            raw = zlib_decompress(blob, self.nbytes)
        except DeflateError:
            return None
        return raw if len(raw) == self.nbytes else None

    def _samples(self, raw: bytes | bytearray) -> NDArray[Any]:
        """(rows, cols, bands) samples of one decoded block, its predictor undone."""
        import numpy as np

        samples = np.frombuffer(raw, dtype=self.dtype).reshape(self.rows, self.cols, self.count)
        if self.predictor == 2:  # each sample is stored as the difference to its left neighbour
            samples = np.cumsum(samples, axis=1, dtype=samples.dtype, out=self._arrays().samples)
        return samples

    def _arrays(self) -> _Scratch:
        if self._scratch is None:
            self._scratch = _Scratch.make((self.rows, self.cols, self.count), self.dtype)
        return self._scratch


@dataclass(frozen=True)
class _Scratch:
    """Arrays counted in again for every block. Allocating them per block let glibc return
    the memory and fault it back in each time: 100,000 page faults, a fifth of the CPU time,
    on the benchmark scene."""

    samples: NDArray[Any]
    mask: NDArray[Any]

    @classmethod
    def make(cls, shape: tuple[int, int, int], dtype: str) -> _Scratch:
        import numpy as np

        return cls(np.empty(shape, dtype=dtype), np.empty(shape[:2], dtype=bool))


def count_nodata_pixels(samples: NDArray[Any], nodata: float | None, *, out: NDArray[Any] | None = None) -> int:
    """Pixels of pixel-interleaved ``samples`` (rows, cols, bands) equal to ``nodata`` in
    every band: a pixel is compared as one unsigned integer when its bands fit in 8 bytes
    and are contiguous. ``out``: a (rows, cols) boolean array to compare into.

    >>> import numpy as np
    >>> count_nodata_pixels(np.array([[[0, 0], [0, 7], [5, 0], [0, 0]]], dtype="uint8"), 0)
    2
    """
    import numpy as np

    if nodata is None:
        return 0
    value = samples.dtype.type(nodata)
    pixel_type = _PIXEL_TYPES.get(samples.shape[-1] * samples.dtype.itemsize)
    if pixel_type is None or not samples.flags.c_contiguous:
        return int(np.count_nonzero((samples == value).all(axis=-1)))
    pixel = np.full(samples.shape[-1], value, dtype=samples.dtype).view(pixel_type)[0]
    return int(np.count_nonzero(np.equal(samples.view(pixel_type)[..., 0], pixel, out=out)))


def decoder_for(scene: SceneInfo) -> BlockDecoder | None:
    """A decoder for the blocks of ``scene``, or ``None`` when GDAL must decode them (not
    DEFLATE, floating-point or big-endian multi-byte samples, another predictor, bands in
    blocks of their own, packed samples, or the ``deflate`` package missing, as it may be
    in a QGIS installation)."""
    import numpy as np

    dtype = np.dtype(scene.dtype)
    if (scene.compression or "none") != "deflate" or dtype.kind not in "iu":
        return None
    if scene.predictor not in (None, 1, 2) or (dtype.itemsize > 1 and not scene.little_endian):
        return None
    if (scene.count > 1 and scene.interleave != "pixel") or scene.nbits is not None:
        return None  # a block per band, or packed samples: not one pixel-interleaved block
    if scene.nodata is not None and not _representable(scene.nodata, dtype):
        return None
    try:
        import deflate  # noqa: F401
    except ImportError:
        return None
    rows, cols = scene.block_shape
    return BlockDecoder(rows, cols, scene.count, dtype.newbyteorder("<").str, scene.predictor or 1, scene.nodata)


def _representable(value: float, dtype: Any) -> bool:
    """Whether a nodata value is one of the integer type's values (GDAL then compares it
    exactly; any other value is left to GDAL's own rules)."""
    import numpy as np

    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max
