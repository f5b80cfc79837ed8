"""API keys and roles: keys held only as SHA-256 hashes, each with a role and an optional expiry.

Keys come from `CREDITGUARD_API_KEYS` ('role:key,role:key:2026-12-31') and/or the file named by
`CREDITGUARD_API_KEYS_FILE` (one entry a line). They are read at start, again whenever the file
changes (every worker looks at the file's size, time and inode before it checks a key: a key
removed from the file stops working at the next request, on every worker) and on `/reload`; keys
that cannot be read or break the rules are refused (a `/reload` answers 400) and the keys in
force stay. Rules: a known role, a key of at least `MIN_KEY_LENGTH` characters, no key under two
roles, a valid expiry date. No message ever shows a key or any part of an entry that may be one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from features.errors import InputError

ROLES = {
    "officer": {"score", "act"},
    "batch": {"score", "score_batch"},
    "admin": {"score", "score_batch", "reload", "act"},
}
MIN_KEY_LENGTH = 16
log = logging.getLogger("creditguard.auth")


class KeyConfigError(InputError):
    """The configured keys cannot be used; the message says which entry and why (never the key)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeys:
    """Keys stored only as SHA-256 hashes, each with a role, a short id for the audit log and an
    optional last day of validity."""

    by_hash: dict[str, tuple[str, str, date | None]]  # hash -> (role, key id, valid through)

    @classmethod
    def from_env(cls) -> ApiKeys:
        """The keys of `CREDITGUARD_API_KEYS` and `CREDITGUARD_API_KEYS_FILE`, checked."""
        entries = [
            ("CREDITGUARD_API_KEYS", t) for t in _split(os.environ.get("CREDITGUARD_API_KEYS", ""))
        ]
        path = os.environ.get("CREDITGUARD_API_KEYS_FILE")
        if path:
            try:
                text = Path(path).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise KeyConfigError(
                    f"the key file {path} cannot be read ({type(exc).__name__}: {exc.strerror if isinstance(exc, OSError) else exc})"
                ) from None
            entries += [(f"{path} line {i}", t) for i, t in _numbered(text)]
        return cls.parse(entries)

    @classmethod
    def parse(cls, entries: list[tuple[str, str]]) -> ApiKeys:
        """Entries as (where, 'role:key[:YYYY-MM-DD]'); any broken rule is refused, naming where."""
        by_hash: dict[str, tuple[str, str, date | None]] = {}
        for where, item in entries:
            role, _, rest = item.partition(":")
            key, _, until = rest.partition(":")
            if role not in ROLES or not key:
                raise KeyConfigError(
                    f"{where}: API key entries are 'role:key[:YYYY-MM-DD]' with role in "
                    f"{sorted(ROLES)}; this entry has no such role before its key (the entry is "
                    "not shown: it may be a key)"
                )
            if len(key) < MIN_KEY_LENGTH:
                raise KeyConfigError(
                    f"{where}: the {role} key is {len(key)} characters long; keys need at least "
                    f"{MIN_KEY_LENGTH} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
                )
            try:
                valid_through = date.fromisoformat(until) if until else None
            except ValueError:
                raise KeyConfigError(
                    f"{where}: API key of role {role!r}: what follows the key is not an expiry "
                    "date (YYYY-MM-DD; not shown: it may be part of a key)"
                ) from None
            digest = hash_key(key)
            if digest in by_hash and by_hash[digest][0] != role:
                raise KeyConfigError(
                    f"{where}: the same key is given to the roles {by_hash[digest][0]!r} and "
                    f"{role!r}; give each role its own key"
                )
            by_hash[digest] = (role, digest[:12], valid_through)
        return cls(by_hash)

    def check(self, authorization: str | None, action: str) -> tuple[int, str]:
        """(0, key id) when allowed, else (401 or 403, message)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return 401, "missing bearer token (Authorization: Bearer <key>)"
        found = self.by_hash.get(hash_key(authorization[7:].strip()))
        if found is None:
            return 401, "unknown or revoked API key"
        role, key_id, valid_through = found
        if valid_through is not None and datetime.now(UTC).date() > valid_through:
            return 401, f"API key expired on {valid_through.isoformat()}"
        if action not in ROLES[role]:
            return 403, f"role {role!r} may not {action}"
        return 0, key_id


def _signature() -> tuple[int, ...] | None:
    """The key file's inode, size and modification time (None: no file configured; (-1,): it
    cannot be seen): a stat a request, about a microsecond."""
    path = os.environ.get("CREDITGUARD_API_KEYS_FILE")
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (-1,)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _numbered(text: str) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        for item in _split(line):
            if not item.startswith("#"):
                out.append((i, item))
    return out


class KeyRing:
    """The keys in force in this worker: read at start, replaced on `/reload` only when the new
    ones are valid (the HTTP guard and the service read the same ring)."""

    def __init__(self) -> None:
        self._keys: ApiKeys | None = None
        self._seen: tuple[int, ...] | None = None  # the key file as last read (`_signature`)
        self._lock = threading.Lock()

    @property
    def keys(self) -> ApiKeys:
        """The keys in force, read again first when the key file changed since they were read
        (a file that cannot be used leaves them in force, with a warning)."""
        seen = _signature()
        if self._keys is None or seen != self._seen:
            with self._lock:
                if self._keys is None or seen != self._seen:
                    self._seen = seen  # tried once per change, not at every request
                    try:
                        self._keys = ApiKeys.from_env()
                    except KeyConfigError as exc:
                        if self._keys is None:
                            raise
                        log.warning("the key file changed but cannot be used; keys kept: %s", exc)
        assert self._keys is not None
        return self._keys

    def reload(self) -> ApiKeys:
        """Read the keys again; on any error the keys in force stay and `KeyConfigError` says why."""
        seen = _signature()
        fresh = ApiKeys.from_env()
        with self._lock:
            self._keys, self._seen = fresh, seen
        return fresh

    def check(self, authorization: str | None, action: str) -> tuple[int, str]:
        return self.keys.check(authorization, action)


class FailedAuth:
    """Repeated failed authentications from one address are slowed down: after `free` failures
    within `window` seconds, each further one waits twice as long as the one before, from `base`
    up to `cap` seconds. A success in between does not clear the count (a valid key must not
    reset an attacker's backoff); the count starts again once `window` has passed. Memory is
    bounded (`addresses` most recent)."""

    def __init__(
        self,
        *,
        free: int = 5,
        window: float = 60.0,
        base: float = 0.1,
        cap: float = 2.0,
        addresses: int = 10_000,
    ) -> None:
        self.free, self.window, self.base, self.cap = free, window, base, cap
        self.addresses = addresses
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def penalty(self, address: str, now: float | None = None) -> float:
        """Record a failure from `address`; the seconds its answer should wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            first, count = self._seen.pop(address, (now, 0))
            if now - first > self.window:
                first, count = now, 0
            count += 1
            self._seen[address] = (first, count)
            while len(self._seen) > self.addresses:
                self._seen.popitem(last=False)
        over = count - self.free
        return 0.0 if over <= 0 else min(self.cap, self.base * 2 ** (over - 1))
