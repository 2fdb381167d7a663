# Lab 08: containers straight on a LAN with a macvlan network (no bridge, no NAT).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# Leftovers of an earlier run, if any (each line may fail: nothing to remove)
minidock rm -f desk1 desk2 2>/dev/null || true
minidock network rm lab8 2>/dev/null || true
ip link del mv-host 2>/dev/null || true
ip link del lan0 2>/dev/null || true
ip netns del lab8-box 2>/dev/null || true
ip netns del lab8-lan 2>/dev/null || true
# The LAN, made by hand: a switch (bridge "lan" in namespace lab8-lan), a LAN box (lab8-box,
# 192.168.77.1, the LAN's router) plugged into it, and lan0 on this host: on a real LAN, eth0.
ip netns add lab8-lan
ip netns add lab8-box
ip -n lab8-lan link set lo up
ip -n lab8-box link set lo up
ip -n lab8-lan link add lan type bridge
ip -n lab8-lan link set lan up
ip link add lan0 type veth peer name p-host netns lab8-lan
ip -n lab8-lan link add p-box type veth peer name eth0 netns lab8-box
ip -n lab8-lan link set p-host master lan up
ip -n lab8-lan link set p-box master lan up
ip -n lab8-box addr add 192.168.77.1/24 dev eth0
ip -n lab8-box link set eth0 up
ip addr add 192.168.77.10/24 dev lan0
ip link set lan0 up
ping -c 1 -W 2 192.168.77.1
# The macvlan network: the LAN's subnet and router; containers take 192.168.77.224/27, but never .254
minidock network create -d macvlan --subnet 192.168.77.0/24 --gateway 192.168.77.1 \
    --ip-range 192.168.77.224/27 --aux-address host=192.168.77.254 -o parent=lan0 lab8
minidock run -d --name desk1 --network lab8 busybox sleep 3600
minidock run -d --name desk2 --network lab8 busybox sleep 3600
minidock inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}}{{end}}' desk1 desk2
D1=$(ip_of desk1 lab8)
# What the LAN box sees: each container's own MAC and address
ip netns exec lab8-box timeout 10 tcpdump -l -e -nn -i eth0 -c 4 icmp &
sleep 1
minidock exec desk1 ping -c 1 -W 2 192.168.77.1
minidock exec desk2 ping -c 1 -W 2 192.168.77.1
wait $!
# desk1's eth0: a macvlan child of lan0, mode bridge
in_netns md-desk1 ip -d link show eth0
# The host cannot reach its own child through the parent ...
ping -c 1 -W 1 "$D1" || echo "no answer from $D1: the host's own child"
# ... until it has a macvlan of its own on lan0, with the aux address and a route to the containers' range
ip link add mv-host link lan0 type macvlan mode bridge
ip addr add 192.168.77.254/32 dev mv-host
ip link set mv-host up
ip route add 192.168.77.224/27 dev mv-host
ping -c 2 -W 2 "$D1"
# Names, as on any user-defined network
minidock exec desk1 ping -c 1 -W 2 desk2
# Nothing in the firewall, and the picture
iptables-save | grep -c 192.168.77. || true
minidock topology
