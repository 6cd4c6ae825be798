-- Loaded by busted before every spec file: points package.cpath at the build
-- folder of the running interpreter's ABI (ICESERVERS_BUILD overrides it, as
-- the ASan run does), so specs always test this tree, never an installed copy.
local abi = _VERSION:match("%d+%.%d+")
local build = os.getenv("ICESERVERS_BUILD") or ("build/" .. abi)
package.cpath = build .. "/?.so;" .. package.cpath
