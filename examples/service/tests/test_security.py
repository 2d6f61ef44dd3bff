"""Hostile requests against the app in-process (no worker threads, no audio run): every path
in a request is confined, nothing in a body produces a 5xx, the guard holds by route, and
per-request caps answer 422. Each case also checks that nothing was written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from fastapi.testclient import TestClient

from assembly_service.app import create_app
from assembly_service.config import Settings

from conftest import SECRET, Media

AUTH = {"X-Tasks-Auth": SECRET.encode("utf-8")}


class App:
    """The app with its store in ``tmp`` and 0 workers: accepted jobs stay queued."""

    def __init__(self, tmp: Path, media: Media, **changes: Any) -> None:
        self.settings = Settings(media_root=media.root, output_root=tmp / "out",
                                 data_dir=tmp / "data", auth_secret=SECRET, workers=0,
                                 **changes)
        self.app = create_app(self.settings)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def post(self, body: Any, **kw: Any) -> Any:
        if isinstance(body, (bytes, str)):
            return self.client.post("/api/tasks/assemble", content=body,
                                    headers={**AUTH, "content-type": "application/json"}, **kw)
        return self.client.post("/api/tasks/assemble", json=body, headers=AUTH, **kw)

    def written(self) -> Tuple[List[Any], List[str]]:
        """The store's rows and every file under the data and output folders."""
        store = self.app.state.service["store"]
        rows = sorted(j.job_id for j in _all_jobs(store))
        files = []
        for root in (self.settings.data_dir, self.settings.output_root):
            for dirpath, _dirs, names in os.walk(root):
                files += [os.path.join(dirpath, n) for n in names
                          if not n.startswith("jobs.sqlite3")]
        return rows, sorted(files)


def _all_jobs(store: Any) -> List[Any]:
    conn = store._conn()  # the SQLite store: read every row
    from assembly_service.store import job_from_row

    return [job_from_row(r) for r in conn.execute("SELECT * FROM jobs")]


@pytest.fixture()
def app(tmp_path: Path, media: Media) -> Iterator[App]:
    a = App(tmp_path, media)
    with a.client:
        yield a


def _good(media: Media, episode_id: str = "ep-sec") -> Dict[str, Any]:
    """A valid request, deep-copied (its words list is the session's)."""
    return json.loads(json.dumps(media.payload(episode_id, content="short.wav")))


# --- 1: every path confined ----------------------------------------------------------------


def _place(body: Dict[str, Any], where: str, name: str) -> Dict[str, Any]:
    """``body`` with ``name`` put in one of the places a request names a file."""
    body = json.loads(json.dumps(body))
    t = body["template"]
    if where == "segment filename":
        t["segments"][0]["source"]["filename"] = name
    elif where == "segment asset_id":
        t["segments"][0]["source"] = {"source_type": "static", "asset_id": name}
        t["segments"][0].pop("id")
    elif where == "music_filename":
        t["background_music_rules"][0]["music_filename"] = name
    elif where == "music_asset_id":
        t["background_music_rules"][0] = {"music_asset_id": name,
                                          "apply_to_segments": ["content"]}
    elif where == "inserted clip":
        body["cleanup_options"]["insertedClips"] = [{"clip": name, "atSeconds": 1.0}]
    elif where == "sound effect":
        body["cleanup_options"]["soundEffects"] = [{"trigger": "um", "clip": name}]
    else:
        raise AssertionError(where)
    return body


PLACES = ("segment filename", "segment asset_id", "music_filename", "music_asset_id",
          "inserted clip", "sound effect")


