"""Signed-in sessions kept between commands: one file per environment, readable by its owner only.

The cache lives in the user's cache directory ($PROVENA_OPS_CACHE_DIR, else $XDG_CACHE_HOME/provena-ops,
else ~/.cache/provena-ops), never in the working directory, where it could be committed with playbooks.
A cached session is used only for the realm, client and credential it was made with, so pointing an
environment at another realm, or giving CI another offline token, never reuses the old identity.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

CACHE_DIR_VARIABLE = "PROVENA_OPS_CACHE_DIR"


@dataclass(frozen=True)
class CachedSession:
    environment: str
    realm_url: str
    client_id: str
    method: str
    credential: str  # digest of the offline token or client secret it came from ("" for device sign-ins)
    access_token: str
    refresh_token: str | None = None
    refresh_expires_at: float | None = None

    def matches(self, realm_url: str, client_id: str, method: str, credential: str) -> bool:
        return (self.realm_url, self.client_id, self.method, self.credential) == (
            realm_url,
            client_id,
            method,
            credential,
        )


def credential_digest(secret: str | None) -> str:
    return "" if not secret else "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_VARIABLE)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "provena-ops"


def session_file(environment: str) -> Path:
    """A file name for any environment name: readable where it can be, unique where it cannot."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", environment)[:64]
    if safe != environment:
        safe += "-" + hashlib.sha256(environment.encode()).hexdigest()[:8]
    return cache_dir() / "tokens" / f"{safe}.json"


def load(environment: str) -> CachedSession | None:
    """The cached session, or None when there is none or it cannot be used (damaged, foreign, too open)."""
    return inspect(environment)[0]


def inspect(environment: str) -> tuple[CachedSession | None, str]:
    """The cached session if usable, else None with why not, in words a person can act on."""
    path = session_file(environment)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None, "no cached session"
    except OSError as exc:
        return None, f"the cached session {path} cannot be read: {exc.strerror}"
    if mode & (stat.S_IRWXG | stat.S_IRWXO):  # not trusted, and replaced by the next sign-in
        return None, (
            f"the cached session {path} is ignored: others can read it (mode {stat.S_IMODE(mode):04o}); "
            "signing in again replaces it with one only you can read"
        )
    try:
        session = CachedSession(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None, f"the cached session {path} is damaged and is ignored"
    if session.environment != environment:
        return None, f"the cached session {path} was made for '{session.environment}' and is ignored"
    return session, "cached"


def save(session: CachedSession) -> Path:
    """Written whole or not at all, created 0600 in a 0700 directory (never readable in between)."""
    path = session_file(session.environment)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    write_private(path, json.dumps(asdict(session)))
    return path


def write_private(path: Path, text: str) -> None:
    """A secret-bearing file: created 0600 (never readable by others, even half-written), fsync'd, and
    renamed into place whole. OSError goes to the caller, which knows what the file was for."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(partial, 0o600)  # an existing partial keeps its mode through O_TRUNC
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def remove(environment: str) -> bool:
    try:
        session_file(environment).unlink()
    except FileNotFoundError:
        return False
    return True
