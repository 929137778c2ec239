"""Interop: a real third-party OAuth client (Python authlib) against a running scopegate.

Gets a token by client credentials with authlib's httpx client (client_secret_basic and
client_secret_post), verifies the JWT against /jwks.json with authlib's JOSE, introspects it
as a resource server, revokes it with authlib, and sees it introspect inactive.

Usage: SCOPEGATE_URL=http://127.0.0.1:PORT python3 authlib_client_credentials.py
(the server must run with the demo seeded: `scopegate serve --demo`).
"""

import os
import sys
import warnings

import authlib.deprecate  # noqa: E402

# authlib announces successors to its httpx client and JOSE module; these are what we test.
warnings.filterwarnings("ignore", category=authlib.deprecate.AuthlibDeprecationWarning)

import httpx  # noqa: E402
from authlib.integrations.httpx_client import OAuth2Client  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402

BASE = os.environ["SCOPEGATE_URL"]
passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


metadata = httpx.get(f"{BASE}/.well-known/oauth-authorization-server").json()
check("metadata names the issuer", metadata["issuer"] == BASE, metadata)

for method in ("client_secret_basic", "client_secret_post"):
    client = OAuth2Client(
        "bank-api", "bank-api-secret", token_endpoint_auth_method=method, scope="profile"
    )
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    check(
        f"{method}: authlib gets a bearer token",
        token.get("token_type") == "Bearer" and token.get("scope") == "profile",
        token,
    )

    jwks = JsonWebKey.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    claims = jwt.decode(token["access_token"], jwks)
    claims.validate()
    check(
        f"{method}: the JWT verifies against the JWKS with RFC 9068 claims",
        claims["iss"] == BASE
        and claims["client_id"] == "bank-api"
        and claims["sub"] == "bank-api"
        and claims["scope"] == "profile",
        dict(claims),
    )

    introspected = httpx.post(
        metadata["introspection_endpoint"],
        data={"token": token["access_token"]},
        auth=("bank-api", "bank-api-secret"),
    ).json()
    check(f"{method}: introspection says active", introspected.get("active") is True, introspected)

    client.revoke_token(metadata["revocation_endpoint"], token["access_token"], "access_token")
    introspected = httpx.post(
        metadata["introspection_endpoint"],
        data={"token": token["access_token"]},
        auth=("bank-api", "bank-api-secret"),
    ).json()
    check(f"{method}: after authlib revokes it, it is inactive", introspected == {"active": False}, introspected)

bad = OAuth2Client("bank-api", "wrong-secret")
try:
    bad.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    check("a wrong secret is refused", False, "a token was issued")
except Exception as error:  # authlib raises OAuthError with the RFC error code
    check("a wrong secret is refused with invalid_client", "invalid_client" in str(error), str(error))

print(f"interop (authlib): {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
