"""The fall-risk model: inputs from daily features against the person's own baseline, a
scikit-learn pipeline with calibrated probabilities, levels, contributing factors in plain
words, and the rule for a `fall_risk_rise` alert (pure: no I/O; saving and loading is
gateway/risk/artefact.py).

Evidence behind the inputs (docs/fall-risk.md): a cumulative slowing of in-home walking
speed of about 2.5 cm/s preceded 4.2 times the odds of a fall within three weeks (Phillips
et al. 2017); waking to urinate two or more times a night raises fall risk (Stewart 1992,
odds ratio about 1.8; Vaughan 2010); daily-life activity and gait features add to fall
prediction (van Schooten 2015).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from detectors.features import DayFeatures
from detectors.trend import Decline, decline

HORIZON_DAYS = 21
BASELINE_DAYS = 28
RECENT_DAYS = 7
TREND_DAYS = 14
MIN_BASELINE_DAYS = 14
MIN_RECENT_DAYS = 3
LEVELS = ("low", "moderate", "high")
DEFAULT_THRESHOLDS = (0.06, 0.15)  # probability of a fall in 21 days: moderate, high
RISE_MEMORY_DAYS = 28
# Two weeks in a row. The walking-speed decline test (detectors/trend.py) already spends
# nearly all of the budget of one false fall_risk_rise per stable resident-year (0.92), and
# the slowings a level rise finds within 14 days it finds too. On the tuning cohort (400
# simulated residents x 365 days, seed 11) a level rise held for 4 days gave 1.19 false
# rises per stable resident-year (the service's two reasons together 2.04), 7 days 0.52
# (1.42), 10 days 0.21 (1.12), 14 days 0.04 (0.96); docs/fall-risk.md.
RISE_PERSIST_DAYS = 14

LONG_BASELINE_DAYS = 90
# Model inputs, in order. Changes compare the last RECENT_DAYS with the BASELINE_DAYS
# before them (`speed_change_long`: with the LONG_BASELINE_DAYS before them, since the
# slowing that preceded falls in Phillips et al. is cumulative, not only the last month);
# trends and shares use the last TREND_DAYS; `speed_decline` is the decline statistic of
# detectors/trend.py (standard errors of a slowing over the last two weeks).
INPUTS = ("speed_change", "speed_change_long", "speed_slope", "speed_decline",
          "night_bathroom_visits",
          "nocturia_2plus_share", "bed_exits_change", "activity_change_pct",
          "transitions_change_pct", "time_in_bed_change", "time_out_change", "activity_cv")


@dataclass(frozen=True)
class Inputs:
    """Model inputs for one resident-day, with the recent and usual values they compare."""

    day: date
    values: dict[str, float | None]
    recent: dict[str, float | None]
    usual: dict[str, float | None]
    days_with_data: int
    baseline_days_with_data: int
    decline: Decline | None = None  # the walking-speed decline statistic of `day`

    @property
    def scorable(self) -> bool:
        """Enough data for a score: a baseline and a recent week."""
        return self.baseline_days_with_data >= MIN_BASELINE_DAYS and \
            self.days_with_data >= MIN_RECENT_DAYS

    def vector(self, keys: Sequence[str] = INPUTS) -> list[float]:
        """Values of `keys` in order, NaN where not measured."""
        return [float("nan") if (v := self.values[k]) is None else float(v) for k in keys]


def _vals(days: Sequence[DayFeatures], name: str) -> list[float]:
    return [float(v) for d in days if (v := getattr(d, name)) is not None]


def _median(xs: list[float], need: int = 1) -> float | None:
    return statistics.median(xs) if len(xs) >= need else None


def _mean(xs: list[float], need: int = 1) -> float | None:
    return statistics.fmean(xs) if len(xs) >= need else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def _pct(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(100 * (a - b) / b, 2)


class _Speeds(Mapping[date, float | None]):
    """Daily walking speeds as a mapping, read through from the features by day."""

    def __init__(self, by_day: Mapping[date, DayFeatures]) -> None:
        self._by_day = by_day

    def __getitem__(self, day: date) -> float | None:
        return self._by_day[day].walking_speed

    def __iter__(self) -> Iterator[date]:
        return iter(self._by_day)

    def __len__(self) -> int:
        return len(self._by_day)


def inputs(history: Sequence[DayFeatures] | Mapping[date, DayFeatures], day: date,
           baseline_days: int = BASELINE_DAYS) -> Inputs:
    """Model inputs for `day` from the features of the days up to and including it (a
    mapping by day saves rebuilding it when many days of one history are scored)."""
    by_day = history if isinstance(history, Mapping) else {d.day: d for d in history}

    def span(first: date, n: int) -> list[DayFeatures]:
        return [f for i in range(n) if (f := by_day.get(first + timedelta(days=i)))
                is not None and f.observations > 0]

    recent = span(day - timedelta(days=RECENT_DAYS - 1), RECENT_DAYS)
    base = span(day - timedelta(days=RECENT_DAYS + baseline_days - 1), baseline_days)
    trend = span(day - timedelta(days=TREND_DAYS - 1), TREND_DAYS)
    long = span(day - timedelta(days=RECENT_DAYS + LONG_BASELINE_DAYS - 1),
                LONG_BASELINE_DAYS)
    r: dict[str, float | None] = {}
    u: dict[str, float | None] = {}
    for name in ("walking_speed",):
        r[name] = _median(_vals(recent, name), MIN_RECENT_DAYS)
        u[name] = _median(_vals(base, name), MIN_BASELINE_DAYS // 2)
    for name in ("night_bathroom_visits", "night_bed_exits", "activity", "room_transitions",
                 "time_in_bed", "time_out"):
        r[name] = _mean(_vals(recent, name), MIN_RECENT_DAYS)
        u[name] = _mean(_vals(base, name), MIN_BASELINE_DAYS // 2)
    speeds = [(float((d.day - day).days), float(d.walking_speed)) for d in trend
              if d.walking_speed is not None]
    slope = None
    if len(speeds) >= TREND_DAYS // 2:
        x = np.array([s[0] for s in speeds])
        y = np.array([s[1] for s in speeds])
        slope = round(float(np.polyfit(x, y, 1)[0]) * 7, 4)
    dec = decline(_Speeds(by_day), day)
    bath = _vals(trend, "night_bathroom_visits")
    act = _vals(trend, "activity")
    act_mean = _mean(act, MIN_RECENT_DAYS)
    values: dict[str, float | None] = {
        "speed_change": _diff(r["walking_speed"], u["walking_speed"]),
        "speed_change_pct": _pct(r["walking_speed"], u["walking_speed"]),
        "speed_change_long": _diff(r["walking_speed"],
                                   _median(_vals(long, "walking_speed"),
                                           MIN_BASELINE_DAYS // 2)),
        "speed_slope": slope,
        "speed_decline": None if dec is None else dec.z,
        "night_bathroom_visits": _mean(bath, MIN_RECENT_DAYS),
        "nocturia_2plus_share": (round(sum(1 for b in bath if b >= 2) / len(bath), 4)
                                 if len(bath) >= MIN_RECENT_DAYS else None),
        "bathroom_change": _diff(r["night_bathroom_visits"], u["night_bathroom_visits"]),
        "bed_exits_change": _diff(r["night_bed_exits"], u["night_bed_exits"]),
        "activity_change_pct": _pct(r["activity"], u["activity"]),
        "transitions_change_pct": _pct(r["room_transitions"], u["room_transitions"]),
        "time_in_bed_change": _diff(r["time_in_bed"], u["time_in_bed"]),
        "time_out_change": _diff(r["time_out"], u["time_out"]),
        "activity_cv": (round(math.sqrt(sum((a - act_mean) ** 2 for a in act) / len(act))
                             / act_mean, 4)
                        if act_mean and len(act) >= MIN_RECENT_DAYS else None),
    }
    return Inputs(day, values, r, u, len(recent), len(base), dec)


# --- the model -----------------------------------------------------------------------------


def level_of(probability: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> str:
    """low / moderate / high."""
    if probability >= thresholds[1]:
        return "high"
    return "moderate" if probability >= thresholds[0] else "low"


@dataclass
class Factor:
    """One contributing factor: its share of the score and what it says in words."""

    input: str
    contribution: float
    en: str
    sv: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"input": self.input, "contribution": round(self.contribution, 3),
                "en": self.en, "sv": self.sv}


@dataclass
class Score:
    """A scored resident-day."""

    day: date
    probability: float
    level: str
    factors: list[Factor] = field(default_factory=list)


def build_pipeline(seed: int = 0) -> Any:
    """Median imputation, standardisation and L2 logistic regression."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         StandardScaler(),
                         LogisticRegression(C=0.1, max_iter=2000, random_state=seed))


