"""A real Prometheus for provider tests, scraping an Istio-like exporter the test drives.

``async with istio_prometheus() as (prometheus, exporter):`` starts

- an :class:`IstioExporter`: an aiohttp server on a free loopback port serving ``/metrics``
  in the Prometheus text format, with ``istio_requests_total`` counters the test bumps
  (``exporter.add``) or lets grow by a fixed amount on every scrape (``exporter.traffic``,
  steady traffic between scrapes, so ``rate`` and ``irate`` ratios are exact), and
- Debian's ``prometheus`` binary (2.42; ``scripts/test`` installs it) on another free loopback
  port, with a temporary storage directory and a generated configuration scraping the
  exporter every ``scrape_interval`` (1 s by default),

waits until the exporter target is up and its first sample is queryable, and on exit stops
Prometheus with SIGTERM (SIGKILL after 10 s) and removes its files. Waiting for state is
``prometheus.wait_for(query, predicate)``: polling the query API under a deadline, never a
bare sleep. Everything is an async context manager the test enters itself, so no task group
spans a pytest fixture's ``yield``. ``stoppable_istio_prometheus()`` is the same pair with a
Prometheus that chaos tests stop and start again on its port and storage.

``serve(app)`` (used for the exporter) is also how unit tests stand up fake HTTP servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web

__all__ = [
    "IstioExporter",
    "PrometheusServer",
    "free_port",
    "istio_prometheus",
    "prometheus_binary",
    "run_prometheus",
    "scraped_by_prometheus",
    "serve",
    "stoppable_istio_prometheus",
]

PROMETHEUS_ENV = "SHIFTD_TEST_PROMETHEUS"  # path of the binary, when not /usr/bin/prometheus
_POLL_INTERVAL = 0.1
_START_SECONDS = 30.0
_STOP_SECONDS = 10.0
_BIND_ATTEMPTS = 3


def prometheus_binary() -> str | None:
    """The Prometheus binary to run: ``$SHIFTD_TEST_PROMETHEUS``, else ``prometheus`` on PATH
    or in /usr/bin; None when there is none (tests then skip)."""
    configured = os.environ.get(PROMETHEUS_ENV)
    if configured:
        return configured
    return shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin")


def free_port() -> int:
    """A loopback TCP port free right now (the caller retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL (``http://127.0.0.1:N``)."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


# --- the exporter ------------------------------------------------------------------------------

_Labels = tuple[tuple[str, str], ...]


@dataclass
class IstioExporter:
    """``istio_requests_total`` counters, served at ``/metrics`` of :attr:`url`."""

    url: str = ""
    scrapes: int = 0
    _counters: dict[_Labels, float] = field(default_factory=dict)
    _traffic: dict[_Labels, float] = field(default_factory=dict)

    def add(
        self,
        *,
        destination_service: str,
        response_code: str = "200",
        count: float = 1,
        reporter: str = "source",
    ) -> None:
        """Count ``count`` more requests now."""
        key = _labels(destination_service, response_code, reporter)
        self._counters[key] = self._counters.get(key, 0.0) + count

    def traffic(
        self,
        *,
        destination_service: str,
        per_scrape: Mapping[str, float],
        reporter: str = "source",
    ) -> None:
        """From now on, every scrape first counts ``per_scrape[code]`` more requests per code
        (``{"200": 35, "500": 65}`` is 65 % errors); an empty mapping stops the traffic."""
        for key in [k for k in self._traffic if _service_of(k) == (destination_service, reporter)]:
            del self._traffic[key]
        for code, count in per_scrape.items():
            key = _labels(destination_service, code, reporter)
            self._traffic[key] = count
            self._counters.setdefault(key, 0.0)

    def exposition(self) -> str:
        lines = [
            "# HELP istio_requests_total Requests seen by the proxies.",
            "# TYPE istio_requests_total counter",
        ]
        for labels, value in sorted(self._counters.items()):
            rendered = ",".join(f'{name}="{text}"' for name, text in labels)
            lines.append(f"istio_requests_total{{{rendered}}} {value:g}")
        return "\n".join(lines) + "\n"

    async def _metrics(self, request: web.Request) -> web.Response:
        # Bumping and rendering happen in one step of the loop, so a scrape never sees half of
        # a traffic step.
        for key, count in self._traffic.items():
            self._counters[key] = self._counters.get(key, 0.0) + count
        self.scrapes += 1
        return web.Response(text=self.exposition(), content_type="text/plain", charset="utf-8")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        return app


def _labels(destination_service: str, response_code: str, reporter: str) -> _Labels:
    return (
        ("destination_service", destination_service),
        ("reporter", reporter),
        ("response_code", response_code),
    )


def _service_of(labels: _Labels) -> tuple[str, str]:
    values = dict(labels)
    return values["destination_service"], values["reporter"]


# --- Prometheus --------------------------------------------------------------------------------


@dataclass
class PrometheusServer:
    """A running Prometheus: its base :attr:`url` and helpers to query it."""

    url: str
    log_path: Path
    job: str

    async def query(self, promql: str) -> dict[str, Any]:
        """The ``data`` of an instant query; raises AssertionError if Prometheus refuses it."""
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{self.url}/api/v1/query", params={"query": promql}) as answer,
        ):
            document = await answer.json()
        if document.get("status") != "success":
            raise AssertionError(f"Prometheus refused {promql!r}: {document}")
        data: dict[str, Any] = document["data"]
        return data

    async def values(self, promql: str) -> list[float]:
        """The sample values of an instant vector query (empty when it selects nothing)."""
        data = await self.query(promql)
        return [float(series["value"][1]) for series in data["result"]]

    async def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[float]], bool],
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 (a polling deadline is this helper's job)
        what: str | None = None,
    ) -> list[float]:
        """Poll ``promql`` until ``predicate(values)`` holds; returns those values."""
        last: list[float] | str = "<never queried>"
        try:
            async with asyncio.timeout(timeout):
                while True:
                    last = await self.values(promql)
                    if predicate(last):
                        return last
                    await asyncio.sleep(_POLL_INTERVAL)
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or promql}; last: {last!r}"
            ) from None

    async def wait_for_samples(
        self,
        selector: str,
        count: int,
        *,
        window: str = "5m",
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until every series ``selector`` matches has at least ``count`` samples."""
        await self.wait_for(
            f"count_over_time({selector}[{window}])",
            lambda values: bool(values) and min(values) >= count,
            timeout=timeout,
            what=f"{count} samples of {selector}",
        )

    async def sample_count(self, selector: str, *, window: str = "5m") -> int:
        """The fewest samples any series ``selector`` matches has (0 when it matches none)."""
        values = await self.values(f"count_over_time({selector}[{window}])")
        return int(min(values)) if values else 0

    async def wait_for_more_samples(
        self,
        selector: str,
        more: int,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 (a polling deadline is this helper's job)
    ) -> None:
        """Wait until every series ``selector`` matches has ``more`` samples beyond now's."""
        await self.wait_for_samples(
            selector, await self.sample_count(selector) + more, timeout=timeout
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])


