"""Units: the UN/CEFACT common codes Territoire stores, and SenML's unit symbols.

Series carry UN/CEFACT codes (what NGSI-LD `unitCode` uses). SenML packs carry the SenML
registry's symbols (RFC 8428 section 12.1, RFC 8798), translated here. An unknown unit
is refused rather than guessed: a wrong unit silently breaks every rule downstream.
"""

from __future__ import annotations

UNCEFACT_CODES: dict[str, str] = {
    "WTT": "watt",
    "KWT": "kilowatt",
    "WHR": "watt hour",
    "KWH": "kilowatt hour",
    "MTQ": "cubic metre",
    "MQH": "cubic metre per hour",
    "MQS": "cubic metre per second",
    "LTR": "litre",
    "P1": "percent",
    "CEL": "degree Celsius",
    "KEL": "kelvin",
    "PAL": "pascal",
    "A97": "hectopascal",
    "LUX": "lux",
    "VLT": "volt",
    "AMP": "ampere",
    "HTZ": "hertz",
    "MTR": "metre",
    "MMT": "millimetre",
    "CMT": "centimetre",
    "KMT": "kilometre",
    "MTS": "metre per second",
    "KMH": "kilometre per hour",
    "2N": "decibel",
    "SEC": "second",
    "MIN": "minute",
    "HUR": "hour",
    "KGM": "kilogram",
    "59": "part per million",
    "GQ": "microgram per cubic metre",
    "C62": "one (dimensionless count or ratio)",
}

SENML_TO_UNCEFACT: dict[str, str] = {
    "W": "WTT",
    "kW": "KWT",
    "Wh": "WHR",
    "kWh": "KWH",
    "m3": "MTQ",
    "m3/s": "MQS",
    "l": "LTR",
    "%": "P1",
    "%RH": "P1",
    "%EL": "P1",
    "Cel": "CEL",
    "K": "KEL",
    "Pa": "PAL",
    "hPa": "A97",
    "lx": "LUX",
    "V": "VLT",
    "A": "AMP",
    "Hz": "HTZ",
    "m": "MTR",
    "mm": "MMT",
    "cm": "CMT",
    "km": "KMT",
    "m/s": "MTS",
    "km/h": "KMH",
    "dB": "2N",
    "s": "SEC",
    "min": "MIN",
    "h": "HUR",
    "kg": "KGM",
    "ppm": "59",
    "ug/m3": "GQ",
    "/": "C62",
    "count": "C62",
}


def is_known(code: str) -> bool:
    return code in UNCEFACT_CODES


def from_senml(symbol: str) -> str | None:
    """The UN/CEFACT code for a SenML symbol; a UN/CEFACT code given as is passes too."""
    if symbol in SENML_TO_UNCEFACT:
        return SENML_TO_UNCEFACT[symbol]
    return symbol if symbol in UNCEFACT_CODES else None
