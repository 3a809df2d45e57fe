"""The JSON API: bearer tokens, read endpoints, refusals, and POST /api/responses."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from monitor.store import db
from monitor.store.models import Dimension, DimensionValue, ImportRun, responses
from web.accounts import revoke_token

READS = [
    "/api/transitions",
    "/api/transitions/1",
    "/api/transitions/1/segments?by=country",
    "/api/findings",
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record(number: int, **changes: object) -> dict[str, object]:
    base = {
        "response_id": f"api-{number}",
        "submitted_at": "2026-03-02T10:00:00+02:00",
        "ticket_id": f"INC{number}",
        "ticket_type": "incident",
        "rating": 9,
        "lost_time_minutes": 15,
        "factors": ["Fast resolution"],
        "comment": "",
        "country": "Finland",
    }
    return {**base, **changes}


@pytest.mark.parametrize("path", [*READS, "/api/findings/F000", "/api/transitions/1/segments"])
def test_reads_need_a_valid_token(app, people, path):
    client = app.test_client()
    for headers in ({}, bearer("mspm_wrong"), bearer("not-even-our-format"), {"Authorization": "Basic abc"}):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 401
        assert answer.json["error"]["status"] == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_session_cookie_does_not_open_the_api(app, people, login):
    assert login(people.admin).get("/api/transitions").status_code == 401


def test_a_revoked_token_stops_working(app, people):
    client = app.test_client()
    assert client.get("/api/transitions", headers=bearer(people.viewer_token)).status_code == 200
    with db.session_scope(app.extensions["mspmon"].engine) as session:
        from web.accounts import list_tokens

        token = next(t for t in list_tokens(session) if t.user.email == people.viewer)
        revoke_token(session, token.id)
    assert client.get("/api/transitions", headers=bearer(people.viewer_token)).status_code == 401


def test_reads_mirror_the_pages(seeded, people):
    client = seeded.test_client()
    headers = bearer(people.viewer_token)
    overview = client.get("/api/transitions", headers=headers).json
    (transition,) = overview["transitions"]
    assert transition["name"] == "Service desk to MSP"
    assert transition["status"] in {"dipping", "recovering", "recovered", "on_target"}
    early = transition["metrics"]["happiness"]["early"]
    assert early["delta"] < 0 and early["ci_high"] < 0
    assert overview["freshness"]["analysed_as_of"] == "2026-11-23"

    detail = client.get("/api/transitions/1?metric=lost_time", headers=headers).json
    assert detail["metric"] == "lost_time" and len(detail["weekly"]) > 50
    assert {"week", "value", "ci_low", "ci_high", "n"} <= set(detail["weekly"][0])

    drill = client.get("/api/transitions/1/segments?by=country", headers=headers).json["drill"]
    top = drill["rows"][0]
    assert top["segment"] == {"country": "Finland"} and top["share"] > 0.4
    shares = [row["share"] for row in drill["rows"]] + ([drill["other"]["share"]] if drill["other"] and not drill["other"].get("hidden") else [])
    assert sum(shares) == pytest.approx(1.0, abs=0.01)
    assert drill["total"]["responses_after"] >= sum(row["responses_after"] for row in drill["rows"])

    deeper = client.get("/api/transitions/1/segments?f=country=Finland&by=service", headers=headers).json
    assert deeper["drill"]["rows"][0]["segment"] == {"service": "SAP"}
    leaf = client.get("/api/transitions/1/segments?f=service=SAP&f=country=Finland", headers=headers).json
    assert leaf["drill"] is None and leaf["dimensions"] == []
    assert leaf["factors"][0]["factor"] == "Lack of business knowledge"
    assert leaf["factors"][0]["ci_low"] > 10

    findings = client.get("/api/findings", headers=headers).json["findings"]
    assert findings and all("echoes" in f for f in findings)
    one = client.get(f"/api/findings/{findings[0]['id']}", headers=headers).json
    assert one["id"] == findings[0]["id"] and "history" in one


def test_no_segment_under_the_anonymity_threshold_is_named(seeded, people, app):
    """Every row the API names has at least k responses before and after; small ones are 'other'."""
    k = 5
    client = seeded.test_client()
    headers = bearer(people.admin_token)
    named = 0
    for by in ("location", "assignment_group", "department"):
        for extra in ("", "&f=service=SAP"):
            answer = client.get(f"/api/transitions/1/segments?by={by}{extra}", headers=headers)
            if answer.status_code == 404:  # no such pair kept
                continue
            drill = answer.json["drill"]
            for row in drill["rows"]:
                named += 1
                assert row["responses_before"] >= k and row["responses_after"] >= k
            if drill["folded_segments"]:
                assert drill["other"] is not None and drill["other"]["segment"] is None
    assert named > 10


def test_a_segment_under_the_threshold_is_never_named_or_opened(strict, people):
    """With k = 300, Iceland (a few dozen responses) is folded into "other" and cannot be opened."""
    client = strict.test_client()
    headers = bearer(people.admin_token)
    answer = client.get("/api/transitions/1/segments?by=country", headers=headers)
    assert answer.status_code == 200
    assert "Iceland" not in answer.text
    drill = answer.json["drill"]
    assert all(row["responses_before"] >= 300 and row["responses_after"] >= 300 for row in drill["rows"])
    assert drill["folded_segments"] >= 1
    refused = client.get("/api/transitions/1/segments?f=country=Iceland", headers=headers)
    assert refused.status_code == 404 and "too few responses" in refused.json["error"]["message"]
    heat = client.get("/api/transitions/1/segments?by=country&by2=service", headers=headers)
    assert "Iceland" not in heat.text
    assert all(cell["n_after"] >= 300 for cell in heat.json["heatmap"]["cells"])


def test_a_scoped_viewer_sees_only_their_segments(seeded, people):
    client = seeded.test_client()
    headers = bearer(people.scoped_token)
    findings = client.get("/api/findings", headers=headers).json["findings"]
    assert findings and all(f["segment"].get("country") == "Finland" for f in findings)
    everyone = client.get("/api/findings", headers=bearer(people.admin_token)).json["findings"]
    hidden = next(f for f in everyone if f["segment"].get("country") not in (None, "Finland") or not f["segment"])
    assert client.get(f"/api/findings/{hidden['id']}", headers=headers).status_code == 404
    detail = client.get("/api/transitions/1", headers=headers).json
    assert detail["targets"] == [] and detail["lost_time_distribution"] == {}
    drill = client.get("/api/transitions/1/segments?by=service", headers=headers).json["drill"]
    full = client.get("/api/transitions/1/segments?f=country=Finland&by=service", headers=bearer(people.admin_token)).json
    assert drill["total"]["responses_after"] == full["drill"]["total"]["responses_after"]
    other_country = client.get("/api/transitions/1/segments?f=country=Sweden", headers=headers)
    assert other_country.status_code == 404


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/api/transitions/999", 404, "no transition with id 999"),
        ("/api/transitions/abc", 404, ""),
        ("/api/findings/nope", 404, "no finding"),
        ("/api/transitions/1?metric=nps", 400, "metric must be one of"),
        ("/api/transitions/1/segments?by=planet", 400, "by must be one of the dimensions"),
        ("/api/transitions/1/segments?by=country&by2=country", 404, "no heatmap"),
        ("/api/transitions/1/segments?f=country", 400, "dimension=value"),
        ("/api/transitions/1/segments?f=planet=Mars", 400, "unknown dimension"),
        ("/api/transitions/1/segments?f=country=Finland&f=country=Sweden", 400, "two filters"),
        ("/api/transitions/1/segments?f=country=Finland&f=service=SAP&by=channel", 404, "cannot split"),
        ("/api/findings?since=2025-13-45", 400, "YYYY-MM-DD"),
        ("/api/findings?state=sleeping", 400, "state must be one of"),
        ("/api/nothing-here", 404, ""),
    ],
)
def test_bad_input_gets_a_clear_4xx(seeded, people, path, status, text):
    answer = seeded.test_client().get(path, headers=bearer(people.viewer_token))
    assert answer.status_code == status, answer.json
    assert text in answer.json["error"]["message"]


def test_before_any_analysis_the_api_says_so(app, people):
    client = app.test_client()
    assert client.get("/api/transitions", headers=bearer(people.viewer_token)).json["transitions"] == []
    answer = client.get("/api/transitions/1/segments", headers=bearer(people.viewer_token))
    assert answer.status_code == 404


def test_openapi_describes_every_api_route(app):
    spec = app.test_client().get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {"/api" + path.replace("{", "<").replace("}", ">") for path in spec["paths"]}
    routes = {
        rule.rule.replace("<int:", "<") for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
    }
    assert routes == documented


def count_rows(app) -> int:
    with app.extensions["mspmon"].engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(responses)).scalar_one()


def post(app, token, body, content_type="application/json", query=""):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return app.test_client().post(f"/api/responses{query}", data=data, content_type=content_type, headers=bearer(token))


def test_posting_responses_imports_them_once(app, people):
    first = post(app, people.admin_token, [record(1), record(2, factors="Slow response;Long waiting time")])
    assert first.status_code == 200, first.json
    assert first.json["inserted"] == 2 and first.json["committed"] is True
    again = post(app, people.admin_token, [record(1), record(2, factors="Slow response;Long waiting time")])
    assert again.json["inserted"] == 0 and again.json["unchanged"] == 2
    changed = post(app, people.admin_token, [record(1, rating=3)])
    assert changed.json["updated"] == 1
    assert count_rows(app) == 2
    lines = "\n".join(json.dumps(record(n)) for n in (3, 4)) + "\n"
    assert post(app, people.admin_token, lines, "application/x-ndjson").json["inserted"] == 2
    with app.extensions["mspmon"].engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ImportRun)).scalar_one() == 4


def test_one_bad_record_refuses_the_whole_batch(app, people):
    body = [record(1), record(2, rating=11), record(3, submitted_at="yesterday"), record(4, ticket_type="call")]
    answer = post(app, people.admin_token, body)
    assert answer.status_code == 422
    assert answer.json["committed"] is False and answer.json["rejected"] == 3
    errors = {(e["record"], e["column"]) for e in answer.json["errors"]}
    assert errors == {(2, "rating"), (3, "submitted_at"), (4, "ticket_type")}
    messages = {e["column"]: e["message"] for e in answer.json["errors"]}
    assert "0 to 10" in messages["rating"] and "ISO 8601" in messages["submitted_at"]
    assert count_rows(app) == 0


def test_skip_invalid_keeps_the_good_records(app, people):
    answer = post(app, people.admin_token, [record(1), record(2, rating=-1), {"rating": 5}], query="?skip_invalid=true")
    assert answer.status_code == 200
    assert answer.json["inserted"] == 1 and answer.json["rejected"] == 2
    assert {e["record"] for e in answer.json["errors"]} == {2, 3}
    assert count_rows(app) == 1


def test_duplicates_within_a_batch_are_refused(app, people):
    answer = post(app, people.admin_token, [record(1), record(1, rating=2)])
    assert answer.status_code == 422
    assert "duplicate response_id" in answer.json["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "query", "status", "text"),
    [
        ("{not json", "application/json", "", 400, "not valid JSON"),
        ('{"response_id": "x"}', "application/json", "", 400, "JSON list"),
        ("[]", "application/json", "", 400, "no responses"),
        ("a,b\n1,2\n", "text/csv", "", 415, "application/json"),
        (b"\xff\xfe[]", "application/json", "", 400, "UTF-8"),
        ("[]", "application/json", "?skip_invalid=maybe", 400, "true or false"),
        ("[]", "application/json", "?source=", 400, "source"),
    ],
)
def test_malformed_bodies_get_a_clear_4xx(app, people, body, content_type, query, status, text):
    answer = post(app, people.admin_token, body, content_type, query)
    assert answer.status_code == status
    assert text in answer.json["error"]["message"]


def test_oversized_bodies_are_refused(app, people):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    answer = post(app, people.admin_token, [record(n) for n in range(50)])
    assert answer.status_code == 413
    assert answer.json["error"]["status"] == 413


def test_only_admins_may_post_responses(app, people):
    assert post(app, people.viewer_token, [record(1)]).status_code == 403
    assert post(app, "mspm_wrong", [record(1)]).status_code == 401
    assert count_rows(app) == 0


def test_windows_under_the_threshold_are_left_out_of_a_transitions_figures(with_threshold, people):
    """With k = 150, Finland (a scoped view) shows its baseline and months since go-live,
    but not its last four weeks (about 90 responses)."""
    client = with_threshold(150).test_client()
    everyone = client.get("/api/transitions/1", headers=bearer(people.admin_token)).json
    assert everyone["metrics"]["happiness"]["recent"]["n_after"] >= 150
    finland = client.get("/api/transitions/1", headers=bearer(people.scoped_token)).json
    windows = finland["metrics"]["happiness"]
    assert "recent" not in windows and "since_go_live" in windows
    assert all(w["n_after"] >= 150 for w in windows.values() if isinstance(w, dict))


def test_posted_responses_take_their_tickets_dimensions(app, people, tmp_path):
    """As ``mspmon ingest`` does: a response without an assignment group takes its
    ticket's, and a value the survey gave wins."""
    from monitor.ingest.tickets import ingest_tickets

    engine = app.extensions["mspmon"].engine
    tickets = tmp_path / "tickets.csv"
    tickets.write_text("ticket_id,opened_at,assignment_group,country\n"
                       "INC1,2026-03-01T10:00:00Z,MSP-L1,Sweden\nINC2,2026-03-01T11:00:00Z,MSP-L2,Sweden\n",
                       encoding="utf-8")
    assert ingest_tickets(engine, [tickets], app.extensions["mspmon"].settings).committed
    assert post(app, people.admin_token, [record(1), record(2)]).status_code == 200
    with db.session_scope(engine) as session:
        slot = {d.name: d.column for d in session.scalars(select(Dimension))}
        value = {v.id: v.value for v in session.scalars(select(DimensionValue))}
        got = {
            row.response_id: (value[row.group], value[row.country])
            for row in session.execute(select(
                responses.c.response_id,
                responses.c[slot["assignment_group"]].label("group"),
                responses.c[slot["country"]].label("country"),
            ))
        }
    assert got == {"api-1": ("MSP-L1", "Finland"), "api-2": ("MSP-L2", "Finland")}
