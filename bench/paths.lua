-- dofile("bench/paths.lua") first in a measurement process run from the
-- checkout: the core built for this interpreter's ABI, the checkout's modules.
local abi = _VERSION:match("%d+%.%d+")
package.cpath = "build/" .. abi .. "/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
