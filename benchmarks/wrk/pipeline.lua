-- wrk script: send 16 requests per write (HTTP/1.1 pipelining), the
-- TechEmpower plaintext request shape, to the path of the URL given to wrk
-- (engine-vs-ceiling.sh uses /plaintext, run.sh uses / for every server).
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format("GET", wrk.path, {
      ["Host"] = "server",
      ["Accept"] = "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7",
      ["Connection"] = "keep-alive",
    })
  end
  req = table.concat(r)
end

request = function()
  return req
end
