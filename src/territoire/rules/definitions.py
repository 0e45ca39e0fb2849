"""Rule kinds: one typed parameter schema each, and the plain-language description of a rule.

A definition is a pydantic model chosen by its `kind` (a discriminated union), stored as
JSON. Every parameter has bounds, so a definition that validates can be evaluated. The
French and English descriptions are generated from the parameters: they are what the
public algorithm register shows, so they say exactly what the rule does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from territoire.errors import FieldProblem, InvalidInput

ATTRIBUTE = r"^[A-Za-z][A-Za-z0-9_]{0,99}$"
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
URN = r"^urn:ngsi-ld:[A-Za-z][A-Za-z0-9_]{0,99}:[A-Za-z0-9\-_.:~%@]{1,150}$"

Attribute = Annotated[str, Field(pattern=ATTRIBUTE, max_length=100)]


def _pct(ratio: float, lang: str) -> str:
    return _num(ratio * 100, lang) + " %"


def _num(value: float, lang: str) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if lang == "fr" else text


def _minutes(minutes: float, lang: str) -> str:
    if minutes % 60 == 0 and minutes >= 60:
        hours = int(minutes // 60)
        return f"{hours} h" if lang == "fr" else f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{_num(minutes, lang)} min"


class Definition(BaseModel):
    """Common ground of every kind: strict (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Entity types the rule looks at when its scope names none.
    default_types: ClassVar[tuple[str, ...]] = ()
    # Whether `run_timers` evaluates it (silence, night windows, daily checks).
    timed: ClassVar[bool] = False

    @property
    def kind_name(self) -> str:
        return str(getattr(self, "kind", ""))

    def describe(self, lang: str) -> str:
        raise NotImplementedError


# --- generic ---------------------------------------------------------------------------


class Threshold(Definition):
    kind: Literal["threshold"] = "threshold"
    attribute: Attribute
    operator: Literal["above", "below"] = "above"
    value: float = Field(allow_inf_nan=False)
    clear_value: float | None = Field(default=None, allow_inf_nan=False)
    repeats: int = Field(default=1, ge=1, le=1000)
    minutes: int = Field(default=0, ge=0, le=10_080)

    @model_validator(mode="after")
    def _hysteresis(self) -> Threshold:
        if self.clear_value is not None:
            wrong = (
                self.clear_value > self.value
                if self.operator == "above"
                else self.clear_value < self.value
            )
            if wrong:
                side = "at or below" if self.operator == "above" else "at or above"
                raise ValueError(f"clear_value must be {side} value")
        return self

    def describe(self, lang: str) -> str:
        clear = self.value if self.clear_value is None else self.clear_value
        if lang == "fr":
            way = "dépasse" if self.operator == "above" else "passe sous"
            back = "redescend sous" if self.operator == "above" else "remonte au-dessus de"
            held = f" pendant au moins {_minutes(self.minutes, lang)}" if self.minutes else ""
            return (
                f"Alarme lorsque « {self.attribute} » {way} {_num(self.value, lang)} "
                f"sur {self.repeats} relevé(s) consécutif(s){held} ; levée lorsqu'il "
                f"{back} {_num(clear, lang)}."
            )
        way = "goes above" if self.operator == "above" else "goes below"
        back = "falls back below" if self.operator == "above" else "rises back above"
        held = f" for at least {_minutes(self.minutes, lang)}" if self.minutes else ""
        return (
            f"Alarm when '{self.attribute}' {way} {_num(self.value, lang)} on "
            f"{self.repeats} consecutive reading(s){held}; cleared when it {back} "
            f"{_num(clear, lang)}."
        )


class Silence(Definition):
    kind: Literal["silence"] = "silence"
    minutes: int = Field(default=120, ge=5, le=43_200)
    attributes: list[Attribute] = Field(default_factory=list, max_length=50)
    timed: ClassVar[bool] = True

    def describe(self, lang: str) -> str:
        period = _minutes(self.minutes, lang)
        if lang == "fr":
            what = ", ".join(self.attributes) if self.attributes else "aucune de ses mesures"
            return (
                f"Alarme lorsqu'un équipement n'a rien transmis ({what}) depuis plus de "
                f"{period} ; levée dès qu'une mesure arrive."
            )
        what = ", ".join(self.attributes) if self.attributes else "any of its measurements"
        return (
            f"Alarm when a device has sent nothing ({what}) for more than {period}; "
            "cleared as soon as a reading arrives."
        )


class Stuck(Definition):
    kind: Literal["stuck"] = "stuck"
    attribute: Attribute
    min_hours: float = Field(default=6.0, gt=0, le=720)
    history_factor: float = Field(default=1.5, ge=1, le=20)
    learn_hours: float = Field(default=168.0, ge=0, le=2160)
    ignore_values: list[float] = Field(default_factory=list, max_length=20)
    ignore_below: float | None = Field(default=None, allow_inf_nan=False)
    # "longest": longer than the longest healthy repeat; "changes": so long that, at the
    # rate this series changes at those hours of the day, `expected_changes` were due.
    model: Literal["longest", "changes"] = "longest"
    expected_changes: float = Field(default=12.0, gt=0, le=1000)
    # "changes" only: learn the change rates pooled over the entities whose relationship
    # of this name points at the same target (the spots of one street zone), which gives
    # each hour far more evidence than one sensor's own few weeks.
    group_by: Attribute | None = None

    @model_validator(mode="after")
    def _grouping(self) -> Stuck:
        if self.group_by is not None and self.model != "changes":
            raise ValueError("group_by needs model 'changes'")
        return self

    def describe(self, lang: str) -> str:
        ignored = ", ".join(_num(v, lang) for v in self.ignore_values)
        if self.ignore_below is not None:
            below = _num(self.ignore_below, lang)
            ignored += (", " if ignored else "") + (
                f"sous {below}" if lang == "fr" else f"below {below}"
            )
        if self.model == "changes":
            return self._describe_changes(lang, ignored)
        if lang == "fr":
            tail = f" Les valeurs {ignored} ne comptent pas (capteur saturé)." if ignored else ""
            return (
                f"Alarme lorsque « {self.attribute} » répète exactement la même valeur "
                f"pendant plus de {_num(self.min_hours, lang)} h et plus de "
                f"{_num(self.history_factor, lang)} fois la plus longue répétition observée "
                f"sur cette série (apprise pendant {_num(self.learn_hours, lang)} h) ; "
                f"levée dès que la valeur change.{tail}"
            )
        tail = f" The values {ignored} do not count (sensor saturation)." if ignored else ""
        return (
            f"Alarm when '{self.attribute}' repeats exactly the same value for more than "
            f"{_num(self.min_hours, lang)} h and more than {_num(self.history_factor, lang)} "
            f"times the longest repeat seen on that series (learnt over "
            f"{_num(self.learn_hours, lang)} h); cleared as soon as the value changes.{tail}"
        )

    def _describe_changes(self, lang: str, ignored: str) -> str:
        expected = _num(self.expected_changes, lang)
        if lang == "fr":
            tail = f" Les valeurs {ignored} ne comptent pas." if ignored else ""
            if self.group_by is not None:
                tail += (
                    f" Les rythmes sont appris ensemble pour les équipements dont « "
                    f"{self.group_by} » désigne le même site."
                )
            return (
                f"Alarme lorsque « {self.attribute} » garde la même valeur depuis plus de "
                f"{_num(self.min_hours, lang)} h et si longtemps que, au rythme auquel cette "
                "série change d'habitude à ces heures-là (appris par heure des jours ouvrés, "
                "des samedis et des dimanches et fêtes, et par valeur, pendant "
                f"{_num(self.learn_hours, lang)} h), {expected} changements "
                f"auraient dû se produire ; levée dès que la valeur change.{tail}"
            )
        tail = f" The values {ignored} do not count." if ignored else ""
        if self.group_by is not None:
            tail += (
                f" The rates are learnt together for the entities whose '{self.group_by}' "
                "points at the same site."
            )
        return (
            f"Alarm when '{self.attribute}' has kept the same value for more than "
            f"{_num(self.min_hours, lang)} h and so long that, at the rate this series "
            "usually changes at those hours (learnt per hour of working days, Saturdays and "
            "Sundays or public holidays, and per value, over "
            f"{_num(self.learn_hours, lang)} h), {expected} changes were due; cleared as soon "
            f"as the value changes.{tail}"
        )


class RateOfChange(Definition):
    kind: Literal["rate_of_change"] = "rate_of_change"
    attribute: Attribute
    max_per_hour: float = Field(gt=0, allow_inf_nan=False)
    direction: Literal["rise", "fall", "both"] = "both"
    repeats: int = Field(default=1, ge=1, le=100)

    def describe(self, lang: str) -> str:
        rate = _num(self.max_per_hour, lang)
        if lang == "fr":
            way = {"rise": "monte", "fall": "baisse", "both": "varie"}[self.direction]
            return (
                f"Alarme lorsque « {self.attribute} » {way} de plus de {rate} par heure "
                f"entre deux relevés, {self.repeats} fois de suite ; levée au premier "
                "relevé dont la variation redevient normale."
            )
        way = {"rise": "rises", "fall": "falls", "both": "changes"}[self.direction]
        return (
            f"Alarm when '{self.attribute}' {way} by more than {rate} per hour between two "
            f"readings, {self.repeats} times in a row; cleared by the first reading whose "
            "change is normal again."
        )


class HistoryRange(Definition):
    kind: Literal["history_range"] = "history_range"
    attribute: Attribute
    statistic: Literal["mean", "min", "max"] = "mean"
    window_hours: int = Field(default=24, ge=1, le=720)
    learn_windows: int = Field(default=7, ge=2, le=365)
    sigmas: float = Field(default=4.0, gt=0, le=20)
    min_deviation: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    windows: int = Field(default=1, ge=1, le=30)

    def describe(self, lang: str) -> str:
        stat_fr = {"mean": "moyenne", "min": "minimum", "max": "maximum"}[self.statistic]
        if lang == "fr":
            return (
                f"Alarme lorsque le {stat_fr} de « {self.attribute} » sur {self.window_hours} h "
                f"s'écarte de plus de {_num(self.sigmas, lang)} écarts-types (et d'au moins "
                f"{_num(self.min_deviation, lang)}) de ce que la série a connu, appris sur au "
                f"moins {self.learn_windows} périodes, {self.windows} période(s) de suite ; "
                "levée lorsque la période suivante redevient normale."
            )
        return (
            f"Alarm when the {self.statistic} of '{self.attribute}' over {self.window_hours} h "
            f"departs by more than {_num(self.sigmas, lang)} standard deviations (and at least "
            f"{_num(self.min_deviation, lang)}) from what the series has known, learnt over at "
            f"least {self.learn_windows} periods, {self.windows} period(s) in a row; cleared "
            "when a later period is normal again."
        )


class PeerDrift(Definition):
    """A sensor that walks away from its peers: same attribute, other entities in scope."""

    kind: Literal["peer_drift"] = "peer_drift"
    attributes: list[Attribute] = Field(min_length=1, max_length=20)
    tolerance: float = Field(default=0.3, gt=0, le=10)
    days: int = Field(default=3, ge=1, le=30)
    baseline_days: int = Field(default=14, ge=3, le=90)
    min_peers: int = Field(default=3, ge=2, le=100)
    min_readings: int = Field(default=18, ge=1, le=1440)
    default_types: ClassVar[tuple[str, ...]] = ("AirQualityObserved",)
    timed: ClassVar[bool] = True

    def describe(self, lang: str) -> str:
        names = ", ".join(self.attributes)
        if lang == "fr":
            return (
                f"Dérive de capteur ({names}) : chaque jour (heure locale), la moyenne de "
                "chaque équipement est divisée par la médiane des moyennes des autres "
                f"équipements du périmètre (au moins {self.min_peers}, {self.min_readings} "
                "relevés par jour) ; ce rapport est comparé à sa médiane des "
                f"{self.baseline_days} derniers jours normaux. Alarme lorsqu'il s'en écarte de "
                f"plus de {_pct(self.tolerance, lang)} pendant {self.days} jour(s) de suite "
                "(le capteur s'éloigne de ce que ses voisins mesurent) ; levée après un jour "
                "normal."
            )
        return (
            f"Sensor drift ({names}): each (local) day, each device's mean is divided by the "
            "median of the other devices' means in scope (at least "
            f"{self.min_peers}, {self.min_readings} readings a day); that ratio is compared "
            f"with its median over the last {self.baseline_days} normal days. Alarm when it "
            f"departs from it by more than {_pct(self.tolerance, lang)} for {self.days} day(s) "
            "in a row (the sensor moves away from what its neighbours measure); cleared "
            "after a normal day."
        )


# --- lighting --------------------------------------------------------------------------


class Lighting(Definition):
    """Lamps are judged against their cabinet's command (its `illuminanceLevel`)."""

    power_attribute: Attribute = "powerConsumption"
    command_attribute: Attribute = "illuminanceLevel"
    default_types: ClassVar[tuple[str, ...]] = ("Streetlight",)


class LampOut(Lighting):
    kind: Literal["lamp_out"] = "lamp_out"
    dark_ratio: float = Field(default=0.2, gt=0, lt=1)
    samples: int = Field(default=12, ge=1, le=500)
    cabinet_share: float = Field(default=0.3, gt=0, le=1)
    max_switches: int = Field(default=1, ge=1, le=100)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Alarme lorsqu'un point lumineux que son armoire commande allumé consomme "
                f"moins de {_pct(self.dark_ratio, lang)} de sa puissance nominale sur "
                f"{self.samples} relevés consécutifs, s'il ne s'est pas éteint plus de "
                f"{self.max_switches} fois en 24 h (sinon il clignote) et sauf si au moins "
                f"{_pct(self.cabinet_share, lang)} des points de l'armoire sont éteints en même "
                "temps (c'est alors un défaut d'armoire) ; levée au premier relevé allumé."
            )
        return (
            "Alarm when a street light that its cabinet commands on draws less than "
            f"{_pct(self.dark_ratio, lang)} of its nominal power on {self.samples} consecutive "
            f"readings, if it has not gone dark more than {self.max_switches} time(s) in 24 h "
            f"(else it is cycling) and unless at least {_pct(self.cabinet_share, lang)} of the "
            "cabinet's lights are dark at the same time (a cabinet fault); cleared by the first "
            "lit reading."
        )


