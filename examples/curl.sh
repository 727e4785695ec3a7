#!/bin/sh
# The original PCCI README's REST calls, against a running master, with its token.
#   PCCI_URL=http://master:8080 PCCI_TOKEN=... ./examples/curl.sh [worker ...]
# With no workers named, it uses every online worker. Stops at the first failing call.
set -eu
url=${PCCI_URL:-http://127.0.0.1:8080}
auth="Authorization: Bearer ${PCCI_TOKEN:-}"
call() {   # method path [body]
    echo "+ curl -X $1 $url$2${3:+ -d '$3'}" >&2
    if [ $# -ge 3 ]; then
        curl -fsS -X "$1" -H "$auth" -H "Content-Type: application/json" "$url$2" -d "$3"
    else
        curl -fsS -X "$1" -H "$auth" "$url$2"
    fi
    echo
}
if [ $# -gt 0 ]; then
    workers=$(printf '"%s",' "$@"); workers="[${workers%,}]"
else
    workers='"*"'
fi

# Execute a new job on the listed workers; returns a pool id.
pool=$(call POST /job "{\"cmd\": \"echo hello from \$(hostname)\", \"workers\": $workers}" |
       sed -n 's/.*"id": "\([^"]*\)".*/\1/p')
# Get detailed data from a pool (waiting up to 30 s for it to finish).
call GET "/pool/$pool?wait=30"
# Get all pools.
call GET /pools
# Get all workers.
call GET /workers
# Kill jobs running on the listed workers (a long job, so there is something to kill).
long=$(call POST /job "{\"cmd\": \"sleep 60\", \"workers\": $workers}" | sed -n 's/.*"id": "\([^"]*\)".*/\1/p')
call PUT "/kill/$long" "{\"workers\": $workers}"
