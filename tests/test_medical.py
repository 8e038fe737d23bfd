"""DICOM and OME-TIFF in the CLI, with small files the tests write (the medical extra)."""
from __future__ import annotations

import numpy as np
import pytest

from colorplug import color
from colorplug.cli import main

pydicom = pytest.importorskip("pydicom", reason="the medical extra (pydicom) is not installed")


def write_dicom(path, pixels, *, photometric="MONOCHROME2", slope=1.0, intercept=0.0,
                window=None, bits=16):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "Test^Patient", "P-0042"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.PixelSpacing = [0.5, 0.75]
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16 if bits == 16 else np.uint8).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return ds


def lightness(rgb):
    return color.lightness_from_rgb(rgb[..., :3] / (65535.0 if rgb.dtype == np.uint16 else 255.0))


def test_dicom_window_and_rescale_set_the_gray_levels(tmp_path):
    from colorplug.image import read_image

    raw = np.zeros((16, 20), np.uint16)
    raw[:, 10:] = 1100  # HU = raw - 1000 -> 100 (inside the window [0, 200] -> mid gray)
    raw[:8, :10] = 3000  # HU 2000: above the window -> white
    write_dicom(tmp_path / "ct.dcm", raw, slope=1, intercept=-1000, window=(100, 200))
    assert main(["colorize", str(tmp_path / "ct.dcm"), "-o", str(tmp_path / "out.png"),
                 "-b", "gray"]) == 0
    out = lightness(read_image(tmp_path / "out.png"))
    assert abs(out[12, 15] - color.lightness_from_gray(np.array(0.5))) < 1.0
    assert out[2, 2] > 99 and out[12, 2] < 1  # above the window white, HU -1000 black


def test_monochrome1_is_inverted_and_8_bit_works(tmp_path):
    from colorplug.image import read_image

    raw = np.zeros((8, 8), np.uint8)
    raw[:, 4:] = 255
    write_dicom(tmp_path / "m1.dcm", raw, photometric="MONOCHROME1", bits=8)
    assert main(["colorize", str(tmp_path / "m1.dcm"), "-o", str(tmp_path / "m1.png"),
                 "-b", "gray"]) == 0
    out = lightness(read_image(tmp_path / "m1.png"))
    assert out[0, 0] > 99 and out[0, 7] < 1  # raw 0 is white in MONOCHROME1


def test_user_intensity_range_overrides_the_window(tmp_path):
    from colorplug.image import read_image

    raw = np.full((6, 6), 500, np.uint16)
    write_dicom(tmp_path / "w.dcm", raw, window=(500, 100))
    assert main(["colorize", str(tmp_path / "w.dcm"), "-o", str(tmp_path / "w.png"), "-b",
                 "gray", "--intensity-range", "0,1000"]) == 0
    out = lightness(read_image(tmp_path / "w.png"))
    assert abs(out.mean() - color.lightness_from_gray(np.array(0.5))) < 1.0


def test_multiframe_dicom_becomes_a_tiff_stack(tmp_path):
    import tifffile

    raw = np.stack([np.full((6, 7), v, np.uint16) for v in (0, 1000, 2000)])
    write_dicom(tmp_path / "mf.dcm", raw, window=(1000, 2000))
    assert main(["colorize", str(tmp_path), "-o", str(tmp_path / "out"), "-b", "gray"]) == 0
    stack = tifffile.imread(tmp_path / "out" / "mf.tif")
    assert stack.shape == (3, 6, 7, 3)
    levels = lightness(stack)[:, 0, 0]
    assert levels[0] < levels[1] < levels[2]


