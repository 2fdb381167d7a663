# Lab 01: the three default networks. Type these one by one; read the output.
minidock network ls
minidock network inspect bridge
minidock run -dit --name alpine1 alpine ash
minidock run -dit --name alpine2 alpine ash
ip addr show minidock0
bridge link
minidock exec alpine1 ip addr show eth0
minidock exec alpine1 cat /etc/hosts
minidock run -d --name lonely --network none alpine sleep 3600
minidock exec lonely ip addr
minidock run -d --name hostish --network host alpine sleep 3600
minidock exec hostish ip -o link
