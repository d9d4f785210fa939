"""The approvals page (`weathervane serve`): plans, their evidence and decisions by signed-in people.

Flask is imported only when the application is built, so importing this package stays cheap.
"""
from __future__ import annotations

import ipaddress

DEFAULT_PORT = 3001


def create_app(*args, **kwargs):
    from weathervane.web.app import create_app as _create_app

    return _create_app(*args, **kwargs)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, secure_cookies: bool | None = None,
          **app_kwargs) -> None:
    """Serve the approvals page until interrupted (threaded WSGI server).

    Cookies are marked Secure unless the server listens on loopback only: anywhere else it belongs behind TLS.
    """
    from werkzeug.serving import make_server

    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port {port} is outside 0-65535")
    if secure_cookies is None:
        secure_cookies = not _is_loopback(host)
    app = create_app(secure_cookies=secure_cookies, **app_kwargs)
    server = make_server(host, port, app, threaded=True)
    print(f"Approvals page: http://{'localhost' if _is_loopback(host) else host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def port_number(text: str, allow_zero: bool = False) -> int:
    """An argparse type: a TCP port (1-65535). The OS wraps a larger number onto some other port silently."""
    import argparse

    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside {low}-65535")
    return port


def _cmd_serve(args) -> int:
    secure = True if args.secure_cookies else (False if args.insecure_cookies else None)
    serve(args.host, args.port, secure_cookies=secure, warehouse_path=args.warehouse, landing_root=args.landing,
          reports_dir=args.reports, users_path=args.users_file)
    return 0


def add_serve_cli(subparsers):
    p = subparsers.add_parser("serve", help="serve the approvals page (plans, evidence, sign-in, decisions)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--warehouse", help="DuckDB file (default $WEATHERVANE_WAREHOUSE)")
    p.add_argument("--landing", help="landing root holding tenant.yaml (default $WEATHERVANE_LANDING)")
    p.add_argument("--reports", help="reports folder (default $WEATHERVANE_REPORTS)")
    p.add_argument("--users-file", help="users file (default $WEATHERVANE_USERS or data/users.json)")
    cookies = p.add_mutually_exclusive_group()
    cookies.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (serving over TLS)")
    cookies.add_argument("--insecure-cookies", action="store_true",
                         help="do not mark cookies Secure even on a non-loopback address")
    p.set_defaults(func=_cmd_serve)
    return p