class RiskModel:
    """A fitted model: calibrated probabilities from `calibrated`, explanations from the
    logistic regression in `explainer` (the same pipeline fitted on all the data)."""

    def __init__(self, calibrated: Any, explainer: Any, inputs: Sequence[str],
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> None:
        self.calibrated = calibrated
        self.explainer = explainer
        self.inputs = tuple(inputs)
        self.thresholds = (float(thresholds[0]), float(thresholds[1]))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
            inputs: Sequence[str] = INPUTS, seed: int = 0,
            thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> RiskModel:
        """Fit on samples x (rows in `inputs` order) with labels y; calibration folds keep
        each resident's days together (`groups`)."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import GroupKFold

        folds = list(GroupKFold(n_splits=5).split(x, y, groups))
        calibrated = CalibratedClassifierCV(build_pipeline(seed), method="sigmoid", cv=folds)
        calibrated.fit(x, y)
        explainer = build_pipeline(seed).fit(x, y)
        return cls(calibrated, explainer, inputs, thresholds)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability of a fall within HORIZON_DAYS, per row."""
        return np.asarray(self.calibrated.predict_proba(x)[:, 1], dtype=float)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per row and input: coefficient x standardised value (log-odds it adds)."""
        imputer, scaler, lr = (self.explainer.steps[i][1] for i in range(3))
        z = scaler.transform(imputer.transform(x))
        return np.asarray(z * lr.coef_[0], dtype=float)

    def score(self, inp: Inputs, top: int = 3) -> Score:
        """Probability, level and the top factors that raise the risk."""
        return self.score_many([inp], top)[0]

    def score_many(self, inps: Sequence[Inputs], top: int = 3) -> list[Score]:
        """`score` of many days at once (one pass through scikit-learn, whose per-call
        overhead is most of the cost of a single day)."""
        if not inps:
            return []
        x = np.array([inp.vector(self.inputs) for inp in inps], dtype=float)
        probs = self.probabilities(x)
        contribs = self.contributions(x)
        out = []
        for inp, p, contrib in zip(inps, probs, contribs, strict=True):
            factors = []
            for i in np.argsort(-contrib)[:top]:
                if contrib[i] <= 0.05:
                    break
                name = self.inputs[int(i)]
                words = describe(name, inp)
                if words is not None:
                    factors.append(Factor(name, float(contrib[i]), *words))
            out.append(Score(inp.day, round(float(p), 4), level_of(float(p), self.thresholds),
                             factors))
        return out


def describe(name: str, inp: Inputs) -> tuple[str, str] | None:
    """A factor in plain words (English, Swedish), from the person's own numbers."""
    v, r, u = inp.values, inp.recent, inp.usual
    val = v.get(name)
    if val is None:
        return None
    if name == "speed_change_long":
        now = r["walking_speed"]
        if now is None:
            return None
        way_en, way_sv = ("slower", "långsammare") if val < 0 else ("faster", "snabbare")
        return (f"walking {abs(val):.1f} cm/s {way_en} than over the last three months "
                f"({now:.0f} cm/s now)",
                f"går {abs(val):.1f} cm/s {way_sv} än de senaste tre månaderna "
                f"({now:.0f} cm/s nu)")
    if name == "speed_change":
        pct, now, usual = v["speed_change_pct"], r["walking_speed"], u["walking_speed"]
        if pct is None or now is None or usual is None:
            return None
        way_en, way_sv = _below_above(pct)
        return (f"walking speed {abs(pct):.0f}% {way_en} usual ({now:.0f} cm/s, usually "
                f"{usual:.0f})",
                f"gånghastighet {abs(pct):.0f} % {way_sv} vanligt ({now:.0f} cm/s, "
                f"brukar vara {usual:.0f})")
    if name == "speed_decline":
        if inp.decline is None or inp.decline.drop <= 0:
            return None
        drop = inp.decline.drop
        return (f"walking speed falling: about {drop:.1f} cm/s slower over the last two weeks",
                f"gånghastigheten sjunker: ungefär {drop:.1f} cm/s lägre de senaste två "
                "veckorna")
    if name == "speed_slope":
        return (f"walking speed changing {val:+.1f} cm/s per week over two weeks",
                f"gånghastigheten ändras {val:+.1f} cm/s per vecka de senaste två veckorna")
    if name in ("night_bathroom_visits", "nocturia_2plus_share"):
        usual = u["night_bathroom_visits"]
        share = v["nocturia_2plus_share"]
        mean = v["night_bathroom_visits"]
        if mean is None:
            return None
        usual_en = f", usually {usual:.1f}" if usual is not None else ""
        usual_sv = f", brukar vara {usual:.1f}" if usual is not None else ""
        nights = f"; 2 or more on {share:.0%} of nights" if share is not None else ""
        natter = f"; 2 eller fler {share:.0%} av nätterna" if share is not None else ""
        return (f"{mean:.1f} bathroom visits a night{usual_en}{nights}",
                f"{mean:.1f} toalettbesök per natt{usual_sv}{natter}")
    if name == "bed_exits_change":
        return (f"{val:+.1f} bed exits a night compared with usual",
                f"{val:+.1f} uppstigningar per natt jämfört med vanligt")
    if name in ("activity_change_pct", "transitions_change_pct"):
        what_en, what_sv = ("activity", "aktivitet") if name == "activity_change_pct" \
            else ("moving between rooms", "förflyttningar mellan rum")
        way_en, way_sv = _below_above(val)
        return (f"{what_en} {abs(val):.0f}% {way_en} usual",
                f"{what_sv} {abs(val):.0f} % {way_sv} vanligt")
    if name == "time_in_bed_change":
        return (f"{val:+.1f} hours in bed a day compared with usual",
                f"{val:+.1f} timmar i sängen per dygn jämfört med vanligt")
    if name == "time_out_change":
        return (f"{val:+.1f} hours out of home a day compared with usual",
                f"{val:+.1f} timmar utanför hemmet per dag jämfört med vanligt")
    if name == "activity_cv":
        return (f"activity varies {val:.0%} from day to day",
                f"aktiviteten varierar {val:.0%} från dag till dag")
    return None


def _below_above(change: float) -> tuple[str, str]:
    return ("below", "lägre än") if change < 0 else ("above", "högre än")


def rise(history: Sequence[tuple[date, str | None]], memory_days: int = RISE_MEMORY_DAYS,
         persist_days: int = RISE_PERSIST_DAYS) -> tuple[str, str] | None:
    """Whether the newest scored day completes a rise: the level of each of the last
    `persist_days` scored days is above every level of the `memory_days` before them.
    Returns (previous highest level, new level) or None. A day that could not be scored
    (level None) breaks the run: a rise needs the days in a row."""
    if len(history) < persist_days:
        return None
    recent = history[-persist_days:]
    last = recent[-1][0]
    if any(lv is None for _, lv in recent) or \
            (last - recent[0][0]).days != persist_days - 1:
        return None
    first = recent[0][0]
    before = [lv for d, lv in history[:-persist_days]
              if lv is not None and 0 < (first - d).days <= memory_days]
    if not before:
        return None
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    prev = max(rank[lv] for lv in before)
    now = min(rank[lv] for _, lv in recent if lv is not None)
    if now > prev:
        return LEVELS[prev], LEVELS[now]
    return None
