"""Each service serves its OpenAPI document, and the document is true to the routing table:
the documented paths and methods are exactly the routes of the service's routes.c plus the
operational endpoints built into common/src/http_builtin.c."""
import os
import re

import pytest
import requests

from harness import ROOT

ROUTE = re.compile(r'\{\{"(GET|POST|PUT|DELETE|PATCH)", "([^"]+)"\}')


def routing_table(service):
    with open(os.path.join(ROOT, service, "src", "routes.c")) as f:
        routes = set(ROUTE.findall(f.read()))
    with open(os.path.join(ROOT, "common", "src", "http_builtin.c")) as f:
        builtin = set(ROUTE.findall(f.read()))
    assert routes and builtin
    return routes | builtin


def documented(doc):
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item
            if method in ("get", "post", "put", "delete", "patch")}


@pytest.mark.parametrize("service", ["user", "room", "reservation"])
def test_openapi_matches_routing_table(stack, service):
    svc = getattr(stack, service)
    r = requests.get(f"{svc.url}/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == f"{service}-service"
    table = routing_table(f"{service}-service")
    missing = table - documented(doc)
    extra = documented(doc) - table
    assert not missing, f"routes without documentation: {sorted(missing)}"
    assert not extra, f"documented but not routed: {sorted(extra)}"
    # Served byte for byte from the file in the repository.
    with open(os.path.join(ROOT, f"{service}-service", "openapi.json"), encoding="utf-8") as f:
        assert r.text == f.read()


@pytest.mark.parametrize("service", ["user", "room", "reservation"])
def test_openapi_references_resolve(stack, service):
    doc = requests.get(f"{getattr(stack, service).url}/openapi.json").json()
    text = repr(doc)
    for ref in set(re.findall(r"'\$ref': '#/components/(\w+)/(\w+)'", text)):
        assert ref[1] in doc["components"][ref[0]], ref
    # Operational endpoints are public; everything else needs the bearer token unless marked.
    for path in ("/health", "/ready", "/live", "/metrics", "/openapi.json"):
        assert doc["paths"][path]["get"]["security"] == []
