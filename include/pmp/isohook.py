"""One base for the HTTP ISO hooks: what every ISO hook would otherwise repeat.

:class:`IsoHttpHook` (an Airflow ``BaseHook``) holds the connection lookup, the connection's extras
parsed by *declared* name, type and default (:class:`Extra`), secret masking, the ``requests``
session, base-URL handling, pacing through :mod:`pmp.http`, and the UI form defaults
(``get_ui_field_behaviour``). An ISO hook declares::

    class FooHook(IsoHttpHook):
        conn_name_attr = "foo_conn_id"
        default_conn_name = "foo_default"
        conn_type = "foo"
        hook_name = "Foo (public API)"
        extras = (Extra("api_base_url", str, "https://api.foo.org", show=True),
                  Extra("requests_per_minute", float, 60.0))

        def configure(self) -> dict[str, Any]:   # the hook's own settings, built once
            return {"api": self.base_url("api_base_url"), "pacer": self.per_minute("requests_per_minute")}

The hook class also declares what ``airflow_settings.yaml`` holds for it on local defaults
(:attr:`IsoHttpHook.local`, pointed at ``pmp simulate``) and the Airflow pools its API needs
(:attr:`IsoHttpHook.pools`): ``pmp.local_settings`` writes them into the file, so a new ISO is new
files only. :func:`iso_hook_classes` finds every ISO hook (the provider's connection types).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from pmp.connections import mask
from pmp.http import Pacer, SharedPacer, new_session
from pmp.validate import InputError, redact_url, suggestion, unknown

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Extra:
    """One declared field of a connection's ``extra`` JSON.

    ``type`` is ``str``, ``int``, ``float`` or ``bool``; a missing, null or empty value is the
    ``default``. ``secret`` values are registered with the secrets masker (and never shown in
    errors). ``show`` puts the field in the UI's placeholder (with ``example`` instead of the
    default when given). A value must be one of ``choices`` when given, within ``minimum`` ..
    ``maximum``, and a field named ``*_url`` an URL of one of ``url_schemes`` (http, https).

    Keys the hook does not declare are errors (a misspelt key would silently keep the default)."""

    name: str
    type: type
    default: Any = None
    secret: bool = False
    show: bool = False
    example: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    url_schemes: tuple[str, ...] = ("http", "https")


@dataclass(frozen=True)
class LocalConnection:
    """The connection ``airflow_settings.yaml`` declares on local defaults (the simulator).

    String extras may contain ``{sim}``: the simulator's base URL (``http://127.0.0.1:58080``)."""

    comment: str = ""
    login: str | None = None
    password: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ConnectionExtraError(InputError):
    """A connection's extra that is not valid JSON, has a key the hook does not declare, or a value
    that does not parse as its declared type (names connection, field and what is accepted)."""


_TYPE_WORDS = {str: "text", int: "whole number", float: "number", bool: "true or false"}


def _typed(spec: Extra, value: Any) -> Any:
    """``value`` as ``spec.type``, or ``ValueError``."""
    if spec.type is str:
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)
    if spec.type is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise ValueError
    return spec.type(value)


def parse_extra(spec: Extra, value: Any, conn_id: str) -> Any:
    """One declared extra, parsed and checked (``ConnectionExtraError`` naming it otherwise)."""
    if value is None or (isinstance(value, str) and not value.strip() and spec.type is not str) or value == "":
        return spec.default
    shown = "(value not shown: it is a secret)" if spec.secret else repr(value)
    where = f"connection {conn_id!r}: extra.{spec.name}"
    try:
        parsed = _typed(spec, value)
    except (TypeError, ValueError):
        article = "" if spec.type is bool else "an " if _TYPE_WORDS[spec.type][0] in "aeiou" else "a "
        raise ConnectionExtraError(f"{where} must be {article}{_TYPE_WORDS[spec.type]} "
                                   f"({spec.type.__name__}), not {shown}") from None
    if spec.choices and str(parsed).lower() in spec.choices:
        parsed = str(parsed).lower()
    elif spec.choices:
        raise ConnectionExtraError(f"{where} must be one of {', '.join(spec.choices)}, not {shown}"
                                   + ("" if spec.secret else suggestion(parsed, spec.choices)))
    if (spec.minimum is not None and parsed < spec.minimum) or (spec.maximum is not None and parsed > spec.maximum):
        bounds = " .. ".join(f"{b:g}" if b is not None else "" for b in (spec.minimum, spec.maximum))
        raise ConnectionExtraError(f"{where} must be within {bounds.strip()}, not {shown}")
    if spec.name.endswith("_url") and spec.type is str:
        parts = urlsplit(parsed)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            parts = parts._replace(netloc="")
        if parts.scheme not in spec.url_schemes or not parts.hostname:
            url = "(value not shown: it is a secret)" if spec.secret else repr(redact_url(parsed))
            raise ConnectionExtraError(f"{where} must be a URL {' or '.join(s + '://host[:port]/…' for s in spec.url_schemes)}"
                                       f", not {url}")
    return parsed


