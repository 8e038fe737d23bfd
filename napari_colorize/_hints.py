"""napari layers as colour hints, per image plane, in the image layer's data coordinates.

A hint is what the user sees: a Points layer's face colours, a Shapes layer's face colours,
a Labels layer's colormap colours, an RGB(A) image's pixels. Layers may have their own
scale/translate/affine: positions go data -> world -> image data, never pixel index to
pixel index. A hint drawn on plane z of a stack colours plane z only; a 2-D hints layer
over a stack is shown on every plane, so it hints every plane.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import colorplug
from colorplug import color

GRAY_CHROMA = 6.0  # Lab chroma under which a hint colour reads as white/gray/black


def _affine(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """(A, o) with world = A @ data + o over the layer's own dims (napari's public API)."""
    n = layer.ndim
    origin = np.asarray(layer.data_to_world(np.zeros(n)), float)
    cols = [np.asarray(layer.data_to_world(np.eye(n)[i]), float) - origin for i in range(n)]
    return np.stack(cols, 1), origin


def _to_world(coords: np.ndarray, layer: Any, world_point: np.ndarray) -> np.ndarray:
    """(N, layer.ndim) data coords -> (N, D) world coords; dims the layer lacks come from
    the viewer's current point (``world_point``, length D >= layer.ndim)."""
    a, o = _affine(layer)
    world = np.repeat(np.asarray(world_point, float)[None], len(coords), 0)
    world[:, world.shape[1] - layer.ndim:] = coords @ a.T + o
    return world


def _to_data(world: np.ndarray, layer: Any) -> np.ndarray:
    """(N, D) world coords -> (N, layer.ndim) data coords of the layer."""
    a, o = _affine(layer)
    return np.linalg.solve(a, (world[:, world.shape[1] - layer.ndim:] - o).T).T


