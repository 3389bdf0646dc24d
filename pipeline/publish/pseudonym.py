"""The pseudonymous customer key: HMAC-SHA256 of the customer id under a configured secret.

BI tables never carry the shop's customer id. The key is stable (the same customer has
the same key every day, so BI can follow a customer over time) and, without the secret,
cannot be turned back into an id by hashing candidate ids. It is computed in DuckDB SQL:
the key's inner and outer pads are bound once, and the macro ``customer_key(id)`` does
``sha256(opad || sha256(ipad || id))``, which is HMAC-SHA256 (RFC 2104).
"""

from __future__ import annotations

import hashlib

import duckdb

from pipeline.config import PublishConfig
from pipeline.errors import ConfigError

_BLOCK = 64  # SHA-256's block size in bytes
KEY_HEX_CHARS = 32  # 128 bits: collisions are negligible for billions of customers


def hmac_pads(secret: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256."""
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def register_customer_key(con: duckdb.DuckDBPyConnection, config: PublishConfig) -> None:
    """The macro ``customer_key(id)``: the pseudonym, or the id itself if so configured.

    Raises:
        ConfigError: pseudonymization is on and no secret is set.
    """
    secret = config.key_secret.get_secret_value().encode("utf-8")
    if config.pseudonymize and not secret:
        raise ConfigError(
            "publish.key_secret is empty: set it (e.g. RFM_PUBLISH__KEY_SECRET) to publish "
            "pseudonymous customer keys, or set publish.pseudonymize = false"
        )
    inner, outer = hmac_pads(secret)
    con.execute(
        "create or replace temp table publish_key as "
        "select $enabled::boolean as enabled, $inner::blob as inner_pad, $outer::blob as outer_pad",
        {"enabled": config.pseudonymize, "inner": inner, "outer": outer},
    )
    hmac = "sha256(k.outer_pad || unhex(sha256(k.inner_pad || encode(id))))"
    con.execute(
        "create or replace temp macro customer_key(id) as ("
        f"select case when k.enabled then left({hmac}, {KEY_HEX_CHARS}) else id end "
        "from publish_key as k)"
    )
