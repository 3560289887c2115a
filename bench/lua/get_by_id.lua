-- GET /ctms/{email_id} of a random seeded contact.
package.path = "./?.lua;" .. package.path
local common = require("common")

init = common.init

request = function()
  return wrk.format("GET", "/ctms/" .. common.pick(common.ids))
end
