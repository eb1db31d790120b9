"""A local Security Token Service for the end-to-end suite, with Google's
OAuth token endpoint for service-account keys (`/token`), its revocation
endpoint (`/revoke`) and IAM Credentials' `generateAccessToken`.

It speaks Google STS's token exchange (RFC 8693) and checks every request
the way Google does: the grant type, the audience Sluice is configured
with, the subject token type, the requested token type and a scope. Its
workload identity providers trust **Sluice's issuer alone**, as
docs/bigquery.md sets them up: the subject token must be an ES256 JWT
signed by a key of Sluice's JWKS (the files in --jwks-dir, as
`sluice secrets jwks --out` writes them and `--jwk-json-path` hands them to
Google; read again at every exchange, as after `update-oidc`), with `iss`
Sluice's issuer, `aud` the provider, and a current, short lifetime.
Anything else — an agent's own OIDC token above all — is refused with
`invalid_grant`. A request that is wrong is refused with the OAuth error
shape, so a gateway that sends anything else fails the suite. Every issued
token and every subject token is recorded (the suite checks that none of
them ever appears in Sluice's logs or answers, and that no agent token was
ever sent here by Sluice).

    python fake_sts.py --port 0 --audience AUD [--audience AUD2] \
        --issuer https://sluice.e2e.test --jwks-dir DIR      # prints "listening on http://127.0.0.1:PORT"
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
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

EXPECTED = {
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
}


# A caller (the `caller_sub` Sluice asserts) this service refuses, as a
# provider's attribute condition would.
REFUSED_SUBJECT = "sts-refused"
# The longest assertion lifetime accepted.
MAX_LIFETIME_S = 3600


def _claims(token: str) -> dict:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, IndexError):
        return {}


def _b64(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def trusted_keys(jwks_dir: Path) -> dict[str, bytes]:
    """The P-256 keys of every JWKS file in `jwks_dir`, by kid, as PEM."""
    keys: dict[str, bytes] = {}
    for path in sorted(jwks_dir.glob("*.json")):
        try:
            jwks = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a file being written; read again at the next exchange
        for key in jwks.get("keys", []):
            if key.get("kty") != "EC" or key.get("crv") != "P-256" or "d" in key:
                continue
            public = ec.EllipticCurvePublicNumbers(_b64(key["x"]), _b64(key["y"]), ec.SECP256R1()).public_key()
            keys[key["kid"]] = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
    return keys


class Sts:
    def __init__(self, audiences: list[str], issuer: str, jwks_dir: Path):
        self.audiences = audiences
        self.issuer = issuer
        self.jwks_dir = jwks_dir
        self.lock = threading.Lock()
        self.issued: list[str] = []
        self.refused: list[str] = []
        self.exchanges = 0
        # Every subject token received, accepted or not.
        self.subject_tokens: list[str] = []
        # What was asserted in every accepted exchange, in order: audience,
        # sub, caller_sub, kid, policies.
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

    def verify(self, token: str, audience: str) -> tuple[dict, str | None, str | None]:
        """Checks `token` as a provider trusting Sluice's issuer alone: the
        claims and kid, or the reason it is refused."""
        if token.count(".") != 2:
            return {}, None, "the subject token is not a JWT"
        try:
            header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=" * (-len(token.split(".")[0]) % 4)))
        except ValueError:
            return {}, None, "the subject token is not a JWT"
        kid = header.get("kid")
        if header.get("alg") != "ES256":
            return {}, kid, f"the subject token is signed with {header.get('alg')!r}; the issuer's keys are ES256"
        keys = trusted_keys(self.jwks_dir)
        if kid not in keys:
            return {}, kid, "the subject token is not signed by a key of the trusted issuer's JWKS"
        try:
            claims = jwt.decode(token, certs={kid: keys[kid]}, audience=audience, clock_skew_in_seconds=5)
        except (auth_exceptions.GoogleAuthError, ValueError) as exc:
            return {}, kid, f"the subject token was rejected: {exc}"
        if claims.get("iss") != self.issuer:
            return {}, kid, f"the issuer in the token does not match the provider's issuer {self.issuer}"
        if not isinstance(claims.get("sub"), str) or not 0 < len(claims["sub"].encode()) <= 127:
            return {}, kid, "google.subject must be 1 to 127 bytes"
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_S:
            return {}, kid, "the token lives longer than an hour"
        return claims, kid, None

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
        with self.lock:
            self.subject_tokens.append(subject)
        claims, kid, untrusted = {}, None, None
        if not problems:
            claims, kid, untrusted = self.verify(subject, one("audience"))
        if untrusted:
            # What Google answers for a token its provider does not trust.
            with self.lock:
                self.refused.append("untrusted subject token: " + untrusted)
            return 400, {"error": "invalid_grant", "error_description": untrusted}
        if claims.get("caller_sub") == REFUSED_SUBJECT:
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
            self.exchanged.append({
                "audience": one("audience"),
                "sub": claims.get("sub"),
                "caller_sub": claims.get("caller_sub"),
                "kid": kid,
                "policies": claims.get("policies"),
            })
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
                            "subject_tokens": sts.subject_tokens,
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
    parser.add_argument("--issuer", required=True, help="Sluice's issuer URL, the only issuer the providers trust")
    parser.add_argument("--jwks-dir", required=True, type=Path, help="a folder of Sluice's JWKS files (sluice secrets jwks --out)")
    args = parser.parse_args()
    sts = Sts(args.audience, args.issuer, args.jwks_dir)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(sts))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