def _config(*, targets: list[str], job: str, scrape_interval: str) -> str:
    # JSON is YAML; the scrape timeout may not exceed the interval.
    return json.dumps(
        {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
        }
    )


@asynccontextmanager
async def run_prometheus(
    *, targets: list[str], scrape_interval: str = "1s", job: str = "exporter"
) -> AsyncIterator[PrometheusServer]:
    """Run Prometheus scraping ``targets`` (``host:port``) until the block exits.

    Waits until every target is up before yielding. Raises RuntimeError (with the end of
    Prometheus's log) if it will not start; callers skip when :func:`prometheus_binary` is
    None.
    """
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
    directory = Path(tempfile.mkdtemp(prefix="shiftd-prometheus-"))
    try:
        config_path = directory / "prometheus.yml"
        config_path.write_text(
            _config(targets=targets, job=job, scrape_interval=scrape_interval), encoding="utf-8"
        )
        for attempt in range(_BIND_ATTEMPTS):
            port = free_port()
            server = PrometheusServer(
                url=f"http://127.0.0.1:{port}",
                log_path=directory / f"prometheus-{attempt}.log",
                job=job,
            )
            async with _process(binary, server, config_path, directory) as started:
                if not started:
                    continue  # the port was taken between probing and binding; try another
                await server.wait_for(
                    f'up{{job="{job}"}}',
                    lambda values: len(values) == len(targets) and min(values) == 1,
                    what=f"Prometheus to scrape {', '.join(targets)}",
                )
                yield server
                return
        raise RuntimeError(f"Prometheus could not bind a port in {_BIND_ATTEMPTS} attempts")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@asynccontextmanager
