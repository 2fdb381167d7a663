# Lab 04: publishing ports, and the NAT rules behind them.
minidock network create front
minidock run -d --name web --network front -p 8080:80 busybox sh -c 'echo hello-from-web > /index.html; exec httpd -f -p 80 -h /'
minidock run -d --name local --network front -p 127.0.0.1:9090:80 busybox httpd -f -p 80
minidock port web
minidock ps
iptables-save -t nat | grep MINIDOCK
printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 2 127.0.0.1 8080
