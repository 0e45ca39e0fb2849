"""The synthetic territory: towns, streets, assets and the devices that measure them.

Everything is drawn from one generator with a fixed seed, in a fixed order, so a size
always yields the same town; the run's seed only drives what happens in it. Positions
are computed in metres around each town centre and converted to WGS 84 lon/lat.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from territoire.simulator.clock import Ints
from territoire.simulator.sizes import DIMENSIONS, Dimensions, Size

Point = tuple[float, float]
METRES_PER_DEGREE_LAT = 111_200.0


@dataclass(frozen=True)
class Town:
    code: str
    name: str
    population: int
    centre: Point
    max_radius_m: float  # keeps the town inside its commune boundary
    village: bool
    ring: tuple[Point, ...]


# Fictional communes on a fictional plateau; INSEE-shaped codes that are not real ones.
TOWNS: tuple[Town, ...] = (
    Town(
        "39901",
        "Clairval",
        9200,
        (5.510, 47.050),
        2400.0,
        False,
        (
            (5.470, 47.000),
            (5.552, 47.004),
            (5.548, 47.052),
            (5.556, 47.100),
            (5.474, 47.097),
            (5.466, 47.050),
        ),
    ),
    Town(
        "39902",
        "Montfleury",
        2100,
        (5.436, 47.046),
        1900.0,
        True,
        ((5.400, 47.002), (5.470, 47.000), (5.466, 47.050), (5.474, 47.097), (5.404, 47.094)),
    ),
    Town(
        "39903",
        "Les Essarts-sur-Lanterne",
        1400,
        (5.585, 47.055),
        1900.0,
        True,
        ((5.552, 47.004), (5.620, 47.006), (5.618, 47.098), (5.556, 47.100), (5.548, 47.052)),
    ),
)
LATITUDE = 47.05
# The town of a size never changes: runs with other seeds describe the same assets, so a
# tenant holds one territory whatever the seed of the days simulated in it.
LAYOUT_SEED = 20261122
LONGITUDE = 5.51

STREET_STEMS = (
    "de la République", "Victor Hugo", "Jean Jaurès", "Pasteur", "des Écoles", "du Moulin",
    "de la Gare", "des Tilleuls", "du Stade", "de l'Église", "des Vignes", "du Lavoir",
    "de la Fontaine", "des Acacias", "Gambetta", "du Château", "des Prés", "de la Lanterne",
    "du Marché", "des Jardins", "Lamartine", "Voltaire", "Émile Zola", "Jules Ferry",
    "Marie Curie", "Jean Moulin", "des Peupliers", "des Cerisiers", "du Bief", "des Roches",
    "de la Forge", "des Chênes", "du Four", "de la Croix", "des Lilas", "du Verger",
    "des Sources", "de Bellevue", "des Coquelicots", "de la Poste", "du Pressoir",
    "des Artisans", "de la Libération", "du 8 Mai 1945", "des Charmes", "de la Tuilerie",
    "du Parc", "des Noyers", "de la Scierie", "des Hirondelles", "du Plateau", "des Saules",
    "de la Mairie", "du Canal", "des Bleuets", "George Sand", "Louise Michel", "des Mésanges",
    "du Clos", "de la Vierge",
)  # fmt: skip
STREET_KINDS_LONG = ("Rue", "Avenue", "Rue", "Boulevard", "Rue")
STREET_KINDS_SHORT = ("Rue", "Chemin", "Allée", "Impasse", "Sentier")

# Lighting control: how the cabinets dim their lamps through the night.
PROFILES = ("full", "midnight_dim", "eco", "part_night")
TOWN_PROFILE_WEIGHTS = (0.25, 0.45, 0.20, 0.10)
VILLAGE_PROFILE_WEIGHTS = (0.0, 0.15, 0.15, 0.70)
WASTE_KINDS = ("residual", "packaging", "glass")
STORED_WASTE = {
    "residual": ["other"],
    "packaging": ["plastic", "metal", "paper"],
    "glass": ["glass"],
}


@dataclass(frozen=True)
class Usage:
    """What a public building is used for, and its physical orders of magnitude."""

    key: str
    category: str  # Smart Data Model Building category (OpenStreetMap building values)
    area: tuple[float, float]  # floor area, m²
    opening_hours: str  # schema.org openingHours, for people; the model uses `schedule`
    base_w_m2: float  # electricity drawn when closed (fridges, servers, ventilation)
    use_w_m2: float  # extra electricity at full occupancy (lighting, equipment)
    people_per_100m2: float
    water_l_person_h: float
    comfort_c: float


USAGES: dict[str, Usage] = {
    u.key: u
    for u in (
        Usage(
            "townHall",
            "civic",
            (600, 1400),
            "Mo-Fr 08:30-17:30; Sa 09:00-12:00",
            2.5,
            9,
            3,
            2.0,
            20,
        ),
        Usage("school", "school", (900, 2200), "Mo,Tu,Th,Fr 08:20-16:40", 1.5, 8, 12, 1.2, 19),
        Usage(
            "kindergarten",
            "kindergarten",
            (400, 900),
            "Mo,Tu,Th,Fr 08:20-16:40",
            1.5,
            8,
            10,
            2.0,
            20,
        ),
        Usage(
            "gym", "civic", (1000, 2500), "Mo-Fr 08:30-22:00; Sa 09:00-18:00", 1.2, 10, 3, 5.0, 16
        ),
        Usage("library", "public", (400, 1200), "Tu-Sa 10:00-18:00", 2.0, 10, 4, 0.8, 20),
        Usage("nursery", "kindergarten", (300, 700), "Mo-Fr 07:30-18:30", 2.0, 9, 8, 3.0, 21),
        Usage("hall", "civic", (500, 1200), "Fr 18:00-23:30; Sa 14:00-23:59", 1.0, 12, 20, 1.0, 19),
        Usage("depot", "warehouse", (800, 2000), "Mo-Fr 07:00-16:00", 3.0, 6, 2, 3.0, 16),
        Usage("pool", "civic", (1500, 3000), "Mo-Su 10:00-20:00", 12.0, 8, 4, 25.0, 27),
        Usage("culture", "public", (300, 900), "Mo-Sa 14:00-21:00", 1.5, 9, 6, 1.0, 19),
        Usage("office", "office", (200, 600), "Mo-Fr 08:00-18:00", 2.5, 9, 5, 1.5, 20),
    )
}

BUILDING_CATALOGUE: tuple[tuple[str, str, str], ...] = (
    ("39901", "townHall", "Hôtel de ville"),
    ("39901", "school", "École élémentaire Pasteur"),
    ("39901", "gym", "Gymnase municipal"),
    ("39901", "library", "Médiathèque"),
    ("39902", "townHall", "Mairie de Montfleury"),
    ("39903", "school", "École des Essarts"),
    ("39901", "school", "École élémentaire Jules Ferry"),
    ("39901", "kindergarten", "École maternelle des Tilleuls"),
    ("39901", "kindergarten", "École maternelle du Centre"),
    ("39901", "school", "Groupe scolaire des Prés"),
    ("39901", "gym", "Salle omnisports"),
    ("39901", "nursery", "Crèche Les Lucioles"),
    ("39901", "hall", "Salle des fêtes"),
    ("39901", "depot", "Centre technique municipal"),
    ("39901", "pool", "Piscine intercommunale"),
    ("39901", "culture", "Maison des associations"),
    ("39901", "culture", "École de musique"),
    ("39901", "office", "Police municipale"),
    ("39901", "office", "Centre communal d'action sociale"),
    ("39902", "school", "École de Montfleury"),
    ("39902", "hall", "Salle des fêtes de Montfleury"),
    ("39902", "gym", "Gymnase de Montfleury"),
    ("39903", "townHall", "Mairie des Essarts"),
    ("39903", "hall", "Salle polyvalente des Essarts"),
    ("39903", "library", "Bibliothèque des Essarts"),
)


@dataclass(frozen=True)
class Attribute:
    name: str
    unit: str | None  # UN/CEFACT common code, as NGSI-LD unitCode
    decimals: int


@dataclass
class Stream:
    """A class of devices that report the same attributes at the same cadence.

    Device i measures entity i; `phases` shifts each device's reports inside the cadence
    so that two thousand lamps do not all speak on the same second.
    """

    key: str
    entity_type: str
    payload_format: str  # json | senml | chirpstack | tts
    cadence: int  # seconds, divides a day
    attributes: tuple[Attribute, ...]
    entities: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    phases: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def size(self) -> int:
        return len(self.entities)

    def attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)


@dataclass
class Street:
    key: str
    name: str
    town: str
    points: list[Point]


@dataclass
class Asset:
    """Anything on the map; `extra` holds the domain parameters of the model."""

    urn: str
    name: str
    town: str
    lon: float
    lat: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Round:
    """A collection round: a truck empties its containers in order on given weekdays."""

    key: str
    waste: str
    town: str
    weekdays: tuple[int, ...]
    start_hour: float  # local time
    minutes_per_stop: float
    containers: list[int]


@dataclass
class Territory:
    seed: int
    size: Size
    dims: Dimensions
    streets: list[Street] = field(default_factory=list)
    lamps: list[Asset] = field(default_factory=list)
    cabinets: list[Asset] = field(default_factory=list)
    districts: list[Asset] = field(default_factory=list)
    tanks: list[Asset] = field(default_factory=list)
    containers: list[Asset] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    zones: list[Asset] = field(default_factory=list)
    spots: list[Asset] = field(default_factory=list)
    car_parks: list[Asset] = field(default_factory=list)
    buildings: list[Asset] = field(default_factory=list)
    air_stations: list[Asset] = field(default_factory=list)
    weather_stations: list[Asset] = field(default_factory=list)
    streams: dict[str, Stream] = field(default_factory=dict)

    @property
    def series_count(self) -> int:
        return sum(s.size * len(s.attributes) for s in self.streams.values())

    @property
    def device_count(self) -> int:
        return sum(s.size for s in self.streams.values())


def stable_code(text: str) -> int:
    """A process-independent integer for a name (Python's hash() is salted per run)."""
    return zlib.crc32(text.encode())


def rng_for(seed: int, size: Size, *parts: str | int) -> np.random.Generator:
    words = [seed, stable_code(size.value)]
    words += [p if isinstance(p, int) else stable_code(p) for p in parts]
    return np.random.default_rng(np.random.SeedSequence(words))


# --- geometry --------------------------------------------------------------------------


def to_lonlat(town: Town, east: float, north: float) -> Point:
    lon, lat = town.centre
    per_degree_lon = METRES_PER_DEGREE_LAT * math.cos(math.radians(lat))
    return (round(lon + east / per_degree_lon, 6), round(lat + north / METRES_PER_DEGREE_LAT, 6))


def _rotate(x: float, y: float, angle: float) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return x * c - y * s, x * s + y * c


def _split(total: int, shares: list[float], minimum: int = 0) -> list[int]:
    """Largest-remainder split of `total` by shares, each part at least `minimum`."""
    raw = [total * share for share in shares]
    parts = [max(minimum, int(value)) for value in raw]
    order = sorted(range(len(shares)), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    index = 0
    while sum(parts) < total:
        parts[order[index % len(order)]] += 1
        index += 1
    while sum(parts) > total:
        largest = max(range(len(parts)), key=lambda i: parts[i])
        parts[largest] -= 1
    return parts


def town_shares() -> list[float]:
    total = sum(t.population for t in TOWNS)
    return [t.population / total for t in TOWNS]


@dataclass
class _Layout:
    town: Town
    radius: float
    angle: float
    streets: list[list[tuple[float, float]]]  # polylines in local metres
    names: list[str]


def _street_lines(
    rng: np.random.Generator, radius: float, spacing: float
) -> list[list[tuple[float, float]]]:
    lines: list[list[tuple[float, float]]] = []
    for orientation in (0.0, math.pi / 2):
        offset = -radius + spacing / 2
        while offset < radius:
            half = math.sqrt(max(radius * radius - offset * offset, 0.0)) * rng.uniform(0.7, 1.0)
            if half >= spacing and (abs(offset) < radius * 0.4 or rng.random() > 0.12):
                start, end = -half * rng.uniform(0.8, 1.0), half * rng.uniform(0.8, 1.0)
                xs = np.linspace(start, end, 5)
                wobble = rng.normal(0.0, 6.0, 5)
                lines.append(
                    [
                        _rotate(float(x), offset + float(w), orientation)
                        for x, w in zip(xs, wobble, strict=True)
                    ]
                )
            offset += spacing
    return lines


def _street_names(rng: np.random.Generator, lines: list[list[tuple[float, float]]]) -> list[str]:
    stems = [str(s) for s in rng.permutation(np.array(STREET_STEMS, dtype=object))]
    names: list[str] = []
    used: set[str] = set()
    for index, line in enumerate(lines):
        long = _length(line) > 900
        kinds = STREET_KINDS_LONG if long else STREET_KINDS_SHORT
        round_number = index // len(stems)
        name = f"{kinds[(index + round_number) % len(kinds)]} {stems[index % len(stems)]}"
        while name in used:
            round_number += 1
            name = f"{kinds[(index + round_number) % len(kinds)]} {stems[index % len(stems)]}"
            if round_number > len(kinds):
                name = f"{name} ({round_number})"
        used.add(name)
        names.append(name)
    return names


def _length(line: list[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(line))


def _along(line: list[tuple[float, float]], distance: float) -> tuple[float, float, float]:
    """Point at `distance` metres along a polyline, and the direction there (radians)."""
    for a, b in itertools.pairwise(line):
        segment = math.dist(a, b)
        if distance <= segment or b == line[-1]:
            t = min(distance / segment, 1.0) if segment else 0.0
            heading = math.atan2(b[1] - a[1], b[0] - a[0])
            return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, heading
        distance -= segment
    return line[-1][0], line[-1][1], 0.0


def _layout(rng: np.random.Generator, town: Town, lamps: int, spacing: float) -> _Layout:
    wanted_length = lamps * 30.0
    radius = min(math.sqrt(wanted_length * spacing / (2 * math.pi)), town.max_radius_m)
    radius = max(radius, 350.0)
    lines = _street_lines(rng, radius, spacing)
    angle = float(rng.uniform(-0.45, 0.45))
    rotated = [[_rotate(x, y, angle) for x, y in line] for line in lines]
    return _Layout(town, radius, angle, rotated, _street_names(rng, rotated))


def _random_street_point(
    rng: np.random.Generator, layout: _Layout, within: float, side: float = 6.0
) -> tuple[float, float]:
    """A point beside a street, at most `within` × radius from the centre (if one exists)."""
    for _ in range(50):
        line = layout.streets[int(rng.integers(len(layout.streets)))]
        x, y, heading = _along(line, float(rng.uniform(0, _length(line))))
        if math.hypot(x, y) <= within * layout.radius:
            offset = side if rng.random() < 0.5 else -side
            return x - math.sin(heading) * offset, y + math.cos(heading) * offset
    angle, distance = rng.uniform(0, 2 * math.pi), within * layout.radius * math.sqrt(rng.random())
    return distance * math.cos(angle), distance * math.sin(angle)


# --- builders --------------------------------------------------------------------------


def build_territory(seed: int, size: Size) -> Territory:
    """The town of a size (the same for every seed) and the seed its life will follow."""
    dims = DIMENSIONS[size]
    rng = rng_for(LAYOUT_SEED, size, "territory")
    territory = Territory(seed=seed, size=size, dims=dims)
    shares = town_shares()
    lamp_counts = _split(dims.lamps, shares, minimum=1)
    layouts = [
        _layout(rng, town, count, dims.street_spacing_m)
        for town, count in zip(TOWNS, lamp_counts, strict=True)
    ]
    for layout, count in zip(layouts, lamp_counts, strict=True):
        _add_streets(territory, layout)
        _add_lighting(rng, territory, layout, count)
    _add_main_road(territory)
    _add_water(rng, territory, layouts, shares)
    _add_waste(rng, territory, layouts, shares)
    _add_parking(rng, territory, layouts, shares)
    _add_buildings(rng, territory, layouts)
    _add_environment(rng, territory, layouts)
    _add_streams(rng, territory)
    return territory


def _add_streets(territory: Territory, layout: _Layout) -> None:
    code = layout.town.code
    for index, (line, name) in enumerate(zip(layout.streets, layout.names, strict=True)):
        points = [to_lonlat(layout.town, x, y) for x, y in line]
        territory.streets.append(Street(f"{code}-voie-{index + 1:03d}", name, code, points))


def _add_main_road(territory: Territory) -> None:
    west, centre, east = (t.centre for t in (TOWNS[1], TOWNS[0], TOWNS[2]))
    points = [
        (west[0] - 0.012, west[1] - 0.004),
        west,
        ((west[0] + centre[0]) / 2, centre[1] + 0.003),
        centre,
        ((centre[0] + east[0]) / 2, centre[1] - 0.002),
        east,
        (east[0] + 0.014, east[1] + 0.006),
    ]
    territory.streets.append(
        Street(
            "rd-42",
            "Route départementale 42",
            TOWNS[0].code,
            [(round(a, 6), round(b, 6)) for a, b in points],
        )
    )


def _add_lighting(
    rng: np.random.Generator, territory: Territory, layout: _Layout, count: int
) -> None:
    town = layout.town
    total = sum(_length(line) for line in layout.streets)
    spacing = total / count
    positions: list[tuple[float, float, str]] = []
    carry = spacing / 2
    for line, street in zip(layout.streets, territory.streets[-len(layout.streets) :], strict=True):
        length = _length(line)
        distance = carry
        side = 5.0
        while distance <= length and len(positions) < count:
            x, y, heading = _along(line, distance)
            positions.append(
                (x - math.sin(heading) * side, y + math.cos(heading) * side, street.key)
            )
            side = -side
            distance += spacing
        carry = distance - length
    while len(positions) < count:  # rounding left a lamp or two: put them on the last street
        x, y, _ = _along(layout.streets[-1], float(rng.uniform(0, _length(layout.streets[-1]))))
        positions.append((x, y, territory.streets[-1].key))
    weights = VILLAGE_PROFILE_WEIGHTS if town.village else TOWN_PROFILE_WEIGHTS
    per_cabinet = territory.dims.lamps_per_cabinet
    cabinets = max(1, round(count / per_cabinet))
    bounds = np.linspace(0, count, cabinets + 1).round().astype(int)
    for c in range(cabinets):
        first = len(territory.lamps)
        cabinet_index = len(territory.cabinets)
        cabinet_id = f"{town.code}-A{c + 1:03d}"
        px, py, _ = positions[int(bounds[c])]
        lon, lat = to_lonlat(town, px + 8.0, py + 8.0)
        profile = PROFILES[int(rng.choice(len(PROFILES), p=weights))]
        lamp_indices = list(range(first, first + int(bounds[c + 1] - bounds[c])))
        territory.cabinets.append(
            Asset(
                f"urn:ngsi-ld:StreetlightControlCabinet:{cabinet_id}",
                f"Armoire {c + 1} — {town.name}",
                town.code,
                lon,
                lat,
                {"profile": profile, "lamps": lamp_indices},
            )
        )
        for number in range(int(bounds[c]), int(bounds[c + 1])):
            _add_lamp(rng, territory, town, positions[number], number + 1, cabinet_index)


def _add_lamp(
    rng: np.random.Generator,
    territory: Territory,
    town: Town,
    position: tuple[float, float, str],
    number: int,
    cabinet: int,
) -> None:
    led = bool(rng.random() < 0.7)
    nominal = float(rng.choice([20, 30, 40, 60])) if led else float(rng.choice([70, 100, 150]))
    lon, lat = to_lonlat(town, position[0], position[1])
    territory.lamps.append(
        Asset(
            f"urn:ngsi-ld:Streetlight:{town.code}-{number:05d}",
            f"Point lumineux {town.code}-{number:05d}",
            town.code,
            lon,
            lat,
            {
                "cabinet": cabinet,
                "street": position[2],
                "led": led,
                "nominal_w": nominal,
                "standby_w": round(float(rng.uniform(0.3, 0.6)), 2),
            },
        )
    )


def _add_water(
    rng: np.random.Generator, territory: Territory, layouts: list[_Layout], shares: list[float]
) -> None:
    dims = territory.dims
    counts = _split(dims.districts, shares, minimum=1)
    households_scale = dims.lamps / 2000
    for layout, count in zip(layouts, counts, strict=True):
        town = layout.town
        households = town.population / 2.2 * households_scale
        for k in range(count):
            angle = layout.angle + 2 * math.pi * (k + 0.5) / count
            lon, lat = to_lonlat(
                town, 0.35 * layout.radius * math.cos(angle), 0.35 * layout.radius * math.sin(angle)
            )
            homes = households / count * float(rng.uniform(0.7, 1.3))
            mean_flow = homes * 0.33 / 24 * float(rng.uniform(0.9, 1.15))
            index = len(territory.districts)
            territory.districts.append(
                Asset(
                    f"urn:ngsi-ld:WaterConsumptionObserved:{town.code}-S{k + 1:02d}",
                    f"Secteur {k + 1} — {town.name}",
                    town.code,
                    lon,
                    lat,
                    {
                        "households": round(homes),
                        "mean_flow": round(mean_flow, 3),
                        "leakage": round(mean_flow * float(rng.uniform(0.08, 0.18)), 3),
                        "tank": index % dims.tanks,
                    },
                )
            )
    for t in range(dims.tanks):
        served = [d for d in territory.districts if d.extra["tank"] == t]
        demand = sum(d.extra["mean_flow"] + d.extra["leakage"] for d in served)
        area = demand * 14 / 5.0
        lon, lat = to_lonlat(TOWNS[0], -1500.0 + 300 * t, 1800.0 - 150 * t)
        territory.tanks.append(
            Asset(
                f"urn:ngsi-ld:Tank:reservoir-{t + 1}",
                f"Réservoir des Hauts {t + 1}" if dims.tanks > 1 else "Réservoir des Hauts",
                TOWNS[0].code,
                lon,
                lat,
                {
                    "diameter": round(2 * math.sqrt(area / math.pi), 1),
                    "area": area,
                    "low": 2.2,
                    "high": 5.2,
                    "max": 6.0,
                    "pump": round(demand * 2.2, 1),
                    "districts": [territory.districts.index(d) for d in served],
                },
            )
        )


def _add_waste(
    rng: np.random.Generator, territory: Territory, layouts: list[_Layout], shares: list[float]
) -> None:
    counts = _split(territory.dims.containers, shares, minimum=3)
    for layout, count in zip(layouts, counts, strict=True):
        town = layout.town
        placed: dict[str, list[tuple[float, int]]] = {kind: [] for kind in WASTE_KINDS}
        for n in range(count):
            waste = (
                WASTE_KINDS[int(rng.choice(3, p=[0.5, 0.35, 0.15]))] if n >= 3 else WASTE_KINDS[n]
            )
            x, y = _random_street_point(rng, layout, 0.95, side=3.0)
            capacity = 3000.0 if waste == "glass" else float(rng.choice([660, 770, 1100]))
            index = len(territory.containers)
            lon, lat = to_lonlat(town, x, y)
            territory.containers.append(
                Asset(
                    f"urn:ngsi-ld:WasteContainer:{town.code}-C{n + 1:04d}",
                    f"Conteneur {n + 1} — {town.name}",
                    town.code,
                    lon,
                    lat,
                    {"waste": waste, "capacity": capacity, "round": -1},
                )
            )
            placed[waste].append((math.atan2(y, x), index))
        for waste, items in placed.items():
            _add_rounds(rng, territory, town, waste, [i for _, i in sorted(items)])


ROUND_DAYS = {"residual": ((0, 3), (1, 4)), "packaging": ((2,),), "glass": ((4,),)}
ROUND_START = {"residual": 5.5, "packaging": 6.0, "glass": 7.0}


def _add_rounds(
    rng: np.random.Generator, territory: Territory, town: Town, waste: str, ordered: list[int]
) -> None:
    chunks = max(1, math.ceil(len(ordered) / 80))
    bounds = np.linspace(0, len(ordered), chunks + 1).round().astype(int)
    for r in range(chunks):
        members = ordered[int(bounds[r]) : int(bounds[r + 1])]
        if not members:
            continue
        options = ROUND_DAYS[waste]
        days = options[(len(territory.rounds) + r) % len(options)]
        gap = _longest_gap(days)
        for position, index in enumerate(members):
            container = territory.containers[index]
            container.extra["round"] = len(territory.rounds)
            container.extra["stop"] = position
            # Fill so that a typical container is 55–90 % full when the truck comes.
            container.extra["fill_per_day"] = round(float(rng.uniform(0.55, 0.9)) / gap, 4)
        territory.rounds.append(
            Round(
                f"{town.code}-{waste}-{r + 1}",
                waste,
                town.code,
                days,
                ROUND_START[waste],
                2.5,
                members,
            )
        )


def _longest_gap(weekdays: tuple[int, ...]) -> int:
    ordered = sorted(weekdays)
    gaps = [(b - a) % 7 or 7 for a, b in zip(ordered, ordered[1:] + ordered[:1], strict=True)]
    return max(gaps)


def _add_parking(
    rng: np.random.Generator, territory: Territory, layouts: list[_Layout], shares: list[float]
) -> None:
    dims = territory.dims
    counts = _split(dims.street_spots, [0.8, 0.12, 0.08], minimum=dims.spots_per_zone // 2)
    for layout, count in zip(layouts, counts, strict=True):
        town = layout.town
        zones = max(1, round(count / dims.spots_per_zone))
        bounds = np.linspace(0, count, zones + 1).round().astype(int)
        for z in range(zones):
            commercial = z < max(1, math.ceil(zones * 0.6))
            reach = 0.25 if commercial else 0.6
            zx, zy = _random_street_point(rng, layout, reach)
            lon, lat = to_lonlat(town, zx, zy)
            zone_index = len(territory.zones)
            members: list[int] = []
            for n in range(int(bounds[z]), int(bounds[z + 1])):
                sx, sy = zx + float(rng.normal(0, 45)), zy + float(rng.normal(0, 45))
                slon, slat = to_lonlat(town, sx, sy)
                members.append(len(territory.spots))
                territory.spots.append(
                    Asset(
                        f"urn:ngsi-ld:ParkingSpot:{town.code}-P{n + 1:05d}",
                        f"Place {n + 1} — {town.name}",
                        town.code,
                        slon,
                        slat,
                        {"zone": zone_index, "commercial": commercial},
                    )
                )
            territory.zones.append(
                Asset(
                    f"urn:ngsi-ld:OnStreetParking:{town.code}-Z{z + 1:03d}",
                    f"Stationnement {'centre' if commercial else 'quartier'} {z + 1} — {town.name}",
                    town.code,
                    lon,
                    lat,
                    {"commercial": commercial, "spots": members},
                )
            )
    kinds = ("commercial", "station", "centre")
    capacities = _split(dims.car_park_spaces, [1.0] * dims.car_parks, minimum=10)
    for n, capacity in enumerate(capacities):
        layout = layouts[0] if n % 3 != 2 else layouts[n % len(layouts)]
        x, y = _random_street_point(rng, layout, 0.45)
        lon, lat = to_lonlat(layout.town, x, y)
        kind = kinds[n % len(kinds)]
        territory.car_parks.append(
            Asset(
                f"urn:ngsi-ld:OffStreetParking:{layout.town.code}-PK{n + 1:02d}",
                f"Parking {('du supermarché', 'de la gare', 'du centre')[n % 3]} {n // 3 + 1}",
                layout.town.code,
                lon,
                lat,
                {"capacity": capacity, "kind": kind},
            )
        )


def _add_buildings(rng: np.random.Generator, territory: Territory, layouts: list[_Layout]) -> None:
    by_code = {layout.town.code: layout for layout in layouts}
    for n in range(territory.dims.buildings):
        code, usage_key, label = BUILDING_CATALOGUE[n % len(BUILDING_CATALOGUE)]
        repeat = n // len(BUILDING_CATALOGUE)
        layout = by_code[code]
        usage = USAGES[usage_key]
        x, y = _random_street_point(rng, layout, 0.55, side=15.0)
        lon, lat = to_lonlat(layout.town, x, y)
        area = float(rng.uniform(*usage.area))
        territory.buildings.append(
            Asset(
                f"urn:ngsi-ld:Building:{code}-B{n + 1:03d}",
                label if repeat == 0 else f"{label} ({repeat + 1})",
                code,
                lon,
                lat,
                {
                    "usage": usage_key,
                    "area": round(area),
                    # Thermal time constant (h) and heating power (kW) of the building.
                    "tau_h": round(float(rng.uniform(8, 20)), 1),
                    "heat_kw": round(area * float(rng.uniform(0.07, 0.1)), 1),
                },
            )
        )


def _add_environment(
    rng: np.random.Generator, territory: Territory, layouts: list[_Layout]
) -> None:
    for n in range(territory.dims.air_stations):
        layout = layouts[0] if n < 4 or n % 3 == 0 else layouts[n % 3]
        traffic = (1.0, 0.35, 0.6, 0.2)[n % 4] if layout is layouts[0] else 0.15
        reach = 0.1 if traffic > 0.5 else 0.6
        x, y = _random_street_point(rng, layout, reach)
        lon, lat = to_lonlat(layout.town, x, y)
        territory.air_stations.append(
            Asset(
                f"urn:ngsi-ld:AirQualityObserved:aq-{n + 1}",
                f"Station air {n + 1} — {layout.town.name}",
                layout.town.code,
                lon,
                lat,
                {"traffic": traffic, "pm_ratio": round(float(rng.uniform(0.55, 0.7)), 3)},
            )
        )
    lon, lat = to_lonlat(TOWNS[0], 300.0, 500.0)
    territory.weather_stations.append(
        Asset(
            "urn:ngsi-ld:WeatherObserved:clairval-meteo",
            "Station météo de Clairval",
            TOWNS[0].code,
            lon,
            lat,
        )
    )


# --- devices ---------------------------------------------------------------------------


def _local_id(urn: str) -> str:
    return urn.rsplit(":", 1)[1]


STREAM_SPECS: tuple[tuple[str, str, str, int, tuple[Attribute, ...], str, str], ...] = (
    # key, entity type, payload format, cadence, attributes, territory list, device prefix
    (
        "streetlight",
        "Streetlight",
        "senml",
        900,
        (Attribute("powerConsumption", "WTT", 1),),
        "lamps",
        "lum",
    ),
    (
        "cabinet",
        "StreetlightControlCabinet",
        "senml",
        900,
        (Attribute("activePower", "KWT", 3), Attribute("illuminanceLevel", "C62", 2)),
        "cabinets",
        "arm",
    ),
    (
        "district",
        "WaterConsumptionObserved",
        "senml",
        900,
        (Attribute("flow", "MQH", 2),),
        "districts",
        "deb",
    ),
    ("tank", "Tank", "senml", 900, (Attribute("level", "MTR", 2),), "tanks", "niv"),
    (
        "container",
        "WasteContainer",
        "tts",
        3600,
        (Attribute("fillingLevel", "C62", 2),),
        "containers",
        "rem",
    ),
    ("spot", "ParkingSpot", "chirpstack", 900, (Attribute("occupancy", "C62", 0),), "spots", "pk"),
    (
        "car_park",
        "OffStreetParking",
        "json",
        900,
        (Attribute("occupiedSpotNumber", "C62", 0),),
        "car_parks",
        "cpt",
    ),
    (
        "building_power",
        "Building",
        "json",
        900,
        (Attribute("activePower", "KWT", 2),),
        "buildings",
        "elec",
    ),
    (
        "building_gas",
        "Building",
        "chirpstack",
        900,
        (Attribute("gasConsumption", "KWH", 2),),
        "buildings",
        "gaz",
    ),
    (
        "building_water",
        "Building",
        "tts",
        900,
        (Attribute("waterConsumption", "LTR", 0),),
        "buildings",
        "eau",
    ),
    (
        "building_ambient",
        "Building",
        "json",
        900,
        (Attribute("temperature", "CEL", 1), Attribute("occupancy", "C62", 2)),
        "buildings",
        "amb",
    ),
    (
        "air",
        "AirQualityObserved",
        "senml",
        3600,
        (
            Attribute("no2", "GQ", 1),
            Attribute("pm10", "GQ", 1),
            Attribute("pm25", "GQ", 1),
            Attribute("o3", "GQ", 1),
        ),
        "air_stations",
        "air",
    ),
    (
        "weather",
        "WeatherObserved",
        "senml",
        900,
        (
            Attribute("temperature", "CEL", 1),
            Attribute("relativeHumidity", "C62", 2),
            Attribute("windSpeed", "MTS", 1),
            Attribute("atmosphericPressure", "A97", 1),
            Attribute("precipitation", "MMT", 1),
            Attribute("solarRadiation", None, 0),
        ),
        "weather_stations",
        "meteo",
    ),
)


# LoRaWAN devices are known by their DevEUI (16 hex digits); one made-up prefix per kind.
DEVEUI_PREFIXES = {
    "container": "a8404100",
    "spot": "70b3d5e0",
    "building_gas": "0018b210",
    "building_water": "24e12400",
}


def _add_streams(rng: np.random.Generator, territory: Territory) -> None:
    for key, entity_type, payload, cadence, attributes, source, prefix in STREAM_SPECS:
        assets: list[Asset] = getattr(territory, source)
        stream = Stream(key, entity_type, payload, cadence, attributes)
        stream.entities = [asset.urn for asset in assets]
        if payload in ("chirpstack", "tts"):
            oui = DEVEUI_PREFIXES[key]
            stream.devices = [f"{oui}{n + 1:08x}" for n in range(len(assets))]
        else:
            stream.devices = [f"{prefix}-{_local_id(asset.urn)}" for asset in assets]
        stream.phases = (rng.integers(0, cadence // 60, size=len(assets)) * 60).astype(np.int64)
        territory.streams[key] = stream
