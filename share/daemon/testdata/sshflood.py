#!/usr/bin/env python3
# sshflood.py PORT N ADDRS HOLD: open N TCP connections to 127.0.0.1:PORT that send
# an SSH version line and never go further, spread over ADDRS source
# addresses 127.0.0.1.., and hold them HOLD seconds; then print how many the
# server has closed.
import socket, sys, time, select
port, n, addrs, hold = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.%d.%d" % (i % addrs // 250, i % addrs % 250 + 1), 0))
    try:
        s.connect(("127.0.0.1", port))
        s.send(b"SSH-2.0-flood\r\n")
    except OSError:
        pass
    socks.append(s)
time.sleep(hold)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed += 1
                break
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print("closed by server:", closed, "of", n)