class DayBurner(Lighting):
    kind: Literal["day_burner"] = "day_burner"
    lit_ratio: float = Field(default=0.2, gt=0, lt=1)
    samples: int = Field(default=4, ge=1, le=500)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Alarme lorsqu'un point lumineux que son armoire commande éteint consomme au "
                f"moins {_pct(self.lit_ratio, lang)} de sa puissance nominale sur "
                f"{self.samples} relevés consécutifs ; levée au premier relevé éteint."
            )
        return (
            "Alarm when a street light that its cabinet commands off draws at least "
            f"{_pct(self.lit_ratio, lang)} of its nominal power on {self.samples} consecutive "
            "readings; cleared by the first dark reading."
        )


class LampCycling(Lighting):
    kind: Literal["lamp_cycling"] = "lamp_cycling"
    dark_ratio: float = Field(default=0.2, gt=0, lt=1)
    switches: int = Field(default=4, ge=2, le=200)
    window_hours: int = Field(default=24, ge=1, le=168)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Alarme lorsqu'un point lumineux commandé allumé s'éteint de lui-même au moins "
                f"{self.switches} fois en {self.window_hours} h (moins de "
                f"{_pct(self.dark_ratio, lang)} de sa puissance nominale après un relevé "
                f"allumé) ; levée après {self.window_hours} h sans extinction."
            )
        return (
            "Alarm when a street light commanded on goes dark by itself at least "
            f"{self.switches} times in {self.window_hours} h (below "
            f"{_pct(self.dark_ratio, lang)} of its nominal power after a lit reading); "
            f"cleared after {self.window_hours} h without going dark."
        )


