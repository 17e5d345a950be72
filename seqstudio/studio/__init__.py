"""``seqstudio studio RUN ...``: a local web page to play with trained runs — generate, listen, look, and write
a line in your own hand — served by Uvicorn (an ASGI server) with Starlette routes.

A thin layer over the same library calls as the CLI (``api.generate``, ``api.write_samples``): ``app.py`` (routes),
``jobs.py`` (one queue per model, progress, cancel), ``models.py`` (the served runs; checking requests),
``work.py`` (what a job does), ``page/`` (the page, its script and style sheet: package data, nothing from a
CDN, so it works offline). Starlette and Uvicorn are the optional extra ``studio``; importing this package
imports neither (the CLI imports it only when the command runs).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ConfigError

INSTALL_HINT = "pip install 'seqstudio[studio]' (in a checkout: make install, or pip install -e '.[studio]')"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def require() -> None:
    """One clear line when the web stack is not installed."""
    missing = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"the studio needs {' and '.join(missing)}, which are not installed: {INSTALL_HINT}")


def _check_port(host: str, port: int) -> None:
    """One clear line when the address is taken or cannot be used (before loading any run)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None


def serve(run_dirs: list[Path], host: str = "127.0.0.1", port: int = 8765, announce=print) -> None:
    """Serve ``run_dirs`` on ``host:port`` until interrupted."""
    require()
    if not run_dirs:
        raise ConfigError("give at least one run directory: seqstudio studio RUN [RUN ...]")
    _check_port(host, port)
    import uvicorn

    from .app import create_app

    hosts = None if host in LOOPBACK else ["*"]  # told to listen elsewhere: any Host name reaches it
    app = create_app([Path(p) for p in run_dirs], hosts=hosts)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    announce(f"studio: http://{shown}:{port}/ serving {len(run_dirs)} run(s); Ctrl+C stops it")
    if host not in LOOPBACK:
        announce(f"warning: listening on {host}: anyone who can reach this address can use the studio")
    server.run()
