"""Security, round two (issue 24), the approvals page: sign-in redirects stay on the site, the lockout holds for
every spelling of a user id, people see only their tenants, a users file others can change is refused, and the
API answers JSON whatever goes wrong. A real server over HTTP on a real warehouse."""
from __future__ import annotations

import base64
import json
import os
import re
import threading
from pathlib import Path

import duckdb
import pytest
import requests
import yaml

from tests.test_governance import _propose
from weathervane.config import Autopilot, TenantConfig
from weathervane.governance import ensure_decision_tables
from weathervane.governance.identity import IdentityError, UserStore

APPROVER, VIEWER, OTHER, STRANGER = "lead@acme.example", "analyst@acme.example", "lead@other.example", "x@y.example"
PASSWORDS = {APPROVER: "approver passphrase", VIEWER: "viewer passphrase 1", OTHER: "other passphrase 12",
             STRANGER: "stranger passphrase"}
ACME = TenantConfig(autopilot=Autopilot(approvers=[APPROVER], appliers=["ops-bot"], viewers=[VIEWER]))
OTHER_CFG = TenantConfig(autopilot=Autopilot(approvers=[OTHER]))


def _yaml(cfg: TenantConfig) -> str:
    return yaml.safe_dump({"autopilot": {"approvers": cfg.autopilot.approvers, "appliers": cfg.autopilot.appliers,
                                         "viewers": cfg.autopilot.viewers}})


@pytest.fixture
def site(wv_env, tmp_path):
    from werkzeug.serving import make_server

    from weathervane.web import create_app

    landing = wv_env["landing"]
    for tenant, cfg in (("acme", ACME), ("other", OTHER_CFG)):
        (landing / tenant).mkdir()
        (landing / tenant / "tenant.yaml").write_text(_yaml(cfg))
    con = duckdb.connect(str(wv_env["warehouse"]))
    ensure_decision_tables(con)
    _propose(con, "p-acme", tenant="acme", cfg=ACME)
    _propose(con, "p-other", tenant="other", cfg=OTHER_CFG)
    con.close()
    users = tmp_path / "users.json"
    store = UserStore(users)
    for user, password in PASSWORDS.items():
        store.set_secret(user, password)
    app = create_app(warehouse_path=wv_env["warehouse"], landing_root=landing, reports_dir=wv_env["reports"],
                     users_path=users, secret_key="test-secret")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "users": users, "landing": landing,
           "warehouse": wv_env["warehouse"]}
    server.shutdown()


def _token(session: requests.Session, url: str) -> str:
    page = session.get(url + "/login", allow_redirects=False)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _sign_in(site, user: str, password: str | None = None, next_: str = "") -> requests.Response:
    s = requests.Session()
    token = _token(s, site["url"])
    resp = s.post(site["url"] + "/login", allow_redirects=False,
                  data={"user": user, "password": password or PASSWORDS[user], "csrf_token": token,
                        "next": next_})
    resp.session = s
    return resp


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- 5. open redirect after sign-in -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/x", "/\r\n/x", "/ /evil.example", "/\\evil.example",
                                    "//evil.example", "https://evil.example/", "/\x7f/evil.example",
                                    "http:/evil.example"])
def test_sign_in_never_redirects_off_the_site_and_never_fails(site, target):
    resp = _sign_in(site, APPROVER, next_=target)
    assert resp.status_code == 303, resp.text
    assert resp.headers["Location"] in ("/", site["url"] + "/")
    # the same through the query string of /login for someone already signed in
    again = resp.session.get(site["url"] + "/login", params={"next": target}, allow_redirects=False)
    assert again.status_code == 302 and again.headers["Location"] in ("/", site["url"] + "/")


def test_sign_in_returns_to_a_page_of_the_site(site):
    resp = _sign_in(site, APPROVER, next_="/t/acme/plans/p-acme")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/t/acme/plans/p-acme")


# --- 6. the lockout holds whatever the spelling of the user id --------------------------------------------


def test_failed_basic_sign_ins_count_for_the_user_whatever_spaces_or_case(site):
    url = site["url"] + "/api/tenants/acme/plans"
    spellings = [f" {APPROVER}", f"{APPROVER}\t", APPROVER.upper(), f"\t{APPROVER} "]
    for i in range(8):
        resp = requests.get(url, headers=_basic(spellings[i % len(spellings)], "wrong password!"))
        assert resp.status_code in (401, 429)
    # the right password no longer opens the account for a while, in any spelling
    for spelling in (APPROVER, f" {APPROVER}"):
        resp = requests.get(url, headers=_basic(spelling, PASSWORDS[APPROVER]))
        assert resp.status_code == 429 and resp.headers["Content-Type"].startswith("application/json")