class CabinetFault(Lighting):
    kind: Literal["cabinet_fault"] = "cabinet_fault"
    dark_ratio: float = Field(default=0.2, gt=0, lt=1)
    share: float = Field(default=0.3, gt=0, le=1)
    min_lamps: int = Field(default=3, ge=1, le=1000)
    minutes: int = Field(default=15, ge=0, le=1440)
    no_supply_watts: float = Field(default=0.1, ge=0, le=100)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Une seule alarme sur l'armoire lorsqu'au moins "
                f"{_pct(self.share, lang)} de ses points lumineux (et au moins "
                f"{self.min_lamps}) sont éteints en même temps pendant "
                f"{_minutes(self.minutes, lang)} : commandés allumés sous "
                f"{_pct(self.dark_ratio, lang)} de leur puissance nominale, ou sans "
                f"alimentation (moins de {_num(self.no_supply_watts, lang)} W) ; levée "
                "lorsqu'ils se rallument."
            )
        return (
            "One alarm on the cabinet when at least "
            f"{_pct(self.share, lang)} of its lights (and at least {self.min_lamps}) are "
            f"dark at once for {_minutes(self.minutes, lang)}: commanded on yet below "
            f"{_pct(self.dark_ratio, lang)} of their nominal power, or without supply (under "
            f"{_num(self.no_supply_watts, lang)} W); cleared when they light again."
        )


