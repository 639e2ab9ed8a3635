# shellcheck shell=bash
# Sourced by the end-to-end scripts: the unbound upstream they forward to, on loopback,
# authoritative for example.test and example.com (static local zones, no recursion).

# unbound_conf DIR ADDR PORT: prints the configuration; the caller appends its own
# `local-data:` lines (indented two spaces) after it.
unbound_conf() {
  cat <<CONF
server:
  interface: $2
  port: $3
  do-ip6: no
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$1"
  pidfile: "$1/unbound.pid"
  use-syslog: no
  logfile: "$1/unbound.log"
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  num-threads: 1
  local-zone: "." static
  local-zone: "example.test." static
  local-data: "example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60"
  local-data: "www.example.test. 300 IN A 192.0.2.80"
  local-data: "www.example.test. 300 IN AAAA 2001:db8::80"
  local-zone: "example.com." static
  local-data: "example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60"
  local-data: "payments.example.com. 120 IN A 192.0.2.20"
CONF
}