class PlaneHints:
    """Hints of one layer for any plane of an image layer: ``hints_for(index)``.

    Returns colorplug hints (a list of points, or an RGBA strokes image) or None when that
    plane has no hint. ``gray`` lists the hint colours that have (almost) no chroma.
    """

    def __init__(self, hints_layer: Any, image_layer: Any, plane: tuple[int, int],
                 world_point: Any) -> None:
        from napari.layers import Image, Labels, Points, Shapes

        self.layer, self.image, self.plane = hints_layer, image_layer, plane
        ndim = max(hints_layer.ndim, image_layer.ndim, len(world_point))
        self.world_point = np.zeros(ndim)
        self.world_point[ndim - len(world_point):] = np.asarray(world_point, float)
        self._points = self._raster = None
        if isinstance(hints_layer, Points):
            self._init_points()
        elif isinstance(hints_layer, (Shapes, Labels)) or (
                isinstance(hints_layer, Image) and hints_layer.rgb):
            self._kind = type(hints_layer).__name__
        else:
            raise colorplug.InputError(
                f"the hints layer {hints_layer.name!r} is a grayscale image: use a Points, "
                "Shapes or Labels layer, or an RGB layer with colour strokes")
        self.gray: list[tuple[float, float, float]] = []
        if self._points is not None:
            self._note_colours(self._points[2])
        elif isinstance(hints_layer, Shapes):
            self._note_colours(np.asarray(hints_layer.face_color, float)[:, :3])
        elif isinstance(hints_layer, Labels):
            labels = np.unique(np.asarray(hints_layer.data))
            labels = labels[labels != 0]
            if len(labels):
                self._note_colours(np.asarray(hints_layer.colormap.map(labels))[:, :3])

    # ----------------------------------------------------------------- points
    def _init_points(self) -> None:
        layer = self.layer
        data = np.asarray(layer.data, float).reshape(-1, layer.ndim)
        if len(data) == 0:
            raise colorplug.InputError(f"the hints layer {layer.name!r} has no points: add "
                                       "points with the layer's add-points tool")
        world = _to_world(data, layer, self.world_point)
        img = _to_data(world, self.image)
        # Image dims the points layer has no coordinate on: the points show on every plane.
        covered = np.zeros(self.image.ndim, bool)
        covered[max(0, self.image.ndim - layer.ndim):] = True
        a_img, _ = _affine(self.image)
        a_pts, _ = _affine(layer)
        # radius: napari sizes are diameters in the points layer's data units
        unit = abs(a_pts[-1, -1]) / max(abs(a_img[-1, -1]), 1e-12)
        sizes = np.broadcast_to(np.asarray(layer.size, float).reshape(-1), (len(data),))
        colours = np.asarray(layer.face_color, float)[:, :3]
        self._points = (img, covered, colours, np.maximum(sizes * unit / 2, 1.0))

    def _points_for(self, index: tuple[int, ...]) -> list[tuple] | None:
        img, covered, colours, radii = self._points
        h, w = self.plane
        lead = len(index)
        keep = np.ones(len(img), bool)
        for axis, i in enumerate(index):
            if covered[axis]:
                keep &= np.round(img[:, axis]) == i
        ys, xs = img[:, lead], img[:, lead + 1]
        keep &= (ys > -0.5) & (ys < h - 0.5) & (xs > -0.5) & (xs < w - 0.5)
        if not keep.any():
            return None
        return [(float(np.clip(x, 0, w - 1)), float(np.clip(y, 0, h - 1)),
                 tuple(float(v) for v in c), float(r))
                for x, y, c, r in zip(xs[keep], ys[keep], colours[keep], radii[keep])]

    # ----------------------------------------------------------------- rasters
    def _rgba_at(self, coords: np.ndarray) -> np.ndarray:
        """RGBA float (N, 4) the hints layer shows at its own (N, ndim) data coords."""
        from napari.layers import Labels, Shapes

        layer = self.layer
        if isinstance(layer, Shapes):
            if self._raster is None:
                if len(layer.data) == 0:
                    raise colorplug.InputError(f"the hints layer {layer.name!r} has no "
                                               "shapes: draw some with its shape tools")
                extent = np.ceil(np.max(np.concatenate(
                    [np.asarray(s, float) for s in layer.data]), 0)).astype(int) + 2
                extent = np.maximum(extent, np.ceil(coords.max(0)).astype(int) + 2)
                masks = layer.to_masks(mask_shape=extent)
                raster = np.zeros(tuple(extent) + (4,), np.float32)
                for mask, rgba in zip(masks, np.asarray(layer.face_color, float)):
                    raster[mask] = rgba
                self._raster = raster
            source = self._raster
        else:
            source = layer.data
        shape = np.asarray(source.shape[:layer.ndim])
        idx = np.round(coords).astype(int)
        inside = np.all((idx >= 0) & (idx < shape), 1)
        out = np.zeros((len(coords), 4), np.float32)
        if not inside.any():
            return out
        picked = np.asarray(source[tuple(idx[inside].T)])
        if isinstance(layer, Shapes):
            out[inside] = picked
        elif isinstance(layer, Labels):
            out[inside] = np.asarray(layer.colormap.map(picked), np.float32)
            out[inside, 3] *= picked != 0  # background is no hint
        else:  # an RGB(A) image: opaque coloured pixels
            unit = picked.astype(np.float32) / (255.0 if picked.dtype == np.uint8 else
                                                65535.0 if picked.dtype == np.uint16 else 1.0)
            out[inside, :unit.shape[1]] = unit
            if unit.shape[1] == 3:
                lab = color.rgb_to_lab(np.clip(unit, 0, 1))
                out[inside, 3] = np.hypot(lab[:, 1], lab[:, 2]) > 3.0
        return out

    def _raster_for(self, index: tuple[int, ...]) -> np.ndarray | None:
        h, w = self.plane
        rr, cc = np.mgrid[0:h, 0:w]
        coords = np.concatenate([np.broadcast_to(np.asarray(index, float), (h * w, len(index))),
                                 rr.reshape(-1, 1), cc.reshape(-1, 1)], 1)
        hint_coords = _to_data(_to_world(coords, self.image, self.world_point), self.layer)
        rgba = self._rgba_at(hint_coords).reshape(h, w, 4)
        hinted = rgba[..., 3] > 0
        if not hinted.any():
            return None
        out = np.zeros((h, w, 4), np.uint8)
        out[..., :3] = np.round(np.clip(rgba[..., :3], 0, 1) * 255)
        out[..., 3] = np.where(hinted, 255, 0)
        return out

    # ----------------------------------------------------------------- public
    def hints_for(self, index: tuple[int, ...]) -> Any:
        if self._points is not None:
            return self._points_for(index)
        return self._raster_for(index)

    def _note_colours(self, rgb: np.ndarray) -> None:
        rgb = np.asarray(rgb, float).reshape(-1, 3)
        lab = color.rgb_to_lab(np.clip(rgb, 0, 1))
        for c, chroma in zip(rgb, np.hypot(lab[:, 1], lab[:, 2])):
            if chroma < GRAY_CHROMA and tuple(c) not in self.gray:
                self.gray.append(tuple(float(v) for v in c))
