#!/bin/sh
# One-shot: joins the six cluster nodes into 3 masters with one replica each,
# unless they already form a cluster (a restart of the stack). redis-cli
# --cluster create wants addresses; the nodes announce their compose host
# names (cluster-announce-hostname), so clients follow names, not addresses.
set -eu
NODES="redis-node-1 redis-node-2 redis-node-3 redis-node-4 redis-node-5 redis-node-6"
for node in $NODES; do
  until redis-cli -h "$node" ping 2>/dev/null | grep -q PONG; do sleep 1; done
done
if redis-cli -h redis-node-1 cluster info | grep -q '^cluster_state:ok'; then
  echo "the cluster exists already"
  exit 0
fi
addresses=""
for node in $NODES; do
  addresses="$addresses $(getent hosts "$node" | awk '{ print $1; exit }'):6379"
done
# shellcheck disable=SC2086 # one argument per address
redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes
until redis-cli -h redis-node-1 cluster info | grep -q '^cluster_state:ok'; do sleep 1; done
echo "cluster ready"
