# Lab 02: a user-defined bridge network (Docker's alpine-net tutorial).
minidock network create --driver bridge alpine-net
minidock network ls
minidock run -dit --name alpine1 --network alpine-net alpine ash
minidock run -dit --name alpine2 --network alpine-net alpine ash
minidock run -dit --name alpine3 alpine ash
minidock run -dit --name alpine4 --network alpine-net alpine ash
minidock network connect bridge alpine4
minidock network inspect alpine-net
minidock exec alpine4 ip -o -4 addr
minidock exec alpine1 ping -c 1 alpine2