# --- water -----------------------------------------------------------------------------


class NightWindow(Definition):
    """A district meter's flow in a window of each night (local time), judged once the
    night is over."""

    attribute: Attribute = "flow"
    window_start: str = "02:00"
    window_end: str = "04:00"
    lateness_minutes: int = Field(default=30, ge=0, le=720)
    default_types: ClassVar[tuple[str, ...]] = ("WaterConsumptionObserved",)
    timed: ClassVar[bool] = True

    @model_validator(mode="after")
    def _window(self) -> NightWindow:
        for name in ("window_start", "window_end"):
            if not CLOCK.match(getattr(self, name)):
                raise ValueError(f"{name} must be a local time HH:MM")
        if self.window_end <= self.window_start:
            raise ValueError("the night window must end after it starts (same night)")
        return self


class NightFlow(NightWindow):
    kind: Literal["night_flow"] = "night_flow"
    baseline_nights: int = Field(default=7, ge=2, le=60)
    margin: float = Field(default=0.12, gt=0, le=10)
    nights: int = Field(default=1, ge=1, le=14)
    burst_ratio: float = Field(default=1.5, gt=0, le=100)
    common_mode: bool = True

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                f"Fuite : chaque nuit, le débit médian de {self.window_start} à "
                f"{self.window_end} (heure locale) est comparé à la médiane des "
                f"{self.baseline_nights} nuits normales précédentes"
                + (
                    ", en retirant l'écart médian de tous les secteurs la même nuit (météo, "
                    "jours fériés)"
                    if self.common_mode
                    else ""
                )
                + f" ; alarme lorsqu'il la dépasse de plus de {_pct(self.margin, lang)} "
                f"pendant {self.nights} nuit(s) "
                f"de suite. Une nuit dont le débit dépasse la référence de plus de "
                f"{_pct(self.burst_ratio, lang)}, même sur une partie de la fenêtre, relève "
                "d'une casse, pas d'une fuite, et n'est pas comptée. Levée après une nuit "
                "normale."
            )
        return (
            f"Leak: each night, the median flow from {self.window_start} to "
            f"{self.window_end} (local time) is compared with the median of the previous "
            f"{self.baseline_nights} normal nights"
            + (
                ", less the median departure of all districts the same night (weather, holidays)"
                if self.common_mode
                else ""
            )
            + f"; alarm when it exceeds it by more than {_pct(self.margin, lang)} for "
            f"{self.nights} night(s) in a row. A night whose flow exceeds it by more than "
            f"{_pct(self.burst_ratio, lang)}, even over part of the window, is a burst, not "
            "a leak, and does not count. Cleared after a normal night."
        )


class NightFlowDrift(NightWindow):
    kind: Literal["night_flow_drift"] = "night_flow_drift"
    # A week of nights: chosen on tuning seeds 1-40 (decision 0604).
    nights: int = Field(default=7, ge=3, le=30)
    min_slope: float = Field(default=0.025, gt=0, le=1)
    max_scatter: float = Field(default=0.03, gt=0, le=1)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                f"Compteur qui dérive : le débit médian de {self.window_start} à "
                f"{self.window_end} (heure locale) des {self.nights} dernières nuits suit une "
                f"pente régulière d'au moins {_pct(self.min_slope, lang)} par nuit (droite des "
                f"moindres carrés, écart-type résiduel au plus {_pct(self.max_scatter, lang)}) : "
                "une fuite ou une réparation est une marche, pas une pente. Levée quand les "
                "nuits ne suivent plus la pente."
            )
        return (
            f"Meter drift: the median flow from {self.window_start} to {self.window_end} "
            f"(local time) of the last {self.nights} nights follows a steady slope of at "
            f"least {_pct(self.min_slope, lang)} a night (least-squares line, residual "
            f"standard deviation at most {_pct(self.max_scatter, lang)}): a leak or a repair "
            "is a step, not a slope. Cleared when the nights no longer follow a slope."
        )


class Burst(Definition):
    kind: Literal["burst"] = "burst"
    attribute: Attribute = "flow"
    jump_ratio: float = Field(default=0.6, gt=0, le=100)
    readings: int = Field(default=2, ge=1, le=100)
    learn_days: int = Field(default=3, ge=1, le=60)
    relearn_hours: int = Field(default=12, ge=1, le=24 * 30)
    default_types: ClassVar[tuple[str, ...]] = ("WaterConsumptionObserved",)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Casse : alarme lorsque le débit dépasse le profil habituel du secteur (appris "
                f"par quart d'heure, jours ouvrés et week-ends séparés, sur au moins "
                f"{self.learn_days} jours) de plus de {_pct(self.jump_ratio, lang)} de son débit "
                f"moyen, sur {self.readings} relevés consécutifs ; levée lorsque l'excès "
                "retombe sous la moitié de ce seuil. Un excès qui dure plus de "
                f"{self.relearn_hours} h n'est plus une casse mais un nouveau niveau (compteur "
                "revenu d'une dérive, nouveau consommateur) : le profil le réapprend."
            )
        return (
            "Burst: alarm when the flow exceeds the district's usual profile (learnt per "
            f"quarter hour, working days and weekends apart, over at least {self.learn_days} "
            f"days) by more than {_pct(self.jump_ratio, lang)} of its mean flow, on "
            f"{self.readings} consecutive readings; cleared when the excess falls below half "
            f"of that threshold. An excess lasting more than {self.relearn_hours} h is no "
            "burst but a new level (a meter back from a drift, a new consumer): the profile "
            "learns it again."
        )


