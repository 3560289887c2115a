-- POST /ctms: a new contact (server-generated email_id) with two newsletters.
package.path = "./?.lua;" .. package.path
local common = require("common")

local counter = 0
local run_tag = ""

init = function(args)
  common.init(args)
  wrk.headers["Content-Type"] = "application/json"
  run_tag = string.format("%x%x", os.time(), math.random(0, 0xfffff))
end

request = function()
  counter = counter + 1
  local email = string.format("bench.%s.%d.%d@example.org", run_tag, thread_number or 0, counter)
  local first = common.pick(common.newsletters)
  local second = common.pick(common.newsletters)
  if second == first then
    second = common.newsletters[1] == first and common.newsletters[2] or common.newsletters[1]
  end
  local body = string.format(
    '{"email":{"primary_email":"%s","first_name":"Bench","last_name":"Load",'
      .. '"email_lang":"en","mailing_country":"us","email_format":"H"},'
      .. '"newsletters":[{"name":"%s"},{"name":"%s"}]}',
    email, first, second
  )
  return wrk.format("POST", "/ctms", nil, body)
end
