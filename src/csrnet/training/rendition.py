"""How an unedited camera rendition differs from a finished photo: measured, and sampled for training.

The FiveK "input" renditions (Lightroom's defaults applied to the raw files) are, against the
experts' versions of the same photos, darker, flatter (raised blacks, lowered whites), less
saturated and off in white balance along the daylight/tungsten axis. :func:`pair_statistics`
measures those differences on a pair; :class:`Rendition` holds a distribution of the edits that
turn a finished photo into such a rendition, and :func:`camera_rendition` samples one. The
distribution's numbers are fitted to the measured statistics of the 18 shared FiveK pairs by
``python bench/fivek_statistics.py`` (moment matching on simulated pairs of the bundled photos);
:data:`FIVEK_FIT` records its result.

All images are (H, W, 3) float32 sRGB in [0, 1]. Research and training code: nothing on the
``enhance`` path imports it.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np

from .degrade import exposure, levels, linear_to_srgb, saturation, srgb_to_linear

__all__ = ["EDITOR_BLACK_POINT", "FIVEK_FIT", "FIVEK_FIT_EDITED", "STATISTICS", "Rendition", "camera_rendition", "edited_rendition", "pair_statistics", "photo_statistics", "set_black_point"]

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 / sRGB luminance weights

#: The statistics :func:`pair_statistics` returns, with what each means.
STATISTICS = {
    "ev": "exposure gain target vs input (log2 ratio of mean linear luminance)",
    "contrast": "contrast gain (ratio of the std of sRGB luma, target / input)",
    "saturation": "saturation gain (ratio of mean max-min chroma, target / input)",
    "warm": "white balance: target warmer than input (log R/B gain / 2, grey-world, linear light)",
    "tint": "white balance: target more magenta than input (log (R*B)/G^2 gain / 2)",
    "black_in": "input's 1st percentile of sRGB luma (raised black: flat or hazy)",
    "white_in": "input's 99th percentile of sRGB luma",
}


def photo_statistics(x: np.ndarray) -> dict[str, float]:
    """One photo's tone and colour statistics (used by :func:`pair_statistics`)."""
    lin = srgb_to_linear(x)
    luma = x @ _LUMA
    grey = lin.reshape(-1, 3).mean(axis=0) + 1e-6
    return {
        "log2_mean_luminance": float(np.log2((lin @ _LUMA).mean() + 1e-6)),
        "luma_std": float(luma.std()),
        "chroma": float((x.max(axis=2) - x.min(axis=2)).mean()),
        "log_rg": float(np.log(grey[0] / grey[1])),
        "log_bg": float(np.log(grey[2] / grey[1])),
        "p1": float(np.percentile(luma, 1)),
        "p99": float(np.percentile(luma, 99)),
    }


def set_black_point(x: np.ndarray, p1: float) -> np.ndarray:
    """``x`` with its black point set the way an editor sets it: a levels change ``(x - b) / (1 - b)``
    that brings the 1st percentile of sRGB luma down to ``p1`` (photos already as deep are returned
    unchanged). The FiveK experts' versions have a median 1st percentile of 0.006; a third of the
    bundled photos are finished with a raised, matte black (> 0.1)."""
    lo = float(np.percentile(x @ _LUMA, 1))
    if lo <= p1:
        return x
    b = (lo - p1) / (1.0 - p1)
    return np.clip((x - b) / (1.0 - b), 0.0, 1.0).astype(np.float32)