def test_dicom_out_writes_a_secondary_capture_that_reads_back(tmp_path):
    raw = (np.arange(12 * 10).reshape(12, 10) * 30).astype(np.uint16)
    src = write_dicom(tmp_path / "in.dcm", raw, window=(1800, 3600))
    assert main(["colorize", str(tmp_path / "in.dcm"), "-o", str(tmp_path / "sc.dcm"),
                 "-b", "fusion", "--dicom-out"]) == 0
    sc = pydicom.dcmread(tmp_path / "sc.dcm")
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    assert sc.PhotometricInterpretation == "RGB" and sc.SamplesPerPixel == 3
    assert sc.SOPInstanceUID != src.SOPInstanceUID
    assert sc.SeriesInstanceUID != src.SeriesInstanceUID
    assert sc.StudyInstanceUID == src.StudyInstanceUID and sc.PatientID == "P-0042"
    assert [float(v) for v in sc.PixelSpacing] == [0.5, 0.75]
    rgb = sc.pixel_array
    assert rgb.shape == (12, 10, 3) and rgb.dtype == np.uint8
    unit = np.clip((raw.astype(float) - 0) / 3600, 0, 1)
    assert np.abs(lightness(rgb) - color.lightness_from_gray(unit)).mean() < 1.5


def test_ome_tiff_keeps_axes_and_physical_sizes(tmp_path):
    import tifffile

    data = np.stack([np.full((5, 6), v, np.uint16) for v in (100, 30000)])
    tifffile.imwrite(tmp_path / "cells.ome.tif", data, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325,
                               "PhysicalSizeZ": 2.0})
    assert main(["colorize", str(tmp_path / "cells.ome.tif"), "-o", str(tmp_path / "out"),
                 "-b", "gray", "--intensity-range", "0,65535"]) == 0
    with tifffile.TiffFile(tmp_path / "out" / "cells.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "ZYXS"
        stack = tif.series[0].asarray()
        xml = tif.ome_metadata
    assert stack.shape == (2, 5, 6, 3)
    assert 'PhysicalSizeX="0.325"' in xml and 'PhysicalSizeZ="2.0"' in xml
    assert lightness(stack)[0].mean() < lightness(stack)[1].mean()


def test_dicom_out_from_a_png_is_a_clear_error(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.dcm"),
                 "-b", "gray", "--dicom-out"]) == 1
    assert "--dicom-out writes DICOM from DICOM inputs only" in capsys.readouterr().err


def test_a_ct_slice_gets_a_note_that_photo_models_are_not_for_it(tmp_path, capsys):
    raw = (np.arange(32 * 32).reshape(32, 32) % 2000).astype(np.uint16)
    write_dicom(tmp_path / "ct.dcm", raw)
    assert main(["colorize", str(tmp_path / "ct.dcm"), "-o", str(tmp_path / "out.png"),
                 "-b", "autoencoder"]) == 0
    err = capsys.readouterr().err
    assert "this is a CT image; backend 'autoencoder' learnt its colours from photographs" \
        in err
    assert "-r FILE" in err and "colorplug train autoencoder --from default" in err
    # gray (no learnt colours) and a reference (colours chosen by the user): no note
    assert main(["colorize", str(tmp_path / "ct.dcm"), "-o", str(tmp_path / "g.png"),
                 "-b", "gray"]) == 0
    assert "photographs" not in capsys.readouterr().err


def test_fluorescence_ome_tiff_gets_the_note_and_brightfield_does_not(tmp_path, capsys):
    import tifffile

    data = (np.arange(2 * 16 * 16).reshape(2, 16, 16) * 50).astype(np.uint16)
    tifffile.imwrite(tmp_path / "gfp.ome.tif", data, ome=True,
                     metadata={"axes": "ZYX", "Channel": {"Name": "GFP",
                                                         "EmissionWavelength": 509.0}})
    tifffile.imwrite(tmp_path / "plain.ome.tif", data, ome=True, metadata={"axes": "ZYX"})
    assert main(["colorize", str(tmp_path / "gfp.ome.tif"), "-o", str(tmp_path / "o1"),
                 "-b", "autoencoder"]) == 0
    assert "this is fluorescence microscopy" in capsys.readouterr().err
    assert main(["colorize", str(tmp_path / "plain.ome.tif"), "-o", str(tmp_path / "o2"),
                 "-b", "autoencoder"]) == 0
    assert "fluorescence" not in capsys.readouterr().err
