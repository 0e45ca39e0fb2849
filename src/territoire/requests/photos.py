"""Photos sent with requests: checked, located from EXIF, then re-encoded without metadata.

Re-encoding (rather than deleting EXIF tags) is what guarantees that nothing of the
original file survives: GPS position, camera serial, thumbnails with the uncropped
picture. The position is read first, because it can place the request on the map.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError
from PIL.ExifTags import IFD

from territoire.errors import PayloadTooLarge, invalid

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_PIXELS = 40_000_000  # larger images are refused before decoding (decompression bombs)
MAX_SIDE = 2048
JPEG_QUALITY = 85
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4


@dataclass(frozen=True)
class ProcessedPhoto:
    data: bytes
    width: int
    height: int
    exif_lat: float | None
    exif_lon: float | None
    content_type: str = "image/jpeg"


def _degrees(value: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    return result if math.isfinite(result) else None


def read_gps(image: Image.Image) -> tuple[float | None, float | None]:
    """Latitude and longitude from the EXIF GPS block, when present and sane."""
    try:
        gps = image.getexif().get_ifd(IFD.GPSInfo)
    except (KeyError, ValueError, TypeError, OSError):
        return None, None
    lat, lon = _degrees(gps.get(GPS_LATITUDE)), _degrees(gps.get(GPS_LONGITUDE))
    if lat is None or lon is None:
        return None, None
    if str(gps.get(GPS_LATITUDE_REF, "N")).upper().startswith("S"):
        lat = -lat
    if str(gps.get(GPS_LONGITUDE_REF, "E")).upper().startswith("W"):
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None, None
    return round(lat, 7), round(lon, 7)


def _open_checked(raw: bytes, field: str) -> Image.Image:
    not_an_image = invalid(field, "not a JPEG, PNG or WebP image")
    try:
        probe = Image.open(io.BytesIO(raw))
        image_format = probe.format
        width, height = probe.size
        probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise not_an_image from error
    if image_format not in ACCEPTED_FORMATS:
        raise not_an_image
    if width * height > MAX_PIXELS:
        raise invalid(field, f"image larger than {MAX_PIXELS // 1_000_000} megapixels")
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise not_an_image from error
    return image


def process_photo(raw: bytes, *, max_bytes: int, field: str = "photo") -> ProcessedPhoto:
    """Check type and size, read the GPS position, then re-encode as a clean JPEG."""
    if not raw:
        raise invalid(field, "empty file")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(
            f"{field}: {len(raw)} bytes, more than the {max_bytes} bytes allowed per photo"
        )
    image = _open_checked(raw, field)
    lat, lon = read_gps(image)
    upright = ImageOps.exif_transpose(image)
    clean = upright.convert("RGB")
    clean.thumbnail((MAX_SIDE, MAX_SIDE))
    output = io.BytesIO()
    clean.save(output, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return ProcessedPhoto(output.getvalue(), clean.width, clean.height, lat, lon)


def store(uploads_dir: Path, relative: str, data: bytes) -> None:
    target = uploads_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".part")
    temporary.write_bytes(data)
    temporary.replace(target)


def remove(uploads_dir: Path, relative: str) -> None:
    (uploads_dir / relative).unlink(missing_ok=True)


def blur_region(
    uploads_dir: Path, relative: str, box: tuple[float, float, float, float] | None
) -> int:
    """Blur a region given as fractions (left, top, right, bottom) of the image, or all
    of it; the stored file is overwritten so the original pixels are gone. Returns the
    new size in bytes."""
    path = uploads_dir / relative
    with Image.open(path) as source:
        image = source.convert("RGB")
    left, top, right, bottom = box or (0.0, 0.0, 1.0, 1.0)
    if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
        raise invalid("box", "fractions 0 ≤ left < right ≤ 1 and 0 ≤ top < bottom ≤ 1")
    area = (
        int(left * image.width),
        int(top * image.height),
        max(int(right * image.width), int(left * image.width) + 1),
        max(int(bottom * image.height), int(top * image.height) + 1),
    )
    radius = max(8, max(image.size) // 25)
    region = image.crop(area).filter(ImageFilter.GaussianBlur(radius))
    image.paste(region, area)
    output = io.BytesIO()
    image.save(output, "JPEG", quality=JPEG_QUALITY)
    store(uploads_dir, relative, output.getvalue())
    return len(output.getvalue())
