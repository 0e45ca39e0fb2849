"""Bulk import from GeoJSON and CSV: all or nothing, with a report of rejected rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from territoire.cli import app as cli
from territoire.config import Settings
from territoire.errors import InvalidInput
from territoire.registry import importer
from territoire.registry.models import Entity
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role

from .conftest import World

BOUNDARY = {
    "type": "Polygon",
    "coordinates": [[[5, 47], [5.1, 47], [5.1, 47.1], [5, 47.1], [5, 47]]],
}


def feature(
    identifier: str | None, lon: float, lat: float, **properties: object
) -> dict[str, object]:
    return {
        "type": "Feature",
        "id": identifier,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def write_geojson(path: Path, features: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def entity_count(world: World) -> int:
    with world.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Entity)) or 0)


def test_geojson_import_places_entities_in_communes(world: World, tmp_path: Path) -> None:
    tenant = world.tenant("ville-a")
    with world.database.session() as session:
        tenancy.create_commune(session, tenant.id, insee_code="21001", name="A", boundary=BOUNDARY)
    path = write_geojson(
        tmp_path / "lights.geojson",
        [
            feature(
                "urn:ngsi-ld:Streetlight:1",
                5.05,
                47.05,
                name="L1",
                powerConsumption=50,
                refStreetlightControlCabinet="urn:ngsi-ld:StreetlightControlCabinet:c1",
            ),
            feature(None, 6.0, 48.0, type="WasteContainer", fillingLevel=0.4),
        ],
    )
    with world.database.session() as session:
        report = importer.import_entities(
            session, tenant.id, importer.read_drafts(path, "Streetlight")
        )
    assert report.ok and report.read == 2 and report.imported == 2
    api = world.api(tenant, Role.VIEWER)
    light = api.get("/api/v1/entities/urn:ngsi-ld:Streetlight:1").json()
    assert light["commune"] == "21001"
    assert light["properties"] == {"powerConsumption": 50}
    assert light["relationships"] == {
        "refStreetlightControlCabinet": "urn:ngsi-ld:StreetlightControlCabinet:c1"
    }
    containers = api.get("/api/v1/entities", params={"type": "WasteContainer"}).json()
    assert containers["total"] == 1 and containers["items"][0]["commune"] is None


def test_csv_import_with_semicolons_and_numbers(world: World, tmp_path: Path) -> None:
    tenant = world.tenant("ville-a")
    path = tmp_path / "bins.csv"
    path.write_text(
        "id;type;name;lon;lat;cargoVolume;wasteType\n"
        "urn:ngsi-ld:WasteContainer:b1;WasteContainer;Bac 1;5.01;47.01;660;glass\n"
        "urn:ngsi-ld:WasteContainer:b2;WasteContainer;Bac 2;5.02;47.02;1100;residual\n",
        encoding="utf-8",
    )
    with world.database.session() as session:
        report = importer.import_entities(session, tenant.id, importer.read_drafts(path, None))
    assert report.ok and report.imported == 2
    with world.database.session() as session:
        entity = session.scalar(select(Entity).where(Entity.urn == "urn:ngsi-ld:WasteContainer:b2"))
        assert entity is not None
        assert entity.properties == {"cargoVolume": 1100, "wasteType": "residual"}
        assert entity.location == {"type": "Point", "coordinates": [5.02, 47.02]}


def test_one_bad_row_imports_nothing_and_reports_every_rejection(
    world: World, tmp_path: Path
) -> None:
    tenant = world.tenant("ville-a")
    with world.database.session() as session:
        importer.import_entities(
            session,
            tenant.id,
            importer.read_drafts(
                write_geojson(
                    tmp_path / "first.geojson", [feature("urn:ngsi-ld:Streetlight:old", 5, 47)]
                ),
                "Streetlight",
            ),
        )
    path = write_geojson(
        tmp_path / "mixed.geojson",
        [
            feature("urn:ngsi-ld:Streetlight:ok1", 5.0, 47.0),
            feature("urn:ngsi-ld:Streetlight:bad-coords", 500.0, 47.0),
            feature("urn:ngsi-ld:Streetlight:ok2", 5.0, 47.0),
            feature("urn:ngsi-ld:Streetlight:ok1", 5.0, 47.0),
            feature("urn:ngsi-ld:Streetlight:old", 5.0, 47.0),
            feature(None, 5.0, 47.0, type="Lampadaire"),
        ],
    )
    with world.database.session() as session:
        report = importer.import_entities(
            session, tenant.id, importer.read_drafts(path, "Streetlight")
        )
    assert report.imported == 0
    assert [r.row for r in report.rejected] == [2, 4, 5, 6]
    reasons = {r.row: r.reason for r in report.rejected}
    assert "WGS 84" in reasons[2]
    assert "duplicate" in reasons[4]
    assert "exists" in reasons[5]
    assert "unknown entity type" in reasons[6]
    assert entity_count(world) == 1

    with world.database.session() as session:
        partial = importer.import_entities(
            session, tenant.id, importer.read_drafts(path, "Streetlight"), allow_partial=True
        )
    assert partial.imported == 2
    assert entity_count(world) == 3


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    not_json = tmp_path / "x.geojson"
    not_json.write_text("{nope")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        list(importer.read_drafts(not_json, None))
    wrong_shape = tmp_path / "y.json"
    wrong_shape.write_text('{"type": "Feature"}')
    with pytest.raises(InvalidInput, match="FeatureCollection"):
        list(importer.read_drafts(wrong_shape, None))
    other = tmp_path / "z.xlsx"
    other.write_bytes(b"PK")
    with pytest.raises(InvalidInput, match="geojson"):
        list(importer.read_drafts(other, None))


def test_cli_import_reports_rejections_and_exits_1(
    world: World, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.tenant("ville-a")
    monkeypatch.setenv("TERRITOIRE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TERRITOIRE_DATA_DIR", str(settings.data_dir))
    path = write_geojson(
        tmp_path / "lights.geojson",
        [
            feature("urn:ngsi-ld:Streetlight:1", 5.0, 47.0),
            feature("urn:ngsi-ld:Streetlight:2", 5.0, 95.0),
        ],
    )
    report = tmp_path / "rejects.csv"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "import",
            "entities",
            str(path),
            "--tenant",
            "ville-a",
            "--type",
            "Streetlight",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "nothing was imported" in result.output
    assert "urn:ngsi-ld:Streetlight:2" in report.read_text()
    assert entity_count(world) == 0
    ok = runner.invoke(
        cli,
        [
            "import",
            "entities",
            str(path),
            "--tenant",
            "ville-a",
            "--type",
            "Streetlight",
            "--allow-partial",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "imported 1" in ok.output
    assert entity_count(world) == 1
