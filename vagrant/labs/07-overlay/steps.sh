# Lab 07: one overlay network across machines (NODES=3 vagrant up; run on node1).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
minidock node ls
# a network made on node1 is there on node2 too: SCOPE global, its record is in etcd
minidock network create -d overlay lab7
on node2 minidock network ls --filter name=lab7
minidock run -d --name left --network lab7 busybox sleep 3600
on node2 minidock run -d --name right --network lab7 busybox sleep 3600
minidock exec left ping -c 2 right
# the wire: every frame between left and right is a UDP datagram to port 4789, its VNI in the header
VNI=$(minidock network inspect -f '{{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}' lab7)
timeout 10 tcpdump -nni any -c 4 udp port 4789 &
sleep 1
minidock exec left ping -c 2 right
wait $!
# where the frames for right go: its MAC, at node2's address, in the FDB of the network's namespace
ME=$(minidock node ls | awk '$2 == "*" {print $1}')
on node2 minidock inspect -f '{{(index .NetworkSettings.Networks "lab7").MacAddress}}' right
in_netns "ov-$VNI-$ME" bridge fdb show dev "vxlan$VNI"
in_netns "ov-$VNI-$ME" ip neigh show dev "vxlan$VNI"
# the cluster store: networks, names, VNIs, endpoints, nodes
etcdctl get --prefix --keys-only /minidock/
etcdctl get --prefix /minidock/endpoints/
# one etcd member down: two of three are still a majority, and the cluster goes on
etcd_member stop node3
etcdctl endpoint health --cluster || true
on node2 minidock run -d --name late --network lab7 busybox sleep 3600
minidock exec left ping -c 2 late