def test_every_path_in_a_request_is_confined_and_missing_looks_like_outside(
        app: App, media: Media, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.wav"
    secret.write_bytes((media.root / "short.wav").read_bytes())
    inside_unlisted = media.root / "assets" / "intro.wav"  # exists, but not an asset key
    before = app.written()
    for where in PLACES:
        answers = {}
        for label, name in (("outside, exists", str(secret)),
                            ("outside, missing", str(outside / "missing.wav")),
                            ("inside, not in assets", str(inside_unlisted)),
                            ("relative outside", "../" * 8 + str(secret).lstrip("/"))):
            r = app.post(_place(_good(media), where, name))
            assert r.status_code == 422, (where, label, r.status_code, r.text)
            body = r.json()
            assert body["ok"] is False and body["errors"], (where, label, body)
            # the same answer whichever path it was: it tells nothing about the host's files
            answers[label] = json.dumps(body).replace(json.dumps(name)[1:-1], "<name>")
        assert len(set(answers.values())) == 1, (where, answers)
        field = answers["outside, exists"]
        assert ("template" in field) or ("cleanup_options" in field), field
    assert app.written() == before
    # the same names as keys of `assets` are confined like content_path
    r = app.post({**_good(media), "assets": {**_good(media)["assets"],
                                              "intro.wav": str(secret)}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "assets.intro.wav"
    # and a listed asset is accepted
    ok = _place(_good(media, "ep-listed"), "inserted clip", "intro.wav")
    assert app.post(ok).status_code == 202


# --- 3: nothing in a body produces a 5xx ---------------------------------------------------


def _raw(body: Any) -> bytes:
    """JSON text as a hostile client sends it: lone surrogates as ``\\ud800`` escapes."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


def test_lone_surrogates_anywhere_are_422_not_500(app: App, media: Media) -> None:
    good = _good(media)
    bad = "x\ud800y"
    bodies = {
        "episode_id": {**good, "episode_id": bad},
        "content_path": {**good, "content_path": bad},
        "output_path": {**good, "output_path": bad + ".mp3"},
        "words[0].word": {**good, "words": [{"word": bad, "start": 0.1, "end": 0.2}]},
        "words[0].extra": {**good, "words": [{"word": "a", "start": 0.1, "end": 0.2,
                                              "note": bad}]},
        "words[0] key": {**good, "words": [{"word": "a", "start": 0.1, "end": 0.2, bad: 1}]},
        "template value": _place(good, "segment filename", bad),
        "template key": {**good, "template": {**good["template"], bad: 1}},
        "assets key": {**good, "assets": {**good["assets"], bad: "assets/intro.wav"}},
        "assets value": {**good, "assets": {**good["assets"], "intro.wav": bad}},
        "cleanup option": {**good, "cleanup_options": {"fillerWords": [bad]}},
        "cleanup key": {**good, "cleanup_options": {bad: True}},
        "unknown key": {**good, bad: 1},
        "surrogate pair halves": {**good, "content_path": "\udc80\ud800"},
        "extra_outputs[0].path": {**good, "extra_outputs": [{"path": bad + ".mp3"}]},
    }
    before = app.written()
    for name, body in bodies.items():
        r = app.post(_raw(body))
        assert r.status_code in (400, 422), (name, r.status_code, r.text)
        assert r.json()["ok"] is False, name
        assert app.written() == before, name


def _json_values() -> Any:
    from hypothesis import strategies as st

    leaf = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
        st.sampled_from(["\ud800", "a\udfffb", "../../etc/passwd", "/etc/hostname",
                         "short.wav", "assets/intro.wav", "intro.wav", "", "\x00", "mp3",
                         "content", "static", "x" * 5000]))
    return st.recursive(leaf, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=10)


def _paths(value: Any, prefix: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def test_fuzzed_bodies_never_answer_5xx_and_rejections_write_nothing(
        media: Media, tmp_path: Path) -> None:
    """Hypothesis mutates a valid request (a value replaced anywhere, a key added or
    removed) and sends arbitrary JSON and bytes: never a 5xx; a rejected request leaves the
    store and the folders as they were."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    a = App(tmp_path, media)
    statuses: Dict[int, int] = {}

    def check(content: bytes) -> None:
        before = a.written()
        r = a.post(content)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (content[:500], r.status_code, r.text)
        assert r.status_code in (202, 400, 409, 413, 422), (r.status_code, r.text)
        if r.status_code != 202:
            assert r.json()["ok"] is False
            assert a.written() == before, content[:500]

    common = settings(deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
    values = _json_values()

    @settings(common, max_examples=250)
    @given(st.data())
    def mutated(data: Any) -> None:
        body = _good(media, f"ep-f{data.draw(st.integers(0, 3))}")
        if data.draw(st.booleans()):
            body["extra_outputs"] = [{"path": "mono.mp3", "channels": 1, "target_lufs": -19.0},
                                     {"path": "m.flac", "format": "flac", "sample_rate": 48000}]
        path = data.draw(st.sampled_from(_paths(body)[1:]))
        parent = body
        for k in path[:-1]:
            parent = parent[k]
        action = data.draw(st.sampled_from(["replace", "replace", "add", "remove"]))
        if action == "replace":
            parent[path[-1]] = data.draw(values)
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=10))] = data.draw(values)
        elif isinstance(parent, dict):
            parent.pop(path[-1])
        elif isinstance(parent, list):
            parent.pop(path[-1])
        check(_raw(body))

    @settings(common, max_examples=80)
    @given(values)
    def arbitrary_json(body: Any) -> None:
        check(_raw(body))

    @settings(common, max_examples=60)
    @given(st.binary(max_size=200))
    def arbitrary_bytes(body: bytes) -> None:
        check(body)

    with a.client:
        mutated()
        arbitrary_json()
        arbitrary_bytes()
    print(f"fuzzed answers: {dict(sorted(statuses.items()))}")
    assert statuses.get(422, 0) > 50 and statuses.get(202, 0) > 0


# --- 2: the guard holds by route; readiness tells no internals; several secrets -------------


def test_guard_holds_by_route_under_a_mount_and_a_root_path(media: Media, tmp_path: Path
                                                           ) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    a = App(tmp_path, media)
    parent = Starlette(routes=[Mount("/svc", app=a.app)])
    with a.client:
        for client in (TestClient(parent), TestClient(a.app, root_path="/svc"),
                       TestClient(a.app)):
            prefix = "/svc" if client.app is parent else ""
            for method, path in (("GET", "/api/tasks/dead"),
                                 ("GET", "/api/tasks/assemble/ep/status"),
                                 ("POST", "/api/tasks/assemble"),
                                 ("GET", "/openapi.json"), ("GET", "/docs"),
                                 ("GET", "/redoc"), ("GET", "/no/such/route"),
                                 ("POST", "/healthz")):
                r = client.request(method, prefix + path)
                assert r.status_code == 401, (prefix, method, path, r.status_code, r.text)
                assert r.json()["error"] == "unauthorized"
            for path in ("/healthz", "/readyz", "/metrics"):
                assert client.get(prefix + path).status_code == 200, (prefix, path)
            assert client.get(prefix + "/api/tasks/dead", headers=AUTH).status_code == 200
            assert client.get(prefix + "/openapi.json", headers=AUTH).status_code == 200


def test_docs_are_open_in_dev_mode_only(media: Media, tmp_path: Path) -> None:
    a = App(tmp_path, media, dev_mode=True)
    with a.client:
        assert a.client.get("/openapi.json").status_code == 200
        assert a.client.get("/docs").status_code == 200


def test_readiness_reports_no_store_internals(app: App) -> None:
    store = app.app.state.service["store"]

    def broken() -> None:
        raise RuntimeError("connection to db.internal:5432 user=svc password=hunter2 refused")

    store.ping = broken
    r = app.client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"ok": False, "error": "store unavailable"}