async def _process(
    binary: str, server: PrometheusServer, config_path: Path, directory: Path
) -> AsyncIterator[bool]:
    """Run one Prometheus process; yields False if it exited because its port was taken."""
    address = server.url.removeprefix("http://")
    with server.log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={address}",
            "--log.level=warn",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield await _ready(process, server)
    finally:
        await _stop(process)


async def _ready(process: asyncio.subprocess.Process, server: PrometheusServer) -> bool:
    timeout = aiohttp.ClientTimeout(total=2)
    try:
        async with asyncio.timeout(_START_SECONDS), aiohttp.ClientSession(timeout=timeout) as s:
            while True:
                if process.returncode is not None:
                    if "address already in use" in server.log_tail():
                        return False
                    raise RuntimeError(
                        f"Prometheus exited with {process.returncode}:\n{server.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{server.url}/-/ready") as answer:
                        if answer.status == 200:
                            return True
                await asyncio.sleep(_POLL_INTERVAL)
    except TimeoutError:
        raise RuntimeError(
            f"Prometheus not ready after {_START_SECONDS}s:\n{server.log_tail()}"
        ) from None


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(_STOP_SECONDS):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
    except asyncio.CancelledError:
        process.kill()
        raise


@asynccontextmanager
async def istio_prometheus(
    *, scrape_interval: str = "1s"
) -> AsyncIterator[tuple[PrometheusServer, IstioExporter]]:
    """An :class:`IstioExporter` and a Prometheus scraping it (see the module docstring)."""
    exporter = IstioExporter()
    async with scraped_by_prometheus(exporter, scrape_interval=scrape_interval) as server:
        yield server, exporter


class ScrapedExporter(Protocol):
    """A test exporter: an aiohttp app serving ``/metrics``, told the address it is served at."""

    url: str

    def app(self) -> web.Application: ...


@asynccontextmanager
async def scraped_by_prometheus(
    exporter: ScrapedExporter, *, scrape_interval: str = "1s"
) -> AsyncIterator[PrometheusServer]:
    """``exporter`` served on a free port and a real Prometheus scraping it."""
    async with serve(exporter.app()) as url:
        exporter.url = url
        target = url.removeprefix("http://")
        async with run_prometheus(targets=[target], scrape_interval=scrape_interval) as server:
            yield server


class StoppablePrometheus:
    """A Prometheus that a chaos test stops and starts again on the same port and storage
    (so queries fail while it is down, and its data is there when it is back)."""

    def __init__(self, binary: str, server: PrometheusServer, config_path: Path,
                 directory: Path) -> None:
        self.server = server
        self._arguments = (binary, server, config_path, directory)
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def running(self) -> bool:
        return self._stack is not None

    async def start(self) -> None:
        """Run it again (on the same port), until it answers /-/ready."""
        if self._stack is not None:
            return
        stack = contextlib.AsyncExitStack()
        started = await stack.enter_async_context(_process(*self._arguments))
        if not started:
            await stack.aclose()
            raise RuntimeError(f"Prometheus could not bind {self.server.url} again")
        self._stack = stack

    async def stop(self) -> None:
        """Stop it (SIGTERM, SIGKILL after 10 s); its storage stays."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()


@asynccontextmanager
async def stoppable_istio_prometheus(
    *, scrape_interval: str = "1s"
) -> AsyncIterator[tuple[StoppablePrometheus, IstioExporter]]:
    """``istio_prometheus`` whose Prometheus the test can ``stop()`` and ``start()``."""
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
    exporter = IstioExporter()
    directory = Path(tempfile.mkdtemp(prefix="shiftd-prometheus-"))
    try:
        async with serve(exporter.app()) as url:
            exporter.url = url
            config_path = directory / "prometheus.yml"
            config_path.write_text(_config(targets=[url.removeprefix("http://")],
                                           job="exporter", scrape_interval=scrape_interval),
                                   encoding="utf-8")
            server = PrometheusServer(url=f"http://127.0.0.1:{free_port()}",
                                      log_path=directory / "prometheus.log", job="exporter")
            prometheus = StoppablePrometheus(binary, server, config_path, directory)
            await prometheus.start()
            try:
                await server.wait_for('up{job="exporter"}', lambda values: values == [1.0],
                                      what="Prometheus to scrape the exporter")
                yield prometheus, exporter
            finally:
                await prometheus.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
