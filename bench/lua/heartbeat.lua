-- GET /__lbheartbeat__: the baseline every ratio is taken against.
package.path = "./?.lua;" .. package.path
local common = require("common")

init = function(args)
  common.init(args)
  wrk.headers["Authorization"] = nil
end

request = function()
  return wrk.format("GET", "/__lbheartbeat__")
end
