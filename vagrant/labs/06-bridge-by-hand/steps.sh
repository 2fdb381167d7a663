# Lab 06: build a bridge network by hand, from what minidock --explain printed.
# Part 1: a second minidock in a namespace of its own tells what it does.
rm -rf /tmp/lab6 && mkdir -p /tmp/lab6
ip netns add lab6-host
nsenter --net=/run/netns/lab6-host minidock --explain daemon --root /tmp/lab6/state --socket /tmp/lab6/sock \
    > /tmp/lab6/00-startup.sh 2> /tmp/lab6/daemon.log &
echo $! > /tmp/lab6/daemon.pid
for i in $(seq 100); do [ -S /tmp/lab6/sock ] && break; sleep 0.1; done
export MINIDOCK_HOST=unix:///tmp/lab6/sock
minidock --explain network create handmade 2> /tmp/lab6/01-network.sh
minidock --explain run -d --name hand1 --network handmade busybox sleep 3600 2> /tmp/lab6/02-hand1.sh
minidock --explain run -d --name hand2 --network handmade busybox sleep 3600 2> /tmp/lab6/03-hand2.sh
cat /tmp/lab6/0*.sh
# Part 2: minidock takes it all down again ...
minidock rm -f hand1 hand2
minidock network rm handmade
kill "$(cat /tmp/lab6/daemon.pid)"
while kill -0 "$(cat /tmp/lab6/daemon.pid)" 2>/dev/null; do sleep 0.1; done
ip netns del lab6-host
# ... and you build it again with your own hands, in a fresh namespace
ip netns add byhand
for f in /tmp/lab6/0*.sh; do nsenter --net=/run/netns/byhand sh -ex "$f"; done
ip netns exec md-hand1 ping -c 2 "$(ip netns exec md-hand2 ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)"