class NetworkEfficiency(Definition):
    kind: Literal["network_efficiency"] = "network_efficiency"
    attribute: Attribute = "flow"
    days: int = Field(default=7, ge=1, le=90)
    target: float = Field(default=0.85, gt=0, lt=1)
    night_use_lph: float = Field(default=2.0, ge=0, le=1000)
    window_start: str = "02:00"
    window_end: str = "04:00"
    default_types: ClassVar[tuple[str, ...]] = ("WaterConsumptionObserved",)
    timed: ClassVar[bool] = True

    @model_validator(mode="after")
    def _window(self) -> NetworkEfficiency:
        for name in ("window_start", "window_end"):
            if not CLOCK.match(getattr(self, name)):
                raise ValueError(f"{name} must be a local time HH:MM")
        if self.window_end <= self.window_start:
            raise ValueError("the night window must end after it starts (same night)")
        return self

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                f"Rendement de réseau par secteur, sur les {self.days} derniers jours : "
                "1 − pertes / volume introduit, les pertes étant le débit minimum de nuit "
                f"({self.window_start}–{self.window_end}) diminué d'un usage nocturne de "
                f"{_num(self.night_use_lph, lang)} l/h par branchement ; alarme sous "
                f"{_pct(self.target, lang)} (objectif du décret 2012-97), levée au-dessus."
            )
        return (
            f"Network efficiency per district over the last {self.days} days: 1 − losses / "
            f"volume put in, losses being the minimum night flow ({self.window_start}–"
            f"{self.window_end}) less a night use of {_num(self.night_use_lph, lang)} l/h per "
            f"connection; alarm below {_pct(self.target, lang)} (target of decree 2012-97), "
            "cleared above."
        )


# --- buildings -------------------------------------------------------------------------


class UnoccupiedConsumption(Definition):
    kind: Literal["unoccupied_consumption"] = "unoccupied_consumption"
    attribute: Attribute = "activePower"
    occupancy_attribute: Attribute | None = "occupancy"
    after_closing_minutes: int = Field(default=30, ge=0, le=720)
    before_opening_minutes: int = Field(default=120, ge=0, le=720)
    margin: float = Field(default=0.5, gt=0, le=100)
    samples: int = Field(default=4, ge=1, le=500)
    learn_samples: int = Field(default=24, ge=1, le=10_000)
    default_types: ClassVar[tuple[str, ...]] = ("Building",)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                f"Consommation hors occupation : en dehors des horaires d'ouverture du "
                f"bâtiment (openingHours, {self.after_closing_minutes} min après la fermeture "
                f"et jusqu'à {self.before_opening_minutes} min avant l'ouverture)"
                + (
                    f" et lorsque le capteur « {self.occupancy_attribute} » ne voit personne"
                    if self.occupancy_attribute
                    else ""
                )
                + f", alarme lorsque « {self.attribute} » dépasse de plus de "
                f"{_pct(self.margin, lang)} sa consommation habituelle hors occupation "
                f"(apprise sur {self.learn_samples} relevés) sur {self.samples} relevés "
                "consécutifs ; levée lorsqu'elle redevient normale. Un relevé qui répète "
                "exactement le précédent ne compte pas (compteur figé)."
            )
        return (
            "Consumption while unoccupied: outside the building's opening hours "
            f"(openingHours, from {self.after_closing_minutes} min after closing until "
            f"{self.before_opening_minutes} min before opening)"
            + (
                f" and while the '{self.occupancy_attribute}' sensor sees nobody"
                if self.occupancy_attribute
                else ""
            )
            + f", alarm when '{self.attribute}' exceeds its usual unoccupied consumption "
            f"(learnt over {self.learn_samples} readings) by more than "
            f"{_pct(self.margin, lang)} on {self.samples} consecutive readings; cleared when "
            "it is normal again. A reading that repeats the previous one exactly does not "
            "count (frozen meter)."
        )


