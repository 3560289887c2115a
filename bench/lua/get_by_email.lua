-- GET /ctms?primary_email= of a random seeded contact, its address in random case.
package.path = "./?.lua;" .. package.path
local common = require("common")

init = common.init

request = function()
  local email = common.random_case(common.pick(common.emails))
  return wrk.format("GET", "/ctms?primary_email=" .. common.urlencode(email))
end