def test_a_list_of_secrets_rotates_without_downtime(media: Media, tmp_path: Path) -> None:
    env = {"ASSEMBLY_SERVICE_MEDIA_ROOT": str(media.root),
           "ASSEMBLY_SERVICE_AUTH_SECRET": "old-secret",
           "ASSEMBLY_SERVICE_AUTH_SECRETS": "new-secret, newer-secret"}
    s = Settings.from_env(env, data_dir=tmp_path / "data", workers=0)
    assert s.secrets == ("old-secret", "new-secret", "newer-secret")
    only_list = Settings.from_env({**env, "ASSEMBLY_SERVICE_AUTH_SECRET": ""},
                                  data_dir=tmp_path / "data", workers=0)
    assert only_list.secrets == ("new-secret", "newer-secret")
    with pytest.raises(ValueError, match="auth_secret is required"):
        Settings.from_env({"ASSEMBLY_SERVICE_MEDIA_ROOT": str(media.root),
                           "ASSEMBLY_SERVICE_AUTH_SECRETS": " , "})
    client = TestClient(create_app(s))
    with client:
        for secret, status in (("old-secret", 200), ("new-secret", 200),
                               ("newer-secret", 200), ("new-secret,newer-secret", 401),
                               ("", 401), ("old", 401)):
            r = client.get("/api/tasks/dead", headers={"X-Tasks-Auth": secret})
            assert r.status_code == status, secret


