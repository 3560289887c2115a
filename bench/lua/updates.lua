-- GET /updates: each thread pages through the whole data set by following the `after` cursor, starting
-- again from the first page after the last one (100 contacts a page, the default).
package.path = "./?.lua;" .. package.path
local common = require("common")

local first_page = "/updates?start=2000-01-01T00:00:00%2B00:00&limit=100"
local cursor = nil

init = common.init

request = function()
  if cursor == nil then
    return wrk.format("GET", first_page)
  end
  return wrk.format("GET", first_page .. "&after=" .. common.urlencode(cursor))
end

response = function(status, headers, body)
  if status == 200 then
    cursor = body:match('"after":"([^"]*)"')
  else
    cursor = nil
  end
end
