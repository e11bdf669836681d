"""One validation layer for what users type or configure: one sentence per problem.

Every message names the input, the bad value and what is accepted, with a close match where
one exists (``unknown ISO 'ercto'; known: caiso, ercot, isone, nyiso, pjm; did you mean 'ercot'?``).
Callers raise :class:`InputError` (or a subclass); the CLI prints it as one line and exits 2,
DAG parsing shows it as the file's import error, ``pmp check-config`` lists every one.

What is validated here, and where else:

* ``PMP_*`` environment variables: every one the package reads is declared in :data:`SETTINGS`
  (name, kind, default, what it does) and read through :func:`setting`; ad hoc tool knobs (the
  simulator's ``PMP_SIM_*``) through :func:`env_number`. No module reads ``os.environ`` for a
  ``PMP_*`` name itself (``tests/test_bad_input.py`` checks it).
* names the registry knows (ISOs, datasets) and other closed sets: :func:`one_of`;
* market-day ranges of the CLI: :func:`day_range`;
* ``PMP_DAGS`` selections that match nothing: :func:`dag_selection_problems`;
* DAG run ``conf`` keys no param declares: :func:`dag_run_conf`;
* connection extras: :mod:`pmp.isohook` (the one base of the ISO hooks, which declares them);
  ``airflow_settings.yaml``, connections and pools of a deployment: :mod:`pmp.checkconfig`.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit


class InputError(ValueError):
    """Bad input: the message is one sentence naming the input, the value and what is accepted."""


class UnknownNameError(InputError, KeyError):
    """A name that is not one of a known set (also a ``KeyError``, as lookups raised before)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SettingError(InputError):
    """A ``PMP_*`` environment variable with a value that is not accepted."""


