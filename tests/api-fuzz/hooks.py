"""Schemathesis hooks: sign every generated request as a real enrolled terminal.

The sync API refuses unsigned requests with 401, so without this only the refusal path would
be fuzzed. `PALPAL_FUZZ_TERMINALS` names the terminals `run.sh` enrolled, as
`id:seed-hex,id:seed-hex`; requests alternate between them (a kiosk and a counter), so both
roles reach the handlers. The generated body is sent as the exact bytes that were signed
(`application/octet-stream`: the server reads bytes and does not look at Content-Type), with a
fresh nonce and the current time, following docs/sync-api.yaml "Signing".
"""

import hashlib
import itertools
import json
import os
import secrets
import time
from base64 import b64encode

import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SIGNED = (
    "/v1/sync",
    "/v1/pull",
    "/v1/reports/reconciliation",
    "/v1/members/lookup",
    "/v1/cards",
)


def _terminals():
    out = []
    for item in os.environ.get("PALPAL_FUZZ_TERMINALS", "").split(","):
        if not item:
            continue
        terminal_id, seed = item.split(":")
        out.append((terminal_id, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))))
    return out


_CYCLE = itertools.cycle(_terminals() or [None])


def _body_bytes(body):
    if body is None or isinstance(body, schemathesis.core.NotSet):
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if path not in SIGNED:
        return
    terminal = next(_CYCLE)
    if terminal is None:
        return
    terminal_id, key = terminal
    method = case.method.upper()
    body = b"" if method == "GET" else _body_bytes(case.body)
    if method != "GET":
        case.body = body
        case.media_type = "application/octet-stream"
    timestamp = str(int(time.time()))
    nonce = secrets.token_urlsafe(24)
    text = "\n".join(
        ["PALPAL-SIG-V1", method, path, terminal_id, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    )
    signature = b64encode(key.sign(text.encode("utf-8"))).decode("ascii")
    headers = dict(case.headers or {})
    headers.update(
        {
            "x-palpal-terminal": terminal_id,
            "x-palpal-timestamp": timestamp,
            "x-palpal-nonce": nonce,
            "x-palpal-signature": signature,
        }
    )
    case.headers = headers