class UnoccupiedHeating(Definition):
    kind: Literal["unoccupied_heating"] = "unoccupied_heating"
    temperature_attribute: Attribute = "temperature"
    energy_attribute: Attribute = "gasConsumption"
    occupancy_attribute: Attribute | None = "occupancy"
    after_closing_minutes: int = Field(default=60, ge=0, le=720)
    before_opening_minutes: int = Field(default=120, ge=0, le=720)
    hours: float = Field(default=3.0, gt=0, le=72)
    gap: float = Field(default=2.0, gt=0, le=30)
    # Not judged while the day's regulated in-use temperature is this far from its usual
    # level: the thermometer is drifting, and its set-back would be misread (None: always).
    suspect_tolerance: float | None = Field(default=1.0, gt=0, le=20)
    default_types: ClassVar[tuple[str, ...]] = ("Building",)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Chauffage hors occupation : en dehors des horaires d'ouverture "
                f"({self.after_closing_minutes} min après la fermeture, jusqu'à "
                f"{self.before_opening_minutes} min avant l'ouverture), alarme lorsque le "
                f"chauffage (« {self.energy_attribute} ») maintient pendant "
                f"{_num(self.hours, lang)} h une température supérieure d'au moins "
                f"{_num(self.gap, lang)} °C à la température réduite habituelle du bâtiment "
                "vide (apprise ; tant qu'elle ne l'est pas : à moins de "
                f"{_num(self.gap, lang)} °C de la température de confort des heures "
                "d'ouverture). Un thermomètre ou un compteur figé ne prouve rien. Levée "
                "lorsque la température redescend."
                + (
                    " Pas de jugement tant que la température d'occupation relevée pendant que "
                    "la chaudière régule s'écarte de plus de "
                    f"{_num(self.suspect_tolerance, lang)} °C de son niveau habituel "
                    "(thermomètre qui dérive)."
                    if self.suspect_tolerance is not None
                    else ""
                )
            )
        return (
            "Heating while unoccupied: outside opening hours (from "
            f"{self.after_closing_minutes} min after closing until "
            f"{self.before_opening_minutes} min before opening), alarm when the heating "
            f"('{self.energy_attribute}') holds for {_num(self.hours, lang)} h a temperature "
            f"at least {_num(self.gap, lang)} °C above the building's usual set-back "
            "temperature when empty (learnt; until it is: within "
            f"{_num(self.gap, lang)} °C of the comfort temperature of opening hours). A "
            "frozen thermometer or meter proves nothing. Cleared when the temperature drops."
            + (
                " Not judged while the in-use temperature read as the boiler regulates departs "
                f"by more than {_num(self.suspect_tolerance, lang)} °C from its usual level "
                "(drifting thermometer)."
                if self.suspect_tolerance is not None
                else ""
            )
        )


class ConsumptionDrift(Definition):
    kind: Literal["consumption_drift"] = "consumption_drift"
    attribute: Attribute = "gasConsumption"
    weather_entity: str = Field(pattern=URN, max_length=255)
    weather_attribute: Attribute = "temperature"
    base_temperature: float = Field(default=16.0, ge=-20, le=40)
    learn_days: int = Field(default=14, ge=3, le=365)
    margin: float = Field(default=0.3, gt=0, le=10)
    days: int = Field(default=3, ge=1, le=60)
    default_types: ClassVar[tuple[str, ...]] = ("Building",)
    timed: ClassVar[bool] = True

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                f"Dérive : chaque jour, « {self.attribute} » est comparé à la consommation "
                "attendue d'après les degrés-jours (base "
                f"{_num(self.base_temperature, lang)} °C, température de "
                f"{self.weather_entity}), droite apprise sur les {self.learn_days} jours "
                f"normaux précédents ; alarme lorsqu'il la dépasse de plus de "
                f"{_pct(self.margin, lang)} {self.days} jour(s) de suite, levée après un jour "
                "normal."
            )
        return (
            f"Drift: each day, '{self.attribute}' is compared with the consumption expected "
            f"from degree days (base {_num(self.base_temperature, lang)} °C, temperature of "
            f"{self.weather_entity}), a line learnt over the previous {self.learn_days} normal "
            f"days; alarm when it exceeds it by more than {_pct(self.margin, lang)} "
            f"{self.days} day(s) in a row, cleared after a normal day."
        )


class ThermometerDrift(Definition):
    """An indoor thermometer walking away from the temperature the heating regulation holds."""

    kind: Literal["thermometer_drift"] = "thermometer_drift"
    temperature_attribute: Attribute = "temperature"
    energy_attribute: Attribute = "gasConsumption"
    occupancy_attribute: Attribute | None = "occupancy"
    tolerance: float = Field(default=0.6, gt=0, le=20)
    days: int = Field(default=1, ge=1, le=30)
    learn_days: int = Field(default=5, ge=2, le=90)
    baseline_days: int = Field(default=14, ge=2, le=90)
    min_readings: int = Field(default=8, ge=1, le=96)
    # Also judge the set-back held at night (buildings open one or two days a week).
    closed_levels: bool = True
    default_types: ClassVar[tuple[str, ...]] = ("Building",)

    @model_validator(mode="after")
    def _windows(self) -> ThermometerDrift:
        if self.baseline_days < self.learn_days:
            raise ValueError("baseline_days must be at least learn_days")
        return self

    def describe(self, lang: str) -> str:
        tol = _num(self.tolerance, lang)
        step = "1,5" if lang == "fr" else "1.5"
        if lang == "fr":
            who = (
                f", « {self.occupancy_attribute} » voyant quelqu'un"
                if self.occupancy_attribute
                else ""
            )
            night = (
                " De même pour la température réduite des nuits de fermeture (de 3 h après "
                "la fermeture à 3 h avant l'ouverture) ; une nuit à plus de "
                f"{step} °C de son niveau habituel est un chauffage resté au confort, pas une "
                "dérive, et n'est pas jugée."
                if self.closed_levels
                else ""
            )
            return (
                "Thermomètre décalé : chaque jour (de midi à midi), la médiane des "
                "températures relevées pendant l'occupation du bâtiment (horaires "
                f"d'ouverture{who}) alors que la chaudière régule (« {self.energy_attribute} "
                "» ni nul ni à plus de 90 % de son maximum : la pièce est alors à la consigne "
                f"de confort) est comparée à la médiane des {self.baseline_days} derniers "
                f"jours normaux ({self.min_readings} relevés par jour au moins). Alarme "
                f"lorsqu'elle s'en écarte de plus de {tol} °C {self.days} jour(s) de suite : "
                f"la consigne ne bouge pas, c'est le capteur qui dérive.{night} Un niveau "
                f"n'est appris que lorsque {self.learn_days} jours de suite concordent à la "
                "moitié de la tolérance près (au départ, ou pour un nouveau niveau tenu aussi "
                "régulièrement). Un relevé qui répète exactement le précédent ne compte pas "
                "(capteur figé). Levée après un jour normal."
            )
        who = f", '{self.occupancy_attribute}' seeing someone" if self.occupancy_attribute else ""
        night = (
            " The same for the set-back of closed nights (from 3 h after closing to 3 h "
            f"before opening); a night more than {step} °C from its usual level is heating "
            "left at comfort, not a drift, and is not judged."
            if self.closed_levels
            else ""
        )
        return (
            "Drifting thermometer: each day (noon to noon), the median of the temperatures "
            f"read while the building is in use (opening hours{who}) and the boiler "
            f"regulates ('{self.energy_attribute}' neither zero nor above 90 % of its "
            "maximum: the room is then at the comfort set-point) is compared with the median "
            f"of the last {self.baseline_days} normal days (at least {self.min_readings} "
            f"readings a day). Alarm when it departs from it by more than {tol} °C "
            f"{self.days} day(s) in a row: the set-point does not move, the sensor does."
            f"{night} A level is learnt only once {self.learn_days} days in a row agree "
            "within half the tolerance (at the start, or for a new level held that "
            "steadily). A reading repeating the previous one exactly does not count (frozen "
            "sensor). Cleared after a normal day."
        )


