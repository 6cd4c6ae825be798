-- Secrets out of text: what the broker does to every error and log line of a
-- provider, and what the REST helper does to a provider's own error text.
local M = {}

-- Secrets under this length would blank out ordinary words of a message.
M.MIN = 4

-- text with every occurrence of each secret (of min_len bytes or more)
-- replaced by "[redacted]".
function M.redact(text, secrets, min_len)
  text = tostring(text)
  for _, secret in ipairs(secrets) do
    if #secret >= (min_len or 1) then
      local from = 1
      while true do
        local i, j = text:find(secret, from, true)
        if not i then break end
        text = text:sub(1, i - 1) .. "[redacted]" .. text:sub(j + 1)
        from = i + 10
      end
    end
  end
  return text
end

return M
