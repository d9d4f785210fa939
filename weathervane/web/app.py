"""The approvals page: Flask routes over the governance functions the CLI uses.

The warehouse is opened per request (read-only to read) and closed before the response: pipelines write it
beside this server and DuckDB allows one writer. Within this process one lock serialises warehouse access,
since DuckDB refuses a read-only and a read-write connection to the same file in one process.
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
from werkzeug.exceptions import HTTPException
from flask import (
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from weathervane import config
from weathervane.governance.cli import ACTIONS
from weathervane.governance.events import (
    TRANSITIONS,
    GovernanceError,
    approval_required,
    IllegalTransition,
    PlanNotFound,
    transition,
    verify_chain,
)
from weathervane.governance.identity import IdentityError, UserStore
from weathervane.governance.ledger import LedgerKeyError
from weathervane.warehouse import is_folder, tenant_files
from weathervane.web import queries
from weathervane.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    SessionStore,
    Throttle,
    csrf_ok,
    new_csrf_token,
)

ACTION_LABELS = {"approve": "Approve", "reject": "Reject", "apply": "Apply", "rollback": "Roll back"}
MAX_REASON = 2000
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'")
# The plan report is a file from the reports folder: shown framed, with no script and nothing fetched.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"


class ReasonRequired(GovernanceError):
    """A decision without a usable reason (refused before the warehouse is touched)."""


class WarehouseMissing(RuntimeError):
    pass


class WarehouseBusy(RuntimeError):
    pass


@dataclass
class Settings:
    warehouse: Path
    landing: Path
    reports: Path
    users: UserStore
    sessions: SessionStore
    throttle: Throttle
    lock_wait_s: float
    lock: threading.Lock


def _settings() -> Settings:
    return current_app.extensions["weathervane"]


@contextmanager
def warehouse(tenant_id: str | None = None, write: bool = False):
    """A connection for this request only; read-only unless writing. With a tenant, the file that holds it (its
    own file in a folder warehouse, which then reaches no other tenant's file)."""
    from weathervane.warehouse import connect, connect_tenant, tenant_path

    s = _settings()
    with s.lock:
        path = s.warehouse if tenant_id is None else tenant_path(s.warehouse, tenant_id)
        if not path.exists():
            raise WarehouseMissing(str(path))
        try:
            con = connect(path, read_only=not write, lock_wait_s=s.lock_wait_s) if tenant_id is None else \
                connect_tenant(s.warehouse, tenant_id, read_only=not write, lock_wait_s=s.lock_wait_s)
        except duckdb.IOException as exc:
            raise WarehouseBusy(str(exc).splitlines()[0]) from exc
        try:
            yield con
        finally:
            con.close()


def _tenant(tenant_id: str) -> str:
    try:
        return config.validate_tenant_id(tenant_id)
    except config.InvalidTenantId:
        abort(404)


def _cfg(tenant_id: str) -> config.TenantConfig:
    return config.load_tenant_config(_settings().landing, tenant_id)


def is_member(cfg: config.TenantConfig, user_id: str | None) -> bool:
    """Whether tenant.yaml names this person as an approver, applier or viewer of the tenant."""
    if not user_id:
        return False
    people = {p.strip().lower() for p in (*cfg.autopilot.approvers, *cfg.autopilot.appliers,
                                          *cfg.autopilot.viewers)}
    return user_id.strip().lower() in people


def _visible(tenant_id: str) -> tuple[str, config.TenantConfig]:
    """The tenant id and its settings when the signed-in person is one of its people; 404 otherwise, the same
    answer as for a tenant that does not exist. A tenant.yaml that cannot be read names no one."""
    tenant_id = _tenant(tenant_id)
    try:
        cfg = _cfg(tenant_id)
    except config.TenantConfigError as exc:
        current_app.logger.warning("tenant %s hidden: %s", tenant_id, exc)
        abort(404)
    if not is_member(cfg, g.get("user")):
        abort(404)
    g.currency = cfg.currency  # the money filters show this tenant's currency
    return tenant_id, cfg


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _basic_auth_user():
    """The person named by an `Authorization: Basic` header with their password or token, else None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    s = _settings()
    keys = (_user_key(user_id), f"addr:{request.remote_addr}")
    if s.throttle.blocked(*keys):
        abort(429)
    user = s.users.authenticate(user_id, secret)
    if user is None:
        s.throttle.fail(*keys)
    return user


def _user_key(user_id: str) -> str:
    """The throttle key of a sign-in name, normalised as the users file matches it: " User@x\t" is user@x."""
    return f"user:{user_id.strip().lower()}"


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is None:
            if _is_api():
                return jsonify(error="sign in first (session cookie or HTTP Basic credentials)"), 401
            if g.get("expired"):
                flash("Your session expired: sign in again.", "error")
            return redirect(url_for("login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapped


def _safe_next(target: str | None) -> str:
    """A path on this site to return to after signing in, else the tenants page.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so `/\t/evil.example` would leave
    the site: any control character, space or backslash refuses the target, as does anything with a host."""
    if not target or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target) or "\\" in target:
        return url_for("tenants")
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return url_for("tenants")
    return target


def _roles(cfg: config.TenantConfig, user_id: str | None) -> dict[str, bool]:
    """What tenant.yaml lets this person do (shown on the page; the governance rules decide on submit)."""
    from weathervane.governance.events import is_applier, is_approver

    uid = user_id or ""
    return {
        "approve": bool(uid) and is_approver(uid, cfg),
        "reject": bool(uid) and is_approver(uid, cfg),
        "apply": bool(uid) and is_applier(uid, cfg),
        "rollback": bool(uid) and is_applier(uid, cfg),
    }


def _actions(status: str | None, cfg: config.TenantConfig, user_id: str | None,
             approval_needed: bool = True) -> list[dict]:
    allowed = set(TRANSITIONS.get(status, frozenset()))
    if status == "proposed" and not approval_needed:
        allowed.add("applied")
    roles = _roles(cfg, user_id)
    out = []
    for action, to_status in ACTIONS.items():
        if to_status not in allowed:
            continue
        role = "approvers" if action in ("approve", "reject") else "appliers"
        why = None if roles[action] else f"you are not in tenant.yaml autopilot.{role}"
        out.append({"action": action, "label": ACTION_LABELS[action], "to_status": to_status, "why_not": why})
    return out


def _gate(cfg: config.TenantConfig, con, tenant_id: str) -> queries.GateView:
    """tenant.yaml's roles and the rollout gate's state (mode in force, evidence, why a promotion waits)."""
    from weathervane.governance.autopilot import gate_state

    url = cfg.autopilot.webhook_url
    view = queries.GateView(
        mode=cfg.autopilot.mode, requires_approval=cfg.autopilot.requires_approval,
        approvers=list(cfg.autopilot.approvers), appliers=list(cfg.autopilot.appliers),
        webhook_host=urlsplit(url).hostname if url else None,
        verdicts=queries.audit_verdicts(con, tenant_id),
    )
    try:
        state = gate_state(con, tenant_id, cfg)
    except duckdb.Error as exc:
        view.lines.append(f"gate state unavailable: {str(exc).splitlines()[0]}")
        return view
    view.mode = state.effective
    view.configured = state.configured
    view.lines.append(state.describe())
    view.evidence = state.evidence
    return view


def decide(tenant_id: str, plan_id: str, action: str, user_id: str, reason: str):
    """One decision through `governance.events.transition`, as the signed-in person; returns the events and
    the notifications written for them (with their delivery outcome)."""
    if action not in ACTIONS:
        raise IllegalTransition(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("a reason is required: it is recorded in the ledger with your decision")
    if len(reason) > MAX_REASON:
        raise ReasonRequired(f"the reason has {len(reason)} characters; at most {MAX_REASON}")
    from weathervane.governance.outbox import deliver_outbox

    s = _settings()
    cfg = _cfg(tenant_id)
    with warehouse(tenant_id, write=True) as con:
        # transition refuses a plan of another tenant (PlanNotFound) and every rule of the lifecycle
        events = transition(con, plan_id, ACTIONS[action], user_id, reason, cfg, tenant_id=tenant_id,
                            deliver=False)
    # Webhooks are posted while no DuckDB connection is open (pipelines may write meanwhile); this server's own
    # requests wait on its lock, since deliver_outbox opens read-write connections of its own.
    with s.lock:
        try:
            deliver_outbox(tenant_id, s.warehouse, cfg, lock_wait_s=s.lock_wait_s)
        except duckdb.Error as exc:  # left pending: `weathervane plans notify` posts it later
            current_app.logger.warning("notifications of %s not posted yet: %s", plan_id, exc)
    with warehouse(tenant_id) as con:
        notes = queries.notifications_for(con, [e.event_id for e in events])
    return events, notes


def _status_of(exc: GovernanceError) -> int:
    if isinstance(exc, PlanNotFound):
        return 404
    if isinstance(exc, IllegalTransition):
        return 409
    if isinstance(exc, ReasonRequired):
        return 400
    return 403


def create_app(warehouse_path=None, landing_root=None, reports_dir=None, secret_key=None, users_path=None, *,
               session_lifetime_s: float = 8 * 3600, secure_cookies: bool = False,
               lock_wait_s: float = 10.0) -> Flask:
    """The approvals application. Paths default to the Weathervane settings ($WEATHERVANE_*); the users file to
    $WEATHERVANE_USERS or data/users.json; the secret key to $WEATHERVANE_WEB_SECRET or a random one (sessions
    then end when the server restarts)."""
    here = Path(__file__).resolve().parent
    app = Flask(__name__, template_folder=str(here / "templates"), static_folder=str(here / "static"))
    app.config.update(
        SECRET_KEY=secret_key or os.environ.get("WEATHERVANE_WEB_SECRET") or secrets.token_hex(32),
        SESSION_COOKIE_NAME="weathervane_session",
        SESSION_COOKIE_HTTPONLY=True,
        # Lax: a link from a notification opens the page signed in; cross-site posts carry no cookie
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(secure_cookies),
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=session_lifetime_s),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["weathervane"] = Settings(
        warehouse=Path(warehouse_path) if warehouse_path else config.warehouse_path(),
        landing=Path(landing_root) if landing_root else config.landing_root(),
        reports=Path(reports_dir) if reports_dir else config.reports_dir(),
        users=UserStore(users_path),
        sessions=SessionStore(session_lifetime_s),
        throttle=Throttle(),
        lock_wait_s=lock_wait_s,
        lock=threading.Lock(),
    )
    _register(app)
    return app


def _register(app: Flask) -> None:
    from weathervane.web import formatting

    formatting.install(app)

    @app.before_request
    def _identify_and_check_csrf():
        s = _settings()
        g.user, g.expired, g.via_basic = None, False, False
        sid = session.get("sid")
        if sid:
            live = s.sessions.get(sid)
            user = s.users.get(live.user_id) if live else None
            if live is None or user is None or user.fingerprint != live.fingerprint:
                s.sessions.close(sid)
                session.pop("sid", None)
                g.expired = True
            else:
                g.user = user.user_id
        if "csrf" not in session and request.method in SAFE_METHODS:
            # only pages hand out a token: a refused cross-site post must not replace the visitor's cookie
            session["csrf"] = new_csrf_token()
        if _is_api() and g.user is None and "Authorization" in request.headers:
            user = _basic_auth_user()
            if user is None:
                return jsonify(error="unknown user or wrong password or token"), 401
            g.user, g.via_basic = user.user_id, True
        if request.method in SAFE_METHODS or request.endpoint == "static":
            return None
        origin = request.headers.get("Origin")
        # host only: behind a TLS proxy the browser's scheme differs from the one this server sees
        if origin and urlsplit(origin).netloc != request.host:
            return _refuse_forgery(f"request from another origin ({origin})")
        if g.via_basic:
            # credentials sent with the request itself cannot be forged by another site; JSON bodies need CORS
            if not request.is_json:
                return jsonify(error="send a JSON body (Content-Type: application/json)"), 415
            return None
        given = request.headers.get(CSRF_HEADER) if _is_api() else request.form.get(CSRF_FIELD)
        if not csrf_ok(session.get("csrf"), given):
            return _refuse_forgery("missing or wrong CSRF token")
        return None

    def _refuse_forgery(why: str):
        app.logger.warning("refused %s %s: %s", request.method, request.path, why)
        if _is_api():
            return jsonify(error=f"refused: {why}"), 403
        return render_template("error.html", title="Request refused",
                               message=f"Refused: {why}. Reload the page and try again."), 403

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "static":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.context_processor
    def _globals():
        return {"user": g.get("user"), "csrf_token": session.get("csrf", ""), "csrf_field": CSRF_FIELD}

    @app.errorhandler(WarehouseMissing)
    def _no_warehouse(exc):
        msg = f"No warehouse at {exc}: run the pipeline first (make demo)."
        if _is_api():
            return jsonify(error=msg), 503
        return render_template("error.html", title="No warehouse yet", message=msg), 503

    @app.errorhandler(WarehouseBusy)
    def _busy(exc):
        msg = f"The warehouse is busy (a pipeline is writing it): {exc}. Try again in a moment."
        if _is_api():
            return jsonify(error=msg), 503
        return render_template("error.html", title="Warehouse busy", message=msg), 503

    @app.errorhandler(config.TenantConfigError)
    def _bad_config(exc):
        if _is_api():
            return jsonify(error=str(exc)), 500
        return render_template("error.html", title="tenant.yaml needs fixing", message=str(exc)), 500

    @app.errorhandler(IdentityError)
    def _bad_users(exc):
        app.logger.error("users file: %s", exc)
        if _is_api():
            return jsonify(error=f"the users file needs fixing: {exc}"), 500
        return render_template("error.html", title="Users file needs fixing", message=str(exc)), 500

    @app.errorhandler(LedgerKeyError)
    def _bad_key(exc):
        app.logger.error("ledger key: %s", exc)
        if _is_api():
            return jsonify(error=f"the ledger key needs fixing: {exc}"), 500
        return render_template("error.html", title="Ledger key needs fixing", message=str(exc)), 500

    titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large", 429: "Too many attempts"}

    @app.errorhandler(HTTPException)
    def _http_error(exc):
        # every answer under /api/ is JSON, errors included
        title = titles.get(exc.code, exc.name)
        if _is_api():
            return jsonify(error=title), exc.code
        return render_template("error.html", title=title, message=""), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc):
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        if _is_api():
            return jsonify(error="internal error (logged on the server)"), 500
        return render_template("error.html", title="Something went wrong",
                               message="The error was logged on the server."), 500

    # ---- sign in / out ----

    @app.get("/login")
    def login():
        if g.user is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("login.html", next=request.args.get("next", ""))

    @app.post("/login")
    def login_post():
        s = _settings()
        user_id = (request.form.get("user") or "").strip().lower()
        keys = (_user_key(user_id), f"addr:{request.remote_addr}")
        if s.throttle.blocked(*keys):
            flash("Too many failed sign-ins: wait a few minutes.", "error")
            return render_template("login.html", next=request.form.get("next", "")), 429
        user = s.users.authenticate(user_id, request.form.get("password") or "")
        if user is None:
            s.throttle.fail(*keys)
            flash("Unknown user or wrong password.", "error")
            return render_template("login.html", next=request.form.get("next", "")), 401
        s.throttle.clear(keys[0])  # the address keeps its count: one good account must not reset guessing
        session.clear()
        session.permanent = True
        session["sid"] = s.sessions.open(user.user_id, user.fingerprint)
        session["csrf"] = new_csrf_token()
        app.logger.info("signed in: %s", user.user_id)
        return redirect(_safe_next(request.form.get("next")), code=303)

    @app.post("/logout")
    def logout():
        _settings().sessions.close(session.get("sid"))
        session.clear()
        flash("Signed out.", "info")
        return redirect(url_for("login"), code=303)

    # ---- pages ----

    @app.get("/")
    @login_required
    def tenants():
        s = _settings()
        rows = []
        files = tenant_files(s.warehouse) if is_folder(s.warehouse) else None
        con_ctx = warehouse() if files is None and s.warehouse.exists() else None
        if files is not None:  # a folder warehouse: each tenant's own file, read-only, one at a time
            for t in sorted(set(queries.tenant_ids(None, s.landing)) | set(files)):
                if t in files:
                    with warehouse(t) as con:
                        rows.append({"tenant_id": t, **queries.tenant_overview(con, t)})
                else:
                    rows.append({"tenant_id": t, **queries.tenant_overview(None, t), "mode": None})
        elif con_ctx is None:
            ids = queries.tenant_ids(None, s.landing)
            rows = [{"tenant_id": t, **queries.tenant_overview(None, t), "mode": None} for t in ids]
        else:
            with con_ctx as con:
                for t in queries.tenant_ids(con, s.landing):
                    rows.append({"tenant_id": t, **queries.tenant_overview(con, t)})
        shown = []
        for r in rows:
            try:
                cfg = _cfg(r["tenant_id"])
            except config.TenantConfigError as exc:  # names no one, so no one sees it here
                app.logger.warning("tenant %s hidden: %s", r["tenant_id"], exc)
                continue
            if not is_member(cfg, g.user):
                continue
            r["mode"] = getattr(cfg.autopilot, "mode", None)
            r["requires_approval"] = cfg.autopilot.requires_approval
            r["config_error"] = None
            shown.append(r)
        return render_template("tenants.html", tenants=shown, warehouse=s.warehouse)

    @app.get("/t/<tenant_id>")
    @login_required
    def tenant(tenant_id):
        tenant_id, cfg = _visible(tenant_id)
        with warehouse(tenant_id) as con:
            plans = queries.plans(con, tenant_id)
            gate = _gate(cfg, con, tenant_id)
        if not plans and not (_settings().landing / tenant_id).is_dir():
            abort(404)
        return render_template("tenant.html", tenant_id=tenant_id, plans=plans, gate=gate)

    @app.get("/t/<tenant_id>/plans/<plan_id>")
    @login_required
    def plan(tenant_id, plan_id):
        tenant_id, cfg = _visible(tenant_id)
        with warehouse(tenant_id) as con:
            p = queries.plan(con, tenant_id, plan_id)
            if p is None:
                abort(404)
            lines = queries.plan_lines(con, plan_id)
            events = queries.events_with_notifications(con, tenant_id, plan_id)
            model = queries.model_evidence(con, tenant_id, p.get("model_id"))
            audits = queries.causal_audits(con, tenant_id, plan_id)
            replay = queries.policy_replay(con, tenant_id)
            gate = _gate(cfg, con, tenant_id)
            # the rollout gate decides, not tenant.yaml's flag alone
            approval_needed = approval_required(con, tenant_id, cfg)
        return render_template(
            "plan.html", tenant_id=tenant_id, p=p, lines=lines, events=events, model=model, audits=audits,
            replay=replay, gate=gate, binding=queries.binding_summary(p, lines),
            actions=_actions(p["status"], cfg, g.user, approval_needed), has_report=_report_file(p) is not None,
            max_reason=MAX_REASON,
        )

    @app.post("/t/<tenant_id>/plans/<plan_id>/decide")
    @login_required
    def decide_form(tenant_id, plan_id):
        tenant_id, _ = _visible(tenant_id)
        action = request.form.get("action", "")
        back = url_for("plan", tenant_id=tenant_id, plan_id=plan_id)
        try:
            events, notes = decide(tenant_id, plan_id, action, g.user, request.form.get("reason", ""))
        except PlanNotFound:
            abort(404)
        except GovernanceError as exc:
            app.logger.info("refused %s of %s by %s: %s", action, plan_id, g.user, exc)
            flash(f"Refused: {exc}", "error")
            return redirect(back, code=303)
        for ev in events:
            flash(f"Plan {ev.plan_id}: {ev.from_status} → {ev.to_status} by {ev.actor} (ledger event {ev.seq}).",
                  "ok")
        for n in notes:
            outcome = n["delivery_status"] + (f" ({n['delivery_error']})" if n.get("delivery_error") else "")
            flash(f"Notified {', '.join(n['recipients_list']) or 'no one'}: “{n['subject']}” — webhook {outcome}.",
                  "ok" if n["delivery_status"] in ("delivered", "no_webhook") else "error")
        return redirect(back, code=303)

    def _report_file(p: dict) -> Path | None:
        raw = p.get("report_path")
        if not raw:
            return None
        root = _settings().reports.resolve()
        path = Path(raw)
        path = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    @app.get("/t/<tenant_id>/plans/<plan_id>/report")
    @login_required
    def plan_report(tenant_id, plan_id):
        tenant_id, _ = _visible(tenant_id)
        with warehouse(tenant_id) as con:
            p = queries.plan(con, tenant_id, plan_id)
        path = _report_file(p) if p else None
        if path is None:
            abort(404)
        resp = send_file(path, mimetype="text/html", max_age=0)
        resp.headers["Content-Security-Policy"] = REPORT_CSP
        resp.headers["X-Frame-Options"] = "SAMEORIGIN"
        return resp

    @app.get("/t/<tenant_id>/ledger")
    @login_required
    def ledger(tenant_id):
        tenant_id, cfg = _visible(tenant_id)
        with warehouse(tenant_id) as con:
            events = queries.events_with_notifications(con, tenant_id)
            gate = _gate(cfg, con, tenant_id)
            report = verify_chain(con, tenant_id, cfg) if events else None
        return render_template("ledger.html", tenant_id=tenant_id, events=events, report=report, gate=gate)

    @app.get("/favicon.ico")
    def favicon():
        return "", 204

    # ---- JSON API: the same decisions for scripts (session + X-CSRF-Token header, or HTTP Basic) ----

    @app.get("/api/tenants/<tenant_id>/plans")
    @login_required
    def api_plans(tenant_id):
        tenant_id, _ = _visible(tenant_id)
        with warehouse(tenant_id) as con:
            rows = queries.plans(con, tenant_id)
        keep = ("plan_id", "status", "created_at", "horizon_start", "horizon_end", "total_budget",
                "expected_kpi_mean", "expected_kpi_p05", "expected_kpi_p95", "baseline_kpi_mean", "prob_better")
        return jsonify(plans=[{k: (str(r[k]) if hasattr(r.get(k), "isoformat") else r.get(k)) for k in keep}
                              for r in rows])

    @app.post("/api/tenants/<tenant_id>/plans/<plan_id>/<action>")
    @login_required
    def api_decide(tenant_id, plan_id, action):
        tenant_id, _ = _visible(tenant_id)
        if action not in ACTIONS:  # no such resource: not a conflict with the plan's state
            return jsonify(error=f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}"), 404
        body = request.get_json(silent=True) if request.is_json else None
        reason = body.get("reason") if isinstance(body, dict) else request.form.get("reason")
        try:
            events, notes = decide(tenant_id, plan_id, action, g.user, reason if isinstance(reason, str) else "")
        except GovernanceError as exc:
            return jsonify(error=f"refused: {exc}"), _status_of(exc)
        return jsonify(
            events=[{"seq": e.seq, "event_id": e.event_id, "plan_id": e.plan_id, "from_status": e.from_status,
                     "to_status": e.to_status, "actor": e.actor, "reason": e.reason} for e in events],
            notifications=[{"kind": n["kind"], "recipients": n["recipients_list"],
                            "delivery_status": n["delivery_status"], "delivery_error": n.get("delivery_error")}
                           for n in notes],
        )
