"""The README's Python example, run against a live Tessera: python verify.py ISSUER TOKEN"""
import sys

import jwt

issuer, token = sys.argv[1], sys.argv[2]
jwks = jwt.PyJWKClient(issuer + "/.well-known/jwks.json", lifespan=300)


def verify(token: str) -> dict:
    if jwt.get_unverified_header(token).get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
        raise jwt.InvalidTokenError("not an access token")
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(
        token, key.key,
        algorithms=["ES256", "EdDSA", "RS256"],
        issuer=issuer,
        audience=issuer,
        leeway=5,
    )


payload = verify(token)
try:
    verify(token[:-6] + "AAAAAA")
    sys.exit("PyJWT accepted a forged signature")
except jwt.InvalidTokenError:
    pass
print(f"PyJWT: verified {payload['sub']}, refused a forgery")