# --- 4: per-request caps --------------------------------------------------------------------


def test_per_request_caps_answer_422_naming_the_field(media: Media, tmp_path: Path) -> None:
    a = App(tmp_path, media, max_segments=5, max_assets=3, max_words=10,
            max_input_duration_s=60.0)
    good = {**_good(media), "words": None}  # short.wav: 12 s, intro 1 s, outro 1 s, bed 3 s
    seg = good["template"]["segments"][0]
    many_words = [{"word": "w", "start": i * 0.1, "end": i * 0.1 + 0.05} for i in range(11)]
    cases = {
        "template.segments": {**good, "template": {"segments": [seg] * 6}},
        "template.background_music_rules": {**good, "template": {
            **good["template"],
            "background_music_rules": good["template"]["background_music_rules"] * 6}},
        "cleanup_options.insertedClips": {**good, "cleanup_options": {
            "insertedClips": [{"clip": "intro.wav", "atSeconds": 1.0}] * 6}},
        "assets": {**good, "assets": {**good["assets"], "x.wav": "assets/bed.wav"}},
        "words": {**good, "words": many_words},
        "content_path": {**good, "content_path": "talk-a.wav", "words": None},  # 120 s
    }
    with a.client:
        before = a.written()
        for field, body in cases.items():
            r = a.post(body)
            assert r.status_code == 422, (field, r.status_code, r.text)
            assert r.json()["errors"][0]["field"] == field, (field, r.json())
        # the inputs together: 12 s of content + a 72 s asset
        r = a.post({**good, "assets": {**good["assets"], "bed.wav": "talk-c.wav"}})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "assets", r.text
        assert "max_input_duration_s" in r.json()["errors"][0]["message"]
        assert a.written() == before
        # at the caps: accepted; one file named by many ids counts once
        at_caps = {**good, "words": many_words[:10],
                   "assets": {"intro.wav": "assets/intro.wav", "outro.wav": "assets/intro.wav",
                              "bed.wav": "assets/bed.wav"},
                   "template": {**good["template"], "segments": [
                       {**seg, "id": f"s{i}", "source": {"source_type": "static",
                                                         "filename": name}}
                       for i, name in enumerate(["intro.wav", "outro.wav"] * 2)] + [
                       {"segment_type": "content", "source": {"source_type": "content"}}]}}
        r = a.post(at_caps)
        assert r.status_code == 202, r.text


def test_default_caps_refuse_hundreds_of_segments_and_tighten_the_decoders_limits(
        app: App, media: Media) -> None:
    from assembly_service.jobs import build_spec

    good = _good(media)
    seg = good["template"]["segments"][0]
    r = app.post({**good, "template": {"segments": [seg] * 300}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "template.segments"
    s = app.settings.with_changes(max_input_duration_s=90.0)
    from assembly_service.requests import AssembleRequest, prepare

    payload = prepare(AssembleRequest(**good), app.settings).payload
    spec = build_spec(payload, app.settings.work_root / "x", settings=s)
    assert spec["limits"] == {"max_duration_s": 90.0}
