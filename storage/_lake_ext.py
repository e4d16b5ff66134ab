"""What a lake needs of DuckDB before its configuration is locked: extensions, S3 secret.

Extensions: ``ducklake`` and ``postgres``, and ``httpfs`` for a data path on object storage.

The server's DuckDB instance never downloads or autoloads extensions (user SQL reaches it),
so the lake backend loads them explicitly, once, before the configuration is locked. Each
extension comes from one of two places:

* the ``jobtrail[lake]`` extra: the ``duckdb-extension-ducklake``,
  ``duckdb-extension-postgres`` and ``duckdb-extension-httpfs`` wheels carry the extension
  files built for one duckdb release; they are installed into DuckDB's extension directory
  from the wheel (no network);
* DuckDB's own ``INSTALL ducklake; INSTALL postgres; INSTALL httpfs;`` run once with network
  access (for a duckdb release the wheels do not cover), which this module then only
  ``LOAD``\\ s.

Object storage: :func:`s3_secret_sql` turns :class:`S3Settings` (the config's
``exporters.duckdb.lake.s3``, each unset field falling back to the AWS SDK's standard
``AWS_*`` variable) into one temporary DuckDB secret scoped to the lake's data path.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

#: Extension name -> the Python package that ships its file (the ``lake`` extra).
PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres": "duckdb_extension_postgres",
    "httpfs": "duckdb_extension_httpfs",  # only for a data_path on object storage
}
#: The duckdb release those wheels are built for (they pin it).
WHEEL_DUCKDB = "1.5.5"


class LakeExtensionError(RuntimeError):
    """A DuckDB extension the lake needs cannot be loaded; the message says how to get it."""


def packaged_extension(name: str) -> Path | None:
    """The extension file shipped in a wheel for the running duckdb, or None."""
    package = PACKAGES.get(name)
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}"
    path = path / f"{name}.duckdb_extension"
    return path if path.is_file() else None


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load ``name``; when it is not installed yet, install it from its wheel first.

    Raises:
        LakeExtensionError: Neither the wheel nor an earlier ``INSTALL`` provides it.
    """
    try:
        con.execute(f"LOAD {name}")  # installed before (by an earlier start, or INSTALL)
        return
    except duckdb.Error:
        pass
    path = packaged_extension(name)
    try:
        if path is not None:
            quoted = str(path).replace("'", "''")
            con.execute(f"INSTALL '{quoted}'")  # a copy into the extension directory, once
        con.execute(f"LOAD {name}")
    except duckdb.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = (
            f"install the offline wheels with `pip install 'jobtrail[lake]'` (built for duckdb "
            f"{WHEEL_DUCKDB}) or run `INSTALL {name};` once in duckdb "
            f"{duckdb.__version__} with network access"
            if name in PACKAGES
            else f"run `INSTALL {name};` once in duckdb {duckdb.__version__} with network access"
        )
        raise LakeExtensionError(
            f"DuckDB extension {name!r} cannot be loaded ({first}); {hint}"
        ) from exc


#: Data-path schemes the S3 secret applies to (DuckDB's S3 file system serves them all).
S3_SCHEMES = ("s3://", "s3a://", "s3n://")
_URL_STYLES = frozenset({"path", "vhost"})
_SCHEME = re.compile(r"^(https?)://", re.I)


@dataclass(frozen=True, slots=True)
class S3Settings:
    """How a lake on ``s3://`` reaches its bucket; ``None`` means "from the environment".

    Each field falls back to the variable the AWS SDKs and CLI read, so a machine set up for
    ``aws s3 ls`` needs no lake-specific credentials; MinIO and other S3-compatible servers
    need an ``endpoint`` (path-style URLs are then the default, as those servers expect).

    Args:
        endpoint: ``host:port`` or a URL (``http://minio:9000``: the scheme sets ``use_ssl``);
            else ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``; else AWS itself.
        region: Else ``AWS_REGION``, ``AWS_DEFAULT_REGION``; else DuckDB's ``us-east-1``.
        url_style: ``path`` or ``vhost``; default ``path`` with an endpoint, else ``vhost``.
        use_ssl: Default: ``False`` for an ``http://`` endpoint, else ``True``.
        key_id: With ``secret`` (and ``session_token``): the credentials. When neither is
            set, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``;
            with none at all, requests are unsigned (a public bucket).
        secret: The secret access key that goes with ``key_id``.
        session_token: For temporary credentials, with ``key_id`` and ``secret``.
    """

    endpoint: str | None = None
    region: str | None = None
    url_style: str | None = None
    use_ssl: bool | None = None
    key_id: str | None = None
    secret: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.url_style is not None and self.url_style not in _URL_STYLES:
            raise ValueError(f"lake s3.url_style: expected path or vhost, got {self.url_style!r}")
        if self.endpoint is not None and not self.endpoint.strip():
            raise ValueError("lake s3.endpoint: expected host:port or a URL")


def s3_secret_sql(
    settings: S3Settings, scope: str, environ: Mapping[str, str] | None = None
) -> str:
    """``CREATE SECRET`` for ``settings``, valid for URLs under ``scope`` only.

    Raises:
        ValueError: Only one of the key id and the secret is given.
    """
    env = os.environ if environ is None else environ

    def pick(value: str | None, *names: str) -> str | None:
        return value or next((env[n] for n in names if env.get(n)), None)

    # Credentials come as a set from one place: the settings, else the environment.
    if settings.key_id or settings.secret:
        key_id, secret, token = settings.key_id, settings.secret, settings.session_token
    else:
        key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        token = env.get("AWS_SESSION_TOKEN")
    if bool(key_id) != bool(secret):
        raise ValueError(
            "lake s3: key_id and secret go together (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY); give both, or neither for unsigned requests"
        )
    endpoint = pick(settings.endpoint, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    use_ssl = settings.use_ssl
    if endpoint:
        scheme = _SCHEME.match(endpoint.strip())
        if scheme and use_ssl is None:
            use_ssl = scheme.group(1).lower() == "https"
        endpoint = _SCHEME.sub("", endpoint.strip()).rstrip("/")
    options: list[tuple[str, str | None]] = [
        ("KEY_ID", key_id),
        ("SECRET", secret),
        ("SESSION_TOKEN", token if key_id else None),
        ("REGION", pick(settings.region, "AWS_REGION", "AWS_DEFAULT_REGION")),
        ("ENDPOINT", endpoint),
        ("URL_STYLE", settings.url_style or ("path" if endpoint else None)),
        ("SCOPE", scope),
    ]
    parts = ["TYPE s3"] + [f"{name} {_literal(value)}" for name, value in options if value]
    if use_ssl is not None:
        parts.append(f"USE_SSL {'true' if use_ssl else 'false'}")
    return f"CREATE SECRET jobtrail_lake ({', '.join(parts)})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
