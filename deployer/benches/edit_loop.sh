#!/usr/bin/env bash
# The local edit loop, measured: prints
#   - a no-op `cargo run -p stackctl -- deploy --target local` of both stacks (goal < 1 s),
#   - a one-line change to paraphrase, from save to served by the local cloud
#     (debug build; goal < 10 s on 2 cores), through `deploy` and through `serve --watch`,
#   - the same edit under `cargo lambda watch` (installed from PyPI if missing:
#     `pip install cargo-lambda`), on the same function in the same run.
# Run from anywhere: bash deployer/benches/edit_loop.sh
# It deploys stage `editloop` of the repo's stacks and destroys it at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=editloop
file=functions/paraphrase/src/main.rs
cp "$file" "$file.orig"
cleanup() {
    mv "$file.orig" "$file"
    [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true
    [ -n "${watch_pid:-}" ] && kill "$watch_pid" 2>/dev/null || true
    cargo run -q -p stackctl -- destroy --target local --stage "$stage" >/dev/null 2>&1 || true
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$1 $2" | awk '{ printf "%.2f", $2 - $1 }'; }
run() { cargo run -q -p stackctl -- "$@"; }

run deploy --target local --stage "$stage" >/dev/null 2>&1
run deploy --target local --stage "$stage" >/dev/null 2>&1
t0=$(now); run deploy --target local --stage "$stage" >/dev/null 2>&1; t1=$(now)
echo "no-op deploy of both stacks through cargo run: $(secs "$t0" "$t1") s"

url=$(run -o json status --target local --stage "$stage" -s paraphrase 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["outputs"]["url"])')
call() { curl -s -o /dev/null -X POST "$url/paraphrase" -d '{"sourceText":"I think this is a good idea."}' || true; }
served() { # wait until the log shows the edited startup line, i.e. the new code answered
    local marker=$1 deadline=$(( $(date +%s) + 120 ))
    until grep -q "$marker" "$2"; do
        call
        [ "$(date +%s)" -lt "$deadline" ] || { echo "not served after 120 s" >&2; return 1; }
        sleep 0.05
    done
}
log=.stackctl/local/paraphrase/$stage/server.log
sed -i "s/\"paraphrase ready\"/\"paraphrase ready (edit 1)\"/" "$file"
t0=$(now); run deploy --target local --stage "$stage" -s paraphrase >/dev/null 2>&1; served "edit 1" "$log"; t1=$(now)
echo "one-line change to served, deploy: $(secs "$t0" "$t1") s"

run destroy --target local --stage "$stage" >/dev/null 2>&1
port=3917
cargo run -q -p stackctl -- serve --stage "$stage" -s paraphrase --port "$port" --watch >/tmp/editloop-serve.log 2>&1 &
serve_pid=$!
url=http://127.0.0.1:$port/$stage
until curl -s -o /dev/null "$url/paraphrase" -X POST -d '{}'; do sleep 0.2; done
sed -i "s/(edit 1)/(edit 2)/" "$file"
t0=$(now); served "edit 2" /tmp/editloop-serve.log; t1=$(now)
echo "one-line change to served, serve --watch: $(secs "$t0" "$t1") s"
kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; serve_pid=

# cargo lambda watch: the same function, the same edit, invoked through its
# Invoke API with the same API Gateway event (loopback only).
if ! command -v cargo-lambda >/dev/null; then pip install -q cargo-lambda >/dev/null 2>&1 || true; fi
if command -v cargo-lambda >/dev/null; then
    port=9317
    RUST_LOG=info cargo lambda watch -p paraphrase -A 127.0.0.1 -P "$port" >/tmp/editloop-cargo-lambda.log 2>&1 &
    watch_pid=$!
    call() { curl -s -o /dev/null -X POST "http://127.0.0.1:$port/2015-03-31/functions/paraphrase/invocations" --data-binary @examples/paraphrase/test-request-event.json || true; }
    served "edit 2" /tmp/editloop-cargo-lambda.log
    sed -i "s/(edit 2)/(edit 3)/" "$file"
    t0=$(now); served "edit 3" /tmp/editloop-cargo-lambda.log; t1=$(now)
    echo "one-line change to served, cargo lambda watch ($(cargo lambda --version | cut -d' ' -f2)): $(secs "$t0" "$t1") s"
else
    echo "cargo lambda watch: not installed (pip install cargo-lambda)"
fi
