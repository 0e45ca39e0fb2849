"""Errors raised before any Open311 route runs (unknown path, body over the platform's
size limit) still use Open311's error list, in the format the path asks for."""

from __future__ import annotations

from xml.etree import ElementTree

from fastapi.testclient import TestClient


def test_unknown_open311_path_answers_an_open311_error_list(client: TestClient) -> None:
    as_json = client.get("/open311/v2/nothing-here.json")
    assert as_json.status_code == 404
    assert as_json.json()[0]["code"] == 404
    assert as_json.json()[0]["description"]
    as_xml = client.get("/open311/v2/nothing-here.xml")
    assert as_xml.status_code == 404
    root = ElementTree.fromstring(as_xml.content)
    assert root.tag == "errors"
    assert root.find("error/code") is not None
    assert root.findtext("error/code") == "404"


def test_body_over_the_platform_limit_answers_an_open311_413(client: TestClient) -> None:
    too_big = b"description=" + b"x" * (300 * 1024)
    response = client.post(
        "/open311/v2/requests.xml",
        content=too_big,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    root = ElementTree.fromstring(response.content)
    assert root.findtext("error/code") == "413"
    assert "larger than" in (root.findtext("error/description") or "")


def test_other_paths_keep_the_platform_error_envelope(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
