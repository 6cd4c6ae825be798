#!/usr/bin/python3
"""Makes the tokens of spec/jwt_spec.lua with PyJWT (Debian's python3-jwt) and
python3-cryptography: prints one JSON object of keys (PEM, secrets) and tokens,
each made for the spec's clock T (argv[1]); argv[2], a margin in seconds
(default 0), widens the time cases for a spec whose clock runs on meanwhile."""
import base64, hashlib, hmac, json, sys
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

T = int(sys.argv[1])
M = int(sys.argv[2]) if len(sys.argv) > 2 else 0
SECRET = "hs256-secret-of-at-least-32-bytes!!"


def pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_int(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
ec_key = ec.generate_private_key(ec.SECP256R1())
ec_other = ec.generate_private_key(ec.SECP256R1())
ec_p384 = ec.generate_private_key(ec.SECP384R1())

claims = {"sub": "alice", "exp": T + 600, "aud": "app", "iss": "https://auth.example"}


def with_(**kw):
    c = dict(claims)
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


tokens = {
    "hs_ok": jwt.encode(claims, SECRET, algorithm="HS256"),
    "rs_ok": jwt.encode(claims, rsa_key, algorithm="RS256"),
    "es_ok": jwt.encode(claims, ec_key, algorithm="ES256"),
    "expired": jwt.encode(with_(exp=T - 31), SECRET, algorithm="HS256"),
    "expired_in_leeway": jwt.encode(with_(exp=T - 29 + M), SECRET, algorithm="HS256"),
    "not_yet": jwt.encode(with_(nbf=T + 31 + M), SECRET, algorithm="HS256"),
    "nbf_in_leeway": jwt.encode(with_(nbf=T + 29), SECRET, algorithm="HS256"),
    "no_exp": jwt.encode(with_(exp=None), SECRET, algorithm="HS256"),
    "wrong_aud": jwt.encode(with_(aud="other"), SECRET, algorithm="HS256"),
    "aud_list": jwt.encode(with_(aud=["x", "app"]), SECRET, algorithm="HS256"),
    "wrong_iss": jwt.encode(with_(iss="https://evil.example"), SECRET, algorithm="HS256"),
    "rs_wrong_key": jwt.encode(claims, rsa_other, algorithm="RS256"),
    "es_wrong_key": jwt.encode(claims, ec_other, algorithm="ES256"),
    "hs_wrong_key": jwt.encode(claims, SECRET + "x", algorithm="HS256"),
    "none": jwt.encode(claims, None, algorithm="none"),
    "crit": jwt.encode(claims, SECRET, algorithm="HS256", headers={"crit": ["exp"]}),
    "big": jwt.encode(with_(pad="p" * 9000), SECRET, algorithm="HS256"),
    "other_claim": jwt.encode(with_(uid="u-42"), SECRET, algorithm="HS256"),
    "kid_a": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "a"}),
    "kid_b": jwt.encode(claims, ec_other, algorithm="ES256", headers={"kid": "b"}),
    "kid_unknown": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "zz"}),
    "rs_kid": jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "r1"}),
    "es_kid": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "e1"}),
}

# HS256 signed with the RSA public key's PEM as the HMAC secret: the
# algorithm-confusion attack (PyJWT refuses to make it, so made by hand).
head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64u(json.dumps(claims).encode())
mac = hmac.new(pem(rsa_key).encode(), (head + "." + body).encode(), hashlib.sha256).digest()
tokens["confusion"] = head + "." + body + "." + b64u(mac)

# a valid token whose payload is changed afterwards
h, p, s = tokens["hs_ok"].split(".")
tokens["tampered"] = h + "." + b64u(json.dumps(with_(sub="mallory")).encode()) + "." + s
# ES256 with a DER signature instead of JOSE's raw R || S
from cryptography.hazmat.primitives import hashes
h, p, _ = tokens["es_ok"].split(".")
der = ec_key.sign((h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
tokens["es_der"] = h + "." + p + "." + b64u(der)

# RFC 7515 A.1 (HS256) and A.3 (ES256): their keys from JWK
A1_K = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
a3 = ec.EllipticCurvePublicNumbers(
    jwk_int("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"),
    jwk_int("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"), ec.SECP256R1()).public_key()

print(json.dumps({
    "secret": SECRET, "rsa": pem(rsa_key), "ec": pem(ec_key), "ec_other": pem(ec_other),
    "rsa_small": pem(rsa_small), "ec_p384": pem(ec_p384), "tokens": tokens,
    "a1_secret_b64u": A1_K,
    "a3_pem": a3.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
}))
