"""API keys and roles: keys held only as SHA-256 hashes, each with a role and an optional expiry."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

ROLES = {
    "officer": {"score"},
    "batch": {"score", "score_batch"},
    "admin": {"score", "score_batch", "reload"},
}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeys:
    """Keys stored only as SHA-256 hashes, each with a role, a short id for the audit log and an
    optional last day of validity."""

    by_hash: dict[str, tuple[str, str, date | None]]  # hash -> (role, key id, valid through)

    @classmethod
    def from_env(cls) -> ApiKeys:
        """`CREDITGUARD_API_KEYS` = 'role:key,role:key:2026-12-31' or `CREDITGUARD_API_KEYS_FILE`
        (one per line); a key with a date is valid through that day (UTC)."""
        text = os.environ.get("CREDITGUARD_API_KEYS", "")
        path = os.environ.get("CREDITGUARD_API_KEYS_FILE")
        if path:
            text += "," + Path(path).read_text().replace("\n", ",")
        by_hash = {}
        for item in filter(None, (t.strip() for t in text.split(","))):
            role, _, rest = item.partition(":")
            key, _, until = rest.partition(":")
            if role not in ROLES or not key:
                raise ValueError(
                    f"API key entries are 'role:key[:YYYY-MM-DD]' with role in {sorted(ROLES)}; "
                    f"got role {role!r}"
                )
            try:
                valid_through = date.fromisoformat(until) if until else None
            except ValueError:
                raise ValueError(
                    f"API key of role {role!r}: expiry {until!r} is not a date (YYYY-MM-DD)"
                ) from None
            digest = hash_key(key)
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
