#!/bin/bash
# sshflood.sh BIN ADDRS: run BIN's daemon with --ssh-listen in a fresh home,
# open 3000 connections that never finish the SSH handshake from ADDRS
# loopback addresses (sshflood.py), and print the daemon's RSS and open
# file descriptors before, 5 s in and 44 s in. Linux; needs python3 and
# ssh-keygen. See docs/BENCHMARKS.md.
set -e
BIN=$(realpath "$1"); ADDRS=${2:-1}; DIR=$(mktemp -d); PORT=$((20000 + RANDOM % 20000))
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
COMMONS_HOME=$DIR/home "$BIN" init --name Flood --listen 127.0.0.1:0 >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$DIR/key"
install -m 600 "$DIR/key.pub" "$DIR/home/authorized_keys"
COMMONS_HOME=$DIR/home "$BIN" daemon --listen '' --ssh-listen 127.0.0.1:$PORT 2>"$DIR/daemon.log" &
PID=$!
for _ in $(seq 100); do grep -q "ssh dashboard listening\|household running" "$DIR/daemon.log" && break; sleep 0.1; done
sleep 2
rss() { awk '/VmRSS/{print $2}' /proc/$PID/status; }
fds() { ls /proc/$PID/fd | wc -l; }
r0=$(rss); f0=$(fds)
python3 "$(dirname "$0")/sshflood.py" $PORT 3000 "$ADDRS" 45 >"$DIR/flood.out" &
FP=$!
sleep 5; r5=$(rss); f5=$(fds)
sleep 39; r44=$(rss); f44=$(fds)
wait $FP
echo "addresses=$ADDRS RSS_kB=$r0/$r5/$r44 fds=$f0/$f5/$f44 (before/5s/44s); $(cat "$DIR/flood.out"); refusal log lines: $(grep -c refused "$DIR/daemon.log" || true)"