def pair_statistics(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """How target ``y`` differs from input ``x`` (the keys of :data:`STATISTICS`)."""
    a, b = photo_statistics(x), photo_statistics(y)
    d_rg, d_bg = b["log_rg"] - a["log_rg"], b["log_bg"] - a["log_bg"]
    return {
        "ev": b["log2_mean_luminance"] - a["log2_mean_luminance"],
        "contrast": b["luma_std"] / max(a["luma_std"], 1e-6),
        "saturation": b["chroma"] / max(a["chroma"], 1e-6),
        "warm": (d_rg - d_bg) / 2,
        "tint": (d_rg + d_bg) / 2,
        "black_in": a["p1"],
        "white_in": a["p99"],
    }


@dataclass(frozen=True)
class Rendition:
    """A distribution of camera renditions of a finished photo: each edit's parameter is drawn from
    a normal distribution (mean, standard deviation), clipped to a plausible range.

    ``ev``: how many EV darker the rendition is; ``black``/``white``: where the photo's black and
    white land (a levels compression: flat, hazy); ``saturation``: log of the chroma factor (< 0:
    duller); ``warm``/``tint``: log white-balance errors of the rendition (> 0: warmer / more magenta).
    """

    ev: tuple[float, float]
    black: tuple[float, float]
    white: tuple[float, float]
    saturation: tuple[float, float]
    warm: tuple[float, float]
    tint: tuple[float, float]

    def as_vector(self) -> np.ndarray:
        return np.array([v for pair in astuple(self) for v in pair], np.float64)

    @classmethod
    def from_vector(cls, v: np.ndarray) -> Rendition:
        v = [float(t) for t in v]
        return cls(*[(v[2 * i], abs(v[2 * i + 1])) for i in range(6)])


#: Fitted by ``python bench/fivek_statistics.py`` (bench/results/fivek_statistics.md).
FIVEK_FIT = Rendition(ev=(0.650, 0.412), black=(0.044, 0.028), white=(0.878, 0.099), saturation=(-0.081, 0.327),
                      warm=(-0.066, 0.017), tint=(0.035, 0.012))


#: Where an editor's version puts the 1st percentile of luma (:func:`set_black_point`); the FiveK
#: experts' median is 0.006, a quarter of the bundled photos are at or below 0.027.
EDITOR_BLACK_POINT = 0.03

#: The same fit for photos whose black point is first set to :data:`EDITOR_BLACK_POINT`
#: (``python bench/fivek_statistics.py --black-point 0.03 --out ...``, bench/results/fivek_statistics_black_point.md):
#: it matches the FiveK pairs' statistics better (mismatch 0.61, against 1.09 for :data:`FIVEK_FIT` on the photos' own finish).
FIVEK_FIT_EDITED = Rendition(ev=(0.980, 0.167), black=(0.066, 0.049), white=(0.950, 0.077), saturation=(-0.091, 0.213),
                             warm=(-0.035, 0.016), tint=(0.020, 0.013))


def camera_rendition(x: np.ndarray, rng: np.random.Generator, dist: Rendition = FIVEK_FIT) -> np.ndarray:
    """A camera-like rendition of the finished photo ``x``: darker, flatter, duller, off in white
    balance, by amounts drawn from ``dist``."""

    def draw(pair: tuple[float, float], lo: float, hi: float) -> float:
        return float(np.clip(rng.normal(*pair), lo, hi))

    ev, black = draw(dist.ev, -0.7, 2.5), draw(dist.black, 0.0, 0.25)
    white = draw(dist.white, max(black + 0.35, 0.55), 1.0)
    sat, warm, tint = draw(dist.saturation, -1.2, 0.2), draw(dist.warm, -0.5, 0.5), draw(dist.tint, -0.25, 0.25)
    out = exposure(x, -ev)
    gains = np.exp(np.array([warm + tint, 0.0, -warm + tint], np.float32))
    out = linear_to_srgb(srgb_to_linear(out) * gains)
    out = saturation(out, float(np.exp(sat)))
    return levels(out, black, white)


def edited_rendition(x: np.ndarray, rng: np.random.Generator, black_point: float = EDITOR_BLACK_POINT) -> tuple[np.ndarray, np.ndarray]:
    """``(rendition, edited)``: ``x`` with an editor's black point (:func:`set_black_point`) and a camera
    rendition of it drawn from :data:`FIVEK_FIT_EDITED` (the sampler fitted for such photos). What
    ``auto`` is trained on (scripts/train_default.py) and measured on (bench/default_model.py)."""
    edited = set_black_point(x, black_point)
    return camera_rendition(edited, rng, FIVEK_FIT_EDITED), edited
