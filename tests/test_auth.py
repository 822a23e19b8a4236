"""--auth: a token in a Bearer header or in a cookie set by one visit with ?token=; without it nothing changes."""
from __future__ import annotations

import pytest

from vidsearch.web import create_app
from vidsearch.web.auth import AUTH_COOKIE

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def index(small_index):
    return small_index


def _app(index, auth):
    app = create_app(index, auth=auth)
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="module")
def app(index):
    app = _app(index, TOKEN)
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_every_route_but_static_needs_the_token(client):
    hit = client.get("/api/search?q=a+red+circle", headers=bearer()).get_json()["hits"][0]
    urls = ["/", "/?q=a+red+circle", f"/watch/{hit['source_id']}", hit["thumbnail_url"], hit["media_url"],
            "/api/info", "/api/search?q=x", "/no/such/page", "/api/nothing"]
    for url in urls:
        r = client.get(url)
        assert r.status_code == 401, url
        assert r.headers["WWW-Authenticate"] == "Bearer"
        if url.startswith("/api/"):
            assert "token" in r.get_json()["error"]
        else:
            assert r.mimetype == "text/html" and b"401" in r.data and b"vidsearch" in r.data
        assert client.get(url, headers=bearer()).status_code in (200, 206, 404), url
    assert client.post("/api/search", data={"q": "x"}).status_code == 401
    assert client.get("/static/style.css").status_code == 200


@pytest.mark.parametrize("header", ["Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ",
                                    "Bearer tök", f"Bearer {TOKEN[:-1]}"])
def test_a_wrong_header_is_refused(client, header):
    assert client.get("/api/info", headers={"Authorization": header}).status_code == 401


def test_token_in_the_url_sets_a_cookie_and_redirects_without_it(client):
    r = client.get(f"/?q=a+red+circle&token={TOKEN}&k=5")
    assert r.status_code == 303
    assert r.headers["Location"] == "/?q=a+red+circle&k=5"
    cookie = r.headers["Set-Cookie"]
    assert TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert r.headers["Cache-Control"] == "no-store"
    assert client.get("/?q=a+red+circle&k=5").status_code == 200  # the cookie now lets everything through
    assert client.get("/api/search?q=a+red+circle").status_code == 200
    assert client.get(f"/api/search?q=x&token={TOKEN}").headers["Location"] == "/api/search?q=x"
    assert client.get(f"/watch/1?token={TOKEN}").headers["Location"] == "/watch/1"


def test_a_wrong_token_or_cookie_is_refused(client):
    assert client.get("/?token=nope").status_code == 401
    assert client.get("/?token=").status_code == 401
    assert client.get("/?token=t%C3%B6k%00").status_code == 401
    client.set_cookie(AUTH_COOKIE, TOKEN)  # the token itself is not the cookie's value
    assert client.get("/").status_code == 401


def test_a_cookie_from_another_token_is_refused(index, client):
    other = _app(index, "another-token")
    r = other.test_client().get("/?token=another-token")
    value = r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    client.set_cookie(AUTH_COOKIE, value)
    assert client.get("/").status_code == 401


def test_without_auth_nothing_changes(index):
    app = _app(index, None)
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/api/info").status_code == 200
    r = client.get("/?token=whatever")
    assert r.status_code == 200 and "Set-Cookie" not in r.headers


def test_an_empty_token_is_an_error(index):
    with pytest.raises(ValueError):
        create_app(index, auth="")


def test_serve_takes_the_token_from_an_option_or_the_environment(tmp_path):
    from click.testing import CliRunner

    from vidsearch.cli import main

    runner = CliRunner()
    assert "VIDSEARCH_AUTH" in runner.invoke(main, ["serve", "--help"]).output
    r = runner.invoke(main, ["serve", "--index", str(tmp_path / "none"), "--auth", " "])
    assert r.exit_code == 2 and "non-empty token" in r.output
    r = runner.invoke(main, ["serve", "--index", str(tmp_path / "none")], env={"VIDSEARCH_AUTH": " "})
    assert r.exit_code == 2 and "non-empty token" in r.output
