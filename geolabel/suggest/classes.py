"""Land-cover classes learnt from what is already labeled, suggested where nothing is.

1. Training sites (:mod:`geolabel.suggest.training`): done tiles and accepted labels.
2. Per site, pixels sampled under the labels (seeded): up to :data:`SITE_CLASS_CAP` per
   class for training (balanced, so a pond is not drowned by farmland) and a uniform
   sample for measuring.
3. A spatial hold-out: a quarter of the sites held out whole; a classifier trained on
   the rest is scored on them (overall accuracy, per-class IoU). Then the classifier is
   trained again on every site.
4. Per window of the area to suggest in (tiles not done, or the scene), read with a
   margin: features (:mod:`geolabel.suggest.features`), classes, a majority filter,
   polygons per class (``rasterio.features.shapes``), joined across windows, simplified
   by half a pixel, specks below ``min_area`` dropped (as for water).

The classifier is scikit-learn's RandomForestClassifier with a fixed seed (its threads
bounded by :func:`geolabel.parallel.thread_count` shared among the worker processes):
the same seed gives the same polygons.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geolabel import vocabulary as v
from geolabel.errors import InputError
from geolabel.suggest.features import FEATURE_MARGIN, pixel_features
from geolabel.suggest.training import Site, Training
from geolabel.suggest.windows import Box, run_windows, with_margin

#: Training pixels per class and site, and per class in all (balanced samples).
SITE_CLASS_CAP = 3000
CLASS_CAP = 20000
#: Pixels per held-out site the hold-out score is measured on (uniform sample).
EVAL_CAP = 50000
#: Share of the sites held out whole to measure accuracy.
HOLDOUT_FRACTION = 0.25
#: Radius (pixels) of the majority filter that cleans the classified pixels.
MAJORITY_RADIUS = 2
#: Pixels read around each window: features reach FEATURE_MARGIN, the majority filter
#: its radius beyond, so no result depends on where windows are cut.
MARGIN = FEATURE_MARGIN + MAJORITY_RADIUS + 3
#: Class value of pixels outside the area or without data.
NONE = 255


#: What the command line and the QGIS log say when one training tile leaves none to hold out.
NOT_MEASURED = "held-out accuracy: not measured (one training tile; mark more tiles done)"


@dataclass(frozen=True)
class HoldOut:
    """Accuracy measured on training sites held out whole (never seen in training)."""

    sites: tuple[str, ...]
    pixels: int
    overall: float  # share of pixels classified as labeled
    iou: dict[str, float]  # per class present in the held-out truth or prediction
    labelled: dict[str, int] = field(default_factory=dict)  # held-out pixels labelled so, per class

    def lines(self, training_sites: int) -> list[str]:
        """The accuracy as the command line and the QGIS log show it: an IoU measured on a
        few labelled pixels says little, so each class gives its count."""
        head = (f"held-out accuracy on {len(self.sites)} of {training_sites} training tiles "
                f"({', '.join(self.sites)}; {self.pixels} pixels): overall {self.overall:.3f}")  # fmt: skip
        return [head] + [
            f"  {name:<12} IoU {iou:.3f}  ({self.labelled.get(name, 0):,} labelled px)"
            for name, iou in self.iou.items()
        ]


@dataclass(frozen=True)
class ClassSuggestion:
    """Suggested polygons in the scene's CRS, each with its class, and how well it did."""

    polygons: Any  # numpy array of shapely Polygons
    class_names: list[str]
    crs: str
    accuracy: HoldOut | None  # None with a single training site: nothing to hold out
    training_sites: tuple[str, ...]
    area_m2: Any


@dataclass(frozen=True)
class _Scene:
    """What window and site tasks need to read the scene: plain values, as tasks may run
    in other processes."""

    path: str
    count: int
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    width: int
    height: int


