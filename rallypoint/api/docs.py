"""The API's documentation: the interactive page at ``/api/docs`` and what the OpenAPI description adds.

The page is Swagger UI from django-ninja's own copy of its files, served from our static files (no CDN),
started by ``web/api-docs.js``: it runs under the site's nonce-based Content-Security-Policy, without
'unsafe-inline' or 'unsafe-eval'. Signed-in people may read it; the OpenAPI description itself stays public.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI, Schema
from ninja.openapi.docs import DocsBase
from pydantic import Field

VALIDATION_ERROR_DESCRIPTION = (
    "Validation error: the request's body or parameters do not match the schema (a required field is "
    "missing, a value has the wrong type, a text is too long, the JSON cannot be read). Nothing was saved. "
    "`detail` lists each problem with its location, e.g. `[\"body\", \"payload\", \"location\"]`.")


class ValidationProblem(Schema):
    type: str = Field(description="The kind of problem, e.g. `missing`, `int_parsing`, `string_too_long`.")
    loc: list[str | int] = Field(description="Where: the part of the request (`body`, `path`, `query`, "
                                             "`header`), then the field.")
    msg: str = Field(description="What is wrong, in English.")
    ctx: dict[str, Any] | None = Field(None, description="Details of some problems, e.g. `max_length`.")


class ValidationErrorOut(Schema):
    detail: list[ValidationProblem]


class SwaggerPage(DocsBase):
    """Swagger UI inside the web app's own page, for signed-in people."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return render(request, "web/api_docs.html", {"openapi_url": self.get_openapi_url(api, kwargs)})


class DocumentedAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI description also lists the 422 answer of every operation that takes input.

    django-ninja answers 422 when a request's body or parameters do not validate, but does not say so in
    the description; adding it here covers every endpoint, present and future, in one place.
    """

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        add_validation_errors(schema)
        return schema


def add_validation_errors(schema: dict) -> None:
    """Add the 422 answer, with its schema, to every operation with parameters or a request body."""
    definition = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(definition.pop("$defs", {}))
    components["ValidationErrorOut"] = definition
    answer = {"description": VALIDATION_ERROR_DESCRIPTION,
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorOut"}}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and (operation.get("parameters") or operation.get("requestBody")):
                operation.setdefault("responses", {}).setdefault("422", answer)
