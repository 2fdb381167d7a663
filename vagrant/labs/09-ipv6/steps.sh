# Lab 09: IPv6 dual stack on bridge networks: addresses without DAD, AAAA, ip6tables, NAT66.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# Leftovers of an earlier run, if any (each line may fail: nothing to remove)
minidock rm -f six1 six2 far old4 2>/dev/null || true
minidock network rm lab9 lab9b lab9v4 2>/dev/null || true
ip link del uplink6 2>/dev/null || true
ip netns del lab9-out 2>/dev/null || true
# Part 1: a dual-stack network, two containers (six2's IPv6 address pinned)
minidock network create --ipv6 --subnet fd00:9::/64 lab9
minidock run -d --name six1 --network lab9 busybox sleep 3600
minidock run -d --name six2 --network lab9 --ip6 fd00:9::99 busybox sleep 3600
minidock network inspect lab9
minidock inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} via {{.IPv6Gateway}}{{end}}' six1 six2
ip -6 addr show type bridge
in_netns md-six1 ip -6 addr show dev eth0
in_netns md-six1 ip -6 route
# Part 2: names over IPv6; a name with IPv4 only has an empty AAAA answer
minidock exec six1 ping -6 -c 2 -W 2 six2
minidock exec six1 nslookup -type=AAAA six2
minidock exec six1 nslookup six2
in_netns md-six1 dig @127.0.0.11 +time=2 +tries=1 AAAA six2
minidock network create lab9v4
minidock run -d --name old4 --network lab9v4 busybox sleep 3600
in_netns md-old4 dig @127.0.0.11 +time=2 +tries=1 AAAA old4
in_netns md-old4 dig @127.0.0.11 +time=2 +tries=1 +short A old4
# Part 3: the IPv6 firewall mirrors the IPv4 one
ip6tables-save | grep MINIDOCK
ip6tables-save -t nat | grep MASQUERADE
iptables-save -t nat | grep MASQUERADE
# Part 4: a second IPv6 network (a ULA /64 from the pool), isolated from lab9
minidock network create --ipv6 lab9b
minidock network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' lab9b
minidock run -d --name far --network lab9b busybox sleep 3600
FAR=$(minidock inspect -f '{{(index .NetworkSettings.Networks "lab9b").GlobalIPv6Address}}' far)
minidock exec six1 ping -6 -c 1 -W 1 "$FAR" || echo "no answer from far ($FAR): the networks are isolated"
ip6tables-save | grep ISOLATION
# Part 5: the outside, a namespace on a veth from the host: fd99::1 here, fd99::2 there
ip netns add lab9-out
ip -n lab9-out link set lo up
ip link add uplink6 type veth peer name wan0 netns lab9-out
ip -6 addr add fd99::1/64 dev uplink6 nodad
ip link set uplink6 up
ip -n lab9-out -6 addr add fd99::2/64 dev wan0 nodad
ip -n lab9-out link set wan0 up
for i in $(seq 50); do ping -6 -c 1 -W 1 fd99::2 >/dev/null && break; sleep 0.1; done
ping -6 -c 1 -W 2 fd99::2
# What the outside sees of six1's pings: the host's address (NAT66)
ip netns exec lab9-out timeout 10 tcpdump -l -nn -i wan0 -c 2 'icmp6 and ip6[40] == 128' &
sleep 1
minidock exec six1 ping -6 -c 2 -W 2 fd99::2
wait $!
ip -n lab9-out -6 route
ip -n lab9-out -6 route get fd00:9::2 || echo "the outside has no way back to fd00:9::/64"
minidock topology
