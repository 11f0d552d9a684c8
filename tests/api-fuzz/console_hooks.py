"""Schemathesis hooks for the operator console: every generated form carries the signed-in
session's CSRF token (`PALPAL_FUZZ_CSRF`), so that the fuzzer reaches each form's checks
rather than only the CSRF refusal. The session cookie and the same token as `X-CSRF-Token`
come as headers from console.sh."""

import os

import schemathesis

CSRF = os.environ.get("PALPAL_FUZZ_CSRF", "")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method.upper() != "POST" or not isinstance(case.body, dict) or not CSRF:
        return
    body = dict(case.body)
    body["csrf"] = CSRF
    case.body = body
