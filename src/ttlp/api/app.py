"""``create_app``: the Litestar application of the api role (DESIGN §7).

Middleware, outermost first: security headers, request metrics, the per-IP rate limit (before
authentication, so floods of bad tokens are limited too), the input guard (NUL characters and
over-deep JSON: 400; WebSocket refusals with their real status), JWT authentication, the
per-account rate limit. Limits are counted in Redis when ``REDIS_URL`` is set (shared by every api
replica), in memory otherwise. Errors are JSON (``{"status_code", "detail"}``, and ``extra``
for validation problems) without stack traces; unexpected ones are logged with theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
from litestar import Litestar, Request
from litestar.config.app import AppConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Schema,
    SecurityScheme,
)
from litestar.response import ServerSentEvent
from litestar.routes import HTTPRoute
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.types import Message, Scope
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp import __version__
from ttlp.api.accounts import Account, Accounts
from ttlp.api.auth import OPEN_PATHS, AccountCache, make_jwt_auth
from ttlp.api.errors import http_error, too_many_requests, ttlp_error, unexpected_error
from ttlp.api.feed import Feed, make_channels, message_events
from ttlp.api.guard import input_guard
from ttlp.api.metrics import ApiMetrics, metrics_middleware
from ttlp.api.overlays import limits as overlay_limits
from ttlp.api.overlays.hub import OverlayHub
from ttlp.api.overlays.store import OverlayStore
from ttlp.api.routes import accounts as accounts_routes
from ttlp.api.routes import actions, analytics, auth, dlq, history, ingest, live, ops
from ttlp.api.routes import backtest as backtest_routes
from ttlp.api.routes import export as export_routes
from ttlp.api.routes import fans as fans_routes
from ttlp.api.routes import forward as forward_routes
from ttlp.api.routes import gdpr as gdpr_routes
from ttlp.api.routes import overlay as overlay_routes
from ttlp.api.routes import overlays as overlays_routes
from ttlp.api.routes import rules as rules_routes
from ttlp.api.routes import ui as ui_routes
from ttlp.api.setup import SetupLink
from ttlp.api.state import ApiState
from ttlp.bus.base import Bus
from ttlp.bus.keys import Keys
from ttlp.db.handles import HandleDirectory
from ttlp.db.queries import Queries
from ttlp.errors import TtlpError
from ttlp.forward.outbound import Outbound
from ttlp.settings import Settings

SECURITY_HEADERS: Final = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
DOCS_PREFIX: Final = "/schema"

log = logger.bind(role="api")


async def security_headers(message: Message, scope: Scope) -> None:
    """``before_send``: headers every response gets, error responses included; the JSON API
    also gets a deny-all CSP (the docs pages under /schema load their scripts from a CDN, so
    they keep Litestar's defaults). Async on purpose: Litestar runs a sync hook in a thread
    pool, for every message sent (every live-feed event)."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if not scope["path"].startswith(DOCS_PREFIX):
        headers.setdefault("content-security-policy", API_CSP)


def _ip(request: Request[Any, Any, Any]) -> str:
    return "ip:" + get_remote_address(request)


def _account(request: Request[Any, Any, Any]) -> str:
    user = request.scope.get("user")
    return f"account:{user.username}" if isinstance(user, Account) else _ip(request)


def _logged_in(request: Request[Any, Any, Any]) -> bool:
    """The account limit counts accounts only: anonymous requests have the per-IP limit (and
    counting them here too would charge the IP's key twice per request)."""
    return isinstance(request.scope.get("user"), Account)


class FallbackStore(Store):
    """The shared rate-limit store (Redis), or a local one while the shared one fails.

    Written by hand: Litestar's stores raise when Redis is away, which would turn every
    request, ``/health`` included, into a 500 during a Redis outage. Limits then count per
    replica until Redis answers again (tried again every ``retry_s``); a Redis that hangs costs
    a request at most ``timeout_s``.
    """

    def __init__(self, shared: Store, *, timeout_s: float = 1.0, retry_s: float = 5.0) -> None:
        self.shared = shared
        self.local = MemoryStore()
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._retry_at = 0.0

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        if loop.time() >= self._retry_at:
            try:
                return await asyncio.wait_for(
                    getattr(self.shared, method)(*args, **kwargs), self.timeout_s
                )
            except Exception as exc:  # at most one warning per retry_s
                log.warning(
                    "rate-limit store unreachable: counting locally for now",
                    error=type(exc).__name__,
                    retry_s=self.retry_s,
                )
                self._retry_at = loop.time() + self.retry_s
        return await getattr(self.local, method)(*args, **kwargs)

    async def set(self, key: str, value: str | bytes, expires_in: Any = None) -> None:
        await self._call("set", key, value, expires_in=expires_in)

    async def get(self, key: str, renew_for: Any = None) -> bytes | None:
        value: bytes | None = await self._call("get", key, renew_for=renew_for)
        return value

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def delete_all(self) -> None:
        await self._call("delete_all")

    async def exists(self, key: str) -> bool:
        return bool(await self._call("exists", key))

    async def expires_in(self, key: str) -> int | None:
        value: int | None = await self._call("expires_in", key)
        return value

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.shared.__aexit__(*exc_info)  # a RedisStore closes its client


def _rate_limit_store(settings: Settings, keys: Keys) -> Store:
    if settings.bus.redis_url:
        from litestar.stores.redis import RedisStore

        return FallbackStore(
            RedisStore.with_client(
                url=settings.bus.redis_url, namespace=f"{keys.prefix}ttlp:ratelimit"
            )
        )
    return MemoryStore()


def _setup_store(settings: Settings, keys: Keys) -> Store | None:
    """Where every api replica registers its setup link (``ttlp.api.setup``): Redis, or
    nowhere for a process of its own."""
    if not settings.bus.redis_url:
        return None
    from litestar.stores.redis import RedisStore

    return RedisStore.with_client(url=settings.bus.redis_url, namespace=f"{keys.prefix}ttlp:setup")


SIGNATURE_ONLY: Final = frozenset({"api", "request", "self"})
"""Handler parameters that are not request input (dependencies, the connection)."""


def document_api(app: Litestar, security: dict[str, list[str]]) -> None:
    """Make the OpenAPI document say what the app does, beyond what Litestar infers from the
    handlers (checked by schemathesis in the integration tests):

    - the errors each operation can answer with, not only those its handler raises: the rate
      limits (429) and authentication (401/403) happen in middleware, a path with ids can 404,
      input can be refused (400), a body can be too large (413);
    - ``security`` only on the operations that need a token (the open ones say ``[]``);
    - no content for 204 responses, ``text/event-stream`` for the SSE feed;
    - ``text/csv`` beside JSON for a handler that also answers a CSV download
      (``opt={"csv": True}``: the fans' ``format=csv``);
    - ``additionalProperties: false`` for request bodies that refuse unknown fields.

    Works on the app's own copies of the handlers, then on the document, built here once.
    """
    open_paths = [re.compile(pattern) for pattern in OPEN_PATHS]
    open_operations: set[tuple[str, str]] = set()
    strict_bodies: set[str] = set()
    event_streams: set[tuple[str, str]] = set()
    csv_downloads: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            errors: list[type[HTTPException]] = [*(handler.raises or []), TooManyRequestsException]
            parameters = handler.parsed_fn_signature.parameters
            inputs = set(parameters) - SIGNATURE_ONLY
            if handler.opt.get("exclude_from_auth") or any(p.match(route.path) for p in open_paths):
                open_operations.update((route.path_format, m.lower()) for m in handler.http_methods)
            else:
                errors += [NotAuthorizedException, PermissionDeniedException]
            if route.path_parameters:
                errors.append(NotFoundException)
            if inputs:
                errors.append(ValidationException)
            if "data" in inputs:
                errors.append(RequestEntityTooLarge)
                body = parameters["data"].annotation
                if (
                    isinstance(body, type)
                    and issubclass(body, msgspec.Struct)
                    and body.__struct_config__.forbid_unknown_fields
                ):
                    strict_bodies.add(body.__name__)
            handler.raises = list(dict.fromkeys(errors))
            returns = handler.parsed_fn_signature.return_type.annotation
            if isinstance(returns, type) and issubclass(returns, ServerSentEvent):
                event_streams.update((route.path_format, m.lower()) for m in handler.http_methods)
            if handler.opt.get("csv"):
                csv_downloads.update((route.path_format, m.lower()) for m in handler.http_methods)

    document = app.openapi_schema
    document.security = [security]
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            operation.security = [] if (path, method) in open_operations else [security]
            responses = operation.responses or {}
            no_content = responses.get("204")
            if isinstance(no_content, OpenAPIResponse):
                no_content.content = None
            feed = responses.get("200")
            if (path, method) in event_streams and isinstance(feed, OpenAPIResponse):
                feed.content = {
                    "text/event-stream": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                }
            if (path, method) in csv_downloads and isinstance(feed, OpenAPIResponse):
                feed.content = {
                    **(feed.content or {}),
                    "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                }
    schemas = document.components.schemas if document.components else None
    for name in strict_bodies:
        schema = (schemas or {}).get(name)
        if isinstance(schema, Schema):
            schema.additional_properties = False


def create_app(
    config: Settings,
    bus: Bus,
    keys: Keys,
    engine: AsyncEngine,
    stop: asyncio.Event | None = None,
) -> Litestar:
    """The api role's app over ``bus`` and ``engine``. ``stop`` ends live feeds (the role's
    stop event)."""
    settings = config.api
    stop = stop or asyncio.Event()
    queries = Queries(engine)
    accounts = Accounts(engine)
    channels = make_channels(settings.sse_backlog)
    feed = Feed(
        bus,
        keys.events,
        channels,
        HandleDirectory.of(engine),
        heartbeat_s=settings.sse_heartbeat_s,
        message_events=message_events(settings.sse_backlog),
    )
    metrics = ApiMetrics()
    account_cache = AccountCache(accounts)
    setup_store = _setup_store(config, keys)
    setup = SetupLink(accounts, setup_store)
    overlays = OverlayHub(OverlayStore(engine))
    api = ApiState(
        settings=config,
        bus=bus,
        keys=keys,
        engine=engine,
        queries=queries,
        accounts=accounts,
        feed=feed,
        metrics=metrics,
        account_cache=account_cache,
        outbound=Outbound(config.outbound),
        setup=setup,
        overlays=overlays,
    )
    jwt_auth = make_jwt_auth(config, account_cache)
    ip_limit = RateLimitConfig(
        rate_limit=(settings.rate_limit_window, settings.rate_limit_ip),
        identifier_for_request=_ip,
        # Not the UI's files, nor overlays counted by their token (ttlp.api.overlays.limits).
        check_throttle_handler=overlay_limits.per_ip(overlays),
        store="rate_limit",
    )
    account_limit = RateLimitConfig(
        rate_limit=(settings.rate_limit_window, settings.rate_limit_account),
        identifier_for_request=_account,
        check_throttle_handler=_logged_in,
        store="rate_limit",
    )

    def outer_middleware_first(config: AppConfig) -> AppConfig:
        # Runs after the JWT plugin has put its middleware first: put these before it.
        config.middleware[:0] = [
            metrics_middleware(metrics),
            ip_limit.middleware,
            overlay_limits.per_token(overlays).middleware,
            input_guard(settings.max_body_bytes),
        ]
        return config

    rate_limit_store = _rate_limit_store(config, keys)

    @contextlib.asynccontextmanager
    async def feed_tail(_app: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(feed.run(stop), name="api-feed")
        try:
            yield
        finally:
            feed.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # Litestar does not close the stores it is given (the Redis one holds a pool).
            await rate_limit_store.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def setup_link(_app: Litestar) -> AsyncIterator[None]:
        # Before the server accepts requests: the role prints the link once it listens.
        try:
            await setup.open()
        except Exception as exc:  # the database away: no link now; a restart makes one
            log.warning("could not look for accounts: no setup link", error=type(exc).__name__)
        keeping = asyncio.create_task(setup.keep(stop), name="api-setup-link")
        try:
            yield
        finally:
            keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping
            await setup.close()
            if setup_store is not None:
                await setup_store.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def overlay_watch(_app: Litestar) -> AsyncIterator[None]:
        # Tells open overlays what changed on other api replicas (ttlp.api.overlays.hub).
        task = asyncio.create_task(overlays.run(stop), name="api-overlay-watch")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Litestar(
        route_handlers=[
            *auth.routes,
            *accounts_routes.routes,
            *history.routes,
            *export_routes.routes,
            *fans_routes.routes,
            *live.routes,
            *analytics.routes,
            *ops.routes,
            *ingest.routes,
            *dlq.routes,
            *rules_routes.routes,
            *backtest_routes.routes,
            *actions.routes,
            *forward_routes.routes,
            *gdpr_routes.routes,
            *ui_routes.routes,
            *overlays_routes.routes,
            *overlay_routes.routes,
        ],
        dependencies={"api": Provide(lambda: api, sync_to_thread=False)},
        plugins=[channels],
        middleware=[account_limit.middleware],
        on_app_init=[jwt_auth.on_app_init, outer_middleware_first],
        lifespan=[feed_tail, setup_link, overlay_watch],
        stores={"rate_limit": rate_limit_store},
        exception_handlers={
            TooManyRequestsException: too_many_requests,
            HTTPException: http_error,
            TtlpError: ttlp_error,
            Exception: unexpected_error,
        },
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="ttlp",
            version=__version__,
            path=DOCS_PREFIX,
            description="TikTok LIVE data: history, live feed, replay, analytics.",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        before_send=[security_headers, metrics.count_response],
        debug=False,
        logging_config=None,
    )
    document_api(app, jwt_auth.security_requirement)
    app.state.api = api
    app.state.jwt_auth = jwt_auth
    app.state.stop = stop
    return app