# --- 7. a users file others may write ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o666, 0o644, 0o620])
def test_a_users_file_others_may_read_or_write_is_refused(site, mode):
    os.chmod(site["users"], mode)
    with pytest.raises(IdentityError, match="must be 0600"):
        UserStore(site["users"]).get(APPROVER)
    resp = _sign_in(site, APPROVER)
    assert resp.status_code == 500 and "must be 0600" in resp.text
    api = requests.get(site["url"] + "/api/tenants/acme/plans", headers=_basic(APPROVER, PASSWORDS[APPROVER]))
    assert api.status_code == 500 and "must be 0600" in api.json()["error"]


# --- 12. people see only their tenants --------------------------------------------------------------------


def test_signed_in_people_see_only_the_tenants_that_name_them(site):
    viewer = _sign_in(site, VIEWER).session
    home = viewer.get(site["url"] + "/")
    assert "/t/acme" in home.text and "/t/other" not in home.text
    assert viewer.get(site["url"] + "/t/acme/plans/p-acme").status_code == 200
    for path in ("/t/other", "/t/other/plans/p-other", "/t/other/ledger", "/t/other/plans/p-other/report",
                 "/t/nosuch"):
        assert viewer.get(site["url"] + path).status_code == 404, path
    stranger = _sign_in(site, STRANGER).session
    assert "/t/acme" not in stranger.get(site["url"] + "/").text
    assert stranger.get(site["url"] + "/t/acme").status_code == 404
    # the API: the same 404 for another tenant's plans as for a tenant that does not exist
    auth = _basic(OTHER, PASSWORDS[OTHER])
    assert requests.get(site["url"] + "/api/tenants/other/plans", headers=auth).status_code == 200
    for path in ("/api/tenants/acme/plans", "/api/tenants/nosuch/plans"):
        resp = requests.get(site["url"] + path, headers=auth)
        assert resp.status_code == 404 and resp.json() == {"error": "Not found"}
    resp = requests.post(site["url"] + "/api/tenants/acme/plans/p-acme/approve", headers=auth,
                         json={"reason": "not mine"})
    assert resp.status_code == 404
    # a viewer reads but may not decide
    token = re.search(r'name="csrf_token" value="([^"]+)"', viewer.get(site["url"] + "/t/acme/plans/p-acme").text)
    resp = viewer.post(site["url"] + "/api/tenants/acme/plans/p-acme/approve", json={"reason": "looks fine"},
                       headers={"X-CSRF-Token": token.group(1)})
    assert resp.status_code == 403 and "not a listed approver" in resp.json()["error"]


# --- 17. the API answers JSON ----------------------------------------------------------------------------


def test_api_errors_are_json(site):
    auth = _basic(APPROVER, PASSWORDS[APPROVER])
    url = site["url"] + "/api/tenants/acme/plans/p-acme"
    unknown = requests.post(url + "/launch", headers=auth, json={"reason": "go"})
    assert unknown.status_code == 404 and "unknown action" in unknown.json()["error"]
    big = requests.post(url + "/approve", headers={**auth, "Content-Type": "application/json"},
                        data=json.dumps({"reason": "x" * (128 * 1024)}))
    assert big.status_code == 413 and big.headers["Content-Type"].startswith("application/json")
    assert big.json()["error"]
    wrong_method = requests.delete(url + "/approve", headers=auth, json={})
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]
    site["users"].write_text("{not json")
    os.chmod(site["users"], 0o600)
    corrupt = requests.get(site["url"] + "/api/tenants/acme/plans", headers=auth)
    assert corrupt.status_code == 500 and "users file" in corrupt.json()["error"]


def test_api_ledger_key_faults_are_json_not_html(site, monkeypatch):
    key = Path(os.environ["WEATHERVANE_MODEL_STORE"]) / "ledger.key"
    assert key.exists()  # the proposals were signed with it
    auth = _basic(APPROVER, PASSWORDS[APPROVER])
    url = site["url"] + "/api/tenants/acme/plans/p-acme/approve"
    for content, mode, expected in (("zz" * 32, 0o600, "hex"), (key.read_text(), 0o644, "0600")):
        original = key.read_text()
        key.write_text(content)
        os.chmod(key, mode)
        resp = requests.post(url, headers=auth, json={"reason": "ok"})
        assert resp.status_code == 500 and resp.headers["Content-Type"].startswith("application/json")
        assert expected in resp.json()["error"]
        key.write_text(original)
        os.chmod(key, 0o600)
    resp = requests.post(url, headers=auth, json={"reason": "ok"})
    assert resp.status_code == 200 and resp.json()["events"][0]["to_status"] == "approved"
