"""Public lighting: lamps switched by their cabinet's astronomical clock and dimmed by profile.

A lamp is commanded on while the sun is more than one degree below the horizon; its
cabinet's profile sets the level (1 = full power) by local hour. An LED draws power
roughly in proportion to its level; a sodium lamp cannot go below 60 %. Smart nodes
stay powered by day (a few tenths of a watt) and report every 15 minutes.
"""

from __future__ import annotations

import numpy as np

from territoire.simulator import sun
from territoire.simulator.clock import Floats, Ints, local_hours
from territoire.simulator.context import DayContext, Frame
from territoire.simulator.faults import FaultKind
from territoire.simulator.territory import LATITUDE, LONGITUDE, PROFILES, Territory

SWITCH_ELEVATION = -1.0  # degrees; the astronomical clocks switch just after sunset
LINE_LOSSES = 1.03
CONTROLLER_KW = 0.015


def profile_level(profile: Ints, hours: Floats) -> Floats:
    """Level asked by each dimming profile at local hours (before the sun is considered)."""
    late = (hours >= 22.5) | (hours < 5.5)
    eco_low = (hours >= 22.0) | (hours < 6.0)
    off = (hours >= 23.0) | (hours < 5.0)
    full = np.ones_like(hours)
    levels = np.select(
        [profile == 0, profile == 1, profile == 2, profile == 3],
        [full, np.where(late, 0.5, 1.0), np.where(eco_low, 0.3, 0.7), np.where(off, 0.0, 1.0)],
        default=full,
    )
    return np.asarray(levels, dtype=np.float64)


def commanded_level(times: Ints, profile: Ints) -> Floats:
    """What the cabinet commands at each instant: 0 by day, the profile's level by night."""
    night = sun.elevation_on_minutes(times, LATITUDE, LONGITUDE) < SWITCH_ELEVATION
    return np.where(night, profile_level(profile, local_hours(times)), 0.0)


class Lighting:
    def __init__(self, territory: Territory) -> None:
        lamps = territory.lamps
        self.territory = territory
        self.nominal = np.array([lamp.extra["nominal_w"] for lamp in lamps])
        self.led = np.array([lamp.extra["led"] for lamp in lamps], dtype=bool)
        self.standby = np.array([lamp.extra["standby_w"] for lamp in lamps])
        self.cabinet = np.array([lamp.extra["cabinet"] for lamp in lamps], dtype=np.int64)
        codes = {name: code for code, name in enumerate(PROFILES)}
        cabinet_profiles = np.array(
            [codes[c.extra["profile"]] for c in territory.cabinets], dtype=np.int64
        )
        self.cabinet_profile = cabinet_profiles
        self.lamp_profile = cabinet_profiles[self.cabinet]
        self.first_lamp = np.array(
            [c.extra["lamps"][0] for c in territory.cabinets], dtype=np.int64
        )

    def true_power(self, ctx: DayContext, times: Ints, lamps: Ints) -> Floats:
        """Power (W) drawn by lamps[i] at times[i, k], faults included, without meter noise."""
        level = commanded_level(times, self.lamp_profile[lamps][:, None])
        nominal = self.nominal[lamps][:, None]
        lit = np.where(self.led[lamps][:, None], 0.1 + 0.9 * level, np.maximum(level, 0.6))
        power = np.where(level > 0, nominal * lit, self.standby[lamps][:, None])
        position = {int(lamp): row for row, lamp in enumerate(lamps)}
        for fault in ctx.of(FaultKind.LAMP_OUT, FaultKind.DAY_BURNER, FaultKind.LAMP_CYCLING):
            row = position.get(fault.index)
            if row is None:
                continue
            active = fault.active(times[row])
            on = level[row] > 0
            if fault.kind is FaultKind.LAMP_OUT:
                dark = active & on
                power[row, dark] = (
                    self.standby[fault.index] + fault.magnitude * self.nominal[fault.index]
                )
            elif fault.kind is FaultKind.DAY_BURNER:
                power[row, active & ~on] = fault.magnitude
            else:
                slots = (times[row] - ctx.start) // 900
                pattern = ctx.rng(f"cycling-{fault.id}").random(96) < fault.magnitude
                dark = active & on & pattern[np.clip(slots, 0, 95)]
                power[row, dark] = self.standby[fault.index]
        for fault in ctx.of(FaultKind.CABINET_FAILURE):
            for lamp in self.territory.cabinets[fault.index].extra["lamps"]:
                row = position.get(lamp)
                if row is not None:
                    power[row, fault.active(times[row])] = 0.0
        return power

    def simulate(self, ctx: DayContext) -> list[Frame]:
        streams = self.territory.streams
        lamp_stream, cabinet_stream = streams["streetlight"], streams["cabinet"]
        rng = ctx.rng("lighting")
        lamp_times = ctx.times(lamp_stream)
        all_lamps = np.arange(len(self.nominal), dtype=np.int64)
        power = self.true_power(ctx, lamp_times, all_lamps)
        measured = power * (1 + rng.normal(0, 0.01, power.shape))
        cabinet_times = ctx.times(cabinet_stream)
        # The cabinet meter sees its lamps at its own reporting instants.
        at_cabinet = self.true_power(ctx, cabinet_times[self.cabinet], all_lamps)
        total_kw = np.add.reduceat(at_cabinet, self.first_lamp, axis=0) / 1000 * LINE_LOSSES
        cabinet_kw = (total_kw + CONTROLLER_KW) * (1 + rng.normal(0, 0.005, total_kw.shape))
        level = commanded_level(cabinet_times, self.cabinet_profile[:, None])
        return [
            Frame(lamp_stream, lamp_times, {"powerConsumption": measured}),
            Frame(
                cabinet_stream,
                cabinet_times,
                {"activePower": cabinet_kw, "illuminanceLevel": level},
            ),
        ]
