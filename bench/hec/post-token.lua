-- An audited write: POST /api/v1/tokens with a JSON body.
wrk.method = "POST"
wrk.body = '{"name":"bench"}'
wrk.headers["Content-Type"] = "application/json"
