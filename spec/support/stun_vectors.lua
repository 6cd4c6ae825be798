-- STUN messages to test the codec against (lua/iceservers/stun/message.lua):
-- the test vectors of RFC 5769 ("Test Vectors for STUN", April 2010), and
-- responses of a real coturn 4.6.1 captured on loopback (the requests were
-- built by an independent Python client, not by the module under test).
-- Each set says what decodes out of it and the credential that keys its
-- MESSAGE-INTEGRITY, so the specs and the fuzz seeds can verify them.
local M = {}

local function unhex(s)
  return (s:gsub("%s", ""):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end
M.unhex = unhex

-- RFC 5769 §2.1-2.3 use a short-term credential: the key is the password.
-- §2.4 is long-term: MD5("<username>:example.org:TheMatrIX"), where
-- "TheMatrIX" is the SASLprep of the RFC's password "The\u{AD}M\u{AA}tr\u{2168}"
-- (this codec does no SASLprep: it is given the prepared string).
M.rfc5769 = {
  short_term_password = "VOkJxbRl1RmTxUk/WvJxBt",
  long_term = {
    username = "\227\131\158\227\131\136\227\131\170\227\131\131\227\130\175\227\130\185",
    realm = "example.org", password = "TheMatrIX", nonce = "f//499k954d6OL34oL9FSTvy64sA" },
  tid = unhex "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae",
  -- §2.1: a Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
  -- MESSAGE-INTEGRITY and FINGERPRINT (its padding bytes are 0x20, not 0).
  request = unhex [[
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf]],
  -- §2.2: the success response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
  ipv4_response = unhex [[
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96]],
  -- §2.3: the same, XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853.
  ipv6_response = unhex [[
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c]],
  -- §2.4: a request with long-term authentication: USERNAME, NONCE, REALM,
  -- MESSAGE-INTEGRITY; no FINGERPRINT.
  long_term_request = unhex [[
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66]],
}

-- coturn 4.6.1 ('Gorst') with use-auth-secret, static-auth-secret
-- "h7-capture-secret", realm iceservers.test, fingerprint, relay-ip 127.0.0.1.
-- The TURN REST credential below (expiry 1900000000) keys every response
-- that carries MESSAGE-INTEGRITY; coturn sends 401, 438 and 437 without one.
-- Each exchange ran on its own UDP socket (after a 401 for its nonce).
M.coturn = {
  username = "1900000000:h7probe",
  password = "YEECcSPP+rlx95TvT4+h039zQ1o=", -- base64(HMAC-SHA1(secret, username))
  realm = "iceservers.test",
  binding_success = unhex [[
    01 01 00 44 21 12 a4 42 55 3e bc 6b f4 cc 2f ba f5 c6 65 19
    00 20 00 08 00 01 c1 98 5e 12 a4 43 00 01 00 08 00 01 e0 8a
    7f 00 00 01 80 2b 00 08 00 01 a4 1b 7f 00 00 01 80 22 00 14
    43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f 72 73 74 27
    80 28 00 04 7d 08 56 48]],
  allocate_401 = unhex [[
    01 13 00 5c 21 12 a4 42 55 40 d6 18 da 4c b5 a8 ae d9 d9 cb
    00 09 00 10 00 00 04 01 55 6e 61 75 74 68 6f 72 69 7a 65 64
    00 15 00 10 37 38 61 66 32 38 35 61 31 30 33 33 36 39 37 66
    00 14 00 0f 69 63 65 73 65 72 76 65 72 73 2e 74 65 73 74 00
    80 22 00 14 43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f
    72 73 74 27 80 28 00 04 95 f8 d0 97]],
  allocate_wrong_password_401 = unhex [[
    01 13 00 5c 21 12 a4 42 3f 52 00 a6 d5 db a5 cd 83 d8 68 45
    00 09 00 10 00 00 04 01 55 6e 61 75 74 68 6f 72 69 7a 65 64
    00 15 00 10 38 34 34 64 61 61 65 36 36 64 63 32 31 65 37 61
    00 14 00 0f 69 63 65 73 65 72 76 65 72 73 2e 74 65 73 74 00
    80 22 00 14 43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f
    72 73 74 27 80 28 00 04 c6 35 c3 19]],
  allocate_expired_401 = unhex [[
    01 13 00 5c 21 12 a4 42 79 db 7f 60 73 9b 0b 6a 73 28 cd 50
    00 09 00 10 00 00 04 01 55 6e 61 75 74 68 6f 72 69 7a 65 64
    00 15 00 10 62 30 37 64 62 32 65 36 61 65 63 36 66 62 66 38
    00 14 00 0f 69 63 65 73 65 72 76 65 72 73 2e 74 65 73 74 00
    80 22 00 14 43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f
    72 73 74 27 80 28 00 04 ed 92 7e 6e]],
  allocate_unknown_420 = unhex [[
    01 13 00 5c 21 12 a4 42 25 57 b9 dd 2c 84 89 a1 f7 1d 42 73
    00 09 00 18 00 00 04 14 55 6e 6b 6e 6f 77 6e 20 41 74 74 72
    69 62 75 74 65 00 00 00 00 0a 00 02 00 31 00 00 80 22 00 14
    43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f 72 73 74 27
    00 08 00 14 d0 12 f0 9a 88 04 e6 cc c1 7f 3a 8f 0e af 35 8b
    cf ca 7d 54 80 28 00 04 62 9b a3 10]],
  allocate_no_transport_400 = unhex [[
    01 13 00 60 21 12 a4 42 06 aa 9a 54 22 86 34 1c 26 e7 a1 7f
    00 09 00 24 00 00 04 00 54 72 61 6e 73 70 6f 72 74 20 66 69
    65 6c 64 20 6d 69 73 73 65 64 20 6f 72 20 77 72 6f 6e 67 00
    80 22 00 14 43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f
    72 73 74 27 00 08 00 14 78 7b 6e e1 f0 ad 13 c0 3b 11 4e 98
    ff 92 ae e0 41 7f b8 db 80 28 00 04 8a 36 f1 c6]],
  allocate_stale_nonce_438 = unhex [[
    01 13 00 5c 21 12 a4 42 3e d8 50 42 93 2a 0f b2 96 65 b9 d8
    00 09 00 10 00 00 04 26 53 74 61 6c 65 20 6e 6f 6e 63 65 00
    00 15 00 10 31 37 61 37 30 36 66 62 62 61 39 30 64 63 63 30
    00 14 00 0f 69 63 65 73 65 72 76 65 72 73 2e 74 65 73 74 00
    80 22 00 14 43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f
    72 73 74 27 80 28 00 04 5f 3f 44 d2]],
  allocate_success = unhex [[
    01 03 00 58 21 12 a4 42 07 59 62 f2 93 5d 6a ba a4 4d 45 dd
    00 16 00 08 00 01 9a 71 5e 12 a4 43 00 20 00 08 00 01 ba 45
    5e 12 a4 43 00 0d 00 04 00 00 02 58 80 22 00 14 43 6f 74 75
    72 6e 2d 34 2e 36 2e 31 20 27 47 6f 72 73 74 27 00 08 00 14
    61 3a e0 0b 8d 56 00 b3 5a 71 88 56 a5 71 35 8a ea 5b 89 77
    80 28 00 04 26 d3 50 ff]],
  allocate_again_437 = unhex [[
    01 13 00 54 21 12 a4 42 a4 b7 71 4e c8 b4 4a 50 0a 75 63 1e
    00 09 00 30 00 00 04 25 4d 69 73 6d 61 74 63 68 65 64 20 61
    6c 6c 6f 63 61 74 69 6f 6e 3a 20 77 72 6f 6e 67 20 74 72 61
    6e 73 61 63 74 69 6f 6e 20 49 44 00 80 22 00 14 43 6f 74 75
    72 6e 2d 34 2e 36 2e 31 20 27 47 6f 72 73 74 27 80 28 00 04
    13 31 ce cf]],
  refresh_delete_success = unhex [[
    01 04 00 40 21 12 a4 42 09 96 33 5f 85 79 c0 06 35 6b f7 f1
    00 0d 00 04 00 00 00 00 80 22 00 14 43 6f 74 75 72 6e 2d 34
    2e 36 2e 31 20 27 47 6f 72 73 74 27 00 08 00 14 65 94 ab af
    81 aa 35 98 4e bb 57 df b1 83 36 c8 09 4e 88 9f 80 28 00 04
    a7 72 a3 4c]],
  refresh_after_delete = unhex [[
    01 04 00 40 21 12 a4 42 93 fe f2 68 a1 1f 68 e7 96 9b ef e0
    00 0d 00 04 00 00 00 00 80 22 00 14 43 6f 74 75 72 6e 2d 34
    2e 36 2e 31 20 27 47 6f 72 73 74 27 00 08 00 14 12 01 3c 53
    45 26 cb 5c cb 8b a6 43 3c a0 8d 7a 31 a3 e9 1e 80 28 00 04
    7d fd cf ee]],
}

return M
