-- The secret-leak check of the provider and fault specs: a secret leaks when
-- any 8 bytes of it show, not only all of it (a secret cut in two is still
-- half a secret).  Returns leak_in(text) and assert_clean(text, what).
return function(secrets)
  local function leak_in(text)
    for _, secret in ipairs(secrets) do
      for i = 1, #secret - 7 do
        local piece = secret:sub(i, i + 7)
        if text:find(piece, 1, true) then return piece end
      end
    end
  end

  local function assert_clean(text, what)
    local piece = leak_in(text)
    assert(piece == nil, ("%s shows %q of a secret: %s"):format(what, tostring(piece), text))
  end

  return leak_in, assert_clean
end
