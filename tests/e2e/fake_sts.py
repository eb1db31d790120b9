"""A local Security Token Service for the end-to-end suite, with Google's
OAuth token endpoint for service-account keys (`/token`), its revocation
endpoint (`/revoke`) and IAM Credentials' `generateAccessToken`.

It speaks Google STS's token exchange (RFC 8693) and checks every request
the way Google does: the grant type, the audience Sluice is configured
with, the subject token type, the requested token type, a scope, and a
subject token that is a JWT. A request that is wrong is refused with the
OAuth error shape, so a gateway that sends anything else fails the suite.
Every issued token is recorded (the suite checks that none of them ever
appears in Sluice's logs or answers).

    python fake_sts.py --port 0 --audience AUD [--audience AUD2]   # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXPECTED = {
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
}


# A subject whose token this service refuses, as a provider's attribute
# condition would.
REFUSED_SUBJECT = "sts-refused"


def _claims(jwt: str) -> dict:
    try:
        payload = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, IndexError):
        return {}


class Sts:
    def __init__(self, audiences: list[str]):
        self.audiences = audiences
        self.lock = threading.Lock()
        self.issued: list[str] = []
        self.refused: list[str] = []
        self.exchanges = 0
        # (audience, subject) of every exchange, in order.
        self.exchanged: list[dict] = []
        # Tokens issued for service-account key assertions, and revoked ones.
        self.key_tokens: list[str] = []
        self.revoked: list[str] = []
        # generateAccessToken calls: the account, scope and lifetime asked.
        self.impersonated: list[dict] = []

    def jwt_bearer(self, form: dict[str, list[str]], token_uri: str) -> tuple[int, dict]:
        """Google's OAuth token endpoint for a service-account key: a JWT-bearer
        grant whose assertion names the account (`iss`), this endpoint
        (`aud`), a scope, and lives at most an hour. (The signature is checked
        against a fake endpoint in crates/sluice-credentials.)"""
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        claims = _claims(assertion) if assertion.count(".") == 2 else {}
        problems = []
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problems.append("grant_type must be jwt-bearer")
        if not str(claims.get("iss", "")).endswith(".iam.gserviceaccount.com"):
            problems.append("iss must be the service account")
        if claims.get("aud") != token_uri:
            problems.append(f"aud must be {token_uri}")
        if "bigquery" not in str(claims.get("scope", "")):
            problems.append("scope must include BigQuery")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or not 0 < exp - iat <= 3600:
            problems.append("iat/exp must span at most an hour")
        with self.lock:
            if problems:
                self.refused.append("; ".join(problems))
                return 400, {"error": "invalid_grant", "error_description": "; ".join(problems)}
            token = "ya29.fake-key-" + secrets.token_urlsafe(24)
            self.issued.append(token)
            self.key_tokens.append(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def generate_access_token(self, account: str, bearer: str, body: dict) -> tuple[int, dict]:
        """IAM Credentials generateAccessToken: the caller must hold a token
        this service issued (a federated one), ask for a scope and a lifetime
        of at most an hour."""
        lifetime = str(body.get("lifetime", ""))
        problems = []
        with self.lock:
            known = bearer in self.issued
        if not known:
            return 401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}
        if not body.get("scope"):
            problems.append("scope is missing")
        if not (lifetime.endswith("s") and lifetime[:-1].isdigit() and 0 < int(lifetime[:-1]) <= 3600):
            problems.append("lifetime must be Ns, at most 3600s")
        if problems:
            return 400, {"error": {"code": 400, "message": "; ".join(problems), "status": "INVALID_ARGUMENT"}}
        expires = time.time() + int(lifetime[:-1])
        token = "ya29.fake-sa-" + secrets.token_urlsafe(24)
        with self.lock:
            self.issued.append(token)
            self.impersonated.append({"service_account": account, "scope": body["scope"], "lifetime": lifetime})
        expire_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        return 200, {"accessToken": token, "expireTime": expire_time}

    def revoke(self, form: dict[str, list[str]]) -> tuple[int, dict]:
        token = form.get("token", [""])[0]
        with self.lock:
            if token not in self.issued:
                return 400, {"error": "invalid_token"}
            self.revoked.append(token)
        return 200, {}

    def exchange(self, form: dict[str, list[str]]) -> tuple[int, dict]:
        def one(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values and len(values) == 1 else None

        problems = [f"{k} must be {v!r}" for k, v in EXPECTED.items() if one(k) != v]
        if one("audience") not in self.audiences:
            problems.append(f"audience must be one of {self.audiences!r}")
        if not one("scope"):
            problems.append("scope is missing")
        subject = one("subject_token") or ""
        if subject.count(".") != 2 or len(subject) < 20:
            problems.append("subject_token is not a JWT")
        elif _claims(subject).get("sub") == REFUSED_SUBJECT:
            # As Google does when the provider's attribute condition fails.
            with self.lock:
                self.refused.append("attribute condition")
            return 400, {
                "error": "unauthorized_client",
                "error_description": "The given credential is rejected by the attribute condition.",
            }
        with self.lock:
            if problems:
                self.refused.append("; ".join(problems))
                return 400, {"error": "invalid_request", "error_description": "; ".join(problems)}
            token = "ya29.fake-sts-" + secrets.token_urlsafe(24)
            self.issued.append(token)
            self.exchanges += 1
            self.exchanged.append({"audience": one("audience"), "sub": _claims(subject).get("sub")})
        return 200, {
            "access_token": token,
            "issued_token_type": EXPECTED["requested_token_type"],
            "token_type": "Bearer",
            "expires_in": 3600,
        }


def make_handler(sts: Sts):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            impersonate = re.fullmatch(r"/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken", self.path)
            if impersonate:
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                try:
                    body = json.loads(raw or "{}")
                except ValueError:
                    body = {}
                return self._send(*sts.generate_access_token(impersonate.group(1), bearer, body))
            if self.path not in ("/v1/token", "/token", "/revoke"):
                return self._send(404, {"error": "not_found"})
            if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                return self._send(400, {"error": "invalid_request", "error_description": "form body expected"})
            form = urllib.parse.parse_qs(raw, keep_blank_values=True)
            if self.path == "/token":
                host, port = self.server.server_address[:2]
                status, body = sts.jwt_bearer(form, f"http://{host}:{port}/token")
            elif self.path == "/revoke":
                status, body = sts.revoke(form)
            else:
                status, body = sts.exchange(form)
            self._send(status, body)

        def do_GET(self):
            if self.path == "/record":
                with sts.lock:
                    return self._send(200, {
                            "issued": sts.issued,
                            "refused": sts.refused,
                            "exchanges": sts.exchanges,
                            "exchanged": sts.exchanged,
                            "key_tokens": sts.key_tokens,
                            "revoked": sts.revoked,
                            "impersonated": sts.impersonated,
                        })
            self._send(404, {"error": "not_found"})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--audience", required=True, action="append", help="a provider audience it accepts; repeatable")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Sts(args.audience)))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
