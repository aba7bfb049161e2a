#!/usr/bin/env bash
# `make demo`: berth up on the hello example, with the example's image served
# from a registry on loopback (this machine may reach no public registry),
# then the pods it runs and an answer through the Service's ClusterIP.
# Run it again to restart the demo; `make demo-stop` ends it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

data=${BERTH_DEMO_DATA:-$PWD/out/demo}
berth=$PWD/out/berth
export BERTH_CONFIG=$data/admin.conf
mkdir -p "$data/registry"

# A previous demo's berth up, if any, gives way to this one, and the demo
# starts from a new cluster (the registry's images stay).
"$berth" down --data "$data" >/dev/null
rm -rf "$data/master" "$data/node" "$data/config" "$data/admin.conf"

# Debian's docker-registry, with a config of our own: no auth, loopback only.
if ! curl -sf -o /dev/null http://127.0.0.1:5000/v2/; then
	cat >"$data/registry/config.yml" <<CONF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $data/registry/data}}
http: {addr: "127.0.0.1:5000"}
CONF
	nohup docker-registry serve "$data/registry/config.yml" >"$data/registry/log" 2>&1 &
	echo $! >"$data/registry/pid"
	for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:5000/v2/ && break; sleep 0.1; done
fi
go run ./images/publish localhost:5000/berth/hello:1

nohup "$berth" up --data "$data" --insecure-registry localhost:5000 >"$data/berth.log" 2>&1 &
echo "demo: berth up is starting (log: $data/berth.log)"
# The config repository appears on first start; give it a committer so the
# commits suggested below work on a machine with no git identity.
for _ in $(seq 50); do [[ -d $data/config/.git ]] && break; sleep 0.1; done
git -C "$data/config" config user.name >/dev/null || git -C "$data/config" config user.name "berth demo"
git -C "$data/config" config user.email >/dev/null || git -C "$data/config" config user.email "demo@berth.invalid"
for i in $(seq 180); do
	if "$berth" get deployments 2>/dev/null | grep -q ' 3/3 '; then
		break
	fi
	if ((i == 180)); then
		echo "demo: the example did not come up within 3 minutes; the log says:" >&2
		tail -30 "$data/berth.log" >&2
		exit 1
	fi
	sleep 1
done

"$berth" get pods -o wide
echo
"$berth" get services
ip=$("$berth" get services -o json | sed -n 's/.*"clusterIP": "\(10\.[0-9.]*\)".*/\1/p' | head -1)
echo
echo "demo: three requests to the Service at http://$ip/ (pod name and VERSION):"
for _ in 1 2 3; do curl -s -m 2 "http://$ip/"; done
cat <<MSG

berth runs in the background. Try:
  export BERTH_CONFIG=$data/admin.conf
  cd $data/config && sed -i 's/value: "1"/value: "2"/' app.yaml && git commit -qam 'version 2'
  $berth get pods            # a rolling update, within the 15 s poll
  git revert --no-edit HEAD  # and back
  $berth logs hello/<pod>    # a pod's log
Stop it all with: make demo-stop
MSG
