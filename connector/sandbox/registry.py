"""A DEVELOPMENT Schema Registry: the subset of Confluent's REST API we use.

This is a development and test tool. Production points the connector at a
real registry: Confluent Schema Registry, Karapace, Apicurio (ccompat API) or
Redpanda. It exists because none of those can be installed where the tests
and ``demo`` run, and an in-memory stand-in URL of the client would only prove that
our code agrees with itself. The proof that it speaks the API is that the
real ``confluent_kafka.schema_registry`` client (2.16) works against it.

Served (Confluent paths, bodies and error codes):
  GET  /                                  {}
  POST /subjects/{s}/versions             register (?normalize) -> {"id": N} only
  POST /subjects/{s}                      lookup (?normalize, ?deleted)
  GET  /subjects                          (?deleted, ?deleted_only, ?subjectPrefix)
  GET  /subjects/{s}/versions             (?deleted)
  GET  /subjects/{s}/versions/{v|latest}  (?deleted) and .../schema, .../referencedby
  DELETE /subjects/{s}, /subjects/{s}/versions/{v}   soft, or ?permanent=true after soft
  GET  /schemas/ids/{id} (?subject), /schemas/ids/{id}/versions, /schemas/ids/{id}/subjects
  GET  /schemas/guids/{guid}, /schemas/types
  GET|PUT|DELETE /config, /config/{s}     (?defaultToGlobal on GET)
  POST /compatibility/subjects/{s}/versions[/{v|latest}]  (?verbose adds "messages");
                                          a subject with no live version: 404 40401
  GET  /mode, /mode/{s} -> READWRITE; PUT accepts READWRITE only
  GET  /contexts -> ["."]
  anything else (e.g. /associations/..., which 2.16's default subject-name
  strategy asks first): 404 {"error_code": 404, ...}, which the client reads
  as "no association" and falls back to TopicNameStrategy.

Deliberate limits: Avro only (no references, JSON Schema or Protobuf);
defaults are not validated against their field types; one context; no auth.
Compatibility decisions are Apache Avro's own (see ``registry_compat``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from connector.sandbox import SandboxExtraMissing

try:
    from connector.sandbox.registry_compat import (
        DEFAULT_LEVEL,
        RegistryError,
        SchemaStore,
        Version,
        check_compatibility,
        normalize_level,
        parse_schema,
        parse_stored,
        schema_not_found,
        subject_not_found,
    )
except SandboxExtraMissing as exc:
    if __name__ == "__main__":  # python -m connector.sandbox.registry: one line, no traceback
        raise SystemExit(f"python -m connector.sandbox.registry: {exc}") from None
    raise

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _flag(request: web.Request, name: str) -> bool:
    # The client sends both httpx-encoded ("true") and str.format'ed ("True").
    return request.query.get(name, "false").lower() == "true"


def _parse_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        # Not an id at all: Confluent's JAX-RS path and Karapace both answer
        # the generic 404, not 40403 (which means "no schema with this id").
        raise RegistryError(404, 404, "HTTP 404 Not Found") from None


def _reply(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type=CONTENT_TYPE)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        payload = await request.json()
    except ValueError:
        raise RegistryError(400, 400, "request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise RegistryError(422, 422, "request body must be a JSON object")
    return payload


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as exc:
        return _reply(exc.body(), exc.http_status)
    except web.HTTPException as exc:
        # Unknown paths (e.g. /associations/...) get Confluent's generic shape.
        return _reply(
            {"error_code": exc.status, "message": f"HTTP {exc.status} {exc.reason}"}, exc.status
        )


def _routes(store: SchemaStore) -> list[web.RouteDef]:
    async def root(_: web.Request) -> web.Response:
        return _reply({})

    async def register(r: web.Request) -> web.Response:
        out = store.register(r.match_info["s"], await _body(r), _flag(r, "normalize"))
        # Confluent's API reference and Karapace answer only the id; a client
        # that read "version" or "schema" from here would break on them.
        return _reply({"id": out["id"]})

    async def lookup(r: web.Request) -> web.Response:
        s = r.match_info["s"]
        return _reply(store.lookup(s, await _body(r), _flag(r, "normalize"), _flag(r, "deleted")))

    async def subjects(r: web.Request) -> web.Response:
        only, with_deleted = _flag(r, "deleted_only"), _flag(r, "deleted")
        prefix = r.query.get("subjectPrefix", "")
        names = []
        for name, vs in store.state.subjects.items():
            has_live = any(not v.deleted for v in vs)
            keep = (not has_live) if only else (has_live or with_deleted)
            if keep and name.startswith(prefix):
                names.append(name)
        return _reply(sorted(names))

    async def versions(r: web.Request) -> web.Response:
        s = r.match_info["s"]
        found = store.versions(s, _flag(r, "deleted"))
        if not found:
            raise subject_not_found(s)
        return _reply([v.version for v in found])

    async def version(r: web.Request) -> web.Response:
        s = r.match_info["s"]
        return _reply(store.describe(s, store.resolve(s, r.match_info["v"], _flag(r, "deleted"))))

    async def version_schema(r: web.Request) -> web.Response:
        v = store.resolve(r.match_info["s"], r.match_info["v"], _flag(r, "deleted"))
        return web.Response(text=store.schema(v.schema_id).text, content_type=CONTENT_TYPE)

    async def referenced_by(r: web.Request) -> web.Response:
        store.resolve(r.match_info["s"], r.match_info["v"], True)
        return _reply([])  # references are not supported, so nothing refers

    async def delete_subject(r: web.Request) -> web.Response:
        return _reply(store.delete_subject(r.match_info["s"], _flag(r, "permanent")))

    async def delete_version(r: web.Request) -> web.Response:
        return _reply(
            store.delete_version(r.match_info["s"], r.match_info["v"], _flag(r, "permanent"))
        )

    async def by_id(r: web.Request) -> web.Response:
        stored = store.schema(_parse_id(r.match_info["id"]))
        return _reply({"schema": stored.text, "guid": stored.guid})

    async def by_guid(r: web.Request) -> web.Response:
        for stored in store.state.schemas.values():
            if stored.guid == r.match_info["guid"]:
                return _reply({"schema": stored.text, "id": stored.id, "guid": stored.guid})
        raise schema_not_found()

    def _uses(r: web.Request) -> list[tuple[str, Version]]:
        schema_id = store.schema(_parse_id(r.match_info["id"])).id
        deleted = _flag(r, "deleted")
        return [
            (s, v)
            for s in sorted(store.state.subjects)
            for v in store.versions(s, deleted)
            if v.schema_id == schema_id
        ]

    async def id_versions(r: web.Request) -> web.Response:
        return _reply([{"subject": s, "version": v.version} for s, v in _uses(r)])

    async def id_subjects(r: web.Request) -> web.Response:
        return _reply(sorted({s for s, _ in _uses(r)}))

    async def types(_: web.Request) -> web.Response:
        return _reply(["AVRO"])

    async def get_config(r: web.Request) -> web.Response:
        s = r.match_info.get("s")
        if s is None:
            return _reply({"compatibilityLevel": store.state.global_level})
        if s not in store.state.subject_levels and not _flag(r, "defaultToGlobal"):
            raise RegistryError(
                404, 40408, f"Subject '{s}' does not have subject-level compatibility configured"
            )
        return _reply({"compatibilityLevel": store.level(s)})

    async def put_config(r: web.Request) -> web.Response:
        body = await _body(r)
        level = normalize_level(body.get("compatibility", body.get("compatibilityLevel")))
        s = r.match_info.get("s")
        if s is None:
            store.state.global_level = level
        else:
            store.state.subject_levels[s] = level
        store.save()
        return _reply({"compatibility": level})

    async def delete_config(r: web.Request) -> web.Response:
        s = r.match_info.get("s")
        if s is None:
            old, store.state.global_level = store.state.global_level, DEFAULT_LEVEL
        elif s in store.state.subject_levels:
            old = store.state.subject_levels.pop(s)
        else:
            raise subject_not_found(s)
        store.save()
        return _reply({"compatibilityLevel": old})

    async def compatibility(r: web.Request) -> web.Response:
        s, raw = r.match_info["s"], r.match_info.get("v")
        parsed = parse_schema(await _body(r), _flag(r, "normalize"))
        # A subject with no live version answers 404, never "compatible". The
        # real registries disagree here: Confluent up to 6.0 answers 40401
        # (confluentinc/schema-registry#1448, #2029), Confluent since 6.1
        # answers 200 is_compatible:true (#1533, confirmed intended in #2624),
        # Karapace 6.2.0 answers 40402 (Aiven-Open/karapace#479, measured by
        # us). The dev registry takes the strict side so that a client tested
        # here also works against the registries that refuse: a caller must
        # treat "subject not found" as "first registration", as ours does in
        # connector.serde.registry.
        store.live_or_404(s)
        level = store.level(s)
        if raw is None:  # against every version the level looks at
            problems = check_compatibility(parsed.avro, store.history(s), level)
        else:
            v = store.resolve(s, raw)
            old = parse_stored(store.schema(v.schema_id).text)
            problems = check_compatibility(parsed.avro, [(v.version, old)], level, False)
        out: dict[str, Any] = {"is_compatible": not problems}
        # Confluent adds "messages" only on ?verbose=true; Karapace 6.2.0 sends
        # them on every incompatible answer, which a strict client would not expect.
        if _flag(r, "verbose"):
            out["messages"] = problems
        return _reply(out)

    async def get_mode(_: web.Request) -> web.Response:
        return _reply({"mode": "READWRITE"})

    async def put_mode(r: web.Request) -> web.Response:
        mode = (await _body(r)).get("mode")
        if mode != "READWRITE":
            raise RegistryError(422, 42204, "the development registry only supports mode READWRITE")
        return _reply({"mode": mode})

    async def contexts(_: web.Request) -> web.Response:
        return _reply(["."])

    return [
        web.get("/", root),
        web.get("/subjects", subjects),
        web.post("/subjects/{s}/versions", register),
        web.post("/subjects/{s}", lookup),
        web.delete("/subjects/{s}", delete_subject),
        web.get("/subjects/{s}/versions", versions),
        web.get("/subjects/{s}/versions/{v}", version),
        web.delete("/subjects/{s}/versions/{v}", delete_version),
        web.get("/subjects/{s}/versions/{v}/schema", version_schema),
        web.get("/subjects/{s}/versions/{v}/referencedby", referenced_by),
        web.get("/schemas/types", types),
        web.get("/schemas/ids/{id}", by_id),
        web.get("/schemas/ids/{id}/versions", id_versions),
        web.get("/schemas/ids/{id}/subjects", id_subjects),
        web.get("/schemas/guids/{guid}", by_guid),
        web.get("/config", get_config),
        web.put("/config", put_config),
        web.delete("/config", delete_config),
        web.get("/config/{s}", get_config),
        web.put("/config/{s}", put_config),
        web.delete("/config/{s}", delete_config),
        web.post("/compatibility/subjects/{s}/versions", compatibility),
        web.post("/compatibility/subjects/{s}/versions/{v}", compatibility),
        web.get("/mode", get_mode),
        web.put("/mode", put_mode),
        web.get("/mode/{s}", get_mode),
        web.put("/mode/{s}", put_mode),
        web.get("/contexts", contexts),
    ]


class DevSchemaRegistry:
    """The registry as an aiohttp server on the caller's event loop."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, persist_path: Path | None = None
    ) -> None:
        self._host, self._port = host, port
        self._store = SchemaStore(persist_path)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[_errors])
        app.add_routes(_routes(self._store))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        # port=0 asks the OS for a free port; read back the one it gave.
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"


class RegistryThread:
    """Runs a DevSchemaRegistry on its own loop in a daemon thread, for sync code."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, persist_path: Path | None = None
    ) -> None:
        self._registry = DevSchemaRegistry(host, port, persist_path)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dev-schema-registry", daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._registry.start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._registry.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def url(self) -> str:
        return self._registry.url

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def run_registry(
    host: str = "127.0.0.1", port: int = 8081, persist_path: Path | None = None
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM via KeyboardInterrupt)."""

    async def serve() -> None:
        registry = DevSchemaRegistry(host, port, persist_path)
        await registry.start()
        print(f"schema registry listening on {registry.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await registry.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Development Schema Registry (not for production)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--persist", type=Path, default=None, help="JSON file to keep state in")
    args = parser.parse_args(argv)
    run_registry(args.host, args.port, args.persist)


if __name__ == "__main__":
    main()
