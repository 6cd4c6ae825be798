-- STUN only: the broker adds the STUN_URLS to every answer, so this provider
-- has nothing of its own to give.  The zero-configuration default.
return {
  kind = "stun",
  get = function()
    return {}
  end,
}
