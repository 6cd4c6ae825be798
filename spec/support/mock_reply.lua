-- luacheck: globals ngx
-- How the provider mocks (content handlers in a test nginx: ngx_mock,
-- mock_api, soak/mock.lua) answer: one status, one body, a content type
-- (JSON unless told), and the end of the request.
return function(status, body, ctype)
  ngx.status = status
  ngx.header["Content-Type"] = ctype or "application/json"
  ngx.print(body)
  return ngx.exit(status)
end
