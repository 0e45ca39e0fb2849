"""HTTP ingestion and queries: tokens, formats, gzip, bad input, tenant isolation."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from territoire.db import Database
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.telemetry.helpers import count_rows, entities, hour_ago


def _device(
    client: TestClient, urn: str, device_id: str = "0004A30B001C0530", **extra: object
) -> str:
    body = {"device_id": device_id, "entity": urn, "payload_format": "json", **extra}
    response = client.post("/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["device_id"] == device_id.lower() if len(device_id) == 16 else device_id
    return str(response.json()["ingest_token"])


def _batch(urn: str, count: int, start: datetime | None = None) -> list[dict[str, object]]:
    start = start or hour_ago()
    return [
        {
            "entity": urn,
            "attribute": "powerConsumption",
            "ts": (start + timedelta(minutes=5 * i)).isoformat(),
            "value": i,
            "unit": "WTT",
        }
        for i in range(count)
    ]


def test_device_token_ingests_fields_and_gzip(database: Database, world: World) -> None:
    tenant = world.tenant("clairval")
    (urn,) = entities(database, tenant.id, 1)
    operator = world.api(tenant, Role.OPERATOR)
    token = _device(operator, urn, mapping={"p": {"attribute": "powerConsumption", "unit": "WTT"}})
    client = TestClient(world.app)  # type: ignore[arg-type]
    client.headers["Authorization"] = f"Bearer {token}"
    response = client.post(
        "/api/v1/telemetry",
        content=orjson.dumps({"ts": hour_ago().isoformat(), "p": 40, "rssi": -90}),
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1 and response.json()["stored"] == 1
    zipped = gzip.compress(orjson.dumps(_batch(urn, 20, hour_ago(60))))
    response = client.post(
        "/api/v1/telemetry", content=zipped, headers={"Content-Encoding": "gzip"}
    )
    assert response.json() == {
        "accepted": 20,
        "rejected": 0,
        "stored": 20,
        "reasons": {},
        "problems": [],
    }
    assert count_rows(database) == 21


def test_api_token_senml_and_partial_batches(database: Database, world: World) -> None:
    tenant = world.tenant("senml")
    (urn,) = entities(database, tenant.id, 1)
    client = world.api(tenant, Role.DATA_OFFICER)
    base = hour_ago().timestamp()
    pack = [
        {"bn": f"{urn}/", "bt": base, "bu": "W", "n": "powerConsumption", "v": 10},
        {"n": "powerConsumption", "t": 300, "v": 12},
        {"n": "x", "u": "parsec", "v": 1},
    ]
    response = client.post(
        "/api/v1/telemetry",
        content=orjson.dumps(pack),
        headers={"Content-Type": "application/senml+json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"], body["reasons"]) == (2, 1, {"unknown_unit": 1})
    assert body["problems"][0]["reason"] == "unknown_unit"


def test_bad_input_is_a_4xx_with_reasons_and_changes_nothing(
    database: Database, world: World
) -> None:
    tenant = world.tenant("badinput")
    (urn,) = entities(database, tenant.id, 1)
    client = world.api(tenant, Role.OPERATOR)
    assert client.post("/api/v1/telemetry", content=orjson.dumps(_batch(urn, 3))).status_code == 200
    before = count_rows(database)
    cases = [
        (b"[{", "malformed_json"),
        (b'[{"entity": "x", "attribute": "a", "value": NaN}]', "malformed_json"),
        (orjson.dumps([{"entity": urn, "attribute": "a", "value": "7"}]), "wrong_type"),
        (orjson.dumps({"not": "a batch"}), "bad_structure"),
        (
            orjson.dumps(
                [
                    {
                        "entity": urn,
                        "attribute": "powerConsumption",
                        "value": 1,
                        "ts": "2999-01-01T00:00:00Z",
                    }
                ]
            ),
            "future_timestamp",
        ),
    ]
    for body, reason in cases:
        response = client.post("/api/v1/telemetry", content=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["reasons"] == {reason: 1}
        assert response.json()["error"]["message"].startswith("no reading accepted")
    response = client.post("/api/v1/telemetry", content=b"x" * 300_000)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    response = client.post(
        "/api/v1/telemetry", content=b"not gzip", headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 422
    bomb = gzip.compress(b"[" + b" " * 2_000_000 + b"]")
    response = client.post("/api/v1/telemetry", content=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert count_rows(database) == before


def test_tokens_are_checked(database: Database, world: World) -> None:
    tenant = world.tenant("tokens")
    (urn,) = entities(database, tenant.id, 1)
    anonymous = TestClient(world.app)  # type: ignore[arg-type]
    assert anonymous.post("/api/v1/telemetry", content=b"[]").status_code == 401
    anonymous.headers["Authorization"] = "Bearer trd_forged"
    assert anonymous.post("/api/v1/telemetry", content=b"[]").status_code == 401
    viewer = world.api(tenant, Role.VIEWER)
    response = viewer.post("/api/v1/telemetry", content=orjson.dumps(_batch(urn, 1)))
    assert response.status_code == 403
    assert (
        viewer.post(
            "/api/v1/devices", json={"device_id": "d1", "entity": urn, "payload_format": "json"}
        ).status_code
        == 403
    )
    assert count_rows(database) == 0


def test_device_registration_is_validated(database: Database, world: World) -> None:
    tenant, other = world.tenant("devices"), world.tenant("devices-b")
    (urn,) = entities(database, tenant.id, 1)
    (foreign,) = entities(database, other.id, 1)
    client = world.api(tenant, Role.OPERATOR)
    problems = [
        {"device_id": "bad id!", "entity": urn, "payload_format": "json"},
        {"device_id": "d1", "entity": foreign, "payload_format": "json"},
        {"device_id": "d1", "entity": urn, "payload_format": "xml"},
        {
            "device_id": "d1",
            "entity": urn,
            "payload_format": "json",
            "mapping": {"p": {"attribute": "x", "unit": "parsec"}},
        },
    ]
    for body in problems:
        response = client.post("/api/v1/devices", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["problems"]
    _device(client, urn, "d1")
    assert (
        client.post(
            "/api/v1/devices", json={"device_id": "d1", "entity": urn, "payload_format": "json"}
        ).status_code
        == 409
    )
    listed = client.get("/api/v1/devices").json()
    assert [d["device_id"] for d in listed] == ["d1"] and "ingest_token" not in listed[0]


def test_queries_and_exports_are_tenant_scoped(database: Database, world: World) -> None:
    tenant, other = world.tenant("query"), world.tenant("query-b")
    (urn,) = entities(database, tenant.id, 1)
    client = world.api(tenant, Role.OPERATOR)
    start = hour_ago()
    client.post("/api/v1/telemetry", content=orjson.dumps(_batch(urn, 24, start)))
    series = client.get("/api/v1/series").json()["items"]
    sid = series[0]["id"]
    assert series[0]["last_value"] == 23.0
    stranger = world.api(other, Role.ADMIN)
    for path in ("", "/observations", "/aggregate", "/export.csv", "/export.parquet"):
        response = stranger.get(f"/api/v1/series/{sid}{path}")
        assert response.status_code == 404, (path, response.text)
    assert stranger.get("/api/v1/series/latest").json()["count"] == 0
    paris = start.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    window = {"from": paris, "to": (start + timedelta(hours=1)).isoformat()}
    raw = client.get(f"/api/v1/series/{sid}/observations", params={**window, "limit": 5}).json()
    assert [i["value"] for i in raw["items"]] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert raw["next_from"] is not None
    hours = client.get(
        f"/api/v1/series/{sid}/aggregate",
        params={
            "period": "PT1H",
            "fn": "avg,count,max",
            "from": start.isoformat(),
            "to": (start + timedelta(hours=2)).isoformat(),
        },
    ).json()
    assert [(b["count"], b["avg"], b["max"]) for b in hours["buckets"]] == [
        (12, 5.5, 11.0),
        (12, 17.5, 23.0),
    ]
    latest = client.post("/api/v1/series/latest", json={"ids": [sid]}).json()
    assert latest["value"] == [23.0] and latest["id"] == [sid]
    compact = client.get("/api/v1/series/latest", params={"fields": "ts,value"}).json()
    assert set(compact) == {"count", "id", "ts", "value", "ts_unit"}
    assert (compact["id"], compact["ts"], compact["value"]) == (
        [sid],
        latest["ts"],
        [23.0],
    )
    named = client.post("/api/v1/series/latest?fields=entity", json={"ids": [sid]}).json()
    assert named == {"count": 1, "id": [sid], "entity": latest["entity"]}
    csv_text = client.get(
        f"/api/v1/series/{sid}/export.csv", params={"from": start.isoformat()}
    ).text
    assert csv_text.splitlines()[0] == "ts,value,unit" and len(csv_text.splitlines()) == 25
    table = pq.read_table(
        io.BytesIO(
            client.get(
                f"/api/v1/series/{sid}/export.parquet", params={"from": start.isoformat()}
            ).content
        )
    )
    assert table.num_rows == 24 and table.column("value").to_pylist()[-1] == 23.0
    assert table.column("ts").to_pylist()[0] == start.astimezone(UTC)


def test_query_parameters_are_validated(database: Database, world: World) -> None:
    tenant = world.tenant("params")
    (urn,) = entities(database, tenant.id, 1)
    client = world.api(tenant, Role.OPERATOR)
    client.post("/api/v1/telemetry", content=orjson.dumps(_batch(urn, 2)))
    sid = client.get("/api/v1/series").json()["items"][0]["id"]
    for params in (
        {"from": "2025-01-01T00:00:00"},
        {"from": "soon"},
        {"period": "PT5M"},
        {"fn": "median"},
        {"tz": "Mars/Olympus"},
        {"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
    ):
        response = client.get(f"/api/v1/series/{sid}/aggregate", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["problems"]
    assert client.get("/api/v1/series/latest", params={"ids": "1,x"}).status_code == 422
    unknown = client.get("/api/v1/series/latest", params={"fields": "ts,colour"})
    assert unknown.status_code == 422 and "colour" in unknown.text
