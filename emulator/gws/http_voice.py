"""``/workspace/v3/voice/...``: every operation of ``voice_ops`` through one pair of routes.

``POST voice/{path}`` and ``POST voice/calls/{id}/{path}`` find the operation's row, read its
body fields (HTTP 400 naming a missing or mistyped one), and hand it to the node. The answer is
``{"status": {"code": 1, "message"}, "operationId"}``: accepted, the outcome arrives on
``/workspace/v3/voice`` in messages carrying the same ``operationId`` (the desktop's own when its
body has one, as the agent-api-simulator echoes it). ``GET voice/calls`` lists the DN's calls.
"""

from __future__ import annotations

from aiohttp import web

from emulator.gws import voice_ops
from emulator.gws.errors import NotFound
from emulator.gws.http_common import API, SessionOf, read_json_object, status_body
from emulator.gws.node import GwsNode


class VoiceRoutes:
    def __init__(self, node: GwsNode, session_of: SessionOf) -> None:
        self.node = node
        self.session_of = session_of

    def mount(self, app: web.Application) -> None:
        app.router.add_get(f"{API}/voice/calls", self.calls)
        app.router.add_route("*", f"{API}/voice/calls/{{id}}/{{path}}", self.call_operation)
        app.router.add_route("*", f"{API}/voice/{{path}}", self.dn_operation)

    async def calls(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        return web.json_response(status_body(0, "OK", data={"calls": self.node.calls(session)}))

    async def dn_operation(self, request: web.Request) -> web.Response:
        return await self._operation(request, voice_ops.Scope.DN, "")

    async def call_operation(self, request: web.Request) -> web.Response:
        return await self._operation(request, voice_ops.Scope.CALL, request.match_info["id"])

    async def _operation(
        self, request: web.Request, scope: voice_ops.Scope, call_id: str
    ) -> web.Response:
        path = request.match_info["path"]
        operation = voice_ops.find(scope, path)
        if operation is None:
            where = "call operation" if scope is voice_ops.Scope.CALL else "voice operation"
            raise NotFound(
                f"unknown {where} {path!r} (one of: {', '.join(voice_ops.paths(scope))})"
            )
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        session = self.session_of(request)
        body = await read_json_object(request)
        arguments = voice_ops.read_arguments(operation, body)
        accepted = self.node.voice_operation(
            session, operation, call_id, arguments, voice_ops.operation_id(body)
        )
        what = f"{operation.request} of call {call_id}" if call_id else operation.request
        if accepted.reference_id is None:
            text = f"{what} done"
        else:
            text = f"{what} sent (ReferenceID {accepted.reference_id})"
        return web.json_response(status_body(1, text, operationId=accepted.operation_id))
