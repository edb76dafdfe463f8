"""Static rules over the source: no personal or credential fields read from ``request.GET``.

Query strings end up in logs, browser history and Referer headers (seed: "no data in
HTTP GET parameters"), so no view may expect such a field there.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rallypoint"
FORBIDDEN_GET_KEYS = frozenset({
    "password", "token", "email", "phone", "full_name", "name", "department", "secret", "code", "otp", "key",
})
READ_METHODS = {"get", "getlist"}


def _is_request_get(node: ast.AST) -> bool:
    """``request.GET`` or ``self.request.GET``."""
    if not (isinstance(node, ast.Attribute) and node.attr == "GET"):
        return False
    owner = node.value
    if isinstance(owner, ast.Name):
        return owner.id == "request"
    return (isinstance(owner, ast.Attribute) and owner.attr == "request"
            and isinstance(owner.value, ast.Name) and owner.value.id == "self")


def _forbidden_literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in FORBIDDEN_GET_KEYS:
        return node.value
    return None


def violations(source: str, filename: str) -> list[str]:
    """``file:line: ...`` for every read of a forbidden literal key from ``request.GET``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        key = None
        if isinstance(node, ast.Subscript) and _is_request_get(node.value):
            key = _forbidden_literal(node.slice)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in READ_METHODS and _is_request_get(node.func.value)):
            candidates = [*node.args[:1], *(kw.value for kw in node.keywords if kw.arg == "key")]
            key = next((k for k in map(_forbidden_literal, candidates) if k), None)
        if key:
            found.append(f"{filename}:{node.lineno}: reads {key!r} from request.GET")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_no_personal_or_credential_field_is_read_from_the_query_string():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files
    found = []
    for path in files:
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert not found, "personal or credential fields read from request.GET:\n" + "\n".join(found)


def test_the_rule_finds_subscripts_get_and_getlist_on_request_get():
    sample = '''
def view(request):
    a = request.GET["email"]
    b = request.GET.get("Password", "")
    c = request.GET.getlist("phone")
    d = request.GET.get("page")
    e = request.POST.get("email")
    f = request.GET.get(key="token")
    return a, b, c, d, e, f

class View:
    def get(self, request):
        return self.request.GET["full_name"], self.request.GET.get("q"), other.GET["name"]
'''
    assert violations(sample, "sample.py") == [
        "sample.py:3: reads 'email' from request.GET",
        "sample.py:4: reads 'Password' from request.GET",
        "sample.py:5: reads 'phone' from request.GET",
        "sample.py:8: reads 'token' from request.GET",
        "sample.py:13: reads 'full_name' from request.GET",
    ]
