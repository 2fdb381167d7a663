# Lab 03: names on a user-defined network: container names, aliases, hostnames.
minidock network create shop
minidock network create elsewhere
minidock run -d --name web1 --network shop --network-alias web busybox httpd -f -p 80
minidock run -d --name web2 --network shop --network-alias web busybox httpd -f -p 80
minidock run -d --name db --network shop --hostname dbhost busybox sleep 3600
minidock run -d --name stranger --network elsewhere busybox sleep 3600
minidock run -dit --name shell --network shop busybox sh
minidock exec shell cat /etc/resolv.conf
minidock exec shell nslookup web
minidock exec shell nslookup dbhost
