#!/usr/bin/env bash
# `make demo`: berth up on the hello example, with the example's image served
# from a registry on loopback (this machine may reach no public registry),
# then the pods it runs and an answer through the Service's ClusterIP.
# Run it again to restart the demo; `make demo-stop` ends it.
#
# `make demo-shop` (test/demo.sh shop), once the demo runs: the shop example
# (examples/shop) committed to the demo's config repository, its images
# published to the same registry, and an item added through its front end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

data=${BERTH_DEMO_DATA:-$PWD/out/demo}
berth=$PWD/out/berth
export BERTH_CONFIG=$data/admin.conf

# ready NAMESPACE COUNT: whether COUNT Deployments of NAMESPACE have all
# their replicas ready.
ready() {
	local n
	n=$("$berth" get deployments 2>/dev/null | awk -v ns="$1" '$1 == ns { split($3, r, "/"); if (r[1] == r[2] && r[1] > 0) n++ } END { print n + 0 }')
	((n == $2))
}

shop() {
	if ! "$berth" status >/dev/null 2>&1 || [[ ! -d $data/config/.git ]]; then
		echo "demo-shop: no demo runs; start it with make demo" >&2
		exit 1
	fi
	go run ./images/publish localhost:5000/berth/shop-web:1 localhost:5000/berth/shop-web:2 \
		localhost:5000/berth/shop-api:1 localhost:5000/berth/redis:7
	if [[ ! -d $data/config/shop ]]; then
		cp -r examples/shop "$data/config/shop"
		git -C "$data/config" add shop
		git -C "$data/config" commit -qm "the shop example"
	fi
	echo "demo-shop: committed examples/shop; berth up finds it within its 15 s poll"
	for i in $(seq 180); do
		ready shop 3 && break
		if ((i == 180)); then
			echo "demo-shop: the shop did not come up within 3 minutes:" >&2
			"$berth" get pods >&2
			exit 1
		fi
		sleep 1
	done
	"$berth" get deployments
	echo
	"$berth" get services
	ip=$("$berth" get services | awk '$1 == "shop" && $2 == "web" { print $4 }')
	echo
	echo "demo-shop: an item added through the front end at http://$ip/, and the page's list:"
	curl -s -m 5 -o /dev/null -d name=teapot "http://$ip/items"
	curl -s -m 5 "http://$ip/" | grep -E '<h1>|version|<li>'
	cat <<MSG

The shop runs. Open http://$ip/ on this machine, or port 30080 of its
address from another one. Roll out the web's version 2, and back:
  export BERTH_CONFIG=$data/admin.conf
  cd $data/config && sed -i 's|shop-web:1|shop-web:2|' shop/web.yaml && git commit -qam 'web 2'
  berth rollout status deployment/web -n shop --commit \$(git rev-parse HEAD)
  git revert --no-edit HEAD          # and back
See "The shop example" in README.md.
MSG
}

if [[ ${1:-} == shop ]]; then
	shop
	exit
fi

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
	ready hello 1 && break
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
ip=$("$berth" get services -n hello hello -o 'jsonpath={.spec.clusterIP}')
echo
echo "demo: three requests to the Service at http://$ip/ (pod name and VERSION):"
for _ in 1 2 3; do curl -s -m 2 "http://$ip/"; done
cat <<MSG

berth runs in the background. Try:
  export BERTH_CONFIG=$data/admin.conf
  cd $data/config && sed -i 's/value: "1"/value: "2"/' app.yaml && git commit -qam 'version 2'
  berth rollout status deployment/hello -n hello --commit \$(git rev-parse HEAD)   # waits for it
  berth get revisions        # each commit, and how long it took to converge
  git revert --no-edit HEAD  # and back
  berth logs hello/<pod>     # a pod's log; berth describe pod hello/<pod> for its events
The dashboard: https://127.0.0.1:7443/ui/ (sign in with a token from
  berth token create --role read-only)
Next, a three-tier app on the same cluster: make demo-shop
Stop it all with: make demo-stop
MSG
