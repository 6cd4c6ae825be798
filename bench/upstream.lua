-- luacheck: globals ngx
--[[
The upstream nginx of the benchmarks (content_by_lua_file, with
`lua_shared_dict bench_upstream 1m;`): a stand-in for a REST provider's API.

  /metered/<tag>/api/v1/turn/credentials?apiKey=KEY
                 Metered's answer (a JSON array of ICE servers), counted per
                 tag; a tag holding d<ms> waits that long before answering
  /count/<tag>   the number of calls the tag has seen (text)
]]
local common = require "bench.common"

local dict = ngx.shared.bench_upstream
local uri = ngx.var.uri

local tag = uri:match("^/metered/([^/]+)/api/v1/turn/credentials$")
if tag then
  dict:incr("count:" .. tag, 1, 0)
  local delay = tonumber(tag:match("d(%d+)"))
  if delay then ngx.sleep(delay / 1000) end
  if ngx.var.arg_apiKey ~= common.METERED_KEY then
    ngx.status = 401
    ngx.header["Content-Type"] = "application/json"
    ngx.print('{"error":"Invalid API Key"}')
    return ngx.exit(401)
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.print(common.METERED_ANSWER)
  return
end

local counted = uri:match("^/count/([^/]+)$")
if counted then
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(tostring(dict:get("count:" .. counted) or 0))
  return
end
ngx.status = 404
ngx.print("no such route")
return ngx.exit(404)
