#!/bin/sh
# One-shot: joins the six cluster nodes into 3 masters with one replica each,
# unless they already form a cluster (a restart of the stack). redis-cli
# --cluster create wants addresses; the nodes announce their compose host
# names (cluster-announce-hostname), so clients follow names, not addresses.
# REDIS_CLUSTER_NODES (host:port ...) is for the test; compose uses the default.
set -eu
NODES=${REDIS_CLUSTER_NODES:-"redis-node-1:6379 redis-node-2:6379 redis-node-3:6379 redis-node-4:6379 redis-node-5:6379 redis-node-6:6379"}
first=${NODES%% *}
cli () { node=$1; shift; redis-cli -h "${node%:*}" -p "${node##*:}" "$@"; }
for node in $NODES; do
  until cli "$node" ping 2>/dev/null | grep -q PONG; do sleep 1; done
done
if cli "$first" cluster info | grep -q '^cluster_state:ok'; then
  echo "the cluster exists already"
  exit 0
fi
addresses=""
for node in $NODES; do
  addresses="$addresses $(getent hosts "${node%:*}" | awk '{ print $1; exit }'):${node##*:}"
done
# shellcheck disable=SC2086 # one argument per address
redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes
until cli "$first" cluster info | grep -q '^cluster_state:ok'; do sleep 1; done
# every slot is served; wait until the replicas have attached too (gossip)
replicas=$(( $(echo "$NODES" | wc -w) / 2 ))
until [ "$(cli "$first" cluster nodes | grep -c ' slave ')" -ge "$replicas" ]; do sleep 1; done
echo "cluster ready"
