#!/usr/bin/python3
"""B8's tokens and PyJWT's side: `jwt_rate.py make N` prints JSON
{HS256: {key, tokens}, RS256: {pem, tokens}, ES256: {pem, tokens}} of N distinct
tokens each (distinct sub); `jwt_rate.py verify FILE SECONDS` reads that JSON and
prints {alg: verifications per second} of PyJWT (Debian's python3-jwt, OpenSSL
through python3-cryptography) over the same tokens, each alg for SECONDS."""
import json, sys, time
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HS_KEY = "bench-b8-hs256-key-0123456789abcdef"


def pem(k):
    return k.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()


if sys.argv[1] == "make":
    n = int(sys.argv[2])
    exp = int(time.time()) + 86400
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ek = ec.generate_private_key(ec.SECP256R1())
    out = {"HS256": {"key": HS_KEY, "tokens": []}, "RS256": {"pem": pem(rk), "tokens": []},
           "ES256": {"pem": pem(ek), "tokens": []}}
    for i in range(n):
        c = {"sub": "user-%d" % i, "exp": exp}
        out["HS256"]["tokens"].append(jwt.encode(c, HS_KEY, algorithm="HS256"))
        out["RS256"]["tokens"].append(jwt.encode(c, rk, algorithm="RS256"))
        out["ES256"]["tokens"].append(jwt.encode(c, ek, algorithm="ES256"))
    print(json.dumps(out))
else:
    doc = json.load(open(sys.argv[2]))
    seconds = float(sys.argv[3])
    rates = {}
    for alg, d in doc.items():
        key = d.get("key") or serialization.load_pem_public_key(d["pem"].encode())
        toks, done, t0 = d["tokens"], 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for t in toks:
                jwt.decode(t, key, algorithms=[alg])
            done += len(toks)
        rates[alg] = done / (time.perf_counter() - t0)
    print(json.dumps(rates))
