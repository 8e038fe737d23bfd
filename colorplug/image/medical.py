"""Medical and microscopy files as their users have them (the ``medical`` extra).

- DICOM in (pydicom): MONOCHROME1/2, 8-16 bit, the modality rescale (slope/intercept)
  applied; the first VOI window (centre/width) becomes the display range unless the user
  gives one; MONOCHROME1 is inverted so what a viewer shows as white stays light; a
  multi-frame file is a stack of planes. Out: an RGB Secondary Capture with new SOP Instance
  and Series UIDs, the patient and study tags and the pixel spacing copied from the source.
- OME-TIFF in and out (tifffile): the axes and physical pixel sizes are read and carried
  into the output's OME-XML; stacks are colorized plane by plane.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..files import regular_file_problem

DICOM_SUFFIXES = {".dcm", ".dicom"}
OME_SUFFIXES = (".ome.tif", ".ome.tiff")
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_COPIED_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
                "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "StudyDescription",
                "AccessionNumber", "ReferringPhysicianName", "PixelSpacing",
                "FrameOfReferenceUID")
_OME_SIZES = ("PhysicalSizeX", "PhysicalSizeY", "PhysicalSizeZ")


@dataclass
class Planes:
    """A file's pixels as display-ready planes plus what must travel to the output."""

    planes: np.ndarray            # (N, H, W): float32 display values in [0, 1], or raw
    display_range: tuple[float, float] | None  # None: already mapped to [0, 1]
    kind: str                     # "dicom" or "ome"
    axes: str = "YX"              # the source's axes without Y, X (e.g. "Z", "TZ") + "YX"
    plane_shape: tuple[int, ...] = ()  # the leading axes' sizes, to restore the stack
    meta: dict[str, Any] = field(default_factory=dict)
    source: Any = None            # the pydicom Dataset for DICOM


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise InputError("reading DICOM needs pydicom: pip install 'colorplug[medical]'"
                         ) from None
    return pydicom


def is_dicom(path: Path) -> bool:
    """A DICOM file by suffix or by its 'DICM' preamble marker."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if regular_file_problem(path) is not None:  # never open a pipe: it would block
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_ome_tiff(path: Path) -> bool:
    return path.name.lower().endswith(OME_SUFFIXES)


def _number(value: Any, field: str, path: Path) -> float:
    """A header field as a finite float; a clear InputError naming the field otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise InputError(f"{str(path)!r}: {field} is {str(value)!r}, not a finite number")
    return number


def _frames_of(ds: Any, path: Path) -> int:
    """The NumberOfFrames header field as a positive int; a clear InputError otherwise."""
    value = getattr(ds, "NumberOfFrames", 1)
    try:
        frames = int(str(value).strip() or 1)
    except (TypeError, ValueError):
        raise InputError(f"{str(path)!r}: DICOM field NumberOfFrames is {str(value)!r}, not a "
                         "whole number") from None
    if frames < 1:
        raise InputError(f"{str(path)!r}: DICOM field NumberOfFrames is {frames}; it must be "
                         "at least 1")
    return frames


def dicom_frames(path: Path) -> int:
    """Number of frames from the header only (for planning output names). A file whose
    header cannot be read counts as one frame here; reading it for real reports why."""
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return _frames_of(ds, path)
    except Exception:  # noqa: BLE001 - reported when the file is read for real
        return 1


def _dicom_pixel_count(ds: Any, path: Path) -> int:
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"{str(path)!r}: DICOM fields Rows/Columns are missing or not whole "
                         "numbers") from None
    return rows * columns * _frames_of(ds, path)