def suggest_classes(
    scene: str | os.PathLike[str],
    *,
    store: Any,
    tiles: str | os.PathLike[str] | None = None,
    only_todo: bool = False,
    classes: str | list[str] | None = None,
    min_area: float = v.SUGGEST_CLASSES_MIN_AREA_M2,
    seed: int = v.SEED,
    window: int = v.SUGGEST_WINDOW,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> ClassSuggestion:
    """Learn the classes of ``store``'s trusted labels on ``scene`` and suggest them
    where nothing is labeled yet, in the scene's CRS.

    Trusted: labels of tiles the store marks done (``tiles``: their tile index) and
    accepted labels. Suggested in: the index's tiles not done (``only_todo``: nor in
    progress), or without ``tiles`` the whole scene, less the trusted labels.
    ``classes``: only these (names or codes; the classifier still learns every class).
    ``is_cancelled``: polled between sites, before training and between windows; a
    :class:`~geolabel.errors.CancelledError` when it says so (nothing is written: the
    caller writes the result).
    """
    from geolabel.labels.store import opened_store
    from geolabel.parallel import thread_count, worker_count
    from geolabel.raster import inspect_scene
    from geolabel.suggest import require_extra
    from geolabel.suggest.area import area_boxes
    from geolabel.suggest.training import training_sites

    require_extra()
    _check_limits(min_area=min_area, window=window, only_todo=only_todo, tiles=tiles)
    threads = _threads(executor, workers if executor is not None else worker_count(workers))
    info = inspect_scene(scene)
    with opened_store(store) as opened:
        wanted = _wanted(opened.schema, classes)
        training = training_sites(opened, info, tiles=tiles)
        names = {c.code: c.name for c in opened.schema}
        area = _suggest_area(info, training, tiles=tiles, only_todo=only_todo, statuses=opened.tile_statuses())
    _check_classes(wanted, training.codes, names)
    src = _Scene(info.path, info.count, tuple(info.scales), tuple(info.offsets), info.width, info.height)
    samples = _site_samples(src, training.sites, seed=seed, executor=executor, workers=workers, progress=progress,
                            is_cancelled=is_cancelled)  # fmt: skip
    _stop_if_cancelled(is_cancelled)  # the sites may all have been queued at once: the forest is not fitted
    # fitted here while the workers wait: on all cores (each tree's seed is drawn from
    # ``seed`` up front, so the forest does not depend on the thread count)
    accuracy = _hold_out(samples, seed=seed, names=names, threads=thread_count())
    model = _fit(list(samples.values()), seed=seed, threads=thread_count())
    keep = tuple(wanted or training.codes)
    job = _Predict(src, model, _pixel_wkb(area, info.transform), keep, max(1, threads))
    boxes = area_boxes(info.transform, info.width, info.height, area=area, size=window, scene=info.path)
    pieces = run_windows(functools.partial(_window_pieces, job), boxes, span=(0.3, 1.0), executor=executor,
                         workers=workers, progress=progress, is_cancelled=is_cancelled)  # fmt: skip
    polygons, codes = _class_polygons(pieces, keep, info=info, area=area, min_area=min_area)
    from geolabel.crs import area_m2

    return ClassSuggestion(polygons, [names[c] for c in codes], info.crs_wkt or "", accuracy,
                           tuple(samples), area_m2(polygons, info.crs_wkt))  # fmt: skip


def _check_limits(*, min_area: float, window: int, only_todo: bool, tiles: Any) -> None:
    if not 0 <= min_area < float("inf"):
        raise InputError(f"`min_area` must be 0 or more square metres; got {min_area}", params=("min_area",))
    if window < 2 * MARGIN:
        raise InputError(f"`window` must be at least {2 * MARGIN} pixels; got {window}", params=("window",))
    if only_todo and tiles is None:
        raise InputError("`only_todo` needs `tiles` (the tile index whose tiles are to do)",
                         params=("only_todo", "tiles"))  # fmt: skip


def _threads(executor: Executor | None, workers: int | None) -> int:
    """Threads the classifier may use per task: the cores shared by the worker processes."""
    from geolabel.parallel import capacity, thread_count

    n = capacity(executor) if executor is not None else workers or 1
    return max(1, thread_count() // n)


def _wanted(schema: Any, classes: str | list[str] | None) -> list[int]:
    """Class codes asked for (empty: all learnt), each checked against the schema."""
    if classes is None:
        return []
    items = v.parse_list(classes) if isinstance(classes, str) else list(classes)
    codes = []
    for item in items:
        cls = schema.find(item)
        if cls is None:
            known = ", ".join(f"{c.code}={c.name}" for c in schema)
            raise InputError(f"`classes`: unknown class {item!r}; known classes: {known}", params=("classes",))
        codes.append(cls.code)
    return sorted(set(codes))


def _check_classes(wanted: list[int], learnt: list[int], names: dict[int, str]) -> None:
    """A class asked for must have training labels, or nothing could be suggested of it."""
    missing = [names[c] for c in wanted if c not in learnt]
    if missing:
        have = ", ".join(names[c] for c in learnt)
        raise InputError(f"`classes`: no training labels of {', '.join(missing)} (the training labels are: {have})",
                         params=("classes",))  # fmt: skip
    if len(learnt) < 2:
        raise InputError(f"the training labels are all {names[learnt[0]]}: a classifier needs two classes or more")


def _suggest_area(info: Any, training: Training, *, tiles: Any, only_todo: bool, statuses: dict[str, str]) -> Any:
    """Where to suggest (scene CRS): the tiles not done (or only those to do), or the
    scene, less what the training labels cover."""
    import shapely

    from geolabel.suggest.area import chip_footprints

    if tiles is None:
        region = shapely.box(*info.grid.bounds)
    else:
        skip = {"done", "in_progress"} if only_todo else {"done"}
        todo = [fp for tile_id, fp in chip_footprints(tiles, info.crs_wkt).items()
                if statuses.get(tile_id, "todo") not in skip]  # fmt: skip
        if not todo:
            raise InputError(
                f"{tiles}: every tile is done{' or in progress' if only_todo else ''}; nothing to suggest in"
            )
        region = shapely.union_all(todo)
    return shapely.difference(region, training.covered)


def _stop_if_cancelled(is_cancelled: Callable[[], bool] | None) -> None:
    from geolabel.errors import CancelledError

    if is_cancelled is not None and is_cancelled():
        raise CancelledError("cancelled")


def _site_samples(
    src: _Scene, sites: list[Site], *, seed: int, executor: Executor | None, workers: int | None,
    progress: Callable[[float], None] | None, is_cancelled: Callable[[], bool] | None,
) -> dict[str, tuple[Any, Any, Any, Any]]:  # fmt: skip
    """The samples of every site, by site key in site order (one batch of site tasks)."""
    from geolabel.parallel import run_batch

    results: dict[str, Any] = {}

    def collect(site: Site, result: Any) -> None:
        results[site.key] = result
        if progress is not None:
            progress(0.2 * len(results) / len(sites))

    run_batch(functools.partial(_samples, src, seed), sites, on_result=collect, executor=executor, workers=workers,
              is_cancelled=is_cancelled)  # fmt: skip
    return {s.key: results[s.key] for s in sites}


def read_window(src: _Scene, box: Box) -> tuple[Any, Any]:
    """(bands as float32, scaled and offset as the scene says; where every band has data)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src.path) as ds:
        data = ds.read(window=Window(*box), out_dtype="float32")
        valid = (ds.read_masks(window=Window(*box)) > 0).all(axis=0)
    data = data * np.array(src.scales, "float32")[:, None, None] + np.array(src.offsets, "float32")[:, None, None]
    return data, valid & np.isfinite(data).all(axis=0)


def _features(src: _Scene, box: Box) -> tuple[Any, Any]:
    """Features and validity of the pixels of ``box``, computed with a margin around it."""
    outer = with_margin(box, margin=MARGIN, width=src.width, height=src.height)
    data, valid = read_window(src, outer)
    feats = pixel_features(data)
    r, c = box[1] - outer[1], box[0] - outer[0]
    return feats[:, r : r + box[3], c : c + box[2]], valid[r : r + box[3], c : c + box[2]]


def _samples(src: _Scene, seed: int, site: Site) -> tuple[Any, Any, Any, Any]:
    """(training X, y: balanced, capped per class; measuring X, y: uniform, capped) of a site."""
    import shapely
    from affine import Affine

    from geolabel import rasterfeatures

    feats, valid = _features(src, site.box)
    shapes = [(shapely.from_wkb(wkb), code) for wkb, code in site.shapes]
    truth = rasterfeatures.rasterize(shapes, out_shape=valid.shape, fill=-1, dtype="int16",
                                     transform=Affine.translation(site.box[0], site.box[1]))  # fmt: skip
    labeled = np.flatnonzero((truth >= 0) & valid)
    rng = np.random.default_rng([seed, *site.box])
    flat_truth, flat = truth.ravel(), feats.reshape(feats.shape[0], -1)
    train = [_pick(rng, labeled[flat_truth[labeled] == c], SITE_CLASS_CAP) for c in np.unique(flat_truth[labeled])]
    train_idx = np.concatenate(train) if train else labeled[:0]
    eval_idx = _pick(rng, labeled, EVAL_CAP)
    return flat[:, train_idx].T, flat_truth[train_idx], flat[:, eval_idx].T, flat_truth[eval_idx]


def _pick(rng: Any, idx: Any, cap: int) -> Any:
    """Up to ``cap`` of ``idx``, drawn without replacement, in their original order."""
    return idx if len(idx) <= cap else np.sort(rng.choice(idx, cap, replace=False))


def _fit(samples: list[tuple[Any, Any, Any, Any]], *, seed: int, threads: int) -> Any:
    """A classifier trained on the balanced samples of these sites (at most CLASS_CAP per class)."""
    X = np.concatenate([s[0] for s in samples])
    y = np.concatenate([s[1] for s in samples])
    rng = np.random.default_rng(seed)
    idx = np.concatenate([_pick(rng, np.flatnonzero(y == c), CLASS_CAP) for c in np.unique(y)])
    return make_model(seed, threads).fit(X[idx], y[idx])


def make_model(seed: int, threads: int) -> Any:
    """The classifier: a random forest of 30 trees, 16 deep. On the village it matches a
    40-round gradient boosting (farmland IoU 0.90 either way) and predicts 3x faster;
    prediction over every pixel is what the run spends its time on."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=30, max_depth=16, min_samples_leaf=2, n_jobs=threads, random_state=seed)


def _hold_out(samples: dict[str, Any], *, seed: int, names: dict[int, str], threads: int) -> HoldOut | None:
    """Train without the held-out sites, score on them; None with one site."""
    from geolabel.suggest.training import split_sites

    train, held = split_sites(list(samples), seed=seed, fraction=HOLDOUT_FRACTION)
    learnt = [samples[k] for k in train if len(samples[k][1])]
    if not held or len({int(c) for s in learnt for c in np.unique(s[1])}) < 2:
        return None
    model = _fit(learnt, seed=seed, threads=threads)
    X = np.concatenate([samples[k][2] for k in held])
    truth = np.concatenate([samples[k][3] for k in held])
    predicted = predict(model, X, threads) if len(X) else truth
    codes, counts = np.unique(truth, return_counts=True)
    labelled = {names.get(int(c), str(c)): int(n) for c, n in zip(codes, counts)}
    return HoldOut(tuple(held), len(truth), float(np.mean(predicted == truth)) if len(truth) else 0.0,
                   class_iou(truth, predicted, names), labelled)  # fmt: skip


def class_iou(truth: Any, predicted: Any, names: dict[int, str]) -> dict[str, float]:
    """Per class present in either: pixels of both / pixels of either.

    >>> class_iou(np.array([1, 1, 2, 2]), np.array([1, 2, 2, 2]), {1: "water", 2: "farmland"})
    {'water': 0.5, 'farmland': 0.6666666666666666}
    """
    out = {}
    for code in np.union1d(truth, predicted):
        both = np.count_nonzero((truth == code) & (predicted == code))
        either = np.count_nonzero((truth == code) | (predicted == code))
        out[names.get(int(code), str(code))] = both / either
    return out


@dataclass(frozen=True)
class _Predict:
    """What a window task needs to classify: the scene, the model, where, which classes."""

    src: _Scene
    model: Any
    area: bytes  # WKB of the area to suggest in, in scene pixel coordinates
    keep: tuple[int, ...]
    threads: int


def _pixel_wkb(area: Any, transform: Any) -> bytes:
    import shapely

    from geolabel.geom import to_pixels

    return bytes(shapely.to_wkb(to_pixels(np.array([area]), tuple(transform))[0]))


def _window_pieces(job: _Predict, box: Box) -> dict[int, tuple[Any, Any]]:
    """Per kept class, its polygons in ``box`` (scene pixel coordinates): (inside the
    window, reaching its border) as :func:`~geolabel.suggest.water.merge_pieces` joins them."""
    import shapely
    from affine import Affine

    from geolabel import rasterfeatures

    outer = with_margin(box, margin=MAJORITY_RADIUS + 1, width=job.src.width, height=job.src.height)
    classes = _classify(job, outer)
    shapes = rasterfeatures.shapes(classes, mask=np.isin(classes, job.keep),
                                   transform=Affine.translation(outer[0], outer[1]))  # fmt: skip
    found = [(shapely.geometry.shape(g), int(value)) for g, value in shapes]
    core = shapely.box(box[0], box[1], box[0] + box[2], box[1] + box[3])
    return {code: _split_at_border([g for g, c in found if c == code], core) for code in job.keep}


def _classify(job: _Predict, box: Box) -> Any:
    """Class codes (uint8; NONE outside the area or without data) of ``box``, majority filtered."""
    import shapely
    from affine import Affine
    from skimage.filters.rank import majority
    from skimage.morphology import disk

    from geolabel import rasterfeatures

    feats, valid = _features(job.src, box)
    inside = rasterfeatures.geometry_mask([shapely.from_wkb(job.area)], out_shape=valid.shape, invert=True,
                                          transform=Affine.translation(box[0], box[1])) & valid  # fmt: skip
    classes = np.full(valid.shape, NONE, dtype="uint8")
    if inside.any():
        classes[inside] = predict(job.model, feats[:, inside].T, job.threads)
    cleaned = majority(classes, disk(MAJORITY_RADIUS), mask=inside)
    cleaned[~inside] = NONE
    return cleaned


def predict(model: Any, pixels: Any, threads: int) -> Any:
    """``model.predict`` of ``pixels`` on ``threads`` threads, each on its own rows
    (:func:`forest_predict`): the forest's own threads would sum the trees' votes in
    whatever order they finish, and a near-tie could then go either way from one run to
    the next."""
    from concurrent.futures import ThreadPoolExecutor

    chunks = np.array_split(np.arange(len(pixels)), max(1, min(threads, len(pixels) // 10_000)))
    if len(chunks) == 1:
        return forest_predict(model, pixels)
    with ThreadPoolExecutor(len(chunks)) as pool:  # the trees' traversal releases the GIL
        return np.concatenate(list(pool.map(lambda rows: forest_predict(model, pixels[rows]), chunks)))


def forest_predict(model: Any, pixels: Any) -> Any:
    """``model.predict`` of a one-output random forest, its trees' votes summed in order in
    this thread, as scikit-learn does with one job. Its own ``predict`` runs every tree
    through joblib, which enters ``warnings.catch_warnings`` once per tree; from several
    threads at once that swaps the process's warning filters while rasterio relies on
    them (see :mod:`geolabel.rasterfeatures`), and QGIS logged rasterio's warning."""
    X = np.ascontiguousarray(pixels, dtype=np.float32)
    votes = np.zeros((len(X), len(model.classes_)))
    for tree in model.estimators_:
        votes += tree.predict_proba(X, check_input=False)
    votes /= len(model.estimators_)
    return model.classes_.take(np.argmax(votes, axis=1), axis=0)


def _split_at_border(geoms: list[Any], core: Any) -> tuple[Any, Any]:
    """``geoms`` clipped to ``core``: (those inside it, those touching its border)."""
    import shapely

    from geolabel.geom import polygonal_parts

    if not geoms:
        empty = np.array([], dtype=object)
        return empty, empty
    pieces = polygonal_parts(shapely.intersection(np.array(geoms, dtype=object), core))[0]
    c0, r0, c1, r1 = core.bounds
    b = shapely.bounds(pieces).reshape(-1, 4)
    at_border = (b[:, 0] <= c0) | (b[:, 1] <= r0) | (b[:, 2] >= c1) | (b[:, 3] >= r1)
    return pieces[~at_border], pieces[at_border]


def _class_polygons(
    pieces: list[dict[int, tuple[Any, Any]]], keep: tuple[int, ...], *, info: Any, area: Any, min_area: float
) -> tuple[Any, list[int]]:
    """Per class, the windows' pieces joined and finished as water's are; (polygons, codes)."""
    from geolabel.suggest.water import finish_polygons, merge_pieces

    polygons, codes = [], []
    for code in keep:
        joined = merge_pieces([p[code] for p in pieces])
        done = finish_polygons(joined, transform=info.transform, crs=info.crs_wkt, area=area, min_area=min_area)
        polygons.append(done)
        codes += [code] * len(done)
    return np.concatenate(polygons) if polygons else np.array([], dtype=object), codes