class OccupiedZero(Definition):
    """A meter that reads 0 while the building is in use, for longer than it ever did."""

    kind: Literal["occupied_zero"] = "occupied_zero"
    attribute: Attribute = "waterConsumption"
    occupancy_attribute: Attribute | None = "occupancy"
    readings: int = Field(default=8, ge=1, le=1000)
    history_factor: float = Field(default=2.0, ge=1, le=20)
    learn_readings: int = Field(default=96, ge=0, le=10_000)
    # Gas: a boiler may stay off for hours in an occupied building kept warm by people and
    # equipment, but then the room rises above its set-point. With a thermometer, a zero
    # counts only while the room sits at its comfort level (within `band` °C), which a
    # boiler that really is off cannot hold.
    temperature_attribute: Attribute | None = None
    band: float = Field(default=0.25, gt=0, le=5)
    default_types: ClassVar[tuple[str, ...]] = ("Building",)

    def describe(self, lang: str) -> str:
        factor = _num(self.history_factor, lang)
        if lang == "fr":
            return (
                f"Compteur figé à zéro : alarme lorsque « {self.attribute} » lit 0 sur plus de "
                f"{self.readings} relevés consécutifs pris pendant l'occupation du bâtiment "
                "(horaires d'ouverture"
                + (
                    f", « {self.occupancy_attribute} » voyant quelqu'un"
                    if self.occupancy_attribute
                    else ""
                )
                + f") et plus de {factor} fois la plus longue telle série observée (apprise "
                f"sur {self.learn_readings} relevés d'occupation) : un bâtiment fermé lit 0, "
                "un bâtiment occupé consomme. Levée au premier relevé non nul."
                + (
                    f" Un zéro ne compte que si « {self.temperature_attribute} » est à moins "
                    f"de {_num(self.band, lang)} °C du niveau de confort appris (médiane des "
                    "journées d'occupation où la chaudière régule) : une chaudière vraiment "
                    "arrêtée ne tient pas la consigne."
                    if self.temperature_attribute
                    else ""
                )
            )
        return (
            f"Meter stuck at zero: alarm when '{self.attribute}' reads 0 on more than "
            f"{self.readings} consecutive readings taken while the building is in use "
            "(opening hours"
            + (f", '{self.occupancy_attribute}' seeing someone" if self.occupancy_attribute else "")
            + f") and more than {factor} times the longest such run seen (learnt over "
            f"{self.learn_readings} in-use readings): a closed building reads 0, an occupied "
            "one consumes. Cleared by the first non-zero reading."
            + (
                f" A zero counts only while '{self.temperature_attribute}' is within "
                f"{_num(self.band, lang)} °C of the learnt comfort level (median of the in-use "
                "days when the boiler regulates): a boiler really off cannot hold the set-point."
                if self.temperature_attribute
                else ""
            )
        )


# --- waste -----------------------------------------------------------------------------


class ContainerFull(Definition):
    kind: Literal["container_full"] = "container_full"
    attribute: Attribute = "fillingLevel"
    level: float = Field(default=0.95, gt=0, le=1)
    readings: int = Field(default=1, ge=1, le=100)
    clear_level: float = Field(default=0.5, ge=0, lt=1)
    max_after_emptying: float | None = Field(default=0.12, gt=0, lt=1)
    default_types: ClassVar[tuple[str, ...]] = ("WasteContainer",)

    @model_validator(mode="after")
    def _levels(self) -> ContainerFull:
        if self.clear_level >= self.level:
            raise ValueError("clear_level must be below level")
        return self

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                f"Conteneur plein : alarme lorsque le taux de remplissage atteint "
                f"{_pct(self.level, lang)} sur {self.readings} relevé(s) consécutif(s) ; "
                f"levée lorsqu'il redescend sous {_pct(self.clear_level, lang)} (vidage)."
                + (
                    " Pas d'alarme tant que le dernier vidage a laissé une mesure au-dessus "
                    f"de {_pct(self.max_after_emptying, lang)} (capteur qui lit trop haut)."
                    if self.max_after_emptying is not None
                    else ""
                )
            )
        return (
            f"Container full: alarm when the fill level reaches {_pct(self.level, lang)} on "
            f"{self.readings} consecutive reading(s); cleared when it falls below "
            f"{_pct(self.clear_level, lang)} (emptied)."
            + (
                " No alarm while the last emptying left a reading above "
                f"{_pct(self.max_after_emptying, lang)} (a sensor reading high)."
                if self.max_after_emptying is not None
                else ""
            )
        )


