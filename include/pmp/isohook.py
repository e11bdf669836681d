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

from airflow.sdk import BaseHook

from pmp.connections import mask
from pmp.http import Pacer, SharedPacer, new_session

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Extra:
    """One declared field of a connection's ``extra`` JSON.

    ``type`` is ``str``, ``int``, ``float`` or ``bool``; a missing, null or empty value is the
    ``default``. ``secret`` values are registered with the secrets masker. ``show`` puts the field
    in the UI's placeholder (with ``example`` instead of the default when given)."""

    name: str
    type: type
    default: Any = None
    secret: bool = False
    show: bool = False
    example: Any = None


@dataclass(frozen=True)
class LocalConnection:
    """The connection ``airflow_settings.yaml`` declares on local defaults (the simulator).

    String extras may contain ``{sim}``: the simulator's base URL (``http://127.0.0.1:58080``)."""

    comment: str = ""
    login: str | None = None
    password: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ConnectionExtraError(ValueError):
    """A connection extra that does not parse as its declared type (names connection and field)."""


def parse_extra(spec: Extra, value: Any, conn_id: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip() and spec.type is not str):
        return spec.default
    if spec.type is str:
        return str(value) if value != "" else spec.default
    if spec.type is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    else:
        try:
            return spec.type(value)
        except (TypeError, ValueError):
            pass
    raise ConnectionExtraError(f"connection {conn_id!r}: extra.{spec.name} must be a {spec.type.__name__}, "
                               f"not {value!r}")


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
        """The Airflow connection (looked up once); its password and secret extras are masked."""
        if self._conn is None:
            conn = self.get_connection(self.conn_id)
            raw = conn.extra_dejson or {}
            mask(conn.password, *(str(raw[e.name]) for e in self.extras if e.secret and raw.get(e.name)))
            self._conn = conn
        return self._conn

    @property
    def raw_extra(self) -> dict[str, Any]:
        """The connection's extra JSON as stored (declared or not)."""
        return self.connection.extra_dejson or {}

    def extra(self, name: str) -> Any:
        """A declared extra, parsed to its type (its default when absent)."""
        if self._extra is None:
            raw = self.raw_extra
            self._extra = {e.name: parse_extra(e, raw.get(e.name), self.conn_id) for e in self.extras}
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