def read_dicom(path: str | Path, *, allow_huge: bool = False) -> Planes:
    """Rescaled, windowed planes of a DICOM file (see the module docstring); a header that
    announces more pixels than `colorplug.image.codecs.pixel_limit` is refused unless
    `allow_huge`."""
    from .codecs import check_pixel_count

    pydicom = _pydicom()
    path = Path(path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for bad files
        raise InputError(f"cannot read {str(path)!r}: not a readable DICOM image ({exc})"
                         ) from None
    check_pixel_count(path, _dicom_pixel_count(ds, path), allow_huge=allow_huge)
    kind = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = _number(getattr(ds, "SamplesPerPixel", 1) or 1, "SamplesPerPixel", path)
    if kind.startswith("MONOCHROME") and samples != 1:
        raise InputError(f"{str(path)!r}: DICOM {kind} with SamplesPerPixel {samples:g}; a "
                         "MONOCHROME image has one sample per pixel (the header contradicts "
                         "itself)")
    try:
        ds = pydicom.dcmread(path)
        raw = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for bad files
        raise InputError(f"cannot read {str(path)!r}: not a readable DICOM image ({exc})"
                         ) from None
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(f"{str(path)!r}: DICOM {photometric} images already hold colour; "
                         "colorplug colorizes MONOCHROME1/2 images")
    frames = _frames_of(ds, path)
    values = raw.astype(np.float64).reshape((frames,) + raw.shape[-2:])
    slope = _number(getattr(ds, "RescaleSlope", 1) or 1, "RescaleSlope", path)
    intercept = _number(getattr(ds, "RescaleIntercept", 0) or 0, "RescaleIntercept", path)
    values = values * slope + intercept
    window = None
    if "WindowCenter" in ds and "WindowWidth" in ds:
        centre, width = ds.WindowCenter, ds.WindowWidth
        centre = _number(centre[0] if isinstance(centre, pydicom.multival.MultiValue)
                         else centre, "WindowCenter", path)
        width = _number(width[0] if isinstance(width, pydicom.multival.MultiValue) else width,
                        "WindowWidth", path)
        if width > 0:
            window = (centre - width / 2, centre + width / 2)
    lo, hi = window if window else (float(values.min()), float(values.max()))
    if photometric == "MONOCHROME1":  # low values are white: flip within the range
        values = (lo + hi) - values
    meta = {"photometric": photometric, "window": window, "frames": frames,
            "modality": str(getattr(ds, "Modality", "") or "").upper()}
    return Planes(values, (lo, hi) if hi > lo else None, "dicom",
                  axes="FYX" if frames > 1 else "YX",
                  plane_shape=(frames,) if frames > 1 else (), meta=meta, source=ds)


def read_ome_tiff(path: str | Path, *, allow_huge: bool = False) -> Planes:
    """The first series of an OME-TIFF as (N, H, W) planes, with axes and pixel sizes; a
    header announcing more than `colorplug.image.codecs.pixel_limit` pixels is refused
    unless `allow_huge`."""
    import tifffile

    from .codecs import check_pixel_count, tiff_pixel_count, tiff_problems

    path = Path(path)
    with tiff_problems() as problems:
        try:
            pixels = tiff_pixel_count(path)
            check_pixel_count(path, pixels, allow_huge=allow_huge)  # a bomb before all else
            if not problems:
                with tifffile.TiffFile(path) as tif:
                    series = tif.series[0]
                    data = series.asarray()
                    axes = series.axes
                    xml = tif.ome_metadata or ""
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any TIFF decoding failure
            raise InputError(f"cannot read {str(path)!r}: corrupt or unsupported OME-TIFF "
                             f"({exc})") from None
    if problems:  # a file cut short reads as fewer planes: never a smaller valid stack
        raise InputError(f"cannot read {str(path)!r}: truncated or corrupt OME-TIFF "
                         f"({problems[0]})")
    if "S" in axes or (axes.endswith("C") and data.shape[-1] in (3, 4)):
        raise InputError(f"{str(path)!r} already holds colour samples (axes {axes}); "
                         "colorplug colorizes single-channel planes")
    if not axes.endswith("YX"):
        raise InputError(f"{str(path)!r}: axes {axes} do not end in YX")
    sizes = {}
    for key in _OME_SIZES + tuple(k + "Unit" for k in _OME_SIZES):
        m = re.search(rf'\b{key}="([^"]+)"', xml)
        if m:
            sizes[key] = m.group(1) if key.endswith("Unit") else \
                _number(m.group(1), f"OME {key}", path)
    lead = data.shape[:-2]
    planes = data.reshape((-1,) + data.shape[-2:])
    return Planes(planes, None, "ome", axes=axes,
                  plane_shape=tuple(lead), meta={"physical": sizes, "dtype": str(data.dtype),
                                                 "fluorescence": is_fluorescence_xml(xml)})


def is_fluorescence_xml(xml: str) -> bool:
    """Whether OME-XML describes fluorescence channels (ContrastMethod, IlluminationType or
    an emission wavelength, as microscopes write them)."""
    return bool(re.search(r'ContrastMethod="Fluorescence"|IlluminationType="Epifluorescence"'
                          r'|EmissionWavelength="', xml))


#: DICOM modalities that are not photographs (the photo models' colours mean nothing there).
NON_PHOTO_MODALITIES = {"CT": "CT", "MR": "MR", "PT": "PET", "NM": "nuclear medicine",
                        "US": "ultrasound", "CR": "radiograph", "DX": "radiograph",
                        "XA": "angiography", "MG": "mammography", "RF": "fluoroscopy"}


def not_a_photo(planes: "Planes") -> str | None:
    """What kind of non-photographic image `planes` are ("a CT image", "fluorescence
    microscopy"), from the file's own metadata; None for anything else."""
    if planes.kind == "dicom":
        name = NON_PHOTO_MODALITIES.get(str(planes.meta.get("modality", "")))
        return f"a {name} image" if name else None
    if planes.kind == "ome" and planes.meta.get("fluorescence"):
        return "fluorescence microscopy"
    return None


def display_planes(planes: Planes, user_range: Any) -> np.ndarray:
    """The planes to colorize: without a user range a DICOM's window maps them to display
    values in [0, 1] here; otherwise the (rescaled) values go to the colorizer's range."""
    if user_range is None and planes.kind == "dicom" and planes.display_range is not None:
        lo, hi = planes.display_range
        return np.clip((planes.planes - lo) / (hi - lo), 0, 1).astype(np.float32)
    return planes.planes


def encode_stack(rgb: np.ndarray, planes: Planes) -> bytes:
    """Colour planes (N, H, W, 3|4) -> a TIFF (multi-page) or OME-TIFF keeping axes and
    physical pixel sizes."""
    import tifffile

    stack = rgb.reshape(tuple(planes.plane_shape) + rgb.shape[1:]) if planes.plane_shape \
        else rgb[0]
    buf = io.BytesIO()
    if planes.kind == "ome":
        metadata = {"axes": planes.axes + "S", **planes.meta.get("physical", {})}
        tifffile.imwrite(buf, stack, ome=True, photometric="rgb", metadata=metadata)
    else:
        tifffile.imwrite(buf, stack, photometric="rgb")
    return buf.getvalue()


def encode_secondary_capture(rgb: np.ndarray, planes: Planes) -> bytes:
    """Colour planes of a DICOM source -> an RGB Secondary Capture (8-bit), new SOP
    Instance and Series UIDs, patient/study tags and pixel spacing copied."""
    pydicom = _pydicom()
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if rgb.dtype == np.uint16:
        rgb = np.rint(rgb / 257.0).astype(np.uint8)
    elif rgb.dtype.kind == "f":
        rgb = np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb[..., :3])
    src = planes.source
    ds = pydicom.Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    for tag in _COPIED_TAGS:
        if tag in src:
            try:
                setattr(ds, tag, src.data_element(tag).value)
            except Exception as exc:  # noqa: BLE001 - pydicom refuses a malformed value
                warnings.warn(f"DICOM field {tag} of the source is not valid ({exc}); it was "
                              "not copied into the Secondary Capture", stacklevel=2)
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesDescription = "colorplug colorization"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rgb.shape[1], rgb.shape[2]
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if rgb.shape[0] > 1:
        ds.NumberOfFrames = rgb.shape[0]
    ds.PixelData = rgb.tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
