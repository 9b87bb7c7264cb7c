"""Schemathesis hooks for scripts/schema-fuzz.

- `error_is_documented_json`: every 4xx/5xx answer is the documented error, JSON
  `{"error": {"code": str, "message": str}}` with an application/json content type.
- path ids: half the generated `{id}`s are replaced by ids of the fixture's real objects
  (SCHEMA_FUZZ_IDS, JSON: collection -> id), so the fuzzer gets past "not found".
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

IDS = json.loads(os.environ.get("SCHEMA_FUZZ_IDS", "{}"))


def _collection(path):
    parts = [p for p in path.split("/") if p]
    # /api/v1/<collection>/{id}/…, /widget/v1/<collection>/{id}, /webhooks/telegram/{id}
    if len(parts) >= 3 and parts[0] in ("api", "widget"):
        return parts[2]
    return parts[1] if len(parts) > 1 else ""


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    if not path_parameters or "id" not in path_parameters or ctx.operation is None:
        return st.just(path_parameters)
    real = IDS.get(_collection(ctx.operation.path))
    if real is None:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, "id": real}])


@schemathesis.check
def error_is_documented_json(ctx, response, case):
    if response.status_code < 400:
        return None
    what = f"{response.status_code} from {case.method} {case.formatted_path}"
    ctype = ",".join(response.headers.get("content-type", []))
    if "application/json" not in ctype:
        raise AssertionError(f"{what}: content-type {ctype!r}, not JSON: {response.content[:200]!r}")
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"{what}: the body is not JSON ({e}): {response.content[:200]!r}")
    err = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(err, dict)
        and isinstance(err.get("code"), str)
        and isinstance(err.get("message"), str)
    ):
        raise AssertionError(f"{what}: not the documented error shape: {response.content[:200]!r}")
    return None