class EmptiedLevel(Definition):
    """A fill sensor's own check: emptying must bring it back near 0 %."""

    kind: Literal["emptied_level"] = "emptied_level"
    attribute: Attribute = "fillingLevel"
    drop: float = Field(default=0.3, gt=0, le=1)
    max_after: float = Field(default=0.12, gt=0, lt=1)
    # Deposits arrive every day: a healthy container reads 0 % for at most about 5 hours
    # after an emptying (10 simulated seeds of the medium town, 24,000 emptyings).
    zero_hours: float = Field(default=5.5, gt=0, le=336)
    default_types: ClassVar[tuple[str, ...]] = ("WasteContainer",)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Capteur de remplissage décalé : un vidage (baisse d'au moins "
                f"{_pct(self.drop, lang)} d'un relevé au suivant) doit ramener la mesure près "
                f"de 0 %. Alarme si elle reste au-dessus de {_pct(self.max_after, lang)} (le "
                "capteur lit trop haut), ou si elle reste à 0 % plus de "
                f"{_num(self.zero_hours, lang)} h d'affilée (il lit trop bas : un conteneur "
                "reçoit des dépôts chaque jour) ; levée au vidage suivant normal."
            )
        return (
            "Fill sensor offset: an emptying (a fall of at least "
            f"{_pct(self.drop, lang)} from one reading to the next) must bring the reading "
            f"back near 0 %. Alarm if it stays above {_pct(self.max_after, lang)} (the sensor "
            f"reads high), or if it reads 0 % for more than {_num(self.zero_hours, lang)} h "
            "in a row (it reads low: a container gets deposits every day); cleared by the next "
            "normal emptying."
        )


class ContainerForecast(Definition):
    kind: Literal["container_forecast"] = "container_forecast"
    attribute: Attribute = "fillingLevel"
    hours: float = Field(default=12.0, gt=0, le=336)
    window_hours: float = Field(default=24.0, gt=0, le=336)
    min_level: float = Field(default=0.5, ge=0, lt=1)
    clear_level: float = Field(default=0.3, ge=0, lt=1)
    default_types: ClassVar[tuple[str, ...]] = ("WasteContainer",)

    def describe(self, lang: str) -> str:
        if lang == "fr":
            return (
                "Conteneur bientôt plein : à partir de "
                f"{_pct(self.min_level, lang)}, la tendance des {_num(self.window_hours, lang)} "
                f"dernières heures est prolongée ; alarme lorsqu'elle atteint 100 % dans moins "
                f"de {_num(self.hours, lang)} h, levée au vidage (sous "
                f"{_pct(self.clear_level, lang)})."
            )
        return (
            f"Container soon full: from {_pct(self.min_level, lang)}, the trend of the last "
            f"{_num(self.window_hours, lang)} hours is extended; alarm when it reaches 100 % "
            f"within {_num(self.hours, lang)} h, cleared when emptied (below "
            f"{_pct(self.clear_level, lang)})."
        )


AnyDefinition = Annotated[
    Threshold
    | Silence
    | Stuck
    | RateOfChange
    | HistoryRange
    | PeerDrift
    | LampOut
    | DayBurner
    | LampCycling
    | CabinetFault
    | NightFlow
    | NightFlowDrift
    | Burst
    | NetworkEfficiency
    | UnoccupiedConsumption
    | UnoccupiedHeating
    | ConsumptionDrift
    | ThermometerDrift
    | OccupiedZero
    | ContainerFull
    | ContainerForecast
    | EmptiedLevel,
    Field(discriminator="kind"),
]
_adapter: TypeAdapter[AnyDefinition] = TypeAdapter(AnyDefinition)
DEFINITIONS: dict[str, type[Definition]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        Threshold,
        Silence,
        Stuck,
        RateOfChange,
        HistoryRange,
        PeerDrift,
        LampOut,
        DayBurner,
        LampCycling,
        CabinetFault,
        NightFlow,
        NightFlowDrift,
        Burst,
        NetworkEfficiency,
        UnoccupiedConsumption,
        UnoccupiedHeating,
        ConsumptionDrift,
        ThermometerDrift,
        OccupiedZero,
        ContainerFull,
        ContainerForecast,
        EmptiedLevel,
    )
}
KINDS: tuple[str, ...] = tuple(DEFINITIONS)


def parse_definition(data: Any, field_name: str = "definition") -> Definition:
    """A typed definition from JSON-like data; every problem is named, field by field."""
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{field_name}: an object with a 'kind'",
            [FieldProblem(field_name, "an object with a 'kind'")],
        )
    if data.get("kind") not in KINDS:
        reason = f"unknown kind; one of {', '.join(KINDS)}"
        raise InvalidInput(
            f"{field_name}.kind: {reason}", [FieldProblem(f"{field_name}.kind", reason)]
        )
    try:
        definition: Definition = _adapter.validate_python(data)
    except ValidationError as error:
        problems = [
            FieldProblem(
                ".".join([field_name, *(str(p) for p in item["loc"][1:])]),
                str(item["msg"]).removeprefix("Value error, "),
            )
            for item in error.errors()
        ]
        message = "; ".join(f"{p.field}: {p.reason}" for p in problems)
        raise InvalidInput(message, problems) from error
    return definition


def as_json(definition: Definition) -> dict[str, Any]:
    return definition.model_dump(mode="json")