def extra_problems(extras: tuple[Extra, ...], conn_id: str, raw: Any) -> tuple[dict[str, Any], list[str]]:
    """A connection's ``extra`` (its JSON text, or the parsed object) checked against the declared
    ``extras``: the parsed values (defaults where a value is bad) and one sentence per problem
    (malformed JSON, not an object, an undeclared key with the closest declared one, a bad value)."""
    problems: list[str] = []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            problems.append(f"connection {conn_id!r}: extra is not valid JSON ({exc.msg} at line {exc.lineno} "
                            f"column {exc.colno})")
            raw = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"connection {conn_id!r}: extra must be a JSON object, not {type(raw).__name__}")
        raw = {}
    declared = [e.name for e in extras]
    for key in raw:
        if key not in declared:
            problems.append(str(unknown("extra", key, declared, where=f" in connection {conn_id!r}")))
    parsed = {}
    for e in extras:
        try:
            parsed[e.name] = parse_extra(e, raw.get(e.name), conn_id)
        except ConnectionExtraError as exc:
            problems.append(str(exc))
            parsed[e.name] = e.default
    return parsed, problems


class IsoHttpHook(BaseHook):
    """Base of every HTTP ISO hook (see the module docstring)."""

    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    summary: ClassVar[str] = ""  # one line for README's connections table
    extras: ClassVar[tuple[Extra, ...]] = ()
    hidden_fields: ClassVar[tuple[str, ...]] = ("schema", "port", "host")
    relabeling: ClassVar[Mapping[str, str]] = {}
    local: ClassVar[LocalConnection] = LocalConnection()
    pools: ClassVar[Mapping[str, tuple[int, str]]] = {}  # pool name -> (slots, description)
    # pool name -> slots of its real-time pool, where they differ from the history pool's: several
    # small real-time runs of an ISO at one tick overlap their start-up, parsing and loading while
    # the shared pacer still sends their requests one at a time at the ISO's rate
    realtime_slots: ClassVar[Mapping[str, int]] = {}

    @classmethod
    def all_pools(cls) -> dict[str, tuple[int, str]]:
        """:attr:`pools` and, for each, the pool of the ISO's real-time runs (``<pool>_realtime``,
        as many slots unless :attr:`realtime_slots` says otherwise): real-time tasks never queue
        behind history for a slot; the ISO's request rate is still bounded by the hook's (shared)
        pacer, which serves real-time callers first (:class:`pmp.http.SharedPacer`)."""
        from pmp.registry import realtime_pool

        out = dict(cls.pools)
        for name, (slots, text) in cls.pools.items():
            out[realtime_pool(name)] = (cls.realtime_slots.get(name, slots),
                                        f"Real-time runs only ({text}); history never takes these slots")
        return out

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        setattr(self, self.conn_name_attr, conn_id or self.default_conn_name)
        self._session: Any = None
        self._cfg: dict[str, Any] | None = None
        self._conn: Any = None
        self._extra: dict[str, Any] | None = None

    # -- connection and extras -------------------------------------------------------------
    @property
    def conn_id(self) -> str:
        return getattr(self, self.conn_name_attr)

    @property
    def connection(self) -> Any:
        """The Airflow connection (looked up once); its password and secret extras are masked, and
        its extras checked (:meth:`connection_problems`): a bad one raises ``ConnectionExtraError``
        before any request is sent."""
        if self._conn is None:
            conn = self.get_connection(self.conn_id)
            self._extra, problems = extra_problems(self.extras, self.conn_id, conn.extra)
            raw = conn.extra_dejson if not problems else {}
            mask(conn.password, *(str(raw[e.name]) for e in self.extras if e.secret and raw.get(e.name)))
            if problems:
                raise ConnectionExtraError("; ".join(problems))
            self._conn = conn
        return self._conn

    @classmethod
    def connection_problems(cls, conn: Any) -> list[str]:
        """What is wrong with ``conn`` for this hook, one sentence each (``pmp check-config``)."""
        conn_id = getattr(conn, "conn_id", None) or cls.default_conn_name
        problems = []
        if getattr(conn, "conn_type", None) not in (None, "", cls.conn_type):
            problems.append(f"connection {conn_id!r}: conn_type {conn.conn_type!r} is not {cls.conn_type!r} "
                            f"({cls.hook_name})")
        return problems + extra_problems(cls.extras, conn_id, getattr(conn, "extra", None))[1]

    @property
    def raw_extra(self) -> dict[str, Any]:
        """The connection's extra JSON as stored (declared or not)."""
        return self.connection.extra_dejson or {}

    def extra(self, name: str) -> Any:
        """A declared extra, parsed to its type (its default when absent)."""
        if self._extra is None or self._conn is None:
            self.connection  # noqa: B018 - looks the connection up and parses every extra
        assert self._extra is not None
        try:
            return self._extra[name]
        except KeyError:
            raise KeyError(f"{type(self).__name__}: extra {name!r} is not declared") from None

    def base_url(self, name: str) -> str:
        """A base-URL extra (or its default, the real host) without a trailing slash."""
        return str(self.extra(name)).rstrip("/")

    # -- settings, session, pacing ------------------------------------------------------------
    @property
    def cfg(self) -> dict[str, Any]:
        if self._cfg is None:
            self._cfg = self.configure()
        return self._cfg

    def configure(self) -> dict[str, Any]:
        """The hook's settings, built once from the connection (subclasses override)."""
        return {}

    def get_conn(self) -> Any:
        if self._session is None:
            session = new_session()
            self.configure_session(session)
            self._session = session
        return self._session

    def configure_session(self, session: Any) -> None:
        """Auth, proxies or TLS settings of a new session (subclasses override)."""

    def per_minute(self, name: str) -> Pacer:
        """A per-hook pacer from a requests-per-minute extra (0 = no pacing)."""
        return Pacer(float(self.extra(name)) or None)

    def per_interval(self, name: str) -> Pacer:
        """A per-hook pacer from a minimum-seconds-between-requests extra (0 = no pacing)."""
        seconds = float(self.extra(name))
        return Pacer(60.0 / seconds if seconds > 0 else None)

    @staticmethod
    def shared_per_minute(per_minute: float, scope: str, *, margin: float = 0.0) -> SharedPacer:
        """A pacer shared by every process on the machine that names the same ``scope``."""
        return SharedPacer.per_minute(per_minute or None, scope, margin=margin)

    # -- UI form ---------------------------------------------------------------------------------
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        placeholder = {e.name: e.example if e.example is not None else e.default for e in cls.extras if e.show}
        return {
            "hidden_fields": list(cls.hidden_fields),
            "relabeling": dict(cls.relabeling),
            "placeholders": {"extra": json.dumps(placeholder)},
        }


def iso_hook_classes() -> list[type[IsoHttpHook]]:
    """Every ISO hook: the :class:`IsoHttpHook` subclasses defined in ``pmp.isos.<iso>.hook``."""
    import pmp.isos as isos_pkg

    out: list[type[IsoHttpHook]] = []
    for info in sorted(pkgutil.iter_modules(isos_pkg.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"pmp.isos.{info.name}.hook")
        out.extend(obj for obj in vars(module).values()
                   if isinstance(obj, type) and issubclass(obj, IsoHttpHook) and obj.__module__ == module.__name__)
    return out