# ------------------------------------------------------------------------------ names and values
def suggestion(value: object, known: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``"; did you mean 'ercot'?"`` for the closest known name, or ``""``."""
    match = difflib.get_close_matches(str(value), [str(k) for k in known], n=1, cutoff=cutoff)
    return f"; did you mean {match[0]!r}?" if match else ""


def unknown(what: str, value: object, known: Sequence[str], *, where: str = "") -> UnknownNameError:
    """The error for a name outside ``known``: ``unknown dataset 'lmp_dm' for ISO 'ercot'; known: …``."""
    listed = ", ".join(known) if known else "(none)"
    return UnknownNameError(f"unknown {what} {value!r}{where}; known: {listed}{suggestion(value, known)}")


def one_of(what: str, value: str, known: Sequence[str], *, where: str = "") -> str:
    if value not in known:
        raise unknown(what, value, known, where=where)
    return value


def redact_url(url: str) -> str:
    """A URL as it may appear in errors and logs: scheme, host and port and path, without
    credentials (``user:password@``), query string or fragment (query strings carry keys)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _shown(url: str, *, hide_path: bool = False) -> str:
    safe = redact_url(url)
    if hide_path:
        parts = urlsplit(safe)
        safe = urlunsplit((parts.scheme, parts.netloc, "/…" if parts.path.strip("/") else parts.path, "", ""))
    return safe


# ------------------------------------------------------------------------------ market-day ranges
def day_range(start: date, end: date, *, end_exclusive: bool, first_day: date | None = None,
              today: date | None = None, what: str = "") -> list[date]:
    """The market days from ``--start`` to ``--end``; a reversed or empty range is an error, and so
    is one wholly before the dataset's first day or after ``today`` (nothing could be loaded)."""
    days = (end - start).days + (0 if end_exclusive else 1)
    if days <= 0:
        rule = f"after --start {start} (--end is exclusive)" if end_exclusive else f"on or after --start {start}"
        raise InputError(f"--end {end} must be {rule}: the range holds no market day")
    last = start + timedelta(days=days - 1)
    subject = f"{what} " if what else ""
    if first_day is not None and last < first_day:
        raise InputError(f"--start {start} .. --end {end} is before {subject}first market day {first_day}: "
                         "there is no data to load")
    if today is not None and start > today:
        raise InputError(f"--start {start} is after today ({today}{f' for {what}' if what else ''}): "
                         "the ISO has not published it")
    return [start + timedelta(days=i) for i in range(days)]


def market_today(spec: Any) -> date:
    """Today in the dataset's market time zone (the last day the ISO can have begun publishing)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(spec.timezone)).date()


# ------------------------------------------------------------------------------ files and selections
def input_file(path: str) -> bytes:
    """The bytes of a file named on the command line, or one sentence saying why not."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def output_file(path: str, option: str) -> None:
    """An output path is writable before any work is done: its directory exists, it is no directory."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"{option} {path}: is a directory; give a file name")
    if not os.path.isdir(parent):
        raise InputError(f"{option} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{option} {path}: directory {parent} is not writable")


def catalog_selection(iso: str | None, dataset: str | None) -> list[Any]:
    """The registry entries ``pmp catalog --iso/--dataset`` asks for; an unknown name is an error."""
    from pmp import registry

    specs = registry.datasets(iso)  # an unknown ISO raises
    if dataset is None:
        return specs
    chosen = [s for s in specs if s.dataset == dataset]
    if not chosen:
        where = f" for ISO {iso!r}" if iso else ""
        raise unknown("dataset", dataset, sorted({s.dataset for s in specs}), where=where)
    return chosen


def preflight(spec: Any) -> None:
    """What ``pmp download`` checks before it fetches anything: every ``PMP_*`` value and the ISO's
    connection (extras, and the settings the hook derives from them)."""
    from pmp import registry

    require_settings()
    hook = registry.adapter(spec.iso).hook()
    getattr(hook, "cfg", None)  # IsoHttpHook: looks the connection up, checks and parses its extras


# ------------------------------------------------------------------------------ PMP_* settings
@dataclass(frozen=True)
class Kind:
    """How a setting's text becomes a value: ``parse`` raises ``ValueError`` when it cannot, and
    ``accepted`` says in words what can."""

    accepted: str
    parse: Callable[[str], Any]
    secret: bool = False  # the value is never echoed (it may hold a password)
    hide_path: bool = False  # URLs: the path is not echoed either (webhook tokens live there)


def _number(kind: type, minimum: float | None) -> Kind:
    def parse(text: str) -> Any:
        value = kind(text.strip())  # int('abc') says "invalid literal for int()": the setting's sentence says more
        if minimum is not None and value < minimum:
            raise ValueError
        return value

    words = "a whole number" if kind is int else "a number"
    return Kind(words + (f" >= {minimum:g}" if minimum is not None else ""), parse)


def _int(minimum: int) -> Kind:
    return _number(int, minimum)


MINUTES = Kind("whole minutes > 0", _int(1).parse)


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError


BOOL = Kind("true or false (also 1/0, yes/no, on/off)", _bool)


def _choice(*values: str) -> Kind:
    def parse(text: str) -> str:
        low = text.strip().lower()
        if low not in values:
            raise ValueError(suggestion(low, values))
        return low

    return Kind("one of " + ", ".join(values), parse)


def _url(*schemes: str, hide_path: bool = False) -> Kind:
    def parse(text: str) -> str:
        parts = urlsplit(text.strip())
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        return text.strip()

    return Kind(" or ".join(f"{s}://host[:port]/…" for s in schemes) + " URL", parse, hide_path=hide_path)


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _staging(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("file", "s3"):
        raise ValueError
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("; credentials and query strings do not belong in it (the S3 connection has them)")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError("; a file URL needs an absolute path: file:///abs/path/")
        return text.strip()
    if parts.scheme == "s3":
        if not _BUCKET.match(parts.netloc):
            hint = " (the placeholder of startup.sh: set your bucket)" if "change-me" in parts.netloc.lower() else ""
            raise ValueError(f"; {parts.netloc!r} is not an S3 bucket name (3-63 lower-case letters, digits, "
                             f"dots, hyphens){hint}")
    return text.strip()


STAGING = Kind("file:///absolute/path/ or s3://bucket/prefix/", _staging)


def _conn_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text.strip()):
        raise ValueError
    return text.strip()


CONN_ID = Kind("an Airflow connection id (letters, digits, _ . -)", _conn_id)


def _abs_path(text: str) -> str:
    if not os.path.isabs(os.path.expanduser(text.strip())):
        raise ValueError
    return os.path.expanduser(text.strip())


ABS_PATH = Kind("an absolute directory path", _abs_path)


def _dsn(text: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(text)
    except Exception:
        raise ValueError from None
    return text


DSN = Kind("a libpq connection string ('host=… dbname=… user=…' or postgresql://…)", _dsn, secret=True)


def _globs(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


GLOBS = Kind("comma-separated glob patterns of DAG ids, e.g. 'ercot_*,caiso_lmp_*'", _globs)


@dataclass(frozen=True)
class Setting:
    """One ``PMP_*`` environment variable: its kind, its default (a value, or a function of no
    arguments for defaults that depend on other settings) and what it does."""

    name: str
    kind: Kind
    default: Any
    doc: str

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def get(self, environ: Mapping[str, str] | None = None) -> Any:
        raw = (os.environ if environ is None else environ).get(self.name)
        if raw is None or not raw.strip():
            return self.default_value()
        try:
            return self.kind.parse(raw)
        except ValueError as exc:  # a kind adds detail as "; …" (a library's own words are not shown)
            detail = str(exc) if str(exc).startswith(";") else ""
            raise SettingError(self.message(raw, detail)) from None

    def message(self, raw: str, detail: str = "") -> str:
        if self.kind.secret:
            shown = "(value not shown: it may hold a password)"
        elif "://" in raw:
            shown = repr(_shown(raw.strip(), hide_path=self.kind.hide_path))
        else:
            shown = repr(raw)
        default = self.default_value()
        default_text = "" if default in (None, "", ()) else f" (unset: {_default_text(default)})"
        sep = "" if not detail or detail.startswith(";") else "; "
        return f"{self.name}={shown}: expected {self.kind.accepted}{default_text}{sep}{detail}"


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _default_staging() -> str:
    from pmp.settings import pmp_home

    return (pmp_home() / "staging").as_uri() + "/"


def _default_home() -> str:
    from pmp.settings import default_home

    return str(default_home())


def _settings(*items: Setting) -> dict[str, Setting]:
    return {s.name: s for s in items}


# Every PMP_* variable the package reads (README "Connections, pools, settings" lists the same).
SETTINGS: dict[str, Setting] = _settings(
    Setting("PMP_HOME", ABS_PATH, _default_home, "local state: file staging, logs"),
    Setting("PMP_STAGING_URL", STAGING, _default_staging, "where raw files and normalized Parquet are staged"),
    Setting("PMP_DB_CONN_ID", CONN_ID, "tsdb", "the warehouse's Postgres connection"),
    Setting("PMP_S3_CONN_ID", CONN_ID, "pmp_s3", "the staging bucket's AWS connection"),
    Setting("PMP_PG_DSN", DSN, None, "libpq string used when the PMP_DB_CONN_ID connection does not exist"),
    Setting("PMP_S3_ENDPOINT", _url("http", "https"), None,
            "S3-compatible endpoint used when the PMP_S3_CONN_ID connection does not exist"),
    Setting("PMP_LAKE", BOOL, True, "daily DAGs write the Parquet lake's day files (a lake task after check)"),
    Setting("PMP_LAKE_URL", STAGING, None, "the Parquet lake (unset: <PMP_STAGING_URL>/lake/)"),
    Setting("PMP_DAGS", GLOBS, (), "which DAGs this deployment builds (default: all)"),
    Setting("PMP_CATCHUP", BOOL, True, "history DAGs catch up from their first day"),
    Setting("PMP_TASK_RETRIES", _int(0), 3, "retries of every task (real-time tasks: at most 1)"),
    Setting("PMP_BULK_ENGINE", _choice("rust", "python"), "rust", "normalizer of the ERCOT price history DAGs"),
    Setting("PMP_DEADLINES", BOOL, True, "Deadline Alerts on the DAGs"),
    Setting("PMP_ALERT_WEBHOOK_URL", _url("http", "https", hide_path=True), None,
            "where missed deadlines are POSTed (else the pmp_alerts connection's host)"),
    Setting("PMP_DEADLINE_GRACE_MINUTES", MINUTES, 180, "time for retries after a day is published"),
    Setting("PMP_DAILY_RUN_MINUTES", MINUTES, 60, "the time a daily run needs once queued"),
    Setting("PMP_HISTORY_RUN_MINUTES", MINUTES, 180, "the time a history run needs once its turn has come"),
    Setting("PMP_REALTIME_DEADLINE_MINUTES", MINUTES, 15, "a real-time run finishes within this of being queued"),
    Setting("PMP_ASSET_WAREHOUSE", _url("postgres", "postgresql"), "postgres://warehouse:5432/pmp",
            "the warehouse as the Assets' URIs name it (host, port, database)"),
    Setting("PMP_REALTIME_WAIT_MINUTES", MINUTES, 10,
            "how long a watched real-time run waits in the triggerer for a new document (below the deadline)"),
    Setting("PMP_WATCH", BOOL, True,
            "a watched real-time run waits in the triggerer until a new document is listed (pmp.triggers)"),
    Setting("PMP_WATCH_POLL_SECONDS", _number(float, 1), 20.0,
            "seconds between two listing polls of a watched real-time dataset"),
    Setting("PMP_PRELOAD", BOOL, True,
            "Airflow's processes import the bundle's modules when they load its plugin, so forked task processes start warm"),
    Setting("PMP_HISTORY_NICE", _number(int, 0), 10,
            "CPU niceness (0-19) a history task process takes before it runs, so real-time tasks get the CPU first; 0: unchanged"),
)

# PMP_* variables of the scripts, tests and benchmarks (not read by the package): never reported
# as misspelt settings.
TOOL_VARIABLES = frozenset({
    "PMP_SIM_PORT", "PMP_AIRFLOW_PORT", "PMP_AIRFLOW_DB", "PMP_AIRFLOW_DB_URL", "PMP_TEST_WORKERS",
    "PMP_S3_BUCKET", "PMP_S3", "PMP_S3_PORT", "PMP_S3_BASE_PORT", "PMP_S3_ACCESS_KEY", "PMP_S3_SECRET_KEY",
    "PMP_PG_PORT", "PMP_PG_BASE", "PMP_PG_PASSWORD", "PMP_PYTHON", "PMP_VENV", "PMP_SAMPLES_DIR", "PMP_DIST",
    "PMP_STOP_TIMEOUT", "PMP_LIVE_KEEP_HOME", "PMP_DEMO_TIMEOUT",
})


def setting(name: str) -> Any:
    """The value of a declared ``PMP_*`` setting (its default when unset or empty)."""
    return SETTINGS[name].get()


def env_number(name: str, default: float, kind: type = int, *, minimum: float | None = 0) -> Any:
    """A numeric ``PMP_*`` knob of a tool (the simulator), validated like the settings."""
    return Setting(name, _number(kind, minimum), kind(default), "").get()


def env_text(name: str, default: str) -> str:
    """A text ``PMP_*`` knob of a tool (the simulator's test credentials): any value."""
    return str(Setting(name, Kind("any text", str), default, "").get())


def settings_problems(environ: Mapping[str, str] | None = None, *, names: bool = True) -> list[str]:
    """One sentence per ``PMP_*`` variable whose value is not accepted and, with ``names``, per
    variable that looks like a misspelt setting (``PMP_STAGNG_URL``)."""
    env = os.environ if environ is None else environ
    problems = []
    for s in SETTINGS.values():
        try:
            s.get(env)
        except SettingError as exc:
            problems.append(str(exc))
    return problems + _realtime_wait_problems(env, problems) + (misspelt_settings(env) if names else [])


def _realtime_wait_problems(env: Mapping[str, str], problems: list[str]) -> list[str]:
    """A real-time run that waits for a document as long as its deadline allows would alert every
    time a dataset publishes less often than that: the wait must end before the deadline."""
    if any(p.startswith(("PMP_REALTIME_WAIT_MINUTES", "PMP_REALTIME_DEADLINE_MINUTES")) for p in problems):
        return []
    wait, deadline = SETTINGS["PMP_REALTIME_WAIT_MINUTES"].get(env), SETTINGS["PMP_REALTIME_DEADLINE_MINUTES"].get(env)
    if wait >= deadline:
        return [f"PMP_REALTIME_WAIT_MINUTES={wait} must be less than PMP_REALTIME_DEADLINE_MINUTES={deadline} "
                "(a run that waits for a document must still finish before its deadline)"]
    return []


def misspelt_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """``PMP_*`` variables that are no setting but close to one (the intended setting is unset)."""
    env = os.environ if environ is None else environ
    problems = []
    for name in sorted(env):
        if (name.startswith("PMP_") and name not in SETTINGS and name not in TOOL_VARIABLES
                and not name.startswith("PMP_SIM_")):
            near = suggestion(name, SETTINGS, cutoff=0.85)
            if near:
                problems.append(f"{name} is set but is not a setting{near}")
    return problems


def require_settings() -> None:
    """Raise one :class:`SettingError` naming every bad ``PMP_*`` value (what DAG parsing shows as
    the file's import error, so a bad setting is seen before any task runs)."""
    problems = settings_problems(names=False)
    if problems:
        raise SettingError("; ".join(problems))


def option_value(option: str, value: str, kind: Kind) -> Any:
    """A command-line option checked as a setting of ``kind`` is (``--lake-url``)."""
    try:
        return Setting(option, kind, None, "").get({option: value})
    except SettingError as exc:
        raise InputError(str(exc).replace("=", " ", 1)) from None


# ------------------------------------------------------------------------------ DAG selection
def dag_ids(iso: str | None = None) -> list[str]:
    """Every DAG id the factory can build (of one ISO, or of all)."""
    from pmp import registry

    out = []
    for spec in registry.datasets(iso):
        out.append(spec.daily_dag_id)
        if spec.realtime:
            out.append(spec.realtime_dag_id)
    return out


def dag_selection_problems(patterns: Sequence[str] | None = None, *, iso: str | None = None) -> list[str]:
    """The ``PMP_DAGS`` patterns that match no DAG id, one sentence each.

    With ``iso`` (a DAG file being parsed) the check stays cheap: a pattern is decided from this
    ISO's DAG ids when its literal start can only be this ISO's (``ercot_…``) or no ISO's
    (``nomatch_*``), left to the other ISO's file when it can only be that one's, and checked
    against every ISO's DAG ids only when it starts with a wildcard."""
    from pmp import registry

    patterns = setting("PMP_DAGS") if patterns is None else tuple(patterns)
    if not patterns:
        return []
    isos = registry.isos()
    own = dag_ids(iso) if iso else []
    problems = []
    for p in patterns:
        literal = re.split(r"[*?\[]", p, maxsplit=1)[0]
        could = [i for i in isos if f"{i}_".startswith(literal) or literal.startswith(f"{i}_")]
        if iso is None or len(could) > 1:
            candidates = [d for i in could for d in dag_ids(i)]
        elif could and could[0] != iso:
            continue  # only another ISO's DAG ids can match: that ISO's file says so
        else:
            candidates = own if could else []
        if not any(fnmatch.fnmatchcase(d, p) for d in candidates):
            near = suggestion(p, [f"{i}_*" for i in isos] + candidates)
            problems.append(f"PMP_DAGS pattern {p!r} matches no DAG id (ids look like "
                            f"ercot_lmp_dam_daily, ercot_lmp_rt5m_realtime){near}")
    if len(problems) == len(patterns):
        problems.append(f"PMP_DAGS={','.join(patterns)!r} selects no DAG at all: this deployment builds none")
    return problems


# ------------------------------------------------------------------------------ DAG run conf
def dag_run_conf(conf: Mapping[str, Any] | None, declared: Iterable[str], *, dag_id: str = "") -> None:
    """Keys of a run's ``conf`` that no DAG param declares are an error (Airflow checks the types
    of declared params when the run is triggered, but passes unknown keys through silently)."""
    known = sorted(declared)
    for key in sorted(conf or {}):
        if key not in known:
            where = f" of DAG {dag_id!r}" if dag_id else ""
            raise unknown("DAG param", key, known, where=where)


# ------------------------------------------------------------------------------ command line
class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are one line on stderr (exit 2), naming the command:
    ``pmp download: error: argument --start: '2024-13-01' is not a date (YYYY-MM-DD); see pmp download --help``."""

    def error(self, message: str) -> NoReturn:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:  # argparse of Python 3.12 suggests nothing
            message += suggestion(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        message = one_line(message)
        self.exit(2, f"{self.prog}: error: {message}{' ' if message.endswith('?') else '; '}see {self.prog} --help\n")


def one_line(message: object) -> str:
    """A message on one line (psycopg and others spread theirs over several)."""
    return " ".join(str(message).split())


def day_argument(value: str) -> date:
    """``--start`` / ``--end`` of the CLI: a calendar day ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def report_error(exc: BaseException, prog: str, *, verbose: bool = False) -> int:
    """Print ``exc`` as the command's one error line (with the traceback first when ``verbose``):
    exit status 2 for bad input (:class:`InputError`, a normalizer's file/line/field error), 1 for
    anything else (a service down, a bug: ``-v`` shows where)."""
    from pmp.errors import NormalizeError

    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    bad_input = isinstance(exc, (InputError, NormalizeError))
    text = one_line(exc) or type(exc).__name__
    if not bad_input:
        text = f"{type(exc).__name__}: {text}" + ("" if verbose else " (run with -v for the traceback)")
    print(f"{prog}: error: {text}", file=sys.stderr)
    return 2 if bad_input else 1
