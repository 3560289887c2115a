-- PATCH /ctms/{email_id}: subscribe or unsubscribe a random seeded contact to a random newsletter.
package.path = "./?.lua;" .. package.path
local common = require("common")

init = function(args)
  common.init(args)
  wrk.headers["Content-Type"] = "application/json"
end

request = function()
  local subscribed = math.random() < 0.5 and "true" or "false"
  local body = string.format(
    '{"newsletters":[{"name":"%s","subscribed":%s}]}', common.pick(common.newsletters), subscribed
  )
  return wrk.format("PATCH", "/ctms/" .. common.pick(common.ids), nil, body)
end
