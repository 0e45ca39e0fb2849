"""How many assets each size of territory has."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Size(enum.StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


@dataclass(frozen=True)
class Dimensions:
    lamps: int
    lamps_per_cabinet: int
    districts: int
    tanks: int
    containers: int
    street_spots: int
    spots_per_zone: int
    car_parks: int
    car_park_spaces: int
    buildings: int  # taken from the catalogue of public buildings, repeated if needed
    air_stations: int
    street_spacing_m: float  # distance between parallel streets of the town grid


DIMENSIONS: dict[Size, Dimensions] = {
    Size.SMALL: Dimensions(
        lamps=240,
        lamps_per_cabinet=48,
        districts=3,
        tanks=1,
        containers=36,
        street_spots=60,
        spots_per_zone=20,
        car_parks=1,
        car_park_spaces=80,
        buildings=6,
        air_stations=2,
        street_spacing_m=110.0,
    ),
    Size.MEDIUM: Dimensions(
        lamps=2000,
        lamps_per_cabinet=50,
        districts=12,
        tanks=1,
        containers=300,
        street_spots=500,
        spots_per_zone=40,
        car_parks=3,
        car_park_spaces=300,
        buildings=25,
        air_stations=6,
        street_spacing_m=110.0,
    ),
    Size.LARGE: Dimensions(
        lamps=32000,
        lamps_per_cabinet=50,
        districts=120,
        tanks=6,
        containers=6000,
        street_spots=12000,
        spots_per_zone=60,
        car_parks=30,
        car_park_spaces=6000,
        buildings=300,
        air_stations=30,
        street_spacing_m=70.0,
    ),
}
