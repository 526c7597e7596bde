"""Routes whose response models become JSON schemas only when ``/openapi.json`` is asked.

FastAPI turns each route's ``response_model``, and the model of each of its ``responses`` (the
app's six error bodies on every route, the dashboard's included), into a pydantic schema when
the route is declared: ~1 s of CPU at every daemon start, for a document few ever read. Our
endpoints answer their own ``Response`` (``WireResponse``), so those models only document them.
``DocumentedLater`` keeps what a route was declared with and is built without the models;
``document(app)`` builds FastAPI's document from the routes as declared: the same document.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.responses import Response


class DocumentedLater(APIRoute):
    """An API route whose endpoint answers a ``Response``: declared without its response models,
    which ``as_declared`` gives back for the document."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **declared: Any) -> None:
        self.declared = declared
        returns = get_typed_return_annotation(endpoint)
        if inspect.isclass(returns) and issubclass(returns, Response):  # the models document it, never serialize
            responses = declared.get("responses") or {}
            bare = {code: {k: v for k, v in answer.items() if k != "model"} for code, answer in responses.items()}
            declared = {**declared, "response_model": None, "responses": bare}
        super().__init__(path, endpoint, **declared)

    def as_declared(self) -> APIRoute:
        """The route as FastAPI would have built it, its response models' schemas included."""
        return APIRoute(self.path, self.endpoint, **self.declared)


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document of ``app`` (kept in ``app.openapi_schema``), from its routes as declared."""
    routes = [r.as_declared() if isinstance(r, DocumentedLater) and r.include_in_schema else r for r in app.routes]
    app.openapi_schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        terms_of_service=app.terms_of_service,
        contact=app.contact,
        license_info=app.license_info,
        routes=routes,
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
        external_docs=app.openapi_external_docs,
    )
    return app.openapi_schema
