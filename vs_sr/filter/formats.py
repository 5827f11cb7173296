"""Clip <-> planar float RGB for the network, frame props, output size and SAR.

Conversions go through the resize plugin. On the way in, frame props (_Matrix, _Range,
_ChromaLocation) decide, with defaults by resolution where they are missing. On the way out each
frame is converted back with its own source frame's matrix, range and chroma location, so a clip
whose props change mid-way still round-trips.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import vapoursynth as vs

from ..errors import SRError, frame_errors

core = vs.core
MATRIX_UNSPECIFIED = 2
RGB_MATRIX = 0
KERNEL = "Spline36"

# (matrix, range, chroma location, _Matrix kept) of a source frame: None where the output format has no use for
# one; the last only for GRAY (its own _Matrix, or None where it had none: resize writes the matrix it converted
# with, a YUV one, which a grey plane merged back into RGB must not carry).
OutputKey = tuple[int | None, str, int | None, int | None]
# An OutputKey plus the corrected SAR (None: unchanged): what one output conversion depends on.
ConversionKey = tuple[int | None, str, int | None, int | None, tuple[int, int] | None]


def check_clip(clip: object) -> vs.VideoNode:
    """The clip, if vs_sr can upscale it; otherwise a vs.Error saying what to change."""
    if not isinstance(clip, vs.VideoNode):
        raise SRError(f"clip must be a video clip (vs.VideoNode), not {type(clip).__name__}.")
    fmt = clip.format
    if fmt is None or fmt.id == vs.PresetVideoFormat.NONE:
        raise SRError("clip has a variable format; convert it to one format first, e.g. "
                       "clip.resize.Bicubic(format=vs.YUV420P8).")
    if clip.width == 0 or clip.height == 0:
        raise SRError("clip has a variable frame size; resize it to one size first, e.g. "
                       "clip.resize.Bicubic(width=W, height=H).")
    if fmt.color_family not in (vs.YUV, vs.RGB, vs.GRAY):
        raise SRError(f"clip's color family {fmt.color_family.name} is not supported; use YUV, RGB or GRAY.")
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        raise SRError(f"clip has {fmt.bits_per_sample}-bit samples; integer clips must be 8 to 16 bit.")
    return clip


def default_matrix(width: int, height: int) -> int:
    """The matrix assumed when a YUV frame does not say: BT.2020 for UHD, BT.709 for HD, BT.601 for SD."""
    if width > 1920 or height > 1080:
        return int(vs.MATRIX_BT2020_NCL)
    if width > 1024 or height > 576:
        return int(vs.MATRIX_BT709)
    return int(vs.MATRIX_BT470_BG if height == 576 else vs.MATRIX_ST170_M)


def yuv_matrix(props: Mapping[str, object], fallback: int) -> int:
    """The matrix a YUV frame is converted with: its _Matrix where that names a YUV matrix, else
    `fallback` (the default for the clip's size)."""
    matrix = int_prop(props, "_Matrix", MATRIX_UNSPECIFIED)
    return fallback if matrix in (MATRIX_UNSPECIFIED, RGB_MATRIX) else matrix


def default_range(fmt: vs.VideoFormat) -> str:
    """Integer YUV/GRAY is limited range unless the frame says otherwise; RGB and float are full."""
    return "limited" if fmt.sample_type == vs.INTEGER and fmt.color_family != vs.RGB else "full"


def _frame_props_win() -> dict[str, bool]:
    # Since R81 resize lets frame props override explicit *_in arguments; older cores needed
    # prefer_props=True for that, so defaults passed as arguments apply only when props are absent.
    return {"prefer_props": True} if "prefer_props" in str(core.resize.Bicubic) else {}


def to_rgbs(clip: vs.VideoNode) -> vs.VideoNode:
    """Planar float32 full-range RGB, what the networks take."""
    fmt = clip.format
    if fmt.id == vs.RGBS:
        return clip
    kwargs = dict(format=vs.RGBS, range_in_s=default_range(fmt), **_frame_props_win())
    if fmt.color_family == vs.GRAY:  # a grey picture is the same under every matrix; resize refuses an RGB one's
        clip = clip.std.RemoveFrameProps("_Matrix")  # (a plane shuffled out of an RGB clip keeps its _Matrix=0)
    if fmt.color_family != vs.RGB:
        kwargs["matrix_in"] = default_matrix(clip.width, clip.height)
    return getattr(core.resize, KERNEL)(clip, **kwargs)


PROP_EXAMPLES = {"_Matrix": "_Matrix=1 for BT.709", "_Range": "_Range=0 for limited range",
                 "_ColorRange": "_ColorRange=1 for limited range", "_FieldBased": "_FieldBased=0 for progressive",
                 "_ChromaLocation": "_ChromaLocation=0 for left", "_SARNum": "_SARNum=1, _SARDen=1 for square pixels",
                 "_SARDen": "_SARNum=1, _SARDen=1 for square pixels"}


def int_prop(props: Mapping[str, object], name: str, default: int) -> int:
    """An integer frame prop; one of another type (a string '_Matrix', say) is a clear error."""
    value = props.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        example = PROP_EXAMPLES.get(name, f"{name}=1")
        raise SRError(f"frame prop {name} is {value!r}; VapourSynth's {name} is an integer (e.g. {example}): fix "
                      f"it with clip.std.SetFrameProps({name}=...) or remove it with "
                      f"clip.std.RemoveFrameProps('{name}').")
    return value


FIELD_ORDERS = {1: ("bottom field first", 0), 2: ("top field first", 1)}


def check_progressive(n: int, f: vs.VideoFrame) -> None:
    """Interlaced frames hold two fields: a network would upscale their combing as detail."""
    field_based = int_prop(f.props, "_FieldBased", 0)
    if field_based not in (0, *FIELD_ORDERS):
        raise SRError(f"frame {n} has _FieldBased={field_based}; VapourSynth's _FieldBased is 0 (progressive), "
                      "1 (bottom field first) or 2 (top field first): fix it with clip.std.SetFieldBased(...).")
    if field_based in FIELD_ORDERS:
        order, field = FIELD_ORDERS[field_based]
        raise SRError(f"frame {n} is interlaced (_FieldBased={field_based}, {order}); upscaling it as one picture "
                      f"turns combing into artefacts. Deinterlace first, e.g. clip = core.bwdif.Bwdif(clip, "
                      f"field={field}) (pip install vapoursynth-bwdif), or, if the frames are really progressive, "
                      "mark them: clip = core.std.SetFieldBased(clip, 0).")


# The values VapourSynth defines for the props the conversions read (resize refuses others: "error 3074").
DEFINED_VALUES = {"_Matrix": vs.MatrixCoefficients, "_Transfer": vs.TransferCharacteristics,
                  "_Primaries": vs.ColorPrimaries, "_ChromaLocation": vs.ChromaLocation, "_Range": vs.ColorRange}


def check_source_frame(n: int, f: vs.VideoFrame) -> None:
    """A source frame's props that the conversion to RGB would refuse in resize's own words
    ("bad _FieldBased value", "error 1026", "error 3074"), refused in ours first, with the fix."""
    for name in PROP_EXAMPLES:
        if name == "_ColorRange":  # (reading it warns: read_range checks it)
            continue
        try:
            int_prop(f.props, name, 0)
        except SRError as error:
            raise SRError(f"frame {n}: {error.message}") from None
    check_progressive(n, f)
    for name, defined in DEFINED_VALUES.items():
        if name in f.props and (value := int_prop(f.props, name, 0)) not in {int(v) for v in defined}:
            raise SRError(f"frame {n} has {name}={value}, which VapourSynth does not define (it takes "
                          f"{_ranges(sorted(int(v) for v in defined))}): set the right one with "
                          f"clip.std.SetFrameProps({name}=...) or remove it with clip.std.RemoveFrameProps('{name}').")
    matrix = int_prop(f.props, "_Matrix", MATRIX_UNSPECIFIED)
    if f.format.color_family == vs.YUV and matrix == RGB_MATRIX:
        raise SRError(f"frame {n} is {f.format.name} but its _Matrix is 0 (RGB); set the matrix it was made with, "
                      "e.g. clip.std.SetFrameProps(_Matrix=1) for BT.709, or remove it with "
                      "clip.std.RemoveFrameProps('_Matrix') (then BT.601/709 by frame size).")
    if f.format.color_family == vs.RGB and matrix not in (RGB_MATRIX, MATRIX_UNSPECIFIED):
        raise SRError(f"frame {n} is {f.format.name} but its _Matrix is {matrix}, a YUV matrix (planes shuffled from "
                      "a YUV clip keep its props); mark it RGB with clip.std.SetFrameProps(_Matrix=0), or convert "
                      "the YUV clip with clip.resize.Bicubic(format=vs.RGB24) instead.")
    needs = _matrix_needs(matrix, f.props) if f.format.color_family == vs.YUV else None
    if needs:
        raise SRError(f"frame {n} has _Matrix={matrix} ({vs.MatrixCoefficients(matrix).name}), which is defined only "
                      f"with {needs}: set them with clip.std.SetFrameProps(...), or set the matrix the video was made "
                      "with instead (e.g. _Matrix=9 for BT.2020, 1 for BT.709).")


DERIVED_MATRICES = (int(vs.MATRIX_BT2020_CL), int(vs.MATRIX_CHROMATICITY_DERIVED_NCL),
                    int(vs.MATRIX_CHROMATICITY_DERIVED_CL), int(vs.MATRIX_ICTCP))
UNSPECIFIED = (None, 2)  # a prop missing or unspecified (2), for _Transfer and _Primaries alike
HDR_TRANSFERS = (int(vs.TRANSFER_ST2084), int(vs.TRANSFER_ARIB_B67))


def _matrix_needs(matrix: int, props: Mapping[str, object]) -> str | None:
    """What a matrix defined by the transfer or primaries (BT.2020 constant luminance, the
    chromaticity-derived ones, ICtCp) lacks in these props for resize to convert with it."""
    transfer, primaries = props.get("_Transfer"), props.get("_Primaries")
    if matrix == vs.MATRIX_BT2020_CL and (transfer in UNSPECIFIED or transfer in HDR_TRANSFERS):
        return "an SDR _Transfer (e.g. _Transfer=14 for BT.2020 10-bit)"
    if matrix == vs.MATRIX_CHROMATICITY_DERIVED_NCL and primaries in UNSPECIFIED:
        return "_Primaries (e.g. _Primaries=9 for BT.2020)"
    if matrix == vs.MATRIX_CHROMATICITY_DERIVED_CL and (primaries in UNSPECIFIED or transfer in UNSPECIFIED):
        return "_Primaries and _Transfer (e.g. _Primaries=9, _Transfer=14)"
    if matrix == vs.MATRIX_ICTCP and (primaries != vs.PRIMARIES_BT2020 or transfer not in HDR_TRANSFERS):
        return "_Primaries=9 (BT.2020) and _Transfer=16 (PQ) or 18 (HLG)"
    return None


def _ranges(values: list[int]) -> str:
    """[1, 2, 4, 5, 6] as '1, 2, 4-6'."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def resized_alpha(alpha: vs.VideoFrame, width: int, height: int, core: vs.Core) -> vs.VideoFrame:
    """An alpha plane (a frame's _Alpha) at width x height, bicubic, within its format's range: the
    picture it belongs to was resized. (Per frame, in numpy: a clip-level PropToClip reads frame 0
    when it is made.)"""
    import cv2

    fmt = alpha.format
    peak = 1.0 if fmt.sample_type == vs.FLOAT else (1 << fmt.bits_per_sample) - 1
    out = core.create_video_frame(fmt, width, height)
    for index in range(fmt.num_planes):  # (alpha is GRAY: one plane; each, should a caller attach another format)
        plane, target = np.asarray(alpha[index]), np.asarray(out[index])
        work = plane.astype(np.float32) if plane.dtype == np.float16 else plane  # (OpenCV has no float16 resize)
        resized = cv2.resize(work, (target.shape[1], target.shape[0]), interpolation=cv2.INTER_CUBIC)
        np.copyto(target, np.clip(resized, 0, peak).astype(plane.dtype, copy=False))
    return out


def read_range(props: Mapping[str, object], fmt: vs.VideoFormat) -> str:
    """'limited' or 'full' from _Range (R81+: 0 limited, 1 full) or legacy _ColorRange (0 full, 1 limited)."""
    if "_Range" in props:
        return "full" if int_prop(props, "_Range", 0) == 1 else "limited"
    if "_ColorRange" in props:
        return "full" if int_prop(props, "_ColorRange", 0) == 0 else "limited"
    return default_range(fmt)


def output_size(clip: vs.VideoNode, scale: int, width: int | None, height: int | None) -> tuple[int, int]:
    """The output size: `scale` times the input, or the caller's exact width/height."""
    native_w, native_h = clip.width * scale, clip.height * scale
    fmt = clip.format
    step_w, step_h = 1 << fmt.subsampling_w, 1 << fmt.subsampling_h
    if width is None and height is None:
        return native_w, native_h
    if height is None:
        assert width is not None
        height = max(step_h, round(native_h * width / native_w / step_h) * step_h)
    elif width is None:
        width = max(step_w, round(native_w * height / native_h / step_w) * step_w)
    if width % step_w or height % step_h:
        fixes = [fix for fix in (nearest_multiples("width", width, step_w), nearest_multiples("height", height, step_h))
                 if fix]
        raise SRError(f"{fmt.name} needs width= a multiple of {step_w} and height= a multiple of {step_h}; got "
                      f"{width}x{height}: pass {', and '.join(fixes)}.")
    return width, height


def nearest_multiples(name: str, value: int, step: int) -> str | None:
    """'width=852 or width=854' for a value that is not a multiple of `step`; None for one that is."""
    low = value - value % step
    if low == value:
        return None
    return " or ".join(f"{name}={v}" for v in (low, low + step) if v > 0)


def corrected_sar(props: Mapping[str, object], src_w: int, src_h: int, out_w: int,
                  out_h: int) -> tuple[int, int] | None:
    """The SAR that keeps a frame's display aspect at out_w x out_h; None when the shape is unchanged.

    A frame without a SAR is taken to have square pixels.
    """
    factor = Fraction(src_w * out_h, src_h * out_w)
    if factor == 1:
        return None
    num, den = int_prop(props, "_SARNum", 0), int_prop(props, "_SARDen", 0)
    sar = (Fraction(num, den) if num > 0 and den > 0 else Fraction(1)) * factor
    if sar.denominator > SAR_LIMIT:  # (frame props are 64-bit; players read 32 or 16)
        sar = sar.limit_denominator(SAR_LIMIT)
    if sar.numerator > SAR_LIMIT and sar < SAR_LIMIT:  # (above 1: the numerator is what to limit)
        sar = 1 / (1 / sar).limit_denominator(SAR_LIMIT)
    if not 0 < sar.numerator <= SAR_LIMIT:
        raise SRError(f"the sample aspect ratio {num}:{den} cannot be kept at {out_w}x{out_h}: set the frames' real "
                      "one, e.g. clip.std.SetFrameProps(_SARNum=1, _SARDen=1) for square pixels.")
    return sar.numerator, sar.denominator


SAR_LIMIT = 2**31 - 1


def from_rgbs(upscaled: vs.VideoNode, source: vs.VideoNode, width: int, height: int) -> vs.VideoNode:
    """`upscaled` (RGBS) at width x height in the source's format, frame by frame with its props.

    Each frame is converted with its own source frame's matrix, range and chroma location, and
    gets the SAR that keeps that frame's display aspect.
    """
    fmt = source.format
    if fmt.id == vs.RGBS and (upscaled.width, upscaled.height) == (width, height):  # no conversion: the checks only
        @frame_errors
        def checked(n: int, f: vs.VideoFrame) -> vs.VideoNode:
            check_source_frame(n, f)
            return upscaled

        return upscaled.std.FrameEval(checked, prop_src=source, clip_src=upscaled)
    template = upscaled.std.BlankClip(width=width, height=height, format=fmt.id, keep=True)
    converters: dict[ConversionKey, vs.VideoNode] = {}
    lock = threading.Lock()
    fallback_matrix = default_matrix(source.width, source.height)

    @frame_errors
    def convert(n: int, f: vs.VideoFrame) -> vs.VideoNode:
        check_source_frame(n, f)  # before its conversion to RGB is asked for
        key = (*_output_key(f.props, fmt, fallback_matrix), corrected_sar(f.props, source.width, source.height, width, height))
        with lock:
            if key not in converters:
                converters[key] = _convert(upscaled, fmt, width, height, key)
            return converters[key]

    return template.std.FrameEval(convert, prop_src=source, clip_src=upscaled)


def _output_key(props: Mapping[str, object], fmt: vs.VideoFormat, fallback_matrix: int) -> OutputKey:
    """(matrix, range, chroma location) of a source frame, the parts the output conversion needs."""
    range_ = read_range(props, fmt)  # float pixels do not depend on it, but its prop guides later conversions
    # 4:4:4 and RGB have no use for the chroma location, but a later conversion to 4:2:0 reads it: kept where the
    # source had it
    subsampled = fmt.subsampling_w or fmt.subsampling_h
    chromaloc = int_prop(props, "_ChromaLocation", 0) if subsampled or "_ChromaLocation" in props else None
    if fmt.color_family == vs.RGB:
        return (None, range_, chromaloc, None)
    matrix = yuv_matrix(props, fallback_matrix)
    if fmt.color_family != vs.GRAY:
        return (matrix, range_, chromaloc, None)
    kept = int_prop(props, "_Matrix", 0) if "_Matrix" in props else None
    # A grey picture comes out the same under any matrix; those defined by a transfer or primaries need props
    # a grey clip has no use for (resize: "error 3074"), so they convert as the size's default.
    return (fallback_matrix if matrix in DERIVED_MATRICES else matrix, range_, chromaloc, kept)


def _convert(clip: vs.VideoNode, fmt: vs.VideoFormat, width: int, height: int, key: ConversionKey) -> vs.VideoNode:
    matrix, range_, chromaloc, kept_matrix, sar = key
    kwargs: dict[str, object] = dict(width=width, height=height, format=fmt.id, range_s=range_)
    if matrix is not None:
        kwargs["matrix"] = matrix
    if chromaloc is not None:
        kwargs["chromaloc"] = chromaloc
    if fmt.sample_type == vs.INTEGER:
        kwargs["dither_type"] = "error_diffusion"
    # Bound to the clip, not to `vs.core`: this runs inside FrameEval on a worker thread.
    converted = getattr(clip.resize, KERNEL)(**kwargs)
    props: dict[str, int] = {}
    if chromaloc is not None and not (fmt.subsampling_w or fmt.subsampling_h):
        props["_ChromaLocation"] = chromaloc  # resize writes it on subsampled output only
    if sar is not None:
        # Set the SAR from the source frame ourselves: resize's own correction differs between cores.
        props.update(_SARNum=sar[0], _SARDen=sar[1])
    if fmt.color_family == vs.GRAY:
        if kept_matrix is None:
            converted = converted.std.RemoveFrameProps("_Matrix")
        else:
            props["_Matrix"] = kept_matrix
    return converted.std.SetFrameProps(**props) if props else converted
